//! Lowered `.pode` models on libtorch: [`TorchIrModel`] runs a pnode-ir right-hand side
//! `f(t, u; θ)` (the `rhs` of a lowered `Program`) as tch operations ([`IrExecutor`]) and
//! implements `pnode_runtime`'s flat [`Rhs`], [`RhsJvp`] and [`RhsVjp`], so the runtime's
//! solvers and `pnode-driver`'s `Run` use it unchanged. This is the backend for the layers the
//! native backends (the Cranelift JIT, the generated Rust) do not lower: `conv2d` and
//! `groupnorm`.
//!
//! `θ` is the IR's flat parameter vector, `u` its flat state. Each call builds the tensors
//! from the flat buffers (on the model's device), so nothing is cached between calls and each
//! derivative is taken at its explicit point:
//!
//! * RHS: one forward without gradient tracking;
//! * VJP `(f_uᵀ w, f_θᵀ w)`: one forward on fresh leaves `u` and `θ` that require gradients,
//!   one backward with the cotangent `w` (libtorch's reverse mode, `torch::autograd::grad`);
//! * JVP `f_u v`: one forward on the dual tensor `u + ε v` (libtorch's forward-mode AD), whose
//!   tangent is `f_u v` (exact, no differencing).
//!
//! The discrete adjoint itself is the runtime's: it calls these three at the stage points of
//! the steps it took, exactly as for the interpreter or the JIT, so the gradients agree with
//! theirs to round-off.
//!
//! The runtime's traits are infallible: a libtorch failure during a solve is recorded, the
//! outputs are filled with NaN (so the solver stops with a non-finite-state error naming the
//! step and time) and [`TorchIrModel::take_error`] returns the cause. Construction evaluates
//! all three once, so a model libtorch cannot run is an error before any solve.

mod exec;

pub use exec::IrExecutor;

use std::panic::{AssertUnwindSafe, catch_unwind};

use pnode_ir::Function;
use pnode_runtime::model::{Rhs, RhsJvp, RhsVjp};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result, panic_message};
use crate::ffi;

/// A pnode-ir right-hand side on libtorch, as a runtime model over flat `f64` buffers.
#[derive(Debug)]
pub struct TorchIrModel {
    exec: IrExecutor,
    state_len: usize,
    param_len: usize,
    error: Option<String>,
}

impl TorchIrModel {
    /// The model of the RHS function `rhs` on the CPU.
    pub fn new(rhs: &Function) -> Result<Self> {
        Self::with_device(rhs, Device::Cpu)
    }

    /// The model of `rhs` with its tensors on `device` (f64 throughout).
    ///
    /// Errors: `rhs` is not a right-hand side (it reads a tangent or cotangent buffer, or its
    /// output length is not the state length), or libtorch cannot evaluate it, its JVP or its
    /// VJP (the message names the failing operation).
    pub fn with_device(rhs: &Function, device: Device) -> Result<Self> {
        let l = *rhs.layout();
        if l.tangent > 0 || l.cotangent > 0 {
            return Err(Error::Usage(format!(
                "TorchIrModel needs a right-hand side f(t, u, θ); this function also reads a \
                 {} buffer (it is a JVP or VJP)",
                if l.tangent > 0 {
                    "tangent"
                } else {
                    "cotangent"
                }
            )));
        }
        if rhs.output_len() != l.state {
            return Err(Error::Mismatch {
                what: "right-hand side output length".into(),
                expected: format!("{} (the state length)", l.state),
                found: rhs.output_len().to_string(),
            });
        }
        let model = Self {
            exec: IrExecutor::new(rhs, device)?,
            state_len: l.state,
            param_len: l.param,
            error: None,
        };
        // One evaluation of each kernel: an operation libtorch cannot run (or differentiate
        // in some mode) is reported now, not as NaN in the middle of a solve.
        let (u, p) = (vec![0.5; l.state], vec![0.5; l.param]);
        let (mut a, mut b) = (vec![0.0; l.state], vec![0.0; l.param]);
        model.try_rhs(0.0, &u, &p, &mut a)?;
        model.try_jvp(0.0, &u, &p, &u, &mut a)?;
        model.try_vjp(0.0, &u, &p, &u, &mut a, &mut b)?;
        Ok(model)
    }

    /// The device the model runs on.
    pub fn device(&self) -> Device {
        self.exec.device()
    }

