//! The Cranelift IR (CLIF) of the kernels pnode-jit compiles, as text: what `pnodec emit
//! --clif` prints.
//!
//! [`model_clif`] compiles an RHS with its symbolic JVP and VJP exactly as [`crate::JitModel`]
//! does, and [`erk_clif`] the fused kernels of an explicit tableau exactly as
//! [`crate::JitErkStepper`] does, keeping each kernel's IR twice: as the emitters generated it
//! (the input of Cranelift's optimizer, with the stages unrolled and the tableau's coefficients
//! as `f64const`s) and as optimized and legalized for the host (what became machine code). The
//! code is compiled and linked as for running, then freed; so a model that compiles here
//! compiles in a run, and the same errors ([`crate::Error::Unsupported`], …) are reported.
//!
//! Every kernel has the ABI of [`crate::abi`]: seven parameters `(t: f64, h: f64, u, p, x,
//! out, scratch)`, the last five pointers, and no result. In the text each kernel is named by
//! its role (`%rhs`, `%erk_adjoint`, …) instead of its index in the JIT module; imported math
//! functions appear as `u0:N` declarations.
//!
//! ```
//! use pnode_ir::{Builder, Layout};
//! use pnode_jit::clif::{ClifStage, model_clif};
//! // du/dt = -k u
//! let mut b = Builder::new(Layout::new(1, 1));
//! let u = b.state(0, [1])?;
//! let k = b.param(0, [])?;
//! let ku = b.mul(k, u)?;
//! let f = b.neg(ku)?;
//! let rhs = b.finish_rhs(&[f])?;
//! let kernels = model_clif(&rhs)?;
//! assert_eq!(kernels.len(), 3);
//! let text = kernels[0].text(ClifStage::Generated);
//! assert!(text.starts_with("function %rhs(f64, f64, i64, i64, i64, i64, i64)"));
//! assert!(text.contains("fneg"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::abi::{CapturedIr, JitBuild, Lens};
use crate::compile::define_function;
use crate::error::Result;
use cranelift_codegen::ir::UserFuncName;
use pnode_ir::Function;
use pnode_runtime::Tableau;

/// What a kernel computes (its row of the ABI table in [`crate::abi`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelRole {
    /// `f(t, u; θ)`.
    Rhs,
    /// `f_u(t, u; θ) v`.
    Jvp,
    /// `(f_uᵀ w, f_θᵀ w)`.
    Vjp,
    /// The fused forward step `u_n → u_{n+1}`.
    ErkStep,
    /// The fused forward step writing its stage values `Y_1 … Y_s`.
    ErkStepKeep,
    /// The stage recomputation `u_n → Y_1 … Y_s` (no last-stage RHS).
    ErkRecompute,
    /// The fused adjoint step `(Y_1 … Y_s, λ_{n+1}, μ) → (λ_n, μ)`.
    ErkAdjoint,
    /// The trial step of an embedded pair: the step keeping its stages plus the error estimate
    /// `h Σ (b_i − b̂_i) K_i` (see `JitErkStepper::with_error_estimate`).
    ErkTryStep,
    /// [`KernelRole::ErkTryStep`] with the first stage `K_1` given (FSAL and retry reuse).
    ErkTryStepFirstGiven,
}

impl KernelRole {
    /// The kernel's name in the printed IR (`rhs`, `erk_step`, …).
    pub fn name(self) -> &'static str {
        match self {
            KernelRole::Rhs => "rhs",
            KernelRole::Jvp => "jvp",
            KernelRole::Vjp => "vjp",
            KernelRole::ErkStep => "erk_step",
            KernelRole::ErkStepKeep => "erk_step_keep",
            KernelRole::ErkRecompute => "erk_recompute",
            KernelRole::ErkAdjoint => "erk_adjoint",
            KernelRole::ErkTryStep => "erk_try_step",
            KernelRole::ErkTryStepFirstGiven => "erk_try_step_first_given",
        }
    }

    /// One line saying what the kernel computes and where its buffers go.
    pub fn describe(self) -> &'static str {
        match self {
            KernelRole::Rhs => "out = f(t, u; p)",
            KernelRole::Jvp => "out = f_u(t, u; p) x (x: the tangent)",
            KernelRole::Vjp => "out = [f_u^T x, f_p^T x] (x: the cotangent)",
            KernelRole::ErkStep => "out = u_{n+1}, one step of size h from u = u_n at t",
            KernelRole::ErkStepKeep => {
                "out = [Y_1 .. Y_s], u_{n+1} in scratch[..n]: the step keeping its stages"
            }
            KernelRole::ErkRecompute => "out = [Y_1 .. Y_s] from u = u_n (stage recomputation)",
            KernelRole::ErkAdjoint => {
                "out = [lambda_n, mu] from u = [Y_1 .. Y_s], x = lambda_{n+1}, mu read and updated"
            }
            KernelRole::ErkTryStep => {
                "out = [Y_1 .. Y_s, u_{n+1}, err, K_1, K_last (FSAL only)] from u = u_n: the \
                 trial step with err = h sum_i (b_i - bhat_i) K_i"
            }
            KernelRole::ErkTryStepFirstGiven => {
                "out = [Y_1 .. Y_s, u_{n+1}, err, K_1, K_last (FSAL only)] from u = u_n, \
                 x = K_1: the trial step reusing its first stage"
            }
        }
    }
}

