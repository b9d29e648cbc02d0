//! Explicit Runge–Kutta steps and their discrete adjoint.
//!
//! Forward (Hairer–Nørsett–Wanner I, §II.1), for the live stages `i = 1 … s`:
//!
//! ```text
//! Y_i = u_n + h Σ_{j<i} a_ij K_j,   K_i = f(t_n + c_i h, Y_i),   u_{n+1} = u_n + h Σ_i b_i K_i.
//! ```
//!
//! Reverse (the exact derivative of that map; Hager 2000, Sandu 2006), `i = s … 1`:
//!
//! ```text
//! w_i = h (b_i λ_{n+1} + Σ_{j>i} a_ji ξ_j),   (ξ_i, g_i) = (f_u(Y_i)ᵀ w_i, f_θ(Y_i)ᵀ w_i),
//! λ_n = λ_{n+1} + Σ_i ξ_i,                     μ += Σ_i g_i.
//! ```
//!
//! Written unscaled, so a zero weight `b_i` (midpoint, Bogacki–Shampine, Dormand–Prince,
//! Fehlberg) needs no special case: the stage still receives `h Σ_{j>i} a_ji ξ_j`.
//!
//! A stage is *live* when it influences `u_{n+1}` ([`Tableau::is_live`]); dead stages, such as
//! the FSAL stage of `dopri5` with `b_7 = 0`, are neither computed nor reversed at fixed steps.
//! The stage values kept for the adjoint are the stage inputs `Y_1 = u_n, Y_2, …, Y_s`.
//! Recomputing them from `u_n` costs `s − 1` RHS evaluations: `K_s = f(Y_s)` only feeds
//! `u_{n+1}`, and the adjoint needs `Y_s`, not `K_s`.
//!
//! # References
//! * E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 1993.
//! * W. W. Hager, "Runge–Kutta methods in optimal control and the transformed adjoint system",
//!   Numer. Math. 87 (2000).
//! * A. Sandu, "On the properties of Runge–Kutta discrete adjoints", ICCS 2006.

use crate::checkpoint::StepCost;
use crate::error::{Error, Phase, Result};
use crate::model::{Eval, Rhs, RhsVjp};
use crate::stepper::{AdjointStepper, ForwardStepper, StepAt};
use crate::tableau::Tableau;
use pnode_checkpoint::Stats;

/// An explicit Runge–Kutta stepper with preallocated scratch for one state and parameter size.
#[derive(Debug, Clone)]
pub struct ErkStepper {
    tableau: Tableau,
    /// Live stage coefficients: `a[i][j]` for live stages `j < i`, row-major `s × s`.
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    s: usize,
    n: usize,
    /// Stage derivatives `K_i`, `s × n`.
    k: Vec<f64>,
    /// Stage input scratch when stages are not kept.
    y: Vec<f64>,
    /// Adjoint scratch: `ξ_i` (`s × n`), `w` (`n`), parameter cotangent (`n_params`).
    xi: Vec<f64>,
    w: Vec<f64>,
    gp: Vec<f64>,
}

impl ErkStepper {
    /// A stepper for `tableau`, a state of `state_len` and `param_len` parameters.
    pub fn new(tableau: Tableau, state_len: usize, param_len: usize) -> Self {
        let crate::tableau::LiveCoefficients { a, b, c, s } = tableau.live_coefficients();
        Self {
            tableau,
            a,
            b,
            c,
            s,
            n: state_len,
            k: vec![0.0; s * state_len],
            y: vec![0.0; state_len],
            xi: vec![0.0; s * state_len],
            w: vec![0.0; state_len],
            gp: vec![0.0; param_len],
        }
    }

    /// The tableau.
    pub fn tableau(&self) -> &Tableau {
        &self.tableau
    }

    /// Number of live stages `s`.
    pub fn live_stages(&self) -> usize {
        self.s
    }

