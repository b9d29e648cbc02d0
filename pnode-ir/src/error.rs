//! The crate's error type.

use crate::shape::ShapeError;

/// Everything that can go wrong in `pnode-ir`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A shape error while building a node.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// A buffer of the wrong length.
    #[error("{what}: expected length {expected}, found {found}")]
    Length {
        /// Which buffer.
        what: String,
        /// The length the layout or the function needs.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// `jvp` of a function that already reads a tangent buffer, or `vjp` of one that already
    /// reads a cotangent buffer (mix the modes instead: `jvp(vjp(f))`).
    #[error(
        "the function already reads a {buffer} buffer; use the other mode for a second derivative"
    )]
    BufferInUse {
        /// The buffer the derivative would add.
        buffer: crate::graph::Buffer,
    },
    /// The function calls an opaque layer, which only generated code (the `#[neural_ode]`
    /// macro's) can run: the interpreter, the JIT and the libtorch executor have no layer to
    /// call.
    #[error(
        "the function calls opaque layer {layer} ({op}), which only #[neural_ode]-generated code can run"
    )]
    OpaqueLayer {
        /// Index of the layer.
        layer: usize,
        /// The operation (`opaque`, `opaque_jvp` or `opaque_vjp`).
        op: &'static str,
    },
    /// A derivative rule the IR does not provide (e.g. second derivatives of group norm).
    #[error("differentiating {op} with respect to operand {operand} is not supported")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// Which operand (0-based).
        operand: usize,
    },
}