/// Which form of a kernel's IR to print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClifStage {
    /// As the emitters generated it (the optimizer's input).
    #[default]
    Generated,
    /// After Cranelift's optimizer and legalization for the host (what became machine code).
    Optimized,
}

/// One compiled kernel's Cranelift IR.
#[derive(Clone, Debug)]
pub struct ClifKernel {
    /// What the kernel computes.
    pub role: KernelRole,
    /// The buffer lengths it reads and writes.
    pub lens: Lens,
    generated: String,
    optimized: String,
}

impl ClifKernel {
    fn new(role: KernelRole, ir: CapturedIr) -> Self {
        let show = |mut f: cranelift_codegen::ir::Function| {
            f.name = UserFuncName::testcase(role.name());
            f.display().to_string()
        };
        ClifKernel {
            role,
            lens: ir.lens,
            generated: show(ir.generated),
            optimized: show(ir.optimized),
        }
    }

    /// The IR at `stage`, as Cranelift prints it (`function %NAME(…) … { … }`).
    pub fn text(&self, stage: ClifStage) -> &str {
        match stage {
            ClifStage::Generated => &self.generated,
            ClifStage::Optimized => &self.optimized,
        }
    }
}

/// Compile the kernels `define` adds to a fresh module, keeping their IR; `roles` names them
/// in definition order.
fn capture(
    roles: &[KernelRole],
    define: impl FnOnce(&mut JitBuild) -> Result<()>,
) -> Result<Vec<ClifKernel>> {
    let mut jb = JitBuild::new()?;
    jb.capture_ir();
    define(&mut jb)?;
    let irs = jb.take_ir();
    // Link as a run would (and free the code when the handle drops).
    drop(jb.finish()?);
    Ok(roles
        .iter()
        .zip(irs)
        .map(|(&role, ir)| ClifKernel::new(role, ir))
        .collect())
}

/// The IR of the kernels [`crate::JitModel`] compiles for `rhs`: the RHS, its JVP and its VJP.
pub fn model_clif(rhs: &Function) -> Result<Vec<ClifKernel>> {
    crate::model::check_rhs(rhs)?;
    let jvp = pnode_ir::jvp(rhs)?;
    let vjp = pnode_ir::vjp(rhs)?;
    let roles = [KernelRole::Rhs, KernelRole::Jvp, KernelRole::Vjp];
    capture(&roles, |jb| {
        for f in [rhs, &jvp, &vjp] {
            define_function(jb, f)?;
        }
        Ok(())
    })
}

