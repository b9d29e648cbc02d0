//! `pnode-driver`: runs a lowered `.pode` [`Program`](pnode_ir::lower::Program) on the pnode
//! runtime — the engine behind `pnodec solve | grad | train | bench`.
//!
//! 1. [`Setup::new`] resolves everything the program leaves open before anything runs:
//!    initial values (data files read, random initializers drawn from a seeded ChaCha20
//!    generator), the time grid, the output times, the checkpoint schedule, the integrator and
//!    its Newton options, the loss data and the training options (defaults: [`setup`]). The
//!    `solve` block and the initial values go through [`resolve()`], the one resolver that
//!    `pnodec emit` and the `#[neural_ode]`/`model!` macros call too (files through a
//!    [`DataReader`]).
//! 2. [`Run::new`] builds the solver for a model backend — any `M: Rhs + RhsJvp + RhsVjp`
//!    ([`pnode_ir::runtime::IrModel`], `pnode_jit::JitModel`, …) — with the runtime's
//!    steppers; [`Run::with_explicit_stepper`] supplies another stepper for explicit methods
//!    (`pnodec` passes `pnode_jit::JitErkStepper`, the fused step; see [`run`]).
//! 3. [`Run::solve`], [`Run::loss`], [`Run::loss_and_grad`] (formulas in [`run`]) and
//!    [`Run::train`] ([`train`]).
//!
//! ```
//! use pnode_driver::{Run, Setup};
//! let src = "model decay\nstate u = 1.0\nparam k = 0.5\nd(u)/dt = -k * u\nloss = u ^ 2\n";
//! let dir = std::path::Path::new("."); // data files are relative to the model's folder
//! let program = pnode_driver::compile_source(src, dir).program.expect("valid");
//! let setup = Setup::new(&program, dir, None)?;
//! let mut model = pnode_ir::runtime::IrModel::new(&program.rhs).expect("model");
//! let mut run = Run::new(setup, &model)?;
//! let (loss, grad) = run.loss_and_grad(&mut model, &[0.5])?;
//! // u(1) = e^{-k}, L = e^{-2k}, dL/dk = -2 e^{-2k} (rk4, 100 steps: to ~1e-10)
//! assert!((loss - (-1.0f64).exp()).abs() < 1e-9);
//! assert!((grad.dp[0] + 2.0 * (-1.0f64).exp()).abs() < 1e-9);
//! # Ok::<(), pnode_driver::Error>(())
//! ```

pub mod data;
mod error;
pub mod memory;
pub mod resolve;
pub mod run;
pub mod setup;
pub mod summary;
pub mod train;

pub use error::{Error, Result};
pub use resolve::{
    ConstFiles, DataReader, FsData, MethodChoice, Resolved, compile_source, resolve,
};
pub use run::{Run, Trajectory};
pub use setup::{FitData, Setup, TrainConfig};
pub use train::{Progress, TrainResult};
