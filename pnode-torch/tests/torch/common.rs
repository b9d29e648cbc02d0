//! Shared test helpers: small tch models and the autograd oracle — the same fixed-step
//! explicit Runge–Kutta solver written with plain tch ops, differentiated by libtorch's
//! autograd (backprop through every stage).

#![allow(dead_code)]

use pnode_torch::pnode_runtime::{Tableau, TimeGrid};
use pnode_torch::tch::{self, Device, Kind, Tensor, nn, nn::Module};

/// A `dim–hidden–dim` tanh MLP whose output is scaled by `(1 + 0.3 t)`, its weights in a
/// VarStore.
pub struct Mlp {
    l1: nn::Linear,
    l2: nn::Linear,
}

fn share(l: &nn::Linear) -> nn::Linear {
    nn::Linear {
        ws: l.ws.shallow_clone(),
        bs: l.bs.as_ref().map(Tensor::shallow_clone),
    }
}

impl Mlp {
    /// Creates the layers in `vs` (as `l1`, `l2`).
    pub fn new(vs: &nn::VarStore, dim: i64, hidden: i64) -> Self {
        let root = vs.root();
        Self {
            l1: nn::linear(&root / "l1", dim, hidden, Default::default()),
            l2: nn::linear(&root / "l2", hidden, dim, Default::default()),
        }
    }

    /// `f(t, u)` over the same weights (shallow copies), as an owned closure.
    pub fn f(&self) -> impl Fn(f64, &Tensor) -> Tensor + Send + use<> {
        let (l1, l2) = (share(&self.l1), share(&self.l2));
        move |t: f64, u: &Tensor| l2.forward(&l1.forward(u).tanh()) * (1.0 + 0.3 * t)
    }
}

/// `Mlp::new(vs, dim, hidden).f()`.
pub fn mlp(
    vs: &nn::VarStore,
    dim: i64,
    hidden: i64,
) -> impl Fn(f64, &Tensor) -> Tensor + Send + use<> {
    Mlp::new(vs, dim, hidden).f()
}

/// A f64 VarStore on the CPU.
pub fn f64_store() -> nn::VarStore {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    vs
}

/// `u(t_k)` at grid indices `output_idx` of the fixed-step solve with `tableau` (all stages,
/// recorded by autograd).
pub fn rk_autograd(
    f: &dyn Fn(f64, &Tensor) -> Tensor,
    tableau: &Tableau,
    grid: &TimeGrid,
    u0: &Tensor,
    output_idx: &[usize],
) -> Vec<Tensor> {
    let s = tableau.stages();
    let mut u = u0.shallow_clone();
    let mut outputs = Vec::new();
    if output_idx.contains(&0) {
        outputs.push(u.shallow_clone());
    }
    for n in 0..grid.n_steps() {
        let (t, h) = (grid.t(n), grid.h(n));
        let mut ks: Vec<Tensor> = Vec::with_capacity(s);
        for i in 0..s {
            let mut y = u.shallow_clone();
            for (j, k) in ks.iter().enumerate() {
                let a = tableau.a(i, j);
                if a != 0.0 {
                    y = &y + k * (h * a); // out of place: autograd records it
                }
            }
            ks.push(f(t + tableau.c()[i] * h, &y));
        }
        let mut next = u.shallow_clone();
        for (i, k) in ks.iter().enumerate() {
            let b = tableau.b()[i];
            if b != 0.0 {
                next = &next + k * (h * b);
            }
        }
        u = next;
        if output_idx.contains(&(n + 1)) {
            outputs.push(u.shallow_clone());
        }
    }
    outputs
}

/// `max |a − b| / max |b|` over all entries.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(1e-300);
    (a - b).abs().max().double_value(&[]) / scale
}

/// Deterministic pseudo-random tensor of `shape` (f64, CPU) from `seed`.
pub fn randn(shape: &[i64], seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn(shape, (Kind::Double, Device::Cpu))
}
