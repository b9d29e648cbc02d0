//! [`Run`]: a [`Setup`] with its solver built, running forward solves, losses and gradients
//! for any model backend `M: Rhs + RhsJvp + RhsVjp`.
//!
//! # The loss and its gradient
//!
//! With outputs `u_k = u(t_k)`, `k = 1 … K`, the loss is
//!
//! ```text
//! L(θ) = Σ_j  w_j/(K n_j) Σ_k Σ_i  m(p_j(t_k, u_k, θ)_i − d_{j,k,i})  +  Σ_k ℓ(t_k, u_k, θ)
//! ```
//!
//! over the data fits `j` (weight `w_j`, prediction `p_j` with `n_j` elements, observations
//! `d_j`; `m(r) = r²` for mse, `|r|` for mae) and the remaining terms `ℓ` (the
//! [`LossSpec::expr`](pnode_ir::lower::LossSpec) function). Its total derivative is
//!
//! ```text
//! dL/dθ = μ + Σ_k (∂ℓ/∂θ + Σ_j p_{j,θ}ᵀ c_{j,k})(t_k)       (the explicit θ-dependence)
//! ∂L/∂u_k = ∂ℓ/∂u(t_k, u_k, θ) + Σ_j p_{j,u}(t_k, u_k, θ)ᵀ c_{j,k}
//! c_{j,k,i} = w_j/(K n_j) · m'(r_{j,k,i}),   m'(r) = 2r (mse), sign(r) (mae; 0 at r = 0)
//! ```
//!
//! where `μ` is the runtime's discrete-adjoint parameter gradient driven by `∂L/∂u_k` (the
//! runtime only sees the loss through `∂L/∂u_k`, so the explicit θ part is added here). The
//! products `p_uᵀ c, p_θᵀ c` and `(ℓ_u, ℓ_θ)` are one evaluation each of the symbolic VJPs
//! [`pnode_ir::vjp`] of the prediction and of `ℓ` (with cotangent `c`, resp. `1`).
//!
//! A minibatch `S ⊂ {1 … K}` replaces `K` by `|S|` and sums only over `k ∈ S`; the `ℓ` terms
//! are scaled by `K/|S|`, so both parts are unbiased estimates of the full loss.
//!
//! # The explicit stepper hook
//!
//! `Run<E>` is generic over the stepper `E` of explicit methods, with the runtime's
//! [`ErkStepper`] as the default ([`Run::new`]). [`Run::with_explicit_stepper`] lets a caller
//! supply another one — any `E` implementing the runtime's
//! [`ForwardStepper`]/[`AdjointStepper`] for the model type, for example `pnode-jit`'s fused
//! `JitErkStepper` (`pnodec` does this for `--backend jit`). The hook is a type parameter, not a
//! trait object or a cargo feature, so this crate stays free of Cranelift, the steps are
//! dispatched statically, and implicit methods (θ-methods, DIRKs) keep the runtime's steppers
//! whatever `E` is. A supplied stepper must implement the program's tableau: its
//! [`StepCost`](pnode_runtime::checkpoint::StepCost) is checked against the runtime's for that
//! tableau, and the rest is the caller's promise (the fused stepper equals `ErkStepper` to
//! round-off, bitwise on the shipped examples).

use pnode_ir::lower::Metric;
use pnode_ir::{Interpreter, vjp};
use pnode_runtime::adaptive::{
    AdaptiveCheckpointing, AdaptiveSolver, AdaptiveStats, EmbeddedDirk, EmbeddedErk,
    EmbeddedStepper,
};
use pnode_runtime::stepper::{AdjointStepper, ForwardStepper};
use pnode_runtime::{
    DirkStepper, ErkStepper, Gradient, Rhs, RhsJvp, RhsVjp, Solver, Stats, Tableau, ThetaStepper,
    TimeGrid,
};

use crate::error::{Error, Result};
use crate::setup::{Grid, MethodChoice, Setup};

/// The solver of one of the stepper families (`E`: the explicit stepper of fixed grids, `A`:
/// the embedded explicit pair of adaptive steps).
#[derive(Debug, Clone)]
enum AnySolver<E, A> {
    Erk(Solver<E>),
    Theta(Solver<ThetaStepper>),
    Dirk(Solver<DirkStepper>),
    AdaptiveErk(AdaptiveSolver<A>),
    AdaptiveDirk(Box<AdaptiveSolver<EmbeddedDirk>>),
}

