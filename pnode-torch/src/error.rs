//! Errors of the libtorch backend. Each failure inside a solve names the step, the time and
//! the cause.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in a solve a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A right-hand-side evaluation of the forward sweep or a recomputation.
    Rhs,
    /// A stage VJP of the reverse sweep.
    Vjp,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Rhs => "right-hand side",
            Phase::Vjp => "stage VJP",
        })
    }
}

/// Everything that can go wrong in the libtorch backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Grid, output times, tableau or checkpoint planning (from the runtime).
    #[error(transparent)]
    Runtime(#[from] pnode_runtime::Error),
    /// A libtorch exception (message as libtorch gave it).
    #[error("libtorch: {0}")]
    Torch(String),
    /// The model failed (a panic or libtorch error inside it, or a wrong output shape) at a
    /// stage of a step.
    #[error("{phase} failed in step {step} (stage at t = {t}): {cause}")]
    Model {
        /// Right-hand side or VJP.
        phase: Phase,
        /// Step index (`t_step → t_step+1`).
        step: usize,
        /// Time of the stage being evaluated.
        t: f64,
        /// What the model reported.
        cause: pnode_runtime::ModelError,
    },
    /// The state stopped being finite.
    #[error(
        "non-finite state after step {step} (t = {t}): {count} of {numel} entries are NaN or \
         infinite, the first at flat index {index} ({value})"
    )]
    NonFiniteState {
        /// Step that produced it.
        step: usize,
        /// Time at the end of that step.
        t: f64,
        /// Number of non-finite entries.
        count: i64,
        /// Entries in the state.
        numel: i64,
        /// Flat index of the first one.
        index: i64,
        /// Its value.
        value: f64,
    },
    /// The adjoint stopped being finite.
    #[error(
        "non-finite adjoint after reversing step {step} (t = {t}): {count} of {numel} entries \
         are NaN or infinite, the first at flat index {index} ({value})"
    )]
    NonFiniteAdjoint {
        /// Step just reversed.
        step: usize,
        /// Its start time.
        t: f64,
        /// Number of non-finite entries.
        count: i64,
        /// Entries in the adjoint.
        numel: i64,
        /// Flat index of the first one.
        index: i64,
        /// Its value.
        value: f64,
    },
    /// A tensor had the wrong shape, dtype or device.
    #[error("{what}: expected {expected}, found {found}")]
    Mismatch {
        /// Which tensor.
        what: String,
        /// What was expected.
        expected: String,
        /// What was given.
        found: String,
    },
    /// Calls in the wrong order or an unsupported request.
    #[error("{0}")]
    Usage(String),
}

impl From<tch::TchError> for Error {
    /// libtorch's own message (a C++ exception's text without tch's "Internal torch error"
    /// label and without the C++ stack trace); other tch errors as tch prints them.
    fn from(e: tch::TchError) -> Self {
        let text = match &e {
            tch::TchError::Torch(message) => message.clone(),
            e => e.to_string(),
        };
        Error::Torch(trim_torch_message(&text))
    }
}

/// This crate's error as the runtime's [`ModelError`](pnode_runtime::ModelError) (what a model
/// reports from a failed evaluation): a libtorch exception keeps its message, a shape mismatch
/// its data.
impl From<Error> for pnode_runtime::ModelError {
    fn from(e: Error) -> Self {
        match e {
            Error::Torch(message) => pnode_runtime::ModelError::Backend {
                backend: "libtorch",
                message,
            },
            Error::Mismatch {
                what,
                expected,
                found,
            } => pnode_runtime::ModelError::Mismatch {
                what,
                expected,
                found,
            },
            e => pnode_runtime::ModelError::Other(e.to_string()),
        }
    }
}

/// The text of a caught panic payload, with libtorch's C++ stack trace cut off.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        trim_torch_message(s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        trim_torch_message(s)
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// A libtorch error message without the C++ stack trace libtorch appends
/// ("Exception raised from … (most recent call first): frame #0 …").
pub(crate) fn trim_torch_message(text: &str) -> String {
    // Real newlines in a TchError's text; escaped ones in a panic from `unwrap` (Debug form).
    let cut = text
        .find("\nException raised")
        .or_else(|| text.find("\\nException raised"));
    let head = match cut {
        Some(i) => &text[..i],
        None => text,
    };
    head.trim_end().to_owned()
}
