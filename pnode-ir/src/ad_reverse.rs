//! Reverse-mode symbolic differentiation: `vjp(f)` is a new function computing
//! `(f_uᵀ w, f_θᵀ w)`.
//!
//! Adjoints are propagated through the arena in reverse topological order (the adjoint model of
//! Griewank–Walther, Ch. 3, "incremental reverse mode"): for `y = φ(x₀, …)` each operand
//! receives `x̄_k += (∂φ/∂x_k)ᵀ ȳ`, built as new nodes of the same hash-consed graph. The seed
//! of the `k`-th output is a shaped view of the cotangent buffer `w` at that output's offset in
//! the flattened output. Every read of the state or the parameter buffer contributes its
//! adjoint to the corresponding gradient at the read's offset (concatenated with zero gaps
//! when the reads are disjoint, else summed as zero-padded vectors); several reads of the same
//! node accumulate in its adjoint, and unread entries are zero. Only *active* nodes (those
//! that depend on `u` or `θ`) receive adjoints.
//!
//! Broadcasting binaries reduce their adjoint back to each operand's shape with
//! [`Op::SumTo`]; the adjoints of `Index`, `Slice` are `Scatter`, `Pad` (and vice versa), of
//! `Sum`/`SumTo` a `Broadcast`, of `Conv2d` the two transposed convolutions, of `GroupNorm`
//! its (symmetric) Jacobian product. An opaque layer's adjoint is its own VJP
//! ([`Op::OpaqueVjp`]), kept as an *effect* of the function because it also accumulates the
//! layer's parameter gradient.
//!
//! # References
//!
//! A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008, Ch. 3–4;
//! Dumoulin and Visin, arXiv:1603.07285 (transposed convolutions); Wu and He, "Group
//! Normalization", ECCV 2018.

use crate::ad_forward::{add_opt, local_derivative};
use crate::builder::Builder;
use crate::error::Error;
use crate::function::{Function, Layout};
use crate::graph::{BinaryOp, Buffer, Node, NodeId, Op, UnaryOp};

/// The VJP function `(t, u, θ, w) ↦ (f_uᵀ w, f_θᵀ w)` of `f`: two outputs, of shapes
/// `[state_len]` and `[param_len]`. The cotangent buffer `w` has the length of `f`'s
/// flattened outputs. Any tangent buffer `f` reads (when `f` is a JVP) is held fixed, so
/// `vjp(jvp(f))` is a second-order adjoint too; `f` must not read a cotangent buffer itself.
pub fn vjp(f: &Function) -> Result<Function, Error> {
    if f.layout().cotangent > 0 {
        return Err(Error::BufferInUse {
            buffer: Buffer::Cotangent,
        });
    }
    let layout = Layout {
        cotangent: f.output_len(),
        ..*f.layout()
    };
    let mut b = Builder::extend(f, layout);
    let nodes = f.graph().nodes();
    let n = nodes.len();
    let mut active = vec![false; n];
    for (i, node) in nodes.iter().enumerate() {
        active[i] = match node.op {
            Op::Input { buffer, .. } => matches!(buffer, Buffer::State | Buffer::Param),
            // Its parameters are part of θ.
            Op::Opaque { .. } => true,
            _ => node.inputs.iter().any(|x| active[x.index()]),
        };
    }
    let mut adj: Vec<Option<NodeId>> = vec![None; n];
    let mut offset = 0;
    for &o in f.outputs() {
        let s = nodes[o.index()].shape.clone();
        let len = s.len();
        if active[o.index()] {
            let w = b.input(Buffer::Cotangent, offset, s)?;
            adj[o.index()] = add_opt(&mut b, adj[o.index()], Some(w))?;
        }
        offset += len;
    }
    let (nu, np) = (layout.state, layout.param);
    // (offset, flattened adjoint) of every read of u and of θ.
    let mut reads_u: Vec<(usize, NodeId)> = Vec::new();
    let mut reads_p: Vec<(usize, NodeId)> = Vec::new();
    // The opaque layers' VJP nodes, evaluated for the φ̄ they accumulate.
    let mut effects: Vec<NodeId> = Vec::new();
    for i in (0..n).rev() {
        let Some(g) = adj[i] else { continue };
        let node = &nodes[i];
        match &node.op {
            Op::Input { buffer, offset, .. } => {
                let flat = b.flatten(g)?;
                if *buffer == Buffer::State {
                    reads_u.push((*offset, flat));
                } else {
                    reads_p.push((*offset, flat));
                }
            }
            Op::Time | Op::Const(_) => {}
            Op::Opaque { layer, output } => {
                // Built even when `x` is inactive, and kept as an effect: it also accumulates φ̄.
                let op = Op::OpaqueVjp {
                    layer: *layer,
                    output: output.clone(),
                };
                let xbar = b.op(op, &[node.inputs[0], g])?;
                effects.push(xbar);
                let x = node.inputs[0].index();
                if active[x] {
                    adj[x] = add_opt(&mut b, adj[x], Some(xbar))?;
                }
            }
            _ => {
                for (k, contrib) in adjoint(&mut b, node, NodeId(i as u32), g, &active)? {
                    let x = node.inputs[k].index();
                    adj[x] = add_opt(&mut b, adj[x], Some(contrib))?;
                }
            }
        }
    }
    let gu = assemble(&mut b, reads_u, nu)?;
    let gp = assemble(&mut b, reads_p, np)?;
    b.finish_with_effects(&[gu, gp], &effects)
}

