//! Model traits for native `f64` models: `du/dt = f(t, u; θ)`.
//!
//! One trait per capability, in the style of diffsol:
//!
//! * [`Rhs`]: the right-hand side `f(t, u; θ)`;
//! * [`RhsJvp`]: the state Jacobian–vector product `f_u(t, u; θ) v`;
//! * [`RhsVjp`]: the stage VJP `(f_uᵀ w, f_θᵀ w)` at an explicit point `(t, u)` with an explicit
//!   cotangent `w`, both in one call.
//!
//! The state `u` and the parameters `θ` are flat `f64` buffers. Parameters are not owned by the
//! model: every call receives them, so an optimizer can update one buffer between solves and the
//! same model serves any parameter value. Methods take `&mut self` so a model can keep scratch
//! buffers and never allocate inside the step loop.
//!
//! The runtime checks the lengths of `u0` and `θ` at its entry points, so implementations may
//! assume every slice they receive has the length they report.
//!
//! A model can be written in a few lines with [`ClosureModel`]:
//!
//! ```
//! use pnode_runtime::model::{ClosureModel, Rhs, RhsVjp};
//! // du/dt = -k u, θ = [k]
//! let mut m = ClosureModel::new(1, 1, |_t, u: &[f64], p: &[f64], f: &mut [f64]| f[0] = -p[0] * u[0])
//!     .with_vjp(|_t, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]| {
//!         gu[0] = -p[0] * w[0];
//!         gp[0] = -u[0] * w[0];
//!     });
//! let mut f = [0.0];
//! m.rhs(0.0, &[2.0], &[0.5], &mut f);
//! assert_eq!(f, [-1.0]);
//! let (mut gu, mut gp) = ([0.0], [0.0]);
//! m.vjp(0.0, &[2.0], &[0.5], &[1.0], &mut gu, &mut gp);
//! assert_eq!((gu, gp), ([-0.5], [-2.0]));
//! ```
//!
//! # Failures
//!
//! Most models cannot fail: their methods are plain arithmetic. A model computed by a library
//! that can (libtorch, an opaque layer) overrides the fallible twins [`Rhs::try_rhs`],
//! [`RhsJvp::try_jvp`] and [`RhsVjp::try_vjp`], whose defaults call the infallible method and
//! return `Ok`. Every runtime stepper calls the twins, so a failure stops the sweep at once and
//! reaches the caller as [`crate::Error::Model`] with the step, the time, the phase and the
//! model's [`ModelError`]; the infallible methods of a model that can fail fill their outputs
//! with NaN (the cause is then lost, so call the twins).

use thiserror::Error;

/// Which evaluation of a model (or of an opaque layer inside it) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Eval {
    /// The right-hand side `f(t, u; θ)` (for a layer: its value `g(x; φ)`).
    Rhs,
    /// The state JVP `f_u v`.
    Jvp,
    /// The stage VJP `(f_uᵀ w, f_θᵀ w)`.
    Vjp,
}

impl std::fmt::Display for Eval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Eval::Rhs => "RHS",
            Eval::Jvp => "JVP",
            Eval::Vjp => "VJP",
        })
    }
}

/// Why a model evaluation failed: what the model (or the library computing it) reported.
///
/// The runtime adds where it happened ([`crate::Error::Model`]: step, time, phase, which
/// evaluation); this type carries only the model's own cause.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The library computing the model raised an error, for example a libtorch exception
    /// (its message, without the C++ stack trace).
    #[error("{backend}: {message}")]
    Backend {
        /// The library (for example `"libtorch"`).
        backend: &'static str,
        /// Its message.
        message: String,
    },
    /// Code inside the model panicked; the panic was caught.
    #[error("panicked: {message}")]
    Panic {
        /// The panic's message.
        message: String,
    },
    /// A result of the wrong size or shape (a closure returning another shape, say).
    #[error("{what}: expected {expected}, found {found}")]
    Mismatch {
        /// Which result.
        what: String,
        /// What the model needs.
        expected: String,
        /// What it got.
        found: String,
    },
    /// An opaque layer of the model failed ([`crate::opaque`]).
    #[error("layer `{layer}` failed in its {eval}: {cause}")]
    Layer {
        /// The layer's name in the model.
        layer: String,
        /// The layer's evaluation that failed (`Rhs` is its value `g(x; φ)`).
        eval: Eval,
        /// What the layer reported.
        cause: Box<ModelError>,
    },
    /// Any other cause, as text (for hand-written models and layers).
    #[error("{0}")]
    Other(String),
}

/// The right-hand side of `du/dt = f(t, u; θ)`.
pub trait Rhs {
    /// Length of the state vector `u`.
    fn state_len(&self) -> usize;
    /// Length of the flat parameter vector `θ`.
    fn param_len(&self) -> usize;
    /// Write `f(t, u; θ)` into `f` (overwriting it).
    fn rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]);
    /// [`Rhs::rhs`], or why it could not be computed. The runtime calls this one. The default
    /// calls `rhs` and cannot fail; a model that can fail overrides it (and a wrapper forwards
    /// it).
    fn try_rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) -> Result<(), ModelError> {
        self.rhs(t, u, p, f);
        Ok(())
    }
}

/// Forward-mode derivative in the state: `out = f_u(t, u; θ) v`.
pub trait RhsJvp: Rhs {
    /// Write `f_u(t, u; θ) v` into `out` (overwriting it).
    fn jvp(&mut self, t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]);
    /// [`RhsJvp::jvp`], or why it could not be computed (see [`Rhs::try_rhs`]).
    fn try_jvp(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        v: &[f64],
        out: &mut [f64],
    ) -> Result<(), ModelError> {
        self.jvp(t, u, p, v, out);
        Ok(())
    }
}

