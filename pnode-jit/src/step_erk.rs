//! Fused explicit Runge–Kutta steps: the whole forward step and the whole adjoint step of one
//! tableau, with the RHS and VJP code inlined, as single native kernels.
//!
//! Forward (live stages `i = 1 … s`, Hairer–Nørsett–Wanner I, §II.1):
//!
//! ```text
//! Y_i = u_n + h Σ_{j<i} a_ij K_j,   K_i = f(t_n + c_i h, Y_i),   u_{n+1} = u_n + h Σ_i b_i K_i.
//! ```
//!
//! Reverse (the exact derivative of that map, written unscaled so `b_i = 0` needs no special
//! case; Hager 2000, Sandu 2006), `i = s … 1`:
//!
//! ```text
//! w_i = h (b_i λ_{n+1} + Σ_{j>i} a_ji ξ_j),   ξ_i = f_u(Y_i)ᵀ w_i,   μ += f_θ(Y_i)ᵀ w_i,
//! λ_n = λ_{n+1} + Σ_i ξ_i.
//! ```
//!
//! The stages are unrolled, the live coefficients `a_ij`, `b_i`, `c_i` are constants of the
//! code (zero ones emit nothing), dead stages are absent, and each stage's RHS (or VJP) is the
//! lowered IR inlined with its inputs bound to the stage's registers or buffers. States of at
//! most `REG_MAX` elements never touch memory inside a step. The arithmetic of every element is
//! that of `pnode_runtime::erk` (`0 + a_i1 K_1 + …`, then `u + h·(…)`; cotangents
//! `((b_i λ + a_{i+1,i} ξ_{i+1}) + …)·h`), so a fused step equals `ErkStepper` over the same
//! RHS code to round-off.
//!
//! Three forward kernels are generated — a plain step, a step that also writes its stage values
//! `Y_1 … Y_s`, and a stage recomputation that stops before the last stage's RHS — by one
//! emitter, so a kept stage and a recomputed one are the same operations on the same values:
//! bitwise identical, which makes every checkpoint schedule give the store-all gradient bit for
//! bit.
//!
//! # References
//! * E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 1993.
//! * W. W. Hager, "Runge–Kutta methods in optimal control and the transformed adjoint system",
//!   Numer. Math. 87 (2000).
//! * A. Sandu, "On the properties of Runge–Kutta discrete adjoints", ICCS 2006.

use crate::abi::{JitBuild, Kernel, Lens, Params};
use crate::compile::check_size;
use crate::emit::{Emit, REG_MAX, Val};
use crate::error::Result;
use crate::lower::{Bind, lower};
use crate::step_pair::{Pair, PairKernels, define_try};
use cranelift_codegen::ir::{InstBuilder, Value};
use pnode_checkpoint::Stats;
use pnode_ir::Function;
use pnode_runtime::checkpoint::StepCost;
use pnode_runtime::model::{Rhs, RhsVjp};
use pnode_runtime::stepper::{AdjointStepper, ForwardStepper, StepAt};
use pnode_runtime::tableau::LiveCoefficients;
use pnode_runtime::{Error as RtError, Tableau};
use std::time::{Duration, Instant};

/// The coefficients and sizes one fused kernel is generated for.
pub(crate) struct Plan<'f> {
    pub(crate) co: LiveCoefficients,
    pub(crate) n: usize,
    pub(crate) np: usize,
    pub(crate) rhs: &'f Function,
    pub(crate) vjp: &'f Function,
}

/// A state-sized vector: in registers when short, else in fresh scratch.
fn load_state(e: &mut Emit<'_, '_, '_>, v: Val) -> Val {
    e.small_to_regs(v)
}

/// `u + h (0 + Σ_j w_j K_j)` over the nonzero `w_j` (the arithmetic of `rk_combination`).
pub(crate) fn lincomb(
    e: &mut Emit<'_, '_, '_>,
    u: &Val,
    h: Value,
    w: &[f64],
    ks: &[Val],
) -> Result<Val> {
    let terms: Vec<(f64, &Val)> = w
        .iter()
        .zip(ks)
        .filter(|(wj, _)| **wj != 0.0)
        .map(|(wj, k)| (*wj, k))
        .collect();
    combine(e, Some(u), u.len(), h, &terms)
}

