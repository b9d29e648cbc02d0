//! Adaptive steps: the macro's `Ode` over the runtime's `AdaptiveSolver` against the driver's
//! resolution run on the interpreter (`IrModel`) and the JIT (`JitModel`), bit for bit —
//! options, accepted grid, gradient — and against the fixed-grid gradient on the accepted grid.

use super::*;
use pnode::runtime::adaptive::{AdaptiveCheckpointing, AdaptiveSolver, EmbeddedErk};

/// What an adaptive `model!`/`#[neural_ode]` expansion fixed at compile time, and what its
/// gradient at `(u0, θ)` did.
pub struct AdaptiveSide {
    pub output_times: &'static [f64],
    pub u0: &'static [f64],
    pub theta0: &'static [f64],
    pub cost: pnode::runtime::checkpoint::StepCost,
    pub t0: f64,
    pub options: pnode::runtime::adaptive::AdaptiveOptions,
    pub checkpointing: AdaptiveCheckpointing,
    /// The accepted grid of the gradient's forward sweep.
    pub accepted: Vec<f64>,
    /// The gradient of [`file_loss`].
    pub gradient: Bits,
}

/// The gradient of `loss` by an adaptive solver over `model` with the runtime's embedded pair,
/// and the accepted grid.
fn adaptive_gradient<M: RhsVjp>(
    model: &mut M,
    r: &pnode_driver::Resolved,
    tableau: &Tableau,
    theta: &[f64],
) -> (Bits, Vec<f64>) {
    let pnode_driver::resolve::Grid::Adaptive { t0, options } = &r.grid else {
        panic!("not adaptive");
    };
    let (n, np) = (model.state_len(), model.param_len());
    let mode = AdaptiveCheckpointing::from_checkpointing(&r.checkpointing, 8 * n as u64).unwrap();
    let pair = EmbeddedErk::new(tableau.clone(), n, np).unwrap();
    let mut s =
        AdaptiveSolver::new(pair, model, *t0, &r.output_times, options.clone(), mode).unwrap();
    let (l, g) = s.value_and_grad(model, &r.u0, theta, file_loss(n)).unwrap();
    (bits(l, &g.du0, &g.dp), s.accepted_times().to_vec())
}

/// Checks an adaptive macro expansion of `prog` (data relative to `dir`) against the driver:
/// the resolved options and initial values, the accepted grid and the gradient bits of the
/// interpreter and the JIT, and the fixed-grid gradient (runtime `ErkStepper`) on the accepted
/// grid. Returns the number of accepted steps.
pub fn agree_adaptive(
    prog: &Program,
    dir: &std::path::Path,
    what: &str,
    mac: AdaptiveSide,
) -> usize {
    let r = pnode_driver::resolve(prog, &pnode_driver::FsData::new(dir), None).unwrap();
    let pnode_driver::resolve::Grid::Adaptive { t0, options } = &r.grid else {
        panic!("{what}: the driver resolves a fixed grid");
    };
    let b = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(mac.t0.to_bits(), t0.to_bits(), "{what}: t0");
    assert_eq!(&mac.options, options, "{what}: error control");
    let n = prog.state_len();
    let mode = AdaptiveCheckpointing::from_checkpointing(&r.checkpointing, 8 * n as u64).unwrap();
    assert_eq!(mac.checkpointing, mode, "{what}: checkpointing");
    assert_eq!(
        b(mac.output_times),
        b(&r.output_times),
        "{what}: output times"
    );
    assert_eq!(b(mac.u0), b(&r.u0), "{what}: u0");
    assert_eq!(b(mac.theta0), b(&r.theta0), "{what}: θ0");
    assert_eq!(mac.cost, r.cost, "{what}: step cost");
    let pnode_driver::MethodChoice::Explicit(tableau) = &r.method else {
        panic!("{what}: adaptive steps of an implicit method");
    };
    let theta = check_theta(&r.theta0);
    let mut ir = IrModel::new(&prog.rhs).unwrap();
    let mut jit = JitModel::new(&prog.rhs).unwrap();
    let (g_ir, grid_ir) = adaptive_gradient(&mut ir, &r, tableau, &theta);
    let (g_jit, grid_jit) = adaptive_gradient(&mut jit, &r, tableau, &theta);
    assert_eq!(
        b(&mac.accepted),
        b(&grid_ir),
        "{what}: macro vs driver accepted grid"
    );
    assert_eq!(
        b(&grid_jit),
        b(&grid_ir),
        "{what}: JIT vs driver accepted grid"
    );
    assert_eq!(mac.gradient, g_ir, "{what}: macro vs driver gradient bits");
    assert_eq!(g_jit, g_ir, "{what}: JIT vs driver gradient bits");
    // The fixed-grid gradient on the accepted grid is the same, bit for bit.
    let fixed = pnode_driver::Resolved {
        grid: pnode_driver::resolve::Grid::Fixed(
            pnode::runtime::TimeGrid::from_times(&grid_ir).unwrap(),
        ),
        checkpointing: Checkpointing::StoreAll,
        ..r.clone()
    };
    let np = prog.param_len();
    let g_fixed = solver_gradient(
        ErkStepper::new(tableau.clone(), n, np),
        &mut ir,
        &fixed,
        &r.u0,
        &theta,
    );
    assert_eq!(g_fixed, Ok(g_ir), "{what}: fixed grid on the accepted grid");
    grid_ir.len() - 1
}

