//! Implicit one-step methods for stiff problems: θ-methods (backward Euler, Crank–Nicolson)
//! and DIRKs (SDIRK2, TR-BDF2, ESDIRK3, Kværnø 5(4), user tableaux) with Newton stage solves
//! and exact discrete adjoints through transposed stage systems.
//!
//! # References
//! * E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996.
//! * H. Zhang, W. Zhao, "A memory-efficient neural ODE framework based on high-level adjoint
//!   differentiation", arXiv 2206.01298 (PNODE) — the θ-method adjoint used here.

mod dense;
mod dirk;
mod gmres;
mod newton;
mod petsc;
mod theta;

pub use dense::DenseLu;
pub use dirk::{DirkStepper, DirkTableau};
pub use gmres::GmresConfig;
pub use newton::{
    DENSE_LIMIT, LineSearch, LinearSolver, NewtonConfig, Preconditioner, PreconditionerArgs,
    PreconditionerFn,
};
pub use theta::ThetaStepper;
