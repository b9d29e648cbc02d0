//! Implicit methods through the macros: a Crank–Nicolson model (GMRES stage solves) and an
//! ESDIRK3 model (dense stage solves) against `pnode-driver`'s `Run` on the same `.pode` text
//! through the reference interpreter (`IrModel`, the runtime's `ThetaStepper`/`DirkStepper`),
//! against central differences of the macro's own forward solve, and the compile-time plan
//! against the runtime (step counts and memory exact, evaluation counts not predicted).

use pnode::runtime::stepper::ForwardStepper;
use pnode::runtime::{Checkpointing, NewtonConfig};
use pnode_driver::{MethodChoice, Run, Setup};
use pnode_ir::lower::Program;
use pnode_ir::runtime::IrModel;

#[pnode::neural_ode(method = "crank_nicolson", steps = 40, t = (0.0, 4.0), outputs = [1.0, 2.0, 4.0], checkpoint = revolve(slots = 5), newton_tol = 1e-13, max_iters = 30, linear_solver = "gmres", krylov_tol = 1e-14)]
mod brusselator {
    state! { x = 1.5, y = 2.5 }
    param! { a = 1.0, b = 3.0 }
    fn rhs(t: f64, x: f64, y: f64) -> (f64, f64) {
        let x2y = x * x * y;
        (a + x2y - (b + 1.0) * x, b * x - x2y)
    }
}

const BRUSSELATOR: &str = "model brusselator\nstate x = 1.5\nstate y = 2.5\n\
    param a = 1.0\nparam b = 3.0\nlet x2y = x * x * y\n\
    d(x)/dt = a + x2y - (b + 1.0) * x\nd(y)/dt = b * x - x2y\n\
    solve { method = crank_nicolson, t = 0 .. 4, steps = 40, outputs = [1.0, 2.0, 4.0], \
    checkpoint = revolve(slots = 5), newton_tol = 1e-13, max_iters = 30, \
    linear_solver = gmres, krylov_tol = 1e-14 }\nloss = x ^ 2 + y ^ 2\n";

#[pnode::neural_ode(method = esdirk3, steps = 30, t = 0.0..1.5, outputs = linspace(0.0, 1.5, 4), checkpoint = solution_only, newton_tol = 1e-13, linear_solver = dense)]
mod van_der_pol {
    state! { x[2] = [2.0, 0.0] }
    param! { mu = 8.0 }
    fn rhs(t: f64, x: [f64; 2]) -> [f64; 2] {
        [x[1], mu * (1.0 - x[0].powi(2)) * x[1] - x[0]]
    }
}

const VAN_DER_POL: &str = "model van_der_pol\nstate x[2] = [2.0, 0.0]\nparam mu = 8.0\n\
    d(x)/dt = [x[1], mu * (1 - x[0] ^ 2) * x[1] - x[0]]\n\
    solve { method = esdirk3, t = 0 .. 1.5, steps = 30, outputs = linspace(0, 1.5, 4), \
    checkpoint = solution_only, newton_tol = 1e-13, linear_solver = dense }\n\
    loss = sum(x ^ 2)\n";

fn program(src: &str) -> Program {
    let lowered = pnode_ir::lower::compile_source(src);
    lowered
        .program
        .unwrap_or_else(|| panic!("{:?}", lowered.diagnostics))
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(1e-300_f64, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b)
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs() / scale))
}

/// `L = Σ_k |u(t_k)|²` (the DSL models' `loss`), writing `dL/du(t_k)`.
fn loss(out: &[f64], dl: &mut [f64]) -> f64 {
    for (d, o) in dl.iter_mut().zip(out) {
        *d = 2.0 * o;
    }
    out.iter().map(|o| o * o).sum()
}

