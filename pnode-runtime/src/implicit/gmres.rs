//! Restarted GMRES for the stage systems `(I − γh f_u) x = b` and their transposes, matrix-free.
//!
//! GMRES(m) with modified Gram–Schmidt Arnoldi and Givens rotations (Saad & Schultz 1986; Saad,
//! *Iterative Methods for Sparse Linear Systems*, 2nd ed., Alg. 6.9), right-preconditioned so
//! the monitored residual is the true one: it minimises `‖b − A M⁻¹ z‖₂` over the Krylov space
//! and returns `x = M⁻¹ z`. It stops when `‖b − A x‖₂ ≤ rtol ‖b‖₂ + atol`, or when the true
//! residual has stalled at its round-off floor below `1e-12 ‖b‖₂` ([`Gmres::solve`]).

/// Settings of the Krylov solver.
///
/// A solve stops, converged, when `‖b − A x‖₂ ≤ rtol ‖b‖₂ + atol`, or when a restart cycle no
/// longer lowers a true residual already below `1e-12 ‖b‖₂` (the round-off floor, where the
/// tolerance is met as far as floating point allows) or the iterations run out there;
/// unconverged after `max_iters` iterations or when a cycle stalls above that.
///
/// # Accuracy of gradients
/// An adjoint step solves `(I − γh f_u)ᵀ w = r`; a relative residual `η` leaves an error of up
/// to `κ η` in `w` (`κ` the condition number of the stage matrix), which the reverse sweep
/// carries into the gradient. The default `rtol = 1e-14` (with GMRES stopping at the
/// round-off floor when rounding prevents it) gives gradients that agree with dense LU to
/// round-off: on an 80-state stiff reaction–diffusion model (ESDIRK3, `κ ≈ 300`), 2e-14
/// relative in `θ`, against 3e-12 with the former default `1e-12`, for about 25% more Krylov
/// iterations. A looser `rtol` trades gradient accuracy for iterations in proportion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GmresConfig {
    /// Krylov vectors before a restart.
    pub restart: usize,
    /// Relative tolerance on the residual norm (default `1e-14`; see [`GmresConfig`] for what
    /// a looser one costs in a gradient).
    pub rtol: f64,
    /// Absolute tolerance on the residual norm.
    pub atol: f64,
    /// Total iterations (over all restarts) before giving up.
    pub max_iters: usize,
}

/// The relative residual below which a restart cycle that no longer lowers the residual ends
/// the solve as converged, at the attainable accuracy ([`Gmres::solve`]); the tolerance of the
/// default before it was tightened, so a stalled solve is never less accurate than that.
pub(crate) const STALL_RTOL: f64 = 1e-12;

impl Default for GmresConfig {
    fn default() -> Self {
        Self {
            restart: 30,
            rtol: 1e-14,
            atol: 1e-300,
            max_iters: 1000,
        }
    }
}

/// Work space of GMRES(m) for vectors of length `n`.
#[derive(Debug, Clone)]
pub(crate) struct Gmres {
    pub config: GmresConfig,
    /// Krylov basis, `(m + 1) × n`.
    v: Vec<f64>,
    /// Hessenberg matrix, column-major `(m + 1) × m`.
    h: Vec<f64>,
    cs: Vec<f64>,
    sn: Vec<f64>,
    g: Vec<f64>,
    y: Vec<f64>,
    r: Vec<f64>,
    z: Vec<f64>,
    w: Vec<f64>,
}

/// A linear operator `out = A v` that may fail (a model evaluation inside it).
pub(crate) type Operator<'a, E> = dyn FnMut(&[f64], &mut [f64]) -> Result<(), E> + 'a;

/// The outcome of a solve: iterations and the final residual norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GmresResult {
    pub iterations: usize,
    /// The true residual norm `‖b − A x‖₂` at the end.
    pub residual: f64,
    /// `rtol ‖b‖₂ + atol`.
    pub target: f64,
    pub converged: bool,
    /// Why it stopped unconverged: a restart cycle that did not lower the residual.
    pub stagnated: bool,
}

impl GmresResult {
    /// Why an unconverged solve stopped, for messages.
    pub fn why(&self) -> &'static str {
        if !self.residual.is_finite() {
            "produced a non-finite residual"
        } else if self.stagnated {
            "stagnated (a restart cycle did not lower the residual)"
        } else {
            "reached its iteration cap"
        }
    }
}

impl Gmres {
    pub fn new(config: GmresConfig, n: usize) -> Self {
        let m = config.restart.max(1);
        Self {
            config,
            v: vec![0.0; (m + 1) * n],
            h: vec![0.0; (m + 1) * m],
            cs: vec![0.0; m],
            sn: vec![0.0; m],
            g: vec![0.0; m + 1],
            y: vec![0.0; m],
            r: vec![0.0; n],
            z: vec![0.0; n],
            w: vec![0.0; n],
        }
    }

