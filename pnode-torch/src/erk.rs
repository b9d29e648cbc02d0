//! Explicit Runge–Kutta steps over tensors and their discrete adjoint: the tensor twin of
//! `pnode_runtime::erk`, with the same live-stage reduction and the same formulas.
//!
//! Forward (Hairer–Nørsett–Wanner I, §II.1), over the live stages `i = 1 … s`:
//!
//! ```text
//! Y_i = u_n + h Σ_{j<i} a_ij K_j,   K_i = f(t_n + c_i h, Y_i),   u_{n+1} = u_n + h Σ_i b_i K_i.
//! ```
//!
//! Reverse (Hager 2000; Sandu 2006), `i = s … 1`, each VJP at its own stage input with its own
//! cotangent:
//!
//! ```text
//! w_i = h (b_i λ_{n+1} + Σ_{j>i} a_ji ξ_j),   (ξ_i, g_i) = (f_u(Y_i)ᵀ w_i, f_θ(Y_i)ᵀ w_i),
//! λ_n = λ_{n+1} + Σ_i ξ_i,                     μ += Σ_i g_i.
//! ```
//!
//! The kept stage values are the stage inputs `Y_1 = u_n, …, Y_s`; recomputing them costs
//! `s − 1` RHS evaluations.
//!
//! # References
//! * E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 1993.
//! * W. W. Hager, "Runge–Kutta methods in optimal control and the transformed adjoint system",
//!   Numer. Math. 87 (2000).
//! * A. Sandu, "On the properties of Runge–Kutta discrete adjoints", ICCS 2006.

use pnode_runtime::Tableau;
use pnode_runtime::adaptive::PairLayout;
use pnode_runtime::checkpoint::{Stats, StepCost};
use tch::Tensor;

use crate::error::{Error, Phase, Result};
use crate::ffi;
use crate::model::TensorRhs;

/// Grid position of a step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepAt {
    pub index: usize,
    pub t: f64,
    pub h: f64,
}

/// A trial step of an embedded pair ([`TensorErk::try_step`]).
#[derive(Debug)]
pub(crate) struct Trial {
    /// `u_{n+1}`, bitwise the fixed-grid step's.
    pub next: Tensor,
    /// The stage inputs, as [`TensorErk::step`] keeps them.
    pub stages: Vec<Tensor>,
    /// The error estimate `e = h Σ_i (b_i − b̂_i) K_i`.
    pub err: Tensor,
    /// `K_1 = f(t_n, u_n)`, for a retry from the same point.
    pub first: Option<Tensor>,
    /// `(t_n + c_s h, K_s)` of an FSAL pair: `f(t_n + h, u_{n+1})`, the next step's `K_1`
    /// when it starts at bitwise that time.
    pub fsal: Option<(f64, Tensor)>,
}

/// The live stages of an explicit tableau.
#[derive(Debug, Clone)]
pub(crate) struct TensorErk {
    tableau: Tableau,
    /// `a[i][j]` over live stages, row-major `s × s`.
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    s: usize,
    /// The embedded pair, when the tableau has embedded weights.
    embedded: Option<PairLayout>,
}

impl TensorErk {
    pub fn new(tableau: Tableau) -> Self {
        let pnode_runtime::tableau::LiveCoefficients { a, b, c, s } = tableau.live_coefficients();
        Self {
            embedded: PairLayout::of(&tableau).ok(),
            tableau,
            a,
            b,
            c,
            s,
        }
    }

    /// The order `q` of the embedded error estimate; `None` without embedded weights.
    pub fn error_order(&self) -> Option<u32> {
        self.embedded.as_ref().map(|e| e.q)
    }

    pub fn tableau(&self) -> &Tableau {
        &self.tableau
    }

    pub fn cost(&self) -> StepCost {
        let s = self.s as u64;
        StepCost {
            rhs_per_step: s,
            rhs_per_stage_recompute: s - 1,
            vjp_per_reverse: s,
            stage_vectors: s,
        }
    }