/// The stage VJP: reverse-mode derivative in state and parameters at an explicit point.
///
/// `gu = f_u(t, u; θ)ᵀ w` and `gp = f_θ(t, u; θ)ᵀ w`, both overwritten, computed in one call
/// at exactly the `(t, u)` given with exactly the cotangent `w` given. Implementations must not
/// cache anything from an earlier call that depends on `u` or `w`: reusing a VJP from another
/// point is the bug that makes the original PNODE's implicit-method gradients wrong.
pub trait RhsVjp: Rhs {
    /// Write `f_uᵀ w` into `gu` and `f_θᵀ w` into `gp` (both overwritten).
    fn vjp(&mut self, t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]);
    /// [`RhsVjp::vjp`], or why it could not be computed (see [`Rhs::try_rhs`]).
    fn try_vjp(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        w: &[f64],
        gu: &mut [f64],
        gp: &mut [f64],
    ) -> Result<(), ModelError> {
        self.vjp(t, u, p, w, gu, gp);
        Ok(())
    }
}

impl<M: Rhs + ?Sized> Rhs for &mut M {
    fn state_len(&self) -> usize {
        (**self).state_len()
    }
    fn param_len(&self) -> usize {
        (**self).param_len()
    }
    fn rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        (**self).rhs(t, u, p, f)
    }
    fn try_rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) -> Result<(), ModelError> {
        (**self).try_rhs(t, u, p, f)
    }
}

impl<M: RhsJvp + ?Sized> RhsJvp for &mut M {
    fn jvp(&mut self, t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        (**self).jvp(t, u, p, v, out)
    }
    fn try_jvp(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        v: &[f64],
        out: &mut [f64],
    ) -> Result<(), ModelError> {
        (**self).try_jvp(t, u, p, v, out)
    }
}

impl<M: RhsVjp + ?Sized> RhsVjp for &mut M {
    fn vjp(&mut self, t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        (**self).vjp(t, u, p, w, gu, gp)
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
        (**self).try_vjp(t, u, p, w, gu, gp)
    }
}

/// Marker for a [`ClosureModel`] without a JVP closure (it then does not implement [`RhsJvp`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJvp;

/// Marker for a [`ClosureModel`] without a VJP closure (it then does not implement [`RhsVjp`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVjp;

/// A model built from closures: `rhs`, and optionally `jvp` and `vjp`.
///
/// Closure signatures (all outputs are overwritten):
///
/// * rhs: `FnMut(t, u, θ, f)`;
/// * jvp: `FnMut(t, u, θ, v, out)` with `out = f_u v`;
/// * vjp: `FnMut(t, u, θ, w, gu, gp)` with `gu = f_uᵀ w`, `gp = f_θᵀ w`.
#[derive(Debug, Clone)]
pub struct ClosureModel<F, J = NoJvp, V = NoVjp> {
    state_len: usize,
    param_len: usize,
    rhs: F,
    jvp: J,
    vjp: V,
}

impl<F> ClosureModel<F>
where
    F: FnMut(f64, &[f64], &[f64], &mut [f64]),
{
    /// A model with `state_len` states, `param_len` parameters and right-hand side `rhs`.
    pub fn new(state_len: usize, param_len: usize, rhs: F) -> Self {
        Self {
            state_len,
            param_len,
            rhs,
            jvp: NoJvp,
            vjp: NoVjp,
        }
    }
}

impl<F, J, V> ClosureModel<F, J, V> {
    /// Add the state JVP `out = f_u(t, u; θ) v`.
    pub fn with_jvp<J2>(self, jvp: J2) -> ClosureModel<F, J2, V>
    where
        J2: FnMut(f64, &[f64], &[f64], &[f64], &mut [f64]),
    {
        ClosureModel {
            state_len: self.state_len,
            param_len: self.param_len,
            rhs: self.rhs,
            jvp,
            vjp: self.vjp,
        }
    }

    /// Add the stage VJP `(gu, gp) = (f_uᵀ w, f_θᵀ w)`.
    pub fn with_vjp<V2>(self, vjp: V2) -> ClosureModel<F, J, V2>
    where
        V2: FnMut(f64, &[f64], &[f64], &[f64], &mut [f64], &mut [f64]),
    {
        ClosureModel {
            state_len: self.state_len,
            param_len: self.param_len,
            rhs: self.rhs,
            jvp: self.jvp,
            vjp,
        }
    }
}

impl<F, J, V> Rhs for ClosureModel<F, J, V>
where
    F: FnMut(f64, &[f64], &[f64], &mut [f64]),
{
    fn state_len(&self) -> usize {
        self.state_len
    }
    fn param_len(&self) -> usize {
        self.param_len
    }
    fn rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        (self.rhs)(t, u, p, f)
    }
}

impl<F, J, V> RhsJvp for ClosureModel<F, J, V>
where
    F: FnMut(f64, &[f64], &[f64], &mut [f64]),
    J: FnMut(f64, &[f64], &[f64], &[f64], &mut [f64]),
{
    fn jvp(&mut self, t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        (self.jvp)(t, u, p, v, out)
    }
}

impl<F, J, V> RhsVjp for ClosureModel<F, J, V>
where
    F: FnMut(f64, &[f64], &[f64], &mut [f64]),
    V: FnMut(f64, &[f64], &[f64], &[f64], &mut [f64], &mut [f64]),
{
    fn vjp(&mut self, t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        (self.vjp)(t, u, p, w, gu, gp)
    }
}
