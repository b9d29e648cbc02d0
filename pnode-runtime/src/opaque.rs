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
//! use pnode_runtime::opaque::OpaqueLayer;
//! /// y = φ₀ x (a scalar gain).
//! struct Gain;
//! impl OpaqueLayer for Gain {
//!     fn input_len(&self) -> usize { 1 }
//!     fn output_len(&self) -> usize { 1 }
//!     fn param_len(&self) -> usize { 1 }
//!     fn params(&self, phi: &mut [f64]) { phi[0] = 2.0 }
//!     fn forward(&mut self, x: &[f64], phi: &[f64], y: &mut [f64]) -> Result<(), String> {
//!         y[0] = phi[0] * x[0];
//!         Ok(())
//!     }
//!     fn jvp(&mut self, _x: &[f64], phi: &[f64], dx: &[f64], dy: &mut [f64]) -> Result<(), String> {
//!         dy[0] = phi[0] * dx[0];
//!         Ok(())
//!     }
//!     fn vjp(&mut self, x: &[f64], phi: &[f64], ybar: &[f64], xbar: &mut [f64], phibar: &mut [f64])
//!         -> Result<(), String> {
//!         xbar[0] = phi[0] * ybar[0];
//!         phibar[0] += x[0] * ybar[0];
//!         Ok(())
//!     }
//! }
//! let (mut xbar, mut phibar) = ([0.0], [1.0]);
//! Gain.vjp(&[3.0], &[2.0], &[1.0], &mut xbar, &mut phibar).unwrap();
//! assert_eq!((xbar, phibar), ([2.0], [4.0]));
//! ```

/// A layer `y = g(x; φ)` with `x ∈ ℝⁿ`, `y ∈ ℝᵐ` and parameters `φ ∈ ℝᵏ`, all flat `f64`
/// (row-major when the model gives them a shape).
///
/// Generated code checks every length before it calls, so implementations may assume the
/// slices have the lengths they report. A method that fails returns the cause; the model then
/// makes its result NaN, the solver stops at that step, and the error it returns names the
/// layer and carries the cause. Layers are `Send`, so a model holding them can move to
/// another thread.
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
    fn forward(&mut self, x: &[f64], phi: &[f64], y: &mut [f64]) -> Result<(), String>;
    /// `dy = ∂g/∂x(x; φ) dx` (overwriting `dy`).
    fn jvp(&mut self, x: &[f64], phi: &[f64], dx: &[f64], dy: &mut [f64]) -> Result<(), String>;
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
    ) -> Result<(), String>;
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
    fn forward(&mut self, x: &[f64], phi: &[f64], y: &mut [f64]) -> Result<(), String> {
        (**self).forward(x, phi, y)
    }
    fn jvp(&mut self, x: &[f64], phi: &[f64], dx: &[f64], dy: &mut [f64]) -> Result<(), String> {
        (**self).jvp(x, phi, dx, dy)
    }
    fn vjp(
        &mut self,
        x: &[f64],
        phi: &[f64],
        ybar: &[f64],
        xbar: &mut [f64],
        phibar: &mut [f64],
    ) -> Result<(), String> {
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
/// `[φ_0 | φ_1 | …]` (and its gradient) and hand each layer its own segment. A layer that fails
/// gets NaN for its result (so the solver stops at that step, naming it) and its first cause is
/// kept for [`LayerSet::take_error`].
pub struct LayerSet {
    specs: &'static [LayerSpec],
    layers: Vec<Box<dyn OpaqueLayer>>,
    /// `offsets[k]..offsets[k + 1]` is layer `k`'s segment of the tail.
    offsets: Vec<usize>,
    error: Option<(usize, String)>,
}

impl std::fmt::Debug for LayerSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerSet")
            .field("specs", &self.specs)
            .field("offsets", &self.offsets)
            .field("error", &self.error)
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
            error: None,
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

    fn record(&mut self, k: usize, what: &str, cause: String) {
        if self.error.is_none() {
            self.error = Some((k, format!("{what}: {cause}")));
        }
    }

    /// `y = g_k(x; φ_k)`; on failure `y` is NaN and the cause is kept.
    pub fn forward(&mut self, k: usize, x: &[f64], tail: &[f64], y: &mut [f64]) {
        let seg = self.segment(k);
        if let Err(e) = self.layers[k].forward(x, &tail[seg], y) {
            y.fill(f64::NAN);
            self.record(k, "forward", e);
        }
    }

    /// `dy = ∂g_k/∂x dx`; on failure `dy` is NaN and the cause is kept.
    pub fn jvp(&mut self, k: usize, x: &[f64], tail: &[f64], dx: &[f64], dy: &mut [f64]) {
        let seg = self.segment(k);
        if let Err(e) = self.layers[k].jvp(x, &tail[seg], dx, dy) {
            dy.fill(f64::NAN);
            self.record(k, "JVP", e);
        }
    }

    /// `x̄ = (∂g_k/∂x)ᵀ ȳ` and `φ̄_k += (∂g_k/∂φ)ᵀ ȳ` (into the layer's segment of
    /// `tail_bar`); on failure both are NaN and the cause is kept.
    pub fn vjp(
        &mut self,
        k: usize,
        x: &[f64],
        tail: &[f64],
        ybar: &[f64],
        xbar: &mut [f64],
        tail_bar: &mut [f64],
    ) {
        let seg = self.segment(k);
        let phibar = &mut tail_bar[seg.clone()];
        if let Err(e) = self.layers[k].vjp(x, &tail[seg], ybar, xbar, phibar) {
            xbar.fill(f64::NAN);
            phibar.fill(f64::NAN);
            self.record(k, "VJP", e);
        }
    }

    /// The first failure since the last call, as `(layer name, cause)`, cleared.
    pub fn take_error(&mut self) -> Option<(&'static str, String)> {
        self.error.take().map(|(k, e)| (self.specs[k].name, e))
    }

    /// `result`, unless a layer failed meanwhile: then [`crate::Error::OpaqueLayer`] naming it,
    /// with the error the sweep stopped with (or, when the NaN did not stop it, a note that the
    /// result is not usable).
    pub fn check<T>(&mut self, result: crate::Result<T>) -> crate::Result<T> {
        match (self.take_error(), result) {
            (None, r) => r,
            (Some((layer, cause)), r) => Err(crate::Error::OpaqueLayer {
                layer: layer.into(),
                cause,
                during: Box::new(match r {
                    Err(e) => e,
                    Ok(_) => crate::Error::Usage(
                        "the sweep finished, but with NaN in place of the layer's result".into(),
                    ),
                }),
            }),
        }
    }
}
