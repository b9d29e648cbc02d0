//! Embedded pairs: a trial step that is bitwise the fixed-grid step, plus its error estimate.
//!
//! [`EmbeddedStepper`] is what the adaptive driver asks of a method; [`EmbeddedErk`]
//! implements it for explicit Runge–Kutta pairs (bosh3, dopri5, tsit5, fehlberg45, or any
//! tableau with embedded weights) on top of [`ErkStepper`]: `u_{n+1}` comes from the very code
//! path of [`ErkStepper`]'s `step`, and the estimate `e = h Σ_i (b_i − b̂_i) K_i` reuses its
//! stage derivatives. Stages that do not influence `u_{n+1}` (the FSAL stage of dopri5, tsit5
//! and bosh3, the sixth stage of fehlberg45) are evaluated only for the estimate.
//!
//! **Stage reuse.** `K_1 = f(t_n, u_n)` is evaluated once per point: a retry after a rejection
//! starts from the same `(t_n, u_n)`, and for an FSAL pair the last stage of an accepted step is
//! `f(t_n + h, u_{n+1})`. A cached `K_1` is used only when its time and state are bitwise the
//! step's `t_n` and `u_n`, so the step computes exactly what `step` computes from scratch (for
//! a model that is a function of `(t, u, θ)`).

use crate::checkpoint::StepCost;
use crate::erk::{ErkStepper, rk_combination};
use crate::error::{Error, Phase, Result};
use crate::model::{Eval, Rhs, RhsVjp};
use crate::stepper::{AdjointStepper, ForwardStepper, StepAt};
use crate::tableau::Tableau;
use pnode_checkpoint::Stats;

/// A one-step method with an embedded error estimate, for [`super::AdaptiveSolver`].
///
/// Implementations for other pairs (ESDIRK pairs: [`super::EmbeddedDirk`]; a JIT's fused ERK
/// step) must keep the one property the adaptive gradient rests on:
/// [`EmbeddedStepper::try_step`] computes `u_{n+1}`
/// and the stage values bitwise as [`ForwardStepper::step`] does for the same `(t_n, h_n)`, so
/// the reverse sweep (which recomputes with `step` and `recompute_stages`) differentiates the
/// very solution the forward sweep accepted.
pub trait EmbeddedStepper<M: Rhs + ?Sized>: ForwardStepper<M> {
    /// The order `q` of the error estimate: it behaves like `C h^{q+1}`.
    fn error_order(&self) -> u32;

    /// A trial step: `u_next` and `stages` exactly as `step(model, at, p, u, u_next,
    /// Some(stages), stats)` writes them, and the local error estimate in `err` (length `n`).
    #[allow(clippy::too_many_arguments)]
    fn try_step(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        u_next: &mut [f64],
        stages: &mut [f64],
        err: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()>;

    /// Offer `f(t, u) = k1`, already evaluated (for the automatic initial step), for a step
    /// starting at `(t, u)`. The default ignores it.
    fn seed_first_stage(&mut self, _t: f64, _u: &[f64], _k1: &[f64]) {}

    /// Forget anything cached from an earlier run (called when a run starts).
    fn reset(&mut self) {}
}

/// `f(t, u)` cached for reuse as the first stage of a step from bitwise the same `(t, u)`: a
/// retry after a rejection starts from the same point, and an FSAL pair's last stage is the
/// next step's first. [`StageCache::get`] returns the cached stage only when the time and the
/// state are bitwise the step's, so a step using it computes exactly what it computes from
/// scratch (for a model that is a function of `(t, u, θ)`). Shared by every embedded pair
/// (the runtime's and the JIT's fused one).
#[derive(Debug, Clone)]
pub struct StageCache {
    valid: bool,
    t: f64,
    u: Vec<f64>,
    k: Vec<f64>,
}

impl StageCache {
    /// An empty cache for states of length `n`.
    pub fn new(n: usize) -> Self {
        Self {
            valid: false,
            t: 0.0,
            u: vec![0.0; n],
            k: vec![0.0; n],
        }
    }

    /// Whether the cache holds `f(t, u)` for bitwise this `t` and `u`.
    fn matches(&self, t: f64, u: &[f64]) -> bool {
        self.valid
            && self.t.to_bits() == t.to_bits()
            && self.u.len() == u.len()
            && self
                .u
                .iter()
                .zip(u)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }

    /// The cached `f(t, u)` if it was evaluated at bitwise this `t` and `u`.
    pub fn get(&self, t: f64, u: &[f64]) -> Option<&[f64]> {
        self.matches(t, u).then_some(self.k.as_slice())
    }

    /// Keep `k = f(t, u)`.
    pub fn set(&mut self, t: f64, u: &[f64], k: &[f64]) {
        self.valid = true;
        self.t = t;
        self.u.copy_from_slice(u);
        self.k.copy_from_slice(k);
    }

    /// Forget the cached stage.
    pub fn clear(&mut self) {
        self.valid = false;
    }
}

/// An embedded pair over all of its tableau's stages: what the error estimate
/// `e = h Σ_i d_i K_i`, `d = b − b̂`, needs beyond the live stages of the fixed step — the dead
/// stages it weighs (the FSAL stage of dopri5, tsit5 and bosh3, the sixth stage of fehlberg45)
/// or that feed one it weighs. One analysis for every implementation of a pair (the runtime's
/// [`EmbeddedErk`], the JIT's fused trial step, the tensor backend's).
#[derive(Debug, Clone, PartialEq)]
pub struct PairLayout {
    /// All stages of the tableau.
    pub s: usize,
    /// `a_ij` over all stages, row-major `s × s`.
    pub a: Vec<f64>,
    /// The nodes `c_i`.
    pub c: Vec<f64>,
    /// `d_i = b_i − b̂_i` over all stages.
    pub d: Vec<f64>,
    /// Live index of each stage (`None` for a stage that does not influence `u_{n+1}`).
    pub live_of: Vec<Option<usize>>,
    /// The dead stages the estimate needs (weighed by it, or feeding one that is), increasing.
    pub dead: Vec<usize>,
    /// First-same-as-last: the last stage is `f(t_n + h, u_{n+1})`.
    pub fsal: bool,
    /// Whether stage 1 is live stage 1 (so a cached `K_1` can stand in for it).
    pub first_reusable: bool,
    /// The order `q = min(p, p̂)` of the estimate (it behaves like `C h^{q+1}`).
    pub q: u32,
}

impl PairLayout {
    /// The layout of `tableau`'s pair, or [`Error::NoErrorEstimate`] without embedded weights.
    pub fn of(tableau: &Tableau) -> Result<Self> {
        let (Some(b_hat), Some(embedded_order)) = (tableau.b_embedded(), tableau.embedded_order())
        else {
            return Err(Error::NoErrorEstimate {
                method: tableau.name().to_string(),
            });
        };
        let s = tableau.stages();
        let a: Vec<f64> = (0..s * s).map(|k| tableau.a(k / s, k % s)).collect();
        let d: Vec<f64> = tableau
            .b()
            .iter()
            .zip(b_hat)
            .map(|(b, bh)| b - bh)
            .collect();
        let mut live_of = vec![None; s];
        let mut next = 0;
        for (i, slot) in live_of.iter_mut().enumerate() {
            if tableau.is_live(i) {
                *slot = Some(next);
                next += 1;
            }
        }
        // A dead stage is needed when the estimate weighs it or a needed dead stage uses it.
        let mut needed = vec![false; s];
        for i in (0..s).rev() {
            needed[i] = live_of[i].is_none()
                && (d[i] != 0.0 || (i + 1..s).any(|j| needed[j] && a[j * s + i] != 0.0));
        }
        Ok(Self {
            s,
            c: tableau.c().to_vec(),
            dead: (0..s).filter(|&i| needed[i]).collect(),
            fsal: tableau.is_fsal(),
            first_reusable: live_of[0] == Some(0),
            q: tableau.order().min(embedded_order),
            a,
            d,
            live_of,
        })
    }
}

/// An explicit Runge–Kutta pair: [`ErkStepper`] plus the embedded error estimate (see the
/// module docs).
#[derive(Debug, Clone)]
pub struct EmbeddedErk {
    erk: ErkStepper,
    n: usize,
    pair: PairLayout,
    /// `K_i` of all stages (`s × n`).
    kf: Vec<f64>,
    y: Vec<f64>,
    /// `K_1` of the last attempt's starting point, and the FSAL stage of the last attempt.
    first: StageCache,
    fsal_cache: StageCache,
}

impl EmbeddedErk {
    /// The pair of `tableau` (which must have embedded weights) for a state of `state_len` and
    /// `param_len` parameters.
    pub fn new(tableau: Tableau, state_len: usize, param_len: usize) -> Result<Self> {
        let pair = PairLayout::of(&tableau)?;
        Ok(Self {
            n: state_len,
            kf: vec![0.0; pair.s * state_len],
            y: vec![0.0; state_len],
            first: StageCache::new(state_len),
            fsal_cache: StageCache::new(state_len),
            erk: ErkStepper::new(tableau, state_len, param_len),
            pair,
        })
    }

