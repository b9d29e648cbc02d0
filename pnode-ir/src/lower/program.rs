//! The lowered model: the RHS [`Function`], the layout of the flat state and parameter
//! buffers, and the typed solve, loss and train specifications.
//!
//! These types depend on nothing but `pnode-ir` (no runtime types), so the proc macro can use
//! them; the CLI maps them to `pnode_runtime` types.

use crate::function::Function;
use crate::shape::Shape;

/// A lowered, validated model.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// The model's name (`model NAME`).
    pub name: String,
    /// `f(t, u, θ) → du/dt`; one output per state, in declaration order.
    pub rhs: Function,
    /// The states: slices of the flat state `u`, in declaration order.
    pub states: Vec<StateVar>,
    /// The learnable parameters: slices of the flat `θ` (`param` items and layer weights, in
    /// declaration order).
    pub params: Vec<ParamVar>,
    /// The opaque layers (`layer net = opaque(in, out)`), by index: layers computed outside
    /// pnode whose parameters come with them and follow the declared ones in `θ`. Only
    /// `#[neural_ode]`-generated code can call them.
    pub opaque_layers: Vec<OpaqueLayerDecl>,
    /// The `solve { }` block, if any (without one, the driver supplies defaults).
    pub solve: Option<SolveSpec>,
    /// The loss, if any.
    pub loss: Option<LossSpec>,
    /// The `train { }` block, if any.
    pub train: Option<TrainSpec>,
}

impl Program {
    /// Length of the flat state `u`.
    pub fn state_len(&self) -> usize {
        self.rhs.layout().state
    }

    /// Length of the flat parameter vector `θ` (the declared parameters; opaque layers bring
    /// theirs at run time).
    pub fn param_len(&self) -> usize {
        self.rhs.layout().param
    }

    /// `(name, input length, output length)` of every opaque layer, by index (what
    /// `pnode_codegen::Options::opaque_layers` takes).
    pub fn opaque_layer_lengths(&self) -> Vec<(String, usize, usize)> {
        self.opaque_layers
            .iter()
            .map(|l| (l.name.clone(), l.input.len(), l.output.len()))
            .collect()
    }
}

/// One opaque layer: `y = g(x; φ)` with `x` of shape `input` and `y` of shape `output`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpaqueLayerDecl {
    /// The layer's name.
    pub name: String,
    /// Shape of its input.
    pub input: Shape,
    /// Shape of its output.
    pub output: Shape,
}

/// One `state` item: a row-major slice `u[offset .. offset + shape.len()]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateVar {
    /// The declared name.
    pub name: String,
    /// Its shape.
    pub shape: Shape,
    /// First element in the flat state.
    pub offset: usize,
    /// The initial value.
    pub init: Initializer,
}

/// One slice of the flat parameters: a `param` item, or a layer's weight or bias
/// (`net.0.weight`, `net.0.bias`, `enc.weight`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamVar {
    /// `theta`, or `LAYER.weight`, `LAYER.bias`, `LAYER.K.weight` (the `K`-th affine map of
    /// an MLP).
    pub name: String,
    /// Its shape.
    pub shape: Shape,
    /// First element in the flat parameters.
    pub offset: usize,
    /// How to initialize it.
    pub init: Initializer,
}

/// An initial value, as written (nothing is read or drawn at lowering time).
#[derive(Debug, Clone, PartialEq)]
pub enum Initializer {
    /// Literal values, row-major, exactly the declared number.
    Values(Vec<f64>),
    /// Every element equal to this value (a scalar literal given for a tensor).
    Fill(f64),
    /// `zeros`.
    Zeros,
    /// `ones` (also the default scale of a group norm).
    Ones,
    /// `normal(std)`: independent `N(0, std²)` draws.
    Normal {
        /// The standard deviation.
        std: f64,
    },
    /// `xavier`: Glorot uniform `U(−a, a)`, `a = √(6 / (fan_in + fan_out))` with
    /// `fan_in = shape[1]·r`, `fan_out = shape[0]·r`, `r` the product of the other extents.
    Xavier,
    /// `U(−bound, bound)`: the default of layer weights and biases, `bound = 1/√fan_in`
    /// (PyTorch's `Linear`/`Conv2d` default).
    Uniform {
        /// The bound.
        bound: f64,
    },
    /// `data("path", column = k)`: read from a CSV or NPY file. The path is kept as written
    /// (relative paths are resolved against the model file by the driver).
    Data(DataSource),
    /// Part of a layer's `init = data("path")` file, which holds all the layer's parameters
    /// in layout order: values `start .. start + len` of a file of exactly `total` values.
    DataPart {
        /// The file.
        source: DataSource,
        /// The first value of this parameter.
        start: usize,
        /// The number of values the file must hold (the layer's parameter count).
        total: usize,
    },
}

