//! The derivative checks on every model of the table: JVP vs central differences, the
//! dot-product test, and the VJP's parameter part vs central differences.

use pnode_testkit::prelude::*;

/// One row: a model and its bounds (JVP-vs-FD, dot product, VJP_θ-vs-FD).
fn check_model(m: Model) {
    let e = check(&m);
    eprintln!(
        "{:<16} nodes {:>4}  jvp-fd {:.2e}  dot {:.2e}  vjp_p-fd {:.2e}",
        m.name,
        m.f.node_count(),
        e.jvp_fd,
        e.dot,
        e.vjp_p_fd
    );
    assert!(e.jvp_fd <= 1e-7, "{}: JVP vs FD {:e}", m.name, e.jvp_fd);
    assert!(e.dot <= 1e-12, "{}: dot-product test {:e}", m.name, e.dot);
    assert!(
        e.vjp_p_fd <= 1e-7,
        "{}: VJP_θ vs FD {:e}",
        m.name,
        e.vjp_p_fd
    );
}

#[test]
fn lotka_volterra_derivatives() {
    check_model(lotka_volterra());
}
#[test]
fn robertson_derivatives() {
    check_model(robertson());
}
#[test]
fn robertson_const_derivatives() {
    check_model(robertson_const());
}
#[test]
fn van_der_pol_derivatives() {
    check_model(van_der_pol());
}
#[test]
fn mlp_tanh_derivatives() {
    check_model(mlp_tanh());
}
#[test]
fn spiral_derivatives() {
    check_model(spiral());
}
#[test]
fn unary_zoo_derivatives() {
    check_model(unary_zoo());
}
#[test]
fn structure_derivatives() {
    check_model(structure());
}
#[test]
fn conv_groupnorm_derivatives() {
    check_model(conv_groupnorm());
}
#[test]
fn conv_stride2_derivatives() {
    check_model(conv_stride2());
}
#[test]
fn mlp_mixed_derivatives() {
    check_model(mlp_mixed());
}
#[test]
fn broadcast_pow_derivatives() {
    check_model(broadcast_pow());
}
#[test]
fn overlapping_reads_derivatives() {
    check_model(overlapping_reads());
}

#[test]
fn unused_parameter_has_zero_gradient() {
    // θ[3] of `overlapping_reads` is never read.
    let m = overlapping_reads();
    let g = eval(&pnode_ir::vjp(&m.f).unwrap(), 0.0, &m.u, &m.p, &[1.0; 4]);
    assert_eq!(g[4 + 3], 0.0);
    assert!(g[4..7].iter().all(|x| *x != 0.0));
}

/// Second order: `jvp(vjp(f))` (the derivative of `f_uᵀ w` in `u` along `v`) against central
/// differences of the VJP.
fn check_second_order(m: Model) {
    use pnode_ir::{Interpreter, jvp, vjp};
    let (n, np) = (m.u.len(), m.p.len());
    let g = vjp(&m.f).unwrap();
    let h = jvp(&g).unwrap();
    let w = rand_vec(5, m.f.output_len());
    let v = rand_vec(6, n);
    let mut out = vec![0.0; n + np];
    Interpreter::new(&h)
        .eval_buffers(m.t, [&m.u, &m.p, &v, &w], &mut out)
        .unwrap();
    let eps = 1e-6;
    let at = |s: f64| {
        let u: Vec<f64> = m.u.iter().zip(&v).map(|(a, b)| a + s * b).collect();
        eval(&g, m.t, &u, &m.p, &w)
    };
    let (a, b) = (at(eps), at(-eps));
    let fd: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y) / (2.0 * eps))
        .collect();
    let e = rel_err(&out, &fd);
    eprintln!("{:<16} second order (jvp of vjp) vs FD {e:.2e}", m.name);
    assert!(e <= 1e-7, "{}: {e:e}", m.name);
}

#[test]
fn second_order_derivatives() {
    for m in [
        lotka_volterra(),
        van_der_pol(),
        mlp_tanh(),
        spiral(),
        unary_zoo(),
        structure(),
        mlp_mixed(),
        broadcast_pow(),
        overlapping_reads(),
    ] {
        check_second_order(m);
    }
}
