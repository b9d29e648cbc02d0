//! Schedules as data: validation by simulation, and the cost model.
//!
//! A [`Schedule`] has two phases. The *forward* phase starts from `u_0` and must end holding
//! `u_N` (it computes every output on the way, so the loss is known when it ends); the *reverse*
//! phase starts with the adjoint `λ_N` and must reverse every step `N−1, …, 0` exactly once, in
//! that order. Slots hold either a *solution* `u_n` (one state vector) or the *stage values* of
//! step `n` (`Y_1 = u_n, …, Y_s`: `s` vectors), which let step `n` be reversed with no
//! recomputation.
//!
//! Each slot lives in one of two tiers: RAM (the default) or disk ([`Schedule::slot_on_disk`]).
//! The tier changes nothing about what a slot holds or when; it only decides where the executor
//! keeps it and how the cost model counts it ([`Stats::peak_stored_vectors`] counts RAM slots,
//! [`Stats::peak_disk_vectors`], [`Stats::disk_writes`] and [`Stats::disk_reads`] disk slots).

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::action::{Action, StageSource};
use crate::error::{Error, Result};
use crate::ledger::{LedgerError, Phase, Tracker};
use crate::online::{online_forward, online_reverse};
use crate::revolve::{revolve_phases, revolve_slots};
use crate::stats::Stats;
use crate::two_level::two_level_phases;

/// What one step of an integrator costs: the input of the cost model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StepCost {
    /// RHS evaluations of one forward step.
    pub rhs_per_step: u64,
    /// RHS evaluations to recompute one step's stage values from its starting solution.
    pub rhs_per_stage_recompute: u64,
    /// VJPs of one adjoint step.
    pub vjp_per_reverse: u64,
    /// State vectors a stage slot holds.
    pub stage_vectors: u64,
}

/// How a schedule's actions are held: listed, or generated on demand by a planner of this
/// crate from a few numbers (valid by construction, `O(1)` to plan, and read in `O(slots)`
/// memory however many steps there are).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    /// Explicit action lists.
    Listed {
        forward: Vec<Action>,
        reverse: Vec<Action>,
    },
    /// [`Schedule::store_all`].
    StoreAll,
    /// [`Schedule::solution_only`].
    SolutionOnly,
    /// [`Schedule::forward_only`].
    ForwardOnly,
    /// [`crate::revolve::revolve`] with this many slots (already capped at `N − 1`).
    Revolve { slots: usize },
    /// [`crate::online::OnlinePlanner::plan`] with this many slots.
    Online { slots: usize },
    /// [`crate::two_level::two_level`] with these RAM and disk slots (as requested), and the
    /// number of slots it addresses.
    TwoLevel {
        ram_slots: usize,
        disk_slots: usize,
        n_slots: usize,
    },
}

/// A checkpoint schedule: forward actions, then reverse actions, and which slots live on disk.
/// See the module docs.
///
/// The planners of store-all, solution-only, Revolve, online and two-level checkpointing do
/// not list their actions: [`Schedule::forward`] and [`Schedule::reverse`] generate them as they are
/// read, so planning costs nothing and reading costs `O(1)` per action in `O(slots)` memory.
/// Two schedules are equal when their names, steps, disk slots and action sequences are.
#[derive(Debug, Clone)]
pub struct Schedule {
    name: String,
    n_steps: usize,
    body: Body,
    /// Slots kept on disk rather than in RAM.
    disk_slots: BTreeSet<usize>,
}

/// The actions of one phase of a [`Schedule`], in order (generated on demand for the
/// planners that do not list them).
pub struct Actions<'a> {
    inner: Box<dyn Iterator<Item = Action> + 'a>,
}

impl<'a> Actions<'a> {
    fn new(inner: impl Iterator<Item = Action> + 'a) -> Self {
        Self {
            inner: Box::new(inner),
        }
    }
}

impl Iterator for Actions<'_> {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        self.inner.next()
    }
}

impl fmt::Debug for Actions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Actions(..)")
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.n_steps == other.n_steps
            && self.disk_slots == other.disk_slots
            && (self.body == other.body
                || (self.forward().eq(other.forward()) && self.reverse().eq(other.reverse())))
    }
}

impl Eq for Schedule {}

/// One phase's actions, serialized as a sequence without collecting them first.
struct PhaseActions<'a>(&'a Schedule, Phase);

