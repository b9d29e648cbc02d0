//! Adaptive time stepping for [`TensorSolver`]: the runtime's error control
//! (`pnode_runtime::adaptive`) over tensor states, with the exact discrete adjoint of the
//! accepted steps.
//!
//! Each trial step `u_n → u_{n+1}` of an embedded explicit pair (dopri5, tsit5, bosh3,
//! fehlberg45) is the fixed-grid tensor step ([`TensorErk::try_step`] runs
//! [`TensorErk::step`]'s code) plus the estimate `e = h Σ_i (b_i − b̂_i) K_i` from the stage
//! derivatives the step computed. Over all `n` tensor elements (flat index `i`),
//!
//! ```text
//! r_i = |e_i| / (atol + rtol · max(|u_n,i|, |u_{n+1},i|))   (0 where e_i = 0),
//! err = sqrt(1/n Σ_i r_i²),
//! ```
//!
//! computed with tensor ops on the state's device; one two-element tensor `(err, Σ_i u_{n+1,i})`
//! comes to the host per trial step (the sum is non-finite iff an element is, up to overflow,
//! which the exact check then rules out). The step is accepted when `err ≤ 1`; the next step
//! size, the retry after a rejection and the automatic first step are the runtime's
//! ([`pnode_runtime::adaptive::controller`]: PI controller
//! `h_new = h·clamp(safety·err_n^(−β1)·err_{n−1}^(β2), min_factor, max_factor)`, HNW's initial
//! step from the norms `‖u0‖`, `‖f(t0, u0)‖`, `‖f(t0 + h0, u0 + h0 f0) − f0‖/h0` with
//! `sc_i = atol + rtol |u0_i|`), and steps are clipped to land exactly on every output time.
//!
//! As each step is accepted, the checkpointing mode decides what to keep (store-all: its stage
//! inputs; solution-only: its starting solution; online: `OnlinePlanner`'s decision), and the
//! solver's one action executor carries it out with the trial step's result in place of a
//! recomputation. When the run ends, the accepted times become the solver's grid and the
//! actions' schedule its plan, so [`TensorSolver::backward`] is the fixed-grid reverse sweep on
//! the accepted grid: the gradient is the discrete adjoint of the accepted steps with their
//! step sizes held fixed — bitwise the fixed-grid [`TensorSolver`]'s gradient on
//! `TimeGrid::from_times(accepted_times)`, in every checkpointing mode (see the runtime's
//! `adaptive` module docs for why the grid's own dependence on `θ` is not differentiated).
//!
//! Tolerances are scalars. `K_1 = f(t_n, u_n)` is evaluated once per point, as in the runtime:
//! a retry after a rejection reuses the rejected trial's, the step after an accepted FSAL step
//! uses that step's last stage `f(t_n + c_s h, u_{n+1})` when `t_n + c_s h` is bitwise the
//! new `t_n`, and the first step uses the initial step's `f(t0, u0)` — the values `f` would
//! return, so every accepted step stays bitwise the fixed-grid step, and a run costs the
//! runtime's number of RHS evaluations.
//!
//! Failures name the step, `t` and `h`: `StepSizeTooSmall` and `MaxStepsReached` with the flat
//! index of the element with the largest weighted error `r_i` of the last attempt (read only
//! when the error is raised), `NonFiniteRhs` after `max_nonfinite_retries` retries with
//! `h·min_factor`, each as [`Error::Runtime`].
//!
//! # References
//! * E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 2nd ed.,
//!   1993, §II.4 (error norm, initial step).
//! * G. Söderlind, "Automatic control and adaptive time-stepping", Numer. Algorithms 31 (2002).

use std::sync::Arc;

use pnode_runtime::adaptive::controller::{Controller, initial_step_choice, initial_step_guess};
use pnode_runtime::adaptive::{AdaptiveCheckpointing, AdaptiveOptions, AdaptiveStats, Tolerance};
use pnode_runtime::checkpoint::online::OnlinePlanner;
use pnode_runtime::checkpoint::{Action, Checkpointing, Phase, Schedule, Stats, Tracker};
use pnode_runtime::{AdaptiveSolver, ModelError, Rhs, Tableau, TimeGrid};
use tch::{Device, Kind, Tensor};

