//! The corpus of IR models the emitted-code tests compile and check (feature `testmodels`):
//! the models of `pnode_ir::testmodels` (shared with pnode-ir's derivative tests and the JIT's
//! kernel tests) that code generation supports (no convolutions or group norms), random models,
//! corner cases of output writing, and two tableaux as plain data.
#![allow(missing_docs, clippy::missing_panics_doc)]

use crate::{EmbeddedWeights, ErkCoefficients};
pub use pnode_ir::testmodels::{
    TestModel, broadcast_pow, lotka_volterra, mlp_mixed, mlp_tanh, overlapping_reads, rand_vec,
    robertson, robertson_const, spiral, structure, unary_zoo, van_der_pol,
};
use pnode_ir::{Builder, Function, Layout};

/// Every model of the corpus.
pub fn all() -> Vec<TestModel> {
    vec![
        lotka_volterra(),
        robertson(),
        robertson_const(),
        van_der_pol(),
        mlp_tanh(),
        spiral(),
        unary_zoo(),
        structure(),
        mlp_mixed(),
        broadcast_pow(),
        overlapping_reads(),
    ]
}

/// The model called `name`.
pub fn by_name(name: &str) -> Option<TestModel> {
    all().into_iter().find(|m| m.name == name)
}

/// A random RHS over a `[2, 3]` and a `[3, 2]` state and `[3]`, `[2, 1]` parameters: a chain of
/// 24 operations (arithmetic with broadcasting, matmul, transposes, sums and means, index,
/// slice, pad, concat, stack, broadcasts, reshapes and unary functions) drawn from `seed`;
/// operations that do not fit their operands' shapes are skipped. The outputs are the last
/// value (or, when it does not have 6 elements, the first state times its sum) and
/// `tanh` of the second state.
pub fn random(seed: u64) -> TestModel {
    let mut b = Builder::new(Layout::new(12, 5));
    let mut pool = vec![
        b.state(0, [2, 3]).unwrap(),
        b.state(6, [3, 2]).unwrap(),
        b.param(0, [3]).unwrap(),
        b.param(3, [2, 1]).unwrap(),
        b.time(),
    ];
    let draws = rand_vec(seed.wrapping_mul(7919).wrapping_add(13), 3 * 24);
    let pick = |x: f64, n: usize| (((x + 1.0) * 0.5 * n as f64) as usize).min(n - 1);
    for k in 0..24 {
        let code = pick(draws[3 * k], 24);
        let x = pool[pick(draws[3 * k + 1], pool.len())];
        let y = pool[pick(draws[3 * k + 2], pool.len())];
        let r = match code {
            0 => b.add(x, y),
            1 => b.sub(x, y),
            2 => b.mul(x, y),
            3 => {
                let two = b.scalar(2.0);
                b.add(y, two)
                    .and_then(|d| b.mul(d, d))
                    .and_then(|d| b.div(x, d))
            }
            4 => b.tanh(x),
            5 => b.sin(x),
            6 => b.matmul(x, y),
            7 => b.sum(x),
            8 => b.sum_axis(x, 0),
            9 => b.transpose(x),
            10 => b.index(x, &[1]),
            11 => b.slice(x, 0, 0, 1),
            12 => b.concat(&[x, y], 0),
            13 => b.mean_axis(x, 1),
            14 => b.softplus(x),
            15 => b.stack(&[x, y], 0),
            16 => b.pad(x, 0, 1, 2),
            17 => b.slice(x, 1, 1, 2),
            18 => b.sigmoid(x),
            19 => b.gelu(x),
            20 => b.broadcast_to(x, [2, 3]),
            21 => b.powi(x, 2),
            22 => b.cos(x).and_then(|c| b.mul(c, y)),
            _ => b.flatten(x),
        };
        if let Ok(id) = r {
            pool.push(id);
        }
    }
    let last = *pool.last().unwrap();
    let first = if b.shape(last).unwrap().len() == 6 {
        b.flatten(last).unwrap()
    } else {
        let s = b.sum(last).unwrap();
        let a = b.flatten(pool[0]).unwrap();
        b.mul(a, s).unwrap()
    };
    let second = b.tanh(pool[1]).unwrap();
    let second = b.flatten(second).unwrap();
    TestModel {
        name: "random",
        f: b.finish_rhs(&[first, second]).unwrap(),
        t: 0.4,
        u: rand_vec(1 + seed, 12),
        p: rand_vec(1000 + seed, 5),
    }
}

