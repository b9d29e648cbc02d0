//! Right-hand sides over tensors: `du/dt = f(t, u; θ)` with `u` a tensor of any shape (a batch
//! of states, feature maps, …) and `θ` the trainable tensors of a tch `VarStore`.
//!
//! The one derivative primitive is the stage VJP `(f_uᵀ w, f_θᵀ w)` at an explicit point `u`
//! with an explicit cotangent `w`: [`ModuleRhs`] computes it with one forward pass of `f` on a
//! fresh leaf `u` (recording the graph) and one backward pass with `w` as the output gradient.
//! Nothing is cached between calls and only one stage graph is alive at a time.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tch::{Tensor, nn};

use crate::error::{Error, Result, panic_message};
use crate::ffi;
use pnode_runtime::ModelError;

/// A right-hand side `f(t, u; θ)` over tensors, with its stage VJP.
pub trait TensorRhs {
    /// `f(t, u)`; called without gradient tracking. A failure is returned as the model's cause
    /// (the solver adds the step and the time).
    fn rhs(&mut self, t: f64, u: &Tensor) -> std::result::Result<Tensor, ModelError>;

    /// The parameters `θ` that receive gradients, in the order [`TensorRhs::vjp`] returns
    /// their cotangents. Each requires grad.
    fn parameters(&self) -> &[Tensor];

    /// `(f_u(t, u)ᵀ w, [f_θ(t, u)ᵀ w])`: the state cotangent and one cotangent per parameter.
    fn vjp(
        &mut self,
        t: f64,
        u: &Tensor,
        w: &Tensor,
    ) -> std::result::Result<(Tensor, Vec<Tensor>), ModelError>;

    /// `f_u(t, u)ᵀ w`, adding `f_θ(t, u)ᵀ w` into `mu` (one tensor per parameter): what the
    /// reverse sweep calls. The default runs [`TensorRhs::vjp`] and adds; a model can fuse the
    /// accumulation (see [`crate::MlpRhs`]).
    fn vjp_accumulate(
        &mut self,
        t: f64,
        u: &Tensor,
        w: &Tensor,
        mu: &mut [Tensor],
    ) -> std::result::Result<Tensor, ModelError> {
        let (gu, gp) = self.vjp(t, u, w)?;
        if gp.len() != mu.len() {
            return Err(ModelError::Mismatch {
                what: "number of parameter cotangents".into(),
                expected: mu.len().to_string(),
                found: gp.len().to_string(),
            });
        }
        for (m, g) in mu.iter_mut().zip(&gp) {
            ffi::add_scaled_(m, g, 1.0)?;
        }
        Ok(gu)
    }
}

/// A [`TensorRhs`] over any closure `(t, &u) -> f(t, u)` built from tch ops, whose parameters
/// live in a [`nn::VarStore`] (or are given as a list).
///
/// Parameters that do not require grad are skipped: they receive no cotangent. A panic inside
/// the closure (tch panics on shape errors) becomes an error naming the step and the time.
pub struct ModuleRhs<F> {
    f: F,
    params: Vec<Tensor>,
}

impl<F> std::fmt::Debug for ModuleRhs<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleRhs")
            .field("parameters", &self.params.len())
            .finish_non_exhaustive()
    }
}

impl<F: FnMut(f64, &Tensor) -> Tensor> ModuleRhs<F> {
    /// `f` with the trainable variables of `vs` as its parameters.
    pub fn new(vs: &nn::VarStore, f: F) -> Self {
        Self::with_parameters(vs.trainable_variables(), f)
    }

    /// `f` with explicit parameters; those that do not require grad are skipped.
    pub fn with_parameters(params: Vec<Tensor>, f: F) -> Self {
        let params = params.into_iter().filter(Tensor::requires_grad).collect();
        Self { f, params }
    }

    fn call(&mut self, t: f64, u: &Tensor) -> std::result::Result<Tensor, ModelError> {
        let f = &mut self.f;
        let out =
            catch_unwind(AssertUnwindSafe(|| f(t, u))).map_err(|payload| ModelError::Panic {
                message: panic_message(payload.as_ref()),
            })?;
        if out.size() != u.size() {
            return Err(ModelError::Mismatch {
                what: "shape of f(t, u)".into(),
                expected: format!("{:?} (the state's)", u.size()),
                found: format!("{:?}", out.size()),
            });
        }
        if out.kind() != u.kind() {
            return Err(ModelError::Mismatch {
                what: "dtype of f(t, u)".into(),
                expected: format!("{:?} (the state's)", u.kind()),
                found: format!("{:?}", out.kind()),
            });
        }
        Ok(out)
    }
}

impl<F: FnMut(f64, &Tensor) -> Tensor> TensorRhs for ModuleRhs<F> {
    fn rhs(&mut self, t: f64, u: &Tensor) -> std::result::Result<Tensor, ModelError> {
        tch::no_grad(|| self.call(t, u))
    }

    fn parameters(&self) -> &[Tensor] {
        &self.params
    }

    fn vjp(
        &mut self,
        t: f64,
        u: &Tensor,
        w: &Tensor,
    ) -> std::result::Result<(Tensor, Vec<Tensor>), ModelError> {
        let leaf = u.detach().set_requires_grad(true);
        let out = tch::with_grad(|| self.call(t, &leaf))?;
        let mut inputs: Vec<&Tensor> = Vec::with_capacity(1 + self.params.len());
        inputs.push(&leaf);
        inputs.extend(self.params.iter());
        let mut grads = ffi::vjp(&out, w, &inputs)?;
        let gu = grads.remove(0);
        Ok((gu, grads))
    }
}

/// Describes a tensor's shape, dtype and device for messages.
pub(crate) fn describe(t: &Tensor) -> String {
    format!("{:?} {:?} on {:?}", t.size(), t.kind(), t.device())
}

/// Checks that `found` has the shape, dtype and device of `like`.
pub(crate) fn check_like(what: &str, like: &Tensor, found: &Tensor) -> Result<()> {
    if like.size() != found.size() || like.kind() != found.kind() || like.device() != found.device()
    {
        return Err(Error::Mismatch {
            what: what.to_owned(),
            expected: describe(like),
            found: describe(found),
        });
    }
    Ok(())
}
