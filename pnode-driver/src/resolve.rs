//! The one resolver of a [`Program`]'s `solve` block and initial values: what `pnodec`
//! ([`crate::Setup`]), `pnodec emit` and the `#[neural_ode]`/`model!` macro all call, so the
//! three cannot drift.
//!
//! [`resolve`] turns the program into runtime types — the integrator ([`MethodChoice`]: a
//! built-in or user `erk` tableau with its observed order, θ-methods, DIRKs, the Newton
//! configuration), the [`StepCost`] of the stepper that runs it, the [`TimeGrid`] with the
//! output times snapped or inserted, the [`Checkpointing`], and `u0`/`θ0` — without doing any
//! I/O of its own: data files are read through a [`DataReader`] ([`FsData`] reads the
//! filesystem relative to the model's directory; the macro reads at compile time and records
//! what it read).
//!
//! # Grids
//!
//! Every grid's step sizes are `h_n = t_{n+1} − t_n` of its points — the same bits wherever
//! the same points are given (the macro's generated code gets the points, not `t0, t1, N`,
//! and builds the grid with [`TimeGrid::from_times`]). The points of `steps = N` are
//! [`TimeGrid::uniform_points`]'s, `t_n = t0 + n·(t1 − t0)/N`, `t_N = t1`, computed on demand
//! (no memory per step) unless output times are inserted;
//! `logspace(a, b, n)` is `t0, a·r⁰, …, a·rⁿ⁻¹` with `r = ln(b/a)/(n−1)` in the exponent and
//! the ends exact; `steps = [..]` and `steps = data(..)` are the points as given.
//!
//! Output times within `1e-10 · (t1 − t0)` of a grid point are that point; the others are
//! **inserted into the grid** (the step containing one is split), never interpolated.
//!
//! # Initial values
//!
//! Random initializers (`normal`, `xavier`, the layers' uniform default) draw from one
//! ChaCha20 generator seeded with the seed, states first, then parameters, each in declaration
//! order, each tensor row-major: uniform `a·(2r − 1)`, `r ∈ [0, 1)`; normal by `rand_distr`;
//! `xavier` is uniform with `a = √(6 / (fan_in + fan_out))` (Glorot & Bengio 2010; a tensor of
//! rank below 2 takes `fan_in = fan_out =` its length, 1 for a scalar). A data file must hold
//! exactly as many numbers (after `column = k`) as the tensor has elements, taken row-major
//! whatever the file's shape; a layer's `init = data(..)` file holds all its parameters in
//! layout order, each parameter taking its part.

use std::path::{Path, PathBuf};

use pnode_ir::lower::{
    Checkpoint, ConstData, ConstDataError, ConstTable, DataSource, Initializer,
    LinearSolver as IrLinear, Method, NewtonOptions, Outputs, Program, StepControl, Steps,
    Tolerance as IrTolerance,
};
use pnode_ir::runtime::IrModel;
use pnode_runtime::adaptive::{AdaptiveOptions, Tolerance};
use pnode_runtime::checkpoint::StepCost;
use pnode_runtime::implicit::{GmresConfig, LineSearch, LinearSolver};
use pnode_runtime::stepper::ForwardStepper;
use pnode_runtime::{
    Budget, Checkpointing, DirkStepper, DirkTableau, ErkStepper, NewtonConfig, Tableau,
    ThetaStepper, TimeGrid,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, Normal};

use crate::data::{Table, read_table};
use crate::error::{Error, Result};

/// Halvings of the backtracking line search `line_search = true` turns on.
pub const LINE_SEARCH_HALVINGS: u32 = 8;

/// Where `data(..)` files come from.
pub trait DataReader {
    /// The numbers of `src` (`column = k` applied), or the typed error of reading them.
    fn table(&self, src: &DataSource) -> Result<Table>;
}

/// Reads data files from the filesystem, paths relative to `base_dir` (the model file's
/// directory; for the macro, the crate's or the `.pode` file's).
#[derive(Debug, Clone)]
pub struct FsData {
    /// The directory relative paths start from.
    pub base_dir: PathBuf,
}

