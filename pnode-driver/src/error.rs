//! The crate's one error type.

use std::path::PathBuf;

use thiserror::Error;

use crate::train::TrainResult;

/// Everything that can go wrong while setting up or running a program. Every variant names
/// what the user needs to find the problem: the file (and line), the option, or the solver's
/// step and time (inside [`Error::Runtime`]).
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum Error {
    /// A data file could not be read.
    #[error("cannot read `{}`: {reason}", path.display())]
    Io {
        /// The file, resolved against the model's directory.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// A CSV file is malformed.
    #[error("{}:{line}: {reason}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An NPY file is malformed or of an unsupported kind.
    #[error("`{}`: {reason}", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A data file holds the wrong number of values for its use.
    #[error("`{}` ({what}): expected {expected}, found {found}", path.display())]
    DataShape {
        /// The file.
        path: PathBuf,
        /// What the data is for (`"initial value of state u"`, `"loss data"`, …).
        what: String,
        /// The size needed.
        expected: String,
        /// The size the file has.
        found: String,
    },
    /// A run would need more memory than it may use (see [`crate::memory`]): checked before
    /// the buffer is allocated.
    #[error("{}", crate::memory::message(*.what, *.bytes, *.total, .limit))]
    Memory {
        /// The option deciding the buffer's size (`steps`, `outputs` or `checkpoint`).
        what: crate::memory::MemoryUse,
        /// Bytes the buffer needs.
        bytes: u64,
        /// Bytes needed with what was counted before it.
        total: u64,
        /// The limit it passes.
        limit: crate::memory::Limit,
    },
    /// A setting of the program cannot be used (an option out of range, a grid that does not
    /// work out, a model whose sizes differ from the program's).
    #[error("invalid `{option}`: {reason}")]
    Config {
        /// The option concerned (`"steps"`, `"outputs"`, `"batch_size"`, `"model"`, …).
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The program has no loss, but a gradient or training was asked for.
    #[error("the model `{model}` has no `loss`; {what} needs one")]
    NoLoss {
        /// The model's name.
        model: String,
        /// What was asked for (`"a gradient"`, `"training"`).
        what: &'static str,
    },
    /// The loss evaluated to NaN or infinity.
    #[error("the loss is {value} (term `{term}` at output time t = {t})")]
    NonFiniteLoss {
        /// The value.
        value: f64,
        /// Which term (`"fit 1 (mse)"`, `"expr"`).
        term: String,
        /// The output time.
        t: f64,
    },
    /// The runtime failed (the variant names the step and time where relevant, for example
    /// [`pnode_runtime::Error::NonFiniteState`], [`pnode_runtime::Error::NewtonFailed`] or
    /// [`pnode_runtime::Error::Model`] for a model that failed to evaluate).
    #[error(transparent)]
    Runtime(#[from] pnode_runtime::Error),
    /// Evaluating a loss function of the IR failed.
    #[error("evaluating {what}: {source}")]
    Ir {
        /// Which function (`"the prediction of fit 1"`, …).
        what: String,
        /// The interpreter's error.
        source: Box<pnode_ir::Error>,
    },
    /// Training stopped early; `partial` keeps what was done, with the last parameters that
    /// gave a finite loss and gradient.
    #[error("training stopped at iteration {iteration}: {source}")]
    Training {
        /// 0-based iteration that failed.
        iteration: u64,
        /// Why.
        source: Box<Error>,
        /// The progress so far: losses of the finished iterations and the last good parameters.
        partial: Box<TrainResult>,
    },
    /// `steps` uniform steps over `t0 .. t1` do not fit 64-bit floats: `t1 - t0` overflows, or
    /// the step is too small to tell the grid points apart (they would be NaN or repeated).
    #[error(
        "the grid of {steps} steps over the time span {t0} .. {t1} cannot be computed in 64-bit \
         floats (t1 - t0 overflows, or a step is below their precision); shift or rescale the \
         time, or use fewer steps"
    )]
    TimeGrid {
        /// The start of the time span.
        t0: f64,
        /// Its end.
        t1: f64,
        /// The number of uniform steps.
        steps: u64,
    },
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