use super::{TensorSolver, non_finite, tensor_bytes};
use crate::erk::{StepAt, TensorErk};
use crate::error::{Error, Result};
use crate::ffi;
use crate::model::TensorRhs;

/// What an adaptive tensor solver is configured with.
#[derive(Debug, Clone)]
pub(crate) struct AdaptiveConfig {
    pub options: AdaptiveOptions,
    pub checkpointing: AdaptiveCheckpointing,
    pub t0: f64,
    pub output_times: Vec<f64>,
    /// Order of the pair's error estimate.
    pub q: u32,
    pub rtol: f64,
    pub atol: f64,
}

/// A one-component stand-in model: the runtime's [`AdaptiveSolver`] constructor validates the
/// times, options, tolerances and pair on it, so both backends refuse the same input with the
/// same error.
struct StandIn;

impl Rhs for StandIn {
    fn state_len(&self) -> usize {
        1
    }
    fn param_len(&self) -> usize {
        0
    }
    fn rhs(&mut self, _t: f64, _u: &[f64], _p: &[f64], f: &mut [f64]) {
        f.fill(0.0);
    }
    fn try_rhs(
        &mut self,
        _t: f64,
        _u: &[f64],
        _p: &[f64],
        f: &mut [f64],
    ) -> Result<(), ModelError> {
        f.fill(0.0);
        Ok(())
    }
}

fn scalar(option: &str, tol: &Tolerance) -> Result<f64> {
    match tol {
        Tolerance::Scalar(v) => Ok(*v),
        Tolerance::PerComponent(_) => Err(Error::Usage(format!(
            "the tensor backend takes a scalar `{option}` (one value for every element)"
        ))),
    }
}

/// What to keep of each accepted step, decided as it is accepted (the forward actions of
/// `Schedule::store_all(N)`, `Schedule::solution_only(N)` and the online schedule).
enum ForwardPlan {
    StoreAll(usize),
    SolutionOnly(usize),
    Online(OnlinePlanner),
}

impl ForwardPlan {
    fn new(mode: AdaptiveCheckpointing) -> Result<Self> {
        Ok(match mode {
            AdaptiveCheckpointing::StoreAll => Self::StoreAll(0),
            AdaptiveCheckpointing::SolutionOnly => Self::SolutionOnly(0),
            AdaptiveCheckpointing::Online { slots } => {
                Self::Online(OnlinePlanner::new(slots).map_err(pnode_runtime::Error::from)?)
            }
            // Slots on disk: the tensor backend keeps its checkpoints in memory, as for fixed
            // grids.
            AdaptiveCheckpointing::TwoLevel {
                ram_slots,
                disk_slots,
            } => {
                return Err(Error::Usage(format!(
                    "adaptive checkpointing over two levels ({ram_slots} RAM, {disk_slots} disk \
                     slots) keeps slots on disk; the tensor backend keeps checkpoints in memory \
                     (use store-all, solution-only or online)"
                )));
            }
        })
    }

    /// The actions of the next step (`last`: it ends the run).
    fn step(&mut self, last: bool) -> Result<Vec<Action>> {
        Ok(match self {
            Self::StoreAll(n) => {
                let step = *n;
                *n += 1;
                vec![if last {
                    Action::Tape { step }
                } else {
                    Action::StepKeepingStages { slot: step, step }
                }]
            }
            Self::SolutionOnly(n) => {
                let step = *n;
                *n += 1;
                if last {
                    vec![Action::Tape { step }]
                } else {
                    vec![
                        Action::Store { slot: step, step },
                        Action::Advance {
                            from: step,
                            to: step + 1,
                        },
                    ]
                }
            }
            Self::Online(planner) => planner
                .step(last)
                .map_err(pnode_runtime::Error::from)?
                .to_vec(),
        })
    }

    fn finish(self) -> Result<Schedule> {
        Ok(match self {
            Self::StoreAll(n) => Schedule::store_all(n),
            Self::SolutionOnly(n) => Schedule::solution_only(n),
            Self::Online(planner) => planner.finish().map_err(pnode_runtime::Error::from)?,
        })
    }
}

/// The element with the largest weighted error of the last attempt, located only when an
/// error names it.
enum Worst {
    Nothing,
    Known(usize, f64),
    Errors(Tensor),
}

