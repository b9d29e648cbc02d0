//! [`Setup`]: everything a lowered [`Program`] leaves open, resolved before anything runs —
//! initial values (files read, random draws made), the time grid, output times, the
//! checkpoint schedule, the integrator, the loss data and the training options.
//!
//! # Defaults
//!
//! | missing | default |
//! |---|---|
//! | `solve { }` | `method = rk4`, `t = 0 .. 1`, `steps = 100`, outputs at `t1`, `store_all` |
//! | `outputs` | the final time `t1` only |
//! | `checkpoint` | `store_all` |
//! | Newton options | the runtime's [`NewtonConfig::default`] (tolerances 1e-10, 25 iterations, no line search, dense LU up to 64 states and GMRES above); with `krylov_tol`/`krylov_restart` but no `linear_solver`, GMRES |
//! | `train { }` | `adam(lr = 1e-3)`, 100 iterations, seed 0, log every 10, full batch |
//! | `iterations` / `log_every` / `seed` | 100 / 10 / 0 |
//!
//! `newton_tol` sets both the absolute and the relative tolerance of the Newton update;
//! `line_search = true` is backtracking with at most [`LINE_SEARCH_HALVINGS`] halvings;
//! `krylov_tol` is GMRES's relative residual tolerance.
//!
//! Output times that are not points of the time grid are **inserted into the grid** (the
//! step containing one is split there), so the solution at every output time is computed,
//! never interpolated; a time within `1e-10 · (t1 − t0)` of a grid point is that point.
//! [`Setup::notes`] says when this happened.
//!
//! # Data files
//!
//! Paths are relative to `base_dir` (the model file's directory); formats in [`crate::data`].
//!
//! * initial values `data("x0.npy")`: exactly as many numbers (after `column = k`) as the
//!   state or parameter has elements, taken row-major whatever the file's own shape;
//! * output times `outputs = data("t.csv")`: one column (or `column = k`), strictly
//!   increasing, inside the time span;
//! * loss data `mse(p, data("obs.csv"))`: `K` rows (row `k` observes output time `k`) × `n`
//!   columns (`n` = number of elements of the prediction `p`), or a single column (the file's
//!   only one, or `column = k`) of `K · n` numbers, row-major over (output time, element).
//!
//! Any other size is [`Error::DataShape`] naming the file and both sizes.
//!
//! Random initializers (`normal`, `xavier`, the layers' uniform default) draw from one
//! ChaCha20 generator seeded with the seed (the override, else `train { seed }`, else 0),
//! states first, then parameters, each in declaration order, each tensor row-major: the same
//! seed always gives the same `u0` and `θ0`. `xavier` on a tensor of rank below 2 takes
//! `fan_in = fan_out =` its length (1 for a scalar).

use std::path::{Path, PathBuf};

use pnode_ir::Function;
use pnode_ir::lower::{
    Checkpoint, DataFit, Initializer, LinearSolver as IrLinear, Method, Metric, NewtonOptions,
    Optimizer, Outputs, Program, Steps,
};
use pnode_runtime::implicit::{GmresConfig, LineSearch, LinearSolver};
use pnode_runtime::{
    Budget, Checkpointing, DirkStepper, DirkTableau, NewtonConfig, Tableau, ThetaStepper, TimeGrid,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, Normal};

use crate::data::{Table, read_table};
use crate::error::{Error, Result};

/// Halvings of the backtracking line search `line_search = true` turns on.
pub const LINE_SEARCH_HALVINGS: u32 = 8;

/// Default number of training iterations.
pub const DEFAULT_ITERATIONS: u64 = 100;

/// Default logging interval.
pub const DEFAULT_LOG_EVERY: u64 = 10;

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

/// One data-fitting term of the loss with its observations read.
#[derive(Debug, Clone)]
pub struct FitData {
    /// Squared or absolute error.
    pub metric: Metric,
    /// The factor in front of the term.
    pub weight: f64,
    /// `p(t, u, θ)`.
    pub prediction: Function,
    /// Observations, `K × size` row-major (row `k` at output time `k`).
    pub data: Vec<f64>,
    /// Number of prediction elements `n`.
    pub size: usize,
    /// The file the observations came from.
    pub path: PathBuf,
}

