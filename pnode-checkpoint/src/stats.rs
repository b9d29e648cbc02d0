//! Statistics: what a forward and reverse sweep cost.

use serde::Serialize;

/// Counts of the work a solve or a gradient did, and the memory its checkpoints held.
///
/// One ledger ([`crate::Tracker`]) counts everything a schedule determines: the planner's cost
/// model ([`crate::Schedule::predict`]) runs it over the actions before anything runs, and the
/// executors drive it while they run, so the two agree by construction. The evaluation counts
/// — RHS, JVP and VJP evaluations, Newton and Krylov iterations — are what a run *measures*:
/// an executor takes them from its stepper ([`Stats::with_measured`]). For explicit methods the
/// measured RHS and VJP counts equal the predicted ones (tests assert it); implicit methods
/// predict none (their Newton iterations are not known in advance).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Right-hand-side evaluations `f(t, u; θ)`.
    pub rhs_evals: u64,
    /// State Jacobian–vector products `f_u v`.
    pub jvp_evals: u64,
    /// Stage VJPs `(f_uᵀ w, f_θᵀ w)`.
    pub vjp_evals: u64,
    /// Newton iterations of implicit stage solves (measured; not predicted).
    pub newton_iterations: u64,
    /// Krylov iterations of linear solves (measured; not predicted).
    pub linear_iterations: u64,
    /// Steps of the first forward sweep (`N`).
    pub forward_steps: u64,
    /// Whole steps taken again during the reverse sweep (restarts from a stored solution).
    pub recomputed_steps: u64,
    /// Steps whose stage values were recomputed for their adjoint because no checkpoint held
    /// them (each costs the RHS evaluations of all live stages but the last).
    pub stage_recomputations: u64,
    /// Adjoint steps taken (`N` for a gradient).
    pub reversed_steps: u64,
    /// Most checkpoint slots (RAM and disk) live at one time.
    pub peak_slots: u64,
    /// Most state-sized vectors held by checkpoints in RAM at one time (working memory and
    /// disk slots excluded).
    pub peak_stored_vectors: u64,
    /// The same in bytes (`peak_stored_vectors × state length × bytes per value`).
    pub peak_stored_bytes: u64,
    /// State vectors written to disk slots (a stage slot on disk counts its `s` vectors).
    pub disk_writes: u64,
    /// State vectors read back from disk slots (restoring a solution reads one vector, a
    /// reverse from a stage slot on disk reads its `s` vectors).
    pub disk_reads: u64,
    /// Most state-sized vectors held by disk slots at one time.
    pub peak_disk_vectors: u64,
    /// The same in bytes (`peak_disk_vectors × state length × bytes per value`).
    pub peak_disk_bytes: u64,
}

impl Stats {
    /// These statistics with the counts only a run can measure taken from `measured`:
    /// `rhs_evals`, `jvp_evals`, `vjp_evals`, `newton_iterations` and `linear_iterations`.
    /// Every other field (steps, recomputations, memory, disk traffic) is kept.
    pub fn with_measured(self, measured: &Stats) -> Stats {
        Stats {
            rhs_evals: measured.rhs_evals,
            jvp_evals: measured.jvp_evals,
            vjp_evals: measured.vjp_evals,
            newton_iterations: measured.newton_iterations,
            linear_iterations: measured.linear_iterations,
            ..self
        }
    }
}
