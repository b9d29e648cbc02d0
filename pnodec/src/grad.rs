//! `pnodec grad`: the loss and its discrete-adjoint gradient at the initial parameters θ0 (or,
//! with `--params FILE`, at the parameters `pnodec train` saved: [`crate::params`]), as JSON.
//!
//! ```json
//! { "model": "lotka_volterra", "method": "rk4", "steps": 1000, "backend": "jit",
//!   "stepper": "fused", "compile_ms": 3.1, "grad_ms": 1.2, "loss": 0.25,
//!   "grad_u0": [ … ], "grad_params": { "theta": [ … ], "net.0.weight": [ … ] },
//!   "grad_theta": [ … ], "t": [ … ], "u": [[ … ], …],
//!   "stats": { "rhs_evals": …, … } }
//! ```
//!
//! `stepper` is `fused` when the JIT's fused explicit step ran, `runtime` when the runtime's
//! stepper did (the interpreter, implicit methods). `grad_params` has one array per parameter
//! of the program (`theta`, `net.0.weight`, …) **in declaration order** (the keys are written
//! in that order), each the row-major flattening of that parameter's gradient; `grad_theta` is
//! the same gradient flat, in the layout of `θ` (`param` items and each layer's weights, in
//! declaration order: the concatenation of `grad_params`' arrays). `t` holds the
//! output times and `u` the state at each (one row of `n` values per output time, the forward
//! sweep of this gradient: what `pnodec solve` writes at the same parameters). Numbers are
//! printed in the shortest form that reads back to the same `f64`.

use crate::check::method_name;
use crate::load::{Backend, Loaded, load};
use crate::output::write_new;
use crate::render::{self, ColorMode};
use crate::{Error, Exit};
use codespan_reporting::term::termcolor::WriteColor;
use pnode_runtime::Stats;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};
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
    /// Differentiate at the parameters of this file (what `pnodec train` writes) instead of θ0.
    pub params: Option<PathBuf>,
}

/// A JSON object whose keys are written in insertion order (serde_json's `Map` sorts them
/// alphabetically, which would permute a gradient listed "in declaration order").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object(pub Vec<(String, Entry)>);

/// A value of an [`Object`]: a plain JSON value or a nested ordered object.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// Any JSON value.
    Value(Value),
    /// An object keeping its key order.
    Object(Object),
    /// An array of entries (of ordered objects, say).
    Array(Vec<Entry>),
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Object(Vec::new())
    }

    /// Appends `key: value`.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Entry>) -> &mut Self {
        self.0.push((key.into(), value.into()));
        self
    }

    /// The value of `key` (the first one), if any.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Pretty-printed JSON with a final newline.
    pub fn to_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

impl From<Value> for Entry {
    fn from(v: Value) -> Self {
        Entry::Value(v)
    }
}

impl From<Object> for Entry {
    fn from(o: Object) -> Self {
        Entry::Object(o)
    }
}

impl From<Vec<Object>> for Entry {
    fn from(v: Vec<Object>) -> Self {
        Entry::Array(v.into_iter().map(Entry::Object).collect())
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Value(v) => v.serialize(serializer),
            Entry::Object(o) => o.serialize(serializer),
            Entry::Array(a) => a.serialize(serializer),
        }
    }
}

/// One array per program parameter, by name, in declaration order (the order of
/// `Program::params`, which is that of `θ`): the slices of the flat `values`.
pub fn by_parameter(program: &pnode_ir::lower::Program, values: &[f64]) -> Object {
    let mut o = Object::new();
    for p in &program.params {
        let slice = values
            .get(p.offset..p.offset + p.shape.len())
            .unwrap_or(&[]);
        o.push(p.name.clone(), json!(slice));
    }
    o
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

/// Evaluates the loss and gradient at `theta` and returns the JSON report.
pub fn gradient_json(loaded: &mut Loaded, theta: &[f64]) -> Result<Object, Error> {
    let start = Instant::now();
    let (loss, g) = loaded.run.loss_and_grad(&mut loaded.model, theta)?;
    let grad_ms = start.elapsed().as_secs_f64() * 1e3;
    let n = loaded.program().state_len();
    let u: Vec<&[f64]> = if n == 0 {
        Vec::new()
    } else {
        loaded.run.outputs().chunks(n).collect()
    };
    let adaptive = loaded.run.adaptive_stats();
    let steps = match adaptive {
        Some(a) => a.accepted_steps as usize,
        None => loaded.setup().grid.n_steps().unwrap_or(0),
    };
    let mut o = Object::new();
    o.push("model", json!(loaded.program().name))
        .push("method", json!(method_of(loaded)))
        .push("steps", json!(steps))
        .push("backend", json!(loaded.backend.name()))
        .push("stepper", json!(loaded.stepper_name()))
        .push("compile_ms", json!(loaded.compile_ms))
        .push("grad_ms", json!(grad_ms))
        .push("loss", json!(loss))
        .push("grad_u0", json!(g.du0))
        .push("grad_params", by_parameter(loaded.program(), &g.dp))
        .push("grad_theta", json!(g.dp))
        .push("t", json!(loaded.setup().output_times))
        .push("u", json!(u))
        .push("stats", stats_json(&loaded.run.stats()));
    if let (Some(a), Some(grid)) = (adaptive, loaded.run.accepted_times()) {
        // The accepted grid: the gradient is the fixed-grid gradient on exactly these points.
        o.push("rejected_steps", json!(a.rejected_steps))
            .push("nonfinite_rejections", json!(a.nonfinite_rejections))
            .push("grid", json!(grid));
    }
    Ok(o)
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
        crate::output::probe(&[("--out", out)], opts.force)?;
    }
    let Some(mut loaded) = load(path, opts.backend, opts.seed, err)? else {
        return Ok(Exit::Failed);
    };
    let theta = crate::params::theta_or_default(
        opts.params.as_deref(),
        loaded.program(),
        &loaded.setup().theta0,
        err,
    )?;
    let text = gradient_json(&mut loaded, &theta)?.to_pretty();
    write_output(opts.out.as_deref(), &text, opts.force, stdout)?;
    if let Some(out) = opts.out.as_deref().filter(|p| *p != Path::new("-")) {
        let _ = writeln!(err, "wrote {}", out.display());
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
