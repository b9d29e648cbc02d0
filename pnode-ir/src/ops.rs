//! Shape inference: the static result shape of every operation, or a [`ShapeError`] naming the
//! operand shapes.

use crate::graph::{ConvParams, Op};
use crate::shape::{MAX_RANK, Shape, ShapeError, incompatible, invalid};

fn check_rank(op: &'static str, s: Shape) -> Result<Shape, ShapeError> {
    if s.rank() > MAX_RANK {
        Err(ShapeError::RankTooHigh { op, rank: s.rank() })
    } else if s.checked_len().is_none() {
        Err(ShapeError::TooLarge { op, shape: s })
    } else {
        Ok(s)
    }
}

/// The spatial output extent of a convolution: `(n + 2p − k)/s + 1`.
pub(crate) fn conv_out(n: usize, k: usize, c: ConvParams) -> Option<usize> {
    let padded = c.padding.checked_mul(2)?.checked_add(n)?;
    if c.stride == 0 || k == 0 || padded < k {
        None
    } else {
        Some((padded - k) / c.stride + 1)
    }
}

/// `(batch, channels, spatial…)` of an image tensor `[C,H,W]` or `[N,C,H,W]`.
pub(crate) fn image_dims(s: &Shape) -> Option<(usize, usize, usize, usize)> {
    match s.dims() {
        [c, h, w] => Some((1, *c, *h, *w)),
        [n, c, h, w] => Some((*n, *c, *h, *w)),
        _ => None,
    }
}

fn conv_shape(op: &'static str, x: &Shape, w: &Shape, c: ConvParams) -> Result<Shape, ShapeError> {
    let Some((n, ci, h, wd)) = image_dims(x) else {
        return Err(invalid(
            op,
            x,
            "the input must be [C, H, W] or [N, C, H, W]",
        ));
    };
    let [co, wci, kh, kw] = w.dims() else {
        return Err(invalid(op, w, "the weight must be [Co, Ci, kh, kw]"));
    };
    if *wci != ci {
        return Err(incompatible(
            op,
            x,
            "⋆",
            w,
            format!("input channels {ci} and weight input channels {wci} differ"),
        ));
    }
    let (Some(ho), Some(wo)) = (conv_out(h, *kh, c), conv_out(wd, *kw, c)) else {
        return Err(incompatible(
            op,
            x,
            "⋆",
            w,
            format!(
                "kernel {kh}×{kw} with stride {} and padding {} does not fit",
                c.stride, c.padding
            ),
        ));
    };
    check_rank(
        op,
        if x.rank() == 3 {
            Shape::new(&[*co, ho, wo])
        } else {
            Shape::new(&[n, *co, ho, wo])
        },
    )
}

fn group_norm_shape(op: &'static str, x: &Shape, groups: usize) -> Result<Shape, ShapeError> {
    let Some((_, c, _, _)) = image_dims(x) else {
        return Err(invalid(
            op,
            x,
            "the input must be [C, H, W] or [N, C, H, W]",
        ));
    };
    if groups == 0 || c % groups != 0 {
        return Err(invalid(
            op,
            x,
            format!("{groups} groups do not divide {c} channels"),
        ));
    }
    Ok(x.clone())
}

fn arity(op: &Op) -> Option<usize> {
    Some(match op {
        Op::Time | Op::Input { .. } | Op::Const(_) => 0,
        Op::Concat(_) => return None,
        Op::Binary(_)
        | Op::MatMul
        | Op::Conv2d(_)
        | Op::Conv2dBackwardInput { .. }
        | Op::Conv2dBackwardWeight { .. }
        | Op::GroupNormBackward { .. }
        | Op::OpaqueJvp { .. }
        | Op::OpaqueVjp { .. } => 2,
        _ => 1,
    })
}

