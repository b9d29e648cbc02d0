//! A multilayer perceptron right-hand side with a hand-derived stage VJP: what pnode's code
//! generator emits for a network it knows, instead of a trip through libtorch's autograd engine.
//!
//! `f(t, u) = W_L σ(… σ(W_1 u + b_1) …) + b_L` over a batch `u ∈ ℝ^{B×d}` (row-major, one state
//! per row). With `h_0 = u`, `z_k = h_{k−1} W_kᵀ + b_k`, `h_k = σ(z_k)` (`k < L`), the VJP with
//! cotangent `w` is the chain rule written out (Griewank & Walther, ch. 3):
//!
//! ```text
//! δ_L = w;   for k = L … 1:  ∂W_k = δ_kᵀ h_{k−1},  ∂b_k = Σ_rows δ_k,
//!                            δ_{k−1} = σ'(z_{k−1}) ⊙ (δ_k W_k)   (k > 1);   f_uᵀ w = δ_1 W_1.
//! ```
//!
//! Every product is one GEMM; [`TensorRhs::vjp_accumulate`] adds `∂W_k` into the running
//! parameter adjoint with one `addmm_` each. Nothing is kept between calls: the forward pass is
//! recomputed at the explicit point.
//!
//! # References
//! * A. Griewank, A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008.

use tch::{Tensor, nn};

use crate::error::{Error, Result};
use crate::model::TensorRhs;
use pnode_runtime::ModelError;

/// The hidden layers' activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `tanh`, with `σ'(z) = 1 − tanh²(z)` from the output.
    Tanh,
    /// `max(z, 0)`.
    Relu,
    /// Exact GELU, `z Φ(z)`.
    Gelu,
}

/// A tanh/ReLU/GELU MLP `d → … → d` as a [`TensorRhs`] with a hand-written VJP.
#[derive(Debug)]
pub struct MlpRhs {
    /// `(W_k, b_k)`, `W_k` of shape `[out, in]`.
    layers: Vec<(Tensor, Tensor)>,
    activation: Activation,
    /// `[W_1, b_1, …, W_L, b_L]`, the order of the cotangents.
    params: Vec<Tensor>,
}

impl MlpRhs {
    /// Creates the layers `sizes[0] → sizes[1] → … → sizes[L]` under `path` (tch's default
    /// initialisation), with `activation` after every layer but the last.
    pub fn new(path: &nn::Path, sizes: &[i64], activation: Activation) -> Result<Self> {
        if sizes.len() < 2 || sizes.first() != sizes.last() {
            return Err(Error::Usage(format!(
                "an MLP right-hand side maps the state to itself: sizes {sizes:?} must have at \
                 least two entries, the first equal to the last"
            )));
        }
        let layers: Vec<nn::Linear> = sizes
            .windows(2)
            .enumerate()
            .map(|(k, io)| nn::linear(path / format!("l{k}"), io[0], io[1], Default::default()))
            .collect();
        Self::from_linears(&layers, activation)
    }

    /// Over existing layers (their weights are shared, not copied); every layer needs a bias.
    pub fn from_linears(layers: &[nn::Linear], activation: Activation) -> Result<Self> {
        let mut out = Vec::with_capacity(layers.len());
        for (k, l) in layers.iter().enumerate() {
            let b = l.bs.as_ref().ok_or_else(|| {
                Error::Usage(format!("layer {k} of the MLP right-hand side has no bias"))
            })?;
            out.push((l.ws.shallow_clone(), b.shallow_clone()));
        }
        let params = out
            .iter()
            .flat_map(|(w, b)| [w.shallow_clone(), b.shallow_clone()])
            .collect();
        Ok(Self {
            layers: out,
            activation,
            params,
        })
    }

    fn act(&self, z: &Tensor) -> Tensor {
        match self.activation {
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.relu(),
            Activation::Gelu => z.gelu("none"),
        }
    }

