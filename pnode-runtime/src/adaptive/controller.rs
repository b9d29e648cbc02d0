//! Error control: tolerances, the weighted RMS error norm, the PI step-size controller and the
//! automatic initial step.
//!
//! # Error norm
//!
//! With the embedded error estimate `e = h Σ_i (b_i − b̂_i) K_i` of a step `u_n → u_{n+1}`,
//!
//! ```text
//! r_i = |e_i| / (atol_i + rtol_i · max(|u_n,i|, |u_{n+1},i|)),   err = sqrt(1/n Σ_i r_i²)
//! ```
//!
//! (Hairer–Nørsett–Wanner I, §II.4). The step is accepted when `err ≤ 1`.
//!
//! # PI controller
//!
//! The estimate behaves like `C h^{q+1}`, `q` the order of the estimate (the lower of the two
//! orders of the pair: 2 for bosh3, 4 for dopri5, tsit5 and fehlberg45). After an accepted step
//! with error `err_n`, the previous accepted step's `err_{n−1}` (1 before the first),
//!
//! ```text
//! h_new = h · clamp(safety · err_n^(−β1) · err_{n−1}^(β2), min_factor, max_factor),
//! β1 = (k_I + k_P)/(q+1),   β2 = k_P/(q+1),
//! ```
//!
//! Gustafsson's PI controller with the gains of Söderlind (`k_I = 0.3`, `k_P = 0.4`, so
//! `β1 = 0.7/(q+1)`, `β2 = 0.4/(q+1)`; Hairer–Wanner II, §IV.2). `k_P = 0` gives the
//! classical I controller `h·safety·err^(−1/(q+1))`. After a rejected step the next accepted
//! one may not grow (`max_factor` is 1 for it). A rejected step is retried with the I controller,
//! `h · clamp(safety · err^(−1/(q+1)), min_factor, 1)`; `err_{n−1}` is stored as
//! `max(err_n, 10⁻⁴)` so one very accurate step does not make the next one jump.
//!
//! # Initial step
//!
//! Hairer–Nørsett–Wanner I, §II.4 ("Starting step size"), with `sc_i = atol_i + rtol_i |u0_i|`
//! and the RMS norm `‖x‖ = sqrt(1/n Σ (x_i/sc_i)²)`:
//!
//! ```text
//! d0 = ‖u0‖, d1 = ‖f(t0, u0)‖;  h0 = 0.01 d0/d1 (10⁻⁶ if d0 or d1 < 10⁻⁵);
//! u1 = u0 + h0 f(t0, u0);  d2 = ‖f(t0 + h0, u1) − f(t0, u0)‖ / h0;
//! h1 = (0.01 / max(d1, d2))^(1/(q+1))  (max(10⁻⁶, 10⁻³ h0) if max(d1, d2) ≤ 10⁻¹⁵);
//! h = min(100 h0, h1, h_max)
//! ```
//!
//! HNW use the method's order; we use the estimate's order `q`, the exponent the controller
//! uses for the same quantity.
//!
//! # References
//! * E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 2nd ed.,
//!   1993, §II.4.
//! * E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., 1996, §IV.2.
//! * K. Gustafsson, "Control theoretic techniques for stepsize selection in explicit
//!   Runge–Kutta methods", ACM TOMS 17 (1991).
//! * G. Söderlind, "Automatic control and adaptive time-stepping", Numer. Algorithms 31 (2002).

use crate::error::{Error, Result};
use crate::model::{Eval, Rhs};

/// A tolerance: one value for every component, or one per component.
#[derive(Debug, Clone, PartialEq)]
pub enum Tolerance {
    /// The same value for every component.
    Scalar(f64),
    /// One value per state component.
    PerComponent(Vec<f64>),
}

impl From<f64> for Tolerance {
    fn from(v: f64) -> Self {
        Tolerance::Scalar(v)
    }
}

impl From<Vec<f64>> for Tolerance {
    fn from(v: Vec<f64>) -> Self {
        Tolerance::PerComponent(v)
    }
}

impl Tolerance {
    /// The per-component values for a state of `n`, checked finite and `≥ 0`.
    pub(crate) fn expand(&self, option: &'static str, n: usize) -> Result<Vec<f64>> {
        let values = match self {
            Tolerance::Scalar(v) => vec![*v; n],
            Tolerance::PerComponent(v) => {
                if v.len() != n {
                    return Err(Error::LengthMismatch {
                        what: option,
                        expected: n,
                        found: v.len(),
                    });
                }
                v.clone()
            }
        };
        let per = matches!(self, Tolerance::PerComponent(_));
        if let Some(i) = values.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(Error::InvalidAdaptiveOption {
                option,
                component: per.then_some(i),
                value: values[i],
                expected: "a finite tolerance ≥ 0",
            });
        }
        Ok(values)
    }
}