    /// [`ForwardStepper::step`] with the first stage derivative `K_1 = f(t_n, u_n)` given
    /// (`first`, evaluated by the caller at exactly this `t_n` and `u_n`, so the step is bitwise
    /// the one `step` takes), or evaluated here when `None`. The adaptive driver passes the FSAL
    /// stage of the previous step or the `K_1` of a rejected attempt from the same point.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step_with_first_stage<M: Rhs + ?Sized>(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        u_next: &mut [f64],
        stages: Option<&mut [f64]>,
        first: Option<&[f64]>,
        stats: &mut Stats,
    ) -> Result<()> {
        self.run_stages(
            model,
            at,
            p,
            u,
            stages,
            self.s - 1,
            first,
            Phase::Forward,
            stats,
        )?;
        rk_combination(u, at.h, &self.b, &self.k, u_next);
        Ok(())
    }

    /// The live stage derivatives `K_i` of the last forward step (`s × n`, row `i` is live
    /// stage `i`).
    pub(crate) fn stage_derivatives(&self) -> &[f64] {
        &self.k
    }

    /// Compute stage values for stages `0 … upto` (inclusive), evaluating `K_i` for
    /// `i ≤ last_k` (`K_1` copied from `first` when given); stage inputs go to `stages` when
    /// given, else to scratch. A model failure is reported as part of `phase`.
    #[allow(clippy::too_many_arguments)]
    fn run_stages<M: Rhs + ?Sized>(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        mut stages: Option<&mut [f64]>,
        last_k: usize,
        first: Option<&[f64]>,
        phase: Phase,
        stats: &mut Stats,
    ) -> Result<()> {
        let n = self.n;
        let failed = |t: f64, e| Error::model(at.index, t, phase, Eval::Rhs, e);
        for i in 0..self.s {
            let t_i = at.t + self.c[i] * at.h;
            if i == 0 {
                if let Some(st) = stages.as_deref_mut() {
                    st[..n].copy_from_slice(u);
                }
                if let Some(k1) = first {
                    self.k[..n].copy_from_slice(k1);
                } else if i <= last_k {
                    model
                        .try_rhs(t_i, u, p, &mut self.k[..n])
                        .map_err(|e| failed(t_i, e))?;
                    stats.rhs_evals += 1;
                }
                continue;
            }
            let a_row = &self.a[i * self.s..i * self.s + i];
            let y: &mut [f64] = match stages.as_deref_mut() {
                Some(st) => &mut st[i * n..(i + 1) * n],
                None => &mut self.y,
            };
            rk_combination(u, at.h, a_row, &self.k, y);
            if i <= last_k {
                let (_, k_i) = self.k.split_at_mut(i * n);
                model
                    .try_rhs(t_i, y, p, &mut k_i[..n])
                    .map_err(|e| failed(t_i, e))?;
                stats.rhs_evals += 1;
            }
        }
        Ok(())
    }
}

impl<M: Rhs + ?Sized> ForwardStepper<M> for ErkStepper {
    fn cost(&self) -> StepCost {
        let s = self.s as u64;
        StepCost {
            rhs_per_step: s,
            rhs_per_stage_recompute: s - 1,
            vjp_per_reverse: s,
            stage_vectors: s,
        }
    }

    fn stage_vectors(&self) -> usize {
        self.s
    }

    fn step(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        u_next: &mut [f64],
        stages: Option<&mut [f64]>,
        stats: &mut Stats,
    ) -> Result<()> {
        self.run_stages(
            model,
            at,
            p,
            u,
            stages,
            self.s - 1,
            None,
            Phase::Forward,
            stats,
        )?;
        rk_combination(u, at.h, &self.b, &self.k, u_next);
        Ok(())
    }

