//! What an adaptive forward sweep keeps, decided as each step is accepted, and the checks of
//! the output times.

use super::AdaptiveCheckpointing;
use crate::checkpoint::online::OnlinePlanner;
use crate::checkpoint::{Action, Schedule};
use crate::error::{Error, Result};

/// What to keep, decided as each step is accepted.
pub(super) enum ForwardPlan {
    StoreAll(usize),
    SolutionOnly(usize),
    Online(OnlinePlanner),
}

impl ForwardPlan {
    pub(super) fn new(mode: AdaptiveCheckpointing) -> Result<Self> {
        Ok(match mode {
            AdaptiveCheckpointing::StoreAll => Self::StoreAll(0),
            AdaptiveCheckpointing::SolutionOnly => Self::SolutionOnly(0),
            AdaptiveCheckpointing::Online { slots } => Self::Online(OnlinePlanner::new(slots)?),
            AdaptiveCheckpointing::TwoLevel {
                ram_slots,
                disk_slots,
            } => Self::Online(OnlinePlanner::two_level(ram_slots, disk_slots)?),
        })
    }

    /// The actions of the next step (`last`: it ends the run), appended to `out`.
    pub(super) fn step(&mut self, last: bool, out: &mut Vec<Action>) -> Result<()> {
        match self {
            Self::StoreAll(n) => {
                let step = *n;
                out.push(if last {
                    Action::Tape { step }
                } else {
                    Action::StepKeepingStages { slot: step, step }
                });
                *n += 1;
            }
            Self::SolutionOnly(n) => {
                let step = *n;
                if last {
                    out.push(Action::Tape { step });
                } else {
                    out.push(Action::Store { slot: step, step });
                    out.push(Action::Advance {
                        from: step,
                        to: step + 1,
                    });
                }
                *n += 1;
            }
            Self::Online(planner) => out.extend(planner.step(last)?),
        }
        Ok(())
    }

    pub(super) fn spacing(&self) -> Option<usize> {
        match self {
            Self::Online(planner) => Some(planner.spacing()),
            _ => None,
        }
    }

    pub(super) fn finish(self) -> Result<Schedule> {
        Ok(match self {
            Self::StoreAll(n) => Schedule::store_all(n),
            Self::SolutionOnly(n) => Schedule::solution_only(n),
            Self::Online(planner) => planner.finish()?,
        })
    }
}

/// `t0` finite; output times finite, strictly increasing, the first `≥ t0`, the last `> t0`.
pub(super) fn check_times(t0: f64, output_times: &[f64]) -> Result<()> {
    let invalid = |reason: String| Err(Error::InvalidTimeGrid { reason });
    if !t0.is_finite() {
        return invalid(format!("t0 must be finite, got {t0}"));
    }
    let Some(&t1) = output_times.last() else {
        return invalid("at least one output time is needed".into());
    };
    if let Some((k, t)) = output_times
        .iter()
        .enumerate()
        .find(|(_, t)| !t.is_finite())
    {
        return invalid(format!("output time {k} is {t}"));
    }
    if let Some(k) = (1..output_times.len()).find(|&k| output_times[k] <= output_times[k - 1]) {
        return invalid(format!(
            "output times must increase strictly: output {k} (t = {}) does not come after output {} (t = {})",
            output_times[k],
            k - 1,
            output_times[k - 1]
        ));
    }
    if output_times[0] < t0 {
        return invalid(format!(
            "output time 0 (t = {}) comes before t0 = {t0}",
            output_times[0]
        ));
    }
    if t1 <= t0 {
        return invalid(format!(
            "the last output time {t1} must come after t0 = {t0}"
        ));
    }
    Ok(())
}
