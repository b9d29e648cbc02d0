//! A tch closure as a native runtime model: [`FlatTorchModel`] implements `pnode_runtime`'s
//! [`Rhs`], [`RhsJvp`] and [`RhsVjp`] over flat `f64` buffers, so every runtime integrator —
//! the implicit θ-methods and DIRKs with their Newton stage solves included — can run a network
//! right-hand side with exact discrete adjoints.
//!
//! The flat parameter vector `θ` is the concatenation of the trainable tensors (in
//! `VarStore::trainable_variables` order, each flattened row-major); it is copied into the
//! tensors whenever a call brings a different `θ`. Derivatives, each at the explicit point with
//! the explicit direction and nothing cached:
//!
//! * VJP `(f_uᵀ w, f_θᵀ w)`: one forward on a fresh leaf `u`, one backward with cotangent `w`;
//! * JVP `f_u v` by forward-mode AD: one forward pass of `f` on the dual tensor `u + ε v`
//!   (libtorch's dual levels, through the shim), whose tangent is `f_u v`.
//!
//! A failure inside the closure (a panic, a libtorch error, an output of the wrong shape) is
//! returned by the runtime traits' fallible twins (`try_rhs`, `try_jvp`, `try_vjp`, which every
//! runtime stepper calls) as a [`ModelError`], so the solver stops at once with
//! `pnode_runtime::Error::Model` naming the step, the time, the phase and the cause.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pnode_runtime::model::{ModelError, Rhs, RhsJvp, RhsVjp};
use tch::{Kind, Tensor, nn};

use crate::error::panic_message;
use crate::ffi;

/// A closure `(t, &u) -> f(t, u)` of f64 tch ops with its parameters, as a runtime model with
/// flat `f64` state and parameters.
pub struct FlatTorchModel<F> {
    f: F,
    params: Vec<Tensor>,
    shape: Vec<i64>,
    state_len: usize,
    param_len: usize,
    current: Vec<f64>,
}

impl<F> std::fmt::Debug for FlatTorchModel<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatTorchModel")
            .field("shape", &self.shape)
            .field("param_len", &self.param_len)
            .finish_non_exhaustive()
    }
}

impl<F: FnMut(f64, &Tensor) -> Tensor> FlatTorchModel<F> {
    /// `f` over states of `shape` with the trainable variables of `vs` (which must be f64) as
    /// its parameters.
    pub fn new(vs: &nn::VarStore, shape: &[i64], f: F) -> crate::Result<Self> {
        Self::with_parameters(vs.trainable_variables(), shape, f)
    }

    /// `f` with explicit f64 parameters (those not requiring grad are skipped).
    pub fn with_parameters(params: Vec<Tensor>, shape: &[i64], f: F) -> crate::Result<Self> {
        let params: Vec<Tensor> = params.into_iter().filter(Tensor::requires_grad).collect();
        if let Some(p) = params.iter().find(|p| p.kind() != Kind::Double) {
            return Err(crate::Error::Mismatch {
                what: "parameter dtype (flat runtime models are f64)".into(),
                expected: "Double".into(),
                found: format!("{:?}", p.kind()),
            });
        }
        let param_len = params.iter().map(Tensor::numel).sum();
        let state_len = shape.iter().product::<i64>() as usize;
        let current = flatten(&params);
        Ok(Self {
            f,
            params,
            shape: shape.to_vec(),
            state_len,
            param_len,
            current,
        })
    }

    /// The current parameter values, flattened (the initial `θ` for an optimizer).
    pub fn parameters(&self) -> &[f64] {
        &self.current
    }

    /// Copies `p` into the parameter tensors if it differs from what they hold.
    fn sync(&mut self, p: &[f64]) {
        if p == self.current.as_slice() {
            return;
        }
        self.current.copy_from_slice(p);
        let mut offset = 0;
        tch::no_grad(|| {
            for t in &mut self.params {
                let n = t.numel();
                let values = Tensor::from_slice(&p[offset..offset + n]).view(t.size().as_slice());
                t.copy_(&values);
                offset += n;
            }
        });
    }

    fn state(&self, u: &[f64]) -> Tensor {
        Tensor::from_slice(u).view(self.shape.as_slice())
    }

    /// Runs `body` and copies the tensors it returns into `outs`; a panic or an error inside
    /// it is the returned [`ModelError`] (and `outs` are left as they were).
    fn guarded(
        &mut self,
        outs: &mut [&mut [f64]],
        body: impl FnOnce(&mut Self) -> Result<Vec<Tensor>, ModelError>,
    ) -> Result<(), ModelError> {
        let tensors =
            catch_unwind(AssertUnwindSafe(|| body(&mut *self))).unwrap_or_else(|payload| {
                Err(ModelError::Panic {
                    message: panic_message(payload.as_ref()),
                })
            })?;
        for (out, t) in outs.iter_mut().zip(&tensors) {
            copy_out(t, out);
        }
        Ok(())
    }

    fn call(&mut self, t: f64, u: &Tensor) -> Result<Tensor, ModelError> {
        let out = (self.f)(t, u);
        if out.size() != u.size() {
            return Err(ModelError::Mismatch {
                what: "shape of f(t, u)".into(),
                expected: format!("{:?} (the state's)", u.size()),
                found: format!("{:?}", out.size()),
            });
        }
        Ok(out)
    }
}

fn flatten(params: &[Tensor]) -> Vec<f64> {
    params
        .iter()
        .flat_map(|p| Vec::<f64>::try_from(p.detach().flatten(0, -1)).expect("f64 parameters"))
        .collect()
}

/// Copies a tensor's values (any shape, f64) into `out`.
fn copy_out(t: &Tensor, out: &mut [f64]) {
    let t = t.to_kind(Kind::Double).contiguous();
    t.flatten(0, -1).copy_data(out, out.len());
}

impl<F: FnMut(f64, &Tensor) -> Tensor> Rhs for FlatTorchModel<F> {
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

    fn try_rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) -> Result<(), ModelError> {
        self.sync(p);
        let u = self.state(u);
        self.guarded(&mut [f], |m| {
            tch::no_grad(|| m.call(t, &u)).map(|o| vec![o])
        })
    }
}

impl<F: FnMut(f64, &Tensor) -> Tensor> RhsJvp for FlatTorchModel<F> {
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
        self.sync(p);
        let u = self.state(u);
        let v = self.state(v);
        self.guarded(&mut [out], |m| {
            tch::no_grad(|| {
                let (_, jv) = ffi::jvp_forward(&u, &v, |dual| m.call(t, dual))
                    .map_err(ModelError::from)??;
                Ok(vec![jv])
            })
        })
    }
}

impl<F: FnMut(f64, &Tensor) -> Tensor> RhsVjp for FlatTorchModel<F> {
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
        self.sync(p);
        let leaf = self.state(u).set_requires_grad(true);
        let w = self.state(w);
        let mut grads: Vec<Tensor> = Vec::new();
        self.guarded(&mut [gu], |m| {
            tch::with_grad(|| {
                let y = m.call(t, &leaf)?;
                let mut inputs: Vec<&Tensor> = vec![&leaf];
                inputs.extend(m.params.iter());
                let mut g = ffi::vjp(&y, &w, &inputs).map_err(ModelError::from)?;
                let g_u = g.remove(0);
                grads = g;
                Ok(vec![g_u])
            })
        })?;
        let mut offset = 0;
        for t in &grads {
            let n = t.numel();
            copy_out(t, &mut gp[offset..offset + n]);
            offset += n;
        }
        Ok(())
    }
}
