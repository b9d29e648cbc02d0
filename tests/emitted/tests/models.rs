//! The compiled generated models against the reference interpreter (`IrModel`): RHS, JVP and
//! VJP of every corpus model at its point and at perturbed points, ≤ 1e-12 relative (in
//! practice bitwise), and whole gradients through the runtime's solver (RK4 with Revolve,
//! Crank–Nicolson).

use pnode_codegen::testmodels::{self, TestModel, rand_vec};
use pnode_emitted_tests::generated;
use pnode_ir::runtime::IrModel;
use pnode_runtime::model::{Rhs, RhsJvp, RhsVjp};
use pnode_testkit::numeric::rel_err;

/// The worst relative error of `gen` against the interpreter over RHS, JVP, `f_uᵀ w` and
/// `f_θᵀ w`, at the model's point and at two perturbed points; also whether all were bitwise
/// equal.
fn compare<G: RhsJvp + RhsVjp>(mut g: G, m: &TestModel) -> (f64, bool) {
    let mut ir = IrModel::new(&m.f).expect("IrModel");
    let (n, np) = (ir.state_len(), ir.param_len());
    assert_eq!((g.state_len(), g.param_len()), (n, np), "{}", m.name);
    let mut worst = 0.0f64;
    let mut bitwise = true;
    for seed in 0..3u64 {
        let du = rand_vec(100 + seed, n);
        let dp = rand_vec(200 + seed, np);
        let scale = if seed == 0 { 0.0 } else { 0.05 };
        let u: Vec<f64> =
            m.u.iter()
                .zip(&du)
                .map(|(a, d)| a * (1.0 + scale * d))
                .collect();
        let p: Vec<f64> =
            m.p.iter()
                .zip(&dp)
                .map(|(a, d)| a * (1.0 + scale * d))
                .collect();
        let t = m.t + 0.1 * seed as f64;
        let v = rand_vec(300 + seed, n);
        let w = rand_vec(400 + seed, n);
        let mut pairs: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        g.rhs(t, &u, &p, &mut a);
        ir.rhs(t, &u, &p, &mut b);
        pairs.push((a.clone(), b.clone()));
        g.jvp(t, &u, &p, &v, &mut a);
        ir.jvp(t, &u, &p, &v, &mut b);
        pairs.push((a.clone(), b.clone()));
        let (mut gpa, mut gpb) = (vec![0.0; np], vec![0.0; np]);
        g.vjp(t, &u, &p, &w, &mut a, &mut gpa);
        ir.vjp(t, &u, &p, &w, &mut b, &mut gpb);
        pairs.push((a, b));
        pairs.push((gpa, gpb));
        for (x, y) in &pairs {
            assert!(x.iter().all(|e| e.is_finite()), "{}: {x:?}", m.name);
            worst = worst.max(rel_err(x, y));
            bitwise &= x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits());
        }
    }
    (worst, bitwise)
}

fn check<G: RhsJvp + RhsVjp>(g: G, name: &str) {
    let m = testmodels::by_name(name).expect("a corpus model");
    let (e, bitwise) = compare(g, &m);
    eprintln!("{name}: worst relative error {e:.2e}, bitwise {bitwise}");
    assert!(e <= 1e-12, "{name}: {e:e}");
}

#[test]
fn lotka_volterra() {
    check(generated::LotkaVolterra::new(), "lotka_volterra");
}

#[test]
fn robertson() {
    check(generated::Robertson::new(), "robertson");
}

#[test]
fn robertson_const() {
    check(generated::RobertsonConst::new(), "robertson_const");
}

#[test]
fn van_der_pol() {
    check(generated::VanDerPol::new(), "van_der_pol");
}

#[test]
fn mlp_tanh() {
    check(generated::MlpTanh::new(), "mlp_tanh");
}

#[test]
fn mlp_tanh_with_scratch_buffers() {
    check(generated::MlpTanhScratch::new(), "mlp_tanh");
}

#[test]
fn mlp_tanh_with_a_stack_budget() {
    check(generated::MlpTanhBudget::new(), "mlp_tanh");
}

#[test]
fn spiral() {
    check(generated::Spiral::new(), "spiral");
}

#[test]
fn unary_zoo() {
    check(generated::UnaryZoo::new(), "unary_zoo");
}

#[test]
fn structure() {
    check(generated::Structure::new(), "structure");
}

#[test]
fn mlp_mixed() {
    check(generated::MlpMixed::new(), "mlp_mixed");
}

#[test]
fn broadcast_pow() {
    check(generated::BroadcastPow::new(), "broadcast_pow");
}

