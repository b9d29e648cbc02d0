//! Equations: each `d(NAME[index])/dt = rhs` gives a block of one state; every component of
//! every state must be given exactly once. A state's derivative is assembled from its blocks
//! by concatenation when they tile it axis by axis (guillotine cuts), else by zero padding and
//! addition.

use super::codes;
use super::exprs::{Cx, error_at};
use super::scope::Sym;
use super::{Lr, Reported};
use crate::graph::NodeId;
use crate::shape::Shape;
use pnode_grammar::ast::{Equation, Model, Span};

/// One lowered equation: its state, its block (a range per axis) and the RHS node reshaped to
/// the block (every axis kept).
struct Block {
    state: usize,
    ranges: Vec<(usize, usize)>,
    node: NodeId,
    /// `d(u[0])/dt`: from the state name to the end of the index.
    target: Span,
}

/// The derivative of every state, in declaration order.
pub(super) fn lower_equations(cx: &mut Cx, model: &Model) -> Lr<Vec<NodeId>> {
    let mut blocks = Vec::new();
    let mut failed = false;
    let mut broken = vec![false; cx.scope.states.len()];
    for eq in model.equations() {
        match equation(cx, eq) {
            Ok(Some(b)) => blocks.push(b),
            Ok(None) => {}
            Err(_) => {
                failed = true;
                if let Some(Sym::State(i)) = cx.scope.lookup(&eq.state.name) {
                    broken[i] = true;
                }
            }
        }
    }
    let scope = cx.scope;
    // Each state's blocks, in source order (one pass: linear in states and equations).
    let mut by_state: Vec<Vec<&Block>> = vec![Vec::new(); scope.states.len()];
    for b in &blocks {
        by_state[b.state].push(b);
    }
    let mut out = Vec::with_capacity(scope.states.len());
    let mut coverage_errors = 0;
    for (i, st) in scope.states.iter().enumerate() {
        let Some(shape) = st.shape.clone() else {
            failed = true;
            continue;
        };
        if broken[i] {
            continue;
        }
        let mine = std::mem::take(&mut by_state[i]);
        if coverage(cx, i, &shape, &mine).is_err() {
            failed = true;
            // These errors come in source order: once there are more than the limit, none of
            // the rest would be among the first `MAX_ERRORS` the lowering keeps.
            coverage_errors += 1;
            if coverage_errors > pnode_grammar::MAX_ERRORS {
                break;
            }
            continue;
        }
        if failed {
            continue;
        }
        let parts: Vec<(Vec<(usize, usize)>, NodeId)> =
            mine.iter().map(|b| (b.ranges.clone(), b.node)).collect();
        let span = st.decl.name.span;
        let node = match guillotine(cx, &parts, 0, shape.rank(), span)? {
            Some(n) => n,
            None => pad_sum(cx, &parts, &shape, span)?,
        };
        out.push(node);
    }
    if failed { Err(Reported) } else { Ok(out) }
}

