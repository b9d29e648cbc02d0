//! Restarted GMRES for the stage systems `(I − γh f_u) x = b` and their transposes, matrix-free.
//!
//! GMRES(m) with modified Gram–Schmidt Arnoldi and Givens rotations (Saad & Schultz 1986; Saad,
//! *Iterative Methods for Sparse Linear Systems*, 2nd ed., Alg. 6.9), right-preconditioned so
//! the monitored residual is the true one: it minimises `‖b − A M⁻¹ z‖₂` over the Krylov space
//! and returns `x = M⁻¹ z`. It stops when `‖b − A x‖₂ ≤ rtol ‖b‖₂ + atol`.

/// Settings of the Krylov solver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GmresConfig {
    /// Krylov vectors before a restart.
    pub restart: usize,
    /// Relative tolerance on the residual norm.
    pub rtol: f64,
    /// Absolute tolerance on the residual norm.
    pub atol: f64,
    /// Total iterations (over all restarts) before giving up.
    pub max_iters: usize,
}

impl Default for GmresConfig {
    fn default() -> Self {
        Self {
            restart: 30,
            rtol: 1e-12,
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
    pub residual: f64,
    pub converged: bool,
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
    /// `precondition(r, z)` computes `z = M⁻¹ r`. An error of `apply` stops the solve and is
    /// returned.
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
        let target = self.config.rtol * norm(b) + self.config.atol;
        let mut iterations = 0;
        loop {
            // r = b − A x
            apply(x, &mut self.w)?;
            for i in 0..n {
                self.r[i] = b[i] - self.w[i];
            }
            let beta = norm(&self.r);
            if beta <= target || !beta.is_finite() || iterations >= self.config.max_iters {
                return Ok(GmresResult {
                    iterations,
                    residual: beta,
                    converged: beta <= target,
                });
            }
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
}
