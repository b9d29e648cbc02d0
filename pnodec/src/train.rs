//! `pnodec train`: the `train { }` block's optimizer on the discrete-adjoint gradient.
//!
//! * Progress: an indicatif bar on a terminal; otherwise (a pipe, a log file, a test) one
//!   line every `log_every` iterations on stderr. A closed stderr (`pnodec train … | head`)
//!   does not stop training: messages that cannot be written are dropped, files are still
//!   written.
//! * At the end: loss first → last (the full loss at the final parameters), the reduction and
//!   the time per iteration.
//! * `--params FILE` starts from the parameters of a file `pnodec train` wrote (a warm start;
//!   names and sizes checked: [`crate::params`]) instead of θ0; the first logged loss is the
//!   loss at those parameters.
//! * The parameters go to `--out`, else to `MODEL.params.json` in the current directory, with
//!   a numeric suffix (`MODEL.params-1.json`, …) if that name is taken (also by a run that
//!   took it meanwhile); the file written is named on stderr. JSON: `{ "model",
//!   "iterations", "loss", "params": { NAME: [...] } }`, one row-major array per parameter of
//!   the program, in declaration order; `iterations` counts the iterations done, `loss` is
//!   the full loss at those parameters, `null` when it was not evaluated (a periodic save,
//!   an interrupted or failed run).
//! * `--log FILE.csv`: `iteration,loss,grad_norm` per iteration; `--plot FILE.svg`: the loss
//!   curve. Every output is checked before training (its folder exists and is writable, an
//!   explicit path that exists needs `--force`, no two outputs name one file) and written
//!   atomically ([`crate::output`]).
//! * `--save-every N` writes the parameters (and the log) every `N` iterations, each time
//!   atomically: the file on disk is always a whole one. A failed write stops training.
//! * SIGINT (Ctrl-C) or SIGTERM ([`crate::interrupt`]): training stops after the current
//!   iteration, saves the parameters it reached, the log and the plot, says how many
//!   iterations were done, and exits 130 (SIGINT) or 143 (SIGTERM); a second signal ends it
//!   at once.
//! * A failure (a Newton failure, a non-finite state or loss) prints the error with its
//!   iteration (and the solver's step and time) and still saves the last good parameters,
//!   the log and the plot; the exit status is 1. A failed write exits 2.

use crate::interrupt::{Interrupt, Signal};
use crate::load::{Backend, Loaded, load_with};
use crate::output::{OutputFile, free_path, probe, probe_folder, write_new};
use crate::plot::losses_svg;
use crate::render::{self, ColorMode};
use crate::{Error, Exit};
use codespan_reporting::term::termcolor::WriteColor;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pnode_driver::TrainResult;
use pnode_ir::lower::Program;
use serde_json::json;
use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The options of `pnodec train`.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Overrides the train block's `iterations`.
    pub iterations: Option<u64>,
    /// Where to save the parameters (default: `MODEL.params.json` here, suffixed if taken).
    pub out: Option<PathBuf>,
    /// The loss log (CSV).
    pub log: Option<PathBuf>,
    /// The loss plot (SVG).
    pub plot: Option<PathBuf>,
    /// Replace existing files.
    pub force: bool,
    /// The model backend.
    pub backend: Backend,
    /// Overrides the seed.
    pub seed: Option<u64>,
    /// Start from the parameters of this file (what `pnodec train` writes) instead of θ0.
    pub params: Option<PathBuf>,
    /// Draw a progress bar even when stderr is not a terminal (tests: never).
    pub progress: Option<bool>,
    /// Save the parameters (and the log) every this many iterations.
    pub save_every: Option<u64>,
}

/// What a training run produced (for tests and the summary).
#[derive(Debug)]
pub struct TrainReport {
    /// The driver's result (on failure or interruption: the partial one).
    pub result: TrainResult,
    /// The parameters file written (`None` if writing it failed).
    pub params_path: Option<PathBuf>,
    /// Wall-clock seconds of the iterations.
    pub seconds: f64,
    /// The error that stopped training, if any.
    pub failure: Option<Error>,
    /// The signal that stopped training, if any.
    pub interrupted: Option<Signal>,
    /// Whether an output could not be written (reported on stderr).
    pub write_failed: bool,
}

impl TrainReport {
    /// The exit status: 2 after a failed write, 130/143 after a signal, 1 after a training
    /// failure, else 0.
    pub fn exit(&self) -> Exit {
        if self.write_failed {
            Exit::Usage
        } else if let Some(s) = self.interrupted {
            s.exit()
        } else if self.failure.is_some() {
            Exit::Failed
        } else {
            Exit::Ok
        }
    }
}

/// The parameters as JSON: one array per program parameter.
pub fn params_json(
    loaded: &Loaded,
    params: &[f64],
    iterations: usize,
    loss: Option<f64>,
) -> String {
    params_json_for(loaded.program(), params, iterations, loss)
}

