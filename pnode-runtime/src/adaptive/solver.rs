//! The adaptive driver: trial steps, error control, online checkpointing as steps are
//! accepted, and the reverse sweep over the accepted grid.

use super::controller::{Controller, initial_step, weighted_rms};
use super::pair::{EmbeddedErk, EmbeddedStepper};
use super::plan::{ForwardPlan, check_times};
use super::{AdaptiveCheckpointing, AdaptiveOptions, AdaptiveStats};
use std::path::{Path, PathBuf};

use crate::checkpoint::{Action, Phase, Schedule};
use crate::error::{Error, Result, check_len, first_non_finite};
use crate::executor::Executor;
use crate::grid::TimeGrid;
use crate::model::{Rhs, RhsVjp};
use crate::solver::Gradient;
use crate::stepper::{AdjointStepper, StepAt};
use crate::tableau::Tableau;
use pnode_checkpoint::Stats;

/// The scalar options the adaptive loop reads.
struct Limits {
    h0: Option<f64>,
    h_min: f64,
    h_max: Option<f64>,
    max_steps: usize,
    max_nonfinite_retries: u32,
}

impl Limits {
    fn of(o: &AdaptiveOptions) -> Self {
        Self {
            h0: o.h0,
            h_min: o.h_min,
            h_max: o.h_max,
            max_steps: o.max_steps,
            max_nonfinite_retries: o.max_nonfinite_retries,
        }
    }
}

/// Adaptive solver with exact discrete-adjoint gradients on the accepted grid (see the module
/// docs of [`crate::adaptive`]).
///
/// Built once per (method, sizes, output times, options, checkpointing) and reused; buffers
/// grow with the longest run and are kept.
#[derive(Debug, Clone)]
pub struct AdaptiveSolver<S> {
    stepper: S,
    options: AdaptiveOptions,
    checkpointing: AdaptiveCheckpointing,
    t0: f64,
    output_times: Vec<f64>,
    n: usize,
    n_params: usize,
    q: u32,
    rtol: Vec<f64>,
    atol: Vec<f64>,
    /// Accepted grid `t_0 … t_N` of the last run.
    times: Vec<f64>,
    output_idx: Vec<usize>,
    outputs: Vec<f64>,
    schedule: Option<Schedule>,
    spacing: Option<usize>,
    /// Slots (RAM and disk), working buffers (`exec.tape` holds the last trial step's stage
    /// values) and the ledger, shared with the fixed-grid solver.
    exec: Executor,
    err: Vec<f64>,
    dl_du: Vec<f64>,
    /// Whether `exec.ledger` counts the last run (a checkpointed sweep).
    ledger_live: bool,
    counts: AdaptiveStats,
    forwarded: bool,
}

impl AdaptiveSolver<EmbeddedErk> {
    /// An adaptive explicit Runge–Kutta solver with the pair `tableau` (it needs embedded
    /// weights: bosh3, dopri5, tsit5, fehlberg45, …) for `model`'s sizes, from `t0` to the
    /// last of `output_times` (strictly increasing, the first `≥ t0`, the last `> t0`).
    pub fn explicit<M: Rhs + ?Sized>(
        tableau: Tableau,
        model: &M,
        t0: f64,
        output_times: &[f64],
        options: AdaptiveOptions,
        checkpointing: AdaptiveCheckpointing,
    ) -> Result<Self> {
        let stepper = EmbeddedErk::new(tableau, model.state_len(), model.param_len())?;
        Self::new(stepper, model, t0, output_times, options, checkpointing)
    }
}