#[test]
fn overlapping_reads() {
    check(generated::Overlapping::new(), "overlapping");
}

#[test]
fn generated_models_are_bitwise_equal_to_the_interpreter() {
    // Same operations in the same order: not only ≤ 1e-12 but identical bits, model by model.
    type Run = Box<dyn Fn(&TestModel) -> (f64, bool)>;
    let cases: Vec<(&str, Run)> = vec![
        (
            "lotka_volterra",
            Box::new(|m| compare(generated::LotkaVolterra::new(), m)),
        ),
        (
            "robertson",
            Box::new(|m| compare(generated::Robertson::new(), m)),
        ),
        (
            "van_der_pol",
            Box::new(|m| compare(generated::VanDerPol::new(), m)),
        ),
        (
            "mlp_tanh",
            Box::new(|m| compare(generated::MlpTanh::new(), m)),
        ),
        ("spiral", Box::new(|m| compare(generated::Spiral::new(), m))),
        (
            "unary_zoo",
            Box::new(|m| compare(generated::UnaryZoo::new(), m)),
        ),
        (
            "structure",
            Box::new(|m| compare(generated::Structure::new(), m)),
        ),
        (
            "mlp_mixed",
            Box::new(|m| compare(generated::MlpMixed::new(), m)),
        ),
        (
            "broadcast_pow",
            Box::new(|m| compare(generated::BroadcastPow::new(), m)),
        ),
        (
            "overlapping",
            Box::new(|m| compare(generated::Overlapping::new(), m)),
        ),
    ];
    let mut not_bitwise = Vec::new();
    for (name, run) in cases {
        let (_, bitwise) = run(&testmodels::by_name(name).unwrap());
        if !bitwise {
            not_bitwise.push(name);
        }
    }
    assert!(not_bitwise.is_empty(), "not bitwise: {not_bitwise:?}");
}

#[test]
fn rk4_revolve_gradient_equals_the_interpreter() {
    use pnode_runtime::{Checkpointing, Solver, Tableau, TimeGrid};
    let m = testmodels::lotka_volterra();
    let mut ir = IrModel::new(&m.f).unwrap();
    let mut gen_model = generated::LotkaVolterra::new();
    let p = [1.5, 1.0, 3.0, 1.0];
    let u0 = [1.0, 1.0];
    let grid = TimeGrid::uniform(0.0, 5.0, 200).unwrap();
    let outs = [1.0, 2.5, 5.0];
    let loss = |y: &[f64], g: &mut [f64]| {
        let mut l = 0.0;
        for (i, (yi, gi)) in y.iter().zip(g.iter_mut()).enumerate() {
            let c = 1.0 + i as f64;
            l += 0.5 * c * yi * yi;
            *gi = c * yi;
        }
        l
    };
    let solver = || {
        let mode = Checkpointing::Revolve { slots: 4 };
        Solver::explicit(
            Tableau::rk4(),
            &generated::LotkaVolterra::new(),
            grid.clone(),
            &outs,
            mode,
        )
        .unwrap()
    };
    let (la, ga) = solver()
        .value_and_grad(&mut gen_model, &u0, &p, loss)
        .unwrap();
    let (lb, gb) = solver().value_and_grad(&mut ir, &u0, &p, loss).unwrap();
    let e = rel_err(&ga.du0, &gb.du0).max(rel_err(&ga.dp, &gb.dp));
    eprintln!("RK4 gradient generated vs interpreter: {e:.2e} (loss {la} vs {lb})");
    assert!((la - lb).abs() <= 1e-12 * lb.abs());
    assert!(e <= 1e-12, "{e:e}");
}

#[test]
fn mlp_rk4_gradient_equals_the_interpreter() {
    use pnode_runtime::{Checkpointing, Solver, Tableau, TimeGrid};
    let m = testmodels::mlp_tanh();
    let mut ir = IrModel::new(&m.f).unwrap();
    let mut gen_model = generated::MlpTanh::new();
    let grid = TimeGrid::uniform(0.0, 1.0, 50).unwrap();
    let loss = |y: &[f64], g: &mut [f64]| {
        g.copy_from_slice(y);
        0.5 * y.iter().map(|x| x * x).sum::<f64>()
    };
    let solver = || {
        let mode = Checkpointing::SolutionOnly;
        Solver::explicit(
            Tableau::rk4(),
            &generated::MlpTanh::new(),
            grid.clone(),
            &[1.0],
            mode,
        )
        .unwrap()
    };
    let (la, ga) = solver()
        .value_and_grad(&mut gen_model, &m.u, &m.p, loss)
        .unwrap();
    let (lb, gb) = solver().value_and_grad(&mut ir, &m.u, &m.p, loss).unwrap();
    let e = rel_err(&ga.du0, &gb.du0).max(rel_err(&ga.dp, &gb.dp));
    eprintln!("MLP RK4 gradient generated vs interpreter: {e:.2e}");
    assert!((la - lb).abs() <= 1e-12 * lb.abs());
    assert!(e <= 1e-12, "{e:e}");
}

