//! JIT kernels against the reference interpreter: RHS, JVP and VJP of every supported model
//! agree to ≤ 1e-12 relative; unsupported operations and bad buffers are errors.

use pnode_ir::{Function, Interpreter, jvp, vjp};
use pnode_jit::{CompiledFn, Error, JitErkStepper, JitModel, Placement};
use pnode_runtime::Tableau;
use pnode_runtime::model::{Rhs, RhsJvp, RhsVjp};
use pnode_testkit::prelude::*;

/// Relative error of the JIT kernel of `f` against the interpreter at `m`'s point.
fn kernel_error(f: &Function, m: &Model, extra: &[f64]) -> f64 {
    let mut want = vec![0.0; f.output_len()];
    Interpreter::new(f)
        .eval(m.t, &m.u, &m.p, extra, &mut want)
        .unwrap();
    let mut got = vec![f64::NAN; f.output_len()];
    CompiledFn::new(f)
        .unwrap()
        .eval(m.t, &m.u, &m.p, extra, &mut got)
        .unwrap();
    rel_max(&got, &want)
}

/// One row of the table: RHS, JVP and VJP errors of a model, each ≤ 1e-12.
fn check(m: Model) -> [f64; 3] {
    let v = rand_vec(7, m.u.len());
    let w = rand_vec(8, m.f.output_len());
    let e = [
        kernel_error(&m.f, &m, &[]),
        kernel_error(&jvp(&m.f).unwrap(), &m, &v),
        kernel_error(&vjp(&m.f).unwrap(), &m, &w),
    ];
    eprintln!(
        "{:<16} nodes {:>4}  rhs {:.1e}  jvp {:.1e}  vjp {:.1e}",
        m.name,
        m.f.node_count(),
        e[0],
        e[1],
        e[2]
    );
    for (what, err) in ["rhs", "jvp", "vjp"].iter().zip(e) {
        assert!(err <= 1e-12, "{} {what}: {err:e}", m.name);
    }
    e
}

#[test]
fn lotka_volterra_kernels() {
    check(lotka_volterra());
}
#[test]
fn robertson_kernels() {
    check(robertson());
}
#[test]
fn robertson_const_kernels() {
    check(robertson_const());
}
#[test]
fn van_der_pol_kernels() {
    check(van_der_pol());
}
#[test]
fn mlp_tanh_kernels() {
    check(mlp_tanh());
}
#[test]
fn spiral_kernels() {
    check(spiral());
}
#[test]
fn unary_zoo_kernels() {
    check(unary_zoo());
}
#[test]
fn structure_kernels() {
    check(structure());
}
#[test]
fn mlp_mixed_kernels() {
    check(mlp_mixed());
}
#[test]
fn broadcast_pow_kernels() {
    check(broadcast_pow());
}
#[test]
fn overlapping_reads_kernels() {
    check(overlapping_reads());
}
#[test]
fn mlp_wide_kernels() {
    check(mlp_wide());
}
#[test]
fn structure_large_kernels() {
    check(structure_large());
}
#[test]
fn mlp_mixed_large_kernels() {
    check(mlp_mixed_large());
}

#[test]
fn jit_model_matches_the_interpreter_model() {
    for m in supported_models() {
        let (n, np) = (m.u.len(), m.p.len());
        let mut ir = pnode_ir::runtime::IrModel::new(&m.f).unwrap();
        let mut jit = JitModel::new(&m.f).unwrap();
        assert_eq!((jit.state_len(), jit.param_len()), (n, np));
        let v = rand_vec(3, n);
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        ir.rhs(m.t, &m.u, &m.p, &mut a);
        jit.rhs(m.t, &m.u, &m.p, &mut b);
        assert!(rel_max(&b, &a) <= 1e-12, "{}", m.name);
        ir.jvp(m.t, &m.u, &m.p, &v, &mut a);
        jit.jvp(m.t, &m.u, &m.p, &v, &mut b);
        assert!(rel_max(&b, &a) <= 1e-12, "{}", m.name);
        let (mut gu, mut gp, mut hu, mut hp) =
            (vec![0.0; n], vec![0.0; np], vec![0.0; n], vec![0.0; np]);
        ir.vjp(m.t, &m.u, &m.p, &v, &mut gu, &mut gp);
        jit.vjp(m.t, &m.u, &m.p, &v, &mut hu, &mut hp);
        assert!(rel_max(&hu, &gu) <= 1e-12, "{}", m.name);
        assert!(rel_max(&hp, &gp) <= 1e-12, "{}", m.name);
        let fused = JitErkStepper::new(Tableau::dopri5(), &m.f).unwrap();
        eprintln!(
            "{:<16} compile: JitModel {:.2} ms, fused dopri5 {:.2} ms",
            m.name,
            jit.compile_time().as_secs_f64() * 1e3,
            fused.compile_time().as_secs_f64() * 1e3
        );
        assert!(jit.compile_time().as_secs_f64() > 0.0);
    }
}

