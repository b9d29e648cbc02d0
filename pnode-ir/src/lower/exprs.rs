//! Expressions → IR nodes, with shape checks reported at the offending span.
//!
//! One [`Cx`] lowers expressions into one [`Builder`]. In [`Mode::Const`] only literals and
//! constants may appear (used for constants, shape dimensions, indices and option values;
//! everything folds to an IR constant); in [`Mode::Model`] states, parameters, `let`s, layers
//! and the time `t` are available too.

use super::codes;
use super::scope::{Scope, Sym};
use super::{Lr, MAX_VALUE_ELEMENTS, Reported};
use crate::builder::Builder;
use crate::graph::{NodeId, UnaryOp};
use crate::shape::{MAX_RANK, Shape, ShapeError};
use pnode_grammar::ast::{Arg, BinOp, Expr, ExprKind, Ident, Index, IndexItem, Span};
use pnode_grammar::{Diagnostic, did_you_mean};

/// What an expression may refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Literals and constants only.
    Const,
    /// Everything a right-hand side may use.
    Model,
}

/// The elementwise built-in functions.
pub(super) const UNARY: &[(&str, UnaryOp)] = &[
    ("tanh", UnaryOp::Tanh),
    ("sigmoid", UnaryOp::Sigmoid),
    ("relu", UnaryOp::Relu),
    ("softplus", UnaryOp::Softplus),
    ("gelu", UnaryOp::Gelu),
    ("exp", UnaryOp::Exp),
    ("log", UnaryOp::Log),
    ("sin", UnaryOp::Sin),
    ("cos", UnaryOp::Cos),
    ("sqrt", UnaryOp::Sqrt),
    ("abs", UnaryOp::Abs),
];

/// Every built-in function name (for "did you mean").
pub(super) const BUILTINS: &[&str] = &[
    "tanh",
    "sigmoid",
    "relu",
    "softplus",
    "gelu",
    "exp",
    "log",
    "sin",
    "cos",
    "sqrt",
    "abs",
    "matmul",
    "transpose",
    "sum",
    "mean",
    "mse",
    "mae",
];

/// Initializers and other constructs that are not expressions.
pub(super) const NOT_EXPRESSIONS: &[&str] = &["normal", "xavier", "data", "ones", "uniform"];

/// `(start, end, is_position)` of one index item.
pub(super) type IndexRange = (usize, usize, bool);

/// The expression lowerer.
pub(super) struct Cx<'a, 'm> {
    pub b: &'a mut Builder,
    pub scope: &'a Scope<'m>,
    pub diags: &'a mut Vec<Diagnostic>,
    pub mode: Mode,
}

/// A new error whose primary label says `label`.
pub(super) fn error_at(
    code: &'static str,
    message: impl Into<String>,
    span: Span,
    label: impl Into<String>,
) -> Diagnostic {
    Diagnostic::error(message)
        .with_code(code)
        .with_primary(span, label)
}

/// A shape that fits the lowering limits, or a diagnostic.
/// How a number `v` the expression `e` evaluated to is shown in a message: an integer literal
/// (or its negation) as written, not rounded through `f64` (`18446744073709551615`, not
/// `18446744073709552000`); anything else as `v`.
pub(super) fn number_text(e: &Expr, v: f64) -> String {
    match &e.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Neg(inner) => match inner.kind {
            ExprKind::Int(n) => format!("-{n}"),
            _ => v.to_string(),
        },
        _ => v.to_string(),
    }
}

pub(super) fn check_size(shape: &Shape, span: Span) -> Result<(), Diagnostic> {
    if shape.rank() > MAX_RANK {
        return Err(error_at(
            codes::DIMENSION,
            format!("a value of rank {} (the most is {MAX_RANK})", shape.rank()),
            span,
            format!("shape {shape}"),
        ));
    }
    match shape.checked_len() {
        Some(n) if n <= MAX_VALUE_ELEMENTS => Ok(()),
        _ => Err(error_at(
            codes::TOO_LARGE,
            format!("a value of shape {shape} is too large"),
            span,
            format!("more than {MAX_VALUE_ELEMENTS} elements"),
        )),
    }
}