    /// The underlying fixed-step stepper.
    pub fn erk(&self) -> &ErkStepper {
        &self.erk
    }

    /// The tableau.
    pub fn tableau(&self) -> &Tableau {
        self.erk.tableau()
    }
}

impl<M: Rhs + ?Sized> ForwardStepper<M> for EmbeddedErk {
    fn cost(&self) -> StepCost {
        ForwardStepper::<M>::cost(&self.erk)
    }

    fn stage_vectors(&self) -> usize {
        ForwardStepper::<M>::stage_vectors(&self.erk)
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
        self.erk.step(model, at, p, u, u_next, stages, stats)
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
        self.erk.recompute_stages(model, at, p, u, stages, stats)
    }
}

impl<M: RhsVjp + ?Sized> AdjointStepper<M> for EmbeddedErk {
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
        self.erk.reverse(model, at, p, stages, lambda, mu, stats)
    }
}

impl<M: Rhs + ?Sized> EmbeddedStepper<M> for EmbeddedErk {
    fn error_order(&self) -> u32 {
        self.pair.q
    }

    fn try_step(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        u_next: &mut [f64],
        stages: &mut [f64],
        err: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()> {
        let n = self.n;
        let first = if self.pair.first_reusable {
            self.first
                .get(at.t, u)
                .or_else(|| self.fsal_cache.get(at.t, u))
        } else {
            None
        };
        self.erk
            .step_with_first_stage(model, at, p, u, u_next, Some(stages), first, stats)?;
        let k_live = self.erk.stage_derivatives();
        for (i, live) in self.pair.live_of.iter().enumerate() {
            if let Some(li) = live {
                self.kf[i * n..(i + 1) * n].copy_from_slice(&k_live[li * n..(li + 1) * n]);
            }
        }
        if self.pair.first_reusable {
            self.first.set(at.t, u, &self.kf[..n]);
        }
        for &i in &self.pair.dead {
            let t_i = at.t + self.pair.c[i] * at.h;
            let y: &[f64] = if self.pair.fsal && i + 1 == self.pair.s {
                // Row a[s−1] equals b bit for bit (checked by `with_fsal`): Y_s is u_{n+1}.
                u_next
            } else {
                rk_combination(
                    u,
                    at.h,
                    &self.pair.a[i * self.pair.s..i * self.pair.s + i],
                    &self.kf,
                    &mut self.y,
                );
                &self.y
            };
            let (_, k_i) = self.kf.split_at_mut(i * n);
            model
                .try_rhs(t_i, y, p, &mut k_i[..n])
                .map_err(|e| Error::model(at.index, t_i, Phase::Forward, Eval::Rhs, e))?;
            stats.rhs_evals += 1;
        }
        if self.pair.fsal && self.pair.first_reusable {
            let last = self.pair.s - 1;
            let t_last = at.t + self.pair.c[last] * at.h;
            self.fsal_cache
                .set(t_last, u_next, &self.kf[last * n..(last + 1) * n]);
        }
        err.fill(0.0);
        for (i, &d_i) in self.pair.d.iter().enumerate() {
            if d_i != 0.0 {
                for (e, &k) in err.iter_mut().zip(&self.kf[i * n..(i + 1) * n]) {
                    *e += d_i * k;
                }
            }
        }
        for e in err.iter_mut() {
            *e *= at.h;
        }
        Ok(())
    }

    fn seed_first_stage(&mut self, t: f64, u: &[f64], k1: &[f64]) {
        if self.pair.first_reusable {
            self.first.set(t, u, k1);
        }
    }

    fn reset(&mut self) {
        self.first.clear();
        self.fsal_cache.clear();
    }
}