fn equation(cx: &mut Cx, eq: &Equation) -> Lr<Option<Block>> {
    let scope = cx.scope;
    let name = eq.state.name.as_str();
    let target = Span::new(
        eq.state.span.start,
        eq.index.as_ref().map_or(eq.state.span.end, |i| i.span.end),
    );
    let state = match scope.lookup(name) {
        Some(Sym::State(i)) => i,
        Some(other) => {
            // Lower the right-hand side anyway, to report its errors too.
            let _ = cx.expr(&eq.rhs);
            return Err(cx.report(
                error_at(
                    codes::NOT_A_STATE,
                    format!("`{name}` is a {}, not a state", other.kind()),
                    eq.state.span,
                    "not a state",
                )
                .with_note("equations `d(NAME)/dt = …` give the derivative of a state"),
            ));
        }
        None => {
            let _ = cx.expr(&eq.rhs);
            let mut d = error_at(
                codes::UNKNOWN_NAME,
                format!("unknown state `{name}`"),
                eq.state.span,
                "not defined",
            );
            if let Some(s) = scope.suggest(name, &scope.state_names()) {
                d = d.with_note(format!("did you mean `{s}`?"));
            }
            return Err(cx.report(d));
        }
    };
    let rhs = cx.expr(&eq.rhs);
    let Some(shape) = scope.states[state].shape.clone() else {
        return Ok(None);
    };
    let (ranges, block) = match &eq.index {
        None => (
            shape.dims().iter().map(|&d| (0, d)).collect(),
            shape.dims().to_vec(),
        ),
        Some(index) => {
            let (r, block) = cx.index_ranges(&shape, index, eq.state.span)?;
            let mut ranges: Vec<(usize, usize)> = r.iter().map(|&(s, e, _)| (s, e)).collect();
            ranges.extend(shape.dims()[r.len()..].iter().map(|&d| (0, d)));
            (ranges, block)
        }
    };
    // The shape the right-hand side must have: the block without the axes fixed by positions.
    let want: Vec<usize> = match &eq.index {
        None => shape.dims().to_vec(),
        Some(index) => {
            let mut w = Vec::new();
            for (k, d) in block.iter().enumerate() {
                let fixed = matches!(index.items.get(k), Some(pnode_grammar::IndexItem::At(_)));
                if !fixed {
                    w.push(*d);
                }
            }
            w
        }
    };
    let want = Shape(want);
    let rhs = rhs?;
    let got = cx.shape_of(rhs);
    if got != want && !got.is_scalar() {
        return Err(cx.report(
            error_at(
                codes::EQUATION_SHAPE,
                format!("the right-hand side has shape {got}, but the equation needs {want}"),
                eq.rhs.span,
                format!("shape {got}"),
            )
            .with_secondary(target, format!("shape {want}")),
        ));
    }
    let node = if got.is_scalar() {
        let r = cx.b.broadcast_to(rhs, block.clone());
        cx.built(r, eq.rhs.span)?
    } else {
        let r = cx.b.reshape(rhs, block.clone());
        cx.built(r, eq.rhs.span)?
    };
    Ok(Some(Block {
        state,
        ranges,
        node,
        target,
    }))
}

fn overlap(a: &[(usize, usize)], b: &[(usize, usize)]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.0 < y.1 && y.0 < x.1)
}

fn volume(r: &[(usize, usize)]) -> usize {
    r.iter().map(|(s, e)| e - s).product()
}

/// Every component of state `i` in exactly one block.
fn coverage(cx: &mut Cx, i: usize, shape: &Shape, blocks: &[&Block]) -> Lr<()> {
    let st = &cx.scope.states[i];
    let name = st.decl.name.name.as_str();
    let decl = st.decl.name.span;
    if blocks.is_empty() {
        return Err(cx.report(
            error_at(
                codes::COVERAGE,
                format!("state `{name}` has no equation"),
                decl,
                "declared here",
            )
            .with_note(format!("add `d({name})/dt = …`")),
        ));
    }
    let mut failed = false;
    for (first, again) in overlaps(shape, blocks) {
        let (first, again) = (blocks[first], blocks[again]);
        cx.report(
            error_at(
                codes::COVERAGE,
                format!("components of `{name}` are given twice"),
                again.target,
                "given again here",
            )
            .with_secondary(first.target, "first given here"),
        );
        failed = true;
    }
    if failed {
        return Err(Reported);
    }
    let covered: usize = blocks.iter().map(|b| volume(&b.ranges)).sum();
    if covered < shape.len() {
        let missing = shape.len() - covered;
        let mut d = error_at(
            codes::COVERAGE,
            if missing == 1 {
                format!(
                    "1 of the {} components of `{name}` has no equation",
                    shape.len()
                )
            } else {
                format!(
                    "{missing} of the {} components of `{name}` have no equation",
                    shape.len()
                )
            },
            blocks[0].target,
            "the equations of this state",
        )
        .with_secondary(decl, format!("shape {shape}"));
        for b in &blocks[1..] {
            d = d.with_secondary(b.target, "");
        }
        let list = missing_components(shape, blocks, 8);
        if !list.is_empty() {
            let shown: Vec<String> = list
                .iter()
                .map(|ix| {
                    let v: Vec<String> = ix.iter().map(|x| x.to_string()).collect();
                    format!("{name}[{}]", v.join(", "))
                })
                .collect();
            let more = if missing > shown.len() { ", …" } else { "" };
            d = d.with_note(format!("missing: {}{more}", shown.join(", ")));
        }
        return Err(cx.report(d));
    }
    Ok(())
}

