//! `pnode-ir`: the typed arena IR of pnode's model compiler.
//!
//! A model's right-hand side `du/dt = f(t, u; θ)` is a [`Function`]: a hash-consed arena
//! [`Graph`] of [`Node`]s with static [`Shape`]s (f64 tensors of rank 0–4), whose leaves are
//! the time, shaped views into the flat input buffers (state `u`, parameters `θ`, tangent `v`,
//! cotangent `w`) and constants. It is built with a [`Builder`] (shape inference, algebraic
//! simplification, constant folding, common-subexpression elimination by hash-consing) and
//! differentiated symbolically into new functions over the same graph: [`jvp`] (`f_u v`) and
//! [`vjp`] (`(f_uᵀ w, f_θᵀ w)`). The [`Interpreter`] is the reference evaluator; `Display`
//! prints the textual IR; [`runtime::IrModel`] (feature `runtime`, on by default) plugs a
//! function into `pnode_runtime`'s solvers.
//!
//! ```
//! use pnode_ir::{Builder, Layout, Interpreter, jvp};
//! // du/dt = -k u, θ = [k]
//! let mut b = Builder::new(Layout::new(1, 1));
//! let u = b.state(0, [1])?;
//! let k = b.param(0, [])?;
//! let ku = b.mul(k, u)?;
//! let f = b.neg(ku)?;
//! let rhs = b.finish_rhs(&[f])?;
//! let mut out = [0.0];
//! Interpreter::new(&rhs).eval(0.0, &[2.0], &[0.5], &[], &mut out)?;
//! assert_eq!(out, [-1.0]);
//! Interpreter::new(&jvp(&rhs)?).eval(0.0, &[2.0], &[0.5], &[1.0], &mut out)?;
//! assert_eq!(out, [-0.5]);
//! # Ok::<(), pnode_ir::Error>(())
//! ```

mod ad_forward;
mod ad_reverse;
mod builder;
mod error;
mod function;
mod graph;
mod interp;
mod interp_layers;
pub mod layers;
pub mod lower;
mod ops;
mod print;
pub mod shape;
pub mod special;

#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "testmodels")]
pub mod testmodels;

pub use ad_forward::jvp;
pub use ad_reverse::vjp;
pub use builder::{Builder, Built, FoldBudget};
pub use error::Error;
pub use function::{Function, Layout};
pub use graph::{BinaryOp, Buffer, ConvParams, Graph, Node, NodeId, Op, Real, Tensor, UnaryOp};
pub use interp::Interpreter;
pub use ops::infer_shape;
pub use shape::{Shape, ShapeError};
