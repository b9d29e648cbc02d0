//! The model tables: the builder-made models of `pnode_ir::testmodels` (re-exported; the one
//! table that pnode-ir's derivative tests, the JIT's kernel tests and the emitted-code tests
//! share) plus larger models over tensors big enough that the JIT takes its looped code paths.

use pnode_ir::layers::{Activation, mlp, mlp_param_len};
pub use pnode_ir::testmodels::*;
use pnode_ir::{Builder, Layout, NodeId};

/// The shared test models under the name the tests use.
pub type Model = TestModel;

/// A `widths` MLP with activation `act` over a batched state `[batch, widths[0]]`, its
/// parameters scaled by `1/√widths[1]`.
pub fn mlp_batch(name: &'static str, widths: &[usize], batch: usize, act: Activation) -> Model {
    let np = mlp_param_len(widths);
    let n = batch * widths[0];
    let mut b = Builder::new(Layout::new(n, np));
    let u = b.state(0, [batch, widths[0]]).unwrap();
    let (y, _) = mlp(&mut b, u, widths, 0, act).unwrap();
    let y = b.flatten(y).unwrap();
    let scale = 1.0 / (widths[1] as f64).sqrt();
    Model {
        name,
        f: b.finish_rhs(&[y]).unwrap(),
        t: 0.0,
        u: rand_vec(31, n),
        p: rand_vec(32, np).iter().map(|x| scale * x).collect(),
    }
}

/// A 2-64-64-2 tanh MLP over a batch of 64: 64×64 hidden layers, looped matrix products.
pub fn mlp_wide() -> Model {
    mlp_batch("mlp_wide", &[2, 64, 64, 2], 64, Activation::Tanh)
}

/// The data-movement and reduction operations of `structure` on a `[6, 8]` state, large
/// enough that every one of them is looped.
pub fn structure_large() -> Model {
    let (r, c) = (6, 8);
    let mut b = Builder::new(Layout::new(r * c, r));
    let u = b.state(0, [r, c]).unwrap();
    let p = b.param(0, [r]).unwrap();
    let th = b.tanh(u).unwrap();
    let m = b.mean(u).unwrap();
    let p0 = b.index(p, &[0]).unwrap();
    let pm = b.mul(p0, m).unwrap();
    let a = b.mul(th, pm).unwrap(); // [r,c]
    let sl = b.slice(u, 1, 1, c - 1).unwrap(); // [r,c-2]
    let s = b.sum_axis(sl, 1).unwrap(); // [r]
    let s = b.reshape(s, [r, 1]).unwrap();
    let pr = b.slice(p, 0, 0, c - 2).ok();
    let s2 = match pr {
        Some(pr) => b.mul(s, pr).unwrap(),
        None => {
            let pp = b.concat(&[p, p], 0).unwrap(); // [2r]
            let pp = b.slice(pp, 0, 0, c - 2).unwrap();
            b.mul(s, pp).unwrap()
        }
    }; // [r, c-2]
    let s2 = b.pad(s2, 1, 1, 1).unwrap(); // [r,c]
    let mc = b.mean_axis(u, 0).unwrap(); // [c]
    let row = b.index(u, &[2]).unwrap(); // [c]
    let rr = b.mul(mc, row).unwrap();
    let sq = b.square(sl).unwrap();
    let tail = b.slice(u, 1, 0, 2).unwrap();
    let cc = b.concat(&[sq, tail], 1).unwrap(); // [r,c]
    let ut = b.transpose(u).unwrap(); // [c,r]
    let ut2 = b.mul(ut, ut).unwrap();
    let back = b.transpose(ut2).unwrap(); // [r,c]
    let total = b.sum(sq).unwrap();
    let mut f = b.add(a, s2).unwrap();
    f = b.add(f, rr).unwrap();
    f = b.add(f, cc).unwrap();
    f = b.add(f, back).unwrap();
    let p2 = b.index(p, &[2]).unwrap();
    let tp = b.mul(total, p2).unwrap();
    f = b.add(f, tp).unwrap();
    let pc = b.reshape(p, [r, 1]).unwrap();
    f = b.sub(f, pc).unwrap();
    let f = b.flatten(f).unwrap();
    Model {
        name: "structure_large",
        f: b.finish_rhs(&[f]).unwrap(),
        t: 0.0,
        u: rand_vec(5, r * c).iter().map(|x| 0.5 * x).collect(),
        p: vec![0.7, -1.2, 0.4, 0.3, -0.5, 0.9],
    }
}

/// GELU, softplus and sigmoid layers over a `[8, 3]` batch with width 16 (looped).
pub fn mlp_mixed_large() -> Model {
    let (batch, w) = (8, 16);
    let np = w * 3 + w + w * w + w + 3 * w + 3;
    let mut b = Builder::new(Layout::new(batch * 3, np));
    let u = b.state(0, [batch, 3]).unwrap();
    let mut off = 0;
    let mut layer = |b: &mut Builder, x: NodeId, n_in: usize, n_out: usize| {
        let wt = b.param(off, [n_out, n_in]).unwrap();
        let bias = b.param(off + n_in * n_out, [n_out]).unwrap();
        off += n_in * n_out + n_out;
        pnode_ir::layers::linear(b, x, wt, Some(bias)).unwrap()
    };
    let h = layer(&mut b, u, 3, w);
    let h = b.gelu(h).unwrap();
    let h = layer(&mut b, h, w, w);
    let h = b.softplus(h).unwrap();
    let h = layer(&mut b, h, w, 3);
    let h = b.sigmoid(h).unwrap();
    let f = b.flatten(h).unwrap();
    Model {
        name: "mlp_mixed_large",
        f: b.finish_rhs(&[f]).unwrap(),
        t: 0.0,
        u: rand_vec(41, batch * 3),
        p: rand_vec(42, np).iter().map(|x| 0.4 * x).collect(),
    }
}

/// Every model the JIT backend supports: the table of `pnode_ir::testmodels` without
/// convolutions and group norms, and the larger models above.
pub fn supported_models() -> Vec<Model> {
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
        mlp_wide(),
        structure_large(),
        mlp_mixed_large(),
    ]
}
