//! What `pnodec` resolves when a model runs, resolved here at compile time: the integrator
//! (an explicit tableau, or a θ-method / DIRK with its Newton options), the time grid (output times inserted as grid points), the checkpoint schedule with
//! its predicted cost, and the initial values (random initializers drawn from the same seeded
//! ChaCha20 stream as `pnode-driver`, so `u0` and `θ0` equal `pnodec`'s).
//!
//! The defaults are the driver's: without `solve` options, rk4 over `t = 0 .. 1` in 100 steps,
//! the output at `t1`, store-all; Newton options default as `pnode_driver::newton_config`
//! defaults them.
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

use pnode_checkpoint::{Budget, Checkpointing, Schedule, Stats, StepCost};
use pnode_codegen::ErkCoefficients;
use pnode_ir::lower::{
    Checkpoint, Initializer, LinearSolver as IrLinear, Method, NewtonOptions, Outputs, Program,
    Steps,
};
use pnode_runtime::{DirkTableau, NewtonConfig, Tableau, TimeGrid};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, Normal};

/// A problem found while planning, with the option (or declaration) it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError {
    /// `method`, `t`, `steps`, `outputs`, `checkpoint`, or the name of a state or parameter.
    pub option: String,
    /// What is wrong.
    pub message: String,
}

fn err(option: &str, message: impl Into<String>) -> PlanError {
    PlanError {
        option: option.into(),
        message: message.into(),
    }
}

/// How the generated code builds its time grid.
#[derive(Debug, Clone, PartialEq)]
pub enum Grid {
    /// `TimeGrid::uniform(t0, t1, n)`.
    Uniform {
        /// Start.
        t0: f64,
        /// End.
        t1: f64,
        /// Steps.
        n: usize,
    },
    /// `TimeGrid::from_times(times)`.
    Times(Vec<f64>),
}

/// Backtracking halvings of `line_search = true`.
pub use pnode_driver::setup::LINE_SEARCH_HALVINGS;

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

/// Everything resolved at compile time.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The integrator.
    pub stepping: Stepping,
    /// Its name (`rk4`, `crank_nicolson`, `theta(0.7)`, `esdirk3`, …).
    pub method: String,
    /// The time grid.
    pub grid: Grid,
    /// Number of steps.
    pub n_steps: usize,
    /// Output times (grid points).
    pub output_times: Vec<f64>,
    /// The checkpoint mode as planned.
    pub checkpointing: Checkpointing,
    /// The cost of one step as the stepper reports it (`ErkStepper`'s for explicit methods;
    /// stage vectors only for implicit ones, see the module docs).
    pub cost: StepCost,
    /// The planned schedule.
    pub schedule: Schedule,
    /// Its predicted cost for one gradient.
    pub predicted: Stats,
    /// `Schedule::summary`.
    pub summary: String,
    /// Initial state.
    pub u0: Vec<f64>,
    /// Initial parameters.
    pub theta0: Vec<f64>,
}