/// The training options, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Number of optimizer steps.
    pub iterations: u64,
    /// Logging interval (0: never).
    pub log_every: u64,
    /// Minibatch size over output times (`None`: all).
    pub batch_size: Option<u64>,
    /// The seed of the initializers and of the minibatches.
    pub seed: u64,
}

/// A program with everything resolved; see the [module docs](self) for the defaults.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The program.
    pub program: Program,
    /// The directory data paths are relative to.
    pub base_dir: PathBuf,
    /// The initial state `u0` (the states concatenated).
    pub u0: Vec<f64>,
    /// The initial parameters `θ0`.
    pub theta0: Vec<f64>,
    /// The time grid (with the output times inserted).
    pub grid: TimeGrid,
    /// The output times `t_1 < … < t_K`, all grid points.
    pub output_times: Vec<f64>,
    /// The checkpoint schedule.
    pub checkpointing: Checkpointing,
    /// The integrator.
    pub method: MethodChoice,
    /// The loss's data fits, data read.
    pub fits: Vec<FitData>,
    /// The loss's other terms, summed over the output times.
    pub expr: Option<Function>,
    /// Training options.
    pub train: TrainConfig,
    /// Which defaults were used and what was adjusted, one line each.
    pub notes: Vec<String>,
}

fn config(option: &'static str, reason: impl Into<String>) -> Error {
    Error::Config {
        option,
        reason: reason.into(),
    }
}

fn count(option: &'static str, n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| config(option, format!("{n} is too large")))
}

impl Setup {
    /// Resolve `program`: data paths relative to `base_dir`, random initializers seeded with
    /// `seed_override`, else the train block's seed, else 0.
    pub fn new(program: &Program, base_dir: &Path, seed_override: Option<u64>) -> Result<Setup> {
        let mut notes = Vec::new();
        let seed = seed_override
            .or(program.train.as_ref().and_then(|t| t.seed))
            .unwrap_or(0);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut u0 = vec![0.0; program.state_len()];
        for s in &program.states {
            let what = format!("initial value of state `{}` {}", s.name, s.shape);
            let dims = s.shape.dims().to_vec();
            let out = u0
                .get_mut(s.offset..s.offset + s.shape.len())
                .ok_or_else(|| config("state", format!("`{}` lies outside u", s.name)))?;
            init(&s.init, &dims, out, &mut rng, base_dir, &what)?;
        }
        let mut theta0 = vec![0.0; program.param_len()];
        for p in &program.params {
            let what = format!("initial value of parameter `{}` {}", p.name, p.shape);
            let dims = p.shape.dims().to_vec();
            let out = theta0
                .get_mut(p.offset..p.offset + p.shape.len())
                .ok_or_else(|| config("param", format!("`{}` lies outside θ", p.name)))?;
            init(&p.init, &dims, out, &mut rng, base_dir, &what)?;
        }

        let (grid, output_times, checkpointing, method) = match &program.solve {
            None => {
                notes.push(
                    "no `solve` block: rk4, t = 0 .. 1, 100 steps, output at t = 1, store_all"
                        .into(),
                );
                (
                    TimeGrid::uniform(0.0, 1.0, 100)?,
                    vec![1.0],
                    Checkpointing::StoreAll,
                    MethodChoice::Explicit(Tableau::rk4()),
                )
            }
            Some(s) => {
                let times = grid_times(&s.steps, s.t0, s.t1)?;
                let outs = match &s.outputs {
                    None => {
                        notes.push(format!("no `outputs`: the final time t = {}", s.t1));
                        vec![s.t1]
                    }
                    Some(o) => output_times(o, s.t0, s.t1, base_dir)?,
                };
                let (grid, outs, inserted) = merge(&times, &outs)?;
                if inserted > 0 {
                    notes.push(format!(
                        "{inserted} output times are not grid points and were inserted into \
                         the grid ({} steps)",
                        grid.n_steps()
                    ));
                }
                let ck = match &s.checkpoint {
                    None => {
                        notes.push("no `checkpoint`: store_all".into());
                        Checkpointing::StoreAll
                    }
                    Some(c) => checkpointing(c)?,
                };
                (grid, outs, ck, method(&s.method, &s.newton)?)
            }
        };
        // Steppers are built here once so that a configuration error (PETSc without the
        // feature, bad Newton options) surfaces before anything runs.
        let (n, np) = (program.state_len(), program.param_len());
        match &method {
            MethodChoice::Explicit(_) => {}
            MethodChoice::Theta { theta, newton } => {
                ThetaStepper::new(*theta, n, np, *newton)?;
            }
            MethodChoice::Dirk { tableau, newton } => {
                DirkStepper::new(tableau.clone(), n, np, *newton)?;
            }
        }

        let (fits, expr) = match &program.loss {
            None => (Vec::new(), None),
            Some(l) => {
                let fits = l
                    .fits
                    .iter()
                    .enumerate()
                    .map(|(j, f)| fit_data(j, f, output_times.len(), base_dir))
                    .collect::<Result<Vec<_>>>()?;
                (fits, l.expr.clone())
            }
        };
        let train = match &program.train {
            None => {
                notes.push("no `train` block: adam(lr = 1e-3), 100 iterations".into());
                TrainConfig {
                    optimizer: Optimizer::Adam {
                        lr: 1e-3,
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                    },
                    iterations: DEFAULT_ITERATIONS,
                    log_every: DEFAULT_LOG_EVERY,
                    batch_size: None,
                    seed,
                }
            }
            Some(t) => TrainConfig {
                optimizer: t.optimizer,
                iterations: t.iterations.unwrap_or(DEFAULT_ITERATIONS),
                log_every: t.log_every.unwrap_or(DEFAULT_LOG_EVERY),
                batch_size: t.batch_size,
                seed,
            },
        };
        if let Some(b) = train.batch_size
            && program.loss.as_ref().is_some_and(|l| l.fits.is_empty())
        {
            return Err(config(
                "batch_size",
                format!(
                    "minibatches of {b} are drawn over the output times of data fits, but the \
                     loss has no `mse(…, data(…))` or `mae(…, data(…))` term"
                ),
            ));
        }
        Ok(Setup {
            program: program.clone(),
            base_dir: base_dir.to_path_buf(),
            u0,
            theta0,
            grid,
            output_times,
            checkpointing,
            method,
            fits,
            expr,
            train,
            notes,
        })
    }

