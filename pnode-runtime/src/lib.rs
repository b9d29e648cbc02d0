//! pnode runtime: explicit Runge–Kutta integrators with exact discrete adjoints, checkpoint
//! execution, adaptive stepping with error control ([`adaptive`]), reference problems and
//! optimizers.
//!
//! The gradient computed here is the derivative of the *computed* discrete solution (the
//! discrete adjoint), not an approximation of the continuous adjoint: it matches central finite
//! differences of the same fixed-step solve to round-off.

pub mod error;
pub mod model;
pub mod opaque;
pub mod optim;
pub mod problems;
pub mod tableau;

pub use error::{Buffer, Error, Phase, Result};
pub use model::{ClosureModel, Eval, ModelError, Rhs, RhsJvp, RhsVjp};
pub use opaque::{LayerSet, LayerSpec, OpaqueLayer};
pub use tableau::Tableau;
pub mod adaptive;
mod disk;
pub mod erk;
mod executor;
pub mod grid;
pub mod implicit;
pub mod solver;
pub mod stepper;

pub use adaptive::{AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver, AdaptiveStats};
pub use erk::ErkStepper;
pub use grid::TimeGrid;
pub use implicit::{DirkStepper, DirkTableau, NewtonConfig, ThetaStepper};
/// Checkpoint planning (the pure `pnode-checkpoint` crate), re-exported.
pub use pnode_checkpoint as checkpoint;
pub use pnode_checkpoint::{Action, Budget, Checkpointing, Schedule, StageSource, Stats};
pub use solver::{Gradient, Solver};