impl FsData {
    /// A reader relative to `base_dir`.
    pub fn new(base_dir: &Path) -> FsData {
        FsData {
            base_dir: base_dir.to_path_buf(),
        }
    }

    /// The file `src` names.
    pub fn path(&self, src: &DataSource) -> PathBuf {
        self.base_dir.join(&src.path)
    }
}

impl DataReader for FsData {
    fn table(&self, src: &DataSource) -> Result<Table> {
        read_table(&self.path(src), src.column)
    }
}

/// A [`DataReader`] as the [`ConstData`] lowering reads `const … = data(..)` through, so that
/// constants come from the same files, by the same rules, as initial values:
/// `pnode_ir::lower::lower_with(&model, &ConstFiles(&FsData::new(dir)))`.
#[derive(Debug, Clone, Copy)]
pub struct ConstFiles<'a, R: ?Sized>(pub &'a R);

impl<R: DataReader + ?Sized> ConstData for ConstFiles<'_, R> {
    fn read(&self, src: &DataSource) -> Option<std::result::Result<ConstTable, ConstDataError>> {
        Some(
            self.0
                .table(src)
                .map(|t| ConstTable {
                    rows: t.rows,
                    cols: t.cols,
                    values: t.values,
                })
                .map_err(|e| ConstDataError(Box::new(e))),
        )
    }
}

/// Parses and lowers `source`, reading the files of `const … = data(..)` relative to `dir`
/// (the model file's directory), as `pnodec` does.
pub fn compile_source(source: &str, dir: &Path) -> pnode_ir::lower::Lowered {
    pnode_ir::lower::compile_source_with(source, &ConstFiles(&FsData::new(dir)))
}

/// The integrator, resolved to runtime types.
#[derive(Debug, Clone)]
pub enum MethodChoice {
    /// An explicit Runge–Kutta tableau (built-in or the user's `erk`).
    Explicit(Tableau),
    /// A θ-method.
    Theta {
        /// θ ∈ (0, 1].
        theta: f64,
        /// The stage solver.
        newton: NewtonConfig,
    },
    /// A DIRK.
    Dirk {
        /// The tableau.
        tableau: DirkTableau,
        /// The stage solver.
        newton: NewtonConfig,
    },
}

impl MethodChoice {
    /// The Newton configuration of an implicit method.
    pub fn newton(&self) -> Option<&NewtonConfig> {
        match self {
            MethodChoice::Explicit(_) => None,
            MethodChoice::Theta { newton, .. } | MethodChoice::Dirk { newton, .. } => Some(newton),
        }
    }
}

/// How the steps are chosen: a fixed grid, or error control by the method's embedded pair.
#[derive(Debug, Clone, PartialEq)]
pub enum Grid {
    /// A fixed grid with every output time a grid point.
    Fixed(TimeGrid),
    /// Steps chosen as the run goes (`method = dopri5(rtol = …)`), from `t0` to the last
    /// output time, landing exactly on every output time
    /// ([`pnode_runtime::adaptive::AdaptiveSolver`]).
    Adaptive {
        /// The start of the time span.
        t0: f64,
        /// The error control, defaults filled in.
        options: AdaptiveOptions,
    },
}

impl Grid {
    /// The fixed grid, `None` for adaptive steps.
    pub fn fixed(&self) -> Option<&TimeGrid> {
        match self {
            Grid::Fixed(g) => Some(g),
            Grid::Adaptive { .. } => None,
        }
    }

    /// The number of steps of a fixed grid, `None` for adaptive steps (known only after a run).
    pub fn n_steps(&self) -> Option<usize> {
        self.fixed().map(TimeGrid::n_steps)
    }

    /// The error control of adaptive steps.
    pub fn adaptive(&self) -> Option<&AdaptiveOptions> {
        match self {
            Grid::Fixed(_) => None,
            Grid::Adaptive { options, .. } => Some(options),
        }
    }
}