/// Plans `program` (initializers drawn with `seed`, `train { seed }` for DSL files, else 0).
pub fn plan(program: &Program) -> Result<Plan, PlanError> {
    let method = program
        .solve
        .as_ref()
        .map_or(Method::Rk4, |s| s.method.clone());
    let newton = program
        .solve
        .as_ref()
        .map(|s| s.newton.clone())
        .unwrap_or_default();
    let (stepping, cost, name) = stepping(&method, &newton)?;
    let (grid, output_times, checkpointing) = match &program.solve {
        None => (
            Grid::Uniform {
                t0: 0.0,
                t1: 1.0,
                n: 100,
            },
            vec![1.0],
            Checkpointing::StoreAll,
        ),
        Some(spec) => {
            let times = grid_times(&spec.steps, spec.t0, spec.t1)?;
            let outs = match &spec.outputs {
                None => vec![spec.t1],
                Some(o) => output_times(o, spec.t0, spec.t1)?,
            };
            let (grid, outs) = merge(&spec.steps, spec.t0, spec.t1, &times, &outs)?;
            let ck = match &spec.checkpoint {
                None => Checkpointing::StoreAll,
                Some(c) => checkpointing(c)?,
            };
            (grid, outs, ck)
        }
    };
    let n_steps = match &grid {
        Grid::Uniform { n, .. } => *n,
        Grid::Times(t) => t.len() - 1,
    };
    let bytes = 8 * program.state_len() as u64;
    let cperr = |e: pnode_checkpoint::Error| err("checkpoint", e.to_string());
    let schedule = checkpointing.plan(n_steps, &cost, bytes).map_err(cperr)?;
    let predicted = schedule.predict(&cost, bytes).map_err(cperr)?;
    let summary = schedule.summary(&cost, bytes).map_err(cperr)?;
    let seed = program.train.as_ref().and_then(|t| t.seed).unwrap_or(0);
    let (u0, theta0) = initial_values(program, seed)?;
    Ok(Plan {
        stepping,
        method: name,
        grid,
        n_steps,
        output_times,
        checkpointing,
        cost,
        schedule,
        predicted,
        summary,
        u0,
        theta0,
    })
}

/// The integrator of `method`, its step cost and its name: explicit methods as the generated
/// fused stepper (its cost is `ErkStepper`'s: `s` live-stage RHS evaluations a step, `s − 1`
/// to recompute the stages, `s` VJPs a reverse step, `s` stage vectors), implicit ones as the
/// runtime's steppers with the Newton options of `newton`.
pub fn stepping(
    method: &Method,
    newton: &NewtonOptions,
) -> Result<(Stepping, StepCost, String), PlanError> {
    let implicit_cost = |vectors: u64| StepCost {
        rhs_per_step: 0,
        rhs_per_stage_recompute: 0,
        vjp_per_reverse: 0,
        stage_vectors: vectors,
    };
    let dirk = |constructor: &'static str, tableau: DirkTableau| {
        let cost = implicit_cost(tableau.stages() as u64 + 1);
        let name = tableau.name().to_string();
        Ok::<_, PlanError>((
            Stepping::Dirk {
                constructor,
                tableau,
                newton: newton_config(newton)?,
            },
            cost,
            name,
        ))
    };
    let theta = |theta: f64, name: String| {
        if !(theta > 0.0 && theta <= 1.0) {
            return Err(err("method", format!("θ must lie in (0, 1], got {theta}")));
        }
        Ok((
            Stepping::Theta {
                theta,
                newton: newton_config(newton)?,
            },
            implicit_cost(2),
            name,
        ))
    };
    match method {
        Method::BackwardEuler => return theta(1.0, "backward_euler".into()),
        Method::CrankNicolson => return theta(0.5, "crank_nicolson".into()),
        Method::Theta(x) => return theta(*x, format!("theta({x})")),
        Method::Sdirk2 => return dirk("sdirk2", DirkTableau::sdirk2()),
        Method::Trbdf2 => return dirk("trbdf2", DirkTableau::trbdf2()),
        Method::Esdirk3 => return dirk("esdirk3", DirkTableau::esdirk3()),
        _ => {}
    }
    let tableau = explicit_tableau(method)?;
    let s = tableau.stages();
    let coefficients = ErkCoefficients {
        name: tableau.name().to_string(),
        a: (0..s)
            .map(|i| (0..i).map(|j| tableau.a(i, j)).collect())
            .collect(),
        b: tableau.b().to_vec(),
        c: tableau.c().to_vec(),
    };
    let live = tableau.live_stages() as u64;
    let cost = StepCost {
        rhs_per_step: live,
        rhs_per_stage_recompute: live - 1,
        vjp_per_reverse: live,
        stage_vectors: live,
    };
    let name = tableau.name().to_string();
    Ok((
        Stepping::Explicit {
            tableau,
            coefficients,
        },
        cost,
        name,
    ))
}

