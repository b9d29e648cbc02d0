//! Choosing a schedule: by mode, or the least recomputation that fits a memory budget.

use crate::error::{Error, Result};
use crate::multistage::multistage;
use crate::online::OnlinePlanner;
use crate::revolve::revolve;
use crate::schedule::{Schedule, StepCost};
use crate::two_level::two_level;

/// A memory budget for checkpoints (working memory — the current solution and one stage
/// buffer — is not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// At most this many solution slots.
    Slots(usize),
    /// At most this many state vectors in slots (a stage slot counts `s` vectors).
    Vectors(u64),
    /// At most this many bytes in slots (`f64` states).
    Bytes(u64),
}

/// How checkpoints are kept during a gradient computation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Checkpointing {
    /// Keep every step's stage values: no recomputation, `(N−1)·s` vectors.
    #[default]
    StoreAll,
    /// Keep every solution: each reversed step recomputes its stages, `N−1` vectors.
    SolutionOnly,
    /// Binomial checkpointing with this many solution slots.
    Revolve {
        /// Solution slots (at least 1).
        slots: usize,
    },
    /// Online checkpointing with this many solution slots: decided step by step as if the
    /// number of steps were unknown (what adaptive stepping needs); see [`crate::online`].
    Online {
        /// Solution slots (at least 1).
        slots: usize,
    },
    /// The least recomputation that fits the budget.
    Budget(Budget),
    /// Two-level checkpointing for very long horizons: solutions every `⌈N / disk_slots⌉`
    /// steps in disk slots, Revolve with `ram_slots` RAM slots between them (see
    /// [`crate::two_level`]). Needs at least one disk slot, and one RAM slot unless
    /// `disk_slots ≥ N`.
    TwoLevel {
        /// Solution slots in RAM.
        ram_slots: usize,
        /// Solution slots on disk.
        disk_slots: usize,
    },
    /// A schedule planned elsewhere (it must be planned for the grid's number of steps).
    Custom(Schedule),
}

/// The mode as a `.pode` model writes it: `store_all`, `solution_only`, `revolve(slots = 10)`,
/// `online(slots = 8)`, `budget(bytes = 1000000)`, `budget(vectors = 200)`,
/// `budget(slots = 5)`, `two_level(ram_slots = 4, disk_slots = 8)`, or `custom schedule
/// \`name\``.
impl std::fmt::Display for Checkpointing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Checkpointing::StoreAll => f.write_str("store_all"),
            Checkpointing::SolutionOnly => f.write_str("solution_only"),
            Checkpointing::Revolve { slots } => write!(f, "revolve(slots = {slots})"),
            Checkpointing::Online { slots } => write!(f, "online(slots = {slots})"),
            Checkpointing::Budget(Budget::Bytes(b)) => write!(f, "budget(bytes = {b})"),
            Checkpointing::Budget(Budget::Vectors(v)) => write!(f, "budget(vectors = {v})"),
            Checkpointing::Budget(Budget::Slots(c)) => write!(f, "budget(slots = {c})"),
            Checkpointing::TwoLevel {
                ram_slots,
                disk_slots,
            } => write!(
                f,
                "two_level(ram_slots = {ram_slots}, disk_slots = {disk_slots})"
            ),
            Checkpointing::Custom(s) => write!(f, "custom schedule `{}`", s.name()),
        }
    }
}

impl Checkpointing {
    /// The schedule for `n_steps` steps of a method costing `cost`, with state vectors of
    /// `vector_bytes` bytes (state length × bytes per value of the dtype).
    pub fn plan(&self, n_steps: usize, cost: &StepCost, vector_bytes: u64) -> Result<Schedule> {
        if n_steps == 0 {
            return Err(Error::InvalidRequest(
                "a schedule needs at least one step".into(),
            ));
        }
        match self {
            Checkpointing::StoreAll => Ok(Schedule::store_all(n_steps)),
            Checkpointing::SolutionOnly => Ok(Schedule::solution_only(n_steps)),
            Checkpointing::Revolve { slots } => revolve(n_steps, *slots),
            Checkpointing::Online { slots } => OnlinePlanner::plan(n_steps, *slots),
            Checkpointing::Budget(budget) => plan_for_budget(n_steps, *budget, cost, vector_bytes),
            Checkpointing::TwoLevel {
                ram_slots,
                disk_slots,
            } => two_level(n_steps, *ram_slots, *disk_slots),
            Checkpointing::Custom(s) if s.n_steps() == n_steps => Ok(s.clone()),
            Checkpointing::Custom(s) => Err(Error::InvalidRequest(format!(
                "schedule `{}` is planned for {} steps but the grid has {}",
                s.name(),
                s.n_steps(),
                n_steps
            ))),
        }
    }
}

