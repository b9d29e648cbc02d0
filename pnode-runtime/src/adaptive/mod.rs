//! Adaptive time stepping with error control, and the exact discrete adjoint of the steps it
//! accepted.
//!
//! [`AdaptiveSolver`] integrates `du/dt = f(t, u; θ)` from `t0` to the last output time with an
//! embedded pair ([`EmbeddedStepper`]; explicit Runge–Kutta pairs through [`EmbeddedErk`],
//! ESDIRK pairs for stiff problems through [`EmbeddedDirk`]):
//! each trial step is accepted when its weighted RMS error estimate is at most 1, the next step
//! size comes from a PI controller, the first one from Hairer–Nørsett–Wanner's algorithm or the
//! user's `h0` ([`controller`] has the formulas and references). Steps are clipped to land
//! exactly on every output time (and on `t1`), so outputs are grid values, never
//! interpolations.
//!
//! ```
//! use pnode_runtime::adaptive::{AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver};
//! use pnode_runtime::problems::LotkaVolterra;
//! use pnode_runtime::{Checkpointing, Solver, Tableau};
//!
//! let (u0, p) = (LotkaVolterra::default_u0(), LotkaVolterra::default_params());
//! let mut model = LotkaVolterra::new();
//! let options = AdaptiveOptions::with_tolerances(1e-6, 1e-8);
//! let mode = AdaptiveCheckpointing::Online { slots: 4 };
//! let mut solver = AdaptiveSolver::explicit(Tableau::dopri5(), &model, 0.0, &[2.0, 5.0], options, mode)?;
//! let loss = |u: &[f64], dl: &mut [f64]| {
//!     dl.copy_from_slice(u);
//!     0.5 * u.iter().map(|x| x * x).sum::<f64>()
//! };
//! let (_, grad) = solver.value_and_grad(&mut model, &u0, &p, loss)?;
//! let stats = solver.stats();
//! assert!(stats.sweep.peak_slots <= 4);
//! // The same gradient, bit for bit, from the fixed-grid solver on the accepted grid.
//! let mut fixed =
//!     Solver::explicit(Tableau::dopri5(), &model, solver.grid()?, &[2.0, 5.0], Checkpointing::StoreAll)?;
//! assert_eq!(fixed.value_and_grad(&mut model, &u0, &p, loss)?.1, grad);
//! # Ok::<(), pnode_runtime::Error>(())
//! ```
//!
//! # Stiff problems: ESDIRK pairs
//!
//! [`EmbeddedDirk`] pairs a [`crate::DirkTableau`] that has embedded weights — Kværnø's
//! 3(2) [`crate::DirkTableau::esdirk3`] and 5(4) [`crate::DirkTableau::kvaerno5`] (Kværnø
//! 2004, BIT 44) — with the fixed-grid [`crate::DirkStepper`], whose `step` it calls: the
//! estimate `e = h Σ (b_i − b̂_i) K_i` is, for these pairs, the difference of two stiffly
//! accurate, L-stable stage values, so it needs no stiff filtering.
//!
//! ```
//! use pnode_runtime::adaptive::{AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver};
//! use pnode_runtime::problems::Robertson;
//! use pnode_runtime::{Checkpointing, DirkTableau, NewtonConfig, Solver};
//!
//! let (u0, p) = (Robertson::default_u0(), Robertson::default_params());
//! let mut model = Robertson::new();
//! let options = AdaptiveOptions::with_tolerances(1e-6, 1e-10);
//! let mode = AdaptiveCheckpointing::SolutionOnly;
//! let mut solver = AdaptiveSolver::dirk(
//!     DirkTableau::kvaerno5(), NewtonConfig::default(), &model, 0.0, &[1e5], options, mode,
//! )?;
//! let loss = |u: &[f64], dl: &mut [f64]| {
//!     dl.copy_from_slice(&[1.0, 0.0, 0.0]);
//!     u[0]
//! };
//! let (_, grad) = solver.value_and_grad(&mut model, &u0, &p, loss)?;
//! assert!(solver.stats().accepted_steps < 1000);
//! // Bitwise the fixed-grid DIRK gradient on the accepted grid, with the pair's own stepper.
//! let stepper = solver.stepper().dirk().clone();
//! let mut fixed = Solver::new(stepper, &model, solver.grid()?, &[1e5], Checkpointing::StoreAll)?;
//! assert_eq!(fixed.value_and_grad(&mut model, &u0, &p, loss)?.1, grad);
//! # Ok::<(), pnode_runtime::Error>(())
//! ```
//!
//! **Predictor.** Each implicit stage's Newton iteration starts from the previous stage's
//! converged value within the same step (`u_n` for the first implicit stage): Newton's last
//! iterate, but only from the step itself, never from an earlier step or a rejected attempt.
//! That makes the predictor a function of `(t_n, h_n, u_n)`, so the reverse sweep's
//! recomputation from `u_n` — and the fixed-grid solver on the accepted grid — converge to
//! bitwise the same stages, and the gradient is bitwise the fixed-grid one. (Carrying the last
//! iterate across steps would save a Newton iteration now and then but make a recomputed step
//! differ from the accepted one in the last bits.)
//!
//! # What the gradient is
//!
//! The run produces an accepted grid `t_0 < t_1 < … < t_N` and the solution
//! `u_{n+1} = Φ(t_n, h_n; u_n, θ)` on it. The gradient [`AdaptiveSolver::backward`] returns is
//! the discrete adjoint of those `N` steps **with their step sizes held fixed**: the exact
//! derivative of the computed outputs, as functions of `u_0` and `θ`, on the grid the controller
//! chose (PETSc's `TSAdjoint` and PNODE do the same). It is bitwise the gradient the fixed-grid
//! [`crate::Solver`] computes on `TimeGrid::from_times(accepted_times)` with the same method,
//! because every accepted step runs the fixed-grid step's own arithmetic
//! ([`EmbeddedStepper::try_step`]) and the reverse sweep is the same adjoint; central finite
//! differences on that frozen grid agree with it to round-off.
//!
//! The grid's own dependence on `θ` is not differentiated. Written out, the outputs are
//! `u_N(θ, h(θ))` and
//!
//! ```text
//! du_N/dθ = ∂u_N/∂θ |_h  +  Σ_n ∂u_N/∂h_n · dh_n/dθ.
//! ```
//!
//! We return the first term, for three reasons:
//!
//! * the controller's *decisions* — which trial steps are rejected, the number of steps `N`,
//!   which steps are clipped to an output time, where the factor clamps bind — are piecewise
//!   constant in `θ`: almost everywhere they do not change under a small perturbation, and where
//!   they do the computed solution jumps, so no derivative of them exists;
//! * the step sizes that do move smoothly (unclamped, unclipped steps,
//!   `h_{n+1} = h_n·safety·err_n^(−β1)·err_{n−1}^(β2)`) move through the error *estimate*
//!   `err_n(θ)`, and `∂u_N/∂h_n` is the sensitivity of the discretization error to the step
//!   size, of the size of the tolerance: the second term is the derivative of the numerical
//!   error model, not of the ODE's solution — a non-physical contribution that vanishes as the
//!   tolerance goes to zero and differs between equally valid controllers (and the norm's
//!   `max(|u_n,i|, |u_{n+1},i|)` is not even differentiable everywhere);
//! * the first term is the derivative of a fixed, differentiable map — what gradient-based
//!   training and finite-difference checks on the same grid see.
//!
//! Backpropagating through a solver whose step-size update is recorded by automatic
//! differentiation (torchdiffeq's direct backpropagation in releases whose
//! `_optimal_step_size` is not under `torch.no_grad()`) includes the second term implicitly;
//! the continuous adjoint (`odeint_adjoint`) includes neither exactly, re-solving the adjoint
//! ODE on a grid of its own.
//!
//! # Memory with an unknown number of steps
//!
//! [`AdaptiveCheckpointing`] says what the forward sweep keeps. Store-all keeps every accepted
//! step's stage values, solution-only every accepted solution; `Online { slots }` drives
//! [`crate::checkpoint::online::OnlinePlanner`] step by step (`step(last)` as each step is
//! accepted, `finish()` for the reverse sweep), so at most `slots` solutions are held at any
//! time and the reverse sweep recomputes at most `N(d−1)/2` steps (`d` the final spacing,
//! [`AdaptiveSolver::online_spacing`]); `TwoLevel { ram_slots, disk_slots }` is online with
//! `ram_slots + disk_slots` slots of which the last `disk_slots` are files on disk
//! ([`AdaptiveSolver::set_checkpoint_dir`]), so RAM holds at most `ram_slots`. A fixed-grid
//! budget ([`crate::checkpoint::Budget`] in slots, vectors or bytes) becomes online with as
//! many slots as it holds state vectors ([`AdaptiveCheckpointing::from_checkpointing`]).
//!
//! The slots, the working buffers and the code that runs each action are the fixed-grid
//! [`crate::Solver`]'s own (one executor): as a step is accepted, the actions the plan decides
//! for it are entered in the schedule's ledger ([`crate::checkpoint::Tracker`], its bounds
//! raised step by step) and carried out on the step just taken — its stage values are already
//! on the tape, so nothing is stepped twice — and the reverse sweep runs the finished schedule
//! on the accepted times. The budget therefore holds at every step, and
//! [`AdaptiveStats::sweep`] reports the ledger's counts: steps recomputed in the reverse
//! sweep, peak slots and peak vectors and bytes in RAM and on disk. A rejected step stores
//! nothing and is never reversed or recomputed: the ledger's counts equal the schedule's
//! prediction for the `N` accepted steps. Gradients are bitwise identical across all modes.
//!
//! # Failures
//!
//! A step size below `h_min` ([`crate::Error::StepSizeTooSmall`]) or too many attempts
//! ([`crate::Error::MaxStepsReached`]) name the time, the step size and the component with the
//! largest weighted error. A non-finite value in a trial step rejects it and retries with
//! `h·min_factor`; after `max_nonfinite_retries` retries (or below `h_min`) the run stops with
//! [`crate::Error::NonFiniteRhs`] naming the step, the time and the component. A Newton stage
//! solve that does not converge in a trial step (implicit pairs) is handled the same way,
//! counted in [`AdaptiveStats::newton_rejections`] and sharing the retry budget; if it persists
//! the run stops with Newton's [`crate::Error::NewtonFailed`] (step, stage time, iterations,
//! residual, cause) with the retries and the last step size appended. A model failure
//! ([`crate::Error::Model`]) stops the run at once.