    /// Solve `A x = b` from the initial guess in `x`; `apply(v, out)` computes `out = A v` and
    /// `precondition(r, z)` computes `z = M⁻¹ r`.
    ///
    /// The true residual `β = ‖b − A x‖₂` is recomputed at every restart. The solve has
    /// converged when `β ≤ rtol ‖b‖₂ + atol`, or when it has reached the attainable accuracy: a
    /// restart cycle lowered `β` by less than half, or the iterations ran out, while
    /// `β ≤ 1e-12 ‖b‖₂` ([`STALL_RTOL`], the former default tolerance, so the solve is never
    /// less accurate than that default, nor fails where it succeeded). Rounding in `b − A x`
    /// and in the Arnoldi recurrence sets a floor on the true residual — for the stage
    /// matrices `I − γh f_u`, about `1e-16` to `1e-14 ‖b‖₂` — that no further cycle lowers; a
    /// tolerance below it is met as far as floating point allows instead of spinning until the
    /// cap. It stops unconverged at `max_iters`, or when a cycle left `β` no lower above that
    /// level (GMRES(m) has stagnated: in exact arithmetic the next cycle would repeat it). An
    /// error of `apply` stops the solve and is returned.
    pub fn solve<E>(
        &mut self,
        b: &[f64],
        x: &mut [f64],
        apply: &mut Operator<'_, E>,
        precondition: &mut dyn FnMut(&[f64], &mut [f64]),
    ) -> Result<GmresResult, E> {
        let n = b.len();
        let m = self.config.restart.max(1);
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let b_norm = norm(b);
        let target = self.config.rtol * b_norm + self.config.atol;
        // The true residual at the start of the last cycle.
        let mut previous = f64::INFINITY;
        let mut iterations = 0;
        loop {
            // r = b − A x
            apply(x, &mut self.w)?;
            for i in 0..n {
                self.r[i] = b[i] - self.w[i];
            }
            let beta = norm(&self.r);
            // Below the former default tolerance, a stalled cycle or the iteration cap ends the
            // solve as converged: never less accurate than that default, never a failure where
            // it succeeded.
            let capped = iterations >= self.config.max_iters;
            let at_floor = (beta > 0.5 * previous || capped) && beta <= STALL_RTOL * b_norm;
            let converged = beta <= target || at_floor;
            let stagnated = !converged && beta >= previous;
            if converged || stagnated || !beta.is_finite() || capped {
                return Ok(GmresResult {
                    iterations,
                    residual: beta,
                    target,
                    converged,
                    stagnated,
                });
            }
            previous = beta;
            for i in 0..n {
                self.v[i] = self.r[i] / beta;
            }
            self.g.fill(0.0);
            self.g[0] = beta;
            let mut k = 0;
            while k < m && iterations < self.config.max_iters {
                iterations += 1;
                // w = A M⁻¹ v_k
                precondition(&self.v[k * n..(k + 1) * n], &mut self.z);
                apply(&self.z, &mut self.w)?;
                for j in 0..=k {
                    let vj = &self.v[j * n..(j + 1) * n];
                    let hjk: f64 = vj.iter().zip(&self.w).map(|(a, b)| a * b).sum();
                    self.h[k * (m + 1) + j] = hjk;
                    for (wi, &vi) in self.w.iter_mut().zip(vj) {
                        *wi -= hjk * vi;
                    }
                }
                let hk1 = norm(&self.w);
                self.h[k * (m + 1) + k + 1] = hk1;
                if hk1 > 0.0 {
                    for i in 0..n {
                        self.v[(k + 1) * n + i] = self.w[i] / hk1;
                    }
                }
                // Apply the previous rotations to column k, then a new one to zero h[k+1][k].
                for j in 0..k {
                    let (a, b) = (self.h[k * (m + 1) + j], self.h[k * (m + 1) + j + 1]);
                    self.h[k * (m + 1) + j] = self.cs[j] * a + self.sn[j] * b;
                    self.h[k * (m + 1) + j + 1] = -self.sn[j] * a + self.cs[j] * b;
                }
                let (a, b) = (self.h[k * (m + 1) + k], self.h[k * (m + 1) + k + 1]);
                let rho = a.hypot(b);
                (self.cs[k], self.sn[k]) = if rho == 0.0 {
                    (1.0, 0.0)
                } else {
                    (a / rho, b / rho)
                };
                self.h[k * (m + 1) + k] = rho;
                self.h[k * (m + 1) + k + 1] = 0.0;
                self.g[k + 1] = -self.sn[k] * self.g[k];
                self.g[k] *= self.cs[k];
                k += 1;
                if self.g[k].abs() <= target || hk1 == 0.0 {
                    break;
                }
            }
            // Back-substitute H y = g, then x += M⁻¹ (V y).
            for i in (0..k).rev() {
                let mut s = self.g[i];
                for j in i + 1..k {
                    s -= self.h[j * (m + 1) + i] * self.y[j];
                }
                self.y[i] = s / self.h[i * (m + 1) + i];
            }
            self.w.fill(0.0);
            for j in 0..k {
                let yj = self.y[j];
                for (wi, &vi) in self.w.iter_mut().zip(&self.v[j * n..(j + 1) * n]) {
                    *wi += yj * vi;
                }
            }
            precondition(&self.w, &mut self.z);
            for (xi, &zi) in x.iter_mut().zip(&self.z) {
                *xi += zi;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_nonsymmetric_system_with_restarts() {
        // A = tridiag(−1, 4, −2) of size 40, b = 1: restart 5 forces several cycles.
        let n = 40;
        let apply = |v: &[f64], out: &mut [f64]| {
            for i in 0..n {
                let left = if i > 0 { v[i - 1] } else { 0.0 };
                let right = if i + 1 < n { v[i + 1] } else { 0.0 };
                out[i] = 4.0 * v[i] - left - 2.0 * right;
            }
        };
        let b = vec![1.0; n];
        let mut x = vec![0.0; n];
        let config = GmresConfig {
            restart: 5,
            rtol: 1e-13,
            ..GmresConfig::default()
        };
        let mut gmres = Gmres::new(config, n);
        let mut apply_mut = |v: &[f64], out: &mut [f64]| -> Result<(), ()> {
            apply(v, out);
            Ok(())
        };
        let result = gmres
            .solve(&b, &mut x, &mut apply_mut, &mut |r, z| z.copy_from_slice(r))
            .unwrap();
        assert!(result.converged, "{result:?}");
        let mut ax = vec![0.0; n];
        apply(&x, &mut ax);
        let res: f64 = ax
            .iter()
            .zip(&b)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(res <= 1e-12 * (n as f64).sqrt(), "residual {res:e}");
        assert!(
            result.iterations > 5,
            "restarts were exercised: {}",
            result.iterations
        );
        // A Jacobi preconditioner (diagonal 4) needs no more iterations.
        let mut x2 = vec![0.0; n];
        let mut gmres = Gmres::new(config, n);
        let r2 = gmres
            .solve(&b, &mut x2, &mut apply_mut, &mut |r, z| {
                for (zi, ri) in z.iter_mut().zip(r) {
                    *zi = ri / 4.0;
                }
            })
            .unwrap();
        assert!(r2.converged && r2.iterations <= result.iterations);
        assert!(x.iter().zip(&x2).all(|(a, b)| (a - b).abs() <= 1e-11));
        // An error of the operator stops the solve and comes back.
        let mut calls = 0;
        let e = Gmres::new(config, n)
            .solve(
                &b,
                &mut vec![0.0; n],
                &mut |v: &[f64], out: &mut [f64]| {
                    calls += 1;
                    if calls == 3 {
                        return Err("operator failed");
                    }
                    apply(v, out);
                    Ok(())
                },
                &mut |r, z| z.copy_from_slice(r),
            )
            .unwrap_err();
        assert_eq!((e, calls), ("operator failed", 3));
    }

    #[test]
    fn an_unattainable_tolerance_ends_at_the_round_off_floor_and_a_stall_stops_early() {
        // tridiag(−1, 4, −2) again, with rtol far below what rounding allows: converged at the
        // floor (β ≤ 1e-12 ‖b‖), long before the iteration cap.
        let n = 40;
        let mut apply = |v: &[f64], out: &mut [f64]| -> Result<(), ()> {
            for i in 0..n {
                let left = if i > 0 { v[i - 1] } else { 0.0 };
                let right = if i + 1 < n { v[i + 1] } else { 0.0 };
                out[i] = 4.0 * v[i] - left - 2.0 * right;
            }
            Ok(())
        };
        let config = GmresConfig {
            restart: 10,
            rtol: 1e-30,
            atol: 0.0,
            max_iters: 1000,
        };
        let b = vec![1.0; n];
        let mut x = vec![0.0; n];
        let r = Gmres::new(config, n)
            .solve(&b, &mut x, &mut apply, &mut |r, z| z.copy_from_slice(r))
            .unwrap();
        let b_norm = (n as f64).sqrt();
        assert!(r.converged && !r.stagnated, "{r:?}");
        assert!(r.residual <= STALL_RTOL * b_norm, "{r:?}");
        assert!(r.iterations < 200, "{r:?}");
        // GMRES(1) on a rotation makes no progress at all (⟨A b, b⟩ = 0): it stops after one
        // cycle, unconverged, instead of spinning to the cap.
        let mut rotate = |v: &[f64], out: &mut [f64]| -> Result<(), ()> {
            out[0] = v[1];
            out[1] = -v[0];
            Ok(())
        };
        let config = GmresConfig {
            restart: 1,
            ..GmresConfig::default()
        };
        let mut x = vec![0.0; 2];
        let r = Gmres::new(config, 2)
            .solve(&[1.0, 0.0], &mut x, &mut rotate, &mut |r, z| {
                z.copy_from_slice(r)
            })
            .unwrap();
        assert!(!r.converged && r.stagnated, "{r:?}");
        assert_eq!(r.iterations, 1);
        assert_eq!(r.residual, 1.0);
        assert!(r.why().contains("stagnated"));
    }
}
