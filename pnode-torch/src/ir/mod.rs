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
//! A libtorch failure during a solve (an exception, a panic inside tch) is returned by the
//! runtime traits' fallible twins (`try_rhs`, `try_jvp`, `try_vjp`, which every runtime
//! stepper calls) as a [`ModelError`] carrying libtorch's message, so the solver stops with
//! `pnode_runtime::Error::Model` naming the step, the time and the phase. Construction
//! evaluates all three once, so a model libtorch cannot run is an error before any solve.

mod exec;

pub use exec::IrExecutor;

use std::panic::{AssertUnwindSafe, catch_unwind};

use pnode_ir::Function;
use pnode_runtime::model::{ModelError, Rhs, RhsJvp, RhsVjp};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result, panic_message};
use crate::ffi;

/// A pnode-ir right-hand side on libtorch, as a runtime model over flat `f64` buffers.
#[derive(Debug)]
pub struct TorchIrModel {
    exec: IrExecutor,
    state_len: usize,
    param_len: usize,
    /// RHS evaluations through the runtime trait since construction.
    rhs_calls: usize,
    /// The RHS evaluation [`TorchIrModel::fail_rhs_at`] makes fail.
    fault: Option<usize>,
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
            rhs_calls: 0,
            fault: None,
        };
        // One evaluation of each kernel: an operation libtorch cannot run (or differentiate
        // in some mode) is reported now, not as NaN in the middle of a solve.
        let (u, p) = (vec![0.5; l.state], vec![0.5; l.param]);
        let (mut a, mut b) = (vec![0.0; l.state], vec![0.0; l.param]);
        model.eval_rhs(0.0, &u, &p, &mut a)?;
        model.eval_jvp(0.0, &u, &p, &u, &mut a)?;
        model.eval_vjp(0.0, &u, &p, &u, &mut a, &mut b)?;
        Ok(model)
    }

    /// Fault injection for tests of the error path: the RHS evaluation number `call` (0-based,
    /// counting the runtime's calls from now on) runs, instead of the model, a matrix product
    /// of mismatched shapes, so libtorch raises a real exception there (its message names the
    /// shapes `1x2` and `3x3`). `pnodec` sets it from `PNODE_TORCH_FAIL_RHS`.
    pub fn fail_rhs_at(&mut self, call: usize) {
        self.rhs_calls = 0;
        self.fault = Some(call);
    }

    /// The device the model runs on.
    pub fn device(&self) -> Device {
        self.exec.device()
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
    pub fn eval_rhs(&self, t: f64, u: &[f64], p: &[f64], out: &mut [f64]) -> Result<()> {
        let u = self.upload("state", u, self.state_len)?;
        let p = self.upload("parameters", p, self.param_len)?;
        let y = tch::no_grad(|| self.exec.eval(t, [Some(&u), Some(&p), None, None]))?;
        download(&y, out, "output")
    }

    /// `f_u(t, u; θ) v` into `out` (forward-mode AD).
    pub fn eval_jvp(&self, t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) -> Result<()> {
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
    pub fn eval_vjp(
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

    /// Runs `body`, turning an error or a panic inside it into the runtime's [`ModelError`].
    fn guarded(
        &self,
        body: impl FnOnce(&Self) -> Result<()>,
    ) -> std::result::Result<(), ModelError> {
        match catch_unwind(AssertUnwindSafe(|| body(self))) {
            Ok(r) => r.map_err(ModelError::from),
            Err(payload) => Err(ModelError::Panic {
                message: panic_message(payload.as_ref()),
            }),
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
        if self.try_rhs(t, u, p, f).is_err() {
            f.fill(f64::NAN);
        }
    }

    fn try_rhs(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        f: &mut [f64],
    ) -> std::result::Result<(), ModelError> {
        let call = self.rhs_calls;
        self.rhs_calls += 1;
        if self.fault == Some(call) {
            return self.guarded(|m| {
                let d = m.exec.device();
                let a = Tensor::f_zeros([1, 2], (Kind::Double, d))?;
                let _ = a.f_mm(&Tensor::f_zeros([3, 3], (Kind::Double, d))?)?;
                Ok(())
            });
        }
        self.guarded(|m| m.eval_rhs(t, u, p, f))
    }
}

impl RhsJvp for TorchIrModel {
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
    ) -> std::result::Result<(), ModelError> {
        self.guarded(|m| m.eval_jvp(t, u, p, v, out))
    }
}

impl RhsVjp for TorchIrModel {
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
    ) -> std::result::Result<(), ModelError> {
        self.guarded(|m| m.eval_vjp(t, u, p, w, gu, gp))
    }
}
