//! pnode: neural ODEs `du/dt = f(t, u; θ)` with exact discrete-adjoint gradients.
//!
//! This facade re-exports the runtime ([`runtime`]: integrators, checkpointed adjoints,
//! optimizers) and the compile-time front ends [`neural_ode`] and [`model!`], which turn a
//! model into specialized forward and adjoint Rust inside your crate — the code
//! `pnodec emit --rust` shows, with the checkpoint schedule planned during expansion.
//!
//! ```
//! #[pnode::neural_ode(method = "rk4", steps = 100, t = (0.0, 1.0), checkpoint = "all")]
//! mod decay {
//!     state! { x = 2.0 }
//!     param! { k = 0.5 }
//!     fn rhs(t: f64, x: f64) -> f64 {
//!         -k * x
//!     }
//! }
//!
//! let mut ode = decay::Ode::new()?;
//! let out = ode.forward(&decay::Ode::U0, &decay::Ode::THETA0)?.to_vec();
//! assert!((out[0] - 2.0 * (-0.5f64).exp()).abs() < 1e-9);
//! // d x(1) / d k = -x0 · e^{-k}, by the discrete adjoint.
//! let g = ode.gradient(&decay::Ode::U0, &decay::Ode::THETA0, &[1.0])?;
//! assert!((g.dp[0] + 2.0 * (-0.5f64).exp()).abs() < 1e-9);
//! assert_eq!(decay::Ode::PREDICTED.vjp_evals, 400);
//! # Ok::<(), pnode::runtime::Error>(())
//! ```
//!
//! # `#[neural_ode(…)]`
//!
//! On a module holding the model. The attribute takes the `.pode` `solve` options, each
//! optional (defaults: rk4, `t = (0.0, 1.0)`, 100 steps, the output at `t1`, store-all):
//!
//! | option | values |
//! |---|---|
//! | `method` | `"rk4"` or `rk4`, any explicit method (`euler midpoint heun ralston bosh3 rk4 rk38 dopri5 tsit5 fehlberg45`) or `erk(a = …, b = …, c = …)`, or an implicit one (`backward_euler crank_nicolson theta(0.7) sdirk2 trbdf2 esdirk3`) |
//! | `t` | `(t0, t1)` or `t0..t1` |
//! | `steps` | `1000`, `logspace(1e-3, 10.0, 200)`, the grid `[0.0, 0.5, 1.0]` or a file of its points `data("t.csv")` |
//! | `outputs` | `linspace(0.0, 10.0, 25)`, `[0.5, 1.0]` or `data("t.csv")` (inserted into the grid if needed) |
//! | `checkpoint` | `"all"`/`store_all`, `solution_only`, `revolve(slots = 10)`, `budget(vectors = 200)`, `budget(bytes = 64000)`, `online(slots = 8)` |
//! | `rtol`, `atol`, `h0`, `h_min`, `h_max`, `max_steps` | adaptive steps (then no `steps`), for a method with an error estimate (`bosh3 dopri5 tsit5 fehlberg45`): `method = "dopri5", rtol = 1e-6, atol = 1e-9` is the DSL's `method = dopri5(rtol = 1e-6, atol = 1e-9)`; `atol = [1e-9, 1e-8]` per component of the flat state; defaults are the runtime's `AdaptiveOptions::default()` |
//! | `newton_tol`, `max_iters`, `line_search`, `linear_solver`, `krylov_tol`, `krylov_restart` | implicit methods only, as in the DSL: `newton_tol = 1e-12` (absolute and relative), `max_iters = 30`, `line_search = true`, `linear_solver = "dense"`/`gmres` (`petsc` is refused: the facade has no PETSc), `krylov_tol = 1e-12`, `krylov_restart = 30`; defaults are the runtime's `NewtonConfig::default()` |
//!
//! Inside the module:
//!
//! * `state! { x = 1.0, u[2] = [1.0, 0.0], h[4, 2] = zeros }` — states, the flat state in
//!   this order; `param! { k = 0.5, w[2, 2] = normal(0.1), v[3] = xavier }` — parameters;
//!   `layer! { net = mlp([2, 16, 2], activation = tanh), lin = linear(2, 2) }` — layers
//!   (their weights follow the parameters in `θ`, as in the DSL); `const C: f64 = 0.04;` —
//!   constants (the type is not checked; the value's shape is the constant's). Initial
//!   values, a layer's weights and constants may come from files: `x[2] = data("x0.csv")`,
//!   `net = mlp([2, 4, 2], init = data("net.npy"))` (all the layer's parameters in layout
//!   order), `const RATES: [f64; 2] = data("rates.csv");` (a column is a vector, a table a
//!   matrix).
//! * `data("…")` files are read at compile time, relative to your `Cargo.toml` (for `model!`,
//!   to the `.pode` file), each tracked so cargo rebuilds when it changes; the time grid is
//!   resolved by `pnode-driver`'s resolver, so `Ode::GRID_TIMES` and every step size are
//!   `pnodec`'s bit for bit.
//! * `fn rhs(t: f64, x: f64, …) -> … { let v = …; (dx, dy) }` — the arguments are `t` and
//!   states (their types are not checked), the body `let`s and then one derivative per state,
//!   in declaration order (a tuple, or one expression for one state).
//! * Expressions: numbers, names, `+ - * /`, unary `-`, `x.powi(2)`/`x.powf(y)`/`pow(x, y)`
//!   for powers (Rust's `^` is exclusive or, and is refused), `matmul(a, b)` or
//!   `a.matmul(b)`, functions as calls or methods (`tanh(x)`, `x.tanh()`, `x.exp()`,
//!   `x.ln()`, `sum(x, axis = 0)`, `mean(x)`, `net(u)`), arrays `[a, b]`, indexing `u[0]`,
//!   `a[(1, 0)]`, slices `u[0..2]`, `x[(.., 1)]`.
//!
//! The module then holds `Model` (`Rhs`, `RhsJvp`, `RhsVjp`), `Stepper` (the fused explicit
//! Runge–Kutta steps; for an implicit method an alias of [`runtime::ThetaStepper`] or
//! [`runtime::DirkStepper`], Newton over `Model`'s JVPs) and `Ode`: `new`, `forward`,
//! `gradient`, `value_and_grad`, `train` (any [`runtime::optim::Optimizer`]) and the constants
//! `U0`, `THETA0`, `STATES`, `PARAMS`, `GRID_TIMES`, `OUTPUT_TIMES`, `N_STEPS`, `METHOD`, `IMPLICIT`,
//! `NEWTON` (the [`runtime::NewtonConfig`] of an implicit method), `STEP_COST`,
//! `SCHEDULE_FORWARD`, `SCHEDULE_REVERSE`, `PREDICTED` (the cost model's [`runtime::Stats`] of
//! one gradient) and `SCHEDULE_SUMMARY`.
//!
//! # Adaptive steps
//!
//! With `rtol`/`atol` (or a `.pode` method `dopri5(rtol = …)`), the steps are chosen at run
//! time by the method's embedded pair: `Stepper` is [`runtime::adaptive::EmbeddedErk`] and
//! `Ode` owns a [`runtime::adaptive::AdaptiveSolver`], with the same `new`, `forward`,
//! `gradient`, `value_and_grad`, `train` and `stats`, plus `accepted_times()`,
//! `accepted_grid()`, `online_spacing()` and `adaptive_stats()` (accepted and rejected steps).
//! The gradient is the exact discrete adjoint of the accepted steps, bitwise the fixed-grid
//! gradient on `accepted_times()`. There is no `N_STEPS`, `GRID_TIMES` or compile-time
//! schedule; the constants are the resolved error control (`T0`, `RTOL`, `ATOL`, `H0`,
//! `H_MIN`, `H_MAX`, `MAX_STEPS`, `MAX_NONFINITE_RETRIES`, `CONTROLLER`, `Ode::options()`
//! builds them into [`runtime::adaptive::AdaptiveOptions`]) and `CHECKPOINTING`, decided online.
//! `PREDICTED` states the bound (a `CheckpointBound`: with `online(slots = c)`, at most `c`
//! slots, final spacing `d ≤ max(1, 2(N−1)/c)` and at most `N(d−1)/2` recomputed steps for the
//! `N` steps the run accepts) and `SCHEDULE_SUMMARY` says it in the words of
//! `pnodec emit --schedule`. Revolve needs `N` in advance and is refused at compile time.
//!
//! ```
//! #[pnode::neural_ode(method = "dopri5", rtol = 1e-8, atol = 1e-10, t = (0.0, 1.0), checkpoint = online(slots = 4))]
//! mod decay {
//!     state! { x = 2.0 }
//!     param! { k = 0.5 }
//!     fn rhs(t: f64, x: f64) -> f64 {
//!         -k * x
//!     }
//! }
//!
//! let mut ode = decay::Ode::new()?;
//! let g = ode.gradient(&decay::Ode::U0, &decay::Ode::THETA0, &[1.0])?;
//! assert!((g.dp[0] + 2.0 * (-0.5f64).exp()).abs() < 1e-7);
//! let n = ode.accepted_times().len() as u64 - 1;
//! assert!(ode.stats().recomputed_steps <= decay::Ode::PREDICTED.recomputed_steps(n));
//! # Ok::<(), pnode::runtime::Error>(())
//! ```
//!
//! # Opaque layers: tch modules (and any other network) inside a model
//!
//! `layer! { net = opaque(2, 2) }` declares a layer computed outside pnode, from an input of
//! shape `[2]` to an output of shape `[2]` (shapes are a size or a list `[1, 28, 28]`); the
//! body calls it like any layer, `net(u.powi(3))`. pnode differentiates everything around it
//! and asks the layer only for its value, its JVP and its VJP
//! ([`runtime::opaque::OpaqueLayer`]). `Ode::new(layers)` then takes one boxed layer per
//! declaration (in order; `Model::LAYERS` lists them), and `θ` is the declared parameters
//! followed by each layer's own: `Ode::param_len()` and `Ode::theta0()` (the declared initial
//! values, then the layers' current ones) give the whole of it, and `gradient`, `train` and the
//! optimizers work on it unchanged. With the feature `torch`, `pnode::torch::TorchLayer` makes
//! a tch module such a layer (its `φ`: the trainable `VarStore` variables sorted by name, f64):
//!
//! ```ignore
//! use pnode::torch::{TorchLayer, tch::{nn, Device, Kind}};
//! #[pnode::neural_ode(method = "rk4", steps = 100, t = (0.0, 1.0))]
//! mod spiral {
//!     state! { u[2] = [2.0, 0.0] }
//!     layer! { net = opaque(2, 2) }
//!     fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] { net(u.powi(3)) }
//! }
//! let mut vs = nn::VarStore::new(Device::Cpu);
//! vs.set_kind(Kind::Double);
//! let mlp = nn::seq()
//!     .add(nn::linear(vs.root() / "l0", 2, 50, Default::default()))
//!     .add_fn(|x| x.tanh())
//!     .add(nn::linear(vs.root() / "l1", 50, 2, Default::default()));
//! let mut ode = spiral::Ode::new(vec![Box::new(TorchLayer::from_module(&vs, &[2], 2, mlp)?)])?;
//! let theta = ode.theta0();
//! let g = ode.gradient(&spiral::Ode::U0, &theta, &[1.0, 0.0])?;
//! ```
//!
//! A layer that fails (a libtorch error, a panic in the module) stops the sweep at that
//! evaluation: the solver returns [`runtime::Error::Model`] with the step, the time, the phase
//! (forward, recomputation, reverse) and the cause, a [`runtime::ModelError::Layer`] naming the
//! layer. The interpreter, the JIT and `pnodec` cannot call such layers and say so.
//!
//! An implicit step's evaluations depend on how Newton converges, so for implicit methods
//! `STEP_COST` holds only the stage vectors and `PREDICTED` is exact in the step counts and
//! the peak slots/vectors/bytes, with zero evaluation and iteration counts (`Ode::stats`
//! measures them); the schedule is the one the runtime plans for the same stepper.
//!
//! # `model!("path.pode")`
//!
//! Compiles a `.pode` file (path relative to your `Cargo.toml`) into `pub mod NAME` (the name of
//! its `model` header) with the same contents; the crate is rebuilt when the file changes.
//! Errors are reported at the string literal with the file, line and column in the `.pode`
//! file.
//!
//! Every invalid model is a compile error at the offending tokens, never a panic; the
//! lowering's diagnostics are those of `pnodec check` (same codes).

/// The runtime: steppers, solvers with checkpointed discrete adjoints, optimizers.
pub use pnode_runtime as runtime;

/// Special functions generated code calls (the normal CDF of GELU).
pub use pnode_ir::special;

pub use pnode_macros::{model, neural_ode};

/// The libtorch backend (feature `torch`): tensor solvers, ODE blocks inside tch autograd, and
/// `TorchLayer`, which makes a tch module an `opaque` layer of a `#[neural_ode]` model.
#[cfg(feature = "torch")]
pub use pnode_torch as torch;

// So that the generated `::pnode::…` paths resolve inside this crate's own doc tests.
extern crate self as pnode;
