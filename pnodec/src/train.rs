//! `pnodec train`: the `train { }` block's optimizer on the discrete-adjoint gradient.
//!
//! * Progress: an indicatif bar on a terminal; otherwise (a pipe, a log file, a test) one
//!   line every `log_every` iterations on stderr.
//! * At the end: loss first → last (the full loss at the final parameters), the reduction and
//!   the time per iteration.
//! * `--params FILE` starts from the parameters of a file `pnodec train` wrote (a warm start;
//!   names and sizes checked: [`crate::params`]) instead of θ0; the first logged loss is the
//!   loss at those parameters.
//! * The parameters go to `--out`, else to `MODEL.params.json` in the current directory, with
//!   a numeric suffix (`MODEL.params-1.json`, …) if that name is taken; the file written is
//!   named on stderr. JSON: `{ "model", "iterations", "loss", "params": { NAME: [...] } }`,
//!   one row-major array per parameter of the program, in declaration order.
//! * `--log FILE.csv`: `iteration,loss,grad_norm` per iteration; `--plot FILE.svg`: the loss
//!   curve. Explicit paths that exist are refused (exit 2) before training unless `--force`.
//! * A failure (a Newton failure, a non-finite state or loss) prints the error with its
//!   iteration (and the solver's step and time) and still saves the last good parameters,
//!   the log and the plot; the exit status is 1.

use crate::load::{Backend, Loaded, load_with};
use crate::output::{check_free, free_path, write_new};
use crate::plot::losses_svg;
use crate::render::{self, ColorMode};
use crate::{Error, Exit};
use codespan_reporting::term::termcolor::WriteColor;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pnode_driver::TrainResult;
use serde_json::json;
use std::io::IsTerminal;
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
}

/// What a training run produced (for tests and the summary).
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// The driver's result (on failure: the partial one).
    pub result: TrainResult,
    /// The parameters file written.
    pub params_path: PathBuf,
    /// Wall-clock seconds of the iterations.
    pub seconds: f64,
    /// The error that stopped training, if any.
    pub failure: Option<String>,
}

/// The parameters as JSON: one array per program parameter.
pub fn params_json(
    loaded: &Loaded,
    params: &[f64],
    iterations: usize,
    loss: Option<f64>,
) -> String {
    let program = loaded.program();
    let mut o = crate::grad::Object::new();
    o.push("model", json!(program.name))
        .push("iterations", json!(iterations))
        .push("loss", json!(loss))
        .push("params", crate::grad::by_parameter(program, params));
    o.to_pretty()
}

/// The loss log as CSV.
pub fn log_csv(r: &TrainResult) -> String {
    let mut s = String::from("iteration,loss,grad_norm\n");
    for (i, (l, g)) in r.losses.iter().zip(&r.grad_norms).enumerate() {
        s += &format!("{i},{l},{g}\n");
    }
    s
}

/// `pnodec train` on one file; the report when training ran (also when it failed).
pub fn train_file(
    path: &Path,
    opts: &TrainOptions,
    err: &mut dyn WriteColor,
) -> Result<Option<TrainReport>, Error> {
    for p in [&opts.out, &opts.log, &opts.plot].into_iter().flatten() {
        check_free(p, opts.force)?;
    }
    if opts.iterations == Some(0) {
        return Err(Error::Usage("`--iterations` must be at least 1".into()));
    }
    let Some(mut loaded) = load_with(path, opts.backend, opts.seed, err, |s| {
        if let Some(n) = opts.iterations {
            s.train.iterations = n;
        }
    })?
    else {
        return Ok(None);
    };
    let cfg = loaded.setup().train.clone();
    let name = loaded.program().name.clone();
    if loaded.program().loss.is_none() {
        return Err(pnode_driver::Error::NoLoss {
            model: name,
            what: "training",
        }
        .into());
    }
    let theta0 = crate::params::theta_or_default(
        opts.params.as_deref(),
        loaded.program(),
        &loaded.setup().theta0,
        err,
    )?;
    writeln!(
        err,
        "training `{name}`: {} parameters, {} iterations, {} backend (compiled in {:.1} ms)",
        loaded.program().param_len(),
        cfg.iterations,
        loaded.backend.name(),
        loaded.compile_ms
    )?;
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
    let start = Instant::now();
    let outcome = {
        let (run, model) = (&mut loaded.run, &mut loaded.model);
        run.train_from(model, &theta0, |p| {
            if terminal {
                bar.set_position(p.iteration + 1);
                bar.set_message(format!("loss {:.4e}", p.loss));
            } else if p.log {
                eprintln!(
                    "iteration {:>6}/{}: loss {:.6e}, |grad| {:.3e}",
                    p.iteration + 1,
                    p.iterations,
                    p.loss,
                    p.grad_norm
                );
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
            Some(format!(
                "training stopped at iteration {iteration}: {source}"
            )),
        ),
        Err(e) => return Err(e.into()),
    };
    let done = result.losses.len();
    let params_path = match &opts.out {
        Some(p) => p.clone(),
        None => free_path(Path::new("."), &format!("{name}.params"), "json"),
    };
    let json = params_json(&loaded, &result.params, done, result.final_loss);
    write_new(&params_path, json.as_bytes(), opts.force)?;
    if let Some(f) = &failure {
        render::report_error(err, &Error::Usage(f.clone()));
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
        writeln!(
            err,
            "loss {first:.6e} → {last:.6e} ({ratio}× lower) in {done} iterations, {:.2} ms per iteration",
            1e3 * seconds / done.max(1) as f64
        )?;
    }
    writeln!(
        err,
        "wrote {}{}",
        params_path.display(),
        if failure.is_some() {
            " (the last good parameters)"
        } else {
            ""
        }
    )?;
    if let Some(p) = &opts.log {
        write_new(p, log_csv(&result).as_bytes(), opts.force)?;
        writeln!(err, "wrote {}", p.display())?;
    }
    if let Some(p) = &opts.plot {
        let svg = losses_svg(&name, &result.losses).map_err(Error::Usage)?;
        write_new(p, svg.as_bytes(), opts.force)?;
        writeln!(err, "wrote {}", p.display())?;
    }
    Ok(Some(TrainReport {
        result,
        params_path,
        seconds,
        failure,
    }))
}

/// `pnodec train FILE`.
pub fn run(path: &Path, opts: &TrainOptions, color: ColorMode) -> Exit {
    let mut err = color.stderr();
    match train_file(path, opts, &mut err) {
        Ok(Some(r)) if r.failure.is_some() => Exit::Failed,
        Ok(Some(_)) => Exit::Ok,
        Ok(None) => Exit::Failed,
        Err(e) => render::report_error(&mut err, &e),
    }
}