/// A file of numbers: `data("obs.csv", column = 1)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// The path as written.
    pub path: String,
    /// The column to read, if given.
    pub column: Option<u64>,
}

// ---- solve ---------------------------------------------------------------------------------

/// The `solve { }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct SolveSpec {
    /// The integrator.
    pub method: Method,
    /// The time span `t0 .. t1`.
    pub t0: f64,
    /// End of the time span.
    pub t1: f64,
    /// The time grid.
    pub steps: Steps,
    /// Output times (`None`: the driver's default, the final time).
    pub outputs: Option<Outputs>,
    /// The checkpoint schedule (`None`: the driver's default).
    pub checkpoint: Option<Checkpoint>,
    /// The stage solver of implicit methods (all `None` for explicit methods).
    pub newton: NewtonOptions,
}

/// A time integrator.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Explicit Euler.
    Euler,
    /// Explicit midpoint.
    Midpoint,
    /// Heun's second-order method.
    Heun,
    /// Ralston's second-order method.
    Ralston,
    /// Bogacki–Shampine 3(2).
    Bosh3,
    /// Classic fourth-order Runge–Kutta.
    Rk4,
    /// The 3/8 rule.
    Rk38,
    /// Dormand–Prince 5(4).
    Dopri5,
    /// Tsitouras 5(4).
    Tsit5,
    /// Fehlberg 4(5).
    Fehlberg45,
    /// Backward Euler (θ = 1).
    BackwardEuler,
    /// Crank–Nicolson (θ = ½).
    CrankNicolson,
    /// The θ-method, `0 < θ ≤ 1`.
    Theta(f64),
    /// Two-stage L-stable SDIRK.
    Sdirk2,
    /// TR-BDF2.
    Trbdf2,
    /// Kværnø's third-order ESDIRK, with an embedded second-order estimate (3(2)).
    Esdirk3,
    /// A user explicit tableau, validated: `a` strictly lower triangular `s × s`, `c` the row
    /// sums of `a`, `Σ b = 1`.
    Erk(UserTableau),
}

/// The built-in method names, explicit then implicit.
pub const METHOD_NAMES: &[&str] = &[
    "euler",
    "midpoint",
    "heun",
    "ralston",
    "bosh3",
    "rk4",
    "rk38",
    "dopri5",
    "tsit5",
    "fehlberg45",
    "backward_euler",
    "crank_nicolson",
    "theta",
    "sdirk2",
    "trbdf2",
    "esdirk3",
    "erk",
];

/// The methods with an embedded error estimate, which take tolerances
/// (`method = dopri5(rtol = 1e-6)`) for error-controlled steps.
pub const ADAPTIVE_METHOD_NAMES: &[&str] = &["bosh3", "dopri5", "tsit5", "fehlberg45"];

impl Method {
    /// Whether each step solves a nonlinear system (θ-methods and DIRKs).
    pub fn is_implicit(&self) -> bool {
        matches!(
            self,
            Method::BackwardEuler
                | Method::CrankNicolson
                | Method::Theta(_)
                | Method::Sdirk2
                | Method::Trbdf2
                | Method::Esdirk3
        )
    }

    /// Whether the method carries an embedded error estimate, so it can choose its own steps.
    pub fn has_error_estimate(&self) -> bool {
        ADAPTIVE_METHOD_NAMES.contains(&self.name())
    }