impl Serialize for PhaseActions<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match self.1 {
            Phase::Forward => serializer.collect_seq(self.0.forward()),
            Phase::Reverse => serializer.collect_seq(self.0.reverse()),
        }
    }
}

/// `{"name", "n_steps", "forward": [Action], "reverse": [Action], "disk_slots": [slot]}`
/// (`disk_slots` only when there are some).
impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let fields = if self.disk_slots.is_empty() { 4 } else { 5 };
        let mut st = serializer.serialize_struct("Schedule", fields)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("n_steps", &self.n_steps)?;
        st.serialize_field("forward", &PhaseActions(self, Phase::Forward))?;
        st.serialize_field("reverse", &PhaseActions(self, Phase::Reverse))?;
        if !self.disk_slots.is_empty() {
            st.serialize_field("disk_slots", &self.disk_slots)?;
        }
        st.end()
    }
}

impl Schedule {
    /// A schedule from explicit action lists, validated (errors name the offending action).
    pub fn new(
        name: impl Into<String>,
        n_steps: usize,
        forward: Vec<Action>,
        reverse: Vec<Action>,
    ) -> Result<Self> {
        let schedule = Self::new_unchecked(name.into(), n_steps, forward, reverse);
        schedule.validate()?;
        Ok(schedule)
    }

    /// A schedule from explicit action lists whose slots `disk_slots` live on disk, validated.
    /// Every disk slot must be one the actions address.
    pub fn tiered(
        name: impl Into<String>,
        n_steps: usize,
        forward: Vec<Action>,
        reverse: Vec<Action>,
        disk_slots: impl IntoIterator<Item = usize>,
    ) -> Result<Self> {
        let schedule = Self::new_unchecked(name.into(), n_steps, forward, reverse)
            .with_disk_slots(disk_slots.into_iter().collect());
        let n_slots = schedule.n_slots();
        if let Some(slot) = schedule.disk_slots.iter().find(|&&s| s >= n_slots) {
            return Err(Error::InvalidRequest(format!(
                "disk slot {slot} is never used (the schedule addresses {n_slots} slots)"
            )));
        }
        schedule.validate()?;
        Ok(schedule)
    }

    pub(crate) fn new_unchecked(
        name: String,
        n_steps: usize,
        forward: Vec<Action>,
        reverse: Vec<Action>,
    ) -> Self {
        Self::generated(name, n_steps, Body::Listed { forward, reverse })
    }

    fn generated(name: String, n_steps: usize, body: Body) -> Self {
        Self {
            name,
            n_steps,
            body,
            disk_slots: BTreeSet::new(),
        }
    }

    /// The Revolve schedule, generated on demand (for [`crate::revolve::revolve`], which
    /// checks the request).
    pub(crate) fn revolve_generated(n_steps: usize, slots: usize) -> Self {
        // More slots than steps cannot help: N − 1 slots already avoid all recomputation.
        let slots = slots.min(n_steps.max(2) - 1);
        Self::generated(
            format!("revolve({slots})"),
            n_steps,
            Body::Revolve { slots },
        )
    }

    /// The online schedule, generated on demand (for [`crate::online::OnlinePlanner`], which
    /// checks the request).
    pub(crate) fn online_generated(n_steps: usize, slots: usize) -> Self {
        Self::generated(format!("online({slots})"), n_steps, Body::Online { slots })
    }

    /// The two-level schedule, generated on demand (for [`crate::two_level::two_level`], which
    /// checks the request and sets the disk slots).
    pub(crate) fn two_level_generated(
        name: String,
        n_steps: usize,
        (ram_slots, disk_slots): (usize, usize),
        n_slots: usize,
    ) -> Self {
        Self::generated(
            name,
            n_steps,
            Body::TwoLevel {
                ram_slots,
                disk_slots,
                n_slots,
            },
        )
    }

    /// The same schedule with `disk_slots` on disk (for planners of this crate).
    pub(crate) fn with_disk_slots(mut self, disk_slots: BTreeSet<usize>) -> Self {
        self.disk_slots = disk_slots;
        self
    }

    /// Store-all: every step but the last keeps its stage values in a slot, the last keeps them
    /// on the tape; the reverse sweep does no recomputation. Holds `(N−1)·s` vectors.
    pub fn store_all(n_steps: usize) -> Self {
        Self::generated("store-all".into(), n_steps, Body::StoreAll)
    }