#[test]
fn compiled_code_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CompiledFn>();
    send_sync::<JitModel>();
    send_sync::<JitErkStepper>();
    let m = mlp_tanh();
    let mut jit = JitModel::new(&m.f).unwrap();
    let mut a = vec![0.0; m.u.len()];
    jit.rhs(0.0, &m.u, &m.p, &mut a);
    let b = std::thread::spawn(move || {
        let mut b = vec![0.0; m.u.len()];
        jit.rhs(0.0, &m.u, &m.p, &mut b);
        b
    })
    .join()
    .unwrap();
    assert!(same_bits(&a, &b));
}

#[test]
fn the_lotka_volterra_rhs_never_touches_scratch() {
    let m = lotka_volterra();
    let jit = CompiledFn::new(&m.f).unwrap();
    assert_eq!(jit.scratch_len(), 0);
    assert!(
        jit.layout_table()
            .iter()
            .all(|p| matches!(p, Placement::Registers))
    );
    // The wide MLP's hidden layers live in scratch.
    let wide = CompiledFn::new(&mlp_wide().f).unwrap();
    assert!(wide.scratch_len() >= 2 * 64 * 64);
    assert!(
        wide.layout_table()
            .iter()
            .any(|p| matches!(p, Placement::Scratch { len: 4096, .. }))
    );
}

#[test]
fn convolutions_and_group_norms_are_unsupported() {
    for m in [conv_groupnorm(), conv_stride2()] {
        assert_eq!(
            CompiledFn::new(&m.f).unwrap_err(),
            Error::Unsupported { op: "conv2d" },
            "{}",
            m.name
        );
    }
    let m = conv_groupnorm();
    assert!(matches!(
        JitModel::new(&m.f),
        Err(Error::Unsupported { op: "conv2d" })
    ));
    assert!(matches!(
        JitErkStepper::new(Tableau::rk4(), &m.f),
        Err(Error::Unsupported { op: "conv2d" })
    ));
    let msg = Error::Unsupported { op: "group_norm" }.to_string();
    assert!(msg.contains("group_norm"), "{msg}");
}

#[test]
fn wrong_lengths_are_errors_not_crashes() {
    let m = lotka_volterra();
    let mut f = CompiledFn::new(&m.f).unwrap();
    let mut out = [0.0; 2];
    let e = f.eval(0.0, &[1.0], &m.p, &[], &mut out).unwrap_err();
    assert_eq!(
        e,
        Error::Length {
            what: "u",
            expected: 2,
            found: 1
        }
    );
    assert!(f.eval(0.0, &m.u, &m.p[..3], &[], &mut out).is_err());
    assert!(f.eval(0.0, &m.u, &m.p, &[1.0], &mut out).is_err());
    assert!(f.eval(0.0, &m.u, &m.p, &[], &mut [0.0; 3]).is_err());
    // Through the runtime traits: NaN instead of a panic.
    let mut jm = JitModel::new(&m.f).unwrap();
    let mut f3 = [0.0; 3];
    jm.rhs(0.0, &m.u, &m.p, &mut f3);
    assert!(f3.iter().all(|x| x.is_nan()));
    // A non-RHS function is rejected by the model constructors.
    let s2 = conv_stride2();
    assert!(matches!(
        JitModel::new(&s2.f),
        Err(Error::InvalidModel(_) | Error::Unsupported { .. })
    ));
    let r = pnode_ir::vjp(&m.f).unwrap();
    assert!(matches!(JitModel::new(&r), Err(Error::InvalidModel(_))));
}