/// The gradient of a whole buffer of length `len` from the adjoints of its reads
/// `(offset, flat adjoint)`: a concatenation with zero gaps when the reads are disjoint (one
/// pass over the buffer), otherwise a sum of zero-padded vectors. Unread entries are zero.
fn assemble(b: &mut Builder, mut reads: Vec<(usize, NodeId)>, len: usize) -> Result<NodeId, Error> {
    reads.sort_by_key(|r| r.0);
    let mut lens = Vec::with_capacity(reads.len());
    for r in &reads {
        lens.push(b.shape(r.1)?.len());
    }
    let disjoint = (1..reads.len()).all(|k| reads[k].0 >= reads[k - 1].0 + lens[k - 1]);
    if disjoint {
        let mut parts = Vec::with_capacity(2 * reads.len() + 1);
        let mut at = 0;
        for (k, &(off, g)) in reads.iter().enumerate() {
            if off > at {
                parts.push(b.zeros([off - at])?);
            }
            parts.push(g);
            at = off + lens[k];
        }
        if at < len || parts.is_empty() {
            parts.push(b.zeros([len - at])?);
        }
        return Ok(b.concat(&parts, 0)?);
    }
    let mut acc = None;
    for (k, &(off, g)) in reads.iter().enumerate() {
        let e = b.pad(g, 0, off, len - off - lens[k])?;
        acc = add_opt(b, acc, Some(e))?;
    }
    match acc {
        Some(a) => Ok(a),
        None => Ok(b.zeros([len])?),
    }
}

