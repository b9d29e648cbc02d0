//! The reference interpreter: evaluates a [`Function`] on flat `f64` buffers.
//!
//! [`Interpreter::new`] lays every live node out in one scratch buffer (a node's operands always
//! precede it, so each step borrows its operands from the part of the buffer before its own
//! slot) and copies constants once; [`Interpreter::eval`] then runs the schedule without
//! allocating. The kernels here are also used for constant folding when a node is built.

use crate::error::Error;
use crate::function::Function;
use crate::graph::{BinaryOp, Buffer, Op, UnaryOp};
use crate::interp_layers;
use crate::shape::Shape;
use crate::special::norm_cdf;
use std::ops::Range;

/// The operands of one kernel call: ranges into a source buffer, with their shapes.
pub(crate) struct Args<'a> {
    pub(crate) src: &'a [f64],
    pub(crate) ranges: &'a [Range<usize>],
    pub(crate) shapes: &'a [Shape],
}

impl Args<'_> {
    pub(crate) fn get(&self, i: usize) -> &[f64] {
        &self.src[self.ranges[i].clone()]
    }
    pub(crate) fn shape(&self, i: usize) -> &Shape {
        &self.shapes[i]
    }
}

/// `s` padded on the left with ones to rank 4.
fn pad4(s: &Shape) -> [usize; 4] {
    let mut d = [1; 4];
    let r = s.rank();
    d[4 - r..].copy_from_slice(s.dims());
    d
}

/// Strides of `s` in the rank-4 coordinates of `out` (`s` broadcasts to `out`): 0 on axes
/// where `s` has extent 1.
fn bstrides4(s: &Shape, out: &Shape) -> [usize; 4] {
    let d = pad4(s);
    let o = pad4(out);
    let mut st = [0; 4];
    let mut acc = 1;
    for i in (0..4).rev() {
        st[i] = if d[i] == 1 && o[i] != 1 { 0 } else { acc };
        acc *= d[i];
    }
    st
}

/// Visit every element of `out` (padded to rank 4) with the offsets into two broadcast operands.
fn for_each_broadcast(out: &Shape, a: &Shape, b: &Shape, mut f: impl FnMut(usize, usize, usize)) {
    let d = pad4(out);
    let (sa, sb) = (bstrides4(a, out), bstrides4(b, out));
    let mut o = 0;
    for i0 in 0..d[0] {
        for i1 in 0..d[1] {
            for i2 in 0..d[2] {
                let ba = i0 * sa[0] + i1 * sa[1] + i2 * sa[2];
                let bb = i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
                for i3 in 0..d[3] {
                    f(o, ba + i3 * sa[3], bb + i3 * sb[3]);
                    o += 1;
                }
            }
        }
    }
}

fn binary_fn(op: BinaryOp) -> fn(f64, f64) -> f64 {
    match op {
        BinaryOp::Add => |a, b| a + b,
        BinaryOp::Sub => |a, b| a - b,
        BinaryOp::Mul => |a, b| a * b,
        BinaryOp::Div => |a, b| a / b,
        BinaryOp::Pow => f64::powf,
    }
}

/// The logistic function, evaluated without overflow: `1/(1+e^{−x})` for `x ≥ 0`,
/// `eˣ/(1+eˣ)` otherwise.
///
/// # References
///
/// M. Mächler, "Accurately computing log(1 − exp(−|a|))", Rmpfr vignette, 2012 (§3, the
/// logistic and log1pexp functions).
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `softplus(x) = ln(1 + eˣ) = max(x, 0) + ln(1 + e^{−|x|})` (no overflow for large `x`, no
/// loss of the tail for very negative `x`).
///
/// # References
///
/// M. Mächler, "Accurately computing log(1 − exp(−|a|))", Rmpfr vignette, 2012 (log1pexp).
pub(crate) fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn unary(op: UnaryOp, x: &[f64], out: &mut [f64]) {
    fn map(x: &[f64], out: &mut [f64], f: impl Fn(f64) -> f64) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = f(v);
        }
    }
    match op {
        UnaryOp::Neg => map(x, out, |v| -v),
        UnaryOp::Tanh => map(x, out, crate::special::tanh),
        UnaryOp::Sigmoid => map(x, out, sigmoid),
        UnaryOp::Relu => map(x, out, |v| if v > 0.0 { v } else { 0.0 }),
        UnaryOp::Softplus => map(x, out, softplus),
        UnaryOp::Gelu => map(x, out, |v| v * norm_cdf(v)),
        UnaryOp::Exp => map(x, out, f64::exp),
        UnaryOp::Log => map(x, out, f64::ln),
        UnaryOp::Sin => map(x, out, f64::sin),
        UnaryOp::Cos => map(x, out, f64::cos),
        UnaryOp::Sqrt => map(x, out, f64::sqrt),
        UnaryOp::Abs => map(x, out, f64::abs),
        UnaryOp::Step => map(x, out, |v| if v > 0.0 { 1.0 } else { 0.0 }),
        UnaryOp::Sign => map(x, out, |v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        }),
        UnaryOp::NormCdf => map(x, out, norm_cdf),
        UnaryOp::Powi(n) => map(x, out, |v| v.powi(n)),
        UnaryOp::Powf(a) => map(x, out, |v| v.powf(a.0)),
    }
}

