//! `pnodec bench`: times one model with both backends and, for an explicit method, both
//! steppers of the JIT.
//!
//! Rows (backend, stepper): `jit fused` (what `solve`/`grad`/`train` run by default for an
//! explicit method: `pnode_jit::JitErkStepper`, one native call per step), `jit runtime` (the
//! JIT's RHS/JVP/VJP kernels called per stage by the runtime's `ErkStepper`; the only JIT row
//! of an implicit method, whose θ/DIRK stepper is the runtime's) and `interp runtime`. For each:
//! the time to build it (Cranelift compilation of the kernels, plus the fused steps; the
//! interpreter's setup), then the median over `--reps` runs (after one warm-up run) of a
//! forward solve at θ0 (or at the parameters of `--params FILE`) and of a loss-and-gradient
//! evaluation (skipped without a `loss`). Prints a table and the speed-ups of the first row
//! over the others. A model the JIT cannot compile is timed with the interpreter only.
//!
//! `--backend jit` times only the JIT rows, `--backend interp` only the interpreter,
//! `--backend torch` only libtorch (a pnodec built with `--features torch`). `--json` prints
//! one object instead of the table:
//!
//! ```json
//! { "model": "lotka_volterra", "states": 2, "params": 4, "steps": 500, "reps": 5,
//!   "timings": [ { "backend": "jit", "stepper": "fused", "compile_ms": 2.1,
//!                  "forward_ms": 0.05, "gradient_ms": 0.12 }, … ] }
//! ```
//!
//! (`gradient_ms` is `null` for a model without a loss.)

use crate::load::{
    Backend, Model, Stepper, StepperChoice, build_run, is_explicit, lower_file, model_dir,
};
use crate::render::{self, ColorMode};
use crate::{Error, Exit};
use codespan_reporting::term::termcolor::WriteColor;
use pnode_driver::Setup;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// The options of `pnodec bench`.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Timed repetitions (the median is reported).
    pub reps: usize,
    /// Overrides the seed of the random initializers.
    pub seed: Option<u64>,
    /// Which backends to time: [`Backend::Auto`] times the JIT (both steppers for an explicit
    /// method) and the interpreter; any other only that one.
    pub backend: Backend,
    /// Time at the parameters of this file (what `pnodec train` writes) instead of θ0.
    pub params: Option<std::path::PathBuf>,
    /// Print JSON instead of the table.
    pub json: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            reps: 5,
            seed: None,
            backend: Backend::Auto,
            params: None,
            json: false,
        }
    }
}

/// The timings of one backend, in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// The backend.
    pub backend: Backend,
    /// The stepper that ran: `fused` or `runtime`.
    pub stepper: &'static str,
    /// Building the backend (and the fused steps).
    pub compile_ms: f64,
    /// Median forward solve.
    pub forward_ms: f64,
    /// Median loss and gradient (`None` without a loss).
    pub gradient_ms: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn time_ms(reps: usize, mut f: impl FnMut() -> Result<(), Error>) -> Result<f64, Error> {
    f()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(times))
}

/// Times `setup` at the parameters `theta` with `backend` and the stepper `choice` picks.
pub fn time_backend(
    setup: &Setup,
    theta: &[f64],
    backend: Backend,
    choice: StepperChoice,
    reps: usize,
) -> Result<Timing, Error> {
    let (mut model, model_ms) = Model::new(&setup.program, backend)?;
    let (mut run, fused_ms) = build_run(setup.clone(), &model, choice)?;
    let stepper = Stepper::name_for(&run);
    let forward_ms = time_ms(reps, || {
        run.solve(&mut model, theta)?;
        Ok(())
    })?;
    let gradient_ms = if setup.program.loss.is_some() {
        Some(time_ms(reps, || {
            run.loss_and_grad(&mut model, theta)?;
            Ok(())
        })?)
    } else {
        None
    };
    Ok(Timing {
        backend,
        stepper,
        compile_ms: model_ms + fused_ms,
        forward_ms,
        gradient_ms,
    })
}

