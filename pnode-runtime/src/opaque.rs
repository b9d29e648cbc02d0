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
/// layer and carries the cause.
pub trait OpaqueLayer {
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
