//! Pure checkpoint planning for discrete adjoints.
//!
//! A reverse sweep needs, for every step `n = N−1 … 0`, the stage values of that step. Keeping
//! them all costs memory linear in `N`; recomputing them from stored solutions costs time. This
//! crate plans, before anything runs, *which* states to keep and *when* to recompute, as a
//! [`Schedule`] — plain data (a list of [`Action`]s) that the runtime's executor carries out —
//! and predicts what it will cost ([`Stats`]) so the plan can be printed and checked. The
//! prediction and the executors' statistics come from one ledger, [`Tracker`], which validates
//! each action and counts its cost.
//!
//! Planners:
//! * [`Schedule::store_all`]: every step's stage values; no recomputation.
//! * [`Schedule::solution_only`]: every solution; each reversed step recomputes its stages.
//! * [`revolve::revolve`]: binomial checkpointing with `c` solution slots, optimal recomputation
//!   `p(N, c) = r·N − C(c+r, c+1)` (Griewank & Walther 2000).
//! * [`two_level::two_level`]: RAM plus disk for very long horizons — a solution on disk every
//!   `⌈N / c_d⌉` steps, Revolve with the RAM slots between them (Stumm & Walther 2009); the
//!   schedule marks its disk slots ([`Schedule::slot_on_disk`]).
//! * [`Budget`] / [`Checkpointing::plan`]: the least recomputation that fits a budget given in
//!   slots, vectors or bytes.
//!
//! The crate has no I/O and no dependency on the runtime, so a proc macro can plan at compile
//! time.
//!
//! # References
//! * A. Griewank, A. Walther, "Algorithm 799: Revolve", ACM TOMS 26 (2000).
//! * A. Griewank, A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008, ch. 12.
//! * H. Zhang, E. Constantinescu, "Optimal checkpointing for adjoint multistage time-stepping
//!   schemes", J. Comput. Sci. 2023.

mod action;
mod budget;
mod error;
mod ledger;
pub mod multistage;
pub mod online;
pub mod revolve;
mod schedule;
mod stats;
pub mod two_level;

pub use action::{Action, StageSource};
pub use budget::{Budget, Checkpointing};
pub use error::{Error, Result};
pub use ledger::{LedgerError, Phase, SlotContent, Tracker};
pub use schedule::{Actions, Schedule, StepCost};
pub use stats::Stats;