impl Worst {
    /// `(flat index, r_i)`.
    fn locate(&self) -> (usize, f64) {
        match self {
            Worst::Nothing => (0, 0.0),
            Worst::Known(i, r) => (*i, *r),
            Worst::Errors(r) => {
                let flat = r.flatten(0, -1);
                let i = flat.argmax(0, false).int64_value(&[]);
                (i as usize, flat.double_value(&[i]))
            }
        }
    }
}

/// The weighted errors `r_i = |e_i| / (atol + rtol max(|u_i|, |u_next,i|))` (0 where
/// `e_i = 0`), in f64.
fn weighted_errors(e: &Tensor, u: &Tensor, u_next: &Tensor, rtol: f64, atol: f64) -> Tensor {
    let sc = u.abs().maximum(&u_next.abs()) * rtol + atol;
    let r = (e.abs() / sc).masked_fill(&e.eq(0.0), 0.0);
    if r.kind() == Kind::Double {
        r
    } else {
        r.to_kind(Kind::Double)
    }
}

impl TensorSolver {
    /// An adaptive solver with the embedded explicit pair `tableau` (bosh3, dopri5, tsit5,
    /// fehlberg45, …) from `t0` to the last of `output_times` (strictly increasing, the first
    /// `≥ t0`, the last `> t0`), with the runtime's options (scalar tolerances) and adaptive
    /// checkpointing modes; see the [module docs](self). The time grid is the last run's
    /// accepted grid ([`TensorSolver::accepted_times`]).
    pub fn adaptive(
        tableau: Tableau,
        t0: f64,
        output_times: &[f64],
        options: AdaptiveOptions,
        checkpointing: AdaptiveCheckpointing,
    ) -> Result<Self> {
        let rtol = scalar("rtol", &options.rtol)?;
        let atol = scalar("atol", &options.atol)?;
        AdaptiveSolver::explicit(
            tableau.clone(),
            &StandIn,
            t0,
            output_times,
            options.clone(),
            checkpointing,
        )?;
        // The mode is checked here, not first at the forward sweep.
        ForwardPlan::new(checkpointing)?;
        let erk = TensorErk::new(tableau);
        let q = erk.error_order().expect("the runtime checked the pair");
        let t_end = *output_times.last().expect("the runtime checked the times");
        let grid = TimeGrid::from_times(&[t0, t_end])?;
        let mut solver = Self::fresh(erk, grid, Vec::new(), Checkpointing::StoreAll);
        solver.adaptive = Some(Arc::new(AdaptiveConfig {
            options,
            checkpointing,
            t0,
            output_times: output_times.to_vec(),
            q,
            rtol,
            atol,
        }));
        Ok(solver)
    }

    /// HNW's automatic initial step over tensors (two RHS evaluations, counted); also returns
    /// `f(t0, u0)`, the first step's `K_1`.
    fn initial_step(
        &mut self,
        model: &mut dyn TensorRhs,
        config: &AdaptiveConfig,
        h_max: f64,
    ) -> Result<(f64, Tensor)> {
        let (t0, u0) = (config.t0, self.current().shallow_clone());
        let at = StepAt {
            index: 0,
            t: t0,
            h: 0.0,
        };
        let sc = u0.abs() * config.rtol + config.atol;
        let norm = |x: &Tensor| {
            (x / &sc)
                .to_kind(Kind::Double)
                .square()
                .mean(Kind::Double)
                .sqrt()
                .double_value(&[])
        };
        let f0 = TensorErk::rhs(model, at, t0, &u0, &mut self.measured)?;
        let d1 = norm(&f0);
        let h0 = initial_step_guess(norm(&u0), d1, h_max);
        let u1 = ffi::add_scaled(&u0, &f0, h0)?;
        let f1 = TensorErk::rhs(model, at, t0 + h0, &u1, &mut self.measured)?;
        let d2 = norm(&(f1 - &f0)) / h0;
        Ok((initial_step_choice(h0, d1, d2, config.q, h_max), f0))
    }

