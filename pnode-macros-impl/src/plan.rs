//! What `pnodec` resolves when a model runs, resolved here at compile time by the same
//! resolver, [`pnode_driver::resolve`]: the integrator (an explicit tableau, a user `erk` with
//! its observed order, or a θ-method / DIRK with its Newton options), the time grid (output
//! times inserted as grid points; the generated code gets its points, so its step sizes are
//! the driver's bit for bit), the checkpoint schedule with its predicted cost (the stepper's
//! [`StepCost`] from the resolver), and the initial values (random initializers from the
//! driver's seeded ChaCha20 stream, data files read now through a [`CompileData`] that
//! records them so the expansion can `include_bytes!` them and cargo rebuilds on change).
//!
//! Adaptive steps (a method with `rtol`/`atol`) plan no grid: [`Steps::Adaptive`] carries the
//! driver's error control and the checkpointing the runtime decides online, and the summary
//! is the bound it guarantees ([`pnode_driver::summary::adaptive_schedule`]).
//!
//! The defaults are the driver's: without `solve` options, rk4 over `t = 0 .. 1` in 100 steps,
//! the output at `t1`, store-all.
//!
//! # What the prediction knows
//!
//! An explicit step's cost is fixed, so [`Plan::predicted`] is exactly what the executor
//! counts. An implicit step's RHS/JVP/VJP evaluations and Newton/linear iterations depend on
//! the data (how fast Newton converges), so the implicit steppers report a [`StepCost`] with
//! no evaluations and only their stage vectors (`ThetaStepper`: 2, `DirkStepper`: s + 1), as
//! the runtime plans with them: the schedule, the step counts (forward, recomputed,
//! reversed) and the peak slots, vectors and bytes are exact; the evaluation and iteration
//! counts are zero in the prediction and only measured.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use pnode_checkpoint::{Checkpointing, Schedule, Stats, StepCost};
use pnode_codegen::ErkCoefficients;
use pnode_driver::data::Table;
use pnode_driver::resolve::Grid;
use pnode_driver::{DataReader, FsData, MethodChoice};
use pnode_ir::lower::{DataSource, LinearSolver as IrLinear, Program};
use pnode_runtime::adaptive::{AdaptiveCheckpointing, AdaptiveOptions};
use pnode_runtime::{DirkTableau, NewtonConfig, Tableau, TimeGrid};

/// A problem found while planning, with the option (or declaration) it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError {
    /// `method`, `t`, `steps`, `outputs`, `checkpoint`, `linear_solver`, or `data` for a data
    /// file.
    pub option: String,
    /// What is wrong.
    pub message: String,
    /// The data file the error concerns (read, malformed or of the wrong size), if any.
    pub file: Option<PathBuf>,
}

fn err(option: &str, message: impl Into<String>) -> PlanError {
    PlanError {
        option: option.into(),
        message: message.into(),
        file: None,
    }
}

/// Data files read at compile time: relative to a directory (the crate's for inline models,
/// the `.pode` file's for file models), each file read once, the absolute paths recorded so
/// the expansion tracks them.
#[derive(Debug)]
pub struct CompileData {
    fs: FsData,
    read: RefCell<Vec<PathBuf>>,
}

impl CompileData {
    /// Files relative to `dir`.
    pub fn new(dir: &Path) -> CompileData {
        CompileData {
            fs: FsData::new(dir),
            read: RefCell::new(Vec::new()),
        }
    }

    /// The files read so far (absolute when `dir` was), in first-read order.
    pub fn files(&self) -> Vec<PathBuf> {
        self.read.borrow().clone()
    }
}

impl DataReader for CompileData {
    fn table(&self, src: &DataSource) -> pnode_driver::Result<Table> {
        let path = self.fs.path(src);
        {
            let mut read = self.read.borrow_mut();
            if !read.contains(&path) {
                read.push(path);
            }
        }
        self.fs.table(src)
    }
}