    /// The name as written in a `.pode` file.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Euler => "euler",
            Method::Midpoint => "midpoint",
            Method::Heun => "heun",
            Method::Ralston => "ralston",
            Method::Bosh3 => "bosh3",
            Method::Rk4 => "rk4",
            Method::Rk38 => "rk38",
            Method::Dopri5 => "dopri5",
            Method::Tsit5 => "tsit5",
            Method::Fehlberg45 => "fehlberg45",
            Method::BackwardEuler => "backward_euler",
            Method::CrankNicolson => "crank_nicolson",
            Method::Theta(_) => "theta",
            Method::Sdirk2 => "sdirk2",
            Method::Trbdf2 => "trbdf2",
            Method::Esdirk3 => "esdirk3",
            Method::Erk(_) => "erk",
        }
    }

    /// The method without arguments named `name` (not `theta` or `erk`).
    pub fn by_name(name: &str) -> Option<Method> {
        Some(match name {
            "euler" => Method::Euler,
            "midpoint" => Method::Midpoint,
            "heun" => Method::Heun,
            "ralston" => Method::Ralston,
            "bosh3" => Method::Bosh3,
            "rk4" => Method::Rk4,
            "rk38" => Method::Rk38,
            "dopri5" => Method::Dopri5,
            "tsit5" => Method::Tsit5,
            "fehlberg45" => Method::Fehlberg45,
            "backward_euler" => Method::BackwardEuler,
            "crank_nicolson" => Method::CrankNicolson,
            "sdirk2" => Method::Sdirk2,
            "trbdf2" => Method::Trbdf2,
            "esdirk3" => Method::Esdirk3,
            _ => return None,
        })
    }
}

/// A user Butcher tableau `erk(a = …, b = …, c = …)`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserTableau {
    /// `s` rows of `s` coefficients.
    pub a: Vec<Vec<f64>>,
    /// `s` weights.
    pub b: Vec<f64>,
    /// `s` nodes.
    pub c: Vec<f64>,
}

/// The time grid.
#[derive(Debug, Clone, PartialEq)]
pub enum Steps {
    /// `steps = N`: `N` equal steps over the time span.
    Uniform(u64),
    /// `steps = logspace(a, b, n)`: the grid `t0, a·r⁰, a·r¹, …, a·rⁿ⁻¹ = b` (`n` log-spaced
    /// points from `a` to `b`, after `t0`), with `t0 < a < b = t1`.
    Logspace {
        /// First point after `t0`.
        start: f64,
        /// Last point (`t1`).
        end: f64,
        /// Number of points after `t0`.
        count: u64,
    },
    /// `steps = [t0, t_1, …, t1]`: the grid points, strictly increasing, from `t0` to `t1`.
    Times(Vec<f64>),
    /// `steps = data("t.csv")`: the grid points from a file (one column, strictly increasing,
    /// from `t0` to `t1`; checked when the file is read).
    Data(DataSource),
    /// No `steps`, and tolerances on the method (`method = dopri5(rtol = 1e-6, atol = 1e-9)`):
    /// the method's embedded error estimate chooses the steps as it goes.
    Adaptive(StepControl),
}

/// Error control: what `method = NAME(rtol = …, atol = …, h0 = …, h_min = …, h_max = …,
/// max_steps = …)` sets. An option left out takes the runtime's default
/// (`pnode_runtime::adaptive::AdaptiveOptions::default()`: `rtol = 1e-6`, `atol = 1e-9`,
/// automatic `h0`, no `h_min`/`h_max`, 100 000 step attempts).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepControl {
    /// Relative tolerance.
    pub rtol: Option<Tolerance>,
    /// Absolute tolerance.
    pub atol: Option<Tolerance>,
    /// The first step size (automatic when `None`).
    pub h0: Option<f64>,
    /// The smallest step size before the run fails.
    pub h_min: Option<f64>,
    /// The largest step size.
    pub h_max: Option<f64>,
    /// The most step attempts, accepted and rejected together.
    pub max_steps: Option<u64>,
}

/// A tolerance: one number for every state component, or one per component of the flat
/// state `u` (in layout order).
#[derive(Debug, Clone, PartialEq)]
pub enum Tolerance {
    /// The same for every component.
    Scalar(f64),
    /// One per component of `u`.
    PerComponent(Vec<f64>),
}

