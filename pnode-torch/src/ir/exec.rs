//! [`IrExecutor`]: a pnode-ir [`Function`] evaluated with libtorch operations.
//!
//! The function's nodes are visited in arena (topological) order and each becomes one or a few
//! tch operations on f64 tensors, so libtorch's autograd (reverse mode) and its forward-mode AD
//! see an ordinary tensor program. Every operation reproduces the semantics of
//! [`pnode_ir::Interpreter`], the reference:
//!
//! * elementwise ops broadcast by NumPy's trailing rule, as torch does; `matmul` contracts the
//!   last axis of `a` with the first of `b` (`tensordot(a, b, 1)`: both are reshaped to
//!   matrices for one `mm`);
//! * `softplus(x) = logaddexp(x, 0) = max(x, 0) + ln(1 + e^{−|x|})` (the interpreter's
//!   overflow-free form; torch's `softplus` switches to `x` above 20, which is not exact in
//!   f64), derivative `σ(x)`;
//! * `Φ(x) = ½ erfc(−x/√2)` and `gelu(x) = x Φ(x)` (the exact erf GELU in its erfc form, which
//!   keeps the relative accuracy of the negative tail that `½(1 + erf)` loses);
//! * `step(x) = [x > 0]`, `sign`, `relu` with `relu'(0) = step(0) = 0`, `|x|' = sign x`;
//! * `conv2d`: torch's `conv2d` (cross-correlation, weight `[Co, Ci, kh, kw]`, square stride,
//!   symmetric zero padding, no dilation), a `[C, H, W]` input batched as `[1, C, H, W]`; its
//!   input adjoint is `conv_transpose2d` with the output padding that restores `H × W`; its
//!   weight adjoint `w̄[o,c,a,b] = Σ_{n,i,j} ḡ[n,o,i,j] x[n, c, i s + a − p, j s + b − p]` is the
//!   convolution of `x` (channels as the batch) with `ḡ` (samples as the channels) at dilation
//!   `s`, cropped to `kh × kw`;
//! * `group_norm`: torch's `group_norm` without affine part (biased group variance, `ε` inside
//!   the square root); its Jacobian product `J(x) g = (g − mean g − x̂ mean(x̂ g)) / s` is
//!   formed from primitives (so it can be differentiated again).
//!
//! # References
//!
//! V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
//! arXiv:1603.07285 (2016) (transposed convolutions, the weight gradient as a dilated
//! convolution); Y. Wu and K. He, "Group Normalization", ECCV 2018.

use pnode_ir::{BinaryOp, Buffer, ConvParams, Function, Op, Shape, UnaryOp};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// One node of the plan: its operation and operands (arena indices), its shape, and the last
/// node that reads it (so its tensor can be released early when autograd does not keep it).
struct Step {
    op: Op,
    inputs: Vec<usize>,
    shape: Vec<i64>,
    last_use: usize,
}

/// A pnode-ir [`Function`] as a program of tch operations on one device (f64).
///
/// [`IrExecutor::eval`] takes the four flat input buffers `u, θ, v, w` as 1-D tensors (a
/// buffer the function does not read may be `None`); they may require gradients or be dual
/// tensors of forward-mode AD, and the outputs then carry the derivatives. Constants are
/// uploaded once, at construction.
pub struct IrExecutor {
    steps: Vec<Step>,
    consts: Vec<Option<Tensor>>,
    outputs: Vec<usize>,
    output_len: usize,
    lens: [usize; 4],
    device: Device,
}