/// `(outer, extent, inner)` around `axis`.
fn split_axis(s: &Shape, axis: usize) -> (usize, usize, usize) {
    let d = s.dims();
    (
        d[..axis].iter().product(),
        d[axis],
        d[axis + 1..].iter().product(),
    )
}

/// Evaluate a non-leaf operation into `out` (overwritten).
///
/// `MatMul` views `a` as `[M, K]` and `b` as `[K, N]` and computes `C = A B` by the
/// row-oriented `i, k, j` loop (`C_i· += a_ik B_k·`, contiguous inner loop; Golub and Van Loan,
/// *Matrix Computations*, 4th ed., §1.1). Broadcasting follows NumPy's trailing rule through
/// rank-4 strides that are 0 on broadcast axes; `SumTo` accumulates through the same strides.
pub(crate) fn eval_op(op: &Op, args: &Args<'_>, shape: &Shape, out: &mut [f64]) {
    match op {
        Op::Time | Op::Input { .. } => {}
        Op::Const(t) => out.copy_from_slice(t.data()),
        Op::Unary(u) => unary(*u, args.get(0), out),
        Op::Binary(b) => {
            let f = binary_fn(*b);
            let (x, y) = (args.get(0), args.get(1));
            if x.len() == out.len() && y.len() == out.len() {
                for i in 0..out.len() {
                    out[i] = f(x[i], y[i]);
                }
            } else if y.len() == 1 && x.len() == out.len() {
                for i in 0..out.len() {
                    out[i] = f(x[i], y[0]);
                }
            } else if x.len() == 1 && y.len() == out.len() {
                for i in 0..out.len() {
                    out[i] = f(x[0], y[i]);
                }
            } else {
                for_each_broadcast(shape, args.shape(0), args.shape(1), |o, i, j| {
                    out[o] = f(x[i], y[j])
                });
            }
        }
        Op::MatMul => {
            let (a, b) = (args.get(0), args.get(1));
            let k = args.shape(1).dims()[0];
            let m = a.len() / k.max(1);
            let n = b.len() / k.max(1);
            out.fill(0.0);
            for i in 0..m {
                let row = &mut out[i * n..(i + 1) * n];
                for l in 0..k {
                    let ail = a[i * k + l];
                    let brow = &b[l * n..(l + 1) * n];
                    for j in 0..n {
                        row[j] += ail * brow[j];
                    }
                }
            }
        }
        Op::Transpose => {
            let x = args.get(0);
            let (m, n) = (args.shape(0).dims()[0], args.shape(0).dims()[1]);
            for i in 0..m {
                for j in 0..n {
                    out[j * m + i] = x[i * n + j];
                }
            }
        }
        Op::Index(idx) => {
            let st = args.shape(0).strides();
            let off: usize = idx.iter().zip(&st).map(|(i, s)| i * s).sum();
            out.copy_from_slice(&args.get(0)[off..off + out.len()]);
        }
        Op::Scatter { index, shape } => {
            let st = shape.strides();
            let off: usize = index.iter().zip(&st).map(|(i, s)| i * s).sum();
            out.fill(0.0);
            let x = args.get(0);
            out[off..off + x.len()].copy_from_slice(x);
        }
        Op::Slice { axis, start, end } => {
            let (outer, d, inner) = split_axis(args.shape(0), *axis);
            let x = args.get(0);
            let w = (end - start) * inner;
            for o in 0..outer {
                let src = (o * d + start) * inner;
                out[o * w..(o + 1) * w].copy_from_slice(&x[src..src + w]);
            }
        }
        Op::Pad { axis, before, .. } => {
            let (outer, d, inner) = split_axis(args.shape(0), *axis);
            let dout = shape.dims()[*axis];
            let x = args.get(0);
            out.fill(0.0);
            let w = d * inner;
            for o in 0..outer {
                let dst = (o * dout + before) * inner;
                out[dst..dst + w].copy_from_slice(&x[o * w..(o + 1) * w]);
            }
        }
        Op::Sum(None) => out[0] = args.get(0).iter().sum(),
        Op::Sum(Some(axis)) => {
            let (outer, d, inner) = split_axis(args.shape(0), *axis);
            let x = args.get(0);
            out.fill(0.0);
            for o in 0..outer {
                for j in 0..d {
                    let src = &x[(o * d + j) * inner..(o * d + j + 1) * inner];
                    for (acc, v) in out[o * inner..(o + 1) * inner].iter_mut().zip(src) {
                        *acc += v;
                    }
                }
            }
        }
        Op::Concat(axis) => {
            let (outer, dout, inner) = split_axis(shape, *axis);
            let mut at = 0;
            for k in 0..args.ranges.len() {
                let dk = args.shape(k).dims()[*axis];
                let x = args.get(k);
                let w = dk * inner;
                for o in 0..outer {
                    let dst = (o * dout + at) * inner;
                    out[dst..dst + w].copy_from_slice(&x[o * w..(o + 1) * w]);
                }
                at += dk;
            }
        }
        Op::Reshape(_) => out.copy_from_slice(args.get(0)),
        Op::Broadcast(_) => {
            let x = args.get(0);
            for_each_broadcast(shape, args.shape(0), args.shape(0), |o, i, _| out[o] = x[i]);
        }
        Op::SumTo(to) => {
            let x = args.get(0);
            out.fill(0.0);
            for_each_broadcast(args.shape(0), to, to, |i, o, _| out[o] += x[i]);
        }
        Op::Conv2d(c) => interp_layers::conv2d(
            args.get(0),
            args.shape(0),
            args.get(1),
            args.shape(1),
            *c,
            out,
            shape,
        ),
        Op::Conv2dBackwardInput { conv, input } => interp_layers::conv2d_backward_input(
            args.get(0),
            args.get(1),
            args.shape(1),
            *conv,
            out,
            input,
        ),
        Op::Conv2dBackwardWeight { conv, kernel } => interp_layers::conv2d_backward_weight(
            args.get(0),
            args.shape(0),
            args.get(1),
            *conv,
            out,
            kernel,
        ),
        Op::GroupNorm { groups, eps } => {
            interp_layers::group_norm(args.get(0), args.shape(0), *groups, eps.0, None, out)
        }
        Op::GroupNormBackward { groups, eps } => interp_layers::group_norm(
            args.get(0),
            args.shape(0),
            *groups,
            eps.0,
            Some(args.get(1)),
            out,
        ),
        // `eval_buffers` refuses functions with opaque layers before it runs any node.
        Op::Opaque { .. } | Op::OpaqueJvp { .. } | Op::OpaqueVjp { .. } => out.fill(f64::NAN),
    }
}

