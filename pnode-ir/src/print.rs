//! The textual IR: `Display` for [`Function`], one line per node, e.g.
//!
//! ```text
//! fn(t, u: 2, p: 4) {
//!   %0 = input u[0..2] : [2]
//!   %1 = index %0, [0] : []
//!   return %7
//! }
//! ```
//!
//! Deterministic: nodes in arena order, constants printed with Rust's shortest round-trip
//! `f64` formatting (tensors of more than 8 elements abbreviated with their count and sum).

use crate::function::Function;
use crate::graph::{Node, Op, UnaryOp};
use std::fmt::{self, Write};

fn operands(n: &Node) -> String {
    n.inputs
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn num(x: f64) -> String {
    format!("{x:?}")
}

/// The right-hand side of one node's line (without `%i = ` and the shape).
fn describe(n: &Node) -> String {
    let args = operands(n);
    let mut s = n.op.name().to_string();
    match &n.op {
        Op::Time => {}
        Op::Input {
            buffer,
            offset,
            shape,
        } => {
            let _ = write!(
                s,
                " {}[{}..{}]",
                buffer.short(),
                offset,
                offset + shape.len()
            );
        }
        Op::Const(t) => {
            let d = t.data();
            if t.shape().is_scalar() {
                let _ = write!(s, " {}", num(d[0]));
            } else if d.len() <= 8 {
                let v: Vec<String> = d.iter().map(|x| num(*x)).collect();
                let _ = write!(s, " [{}]", v.join(", "));
            } else {
                let sum: f64 = d.iter().sum();
                let _ = write!(s, " <{} values, sum {}>", d.len(), num(sum));
            }
        }
        Op::Unary(UnaryOp::Powi(k)) => {
            let _ = write!(s, " {args}, {k}");
        }
        Op::Unary(UnaryOp::Powf(a)) => {
            let _ = write!(s, " {args}, {}", num(a.0));
        }
        Op::Index(idx) => {
            let _ = write!(s, " {args}, {idx:?}");
        }
        Op::Scatter { index, .. } => {
            let _ = write!(s, " {args}, {index:?}");
        }
        Op::Slice { axis, start, end } => {
            let _ = write!(s, " {args}, axis {axis}, {start}..{end}");
        }
        Op::Pad {
            axis,
            before,
            after,
        } => {
            let _ = write!(s, " {args}, axis {axis}, before {before}, after {after}");
        }
        Op::Sum(Some(axis)) | Op::Concat(axis) => {
            let _ = write!(s, " {args}, axis {axis}");
        }
        Op::Conv2d(c)
        | Op::Conv2dBackwardInput { conv: c, .. }
        | Op::Conv2dBackwardWeight { conv: c, .. } => {
            let _ = write!(s, " {args}, stride {}, padding {}", c.stride, c.padding);
        }
        Op::GroupNorm { groups, eps } | Op::GroupNormBackward { groups, eps } => {
            let _ = write!(s, " {args}, groups {groups}, eps {}", num(eps.0));
        }
        Op::Opaque { layer, .. } | Op::OpaqueJvp { layer, .. } | Op::OpaqueVjp { layer, .. } => {
            let _ = write!(s, " {args}, layer {layer}");
        }
        _ => {
            let _ = write!(s, " {args}");
        }
    }
    s
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.layout();
        write!(f, "fn(t, u: {}, p: {}", l.state, l.param)?;
        if l.tangent > 0 {
            write!(f, ", v: {}", l.tangent)?;
        }
        if l.cotangent > 0 {
            write!(f, ", w: {}", l.cotangent)?;
        }
        writeln!(f, ") {{")?;
        for (i, n) in self.graph().nodes().iter().enumerate() {
            writeln!(f, "  %{i} = {} : {}", describe(n), n.shape)?;
        }
        let outs: Vec<String> = self.outputs().iter().map(|o| o.to_string()).collect();
        writeln!(f, "  return {}", outs.join(", "))?;
        write!(f, "}}")
    }
}