/// Elementwise `acc = 0 + w_1 K_1 + w_2 K_2 + …` (left to right over `terms`), then
/// `u + h·acc` when `base` is `Some(u)` (a stage input or the step update) or `acc·h` when it
/// is `None` (the error estimate `h Σ (b_j − b̂_j) K_j`, the arithmetic of the runtime's
/// `EmbeddedErk`). `n` is the vectors' length.
pub(crate) fn combine(
    e: &mut Emit<'_, '_, '_>,
    base: Option<&Val>,
    n: usize,
    h: Value,
    terms: &[(f64, &Val)],
) -> Result<Val> {
    if n <= REG_MAX {
        let coef: Vec<Value> = terms.iter().map(|(wj, _)| e.f64c(*wj)).collect();
        let mut r = Vec::with_capacity(n);
        for el in 0..n {
            let mut acc = e.f64c(0.0);
            for ((_, k), c) in terms.iter().zip(&coef) {
                let kv = e.get(k, el);
                let p = e.fb.ins().fmul(*c, kv);
                acc = e.fb.ins().fadd(acc, p);
            }
            r.push(match base {
                Some(u) => {
                    let uv = e.get(u, el);
                    let hs = e.fb.ins().fmul(h, acc);
                    e.fb.ins().fadd(uv, hs)
                }
                None => e.fb.ins().fmul(acc, h),
            });
        }
        return Ok(Val::Regs(r));
    }
    let base = base.map(|u| e.mem(u)).transpose()?;
    let ks: Vec<(f64, Val)> = terms
        .iter()
        .map(|(wj, k)| Ok((*wj, e.mem(k)?)))
        .collect::<Result<_>>()?;
    let dst = e.alloc(n)?;
    e.for_range(n, |e, i| {
        let mut acc = e.f64c(0.0);
        for (wj, k) in &ks {
            let c = e.f64c(*wj);
            let kv = e.get_dyn(k, i);
            let p = e.fb.ins().fmul(c, kv);
            acc = e.fb.ins().fadd(acc, p);
        }
        let r = match &base {
            Some(u) => {
                let uv = e.get_dyn(u, i);
                let hs = e.fb.ins().fmul(h, acc);
                e.fb.ins().fadd(uv, hs)
            }
            None => e.fb.ins().fmul(acc, h),
        };
        e.put_dyn(&dst, i, r);
        Ok(())
    })?;
    Ok(dst)
}

/// `v` itself when in registers, else copied into `keep` (a buffer allocated before the
/// scratch region about to be released).
pub(crate) fn persist(e: &mut Emit<'_, '_, '_>, v: Val, keep: Option<Val>) -> Result<Val> {
    match (v, keep) {
        (Val::Regs(r), _) => Ok(Val::Regs(r)),
        (v, Some(keep)) => {
            e.copy(&keep, &v)?;
            Ok(keep)
        }
        (v, None) => Ok(Val::Regs(e.regs(&v))),
    }
}

/// `t + c h`.
pub(crate) fn stage_time(e: &mut Emit<'_, '_, '_>, t: Value, h: Value, c: f64) -> Value {
    let c = e.f64c(c);
    let ch = e.fb.ins().fmul(c, h);
    e.fb.ins().fadd(t, ch)
}

/// The forward stages: `Y_i` for every live stage (written to `sink` at `i·n` when given) and
/// `K_i` for `i ≤ last_k`, `K_1` read from `first` instead of evaluated when given. Returns
/// `u_n` (as loaded), the `K_i` and the parameters (as loaded).
pub(crate) fn emit_stages(
    e: &mut Emit<'_, '_, '_>,
    plan: &Plan<'_>,
    [t, h, u, p]: [Value; 4],
    last_k: Option<usize>,
    sink: Option<&Val>,
    first: Option<Val>,
) -> Result<(Val, Vec<Val>, Val)> {
    let (n, s) = (plan.n, plan.co.s);
    let u = load_state(
        e,
        Val::Mem {
            base: u,
            off: 0,
            len: n,
        },
    );
    // Loaded once for all stages (short parameter vectors stay in registers).
    let pv = e.small_to_regs(Val::Mem {
        base: p,
        off: 0,
        len: plan.np,
    });
    let mut ks: Vec<Val> = Vec::with_capacity(s);
    for i in 0..s {
        let y = if i == 0 {
            u.clone()
        } else {
            let row = &plan.co.a[i * s..i * s + i];
            lincomb(e, &u, h, row, &ks)?
        };
        if let Some(sink) = sink {
            e.copy(&sink.slice(i * n, n), &y)?;
        }
        if let (0, Some(k1)) = (i, &first) {
            ks.push(e.small_to_regs(k1.clone()));
        } else if last_k.is_some_and(|l| i <= l) {
            let t_i = stage_time(e, t, h, plan.co.c[i]);
            // `K_i` outlives the stage; the RHS's own scratch is reused by the next stage.
            let keep = if n > REG_MAX { Some(e.alloc(n)?) } else { None };
            let mark = e.mark();
            let bind = Bind {
                t: t_i,
                bufs: [Some(y), Some(pv.clone()), None, None],
            };
            let outs = lower(e, plan.rhs, &bind)?;
            let k = e.concat(&outs)?;
            let k = persist(e, k, keep)?;
            e.release(mark);
            ks.push(k);
        }
    }
    Ok((u, ks, pv))
}