    fn recompute_stages(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        stages: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()> {
        // K of the last live stage is not needed: the adjoint uses the stage inputs only.
        let last_k = self.s.saturating_sub(2);
        if self.s == 1 {
            stages[..self.n].copy_from_slice(u);
            return Ok(());
        }
        self.run_stages(
            model,
            at,
            p,
            u,
            Some(stages),
            last_k,
            None,
            Phase::Recompute,
            stats,
        )
    }
}

impl<M: RhsVjp + ?Sized> AdjointStepper<M> for ErkStepper {
    fn reverse(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        stages: &[f64],
        lambda: &mut [f64],
        mu: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()> {
        let (n, s) = (self.n, self.s);
        for i in (0..s).rev() {
            let a = &self.a;
            stage_cotangent(
                i,
                at.h,
                self.b[i],
                |j| a[j * s + i],
                lambda,
                &self.xi,
                &mut self.w,
            );
            let t_i = at.t + self.c[i] * at.h;
            let y_i = &stages[i * n..(i + 1) * n];
            let xi_i = &mut self.xi[i * n..(i + 1) * n];
            stage_vjp(
                model,
                at.index,
                t_i,
                y_i,
                p,
                &self.w,
                xi_i,
                &mut self.gp,
                mu,
                stats,
            )?;
        }
        add_stage_adjoints(lambda, &self.xi);
        Ok(())
    }
}

/// `out = u + h Σ_j w_j K_j` over the stage derivatives `k` (`w.len() × n`, row `j` is `K_j`),
/// skipping zero weights: the one routine that forms stage inputs and step updates, so a kept
/// stage and a recomputed one are bitwise identical.
pub(crate) fn rk_combination(u: &[f64], h: f64, w: &[f64], k: &[f64], out: &mut [f64]) {
    let n = u.len();
    out.fill(0.0);
    for (j, &w_j) in w.iter().enumerate() {
        if w_j != 0.0 {
            for (o, &kv) in out.iter_mut().zip(&k[j * n..(j + 1) * n]) {
                *o += w_j * kv;
            }
        }
    }
    for (o, &uv) in out.iter_mut().zip(u) {
        *o = uv + h * *o;
    }
}

/// The cotangent of stage `i`'s derivative `K_i` in a reverse RK step:
/// `w = h (b_i λ + Σ_{j>i} a_ji ξ_j)`, with `ξ` the stage adjoints (`s × n`, rows `j > i`
/// already computed) and `a_ji(j)` the coefficient column below row `i`.
pub(crate) fn stage_cotangent(
    i: usize,
    h: f64,
    b_i: f64,
    a_ji: impl Fn(usize) -> f64,
    lambda: &[f64],
    xi: &[f64],
    w: &mut [f64],
) {
    let n = lambda.len();
    let s = xi.len() / n;
    for (wv, &l) in w.iter_mut().zip(lambda) {
        *wv = b_i * l;
    }
    for j in i + 1..s {
        let a = a_ji(j);
        if a != 0.0 {
            for (wv, &x) in w.iter_mut().zip(&xi[j * n..(j + 1) * n]) {
                *wv += a * x;
            }
        }
    }
    for wv in w.iter_mut() {
        *wv *= h;
    }
}

/// One stage VJP at its own point with its own cotangent: `gu = f_u(t, y)ᵀ w`,
/// `gp = f_θ(t, y)ᵀ w`, and `μ += gp`. A model failure is an error of the reverse sweep in step
/// `step`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stage_vjp<M: RhsVjp + ?Sized>(
    model: &mut M,
    step: usize,
    t: f64,
    y: &[f64],
    p: &[f64],
    w: &[f64],
    gu: &mut [f64],
    gp: &mut [f64],
    mu: &mut [f64],
    stats: &mut Stats,
) -> Result<()> {
    model
        .try_vjp(t, y, p, w, gu, gp)
        .map_err(|e| Error::model(step, t, Phase::Reverse, Eval::Vjp, e))?;
    stats.vjp_evals += 1;
    for (m, &g) in mu.iter_mut().zip(gp.iter()) {
        *m += g;
    }
    Ok(())
}

/// `λ += Σ_i ξ_i` over the stage adjoints (`s × n`).
pub(crate) fn add_stage_adjoints(lambda: &mut [f64], xi: &[f64]) {
    for xi_i in xi.chunks_exact(lambda.len()) {
        for (l, &x) in lambda.iter_mut().zip(xi_i) {
            *l += x;
        }
    }
}