/// The adjoint contributions `(operand, (∂y/∂x_k)ᵀ ȳ)` of one node to its active operands.
fn adjoint(
    b: &mut Builder,
    node: &Node,
    y: NodeId,
    g: NodeId,
    active: &[bool],
) -> Result<Vec<(usize, NodeId)>, Error> {
    let x = &node.inputs;
    let act = |k: usize| active[x[k].index()];
    let s = |b: &Builder, k: usize| b.shape(x[k]).cloned();
    let mut out = Vec::with_capacity(x.len());
    match &node.op {
        Op::Time | Op::Input { .. } | Op::Const(_) => {}
        Op::Unary(UnaryOp::Neg) => out.push((0, b.neg(g)?)),
        Op::Unary(u) => {
            if let Some(d) = local_derivative(b, *u, x[0], y)? {
                out.push((0, b.mul(d, g)?));
            }
        }
        Op::Binary(op) => {
            for k in 0..2 {
                if !act(k) {
                    continue;
                }
                let other = x[1 - k];
                let full = match (op, k) {
                    (BinaryOp::Add, _) | (BinaryOp::Sub, 0) => g,
                    (BinaryOp::Sub, _) => b.neg(g)?,
                    (BinaryOp::Mul, _) => b.mul(g, other)?,
                    (BinaryOp::Div, 0) => b.div(g, x[1])?,
                    (BinaryOp::Div, _) => {
                        // −ȳ y / x₁
                        let gy = b.mul(g, y)?;
                        let q = b.div(gy, x[1])?;
                        b.neg(q)?
                    }
                    (BinaryOp::Pow, 0) => {
                        // ȳ x₁ x₀^{x₁−1}
                        let one = b.scalar(1.0);
                        let e = b.sub(x[1], one)?;
                        let p = b.binary(BinaryOp::Pow, x[0], e)?;
                        let c = b.mul(x[1], p)?;
                        b.mul(g, c)?
                    }
                    (BinaryOp::Pow, _) => {
                        // ȳ y ln x₀
                        let l = b.log(x[0])?;
                        let c = b.mul(y, l)?;
                        b.mul(g, c)?
                    }
                };
                let sk = s(b, k)?;
                out.push((k, b.sum_to(full, sk)?));
            }
        }
        Op::MatMul => {
            // A ≅ [M,K], B ≅ [K,N], Ȳ ≅ [M,N]: Ā = Ȳ Bᵀ, B̄ = Aᵀ Ȳ.
            let (sa, sb) = (s(b, 0)?, s(b, 1)?);
            let k = sb.dims()[0];
            let m = sa.len() / k.max(1);
            let nn = sb.len() / k.max(1);
            let g2 = b.reshape(g, [m, nn])?;
            if act(0) {
                let b2 = b.reshape(x[1], [k, nn])?;
                let bt = b.transpose(b2)?;
                let ga = b.matmul(g2, bt)?;
                out.push((0, b.reshape(ga, sa)?));
            }
            if act(1) {
                let a2 = b.reshape(x[0], [m, k])?;
                let at = b.transpose(a2)?;
                let gb = b.matmul(at, g2)?;
                out.push((1, b.reshape(gb, sb)?));
            }
        }
        Op::Transpose => out.push((0, b.transpose(g)?)),
        Op::Index(idx) => {
            let s0 = s(b, 0)?;
            out.push((0, b.scatter(g, idx, s0)?));
        }
        Op::Scatter { index, .. } => out.push((0, b.index(g, index)?)),
        Op::Slice { axis, start, end } => {
            let d = s(b, 0)?.dims()[*axis];
            out.push((0, b.pad(g, *axis, *start, d - end)?));
        }
        Op::Pad { axis, before, .. } => {
            let d = s(b, 0)?.dims()[*axis];
            out.push((0, b.slice(g, *axis, *before, before + d)?));
        }
        Op::Sum(None) | Op::SumTo(_) => {
            let s0 = s(b, 0)?;
            out.push((0, b.broadcast_to(g, s0)?));
        }
        Op::Sum(Some(axis)) => {
            let s0 = s(b, 0)?;
            let mut d = s0.dims().to_vec();
            d[*axis] = 1;
            let r = b.reshape(g, d)?;
            out.push((0, b.broadcast_to(r, s0)?));
        }
        Op::Reshape(_) => {
            let s0 = s(b, 0)?;
            out.push((0, b.reshape(g, s0)?));
        }
        Op::Broadcast(_) => {
            let s0 = s(b, 0)?;
            out.push((0, b.sum_to(g, s0)?));
        }
        Op::Concat(axis) => {
            let mut at = 0;
            for k in 0..x.len() {
                let d = s(b, k)?.dims()[*axis];
                if act(k) {
                    out.push((k, b.slice(g, *axis, at, at + d)?));
                }
                at += d;
            }
        }
        Op::Conv2d(conv) => {
            if act(0) {
                let input = s(b, 0)?;
                let op = Op::Conv2dBackwardInput { conv: *conv, input };
                out.push((0, b.op(op, &[g, x[1]])?));
            }
            if act(1) {
                let kernel = s(b, 1)?;
                let op = Op::Conv2dBackwardWeight {
                    conv: *conv,
                    kernel,
                };
                out.push((1, b.op(op, &[x[0], g])?));
            }
        }
        Op::Conv2dBackwardInput { conv, .. } => {
            // z = BI(ḡ₀, w): ⟨z̄, z⟩ = ⟨conv(z̄, w), ḡ₀⟩ = ⟨w, BW(z̄, ḡ₀)⟩.
            if act(0) {
                out.push((0, b.op(Op::Conv2d(*conv), &[g, x[1]])?));
            }
            if act(1) {
                let kernel = s(b, 1)?;
                let op = Op::Conv2dBackwardWeight {
                    conv: *conv,
                    kernel,
                };
                out.push((1, b.op(op, &[g, x[0]])?));
            }
        }
        Op::Conv2dBackwardWeight { conv, .. } => {
            // z = BW(x, ḡ₀): ⟨z̄, z⟩ = ⟨conv(x, z̄), ḡ₀⟩ = ⟨x, BI(ḡ₀, z̄)⟩.
            if act(0) {
                let input = s(b, 0)?;
                let op = Op::Conv2dBackwardInput { conv: *conv, input };
                out.push((0, b.op(op, &[x[1], g])?));
            }
            if act(1) {
                out.push((1, b.op(Op::Conv2d(*conv), &[x[0], g])?));
            }
        }
        Op::GroupNorm { groups, eps } => {
            let op = Op::GroupNormBackward {
                groups: *groups,
                eps: *eps,
            };
            out.push((0, b.op(op, &[x[0], g])?));
        }
        Op::GroupNormBackward { .. } => {
            if act(0) {
                return Err(Error::Unsupported {
                    op: node.op.name(),
                    operand: 0,
                });
            }
            out.push((1, b.op(node.op.clone(), &[x[0], g])?));
        }
        // Handled by `vjp` itself (its VJP node is an effect as well as an adjoint).
        Op::Opaque { .. } => {}
        Op::OpaqueJvp { .. } | Op::OpaqueVjp { .. } => {
            return Err(Error::Unsupported {
                op: node.op.name(),
                operand: (0..x.len()).find(|&k| act(k)).unwrap_or(0),
            });
        }
    }
    Ok(out)
}
