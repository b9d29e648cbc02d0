//! The runtime adapter: [`IrModel`] implements `pnode_runtime`'s [`Rhs`], [`RhsJvp`] and
//! [`RhsVjp`] by interpreting an RHS function and its symbolic JVP and VJP.

use crate::ad_forward::jvp;
use crate::ad_reverse::vjp;
use crate::error::Error;
use crate::function::Function;
use crate::interp::Interpreter;
use pnode_runtime::model::{ModelError, Rhs, RhsJvp, RhsVjp};

/// An RHS `f(t, u; θ)` given as IR, with its JVP and VJP derived symbolically, each evaluated
/// by the reference [`Interpreter`] (no allocation per call).
///
/// The runtime checks buffer lengths at its entry points; should a call still receive a buffer
/// of the wrong length, the fallible twins (`try_rhs`, …, which the runtime calls) return the
/// interpreter's error as [`ModelError::Backend`] and the infallible methods fill their
/// outputs with NaN, instead of panicking.
#[derive(Debug, Clone)]
pub struct IrModel {
    rhs: Interpreter,
    jvp: Interpreter,
    vjp: Interpreter,
    vjp_out: Vec<f64>,
}

impl IrModel {
    /// The model of an RHS function (outputs totalling the state length, reading only `t`, `u`
    /// and `θ`).
    pub fn new(rhs: &Function) -> Result<Self, Error> {
        let l = rhs.layout();
        if rhs.output_len() != l.state {
            return Err(Error::Length {
                what: "RHS outputs".into(),
                expected: l.state,
                found: rhs.output_len(),
            });
        }
        for (what, len) in [
            ("RHS tangent buffer", l.tangent),
            ("RHS cotangent buffer", l.cotangent),
        ] {
            if len != 0 {
                return Err(Error::Length {
                    what: what.into(),
                    expected: 0,
                    found: len,
                });
            }
        }
        let j = jvp(rhs)?;
        let v = vjp(rhs)?;
        Ok(IrModel {
            rhs: Interpreter::new(rhs),
            jvp: Interpreter::new(&j),
            vjp_out: vec![0.0; l.state + l.param],
            vjp: Interpreter::new(&v),
        })
    }

    /// The RHS function.
    pub fn rhs_function(&self) -> &Function {
        self.rhs.function()
    }

    /// The JVP function `f_u v`.
    pub fn jvp_function(&self) -> &Function {
        self.jvp.function()
    }

    /// The VJP function `(f_uᵀ w, f_θᵀ w)`.
    pub fn vjp_function(&self) -> &Function {
        self.vjp.function()
    }
}

impl Rhs for IrModel {
    fn state_len(&self) -> usize {
        self.rhs.function().layout().state
    }
    fn param_len(&self) -> usize {
        self.rhs.function().layout().param
    }
    fn rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        if self.try_rhs(t, u, p, f).is_err() {
            f.fill(f64::NAN);
        }
    }
    fn try_rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) -> Result<(), ModelError> {
        self.rhs.eval(t, u, p, &[], f).map_err(interpreter)
    }
}

impl RhsJvp for IrModel {
    fn jvp(&mut self, t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        if self.try_jvp(t, u, p, v, out).is_err() {
            out.fill(f64::NAN);
        }
    }
    fn try_jvp(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        v: &[f64],
        out: &mut [f64],
    ) -> Result<(), ModelError> {
        self.jvp.eval(t, u, p, v, out).map_err(interpreter)
    }
}

impl RhsVjp for IrModel {
    fn vjp(&mut self, t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        if self.try_vjp(t, u, p, w, gu, gp).is_err() {
            gu.fill(f64::NAN);
            gp.fill(f64::NAN);
        }
    }
    fn try_vjp(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        w: &[f64],
        gu: &mut [f64],
        gp: &mut [f64],
    ) -> Result<(), ModelError> {
        let (n, np) = (self.state_len(), self.param_len());
        for (what, len, expected) in [("gu", gu.len(), n), ("gp", gp.len(), np)] {
            if len != expected {
                return Err(ModelError::Mismatch {
                    what: format!("VJP output `{what}` length"),
                    expected: expected.to_string(),
                    found: len.to_string(),
                });
            }
        }
        self.vjp
            .eval(t, u, p, w, &mut self.vjp_out)
            .map_err(interpreter)?;
        gu.copy_from_slice(&self.vjp_out[..n]);
        gp.copy_from_slice(&self.vjp_out[n..]);
        Ok(())
    }
}

/// An interpreter error as a model failure.
fn interpreter(e: Error) -> ModelError {
    ModelError::Backend {
        backend: "pnode-ir interpreter",
        message: e.to_string(),
    }
}