    /// `σ'(z) ⊙ g` from the pre-activation `z` and activation `h = σ(z)`.
    fn act_backward(&self, g: &Tensor, z: &Tensor, h: &Tensor) -> Tensor {
        match self.activation {
            Activation::Tanh => Tensor::tanh_backward(g, h),
            Activation::Relu => g * z.gt(0.0),
            Activation::Gelu => z.gelu_backward(g, "none"),
        }
    }

    fn check(&self, u: &Tensor) -> std::result::Result<(), ModelError> {
        let d = self.layers[0].0.size()[1];
        if u.dim() != 2 || u.size()[1] != d {
            return Err(ModelError::Mismatch {
                what: "state shape of the MLP right-hand side".into(),
                expected: format!("[batch, {d}]"),
                found: format!("{:?}", u.size()),
            });
        }
        Ok(())
    }

    /// Forward keeping `(z_k, h_k)` for the hidden layers; returns them and `f`.
    fn forward(&self, u: &Tensor) -> (Vec<(Tensor, Tensor)>, Tensor) {
        let last = self.layers.len() - 1;
        let mut hidden = Vec::with_capacity(last);
        let mut h = u.shallow_clone();
        for (w, b) in &self.layers[..last] {
            let z = h.linear(w, Some(b));
            h = self.act(&z);
            hidden.push((z, h.shallow_clone()));
        }
        let (w, b) = &self.layers[last];
        (hidden, h.linear(w, Some(b)))
    }

    /// The backward sweep; `on_param(k, ∂W_k source (δ_k, h_{k−1}), ∂b_k)` receives each
    /// layer's parameter cotangent factors. Returns `f_uᵀ w`.
    fn backward(
        &self,
        u: &Tensor,
        w: &Tensor,
        mut on_param: impl FnMut(usize, &Tensor, &Tensor),
    ) -> Tensor {
        let (hidden, _) = tch::no_grad(|| self.forward(u));
        let mut delta = w.shallow_clone();
        for k in (0..self.layers.len()).rev() {
            let input = if k == 0 { u } else { &hidden[k - 1].1 };
            on_param(k, &delta, input);
            delta = delta.mm(&self.layers[k].0);
            if k > 0 {
                let (z, h) = &hidden[k - 1];
                delta = self.act_backward(&delta, z, h);
            }
        }
        delta
    }
}

impl TensorRhs for MlpRhs {
    fn rhs(&mut self, _t: f64, u: &Tensor) -> std::result::Result<Tensor, ModelError> {
        self.check(u)?;
        Ok(tch::no_grad(|| self.forward(u).1))
    }

    fn parameters(&self) -> &[Tensor] {
        &self.params
    }

    fn vjp(
        &mut self,
        _t: f64,
        u: &Tensor,
        w: &Tensor,
    ) -> std::result::Result<(Tensor, Vec<Tensor>), ModelError> {
        self.check(u)?;
        let mut grads: Vec<Tensor> = (0..self.params.len()).map(|_| Tensor::new()).collect();
        let gu = tch::no_grad(|| {
            self.backward(u, w, |k, delta, input| {
                grads[2 * k] = delta.tr().mm(input);
                grads[2 * k + 1] = delta.sum_dim_intlist(0, false, None);
            })
        });
        Ok((gu, grads))
    }

    fn vjp_accumulate(
        &mut self,
        _t: f64,
        u: &Tensor,
        w: &Tensor,
        mu: &mut [Tensor],
    ) -> std::result::Result<Tensor, ModelError> {
        self.check(u)?;
        Ok(tch::no_grad(|| {
            self.backward(u, w, |k, delta, input| {
                // μ_W += δᵀ h (one GEMM with β = 1), μ_b += Σ_rows δ.
                let _ = mu[2 * k].addmm_(&delta.tr(), input);
                let _ = mu[2 * k + 1].g_add_(&delta.sum_dim_intlist(0, false, None));
            })
        }))
    }
}