macro_rules! dispatch {
    ($s:expr, $v:ident => $e:expr) => {
        match $s {
            AnySolver::Erk($v) => $e,
            AnySolver::Theta($v) => $e,
            AnySolver::Dirk($v) => $e,
            AnySolver::AdaptiveErk($v) => $e,
            AnySolver::AdaptiveDirk($v) => $e,
        }
    };
}

/// The solution at the output times.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// The output times `t_1 … t_K`.
    pub times: Vec<f64>,
    /// `K × n` row-major: row `k` is `u(t_k)`.
    pub states: Vec<f64>,
    /// State length `n`.
    pub state_len: usize,
    /// The solver's statistics of this solve.
    pub stats: Stats,
}

impl Trajectory {
    /// The trajectory as CSV: a header `t,NAME…` (names from [`Setup::state_names`]), then
    /// one row per output time, numbers in Rust's shortest round-trip form.
    pub fn to_csv(&self, names: &[String]) -> String {
        let mut s = String::from("t");
        for n in names {
            s.push(',');
            s.push_str(n);
        }
        s.push('\n');
        for (k, t) in self.times.iter().enumerate() {
            s.push_str(&t.to_string());
            for x in self.state(k).unwrap_or(&[]) {
                s.push(',');
                s.push_str(&x.to_string());
            }
            s.push('\n');
        }
        s
    }

    /// `u(t_k)`.
    pub fn state(&self, k: usize) -> Option<&[f64]> {
        self.states
            .get(k * self.state_len..(k + 1) * self.state_len)
    }
}

/// One loss function with its VJP, interpreted.
#[derive(Debug, Clone)]
struct Evaluator {
    f: Interpreter,
    df: Interpreter,
    out: Vec<f64>,
    grad: Vec<f64>,
}

impl Evaluator {
    fn new(f: &pnode_ir::Function, what: &str) -> Result<Self> {
        let df = vjp(f).map_err(|source| Error::Ir {
            what: format!("the derivative of {what}"),
            source: Box::new(source),
        })?;
        let l = f.layout();
        Ok(Evaluator {
            out: vec![0.0; f.output_len()],
            grad: vec![0.0; l.state + l.param],
            f: Interpreter::new(f),
            df: Interpreter::new(&df),
        })
    }
}

/// A [`Setup`] ready to run: the solver (its buffers allocated; the checkpoint store by the
/// first gradient, after a memory check) and the loss evaluators.
///
/// `E` is the stepper of explicit methods on a fixed grid (the runtime's [`ErkStepper`] unless
/// one is supplied with [`Run::with_explicit_stepper`]; see the
/// [module docs](self#the-explicit-stepper-hook)), `A` the embedded pair of explicit methods
/// with adaptive steps (the runtime's [`EmbeddedErk`] unless supplied with
/// [`Run::with_steppers`]).
#[derive(Debug, Clone)]
pub struct Run<E = ErkStepper, A = EmbeddedErk> {
    setup: Setup,
    solver: AnySolver<E, A>,
    fits: Vec<Evaluator>,
    expr: Option<Evaluator>,
    dl_du: Vec<f64>,
    dl_dp: Vec<f64>,
    /// Whether the checkpoint store was checked against the memory limit (before the first
    /// gradient allocates it).
    memory_checked: bool,
}

impl Run<ErkStepper> {
    /// Build the solver for `model` (whose sizes must be the program's), with the runtime's
    /// [`ErkStepper`] for an explicit method.
    pub fn new<M: Rhs + RhsJvp + RhsVjp>(setup: Setup, model: &M) -> Result<Run> {
        let (n, np) = (setup.program.state_len(), setup.program.param_len());
        Run::with_explicit_stepper(setup, model, |t| Ok(ErkStepper::new(t.clone(), n, np)))
    }
}

impl<E> Run<E> {
    /// Build the solver for `model` (whose sizes must be the program's); for an explicit
    /// method on a fixed grid the stepper is `make(tableau)` (called only then), for example a
    /// JIT-fused stepper of that tableau. Its step cost must be the runtime's for the tableau
    /// (else [`Error::Config`] on `method`); implicit methods use the runtime's steppers, and
    /// adaptive explicit steps the runtime's [`EmbeddedErk`].
    pub fn with_explicit_stepper<M, F>(setup: Setup, model: &M, make: F) -> Result<Run<E>>
    where
        M: Rhs + RhsJvp + RhsVjp,
        E: ForwardStepper<M>,
        F: FnOnce(&Tableau) -> Result<E>,
    {
        let (n, np) = (setup.program.state_len(), setup.program.param_len());
        Run::with_steppers(setup, model, make, |t| {
            Ok(EmbeddedErk::new(t.clone(), n, np)?)
        })
    }
}

