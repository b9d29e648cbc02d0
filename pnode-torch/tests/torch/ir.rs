//! Lowered `.pode` models on libtorch (`TorchIrModel`, `IrExecutor`) against pnode-ir's
//! reference interpreter:
//!
//! * every corpus model (`tests/corpus/ok`) and every builder-made test model: the executor's
//!   values of `f`, of the symbolic `jvp(f)` and of the symbolic `vjp(f)` (so the convolution
//!   adjoints and the group-norm Jacobian are executed too) agree with the interpreter to
//!   ≤ 1e-12 relative;
//! * the model's own derivatives (libtorch forward-mode AD for `f_u v`, one autograd backward for
//!   `(f_uᵀ w, f_θᵀ w)`) agree with the interpreter's symbolic ones to ≤ 1e-12;
//! * whole discrete-adjoint gradients through `pnode-driver`'s `Run` (RK4 on the two
//!   convolution models, ESDIRK3, SDIRK2 and Euler on others) agree with the interpreter-backed
//!   gradient to ≤ 1e-12 and with central differences of the loss to ≤ 1e-6;
//! * misuse is an error, not a panic.

use std::time::Instant;

use pnode_driver::{Run, Setup};
use pnode_ir::lower::{Program, compile_source};
use pnode_ir::runtime::IrModel;
use pnode_ir::testmodels::{self, TestModel, rand_vec};
use pnode_ir::{Function, Interpreter, jvp, vjp};
use pnode_testkit::corpus::{self, Kind};
use pnode_testkit::numeric::rel_max;
use pnode_torch::pnode_runtime::model::{ModelError, Rhs, RhsJvp, RhsVjp};
use pnode_torch::tch::{Device, Tensor};
use pnode_torch::{Error, IrExecutor, TorchIrModel};

/// Every corpus ok model, lowered, by file stem.
fn lowered_corpus() -> Vec<(String, Program)> {
    corpus::files(Kind::Ok)
        .into_iter()
        .map(|file| {
            let program = compile_source(&file.source)
                .program
                .unwrap_or_else(|| panic!("{}: a corpus ok model lowers", file.name));
            (file.name, program)
        })
        .collect()
}

/// A function to check: name, function, and the point `(t, u, θ)`.
type Case = (String, Function, f64, Vec<f64>, Vec<f64>);

fn test_models() -> Vec<TestModel> {
    vec![
        testmodels::lotka_volterra(),
        testmodels::robertson(),
        testmodels::robertson_const(),
        testmodels::van_der_pol(),
        testmodels::mlp_tanh(),
        testmodels::spiral(),
        testmodels::unary_zoo(),
        testmodels::structure(),
        testmodels::conv_groupnorm(),
        testmodels::conv_stride2(),
        testmodels::mlp_mixed(),
        testmodels::broadcast_pow(),
        testmodels::overlapping_reads(),
    ]
}

/// The interpreter's and the executor's outputs of `f` at `(t, u, θ, extra)`, `extra` bound to
/// the tangent or the cotangent buffer as `f`'s layout declares.
fn both(f: &Function, t: f64, u: &[f64], p: &[f64], extra: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut want = vec![0.0; f.output_len()];
    Interpreter::new(f).eval(t, u, p, extra, &mut want).unwrap();
    let exec = IrExecutor::new(f, Device::Cpu).unwrap();
    let (tu, tp, tx) = (
        Tensor::from_slice(u),
        Tensor::from_slice(p),
        Tensor::from_slice(extra),
    );
    let l = *f.layout();
    let (v, w) = if l.cotangent > 0 {
        (None, Some(&tx))
    } else {
        (Some(&tx), None)
    };
    let y = exec.eval(t, [Some(&tu), Some(&tp), v, w]).unwrap();
    let mut got = vec![f64::NAN; f.output_len()];
    let n = got.len();
    y.copy_data(&mut got, n);
    (want, got)
}

/// A check point for `f`: the test model's own, or small random values for a corpus model
/// (some blow up, x³ or exp, far from the origin).
fn point(f: &Function, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let l = f.layout();
    let half = |v: Vec<f64>| v.into_iter().map(|x| 0.5 * x).collect::<Vec<_>>();
    (
        half(rand_vec(seed + 1, l.state)),
        half(rand_vec(seed + 2, l.param)),
    )
}

