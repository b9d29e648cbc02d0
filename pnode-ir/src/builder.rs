//! The builder: the only way to add nodes. Every method infers the result shape (returning a
//! [`ShapeError`] naming both shapes on a mismatch), applies a few exact algebraic
//! simplifications, folds constant-only operations and hash-conses the node.
//!
//! Commutative operations (`add`, `mul`) order their operands by id, so `a·b` and `b·a` are
//! one node.
//!
//! Simplifications (each only when the result shape equals the kept operand's shape, so no
//! broadcast is lost): `x + 0 → x`, `0 + x → x`, `x − 0 → x`, `0 − x → −x`, `x · 1 → x`,
//! `x · 0 → 0` (when the zero constant already has the result shape), `x / 1 → x`,
//! `−(−x) → x`, `x¹ → x`, `x⁰ → 1`, identity reshapes/broadcasts/slices/pads,
//! `reshape(reshape x) → reshape x`, `transpose(transpose x) → x`, and a contiguous view
//! (reshape, index, leading slice) of an input read is itself an input read. Operations whose operands
//! are all constants are evaluated by the interpreter's kernels and become constants, as far
//! as the [`FoldBudget`] allows (unlimited unless set); beyond it they stay symbolic.
//! (`x · 0 → 0` drops a NaN or infinity in `x`, as every algebraic simplifier does.)

use crate::error::Error;
use crate::function::{Function, Layout};
use crate::graph::{BinaryOp, Buffer, ConvParams, Graph, NodeId, Op, Real, Tensor, UnaryOp};
use crate::interp::eval_detached;
use crate::ops::infer_shape;
use crate::shape::{Shape, ShapeError};

/// Builds a graph node by node; finish with [`Builder::finish`] or [`Builder::finish_rhs`].
#[derive(Debug, Clone)]
pub struct Builder {
    graph: Graph,
    layout: Layout,
    budget: FoldBudget,
    refused: u64,
}

/// What constant folding may still spend: `work` in multiply-adds or elements touched, `bytes`
/// of folded constants produced. A fold that does not fit leaves the operation symbolic (its
/// value is then computed when the function runs) and spends nothing; folds of at most
/// [`FoldBudget::SMALL_WORK`] work and [`FoldBudget::SMALL_BYTES`] bytes always happen (they
/// are spent too, saturating), so indices and scalars stay constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldBudget {
    /// Multiply-adds (products, convolutions) or elements read and written (the rest).
    pub work: u64,
    /// Bytes of the constants folding produces.
    pub bytes: u64,
}

impl FoldBudget {
    /// No limit (a new builder's budget).
    pub const UNLIMITED: FoldBudget = FoldBudget {
        work: u64::MAX,
        bytes: u64::MAX,
    };
    /// Folds at most this much work (and [`FoldBudget::SMALL_BYTES`]) always happen.
    pub const SMALL_WORK: u64 = 1 << 16;
    /// See [`FoldBudget::SMALL_WORK`].
    pub const SMALL_BYTES: u64 = 1 << 16;
}

/// The work of evaluating `op` on operands of shapes `inputs` with result `out`.
fn fold_cost(op: &Op, inputs: &[&Shape], out: &Shape) -> u64 {
    let n = |s: &Shape| s.len() as u64;
    // Elements of one output entry's contraction: all of `w`'s dimensions but the first.
    let per_out = |w: Option<&&Shape>| {
        w.map_or(1, |w| match w.dims().first() {
            Some(&d) if d > 0 => n(w) / d as u64,
            _ => 1,
        })
    };
    let cost = match op {
        Op::MatMul => {
            let k = inputs.first().and_then(|a| a.dims().last()).copied();
            n(out).saturating_mul(k.unwrap_or(1) as u64)
        }
        Op::Conv2d(_) => n(out).saturating_mul(per_out(inputs.get(1))),
        Op::Conv2dBackwardInput { .. } => {
            let g = inputs.first().map_or(0, |g| n(g));
            g.saturating_mul(per_out(inputs.get(1)))
        }
        Op::Conv2dBackwardWeight { .. } => {
            let g = inputs.get(1).map_or(0, |g| n(g));
            g.saturating_mul(per_out(Some(&out)))
        }
        Op::Index(_) | Op::Slice { .. } | Op::Reshape(_) | Op::Transpose => n(out),
        _ => inputs.iter().fold(n(out), |a, s| a.saturating_add(n(s))),
    };
    cost.max(1)
}