/// The explicit tableau of `method` (an explicit method; [`stepping`] handles the others).
fn explicit_tableau(method: &Method) -> Result<Tableau, PlanError> {
    Ok(match method {
        Method::Euler => Tableau::euler(),
        Method::Midpoint => Tableau::midpoint(),
        Method::Heun => Tableau::heun(),
        Method::Ralston => Tableau::ralston(),
        Method::Bosh3 => Tableau::bosh3(),
        Method::Rk4 => Tableau::rk4(),
        Method::Rk38 => Tableau::rk38(),
        Method::Dopri5 => Tableau::dopri5(),
        Method::Tsit5 => Tableau::tsit5(),
        Method::Fehlberg45 => Tableau::fehlberg45(),
        Method::Erk(u) => {
            let rows: Vec<&[f64]> = u.a.iter().map(Vec::as_slice).collect();
            Tableau::explicit("erk", &rows, &u.b, &u.c, 1)
                .map_err(|e| err("method", e.to_string()))?
        }
        other => return Err(err("method", format!("`{}` is not explicit", other.name()))),
    })
}

/// The runtime's Newton configuration for the `solve` block's options: `linear_solver =
/// petsc` is refused (the `pnode` facade builds the runtime without PETSc), everything else is
/// [`pnode_driver::setup::newton_config`], so the macro and `pnodec` configure Newton alike.
pub fn newton_config(o: &NewtonOptions) -> Result<NewtonConfig, PlanError> {
    if o.linear_solver == Some(IrLinear::Petsc) {
        return Err(err(
            "linear_solver",
            "`petsc` is not available to #[neural_ode] (the `pnode` crate builds the \
             runtime without PETSc); use `dense` or `gmres`",
        ));
    }
    pnode_driver::setup::newton_config(o).map_err(|e| match e {
        pnode_driver::Error::Config { option, reason } => err(option, reason),
        other => err("newton", other.to_string()),
    })
}

fn count(option: &str, n: u64) -> Result<usize, PlanError> {
    usize::try_from(n).map_err(|_| err(option, format!("{n} is too large")))
}

