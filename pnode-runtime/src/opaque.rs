//! Opaque layers: `y = g(x; φ)` computed outside pnode — a libtorch module, say — and called
//! by generated code (`#[neural_ode]` models declaring `layer! { net = torch(…) }`).
//!
//! pnode differentiates everything around such a layer itself and asks the layer only for its
//! value, its JVP in the input and its VJP in input and parameters. The layer's parameters `φ`
//! are a segment of the model's flat `θ`, after the declared parameters: an optimizer updates
//! them like any other parameter, and the layer reads them from the `phi` it receives on every
//! call (it must not keep values of its own that a call does not pass).
//!
//! ```
//! use pnode_runtime::{ModelError, opaque::OpaqueLayer};
//! /// y = φ₀ x (a scalar gain).
//! struct Gain;
//! impl OpaqueLayer for Gain {
//!     fn input_len(&self) -> usize { 1 }
//!     fn output_len(&self) -> usize { 1 }
//!     fn param_len(&self) -> usize { 1 }
//!     fn params(&self, phi: &mut [f64]) { phi[0] = 2.0 }
//!     fn forward(&mut self, x: &[f64], phi: &[f64], y: &mut [f64]) -> Result<(), ModelError> {
//!         if !x[0].is_finite() {
//!             return Err(ModelError::Other(format!("input {} is not finite", x[0])));
//!         }
//!         y[0] = phi[0] * x[0];
//!         Ok(())
//!     }
//!     fn jvp(&mut self, _x: &[f64], phi: &[f64], dx: &[f64], dy: &mut [f64])
//!         -> Result<(), ModelError> {
//!         dy[0] = phi[0] * dx[0];
//!         Ok(())
//!     }
//!     fn vjp(&mut self, x: &[f64], phi: &[f64], ybar: &[f64], xbar: &mut [f64], phibar: &mut [f64])
//!         -> Result<(), ModelError> {
//!         xbar[0] = phi[0] * ybar[0];
//!         phibar[0] += x[0] * ybar[0];
//!         Ok(())
//!     }
//! }
//! let (mut xbar, mut phibar) = ([0.0], [1.0]);
//! Gain.vjp(&[3.0], &[2.0], &[1.0], &mut xbar, &mut phibar).unwrap();
//! assert_eq!((xbar, phibar), ([2.0], [4.0]));
//! ```

use crate::model::{Eval, ModelError};

/// A layer `y = g(x; φ)` with `x ∈ ℝⁿ`, `y ∈ ℝᵐ` and parameters `φ ∈ ℝᵏ`, all flat `f64`
/// (row-major when the model gives them a shape).
///
/// Generated code checks every length before it calls, so implementations may assume the
/// slices have the lengths they report. A method that fails returns the cause; the model's
/// evaluation fails with [`ModelError::Layer`] naming the layer, and the solver stops with
/// [`crate::Error::Model`] naming the step, the time and the phase. Layers are `Send`, so a
/// model holding them can move to another thread.
pub trait OpaqueLayer: Send {
    /// `n`, the length of the input `x`.
    fn input_len(&self) -> usize;
    /// `m`, the length of the output `y`.
    fn output_len(&self) -> usize;
    /// `k`, the length of the parameters `φ`.
    fn param_len(&self) -> usize;
    /// Writes the layer's initial parameters (its own initialisation) into `phi` (`k`).
    fn params(&self, phi: &mut [f64]);
    /// `y = g(x; φ)` (overwriting `y`).
    fn forward(&mut self, x: &[f64], phi: &[f64], y: &mut [f64]) -> Result<(), ModelError>;
    /// `dy = ∂g/∂x(x; φ) dx` (overwriting `dy`).
    fn jvp(&mut self, x: &[f64], phi: &[f64], dx: &[f64], dy: &mut [f64])
    -> Result<(), ModelError>;
    /// `x̄ = (∂g/∂x)ᵀ ȳ` (overwriting `xbar`) and `φ̄ += (∂g/∂φ)ᵀ ȳ` (accumulated into
    /// `phibar`, so a layer applied twice sums its two contributions), at exactly the `x` and
    /// `ȳ` given: nothing may be reused from an earlier call.
    fn vjp(
        &mut self,
        x: &[f64],
        phi: &[f64],
        ybar: &[f64],
        xbar: &mut [f64],
        phibar: &mut [f64],
    ) -> Result<(), ModelError>;
}

impl<L: OpaqueLayer + ?Sized> OpaqueLayer for Box<L> {
    fn input_len(&self) -> usize {
        (**self).input_len()
    }
    fn output_len(&self) -> usize {
        (**self).output_len()
    }
    fn param_len(&self) -> usize {
        (**self).param_len()
    }
    fn params(&self, phi: &mut [f64]) {
        (**self).params(phi)
    }
    fn forward(&mut self, x: &[f64], phi: &[f64], y: &mut [f64]) -> Result<(), ModelError> {
        (**self).forward(x, phi, y)
    }
    fn jvp(
        &mut self,
        x: &[f64],
        phi: &[f64],
        dx: &[f64],
        dy: &mut [f64],
    ) -> Result<(), ModelError> {
        (**self).jvp(x, phi, dx, dy)
    }
    fn vjp(
        &mut self,
        x: &[f64],
        phi: &[f64],
        ybar: &[f64],
        xbar: &mut [f64],
        phibar: &mut [f64],
    ) -> Result<(), ModelError> {
        (**self).vjp(x, phi, ybar, xbar, phibar)
    }
}