impl<S> AdaptiveSolver<S> {
    /// A solver for any embedded pair. See [`AdaptiveSolver::explicit`].
    pub fn new<M: Rhs + ?Sized>(
        stepper: S,
        model: &M,
        t0: f64,
        output_times: &[f64],
        options: AdaptiveOptions,
        checkpointing: AdaptiveCheckpointing,
    ) -> Result<Self>
    where
        S: EmbeddedStepper<M>,
    {
        let (n, n_params) = (model.state_len(), model.param_len());
        check_times(t0, output_times)?;
        options.validate()?;
        ForwardPlan::new(checkpointing)?;
        let rtol = options.rtol.expand("rtol", n)?;
        let atol = options.atol.expand("atol", n)?;
        if let Some(i) = (0..n).find(|&i| rtol[i] == 0.0 && atol[i] == 0.0) {
            return Err(Error::InvalidAdaptiveOption {
                option: "atol",
                component: Some(i),
                value: 0.0,
                expected: "rtol and atol may not both be 0 for a component",
            });
        }
        let stage_vectors = stepper.stage_vectors();
        let slot_len = match checkpointing {
            AdaptiveCheckpointing::StoreAll => stage_vectors * n,
            _ => n,
        };
        // RAM slots at most, and disk slots.
        let tiers = match checkpointing {
            AdaptiveCheckpointing::StoreAll | AdaptiveCheckpointing::SolutionOnly => {
                (usize::MAX, 0)
            }
            AdaptiveCheckpointing::Online { slots } => (slots, 0),
            AdaptiveCheckpointing::TwoLevel {
                ram_slots,
                disk_slots,
            } => (ram_slots, disk_slots),
        };
        let exec = Executor::growing(slot_len, tiers, n, n_params, stage_vectors, &stepper.cost());
        Ok(Self {
            q: stepper.error_order(),
            stepper,
            options,
            checkpointing,
            t0,
            output_times: output_times.to_vec(),
            n,
            n_params,
            rtol,
            atol,
            times: Vec::new(),
            output_idx: Vec::with_capacity(output_times.len()),
            outputs: vec![0.0; output_times.len() * n],
            schedule: None,
            spacing: None,
            exec,
            err: vec![0.0; n],
            dl_du: vec![0.0; output_times.len() * n],
            ledger_live: false,
            counts: AdaptiveStats::default(),
            forwarded: false,
        })
    }

    /// The stepper.
    pub fn stepper(&self) -> &S {
        &self.stepper
    }

    /// The options.
    pub fn options(&self) -> &AdaptiveOptions {
        &self.options
    }

    /// The output times.
    pub fn output_times(&self) -> &[f64] {
        &self.output_times
    }

    /// The accepted grid `t_0 … t_N` of the last run (empty before the first).
    pub fn accepted_times(&self) -> &[f64] {
        &self.times
    }

    /// The accepted grid of the last run as a [`TimeGrid`] (for a fixed-grid replay).
    pub fn grid(&self) -> Result<TimeGrid> {
        TimeGrid::from_times(&self.times)
    }

    /// Grid indices of the output times in the last run's accepted grid.
    pub fn output_indices(&self) -> &[usize] {
        &self.output_idx
    }

    /// The schedule the last checkpointed forward sweep followed (`None` after a plain solve).
    pub fn schedule(&self) -> Option<&Schedule> {
        self.schedule.as_ref()
    }

    /// The online planner's final checkpoint spacing `d` in the last checkpointed run, for
    /// `Online` checkpointing (the reverse sweep recomputes at most `N(d−1)/2` steps).
    pub fn online_spacing(&self) -> Option<usize> {
        self.spacing
    }

    /// Outputs of the last run, `K × n` row-major.
    pub fn outputs(&self) -> &[f64] {
        &self.outputs
    }

    /// `u(t_k)` from the last run; `None` when `k` is not an output index.
    pub fn output(&self, k: usize) -> Option<&[f64]> {
        self.outputs.get(k * self.n..(k + 1) * self.n)
    }

    /// Statistics of the last run (forward, plus reverse if one followed): the controller's
    /// counts, and from the ledger the accepted steps taken, the steps recomputed in the
    /// reverse sweep and the peak checkpoint memory (slots, vectors and bytes, RAM and disk),
    /// with the evaluations the stepper measured.
    pub fn stats(&self) -> AdaptiveStats {
        let sweep = if self.ledger_live {
            self.exec.ledger.stats()
        } else {
            Stats {
                forward_steps: self.counts.accepted_steps,
                ..Stats::default()
            }
        };
        AdaptiveStats {
            sweep: sweep.with_measured(&self.exec.measured),
            ..self.counts
        }
    }

    /// Bytes the RAM checkpoint slots take now: they are allocated as the runs need them
    /// (kept for later runs), and never beyond the slots a bounded mode allows (`Online`,
    /// `TwoLevel`'s RAM slots), so a budget holds for the allocation too.
    pub fn checkpoint_bytes(&self) -> u64 {
        self.exec.slot_bytes()
    }

    /// Keep disk checkpoints (the disk slots of [`AdaptiveCheckpointing::TwoLevel`]) in fresh
    /// directories under `parent` instead of the system's temporary directory; see
    /// [`crate::Solver::set_checkpoint_dir`], whose rules apply unchanged.
    pub fn set_checkpoint_dir(&mut self, parent: impl Into<PathBuf>) -> Result<()> {
        self.exec.set_checkpoint_dir(parent.into())
    }

