//! The one error type of the runtime.

use std::path::PathBuf;

use thiserror::Error;

use crate::model::{Eval, ModelError};

/// The part of a solve a failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The forward sweep (a solve, or the first pass of a gradient).
    Forward,
    /// Steps or stage values recomputed from a checkpoint during the reverse sweep.
    Recompute,
    /// The adjoint of a step.
    Reverse,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Forward => "forward sweep",
            Phase::Recompute => "recomputation in the reverse sweep",
            Phase::Reverse => "reverse sweep",
        })
    }
}

/// Everything that can go wrong in the runtime, with the data needed to act on it.
///
/// No runtime entry point panics on user input: a bad tableau, a buffer of the wrong length,
/// a time grid that misses an output time or a state that blows up all come back as one of
/// these variants.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A Butcher tableau failed validation.
    #[error("invalid tableau `{name}`: {reason}")]
    InvalidTableau {
        /// The tableau's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A buffer handed to the runtime has the wrong length.
    #[error("wrong length for {what}: expected {expected}, found {found}")]
    LengthMismatch {
        /// Which buffer (for example `"u0"` or `"parameters"`).
        what: &'static str,
        /// The length the runtime needs.
        expected: usize,
        /// The length it was given.
        found: usize,
    },
    /// The forward solution became NaN or infinite.
    #[error("non-finite state after step {step} (t = {t}): component {component} is {value}")]
    NonFiniteState {
        /// Index of the step that produced it (0-based; the step from `t_step` to `t_{step+1}`).
        step: usize,
        /// The time the step ended at.
        t: f64,
        /// First offending component.
        component: usize,
        /// Its value.
        value: f64,
    },
    /// The adjoint (state cotangent) became NaN or infinite.
    #[error(
        "non-finite adjoint while reversing step {step} (t = {t}): component {component} is {value}"
    )]
    NonFiniteAdjoint {
        /// Index of the step being reversed.
        step: usize,
        /// The time at the start of that step.
        t: f64,
        /// First offending component.
        component: usize,
        /// Its value.
        value: f64,
    },
    /// An implicit stage solve failed.
    #[error(
        "Newton failed in step {step} (stage at t = {t}) after {iterations} iterations, residual norm {residual:e}: {reason}"
    )]
    NewtonFailed {
        /// Index of the step.
        step: usize,
        /// Time of the implicit stage.
        t: f64,
        /// Newton iterations done.
        iterations: u32,
        /// Last residual norm `‖G(y)‖₂`.
        residual: f64,
        /// What went wrong.
        reason: String,
    },
    /// A transposed stage system `(I − γh f_u)ᵀ w = r` of the adjoint (reverse) sweep of an
    /// implicit method could not be solved: GMRES stopped above its tolerance (the iteration cap
    /// or a stagnating restart), the dense stage matrix is singular, or PETSc's
    /// `KSPSolveTranspose` failed. The message names the step, the stage time, what the solver
    /// reached and which options to change.
    #[error("{}", adjoint_message(*.step, *.t, *.stage, .solver, *.iterations, *.residual, *.target, .reason))]
    AdjointSolveFailed {
        /// Index of the step being reversed.
        step: usize,
        /// Time of the implicit stage whose transposed system failed.
        t: f64,
        /// The DIRK stage (0-based), `None` for a θ-method.
        stage: Option<usize>,
        /// The linear solver: `"GMRES"`, `"dense LU"` or `"PETSc"`.
        solver: &'static str,
        /// Krylov iterations done (over all restarts; 0 for dense LU).
        iterations: usize,
        /// The residual norm `‖r − (I − γh f_u)ᵀ w‖₂` reached (NaN when not known).
        residual: f64,
        /// The residual norm GMRES had to reach (`krylov_tol · ‖r‖₂ + atol`; NaN otherwise).
        target: f64,
        /// What the solver reported.
        reason: String,
    },
    /// The time grid is unusable.
    #[error("invalid time grid: {reason}")]
    InvalidTimeGrid {
        /// What is wrong with it.
        reason: String,
    },
    /// A requested output time is not a point of the time grid.
    #[error("output time {time} is not on the time grid (nearest grid point: {nearest})")]
    OutputTimeOffGrid {
        /// The requested time.
        time: f64,
        /// The closest grid time.
        nearest: f64,
    },
    /// Planning or validating a checkpoint schedule failed.
    #[error(transparent)]
    Schedule(#[from] pnode_checkpoint::Error),
    /// A checkpoint on disk could not be created, written, read back intact or removed: an
    /// unwritable or vanished directory, a full disk, a truncated or altered file. The sweep
    /// stops with this error; no gradient is returned.
    #[error("checkpoint {op} failed for `{}`: {reason}", path.display())]
    CheckpointIo {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done (for example `"write"` or `"read"`).
        op: &'static str,
        /// The I/O error kind (`StorageFull` for a full disk, `UnexpectedEof` for a short
        /// file, `InvalidData` for a file whose contents changed).
        kind: std::io::ErrorKind,
        /// What the operating system or the check said.
        reason: String,
    },
    /// The model failed to evaluate (a libtorch exception, a failing opaque layer, …): the
    /// sweep stopped at that evaluation.
    #[error("the model's {eval} failed in step {step} at t = {t} ({phase}): {cause}")]
    Model {
        /// Index of the step (from `t_step` to `t_{step+1}`).
        step: usize,
        /// The time the model was evaluated at (a stage time of that step).
        t: f64,
        /// The sweep it belonged to.
        phase: Phase,
        /// Which evaluation failed.
        eval: Eval,
        /// The model's own cause.
        cause: ModelError,
    },
    /// An adaptive run's step size fell below `h_min` (or below what moves `t` in floating
    /// point) while its error estimate still exceeded the tolerance: the solution changes too
    /// fast here for the tolerance (a singularity, a discontinuity, or stiffness).
    #[error(
        "adaptive step size fell below h_min = {h_min:e} in step {step} at t = {t} (h = {h:e}): \
         component {component} has the largest weighted error, {weighted_error:.3e} (1 is the \
         tolerance); loosen rtol/atol, lower h_min, or use an implicit method if the problem is \
         stiff"
    )]
    StepSizeTooSmall {
        /// Index of the step being attempted (the number of steps accepted so far).
        step: usize,
        /// Its start time.
        t: f64,
        /// The step size the controller asked for.
        h: f64,
        /// The smallest step size allowed.
        h_min: f64,
        /// The state component with the largest weighted error in the last attempt.
        component: usize,
        /// That component's weighted error `|e_i| / (atol_i + rtol_i max(|u_n,i|, |u_n+1,i|))`.
        weighted_error: f64,
    },
    /// An adaptive run used its `max_steps` step attempts (accepted and rejected) before
    /// reaching the last output time.
    #[error(
        "adaptive run reached max_steps = {max_steps} step attempts ({accepted} accepted, \
         {rejected} rejected) at t = {t} of t1 = {t1} (h = {h:e}); component {component} had the \
         largest weighted error, {weighted_error:.3e}; raise max_steps or loosen rtol/atol"
    )]
    MaxStepsReached {
        /// The cap on step attempts.
        max_steps: usize,
        /// Steps accepted.
        accepted: usize,
        /// Steps rejected.
        rejected: usize,
        /// Time reached.
        t: f64,
        /// The last output time.
        t1: f64,
        /// The step size the controller asked for next.
        h: f64,
        /// The state component with the largest weighted error in the last attempt.
        component: usize,
        /// That component's weighted error (1 is the tolerance).
        weighted_error: f64,
    },
    /// The right-hand side kept producing a non-finite value in an adaptive run: the step was
    /// rejected and retried with smaller steps until the retry limit or `h_min`.
    #[error(
        "the RHS produced a non-finite value in step {step} at t = {t}: component {component} \
         is {value}, and still was after {retries} retries with smaller steps (last h = {h:e}); \
         check the model for overflow or a domain error (log, sqrt, division) near this state"
    )]
    NonFiniteRhs {
        /// Index of the step being attempted (the number of steps accepted so far).
        step: usize,
        /// Its start time.
        t: f64,
        /// The last step size tried.
        h: f64,
        /// First non-finite component (of the trial solution or of the error estimate).
        component: usize,
        /// Its value.
        value: f64,
        /// Retries done.
        retries: u32,
    },
    /// An adaptive option is out of range.
    #[error("invalid adaptive option `{option}`{}: {value} ({expected})", component_suffix(*.component))]
    InvalidAdaptiveOption {
        /// The option (`"rtol"`, `"atol"`, `"h0"`, `"safety"`, …).
        option: &'static str,
        /// For a per-component tolerance, the offending component.
        component: Option<usize>,
        /// The value given.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
    /// Adaptive stepping was asked of a method without embedded weights.
    #[error(
        "method `{method}` has no embedded error estimate: adaptive stepping needs a pair such as \
         bosh3, dopri5, tsit5 or fehlberg45 (or a tableau built with `with_embedded`)"
    )]
    NoErrorEstimate {
        /// The method's name.
        method: String,
    },
    /// A checkpointing mode that needs the number of steps in advance was asked of an adaptive
    /// run.
    #[error(
        "checkpointing `{mode}` needs the number of steps before the run, which an adaptive run \
         does not know; use store-all, solution-only, online(c) or two-level (online with disk \
         slots; a budget becomes online with as many solution slots as it holds vectors)"
    )]
    AdaptiveCheckpointing {
        /// The mode asked for.
        mode: String,
    },
    /// A large buffer (the checkpoint store, the outputs) could not be allocated: the run needs
    /// more memory than the system gives.
    #[error(
        "cannot allocate {bytes} bytes for {what}: not enough memory (use fewer steps or \
         outputs, or a checkpointing that keeps less, such as `revolve(slots = 10)`)"
    )]
    OutOfMemory {
        /// The buffer.
        what: Buffer,
        /// Its size in bytes.
        bytes: u64,
    },
    /// An operation was called out of order (for example a reverse sweep before a forward one).
    #[error("{0}")]
    Usage(String),
    /// An optimizer or other configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