/// The runtime's options for the `solve` block's error control: every option left out takes
/// [`AdaptiveOptions::default`] (the one place the defaults live).
pub fn adaptive_options(c: &StepControl) -> Result<AdaptiveOptions> {
    let tol = |t: &IrTolerance| match t {
        IrTolerance::Scalar(x) => Tolerance::Scalar(*x),
        IrTolerance::PerComponent(v) => Tolerance::PerComponent(v.clone()),
    };
    let mut o = AdaptiveOptions::default();
    if let Some(t) = &c.rtol {
        o.rtol = tol(t);
    }
    if let Some(t) = &c.atol {
        o.atol = tol(t);
    }
    o.h0 = c.h0;
    if let Some(h) = c.h_min {
        o.h_min = h;
    }
    o.h_max = c.h_max;
    if let Some(m) = c.max_steps {
        o.max_steps = count("max_steps", m)?;
    }
    Ok(o)
}

/// The `solve` block and initial values of a program, resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The initial state `u0` (the states concatenated).
    pub u0: Vec<f64>,
    /// The initial parameters `θ0` (the declared ones; opaque layers bring their own).
    pub theta0: Vec<f64>,
    /// The seed the random initializers were drawn with.
    pub seed: u64,
    /// The time grid (output times inserted), or adaptive steps.
    pub grid: Grid,
    /// The output times `t_1 < … < t_K`, all grid points (every one is hit exactly by
    /// adaptive steps too).
    pub output_times: Vec<f64>,
    /// The checkpoint mode.
    pub checkpointing: Checkpointing,
    /// The integrator.
    pub method: MethodChoice,
    /// Its name (`rk4`, `erk`, `crank_nicolson`, `theta(0.7)`, `esdirk3`, …).
    pub method_name: String,
    /// The cost of one step as the runtime's stepper reports it (`ErkStepper`'s for explicit
    /// methods; stage vectors only for implicit ones, whose evaluations depend on Newton).
    pub cost: StepCost,
    /// Which defaults were used and what was adjusted, one line each.
    pub notes: Vec<String>,
}

pub(crate) fn config(option: &'static str, reason: impl Into<String>) -> Error {
    Error::Config {
        option,
        reason: reason.into(),
    }
}

pub(crate) fn count(option: &'static str, n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| config(option, format!("{n} is too large")))
}

/// Resolves `program`: data through `data`, random initializers seeded with `seed_override`,
/// else the train block's seed, else 0; defaults as in [`crate::setup`].
pub fn resolve(
    program: &Program,
    data: &dyn DataReader,
    seed_override: Option<u64>,
) -> Result<Resolved> {
    let mut notes = Vec::new();
    let seed = seed_override
        .or(program.train.as_ref().and_then(|t| t.seed))
        .unwrap_or(0);
    // The grid and output sizes against the memory the run may use, before anything of
    // their size is allocated.
    let mut preflight = crate::memory::Preflight::current();
    preflight.program(program)?;
    let (u0, theta0) = initial_values(program, data, seed)?;
    // The grid as the block gives it; output times are merged into a fixed one below.
    let (grid, outs, checkpointing, m) = match &program.solve {
        None => {
            notes.push(
                "no `solve` block: rk4, t = 0 .. 1, 100 steps, output at t = 1, store_all".into(),
            );
            (
                Grid::Fixed(time_grid(&Steps::Uniform(100), 0.0, 1.0, data)?),
                vec![1.0],
                Checkpointing::StoreAll,
                Method::Rk4,
            )
        }
        Some(s) => {
            let grid = match &s.steps {
                Steps::Adaptive(c) => Grid::Adaptive {
                    t0: s.t0,
                    options: adaptive_options(c)?,
                },
                st => Grid::Fixed(time_grid(st, s.t0, s.t1, data)?),
            };
            let outs = match &s.outputs {
                None => {
                    notes.push(format!("no `outputs`: the final time t = {}", s.t1));
                    vec![s.t1]
                }
                Some(o) => output_times(o, s.t0, s.t1, data)?,
            };
            let ck = match &s.checkpoint {
                None => Checkpointing::StoreAll,
                Some(c) => checkpointing(c)?,
            };
            (grid, outs, ck, s.method.clone())
        }
    };
    let (grid, output_times) = match grid {
        adaptive @ Grid::Adaptive { .. } => (adaptive, outs),
        Grid::Fixed(grid) => {
            let (grid, output_times, inserted) = merge(grid, &outs, &mut preflight)?;
            if inserted > 0 {
                notes.push(format!(
                    "{inserted} output times are not grid points and were inserted into the \
                     grid ({} steps)",
                    grid.n_steps()
                ));
            }
            (Grid::Fixed(grid), output_times)
        }
    };
    if program
        .solve
        .as_ref()
        .is_some_and(|s| s.checkpoint.is_none())
    {
        notes.push("no `checkpoint`: store_all".into());
    }
    let newton = program
        .solve
        .as_ref()
        .map(|s| s.newton.clone())
        .unwrap_or_default();
    let method = method(&m, &newton)?;
    // The steppers are built once here, so a configuration error (PETSc without the feature,
    // bad Newton options) surfaces before anything runs, and the cost is theirs.
    let cost = step_cost(&method, program.state_len(), program.param_len())?;
    Ok(Resolved {
        u0,
        theta0,
        seed,
        grid,
        output_times,
        checkpointing,
        method_name: method_name(&m, &method),
        method,
        cost,
        notes,
    })
}