    /// The adaptive forward sweep (see the [module docs](self)); `keep`: checkpoint as the
    /// mode says, for a [`TensorSolver::backward`].
    pub(super) fn run_adaptive(
        &mut self,
        model: &mut dyn TensorRhs,
        u0: &Tensor,
        keep: bool,
    ) -> Result<()> {
        let config = self.adaptive.clone().expect("an adaptive solver");
        self.counts = None;
        if let Some((count, index, value)) = non_finite(u0) {
            return Err(Error::NonFiniteState {
                step: 0,
                t: config.t0,
                count,
                numel: u0.numel() as i64,
                index,
                value,
            });
        }
        self.measured = Stats::default();
        self.slots.clear();
        self.tape.clear();
        self.outputs.clear();
        self.pending = None;
        self.current = Some(tch::no_grad(|| u0.detach().copy()));
        let mut plan = if keep {
            Some(ForwardPlan::new(config.checkpointing)?)
        } else {
            None
        };
        let mut times = vec![config.t0];
        let mut output_idx = Vec::with_capacity(config.output_times.len());
        let mut counts = AdaptiveStats::default();
        tch::no_grad(|| {
            self.adaptive_loop(
                model,
                &config,
                plan.as_mut(),
                &mut times,
                &mut output_idx,
                &mut counts,
            )
        })?;
        // The accepted grid and the actions' schedule: the reverse sweep is the fixed-grid one.
        let n_steps = times.len() - 1;
        self.grid = TimeGrid::from_points(times)?;
        self.output_idx = output_idx;
        let schedule = match plan {
            Some(plan) => plan.finish()?,
            None => Schedule::forward_only(n_steps),
        };
        // The ledger replays what the sweep did: it validates the actions and counts the steps
        // and the peak memory, in bytes of the state tensor.
        let bytes = tensor_bytes(u0);
        self.ledger = Tracker::for_schedule(&schedule, &self.erk.cost(), bytes);
        for action in schedule.forward() {
            self.enter(&action, Phase::Forward)?;
        }
        self.ledger
            .end_forward()
            .map_err(pnode_runtime::Error::from)?;
        self.plan = Some((bytes, Arc::new(schedule)));
        self.counts = Some(counts);
        Ok(())
    }

