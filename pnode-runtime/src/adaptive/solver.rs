//! The adaptive driver: trial steps, error control, online checkpointing as steps are
//! accepted, and the reverse sweep over the accepted grid.

use super::controller::{Controller, initial_step, weighted_rms};
use super::pair::{EmbeddedErk, EmbeddedStepper};
use super::plan::{ForwardPlan, check_times};
use super::{AdaptiveCheckpointing, AdaptiveOptions, AdaptiveStats};
use crate::checkpoint::online::OnlinePlanner;
use crate::checkpoint::{Action, Phase, Schedule, StageSource, StepCost, Tracker};
use crate::error::{Error, Result, check_len, first_non_finite};
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

/// Bytes of one `f64` state vector of length `n`.
fn vector_bytes(n: usize) -> u64 {
    (n * std::mem::size_of::<f64>()) as u64
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
    cost: StepCost,
    rtol: Vec<f64>,
    atol: Vec<f64>,
    /// Accepted grid `t_0 … t_N` of the last run.
    times: Vec<f64>,
    output_idx: Vec<usize>,
    outputs: Vec<f64>,
    schedule: Option<Schedule>,
    spacing: Option<usize>,
    slots: Vec<Vec<f64>>,
    /// Stage values of the last trial step (the tape), and of recomputed steps in reverse.
    tape: Vec<f64>,
    current: Vec<f64>,
    next: Vec<f64>,
    err: Vec<f64>,
    params: Vec<f64>,
    lambda: Vec<f64>,
    mu: Vec<f64>,
    dl_du: Vec<f64>,
    ledger: Option<Tracker>,
    measured: Stats,
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
        if let AdaptiveCheckpointing::Online { slots: 0 } = checkpointing {
            OnlinePlanner::new(0)?;
        }
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
        let stage_len = stepper.stage_vectors() * n;
        Ok(Self {
            q: stepper.error_order(),
            cost: stepper.cost(),
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
            slots: Vec::new(),
            tape: vec![0.0; stage_len],
            current: vec![0.0; n],
            next: vec![0.0; n],
            err: vec![0.0; n],
            params: vec![0.0; n_params],
            lambda: vec![0.0; n],
            mu: vec![0.0; n_params],
            dl_du: vec![0.0; output_times.len() * n],
            ledger: None,
            measured: Stats::default(),
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

    /// Statistics of the last run (forward, plus reverse if one followed).
    pub fn stats(&self) -> AdaptiveStats {
        let sweep = match &self.ledger {
            Some(ledger) => ledger.stats().with_measured(&self.measured),
            None => Stats {
                forward_steps: self.counts.accepted_steps,
                ..Stats::default()
            }
            .with_measured(&self.measured),
        };
        AdaptiveStats {
            sweep,
            ..self.counts
        }
    }

    /// Solve forward without keeping checkpoints; returns the outputs (`K × n`).
    pub fn solve<M: Rhs + ?Sized>(&mut self, model: &mut M, u0: &[f64], p: &[f64]) -> Result<&[f64]>
    where
        S: EmbeddedStepper<M>,
    {
        self.forwarded = false;
        self.schedule = None;
        self.ledger = None;
        self.spacing = None;
        self.run_forward(model, u0, p, None)?;
        Ok(&self.outputs)
    }

    /// Solve forward keeping checkpoints as the checkpointing mode says; returns the outputs
    /// (`K × n`). Follow with [`AdaptiveSolver::backward`].
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
        self.ledger = None;
        let mut plan = ForwardPlan::new(self.checkpointing)?;
        self.run_forward(model, u0, p, Some(&mut plan))?;
        self.spacing = plan.spacing();
        let schedule = plan.finish()?;
        // The ledger replays what the sweep did: it validates the actions and counts the
        // steps and the peak memory the sweep held.
        let mut ledger = Tracker::for_schedule(&schedule, &self.cost, vector_bytes(self.n));
        for action in schedule.forward() {
            let position = ledger.applied();
            ledger
                .apply(&action, Phase::Forward)
                .map_err(|reason| reason.at(position, action))?;
        }
        ledger.end_forward()?;
        self.ledger = Some(ledger);
        self.schedule = Some(schedule);
        self.forwarded = true;
        Ok(&self.outputs)
    }

    /// The discrete adjoint of the last [`AdaptiveSolver::forward`] on its accepted grid: given
    /// `dl_du = ∂L/∂u(t_k)` (`K × n`), returns `dL/du_0` and `dL/dθ`. Runs once per forward
    /// sweep, with the same model.
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
        let (Some(schedule), Some(ledger)) = (self.schedule.take(), self.ledger.take()) else {
            return Err(Error::Usage("the forward sweep kept no schedule".into()));
        };
        let result = self.run_reverse(model, dl_du, &schedule, ledger);
        self.schedule = Some(schedule);
        result?;
        Ok(Gradient {
            du0: self.lambda.clone(),
            dp: self.mu.clone(),
        })
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

    fn step_at(&self, index: usize) -> StepAt {
        let t = self.times[index];
        StepAt {
            index,
            t,
            h: self.times[index + 1] - t,
        }
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
        self.measured = Stats::default();
        self.counts = AdaptiveStats::default();
        self.params.copy_from_slice(p);
        self.current.copy_from_slice(u0);
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
                let mut f0 = std::mem::take(&mut self.next);
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
                    &mut self.measured.rhs_evals,
                );
                if h.is_ok() {
                    self.stepper.seed_first_stage(self.t0, u0, &f0);
                }
                self.next = f0;
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
            self.stepper.try_step(
                model,
                at,
                &self.params,
                &self.current,
                &mut self.next,
                &mut self.tape,
                &mut self.err,
                &mut self.measured,
            )?;
            let bad = first_non_finite(&self.next).or_else(|| first_non_finite(&self.err));
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
            let (err, component, r) =
                weighted_rms(&self.err, &self.current, &self.next, &self.rtol, &self.atol);
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
                for action in &actions {
                    self.keep(action)?;
                }
            }
            std::mem::swap(&mut self.current, &mut self.next);
            self.times.push(t_new);
            self.counts.accepted_steps += 1;
            t = t_new;
            if t_new == target {
                self.outputs[next_out * n..(next_out + 1) * n].copy_from_slice(&self.current);
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

    /// Carry out a forward action for the step just accepted (its stage values are on the
    /// tape, its starting solution is `current`).
    fn keep(&mut self, action: &Action) -> Result<()> {
        match *action {
            Action::Store { slot, .. } => {
                let n = self.n;
                let buf = self.slot_mut(slot);
                if buf.len() < n {
                    buf.resize(n, 0.0);
                }
                let current = &self.current;
                self.slots[slot][..n].copy_from_slice(current);
            }
            Action::StepKeepingStages { slot, .. } => {
                let len = self.tape.len();
                let buf = self.slot_mut(slot);
                if buf.len() != len {
                    buf.resize(len, 0.0);
                }
                let tape = &self.tape;
                self.slots[slot].copy_from_slice(tape);
            }
            // The step is taken already; its stages stay on the tape for a `Tape`.
            Action::Advance { .. } | Action::Tape { .. } | Action::Free { .. } => {}
            Action::Restore { .. } | Action::Reverse { .. } => {
                return Err(Error::Usage(format!(
                    "`{action}` cannot run in an adaptive forward sweep"
                )));
            }
        }
        Ok(())
    }

    fn slot_mut(&mut self, slot: usize) -> &mut Vec<f64> {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, Vec::new);
        }
        &mut self.slots[slot]
    }

    /// One step from `current` (grid index `index`), keeping its stages on the tape when
    /// `tape`; used by the reverse sweep's recomputations.
    fn retake_step<M: Rhs + ?Sized>(
        &mut self,
        model: &mut M,
        index: usize,
        keep: Keep,
    ) -> Result<()>
    where
        S: EmbeddedStepper<M>,
    {
        let at = self.step_at(index);
        let stages = match keep {
            Keep::Nothing => None,
            Keep::Tape => Some(self.tape.as_mut_slice()),
            Keep::Slot(slot) => {
                let len = self.tape.len();
                let buf = self.slot_mut(slot);
                if buf.len() != len {
                    buf.resize(len, 0.0);
                }
                Some(self.slots[slot].as_mut_slice())
            }
        };
        self.stepper.step(
            model,
            at,
            &self.params,
            &self.current,
            &mut self.next,
            stages,
            &mut self.measured,
        )?;
        std::mem::swap(&mut self.current, &mut self.next);
        Ok(())
    }

    fn run_reverse<M: RhsVjp + ?Sized>(
        &mut self,
        model: &mut M,
        dl_du: &[f64],
        schedule: &Schedule,
        mut ledger: Tracker,
    ) -> Result<()>
    where
        S: EmbeddedStepper<M> + AdjointStepper<M>,
    {
        let n = self.n;
        let n_steps = self.times.len() - 1;
        self.lambda.fill(0.0);
        self.mu.fill(0.0);
        let mut next_output = self.output_idx.len();
        let output_idx = std::mem::take(&mut self.output_idx);
        let mut add_output = |this: &mut Self, index: usize| {
            if next_output > 0 && output_idx[next_output - 1] == index {
                let g = &dl_du[(next_output - 1) * n..next_output * n];
                for (l, &gv) in this.lambda.iter_mut().zip(g) {
                    *l += gv;
                }
                next_output -= 1;
            }
        };
        let result = (|| -> Result<()> {
            add_output(self, n_steps);
            for action in schedule.reverse() {
                let position = ledger.applied();
                ledger
                    .apply(&action, Phase::Reverse)
                    .map_err(|reason| reason.at(position, action))?;
                self.reverse_action(model, &action)?;
                if let Action::Reverse { step, .. } = action {
                    add_output(self, step);
                }
            }
            Ok(ledger.end_reverse()?)
        })();
        self.output_idx = output_idx;
        self.ledger = Some(ledger);
        result
    }

    /// One action of the reverse phase.
    fn reverse_action<M: RhsVjp + ?Sized>(&mut self, model: &mut M, action: &Action) -> Result<()>
    where
        S: EmbeddedStepper<M> + AdjointStepper<M>,
    {
        match *action {
            Action::Reverse { step, stages } => {
                let at = self.step_at(step);
                let stage_values: &[f64] = match stages {
                    StageSource::Slot(slot) => &self.slots[slot],
                    StageSource::Tape => &self.tape,
                    StageSource::Recompute => {
                        self.stepper.recompute_stages(
                            model,
                            at,
                            &self.params,
                            &self.current,
                            &mut self.tape,
                            &mut self.measured,
                        )?;
                        &self.tape
                    }
                };
                self.stepper.reverse(
                    model,
                    at,
                    &self.params,
                    stage_values,
                    &mut self.lambda,
                    &mut self.mu,
                    &mut self.measured,
                )?;
                if let Some((component, value)) = first_non_finite(&self.lambda) {
                    return Err(Error::NonFiniteAdjoint {
                        step,
                        t: at.t,
                        component,
                        value,
                    });
                }
            }
            Action::Store { slot, .. } => {
                let n = self.n;
                let buf = self.slot_mut(slot);
                if buf.len() < n {
                    buf.resize(n, 0.0);
                }
                let current = &self.current;
                self.slots[slot][..n].copy_from_slice(current);
            }
            Action::Restore { slot, .. } => {
                let n = self.n;
                self.current.copy_from_slice(&self.slots[slot][..n]);
            }
            Action::Free { .. } => {}
            Action::Advance { from, to } => {
                for index in from..to {
                    self.retake_step(model, index, Keep::Nothing)
                        .map_err(Error::recomputing)?;
                }
            }
            Action::Tape { step } => self
                .retake_step(model, step, Keep::Tape)
                .map_err(Error::recomputing)?,
            Action::StepKeepingStages { slot, step } => self
                .retake_step(model, step, Keep::Slot(slot))
                .map_err(Error::recomputing)?,
        }
        Ok(())
    }
}

/// Where a recomputed step's stage values go.
#[derive(Debug, Clone, Copy)]
enum Keep {
    Nothing,
    Tape,
    Slot(usize),
}