    /// Number of output times `K`.
    pub fn n_outputs(&self) -> usize {
        self.output_times.len()
    }

    /// A name for every element of the flat state, in order: `u` for a scalar state,
    /// `u[1]`, `x[0,1]` for tensor elements (row-major).
    pub fn state_names(&self) -> Vec<String> {
        let vars = self.program.states.iter().map(|s| (&s.name, &s.shape));
        element_names(vars, self.program.state_len())
    }

    /// A name for every element of the flat parameters (as [`Setup::state_names`]).
    pub fn param_names(&self) -> Vec<String> {
        let vars = self.program.params.iter().map(|p| (&p.name, &p.shape));
        element_names(vars, self.program.param_len())
    }
}

fn element_names<'a>(
    vars: impl Iterator<Item = (&'a String, &'a pnode_ir::Shape)>,
    len: usize,
) -> Vec<String> {
    let mut names = Vec::with_capacity(len);
    for (name, shape) in vars {
        let dims = shape.dims();
        if dims.is_empty() {
            names.push(name.clone());
            continue;
        }
        let mut idx = vec![0usize; dims.len()];
        for _ in 0..shape.len() {
            let i: Vec<String> = idx.iter().map(usize::to_string).collect();
            names.push(format!("{name}[{}]", i.join(",")));
            for d in (0..dims.len()).rev() {
                idx[d] += 1;
                if idx[d] < dims[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
    names
}

fn init(
    ini: &Initializer,
    dims: &[usize],
    out: &mut [f64],
    rng: &mut ChaCha20Rng,
    base_dir: &Path,
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
            let path = base_dir.join(&src.path);
            let t = read_table(&path, src.column)?;
            if t.values.len() != n {
                return Err(Error::DataShape {
                    path,
                    what: what.to_string(),
                    expected: format!("{n} values"),
                    found: format!("{} values ({})", t.values.len(), t.size()),
                });
            }
            out.copy_from_slice(&t.values);
        }
    }
    Ok(())
}

/// The grid points of `steps` over `t0 .. t1`.
fn grid_times(steps: &Steps, t0: f64, t1: f64) -> Result<Vec<f64>> {
    Ok(match steps {
        Steps::Uniform(n) => TimeGrid::uniform(t0, t1, count("steps", *n)?)?
            .times()
            .to_vec(),
        Steps::Logspace { start, end, count } => {
            let c = self::count("steps", *count)?;
            if c < 2 || !(*start > 0.0 && *start > t0 && start < end) {
                return Err(config(
                    "steps",
                    format!(
                        "logspace({start}, {end}, {count}) needs 0 < start, t0 < start < end and at least \
                         2 points"
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
    })
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

fn output_times(o: &Outputs, t0: f64, t1: f64, base_dir: &Path) -> Result<Vec<f64>> {
    let (v, from) = match o {
        Outputs::Linspace { start, end, count } => (
            linspace(*start, *end, self::count("outputs", *count)?),
            None,
        ),
        Outputs::Times(v) => (v.clone(), None),
        Outputs::Data(src) => {
            let path = base_dir.join(&src.path);
            let t = read_table(&path, src.column)?;
            if t.cols != 1 {
                return Err(Error::DataShape {
                    path,
                    what: "output times".into(),
                    expected: "one column of times (or `column = k`)".into(),
                    found: t.size(),
                });
            }
            (t.values, Some(path))
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

/// The grid of `times` with every output time a grid point: output times within
/// `1e-10 · span` of a point snap to it, the others are inserted. Returns the grid, the
/// snapped output times and how many were inserted.
fn merge(times: &[f64], outputs: &[f64]) -> Result<(TimeGrid, Vec<f64>, usize)> {
    let grid = TimeGrid::from_times(times)?;
    let span = times[times.len() - 1] - times[0];
    let tol = 1e-10 * span;
    let mut all = times.to_vec();
    let mut inserted = 0;
    for &t in outputs {
        let i = times.partition_point(|&x| x < t);
        let near = [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|j| times.get(j))
            .any(|&g| (g - t).abs() <= tol);
        if !near {
            all.push(t);
            inserted += 1;
        }
    }
    if inserted == 0 {
        let snapped = grid
            .output_indices(outputs)?
            .iter()
            .map(|&i| grid.t(i))
            .collect();
        return Ok((grid, snapped, 0));
    }
    all.sort_by(f64::total_cmp);
    let grid = TimeGrid::from_times(&all)?;
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

/// The runtime's Newton configuration for the `solve` block's options.
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

/// Order of a user tableau: the largest `p ≤ 6` whose order conditions all hold.
fn observed_order(t: &Tableau) -> u32 {
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

fn method(m: &Method, newton: &NewtonOptions) -> Result<MethodChoice> {
    let implicit = |newton: &NewtonOptions| newton_config(newton);
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
        Method::BackwardEuler => MethodChoice::Theta {
            theta: 1.0,
            newton: implicit(newton)?,
        },
        Method::CrankNicolson => MethodChoice::Theta {
            theta: 0.5,
            newton: implicit(newton)?,
        },
        Method::Theta(theta) => MethodChoice::Theta {
            theta: *theta,
            newton: implicit(newton)?,
        },
        Method::Sdirk2 => MethodChoice::Dirk {
            tableau: DirkTableau::sdirk2(),
            newton: implicit(newton)?,
        },
        Method::Trbdf2 => MethodChoice::Dirk {
            tableau: DirkTableau::trbdf2(),
            newton: implicit(newton)?,
        },
        Method::Esdirk3 => MethodChoice::Dirk {
            tableau: DirkTableau::esdirk3(),
            newton: implicit(newton)?,
        },
    })
}

/// The observations of fit `j` as `K × n`: a table of `K` rows and `n` columns, or one
/// column of `K · n` values (row-major over output time, then prediction element).
fn fit_data(j: usize, f: &DataFit, k: usize, base_dir: &Path) -> Result<FitData> {
    let path = base_dir.join(&f.data.path);
    let t: Table = read_table(&path, f.data.column)?;
    let n = f.prediction.output_len();
    let ok = (t.rows == k && t.cols == n) || (t.cols == 1 && t.rows == k * n);
    if !ok {
        return Err(Error::DataShape {
            path,
            what: format!("data of loss term {} ({:?})", j + 1, f.metric),
            expected: format!(
                "{k} rows (one per output time) × {n} columns (the prediction's size){}",
                if n > 1 {
                    format!(", or one column of {} values", k * n)
                } else {
                    String::new()
                }
            ),
            found: t.size(),
        });
    }
    Ok(FitData {
        metric: f.metric,
        weight: f.weight,
        prediction: f.prediction.clone(),
        data: t.values,
        size: n,
        path,
    })
}
