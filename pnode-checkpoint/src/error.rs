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
    /// The planning request itself is unusable (for example zero steps).
    #[error("invalid planning request: {0}")]
    InvalidRequest(String),
}

/// Result alias for the planner.
pub type Result<T, E = Error> = std::result::Result<T, E>;
