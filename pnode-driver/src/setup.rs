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
//! The `solve` block and the initial values are resolved by [`crate::resolve`] (the one
//! resolver `pnodec emit` and the `#[neural_ode]`/`model!` macro share): grids, output times
//! (off-grid ones **inserted into the grid**, never interpolated; [`Setup::notes`] says when),
//! the integrator and its step cost, checkpointing, and `u0`/`θ0` (data files, the seeded
//! ChaCha20 draws). This module adds the loss data and the training options.
//!
//! # Data files
//!
//! Paths are relative to `base_dir` (the model file's directory; [`Setup::with_data`] takes
//! any [`DataReader`]); formats in [`crate::data`].
//!
//! * initial values `data("x0.npy")`: exactly as many numbers (after `column = k`) as the
//!   state or parameter has elements, taken row-major whatever the file's own shape;
//! * output times `outputs = data("t.csv")` and grid points `steps = data("t.csv")`: one
//!   column (or `column = k`), strictly increasing, inside the time span (grid points from
//!   `t0` to `t1`);
//! * loss data `mse(p, data("obs.csv"))`: `K` rows (row `k` observes output time `k`) × `n`
//!   columns (`n` = number of elements of the prediction `p`), or a single column (the file's
//!   only one, or `column = k`) of `K · n` numbers, row-major over (output time, element).
//!
//! Any other size is [`Error::DataShape`] naming the file and both sizes.

use std::path::{Path, PathBuf};

use pnode_ir::Function;
use pnode_ir::lower::{DataFit, Metric, Optimizer, Program};
use pnode_runtime::Checkpointing;
use pnode_runtime::checkpoint::StepCost;

use crate::data::Table;
use crate::error::{Error, Result};
use crate::resolve::{self, DataReader, FsData, config};

pub use crate::resolve::{Grid, LINE_SEARCH_HALVINGS, MethodChoice, newton_config};

/// Default number of training iterations.
pub const DEFAULT_ITERATIONS: u64 = 100;

/// Default logging interval.
pub const DEFAULT_LOG_EVERY: u64 = 10;

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
    /// The time grid (with the output times inserted), or adaptive steps.
    pub grid: Grid,
    /// The output times `t_1 < … < t_K`, all grid points.
    pub output_times: Vec<f64>,
    /// The checkpoint schedule.
    pub checkpointing: Checkpointing,
    /// The integrator.
    pub method: MethodChoice,
    /// The cost of one step of the runtime's stepper for `method`.
    pub cost: StepCost,
    /// The loss's data fits, data read.
    pub fits: Vec<FitData>,
    /// The loss's other terms, summed over the output times.
    pub expr: Option<Function>,
    /// Training options.
    pub train: TrainConfig,
    /// Which defaults were used and what was adjusted, one line each.
    pub notes: Vec<String>,
}

impl Setup {
    /// Resolve `program`: data paths relative to `base_dir`, random initializers seeded with
    /// `seed_override`, else the train block's seed, else 0.
    pub fn new(program: &Program, base_dir: &Path, seed_override: Option<u64>) -> Result<Setup> {
        Setup::with_data(program, base_dir, &FsData::new(base_dir), seed_override)
    }

    /// [`Setup::new`] with data files read through `data` (`base_dir` is only recorded).
    pub fn with_data(
        program: &Program,
        base_dir: &Path,
        data: &dyn DataReader,
        seed_override: Option<u64>,
    ) -> Result<Setup> {
        let r = resolve::resolve(program, data, seed_override)?;
        let (seed, output_times) = (r.seed, r.output_times);
        let (fits, expr) = match &program.loss {
            None => (Vec::new(), None),
            Some(l) => {
                let fits = l
                    .fits
                    .iter()
                    .enumerate()
                    .map(|(j, f)| fit_data(j, f, output_times.len(), data))
                    .collect::<Result<Vec<_>>>()?;
                (fits, l.expr.clone())
            }
        };
        let mut notes = r.notes;
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
            u0: r.u0,
            theta0: r.theta0,
            grid: r.grid,
            output_times,
            checkpointing: r.checkpointing,
            method: r.method,
            cost: r.cost,
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

/// A metric as the model writes it (`mse`, `mae`).
pub(crate) fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Mse => "mse",
        Metric::Mae => "mae",
    }
}

/// The observations of fit `j` as `K × n`: a table of `K` rows and `n` columns, or one
/// column of `K · n` values (row-major over output time, then prediction element).
fn fit_data(j: usize, f: &DataFit, k: usize, data: &dyn DataReader) -> Result<FitData> {
    let t: Table = data.table(&f.data)?;
    let path = t.path.clone();
    let n = f.prediction.output_len();
    let ok = (t.rows == k && t.cols == n) || (t.cols == 1 && t.rows == k * n);
    if !ok {
        return Err(Error::DataShape {
            path,
            what: format!(
                "data of loss term {} (`{}(…, data(…))`)",
                j + 1,
                metric_name(f.metric)
            ),
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