/// What one layer of a model is declared as: its name and the lengths of its input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// The layer's name in the model.
    pub name: &'static str,
    /// Length of its input.
    pub input_len: usize,
    /// Length of its output.
    pub output_len: usize,
}

/// The opaque layers of one generated model, with their parameter segments.
///
/// The model's `θ` is `[declared parameters | φ_0 | φ_1 | …]`; the methods here take the tail
/// `[φ_0 | φ_1 | …]` (and its gradient) and hand each layer its own segment. A layer's failure
/// is returned as [`ModelError::Layer`] naming it.
pub struct LayerSet {
    specs: &'static [LayerSpec],
    layers: Vec<Box<dyn OpaqueLayer>>,
    /// `offsets[k]..offsets[k + 1]` is layer `k`'s segment of the tail.
    offsets: Vec<usize>,
}

impl std::fmt::Debug for LayerSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerSet")
            .field("specs", &self.specs)
            .field("offsets", &self.offsets)
            .finish_non_exhaustive()
    }
}

impl LayerSet {
    /// The layers `layers` for the declarations `specs` (same order). Errors name the layer
    /// whose input or output length differs from its declaration, or a missing/extra layer.
    pub fn new(
        specs: &'static [LayerSpec],
        layers: Vec<Box<dyn OpaqueLayer>>,
    ) -> crate::Result<Self> {
        if layers.len() != specs.len() {
            return Err(crate::Error::Usage(format!(
                "the model declares {} opaque layer(s) ({}), {} were given",
                specs.len(),
                specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
                layers.len()
            )));
        }
        let mut offsets = Vec::with_capacity(specs.len() + 1);
        offsets.push(0);
        for (s, l) in specs.iter().zip(&layers) {
            for (what, declared, found) in [
                ("input", s.input_len, l.input_len()),
                ("output", s.output_len, l.output_len()),
            ] {
                if declared != found {
                    return Err(crate::Error::Usage(format!(
                        "layer `{}`: the model gives it an {what} of {declared} elements, the \
                         layer has {found}",
                        s.name
                    )));
                }
            }
            let end = offsets[offsets.len() - 1] + l.param_len();
            offsets.push(end);
        }
        Ok(LayerSet {
            specs,
            layers,
            offsets,
        })
    }

    /// Total length of the layers' parameters (the tail of `θ`).
    pub fn param_len(&self) -> usize {
        self.offsets[self.offsets.len() - 1]
    }

    /// The declarations.
    pub fn specs(&self) -> &'static [LayerSpec] {
        self.specs
    }

    /// `(name, offset in the tail, length)` of every layer's parameters.
    pub fn segments(&self) -> Vec<(&'static str, usize, usize)> {
        self.specs
            .iter()
            .enumerate()
            .map(|(k, s)| {
                (
                    s.name,
                    self.offsets[k],
                    self.offsets[k + 1] - self.offsets[k],
                )
            })
            .collect()
    }

    /// Writes every layer's initial parameters into `tail` (of length [`LayerSet::param_len`]).
    pub fn params(&self, tail: &mut [f64]) {
        for (k, l) in self.layers.iter().enumerate() {
            l.params(&mut tail[self.offsets[k]..self.offsets[k + 1]]);
        }
    }

    fn segment(&self, k: usize) -> std::ops::Range<usize> {
        self.offsets[k]..self.offsets[k + 1]
    }

    /// Layer `k`'s failure in `eval`, naming it.
    fn failed(&self, k: usize, eval: Eval, cause: ModelError) -> ModelError {
        ModelError::Layer {
            layer: self.specs[k].name.to_owned(),
            eval,
            cause: Box::new(cause),
        }
    }

    /// `y = g_k(x; φ_k)`.
    pub fn forward(
        &mut self,
        k: usize,
        x: &[f64],
        tail: &[f64],
        y: &mut [f64],
    ) -> Result<(), ModelError> {
        let seg = self.segment(k);
        self.layers[k]
            .forward(x, &tail[seg], y)
            .map_err(|e| self.failed(k, Eval::Rhs, e))
    }

    /// `dy = ∂g_k/∂x dx`.
    pub fn jvp(
        &mut self,
        k: usize,
        x: &[f64],
        tail: &[f64],
        dx: &[f64],
        dy: &mut [f64],
    ) -> Result<(), ModelError> {
        let seg = self.segment(k);
        self.layers[k]
            .jvp(x, &tail[seg], dx, dy)
            .map_err(|e| self.failed(k, Eval::Jvp, e))
    }

    /// `x̄ = (∂g_k/∂x)ᵀ ȳ` and `φ̄_k += (∂g_k/∂φ)ᵀ ȳ` (into the layer's segment of
    /// `tail_bar`).
    pub fn vjp(
        &mut self,
        k: usize,
        x: &[f64],
        tail: &[f64],
        ybar: &[f64],
        xbar: &mut [f64],
        tail_bar: &mut [f64],
    ) -> Result<(), ModelError> {
        let seg = self.segment(k);
        let phibar = &mut tail_bar[seg.clone()];
        self.layers[k]
            .vjp(x, &tail[seg], ybar, xbar, phibar)
            .map_err(|e| self.failed(k, Eval::Vjp, e))
    }
}