// ---- #[neural_ode(method = "dopri5", rtol = …)] ---------------------------------------------

#[pnode::neural_ode(method = "dopri5", rtol = 1e-6, atol = [1e-9, 1e-8], h_max = 0.5, t = (0.0, 5.0), outputs = [1.0, 2.5, 5.0], checkpoint = online(slots = 4))]
mod lv_adaptive {
    state! { x = 1.0, y = 1.0 }
    param! { alpha = 1.5, beta = 1.0, delta = 3.0, gamma = 1.0 }
    fn rhs(t: f64, x: f64, y: f64) -> (f64, f64) {
        let xy = x * y;
        (alpha * x - beta * xy, delta * xy - gamma * y)
    }
}

/// The same model with a fixed grid: its generated fused stepper replays the accepted grid.
#[pnode::neural_ode(method = dopri5, steps = 10, t = (0.0, 5.0), outputs = [1.0, 2.5, 5.0])]
mod lv_fixed {
    state! { x = 1.0, y = 1.0 }
    param! { alpha = 1.5, beta = 1.0, delta = 3.0, gamma = 1.0 }
    fn rhs(t: f64, x: f64, y: f64) -> (f64, f64) {
        let xy = x * y;
        (alpha * x - beta * xy, delta * xy - gamma * y)
    }
}

const LV_ADAPTIVE: &str = "model lv_adaptive\nstate x = 1.0\nstate y = 1.0\n\
    param alpha = 1.5\nparam beta = 1.0\nparam delta = 3.0\nparam gamma = 1.0\n\
    let xy = x * y\nd(x)/dt = alpha * x - beta * xy\nd(y)/dt = delta * xy - gamma * y\n\
    solve { method = dopri5(rtol = 1e-6, atol = [1e-9, 1e-8], h_max = 0.5), t = 0 .. 5, \
    outputs = [1.0, 2.5, 5.0], checkpoint = online(slots = 4) }\n";

#[test]
fn adaptive_attribute_agrees_with_the_driver_and_the_fixed_grid() {
    use lv_adaptive::Ode;
    assert_eq!((Ode::RTOL, Ode::ATOL), (&[1e-6][..], &[1e-9, 1e-8][..]));
    assert_eq!((Ode::H0, Ode::H_MAX, Ode::T0), (None, Some(0.5), 0.0));
    assert_eq!(
        Ode::CHECKPOINTING,
        AdaptiveCheckpointing::Online { slots: 4 }
    );
    assert_eq!(Ode::SCHEDULE_NAME, "online(slots = 4)");
    let theta = Ode::THETA0.to_vec();
    let mut ode = Ode::new().unwrap();
    let (l, g) = ode.value_and_grad(&Ode::U0, &theta, file_loss(2)).unwrap();
    let accepted = ode.accepted_times().to_vec();
    let steps = agree_adaptive(
        &program(LV_ADAPTIVE),
        &manifest_path("."),
        "lv_adaptive",
        AdaptiveSide {
            output_times: &Ode::OUTPUT_TIMES,
            u0: &Ode::U0,
            theta0: &Ode::THETA0,
            cost: Ode::STEP_COST,
            t0: Ode::T0,
            options: Ode::options(),
            checkpointing: Ode::CHECKPOINTING,
            accepted: accepted.clone(),
            gradient: bits(l, &g.du0, &g.dp),
        },
    );
    // The bound the checkpointing promised, against what the sweep did.
    let (stats, n) = (ode.adaptive_stats(), steps as u64);
    assert_eq!(stats.accepted_steps, n);
    assert!(stats.sweep.peak_slots <= 4, "{stats:?}");
    assert!(
        stats.sweep.recomputed_steps <= Ode::PREDICTED.recomputed_steps(n),
        "{} > {}",
        stats.sweep.recomputed_steps,
        Ode::PREDICTED.recomputed_steps(n)
    );
    assert!(ode.online_spacing().unwrap() as u64 <= Ode::PREDICTED.spacing(n));
    assert!(
        stats.sweep.recomputed_steps > 0 && n > 8,
        "{n} steps: {stats:?}"
    );
    eprintln!(
        "lv_adaptive: {n} accepted, {} rejected, {} recomputed (bound {})",
        stats.rejected_steps,
        stats.sweep.recomputed_steps,
        Ode::PREDICTED.recomputed_steps(n)
    );
    // The fixed-grid macro's fused stepper and model on the accepted grid: the same bits.
    let mut model = lv_fixed::Model::new();
    let mut fixed = Solver::new(
        lv_fixed::Stepper::new(2, 4),
        &model,
        ode.accepted_grid().unwrap(),
        &Ode::OUTPUT_TIMES,
        Checkpointing::StoreAll,
    )
    .unwrap();
    let (lf, gf) = fixed
        .value_and_grad(&mut model, &Ode::U0, &theta, file_loss(2))
        .unwrap();
    assert_eq!(bits(lf, &gf.du0, &gf.dp), bits(l, &g.du0, &g.dp));
    // `forward` lands on the same grid; `train` runs on it.
    ode.forward(&Ode::U0, &theta).unwrap();
    assert_eq!(ode.accepted_times(), &accepted[..]);
    assert!(Ode::SCHEDULE_SUMMARY.contains("at most 4 solution slots"));
}
