//! Macro-generated models against the same models written as `.pode` text, run by the
//! reference interpreter (`IrModel`) and the Cranelift JIT (`JitModel`, `JitErkStepper`):
//! RHS, JVP and VJP at a random point, whole gradients through the compile-time schedule, and
//! the gradients against central differences; the compile-time plan against the runtime
//! (`PREDICTED` = the executor's statistics, `STEP_COST` = the stepper's cost, `U0`/`THETA0` =
//! `pnodec`'s draws through `pnode-driver`).

use pnode::runtime::model::{RhsJvp, RhsVjp};
use pnode::runtime::stepper::ForwardStepper;
use pnode::runtime::{Checkpointing, ErkStepper, Solver, Tableau};
use pnode_ir::lower::Program;
use pnode_ir::runtime::IrModel;
use pnode_jit::{JitErkStepper, JitModel};

#[pnode::neural_ode(method = "rk4", steps = 200, t = (0.0, 5.0), outputs = [1.0, 2.5, 5.0], checkpoint = revolve(slots = 6))]
mod lotka_volterra {
    state! { x = 1.0, y = 1.0 }
    param! { alpha = 1.5, beta = 1.0, delta = 3.0, gamma = 1.0 }
    fn rhs(t: f64, x: f64, y: f64) -> (f64, f64) {
        let xy = x * y;
        (alpha * x - beta * xy, delta * xy - gamma * y)
    }
}

const LOTKA_VOLTERRA: &str = "model lotka_volterra\nstate x = 1.0\nstate y = 1.0\n\
    param alpha = 1.5\nparam beta = 1.0\nparam delta = 3.0\nparam gamma = 1.0\n\
    let xy = x * y\nd(x)/dt = alpha * x - beta * xy\nd(y)/dt = delta * xy - gamma * y\n\
    solve { method = rk4, t = 0 .. 5, steps = 200, outputs = [1.0, 2.5, 5.0], \
    checkpoint = revolve(slots = 6) }\n";

#[pnode::neural_ode(method = dopri5, steps = 150, t = 0.0..3.0, outputs = linspace(0.0, 3.0, 7), checkpoint = solution_only)]
mod van_der_pol {
    state! { x[2] = [2.0, 0.0] }
    param! { mu = 1.0 }
    fn rhs(t: f64, x: [f64; 2]) -> [f64; 2] {
        [x[1], mu * (1.0 - x[0].powi(2)) * x[1] - x[0]]
    }
}

const VAN_DER_POL: &str = "model van_der_pol\nstate x[2] = [2.0, 0.0]\nparam mu = 1.0\n\
    d(x)/dt = [x[1], mu * (1 - x[0] ^ 2) * x[1] - x[0]]\n\
    solve { method = dopri5, t = 0 .. 3, steps = 150, outputs = linspace(0, 3, 7), \
    checkpoint = solution_only }\n";

#[pnode::neural_ode(method = "rk4", steps = 40, t = (0.0, 1.0), outputs = [0.5, 1.0], checkpoint = budget(vectors = 30))]
mod mlp {
    state! { u[4, 2] = [[1.0, 0.0], [0.0, 1.0], [0.5, -0.5], [-1.0, 0.25]] }
    layer! { net = mlp([2, 8, 8, 2], activation = tanh) }
    fn rhs(t: f64, u: f64) -> f64 {
        net(u.powi(3))
    }
}

const MLP: &str = "model mlp\nstate u[4, 2] = [[1.0, 0.0], [0.0, 1.0], [0.5, -0.5], [-1.0, 0.25]]\n\
    layer net = mlp([2, 8, 8, 2], activation = tanh)\nd(u)/dt = net(u ^ 3)\n\
    solve { method = rk4, t = 0 .. 1, steps = 40, outputs = [0.5, 1.0], \
    checkpoint = budget(vectors = 30) }\n";

#[pnode::neural_ode(method = midpoint, steps = 64, t = (0.0, 2.0), checkpoint = "all")]
mod forced {
    state! { x = 0.5 }
    param! { k = 0.7, a = 0.3 }
    fn rhs(t: f64, x: f64) -> f64 {
        -k * x + a * t.sin() * x.tanh().exp()
    }
}

const FORCED: &str = "model forced\nstate x = 0.5\nparam k = 0.7\nparam a = 0.3\n\
    d(x)/dt = -k * x + a * sin(t) * exp(tanh(x))\n\
    solve { method = midpoint, t = 0 .. 2, steps = 64 }\n";

fn program(src: &str) -> Program {
    let lowered = pnode_ir::lower::compile_source(src);
    lowered
        .program
        .unwrap_or_else(|| panic!("{:?}", lowered.diagnostics))
}

/// A deterministic point in [-1, 1) (xorshift).
fn point(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(1e-300_f64, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b)
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs() / scale))
}