impl Cx<'_, '_> {
    /// Records `d` and returns the marker.
    pub fn report(&mut self, d: Diagnostic) -> Reported {
        self.diags.push(d);
        Reported
    }

    /// A shape error of the builder, at `span`.
    pub fn shape_error(&mut self, e: ShapeError, span: Span) -> Reported {
        let code = match e {
            ShapeError::TooLarge { .. } => codes::TOO_LARGE,
            ShapeError::RankTooHigh { .. } => codes::DIMENSION,
            _ => codes::SHAPE_MISMATCH,
        };
        self.report(error_at(code, e.to_string(), span, "here"))
    }

    /// Wraps a builder result. In [`Mode::Const`] every leaf is a constant, so a result that
    /// is not one is a fold the budget refused: an error here.
    pub fn built(&mut self, r: Result<NodeId, ShapeError>, span: Span) -> Lr<NodeId> {
        let id = r.map_err(|e| self.shape_error(e, span))?;
        if self.mode == Mode::Const && self.b.graph().constant(id).is_none() {
            return Err(self.over_budget(span));
        }
        Ok(id)
    }

    /// A constant value that the folding budget does not cover.
    pub fn over_budget(&mut self, span: Span) -> Reported {
        self.report(
            error_at(
                codes::TOO_LARGE,
                "this constant expression is too large to evaluate at compile time",
                span,
                "over the constant-folding budget",
            )
            .with_note(super::budget_note()),
        )
    }

    /// The shape of a node built here.
    pub fn shape_of(&self, id: NodeId) -> Shape {
        self.b.shape(id).cloned().unwrap_or_default()
    }

    /// Lowers an expression.
    pub fn expr(&mut self, e: &Expr) -> Lr<NodeId> {
        stacker::maybe_grow(64 * 1024, 2 * 1024 * 1024, || self.expr_inner(e))
    }

    fn expr_inner(&mut self, e: &Expr) -> Lr<NodeId> {
        match &e.kind {
            ExprKind::Int(v) => Ok(self.b.scalar(*v as f64)),
            ExprKind::Float(v) => Ok(self.b.scalar(*v)),
            ExprKind::Bytes { .. } => Err(self.not_a_number(e, "a byte size")),
            ExprKind::Str(_) => Err(self.not_a_number(e, "a string")),
            ExprKind::Bool(_) => Err(self.not_a_number(e, "a boolean")),
            ExprKind::Range { .. } => Err(self.not_a_number(e, "a range")),
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::Array(items) => self.array(items, e.span),
            ExprKind::Call { func, args } => self.call(func, args, e.span),
            ExprKind::Index { base, index } => {
                let x = self.expr(base)?;
                self.index(x, index, base.span)
            }
            ExprKind::Neg(x) => {
                let x = self.expr(x)?;
                let r = self.b.neg(x);
                self.built(r, e.span)
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let (l, r) = (self.expr(lhs), self.expr(rhs));
                let (l, r) = (l?, r?);
                self.binary(*op, l, r, lhs.span, rhs.span, e.span)
            }
        }
    }

    fn not_a_number(&mut self, e: &Expr, what: &str) -> Reported {
        self.report(error_at(
            codes::NOT_A_VALUE,
            format!("expected a number, found {what}"),
            e.span,
            "not a number",
        ))
    }