    /// The directory holding the disk checkpoints of the current forward sweep, while it
    /// exists (from [`AdaptiveSolver::forward`] to the end of [`AdaptiveSolver::backward`]).
    pub fn checkpoint_dir(&self) -> Option<&Path> {
        self.exec.checkpoint_dir()
    }

    /// Solve forward without keeping checkpoints; returns the outputs (`K × n`).
    pub fn solve<M: Rhs + ?Sized>(&mut self, model: &mut M, u0: &[f64], p: &[f64]) -> Result<&[f64]>
    where
        S: EmbeddedStepper<M>,
    {
        self.forwarded = false;
        self.schedule = None;
        self.ledger_live = false;
        self.spacing = None;
        // Checkpoints of an earlier forward sweep can no longer be reversed.
        self.exec.discard();
        self.run_forward(model, u0, p, None)?;
        Ok(&self.outputs)
    }

    /// Solve forward keeping checkpoints as the checkpointing mode says; returns the outputs
    /// (`K × n`). Follow with [`AdaptiveSolver::backward`].
    ///
    /// Each accepted step's actions are entered in the ledger as they run, so the memory it
    /// reports ([`AdaptiveStats::sweep`]) is the peak over every step of the sweep.
    pub fn forward<M: Rhs + ?Sized>(
        &mut self,
        model: &mut M,
        u0: &[f64],
        p: &[f64],
    ) -> Result<&[f64]>
    where
        S: EmbeddedStepper<M>,
    {
        self.forwarded = false;
        self.schedule = None;
        let mut plan = ForwardPlan::new(self.checkpointing)?;
        self.exec.ledger.restart(&Schedule::forward_only(0));
        self.ledger_live = true;
        self.exec.begin_sweep()?;
        let result = self
            .run_forward(model, u0, p, Some(&mut plan))
            .and_then(|()| {
                self.spacing = plan.spacing();
                let schedule = plan.finish()?;
                // The reverse sweep may use slots the forward sweep left unused.
                self.exec.extend(schedule.n_steps(), schedule.n_slots())?;
                self.exec.ledger.end_forward()?;
                Ok(schedule)
            });
        match result {
            Ok(schedule) => self.schedule = Some(schedule),
            Err(e) => {
                self.exec.discard();
                return Err(e);
            }
        }
        self.forwarded = true;
        Ok(&self.outputs)
    }

    /// The discrete adjoint of the last [`AdaptiveSolver::forward`] on its accepted grid: given
    /// `dl_du = ∂L/∂u(t_k)` (`K × n`), returns `dL/du_0` and `dL/dθ`. Runs once per forward
    /// sweep, with the same model; the reverse sweep is the fixed-grid solver's own executor
    /// on the accepted times. Disk checkpoints are removed when it ends, whether it succeeds
    /// or fails.
    pub fn backward<M: RhsVjp + ?Sized>(&mut self, model: &mut M, dl_du: &[f64]) -> Result<Gradient>
    where
        S: EmbeddedStepper<M> + AdjointStepper<M>,
    {
        check_len("dL/du at the outputs", self.outputs.len(), dl_du.len())?;
        check_len("model state", self.n, model.state_len())?;
        check_len("model parameters", self.n_params, model.param_len())?;
        if !self.forwarded {
            return Err(Error::Usage(
                "backward needs a checkpointed forward sweep first (call forward, not solve; \
                 each forward sweep can be reversed once)"
                    .into(),
            ));
        }
        self.forwarded = false;
        let Some(schedule) = self.schedule.take() else {
            return Err(Error::Usage("the forward sweep kept no schedule".into()));
        };
        let result = self.exec.run_reverse(
            &mut self.stepper,
            self.times.as_slice(),
            model,
            dl_du,
            &self.output_idx,
            &schedule,
        );
        self.schedule = Some(schedule);
        self.exec.gradient(result)
    }

