//! Forward-mode symbolic differentiation: `jvp(f)` is a new function computing `f_u(t,u,θ) v`.
//!
//! Tangents are propagated through the arena in topological order (the tangent-linear model of
//! Griewank–Walther, Ch. 3): each node's tangent `ẏ = Σ_k ∂y/∂x_k · ẋ_k` is built as new nodes of
//! the *same* hash-consed graph, so subexpressions the derivative shares with the primal (for
//! example `tanh x` in `1 − tanh² x`) are one node. A zero tangent is represented by its
//! absence and never materialized, so nodes independent of the state cost nothing.
//!
//! # References
//!
//! A. Griewank and A. Walther, *Evaluating Derivatives: Principles and Techniques of
//! Algorithmic Differentiation*, 2nd ed., SIAM 2008, Ch. 3–4.

use crate::builder::Builder;
use crate::error::Error;
use crate::function::{Function, Layout};
use crate::graph::{BinaryOp, Buffer, Node, NodeId, Op, UnaryOp};

/// `a + b` where `None` is zero.
pub(crate) fn add_opt(
    b: &mut Builder,
    x: Option<NodeId>,
    y: Option<NodeId>,
) -> Result<Option<NodeId>, Error> {
    Ok(match (x, y) {
        (Some(x), Some(y)) => Some(b.add(x, y)?),
        (x, None) => x,
        (None, y) => y,
    })
}

/// Broadcast `x` to `shape` unless it already has it.
fn bcast(b: &mut Builder, x: Option<NodeId>, node: &Node) -> Result<Option<NodeId>, Error> {
    match x {
        Some(x) if b.shape(x)? != &node.shape => Ok(Some(b.broadcast_to(x, node.shape.clone())?)),
        x => Ok(x),
    }
}

/// The elementwise derivative `f'(x)` of a unary op with result `y = f(x)`; `None` if it is
/// zero almost everywhere (step, sign). `Neg` is handled by its callers.
///
/// `tanh' = 1 − y²`, `σ' = y(1 − y)`, `relu' = H(x)`, `softplus' = σ(x)`,
/// `gelu' = Φ(x) + x φ(x)`, `exp' = y`, `log' = 1/x`, `sin' = cos x`, `cos' = −sin x`,
/// `sqrt' = 1/(2y)`, `|x|' = sign x`, `Φ' = φ`, `(xⁿ)' = n xⁿ⁻¹`, `(xᵃ)' = a xᵃ⁻¹`.
pub(crate) fn local_derivative(
    b: &mut Builder,
    u: UnaryOp,
    x: NodeId,
    y: NodeId,
) -> Result<Option<NodeId>, Error> {
    let one = b.scalar(1.0);
    let d = match u {
        UnaryOp::Neg => b.scalar(-1.0),
        UnaryOp::Tanh => {
            let y2 = b.square(y)?;
            b.sub(one, y2)?
        }
        UnaryOp::Sigmoid => {
            let c = b.sub(one, y)?;
            b.mul(y, c)?
        }
        UnaryOp::Relu => b.step(x)?,
        UnaryOp::Softplus => b.sigmoid(x)?,
        UnaryOp::Gelu => {
            let cdf = b.norm_cdf(x)?;
            let pdf = normal_pdf(b, x)?;
            let xp = b.mul(x, pdf)?;
            b.add(cdf, xp)?
        }
        UnaryOp::Exp => y,
        UnaryOp::Log => b.div(one, x)?,
        UnaryOp::Sin => b.cos(x)?,
        UnaryOp::Cos => {
            let s = b.sin(x)?;
            b.neg(s)?
        }
        UnaryOp::Sqrt => {
            let half = b.scalar(0.5);
            b.div(half, y)?
        }
        UnaryOp::Abs => b.sign(x)?,
        UnaryOp::Step | UnaryOp::Sign => return Ok(None),
        UnaryOp::NormCdf => normal_pdf(b, x)?,
        UnaryOp::Powi(0) => return Ok(None),
        UnaryOp::Powi(n) => {
            let m = n.checked_sub(1).ok_or(Error::Unsupported {
                op: "powi",
                operand: 0,
            })?;
            let p = b.powi(x, m)?;
            b.scale(p, n as f64)?
        }
        UnaryOp::Powf(a) => {
            let p = b.powf(x, a.0 - 1.0)?;
            b.scale(p, a.0)?
        }
    };
    Ok(Some(d))
}

