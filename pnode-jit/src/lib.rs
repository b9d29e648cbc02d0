//! `pnode-jit`: the Cranelift backend of pnode's model compiler.
//!
//! It compiles `pnode_ir` functions to native code with one fixed calling convention (flat
//! `f64` buffers and a scratch buffer laid out by a layout table; see [`abi`]):
//!
//! * [`CompiledFn`]: any IR function (an RHS, its JVP, its VJP) as a native kernel;
//! * [`JitModel`]: an RHS with its symbolic JVP and VJP, implementing the runtime's `Rhs`,
//!   `RhsJvp` and `RhsVjp`, so explicit, θ-method and DIRK solvers (Newton stage solves
//!   included) run JIT code;
//! * [`JitErkStepper`]: the point of a compiler — the whole forward step and the whole adjoint
//!   step of an explicit Runge–Kutta tableau fused with the RHS and VJP code (stages unrolled,
//!   coefficients as constants), driven by the runtime's schedule executor under every
//!   checkpoint schedule;
//! * [`clif`]: the Cranelift IR of those kernels as text (`pnodec emit --clif`).
//!
//! Results agree with the reference interpreter to round-off (the same operations in the same
//! order, the same transcendental functions). Convolutions and group norms are not lowered:
//! they give [`Error::Unsupported`].
//!
//! ```
//! use pnode_ir::{Builder, Layout};
//! use pnode_jit::{JitErkStepper, JitModel};
//! use pnode_runtime::{Checkpointing, Solver, Tableau, TimeGrid};
//! // du/dt = -k u
//! let mut b = Builder::new(Layout::new(1, 1));
//! let u = b.state(0, [1])?;
//! let k = b.param(0, [])?;
//! let ku = b.mul(k, u)?;
//! let f = b.neg(ku)?;
//! let rhs = b.finish_rhs(&[f])?;
//! let mut model = JitModel::new(&rhs)?;
//! let stepper = JitErkStepper::new(Tableau::rk4(), &rhs)?;
//! let grid = TimeGrid::uniform(0.0, 1.0, 10)?;
//! let mut solver = Solver::new(stepper, &model, grid, &[1.0], Checkpointing::Revolve { slots: 2 })?;
//! let (_, g) = solver.value_and_grad(&mut model, &[1.0], &[0.5], |out, dl| {
//!     dl[0] = 1.0;
//!     out[0]
//! })?;
//! assert!((g.du0[0] - (-0.5f64).exp()).abs() < 1e-6);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod abi;
pub mod clif;
mod compile;
mod emit;
mod error;
mod kernels;
mod lower;
mod maps;
mod math;
mod model;
mod step_erk;
mod step_pair;

pub use abi::Lens;
pub use compile::CompiledFn;
pub use error::{Error, Result};
pub use lower::Placement;
pub use model::JitModel;
pub use step_erk::JitErkStepper;
