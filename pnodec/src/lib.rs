//! `pnodec`, the pnode compiler's command line, as a library so that tests can call it.
//!
//! | command | module | what |
//! |---|---|---|
//! | `pnodec check FILE…` | [`check`] | parse and lower, render every diagnostic, print a summary |
//! | `pnodec fmt [--check] FILE…` | [`fmt`] | rewrite files in the canonical format |
//! | `pnodec emit --ast/--ir/--jvp/--vjp/--rust/--clif/--schedule FILE` | [`emit`] | print an intermediate form |
//! | `pnodec grad FILE` | [`grad`] | the loss and its discrete-adjoint gradient at θ0 as JSON |
//! | `pnodec solve FILE [--params P.json]` | [`solve`] | the trajectory at the output times from θ0 or trained parameters (CSV/NPY, SVG plot) |
//! | `pnodec train FILE` | [`train`] | train the parameters; loss log, plot, parameters saved |
//! | `pnodec bench FILE` | [`bench`] | compile, forward and gradient times, JIT and interpreter |
//!
//! The running commands share [`load`] (lower, resolve the setup, compile the model with the
//! JIT or wrap it in the interpreter) and [`output`] (files are checked before any work,
//! written atomically and never overwritten silently).
//!
//! Diagnostics are rendered by [`render`] with codespan-reporting. Every command returns an
//! [`Exit`] status: 0 ok (warnings allowed), 1 the model has errors or cannot be run (a data
//! file of the wrong shape, a solver failure; or `fmt` found a file to change with
//! `--check`, or refused to rewrite one), 2 a usage or I/O error (an unreadable file, an
//! output file that exists, a failed write), 130/143 `train` stopped by SIGINT/SIGTERM after
//! saving its work ([`interrupt`]).

pub mod bench;
pub mod check;
pub mod emit;
pub mod emit_run;
pub mod fmt;
pub mod grad;
pub mod interrupt;
pub mod load;
pub mod output;
pub mod params;
pub mod plot;
pub mod render;
pub mod solve;
pub mod torch;
pub mod train;

use std::path::{Path, PathBuf};

/// The exit status of a command. When several files are given, the worst one counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything is fine (warnings allowed).
    Ok = 0,
    /// A model has errors, `fmt --check` found a file that would change, or `fmt` refused to
    /// rewrite a file (syntax errors, comments it would drop).
    Failed = 1,
    /// A usage or I/O error: an unreadable file, a failed write.
    Usage = 2,
    /// `train` stopped on SIGINT (Ctrl-C) after saving its work: 128 + 2.
    Interrupted = 130,
    /// `train` stopped on SIGTERM after saving its work: 128 + 15.
    Terminated = 143,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The errors of the command line that are not about the model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The path as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not UTF-8 text.
    #[error("`{}` is not UTF-8 text (invalid byte at line {line}, column {column})", path.display())]
    NotUtf8 {
        /// The path as given.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based byte column of the first invalid byte.
        column: usize,
    },
    /// A model file is longer than [`pnode_grammar::MAX_SOURCE_BYTES`]; it is not read further.
    #[error(
        "`{}` is {}; a model file may have at most {} bytes (8 MiB): keep large arrays in data \
         files (`data(\"values.csv\")`) and split long expressions with `let` definitions",
        path.display(),
        size.map_or_else(|| format!("more than {} bytes", pnode_grammar::MAX_SOURCE_BYTES), |n| format!("{n} bytes")),
        pnode_grammar::MAX_SOURCE_BYTES
    )]
    TooLarge {
        /// The path as given.
        path: PathBuf,
        /// Its size, when known (not for standard input).
        size: Option<u64>,
    },
    /// Standard output or standard error could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// An output file exists and `--force` was not given.
    #[error("`{}` exists; pass `--force` to overwrite it, or choose another path", path.display())]
    Exists {
        /// The path as given.
        path: PathBuf,
    },
    /// Two outputs of one command name the same file.
    #[error("`{first}` and `{second}` both name `{}`: give each output its own file", path.display())]
    SameOutput {
        /// The first option naming it (`--out`).
        first: &'static str,
        /// The second option naming it (`--plot`).
        second: &'static str,
        /// The path as given to the second.
        path: PathBuf,
    },
    /// An output's folder is missing or does not take new files (checked before any work).
    #[error(
        "cannot write `{}`: cannot create a file in the folder `{}` ({source}); check that the \
         folder exists and is writable, or choose another path",
        path.display(),
        dir.display()
    )]
    OutputFolder {
        /// The output as given.
        path: PathBuf,
        /// Its folder.
        dir: PathBuf,
        /// Why a file could not be created there.
        source: std::io::Error,
    },
    /// An output path names a folder.
    #[error("`{}` is a folder; give the output a file name", path.display())]
    IsFolder {
        /// The path as given.
        path: PathBuf,
    },
    /// The model could not be set up or run (a data file, an option, a solver failure).
    #[error("{0}")]
    Run(#[from] pnode_driver::Error),
    /// A parameters file (`solve --params`) does not fit the model.
    #[error("`{}`: {reason}", path.display())]
    Params {
        /// The file.
        path: PathBuf,
        /// What does not fit, naming the parameter.
        reason: String,
    },
    /// A model backend (the JIT, the interpreter, libtorch) could not be built for the model.
    /// (The variant keeps its historical name: `bench` falls back to the interpreter on it.)
    #[error(transparent)]
    Jit(Box<BackendError>),
    /// Training stopped early (a Newton failure, a non-finite loss or gradient).
    #[error("{}", training_stopped(*iteration, *iterations, source))]
    TrainingStopped {
        /// 0-based iteration that failed (`iterations`: the final loss after the last one).
        iteration: u64,
        /// The iterations asked for.
        iterations: u64,
        /// Why.
        source: Box<pnode_driver::Error>,
    },
    /// A command-line value that cannot be used.
    #[error("{0}")]
    Usage(String),
}

