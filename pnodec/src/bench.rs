//! `pnodec bench`: times one model with both backends and, for an explicit method, both
//! steppers of the JIT.
//!
//! Rows (backend, stepper): `jit fused` (what `solve`/`grad`/`train` run by default for an
//! explicit method: `pnode_jit::JitErkStepper`, one native call per step), `jit runtime` (the
//! JIT's RHS/JVP/VJP kernels called per stage by the runtime's `ErkStepper`; the only JIT row
//! of an implicit method, whose θ/DIRK stepper is the runtime's) and `interp runtime`. For each:
//! the time to build it (Cranelift compilation of the kernels, plus the fused steps; the
//! interpreter's setup), then the median over `--reps` runs (after one warm-up run) of a
//! forward solve at θ0 and of a loss-and-gradient evaluation (skipped without a `loss`).
//! Prints a table and the speed-ups of the first row over the others. A model the JIT cannot
//! compile is timed with the interpreter only.

use crate::load::{
    Backend, Model, Stepper, StepperChoice, build_run, is_explicit, lower_file, model_dir,
};
use crate::render::{self, ColorMode};
use crate::{Error, Exit};
use codespan_reporting::term::termcolor::WriteColor;
use pnode_driver::Setup;
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
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            reps: 5,
            seed: None,
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

/// Times `setup` with `backend` and the stepper `choice` picks.
pub fn time_backend(
    setup: &Setup,
    backend: Backend,
    choice: StepperChoice,
    reps: usize,
) -> Result<Timing, Error> {
    let (mut model, model_ms) = Model::new(&setup.program, backend)?;
    let (mut run, fused_ms) = build_run(setup.clone(), &model, choice)?;
    let stepper = Stepper::name_for(&run);
    let theta = setup.theta0.clone();
    let forward_ms = time_ms(reps, || {
        run.solve(&mut model, &theta)?;
        Ok(())
    })?;
    let gradient_ms = if setup.program.loss.is_some() {
        Some(time_ms(reps, || {
            run.loss_and_grad(&mut model, &theta)?;
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
    writeln!(
        out,
        "model `{}`: {} states, {} parameters, {} steps; median of {} runs",
        program.name,
        program.state_len(),
        program.param_len(),
        setup.grid.n_steps(),
        opts.reps
    )?;
    let mut timings = Vec::new();
    let mut jit = vec![StepperChoice::Auto];
    if is_explicit(&setup) {
        jit.push(StepperChoice::Runtime);
    }
    for choice in jit {
        match time_backend(&setup, Backend::Jit, choice, opts.reps) {
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
        Backend::Interp,
        StepperChoice::Auto,
        opts.reps,
    )?);
    out.write_all(table(&timings).as_bytes())?;
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