/// The overlapping blocks, as `(earlier, later)` indices: one pair per block that overlaps
/// another. Few blocks are compared by a sweep along axis 0 (only blocks whose axis-0 ranges
/// intersect are compared); many (each a component of a large state, say) by marking each
/// component with its block, linear in the components and blocks: the sweep keeps every block
/// of the same axis-0 range active, which made it quadratic.
fn overlaps(shape: &Shape, blocks: &[&Block]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if blocks.len() <= 64 {
        let mut order: Vec<usize> = (0..blocks.len()).collect();
        if shape.rank() > 0 {
            order.sort_by_key(|&k| (blocks[k].ranges[0].0, k));
        }
        let mut active: Vec<usize> = Vec::new();
        for &k in &order {
            let b = blocks[k];
            if shape.rank() > 0 {
                active.retain(|&a| blocks[a].ranges[0].1 > b.ranges[0].0);
            }
            if let Some(&a) = active
                .iter()
                .find(|&&a| overlap(&blocks[a].ranges, &b.ranges))
            {
                out.push((a.min(k), a.max(k)));
            }
            active.push(k);
        }
        out.sort_by_key(|&(_, again)| again);
        return out;
    }
    let strides = shape.strides();
    let mut owner = vec![usize::MAX; shape.len()];
    for (k, b) in blocks.iter().enumerate() {
        if volume(&b.ranges) == 0 {
            continue;
        }
        // Row-major over the block's components until one is taken.
        let mut ix: Vec<usize> = b.ranges.iter().map(|r| r.0).collect();
        'components: loop {
            let flat: usize = ix.iter().zip(&strides).map(|(i, s)| i * s).sum();
            if owner[flat] != usize::MAX {
                out.push((owner[flat], k));
                break;
            }
            owner[flat] = k;
            let mut axis = ix.len();
            loop {
                if axis == 0 {
                    break 'components;
                }
                axis -= 1;
                ix[axis] += 1;
                if ix[axis] < b.ranges[axis].1 {
                    break;
                }
                ix[axis] = b.ranges[axis].0;
            }
        }
    }
    out
}

/// Up to `max` components of `shape` in no block (for states of at most 4096 components).
fn missing_components(shape: &Shape, blocks: &[&Block], max: usize) -> Vec<Vec<usize>> {
    let n = shape.len();
    if n > 4096 || n * blocks.len() > 1 << 22 || shape.is_scalar() {
        return Vec::new();
    }
    let strides = shape.strides();
    let mut out = Vec::new();
    for flat in 0..n {
        let ix: Vec<usize> = strides
            .iter()
            .zip(shape.dims())
            .map(|(s, d)| (flat / s) % d)
            .collect();
        let inside = blocks
            .iter()
            .any(|b| b.ranges.iter().zip(&ix).all(|((s, e), x)| s <= x && x < e));
        if !inside {
            out.push(ix);
            if out.len() == max {
                break;
            }
        }
    }
    out
}

/// Concatenation of the blocks if they tile the region axis by axis; `None` otherwise.
fn guillotine(
    cx: &mut Cx,
    parts: &[(Vec<(usize, usize)>, NodeId)],
    axis: usize,
    rank: usize,
    span: Span,
) -> Lr<Option<NodeId>> {
    if parts.len() == 1 {
        return Ok(Some(parts[0].1));
    }
    if axis >= rank {
        return Ok(None);
    }
    let mut sorted = parts.to_vec();
    sorted.sort_by_key(|p| p.0[axis]);
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let r = sorted[i].0[axis];
        if i > 0 && sorted[i - 1].0[axis].1 > r.0 {
            return Ok(None);
        }
        let j = i + sorted[i..].iter().take_while(|p| p.0[axis] == r).count();
        match guillotine(cx, &sorted[i..j], axis + 1, rank, span)? {
            Some(n) => pieces.push(n),
            None => return Ok(None),
        }
        i = j;
    }
    let r = cx.b.concat(&pieces, axis);
    cx.built(r, span).map(Some)
}

/// `Σ pad(block)`: the general assembly.
fn pad_sum(
    cx: &mut Cx,
    parts: &[(Vec<(usize, usize)>, NodeId)],
    shape: &Shape,
    span: Span,
) -> Lr<NodeId> {
    let mut acc: Option<NodeId> = None;
    for (ranges, node) in parts {
        let mut h = *node;
        for (axis, ((s, e), d)) in ranges.iter().zip(shape.dims()).enumerate() {
            let r = cx.b.pad(h, axis, *s, d - e);
            h = cx.built(r, span)?;
        }
        acc = Some(match acc {
            None => h,
            Some(a) => {
                let r = cx.b.add(a, h);
                cx.built(r, span)?
            }
        });
    }
    acc.ok_or(Reported)
}