impl<E, A> Run<E, A> {
    /// [`Run::with_explicit_stepper`], with the embedded pair of adaptive explicit steps
    /// `make_embedded(tableau)` (called only for them), for example a JIT-fused pair. It must
    /// compute what [`EmbeddedErk`] computes for the tableau; its step cost is checked like
    /// `make`'s.
    pub fn with_steppers<M, F, G>(
        setup: Setup,
        model: &M,
        make: F,
        make_embedded: G,
    ) -> Result<Run<E, A>>
    where
        M: Rhs + RhsJvp + RhsVjp,
        E: ForwardStepper<M>,
        A: EmbeddedStepper<M>,
        F: FnOnce(&Tableau) -> Result<E>,
        G: FnOnce(&Tableau) -> Result<A>,
    {
        let (n, np) = (setup.program.state_len(), setup.program.param_len());
        if model.state_len() != n || model.param_len() != np {
            return Err(Error::Config {
                option: "model",
                reason: format!(
                    "the model has {} states and {} parameters, the program {n} and {np}",
                    model.state_len(),
                    model.param_len()
                ),
            });
        }
        let (outs, ck) = (&setup.output_times, setup.checkpointing.clone());
        let grid = match &setup.grid {
            Grid::Fixed(g) => g.clone(),
            Grid::Adaptive { t0, options } => {
                let mode = AdaptiveCheckpointing::from_checkpointing(&ck, 8 * n as u64)?;
                let solver = match &setup.method {
                    MethodChoice::Explicit(t) => {
                        let stepper = make_embedded(t)?;
                        check_cost(t, model, &stepper, n, np)?;
                        AnySolver::AdaptiveErk(AdaptiveSolver::new(
                            stepper,
                            model,
                            *t0,
                            outs,
                            options.clone(),
                            mode,
                        )?)
                    }
                    MethodChoice::Dirk { tableau, newton } => {
                        let stepper = EmbeddedDirk::new(tableau.clone(), n, np, *newton)?;
                        AnySolver::AdaptiveDirk(Box::new(AdaptiveSolver::new(
                            stepper,
                            model,
                            *t0,
                            outs,
                            options.clone(),
                            mode,
                        )?))
                    }
                    MethodChoice::Theta { theta, .. } => {
                        return Err(Error::Config {
                            option: "method",
                            reason: format!(
                                "theta({theta}) has no error estimate for adaptive steps"
                            ),
                        });
                    }
                };
                return Run::finish(setup, solver);
            }
        };
        let solver = match &setup.method {
            MethodChoice::Explicit(t) => {
                let stepper = make(t)?;
                check_cost(t, model, &stepper, n, np)?;
                AnySolver::Erk(Solver::new(stepper, model, grid, outs, ck)?)
            }
            MethodChoice::Theta { theta, newton } => {
                let s = ThetaStepper::new(*theta, n, np, *newton)?;
                AnySolver::Theta(Solver::new(s, model, grid, outs, ck)?)
            }
            MethodChoice::Dirk { tableau, newton } => {
                let s = DirkStepper::new(tableau.clone(), n, np, *newton)?;
                AnySolver::Dirk(Solver::new(s, model, grid, outs, ck)?)
            }
        };
        Run::finish(setup, solver)
    }

    /// The loss evaluators, and the run.
    fn finish(setup: Setup, solver: AnySolver<E, A>) -> Result<Run<E, A>> {
        let (n, np) = (setup.program.state_len(), setup.program.param_len());
        let fits = setup
            .fits
            .iter()
            .enumerate()
            .map(|(j, f)| {
                Evaluator::new(&f.prediction, &format!("the prediction of fit {}", j + 1))
            })
            .collect::<Result<Vec<_>>>()?;
        let expr = match &setup.expr {
            Some(e) => Some(Evaluator::new(e, "the loss expression")?),
            None => None,
        };
        let k = setup.n_outputs();
        Ok(Run {
            solver,
            fits,
            expr,
            dl_du: vec![0.0; k * n],
            dl_dp: vec![0.0; np],
            memory_checked: false,
            setup,
        })
    }