/// Corner cases of output writing: the identity `f = u`, a constant, the time broadcast, the
/// same node as two outputs, an output concatenation of inputs and zeros, and scalar states.
pub fn edge_cases() -> Vec<TestModel> {
    let model = |f: Function| TestModel {
        name: "edge",
        t: 0.25,
        u: rand_vec(77, f.layout().state),
        p: rand_vec(78, f.layout().param),
        f,
    };
    let mut out = Vec::new();
    // f = u.
    let mut b = Builder::new(Layout::new(3, 0));
    let u = b.state(0, [3]).unwrap();
    out.push(model(b.finish_rhs(&[u]).unwrap()));
    // f = [1, 2, 2] (a constant table; derivatives are zero).
    let mut b = Builder::new(Layout::new(3, 1));
    let c = b.tensor([3], vec![1.0, 2.0, 2.0]).unwrap();
    out.push(model(b.finish_rhs(&[c]).unwrap()));
    // f = t · θ₀ broadcast to [2, 2], flattened.
    let mut b = Builder::new(Layout::new(4, 1));
    let t = b.time();
    let k = b.param(0, []).unwrap();
    let tk = b.mul(t, k).unwrap();
    let f = b.broadcast_to(tk, [2, 2]).unwrap();
    let f = b.flatten(f).unwrap();
    out.push(model(b.finish_rhs(&[f]).unwrap()));
    // f = [g, g] with g = sin(u[0..2]) ⊙ θ.
    let mut b = Builder::new(Layout::new(4, 2));
    let x = b.state(0, [2]).unwrap();
    let k = b.param(0, [2]).unwrap();
    let s = b.sin(x).unwrap();
    let g = b.mul(s, k).unwrap();
    out.push(model(b.finish_rhs(&[g, g]).unwrap()));
    // f = [u[3], 0, 0, u[0] u[1] u[2]]: scalar states, zeros, a concatenation to the output.
    let mut b = Builder::new(Layout::new(4, 0));
    let us: Vec<_> = (0..4).map(|i| b.state(i, []).unwrap()).collect();
    let z = b.zeros([2]).unwrap();
    let a = b.reshape(us[3], [1]).unwrap();
    let m = b.mul(us[0], us[1]).unwrap();
    let m = b.mul(m, us[2]).unwrap();
    let m = b.reshape(m, [1]).unwrap();
    let f = b.concat(&[a, z, m], 0).unwrap();
    out.push(model(b.finish_rhs(&[f]).unwrap()));
    out
}

/// Classic RK4 (the coefficients of `pnode_runtime::Tableau::rk4`).
pub fn rk4() -> ErkCoefficients {
    ErkCoefficients {
        name: "rk4".into(),
        a: vec![vec![], vec![0.5], vec![0.0, 0.5], vec![0.0, 0.0, 1.0]],
        b: vec![1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
        c: vec![0.0, 0.5, 0.5, 1.0],
    }
}

/// Dormand–Prince 5(4) (the coefficients of `pnode_runtime::Tableau::dopri5`; its FSAL
/// seventh stage has `b_7 = 0` and is dead at fixed steps).
#[rustfmt::skip]
pub fn dopri5() -> ErkCoefficients {
    let b = vec![35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0,
                 0.0];
    let a = vec![
        vec![],
        vec![1.0 / 5.0],
        vec![3.0 / 40.0, 9.0 / 40.0],
        vec![44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        vec![19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
        vec![9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
        b[..6].to_vec(),
    ];
    let c = vec![0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0];
    ErkCoefficients { name: "dopri5".into(), a, b, c }
}

/// Dormand–Prince's embedded order-4 weights (those of `pnode_runtime::Tableau::dopri5`; the
/// estimate has order 4, the pair is FSAL).
#[rustfmt::skip]
pub fn dopri5_embedded() -> EmbeddedWeights {
    EmbeddedWeights {
        b_hat: vec![5179.0 / 57600.0, 0.0, 7571.0 / 16695.0, 393.0 / 640.0,
                    -92097.0 / 339200.0, 187.0 / 2100.0, 1.0 / 40.0],
        error_order: 4,
        fsal: true,
    }
}

/// Runge–Kutta–Fehlberg 4(5) (the coefficients of `pnode_runtime::Tableau::fehlberg45`: order
/// 4 propagated, so the sixth stage has `b_6 = 0` and only the estimate needs it).
#[rustfmt::skip]
pub fn fehlberg45() -> ErkCoefficients {
    ErkCoefficients {
        name: "fehlberg45".into(),
        a: vec![
            vec![],
            vec![0.25],
            vec![3.0 / 32.0, 9.0 / 32.0],
            vec![1932.0 / 2197.0, -7200.0 / 2197.0, 7296.0 / 2197.0],
            vec![439.0 / 216.0, -8.0, 3680.0 / 513.0, -845.0 / 4104.0],
            vec![-8.0 / 27.0, 2.0, -3544.0 / 2565.0, 1859.0 / 4104.0, -11.0 / 40.0],
        ],
        b: vec![25.0 / 216.0, 0.0, 1408.0 / 2565.0, 2197.0 / 4104.0, -1.0 / 5.0, 0.0],
        c: vec![0.0, 0.25, 0.375, 12.0 / 13.0, 1.0, 0.5],
    }
}

/// Fehlberg's embedded order-5 weights (estimate of order 4, not FSAL).
#[rustfmt::skip]
pub fn fehlberg45_embedded() -> EmbeddedWeights {
    EmbeddedWeights {
        b_hat: vec![16.0 / 135.0, 0.0, 6656.0 / 12825.0, 28561.0 / 56430.0, -9.0 / 50.0,
                    2.0 / 55.0],
        error_order: 4,
        fsal: false,
    }
}