/// The PI step-size controller's constants (see the module docs for the formulas).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Controller {
    /// Safety factor on the predicted optimal step (0.9).
    pub safety: f64,
    /// Smallest factor a step may shrink by (0.2); also the factor after a non-finite RHS.
    pub min_factor: f64,
    /// Largest factor a step may grow by (10).
    pub max_factor: f64,
    /// Integral gain `k_I` (0.3): `β1 = (k_I + k_P)/(q+1)`.
    pub k_i: f64,
    /// Proportional gain `k_P` (0.4): `β2 = k_P/(q+1)`; 0 gives the I controller.
    pub k_p: f64,
}

impl Default for Controller {
    fn default() -> Self {
        Self {
            safety: 0.9,
            min_factor: 0.2,
            max_factor: 10.0,
            k_i: 0.3,
            k_p: 0.4,
        }
    }
}

impl Controller {
    /// Check the constants: `0 < safety ≤ 1`, `0 < min_factor < 1 < max_factor`, finite gains
    /// `k_i > 0`, `k_p ≥ 0`.
    pub fn validate(&self) -> Result<()> {
        let bad = |option, value, expected| {
            Err(Error::InvalidAdaptiveOption {
                option,
                component: None,
                value,
                expected,
            })
        };
        if !(self.safety > 0.0 && self.safety <= 1.0) {
            return bad("safety", self.safety, "0 < safety ≤ 1");
        }
        if !(self.min_factor > 0.0 && self.min_factor < 1.0) {
            return bad("min_factor", self.min_factor, "0 < min_factor < 1");
        }
        if !(self.max_factor > 1.0 && self.max_factor.is_finite()) {
            return bad("max_factor", self.max_factor, "a finite max_factor > 1");
        }
        if !(self.k_i > 0.0 && self.k_i.is_finite()) {
            return bad("k_i", self.k_i, "a finite integral gain > 0");
        }
        if !(self.k_p >= 0.0 && self.k_p.is_finite()) {
            return bad("k_p", self.k_p, "a finite proportional gain ≥ 0");
        }
        Ok(())
    }

    /// The factor `h_new / h` after an accepted step with error `err` (the previous accepted
    /// step's stored error `err_prev`, 1 before the first), for an estimate of order `q`; no
    /// growth when `after_reject`.
    pub fn accept_factor(&self, q: u32, err: f64, err_prev: f64, after_reject: bool) -> f64 {
        let k = f64::from(q + 1);
        let (beta1, beta2) = ((self.k_i + self.k_p) / k, self.k_p / k);
        let factor = self.safety * err.powf(-beta1) * err_prev.powf(beta2);
        let max = if after_reject { 1.0 } else { self.max_factor };
        // NaN (never produced for finite err) falls to the smallest factor.
        if factor.is_nan() {
            return self.min_factor;
        }
        factor.clamp(self.min_factor, max)
    }

    /// The factor `h_new / h` after a step rejected with error `err > 1`.
    pub fn reject_factor(&self, q: u32, err: f64) -> f64 {
        let factor = self.safety * err.powf(-1.0 / f64::from(q + 1));
        if factor.is_nan() {
            return self.min_factor;
        }
        factor.clamp(self.min_factor, 1.0)
    }

    /// What is stored as `err_{n−1}` after an accepted step with error `err`.
    pub fn stored_error(err: f64) -> f64 {
        err.max(1e-4)
    }
}

/// The weighted RMS error of a step (see the module docs) and the component with the largest
/// weighted error `r_i`, as `(err, component, r_component)`. A zero scale with a zero error
/// counts as 0.
pub(crate) fn weighted_rms(
    e: &[f64],
    u: &[f64],
    u_next: &[f64],
    rtol: &[f64],
    atol: &[f64],
) -> (f64, usize, f64) {
    let n = e.len();
    let (mut sum, mut worst, mut worst_r) = (0.0, 0, -1.0);
    for i in 0..n {
        let sc = atol[i] + rtol[i] * u[i].abs().max(u_next[i].abs());
        let r = if e[i] == 0.0 { 0.0 } else { e[i].abs() / sc };
        sum += r * r;
        if r > worst_r {
            (worst, worst_r) = (i, r);
        }
    }
    ((sum / n.max(1) as f64).sqrt(), worst, worst_r.max(0.0))
}

/// The RMS of `x_i / sc_i`.
fn scaled_rms(x: &[f64], sc: &[f64]) -> f64 {
    let sum: f64 = x.iter().zip(sc).map(|(v, s)| (v / s) * (v / s)).sum();
    (sum / x.len().max(1) as f64).sqrt()
}