/// The table `pnodec bench` prints: one row per timing, then the speed-ups of the first row
/// over each of the others.
pub fn table(timings: &[Timing]) -> String {
    let mut s = format!(
        "{:<8} {:<8} {:>12} {:>12} {:>12} {:>10}\n",
        "backend", "stepper", "compile ms", "forward ms", "gradient ms", "grad/fwd"
    );
    for t in timings {
        let (g, ratio) = match t.gradient_ms {
            Some(g) => (format!("{g:.3}"), format!("{:.2}", g / t.forward_ms)),
            None => ("—".into(), "—".into()),
        };
        s += &format!(
            "{:<8} {:<8} {:>12.3} {:>12.3} {:>12} {:>10}\n",
            t.backend.name(),
            t.stepper,
            t.compile_ms,
            t.forward_ms,
            g,
            ratio
        );
    }
    if let [first, rest @ ..] = timings {
        for other in rest {
            s += &format!(
                "{} {} speed-up over {} {}: forward {:.1}×",
                first.backend.name(),
                first.stepper,
                other.backend.name(),
                other.stepper,
                other.forward_ms / first.forward_ms
            );
            if let (Some(a), Some(b)) = (first.gradient_ms, other.gradient_ms) {
                s += &format!(", gradient {:.1}×", b / a);
            }
            s.push('\n');
        }
    }
    s
}

/// The JSON `pnodec bench --json` prints (see the [module docs](self)).
pub fn report_json(setup: &Setup, reps: usize, timings: &[Timing]) -> crate::grad::Object {
    let rows: Vec<crate::grad::Object> = timings
        .iter()
        .map(|t| {
            let mut row = crate::grad::Object::new();
            row.push("backend", json!(t.backend.name()))
                .push("stepper", json!(t.stepper))
                .push("compile_ms", json!(t.compile_ms))
                .push("forward_ms", json!(t.forward_ms))
                .push("gradient_ms", json!(t.gradient_ms));
            row
        })
        .collect();
    let mut o = crate::grad::Object::new();
    o.push("model", json!(setup.program.name))
        .push("states", json!(setup.program.state_len()))
        .push("params", json!(setup.program.param_len()))
        .push("steps", json!(setup.grid.n_steps()))
        .push("adaptive", json!(setup.grid.adaptive().is_some()))
        .push("reps", json!(reps))
        .push("timings", rows);
    o
}

/// `pnodec bench` on one file.
pub fn bench_file(
    path: &Path,
    opts: &BenchOptions,
    out: &mut dyn Write,
    err: &mut dyn WriteColor,
) -> Result<Exit, Error> {
    if opts.reps == 0 {
        return Err(Error::Usage("`--reps` must be at least 1".into()));
    }
    let Some((_, program)) = lower_file(path, err)? else {
        return Ok(Exit::Failed);
    };
    let setup = Setup::new(&program, &model_dir(path), opts.seed)?;
    let theta =
        crate::params::theta_or_default(opts.params.as_deref(), &program, &setup.theta0, err)?;
    let header = format!(
        "model `{}`: {} states, {} parameters, {}; median of {} runs",
        program.name,
        program.state_len(),
        program.param_len(),
        match setup.grid.n_steps() {
            Some(n) => format!("{n} steps"),
            None => "adaptive steps".into(),
        },
        opts.reps
    );
    let mut timings = Vec::new();
    let mut jit = vec![StepperChoice::Auto];
    if is_explicit(&setup) {
        jit.push(StepperChoice::Runtime);
    }
    match opts.backend {
        Backend::Auto => {
            for choice in jit {
                match time_backend(&setup, &theta, Backend::Jit, choice, opts.reps) {
                    Ok(t) => timings.push(t),
                    Err(Error::Jit(msg)) => {
                        writeln!(err, "note: {msg}; timing the interpreter only")?;
                        timings.clear();
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            timings.push(time_backend(
                &setup,
                &theta,
                Backend::Interp,
                StepperChoice::Auto,
                opts.reps,
            )?);
        }
        Backend::Jit => {
            for choice in jit {
                timings.push(time_backend(
                    &setup,
                    &theta,
                    Backend::Jit,
                    choice,
                    opts.reps,
                )?);
            }
        }
        backend @ (Backend::Interp | Backend::Torch) => {
            timings.push(time_backend(
                &setup,
                &theta,
                backend,
                StepperChoice::Auto,
                opts.reps,
            )?);
        }
    }
    if opts.json {
        out.write_all(
            report_json(&setup, opts.reps, &timings)
                .to_pretty()
                .as_bytes(),
        )?;
    } else {
        writeln!(out, "{header}")?;
        out.write_all(table(&timings).as_bytes())?;
    }
    Ok(Exit::Ok)
}

/// `pnodec bench FILE`.
pub fn run(path: &Path, opts: &BenchOptions, color: ColorMode) -> Exit {
    let mut err = color.stderr();
    let mut out = std::io::stdout().lock();
    match bench_file(path, opts, &mut out, &mut err) {
        Ok(status) => status,
        Err(e) => render::report_error(&mut err, &e),
    }
}
