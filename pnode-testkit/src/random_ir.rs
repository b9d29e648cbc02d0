//! The random-IR generator of the property tests: a pool of leaves (two states, two
//! parameters, the time) grows by operations drawn from a table, each applied to operands
//! picked from the pool; operations that do not fit their operands' shapes are skipped.
//!
//! ```
//! use pnode_ir::{Builder, Layout};
//! use pnode_testkit::random_ir::{DERIVATIVE_OPS, apply, leaves};
//!
//! // In a property test the codes come from `op_codes(20, 1..25)`.
//! let codes = [(6u8, 0usize, 1usize), (4, 5, 0), (0, 6, 5)];
//! let mut b = Builder::new(Layout::new(12, 6));
//! let mut pool = leaves(&mut b, 2, 3);
//! for (code, x, y) in codes {
//!     apply(&mut b, &mut pool, &DERIVATIVE_OPS, code, x, y);
//! }
//! let f = b.finish(&[*pool.last().unwrap()]).unwrap();
//! assert!(f.output_len() > 0);
//! ```

use pnode_ir::{Builder, NodeId};
use proptest::prelude::*;
use std::ops::Range;

/// One operation of a table, with its constant arguments; `x` and `y` are the operands
/// [`apply`] picks from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `x + y`.
    Add,
    /// `x − y`.
    Sub,
    /// `x · y`.
    Mul,
    /// `x / (y + 2)²`: a division whose denominator stays away from zero near the origin.
    DivSquare,
    /// `tanh x`.
    Tanh,
    /// `sin x`.
    Sin,
    /// `x @ y`.
    Matmul,
    /// `Σ x`.
    Sum,
    /// `Σ x` over `axis`.
    SumAxis(usize),
    /// `xᵀ`.
    Transpose,
    /// `x[i, …]` fixing the leading axes.
    Index(&'static [usize]),
    /// `x[start..end]` on `axis`.
    Slice {
        /// The axis sliced.
        axis: usize,
        /// First index kept.
        start: usize,
        /// One past the last index kept.
        end: usize,
    },
    /// `[x, y]` concatenated on an axis.
    Concat(usize),
    /// The mean of `x` over an axis.
    MeanAxis(usize),
    /// `softplus x`.
    Softplus,
    /// Zero padding of `x` on `axis`.
    Pad {
        /// The axis padded.
        axis: usize,
        /// Zeros before.
        before: usize,
        /// Zeros after.
        after: usize,
    },
    /// `relu x` (not differentiable at 0).
    Relu,
    /// `gelu x`.
    Gelu,
    /// `x²`.
    Square,
    /// `sigmoid x`.
    Sigmoid,
    /// `|x|` (not differentiable at 0).
    Abs,
    /// `[x, y]` stacked on a new axis.
    Stack(usize),
}

/// The operations of pnode-ir's derivative property test: smooth wherever they are defined,
/// so central differences can check their JVPs and VJPs.
pub const DERIVATIVE_OPS: [Op; 16] = [
    Op::Add,
    Op::Sub,
    Op::Mul,
    Op::DivSquare,
    Op::Tanh,
    Op::Sin,
    Op::Matmul,
    Op::Sum,
    Op::SumAxis(0),
    Op::Transpose,
    Op::Index(&[1]),
    Op::Slice {
        axis: 0,
        start: 0,
        end: 1,
    },
    Op::Concat(0),
    Op::MeanAxis(1),
    Op::Softplus,
    Op::Stack(0),
];

/// The operations of the JIT's kernel property test: [`DERIVATIVE_OPS`] (another slice) plus
/// padding and more unary functions, the non-smooth `relu` and `abs` included (the kernels are
/// compared with the interpreter, not with finite differences).
pub const KERNEL_OPS: [Op; 22] = [
    Op::Add,
    Op::Sub,
    Op::Mul,
    Op::DivSquare,
    Op::Tanh,
    Op::Sin,
    Op::Matmul,
    Op::Sum,
    Op::SumAxis(0),
    Op::Transpose,
    Op::Index(&[1]),
    Op::Slice {
        axis: 0,
        start: 1,
        end: 3,
    },
    Op::Concat(0),
    Op::MeanAxis(1),
    Op::Softplus,
    Op::Pad {
        axis: 0,
        before: 1,
        after: 2,
    },
    Op::Relu,
    Op::Gelu,
    Op::Square,
    Op::Sigmoid,
    Op::Abs,
    Op::Stack(0),
];

/// The leaves a random expression starts from: an `[r, c]` state at offset 0, a `[c, r]` state
/// at offset `r·c`, a `[c]` parameter at 0, an `[r, 1]` parameter at `c`, and the time — so
/// matmul, transpose and concat have partners. The layout must hold `2·r·c` states and at
/// least `c + r` parameters; panics otherwise.
pub fn leaves(b: &mut Builder, r: usize, c: usize) -> Vec<NodeId> {
    vec![
        b.state(0, [r, c]).unwrap(),
        b.state(r * c, [c, r]).unwrap(),
        b.param(0, [c]).unwrap(),
        b.param(c, [r, 1]).unwrap(),
        b.time(),
    ]
}

/// Applies operation `ops[code mod ops.len()]` to the pool's operands `a` and `c` (each taken
/// modulo the pool's length) and pushes the result; an operation that does not fit its
/// operands is skipped (errors are fine).
pub fn apply(b: &mut Builder, pool: &mut Vec<NodeId>, ops: &[Op], code: u8, a: usize, c: usize) {
    let x = pool[a % pool.len()];
    let y = pool[c % pool.len()];
    let r = match ops[code as usize % ops.len()] {
        Op::Add => b.add(x, y),
        Op::Sub => b.sub(x, y),
        Op::Mul => b.mul(x, y),
        Op::DivSquare => {
            let two = b.scalar(2.0);
            b.add(y, two)
                .and_then(|d| b.mul(d, d))
                .and_then(|d| b.div(x, d))
        }
        Op::Tanh => b.tanh(x),
        Op::Sin => b.sin(x),
        Op::Matmul => b.matmul(x, y),
        Op::Sum => b.sum(x),
        Op::SumAxis(axis) => b.sum_axis(x, axis),
        Op::Transpose => b.transpose(x),
        Op::Index(i) => b.index(x, i),
        Op::Slice { axis, start, end } => b.slice(x, axis, start, end),
        Op::Concat(axis) => b.concat(&[x, y], axis),
        Op::MeanAxis(axis) => b.mean_axis(x, axis),
        Op::Softplus => b.softplus(x),
        Op::Pad {
            axis,
            before,
            after,
        } => b.pad(x, axis, before, after),
        Op::Relu => b.relu(x),
        Op::Gelu => b.gelu(x),
        Op::Square => b.square(x),
        Op::Sigmoid => b.sigmoid(x),
        Op::Abs => b.abs(x),
        Op::Stack(axis) => b.stack(&[x, y], axis),
    };
    if let Ok(id) = r {
        pool.push(id);
    }
}

/// `len` draws `(code, a, c)` for [`apply`]: any `u8` operation code and two operand indices
/// below `operands`.
pub fn op_codes(
    operands: usize,
    len: Range<usize>,
) -> impl Strategy<Value = Vec<(u8, usize, usize)>> {
    proptest::collection::vec((any::<u8>(), 0usize..operands, 0usize..operands), len)
}