    /// Trial steps until the last output time (the runtime's loop over tensors).
    fn adaptive_loop(
        &mut self,
        model: &mut dyn TensorRhs,
        config: &AdaptiveConfig,
        mut plan: Option<&mut ForwardPlan>,
        times: &mut Vec<f64>,
        output_idx: &mut Vec<usize>,
        counts: &mut AdaptiveStats,
    ) -> Result<()> {
        let opts = &config.options;
        let ctl: Controller = opts.controller;
        let (t0, q) = (config.t0, config.q);
        let t1 = *config.output_times.last().expect("checked at construction");
        let h_max = opts.h_max.unwrap_or(t1 - t0).min(t1 - t0);
        let mut next_out = 0;
        if config.output_times[0] == t0 {
            self.outputs.push(self.current().shallow_clone());
            output_idx.push(0);
            next_out = 1;
        }
        // `K_1 = f(t, u)` known for the current point: (t, the state tensor it was taken at, K_1).
        let mut first: Option<(f64, Tensor, Tensor)> = None;
        let mut h = match opts.h0 {
            Some(h0) => h0.min(h_max),
            None => {
                let (h, f0) = self.initial_step(model, config, h_max)?;
                first = Some((t0, self.current().shallow_clone(), f0));
                h
            }
        }
        .max(opts.h_min)
        .min(h_max);
        let mut t = t0;
        let mut err_prev = 1.0;
        let mut after_reject = false;
        let mut nonfinite_retries = 0u32;
        let mut attempts = 0usize;
        let mut worst = Worst::Nothing;
        loop {
            let step = times.len() - 1;
            let target = config.output_times[next_out];
            let (t_new, clipped) = if t + h * 1.01 >= target {
                (target, t + h > target)
            } else {
                (t + h, false)
            };
            let h_step = t_new - t;
            if h_step <= 0.0 || (h_step < opts.h_min && t_new != target) {
                let (component, weighted_error) = worst.locate();
                return Err(pnode_runtime::Error::StepSizeTooSmall {
                    step,
                    t,
                    h,
                    h_min: opts.h_min,
                    component,
                    weighted_error,
                }
                .into());
            }
            if attempts == opts.max_steps {
                let (component, weighted_error) = worst.locate();
                return Err(pnode_runtime::Error::MaxStepsReached {
                    max_steps: opts.max_steps,
                    accepted: step,
                    rejected: counts.rejected_steps as usize,
                    t,
                    t1,
                    h,
                    component,
                    weighted_error,
                }
                .into());
            }
            attempts += 1;
            let at = StepAt {
                index: step,
                t,
                h: h_step,
            };
            let u = self.current().shallow_clone();
            // Reused only at bitwise the same time and for the very tensor it was taken at.
            let k1 = first
                .as_ref()
                .filter(|(t_k, u_k, _)| {
                    t_k.to_bits() == t.to_bits() && u_k.data_ptr() == u.data_ptr()
                })
                .map(|(_, _, k)| k.shallow_clone());
            let trial = self.erk.try_step(model, at, &u, k1, &mut self.measured)?;
            first = trial.first.map(|k| (t, u.shallow_clone(), k));
            let (next, stages, e) = (trial.next, trial.stages, trial.err);
            let r = weighted_errors(&e, &u, &next, config.rtol, config.atol);
            // One transfer per trial step: (err, Σ u_{n+1}).
            let host = Tensor::stack(
                &[r.square().mean(Kind::Double).sqrt(), next.sum(Kind::Double)],
                0,
            )
            .to_device(Device::Cpu);
            let (err, next_sum) = (host.double_value(&[0]), host.double_value(&[1]));
            let bad = if err.is_finite() && next_sum.is_finite() {
                None
            } else {
                non_finite(&next).or_else(|| non_finite(&e))
            };
            if let Some((_, index, value)) = bad {
                counts.rejected_steps += 1;
                counts.nonfinite_rejections += 1;
                nonfinite_retries += 1;
                let h_new = h_step * ctl.min_factor;
                if nonfinite_retries > opts.max_nonfinite_retries || h_new < opts.h_min {
                    return Err(pnode_runtime::Error::NonFiniteRhs {
                        step,
                        t,
                        h: h_step,
                        component: index as usize,
                        value,
                        retries: nonfinite_retries - 1,
                    }
                    .into());
                }
                worst = Worst::Known(index as usize, f64::INFINITY);
                h = h_new;
                after_reject = true;
                continue;
            }
            worst = Worst::Errors(r);
            if err > 1.0 {
                counts.rejected_steps += 1;
                after_reject = true;
                let mut h_new = h_step * ctl.reject_factor(q, err);
                if h_new < opts.h_min {
                    // `h` is the step asked for: `h_step` may round to slightly above `h_min`.
                    if h > opts.h_min {
                        h_new = opts.h_min;
                    } else {
                        let (component, weighted_error) = worst.locate();
                        return Err(pnode_runtime::Error::StepSizeTooSmall {
                            step,
                            t,
                            h: h_new,
                            h_min: opts.h_min,
                            component,
                            weighted_error,
                        }
                        .into());
                    }
                }
                h = h_new;
                continue;
            }
            // Accepted: the executor keeps what the plan says, taking the trial step's result
            // where its actions take the step.
            nonfinite_retries = 0;
            let last = t_new == t1;
            first = trial.fsal.map(|(t_k, k)| (t_k, next.shallow_clone(), k));
            self.pending = Some(PendingStep {
                index: step,
                next,
                stages,
            });
            if let Some(plan) = plan.as_deref_mut() {
                for action in plan.step(last)? {
                    self.run_action(model, &action, |_, _| {})?;
                }
            }
            if let Some(pending) = self.pending.take() {
                self.current = Some(pending.next);
            }
            times.push(t_new);
            counts.accepted_steps += 1;
            t = t_new;
            if t_new == target {
                self.outputs.push(self.current().shallow_clone());
                output_idx.push(step + 1);
                next_out += 1;
            }
            if last {
                return Ok(());
            }
            let mut h_new = h_step * ctl.accept_factor(q, err, err_prev, after_reject);
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

/// An accepted trial step the executor has not yet applied: the next action that takes step
/// `index` uses it instead of recomputing.
#[derive(Debug)]
pub(super) struct PendingStep {
    pub index: usize,
    pub next: Tensor,
    pub stages: Vec<Tensor>,
}