impl std::fmt::Debug for IrExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrExecutor")
            .field("nodes", &self.steps.len())
            .field("outputs", &self.outputs)
            .field("lens", &self.lens)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The dims of a shape as i64 (tch's `IntList`).
fn dims(s: &Shape) -> Vec<i64> {
    s.dims().iter().map(|&d| d as i64).collect()
}

/// `d` as i64 for tch (every IR extent and offset fits: shapes are bounded far below 2⁶³).
fn i(d: usize) -> i64 {
    d as i64
}

fn buffer_index(b: Buffer) -> usize {
    match b {
        Buffer::State => 0,
        Buffer::Param => 1,
        Buffer::Tangent => 2,
        Buffer::Cotangent => 3,
    }
}

impl IrExecutor {
    /// Plans `func` on `device`: validates every node's operands and uploads its constants.
    pub fn new(func: &Function, device: Device) -> Result<Self> {
        let nodes = func.graph().nodes();
        let mut steps = Vec::with_capacity(nodes.len());
        let mut consts = Vec::with_capacity(nodes.len());
        for (k, n) in nodes.iter().enumerate() {
            let inputs: Vec<usize> = n.inputs.iter().map(|x| x.index()).collect();
            if let Some(bad) = inputs.iter().find(|&&x| x >= k) {
                return Err(Error::Usage(format!(
                    "IR node %{k} reads %{bad}, which does not precede it"
                )));
            }
            if let Some(layer) = n.op.opaque_layer() {
                return Err(Error::Usage(format!(
                    "IR node %{k} calls opaque layer {layer} ({}), which only \
                     #[neural_ode]-generated code can run",
                    n.op.name()
                )));
            }
            consts.push(match &n.op {
                Op::Const(c) => Some(
                    Tensor::f_from_slice(c.data())?
                        .f_reshape(dims(c.shape()))?
                        .f_to_device(device)?,
                ),
                _ => None,
            });
            steps.push(Step {
                op: n.op.clone(),
                inputs,
                shape: dims(&n.shape),
                last_use: k,
            });
        }
        let outputs: Vec<usize> = func.outputs().iter().map(|o| o.index()).collect();
        for k in 0..steps.len() {
            for j in steps[k].inputs.clone() {
                steps[j].last_use = k;
            }
        }
        for &o in &outputs {
            steps[o].last_use = usize::MAX;
        }
        let l = func.layout();
        Ok(Self {
            steps,
            consts,
            outputs,
            output_len: func.output_len(),
            lens: [l.state, l.param, l.tangent, l.cotangent],
            device,
        })
    }

    /// The device the operations run on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Total number of output elements.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// The outputs at `(t, u, θ, v, w)`, flattened and concatenated into one 1-D tensor.
    ///
    /// `bufs` are `[u, θ, v, w]`, 1-D f64 tensors on this executor's device of the lengths
    /// the function's layout declares (`None` only for a buffer of length 0 or one the
    /// function never reads).
    pub fn eval(&self, t: f64, bufs: [Option<&Tensor>; 4]) -> Result<Tensor> {
        const NAMES: [&str; 4] = ["state", "parameter", "tangent", "cotangent"];
        for (k, b) in bufs.iter().enumerate() {
            if let Some(b) = b {
                let n = b.numel();
                if b.dim() != 1 || n != self.lens[k] {
                    return Err(Error::Mismatch {
                        what: format!("{} buffer", NAMES[k]),
                        expected: format!("[{}]", self.lens[k]),
                        found: format!("{:?}", b.size()),
                    });
                }
            }
        }
        let mut vals: Vec<Option<Tensor>> = Vec::with_capacity(self.steps.len());
        for (k, step) in self.steps.iter().enumerate() {
            let v = match &step.op {
                Op::Time => Tensor::f_from_slice(&[t])?
                    .f_reshape([0i64; 0])?
                    .f_to_device(self.device)?,
                Op::Input {
                    buffer,
                    offset,
                    shape,
                } => {
                    let b = bufs[buffer_index(*buffer)].ok_or_else(|| {
                        Error::Usage(format!(
                            "the function reads the {buffer} buffer, which was not given"
                        ))
                    })?;
                    b.f_narrow(0, i(*offset), i(shape.len()))?
                        .f_reshape(dims(shape))?
                }
                Op::Const(_) => self.consts[k]
                    .as_ref()
                    .map(Tensor::shallow_clone)
                    .ok_or_else(|| Error::Usage(format!("constant %{k} was not uploaded")))?,
                op => {
                    let args: Vec<&Tensor> = step
                        .inputs
                        .iter()
                        .map(|&j| {
                            vals[j].as_ref().ok_or_else(|| {
                                Error::Usage(format!("IR node %{j} was released before %{k}"))
                            })
                        })
                        .collect::<Result<_>>()?;
                    apply(op, &args, &step.shape, self.device)?
                }
            };
            if v.size() != step.shape {
                return Err(Error::Mismatch {
                    what: format!("shape of IR node %{k} ({})", step.op.name()),
                    expected: format!("{:?}", step.shape),
                    found: format!("{:?}", v.size()),
                });
            }
            vals.push(Some(v));
            for &j in &step.inputs {
                if self.steps[j].last_use == k {
                    vals[j] = None;
                }
            }
        }
        let parts: Vec<Tensor> = self
            .outputs
            .iter()
            .map(|&o| {
                vals[o]
                    .as_ref()
                    .ok_or_else(|| Error::Usage(format!("output %{o} was released")))
                    .and_then(|v| Ok(v.f_reshape([-1i64])?))
            })
            .collect::<Result<_>>()?;
        if parts.is_empty() {
            return Ok(Tensor::f_zeros([0i64], (Kind::Double, self.device))?);
        }
        Ok(Tensor::f_cat(&parts, 0)?)
    }
}

/// `x` with a batch axis of 1 in front if it is a `[C, H, W]` image.
fn batched(x: &Tensor) -> Result<Tensor> {
    Ok(if x.dim() == 3 {
        x.f_unsqueeze(0)?
    } else {
        x.shallow_clone()
    })
}

/// `y` reshaped to the IR's result shape (drops the batch axis [`batched`] added).
fn unbatched(y: Tensor, shape: &[i64]) -> Result<Tensor> {
    Ok(if y.size() == shape {
        y
    } else {
        y.f_reshape(shape)?
    })
}

/// One non-leaf IR operation on tch tensors (result of shape `shape`).
fn apply(op: &Op, a: &[&Tensor], shape: &[i64], device: Device) -> Result<Tensor> {
    let x = a[0];
    Ok(match op {
        Op::Time | Op::Input { .. } | Op::Const(_) => {
            return Err(Error::Usage(format!("`{}` is a leaf", op.name())));
        }
        Op::Unary(u) => unary(*u, x, device)?,
        Op::Binary(b) => {
            let y = a[1];
            match b {
                BinaryOp::Add => x.f_add(y)?,
                BinaryOp::Sub => x.f_sub(y)?,
                BinaryOp::Mul => x.f_mul(y)?,
                BinaryOp::Div => x.f_div(y)?,
                BinaryOp::Pow => x.f_pow(y)?,
            }
        }
        Op::MatMul => {
            let y = a[1];
            let k = *y.size().first().unwrap_or(&1);
            x.f_reshape([-1, k])?
                .f_mm(&y.f_reshape([k, -1])?)?
                .f_reshape(shape)?
        }
        Op::Transpose => x.f_transpose(0, 1)?,
        Op::Index(idx) => {
            let (off, len) = block(&x.size(), idx);
            x.f_reshape([-1i64])?
                .f_narrow(0, off, len)?
                .f_reshape(shape)?
        }
        Op::Scatter { index, shape: to } => {
            let total = i(to.len());
            let (off, len) = block(&dims(to), index);
            x.f_reshape([-1i64])?
                .f_constant_pad_nd([off, total - off - len])?
                .f_reshape(shape)?
        }
        Op::Slice { axis, start, end } => x.f_narrow(i(*axis), i(*start), i(end - start))?,
        Op::Pad {
            axis,
            before,
            after,
        } => {
            // constant_pad_nd lists (before, after) pairs from the last axis backwards.
            let rank = x.dim();
            let mut pad = vec![0i64; 2 * (rank - axis)];
            pad[2 * (rank - 1 - axis)] = i(*before);
            pad[2 * (rank - 1 - axis) + 1] = i(*after);
            x.f_constant_pad_nd(pad)?
        }
        Op::Sum(None) => x.f_sum(Kind::Double)?,
        Op::Sum(Some(axis)) => x.f_sum_dim_intlist([i(*axis)].as_slice(), false, Kind::Double)?,
        Op::Concat(axis) => Tensor::f_cat(a, i(*axis))?,
        Op::Reshape(_) => x.f_reshape(shape)?,
        Op::Broadcast(_) => x.f_expand(shape, false)?,
        Op::SumTo(_) => sum_to(x, shape)?,
        Op::Conv2d(c) => {
            let y = batched(x)?.f_conv2d(a[1], None::<Tensor>, stride(c), padding(c), [1, 1], 1)?;
            unbatched(y, shape)?
        }
        Op::Conv2dBackwardInput { conv, input } => conv_backward_input(x, a[1], *conv, input)?,
        Op::Conv2dBackwardWeight { conv, kernel } => conv_backward_weight(x, a[1], *conv, kernel)?,
        Op::GroupNorm { groups, eps } => {
            let y = batched(x)?.f_group_norm(i(*groups), None::<Tensor>, None, eps.0, false)?;
            unbatched(y, shape)?
        }
        Op::GroupNormBackward { groups, eps } => group_norm_jvp(x, a[1], *groups, eps.0, shape)?,
        // Refused by `IrExecutor::new`.
        Op::Opaque { .. } | Op::OpaqueJvp { .. } | Op::OpaqueVjp { .. } => {
            return Err(Error::Usage(format!(
                "{}: opaque layers run only in #[neural_ode]-generated code",
                op.name()
            )));
        }
    })
}

fn stride(c: &ConvParams) -> [i64; 2] {
    [i(c.stride), i(c.stride)]
}

fn padding(c: &ConvParams) -> [i64; 2] {
    [i(c.padding), i(c.padding)]
}

/// Offset and length of the contiguous block `x[idx…]` of a row-major tensor of dims `d`.
fn block(d: &[i64], idx: &[usize]) -> (i64, i64) {
    let mut stride = d.iter().product::<i64>();
    let mut off = 0;
    for (k, &j) in idx.iter().enumerate() {
        stride /= d[k].max(1);
        off += i(j) * stride;
    }
    (off, stride)
}

/// `Σ` over broadcast axes down to `to` (the adjoint of a broadcast): torch's `sum_to_size`,
/// or a full sum for a scalar target.
fn sum_to(x: &Tensor, to: &[i64]) -> Result<Tensor> {
    if to.is_empty() {
        return Ok(x.f_sum(Kind::Double)?);
    }
    let r = x.f_sum_to_size(to)?;
    Ok(if r.size() == to { r } else { r.f_reshape(to)? })
}

/// `x̄ = Σ ḡ w`, the adjoint of a convolution in its input: `conv_transpose2d` of `ḡ` with
/// the convolution's own weight, with the output padding `(H + 2p − kh) mod s` that gives back
/// the input extent `H` (Dumoulin and Visin 2016, §4.6).
fn conv_backward_input(g: &Tensor, w: &Tensor, c: ConvParams, input: &Shape) -> Result<Tensor> {
    let xd = dims(input);
    let wd = w.size();
    let (h, wi) = (xd[xd.len() - 2], xd[xd.len() - 1]);
    let (kh, kw) = (wd[2], wd[3]);
    let (s, p) = (i(c.stride), i(c.padding));
    let out_pad = [(h + 2 * p - kh) % s, (wi + 2 * p - kw) % s];
    let y =
        batched(g)?.f_conv_transpose2d(w, None::<Tensor>, [s, s], [p, p], out_pad, 1, [1, 1])?;
    unbatched(y, &xd)
}

/// `w̄[o,c,a,b] = Σ_{n,i,j} ḡ[n,o,i,j] x[n, c, i s + a − p, j s + b − p]`: a convolution of the
/// input with samples and channels swapped (`[C, N, H, W]`) by the cotangent as the kernel
/// (`[Co, N, Ho, Wo]`) at dilation `s`, padding `p`, stride 1; its `[C, Co, ·, ·]` result is
/// cropped to the kernel extent and transposed to `[Co, C, kh, kw]`.
fn conv_backward_weight(x: &Tensor, g: &Tensor, c: ConvParams, kernel: &Shape) -> Result<Tensor> {
    let kd = dims(kernel);
    let (s, p) = (i(c.stride), i(c.padding));
    let xt = batched(x)?.f_transpose(0, 1)?;
    let gt = batched(g)?.f_transpose(0, 1)?;
    let full = xt.f_conv2d(&gt, None::<Tensor>, [1, 1], [p, p], [s, s], 1)?;
    Ok(full
        .f_narrow(2, 0, kd[2])?
        .f_narrow(3, 0, kd[3])?
        .f_transpose(0, 1)?
        .f_contiguous()?)
}

/// `J(x) g` for the group-norm Jacobian at `x`: per sample and group of `m` values,
/// `x̂ = (x − μ)/s`, `s = √(σ² + ε)`, `J g = (g − mean g − x̂ · mean(x̂ g)) / s` (Wu and He
/// 2018; the BatchNorm backward formula of Ioffe and Szegedy 2015). `J` is symmetric, so this
/// is both the JVP and the VJP of the normalization.
fn group_norm_jvp(
    x: &Tensor,
    g: &Tensor,
    groups: usize,
    eps: f64,
    shape: &[i64],
) -> Result<Tensor> {
    let xb = batched(x)?;
    let n = xb.size()[0];
    let rows = [n * i(groups), -1];
    let xg = xb.f_reshape(rows)?;
    let gg = batched(g)?.f_reshape(rows)?;
    let mean = |t: &Tensor| t.f_mean_dim([1i64].as_slice(), true, Kind::Double);
    let d = xg.f_sub(&mean(&xg)?)?;
    let s = mean(&d.f_mul(&d)?)?.f_add_scalar(eps)?.f_sqrt()?;
    let xhat = d.f_div(&s)?;
    let r = gg
        .f_sub(&mean(&gg)?)?
        .f_sub(&xhat.f_mul(&mean(&xhat.f_mul(&gg)?)?)?)?
        .f_div(&s)?;
    Ok(r.f_reshape(shape)?)
}

/// One elementwise function (the interpreter's definitions; see the module docs).
fn unary(u: UnaryOp, x: &Tensor, device: Device) -> Result<Tensor> {
    let norm_cdf = |x: &Tensor| -> Result<Tensor> {
        Ok(x.f_mul_scalar(-std::f64::consts::FRAC_1_SQRT_2)?
            .f_erfc()?
            .f_mul_scalar(0.5)?)
    };
    Ok(match u {
        UnaryOp::Neg => x.f_neg()?,
        UnaryOp::Tanh => x.f_tanh()?,
        UnaryOp::Sigmoid => x.f_sigmoid()?,
        UnaryOp::Relu => x.f_relu()?,
        UnaryOp::Softplus => x.f_logaddexp(&Tensor::f_zeros([0i64; 0], (Kind::Double, device))?)?,
        UnaryOp::Gelu => x.f_mul(&norm_cdf(x)?)?,
        UnaryOp::Exp => x.f_exp()?,
        UnaryOp::Log => x.f_log()?,
        UnaryOp::Sin => x.f_sin()?,
        UnaryOp::Cos => x.f_cos()?,
        UnaryOp::Sqrt => x.f_sqrt()?,
        UnaryOp::Abs => x.f_abs()?,
        UnaryOp::Step => x.f_gt(0.0)?.f_to_kind(Kind::Double)?,
        UnaryOp::Sign => x.f_sign()?,
        UnaryOp::NormCdf => norm_cdf(x)?,
        UnaryOp::Powi(n) => x.f_pow_tensor_scalar(f64::from(n))?,
        UnaryOp::Powf(a) => x.f_pow_tensor_scalar(a.0)?,
    })
}
