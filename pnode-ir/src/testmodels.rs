//! Models built with the [`Builder`](crate::Builder), each with a point to check it at
//! (feature `testmodels`): the one corpus shared by the derivative tests of this crate, the
//! JIT's kernel tests and the generated-code tests of `pnode-codegen`, so that every back end is
//! checked on the same functions.
#![allow(missing_docs, clippy::missing_panics_doc)]

use crate::layers::{Activation, linear, mlp, mlp_param_len};
use crate::{Builder, ConvParams, Function, Layout, NodeId};

/// A function with a point `(t, u, θ)` to check it at.
#[derive(Debug, Clone)]
pub struct TestModel {
    /// snake_case name (a generated type takes its CamelCase form, [`TestModel::type_name`]).
    pub name: &'static str,
    pub f: Function,
    pub t: f64,
    pub u: Vec<f64>,
    pub p: Vec<f64>,
}

impl TestModel {
    /// The CamelCase type name of a generated model: `lotka_volterra` → `LotkaVolterra`.
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

/// `k` scalar parameters `θ_0 … θ_{k−1}`.
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

/// `relu(groupnorm(conv2d(u)))` followed by a second convolution, over a `[2, 5, 5]` state.
pub fn conv_groupnorm() -> TestModel {
    let (c, h, w) = (2, 5, 5);
    let mut off = 0;
    let mut b = Builder::new(Layout::new(c * h * w, 2 * (c * c * 9 + c) + 2 * c));
    let mut take = |b: &mut Builder, shape: &[usize]| {
        let n: usize = shape.iter().product();
        let id = b.param(off, shape).unwrap();
        off += n;
        id
    };
    let w1 = take(&mut b, &[c, c, 3, 3]);
    let b1 = take(&mut b, &[c]);
    let gw = take(&mut b, &[c]);
    let gb = take(&mut b, &[c]);
    let w2 = take(&mut b, &[c, c, 3, 3]);
    let b2 = take(&mut b, &[c]);
    let conv = ConvParams {
        stride: 1,
        padding: 1,
    };
    let u = b.state(0, [c, h, w]).unwrap();
    let y = b.conv2d(u, w1, Some(b1), conv).unwrap();
    let y = b.group_norm(y, 2, 1e-5, Some(gw), Some(gb)).unwrap();
    let y = b.relu(y).unwrap();
    let y = b.conv2d(y, w2, Some(b2), conv).unwrap();
    let y = b.flatten(y).unwrap();
    let np = b.layout().param;
    let mut p = rand_vec(9, np);
    // GroupNorm weights near 1.
    for (i, x) in p.iter_mut().enumerate() {
        if (c * c * 9 + c..c * c * 9 + 2 * c).contains(&i) {
            *x += 1.5;
        }
    }
    TestModel {
        name: "conv_groupnorm",
        f: b.finish_rhs(&[y]).unwrap(),
        t: 0.0,
        u: rand_vec(8, c * h * w),
        p,
    }
}

/// A batched `[N, C, H, W] = [2, 2, 5, 5]` stride-2 convolution with one group norm (4 groups
/// of a 4-channel output): a non-RHS function (output length differs from the state's).
pub fn conv_stride2() -> TestModel {
    let mut b = Builder::new(Layout::new(2 * 2 * 5 * 5, 4 * 2 * 3 * 3));
    let u = b.state(0, [2, 2, 5, 5]).unwrap();
    let w = b.param(0, [4, 2, 3, 3]).unwrap();
    let conv = ConvParams {
        stride: 2,
        padding: 1,
    };
    let y = b.conv2d(u, w, None, conv).unwrap(); // [2,4,3,3]
    let y = b.group_norm(y, 2, 1e-3, None, None).unwrap();
    let y = b.tanh(y).unwrap();
    TestModel {
        name: "conv_stride2",
        f: b.finish(&[y]).unwrap(),
        t: 0.0,
        u: rand_vec(12, 100),
        p: rand_vec(13, 72),
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