/// The IR of the fused kernels [`crate::JitErkStepper`] compiles for `tableau` over `rhs`: the
/// step, the step keeping its stages, the stage recomputation and the adjoint step; for a
/// tableau with embedded weights also the trial-step kernels with the error estimate that
/// [`crate::JitErkStepper::with_error_estimate`] adds (computing `K_1`, then, when the first
/// stage is reusable, reading it).
pub fn erk_clif(tableau: &Tableau, rhs: &Function) -> Result<Vec<ClifKernel>> {
    crate::model::check_rhs(rhs)?;
    let vjp = pnode_ir::vjp(rhs)?;
    let pair = tableau
        .b_embedded()
        .is_some()
        .then(|| crate::step_pair::pair_of(tableau))
        .transpose()?;
    let mut roles = vec![
        KernelRole::ErkStep,
        KernelRole::ErkStepKeep,
        KernelRole::ErkRecompute,
        KernelRole::ErkAdjoint,
    ];
    if let Some(pair) = &pair {
        roles.push(KernelRole::ErkTryStep);
        if pair.first_reusable {
            roles.push(KernelRole::ErkTryStepFirstGiven);
        }
    }
    capture(&roles, |jb| {
        crate::step_erk::define_kernels(jb, tableau, rhs, &vjp, pair.as_ref()).map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnode_ir::{Builder, Layout};

    /// du/dt = -k u (two states), θ = [k].
    fn decay() -> Function {
        let mut b = Builder::new(Layout::new(2, 1));
        let u = b.state(0, [2]).unwrap();
        let k = b.param(0, []).unwrap();
        let ku = b.mul(k, u).unwrap();
        let f = b.neg(ku).unwrap();
        b.finish_rhs(&[f]).unwrap()
    }

    #[test]
    fn the_model_kernels_are_named_and_sized() {
        let ks = model_clif(&decay()).unwrap();
        let names: Vec<_> = ks.iter().map(|k| k.role.name()).collect();
        assert_eq!(names, ["rhs", "jvp", "vjp"]);
        for k in &ks {
            for stage in [ClifStage::Generated, ClifStage::Optimized] {
                let t = k.text(stage);
                let head = format!(
                    "function %{}(f64, f64, i64, i64, i64, i64, i64)",
                    k.role.name()
                );
                assert!(t.starts_with(&head), "{t}");
                assert!(t.trim_end().ends_with('}'), "{t}");
            }
        }
        // u 2, p 1; the VJP writes [f_uᵀ w, f_θᵀ w].
        assert_eq!((ks[0].lens.u, ks[0].lens.p, ks[0].lens.out), (2, 1, 2));
        assert_eq!((ks[2].lens.x, ks[2].lens.out), (2, 3));
    }

    #[test]
    fn the_fused_kernels_carry_the_tableau_as_constants() {
        let ks = erk_clif(&Tableau::rk4(), &decay()).unwrap();
        let names: Vec<_> = ks.iter().map(|k| k.role.name()).collect();
        assert_eq!(
            names,
            ["erk_step", "erk_step_keep", "erk_recompute", "erk_adjoint"]
        );
        // RK4's b_1 = 1/6 appears as a constant of the step (Cranelift prints f64 constants in
        // hexadecimal float notation: 1/6 = 0x1.5555555555555p-3).
        assert!(
            ks[0]
                .text(ClifStage::Generated)
                .contains("0x1.5555555555555p-3"),
            "{}",
            ks[0].text(ClifStage::Generated)
        );
        // The keeping step writes the 4 stages of 2 states; the adjoint reads them.
        assert_eq!(ks[1].lens.out, 8);
        assert_eq!((ks[3].lens.u, ks[3].lens.x, ks[3].lens.out), (8, 2, 3));
    }

    #[test]
    fn a_pair_adds_the_error_estimating_kernels() {
        let ks = erk_clif(&Tableau::dopri5(), &decay()).unwrap();
        let names: Vec<_> = ks.iter().map(|k| k.role.name()).collect();
        assert_eq!(
            names,
            [
                "erk_step",
                "erk_step_keep",
                "erk_recompute",
                "erk_adjoint",
                "erk_try_step",
                "erk_try_step_first_given"
            ]
        );
        // 6 live stages of 2 states, then u_{n+1}, err, K_1 and the FSAL stage's K.
        assert_eq!((ks[4].lens.u, ks[4].lens.x, ks[4].lens.out), (2, 0, 20));
        assert_eq!((ks[5].lens.u, ks[5].lens.x, ks[5].lens.out), (2, 2, 20));
        // d_1 = b_1 − b̂_1 = 35/384 − 5179/57600 = 71/57600 weighs K_1 in the estimate.
        let d1 = 35.0f64 / 384.0 - 5179.0 / 57600.0;
        let hex = cranelift_codegen::ir::immediates::Ieee64::with_float(d1).to_string();
        for k in &ks[4..] {
            assert!(k.text(ClifStage::Generated).contains(&hex), "{hex}");
        }
        assert!(!ks[0].text(ClifStage::Generated).contains(&hex));
        // Without embedded weights: the four kernels only.
        assert_eq!(erk_clif(&Tableau::rk4(), &decay()).unwrap().len(), 4);
    }

    #[test]
    fn a_function_that_is_not_an_rhs_is_an_error() {
        let mut b = Builder::new(Layout::new(2, 1));
        let u = b.state(0, [2]).unwrap();
        // Four outputs for two states.
        let rhs = b.finish(&[u, u]).unwrap();
        assert!(model_clif(&rhs).is_err());
        assert!(erk_clif(&Tableau::rk4(), &rhs).is_err());
    }
}