    /// Loss and gradient in one call: `loss(outputs, dl_du)` returns `L` and writes
    /// `∂L/∂u(t_k)` into `dl_du` (`K × n`, zeroed before the call).
    pub fn value_and_grad<M, L>(
        &mut self,
        model: &mut M,
        u0: &[f64],
        p: &[f64],
        loss: L,
    ) -> Result<(f64, Gradient)>
    where
        M: RhsVjp + ?Sized,
        S: EmbeddedStepper<M> + AdjointStepper<M>,
        L: FnOnce(&[f64], &mut [f64]) -> f64,
    {
        self.forward(model, u0, p)?;
        let mut dl_du = std::mem::take(&mut self.dl_du);
        dl_du.fill(0.0);
        let value = loss(&self.outputs, &mut dl_du);
        let grad = self.backward(model, &dl_du);
        self.dl_du = dl_du;
        Ok((value, grad?))
    }

    /// The adaptive loop (see the module docs of [`crate::adaptive`] and [`super::controller`]).
    fn run_forward<M: Rhs + ?Sized>(
        &mut self,
        model: &mut M,
        u0: &[f64],
        p: &[f64],
        mut plan: Option<&mut ForwardPlan>,
    ) -> Result<()>
    where
        S: EmbeddedStepper<M>,
    {
        check_len("model state", self.n, model.state_len())?;
        check_len("model parameters", self.n_params, model.param_len())?;
        check_len("u0", self.n, u0.len())?;
        check_len("parameters", self.n_params, p.len())?;
        if let Some((component, value)) = first_non_finite(u0) {
            return Err(Error::NonFiniteState {
                step: 0,
                t: self.t0,
                component,
                value,
            });
        }
        let n = self.n;
        let opts = Limits::of(&self.options);
        let ctl: Controller = self.options.controller;
        let Some(&t1) = self.output_times.last() else {
            return Err(Error::InvalidTimeGrid {
                reason: "at least one output time is needed".into(),
            });
        };
        let h_max = opts.h_max.unwrap_or(t1 - self.t0).min(t1 - self.t0);
        self.stepper.reset();
        self.exec.measured = Stats::default();
        self.counts = AdaptiveStats::default();
        self.exec.params.copy_from_slice(p);
        self.exec.current.copy_from_slice(u0);
        self.times.clear();
        self.times.push(self.t0);
        self.output_idx.clear();
        let mut next_out = 0;
        if self.output_times[0] == self.t0 {
            self.outputs[..n].copy_from_slice(u0);
            self.output_idx.push(0);
            next_out = 1;
        }
        let mut h = match opts.h0 {
            Some(h0) => h0.min(h_max),
            None => {
                let mut f0 = std::mem::take(&mut self.exec.next);
                let h = initial_step(
                    model,
                    self.t0,
                    u0,
                    p,
                    self.q,
                    &self.rtol,
                    &self.atol,
                    h_max,
                    &mut f0,
                    &mut self.exec.measured.rhs_evals,
                );
                if h.is_ok() {
                    self.stepper.seed_first_stage(self.t0, u0, &f0);
                }
                self.exec.next = f0;
                h?
            }
        }
        .max(opts.h_min)
        .min(h_max);
        let mut t = self.t0;
        let mut err_prev = 1.0;
        let mut after_reject = false;
        let mut nonfinite_retries = 0u32;
        let mut attempts = 0usize;
        // The component with the largest weighted error in the last attempt, and that error.
        let mut worst = (0usize, 0.0f64);
        let mut actions = Vec::new();
        loop {
            let step = self.times.len() - 1;
            let target = self.output_times[next_out];
            let (t_new, clipped) = if t + h * 1.01 >= target {
                (target, t + h > target)
            } else {
                (t + h, false)
            };
            let h_step = t_new - t;
            if h_step <= 0.0 || (h_step < opts.h_min && t_new != target) {
                return Err(Error::StepSizeTooSmall {
                    step,
                    t,
                    h,
                    h_min: opts.h_min,
                    component: worst.0,
                    weighted_error: worst.1,
                });
            }
            if attempts == opts.max_steps {
                return Err(Error::MaxStepsReached {
                    max_steps: opts.max_steps,
                    accepted: step,
                    rejected: self.counts.rejected_steps as usize,
                    t,
                    t1,
                    h,
                    component: worst.0,
                    weighted_error: worst.1,
                });
            }
            attempts += 1;
            let at = StepAt {
                index: step,
                t,
                h: h_step,
            };
            let trial = self.stepper.try_step(
                model,
                at,
                &self.exec.params,
                &self.exec.current,
                &mut self.exec.next,
                &mut self.exec.tape,
                &mut self.err,
                &mut self.exec.measured,
            );
            if let Err(e) = trial {
                // A stage solve that did not converge (implicit pairs) rejects the trial like a
                // non-finite value: retry smaller, fail with Newton's error if it persists.
                let Error::NewtonFailed { .. } = e else {
                    return Err(e);
                };
                self.counts.rejected_steps += 1;
                self.counts.newton_rejections += 1;
                nonfinite_retries += 1;
                let h_new = h_step * ctl.min_factor;
                if nonfinite_retries > opts.max_nonfinite_retries || h_new < opts.h_min {
                    return Err(newton_failure_persists(e, h_step, nonfinite_retries - 1));
                }
                // No error estimate: `worst` keeps the last attempt that had one.
                h = h_new;
                after_reject = true;
                continue;
            }
            let bad = first_non_finite(&self.exec.next).or_else(|| first_non_finite(&self.err));
            if let Some((component, value)) = bad {
                self.counts.rejected_steps += 1;
                self.counts.nonfinite_rejections += 1;
                nonfinite_retries += 1;
                let h_new = h_step * ctl.min_factor;
                if nonfinite_retries > opts.max_nonfinite_retries || h_new < opts.h_min {
                    return Err(Error::NonFiniteRhs {
                        step,
                        t,
                        h: h_step,
                        component,
                        value,
                        retries: nonfinite_retries - 1,
                    });
                }
                worst = (component, f64::INFINITY);
                h = h_new;
                after_reject = true;
                continue;
            }
            let (err, component, r) = weighted_rms(
                &self.err,
                &self.exec.current,
                &self.exec.next,
                &self.rtol,
                &self.atol,
            );
            worst = (component, r);
            if err > 1.0 {
                self.counts.rejected_steps += 1;
                after_reject = true;
                let mut h_new = h_step * ctl.reject_factor(self.q, err);
                if h_new < opts.h_min {
                    // `h` is the step asked for: `h_step` may round to slightly above `h_min`.
                    if h > opts.h_min {
                        h_new = opts.h_min;
                    } else {
                        return Err(Error::StepSizeTooSmall {
                            step,
                            t,
                            h: h_new,
                            h_min: opts.h_min,
                            component,
                            weighted_error: r,
                        });
                    }
                }
                h = h_new;
                continue;
            }
            // Accepted: keep what the plan says, then move on.
            nonfinite_retries = 0;
            let last = t_new == t1;
            if let Some(plan) = plan.as_deref_mut() {
                actions.clear();
                plan.step(last, &mut actions)?;
                // The ledger admits the step and the slots it uses, then each action.
                let n_slots = actions.iter().filter_map(slot_used).max().unwrap_or(0);
                self.exec.extend(step + 1, n_slots)?;
                for action in &actions {
                    self.exec.enter(action, Phase::Forward)?;
                    self.exec.keep_taken(action)?;
                }
            }
            std::mem::swap(&mut self.exec.current, &mut self.exec.next);
            self.times.push(t_new);
            self.counts.accepted_steps += 1;
            t = t_new;
            if t_new == target {
                self.outputs[next_out * n..(next_out + 1) * n].copy_from_slice(&self.exec.current);
                self.output_idx.push(step + 1);
                next_out += 1;
            }
            if last {
                return Ok(());
            }
            let mut h_new = h_step * ctl.accept_factor(self.q, err, err_prev, after_reject);
            if clipped {
                // A step shortened to land on an output time says little about the next one.
                h_new = h_new.max(h);
            }
            err_prev = Controller::stored_error(err);
            after_reject = false;
            h = h_new.min(h_max).max(opts.h_min);
        }
    }
}

/// Newton's error of a trial step that still failed after `retries` retries with smaller
/// steps, the last of size `h`: the same error, its reason extended with the adaptive context.
fn newton_failure_persists(e: Error, h: f64, retries: u32) -> Error {
    match e {
        Error::NewtonFailed {
            step,
            t,
            iterations,
            residual,
            reason,
        } => Error::NewtonFailed {
            step,
            t,
            iterations,
            residual,
            reason: format!(
                "{reason}; the adaptive step still failed after {retries} retries with smaller \
                 steps (last h = {h:e})"
            ),
        },
        e => e,
    }
}

/// The number of slots `action` needs (its slot + 1), if it uses one.
fn slot_used(action: &Action) -> Option<usize> {
    match *action {
        Action::Store { slot, .. }
        | Action::StepKeepingStages { slot, .. }
        | Action::Restore { slot, .. }
        | Action::Free { slot } => Some(slot + 1),
        Action::Advance { .. } | Action::Tape { .. } | Action::Reverse { .. } => None,
    }
}