/// The grid points of `steps` over `t0 .. t1` (as `pnode-driver` computes them).
fn grid_times(steps: &Steps, t0: f64, t1: f64) -> Result<Vec<f64>, PlanError> {
    let grid_err = |e: pnode_runtime::Error| err("steps", e.to_string());
    Ok(match steps {
        Steps::Uniform(n) => TimeGrid::uniform(t0, t1, count("steps", *n)?)
            .map_err(grid_err)?
            .times()
            .to_vec(),
        Steps::Logspace { start, end, count } => {
            let c = self::count("steps", *count)?;
            if c < 2 || !(*start > 0.0 && *start > t0 && start < end) {
                return Err(err(
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
    })
}

fn output_times(o: &Outputs, t0: f64, t1: f64) -> Result<Vec<f64>, PlanError> {
    let v = match o {
        Outputs::Linspace { start, end, count } => {
            let n = self::count("outputs", *count)?;
            match n {
                0 => Vec::new(),
                1 => vec![*start],
                _ => {
                    let mut v: Vec<f64> = (0..n)
                        .map(|k| start + (end - start) * k as f64 / (n - 1) as f64)
                        .collect();
                    v[n - 1] = *end;
                    v
                }
            }
        }
        Outputs::Times(v) => v.clone(),
        Outputs::Data(src) => {
            return Err(err(
                "outputs",
                format!(
                    "output times from a file (`data(\"{}\")`) are not read at compile time; \
                     list them or use linspace(a, b, n)",
                    src.path
                ),
            ));
        }
    };
    if v.is_empty() {
        return Err(err("outputs", "no output times"));
    }
    for (k, &t) in v.iter().enumerate() {
        if !(t >= t0 && t <= t1) {
            return Err(err(
                "outputs",
                format!("output time {k} is {t}, outside the time span {t0} .. {t1}"),
            ));
        }
        if k > 0 && t <= v[k - 1] {
            return Err(err(
                "outputs",
                format!(
                    "output times must increase strictly: time {k} = {t} after {}",
                    v[k - 1]
                ),
            ));
        }
    }
    Ok(v)
}

/// The grid with every output time a grid point (within `1e-10 · span` snaps, else inserted),
/// and the snapped output times — `pnode-driver`'s rule.
fn merge(
    steps: &Steps,
    t0: f64,
    t1: f64,
    times: &[f64],
    outputs: &[f64],
) -> Result<(Grid, Vec<f64>), PlanError> {
    let grid_err = |e: pnode_runtime::Error| err("steps", e.to_string());
    let out_err = |e: pnode_runtime::Error| err("outputs", e.to_string());
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
    all.sort_by(f64::total_cmp);
    let (grid, rt) = match (steps, inserted) {
        (Steps::Uniform(n), 0) => {
            let n = count("steps", *n)?;
            (
                Grid::Uniform { t0, t1, n },
                TimeGrid::uniform(t0, t1, n).map_err(grid_err)?,
            )
        }
        _ => (
            Grid::Times(all.clone()),
            TimeGrid::from_times(&all).map_err(grid_err)?,
        ),
    };
    let snapped = rt
        .output_indices(outputs)
        .map_err(out_err)?
        .iter()
        .map(|&i| rt.t(i))
        .collect();
    Ok((grid, snapped))
}

fn checkpointing(c: &Checkpoint) -> Result<Checkpointing, PlanError> {
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

/// `u0` and `θ0`: states then parameters, in declaration order, random initializers from one
/// ChaCha20 stream seeded with `seed` (uniform `a·(2r − 1)`, `r ∈ [0, 1)`; normal by
/// `rand_distr`), exactly as `pnode_driver::Setup::new` draws them.
pub fn initial_values(program: &Program, seed: u64) -> Result<(Vec<f64>, Vec<f64>), PlanError> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut u0 = vec![0.0; program.state_len()];
    for s in &program.states {
        let out = &mut u0[s.offset..s.offset + s.shape.len()];
        init(&s.init, s.shape.dims(), out, &mut rng, &s.name)?;
    }
    let mut theta0 = vec![0.0; program.param_len()];
    for p in &program.params {
        let out = &mut theta0[p.offset..p.offset + p.shape.len()];
        init(&p.init, p.shape.dims(), out, &mut rng, &p.name)?;
    }
    Ok((u0, theta0))
}

fn init(
    ini: &Initializer,
    dims: &[usize],
    out: &mut [f64],
    rng: &mut ChaCha20Rng,
    name: &str,
) -> Result<(), PlanError> {
    let uniform = |rng: &mut ChaCha20Rng, out: &mut [f64], a: f64| {
        for x in out.iter_mut() {
            *x = a * (2.0 * rng.random::<f64>() - 1.0);
        }
    };
    match ini {
        Initializer::Values(v) => {
            if v.len() != out.len() {
                return Err(err(
                    name,
                    format!("{} values for {} elements", v.len(), out.len()),
                ));
            }
            out.copy_from_slice(v);
        }
        Initializer::Fill(x) => out.fill(*x),
        Initializer::Zeros => out.fill(0.0),
        Initializer::Ones => out.fill(1.0),
        Initializer::Normal { std } => {
            let d = Normal::new(0.0, *std)
                .map_err(|e| err(name, format!("normal({std}) is not a distribution: {e}")))?;
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
                return Err(err(name, format!("uniform bound {bound}")));
            }
            uniform(rng, out, *bound);
        }
        Initializer::Data(src) => {
            return Err(err(
                name,
                format!(
                    "`data(\"{}\")` is not read at compile time: give the values, or an \
                     initializer (zeros, ones, normal(σ), xavier)",
                    src.path
                ),
            ));
        }
    }
    Ok(())
}