pub mod controller;
mod pair;
mod pair_dirk;
mod plan;
mod solver;

pub use controller::{Controller, Tolerance};
pub use pair::{EmbeddedErk, EmbeddedStepper, PairLayout, StageCache};
pub use pair_dirk::EmbeddedDirk;
pub use solver::AdaptiveSolver;

use crate::checkpoint::{Budget, Checkpointing, Stats};
use crate::error::{Error, Result};

/// The options of an adaptive run. `AdaptiveOptions::default()` is `rtol = 1e-6`,
/// `atol = 1e-9`, automatic `h0`, no `h_min`, no `h_max`, 100 000 step attempts and 10
/// non-finite retries with the default [`Controller`].
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveOptions {
    /// Relative tolerance (scalar or per component).
    pub rtol: Tolerance,
    /// Absolute tolerance (scalar or per component).
    pub atol: Tolerance,
    /// The first step size; `None` chooses it automatically (see [`controller`]).
    pub h0: Option<f64>,
    /// Smallest step size before the run fails (0: only floating-point resolution limits it).
    /// Steps clipped to land on an output time may be shorter.
    pub h_min: f64,
    /// Largest step size (`None`: the whole interval).
    pub h_max: Option<f64>,
    /// Most step attempts, accepted and rejected together.
    pub max_steps: usize,
    /// Most consecutive retries after non-finite values or failed Newton stage solves
    /// (implicit pairs) before the run fails.
    pub max_nonfinite_retries: u32,
    /// The step-size controller.
    pub controller: Controller,
}

