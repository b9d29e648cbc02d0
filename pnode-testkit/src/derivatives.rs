//! Evaluating a function with the reference interpreter, and the derivative checks every
//! derivative test applies to a model of the tables: the JVP against central differences, the
//! dot-product test, and the VJP's parameter part against central differences.

use crate::models::{Model, rand_vec};
use crate::numeric::{abs_err, ip, norm, rel_err};
use pnode_ir::{Function, Interpreter, jvp, vjp};

/// `f(t, u, p; extra)` by the reference interpreter, as a fresh vector; panics if the lengths
/// do not fit `f`'s layout.
pub fn eval(f: &Function, t: f64, u: &[f64], p: &[f64], extra: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; f.output_len()];
    Interpreter::new(f)
        .eval(t, u, p, extra, &mut out)
        .expect("lengths match");
    out
}

/// The worst errors found by [`check`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Errors {
    /// `‖f_u v − FD‖ / ‖FD‖`: the JVP against central differences.
    pub jvp_fd: f64,
    /// `|⟨f_u v, w⟩ − ⟨v, f_uᵀ w⟩| / (‖f_u v‖ ‖w‖ + ‖v‖ ‖f_uᵀ w‖)`: the dot-product test.
    pub dot: f64,
    /// `‖f_θᵀ w − FD‖ / ‖FD‖`: the VJP's parameter part against central differences.
    pub vjp_p_fd: f64,
    /// Absolute version of `jvp_fd` (for references that vanish).
    pub jvp_fd_abs: f64,
    /// Absolute version of `vjp_p_fd` (for references that vanish).
    pub vjp_p_fd_abs: f64,
}

/// JVP vs central differences (relative), the dot-product test `⟨f_u v, w⟩ = ⟨v, f_uᵀ w⟩`
/// normalized by `‖f_u v‖ ‖w‖ + ‖v‖ ‖f_uᵀ w‖`, and `f_θᵀ w` vs central differences of
/// `⟨f(θ), w⟩` in each parameter (relative, as a vector), at the model's point with fixed
/// random directions `v`, `w`. Panics if the model's layout does not match its point.
pub fn check(m: &Model) -> Errors {
    let f = &m.f;
    let (n, np, no) = (m.u.len(), m.p.len(), f.output_len());
    assert_eq!((f.layout().state, f.layout().param), (n, np), "{}", m.name);
    let j = jvp(f).expect("jvp");
    let r = vjp(f).expect("vjp");
    let v = rand_vec(11, n);
    let w = rand_vec(23, no);
    // JVP vs central differences.
    let jv = eval(&j, m.t, &m.u, &m.p, &v);
    let scale = m.u.iter().fold(1.0f64, |a, x| a.max(x.abs()));
    let h = 1e-6 * scale;
    let shift = |s: f64| -> Vec<f64> { m.u.iter().zip(&v).map(|(a, b)| a + s * b).collect() };
    let fp = eval(f, m.t, &shift(h), &m.p, &[]);
    let fm = eval(f, m.t, &shift(-h), &m.p, &[]);
    let fd: Vec<f64> = fp
        .iter()
        .zip(&fm)
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect();
    let jvp_fd = rel_err(&jv, &fd);
    // Dot-product test.
    let g = eval(&r, m.t, &m.u, &m.p, &w);
    let (gu, gp) = g.split_at(n);
    let (lhs, rhs) = (ip(&jv, &w), ip(&v, gu));
    let dot = (lhs - rhs).abs() / (norm(&jv) * norm(&w) + norm(&v) * norm(gu)).max(1e-300);
    // Parameter part vs central differences.
    let mut fdp = vec![0.0; np];
    for k in 0..np {
        let hk = 1e-6 * m.p[k].abs().max(1.0);
        let mut pp = m.p.clone();
        pp[k] += hk;
        let a = ip(&eval(f, m.t, &m.u, &pp, &[]), &w);
        pp[k] -= 2.0 * hk;
        let b = ip(&eval(f, m.t, &m.u, &pp, &[]), &w);
        fdp[k] = (a - b) / (2.0 * hk);
    }
    let vjp_p_fd = if np == 0 { 0.0 } else { rel_err(gp, &fdp) };
    Errors {
        jvp_fd,
        dot,
        vjp_p_fd,
        jvp_fd_abs: abs_err(&jv, &fd),
        vjp_p_fd_abs: abs_err(gp, &fdp),
    }
}