/// The output times.
#[derive(Debug, Clone, PartialEq)]
pub enum Outputs {
    /// `linspace(a, b, n)`: `n` equally spaced times from `a` to `b` (inside the span).
    Linspace {
        /// First time.
        start: f64,
        /// Last time.
        end: f64,
        /// Number of times.
        count: u64,
    },
    /// A strictly increasing list inside the span.
    Times(Vec<f64>),
    /// Read from a file.
    Data(DataSource),
}

/// A checkpoint schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Checkpoint {
    /// Keep every step's stages.
    StoreAll,
    /// Keep every solution, recompute stages.
    SolutionOnly,
    /// Binomial checkpointing with this many slots.
    Revolve {
        /// Slots.
        slots: u64,
    },
    /// Plan within a memory budget in bytes.
    BudgetBytes(u64),
    /// Plan within a budget of this many state vectors.
    BudgetVectors(u64),
    /// Online checkpointing (number of steps not known in advance) with this many slots.
    Online {
        /// Slots.
        slots: u64,
    },
}

/// The linear solver of the Newton stage solves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearSolver {
    /// Matrix-free restarted GMRES.
    Gmres,
    /// Dense LU of the Jacobian built from JVPs.
    Dense,
    /// PETSc SNES/KSP.
    Petsc,
}

/// Options of the Newton stage solve (implicit methods only); `None` = the runtime default.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewtonOptions {
    /// `newton_tol`.
    pub tol: Option<f64>,
    /// `max_iters`.
    pub max_iters: Option<u64>,
    /// `line_search`.
    pub line_search: Option<bool>,
    /// `linear_solver`.
    pub linear_solver: Option<LinearSolver>,
    /// `krylov_tol`.
    pub krylov_tol: Option<f64>,
    /// `krylov_restart`.
    pub krylov_restart: Option<u64>,
}

// ---- loss ----------------------------------------------------------------------------------

/// The loss `L = Σ_fits weight · metric + Σ_k ℓ(t_k, u(t_k), θ)` over the output times `t_k`.
///
/// A top-level term `c · mse(e, data(…))` (or `mae`) is a [`DataFit`]; every other term is
/// gathered into `expr`, a scalar function of the state at one output time, summed over the
/// output times.
#[derive(Debug, Clone, PartialEq)]
pub struct LossSpec {
    /// The data-fitting terms.
    pub fits: Vec<DataFit>,
    /// `ℓ(t, u, θ) → []`, summed over the output times (`None` when the loss is only fits).
    pub expr: Option<Function>,
}

/// `weight · mse(prediction(u), data)`: `weight/(K n) Σ_k Σ_i (p_i(u_k) − d_{k,i})²` for
/// [`Metric::Mse`] (`|·|` for [`Metric::Mae`]), `K` output times, `n` prediction elements; row
/// `k` of the data holds the observation at output time `k`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFit {
    /// Squared or absolute error.
    pub metric: Metric,
    /// The constant factor in front of the term (negative for a subtracted term).
    pub weight: f64,
    /// `p(t, u, θ)`, the predicted quantity at one output time.
    pub prediction: Function,
    /// The observations.
    pub data: DataSource,
}

/// The metric of a [`DataFit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Mean squared error.
    Mse,
    /// Mean absolute error.
    Mae,
}

// ---- train ---------------------------------------------------------------------------------

/// The `train { }` block; `None` fields take the driver's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSpec {
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Number of optimizer steps.
    pub iterations: Option<u64>,
    /// Random seed for initializers and batches.
    pub seed: Option<u64>,
    /// Print the loss every so many iterations.
    pub log_every: Option<u64>,
    /// Minibatch size.
    pub batch_size: Option<u64>,
}

/// An optimizer with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Adam (Kingma and Ba, 2015).
    Adam {
        /// Learning rate.
        lr: f64,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator guard.
        eps: f64,
    },
    /// Stochastic gradient descent with (heavy-ball) momentum.
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum (0 for plain SGD).
        momentum: f64,
    },
}
