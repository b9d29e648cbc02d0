//! Static shapes and the shape errors of the builder.
//!
//! Every IR value is a dense row-major `f64` tensor of rank 0–4 whose shape is known when the
//! node is built. Elementwise binary operations broadcast with NumPy's trailing rule: shapes are
//! aligned at their last axis and each pair of extents must be equal or one of them 1 (a scalar
//! broadcasts against anything).

use std::fmt;

/// The largest rank an IR value may have.
pub const MAX_RANK: usize = 4;

/// The largest number of elements an IR value may have (2³²), so sizes never overflow.
pub const MAX_ELEMENTS: usize = 1 << 32;

/// A static tensor shape (row-major); `[]` is a scalar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    /// The scalar shape `[]`.
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    /// A shape from its extents.
    pub fn new(dims: &[usize]) -> Self {
        Shape(dims.to_vec())
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.0.iter().product()
    }

    /// Number of elements, or `None` if it exceeds [`MAX_ELEMENTS`].
    pub fn checked_len(&self) -> Option<usize> {
        self.0
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= MAX_ELEMENTS)
    }

    /// Whether the tensor has no element (some extent is 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The extents.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Whether this is the scalar shape.
    pub fn is_scalar(&self) -> bool {
        self.0.is_empty()
    }

    /// Row-major strides (elements).
    pub fn strides(&self) -> Vec<usize> {
        let mut s = vec![1; self.rank()];
        for i in (0..self.rank().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.0[i + 1];
        }
        s
    }

    /// The NumPy broadcast of two shapes, or `None` if they are incompatible.
    pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
        let r = a.rank().max(b.rank());
        let mut out = vec![0; r];
        for i in 0..r {
            let da = if i < r - a.rank() {
                1
            } else {
                a.0[i - (r - a.rank())]
            };
            let db = if i < r - b.rank() {
                1
            } else {
                b.0[i - (r - b.rank())]
            };
            out[i] = match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return None,
            };
        }
        Some(Shape(out))
    }

    /// Whether `self` broadcasts to exactly `target`.
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        Shape::broadcast(self, target).as_ref() == Some(target)
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}

impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

/// A shape error found while building a node; the message names the operation and the shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// Two operand shapes that the operation cannot combine.
    #[error("{op}: {lhs} {sep} {rhs} — {reason}")]
    Incompatible {
        /// The operation (`add`, `matmul`, …).
        op: &'static str,
        /// The first operand's shape.
        lhs: Shape,
        /// The infix symbol used in the message (`+`, `·`, `,`).
        sep: &'static str,
        /// The second operand's shape.
        rhs: Shape,
        /// Why they do not fit.
        reason: String,
    },
    /// One operand (or the arguments of the operation) are invalid for its shape.
    #[error("{op}: operand of shape {shape} — {reason}")]
    Invalid {
        /// The operation.
        op: &'static str,
        /// The operand's shape.
        shape: Shape,
        /// What is wrong.
        reason: String,
    },
    /// A result would have more than [`MAX_RANK`] axes.
    #[error("{op}: result of rank {rank} exceeds the maximum rank {MAX_RANK}")]
    RankTooHigh {
        /// The operation.
        op: &'static str,
        /// The rank it would have.
        rank: usize,
    },
    /// A result with more than [`MAX_ELEMENTS`] elements.
    #[error("{op}: shape {shape} has more than {MAX_ELEMENTS} elements")]
    TooLarge {
        /// The operation.
        op: &'static str,
        /// The offending shape.
        shape: Shape,
    },
    /// A read of an input buffer outside its length.
    #[error("{buffer} read of shape {shape} at offset {offset} exceeds the buffer length {len}")]
    OutOfBounds {
        /// Which buffer.
        buffer: crate::graph::Buffer,
        /// Offset of the read.
        offset: usize,
        /// Shape read.
        shape: Shape,
        /// Length of the buffer in the layout.
        len: usize,
    },
    /// A node id that does not belong to this graph.
    #[error("{op}: node %{id} does not exist (the graph has {len} nodes)")]
    UnknownNode {
        /// The operation.
        op: &'static str,
        /// The offending id.
        id: u32,
        /// Nodes in the graph.
        len: usize,
    },
    /// A constant whose data length differs from its shape.
    #[error("constant of shape {shape} needs {} values, got {found}", shape.len())]
    ConstLength {
        /// The declared shape.
        shape: Shape,
        /// Values given.
        found: usize,
    },
    /// An operation given the wrong number of operands.
    #[error("{op}: takes {expected} operands, got {found}")]
    Arity {
        /// The operation.
        op: &'static str,
        /// Operands it takes.
        expected: usize,
        /// Operands given.
        found: usize,
    },
    /// An operation that takes operands got none.
    #[error("{op}: needs at least one operand")]
    NoOperands {
        /// The operation.
        op: &'static str,
    },
}

/// Shorthand for an "incompatible shapes" error.
pub(crate) fn incompatible(
    op: &'static str,
    lhs: &Shape,
    sep: &'static str,
    rhs: &Shape,
    reason: impl Into<String>,
) -> ShapeError {
    ShapeError::Incompatible {
        op,
        lhs: lhs.clone(),
        sep,
        rhs: rhs.clone(),
        reason: reason.into(),
    }
}

/// Shorthand for an "invalid operand" error.
pub(crate) fn invalid(op: &'static str, shape: &Shape, reason: impl Into<String>) -> ShapeError {
    ShapeError::Invalid {
        op,
        shape: shape.clone(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        let s = |d: &[usize]| Shape::new(d);
        assert_eq!(Shape::broadcast(&s(&[]), &s(&[2, 3])), Some(s(&[2, 3])));
        assert_eq!(Shape::broadcast(&s(&[3]), &s(&[2, 3])), Some(s(&[2, 3])));
        assert_eq!(Shape::broadcast(&s(&[2, 1]), &s(&[1, 3])), Some(s(&[2, 3])));
        assert_eq!(Shape::broadcast(&s(&[2]), &s(&[2, 3])), None);
        assert_eq!(s(&[2, 3, 4]).strides(), vec![12, 4, 1]);
        assert_eq!(s(&[2, 3]).to_string(), "[2, 3]");
    }
}