#[test]
fn crank_nicolson_gradient_equals_the_interpreter() {
    use pnode_runtime::implicit::{LineSearch, LinearSolver};
    use pnode_runtime::{Checkpointing, NewtonConfig, Solver, ThetaStepper, TimeGrid};
    let cfg = NewtonConfig {
        atol: 1e-14,
        rtol: 1e-13,
        max_iters: 50,
        line_search: LineSearch::None,
        linear: LinearSolver::Dense,
    };
    // Log-spaced steps from 1e-6 (a coarse first step has several Newton roots).
    let mut times = vec![0.0];
    times.extend((0..=30).map(|k| 1e-6 * f64::powf(1e8, k as f64 / 30.0)));
    let grid = TimeGrid::from_times(&times).unwrap();
    let outs = [times[15], times[30]];
    let m = testmodels::robertson();
    let mut ir = IrModel::new(&m.f).unwrap();
    let mut gen_model = generated::Robertson::new();
    let p = [0.04, 3e7, 1e4];
    let u0 = [1.0, 0.0, 0.0];
    let solver = || {
        let st = ThetaStepper::crank_nicolson(3, 3, cfg).unwrap();
        let mode = Checkpointing::Revolve { slots: 3 };
        Solver::new(st, &generated::Robertson::new(), grid.clone(), &outs, mode).unwrap()
    };
    let loss = |y: &[f64], g: &mut [f64]| {
        g.copy_from_slice(&[1.0, 1e4, 1.0, 0.5, 2e4, 0.5]);
        y.iter().zip(g.iter()).map(|(a, b)| a * b).sum()
    };
    let (la, ga) = solver()
        .value_and_grad(&mut gen_model, &u0, &p, loss)
        .unwrap();
    let (lb, gb) = solver().value_and_grad(&mut ir, &u0, &p, loss).unwrap();
    let e = rel_err(&ga.du0, &gb.du0).max(rel_err(&ga.dp, &gb.dp));
    eprintln!("Crank–Nicolson gradient generated vs interpreter: {e:.2e}");
    assert!((la - lb).abs() <= 1e-12 * lb.abs());
    assert!(e <= 1e-12, "{e:e}");
}

#[test]
fn random_models_and_corner_cases_equal_the_interpreter_bitwise() {
    // Corner cases of output writing and random chains of operations (every broadcasting, structural and unary kernel): the
    // generated code and the interpreter give identical bits (NaN where both give NaN).
    let same = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    };
    let mut nodes = 0;
    let edges = testmodels::edge_cases();
    let all = generated::random_models()
        .into_iter()
        .chain(generated::random_scratch_models())
        .map(|(seed, g)| (seed, g, testmodels::random(seed)))
        .chain(
            generated::edge_models()
                .into_iter()
                .map(|(k, g)| (1000 + k, g, edges[k as usize].clone())),
        );
    for (seed, mut g, m) in all {
        nodes += m.f.node_count();
        let mut ir = IrModel::new(&m.f).unwrap();
        let g: &mut dyn pnode_emitted_tests::Model = &mut *g;
        let (n, np) = (m.u.len(), m.p.len());
        let v = rand_vec(5 + seed, n);
        let w = rand_vec(6 + seed, n);
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        g.rhs(m.t, &m.u, &m.p, &mut a);
        ir.rhs(m.t, &m.u, &m.p, &mut b);
        assert!(same(&a, &b), "rhs, seed {seed}\n{}", m.f);
        g.jvp(m.t, &m.u, &m.p, &v, &mut a);
        ir.jvp(m.t, &m.u, &m.p, &v, &mut b);
        assert!(same(&a, &b), "jvp, seed {seed}\n{}", m.f);
        let (mut gpa, mut gpb) = (vec![0.0; np], vec![0.0; np]);
        g.vjp(m.t, &m.u, &m.p, &w, &mut a, &mut gpa);
        ir.vjp(m.t, &m.u, &m.p, &w, &mut b, &mut gpb);
        assert!(
            same(&a, &b) && same(&gpa, &gpb),
            "vjp, seed {seed}\n{}",
            m.f
        );
    }
    eprintln!("random corpus: {nodes} RHS nodes");
}
