//! A model that fails inside an evaluation stops the sweep at once with `Error::Model`: the
//! step, the time of that evaluation, the phase (forward, recomputation, reverse), which
//! evaluation (RHS, JVP, VJP) and the model's own cause — for the explicit stepper, θ-methods
//! and DIRKs, with dense and GMRES linear solves (and PETSc with the `petsc` feature).

use pnode_runtime::implicit::{GmresConfig, LinearSolver};
use pnode_runtime::model::{Eval, ModelError, Rhs, RhsJvp, RhsVjp};
use pnode_runtime::problems::LotkaVolterra;
use pnode_runtime::{
    Checkpointing, DirkStepper, DirkTableau, Error, NewtonConfig, Phase, Solver, Tableau,
    ThetaStepper, TimeGrid,
};

/// Lotka–Volterra whose evaluation number `at` (0-based, counted per kind) of kind `fail`
/// fails, naming the call.
struct Flaky {
    inner: LotkaVolterra,
    fail: Eval,
    at: usize,
    calls: [usize; 3],
}

impl Flaky {
    fn new(fail: Eval, at: usize) -> Self {
        Self {
            inner: LotkaVolterra::new(),
            fail,
            at,
            calls: [0; 3],
        }
    }

    fn count(&mut self, eval: Eval) -> Result<(), ModelError> {
        let k = eval as usize;
        let call = self.calls[k];
        self.calls[k] += 1;
        if eval == self.fail && call == self.at {
            return Err(ModelError::Backend {
                backend: "flaky",
                message: format!("{eval} call {call} failed"),
            });
        }
        Ok(())
    }
}

impl Rhs for Flaky {
    fn state_len(&self) -> usize {
        self.inner.state_len()
    }
    fn param_len(&self) -> usize {
        self.inner.param_len()
    }
    fn rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        self.inner.rhs(t, u, p, f)
    }
    fn try_rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) -> Result<(), ModelError> {
        self.count(Eval::Rhs)?;
        self.inner.rhs(t, u, p, f);
        Ok(())
    }
}

impl RhsJvp for Flaky {
    fn jvp(&mut self, t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        self.inner.jvp(t, u, p, v, out)
    }
    fn try_jvp(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        v: &[f64],
        out: &mut [f64],
    ) -> Result<(), ModelError> {
        self.count(Eval::Jvp)?;
        self.inner.jvp(t, u, p, v, out);
        Ok(())
    }
}

impl RhsVjp for Flaky {
    fn vjp(&mut self, t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        self.inner.vjp(t, u, p, w, gu, gp)
    }
    fn try_vjp(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        w: &[f64],
        gu: &mut [f64],
        gp: &mut [f64],
    ) -> Result<(), ModelError> {
        self.count(Eval::Vjp)?;
        self.inner.vjp(t, u, p, w, gu, gp);
        Ok(())
    }
}

/// 8 steps of 0.25 from 0 to 2: every stage time is exact in binary.
fn grid() -> TimeGrid {
    TimeGrid::uniform(0.0, 2.0, 8).unwrap()
}

/// The parts of a model error (panics on any other error).
fn parts(e: &Error) -> (usize, f64, Phase, Eval, String) {
    match e {
        Error::Model {
            step,
            t,
            phase,
            eval,
            cause,
        } => (*step, *t, *phase, *eval, cause.to_string()),
        other => panic!("expected a model error, got {other}"),
    }
}

/// `value_and_grad` of the sum of the final state with `model` under `mode`.
fn gradient<S>(solver: &mut Solver<S>, model: &mut Flaky) -> Result<(), Error>
where
    S: pnode_runtime::stepper::AdjointStepper<Flaky>,
{
    let u0 = [1.0, 0.5];
    let p = LotkaVolterra::default_params();
    solver
        .value_and_grad(model, &u0, &p, |_, g| {
            g.fill(1.0);
            0.0
        })
        .map(|_| ())
}

#[test]
fn an_rhs_failure_in_the_forward_sweep_names_step_time_and_cause() {
    // RK4 makes 4 RHS calls a step: call 13 is stage 2 (c = ½) of step 3, t = 0.75 + 0.125.
    let mut model = Flaky::new(Eval::Rhs, 13);
    let mut solver = Solver::explicit(
        Tableau::rk4(),
        &model,
        grid(),
        &[2.0],
        Checkpointing::StoreAll,
    )
    .unwrap();
    let e = solver
        .solve(&mut model, &[1.0, 0.5], &LotkaVolterra::default_params())
        .unwrap_err();
    assert_eq!(
        parts(&e),
        (
            3,
            0.875,
            Phase::Forward,
            Eval::Rhs,
            "flaky: RHS call 13 failed".into()
        )
    );
    assert_eq!(
        e.to_string(),
        "the model's RHS failed in step 3 at t = 0.875 (forward sweep): flaky: RHS call 13 failed"
    );
    // The sweep stopped there: no later evaluation was made.
    assert_eq!(model.calls, [14, 0, 0]);
}

