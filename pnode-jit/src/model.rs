//! [`JitModel`]: an IR right-hand side, its JVP and its VJP as native code, plugged into the
//! runtime's model traits.

use crate::abi::{JitBuild, Kernel};
use crate::compile::define_function;
use crate::error::{Error, Result};
use pnode_ir::Function;
use pnode_runtime::model::{Rhs, RhsJvp, RhsVjp};
use std::time::{Duration, Instant};

/// Check that `rhs` is an RHS: outputs totalling the state length, reading only `t`, `u`, `θ`.
pub(crate) fn check_rhs(rhs: &Function) -> Result<()> {
    let l = rhs.layout();
    if rhs.output_len() != l.state {
        return Err(Error::InvalidModel(format!(
            "the RHS outputs {} values for a state of length {}",
            rhs.output_len(),
            l.state
        )));
    }
    if l.tangent != 0 || l.cotangent != 0 {
        return Err(Error::InvalidModel(
            "an RHS reads neither a tangent nor a cotangent buffer".into(),
        ));
    }
    crate::lower::check_supported(rhs)
}

/// An RHS `f(t, u; θ)` given as IR, compiled with its symbolic JVP `f_u v` and VJP
/// `(f_uᵀ w, f_θᵀ w)` (`pnode_ir::jvp`, `pnode_ir::vjp`) into one native module.
///
/// Implements [`Rhs`], [`RhsJvp`] and [`RhsVjp`], so every runtime integrator — explicit RK,
/// θ-methods and DIRKs with Newton stage solves — runs JIT code. As with
/// `pnode_ir::runtime::IrModel`, a call with a buffer of the wrong length (the runtime checks
/// lengths at its entry points, so this does not happen through it) fills the outputs with NaN
/// instead of panicking.
#[derive(Debug, Clone)]
pub struct JitModel {
    rhs: Kernel,
    jvp: Kernel,
    vjp: Kernel,
    n: usize,
    np: usize,
    scratch: Vec<f64>,
    vjp_out: Vec<f64>,
    functions: [Function; 3],
    compile_time: Duration,
}

impl JitModel {
    /// Derive the JVP and VJP of `rhs` and compile all three.
    pub fn new(rhs: &Function) -> Result<Self> {
        let start = Instant::now();
        check_rhs(rhs)?;
        let jvp = pnode_ir::jvp(rhs)?;
        let vjp = pnode_ir::vjp(rhs)?;
        let mut jb = JitBuild::new()?;
        let (ir, _) = define_function(&mut jb, rhs)?;
        let (ij, _) = define_function(&mut jb, &jvp)?;
        let (iv, _) = define_function(&mut jb, &vjp)?;
        let code = jb.finish()?;
        let (rhs_k, jvp_k, vjp_k) = (
            Kernel::new(&code, ir),
            Kernel::new(&code, ij),
            Kernel::new(&code, iv),
        );
        let scratch_len = [&rhs_k, &jvp_k, &vjp_k]
            .iter()
            .map(|k| k.lens().scratch)
            .max()
            .unwrap_or(0);
        let l = *rhs.layout();
        Ok(JitModel {
            rhs: rhs_k,
            jvp: jvp_k,
            vjp: vjp_k,
            n: l.state,
            np: l.param,
            scratch: vec![0.0; scratch_len],
            vjp_out: vec![0.0; l.state + l.param],
            functions: [rhs.clone(), jvp, vjp],
            compile_time: start.elapsed(),
        })
    }

    /// Wall time of deriving and compiling the three kernels.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// The RHS function.
    pub fn rhs_function(&self) -> &Function {
        &self.functions[0]
    }

    /// The JVP function `f_u v`.
    pub fn jvp_function(&self) -> &Function {
        &self.functions[1]
    }

    /// The VJP function `(f_uᵀ w, f_θᵀ w)`.
    pub fn vjp_function(&self) -> &Function {
        &self.functions[2]
    }
}

impl Rhs for JitModel {
    fn state_len(&self) -> usize {
        self.n
    }
    fn param_len(&self) -> usize {
        self.np
    }
    fn rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        if self
            .rhs
            .call(t, 0.0, u, p, &[], f, &mut self.scratch)
            .is_err()
        {
            f.fill(f64::NAN);
        }
    }
}

impl RhsJvp for JitModel {
    fn jvp(&mut self, t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        if self
            .jvp
            .call(t, 0.0, u, p, v, out, &mut self.scratch)
            .is_err()
        {
            out.fill(f64::NAN);
        }
    }
}

impl RhsVjp for JitModel {
    fn vjp(&mut self, t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        let ok = gu.len() == self.n
            && gp.len() == self.np
            && self
                .vjp
                .call(t, 0.0, u, p, w, &mut self.vjp_out, &mut self.scratch)
                .is_ok();
        if ok {
            gu.copy_from_slice(&self.vjp_out[..self.n]);
            gp.copy_from_slice(&self.vjp_out[self.n..]);
        } else {
            gu.fill(f64::NAN);
            gp.fill(f64::NAN);
        }
    }
}