    /// Solution-only: every solution `u_n`, `n < N−1`, is kept; the last step keeps its stages
    /// on the tape, every other reversed step recomputes its stage values from `u_n` (all live
    /// stages but the last: the adjoint needs the stage inputs `Y_i` only). Holds `N−1` vectors.
    pub fn solution_only(n_steps: usize) -> Self {
        Self::generated("solution-only".into(), n_steps, Body::SolutionOnly)
    }

    /// A forward-only schedule (no checkpoints); it cannot be reversed.
    pub fn forward_only(n_steps: usize) -> Self {
        Self::generated("forward-only".into(), n_steps, Body::ForwardOnly)
    }

    /// Whether the actions are generated on demand by one of this crate's planners
    /// (store-all, solution-only, forward-only, Revolve, online, two-level), which are valid by
    /// construction, rather than listed.
    pub fn is_generated(&self) -> bool {
        !matches!(self.body, Body::Listed { .. })
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of steps `N` it is planned for.
    pub fn n_steps(&self) -> usize {
        self.n_steps
    }

    /// Forward-phase actions, in order.
    pub fn forward(&self) -> Actions<'_> {
        let n = self.n_steps;
        let last = n.saturating_sub(1);
        match &self.body {
            Body::Listed { forward, .. } => Actions::new(forward.iter().copied()),
            Body::StoreAll => Actions::new(
                (0..last)
                    .map(|n| Action::StepKeepingStages { slot: n, step: n })
                    .chain(std::iter::once(Action::Tape { step: last })),
            ),
            Body::SolutionOnly => Actions::new(
                (0..last)
                    .flat_map(|n| {
                        [
                            Action::Store { slot: n, step: n },
                            Action::Advance { from: n, to: n + 1 },
                        ]
                    })
                    .chain(std::iter::once(Action::Tape { step: last })),
            ),
            Body::ForwardOnly => Actions::new(std::iter::once(Action::Advance { from: 0, to: n })),
            Body::Revolve { slots } => Actions::new(revolve_phases(n, *slots).0.into_iter()),
            Body::Online { slots } => Actions::new(online_forward(n, *slots)),
            Body::TwoLevel {
                ram_slots,
                disk_slots,
                ..
            } => Actions::new(two_level_phases(n, *ram_slots, *disk_slots).0.into_iter()),
        }
    }