/// The integrator as the generated code builds it.
#[derive(Debug, Clone)]
pub enum Stepping {
    /// An explicit Runge–Kutta method: the generated fused stepper.
    Explicit {
        /// The tableau.
        tableau: Tableau,
        /// Its coefficients for the code generator.
        coefficients: ErkCoefficients,
    },
    /// A θ-method: the runtime's `ThetaStepper`.
    Theta {
        /// θ ∈ (0, 1].
        theta: f64,
        /// The Newton stage solver.
        newton: NewtonConfig,
    },
    /// A built-in DIRK: the runtime's `DirkStepper`.
    Dirk {
        /// The `DirkTableau` constructor (`sdirk2`, `trbdf2`, `esdirk3`).
        constructor: &'static str,
        /// The tableau (for its stage count).
        tableau: DirkTableau,
        /// The Newton stage solver.
        newton: NewtonConfig,
    },
}

impl Stepping {
    /// The Newton configuration of an implicit method.
    pub fn newton(&self) -> Option<&NewtonConfig> {
        match self {
            Stepping::Explicit { .. } => None,
            Stepping::Theta { newton, .. } | Stepping::Dirk { newton, .. } => Some(newton),
        }
    }
}

/// How the steps are taken: a grid and schedule planned now, or error control at run time.
#[derive(Debug, Clone)]
pub enum Steps {
    /// A fixed grid with its compile-time schedule.
    Fixed(FixedPlan),
    /// Adaptive steps (`method = "dopri5", rtol = …`): the grid and the checkpoints are
    /// decided as the run goes.
    Adaptive(AdaptivePlan),
}

/// A fixed grid and the schedule planned on it.
#[derive(Debug, Clone)]
pub struct FixedPlan {
    /// The time grid (its points go into the generated code).
    pub grid: TimeGrid,
    /// Number of steps.
    pub n_steps: usize,
    /// The planned schedule.
    pub schedule: Schedule,
    /// Its predicted cost for one gradient.
    pub predicted: Stats,
}

/// Adaptive steps: the error control and what the forward sweep keeps, both as the driver
/// resolves them (the generated `Ode` hands them to the runtime's `AdaptiveSolver`).
#[derive(Debug, Clone)]
pub struct AdaptivePlan {
    /// The start of the time span.
    pub t0: f64,
    /// The error control, defaults filled in ([`pnode_driver::resolve::adaptive_options`]).
    pub options: AdaptiveOptions,
    /// The checkpointing of an unknown number of steps
    /// ([`AdaptiveCheckpointing::from_checkpointing`] of the resolved mode).
    pub checkpointing: AdaptiveCheckpointing,
}

/// Everything resolved at compile time.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The integrator.
    pub stepping: Stepping,
    /// Its name (`rk4`, `crank_nicolson`, `theta(0.7)`, `esdirk3`, …).
    pub method: String,
    /// The grid and schedule, or adaptive steps.
    pub steps: Steps,
    /// Output times (grid points).
    pub output_times: Vec<f64>,
    /// The checkpoint mode as resolved.
    pub checkpointing: Checkpointing,
    /// The cost of one step as the stepper reports it (`ErkStepper`'s for explicit methods;
    /// stage vectors only for implicit ones, see the module docs).
    pub cost: StepCost,
    /// The schedule's summary (`Schedule::summary`), or for adaptive steps the bound the
    /// checkpointing guarantees ([`pnode_driver::summary::adaptive_schedule`]); the text
    /// `pnodec emit --schedule` prints.
    pub summary: String,
    /// Initial state.
    pub u0: Vec<f64>,
    /// Initial parameters.
    pub theta0: Vec<f64>,
}