    /// A bare name in an expression.
    fn name(&mut self, n: &str, span: Span) -> Lr<NodeId> {
        let scope = self.scope;
        let Some(sym) = scope.lookup(n) else {
            return match n {
                "t" if self.mode == Mode::Model => Ok(self.b.time()),
                "t" => Err(self.report(error_at(
                    codes::NOT_CONSTANT,
                    "the time `t` is not a constant",
                    span,
                    "not a constant",
                ))),
                "zeros" => Ok(self.b.scalar(0.0)),
                _ if BUILTINS.contains(&n) || NOT_EXPRESSIONS.contains(&n) => Err(self.report(
                    error_at(
                        codes::NOT_A_VALUE,
                        format!("`{n}` is a function, not a value"),
                        span,
                        "a function",
                    )
                    .with_note(format!("call it: `{n}(…)`")),
                )),
                _ => Err(self.unknown(n, span, "name")),
            };
        };
        if self.mode == Mode::Const && !matches!(sym, Sym::Const(_)) {
            return Err(self.report(
                error_at(
                    codes::NOT_CONSTANT,
                    format!(
                        "`{n}` is a {}; a constant value cannot depend on it",
                        sym.kind()
                    ),
                    span,
                    "not a constant",
                )
                .with_note("shapes, indices, constants and options need constant values"),
            ));
        }
        match sym {
            Sym::State(i) => {
                let s = &scope.states[i];
                let shape = s.shape.clone().ok_or(Reported)?;
                let r = self.b.state(s.offset, shape);
                self.built(r, span)
            }
            Sym::Param(i) => {
                let p = &scope.params[i];
                let shape = p.shape.clone().ok_or(Reported)?;
                let r = self.b.param(p.offset, shape);
                self.built(r, span)
            }
            Sym::Const(i) => {
                let c = &scope.consts[i];
                let value = c.value.as_ref().ok_or(Reported)?;
                let cache = &c.nodes[self.mode as usize];
                if let Some(id) = cache.get()
                    && self
                        .b
                        .graph()
                        .constant(id)
                        .is_some_and(|t| t.shape() == value.shape())
                {
                    return Ok(id);
                }
                let r = self.b.constant(value.clone());
                let id = self.built(r, span)?;
                cache.set(Some(id));
                Ok(id)
            }
            Sym::Let(i) => scope.lets[i].node.get().ok_or(Reported),
            Sym::Layer(_) => Err(self.report(
                error_at(
                    codes::NOT_A_VALUE,
                    format!("layer `{n}` is not a value"),
                    span,
                    "a layer",
                )
                .with_note(format!("apply it to a value: `{n}(x)`")),
            )),
        }
    }

    /// An unknown name, with a suggestion.
    pub fn unknown(&mut self, n: &str, span: Span, what: &str) -> Reported {
        let mut known: Vec<&str> = self.scope.names().collect();
        if self.mode == Mode::Model {
            known.push("t");
        }
        let mut d = error_at(
            codes::UNKNOWN_NAME,
            format!("unknown {what} `{n}`"),
            span,
            "not defined",
        );
        if let Some(s) = self.scope.suggest(n, &known) {
            d = d.with_note(format!("did you mean `{s}`?"));
        }
        self.report(d)
    }

    /// `[a, b, …]`: a literal tensor, or a stack of equal-shaped values along a new axis 0.
    fn array(&mut self, items: &[Expr], span: Span) -> Lr<NodeId> {
        if items.is_empty() {
            return Err(self.report(error_at(
                codes::SHAPE_MISMATCH,
                "an empty array has no shape",
                span,
                "empty",
            )));
        }
        if let Some((dims, data)) = literal_tensor(items, span) {
            let shape = Shape(dims);
            check_size(&shape, span).map_err(|d| self.report(d))?;
            let r = self.b.tensor(shape, data);
            return self.built(r, span);
        }
        let mut ids = Vec::with_capacity(items.len());
        let mut failed = false;
        for item in items {
            match self.expr(item) {
                Ok(id) => ids.push((id, item.span)),
                Err(_) => failed = true,
            }
        }
        if failed {
            return Err(Reported);
        }
        let first = self.shape_of(ids[0].0);
        for &(id, s) in &ids[1..] {
            let sh = self.shape_of(id);
            if sh != first {
                return Err(self.report(
                    error_at(
                        codes::SHAPE_MISMATCH,
                        format!("array elements of different shapes: {first} and {sh}"),
                        s,
                        format!("shape {sh}"),
                    )
                    .with_secondary(ids[0].1, format!("shape {first}")),
                ));
            }
        }
        let mut dims = vec![items.len()];
        dims.extend_from_slice(first.dims());
        check_size(&Shape(dims), span).map_err(|d| self.report(d))?;
        let nodes: Vec<NodeId> = ids.iter().map(|x| x.0).collect();
        let r = self.b.stack(&nodes, 0);
        self.built(r, span)
    }

