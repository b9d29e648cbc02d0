//! The planners' tests, one binary (one link): Revolve (`revolve`), multistage (`multistage`),
//! online (`online`) and two-level (`two_level`) schedules, and the ledger (`ledger`).

mod ledger;
mod multistage;
mod online;
mod revolve;
mod two_level;

use pnode_checkpoint::StepCost;

/// One RHS per step, one VJP per reverse step, one vector per slot, no stage recomputation.
pub const UNIT: StepCost = StepCost {
    rhs_per_step: 1,
    rhs_per_stage_recompute: 0,
    vjp_per_reverse: 1,
    stage_vectors: 1,
};
