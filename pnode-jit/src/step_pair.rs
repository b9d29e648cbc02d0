//! The trial step of an embedded explicit Runge–Kutta pair as one fused kernel: `u_{n+1}`, the
//! stage values and the local error estimate of the runtime's adaptive stepping.
//!
//! For a tableau with weights `b` and embedded weights `b̂` (bosh3, dopri5, tsit5,
//! fehlberg45; Hairer–Nørsett–Wanner I, §II.4), one trial step from `(t_n, u_n)` with size `h`
//! computes over all stages `i = 1 … S`
//!
//! ```text
//! Y_i = u_n + h Σ_{j<i} a_ij K_j,   K_i = f(t_n + c_i h, Y_i),
//! u_{n+1} = u_n + h Σ_i b_i K_i,    err = h Σ_i (b_i − b̂_i) K_i.
//! ```
//!
//! The kernel is the fused step that keeps its stages (the same emitter, so `Y_i`, `K_i` and
//! `u_{n+1}` are bitwise those of [`crate::JitErkStepper`]'s `step`, which the adaptive
//! gradient rests on), followed by the stages that do not influence `u_{n+1}` but are weighed
//! by the estimate (the FSAL stage of dopri5, tsit5 and bosh3, evaluated at `Y_S = u_{n+1}`;
//! the sixth stage of fehlberg45), and the estimate, with the arithmetic of the runtime's
//! `EmbeddedErk` (`(0 + d_1 K_1 + d_2 K_2 + …)·h` over the nonzero `d_i = b_i − b̂_i`, in stage
//! order), so the two agree bitwise on the same RHS code.
//!
//! **First-stage reuse.** `K_1 = f(t_n, u_n)` is evaluated once per point, as `EmbeddedErk`
//! does: a retry after a rejection starts from the same `(t_n, u_n)`, and for an FSAL pair the
//! last stage of an accepted step is `f(t_n + h, u_{n+1})`. A second kernel reads `K_1` from
//! its `x` buffer instead of evaluating it; the stepper passes a cached `K_1` only when the
//! cached time and state are bitwise the step's, and every cached `K_1` was computed by the
//! inlined RHS of these kernels. A first stage offered by the driver
//! (`EmbeddedStepper::seed_first_stage`, computed by the *model* for the initial step size) is
//! not used: the model's RHS need not be bitwise the fused one (an interpreter-backed model is
//! not), and `try_step` must compute exactly what `step` computes.
//!
//! Kernel buffers (ABI of [`crate::abi`]): `u = u_n`; `x = K_1` (reuse kernel) or nothing;
//! `out = [Y_1 … Y_s, u_{n+1}, err, K_1, K_S]` (`s` live stages; `K_S` only for FSAL pairs).
//!
//! # References
//! * E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 1993,
//!   §II.4 (embedded formulas, FSAL).

use crate::abi::{JitBuild, Kernel, Lens, Params};
use crate::emit::{Emit, REG_MAX, Val};
use crate::error::{Error, Result};
use crate::lower::{Bind, lower};
use crate::step_erk::{
    JitErkStepper, Plan, combine, emit_stages, lincomb, persist, rt, stage_time,
};
use cranelift_codegen::ir::InstBuilder;
use pnode_checkpoint::Stats;
use pnode_runtime::adaptive::{EmbeddedStepper, PairLayout, StageCache};
use pnode_runtime::model::Rhs;
use pnode_runtime::stepper::StepAt;
use pnode_runtime::{Error as RtError, Tableau};

/// The runtime's analysis of a tableau's embedded pair (all stages, `b − b̂`, the dead stages
/// the estimate needs, FSAL, the estimate's order): one source for every pair.
pub(crate) type Pair = PairLayout;

/// The layout of `tableau`'s pair, or [`Error::NoErrorEstimate`] without embedded weights.
pub(crate) fn pair_of(tableau: &Tableau) -> Result<Pair> {
    PairLayout::of(tableau).map_err(|_| Error::NoErrorEstimate {
        method: tableau.name().to_string(),
    })
}

/// Length of a trial kernel's `out` for `live` live stages of `n` states:
/// `[Y_1 … Y_live, u_{n+1}, err, K_1, K_S (FSAL only)]`.
fn out_len(pair: &Pair, live: usize, n: usize) -> usize {
    (live + 3 + usize::from(pair.fsal)) * n
}