/// Plans `program` (initializers drawn with `train { seed }`, else 0), data files through
/// `data`.
pub fn plan(program: &Program, data: &dyn DataReader) -> Result<Plan, PlanError> {
    if let Some(s) = &program.solve
        && s.newton.linear_solver == Some(IrLinear::Petsc)
    {
        return Err(err(
            "linear_solver",
            "`petsc` is not available to #[neural_ode] (the `pnode` crate builds the \
             runtime without PETSc); use `dense` or `gmres`",
        ));
    }
    let r = pnode_driver::resolve(program, data, None).map_err(plan_error)?;
    let stepping = stepping(&r.method)?;
    let cost = r.cost;
    let bytes = 8 * program.state_len() as u64;
    let cperr = |e: pnode_checkpoint::Error| err("checkpoint", e.to_string());
    let (steps, summary) = match r.grid.clone() {
        Grid::Fixed(grid) => {
            let n_steps = grid.n_steps();
            let schedule = r.checkpointing.plan(n_steps, &cost, bytes).map_err(cperr)?;
            let predicted = schedule.predict(&cost, bytes).map_err(cperr)?;
            let summary = schedule.summary(&cost, bytes).map_err(cperr)?;
            let fixed = FixedPlan {
                grid,
                n_steps,
                schedule,
                predicted,
            };
            (Steps::Fixed(fixed), summary)
        }
        Grid::Adaptive { t0, options } => {
            if !matches!(&stepping, Stepping::Explicit { tableau, .. }
                if Tableau::by_name(tableau.name()).is_ok_and(|t| t == *tableau))
            {
                return Err(err(
                    "method",
                    format!(
                        "adaptive steps need a built-in explicit pair with an error estimate \
                         (bosh3, dopri5, tsit5, fehlberg45), not `{}`",
                        r.method_name
                    ),
                ));
            }
            let checkpointing = AdaptiveCheckpointing::from_checkpointing(&r.checkpointing, bytes)
                .map_err(|e| err("checkpoint", e.to_string()))?;
            if let AdaptiveCheckpointing::TwoLevel { .. } = checkpointing {
                return Err(err(
                    "checkpoint",
                    "two-level checkpointing of adaptive steps needs a checkpoint directory at \
                     run time, which #[neural_ode] does not take; use `online(slots = …)` (or \
                     run the model with `pnodec`)",
                ));
            }
            let summary = pnode_driver::summary::adaptive_schedule(program, &r, &options)
                .map_err(plan_error)?;
            let adaptive = AdaptivePlan {
                t0,
                options,
                checkpointing,
            };
            (Steps::Adaptive(adaptive), summary)
        }
    };
    Ok(Plan {
        stepping,
        method: r.method_name,
        steps,
        output_times: r.output_times,
        checkpointing: r.checkpointing,
        cost,
        summary,
        u0: r.u0,
        theta0: r.theta0,
    })
}

/// The resolver's error as the macro's: the option it concerns (`data` for a data file) and
/// the message.
fn plan_error(e: pnode_driver::Error) -> PlanError {
    use pnode_driver::Error as E;
    let file = match &e {
        E::Io { path, .. } | E::Csv { path, .. } | E::Npy { path, .. } => Some(path.clone()),
        E::DataShape { path, .. } => Some(path.clone()),
        _ => None,
    };
    match e {
        E::Config { option, reason } => err(option, reason),
        E::Runtime(r) => err("method", r.to_string()),
        other => PlanError {
            file,
            ..err("data", other.to_string())
        },
    }
}

/// The resolved integrator as the generated code builds it: explicit methods as the generated
/// fused stepper (coefficients of the tableau), implicit ones as the runtime's steppers.
pub fn stepping(method: &MethodChoice) -> Result<Stepping, PlanError> {
    Ok(match method {
        MethodChoice::Explicit(tableau) => Stepping::Explicit {
            coefficients: coefficients(tableau),
            tableau: tableau.clone(),
        },
        MethodChoice::Theta { theta, newton } => Stepping::Theta {
            theta: *theta,
            newton: *newton,
        },
        MethodChoice::Dirk { tableau, newton } => {
            let constructor = match tableau.name() {
                "sdirk2" => "sdirk2",
                "trbdf2" => "trbdf2",
                "esdirk3" => "esdirk3",
                "kvaerno5" => "kvaerno5",
                other => {
                    return Err(err(
                        "method",
                        format!("the DIRK `{other}` has no runtime constructor"),
                    ));
                }
            };
            Stepping::Dirk {
                constructor,
                tableau: tableau.clone(),
                newton: *newton,
            }
        }
    })
}

/// The coefficients of an explicit tableau for the code generator (`a` strictly lower
/// triangular, row by row).
pub fn coefficients(tableau: &Tableau) -> ErkCoefficients {
    let s = tableau.stages();
    ErkCoefficients {
        name: tableau.name().to_string(),
        a: (0..s)
            .map(|i| (0..i).map(|j| tableau.a(i, j)).collect())
            .collect(),
        b: tableau.b().to_vec(),
        c: tableau.c().to_vec(),
    }
}
