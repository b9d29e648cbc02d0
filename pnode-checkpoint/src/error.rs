//! The planner's error type.

use thiserror::Error;

use crate::ledger::LedgerError;

/// What can go wrong when planning or validating a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A schedule cannot be executed as written.
    #[error("invalid checkpoint schedule at action {index} ({action}): {reason}")]
    InvalidSchedule {
        /// Position of the offending action (forward actions first, then reverse ones).
        index: usize,
        /// The action, printed (or the phase end that failed).
        action: String,
        /// Why it cannot run.
        reason: LedgerError,
    },
    /// The memory budget cannot hold even the cheapest schedule.
    #[error("checkpoint budget of {given} is too small: at least {minimum} is needed")]
    BudgetTooSmall {
        /// The budget given, with its unit.
        given: String,
        /// The smallest budget that works, with its unit.
        minimum: String,
    },
    /// The multistage dynamic program for this many steps and vectors would need more table
    /// memory or work than the planner allows ([`crate::multistage::MAX_TABLE_ENTRIES`],
    /// [`crate::multistage::MAX_TABLE_WORK`]).
    #[error(
        "the multistage plan for {n_steps} steps and {budget_vectors} vectors is too large: its \
         tables need {entries} entries and {work} operations (at most {max_entries} and \
         {max_work}); give the budget in slots (Revolve) or plan fewer steps"
    )]
    PlanTooLarge {
        /// Steps asked for.
        n_steps: usize,
        /// Budget in vectors (after capping at store-all's).
        budget_vectors: u64,
        /// Table entries the plan needs.
        entries: u128,
        /// Split evaluations the plan needs.
        work: u128,
        /// The most table entries allowed.
        max_entries: u128,
        /// The most split evaluations allowed.
        max_work: u128,
    },
    /// The planning request itself is unusable (for example zero steps).
    #[error("invalid planning request: {0}")]
    InvalidRequest(String),
}

/// Result alias for the planner.
pub type Result<T, E = Error> = std::result::Result<T, E>;
