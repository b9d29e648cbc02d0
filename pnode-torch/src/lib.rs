//! libtorch backend for pnode (feature `torch`): tensor states of any shape, dtype and device,
//! any closure of tch ops as the right-hand side with its parameters in a `VarStore`, exact
//! discrete-adjoint gradients under pnode's checkpoint schedules, and [`OdeBlock`], an ODE
//! layer that composes with tch autograd.
//!
//! Without the `torch` feature this crate is empty, so the workspace builds without libtorch.
//!
//! ```text
//! TensorRhs ── ModuleRhs(closure, VarStore)      the model and its stage VJP (one backward)
//! TensorSolver                                   ERK forward / adjoint over a Schedule
//!   ::adaptive                                   error-controlled steps, adjoint on the accepted grid
//! OdeBlock ── csrc/shim.cpp PnodeOdeBackward    the solver as a node of tch's autograd graph
//! TorchIrModel ── IrExecutor                     a lowered .pode model (pnode-ir) on libtorch
//! TorchLayer                                     a tch module as an OpaqueLayer (`#[neural_ode]`)
//! ```

#[cfg(feature = "torch")]
mod block;
#[cfg(feature = "torch")]
pub mod demo;
#[cfg(feature = "torch")]
mod erk;
#[cfg(feature = "torch")]
pub mod error;
#[cfg(feature = "torch")]
mod ffi;
#[cfg(feature = "torch")]
pub mod flat;
#[cfg(feature = "torch")]
pub mod ir;
#[cfg(feature = "torch")]
pub mod mlp;
#[cfg(feature = "torch")]
pub mod model;
#[cfg(feature = "torch")]
pub mod opaque;
#[cfg(feature = "torch")]
pub mod solver;

#[cfg(feature = "torch")]
pub use block::OdeBlock;
#[cfg(feature = "torch")]
pub use error::{Error, Phase, Result};
#[cfg(feature = "torch")]
pub use flat::FlatTorchModel;
#[cfg(feature = "torch")]
pub use ir::{IrExecutor, TorchIrModel};
#[cfg(feature = "torch")]
pub use mlp::{Activation, MlpRhs};
#[cfg(feature = "torch")]
pub use model::{ModuleRhs, TensorRhs};
#[cfg(feature = "torch")]
pub use opaque::TorchLayer;
#[cfg(feature = "torch")]
pub use solver::{TensorGradient, TensorSolver};
#[cfg(feature = "torch")]
pub use {pnode_runtime, tch};