#[test]
fn executor_matches_the_interpreter_on_functions_jvps_and_vjps() {
    let mut cases: Vec<Case> = test_models()
        .into_iter()
        .map(|m| (m.name.to_owned(), m.f, m.t, m.u, m.p))
        .collect();
    for (k, (name, program)) in lowered_corpus().into_iter().enumerate() {
        let (u, p) = point(&program.rhs, 100 * k as u64);
        cases.push((name, program.rhs, 0.3, u, p));
    }
    let mut worst: f64 = 0.0;
    for (k, (name, f, t, u, p)) in cases.iter().enumerate() {
        let v = rand_vec(1000 + k as u64, f.layout().state);
        let w = rand_vec(2000 + k as u64, f.output_len());
        let mut errs = Vec::new();
        for (what, g, extra) in [
            ("f", f.clone(), Vec::<f64>::new()),
            ("jvp", jvp(f).unwrap(), v),
            ("vjp", vjp(f).unwrap(), w),
        ] {
            let (want, got) = both(&g, *t, u, p, &extra);
            let e = rel_max(&got, &want);
            assert!(e <= 1e-12, "{name} {what}: torch vs interpreter {e:e}");
            errs.push(e);
            worst = worst.max(e);
        }
        eprintln!(
            "{name:<20} f {:.1e} jvp {:.1e} vjp {:.1e}",
            errs[0], errs[1], errs[2]
        );
    }
    eprintln!(
        "{} functions; worst relative difference {worst:.1e}",
        cases.len()
    );
}

#[test]
fn model_derivatives_match_the_interpreter() {
    let mut cases: Vec<Case> = test_models()
        .into_iter()
        .filter(|m| m.f.output_len() == m.f.layout().state)
        .map(|m| (m.name.to_owned(), m.f, m.t, m.u, m.p))
        .collect();
    for (k, (name, program)) in lowered_corpus().into_iter().enumerate() {
        let (u, p) = point(&program.rhs, 300 * k as u64);
        cases.push((name, program.rhs, 0.7, u, p));
    }
    let mut worst: f64 = 0.0;
    for (k, (name, f, t, u, p)) in cases.iter().enumerate() {
        let n = u.len();
        let mut torch = TorchIrModel::new(f).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut interp = IrModel::new(f).unwrap();
        assert_eq!((torch.state_len(), torch.param_len()), (n, p.len()));
        let v = rand_vec(5000 + k as u64, n);
        let w = rand_vec(6000 + k as u64, n);
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        let (mut ga, mut gb) = (vec![0.0; p.len()], vec![0.0; p.len()]);
        torch.try_rhs(*t, u, p, &mut a).unwrap();
        interp.rhs(*t, u, p, &mut b);
        let e_f = rel_max(&a, &b);
        torch.try_jvp(*t, u, p, &v, &mut a).unwrap();
        interp.jvp(*t, u, p, &v, &mut b);
        let e_jvp = rel_max(&a, &b);
        torch.try_vjp(*t, u, p, &w, &mut a, &mut ga).unwrap();
        interp.vjp(*t, u, p, &w, &mut b, &mut gb);
        let (e_gu, e_gp) = (rel_max(&a, &b), rel_max(&ga, &gb));
        for (what, e) in [("f", e_f), ("jvp", e_jvp), ("vjp u", e_gu), ("vjp θ", e_gp)] {
            assert!(e <= 1e-12, "{name} {what}: torch vs interpreter {e:e}");
            worst = worst.max(e);
        }
        eprintln!("{name:<20} f {e_f:.1e} jvp {e_jvp:.1e} vjp u {e_gu:.1e} θ {e_gp:.1e}");
    }
    eprintln!(
        "{} models; worst relative difference {worst:.1e}",
        cases.len()
    );
}

/// Up to `k` indices spread over `0..n`.
fn spread(n: usize, k: usize) -> Vec<usize> {
    if n <= k {
        return (0..n).collect();
    }
    let mut v: Vec<usize> = (0..k).map(|j| j * (n - 1) / (k - 1)).collect();
    v.dedup();
    v
}

/// Central differences of the loss along coordinate `i` of θ (or of u0), step `1e-6·max(|x|, 1)`.
fn central_difference<M: Rhs + RhsJvp + RhsVjp>(
    run: &mut Run,
    model: &mut M,
    theta: &[f64],
    i: usize,
    in_u0: bool,
) -> f64 {
    let (u0, mut th) = (run.setup().u0.clone(), theta.to_vec());
    let x = if in_u0 { u0[i] } else { theta[i] };
    let h = 1e-6 * x.abs().max(1.0);
    let mut at = |d: f64| {
        if in_u0 {
            let mut u = u0.clone();
            u[i] = x + d;
            run.set_initial_state(&u).unwrap();
        } else {
            th[i] = x + d;
        }
        run.loss(model, &th).unwrap()
    };
    let (lp, lm) = (at(h), at(-h));
    run.set_initial_state(&u0).unwrap();
    (lp - lm) / (2.0 * h)
}