/// `φ(x) = e^{−x²/2}/√(2π)` built from IR nodes.
fn normal_pdf(b: &mut Builder, x: NodeId) -> Result<NodeId, Error> {
    let x2 = b.square(x)?;
    let e = b.scale(x2, -0.5)?;
    let e = b.exp(e)?;
    Ok(b.scale(e, 1.0 / (2.0 * std::f64::consts::PI).sqrt())?)
}

/// The JVP function `(t, u, θ, v) ↦ f_u(t, u, θ) v` of `f`, with one output per output of `f`
/// (same shapes). The tangent buffer `v` has the state's length; parameters (and a cotangent
/// buffer, if `f` reads one) are held fixed. `f` must not read a tangent buffer itself.
pub fn jvp(f: &Function) -> Result<Function, Error> {
    if f.layout().tangent > 0 {
        return Err(Error::BufferInUse {
            buffer: Buffer::Tangent,
        });
    }
    // A cotangent buffer `f` reads (when `f` is itself a VJP) stays an input, held fixed:
    // `jvp(vjp(f))` is the second-order adjoint `(∂_u (f_uᵀ w)) v`.
    let layout = Layout {
        tangent: f.layout().state,
        ..*f.layout()
    };
    let mut b = Builder::extend(f, layout);
    let n = f.graph().len();
    let mut tan: Vec<Option<NodeId>> = vec![None; n];
    for i in 0..n {
        let node = f.graph().nodes()[i].clone();
        let dx: Vec<Option<NodeId>> = node.inputs.iter().map(|x| tan[x.index()]).collect();
        if !node.inputs.is_empty() && dx.iter().all(Option::is_none) {
            continue;
        }
        tan[i] = tangent(&mut b, &node, NodeId(i as u32), &dx)?;
    }
    let mut outs = Vec::with_capacity(f.outputs().len());
    for &o in f.outputs() {
        outs.push(match tan[o.index()] {
            Some(t) => t,
            None => b.zeros(f.graph().nodes()[o.index()].shape.clone())?,
        });
    }
    b.finish(&outs)
}