fn method_name(m: &Method, choice: &MethodChoice) -> String {
    match (m, choice) {
        (Method::Theta(x), _) => format!("theta({x})"),
        (_, MethodChoice::Explicit(t)) => t.name().to_string(),
        (_, MethodChoice::Dirk { tableau, .. }) => tableau.name().to_string(),
        _ => m.name().to_string(),
    }
}

/// The [`StepCost`] of the runtime stepper for `method` on `n` states and `np` parameters
/// (building it, so configuration errors surface here).
pub fn step_cost(method: &MethodChoice, n: usize, np: usize) -> Result<StepCost> {
    Ok(match method {
        MethodChoice::Explicit(t) => {
            ForwardStepper::<IrModel>::cost(&ErkStepper::new(t.clone(), n, np))
        }
        MethodChoice::Theta { theta, newton } => {
            ForwardStepper::<IrModel>::cost(&ThetaStepper::new(*theta, n, np, *newton)?)
        }
        MethodChoice::Dirk { tableau, newton } => {
            ForwardStepper::<IrModel>::cost(&DirkStepper::new(tableau.clone(), n, np, *newton)?)
        }
    })
}

/// `u0` and `θ0`: states then parameters, in declaration order, from one ChaCha20 stream
/// seeded with `seed` (see the [module docs](self)).
pub fn initial_values(
    program: &Program,
    data: &dyn DataReader,
    seed: u64,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut u0 = vec![0.0; program.state_len()];
    for s in &program.states {
        let what = format!("initial value of state `{}` {}", s.name, s.shape);
        let out = u0
            .get_mut(s.offset..s.offset + s.shape.len())
            .ok_or_else(|| config("state", format!("`{}` lies outside u", s.name)))?;
        init(&s.init, s.shape.dims(), out, &mut rng, data, &what)?;
    }
    let mut theta0 = vec![0.0; program.param_len()];
    for p in &program.params {
        let what = format!("initial value of parameter `{}` {}", p.name, p.shape);
        let out = theta0
            .get_mut(p.offset..p.offset + p.shape.len())
            .ok_or_else(|| config("param", format!("`{}` lies outside θ", p.name)))?;
        init(&p.init, p.shape.dims(), out, &mut rng, data, &what)?;
    }
    Ok((u0, theta0))
}