/// RHS, JVP and VJP of three implementations at one point: `(f, Jv, Jᵀw in u, in θ)`.
fn kernels<M: RhsVjp + RhsJvp>(m: &mut M, n: usize, np: usize) -> [Vec<f64>; 4] {
    let (u, p, v, w) = (point(n, 1), point(np, 2), point(n, 3), point(n, 4));
    let (mut f, mut jv, mut gu, mut gp) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; np]);
    m.rhs(0.3, &u, &p, &mut f);
    m.jvp(0.3, &u, &p, &v, &mut jv);
    m.vjp(0.3, &u, &p, &w, &mut gu, &mut gp);
    [f, jv, gu, gp]
}

macro_rules! check_model {
    ($module:ident, $src:expr) => {{
        use $module::Ode;
        let prog = program($src);
        let (n, np) = (prog.state_len(), prog.param_len());
        assert_eq!((Ode::STATE_LEN, Ode::PARAM_LEN), (n, np));
        let names: Vec<(&str, usize, usize)> = prog
            .params
            .iter()
            .map(|p| (p.name.as_str(), p.offset, p.shape.len()))
            .collect();
        assert_eq!(Ode::PARAMS, names.as_slice());

        // Kernels: macro vs interpreter vs JIT.
        let mac = kernels(&mut $module::Model::new(), n, np);
        let ir = kernels(&mut IrModel::new(&prog.rhs).unwrap(), n, np);
        let jit = kernels(&mut JitModel::new(&prog.rhs).unwrap(), n, np);
        for k in 0..4 {
            assert!(
                max_rel(&mac[k], &ir[k]) <= 1e-12,
                "kernel {k}: {:?} vs {:?}",
                mac[k],
                ir[k]
            );
            assert!(
                max_rel(&mac[k], &jit[k]) <= 1e-12,
                "kernel {k}: {:?} vs {:?}",
                mac[k],
                jit[k]
            );
        }

        // Whole gradients of L = Σ_k |u(t_k)|² through the compile-time schedule.
        let u0 = Ode::U0.to_vec();
        let theta: Vec<f64> = Ode::THETA0.iter().map(|x| x * 1.01).collect();
        let loss = |out: &[f64], dl: &mut [f64]| {
            for (d, o) in dl.iter_mut().zip(out) {
                *d = 2.0 * o;
            }
            out.iter().map(|o| o * o).sum::<f64>()
        };
        let mut ode = Ode::new().unwrap();
        let (l_mac, g_mac) = ode.value_and_grad(&u0, &theta, loss).unwrap();
        assert_eq!(
            ode.stats(),
            Ode::PREDICTED,
            "executor statistics = compile-time prediction"
        );
        let stepper = $module::Stepper::new(n, np);
        assert_eq!(
            ForwardStepper::<$module::Model>::cost(&stepper),
            Ode::STEP_COST
        );
        let custom = || Checkpointing::Custom(Ode::schedule().unwrap());
        let tableau = Tableau::by_name(Ode::METHOD).unwrap();
        let mut irm = IrModel::new(&prog.rhs).unwrap();
        let mut s = Solver::new(
            ErkStepper::new(tableau.clone(), n, np),
            &irm,
            Ode::grid().unwrap(),
            &Ode::OUTPUT_TIMES,
            custom(),
        )
        .unwrap();
        let (l_ir, g_ir) = s.value_and_grad(&mut irm, &u0, &theta, loss).unwrap();
        let mut jm = JitModel::new(&prog.rhs).unwrap();
        let fused = JitErkStepper::new(tableau, &prog.rhs).unwrap();
        let mut s = Solver::new(
            fused,
            &jm,
            Ode::grid().unwrap(),
            &Ode::OUTPUT_TIMES,
            custom(),
        )
        .unwrap();
        let (l_jit, g_jit) = s.value_and_grad(&mut jm, &u0, &theta, loss).unwrap();
        assert!(((l_mac - l_ir) / l_ir).abs() <= 1e-12 && ((l_mac - l_jit) / l_jit).abs() <= 1e-12);
        for (other, what) in [(&g_ir, "interpreter"), (&g_jit, "jit")] {
            assert!(max_rel(&g_mac.dp, &other.dp) <= 1e-12, "dL/dθ vs {what}");
            assert!(max_rel(&g_mac.du0, &other.du0) <= 1e-12, "dL/du0 vs {what}");
        }

        // Central differences of the macro's own forward solve, every u0 component and up to
        // 12 spread θ components, relative to the largest gradient component.
        let mut l_at = |u: &[f64], th: &[f64]| {
            let out = ode.forward(u, th).unwrap();
            out.iter().map(|o| o * o).sum::<f64>()
        };
        let gmax = g_mac
            .dp
            .iter()
            .chain(&g_mac.du0)
            .fold(0.0_f64, |m, x| m.max(x.abs()));
        let mut worst = 0.0_f64;
        for i in 0..n {
            let h = 1e-6 * u0[i].abs().max(1.0);
            let (mut a, mut b) = (u0.clone(), u0.clone());
            a[i] += h;
            b[i] -= h;
            let fd = (l_at(&a, &theta) - l_at(&b, &theta)) / (2.0 * h);
            worst = worst.max((fd - g_mac.du0[i]).abs() / gmax);
        }
        let stride = np.div_ceil(12).max(1);
        for i in (0..np).step_by(stride) {
            let h = 1e-6 * theta[i].abs().max(1.0);
            let (mut a, mut b) = (theta.clone(), theta.clone());
            a[i] += h;
            b[i] -= h;
            let fd = (l_at(&u0, &a) - l_at(&u0, &b)) / (2.0 * h);
            worst = worst.max((fd - g_mac.dp[i]).abs() / gmax);
        }
        assert!(worst <= 1e-6, "finite differences: {worst:e}");
        (prog, mac, ir, g_mac, worst)
    }};
}