/// Evaluate `op` on owned operand tensors (used for constant folding).
pub(crate) fn eval_detached(op: &Op, inputs: &[(&Shape, &[f64])], shape: &Shape) -> Vec<f64> {
    let mut src = Vec::new();
    let mut ranges = Vec::new();
    let mut shapes = Vec::new();
    for (s, d) in inputs {
        ranges.push(src.len()..src.len() + d.len());
        src.extend_from_slice(d);
        shapes.push((*s).clone());
    }
    let mut out = vec![0.0; shape.len()];
    let args = Args {
        src: &src,
        ranges: &ranges,
        shapes: &shapes,
    };
    eval_op(op, &args, shape, &mut out);
    out
}

#[derive(Debug, Clone)]
struct Step {
    node: usize,
    out: Range<usize>,
    args: Vec<Range<usize>>,
    shapes: Vec<Shape>,
}

/// Evaluates a [`Function`]; owns its schedule and scratch, so [`Interpreter::eval`] does not
/// allocate.
#[derive(Debug, Clone)]
pub struct Interpreter {
    func: Function,
    steps: Vec<Step>,
    slots: Vec<Range<usize>>,
    scratch: Vec<f64>,
    /// The first opaque-layer call `(layer, op)`, if any: such functions are refused.
    opaque: Option<(usize, &'static str)>,
}

impl Interpreter {
    /// Plan the evaluation of `func` (a copy is kept).
    pub fn new(func: &Function) -> Self {
        let func = func.clone();
        let nodes = func.graph().nodes();
        let mut slots = Vec::with_capacity(nodes.len());
        let mut at = 0;
        for n in nodes {
            slots.push(at..at + n.shape.len());
            at += n.shape.len();
        }
        let mut scratch = vec![0.0; at];
        let mut steps = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            if let Op::Const(t) = &n.op {
                scratch[slots[i].clone()].copy_from_slice(t.data());
                continue;
            }
            steps.push(Step {
                node: i,
                out: slots[i].clone(),
                args: n.inputs.iter().map(|x| slots[x.index()].clone()).collect(),
                shapes: n
                    .inputs
                    .iter()
                    .map(|x| nodes[x.index()].shape.clone())
                    .collect(),
            });
        }
        let opaque = nodes
            .iter()
            .find_map(|n| n.op.opaque_layer().map(|k| (k, n.op.name())));
        Interpreter {
            func,
            steps,
            slots,
            scratch,
            opaque,
        }
    }