/// [`params_json`] for a program.
pub fn params_json_for(
    program: &Program,
    params: &[f64],
    iterations: usize,
    loss: Option<f64>,
) -> String {
    let mut o = crate::grad::Object::new();
    o.push("model", json!(program.name))
        .push("iterations", json!(iterations))
        .push("loss", json!(loss))
        .push("params", crate::grad::by_parameter(program, params));
    o.to_pretty()
}

/// The loss log as CSV.
pub fn log_csv(r: &TrainResult) -> String {
    log_rows_csv(&r.losses, &r.grad_norms)
}

/// The loss log of `losses` and `grad_norms` (one per iteration) as CSV.
pub fn log_rows_csv(losses: &[f64], grad_norms: &[f64]) -> String {
    let mut s = String::from("iteration,loss,grad_norm\n");
    for (i, (l, g)) in losses.iter().zip(grad_norms).enumerate() {
        s += &format!("{i},{l},{g}\n");
    }
    s
}

/// Saves the parameters and (if asked) the log, trying both: the parameters file written,
/// and whether the log was.
fn save(
    params_out: &mut OutputFile,
    log_out: &mut Option<OutputFile>,
    program: &Program,
    params: &[f64],
    (losses, grad_norms): (&[f64], &[f64]),
    loss: Option<f64>,
) -> (Result<PathBuf, Error>, Result<bool, Error>) {
    let json = params_json_for(program, params, losses.len(), loss);
    let written = params_out.save(json.as_bytes());
    let logged = match log_out {
        Some(l) => l
            .save(log_rows_csv(losses, grad_norms).as_bytes())
            .map(|_| true),
        None => Ok(false),
    };
    (written, logged)
}

/// Writes a message line; a closed or failing stderr is not an error of the training.
macro_rules! say {
    ($err:expr, $($arg:tt)*) => {{
        let _ = writeln!($err, $($arg)*);
    }};
}