/// The result shape of `op` on operands of shapes `s`.
pub fn infer_shape(op: &Op, s: &[&Shape]) -> Result<Shape, ShapeError> {
    let name = op.name();
    match arity(op) {
        Some(n) if n != s.len() => {
            return Err(ShapeError::Arity {
                op: name,
                expected: n,
                found: s.len(),
            });
        }
        None if s.is_empty() => return Err(ShapeError::NoOperands { op: name }),
        _ => {}
    }
    match op {
        Op::Time => Ok(Shape::scalar()),
        Op::Input { shape, .. } => check_rank(name, shape.clone()),
        Op::Const(t) => check_rank(name, t.shape().clone()),
        Op::Unary(_) => Ok(s[0].clone()),
        Op::Binary(b) => {
            let sym = match b {
                crate::graph::BinaryOp::Add => "+",
                crate::graph::BinaryOp::Sub => "−",
                crate::graph::BinaryOp::Mul => "*",
                crate::graph::BinaryOp::Div => "/",
                crate::graph::BinaryOp::Pow => "^",
            };
            Shape::broadcast(s[0], s[1])
                .ok_or_else(|| incompatible(name, s[0], sym, s[1], "shapes do not broadcast"))
        }
        Op::MatMul => {
            let (a, b) = (s[0], s[1]);
            if a.is_scalar() || b.is_scalar() {
                return Err(incompatible(
                    name,
                    a,
                    "·",
                    b,
                    "operands must have rank ≥ 1 (use mul)",
                ));
            }
            let k = a.dims()[a.rank() - 1];
            let kb = b.dims()[0];
            if k != kb {
                return Err(incompatible(
                    name,
                    a,
                    "·",
                    b,
                    format!("inner dimensions {k} and {kb} differ"),
                ));
            }
            let mut d = a.dims()[..a.rank() - 1].to_vec();
            d.extend_from_slice(&b.dims()[1..]);
            check_rank(name, Shape(d))
        }
        Op::Transpose => match s[0].dims() {
            [m, n] => Ok(Shape::new(&[*n, *m])),
            _ => Err(invalid(name, s[0], "transpose needs a rank-2 operand")),
        },
        Op::Index(idx) => {
            let x = s[0];
            if idx.len() > x.rank() {
                return Err(invalid(
                    name,
                    x,
                    format!("{} indices for rank {}", idx.len(), x.rank()),
                ));
            }
            for (a, (&i, &d)) in idx.iter().zip(x.dims()).enumerate() {
                if i >= d {
                    return Err(invalid(
                        name,
                        x,
                        format!("index {i} out of range on axis {a}"),
                    ));
                }
            }
            Ok(Shape::new(&x.dims()[idx.len()..]))
        }
        Op::Scatter { index, shape } => {
            let expect = infer_shape(&Op::Index(index.clone()), &[shape])
                .map_err(|_| invalid(name, shape, format!("index {index:?} out of range")))?;
            if &expect != s[0] {
                return Err(incompatible(
                    name,
                    s[0],
                    "→",
                    shape,
                    "operand is not the indexed block",
                ));
            }
            check_rank(name, shape.clone())
        }
        Op::Slice { axis, start, end } => {
            let x = s[0];
            if *axis >= x.rank() || start > end || *end > x.dims()[*axis] {
                return Err(invalid(
                    name,
                    x,
                    format!("range {start}..{end} on axis {axis} is out of bounds"),
                ));
            }
            let mut d = x.dims().to_vec();
            d[*axis] = end - start;
            Ok(Shape(d))
        }
        Op::Pad {
            axis,
            before,
            after,
        } => {
            let x = s[0];
            if *axis >= x.rank() {
                return Err(invalid(name, x, format!("no axis {axis}")));
            }
            let mut d = x.dims().to_vec();
            d[*axis] = before
                .checked_add(*after)
                .and_then(|e| e.checked_add(d[*axis]))
                .ok_or_else(|| invalid(name, x, "padding overflows"))?;
            check_rank(name, Shape(d))
        }
        Op::Sum(None) => Ok(Shape::scalar()),
        Op::Sum(Some(axis)) => {
            let x = s[0];
            if *axis >= x.rank() {
                return Err(invalid(name, x, format!("no axis {axis}")));
            }
            let mut d = x.dims().to_vec();
            d.remove(*axis);
            Ok(Shape(d))
        }
        Op::Concat(axis) => {
            let first = s[0];
            if *axis >= first.rank() {
                return Err(invalid(name, first, format!("no axis {axis}")));
            }
            let mut d = first.dims().to_vec();
            for other in &s[1..] {
                let ok = other.rank() == first.rank()
                    && (0..first.rank()).all(|i| i == *axis || other.dims()[i] == first.dims()[i]);
                if !ok {
                    return Err(incompatible(
                        name,
                        first,
                        ",",
                        other,
                        format!("shapes differ outside axis {axis}"),
                    ));
                }
                d[*axis] += other.dims()[*axis];
            }
            check_rank(name, Shape(d))
        }
        Op::Reshape(to) => {
            if to.len() != s[0].len() {
                return Err(incompatible(name, s[0], "→", to, "element counts differ"));
            }
            check_rank(name, to.clone())
        }
        Op::Broadcast(to) => {
            if !s[0].broadcasts_to(to) {
                return Err(incompatible(name, s[0], "→", to, "does not broadcast"));
            }
            check_rank(name, to.clone())
        }
        Op::SumTo(to) => {
            if !to.broadcasts_to(s[0]) {
                return Err(incompatible(
                    name,
                    s[0],
                    "→",
                    to,
                    "target does not broadcast back",
                ));
            }
            Ok(to.clone())
        }
        Op::Conv2d(c) => conv_shape(name, s[0], s[1], *c),
        Op::Conv2dBackwardInput { conv, input } => {
            let out = conv_shape(name, input, s[1], *conv)?;
            if &out != s[0] {
                return Err(incompatible(
                    name,
                    s[0],
                    "≠",
                    &out,
                    "cotangent is not the conv output",
                ));
            }
            Ok(input.clone())
        }
        Op::Conv2dBackwardWeight { conv, kernel } => {
            let out = conv_shape(name, s[0], kernel, *conv)?;
            if &out != s[1] {
                return Err(incompatible(
                    name,
                    s[1],
                    "≠",
                    &out,
                    "cotangent is not the conv output",
                ));
            }
            Ok(kernel.clone())
        }
        Op::GroupNorm { groups, .. } => group_norm_shape(name, s[0], *groups),
        Op::GroupNormBackward { groups, .. } => {
            if s[0] != s[1] {
                return Err(incompatible(name, s[0], ",", s[1], "shapes differ"));
            }
            group_norm_shape(name, s[0], *groups)
        }
        Op::Opaque { output, .. } => check_rank(name, output.clone()),
        Op::OpaqueJvp { output, .. } => {
            if s[0] != s[1] {
                return Err(incompatible(
                    name,
                    s[0],
                    ",",
                    s[1],
                    "input and tangent differ",
                ));
            }
            check_rank(name, output.clone())
        }
        Op::OpaqueVjp { output, .. } => {
            if s[1] != output {
                return Err(incompatible(
                    name,
                    s[1],
                    "≠",
                    output,
                    "the cotangent is not of the layer's output shape",
                ));
            }
            Ok(s[0].clone())
        }
    }
}