    /// The setup.
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The explicit stepper of a fixed grid, `None` for an implicit method or adaptive steps.
    pub fn explicit_stepper(&self) -> Option<&E> {
        match &self.solver {
            AnySolver::Erk(s) => Some(s.stepper()),
            _ => None,
        }
    }

    /// The embedded pair of adaptive explicit steps, `None` otherwise.
    pub fn embedded_stepper(&self) -> Option<&A> {
        match &self.solver {
            AnySolver::AdaptiveErk(s) => Some(s.stepper()),
            _ => None,
        }
    }

    /// Replace the initial state `u0` (for example to differentiate with respect to it, or to
    /// continue from a later state).
    pub fn set_initial_state(&mut self, u0: &[f64]) -> Result<()> {
        let n = self.setup.program.state_len();
        if u0.len() != n {
            return Err(Error::Config {
                option: "u0",
                reason: format!("{} values for {n} states", u0.len()),
            });
        }
        self.setup.u0.copy_from_slice(u0);
        Ok(())
    }

    /// The solver's statistics of the last run (of adaptive steps: the sweep's, see
    /// [`Run::adaptive_stats`]).
    pub fn stats(&self) -> Stats {
        match &self.solver {
            AnySolver::Erk(s) => s.stats(),
            AnySolver::Theta(s) => s.stats(),
            AnySolver::Dirk(s) => s.stats(),
            AnySolver::AdaptiveErk(s) => s.stats().sweep,
            AnySolver::AdaptiveDirk(s) => s.stats().sweep,
        }
    }

    /// Accepted and rejected steps of the last adaptive run (`None` on a fixed grid).
    pub fn adaptive_stats(&self) -> Option<AdaptiveStats> {
        match &self.solver {
            AnySolver::AdaptiveErk(s) => Some(s.stats()),
            AnySolver::AdaptiveDirk(s) => Some(s.stats()),
            _ => None,
        }
    }

    /// The grid `t_0 < … < t_N` the last adaptive run accepted (`None` on a fixed grid): the
    /// gradient is the fixed-grid gradient on exactly these points.
    pub fn accepted_times(&self) -> Option<&[f64]> {
        match &self.solver {
            AnySolver::AdaptiveErk(s) => Some(s.accepted_times()),
            AnySolver::AdaptiveDirk(s) => Some(s.accepted_times()),
            _ => None,
        }
    }

    /// The states at the output times of the last forward sweep (of [`Run::solve`],
    /// [`Run::loss`] or [`Run::loss_and_grad`]), `K × n` row-major: row `k` is `u(t_k)`.
    pub fn outputs(&self) -> &[f64] {
        dispatch!(&self.solver, s => s.outputs())
    }

    /// Solve forward from the setup's `u0` with parameters `theta`.
    pub fn solve<M>(&mut self, model: &mut M, theta: &[f64]) -> Result<Trajectory>
    where
        M: Rhs + RhsJvp + RhsVjp,
        E: ForwardStepper<M>,
        A: EmbeddedStepper<M>,
    {
        let u0 = &self.setup.u0;
        let states = dispatch!(&mut self.solver, s => s.solve(model, u0, theta)?.to_vec());
        Ok(Trajectory {
            times: self.setup.output_times.clone(),
            states,
            state_len: self.setup.program.state_len(),
            stats: self.stats(),
        })
    }

    /// The loss at `theta` (a forward solve without checkpoints).
    pub fn loss<M>(&mut self, model: &mut M, theta: &[f64]) -> Result<f64>
    where
        M: Rhs + RhsJvp + RhsVjp,
        E: ForwardStepper<M>,
        A: EmbeddedStepper<M>,
    {
        self.require_loss("a loss value")?;
        let u0 = &self.setup.u0;
        dispatch!(&mut self.solver, s => { s.solve(model, u0, theta)?; });
        self.assemble(theta, None, false)
    }

    /// The loss and its gradient at `theta` over all output times; see the
    /// [module docs](self) for the formulas.
    pub fn loss_and_grad<M>(&mut self, model: &mut M, theta: &[f64]) -> Result<(f64, Gradient)>
    where
        M: Rhs + RhsJvp + RhsVjp,
        E: AdjointStepper<M>,
        A: EmbeddedStepper<M> + AdjointStepper<M>,
    {
        self.loss_and_grad_batch(model, theta, None)
    }