    /// `lhs op rhs` with both shapes in the message on a mismatch.
    pub fn binary(
        &mut self,
        op: BinOp,
        l: NodeId,
        r: NodeId,
        ls: Span,
        rs: Span,
        span: Span,
    ) -> Lr<NodeId> {
        let (a, c) = (self.shape_of(l), self.shape_of(r));
        let sym = op.symbol();
        if op == BinOp::MatMul {
            return self.matmul(l, r, ls, rs, span);
        }
        let Some(out) = Shape::broadcast(&a, &c) else {
            return Err(self.report(
                error_at(
                    codes::SHAPE_MISMATCH,
                    format!("shape mismatch in `{sym}`: {a} and {c} do not broadcast"),
                    span,
                    format!("{a} {sym} {c}"),
                )
                .with_secondary(ls, format!("shape {a}"))
                .with_secondary(rs, format!("shape {c}"))
                .with_note(
                    "elementwise operations align shapes at the last axis; each pair of \
                     extents must be equal or 1",
                ),
            ));
        };
        check_size(&out, span).map_err(|d| self.report(d))?;
        let res = match op {
            BinOp::Add => self.b.add(l, r),
            BinOp::Sub => self.b.sub(l, r),
            BinOp::Mul => self.b.mul(l, r),
            BinOp::Div => self.b.div(l, r),
            BinOp::Pow => self.b.pow(l, r),
            BinOp::MatMul => unreachable_matmul(),
        };
        self.built(res, span)
    }

    /// `a @ b` / `matmul(a, b)`.
    pub fn matmul(&mut self, l: NodeId, r: NodeId, ls: Span, rs: Span, span: Span) -> Lr<NodeId> {
        let (a, c) = (self.shape_of(l), self.shape_of(r));
        let bad = |why: String| {
            error_at(
                codes::SHAPE_MISMATCH,
                format!("shape mismatch in matrix product: {a} @ {c}"),
                span,
                why,
            )
            .with_secondary(ls, format!("shape {a}"))
            .with_secondary(rs, format!("shape {c}"))
        };
        if a.is_scalar() || c.is_scalar() {
            let d = bad("a scalar operand".into()).with_note("use `*` to scale");
            return Err(self.report(d));
        }
        let k = a.dims()[a.rank() - 1];
        let kb = c.dims()[0];
        if k != kb {
            let d = bad(format!("inner dimensions {k} and {kb} differ"))
                .with_note("`a @ b` contracts the last axis of `a` with the first axis of `b`");
            return Err(self.report(d));
        }
        let mut d = a.dims()[..a.rank() - 1].to_vec();
        d.extend_from_slice(&c.dims()[1..]);
        let out = Shape(d);
        check_size(&out, span).map_err(|d| self.report(d))?;
        if out.len() as u128 * k as u128 > 1 << 30 {
            return Err(self.report(error_at(
                codes::TOO_LARGE,
                format!("the matrix product {a} @ {c} is too large"),
                span,
                "more than 2^30 multiply-adds",
            )));
        }
        let res = self.b.matmul(l, r);
        self.built(res, span)
    }

    /// A constant integer (for indices and integer arguments).
    pub fn const_int(&mut self, e: &Expr, what: &str) -> Lr<i64> {
        let refused = self.b.folds_refused();
        let id = self.expr(e)?;
        if self.b.graph().constant(id).is_none() && self.b.folds_refused() > refused {
            return Err(self.over_budget(e.span));
        }
        let value = self.b.graph().constant(id).cloned();
        match value {
            Some(t) if t.shape().is_scalar() => {
                let v = t.data()[0];
                if v.fract() == 0.0 && v.abs() <= 9.0e15 {
                    Ok(v as i64)
                } else {
                    Err(self.report(error_at(
                        codes::INDEX,
                        format!("{what} must be an integer, found {v}"),
                        e.span,
                        "not an integer",
                    )))
                }
            }
            Some(t) => Err(self.report(error_at(
                codes::INDEX,
                format!("{what} must be a scalar, found shape {}", t.shape()),
                e.span,
                "not a scalar",
            ))),
            None => Err(self.report(error_at(
                codes::NOT_CONSTANT,
                format!("{what} must be a constant"),
                e.span,
                "depends on the state, parameters or time",
            ))),
        }
    }