#[derive(Clone, Copy)]
enum Forward {
    Step,
    Keep,
    Recompute,
}

fn define_forward(jb: &mut JitBuild, plan: &Plan<'_>, kind: Forward) -> Result<usize> {
    let (n, s, np) = (plan.n, plan.co.s, plan.np);
    jb.define(|fb, prm: Params, sv| {
        let [t, h, u, p, _x, out, scratch] = prm;
        let mut e = Emit::new(fb, sv, scratch);
        let out_len = match kind {
            Forward::Step => n,
            Forward::Keep | Forward::Recompute => s * n,
        };
        // The step that keeps its stages writes them to `out` and `u_{n+1}` to the first `n`
        // elements of scratch (allocated first, so at offset 0).
        let next_dst = match kind {
            Forward::Keep => e.alloc(n)?,
            _ => Val::Mem {
                base: out,
                off: 0,
                len: n,
            },
        };
        let outv = Val::Mem {
            base: out,
            off: 0,
            len: out_len,
        };
        match kind {
            Forward::Step | Forward::Keep => {
                let sink = matches!(kind, Forward::Keep).then(|| outv.clone());
                let (uv, ks, _) =
                    emit_stages(&mut e, plan, [t, h, u, p], Some(s - 1), sink.as_ref(), None)?;
                let next = lincomb(&mut e, &uv, h, &plan.co.b, &ks)?;
                e.copy(&next_dst, &next)?;
            }
            Forward::Recompute => {
                // K of the last stage is not needed: the adjoint uses the stage inputs only.
                let last_k = s.checked_sub(2);
                emit_stages(&mut e, plan, [t, h, u, p], last_k, Some(&outv), None)?;
            }
        }
        e.fb.ins().return_(&[]);
        Ok(Lens {
            u: n,
            p: np,
            x: 0,
            out: out_len,
            scratch: e.scratch_peak(),
        })
    })
}

fn define_adjoint(jb: &mut JitBuild, plan: &Plan<'_>) -> Result<usize> {
    let (n, s, np) = (plan.n, plan.co.s, plan.np);
    let co = &plan.co;
    jb.define(|fb, prm: Params, sv| {
        let [t, h, stages, p, lam_in, out, scratch] = prm;
        let mut e = Emit::new(fb, sv, scratch);
        let lam = load_state(
            &mut e,
            Val::Mem {
                base: lam_in,
                off: 0,
                len: n,
            },
        );
        let mu_mem = Val::Mem {
            base: out,
            off: n,
            len: np,
        };
        let mut mu = if np <= REG_MAX {
            Val::Regs(e.regs(&mu_mem))
        } else {
            mu_mem.clone()
        };
        let pv = e.small_to_regs(Val::Mem {
            base: p,
            off: 0,
            len: np,
        });
        let mut xi: Vec<Option<Val>> = vec![None; s];
        for i in (0..s).rev() {
            // w_i = h (b_i λ + Σ_{j>i} a_ji ξ_j)
            let terms: Vec<(f64, Val)> = (i + 1..s)
                .filter(|&j| co.a[j * s + i] != 0.0)
                .filter_map(|j| xi[j].clone().map(|x| (co.a[j * s + i], x)))
                .collect();
            let w = cotangent(&mut e, co.b[i], &terms, &lam, h)?;
            let t_i = stage_time(&mut e, t, h, co.c[i]);
            let y = load_state(
                &mut e,
                Val::Mem {
                    base: stages,
                    off: i * n,
                    len: n,
                },
            );
            let bind = Bind {
                t: t_i,
                bufs: [Some(y), Some(pv.clone()), None, Some(w)],
            };
            // `ξ_i` outlives the stage; the VJP's own scratch is reused by the next stage.
            let keep = if n > REG_MAX { Some(e.alloc(n)?) } else { None };
            let mark = e.mark();
            let outs = lower(&mut e, plan.vjp, &bind)?;
            let g = e.concat(&outs)?;
            xi[i] = Some(persist(&mut e, g.slice(0, n), keep)?);
            let gp = g.slice(n, np);
            mu = accumulate(&mut e, mu, &gp)?;
            e.release(mark);
        }
        // λ_n = λ_{n+1} + ξ_1 + … + ξ_s
        let xs: Vec<Val> = xi.into_iter().flatten().collect();
        let lam_out = Val::Mem {
            base: out,
            off: 0,
            len: n,
        };
        if n <= REG_MAX {
            for el in 0..n {
                let mut l = e.get(&lam, el);
                for x in &xs {
                    let v = e.get(x, el);
                    l = e.fb.ins().fadd(l, v);
                }
                e.put(&lam_out, el, l);
            }
        } else {
            let lam = e.mem(&lam)?;
            let xs: Vec<Val> = xs.iter().map(|x| e.mem(x)).collect::<Result<_>>()?;
            e.for_range(n, |e, i| {
                let mut l = e.get_dyn(&lam, i);
                for x in &xs {
                    let v = e.get_dyn(x, i);
                    l = e.fb.ins().fadd(l, v);
                }
                e.put_dyn(&lam_out, i, l);
                Ok(())
            })?;
        }
        if let Val::Regs(_) = mu {
            e.copy(&mu_mem, &mu)?;
        }
        e.fb.ins().return_(&[]);
        Ok(Lens {
            u: s * n,
            p: np,
            x: n,
            out: n + np,
            scratch: e.scratch_peak(),
        })
    })
}