/// Why no backend could be built for a model: each variant names the model and carries the
/// backend's own error where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The model declares an opaque layer, which only Rust code generated by `pnode::model!`
    /// can call.
    #[error(
        "model `{model}` declares the opaque layer `{layer}` (computed outside pnode), which no \
         pnodec backend can call: use the model from Rust with `pnode::model!` and give the \
         layer there (for a tch module, `pnode::torch::TorchLayer`)"
    )]
    OpaqueLayer {
        /// The model's name.
        model: String,
        /// The first opaque layer it declares.
        layer: String,
    },
    /// The JIT does not lower an operation of the model (`op` in `source`); `hint` says what
    /// runs it instead.
    #[error(
        "the JIT backend cannot compile model `{model}`: it does not support the operation `{op}`; {hint}"
    )]
    JitUnsupported {
        /// The model's name.
        model: String,
        /// The operation.
        op: &'static str,
        /// What to do instead (another `--backend`, or rebuilding with libtorch).
        hint: &'static str,
    },
    /// The JIT failed to compile the model's kernels (`what`: `"model"` or `"the fused steps
    /// of model"`).
    #[error(
        "the JIT backend cannot compile {what} `{model}`: {source}; `--backend interp` runs it \
         with the interpreter"
    )]
    JitCompile {
        /// The model's name.
        model: String,
        /// What was being compiled.
        what: &'static str,
        /// The JIT's error.
        source: pnode_jit::Error,
    },
    /// The interpreter could not be set up (deriving the JVP or VJP failed).
    #[error("cannot build the interpreter of model `{model}`: {source}")]
    Interp {
        /// The model's name.
        model: String,
        /// The IR's error.
        source: pnode_ir::Error,
    },
    /// libtorch cannot run the model (an operation it rejects at construction).
    #[cfg(feature = "torch")]
    #[error("the libtorch backend cannot run model `{model}`: {source}")]
    Torch {
        /// The model's name.
        model: String,
        /// The libtorch backend's error.
        source: pnode_torch::Error,
    },
    /// `--backend torch` in a pnodec built without libtorch.
    #[error(
        "model `{model}`: this pnodec was built without the libtorch backend; rebuild it with \
         `--features torch` (cargo build -p pnodec --features torch)"
    )]
    NoTorch {
        /// The model's name.
        model: String,
    },
}

/// The message of [`Error::TrainingStopped`]: iterations counted from 1, as the progress lines
/// count them.
fn training_stopped(iteration: u64, iterations: u64, source: &pnode_driver::Error) -> String {
    if iteration < iterations {
        let plural = if iteration == 1 { "" } else { "s" };
        format!(
            "training stopped in iteration {} of {iterations}, after {iteration} finished \
             iteration{plural}: {source}",
            iteration + 1
        )
    } else {
        format!(
            "training stopped after its {iterations} iterations, evaluating the loss at the \
             final parameters: {source}"
        )
    }
}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Self {
        Error::Jit(Box::new(e))
    }
}

impl Error {
    /// The exit status this error gives.
    pub fn exit(&self) -> Exit {
        match self {
            // A file that is not text, or too long, is a bad model rather than a bad command
            // line.
            Error::NotUtf8 { .. } | Error::TooLarge { .. } => Exit::Failed,
            // A missing or unreadable data file is an I/O error; the rest is about the model.
            Error::Run(pnode_driver::Error::Io { .. }) => Exit::Usage,
            Error::Run(_)
            | Error::Jit(_)
            | Error::Params { .. }
            | Error::TrainingStopped { .. } => Exit::Failed,
            _ => Exit::Usage,
        }
    }
}

/// A source file: the name to show in diagnostics and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as given on the command line (`-` for stdin shows as `<stdin>`).
    pub name: String,
    /// The contents.
    pub text: String,
}

/// Reads a source file, or standard input for `-`; a leading UTF-8 byte-order mark is
/// dropped. A source longer than [`pnode_grammar::MAX_SOURCE_BYTES`] is refused
/// ([`Error::TooLarge`]) after reading one byte more than that.
pub fn read_source(path: &Path) -> Result<SourceFile, Error> {
    use std::io::Read as _;
    // At most one byte more than a model may have: a larger file is refused unread.
    let limit = pnode_grammar::MAX_SOURCE_BYTES as u64 + 1;
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    let (name, size) = if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        ("<stdin>".to_string(), None)
    } else {
        let file = std::fs::File::open(path).map_err(read_err)?;
        let size = file.metadata().ok().map(|m| m.len());
        file.take(limit).read_to_end(&mut bytes).map_err(read_err)?;
        (path.display().to_string(), size)
    };
    if bytes.len() as u64 >= limit {
        return Err(Error::TooLarge {
            path: PathBuf::from(&name),
            size: size.filter(|&n| n >= limit),
        });
    }
    match String::from_utf8(bytes) {
        // A byte-order mark is not part of the model (the grammar would reject it); a file
        // that `fmt` rewrites loses it.
        Ok(text) => Ok(SourceFile {
            name,
            text: match text.strip_prefix('\u{feff}') {
                Some(rest) => rest.to_string(),
                None => text,
            },
        }),
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let before = &bytes[..at];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            Err(Error::NotUtf8 {
                path: path.to_path_buf(),
                line,
                column: at - line_start + 1,
            })
        }
    }
}