    /// `x[i, j:k, :]`: leading axes, the rest whole (NumPy); negative positions count from
    /// the end.
    pub fn index(&mut self, x: NodeId, index: &Index, base: Span) -> Lr<NodeId> {
        let shape = self.shape_of(x);
        let (ranges, _) = self.index_ranges(&shape, index, base)?;
        let mut h = x;
        let mut axis = 0;
        for (item, (start, end, at)) in index.items.iter().zip(ranges) {
            let span = index_item_span(item);
            if at {
                if axis == 0 {
                    let r = self.b.index(h, &[start]);
                    h = self.built(r, span)?;
                } else {
                    let r = self.b.slice(h, axis, start, end);
                    h = self.built(r, span)?;
                    let mut d = self.shape_of(h).dims().to_vec();
                    d.remove(axis);
                    let r = self.b.reshape(h, d);
                    h = self.built(r, span)?;
                }
            } else {
                let r = self.b.slice(h, axis, start, end);
                h = self.built(r, span)?;
                axis += 1;
            }
        }
        Ok(h)
    }

    /// The `(start, end, is_position)` of each index item on `shape`, checked, and the shape
    /// of the indexed block with every axis kept (extent 1 at positions).
    pub fn index_ranges(
        &mut self,
        shape: &Shape,
        index: &Index,
        base: Span,
    ) -> Lr<(Vec<IndexRange>, Vec<usize>)> {
        if index.items.len() > shape.rank() {
            return Err(self.report(
                error_at(
                    codes::INDEX,
                    format!(
                        "{} indices for a value of rank {} (shape {shape})",
                        index.items.len(),
                        shape.rank()
                    ),
                    index.span,
                    "too many indices",
                )
                .with_secondary(base, format!("shape {shape}")),
            ));
        }
        let mut out = Vec::new();
        let mut failed = false;
        for (axis, item) in index.items.iter().enumerate() {
            let dim = shape.dims()[axis];
            match self.index_item(item, axis, dim, shape, base) {
                Ok(r) => out.push(r),
                Err(_) => failed = true,
            }
        }
        if failed {
            return Err(Reported);
        }
        let mut block: Vec<usize> = out.iter().map(|(s, e, _)| e - s).collect();
        block.extend_from_slice(&shape.dims()[out.len()..]);
        Ok((out, block))
    }

    fn index_item(
        &mut self,
        item: &IndexItem,
        axis: usize,
        dim: usize,
        shape: &Shape,
        base: Span,
    ) -> Lr<(usize, usize, bool)> {
        let bound = |cx: &mut Self, e: &Expr, slice: bool| -> Lr<usize> {
            let v = cx.const_int(e, "an index")?;
            let v = if v < 0 { v + dim as i64 } else { v };
            let limit = if slice { dim as i64 } else { dim as i64 - 1 };
            if v < 0 || v > limit {
                return Err(cx.report(
                    error_at(
                        codes::INDEX,
                        format!("index out of bounds: axis {axis} has size {dim}"),
                        e.span,
                        "out of bounds",
                    )
                    .with_secondary(base, format!("shape {shape}")),
                ));
            }
            Ok(v as usize)
        };
        match item {
            IndexItem::At(e) => {
                let i = bound(self, e, false)?;
                Ok((i, i + 1, true))
            }
            IndexItem::Slice { start, end, span } => {
                let s = match start {
                    Some(e) => bound(self, e, true)?,
                    None => 0,
                };
                let e = match end {
                    Some(e) => bound(self, e, true)?,
                    None => dim,
                };
                if s >= e {
                    return Err(self.report(error_at(
                        codes::INDEX,
                        format!("empty slice {s}:{e} on axis {axis} of size {dim}"),
                        *span,
                        "selects nothing",
                    )));
                }
                Ok((s, e, false))
            }
        }
    }