#[test]
fn failures_in_the_reverse_sweep_name_their_phase() {
    // Solution-only checkpoints: the reverse sweep recomputes each step's stages but the last
    // one's (kept on the tape). The forward sweep makes 32 RHS calls; call 32 is the first
    // recomputation: step 6, stage 1 at t = 1.5.
    let mut model = Flaky::new(Eval::Rhs, 32);
    let mut solver = Solver::explicit(
        Tableau::rk4(),
        &model,
        grid(),
        &[2.0],
        Checkpointing::SolutionOnly,
    )
    .unwrap();
    let e = gradient(&mut solver, &mut model).unwrap_err();
    let (step, t, phase, eval, _) = parts(&e);
    assert_eq!(
        (step, t, phase, eval),
        (6, 1.5, Phase::Recompute, Eval::Rhs)
    );

    // Revolve with 2 slots advances from checkpoints during the reverse sweep: those steps
    // are recomputations too, though the stepper takes them as forward steps.
    let mut model = Flaky::new(Eval::Rhs, 32);
    let mut solver = Solver::explicit(
        Tableau::rk4(),
        &model,
        grid(),
        &[2.0],
        Checkpointing::Revolve { slots: 2 },
    )
    .unwrap();
    let e = gradient(&mut solver, &mut model).unwrap_err();
    let (step, t, phase, eval, cause) = parts(&e);
    assert_eq!((phase, eval), (Phase::Recompute, Eval::Rhs), "{e}");
    assert_eq!(cause, "flaky: RHS call 32 failed");
    assert!(step < 8 && t == 0.25 * step as f64, "{e}");

    // The first VJP is the last live stage of the last step: step 7 at t = 2.
    let mut model = Flaky::new(Eval::Vjp, 0);
    let mut solver = Solver::explicit(
        Tableau::rk4(),
        &model,
        grid(),
        &[2.0],
        Checkpointing::StoreAll,
    )
    .unwrap();
    let e = gradient(&mut solver, &mut model).unwrap_err();
    assert_eq!(
        parts(&e),
        (
            7,
            2.0,
            Phase::Reverse,
            Eval::Vjp,
            "flaky: VJP call 0 failed".into()
        )
    );
    assert!(e.to_string().contains("(reverse sweep)"), "{e}");
}

#[test]
fn implicit_steppers_stop_at_the_failing_evaluation() {
    let dense = NewtonConfig::default();
    let gmres = NewtonConfig {
        linear: LinearSolver::Gmres(GmresConfig::default()),
        ..NewtonConfig::default()
    };
    let mut configs = vec![dense, gmres];
    if cfg!(feature = "petsc") {
        // PETSc's callbacks keep the model's failure and return it instead of PETSc's error.
        configs.push(NewtonConfig {
            linear: LinearSolver::Petsc,
            ..NewtonConfig::default()
        });
    }
    for newton in configs {
        let what = format!("{:?}", newton.linear);
        // Crank–Nicolson: the first JVP belongs to the Newton solve of step 0 at t_1 = 0.25.
        let mut model = Flaky::new(Eval::Jvp, 0);
        let stepper = ThetaStepper::crank_nicolson(2, 4, newton).unwrap();
        let mut solver =
            Solver::new(stepper, &model, grid(), &[2.0], Checkpointing::StoreAll).unwrap();
        let e = gradient(&mut solver, &mut model).unwrap_err();
        assert_eq!(
            parts(&e),
            (
                0,
                0.25,
                Phase::Forward,
                Eval::Jvp,
                "flaky: JVP call 0 failed".into()
            ),
            "{what}"
        );
        // Its RHS at t_n: the first call of step 0, at t = 0.
        let mut model = Flaky::new(Eval::Rhs, 0);
        let stepper = ThetaStepper::crank_nicolson(2, 4, newton).unwrap();
        let mut solver =
            Solver::new(stepper, &model, grid(), &[2.0], Checkpointing::StoreAll).unwrap();
        let e = gradient(&mut solver, &mut model).unwrap_err();
        let (step, t, phase, eval, _) = parts(&e);
        assert_eq!(
            (step, t, phase, eval),
            (0, 0.0, Phase::Forward, Eval::Rhs),
            "{what}"
        );
        // The adjoint's first VJP: the transposed solve of the last step at t_8 = 2 (with
        // GMRES a VJP inside the Krylov iteration, densely the parameter term after it).
        let mut model = Flaky::new(Eval::Vjp, 0);
        let stepper = ThetaStepper::crank_nicolson(2, 4, newton).unwrap();
        let mut solver =
            Solver::new(stepper, &model, grid(), &[2.0], Checkpointing::StoreAll).unwrap();
        let e = gradient(&mut solver, &mut model).unwrap_err();
        assert_eq!(
            parts(&e),
            (
                7,
                2.0,
                Phase::Reverse,
                Eval::Vjp,
                "flaky: VJP call 0 failed".into()
            ),
            "{what}"
        );
        // ESDIRK3 recomputing from solution-only checkpoints: its adjoint evaluates no RHS, so
        // the first RHS call after the forward sweep recomputes step 6 (explicit first stage,
        // t = 1.5).
        let mut probe = Flaky::new(Eval::Rhs, usize::MAX);
        let stepper = DirkStepper::new(DirkTableau::esdirk3(), 2, 4, newton).unwrap();
        let mut solver =
            Solver::new(stepper, &probe, grid(), &[2.0], Checkpointing::SolutionOnly).unwrap();
        solver
            .forward(&mut probe, &[1.0, 0.5], &LotkaVolterra::default_params())
            .unwrap();
        let forward_rhs = probe.calls[Eval::Rhs as usize];
        let mut model = Flaky::new(Eval::Rhs, forward_rhs);
        let e = gradient(&mut solver, &mut model).unwrap_err();
        let (step, t, phase, eval, _) = parts(&e);
        assert_eq!(
            (step, t, phase, eval),
            (6, 1.5, Phase::Recompute, Eval::Rhs),
            "{what}"
        );
    }
}
