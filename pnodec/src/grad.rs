//! `pnodec grad`: the loss and its discrete-adjoint gradient at the initial parameters θ0,
//! as JSON.
//!
//! ```json
//! { "model": "lotka_volterra", "method": "rk4", "steps": 1000, "backend": "jit",
//!   "stepper": "fused", "compile_ms": 3.1, "loss": 0.25,
//!   "grad_u0": [ … ], "grad_params": { "theta": [ … ] },
//!   "stats": { "rhs_evals": …, … }, "grad_ms": 1.2 }
//! ```
//!
//! `stepper` is `fused` when the JIT's fused explicit step ran, `runtime` when the runtime's
//! stepper did (the interpreter, implicit methods). `grad_params` has one array per parameter
//! of the program (`theta`, `net.0.weight`, …) in declaration order, each the row-major
//! flattening of that parameter's gradient. Numbers are printed in the shortest form that
//! reads back to the same `f64`.

use crate::check::method_name;
use crate::load::{Backend, Loaded, load};
use crate::output::write_new;
use crate::render::{self, ColorMode};
use crate::{Error, Exit};
use codespan_reporting::term::termcolor::WriteColor;
use pnode_runtime::Stats;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The options of `pnodec grad`.
#[derive(Clone, Debug, Default)]
pub struct GradOptions {
    /// Where to write the JSON (`None` or `-`: standard output).
    pub out: Option<PathBuf>,
    /// Replace an existing `out`.
    pub force: bool,
    /// The model backend.
    pub backend: Backend,
    /// Overrides the seed of the random initializers.
    pub seed: Option<u64>,
}

/// The solver statistics as a JSON object.
pub fn stats_json(s: &Stats) -> Value {
    json!({
        "rhs_evals": s.rhs_evals,
        "jvp_evals": s.jvp_evals,
        "vjp_evals": s.vjp_evals,
        "newton_iterations": s.newton_iterations,
        "linear_iterations": s.linear_iterations,
        "forward_steps": s.forward_steps,
        "recomputed_steps": s.recomputed_steps,
        "stage_recomputations": s.stage_recomputations,
        "reversed_steps": s.reversed_steps,
        "peak_slots": s.peak_slots,
        "peak_stored_vectors": s.peak_stored_vectors,
        "peak_stored_bytes": s.peak_stored_bytes,
        "disk_writes": s.disk_writes,
        "disk_reads": s.disk_reads,
    })
}

/// The integrator's name for reports (the default `rk4` without a `solve` block).
pub fn method_of(loaded: &Loaded) -> String {
    loaded
        .program()
        .solve
        .as_ref()
        .map_or_else(|| "rk4".to_string(), |s| method_name(&s.method))
}

/// Evaluates the loss and gradient at θ0 and returns the JSON report.
pub fn gradient_json(loaded: &mut Loaded) -> Result<Value, Error> {
    let theta0 = loaded.setup().theta0.clone();
    let start = Instant::now();
    let (loss, g) = loaded.run.loss_and_grad(&mut loaded.model, &theta0)?;
    let grad_ms = start.elapsed().as_secs_f64() * 1e3;
    let program = loaded.program();
    let mut params = Map::new();
    for p in &program.params {
        let slice = g.dp.get(p.offset..p.offset + p.shape.len()).unwrap_or(&[]);
        params.insert(p.name.clone(), json!(slice));
    }
    Ok(json!({
        "model": program.name,
        "method": method_of(loaded),
        "steps": loaded.setup().grid.n_steps(),
        "backend": loaded.backend.name(),
        "stepper": loaded.stepper_name(),
        "compile_ms": loaded.compile_ms,
        "grad_ms": grad_ms,
        "loss": loss,
        "grad_u0": g.du0,
        "grad_params": params,
        "stats": stats_json(&loaded.run.stats()),
    }))
}

/// Writes `text` to `out` (a new file unless `force`) or, for `None`/`-`, to `stdout`.
pub fn write_output(
    out: Option<&Path>,
    text: &str,
    force: bool,
    stdout: &mut dyn Write,
) -> Result<(), Error> {
    match out {
        None => stdout.write_all(text.as_bytes())?,
        Some(p) if p == Path::new("-") => stdout.write_all(text.as_bytes())?,
        Some(p) => write_new(p, text.as_bytes(), force)?,
    }
    Ok(())
}

/// `pnodec grad` on one file: JSON to `out` or `stdout`, diagnostics and notes to `err`.
pub fn grad_file(
    path: &Path,
    opts: &GradOptions,
    stdout: &mut dyn Write,
    err: &mut dyn WriteColor,
) -> Result<Exit, Error> {
    if let Some(out) = opts.out.as_deref().filter(|p| *p != Path::new("-")) {
        crate::output::check_free(out, opts.force)?;
    }
    let Some(mut loaded) = load(path, opts.backend, opts.seed, err)? else {
        return Ok(Exit::Failed);
    };
    let report = gradient_json(&mut loaded)?;
    let mut text = serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?;
    text.push('\n');
    write_output(opts.out.as_deref(), &text, opts.force, stdout)?;
    if let Some(out) = opts.out.as_deref().filter(|p| *p != Path::new("-")) {
        writeln!(err, "wrote {}", out.display())?;
    }
    Ok(Exit::Ok)
}

/// `pnodec grad FILE`.
pub fn run(path: &Path, opts: &GradOptions, color: ColorMode) -> Exit {
    let mut err = color.stderr();
    let mut out = std::io::stdout().lock();
    match grad_file(path, opts, &mut out, &mut err) {
        Ok(status) => status,
        Err(e) => render::report_error(&mut err, &e),
    }
}