/// Define the trial-step kernel of `pair` (see the module docs): `K_1` from `x` when
/// `first_given`, else evaluated. Returns its index.
pub(crate) fn define_try(
    jb: &mut JitBuild,
    plan: &Plan<'_>,
    pair: &Pair,
    first_given: bool,
) -> Result<usize> {
    let (n, s, np) = (plan.n, plan.co.s, plan.np);
    let out_len = out_len(pair, s, n);
    jb.define(|fb, prm: Params, sv| {
        let [t, h, u, p, x, out, scratch] = prm;
        let mut e = Emit::new(fb, sv, scratch);
        let at = |off: usize| Val::Mem {
            base: out,
            off: off * n,
            len: n,
        };
        let sink = Val::Mem {
            base: out,
            off: 0,
            len: s * n,
        };
        let first = first_given.then_some(Val::Mem {
            base: x,
            off: 0,
            len: n,
        });
        // Exactly the step keeping its stages.
        let (uv, ks, pv) =
            emit_stages(&mut e, plan, [t, h, u, p], Some(s - 1), Some(&sink), first)?;
        let next = lincomb(&mut e, &uv, h, &plan.co.b, &ks)?;
        e.copy(&at(s), &next)?;
        // The stages only the estimate needs, in stage order.
        let mut kf: Vec<Option<Val>> = pair
            .live_of
            .iter()
            .map(|l| l.map(|li| ks[li].clone()))
            .collect();
        let missing = || Error::Codegen("an embedded-pair stage feeds on an absent stage".into());
        for &i in &pair.dead {
            let y = if pair.fsal && i + 1 == pair.s {
                // Row a_S equals b bit for bit (`Tableau::with_fsal`): Y_S is u_{n+1}.
                next.clone()
            } else {
                let terms: Vec<(f64, &Val)> = (0..i)
                    .filter(|&j| pair.a[i * pair.s + j] != 0.0)
                    .map(|j| Ok((pair.a[i * pair.s + j], kf[j].as_ref().ok_or_else(missing)?)))
                    .collect::<Result<_>>()?;
                combine(&mut e, Some(&uv), n, h, &terms)?
            };
            let t_i = stage_time(&mut e, t, h, pair.c[i]);
            let keep = if n > REG_MAX { Some(e.alloc(n)?) } else { None };
            let mark = e.mark();
            let bind = Bind {
                t: t_i,
                bufs: [Some(y), Some(pv.clone()), None, None],
            };
            let outs = lower(&mut e, plan.rhs, &bind)?;
            let k = e.concat(&outs)?;
            let k = persist(&mut e, k, keep)?;
            e.release(mark);
            kf[i] = Some(k);
        }
        let terms: Vec<(f64, &Val)> = (0..pair.s)
            .filter(|&i| pair.d[i] != 0.0)
            .map(|i| Ok((pair.d[i], kf[i].as_ref().ok_or_else(missing)?)))
            .collect::<Result<_>>()?;
        let err = combine(&mut e, None, n, h, &terms)?;
        e.copy(&at(s + 1), &err)?;
        e.copy(&at(s + 2), kf[0].as_ref().ok_or_else(missing)?)?;
        if pair.fsal {
            e.copy(&at(s + 3), kf[pair.s - 1].as_ref().ok_or_else(missing)?)?;
        }
        e.fb.ins().return_(&[]);
        Ok(Lens {
            u: n,
            p: np,
            x: if first_given { n } else { 0 },
            out: out_len,
            scratch: e.scratch_peak(),
        })
    })
}

/// The compiled trial-step kernels of a [`JitErkStepper`] and its stage caches.
#[derive(Debug, Clone)]
pub(crate) struct PairKernels {
    pair: Pair,
    /// Evaluates `K_1`.
    fresh: Kernel,
    /// Reads `K_1` (when the first stage is reusable).
    reuse: Option<Kernel>,
    out: Vec<f64>,
    /// `K_1` of the last attempt's starting point, and the FSAL stage of the last attempt.
    first: StageCache,
    fsal_cache: StageCache,
}

impl PairKernels {
    /// `kernels` are the trial kernels as [`crate::step_erk::define_kernels`] defines them.
    pub(crate) fn new(pair: Pair, kernels: &[Kernel], n: usize, live: usize) -> Self {
        PairKernels {
            out: vec![0.0; out_len(&pair, live, n)],
            fresh: kernels[0].clone(),
            reuse: kernels.get(1).cloned(),
            first: StageCache::new(n),
            fsal_cache: StageCache::new(n),
            pair,
        }
    }
}

impl<M: Rhs + ?Sized> EmbeddedStepper<M> for JitErkStepper {
    /// `min(p, p̂)`, the order of the estimate; the tableau's order without compiled pair
    /// kernels (whose `try_step` then fails).
    fn error_order(&self) -> u32 {
        self.pair
            .as_ref()
            .map_or(self.tableau.order(), |pk| pk.pair.q)
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
    ) -> pnode_runtime::Result<()> {
        self.check_model(model)?;
        let (n, s) = (self.n, self.s);
        let Some(pk) = self.pair.as_mut() else {
            return Err(RtError::NoErrorEstimate {
                method: format!(
                    "{} (JitErkStepper built without `with_error_estimate`)",
                    self.tableau.name()
                ),
            });
        };
        for (what, expected, found) in [
            ("next state", n, u_next.len()),
            ("stage values", s * n, stages.len()),
            ("error estimate", n, err.len()),
        ] {
            if expected != found {
                return Err(RtError::LengthMismatch {
                    what,
                    expected,
                    found,
                });
            }
        }
        let first = if pk.pair.first_reusable {
            pk.first.get(at.t, u).or_else(|| pk.fsal_cache.get(at.t, u))
        } else {
            None
        };
        let reused = match (first, &pk.reuse) {
            (Some(k1), Some(reuse)) => {
                reuse
                    .call(at.t, at.h, u, p, k1, &mut pk.out, &mut self.scratch)
                    .map_err(rt)?;
                true
            }
            _ => {
                pk.fresh
                    .call(at.t, at.h, u, p, &[], &mut pk.out, &mut self.scratch)
                    .map_err(rt)?;
                false
            }
        };
        let vec = |k: usize| k * n..(k + 1) * n;
        stages.copy_from_slice(&pk.out[..s * n]);
        u_next.copy_from_slice(&pk.out[vec(s)]);
        err.copy_from_slice(&pk.out[vec(s + 1)]);
        if pk.pair.first_reusable {
            pk.first.set(at.t, u, &pk.out[vec(s + 2)]);
            if pk.pair.fsal {
                let t_last = at.t + pk.pair.c[pk.pair.s - 1] * at.h;
                pk.fsal_cache.set(t_last, u_next, &pk.out[vec(s + 3)]);
            }
        }
        stats.rhs_evals += (s - usize::from(reused) + pk.pair.dead.len()) as u64;
        Ok(())
    }

    fn reset(&mut self) {
        if let Some(pk) = self.pair.as_mut() {
            pk.first.clear();
            pk.fsal_cache.clear();
        }
    }
}