#[test]
fn lotka_volterra_agrees() {
    let (_, mac, ir, _, fd) = check_model!(lotka_volterra, LOTKA_VOLTERRA);
    assert_eq!(mac, ir, "bitwise, as pnode-codegen promises");
    eprintln!("lotka_volterra: finite differences {fd:.1e}");
    assert_eq!(lotka_volterra::Ode::SCHEDULE_NAME, "revolve(6)");
}

#[test]
fn van_der_pol_agrees() {
    let (_, mac, ir, _, fd) = check_model!(van_der_pol, VAN_DER_POL);
    assert_eq!(mac, ir);
    eprintln!("van_der_pol: finite differences {fd:.1e}");
    assert_eq!(van_der_pol::Ode::OUTPUT_TIMES.len(), 7);
    // Output times 0.5, 1.0, … lie on the 150-step grid of 0.02: nothing was inserted.
    assert_eq!(van_der_pol::Ode::N_STEPS, 150);
}

#[test]
fn mlp_agrees() {
    let (prog, mac, ir, _, fd) = check_model!(mlp, MLP);
    assert_eq!(mac, ir);
    eprintln!("mlp: finite differences {fd:.1e}");
    // The layer weights were drawn at compile time exactly as pnodec draws them.
    let setup = pnode_driver::Setup::new(&prog, std::path::Path::new("."), None).unwrap();
    assert_eq!(mlp::Ode::THETA0.to_vec(), setup.theta0);
    assert_eq!(mlp::Ode::U0.to_vec(), setup.u0);
    assert_eq!(mlp::Ode::PARAM_LEN, 8 * 2 + 8 + 8 * 8 + 8 + 2 * 8 + 2);
}

#[test]
fn time_dependent_model_agrees() {
    let (_, mac, ir, _, fd) = check_model!(forced, FORCED);
    assert_eq!(mac, ir);
    eprintln!("forced: finite differences {fd:.1e}");
    assert_eq!(forced::Ode::OUTPUT_TIMES, [2.0]);
}

#[test]
fn the_schedule_is_the_runtime_plan() {
    // The compile-time schedule equals what the runtime plans for the same mode and cost.
    let cost = lotka_volterra::Ode::STEP_COST;
    let planned = Checkpointing::Revolve { slots: 6 }
        .plan(lotka_volterra::Ode::N_STEPS, &cost, 16)
        .unwrap();
    assert_eq!(planned, lotka_volterra::Ode::schedule().unwrap());
    assert_eq!(
        lotka_volterra::Ode::SCHEDULE_SUMMARY,
        planned.summary(&cost, 16).unwrap()
    );
    assert_eq!(
        lotka_volterra::Ode::PREDICTED,
        planned.predict(&cost, 16).unwrap()
    );
}

#[test]
fn training_reduces_the_loss() {
    use lotka_volterra::Ode;
    use pnode::runtime::optim::{Adam, AdamConfig};
    let mut ode = Ode::new().unwrap();
    let data = ode.forward(&Ode::U0, &Ode::THETA0).unwrap().to_vec();
    let mut theta: Vec<f64> = Ode::THETA0.iter().map(|x| x * 1.1).collect();
    let mut adam = Adam::new(AdamConfig {
        lr: 0.01,
        ..AdamConfig::default()
    })
    .unwrap();
    let losses = ode
        .train(&Ode::U0, &mut theta, &mut adam, 100, |out, dl| {
            let mut l = 0.0;
            for ((d, o), y) in dl.iter_mut().zip(out).zip(&data) {
                *d = 2.0 * (o - y);
                l += (o - y) * (o - y);
            }
            l
        })
        .unwrap();
    assert_eq!(losses.len(), 100);
    assert!(
        losses[99] < 0.05 * losses[0],
        "{} -> {}",
        losses[0],
        losses[99]
    );
}