fn init(
    ini: &Initializer,
    dims: &[usize],
    out: &mut [f64],
    rng: &mut ChaCha20Rng,
    data: &dyn DataReader,
    what: &str,
) -> Result<()> {
    let n = out.len();
    let uniform = |rng: &mut ChaCha20Rng, out: &mut [f64], a: f64| {
        for x in out.iter_mut() {
            *x = a * (2.0 * rng.random::<f64>() - 1.0);
        }
    };
    match ini {
        Initializer::Values(v) => {
            if v.len() != n {
                return Err(config(
                    "initializer",
                    format!("{what}: {} values for {n} elements", v.len()),
                ));
            }
            out.copy_from_slice(v);
        }
        Initializer::Fill(x) => out.fill(*x),
        Initializer::Zeros => out.fill(0.0),
        Initializer::Ones => out.fill(1.0),
        Initializer::Normal { std } => {
            let d = Normal::new(0.0, *std).map_err(|e| {
                config(
                    "initializer",
                    format!("{what}: normal({std}) is not a distribution: {e}"),
                )
            })?;
            for x in out.iter_mut() {
                *x = d.sample(rng);
            }
        }
        Initializer::Xavier => {
            let (fan_in, fan_out) = match dims {
                [] => (1, 1),
                [d] => (*d, *d),
                [o, i, rest @ ..] => {
                    let r: usize = rest.iter().product();
                    (i * r, o * r)
                }
            };
            let a = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
            uniform(rng, out, a);
        }
        Initializer::Uniform { bound } => {
            if !(bound.is_finite() && *bound >= 0.0) {
                return Err(config("initializer", format!("{what}: bound {bound}")));
            }
            uniform(rng, out, *bound);
        }
        Initializer::Data(src) => {
            let t = data.table(src)?;
            if t.values.len() != n {
                return Err(Error::DataShape {
                    path: t.path.clone(),
                    what: what.to_string(),
                    expected: format!("{n} values"),
                    found: format!("{} values ({})", t.values.len(), t.size()),
                });
            }
            out.copy_from_slice(&t.values);
        }
        Initializer::DataPart {
            source,
            start,
            total,
        } => {
            let t = data.table(source)?;
            let part = t.values.get(*start..*start + n);
            match part {
                Some(p) if t.values.len() == *total => out.copy_from_slice(p),
                _ => {
                    return Err(Error::DataShape {
                        path: t.path.clone(),
                        what: format!("{what} (values {start}.. of the layer's file)"),
                        expected: format!("{total} values (all the layer's parameters)"),
                        found: format!("{} values ({})", t.values.len(), t.size()),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The grid of `steps` over `t0 .. t1` (see the [module docs](self)).
pub fn time_grid(steps: &Steps, t0: f64, t1: f64, data: &dyn DataReader) -> Result<TimeGrid> {
    let points = match steps {
        Steps::Uniform(n) => {
            // The lowering's check (pnode-ir, `steps`): a step of more than 4 ulps of the
            // largest time keeps every grid point finite and distinct.
            let h = (t1 - t0) / *n as f64;
            let largest = t0.abs().max(t1.abs());
            if !(h.is_finite() && h > largest * f64::EPSILON * 4.0) {
                return Err(Error::TimeGrid { t0, t1, steps: *n });
            }
            return Ok(TimeGrid::uniform_points(t0, t1, count("steps", *n)?)?);
        }
        Steps::Logspace { start, end, count } => {
            let c = self::count("steps", *count)?;
            if c < 2 || !(*start > 0.0 && *start > t0 && start < end) {
                return Err(config(
                    "steps",
                    format!(
                        "logspace({start}, {end}, {count}) needs 0 < start, t0 < start < end and \
                         at least 2 points"
                    ),
                ));
            }
            let r = (end / start).ln() / (c - 1) as f64;
            let mut v = Vec::with_capacity(c + 1);
            v.push(t0);
            v.extend((0..c).map(|i| start * (r * i as f64).exp()));
            v[1] = *start;
            v[c] = *end;
            v
        }
        Steps::Times(v) => v.clone(),
        Steps::Adaptive(_) => {
            return Err(config(
                "steps",
                "adaptive steps have no grid before the run (`Grid::Adaptive`)",
            ));
        }
        Steps::Data(src) => {
            let t = data.table(src)?;
            let shape = |expected: String| Error::DataShape {
                path: t.path.clone(),
                what: "grid times (`steps`)".into(),
                expected,
                found: t.size(),
            };
            if t.cols != 1 || t.values.len() < 2 {
                return Err(shape(
                    "one column (or `column = k`) of at least two times".into(),
                ));
            }
            let (first, last) = (t.values[0], t.values[t.values.len() - 1]);
            if first != t0 || last != t1 {
                return Err(shape(format!(
                    "times from t0 = {t0} to t1 = {t1} (the file runs from {first} to {last})"
                )));
            }
            t.values
        }
    };
    Ok(TimeGrid::from_points(points)?)
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![a],
        _ => {
            let mut v: Vec<f64> = (0..n)
                .map(|k| a + (b - a) * k as f64 / (n - 1) as f64)
                .collect();
            v[n - 1] = b;
            v
        }
    }
}

fn output_times(o: &Outputs, t0: f64, t1: f64, data: &dyn DataReader) -> Result<Vec<f64>> {
    let (v, from) = match o {
        Outputs::Linspace { start, end, count } => (
            linspace(*start, *end, self::count("outputs", *count)?),
            None,
        ),
        Outputs::Times(v) => (v.clone(), None),
        Outputs::Data(src) => {
            let t = data.table(src)?;
            if t.cols != 1 {
                return Err(Error::DataShape {
                    found: t.size(),
                    path: t.path,
                    what: "output times".into(),
                    expected: "one column of times (or `column = k`)".into(),
                });
            }
            (t.values, Some(t.path))
        }
    };
    let name = from
        .as_ref()
        .map_or(String::new(), |p| format!(" in `{}`", p.display()));
    if v.is_empty() {
        return Err(config("outputs", format!("no output times{name}")));
    }
    for (k, &t) in v.iter().enumerate() {
        if !(t >= t0 && t <= t1) {
            return Err(config(
                "outputs",
                format!("output time {k}{name} is {t}, outside the time span {t0} .. {t1}"),
            ));
        }
        if k > 0 && t <= v[k - 1] {
            return Err(config(
                "outputs",
                format!(
                    "output times{name} must increase strictly: time {k} = {t} after {}",
                    v[k - 1]
                ),
            ));
        }
    }
    Ok(v)
}

/// `grid` with every output time a grid point: output times within `1e-10 · span` of a point
/// snap to it, the others are inserted (the grid's points are then listed, counted by
/// `preflight` as [`GRID_BYTES_PER_POINT`](crate::memory::GRID_BYTES_PER_POINT) each before
/// they are made). Returns the grid, the snapped output times and how many were inserted.
fn merge(
    grid: TimeGrid,
    outputs: &[f64],
    preflight: &mut crate::memory::Preflight,
) -> Result<(TimeGrid, Vec<f64>, usize)> {
    let tol = 1e-10 * (grid.end() - grid.start());
    // The points to insert (the grid is rebuilt with them only if there are any).
    let extra: Vec<f64> = outputs
        .iter()
        .copied()
        .filter(|&t| (grid.t(grid.nearest(t)) - t).abs() > tol)
        .collect();
    let inserted = extra.len();
    let grid = if inserted == 0 {
        grid
    } else {
        let points = (grid.n_steps() + 1 + inserted) as u64;
        preflight.add(
            crate::memory::MemoryUse::Steps,
            points.saturating_mul(crate::memory::GRID_BYTES_PER_POINT),
        )?;
        let mut all = grid.into_times();
        all.extend_from_slice(&extra);
        all.sort_by(f64::total_cmp);
        TimeGrid::from_points(all)?
    };
    let snapped = grid
        .output_indices(outputs)?
        .iter()
        .map(|&i| grid.t(i))
        .collect();
    Ok((grid, snapped, inserted))
}

fn checkpointing(c: &Checkpoint) -> Result<Checkpointing> {
    Ok(match c {
        Checkpoint::StoreAll => Checkpointing::StoreAll,
        Checkpoint::SolutionOnly => Checkpointing::SolutionOnly,
        Checkpoint::Revolve { slots } => Checkpointing::Revolve {
            slots: count("checkpoint", *slots)?,
        },
        Checkpoint::Online { slots } => Checkpointing::Online {
            slots: count("checkpoint", *slots)?,
        },
        Checkpoint::BudgetBytes(b) => Checkpointing::Budget(Budget::Bytes(*b)),
        Checkpoint::BudgetVectors(v) => Checkpointing::Budget(Budget::Vectors(*v)),
    })
}

/// The runtime's Newton configuration for the `solve` block's options (defaults in
/// [`crate::setup`]).
pub fn newton_config(o: &NewtonOptions) -> Result<NewtonConfig> {
    let mut c = NewtonConfig::default();
    if let Some(tol) = o.tol {
        c.atol = tol;
        c.rtol = tol;
    }
    if let Some(m) = o.max_iters {
        c.max_iters = u32::try_from(m).map_err(|_| config("max_iters", format!("{m}")))?;
    }
    if let Some(ls) = o.line_search {
        c.line_search = if ls {
            LineSearch::Backtracking(LINE_SEARCH_HALVINGS)
        } else {
            LineSearch::None
        };
    }
    let mut gmres = GmresConfig::default();
    if let Some(t) = o.krylov_tol {
        gmres.rtol = t;
    }
    if let Some(r) = o.krylov_restart {
        gmres.restart = count("krylov_restart", r)?;
    }
    let krylov = o.krylov_tol.is_some() || o.krylov_restart.is_some();
    c.linear = match o.linear_solver {
        Some(IrLinear::Dense) => LinearSolver::Dense,
        Some(IrLinear::Gmres) => LinearSolver::Gmres(gmres),
        Some(IrLinear::Petsc) => LinearSolver::Petsc,
        None if krylov => LinearSolver::Gmres(gmres),
        None => LinearSolver::Auto,
    };
    Ok(c)
}

/// Order of a user tableau: the largest `p ≤ 6` whose order conditions (Butcher's rooted
/// trees, Hairer–Nørsett–Wanner I, II.2) all hold to 1e-12.
pub fn observed_order(t: &Tableau) -> u32 {
    let res = t.order_condition_residuals(t.b(), 6);
    (1..=6)
        .take_while(|&p| {
            res.iter()
                .filter(|c| c.order == p)
                .all(|c| c.residual.abs() < 1e-12)
        })
        .last()
        .unwrap_or(1)
}

/// The integrator of `m` with the Newton options `newton` (used by implicit methods only).
pub fn method(m: &Method, newton: &NewtonOptions) -> Result<MethodChoice> {
    let theta = |theta: f64| -> Result<MethodChoice> {
        if !(theta > 0.0 && theta <= 1.0) {
            return Err(config(
                "method",
                format!("θ must lie in (0, 1], got {theta}"),
            ));
        }
        Ok(MethodChoice::Theta {
            theta,
            newton: newton_config(newton)?,
        })
    };
    let dirk = |tableau: DirkTableau| -> Result<MethodChoice> {
        Ok(MethodChoice::Dirk {
            tableau,
            newton: newton_config(newton)?,
        })
    };
    Ok(match m {
        Method::Euler => MethodChoice::Explicit(Tableau::euler()),
        Method::Midpoint => MethodChoice::Explicit(Tableau::midpoint()),
        Method::Heun => MethodChoice::Explicit(Tableau::heun()),
        Method::Ralston => MethodChoice::Explicit(Tableau::ralston()),
        Method::Bosh3 => MethodChoice::Explicit(Tableau::bosh3()),
        Method::Rk4 => MethodChoice::Explicit(Tableau::rk4()),
        Method::Rk38 => MethodChoice::Explicit(Tableau::rk38()),
        Method::Dopri5 => MethodChoice::Explicit(Tableau::dopri5()),
        Method::Tsit5 => MethodChoice::Explicit(Tableau::tsit5()),
        Method::Fehlberg45 => MethodChoice::Explicit(Tableau::fehlberg45()),
        Method::Erk(u) => {
            let rows: Vec<&[f64]> = u.a.iter().map(Vec::as_slice).collect();
            let t = Tableau::explicit("erk", &rows, &u.b, &u.c, 1)?;
            let order = observed_order(&t);
            MethodChoice::Explicit(Tableau::explicit("erk", &rows, &u.b, &u.c, order)?)
        }
        Method::BackwardEuler => theta(1.0)?,
        Method::CrankNicolson => theta(0.5)?,
        Method::Theta(x) => theta(*x)?,
        Method::Sdirk2 => dirk(DirkTableau::sdirk2())?,
        Method::Trbdf2 => dirk(DirkTableau::trbdf2())?,
        Method::Esdirk3 => dirk(DirkTableau::esdirk3())?,
        Method::Kvaerno5 => dirk(DirkTableau::kvaerno5())?,
    })
}