/// The schedule with the fewest predicted RHS evaluations whose peak checkpoint memory fits
/// `budget`.
///
/// * Store-all (no recomputation) when its `(N−1)·s` vectors fit.
/// * Otherwise, for a budget in slots, Revolve with that many solution slots (optimal among
///   schedules that keep only solutions); for a budget in vectors or bytes, the multistage
///   schedule ([`crate::multistage::multistage`]), optimal over solution and stage slots and
///   never worse than Revolve with as many slots as vectors — unless its tables would be too
///   large ([`Error::PlanTooLarge`]), in which case Revolve with as many slots as vectors.
///
/// The smallest budget that works is one vector (`u_0`) for `N ≥ 2` and nothing for `N = 1`.
pub fn plan_for_budget(
    n_steps: usize,
    budget: Budget,
    cost: &StepCost,
    vector_bytes: u64,
) -> Result<Schedule> {
    let (vectors, given) = match budget {
        Budget::Slots(c) => (c as u64, format!("{c} slots")),
        Budget::Vectors(v) => (v, format!("{v} vectors")),
        Budget::Bytes(b) => (
            b.checked_div(vector_bytes).unwrap_or(u64::MAX),
            format!("{b} bytes"),
        ),
    };
    if n_steps > 1 && vectors < 1 {
        return Err(Error::BudgetTooSmall {
            given,
            minimum: match budget {
                Budget::Slots(_) => "1 slot".into(),
                Budget::Vectors(_) => "1 vector".into(),
                Budget::Bytes(_) => format!("{vector_bytes} bytes (one state vector)"),
            },
        });
    }
    // Store-all holds (N−1)·s vectors at its peak.
    let store_all = (n_steps as u64 - 1).saturating_mul(cost.stage_vectors);
    if !matches!(budget, Budget::Slots(_)) && store_all <= vectors {
        return Ok(Schedule::store_all(n_steps));
    }
    match budget {
        Budget::Slots(c) => revolve(n_steps, c.max(1)),
        Budget::Vectors(_) | Budget::Bytes(_) => match multistage(n_steps, vectors.max(1), cost) {
            // Too many steps and vectors for the dynamic program: Revolve with as many
            // solution slots as the budget holds vectors (within the budget, optimal among
            // solution-only schedules), planned in O(1).
            Err(Error::PlanTooLarge { .. }) => revolve(
                n_steps,
                usize::try_from(vectors).unwrap_or(usize::MAX).max(1),
            ),
            planned => planned,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RK4: StepCost = StepCost {
        rhs_per_step: 4,
        rhs_per_stage_recompute: 3,
        vjp_per_reverse: 4,
        stage_vectors: 4,
    };

    #[test]
    fn budget_picks_store_all_when_it_fits_and_revolve_otherwise() {
        // 20 steps of RK4 on a 3-vector: store-all needs 19·4 = 76 vectors = 1824 bytes.
        let s = plan_for_budget(20, Budget::Bytes(76 * 24), &RK4, 24).unwrap();
        assert_eq!(s.name(), "store-all");
        let s = plan_for_budget(20, Budget::Bytes(75 * 24), &RK4, 24).unwrap();
        assert_eq!(s.name(), "multistage(75 vectors)");
        let p = s.predict(&RK4, 24).unwrap();
        assert!(
            p.peak_stored_vectors <= 75 && p.rhs_evals < 20 * 4 + 19 * 3,
            "{p:?}"
        );
        let s = plan_for_budget(20, Budget::Vectors(5), &RK4, 24).unwrap();
        assert_eq!(s.name(), "multistage(5 vectors)");
        assert!(s.predict(&RK4, 24).unwrap().peak_stored_vectors <= 5);
        let s = plan_for_budget(20, Budget::Slots(100), &RK4, 24).unwrap();
        assert_eq!(s.name(), "revolve(19)");
    }

    #[test]
    fn too_small_a_budget_states_the_minimum() {
        let err = plan_for_budget(20, Budget::Bytes(23), &RK4, 24).unwrap_err();
        assert_eq!(
            err.to_string(),
            "checkpoint budget of 23 bytes is too small: at least 24 bytes (one state vector) is needed"
        );
        assert!(plan_for_budget(1, Budget::Bytes(0), &RK4, 24).is_ok());
        // The dtype enters through the vector size: the same bytes hold twice as many f32
        // vectors (3 values × 4 bytes), enough for store-all's 76.
        let s = plan_for_budget(20, Budget::Bytes(76 * 12), &RK4, 12).unwrap();
        assert_eq!(s.name(), "store-all");
        let s = plan_for_budget(20, Budget::Bytes(76 * 12), &RK4, 24).unwrap();
        assert_eq!(s.name(), "multistage(38 vectors)");
    }

    #[test]
    fn modes_print_as_a_model_writes_them() {
        let printed: Vec<String> = [
            Checkpointing::StoreAll,
            Checkpointing::Revolve { slots: 10 },
            Checkpointing::Budget(Budget::Bytes(1_000_000)),
            Checkpointing::TwoLevel {
                ram_slots: 4,
                disk_slots: 8,
            },
            Checkpointing::Custom(Schedule::store_all(3)),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            printed,
            [
                "store_all",
                "revolve(slots = 10)",
                "budget(bytes = 1000000)",
                "two_level(ram_slots = 4, disk_slots = 8)",
                "custom schedule `store-all`"
            ]
        );
    }

    #[test]
    fn custom_schedule_must_match_the_grid() {
        let c = Checkpointing::Custom(Schedule::store_all(5));
        assert!(c.plan(5, &RK4, 8).is_ok());
        assert!(matches!(c.plan(6, &RK4, 8), Err(Error::InvalidRequest(_))));
    }
}