/// `((b_i λ + a_1 ξ_1) + …)·h` elementwise (the arithmetic of `stage_cotangent`).
fn cotangent(
    e: &mut Emit<'_, '_, '_>,
    b_i: f64,
    terms: &[(f64, Val)],
    lam: &Val,
    h: Value,
) -> Result<Val> {
    let n = lam.len();
    if n <= REG_MAX {
        let b = e.f64c(b_i);
        let mut r = Vec::with_capacity(n);
        for el in 0..n {
            let l = e.get(lam, el);
            let mut acc = e.fb.ins().fmul(b, l);
            for (a, x) in terms {
                let c = e.f64c(*a);
                let v = e.get(x, el);
                let p = e.fb.ins().fmul(c, v);
                acc = e.fb.ins().fadd(acc, p);
            }
            r.push(e.fb.ins().fmul(acc, h));
        }
        return Ok(Val::Regs(r));
    }
    let lam = e.mem(lam)?;
    let terms: Vec<(f64, Val)> = terms
        .iter()
        .map(|(a, x)| Ok((*a, e.mem(x)?)))
        .collect::<Result<_>>()?;
    let dst = e.alloc(n)?;
    e.for_range(n, |e, i| {
        let b = e.f64c(b_i);
        let l = e.get_dyn(&lam, i);
        let mut acc = e.fb.ins().fmul(b, l);
        for (a, x) in &terms {
            let c = e.f64c(*a);
            let v = e.get_dyn(x, i);
            let p = e.fb.ins().fmul(c, v);
            acc = e.fb.ins().fadd(acc, p);
        }
        let r = e.fb.ins().fmul(acc, h);
        e.put_dyn(&dst, i, r);
        Ok(())
    })?;
    Ok(dst)
}

/// `μ + g` elementwise: in registers, or in place in memory.
fn accumulate(e: &mut Emit<'_, '_, '_>, mu: Val, g: &Val) -> Result<Val> {
    match mu {
        Val::Regs(m) => {
            let mut r = Vec::with_capacity(m.len());
            for (k, mv) in m.into_iter().enumerate() {
                let gv = e.get(g, k);
                r.push(e.fb.ins().fadd(mv, gv));
            }
            Ok(Val::Regs(r))
        }
        mem => {
            let g = e.mem(g)?;
            e.for_range(mem.len(), |e, i| {
                let mv = e.get_dyn(&mem, i);
                let gv = e.get_dyn(&g, i);
                let s = e.fb.ins().fadd(mv, gv);
                e.put_dyn(&mem, i, s);
                Ok(())
            })?;
            Ok(mem)
        }
    }
}