    pub fn rhs(
        model: &mut dyn TensorRhs,
        at: StepAt,
        t: f64,
        y: &Tensor,
        stats: &mut Stats,
    ) -> Result<Tensor> {
        stats.rhs_evals += 1;
        model.rhs(t, y).map_err(|cause| Error::Model {
            phase: Phase::Rhs,
            step: at.index,
            t,
            cause,
        })
    }

    /// Stage inputs (and derivatives `K_i` for `i ≤ last_k`) from `u`; `first`, when given,
    /// is `K_1 = f(t_n, u_n)`, already evaluated.
    fn stages(
        &self,
        model: &mut dyn TensorRhs,
        at: StepAt,
        u: &Tensor,
        last_k: usize,
        mut first: Option<Tensor>,
        stats: &mut Stats,
    ) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let mut ys = Vec::with_capacity(self.s);
        let mut ks: Vec<Tensor> = Vec::with_capacity(self.s);
        for i in 0..self.s {
            let y = if i == 0 {
                u.shallow_clone()
            } else {
                combination(u, at.h, &self.a[i * self.s..i * self.s + i], &ks)?
            };
            if i <= last_k {
                ks.push(match first.take().filter(|_| i == 0) {
                    Some(k1) => k1,
                    None => Self::rhs(model, at, at.t + self.c[i] * at.h, &y, stats)?,
                });
            }
            ys.push(y);
        }
        Ok((ys, ks))
    }

    /// One step from `u`; returns `u_{n+1}` and, when `keep`, the stage inputs.
    pub fn step(
        &self,
        model: &mut dyn TensorRhs,
        at: StepAt,
        u: &Tensor,
        keep: bool,
        stats: &mut Stats,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (ys, ks) = self.stages(model, at, u, self.s - 1, None, stats)?;
        let next = combination(u, at.h, &self.b, &ks)?;
        Ok((next, if keep { ys } else { Vec::new() }))
    }

    /// A trial step of the embedded pair from `u`: `(u_{n+1}, stage inputs, e)` with
    /// `u_{n+1}` and the stage inputs bitwise those of [`TensorErk::step`] with `keep` (the same
    /// code path), and the error estimate `e = h Σ_i (b_i − b̂_i) K_i` over all stages of the
    /// tableau from the stage derivatives the step computed, plus the dead stages the estimate
    /// needs (`K_s = f(t_n + h, u_{n+1})` for an FSAL pair, whose last row of `a` is `b`).
    ///
    /// `first` is `K_1 = f(t_n, u_n)` when the caller has it (a retry from the same point, the
    /// FSAL stage of the step that ended there, the initial step's `f(t0, u0)`): the same values
    /// `f` would return, one evaluation fewer.
    pub fn try_step(
        &self,
        model: &mut dyn TensorRhs,
        at: StepAt,
        u: &Tensor,
        first: Option<Tensor>,
        stats: &mut Stats,
    ) -> Result<Trial> {
        let Some(emb) = &self.embedded else {
            return Err(pnode_runtime::Error::NoErrorEstimate {
                method: self.tableau.name().to_string(),
            }
            .into());
        };
        // K_1 is handed in only when live stage 0 is the tableau's stage 0 (always, for an
        // explicit tableau whose first stage is used).
        let first = first.filter(|_| emb.first_reusable);
        let (ys, ks) = self.stages(model, at, u, self.s - 1, first, stats)?;
        let next = combination(u, at.h, &self.b, &ks)?;
        let mut kf: Vec<Option<Tensor>> = emb
            .live_of
            .iter()
            .map(|live| live.map(|li| ks[li].shallow_clone()))
            .collect();
        for &i in &emb.dead {
            let t_i = at.t + emb.c[i] * at.h;
            let y = if emb.fsal && i + 1 == emb.s {
                next.shallow_clone()
            } else {
                let row = &emb.a[i * emb.s..i * emb.s + i];
                // Stages the estimate does not need carry a zero weight here.
                combination_of(
                    u,
                    at.h,
                    row.iter()
                        .zip(&kf)
                        .filter_map(|(&w, k)| Some((w, k.as_ref()?))),
                )?
            };
            kf[i] = Some(Self::rhs(model, at, t_i, &y, stats)?);
        }
        let mut e: Option<Tensor> = None;
        for (&d_i, k_i) in emb.d.iter().zip(&kf) {
            if d_i == 0.0 {
                continue;
            }
            let k_i = k_i.as_ref().expect("every weighted stage is evaluated");
            match &e {
                None => e = Some(k_i * d_i),
                Some(e) => ffi::add_scaled_(e, k_i, d_i)?,
            }
        }
        let e = match e {
            Some(e) => e * at.h,
            None => u.zeros_like(),
        };
        let first = (emb.first_reusable).then(|| kf[0].as_ref().map(Tensor::shallow_clone));
        let fsal = if emb.fsal {
            let last = emb.s - 1;
            kf[last]
                .as_ref()
                .map(|k| (at.t + emb.c[last] * at.h, k.shallow_clone()))
        } else {
            None
        };
        Ok(Trial {
            next,
            stages: ys,
            err: e,
            first: first.flatten(),
            fsal,
        })
    }

    /// The stage inputs of the step from `u`, without the last stage's derivative.
    pub fn recompute_stages(
        &self,
        model: &mut dyn TensorRhs,
        at: StepAt,
        u: &Tensor,
        stats: &mut Stats,
    ) -> Result<Vec<Tensor>> {
        let (ys, _) = self.stages(model, at, u, self.s.saturating_sub(2), None, stats)?;
        Ok(ys)
    }

    /// Reverses one step: `λ ← λ_n`, `μ += Σ g_i`.
    pub fn reverse(
        &self,
        model: &mut dyn TensorRhs,
        at: StepAt,
        stages: &[Tensor],
        lambda: &mut Tensor,
        mu: &mut [Tensor],
        stats: &mut Stats,
    ) -> Result<()> {
        let s = self.s;
        let mut xi: Vec<Option<Tensor>> = (0..s).map(|_| None).collect();
        for i in (0..s).rev() {
            // w = h (b_i λ + Σ_{j>i} a_ji ξ_j)
            let mut w: Option<Tensor> = (self.b[i] != 0.0).then(|| &*lambda * (at.h * self.b[i]));
            for (j, xi_j) in xi.iter().enumerate().skip(i + 1) {
                let a_ji = self.a[j * s + i];
                if a_ji != 0.0 {
                    let xi_j = xi_j.as_ref().expect("later stages are reversed first");
                    match &w {
                        None => w = Some(xi_j * (at.h * a_ji)),
                        Some(w) => ffi::add_scaled_(w, xi_j, at.h * a_ji)?,
                    }
                }
            }
            // A live stage has b_i ≠ 0 or some a_ji ≠ 0, so w is set; zeros keep it total.
            let w = w.unwrap_or_else(|| lambda.zeros_like());
            let t_i = at.t + self.c[i] * at.h;
            stats.vjp_evals += 1;
            let gu = model
                .vjp_accumulate(t_i, &stages[i], &w, mu)
                .map_err(|cause| Error::Model {
                    phase: Phase::Vjp,
                    step: at.index,
                    t: t_i,
                    cause,
                })?;
            xi[i] = Some(gu);
        }
        for x in xi.iter().flatten() {
            ffi::add_scaled_(lambda, x, 1.0)?;
        }
        Ok(())
    }
}

/// `u + h Σ_j w_j K_j` over the nonzero weights: the one routine forming stage inputs and step
/// updates, so kept and recomputed stages are bitwise identical.
fn combination(u: &Tensor, h: f64, w: &[f64], ks: &[Tensor]) -> Result<Tensor> {
    combination_of(u, h, w.iter().copied().zip(ks))
}

/// `u + h Σ_j w_j K_j` over `(w_j, K_j)` pairs, skipping zero weights.
fn combination_of<'a>(
    u: &Tensor,
    h: f64,
    terms: impl Iterator<Item = (f64, &'a Tensor)>,
) -> Result<Tensor> {
    let mut out: Option<Tensor> = None;
    for (w_j, k_j) in terms {
        if w_j == 0.0 {
            continue;
        }
        match &out {
            None => out = Some(ffi::add_scaled(u, k_j, h * w_j)?),
            Some(o) => ffi::add_scaled_(o, k_j, h * w_j)?,
        }
    }
    Ok(out.unwrap_or_else(|| u.copy()))
}