    /// Exactly `N` positional arguments and keyword arguments among `kwargs`.
    pub fn positional<'e, const N: usize>(
        &mut self,
        func: &Ident,
        args: &'e [Arg],
        kwargs: &[&str],
    ) -> Lr<[&'e Expr; N]> {
        check_kwargs(self.diags, func, args, kwargs)?;
        let pos: Vec<&Expr> = args
            .iter()
            .filter(|a| a.name.is_none())
            .map(|a| &a.value)
            .collect();
        pos.as_slice().try_into().map_err(|_| {
            let d = error_at(
                codes::ARGUMENTS,
                format!(
                    "`{}` takes {N} positional argument{}, found {}",
                    func.name,
                    if N == 1 { "" } else { "s" },
                    pos.len()
                ),
                pos.get(N).map_or(func.span, |e| e.span),
                if pos.len() > N {
                    "unexpected argument"
                } else {
                    "missing arguments"
                },
            );
            self.report(d)
        })
    }
}

/// Every keyword argument must be one of `kwargs`.
pub(super) fn check_kwargs(
    diags: &mut Vec<Diagnostic>,
    func: &Ident,
    args: &[Arg],
    kwargs: &[&str],
) -> Lr<()> {
    let mut ok = true;
    for a in args {
        if let Some(k) = &a.name
            && !kwargs.contains(&k.name.as_str())
        {
            let mut d = error_at(
                codes::ARGUMENTS,
                format!("`{}` has no keyword argument `{}`", func.name, k.name),
                k.span,
                "unknown keyword",
            );
            d = match did_you_mean(&k.name, kwargs) {
                Some(s) => d.with_note(format!("did you mean `{s}`?")),
                None if kwargs.is_empty() => {
                    d.with_note(format!("`{}` takes no keyword arguments", func.name))
                }
                None => d.with_note(format!("the keywords are {}", kwargs.join(", "))),
            };
            diags.push(d);
            ok = false;
        }
    }
    if ok { Ok(()) } else { Err(Reported) }
}

fn unreachable_matmul() -> Result<NodeId, ShapeError> {
    Err(ShapeError::NoOperands { op: "matmul" })
}

/// Whether `e` is a call of `name`.
pub(super) fn is_call(e: &Expr, name: &str) -> bool {
    matches!(&e.kind, ExprKind::Call { func, .. } if func.name == name)
}

/// The span of an index item.
pub(super) fn index_item_span(item: &IndexItem) -> Span {
    match item {
        IndexItem::At(e) => e.span,
        IndexItem::Slice { span, .. } => *span,
    }
}

/// A nested array of number literals (possibly negated) with a regular shape, as a row-major
/// tensor; `None` if anything else appears.
pub(super) fn literal_tensor(items: &[Expr], span: Span) -> Option<(Vec<usize>, Vec<f64>)> {
    let _ = span;
    let mut data = Vec::new();
    let dims = literal_into(items, &mut data, 0)?;
    Some((dims, data))
}

fn literal_into(items: &[Expr], data: &mut Vec<f64>, depth: usize) -> Option<Vec<usize>> {
    if depth > MAX_RANK || items.is_empty() {
        return None;
    }
    let mut inner: Option<Vec<usize>> = None;
    for item in items {
        let d = match &item.kind {
            ExprKind::Array(sub) => literal_into(sub, data, depth + 1)?,
            _ => {
                data.push(literal_number(item)?);
                Vec::new()
            }
        };
        match &inner {
            None => inner = Some(d),
            Some(prev) if *prev == d => {}
            Some(_) => return None,
        }
    }
    let mut dims = vec![items.len()];
    dims.extend(inner.unwrap_or_default());
    Some(dims)
}

/// A number literal, or the negation of one.
pub(super) fn literal_number(e: &Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Int(v) => Some(*v as f64),
        ExprKind::Float(v) => Some(*v),
        ExprKind::Neg(x) => match &x.kind {
            ExprKind::Int(v) => Some(-(*v as f64)),
            ExprKind::Float(v) => Some(-*v),
            _ => None,
        },
        _ => None,
    }
}