impl Default for AdaptiveOptions {
    fn default() -> Self {
        Self {
            rtol: Tolerance::Scalar(1e-6),
            atol: Tolerance::Scalar(1e-9),
            h0: None,
            h_min: 0.0,
            h_max: None,
            max_steps: 100_000,
            max_nonfinite_retries: 10,
            controller: Controller::default(),
        }
    }
}

impl AdaptiveOptions {
    /// The default options with both tolerances set to scalars.
    pub fn with_tolerances(rtol: f64, atol: f64) -> Self {
        Self {
            rtol: Tolerance::Scalar(rtol),
            atol: Tolerance::Scalar(atol),
            ..Self::default()
        }
    }

    /// Check everything but the tolerances' lengths (done against the model).
    pub(crate) fn validate(&self) -> Result<()> {
        self.controller.validate()?;
        let bad = |option, value, expected| {
            Err(Error::InvalidAdaptiveOption {
                option,
                component: None,
                value,
                expected,
            })
        };
        if let Some(h0) = self.h0
            && !(h0 > 0.0 && h0.is_finite())
        {
            return bad("h0", h0, "a finite step size > 0");
        }
        if !(self.h_min >= 0.0 && self.h_min.is_finite()) {
            return bad("h_min", self.h_min, "a finite step size ≥ 0");
        }
        if let Some(h_max) = self.h_max
            && !(h_max > 0.0 && h_max >= self.h_min)
        {
            return bad("h_max", h_max, "a step size > 0 and ≥ h_min");
        }
        if self.max_steps == 0 {
            return bad("max_steps", 0.0, "at least 1 step attempt");
        }
        Ok(())
    }
}