/// The tangent of one node from its operands' tangents (at least one is `Some`).
fn tangent(
    b: &mut Builder,
    node: &Node,
    y: NodeId,
    dx: &[Option<NodeId>],
) -> Result<Option<NodeId>, Error> {
    let x = &node.inputs;
    Ok(match &node.op {
        Op::Input {
            buffer: Buffer::State,
            offset,
            shape,
        } => Some(b.input(Buffer::Tangent, *offset, shape.clone())?),
        Op::Time | Op::Input { .. } | Op::Const(_) => None,
        Op::Unary(u) => {
            let Some(d) = dx[0] else { return Ok(None) };
            if *u == UnaryOp::Neg {
                Some(b.neg(d)?)
            } else {
                match local_derivative(b, *u, x[0], y)? {
                    Some(fp) => Some(b.mul(fp, d)?),
                    None => None,
                }
            }
        }
        Op::Binary(op) => {
            let t = match op {
                BinaryOp::Add => add_opt(b, dx[0], dx[1])?,
                BinaryOp::Sub => {
                    let neg = match dx[1] {
                        Some(d) => Some(b.neg(d)?),
                        None => None,
                    };
                    add_opt(b, dx[0], neg)?
                }
                BinaryOp::Mul => {
                    let t0 = dx[0].map(|d| b.mul(d, x[1])).transpose()?;
                    let t1 = dx[1].map(|d| b.mul(x[0], d)).transpose()?;
                    add_opt(b, t0, t1)?
                }
                BinaryOp::Div => {
                    // (ẋ₀ − y ẋ₁) / x₁
                    let t1 = match dx[1] {
                        Some(d) => {
                            let yd = b.mul(y, d)?;
                            Some(b.neg(yd)?)
                        }
                        None => None,
                    };
                    let num = add_opt(b, dx[0], t1)?;
                    num.map(|n| b.div(n, x[1])).transpose()?
                }
                BinaryOp::Pow => {
                    // x₁ x₀^{x₁−1} ẋ₀ + y ln(x₀) ẋ₁
                    let t0 = match dx[0] {
                        Some(d) => {
                            let one = b.scalar(1.0);
                            let e = b.sub(x[1], one)?;
                            let p = b.binary(BinaryOp::Pow, x[0], e)?;
                            let c = b.mul(x[1], p)?;
                            Some(b.mul(c, d)?)
                        }
                        None => None,
                    };
                    let t1 = match dx[1] {
                        Some(d) => {
                            let l = b.log(x[0])?;
                            let c = b.mul(y, l)?;
                            Some(b.mul(c, d)?)
                        }
                        None => None,
                    };
                    add_opt(b, t0, t1)?
                }
            };
            bcast(b, t, node)?
        }
        Op::MatMul
        | Op::Conv2d(_)
        | Op::Conv2dBackwardInput { .. }
        | Op::Conv2dBackwardWeight { .. } => {
            // Bilinear: d(a ⊗ b) = ȧ ⊗ b + a ⊗ ḃ.
            let t0 = dx[0]
                .map(|d| b.op(node.op.clone(), &[d, x[1]]))
                .transpose()?;
            let t1 = dx[1]
                .map(|d| b.op(node.op.clone(), &[x[0], d]))
                .transpose()?;
            add_opt(b, t0, t1)?
        }
        Op::Transpose
        | Op::Index(_)
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Scatter { .. }
        | Op::Sum(_)
        | Op::Reshape(_)
        | Op::Broadcast(_)
        | Op::SumTo(_) => match dx[0] {
            Some(d) => Some(b.op(node.op.clone(), &[d])?),
            None => None,
        },
        Op::Concat(_) => {
            let mut parts = Vec::with_capacity(x.len());
            for (k, d) in dx.iter().enumerate() {
                parts.push(match d {
                    Some(d) => *d,
                    None => {
                        let s = b.shape(x[k])?.clone();
                        b.zeros(s)?
                    }
                });
            }
            Some(b.op(node.op.clone(), &parts)?)
        }
        Op::GroupNorm { groups, eps } => match dx[0] {
            Some(d) => Some(b.op(
                Op::GroupNormBackward {
                    groups: *groups,
                    eps: *eps,
                },
                &[x[0], d],
            )?),
            None => None,
        },
        Op::GroupNormBackward { .. } => {
            if dx[0].is_some() {
                return Err(Error::Unsupported {
                    op: node.op.name(),
                    operand: 0,
                });
            }
            match dx[1] {
                Some(d) => Some(b.op(node.op.clone(), &[x[0], d])?),
                None => None,
            }
        }
        // The tangent is in the state direction only (`φ` is part of `θ`, held fixed).
        Op::Opaque { layer, output } => match dx[0] {
            Some(d) => Some(b.op(
                Op::OpaqueJvp {
                    layer: *layer,
                    output: output.clone(),
                },
                &[x[0], d],
            )?),
            None => None,
        },
        // Second derivatives of an opaque layer are not available (it gives only its first).
        Op::OpaqueJvp { .. } | Op::OpaqueVjp { .. } => {
            if let Some(k) = dx.iter().position(Option::is_some) {
                return Err(Error::Unsupported {
                    op: node.op.name(),
                    operand: k,
                });
            }
            None
        }
    })
}
