//! Macro-generated models against the same models written as `.pode` text, run by the
//! reference interpreter (`IrModel`) and the Cranelift JIT (`JitModel`, `JitErkStepper`):
//! RHS, JVP and VJP at a random point, whole gradients through the compile-time schedule, and
//! the gradients against central differences; the compile-time plan against the runtime
//! (`PREDICTED` = the executor's statistics, `STEP_COST` = the stepper's cost, `U0`/`THETA0` =
//! `pnodec`'s draws through `pnode-driver`). Adaptive steps ([`adaptive`]): the options, the
//! accepted grid and the gradient bit for bit, and the online checkpointing within its bound.

use pnode::runtime::model::{RhsJvp, RhsVjp};
use pnode::runtime::stepper::ForwardStepper;
use pnode::runtime::{Checkpointing, ErkStepper, Solver, Tableau};
use pnode_ir::lower::Program;
use pnode_ir::runtime::IrModel;
use pnode_jit::{JitErkStepper, JitModel};

#[path = "agree/adaptive.rs"]
mod adaptive;

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

/// `src` lowered as `pnodec` lowers it, data paths relative to this crate.
fn program(src: &str) -> Program {
    program_in(src, &manifest_path("."))
}

fn program_in(src: &str, dir: &std::path::Path) -> Program {
    let lowered = pnode_driver::compile_source(src, dir);
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

// ---- every example and corpus model: macro = pnodec's setup = the driver, bitwise ---------

/// A gradient as bits: `(L, dL/du0, dL/dθ)`.
type Bits = (u64, Vec<u64>, Vec<u64>);

fn bits(l: f64, du0: &[f64], dp: &[f64]) -> Bits {
    let b = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect();
    (l.to_bits(), b(du0), b(dp))
}

/// The loss of the file-model checks on `n` states: `L = Σ_k (1 + k) u_{n−1}(t_k)²`, the last
/// state component at every output time (the corpus Robertson's own loss is `y₃²`: a cotangent
/// on its fast species stalls GMRES on the transposed stage systems, in all three alike).
fn file_loss(n: usize) -> impl Fn(&[f64], &mut [f64]) -> f64 + Copy {
    move |out: &[f64], dl: &mut [f64]| {
        let mut l = 0.0;
        for (i, (d, o)) in dl.iter_mut().zip(out).enumerate() {
            let c = if i % n == n - 1 {
                (1 + i / n) as f64
            } else {
                0.0
            };
            *d = 2.0 * c * o;
            l += c * o * o;
        }
        l
    }
}

/// A grid's step sizes `h_0 … h_{N−1}`.
fn steps(grid: &pnode::runtime::TimeGrid) -> Vec<f64> {
    grid.step_sizes().collect()
}

/// What a `model!` expansion fixed at compile time, and its gradient at `(u0, θ)`.
struct MacroSide {
    grid_times: &'static [f64],
    grid: pnode::runtime::TimeGrid,
    output_times: &'static [f64],
    u0: &'static [f64],
    theta0: &'static [f64],
    cost: pnode::runtime::checkpoint::StepCost,
    n_steps: usize,
    /// The gradient, or the solver's error (as `Debug`) for the models that blow up.
    gradient: Result<Bits, String>,
}

/// `θ` of the gradient checks: θ0 itself (the point every model's own tests solve at;
/// scaled rates already stall Newton on the corpus Robertson).
fn check_theta(theta0: &[f64]) -> Vec<f64> {
    theta0.to_vec()
}

/// The gradient of [`file_loss`] through the runtime solver with `stepper` over `model`, on the
/// resolved grid and checkpointing.
fn solver_gradient<M, S>(
    stepper: S,
    model: &mut M,
    r: &pnode_driver::Resolved,
    u0: &[f64],
    theta: &[f64],
) -> Result<Bits, String>
where
    M: RhsVjp,
    S: ForwardStepper<M> + pnode::runtime::stepper::AdjointStepper<M>,
{
    let mut s = Solver::new(
        stepper,
        model,
        r.grid.fixed().unwrap().clone(),
        &r.output_times,
        r.checkpointing.clone(),
    )
    .unwrap();
    s.value_and_grad(model, u0, theta, file_loss(u0.len()))
        .map(|(l, g)| bits(l, &g.du0, &g.dp))
        .map_err(|e| format!("{e:?}"))
}

/// The driver's gradient (runtime steppers over `IrModel`) and `pnodec`'s (the JIT's model
/// with its fused stepper for explicit methods, the runtime's implicit steppers over it).
fn driver_gradients(
    program: &Program,
    r: &pnode_driver::Resolved,
) -> (Result<Bits, String>, Result<Bits, String>) {
    use pnode::runtime::{DirkStepper, ThetaStepper};
    use pnode_driver::MethodChoice;
    let (n, np) = (program.state_len(), program.param_len());
    let (u0, theta) = (r.u0.clone(), check_theta(&r.theta0));
    let mut ir = IrModel::new(&program.rhs).unwrap();
    let mut jit = JitModel::new(&program.rhs).unwrap();
    match &r.method {
        MethodChoice::Explicit(t) => (
            solver_gradient(ErkStepper::new(t.clone(), n, np), &mut ir, r, &u0, &theta),
            solver_gradient(
                JitErkStepper::new(t.clone(), &program.rhs).unwrap(),
                &mut jit,
                r,
                &u0,
                &theta,
            ),
        ),
        MethodChoice::Theta { theta: th, newton } => (
            solver_gradient(
                ThetaStepper::new(*th, n, np, *newton).unwrap(),
                &mut ir,
                r,
                &u0,
                &theta,
            ),
            solver_gradient(
                ThetaStepper::new(*th, n, np, *newton).unwrap(),
                &mut jit,
                r,
                &u0,
                &theta,
            ),
        ),
        MethodChoice::Dirk { tableau, newton } => (
            solver_gradient(
                DirkStepper::new(tableau.clone(), n, np, *newton).unwrap(),
                &mut ir,
                r,
                &u0,
                &theta,
            ),
            solver_gradient(
                DirkStepper::new(tableau.clone(), n, np, *newton).unwrap(),
                &mut jit,
                r,
                &u0,
                &theta,
            ),
        ),
    }
}

fn manifest_path(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn file_program(rel: &str) -> Program {
    let path = manifest_path(rel);
    program_in(
        &std::fs::read_to_string(&path).unwrap(),
        path.parent().unwrap(),
    )
}

/// Checks one macro-compiled file model against the driver's resolution and gradients;
/// whether the gradient is finite (a model that blows up fails alike in all three).
fn agree_with_driver(rel: &str, mac: MacroSide) -> bool {
    let prog = file_program(rel);
    let file = manifest_path(rel);
    let dir = file.parent().unwrap();
    let r = pnode_driver::resolve(&prog, &pnode_driver::FsData::new(dir), None).unwrap();
    // pnodec's `Setup::new` (which also reads the loss data) resolves the same, where the
    // loss's files exist.
    if let Ok(setup) = pnode_driver::Setup::new(&prog, dir, None) {
        assert_eq!(setup.grid, r.grid, "{rel}: Setup's grid");
        assert_eq!(setup.u0, r.u0, "{rel}: Setup's u0");
        assert_eq!(setup.theta0, r.theta0, "{rel}: Setup's θ0");
    }
    let b = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        b(mac.grid_times),
        b(&r.grid.fixed().unwrap().to_times()),
        "{rel}: grid points"
    );
    assert_eq!(
        b(&steps(&mac.grid)),
        b(&steps(r.grid.fixed().unwrap())),
        "{rel}: step sizes"
    );
    assert_eq!(mac.n_steps, r.grid.n_steps().unwrap(), "{rel}: steps");
    assert_eq!(
        b(mac.output_times),
        b(&r.output_times),
        "{rel}: output times"
    );
    assert_eq!(b(mac.u0), b(&r.u0), "{rel}: u0");
    assert_eq!(b(mac.theta0), b(&r.theta0), "{rel}: θ0");
    assert_eq!(mac.cost, r.cost, "{rel}: step cost");
    let (driver, jit) = driver_gradients(&prog, &r);
    if let Ok(d) = &driver {
        assert!(d.1.len() == prog.state_len() && d.2.len() == prog.param_len());
    }
    assert_eq!(
        mac.gradient, driver,
        "{rel}: macro vs driver (IrModel) gradient bits"
    );
    assert_eq!(jit, driver, "{rel}: pnodec (JIT) vs driver gradient bits");
    if let Err(e) = &driver {
        eprintln!("  {rel}: {e}");
    }
    driver.is_ok()
}

macro_rules! file_models {
    ($($m:ident: $path:literal => $name:ident,)* ; adaptive: $($am:ident: $apath:literal => $aname:ident,)*) => {
        $(
            #[allow(deprecated)]
            mod $m {
                pnode::model!($path);
            }
        )*
        $(
            mod $am {
                pnode::model!($apath);
            }
        )*
        /// Every file the macro compiles, with its check.
        const COMPILED: &[(&str, fn() -> bool)] = &[$(($path, || {
            use $m::$name::Ode;
            let theta = check_theta(&Ode::THETA0);
            let mut ode = Ode::new().unwrap();
            let gradient = ode
                .value_and_grad(&Ode::U0, &theta, file_loss(Ode::STATE_LEN))
                .map(|(l, g)| bits(l, &g.du0, &g.dp))
                .map_err(|e| format!("{e:?}"));
            agree_with_driver($path, MacroSide {
                grid_times: &Ode::GRID_TIMES,
                grid: Ode::grid().unwrap(),
                output_times: &Ode::OUTPUT_TIMES,
                u0: &Ode::U0,
                theta0: &Ode::THETA0,
                cost: Ode::STEP_COST,
                n_steps: Ode::N_STEPS,
                gradient,
            })
        })),* $(, ($apath, || {
            use $am::$aname::Ode;
            let theta = check_theta(&Ode::THETA0);
            let mut ode = Ode::new().unwrap();
            let (l, g) = ode
                .value_and_grad(&Ode::U0, &theta, file_loss(Ode::STATE_LEN))
                .unwrap();
            let prog = file_program($apath);
            let file = manifest_path($apath);
            let steps = adaptive::agree_adaptive(&prog, file.parent().unwrap(), $apath,
                adaptive::AdaptiveSide {
                    output_times: &Ode::OUTPUT_TIMES,
                    u0: &Ode::U0,
                    theta0: &Ode::THETA0,
                    cost: Ode::STEP_COST,
                    t0: Ode::T0,
                    options: Ode::options(),
                    checkpointing: Ode::CHECKPOINTING,
                    accepted: ode.accepted_times().to_vec(),
                    gradient: bits(l, &g.du0, &g.dp),
                });
            let n = steps as u64;
            let stats = ode.stats();
            assert!(stats.recomputed_steps <= Ode::PREDICTED.recomputed_steps(n));
            assert!(Ode::PREDICTED.slots.is_none_or(|c| stats.peak_slots <= c as u64));
            // The bound's text is `pnodec emit --schedule`'s (one source).
            let r = pnode_driver::resolve(&prog, &pnode_driver::FsData::new(file.parent().unwrap()), None)
                .unwrap();
            let summary = pnode_driver::summary::adaptive_schedule(
                &prog, &r, r.grid.adaptive().unwrap()).unwrap();
            assert_eq!(Ode::SCHEDULE_SUMMARY, summary);
            true
        }))*];
    };
}

file_models! {
    ex_hybrid: "../examples/hybrid/hybrid.pode" => hybrid,
    ex_hybrid_truth: "../examples/hybrid/truth.pode" => hybrid_truth,
    ex_lotka_volterra: "../examples/lotka_volterra/lotka_volterra.pode" => lotka_volterra,
    ex_lotka_volterra_truth: "../examples/lotka_volterra/truth.pode" => lotka_volterra_truth,
    ex_robertson: "../examples/robertson/robertson.pode" => robertson,
    ex_robertson_truth: "../examples/robertson/truth.pode" => robertson_truth,
    ex_spiral: "../examples/spiral/spiral.pode" => spiral,
    ex_spiral_truth: "../examples/spiral/truth.pode" => spiral_truth,
    c_batched_mlp: "../tests/corpus/ok/batched_mlp.pode" => batched_mlp,
    c_comments: "../tests/corpus/ok/comments.pode" => comments,
    c_const_dims: "../tests/corpus/ok/const_dims.pode" => const_dims,
    c_data_bindings: "../tests/corpus/ok/data_bindings.pode" => data_bindings,
    c_elementwise: "../tests/corpus/ok/elementwise.pode" => elementwise,
    c_esdirk3: "../tests/corpus/ok/esdirk3.pode" => esdirk3,
    c_forced_oscillator: "../tests/corpus/ok/forced_oscillator.pode" => forced_oscillator,
    c_hybrid_physics: "../tests/corpus/ok/hybrid_physics.pode" => hybrid,
    c_indexing: "../tests/corpus/ok/indexing.pode" => indexing,
    c_initializers: "../tests/corpus/ok/initializers.pode" => initializers,
    c_layers: "../tests/corpus/ok/layers.pode" => layers,
    c_linear_system: "../tests/corpus/ok/linear_system.pode" => linear_system,
    c_literals: "../tests/corpus/ok/literals.pode" => literals,
    c_lotka_volterra: "../tests/corpus/ok/lotka_volterra.pode" => lotka_volterra,
    c_minimal: "../tests/corpus/ok/minimal.pode" => minimal,
    c_multiline: "../tests/corpus/ok/multiline.pode" => multiline,
    c_no_solve: "../tests/corpus/ok/no_solve.pode" => no_solve,
    c_pinwheel: "../tests/corpus/ok/pinwheel.pode" => pinwheel,
    c_precedence: "../tests/corpus/ok/precedence.pode" => precedence,
    c_robertson: "../tests/corpus/ok/robertson.pode" => robertson,
    c_several_states: "../tests/corpus/ok/several_states.pode" => several_states,
    c_sizes: "../tests/corpus/ok/sizes.pode" => sizes,
    c_spiral_mlp: "../tests/corpus/ok/spiral_mlp.pode" => spiral,
    c_sum_axis: "../tests/corpus/ok/sum_axis.pode" => sum_axis,
    c_trbdf2: "../tests/corpus/ok/trbdf2.pode" => trbdf2,
    c_user_tableau: "../tests/corpus/ok/user_tableau.pode" => user_tableau,
    c_van_der_pol: "../tests/corpus/ok/van_der_pol.pode" => van_der_pol,
    ;
    adaptive:
    ex_spiral_adaptive: "../examples/spiral/spiral_adaptive.pode" => spiral_adaptive,
}

/// The files the macro cannot take, each with the words its compile error must contain.
const REFUSED: &[(&str, &str)] = &[
    // conv2d / group norm: pnode-codegen has no Rust for them (`Error::Unsupported`).
    (
        "../tests/corpus/ok/conv_block.pode",
        "code generation does not support",
    ),
    (
        "../tests/corpus/ok/odenet_image.pode",
        "code generation does not support",
    ),
    // `linear_solver = petsc`: the facade's runtime is built without PETSc.
    ("../tests/corpus/ok/theta_method.pode", "petsc"),
    // Adaptive steps of an implicit pair (EmbeddedDirk): the macro builds explicit pairs only.
    (
        "../examples/robertson/robertson_adaptive.pode",
        "adaptive steps",
    ),
    // Its data paths are deliberately odd (spaces, quotes, a Windows path) and the files do
    // not exist: the expansion is the typed read error naming the file.
    ("../tests/corpus/ok/strings.pode", "dir with spaces"),
];

#[test]
fn every_example_and_corpus_model_agrees_bitwise() {
    // Every file is either compiled above or refused for a stated reason.
    let mut files: Vec<String> = ["../examples", "../tests/corpus/ok"]
        .iter()
        .flat_map(|d| {
            let dir = manifest_path(d);
            let mut v = Vec::new();
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                let inner: Vec<_> = if p.is_dir() {
                    std::fs::read_dir(&p)
                        .unwrap()
                        .map(|e| e.unwrap().path())
                        .collect()
                } else {
                    vec![p]
                };
                for f in inner {
                    if f.extension().is_some_and(|x| x == "pode") {
                        let rel = f.strip_prefix(manifest_path("..")).unwrap();
                        v.push(format!("../{}", rel.display()));
                    }
                }
            }
            v
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = COMPILED
        .iter()
        .map(|(p, _)| p.to_string())
        .chain(REFUSED.iter().map(|(p, _)| p.to_string()))
        .collect();
    listed.sort();
    assert_eq!(files, listed, "every example and corpus model is covered");
    assert_eq!((COMPILED.len(), REFUSED.len()), (36, 5));

    for (path, why) in REFUSED {
        let out = pnode_macros_impl::model_file(
            quote_path(path),
            &manifest_path("."),
            &pnode_macros_impl::Paths::default(),
        )
        .to_string();
        assert!(out.contains("compile_error"), "{path}: {out}");
        assert!(
            out.to_lowercase().contains(why),
            "{path}: expected `{why}` in {out}"
        );
    }
    let mut blow_up = Vec::new();
    for (path, check) in COMPILED {
        eprintln!("{path}");
        if !check() {
            blow_up.push(*path);
        }
    }
    // x' = x² from x = 8 (pinwheel) and the precedence model blow up within the span: the
    // same error at the same step in all three; every other gradient is finite and equal.
    assert_eq!(
        blow_up,
        [
            "../tests/corpus/ok/pinwheel.pode",
            "../tests/corpus/ok/precedence.pode"
        ]
    );
}

fn quote_path(path: &str) -> proc_macro2::TokenStream {
    let lit = proc_macro2::Literal::string(path);
    proc_macro2::TokenTree::Literal(lit).into()
}

// ---- data files at compile time: steps, outputs, initial values, layer weights, constants --

#[pnode::neural_ode(method = rk4, t = (0.0, 1.0), steps = data("tests/data/steps.csv"), outputs = data("tests/data/outputs.csv"), checkpoint = revolve(slots = 3))]
mod from_files {
    state! { x[2] = data("tests/data/x0.csv") }
    layer! { net = mlp([2, 4, 2], init = data("tests/data/net.csv")) }
    const SCALE: [f64; 2] = data("tests/data/scale.csv");
    fn rhs(t: f64, x: [f64; 2]) -> [f64; 2] {
        net(x) * SCALE
    }
}

#[pnode::neural_ode(method = rk4, t = (0.0, 1.0), steps = [0.0, 0.05, 0.125, 0.2, 0.3, 0.375, 0.5, 0.6, 0.7, 0.8125, 0.9, 1.0], outputs = [0.3, 0.55, 1.0], checkpoint = revolve(slots = 3))]
mod inline_lists {
    state! { x[2] = [0.5, -0.25] }
    layer! { net = mlp([2, 4, 2]) }
    const SCALE: [f64; 2] = [0.75, -1.5];
    fn rhs(t: f64, x: [f64; 2]) -> [f64; 2] {
        net(x) * SCALE
    }
}

const FROM_FILES: &str = "model from_files\nstate x[2] = data(\"tests/data/x0.csv\")\n\
    layer net = mlp([2, 4, 2], init = data(\"tests/data/net.csv\"))\n\
    const scale = data(\"tests/data/scale.csv\")\nd(x)/dt = net(x) * scale\n\
    solve { method = rk4, t = 0 .. 1, steps = data(\"tests/data/steps.csv\"), \
    outputs = data(\"tests/data/outputs.csv\"), checkpoint = revolve(slots = 3) }\n";

const INLINE_LISTS: &str = "model inline_lists\nstate x[2] = [0.5, -0.25]\n\
    layer net = mlp([2, 4, 2])\nconst scale = [0.75, -1.5]\nd(x)/dt = net(x) * scale\n\
    solve { method = rk4, t = 0 .. 1, \
    steps = [0.0, 0.05, 0.125, 0.2, 0.3, 0.375, 0.5, 0.6, 0.7, 0.8125, 0.9, 1.0], \
    outputs = [0.3, 0.55, 1.0], checkpoint = revolve(slots = 3) }\n";

#[test]
fn data_files_reproduce_inline_lists_bitwise() {
    use from_files::Ode as F;
    use inline_lists::Ode as I;
    let b = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    // Grid points and step sizes from `steps = data(..)` are those of the inline list; the
    // output time 0.55 (between 0.5 and 0.6) was inserted into both.
    assert_eq!(b(&F::GRID_TIMES), b(&I::GRID_TIMES));
    assert_eq!(
        b(&steps(&F::grid().unwrap())),
        b(&steps(&I::grid().unwrap()))
    );
    assert_eq!((F::N_STEPS, F::OUTPUT_TIMES), (12, [0.3, 0.55, 1.0]));
    assert_eq!(F::U0, [0.5, -0.25]);
    // θ0 is the weights file, value for value, in layout order.
    let net = pnode_driver::data::read_table(&manifest_path("tests/data/net.csv"), None).unwrap();
    assert_eq!((net.rows, net.values.len()), (22, F::PARAM_LEN));
    assert_eq!(b(&F::THETA0), b(&net.values));
    // The same gradient, bit for bit, at the file's weights.
    let theta = F::THETA0.to_vec();
    let (lf, gf) = F::new()
        .unwrap()
        .value_and_grad(&F::U0, &theta, file_loss(2))
        .unwrap();
    let (li, gi) = I::new()
        .unwrap()
        .value_and_grad(&I::U0, &theta, file_loss(2))
        .unwrap();
    assert_eq!(bits(lf, &gf.du0, &gf.dp), bits(li, &gi.du0, &gi.dp));
    assert!(lf > 0.0 && gf.dp.iter().any(|g| *g != 0.0));

    // The driver resolves the `.pode` texts the same (paths relative to this crate).
    let dir = manifest_path(".");
    let data = pnode_driver::FsData::new(&dir);
    let rf = pnode_driver::resolve(&program(FROM_FILES), &data, None).unwrap();
    let ri = pnode_driver::resolve(&program(INLINE_LISTS), &data, None).unwrap();
    assert_eq!(b(&rf.grid.fixed().unwrap().to_times()), b(&F::GRID_TIMES));
    assert_eq!(
        b(&steps(rf.grid.fixed().unwrap())),
        b(&steps(ri.grid.fixed().unwrap()))
    );
    assert_eq!(b(&rf.theta0), b(&F::THETA0));
    assert_eq!(b(&rf.u0), b(&F::U0));
    let (driver, jit) = driver_gradients(&program(FROM_FILES), &rf);
    let theta = check_theta(&F::THETA0);
    let (l, g) = F::new()
        .unwrap()
        .value_and_grad(&F::U0, &theta, file_loss(2))
        .unwrap();
    assert_eq!(Ok(bits(l, &g.du0, &g.dp)), driver);
    assert_eq!(jit, driver);
}