    /// The cause of the first failure inside a runtime call since the last call of this, if
    /// any.
    pub fn take_error(&mut self) -> Option<String> {
        self.error.take()
    }

    fn upload(&self, what: &str, x: &[f64], len: usize) -> Result<Tensor> {
        if x.len() != len {
            return Err(Error::Mismatch {
                what: what.into(),
                expected: len.to_string(),
                found: x.len().to_string(),
            });
        }
        Ok(Tensor::f_from_slice(x)?.f_to_device(self.exec.device())?)
    }

    /// `f(t, u; θ)` into `out`.
    pub fn try_rhs(&self, t: f64, u: &[f64], p: &[f64], out: &mut [f64]) -> Result<()> {
        let u = self.upload("state", u, self.state_len)?;
        let p = self.upload("parameters", p, self.param_len)?;
        let y = tch::no_grad(|| self.exec.eval(t, [Some(&u), Some(&p), None, None]))?;
        download(&y, out, "output")
    }

    /// `f_u(t, u; θ) v` into `out` (forward-mode AD).
    pub fn try_jvp(&self, t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) -> Result<()> {
        let u = self.upload("state", u, self.state_len)?;
        let p = self.upload("parameters", p, self.param_len)?;
        let v = self.upload("tangent", v, self.state_len)?;
        let exec = &self.exec;
        let (_, jv) = tch::no_grad(|| {
            ffi::jvp_forward(&u, &v, |dual| {
                exec.eval(t, [Some(dual), Some(&p), None, None])
            })
        })??;
        download(&jv, out, "JVP")
    }

    /// `(f_uᵀ w, f_θᵀ w)` into `gu` and `gp` (one reverse sweep of libtorch's autograd).
    pub fn try_vjp(
        &self,
        t: f64,
        u: &[f64],
        p: &[f64],
        w: &[f64],
        gu: &mut [f64],
        gp: &mut [f64],
    ) -> Result<()> {
        let u = self
            .upload("state", u, self.state_len)?
            .set_requires_grad(true);
        let p = self
            .upload("parameters", p, self.param_len)?
            .set_requires_grad(true);
        let w = self.upload("cotangent", w, self.state_len)?;
        let g = tch::with_grad(|| -> Result<Vec<Tensor>> {
            let y = self.exec.eval(t, [Some(&u), Some(&p), None, None])?;
            ffi::vjp(&y, &w, &[&u, &p])
        })?;
        download(&g[0], gu, "state gradient")?;
        download(&g[1], gp, "parameter gradient")
    }

    /// Runs `body`; on a failure (an error or a panic) records the cause and fills `outs`
    /// with NaN.
    fn guarded(
        &mut self,
        outs: &mut [&mut [f64]],
        body: impl FnOnce(&mut Self, &mut [&mut [f64]]) -> Result<()>,
    ) {
        let result = catch_unwind(AssertUnwindSafe(|| body(&mut *self, &mut *outs)))
            .unwrap_or_else(|payload| Err(Error::Torch(panic_message(payload.as_ref()))));
        if let Err(e) = result {
            self.error.get_or_insert(e.to_string());
            for out in outs.iter_mut() {
                out.fill(f64::NAN);
            }
        }
    }
}

/// Copies a flat f64 tensor (any device) into `out`, which must have its length.
fn download(t: &Tensor, out: &mut [f64], what: &str) -> Result<()> {
    if t.numel() != out.len() {
        return Err(Error::Mismatch {
            what: what.into(),
            expected: out.len().to_string(),
            found: t.numel().to_string(),
        });
    }
    let t = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Double)?
        .f_contiguous()?;
    t.f_copy_data(out, out.len())?;
    Ok(())
}

impl Rhs for TorchIrModel {
    fn state_len(&self) -> usize {
        self.state_len
    }

    fn param_len(&self) -> usize {
        self.param_len
    }

    fn rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        self.guarded(&mut [f], |m, o| m.try_rhs(t, u, p, o[0]));
    }
}

impl RhsJvp for TorchIrModel {
    fn jvp(&mut self, t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        self.guarded(&mut [out], |m, o| m.try_jvp(t, u, p, v, o[0]));
    }
}

impl RhsVjp for TorchIrModel {
    fn vjp(&mut self, t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        self.guarded(&mut [gu, gp], |m, o| {
            let (a, b) = o.split_at_mut(1);
            m.try_vjp(t, u, p, w, a[0], b[0])
        });
    }
}