/// `pnodec train` on one file; the report when training ran (also when it failed or was
/// interrupted).
pub fn train_file(
    path: &Path,
    opts: &TrainOptions,
    err: &mut dyn WriteColor,
) -> Result<Option<TrainReport>, Error> {
    if opts.iterations == Some(0) {
        return Err(Error::Usage("`--iterations` must be at least 1".into()));
    }
    if opts.save_every == Some(0) {
        return Err(Error::Usage("`--save-every` must be at least 1".into()));
    }
    let outputs: Vec<(&'static str, &Path)> = [
        ("--out", &opts.out),
        ("--log", &opts.log),
        ("--plot", &opts.plot),
    ]
    .into_iter()
    .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
    .collect();
    probe(&outputs, opts.force)?;
    let Some(mut loaded) = load_with(path, opts.backend, opts.seed, err, |s| {
        if let Some(n) = opts.iterations {
            s.train.iterations = n;
        }
    })?
    else {
        return Ok(None);
    };
    let cfg = loaded.setup().train.clone();
    let program = loaded.program().clone();
    let name = program.name.clone();
    if program.loss.is_none() {
        return Err(pnode_driver::Error::NoLoss {
            model: name,
            what: "training",
        }
        .into());
    }
    let stem = format!("{name}.params");
    let mut params_out = match &opts.out {
        Some(p) => OutputFile::at(p, opts.force),
        None => OutputFile::default_name(Path::new("."), &stem, "json"),
    };
    if opts.out.is_none() {
        // The default name's folder (here) must take a new file too; the name itself moves
        // on to a free one when written.
        probe_folder(&free_path(Path::new("."), &stem, "json"))?;
    }
    let mut log_out = opts.log.as_deref().map(|p| OutputFile::at(p, opts.force));
    let theta0 = crate::params::theta_or_default(
        opts.params.as_deref(),
        &program,
        &loaded.setup().theta0,
        err,
    )?;
    say!(
        err,
        "training `{name}`: {} parameters, {} iterations, {} backend (compiled in {:.1} ms)",
        program.param_len(),
        cfg.iterations,
        loaded.backend.name(),
        loaded.compile_ms
    );
    let terminal = opts
        .progress
        .unwrap_or_else(|| std::io::stderr().is_terminal());
    let bar = if terminal {
        let bar = ProgressBar::with_draw_target(Some(cfg.iterations), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed} < {eta}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    } else {
        ProgressBar::hidden()
    };
    let interrupt = match Interrupt::install() {
        Ok(i) => Some(i),
        Err(e) => {
            say!(
                err,
                "warning: cannot handle Ctrl-C and SIGTERM ({e}): they end training without saving"
            );
            None
        }
    };
    let start = Instant::now();
    let mut losses = Vec::new();
    let mut grad_norms = Vec::new();
    let mut save_error = None;
    let outcome = {
        let (run, model) = (&mut loaded.run, &mut loaded.model);
        run.train_steps(model, &theta0, |p, theta| {
            losses.push(p.loss);
            grad_norms.push(p.grad_norm);
            if terminal {
                bar.set_position(p.iteration + 1);
                bar.set_message(format!("loss {:.4e}", p.loss));
            } else if p.log {
                say!(
                    err,
                    "iteration {:>6}/{}: loss {:.6e}, |grad| {:.3e}",
                    p.iteration + 1,
                    p.iterations,
                    p.loss,
                    p.grad_norm
                );
            }
            if let Some(n) = opts.save_every
                && (p.iteration + 1).is_multiple_of(n)
                && p.iteration + 1 < p.iterations
            {
                let (written, logged) = save(
                    &mut params_out,
                    &mut log_out,
                    &program,
                    theta,
                    (&losses, &grad_norms),
                    None,
                );
                if let Some(e) = written.err().or(logged.err()) {
                    save_error = Some(e);
                    return ControlFlow::Break(());
                }
            }
            match interrupt.as_ref().and_then(Interrupt::signal) {
                Some(_) => ControlFlow::Break(()),
                None => ControlFlow::Continue(()),
            }
        })
    };
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let (result, failure) = match outcome {
        Ok(r) => (r, None),
        Err(pnode_driver::Error::Training {
            iteration,
            source,
            partial,
        }) => (
            *partial,
            Some(Error::TrainingStopped {
                iteration,
                iterations: cfg.iterations,
                source,
            }),
        ),
        Err(e) => return Err(e.into()),
    };
    let done = result.losses.len();
    // Stopped early without a failure: by a signal, or by a failed periodic save.
    let interrupted = if failure.is_none() && save_error.is_none() && result.final_loss.is_none() {
        interrupt.as_ref().and_then(Interrupt::signal)
    } else {
        None
    };
    let mut write_errors: Vec<Error> = save_error.into_iter().collect();
    let (written, logged) = save(
        &mut params_out,
        &mut log_out,
        &program,
        &result.params,
        (&result.losses, &result.grad_norms),
        result.final_loss,
    );
    let params_path = written.map_err(|e| write_errors.push(e)).ok();
    let logged = logged.map_err(|e| write_errors.push(e)).unwrap_or(false);
    let plot_path = match &opts.plot {
        Some(p) => match losses_svg(&name, &result.losses)
            .map_err(Error::Usage)
            .and_then(|svg| write_new(p, svg.as_bytes(), opts.force))
        {
            Ok(()) => Some(p),
            Err(e) => {
                write_errors.push(e);
                None
            }
        },
        None => None,
    };
    if let Some(f) = &failure {
        render::report_error(err, f);
    }
    if let Some(s) = interrupted {
        say!(
            err,
            "interrupted by {} after {done} of {} iterations",
            s.name(),
            cfg.iterations
        );
    }
    if let (Some(first), Some(last)) = (
        result.losses.first(),
        result.final_loss.or(result.losses.last().copied()),
    ) {
        let ratio = first / last;
        // Past a million the factor reads better in scientific notation.
        let ratio = if ratio.abs() >= 1e6 {
            format!("{ratio:.2e}")
        } else {
            format!("{ratio:.1}")
        };
        say!(
            err,
            "loss {first:.6e} → {last:.6e} ({ratio}× lower) in {done} iterations, {:.2} ms per iteration",
            1e3 * seconds / done.max(1) as f64
        );
    }
    if let Some(p) = &params_path {
        let note = if failure.is_some() {
            " (the last good parameters)".to_string()
        } else if interrupted.is_some() {
            format!(" (the parameters after iteration {done})")
        } else {
            String::new()
        };
        say!(err, "wrote {}{note}", p.display());
    }
    // A signal during the saves was only noted; the handlers go now.
    drop(interrupt);
    if logged && let Some(p) = log_out.as_ref().and_then(OutputFile::path) {
        say!(err, "wrote {}", p.display());
    }
    if let Some(p) = plot_path {
        say!(err, "wrote {}", p.display());
    }
    for e in &write_errors {
        render::report_error(err, e);
    }
    Ok(Some(TrainReport {
        result,
        params_path,
        seconds,
        failure,
        interrupted,
        write_failed: !write_errors.is_empty(),
    }))
}

/// `pnodec train FILE`.
pub fn run(path: &Path, opts: &TrainOptions, color: ColorMode) -> Exit {
    let mut err = color.stderr();
    match train_file(path, opts, &mut err) {
        Ok(Some(r)) => r.exit(),
        Ok(None) => Exit::Failed,
        Err(e) => render::report_error(&mut err, &e),
    }
}