/// The automatic initial step of Hairer–Nørsett–Wanner (see the module docs), at most `h_max`.
/// `f0` receives `f(t0, u0)` (the first stage of the first step); two RHS evaluations, counted
/// in `rhs_evals`. A model failure is [`Error::Model`] in step 0.
#[allow(clippy::too_many_arguments)]
pub(crate) fn initial_step<M: Rhs + ?Sized>(
    model: &mut M,
    t0: f64,
    u0: &[f64],
    p: &[f64],
    q: u32,
    rtol: &[f64],
    atol: &[f64],
    h_max: f64,
    f0: &mut [f64],
    rhs_evals: &mut u64,
) -> Result<f64> {
    let n = u0.len();
    let failed = |t, e| Error::model(0, t, crate::error::Phase::Forward, Eval::Rhs, e);
    let sc: Vec<f64> = (0..n).map(|i| atol[i] + rtol[i] * u0[i].abs()).collect();
    model.try_rhs(t0, u0, p, f0).map_err(|e| failed(t0, e))?;
    *rhs_evals += 1;
    let d0 = scaled_rms(u0, &sc);
    let d1 = scaled_rms(f0, &sc);
    let h0 = initial_step_guess(d0, d1, h_max);
    let u1: Vec<f64> = u0.iter().zip(f0.iter()).map(|(u, f)| u + h0 * f).collect();
    let mut f1 = vec![0.0; n];
    model
        .try_rhs(t0 + h0, &u1, p, &mut f1)
        .map_err(|e| failed(t0 + h0, e))?;
    *rhs_evals += 1;
    let diff: Vec<f64> = f1.iter().zip(f0.iter()).map(|(a, b)| a - b).collect();
    let d2 = scaled_rms(&diff, &sc) / h0;
    Ok(initial_step_choice(h0, d1, d2, q, h_max))
}

/// The first half of the automatic initial step (see the module docs), for backends that
/// compute the norms themselves: `h0 = 0.01 d0/d1` (10⁻⁶ if `d0` or `d1 < 10⁻⁵`), at most
/// `h_max`, from `d0 = ‖u0‖` and `d1 = ‖f(t0, u0)‖`.
pub fn initial_step_guess(d0: f64, d1: f64, h_max: f64) -> f64 {
    let h0 = if d0 < 1e-5 || d1 < 1e-5 || !(d0 / d1).is_finite() {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    h0.min(h_max)
}

/// The second half of the automatic initial step (see the module docs): from the guess `h0`,
/// `d1 = ‖f(t0, u0)‖` and `d2 = ‖f(t0 + h0, u0 + h0 f(t0, u0)) − f(t0, u0)‖ / h0`,
/// `min(100 h0, (0.01 / max(d1, d2))^(1/(q+1)), h_max)`.
pub fn initial_step_choice(h0: f64, d1: f64, d2: f64, q: u32, h_max: f64) -> f64 {
    let dmax = d1.max(d2);
    let h1 = if !dmax.is_finite() {
        // A non-finite derivative: start small and let the step rejection shrink further.
        h0
    } else if dmax <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / dmax).powf(1.0 / f64::from(q + 1))
    };
    (100.0 * h0).min(h1).min(h_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pi_factor_follows_the_formula_and_clamps() {
        let c = Controller::default();
        // q = 4: β1 = 0.14, β2 = 0.08.
        let f = c.accept_factor(4, 0.5, 0.8, false);
        let want = 0.9 * 0.5f64.powf(-0.14) * 0.8f64.powf(0.08);
        assert!((f - want).abs() < 1e-15, "{f} vs {want}");
        assert_eq!(c.accept_factor(4, 0.0, 1.0, false), 10.0);
        assert_eq!(c.accept_factor(4, 1e-12, 1.0, true), 1.0);
        assert_eq!(c.reject_factor(4, 1e12), 0.2);
        let r = c.reject_factor(2, 8.0);
        assert!((r - 0.9 * 0.5).abs() < 1e-15);
    }

    #[test]
    fn weighted_rms_names_the_worst_component() {
        let (err, i, r) = weighted_rms(
            &[1e-6, -4e-6],
            &[1.0, 0.0],
            &[1.0, 0.0],
            &[0.0, 0.0],
            &[1e-6, 1e-6],
        );
        assert_eq!(i, 1);
        assert_eq!(r, 4.0);
        assert!((err - (17.0f64 / 2.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn bad_constants_are_named() {
        let c = Controller {
            safety: 1.5,
            ..Controller::default()
        };
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("`safety`"), "{e}");
        let e = Tolerance::PerComponent(vec![1e-6, -1.0])
            .expand("atol", 2)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid adaptive option `atol` (component 1): -1 (a finite tolerance ≥ 0)"
        );
    }
}