    /// The loss and gradient over the output times `batch` (indices, each at most once) only,
    /// or over all of them when `None`.
    pub fn loss_and_grad_batch<M>(
        &mut self,
        model: &mut M,
        theta: &[f64],
        batch: Option<&[usize]>,
    ) -> Result<(f64, Gradient)>
    where
        M: Rhs + RhsJvp + RhsVjp,
        E: AdjointStepper<M>,
        A: EmbeddedStepper<M> + AdjointStepper<M>,
    {
        self.require_loss("a gradient")?;
        if !self.memory_checked {
            self.check_checkpoint_memory(crate::memory::limit())?;
            self.memory_checked = true;
        }
        let u0 = &self.setup.u0;
        dispatch!(&mut self.solver, s => { s.forward(model, u0, theta)?; });
        let value = self.assemble(theta, batch, true)?;
        let dl_du = std::mem::take(&mut self.dl_du);
        let g = dispatch!(&mut self.solver, s => s.backward(model, &dl_du));
        self.dl_du = dl_du;
        let mut g = g?;
        for (d, e) in g.dp.iter_mut().zip(&self.dl_dp) {
            *d += e;
        }
        Ok((value, g))
    }

    /// Bytes the checkpoint store of a gradient takes (allocated by the first gradient; the
    /// schedule's predicted peak for store-all, solution-only and Revolve).
    ///
    /// Adaptive steps: an online budget's (RAM) slots; store-all and solution-only grow with
    /// the accepted steps, unknown before the run (0 here).
    pub fn checkpoint_bytes(&self) -> u64 {
        match &self.solver {
            AnySolver::Erk(s) => s.checkpoint_bytes(),
            AnySolver::Theta(s) => s.checkpoint_bytes(),
            AnySolver::Dirk(s) => s.checkpoint_bytes(),
            AnySolver::AdaptiveErk(_) | AnySolver::AdaptiveDirk(_) => {
                let bytes = 8 * self.setup.program.state_len() as u64;
                match AdaptiveCheckpointing::from_checkpointing(&self.setup.checkpointing, bytes) {
                    Ok(AdaptiveCheckpointing::Online { slots }) => (slots as u64) * bytes,
                    Ok(AdaptiveCheckpointing::TwoLevel { ram_slots, .. }) => {
                        (ram_slots as u64) * bytes
                    }
                    _ => 0,
                }
            }
        }
    }

    /// Check that the checkpoint store fits `limit` (`None`: nothing is checked), counting the
    /// grid's stored bytes and the outputs too when the limit was given (an available-memory figure already
    /// excludes them): [`Error::Memory`] naming `checkpoint` otherwise. The first gradient
    /// runs this with [`crate::memory::limit`].
    pub fn check_checkpoint_memory(&self, limit: Option<crate::memory::Limit>) -> Result<()> {
        use crate::memory::{Limit, MemoryUse, Preflight, output_bytes};
        let mut preflight = Preflight::new(limit);
        if let Some(Limit::Given(_)) = limit {
            // Adaptive steps: the accepted grid grows with the run (8 bytes a step).
            let grid_bytes = self.setup.grid.fixed().map_or(0, TimeGrid::stored_bytes);
            preflight.add(MemoryUse::Steps, grid_bytes)?;
            let n = self.setup.program.state_len() as u64;
            preflight.add(
                MemoryUse::Outputs,
                output_bytes(self.setup.n_outputs() as u64, n),
            )?;
        }
        preflight.add(MemoryUse::Checkpoint, self.checkpoint_bytes())
    }

    fn require_loss(&self, what: &'static str) -> Result<()> {
        if self.setup.program.loss.is_none() {
            return Err(Error::NoLoss {
                model: self.setup.program.name.clone(),
                what,
            });
        }
        Ok(())
    }