/// Shorthand for builder results.
pub type Built = Result<NodeId, ShapeError>;

impl Builder {
    /// A builder for a function reading buffers of the lengths in `layout`.
    pub fn new(layout: Layout) -> Self {
        Builder {
            graph: Graph::new(),
            layout,
            budget: FoldBudget::UNLIMITED,
            refused: 0,
        }
    }

    /// What constant folding may still spend (see [`FoldBudget`]).
    pub fn fold_budget(&self) -> FoldBudget {
        self.budget
    }

    /// Sets what constant folding may still spend.
    pub fn set_fold_budget(&mut self, budget: FoldBudget) {
        self.budget = budget;
    }

    /// How many operations on constants were left symbolic because the budget did not cover
    /// them.
    pub fn folds_refused(&self) -> u64 {
        self.refused
    }

    /// A builder that extends `f`'s graph (so new nodes are hash-consed against it) under a
    /// new layout.
    pub(crate) fn extend(f: &Function, layout: Layout) -> Self {
        Builder {
            graph: f.graph().clone(),
            layout,
            budget: FoldBudget::UNLIMITED,
            refused: 0,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The graph so far.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The shape of a node.
    pub fn shape(&self, id: NodeId) -> Result<&Shape, ShapeError> {
        self.graph
            .get(id)
            .map(|n| &n.shape)
            .ok_or(ShapeError::UnknownNode {
                op: "shape",
                id: id.0,
                len: self.graph.len(),
            })
    }

    /// The function with the given outputs (dead nodes dropped).
    pub fn finish(&self, outputs: &[NodeId]) -> Result<Function, Error> {
        self.finish_with_effects(outputs, &[])
    }

    /// Like [`Builder::finish`], and the nodes `effects` are kept (and evaluated, in arena
    /// order) even where no output needs them: opaque-layer VJPs, which accumulate the layer's
    /// parameter gradient.
    pub fn finish_with_effects(
        &self,
        outputs: &[NodeId],
        effects: &[NodeId],
    ) -> Result<Function, Error> {
        for &o in outputs.iter().chain(effects) {
            self.check("output", o)?;
        }
        Ok(Function::new(&self.graph, outputs, effects, self.layout))
    }

    /// An RHS: like [`Builder::finish`], and the outputs' total length must equal the state
    /// length.
    pub fn finish_rhs(&self, outputs: &[NodeId]) -> Result<Function, Error> {
        let f = self.finish(outputs)?;
        if f.output_len() != self.layout.state {
            return Err(Error::Length {
                what: "RHS outputs".into(),
                expected: self.layout.state,
                found: f.output_len(),
            });
        }
        Ok(f)
    }

    fn check(&self, op: &'static str, id: NodeId) -> Result<(), ShapeError> {
        if id.index() < self.graph.len() {
            Ok(())
        } else {
            Err(ShapeError::UnknownNode {
                op,
                id: id.0,
                len: self.graph.len(),
            })
        }
    }

    fn intern(&mut self, op: Op, inputs: Vec<NodeId>, shape: Shape) -> NodeId {
        match self.graph.lookup(&op, &inputs) {
            Some(id) => id,
            None => self.graph.push(op, inputs, shape),
        }
    }

    fn const_of(&self, id: NodeId) -> Option<&Tensor> {
        self.graph.constant(id)
    }

    fn is_all(&self, id: NodeId, x: f64) -> bool {
        self.const_of(id)
            .is_some_and(|t| t.data().iter().all(|&d| d == x))
    }

    fn same_shape(&self, id: NodeId, shape: &Shape) -> bool {
        &self.graph.node(id).shape == shape
    }

    /// Add `op` applied to `inputs` (the general entry point; the named methods call it).
    pub fn op(&mut self, op: Op, inputs: &[NodeId]) -> Built {
        let name = op.name();
        for &i in inputs {
            self.check(name, i)?;
        }
        // Commutative operations take their operands in id order, so `a·b` and `b·a` are one
        // node (IEEE addition and multiplication commute, and broadcasting is symmetric).
        let sorted;
        let inputs = if matches!(op, Op::Binary(BinaryOp::Add | BinaryOp::Mul))
            && inputs.len() == 2
            && inputs[1] < inputs[0]
        {
            sorted = [inputs[1], inputs[0]];
            &sorted[..]
        } else {
            inputs
        };
        let shapes: Vec<&Shape> = inputs.iter().map(|i| &self.graph.node(*i).shape).collect();
        let shape = infer_shape(&op, &shapes)?;
        if let Op::Input {
            buffer,
            offset,
            shape: s,
        } = &op
        {
            let len = self.layout.len(*buffer);
            if offset.checked_add(s.len()).is_none_or(|end| end > len) {
                return Err(ShapeError::OutOfBounds {
                    buffer: *buffer,
                    offset: *offset,
                    shape: s.clone(),
                    len,
                });
            }
        }
        if let Some(id) = self.simplify(&op, inputs, &shape)? {
            return Ok(id);
        }
        if !op.is_leaf()
            && !inputs.is_empty()
            && inputs.iter().all(|i| self.const_of(*i).is_some())
            && self.spend_fold(&op, inputs, &shape)
        {
            let args: Vec<(&Shape, &[f64])> = inputs
                .iter()
                .map(|i| {
                    let t = self.const_of(*i).expect("checked constant");
                    (t.shape(), t.data())
                })
                .collect();
            let data = eval_detached(&op, &args, &shape);
            let t = Tensor::new(shape.clone(), data)?;
            return Ok(self.intern(Op::Const(t), Vec::new(), shape));
        }
        Ok(self.intern(op, inputs.to_vec(), shape))
    }

    /// Whether folding `op` fits the budget; if so, spends it.
    fn spend_fold(&mut self, op: &Op, inputs: &[NodeId], shape: &Shape) -> bool {
        let shapes: Vec<&Shape> = inputs.iter().map(|i| &self.graph.node(*i).shape).collect();
        let work = fold_cost(op, &shapes, shape);
        let bytes = (shape.len() as u64).saturating_mul(8);
        let small = work <= FoldBudget::SMALL_WORK && bytes <= FoldBudget::SMALL_BYTES;
        if !small && (work > self.budget.work || bytes > self.budget.bytes) {
            self.refused += 1;
            return false;
        }
        self.budget.work = self.budget.work.saturating_sub(work);
        self.budget.bytes = self.budget.bytes.saturating_sub(bytes);
        true
    }

    fn simplify(
        &mut self,
        op: &Op,
        inp: &[NodeId],
        shape: &Shape,
    ) -> Result<Option<NodeId>, ShapeError> {
        let keep = |b: &Self, i: usize| b.same_shape(inp[i], shape).then_some(inp[i]);
        Ok(match op {
            Op::Binary(BinaryOp::Add) => {
                if self.is_all(inp[1], 0.0) {
                    keep(self, 0)
                } else if self.is_all(inp[0], 0.0) {
                    keep(self, 1)
                } else {
                    None
                }
            }
            Op::Binary(BinaryOp::Sub) => {
                if self.is_all(inp[1], 0.0) {
                    keep(self, 0)
                } else if self.is_all(inp[0], 0.0) && self.same_shape(inp[1], shape) {
                    Some(self.neg(inp[1])?)
                } else {
                    None
                }
            }
            Op::Binary(BinaryOp::Mul) => {
                if self.is_all(inp[0], 0.0) {
                    keep(self, 0)
                } else if self.is_all(inp[1], 0.0) {
                    keep(self, 1)
                } else if self.is_all(inp[1], 1.0) {
                    keep(self, 0)
                } else if self.is_all(inp[0], 1.0) {
                    keep(self, 1)
                } else {
                    None
                }
            }
            Op::Binary(BinaryOp::Div) if self.is_all(inp[1], 1.0) => keep(self, 0),
            Op::Unary(UnaryOp::Neg) => {
                let n = self.graph.node(inp[0]);
                match n.op {
                    Op::Unary(UnaryOp::Neg) => Some(n.inputs[0]),
                    _ => None,
                }
            }
            Op::Unary(UnaryOp::Powi(1)) => Some(inp[0]),
            Op::Unary(UnaryOp::Powf(a)) if a.0 == 1.0 => Some(inp[0]),
            Op::Unary(UnaryOp::Powi(0)) => Some(self.full(shape.clone(), 1.0)?),
            Op::Transpose => {
                let n = self.graph.node(inp[0]);
                match n.op {
                    Op::Transpose => Some(n.inputs[0]),
                    _ => None,
                }
            }
            Op::Reshape(_) | Op::Index(_) | Op::Slice { .. }
                if self.view_of_input(op, inp[0]).is_some() =>
            {
                let (buffer, offset) = self.view_of_input(op, inp[0]).unwrap_or((Buffer::State, 0));
                Some(self.input(buffer, offset, shape.clone())?)
            }
            Op::Reshape(to) => {
                let n = self.graph.node(inp[0]);
                if &n.shape == to {
                    Some(inp[0])
                } else if let Op::Reshape(_) = n.op {
                    let src = n.inputs[0];
                    Some(self.reshape(src, to.clone())?)
                } else {
                    None
                }
            }
            Op::Broadcast(_) | Op::SumTo(_) => keep(self, 0),
            Op::Slice { .. } | Op::Pad { .. } => keep(self, 0),
            Op::Concat(_) if inp.len() == 1 => Some(inp[0]),
            _ => None,
        })
    }

    /// If `op` applied to `x` is a contiguous sub-view of an input read, the buffer and offset
    /// of that view: `reshape`, `index`, and `slice` when every axis before the sliced one has
    /// extent 1. (Such reads then hash-cons with direct reads of the same elements.)
    fn view_of_input(&self, op: &Op, x: NodeId) -> Option<(Buffer, usize)> {
        let n = self.graph.node(x);
        let Op::Input { buffer, offset, .. } = n.op else {
            return None;
        };
        let st = n.shape.strides();
        match op {
            Op::Reshape(_) => Some((buffer, offset)),
            Op::Index(idx) => Some((
                buffer,
                offset + idx.iter().zip(&st).map(|(i, s)| i * s).sum::<usize>(),
            )),
            Op::Slice { axis, start, .. } if n.shape.dims()[..*axis].iter().all(|&d| d == 1) => {
                Some((buffer, offset + start * st[*axis]))
            }
            _ => None,
        }
    }

    // ---- leaves ------------------------------------------------------------------------

    /// The time `t`.
    pub fn time(&mut self) -> NodeId {
        self.intern(Op::Time, Vec::new(), Shape::scalar())
    }

    /// A view of `shape` at `offset` of `buffer`.
    pub fn input(&mut self, buffer: Buffer, offset: usize, shape: impl Into<Shape>) -> Built {
        let shape = shape.into();
        self.op(
            Op::Input {
                buffer,
                offset,
                shape,
            },
            &[],
        )
    }

    /// A view of the state `u`.
    pub fn state(&mut self, offset: usize, shape: impl Into<Shape>) -> Built {
        self.input(Buffer::State, offset, shape)
    }

    /// A view of the parameters `θ`.
    pub fn param(&mut self, offset: usize, shape: impl Into<Shape>) -> Built {
        self.input(Buffer::Param, offset, shape)
    }

    /// A constant tensor.
    pub fn constant(&mut self, t: Tensor) -> Built {
        self.op(Op::Const(t), &[])
    }

    /// A constant from shape and row-major data.
    pub fn tensor(&mut self, shape: impl Into<Shape>, data: Vec<f64>) -> Built {
        let t = Tensor::new(shape, data)?;
        self.constant(t)
    }

    /// A scalar constant.
    pub fn scalar(&mut self, x: f64) -> NodeId {
        self.intern(Op::Const(Tensor::scalar(x)), Vec::new(), Shape::scalar())
    }

    /// A constant with every element `x`.
    pub fn full(&mut self, shape: impl Into<Shape>, x: f64) -> Built {
        let t = Tensor::filled(shape, x)?;
        self.constant(t)
    }

    /// Zeros of a shape.
    pub fn zeros(&mut self, shape: impl Into<Shape>) -> Built {
        self.full(shape, 0.0)
    }

    // ---- elementwise -------------------------------------------------------------------

    /// An elementwise unary operation.
    pub fn unary(&mut self, u: UnaryOp, x: NodeId) -> Built {
        self.op(Op::Unary(u), &[x])
    }

    /// An elementwise binary operation with broadcasting.
    pub fn binary(&mut self, b: BinaryOp, x: NodeId, y: NodeId) -> Built {
        self.op(Op::Binary(b), &[x, y])
    }

    /// `x + y`.
    pub fn add(&mut self, x: NodeId, y: NodeId) -> Built {
        self.binary(BinaryOp::Add, x, y)
    }
    /// `x − y`.
    pub fn sub(&mut self, x: NodeId, y: NodeId) -> Built {
        self.binary(BinaryOp::Sub, x, y)
    }
    /// `x · y` (elementwise).
    pub fn mul(&mut self, x: NodeId, y: NodeId) -> Built {
        self.binary(BinaryOp::Mul, x, y)
    }
    /// `x / y`.
    pub fn div(&mut self, x: NodeId, y: NodeId) -> Built {
        self.binary(BinaryOp::Div, x, y)
    }
    /// `c · x` for a constant `c`.
    pub fn scale(&mut self, x: NodeId, c: f64) -> Built {
        let c = self.scalar(c);
        self.mul(c, x)
    }

    /// `x^y`. A scalar constant exponent takes the fast path: [`UnaryOp::Powi`] for an integer
    /// value, [`UnaryOp::Powf`] otherwise; anything else is the general [`BinaryOp::Pow`].
    pub fn pow(&mut self, x: NodeId, y: NodeId) -> Built {
        self.check("pow", y)?;
        if let Some(t) = self.const_of(y)
            && t.shape().is_scalar()
        {
            let a = t.data()[0];
            return if a.fract() == 0.0 && a.abs() <= i32::MAX as f64 {
                self.powi(x, a as i32)
            } else {
                self.powf(x, a)
            };
        }
        self.binary(BinaryOp::Pow, x, y)
    }
    /// `xⁿ`.
    pub fn powi(&mut self, x: NodeId, n: i32) -> Built {
        self.unary(UnaryOp::Powi(n), x)
    }
    /// `xᵃ` for a constant real `a`.
    pub fn powf(&mut self, x: NodeId, a: f64) -> Built {
        self.unary(UnaryOp::Powf(Real(a)), x)
    }
    /// `x²`.
    pub fn square(&mut self, x: NodeId) -> Built {
        self.powi(x, 2)
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl Builder {
            $(
                $(#[$doc])*
                pub fn $name(&mut self, x: NodeId) -> Built {
                    self.unary(UnaryOp::$op, x)
                }
            )*
        }
    };
}

unary_methods! {
    /// `−x`.
    neg => Neg;
    /// `tanh x`.
    tanh => Tanh;
    /// `σ(x) = 1/(1 + e^{−x})`.
    sigmoid => Sigmoid;
    /// `max(x, 0)`.
    relu => Relu;
    /// `ln(1 + eˣ)`.
    softplus => Softplus;
    /// `x Φ(x)` (exact GELU).
    gelu => Gelu;
    /// `eˣ`.
    exp => Exp;
    /// `ln x`.
    log => Log;
    /// `sin x`.
    sin => Sin;
    /// `cos x`.
    cos => Cos;
    /// `√x`.
    sqrt => Sqrt;
    /// `|x|`.
    abs => Abs;
    /// Heaviside step (1 for `x > 0`, else 0).
    step => Step;
    /// `sign x`.
    sign => Sign;
    /// Standard normal CDF `Φ(x)`.
    norm_cdf => NormCdf;
}

impl Builder {
    // ---- linear algebra and structure --------------------------------------------------

    /// `a · b`, contracting the **last axis of `a` with the first axis of `b`** (NumPy's
    /// `tensordot(a, b, 1)`): shapes `[…, k] · [k, …] → [… , …]`. So `[m,k]·[k] → [m]`
    /// (matrix·vector), `[m,k]·[k,n] → [m,n]`, `[k]·[k,n] → [n]`, and a batch of row vectors
    /// `x : [b, k]` times `Wᵀ : [k, o]` gives `[b, o]` — the linear layer `x Wᵀ`.
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Built {
        self.op(Op::MatMul, &[a, b])
    }

    /// Transpose of a rank-2 tensor.
    pub fn transpose(&mut self, x: NodeId) -> Built {
        self.op(Op::Transpose, &[x])
    }

    /// `x[i₀, …]`: fixes the leading axes (a scalar when every axis is fixed).
    pub fn index(&mut self, x: NodeId, index: &[usize]) -> Built {
        self.op(Op::Index(index.to_vec()), &[x])
    }

    /// `x[…, start..end, …]` on `axis`.
    pub fn slice(&mut self, x: NodeId, axis: usize, start: usize, end: usize) -> Built {
        self.op(Op::Slice { axis, start, end }, &[x])
    }

    /// Zero padding on `axis`.
    pub fn pad(&mut self, x: NodeId, axis: usize, before: usize, after: usize) -> Built {
        self.op(
            Op::Pad {
                axis,
                before,
                after,
            },
            &[x],
        )
    }

    /// `x` placed at leading indices `index` of zeros of `shape`.
    pub fn scatter(&mut self, x: NodeId, index: &[usize], shape: impl Into<Shape>) -> Built {
        let shape = shape.into();
        self.op(
            Op::Scatter {
                index: index.to_vec(),
                shape,
            },
            &[x],
        )
    }

    /// Sum of all elements.
    pub fn sum(&mut self, x: NodeId) -> Built {
        self.op(Op::Sum(None), &[x])
    }

    /// Sum along `axis` (removed).
    pub fn sum_axis(&mut self, x: NodeId, axis: usize) -> Built {
        self.op(Op::Sum(Some(axis)), &[x])
    }

    /// Mean of all elements, built as `sum(x) · (1/n)`.
    pub fn mean(&mut self, x: NodeId) -> Built {
        let n = self.shape(x)?.len();
        let s = self.sum(x)?;
        self.scale(s, 1.0 / n as f64)
    }

    /// Mean along `axis`, built as `sum_axis(x) · (1/n)`.
    pub fn mean_axis(&mut self, x: NodeId, axis: usize) -> Built {
        let s = self.sum_axis(x, axis)?;
        let n = self.shape(x)?.dims()[axis];
        self.scale(s, 1.0 / n as f64)
    }

    /// Concatenation along `axis`.
    pub fn concat(&mut self, xs: &[NodeId], axis: usize) -> Built {
        self.op(Op::Concat(axis), xs)
    }

    /// Stack along a new axis `axis` (each operand reshaped with a unit axis, then
    /// concatenated): `stack([a, b], 0)` of scalars is the vector `[a, b]`.
    pub fn stack(&mut self, xs: &[NodeId], axis: usize) -> Built {
        let mut parts = Vec::with_capacity(xs.len());
        for &x in xs {
            let s = self.shape(x)?.clone();
            if axis > s.rank() {
                return Err(crate::shape::invalid(
                    "stack",
                    &s,
                    format!("no axis {axis}"),
                ));
            }
            let mut d = s.dims().to_vec();
            d.insert(axis, 1);
            parts.push(self.reshape(x, d)?);
        }
        if parts.is_empty() {
            return Err(ShapeError::NoOperands { op: "stack" });
        }
        self.concat(&parts, axis)
    }

    /// Same data, new shape.
    pub fn reshape(&mut self, x: NodeId, shape: impl Into<Shape>) -> Built {
        self.op(Op::Reshape(shape.into()), &[x])
    }

    /// `x` as a vector `[len]`.
    pub fn flatten(&mut self, x: NodeId) -> Built {
        let n = self.shape(x)?.len();
        self.reshape(x, [n])
    }

    /// Broadcast to `shape`.
    pub fn broadcast_to(&mut self, x: NodeId, shape: impl Into<Shape>) -> Built {
        self.op(Op::Broadcast(shape.into()), &[x])
    }

    /// Sum over broadcast axes down to `shape`.
    pub fn sum_to(&mut self, x: NodeId, shape: impl Into<Shape>) -> Built {
        self.op(Op::SumTo(shape.into()), &[x])
    }

    // ---- layers ------------------------------------------------------------------------

    /// A 2-D convolution of `x` (`[C,H,W]` or `[N,C,H,W]`) with `w` (`[Co,C,kh,kw]`) plus an
    /// optional bias `[Co]` (added per output channel).
    pub fn conv2d(
        &mut self,
        x: NodeId,
        w: NodeId,
        bias: Option<NodeId>,
        conv: ConvParams,
    ) -> Built {
        let y = self.op(Op::Conv2d(conv), &[x, w])?;
        match bias {
            Some(b) => self.channel_affine(y, None, Some(b)),
            None => Ok(y),
        }
    }

    /// Group normalization with `groups` groups and an optional per-channel affine map
    /// `γ x̂ + β` (`γ`, `β` of shape `[C]`).
    pub fn group_norm(
        &mut self,
        x: NodeId,
        groups: usize,
        eps: f64,
        weight: Option<NodeId>,
        bias: Option<NodeId>,
    ) -> Built {
        let y = self.op(
            Op::GroupNorm {
                groups,
                eps: Real(eps),
            },
            &[x],
        )?;
        self.channel_affine(y, weight, bias)
    }

    /// `y · γ + β` with `γ`, `β` of shape `[C]` broadcast over the channel axis of an image
    /// tensor `[C,H,W]` / `[N,C,H,W]`.
    pub fn channel_affine(
        &mut self,
        y: NodeId,
        weight: Option<NodeId>,
        bias: Option<NodeId>,
    ) -> Built {
        let ys = self.shape(y)?.clone();
        let Some((_, c, _, _)) = crate::ops::image_dims(&ys) else {
            return Err(crate::shape::invalid(
                "channel_affine",
                &ys,
                "needs [C, H, W] or [N, C, H, W]",
            ));
        };
        let mut y = y;
        for (v, name) in [(weight, "weight"), (bias, "bias")] {
            let Some(v) = v else { continue };
            let vs = self.shape(v)?.clone();
            if vs.dims() != [c] {
                return Err(crate::shape::incompatible(
                    "channel_affine",
                    &ys,
                    ",",
                    &vs,
                    format!("{name} must have shape [{c}]"),
                ));
            }
            let col = self.reshape(v, [c, 1, 1])?;
            y = if name == "weight" {
                self.mul(y, col)?
            } else {
                self.add(y, col)?
            };
        }
        Ok(y)
    }
}