#[test]
fn gradients_match_the_interpreter_and_finite_differences() {
    // The two convolution models (RK4), and implicit methods, whose Newton solves use the JVP.
    for name in [
        "conv_block",
        "odenet_image",
        "esdirk3",
        "indexing",
        "elementwise",
    ] {
        let program = compile_source(&corpus::file(Kind::Ok, name).source)
            .program
            .unwrap();
        let setup = Setup::new(&program, &corpus::dir(Kind::Ok), None).unwrap();
        let mut torch = TorchIrModel::new(&program.rhs).unwrap();
        let mut interp = IrModel::new(&program.rhs).unwrap();
        // θ0 of zeros-initialized layers would hide parameter paths: perturb it.
        let theta: Vec<f64> = setup
            .theta0
            .iter()
            .zip(rand_vec(77, setup.theta0.len()))
            .map(|(x, r)| x + 0.1 * r)
            .collect();
        let mut run = Run::new(setup, &torch).unwrap();
        // A zero initial state puts relu(groupnorm(0)) = relu(0) on its kink, where central
        // differences and derivatives disagree: start from small random values instead.
        if run.setup().u0.iter().all(|&x| x == 0.0) {
            let u0: Vec<f64> = rand_vec(78, run.setup().u0.len())
                .iter()
                .map(|r| 0.1 * r)
                .collect();
            run.set_initial_state(&u0).unwrap();
        }
        let start = Instant::now();
        let (loss_t, g_t) = run.loss_and_grad(&mut torch, &theta).unwrap();
        let torch_ms = start.elapsed().as_secs_f64() * 1e3;
        let start = Instant::now();
        let (loss_i, g_i) = run.loss_and_grad(&mut interp, &theta).unwrap();
        let interp_ms = start.elapsed().as_secs_f64() * 1e3;
        let e_loss = ((loss_t - loss_i) / loss_i).abs();
        let (e_u, e_p) = (rel_max(&g_t.du0, &g_i.du0), rel_max(&g_t.dp, &g_i.dp));
        assert!(
            e_loss <= 1e-12 && e_u <= 1e-12 && e_p <= 1e-12,
            "{name}: torch vs interpreter: loss {e_loss:e}, du0 {e_u:e}, dθ {e_p:e}"
        );
        // Central differences of the torch-backed loss, relative to the largest component.
        let scale = |g: &[f64]| g.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
        let (su, sp) = (scale(&g_t.du0), scale(&g_t.dp));
        let mut fd_err: f64 = 0.0;
        for i in spread(g_t.dp.len(), 8) {
            let fd = central_difference(&mut run, &mut torch, &theta, i, false);
            fd_err = fd_err.max((fd - g_t.dp[i]).abs() / sp);
        }
        for i in spread(g_t.du0.len(), 4) {
            let fd = central_difference(&mut run, &mut torch, &theta, i, true);
            fd_err = fd_err.max((fd - g_t.du0[i]).abs() / su);
        }
        assert!(
            fd_err <= 1e-6,
            "{name}: gradient vs central differences {fd_err:e}"
        );
        eprintln!(
            "{name:<14} {} states {} params: vs interp loss {e_loss:.1e} du0 {e_u:.1e} dθ \
             {e_p:.1e}; vs FD {fd_err:.1e}; gradient torch {torch_ms:.1} ms, interp \
             {interp_ms:.1} ms",
            g_t.du0.len(),
            g_t.dp.len()
        );
    }
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let m = testmodels::conv_groupnorm();
    // Not a right-hand side: a JVP function, and a function whose output is not the state.
    let e = TorchIrModel::new(&jvp(&m.f).unwrap()).unwrap_err();
    assert!(matches!(e, Error::Usage(_)), "{e}");
    assert!(e.to_string().contains("tangent"), "{e}");
    let e = TorchIrModel::new(&testmodels::conv_stride2().f).unwrap_err();
    assert!(e.to_string().contains("state length"), "{e}");
    // Wrong buffer lengths: an error from the fallible calls (the runtime's), NaN from the
    // infallible ones.
    let mut torch = TorchIrModel::new(&m.f).unwrap();
    let n = m.u.len();
    let mut out = vec![0.0; n];
    let e = torch.try_rhs(0.0, &m.u[1..], &m.p, &mut out).unwrap_err();
    assert!(
        matches!(&e, ModelError::Mismatch { what, .. } if what == "state"),
        "{e}"
    );
    let e = torch.try_rhs(0.0, &m.u, &m.p, &mut out[1..]).unwrap_err();
    assert!(e.to_string().contains("output"), "{e}");
    torch.rhs(0.0, &m.u, &m.p[1..], &mut out);
    assert!(out.iter().all(|x| x.is_nan()));
    // The executor checks its buffers, and says which one a function needs.
    let exec = IrExecutor::new(&m.f, Device::Cpu).unwrap();
    let u = Tensor::from_slice(&m.u);
    let e = exec.eval(0.0, [Some(&u), None, None, None]).unwrap_err();
    assert!(e.to_string().contains("parameter buffer"), "{e}");
    let short = Tensor::from_slice(&m.u[..3]);
    let e = exec
        .eval(0.0, [Some(&short), None, None, None])
        .unwrap_err();
    assert!(e.to_string().contains("state buffer"), "{e}");
}