/// ` (component i)` for a per-component option, nothing otherwise.
fn component_suffix(component: Option<usize>) -> String {
    component.map_or_else(String::new, |i| format!(" (component {i})"))
}

/// The large buffers a solver allocates, named in [`Error::OutOfMemory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// The RAM checkpoint slots of the schedule.
    Checkpoints,
    /// The solution at the output times (and the loss gradient there).
    Outputs,
}

impl std::fmt::Display for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Buffer::Checkpoints => "the checkpoint store",
            Buffer::Outputs => "the outputs",
        })
    }
}

/// A zeroed buffer of `len` values, or [`Error::OutOfMemory`] naming `what` when the
/// allocation fails (instead of aborting the process).
pub fn try_zeroed(what: Buffer, len: usize) -> Result<Vec<f64>> {
    let bytes = (len as u64).saturating_mul(8);
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::OutOfMemory { what, bytes })?;
    v.resize(len, 0.0);
    Ok(v)
}

/// The message of [`Error::AdjointSolveFailed`].
#[allow(clippy::too_many_arguments)]
fn adjoint_message(
    step: usize,
    t: f64,
    stage: Option<usize>,
    solver: &str,
    iterations: usize,
    residual: f64,
    target: f64,
    reason: &str,
) -> String {
    let stage = match stage {
        Some(i) => format!("stage {i} at t = {t}"),
        None => format!("stage at t = {t}"),
    };
    let what = format!(
        "the transposed stage linear solve (I − γh f_u)ᵀ w = r of the adjoint (reverse) sweep \
         failed in step {step} ({stage})"
    );
    match solver {
        "GMRES" => format!(
            "{what}: GMRES {reason} after {iterations} Krylov iterations, residual norm \
             {residual:.3e} (target {target:.3e}); loosen `krylov_tol`, raise `krylov_restart` \
             (more Krylov vectors per restart), or use `linear_solver = dense` (LU, exact; \
             n² memory)"
        ),
        "dense LU" => format!(
            "{what}: dense LU: {reason}; the stage matrix I − γh f_u is singular at this step \
             size (fewer or more `steps` change γh), or try `linear_solver = gmres`"
        ),
        _ => format!(
            "{what}: {solver}: {reason}; change the KSP options (`PNODE_PETSC_OPTIONS`) or use \
             `linear_solver = dense` or `gmres`"
        ),
    }
}

impl Error {
    /// The error of `eval` failing with `cause` at time `t` in step `step` of `phase`.
    pub fn model(step: usize, t: f64, phase: Phase, eval: Eval, cause: ModelError) -> Self {
        Error::Model {
            step,
            t,
            phase,
            eval,
            cause,
        }
    }

    /// This error, with a model failure of the forward sweep marked as a recomputation (for
    /// steps the reverse sweep takes again from a checkpoint).
    pub fn recomputing(self) -> Self {
        match self {
            Error::Model {
                step,
                t,
                phase: Phase::Forward,
                eval,
                cause,
            } => Error::Model {
                step,
                t,
                phase: Phase::Recompute,
                eval,
                cause,
            },
            e => e,
        }
    }
}

/// Result alias for the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Check a buffer length, naming the buffer in the error.
pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}

/// First non-finite entry of `v`, as `(index, value)`.
pub(crate) fn first_non_finite(v: &[f64]) -> Option<(usize, f64)> {
    v.iter().position(|x| !x.is_finite()).map(|i| (i, v[i]))
}