/// Define the four fused kernels of `tableau` over `rhs` (with its VJP `vjp`) in `jb`: the
/// step, the step keeping its stages, the stage recomputation and the adjoint step, in that
/// order; returns their indices. With `pair` (the tableau's embedded pair, see
/// [`crate::step_pair`]) the trial-step kernels follow: computing `K_1`, then (when the first
/// stage can be reused) reading it.
pub(crate) fn define_kernels(
    jb: &mut JitBuild,
    tableau: &Tableau,
    rhs: &Function,
    vjp: &Function,
    pair: Option<&Pair>,
) -> Result<Vec<usize>> {
    let l = *rhs.layout();
    let co = tableau.live_coefficients();
    let (n, np, s) = (l.state, l.param, co.s);
    // The trial step writes `[Y_1 … Y_s, u_{n+1}, err, K_1, K_fsal]`.
    let vectors = if pair.is_some() { s + 4 } else { s + 1 };
    check_size("stage values", vectors.saturating_mul(n))?;
    check_size("parameters", np)?;
    let plan = Plan {
        co,
        n,
        np,
        rhs,
        vjp,
    };
    let mut kernels = vec![
        define_forward(jb, &plan, Forward::Step)?,
        define_forward(jb, &plan, Forward::Keep)?,
        define_forward(jb, &plan, Forward::Recompute)?,
        define_adjoint(jb, &plan)?,
    ];
    if let Some(pair) = pair {
        kernels.push(define_try(jb, &plan, pair, false)?);
        if pair.first_reusable {
            kernels.push(define_try(jb, &plan, pair, true)?);
        }
    }
    Ok(kernels)
}

/// An explicit Runge–Kutta method fused with an IR right-hand side: every forward step, stage
/// recomputation and adjoint step is one call of native code (see the module documentation).
///
/// It implements the runtime's [`ForwardStepper`] and [`AdjointStepper`], so
/// [`pnode_runtime::Solver`] drives it under every checkpoint schedule. The model the solver
/// passes is only checked for its sizes (the stepper runs its own compiled RHS and VJP); pass
/// a [`crate::JitModel`] or a `pnode_ir::runtime::IrModel` of the same function. Statistics are
/// counted as `ErkStepper` counts them: `s` RHS evaluations per step, `s − 1` per stage
/// recomputation, `s` VJPs per adjoint step (`s` live stages).
#[derive(Debug, Clone)]
pub struct JitErkStepper {
    pub(crate) tableau: Tableau,
    pub(crate) s: usize,
    pub(crate) n: usize,
    np: usize,
    step: Kernel,
    keep: Kernel,
    recompute: Kernel,
    adjoint: Kernel,
    /// The trial-step kernels and stage caches ([`JitErkStepper::with_error_estimate`]).
    pub(crate) pair: Option<PairKernels>,
    pub(crate) scratch: Vec<f64>,
    adj_out: Vec<f64>,
    compile_time: Duration,
}

impl JitErkStepper {
    /// Compile the fused steps of `tableau` for the RHS function `rhs` (its VJP is derived
    /// here).
    pub fn new(tableau: Tableau, rhs: &Function) -> Result<Self> {
        Self::build(tableau, rhs, false)
    }

    /// [`JitErkStepper::new`] plus the trial-step kernels of the tableau's embedded pair, for
    /// the runtime's `AdaptiveSolver`: the stepper then implements `EmbeddedStepper`, each
    /// trial step one call computing `u_{n+1}` (bitwise the fused step's: the same emitter),
    /// the stage values, the stages only the estimate needs and
    /// `err = h Σ_i (b_i − b̂_i) K_i` in the runtime `EmbeddedErk`'s arithmetic; a second kernel
    /// takes `K_1` cached at bitwise the same `(t, u)` (a retry, the FSAL stage). The driver's
    /// seeded `f(t_0, u_0)` is not used (the model's RHS need not be bitwise the fused one), so
    /// a run makes one RHS evaluation more than `EmbeddedErk`. A tableau without embedded
    /// weights is [`crate::Error::NoErrorEstimate`].
    pub fn with_error_estimate(tableau: Tableau, rhs: &Function) -> Result<Self> {
        Self::build(tableau, rhs, true)
    }