    /// The function interpreted.
    pub fn function(&self) -> &Function {
        &self.func
    }

    /// Total length of the flattened outputs.
    pub fn output_len(&self) -> usize {
        self.func.output_len()
    }

    /// Evaluate with `extra` bound to whichever of the tangent or cotangent buffers the layout
    /// declares (pass `&[]` when it declares neither), writing the outputs, flattened and
    /// concatenated, into `out`.
    pub fn eval(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        extra: &[f64],
        out: &mut [f64],
    ) -> Result<(), Error> {
        let l = *self.func.layout();
        let (v, w): (&[f64], &[f64]) = if l.cotangent > 0 && l.tangent == 0 {
            (&[], extra)
        } else {
            (extra, &[])
        };
        self.eval_buffers(t, [u, p, v, w], out)
    }

    /// Evaluate with all four buffers `[u, θ, v, w]` given explicitly.
    pub fn eval_buffers(
        &mut self,
        t: f64,
        bufs: [&[f64]; 4],
        out: &mut [f64],
    ) -> Result<(), Error> {
        if let Some((layer, op)) = self.opaque {
            return Err(Error::OpaqueLayer { layer, op });
        }
        let l = *self.func.layout();
        let names = [
            Buffer::State,
            Buffer::Param,
            Buffer::Tangent,
            Buffer::Cotangent,
        ];
        let lens = [l.state, l.param, l.tangent, l.cotangent];
        for k in 0..4 {
            if bufs[k].len() != lens[k] {
                return Err(Error::Length {
                    what: names[k].to_string(),
                    expected: lens[k],
                    found: bufs[k].len(),
                });
            }
        }
        if out.len() != self.func.output_len() {
            return Err(Error::Length {
                what: "output".into(),
                expected: self.func.output_len(),
                found: out.len(),
            });
        }
        let nodes = self.func.graph().nodes();
        for step in &self.steps {
            let node = &nodes[step.node];
            match &node.op {
                Op::Time => self.scratch[step.out.start] = t,
                Op::Input { buffer, offset, .. } => {
                    let src = match buffer {
                        Buffer::State => bufs[0],
                        Buffer::Param => bufs[1],
                        Buffer::Tangent => bufs[2],
                        Buffer::Cotangent => bufs[3],
                    };
                    let len = step.out.len();
                    self.scratch[step.out.clone()].copy_from_slice(&src[*offset..offset + len]);
                }
                op => {
                    let (before, after) = self.scratch.split_at_mut(step.out.start);
                    let args = Args {
                        src: before,
                        ranges: &step.args,
                        shapes: &step.shapes,
                    };
                    eval_op(op, &args, &node.shape, &mut after[..step.out.len()]);
                }
            }
        }
        let mut at = 0;
        for o in self.func.outputs() {
            let r = self.slots[o.index()].clone();
            out[at..at + r.len()].copy_from_slice(&self.scratch[r.clone()]);
            at += r.len();
        }
        Ok(())
    }

    /// The value of node `id` from the last evaluation (for debugging and tests).
    pub fn value(&self, id: crate::NodeId) -> Option<&[f64]> {
        self.slots.get(id.index()).map(|r| &self.scratch[r.clone()])
    }
}