    /// Reverse-phase actions, in order.
    pub fn reverse(&self) -> Actions<'_> {
        let n = self.n_steps;
        let last = n.saturating_sub(1);
        let tape = std::iter::once(Action::Reverse {
            step: last,
            stages: StageSource::Tape,
        });
        match &self.body {
            Body::Listed { reverse, .. } => Actions::new(reverse.iter().copied()),
            Body::StoreAll => Actions::new(tape.chain((0..last).rev().flat_map(|n| {
                [
                    Action::Reverse {
                        step: n,
                        stages: StageSource::Slot(n),
                    },
                    Action::Free { slot: n },
                ]
            }))),
            Body::SolutionOnly => Actions::new(tape.chain((0..last).rev().flat_map(|n| {
                [
                    Action::Restore { slot: n, step: n },
                    Action::Free { slot: n },
                    Action::Reverse {
                        step: n,
                        stages: StageSource::Recompute,
                    },
                ]
            }))),
            Body::ForwardOnly => Actions::new(std::iter::empty()),
            Body::Revolve { slots } => Actions::new(revolve_phases(n, *slots).1),
            Body::Online { slots } => Actions::new(online_reverse(n, *slots)),
            Body::TwoLevel {
                ram_slots,
                disk_slots,
                ..
            } => Actions::new(two_level_phases(n, *ram_slots, *disk_slots).1),
        }
    }

    /// Whether the schedule has a reverse phase (it can produce a gradient).
    pub fn is_reversible(&self) -> bool {
        match &self.body {
            Body::Listed { reverse, .. } => !reverse.is_empty(),
            Body::ForwardOnly => false,
            _ => true,
        }
    }

    /// Number of slots the schedule addresses (largest slot index + 1; for Revolve and online
    /// schedules, the slots their planner may use).
    pub fn n_slots(&self) -> usize {
        match &self.body {
            Body::Listed { forward, reverse } => forward
                .iter()
                .chain(reverse)
                .filter_map(|a| match *a {
                    Action::Store { slot, .. }
                    | Action::StepKeepingStages { slot, .. }
                    | Action::Restore { slot, .. }
                    | Action::Free { slot } => Some(slot + 1),
                    _ => None,
                })
                .max()
                .unwrap_or(0),
            Body::StoreAll | Body::SolutionOnly => self.n_steps.saturating_sub(1),
            Body::ForwardOnly => 0,
            Body::Revolve { slots } => revolve_slots(self.n_steps, *slots),
            Body::Online { slots } => (*slots).min(self.n_steps.saturating_sub(1)),
            Body::TwoLevel { n_slots, .. } => *n_slots,
        }
    }

    /// Whether slot `slot` lives on disk (otherwise in RAM).
    pub fn slot_on_disk(&self, slot: usize) -> bool {
        self.disk_slots.contains(&slot)
    }

    /// The slots that live on disk, in increasing order.
    pub fn disk_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.disk_slots.iter().copied()
    }

    /// Whether slot `slot` is ever filled with stage values (so it needs room for them).
    pub fn slot_holds_stages(&self, slot: usize) -> bool {
        match &self.body {
            Body::Listed { forward, reverse } => forward
                .iter()
                .chain(reverse)
                .any(|a| matches!(*a, Action::StepKeepingStages { slot: s, .. } if s == slot)),
            Body::StoreAll => slot < self.n_slots(),
            _ => false,
        }
    }

    /// [`Schedule::slot_holds_stages`] for every slot at once (`n_slots()` entries), in one
    /// pass over listed actions.
    pub fn stage_slots(&self) -> Vec<bool> {
        match &self.body {
            Body::Listed { forward, reverse } => {
                let mut stages = vec![false; self.n_slots()];
                for a in forward.iter().chain(reverse) {
                    if let Action::StepKeepingStages { slot, .. } = *a {
                        stages[slot] = true;
                    }
                }
                stages
            }
            Body::StoreAll => vec![true; self.n_slots()],
            _ => vec![false; self.n_slots()],
        }
    }

    /// Validate the schedule: every action can run, the forward phase ends at `u_N`, and a
    /// non-empty reverse phase reverses every step once, in order.
    pub fn validate(&self) -> Result<()> {
        let unit = StepCost {
            rhs_per_step: 0,
            rhs_per_stage_recompute: 0,
            vjp_per_reverse: 0,
            stage_vectors: 1,
        };
        self.simulate(&unit, 0).map(|_| ())
    }

    /// Predict the statistics of a full forward + reverse run, validating the schedule: one
    /// run of a [`Tracker`] (the ledger the executors drive) over the actions, in time linear
    /// in their number.
    ///
    /// Actions are priced as [`Tracker::apply`] says; peaks are counted per tier
    /// (`peak_stored_vectors` over RAM slots, `peak_disk_vectors` over disk slots), and bytes
    /// are `vectors × vector_bytes`, where `vector_bytes` is one state vector's size (state
    /// length × bytes per value: 8 for `f64`, 4 for `f32`).
    pub fn predict(&self, cost: &StepCost, vector_bytes: u64) -> Result<Stats> {
        self.simulate(cost, vector_bytes)
    }

    /// Run a tracker over both phases; errors name the offending action (or phase end).
    fn simulate(&self, cost: &StepCost, vector_bytes: u64) -> Result<Stats> {
        if self.n_steps == 0 {
            return Err(LedgerError::NoSteps.at(0, "-"));
        }
        let mut tracker = Tracker::for_schedule(self, cost, vector_bytes);
        let apply = |tracker: &mut Tracker, action: &Action, phase| {
            let index = tracker.applied();
            tracker
                .apply(action, phase)
                .map_err(|reason| reason.at(index, action))
        };
        for action in self.forward() {
            apply(&mut tracker, &action, Phase::Forward)?;
        }
        tracker.end_forward()?;
        let mut reversed_any = false;
        for action in self.reverse() {
            reversed_any = true;
            apply(&mut tracker, &action, Phase::Reverse)?;
        }
        if reversed_any {
            tracker.end_reverse()?;
        }
        Ok(tracker.stats())
    }

    /// A human-readable summary: name, steps, and the predicted cost for `cost` and state
    /// vectors of `vector_bytes` bytes (with a disk line when slots live on disk).
    pub fn summary(&self, cost: &StepCost, vector_bytes: u64) -> Result<String> {
        let p = self.predict(cost, vector_bytes)?;
        let mut text = format!(
            "schedule `{}`: {} steps, {} slots\n  predicted: {} forward steps, {} recomputed \
             steps, {} stage recomputations, {} RHS evaluations, {} VJPs\n  peak memory: {} \
             vectors ({} bytes) in at most {} live slots",
            self.name,
            self.n_steps,
            self.n_slots(),
            p.forward_steps,
            p.recomputed_steps,
            p.stage_recomputations,
            p.rhs_evals,
            p.vjp_evals,
            p.peak_stored_vectors,
            p.peak_stored_bytes,
            p.peak_slots
        );
        if !self.disk_slots.is_empty() {
            text.push_str(&format!(
                "\n  peak disk: {} vectors ({} bytes) in {} disk slots; {} vectors written, {} \
                 read",
                p.peak_disk_vectors,
                p.peak_disk_bytes,
                self.disk_slots.len(),
                p.disk_writes,
                p.disk_reads
            ));
        }
        Ok(text)
    }

    /// The schedule and its predicted cost as JSON: `{"name", "n_steps", "n_slots",
    /// "disk_slots": [slot], "predicted": Stats, "forward": [Action], "reverse": [Action]}`.
    pub fn to_json(&self, cost: &StepCost, vector_bytes: u64) -> Result<String> {
        #[derive(Serialize)]
        struct Printed<'a> {
            name: &'a str,
            n_steps: usize,
            n_slots: usize,
            disk_slots: Vec<usize>,
            predicted: Stats,
            forward: PhaseActions<'a>,
            reverse: PhaseActions<'a>,
        }
        let printed = Printed {
            name: &self.name,
            n_steps: self.n_steps,
            n_slots: self.n_slots(),
            disk_slots: self.disk_slots().collect(),
            predicted: self.predict(cost, vector_bytes)?,
            forward: PhaseActions(self, Phase::Forward),
            reverse: PhaseActions(self, Phase::Reverse),
        };
        serde_json::to_string_pretty(&printed)
            .map_err(|e| Error::InvalidRequest(format!("cannot print schedule as JSON: {e}")))
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "schedule `{}` for {} steps", self.name, self.n_steps)?;
        if !self.disk_slots.is_empty() {
            let slots: Vec<String> = self.disk_slots().map(|s| s.to_string()).collect();
            writeln!(f, "disk slots: {}", slots.join(", "))?;
        }
        writeln!(f, "forward:")?;
        for a in self.forward() {
            writeln!(f, "  {a}")?;
        }
        writeln!(f, "reverse:")?;
        for a in self.reverse() {
            writeln!(f, "  {a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const RK4: StepCost = StepCost {
        rhs_per_step: 4,
        rhs_per_stage_recompute: 3,
        vjp_per_reverse: 4,
        stage_vectors: 4,
    };

    #[test]
    fn store_all_and_solution_only_costs() {
        let s = Schedule::store_all(10).predict(&RK4, 16).unwrap();
        assert_eq!(
            (
                s.rhs_evals,
                s.vjp_evals,
                s.recomputed_steps,
                s.stage_recomputations
            ),
            (40, 40, 0, 0)
        );
        assert_eq!((s.peak_stored_vectors, s.peak_stored_bytes), (36, 576));
        let s = Schedule::solution_only(10).predict(&RK4, 16).unwrap();
        assert_eq!(
            (
                s.rhs_evals,
                s.vjp_evals,
                s.recomputed_steps,
                s.stage_recomputations
            ),
            (40 + 9 * 3, 40, 0, 9)
        );
        assert_eq!(s.peak_stored_vectors, 9);
        for n in 1..5 {
            Schedule::store_all(n).validate().unwrap();
            Schedule::solution_only(n).validate().unwrap();
        }
    }

    #[test]
    fn invalid_schedules_name_the_action() {
        let err = Schedule::new(
            "bad",
            2,
            vec![Action::Advance { from: 0, to: 2 }],
            vec![Action::Reverse {
                step: 0,
                stages: StageSource::Recompute,
            }],
        )
        .unwrap_err();
        assert_eq!(
            err,
            Error::InvalidSchedule {
                index: 1,
                action: "reverse step 0 (recompute stages)".into(),
                reason: LedgerError::OutOfOrder { step: 0, next: 1 }
            }
        );
        assert_eq!(
            err.to_string(),
            "invalid checkpoint schedule at action 1 (reverse step 0 (recompute stages)): the \
             next step to reverse is 1"
        );
        let err = Schedule::new(
            "bad",
            2,
            vec![Action::Advance { from: 0, to: 2 }],
            vec![Action::Reverse {
                step: 1,
                stages: StageSource::Tape,
            }],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("the tape does not hold step 1"),
            "{err}"
        );
        let err = Schedule::new(
            "bad",
            2,
            vec![Action::Advance { from: 0, to: 2 }],
            vec![Action::Restore { slot: 0, step: 1 }],
        )
        .unwrap_err();
        assert!(err.to_string().contains("slot 0 is empty"), "{err}");
        let err = Schedule::new("short", 3, vec![Action::Advance { from: 0, to: 2 }], vec![])
            .unwrap_err();
        assert!(err.to_string().contains("must end at u3"), "{err}");
        let err = Schedule::new(
            "partial",
            2,
            vec![
                Action::Store { slot: 0, step: 0 },
                Action::Advance { from: 0, to: 2 },
            ],
            vec![
                Action::Restore { slot: 0, step: 0 },
                Action::Advance { from: 0, to: 1 },
                Action::Reverse {
                    step: 1,
                    stages: StageSource::Recompute,
                },
            ],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("steps 0..1 were never reversed"),
            "{err}"
        );
    }

    #[test]
    fn disk_slots_are_counted_apart_from_ram() {
        // Step 0's stages go to disk slot 1, u1 to RAM slot 0, the last step to the tape.
        let forward = vec![
            Action::StepKeepingStages { slot: 1, step: 0 },
            Action::Store { slot: 0, step: 1 },
            Action::Advance { from: 1, to: 2 },
            Action::Tape { step: 2 },
        ];
        let reverse = vec![
            Action::Reverse {
                step: 2,
                stages: StageSource::Tape,
            },
            Action::Restore { slot: 0, step: 1 },
            Action::Reverse {
                step: 1,
                stages: StageSource::Recompute,
            },
            Action::Restore { slot: 1, step: 0 },
            Action::Reverse {
                step: 0,
                stages: StageSource::Slot(1),
            },
        ];
        let s = Schedule::tiered("mixed", 3, forward.clone(), reverse.clone(), [1]).unwrap();
        let p = s.predict(&RK4, 16).unwrap();
        assert_eq!((p.peak_stored_vectors, p.peak_stored_bytes), (1, 16));
        assert_eq!((p.peak_disk_vectors, p.peak_disk_bytes), (4, 64));
        // 4 stage vectors written; one vector (u0) restored plus 4 stage vectors reversed.
        assert_eq!((p.disk_writes, p.disk_reads), (4, 5));
        assert!(s.to_string().contains("disk slots: 1\n"), "{s}");
        assert!(s.summary(&RK4, 16).unwrap().contains(
            "peak disk: 4 vectors (64 bytes) in 1 disk slots; 4 vectors written, 5 read"
        ));
        let json: serde_json::Value = serde_json::from_str(&s.to_json(&RK4, 16).unwrap()).unwrap();
        assert_eq!(json["disk_slots"][0], 1);
        assert_eq!(json["predicted"]["disk_reads"], 5);
        // The same actions all in RAM.
        let r = Schedule::new("ram", 3, forward.clone(), reverse.clone()).unwrap();
        let q = r.predict(&RK4, 16).unwrap();
        assert_eq!(
            (q.peak_stored_vectors, q.disk_writes, q.disk_reads),
            (5, 0, 0)
        );
        assert_eq!(q.rhs_evals, p.rhs_evals);
        let err = Schedule::tiered("bad", 3, forward, reverse, [2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid planning request: disk slot 2 is never used (the schedule addresses 2 slots)"
        );
    }

    #[test]
    fn printers_show_the_prediction() {
        let s = Schedule::solution_only(3);
        let text = s.summary(&RK4, 16).unwrap();
        assert!(text.contains("3 steps, 2 slots"), "{text}");
        assert!(text.contains("18 RHS evaluations, 12 VJPs"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&s.to_json(&RK4, 16).unwrap()).unwrap();
        assert_eq!(json["predicted"]["rhs_evals"], 18);
        assert_eq!(json["forward"][0]["action"], "store");
        assert_eq!(json["reverse"][0]["stages"], "tape");
        assert_eq!(json["reverse"][3]["stages"], "recompute");
    }
}