    /// The loss on the solver's outputs; with `grad`, also `∂L/∂u_k` into `self.dl_du` and
    /// the explicit `∂L/∂θ` into `self.dl_dp`.
    fn assemble(&mut self, theta: &[f64], batch: Option<&[usize]>, grad: bool) -> Result<f64> {
        let n = self.setup.program.state_len();
        let k_all = self.setup.n_outputs();
        let all: Vec<usize>;
        let ks: &[usize] = match batch {
            Some(b) => b,
            None => {
                all = (0..k_all).collect();
                &all
            }
        };
        if let Some(&bad) = ks.iter().find(|&&k| k >= k_all) {
            return Err(Error::Config {
                option: "batch_size",
                reason: format!("output index {bad} of a batch, but there are {k_all} outputs"),
            });
        }
        let kb = ks.len().max(1) as f64;
        let expr_scale = k_all as f64 / kb;
        self.dl_du.fill(0.0);
        self.dl_dp.fill(0.0);
        let outputs: &[f64] = dispatch!(&self.solver, s => s.outputs());
        let mut total = 0.0;
        for &k in ks {
            let t = self.setup.output_times[k];
            let u = &outputs[k * n..(k + 1) * n];
            for (j, (ev, fit)) in self.fits.iter_mut().zip(&self.setup.fits).enumerate() {
                let what = || format!("the prediction of fit {}", j + 1);
                ev.f.eval(t, u, theta, &[], &mut ev.out)
                    .map_err(|source| Error::Ir {
                        what: what(),
                        source: Box::new(source),
                    })?;
                let c = fit.weight / (kb * fit.size as f64);
                let d = &fit.data[k * fit.size..(k + 1) * fit.size];
                let mut term = 0.0;
                for (p, &di) in ev.out.iter_mut().zip(d) {
                    let r = *p - di;
                    let (m, dm) = match fit.metric {
                        Metric::Mse => (r * r, 2.0 * r),
                        Metric::Mae => (r.abs(), if r == 0.0 { 0.0 } else { r.signum() }),
                    };
                    term += m;
                    // The cotangent c·m'(r) replaces the prediction in `out`.
                    *p = c * dm;
                }
                let term = c * term;
                if !term.is_finite() {
                    return Err(Error::NonFiniteLoss {
                        value: term,
                        term: format!("fit {} ({})", j + 1, crate::setup::metric_name(fit.metric)),
                        t,
                    });
                }
                total += term;
                if grad {
                    ev.df
                        .eval(t, u, theta, &ev.out, &mut ev.grad)
                        .map_err(|source| Error::Ir {
                            what: format!("the derivative of {}", what()),
                            source: Box::new(source),
                        })?;
                    accumulate(
                        &ev.grad,
                        n,
                        &mut self.dl_du[k * n..(k + 1) * n],
                        &mut self.dl_dp,
                    );
                }
            }
            if let Some(ev) = &mut self.expr {
                let what = "the loss expression";
                ev.f.eval(t, u, theta, &[], &mut ev.out)
                    .map_err(|source| Error::Ir {
                        what: what.into(),
                        source: Box::new(source),
                    })?;
                let term = expr_scale * ev.out[0];
                if !term.is_finite() {
                    return Err(Error::NonFiniteLoss {
                        value: term,
                        term: "the non-fit terms".into(),
                        t,
                    });
                }
                total += term;
                if grad {
                    ev.df
                        .eval(t, u, theta, &[expr_scale], &mut ev.grad)
                        .map_err(|source| Error::Ir {
                            what: format!("the derivative of {what}"),
                            source: Box::new(source),
                        })?;
                    accumulate(
                        &ev.grad,
                        n,
                        &mut self.dl_du[k * n..(k + 1) * n],
                        &mut self.dl_dp,
                    );
                }
            }
        }
        Ok(total)
    }
}

/// A supplied explicit stepper must cost what the runtime's [`ErkStepper`] of its tableau
/// costs ([`Error::Config`] on `method` otherwise).
fn check_cost<M: Rhs + ?Sized, S: ForwardStepper<M>>(
    t: &Tableau,
    _model: &M,
    stepper: &S,
    n: usize,
    np: usize,
) -> Result<()> {
    let want = ForwardStepper::<M>::cost(&ErkStepper::new(t.clone(), n, np));
    let got = stepper.cost();
    if got != want {
        return Err(Error::Config {
            option: "method",
            reason: format!(
                "the supplied stepper's step cost {got:?} is not that of `{}` ({want:?})",
                t.name()
            ),
        });
    }
    Ok(())
}

/// `(gu, gp)` of one VJP evaluation added to `∂L/∂u_k` and the explicit `∂L/∂θ`.
fn accumulate(g: &[f64], n: usize, du: &mut [f64], dp: &mut [f64]) {
    for (a, b) in du.iter_mut().zip(&g[..n]) {
        *a += b;
    }
    for (a, b) in dp.iter_mut().zip(&g[n..]) {
        *a += b;
    }
}
