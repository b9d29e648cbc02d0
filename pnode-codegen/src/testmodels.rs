//! The corpus of IR models the emitted-code tests compile and check (feature `testmodels`):
//! the models of `pnode-ir`'s derivative tests that code generation supports (no convolutions
//! or group norms), each with a point to check it at, and two tableaux as plain data.
#![allow(missing_docs, clippy::missing_panics_doc)]

use crate::ErkCoefficients;
use pnode_ir::layers::{Activation, linear, mlp, mlp_param_len};
use pnode_ir::{Builder, Function, Layout, NodeId};

/// A function with a point `(t, u, θ)` to check it at.
#[derive(Debug, Clone)]
pub struct TestModel {
    /// snake_case name (the generated type is its CamelCase form, [`TestModel::type_name`]).
    pub name: &'static str,
    pub f: Function,
    pub t: f64,
    pub u: Vec<f64>,
    pub p: Vec<f64>,
}

impl TestModel {
    /// The CamelCase type name of the generated model: `lotka_volterra` → `LotkaVolterra`.
    pub fn type_name(&self) -> String {
        self.name
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }
}

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

/// Deterministic pseudo-random numbers in `[-1, 1)` (SplitMix64).
pub fn rand_vec(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

fn scalar_params(b: &mut Builder, k: usize) -> Vec<NodeId> {
    (0..k).map(|i| b.param(i, []).unwrap()).collect()
}

pub fn lotka_volterra() -> TestModel {
    let mut b = Builder::new(Layout::new(2, 4));
    let u = b.state(0, [2]).unwrap();
    let x = b.index(u, &[0]).unwrap();
    let y = b.index(u, &[1]).unwrap();
    let k = scalar_params(&mut b, 4);
    let (a, be, d, g) = (k[0], k[1], k[2], k[3]);
    let xy = b.mul(x, y).unwrap();
    let ax = b.mul(a, x).unwrap();
    let bxy = b.mul(be, xy).unwrap();
    let f0 = b.sub(ax, bxy).unwrap();
    let dxy = b.mul(d, xy).unwrap();
    let gy = b.mul(g, y).unwrap();
    let f1 = b.sub(dxy, gy).unwrap();
    let f = b.stack(&[f0, f1], 0).unwrap();
    TestModel {
        name: "lotka_volterra",
        f: b.finish_rhs(&[f]).unwrap(),
        t: 0.0,
        u: vec![1.2, 0.7],
        p: vec![1.5, 1.0, 3.0, 1.0],
    }
}

/// Robertson with the rates as parameters `θ = [k1, k2, k3]`.
pub fn robertson() -> TestModel {
    let mut b = Builder::new(Layout::new(3, 3));
    let k = scalar_params(&mut b, 3);
    robertson_with(b, k[0], k[1], k[2], vec![0.04, 3e7, 1e4], "robertson")
}

/// Robertson with the rates as constants `k1 = 0.04, k2 = 3e7, k3 = 1e4`.
pub fn robertson_const() -> TestModel {
    let mut b = Builder::new(Layout::new(3, 0));
    let (k1, k2, k3) = (b.scalar(0.04), b.scalar(3e7), b.scalar(1e4));
    robertson_with(b, k1, k2, k3, vec![], "robertson_const")
}

fn robertson_with(
    mut b: Builder,
    k1: NodeId,
    k2: NodeId,
    k3: NodeId,
    p: Vec<f64>,
    name: &'static str,
) -> TestModel {
    let u = b.state(0, [3]).unwrap();
    let y: Vec<NodeId> = (0..3).map(|i| b.index(u, &[i]).unwrap()).collect();
    let r1 = b.mul(k1, y[0]).unwrap();
    let y23 = b.mul(y[1], y[2]).unwrap();
    let r3 = b.mul(k3, y23).unwrap();
    let y22 = b.mul(y[1], y[1]).unwrap();
    let r2 = b.mul(k2, y22).unwrap();
    let nr1 = b.neg(r1).unwrap();
    let f0 = b.add(nr1, r3).unwrap();
    let t = b.sub(r1, r3).unwrap();
    let f1 = b.sub(t, r2).unwrap();
    let f = b.stack(&[f0, f1, r2], 0).unwrap();
    TestModel {
        name,
        f: b.finish_rhs(&[f]).unwrap(),
        t: 0.0,
        u: vec![0.9, 3e-5, 0.1],
        p,
    }
}

pub fn van_der_pol() -> TestModel {
    let mut b = Builder::new(Layout::new(2, 1));
    let x = b.state(0, []).unwrap();
    let y = b.state(1, []).unwrap();
    let mu = b.param(0, []).unwrap();
    let one = b.scalar(1.0);
    let x2 = b.mul(x, x).unwrap();
    let c = b.sub(one, x2).unwrap();
    let c = b.mul(mu, c).unwrap();
    let c = b.mul(c, y).unwrap();
    let f1 = b.sub(c, x).unwrap();
    let f = b.stack(&[y, f1], 0).unwrap();
    TestModel {
        name: "van_der_pol",
        f: b.finish_rhs(&[f]).unwrap(),
        t: 0.0,
        u: vec![1.3, -0.4],
        p: vec![2.0],
    }
}

/// A 2-16-16-2 tanh MLP over a batched state `[4, 2]` (the layout of `problems::Mlp`).
pub fn mlp_tanh() -> TestModel {
    let widths = [2, 16, 16, 2];
    let np = mlp_param_len(&widths);
    let mut b = Builder::new(Layout::new(8, np));
    let u = b.state(0, [4, 2]).unwrap();
    let (y, used) = mlp(&mut b, u, &widths, 0, Activation::Tanh).unwrap();
    assert_eq!(used, np);
    let y = b.flatten(y).unwrap();
    TestModel {
        name: "mlp_tanh",
        f: b.finish_rhs(&[y]).unwrap(),
        t: 0.0,
        u: rand_vec(1, 8),
        p: rand_vec(2, np).iter().map(|x| 0.5 * x).collect(),
    }
}

/// The torchdiffeq spiral `du/dt = (u³) A` with `A` a parameter, plus a forcing `sin t`.
pub fn spiral() -> TestModel {
    let mut b = Builder::new(Layout::new(2, 4));
    let u = b.state(0, [2]).unwrap();
    let a = b.param(0, [2, 2]).unwrap();
    let u3 = b.powi(u, 3).unwrap();
    let f = b.matmul(u3, a).unwrap();
    let t = b.time();
    let st = b.sin(t).unwrap();
    let st = b.scale(st, 0.1).unwrap();
    let f = b.add(f, st).unwrap();
    TestModel {
        name: "spiral",
        f: b.finish_rhs(&[f]).unwrap(),
        t: 0.3,
        u: vec![2.0, 0.5],
        p: vec![-0.1, 2.0, -2.0, -0.1],
    }
}

/// Every unary function (and the general power) on `s = θ₀ u`, `u > 0`.
pub fn unary_zoo() -> TestModel {
    let mut b = Builder::new(Layout::new(5, 2));
    let u = b.state(0, [5]).unwrap();
    let k = b.param(0, []).unwrap();
    let e = b.param(1, []).unwrap();
    let s = b.mul(k, u).unwrap();
    let mut terms = vec![
        b.tanh(s).unwrap(),
        b.sigmoid(s).unwrap(),
        b.softplus(s).unwrap(),
        b.gelu(s).unwrap(),
        b.exp(s).unwrap(),
        b.log(u).unwrap(),
        b.sin(s).unwrap(),
        b.cos(s).unwrap(),
        b.sqrt(u).unwrap(),
        b.norm_cdf(s).unwrap(),
        b.pow(u, e).unwrap(),
        b.powf(u, 1.5).unwrap(),
        b.powi(s, -2).unwrap(),
    ];
    let half = b.scalar(0.5);
    let sh = b.sub(s, half).unwrap();
    terms.push(b.relu(sh).unwrap());
    let a = b.abs(sh).unwrap();
    terms.push(b.mul(a, s).unwrap());
    let one = b.scalar(1.0);
    let den = b.add(one, s).unwrap();
    terms.push(b.div(u, den).unwrap());
    terms.push(b.neg(s).unwrap());
    // A product keeps the terms from being separable.
    let mut acc = terms[0];
    for &t in &terms[1..] {
        acc = b.add(acc, t).unwrap();
    }
    let prod = b.mul(terms[0], terms[4]).unwrap();
    let f = b.add(acc, prod).unwrap();
    TestModel {
        name: "unary_zoo",
        f: b.finish_rhs(&[f]).unwrap(),
        t: 0.0,
        u: vec![0.3, 0.9, 1.4, 2.1, 0.6],
        p: vec![0.8, 1.7],
    }
}

/// Slices, sums, means, indexing, padding, concatenation, transposes and broadcasting on a
/// `[3, 4]` state.
pub fn structure() -> TestModel {
    let mut b = Builder::new(Layout::new(12, 3));
    let u = b.state(0, [3, 4]).unwrap();
    let p = b.param(0, [3]).unwrap();
    let th = b.tanh(u).unwrap();
    let m = b.mean(u).unwrap();
    let p0 = b.index(p, &[0]).unwrap();
    let pm = b.mul(p0, m).unwrap();
    let a = b.mul(th, pm).unwrap(); // [3,4]
    let sl = b.slice(u, 1, 1, 3).unwrap(); // [3,2]
    let s = b.sum_axis(sl, 1).unwrap(); // [3]
    let s = b.reshape(s, [3, 1]).unwrap();
    let s2 = b.mul(s, p).unwrap(); // [3,1]*[3] -> [3,3]
    let s2 = b.pad(s2, 1, 0, 1).unwrap(); // [3,4]
    let mc = b.mean_axis(u, 0).unwrap(); // [4]
    let row = b.index(u, &[2]).unwrap(); // [4]
    let r = b.mul(mc, row).unwrap();
    let sq = b.square(sl).unwrap();
    let tail = b.slice(u, 1, 0, 2).unwrap();
    let c = b.concat(&[sq, tail], 1).unwrap(); // [3,4]
    let ut = b.transpose(u).unwrap(); // [4,3]
    let sut = b.sum_axis(ut, 1).unwrap(); // [4]
    let total = b.sum(sq).unwrap();
    let mut f = b.add(a, s2).unwrap();
    f = b.add(f, r).unwrap();
    f = b.add(f, c).unwrap();
    f = b.add(f, sut).unwrap();
    let p2 = b.index(p, &[2]).unwrap();
    let tp = b.mul(total, p2).unwrap();
    f = b.add(f, tp).unwrap();
    let f = b.flatten(f).unwrap();
    TestModel {
        name: "structure",
        f: b.finish_rhs(&[f]).unwrap(),
        t: 0.0,
        u: rand_vec(5, 12),
        p: vec![0.7, -1.2, 0.4],
    }
}

/// A 3-8-8-3 MLP with GELU, softplus and sigmoid activations over a `[2, 3]` batch.
pub fn mlp_mixed() -> TestModel {
    let mut b = Builder::new(Layout::new(6, 8 * 3 + 8 + 8 * 8 + 8 + 3 * 8 + 3));
    let u = b.state(0, [2, 3]).unwrap();
    let mut off = 0;
    let mut layer = |b: &mut Builder, x: NodeId, n_in: usize, n_out: usize| {
        let w = b.param(off, [n_out, n_in]).unwrap();
        let bias = b.param(off + n_in * n_out, [n_out]).unwrap();
        off += n_in * n_out + n_out;
        linear(b, x, w, Some(bias)).unwrap()
    };
    let h = layer(&mut b, u, 3, 8);
    let h = b.gelu(h).unwrap();
    let h = layer(&mut b, h, 8, 8);
    let h = b.softplus(h).unwrap();
    let h = layer(&mut b, h, 8, 3);
    let h = b.sigmoid(h).unwrap();
    let f = b.flatten(h).unwrap();
    let np = b.layout().param;
    TestModel {
        name: "mlp_mixed",
        f: b.finish_rhs(&[f]).unwrap(),
        t: 0.0,
        u: rand_vec(3, 6),
        p: rand_vec(4, np),
    }
}

/// Several outputs, a general power with both operands state-dependent, broadcasting of a
/// `[2, 1]` against a `[3]` and a function of time.
pub fn broadcast_pow() -> TestModel {
    let mut b = Builder::new(Layout::new(5, 2));
    let a = b.state(0, [2, 1]).unwrap();
    let c = b.state(2, [3]).unwrap();
    let p = b.param(0, [2]).unwrap();
    let ea = b.exp(a).unwrap();
    let pw = b.pow(ea, c).unwrap(); // [2,3]
    let p0 = b.index(p, &[0]).unwrap();
    let t = b.time();
    let tp = b.mul(t, p0).unwrap();
    let x = b.mul(pw, tp).unwrap();
    let s = b.sum_axis(x, 1).unwrap(); // [2]
    let pr = b.reshape(p, [2, 1]).unwrap();
    let q = b.div(c, pr).unwrap(); // [2,3]
    let q = b.sum_axis(q, 0).unwrap(); // [3]
    TestModel {
        name: "broadcast_pow",
        f: b.finish_rhs(&[s, q]).unwrap(),
        t: 0.7,
        u: vec![0.3, -0.2, 0.5, 1.1, -0.7],
        p: vec![1.3, 0.8],
    }
}

/// Overlapping reads of the same buffers (`u[0..3]`, `u[1..4]`, `u[2]`; `θ[0..2]`, `θ[1..3]`),
/// so the gradient assembly takes its summing path.
pub fn overlapping_reads() -> TestModel {
    let mut b = Builder::new(Layout::new(4, 4));
    let a = b.state(0, [3]).unwrap();
    let c = b.state(1, [3]).unwrap();
    let s = b.state(2, []).unwrap();
    let p1 = b.param(0, [2]).unwrap();
    let p2 = b.param(1, [2]).unwrap();
    let ac = b.mul(a, c).unwrap();
    let t = b.tanh(ac).unwrap();
    let t = b.mul(t, s).unwrap(); // [3]
    let q = b.mul(p1, p2).unwrap(); // [2]
    let q = b.sum(q).unwrap();
    let t = b.mul(t, q).unwrap();
    let e = b.exp(s).unwrap();
    let e = b.reshape(e, [1]).unwrap();
    let f = b.concat(&[t, e], 0).unwrap();
    TestModel {
        name: "overlapping",
        f: b.finish_rhs(&[f]).unwrap(),
        t: 0.0,
        u: vec![0.4, -0.3, 0.8, 0.5],
        p: vec![0.9, -0.6, 1.1, 7.0],
    }
}