    fn build(tableau: Tableau, rhs: &Function, with_pair: bool) -> Result<Self> {
        let start = Instant::now();
        crate::model::check_rhs(rhs)?;
        let pair = if with_pair {
            Some(crate::step_pair::pair_of(&tableau)?)
        } else {
            None
        };
        let vjp = pnode_ir::vjp(rhs)?;
        let l = *rhs.layout();
        let (n, np, s) = (l.state, l.param, tableau.live_coefficients().s);
        let mut jb = JitBuild::new()?;
        let indices = define_kernels(&mut jb, &tableau, rhs, &vjp, pair.as_ref())?;
        let code = jb.finish()?;
        let kernels: Vec<Kernel> = indices.iter().map(|&i| Kernel::new(&code, i)).collect();
        let scratch = kernels.iter().map(|k| k.lens().scratch).max().unwrap_or(0);
        let pair = pair.map(|pr| PairKernels::new(pr, &kernels[4..], n, s));
        let [step, keep, recompute, adjoint] = [0, 1, 2, 3].map(|i| kernels[i].clone());
        Ok(JitErkStepper {
            tableau,
            s,
            n,
            np,
            step,
            keep,
            recompute,
            adjoint,
            pair,
            scratch: vec![0.0; scratch],
            adj_out: vec![0.0; n + np],
            compile_time: start.elapsed(),
        })
    }

    /// The tableau.
    pub fn tableau(&self) -> &Tableau {
        &self.tableau
    }

    /// Number of live stages `s`.
    pub fn live_stages(&self) -> usize {
        self.s
    }

    /// Whether the trial-step kernels of the embedded pair were compiled
    /// ([`JitErkStepper::with_error_estimate`]).
    pub fn has_error_estimate(&self) -> bool {
        self.pair.is_some()
    }

    /// Wall time of deriving the VJP and compiling the kernels.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    pub(crate) fn check_model<M: Rhs + ?Sized>(&self, model: &M) -> pnode_runtime::Result<()> {
        for (what, expected, found) in [
            ("model state", self.n, model.state_len()),
            ("model parameters", self.np, model.param_len()),
        ] {
            if expected != found {
                return Err(RtError::LengthMismatch {
                    what,
                    expected,
                    found,
                });
            }
        }
        Ok(())
    }
}

/// A JIT error as a runtime error (only length errors can occur once compiled).
pub(crate) fn rt(e: crate::Error) -> RtError {
    match e {
        crate::Error::Length {
            what,
            expected,
            found,
        } => RtError::LengthMismatch {
            what,
            expected,
            found,
        },
        other => RtError::Usage(other.to_string()),
    }
}

impl<M: Rhs + ?Sized> ForwardStepper<M> for JitErkStepper {
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
    ) -> pnode_runtime::Result<()> {
        self.check_model(model)?;
        match stages {
            None => self
                .step
                .call(at.t, at.h, u, p, &[], u_next, &mut self.scratch)
                .map_err(rt)?,
            Some(st) => {
                let n = self.n;
                if u_next.len() != n {
                    return Err(RtError::LengthMismatch {
                        what: "next state",
                        expected: n,
                        found: u_next.len(),
                    });
                }
                self.keep
                    .call(at.t, at.h, u, p, &[], st, &mut self.scratch)
                    .map_err(rt)?;
                u_next.copy_from_slice(&self.scratch[..n]);
            }
        }
        stats.rhs_evals += self.s as u64;
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
    ) -> pnode_runtime::Result<()> {
        self.check_model(model)?;
        self.recompute
            .call(at.t, at.h, u, p, &[], stages, &mut self.scratch)
            .map_err(rt)?;
        stats.rhs_evals += self.s.saturating_sub(1) as u64;
        Ok(())
    }
}

impl<M: RhsVjp + ?Sized> AdjointStepper<M> for JitErkStepper {
    fn reverse(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        stages: &[f64],
        lambda: &mut [f64],
        mu: &mut [f64],
        stats: &mut Stats,
    ) -> pnode_runtime::Result<()> {
        self.check_model(model)?;
        let n = self.n;
        if lambda.len() != n || mu.len() != self.np {
            return Err(RtError::LengthMismatch {
                what: "adjoint",
                expected: n + self.np,
                found: lambda.len() + mu.len(),
            });
        }
        self.adj_out[n..].copy_from_slice(mu);
        self.adjoint
            .call(
                at.t,
                at.h,
                stages,
                p,
                lambda,
                &mut self.adj_out,
                &mut self.scratch,
            )
            .map_err(rt)?;
        lambda.copy_from_slice(&self.adj_out[..n]);
        mu.copy_from_slice(&self.adj_out[n..]);
        stats.vjp_evals += self.s as u64;
        Ok(())
    }
}