/// `(agreement with the driver, finite-difference error)`, both relative to the largest
/// gradient component.
macro_rules! check_implicit {
    ($module:ident, $src:expr, $mode:expr) => {{
        use $module::Ode;
        let prog = program($src);
        let (n, np) = (prog.state_len(), prog.param_len());
        assert_eq!((Ode::STATE_LEN, Ode::PARAM_LEN), (n, np));
        assert!(Ode::IMPLICIT);

        // The driver resolves the same Newton configuration and schedule.
        let setup = Setup::new(&prog, std::path::Path::new("."), None).unwrap();
        let driver_newton: NewtonConfig = match &setup.method {
            MethodChoice::Theta { newton, .. } | MethodChoice::Dirk { newton, .. } => *newton,
            MethodChoice::Explicit(_) => panic!("explicit"),
        };
        assert_eq!(Ode::NEWTON, Some(driver_newton));
        assert_eq!(Ode::U0.to_vec(), setup.u0);
        let theta = setup.theta0.clone();
        let mut irm = IrModel::new(&prog.rhs).unwrap();
        let mut run = Run::new(setup, &irm).unwrap();
        let (l_drv, g_drv) = run.loss_and_grad(&mut irm, &theta).unwrap();

        let mut ode = Ode::new().unwrap();
        let u0 = Ode::U0.to_vec();
        let (l_mac, g_mac) = ode.value_and_grad(&u0, &theta, loss).unwrap();
        let gmax = g_mac
            .dp
            .iter()
            .chain(&g_mac.du0)
            .fold(0.0_f64, |m, x| m.max(x.abs()));
        let agree = ((l_mac - l_drv) / l_drv)
            .abs()
            .max(max_rel(&g_mac.dp, &g_drv.dp))
            .max(max_rel(&g_mac.du0, &g_drv.du0));
        assert!(agree <= 1e-12, "macro vs driver: {agree:e}");

        // The plan: the stepper's cost, the schedule the runtime would plan, and the
        // prediction exact in steps and memory (the evaluation counts are measured only).
        let stepper = ode.solver().stepper();
        assert_eq!(
            ForwardStepper::<$module::Model>::cost(stepper),
            Ode::STEP_COST
        );
        let bytes = 8 * n as u64;
        let planned = $mode.plan(Ode::N_STEPS, &Ode::STEP_COST, bytes).unwrap();
        assert_eq!(planned, Ode::schedule().unwrap());
        let (p, s) = (Ode::PREDICTED, ode.stats());
        assert_eq!(
            (p.forward_steps, p.recomputed_steps, p.reversed_steps),
            (s.forward_steps, s.recomputed_steps, s.reversed_steps)
        );
        assert_eq!(
            (p.peak_slots, p.peak_stored_vectors, p.peak_stored_bytes),
            (s.peak_slots, s.peak_stored_vectors, s.peak_stored_bytes)
        );
        assert_eq!((p.rhs_evals, p.newton_iterations), (0, 0));
        assert!(s.rhs_evals > 0 && s.newton_iterations >= s.forward_steps);
        assert_eq!(s, run.stats(), "the macro's sweeps = the driver's");

        // Central differences of the macro's forward solve in every u0 and θ component.
        let mut l_at = |u: &[f64], th: &[f64]| {
            let out = ode.forward(u, th).unwrap();
            out.iter().map(|o| o * o).sum::<f64>()
        };
        let mut fd_err = 0.0_f64;
        for (i, g) in g_mac.du0.iter().enumerate() {
            let h = 1e-6 * u0[i].abs().max(1.0);
            let (mut a, mut b) = (u0.clone(), u0.clone());
            a[i] += h;
            b[i] -= h;
            let fd = (l_at(&a, &theta) - l_at(&b, &theta)) / (2.0 * h);
            fd_err = fd_err.max((fd - g).abs() / gmax);
        }
        for (i, g) in g_mac.dp.iter().enumerate() {
            let h = 1e-6 * theta[i].abs().max(1.0);
            let (mut a, mut b) = (theta.clone(), theta.clone());
            a[i] += h;
            b[i] -= h;
            let fd = (l_at(&u0, &a) - l_at(&u0, &b)) / (2.0 * h);
            fd_err = fd_err.max((fd - g).abs() / gmax);
        }
        assert!(fd_err <= 1e-6, "finite differences: {fd_err:e}");
        (agree, fd_err)
    }};
}

#[test]
fn crank_nicolson_gmres_agrees() {
    let (agree, fd) = check_implicit!(
        brusselator,
        BRUSSELATOR,
        Checkpointing::Revolve { slots: 5 }
    );
    eprintln!(
        "brusselator (crank_nicolson, gmres): driver {agree:.1e}, finite differences {fd:.1e}"
    );
    assert_eq!(brusselator::Ode::METHOD, "crank_nicolson");
    assert_eq!(brusselator::Ode::STEP_COST.stage_vectors, 2);
    assert_eq!(brusselator::Ode::SCHEDULE_NAME, "revolve(5)");
}

#[test]
fn esdirk3_dense_agrees() {
    let (agree, fd) = check_implicit!(van_der_pol, VAN_DER_POL, Checkpointing::SolutionOnly);
    eprintln!("van_der_pol (esdirk3, dense): driver {agree:.1e}, finite differences {fd:.1e}");
    assert_eq!(van_der_pol::Ode::METHOD, "esdirk3");
    // ESDIRK3 has 4 stages: the stepper keeps u and the 4 stage inputs.
    assert_eq!(van_der_pol::Ode::STEP_COST.stage_vectors, 5);
    assert_eq!(van_der_pol::Ode::OUTPUT_TIMES, [0.0, 0.5, 1.0, 1.5]);
}
