//! Shared helpers for the runtime's integration tests (the numeric ones come from
//! `pnode_testkit::numeric`).
#![allow(dead_code)]

use pnode_runtime::model::RhsVjp;
use pnode_runtime::problems::{LotkaVolterra, Mlp};
use pnode_runtime::{Checkpointing, Gradient, Solver, Tableau, TimeGrid};
use pnode_testkit::numeric;

/// `L = ½ Σ_k w_k ‖u(t_k) − d_k‖²` with per-output weights `w_k = 1 + k/2`, writing `∂L/∂u`.
pub fn quadratic_loss(outputs: &[f64], targets: &[f64], dl: &mut [f64]) -> f64 {
    let n_out = outputs.len();
    let mut loss = 0.0;
    for i in 0..n_out {
        let k = i * 7 / n_out.max(1); // a few distinct weights
        let w = 1.0 + 0.5 * k as f64;
        let r = outputs[i] - targets[i];
        loss += 0.5 * w * r * r;
        dl[i] = w * r;
    }
    loss
}

/// A fixed solver set-up for gradient tests.
pub struct Setup<M> {
    pub model: M,
    pub tableau: Tableau,
    pub grid: TimeGrid,
    pub output_times: Vec<f64>,
    pub u0: Vec<f64>,
    pub p: Vec<f64>,
    pub targets: Vec<f64>,
}

impl<M: RhsVjp> Setup<M> {
    pub fn solver(&self, checkpointing: Checkpointing) -> Solver<pnode_runtime::ErkStepper> {
        Solver::explicit(
            self.tableau.clone(),
            &self.model,
            self.grid.clone(),
            &self.output_times,
            checkpointing,
        )
        .expect("valid set-up")
    }

    /// Loss of a forward solve at `(u0, p)`.
    pub fn loss(&mut self, u0: &[f64], p: &[f64]) -> f64 {
        let mut solver = self.solver(Checkpointing::StoreAll);
        let out = solver.solve(&mut self.model, u0, p).unwrap().to_vec();
        let mut dl = vec![0.0; out.len()];
        quadratic_loss(&out, &self.targets, &mut dl)
    }

    /// Loss and discrete-adjoint gradient at the set-up's point.
    pub fn gradient(&mut self, checkpointing: Checkpointing) -> (f64, Gradient) {
        let mut solver = self.solver(checkpointing);
        let targets = self.targets.clone();
        solver
            .value_and_grad(
                &mut self.model,
                &self.u0.clone(),
                &self.p.clone(),
                |out, dl| quadratic_loss(out, &targets, dl),
            )
            .unwrap()
    }

    /// Central finite differences of the loss in every component of u0 and θ.
    pub fn fd_gradient(&mut self, rel_eps: f64) -> Gradient {
        let (u0, p) = (self.u0.clone(), self.p.clone());
        let mut du0 = vec![0.0; u0.len()];
        for i in 0..u0.len() {
            let e = rel_eps * u0[i].abs().max(1.0);
            let (mut up, mut um) = (u0.clone(), u0.clone());
            up[i] += e;
            um[i] -= e;
            du0[i] = (self.loss(&up, &p) - self.loss(&um, &p)) / (2.0 * e);
        }
        let mut dp = vec![0.0; p.len()];
        for i in 0..p.len() {
            let e = rel_eps * p[i].abs().max(1.0);
            let (mut pp, mut pm) = (p.clone(), p.clone());
            pp[i] += e;
            pm[i] -= e;
            dp[i] = (self.loss(&u0, &pp) - self.loss(&u0, &pm)) / (2.0 * e);
        }
        Gradient { du0, dp }
    }
}

/// Lotka–Volterra on [0, 2], 40 steps, four outputs.
pub fn lotka_volterra(tableau: Tableau) -> Setup<LotkaVolterra> {
    let grid = TimeGrid::uniform(0.0, 2.0, 40).unwrap();
    let output_times = vec![0.5, 1.0, 1.5, 2.0];
    let targets = vec![1.2, 0.8, 0.9, 1.1, 1.0, 1.0, 1.1, 0.9];
    Setup {
        model: LotkaVolterra::new(),
        tableau,
        grid,
        output_times,
        u0: LotkaVolterra::default_u0(),
        p: LotkaVolterra::default_params(),
        targets,
    }
}

/// A 2-12-12-2 MLP vector field (6 states), 16 steps, four outputs.
pub fn mlp(tableau: Tableau) -> Setup<Mlp> {
    let model = Mlp::new(&[2, 12, 12, 2], 3).unwrap();
    let p = model.init_params(7);
    let grid = TimeGrid::uniform(0.0, 1.0, 16).unwrap();
    let output_times = vec![0.0, 0.25, 0.5, 1.0];
    let u0 = vec![0.5, -0.3, 1.0, 0.2, -0.7, 0.4];
    let targets = pseudo_random(output_times.len() * u0.len(), 3);
    Setup {
        model,
        tableau,
        grid,
        output_times,
        u0,
        p,
        targets,
    }
}

/// Whether two gradients are identical bit for bit.
pub fn same_bits(a: &Gradient, b: &Gradient) -> bool {
    numeric::same_bits(&a.du0, &b.du0) && numeric::same_bits(&a.dp, &b.dp)
}

/// Deterministic pseudo-random vector in [-1, 1] (SplitMix64), for test directions.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..len)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}