/// What an adaptive forward sweep keeps for the reverse sweep (the number of steps is not known
/// in advance; see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdaptiveCheckpointing {
    /// Every accepted step's stage values: no recomputation.
    #[default]
    StoreAll,
    /// Every accepted solution: each reversed step recomputes its stages.
    SolutionOnly,
    /// At most this many solution slots, decided online.
    Online {
        /// Solution slots (at least 1).
        slots: usize,
    },
    /// Online checkpointing with `ram_slots + disk_slots` solution slots, the first
    /// `ram_slots` in RAM (filled first), the others files on disk
    /// ([`AdaptiveSolver::set_checkpoint_dir`]): RAM never holds more than `ram_slots`
    /// checkpoints. The decisions, recomputations and gradient are those of
    /// `Online { slots: ram_slots + disk_slots }`.
    TwoLevel {
        /// Solution slots in RAM.
        ram_slots: usize,
        /// Solution slots on disk.
        disk_slots: usize,
    },
}

impl AdaptiveCheckpointing {
    /// The adaptive counterpart of a fixed-grid mode: store-all, solution-only, online and
    /// two-level map to themselves (two-level as online with disk slots), a budget to online
    /// with as many slots as it holds state vectors of `vector_bytes` — so the budget holds at
    /// every step of the run, whatever its length (working memory not counted, as for the
    /// fixed grid) — or a [`crate::checkpoint::Error::BudgetTooSmall`] when it holds none; Revolve and custom
    /// schedules need the number of steps first ([`Error::AdaptiveCheckpointing`]).
    pub fn from_checkpointing(mode: &Checkpointing, vector_bytes: u64) -> Result<Self> {
        let online = |vectors: u64, given: String| {
            if vectors == 0 {
                return Err(Error::Schedule(crate::checkpoint::Error::BudgetTooSmall {
                    given,
                    minimum: "1 state vector (for u0)".into(),
                }));
            }
            let slots = usize::try_from(vectors).unwrap_or(usize::MAX);
            Ok(Self::Online { slots })
        };
        match mode {
            Checkpointing::StoreAll => Ok(Self::StoreAll),
            Checkpointing::SolutionOnly => Ok(Self::SolutionOnly),
            Checkpointing::Online { slots } => Ok(Self::Online { slots: *slots }),
            Checkpointing::Budget(Budget::Slots(c)) => online(*c as u64, format!("{c} slots")),
            Checkpointing::Budget(Budget::Vectors(v)) => online(*v, format!("{v} vectors")),
            Checkpointing::Budget(Budget::Bytes(b)) => online(
                b.checked_div(vector_bytes).unwrap_or(u64::MAX),
                format!("{b} bytes ({vector_bytes} bytes per state vector)"),
            ),
            Checkpointing::Revolve { slots } => Err(Error::AdaptiveCheckpointing {
                mode: format!("revolve({slots})"),
            }),
            Checkpointing::TwoLevel {
                ram_slots,
                disk_slots,
            } => Ok(Self::TwoLevel {
                ram_slots: *ram_slots,
                disk_slots: *disk_slots,
            }),
            Checkpointing::Custom(s) => Err(Error::AdaptiveCheckpointing {
                mode: format!("custom schedule `{}`", s.name()),
            }),
        }
    }
}

/// What an adaptive run did: the step controller's counts and the checkpointing statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AdaptiveStats {
    /// Steps accepted (`N`, the accepted grid's number of steps).
    pub accepted_steps: u64,
    /// Trial steps rejected (error too large or a non-finite value); they hold no memory and
    /// are never reversed or recomputed.
    pub rejected_steps: u64,
    /// Of the rejected steps, those rejected for a non-finite value.
    pub nonfinite_rejections: u64,
    /// Of the rejected steps, those whose implicit stage solve (Newton) did not converge.
    pub newton_rejections: u64,
    /// The sweep statistics: RHS and VJP evaluations as measured (rejected trials and the
    /// error estimate's extra stages included), and from the schedule's ledger the forward,
    /// recomputed and reversed steps, stage recomputations and peak checkpoint memory.
    pub sweep: Stats,
}
