//! Robertson's stiff chemical kinetics.

use crate::model::{Rhs, RhsJvp, RhsVjp};

/// Robertson's reaction system, θ = `[k1, k2, k3]`:
///
/// ```text
/// y1' = −k1 y1 + k3 y2 y3
/// y2' =  k1 y1 − k3 y2 y3 − k2 y2²
/// y3' =  k2 y2²
/// ```
///
/// with the classic rates `k = [0.04, 3e7, 1e4]` and `y(0) = [1, 0, 0]`. The rates span nine
/// orders of magnitude, which makes it the standard stiff test problem; the total `y1+y2+y3`
/// is conserved.
///
/// # References
///
/// H. H. Robertson, "The solution of a set of reaction rate equations", in *Numerical Analysis:
/// an Introduction*, Academic Press 1966; E. Hairer and G. Wanner, *Solving Ordinary
/// Differential Equations II*, §IV.1 and §IV.10, Springer 1996.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Robertson;

impl Robertson {
    /// The model (state `[y1, y2, y3]`, parameters `[k1, k2, k3]`).
    pub fn new() -> Self {
        Self
    }

    /// The classic rates `[0.04, 3e7, 1e4]`.
    pub fn default_params() -> Vec<f64> {
        vec![0.04, 3e7, 1e4]
    }

    /// `[1, 0, 0]`.
    pub fn default_u0() -> Vec<f64> {
        vec![1.0, 0.0, 0.0]
    }
}

impl Rhs for Robertson {
    fn state_len(&self) -> usize {
        3
    }
    fn param_len(&self) -> usize {
        3
    }
    fn rhs(&mut self, _t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        let (y1, y2, y3) = (u[0], u[1], u[2]);
        let (k1, k2, k3) = (p[0], p[1], p[2]);
        f[0] = -k1 * y1 + k3 * y2 * y3;
        f[1] = k1 * y1 - k3 * y2 * y3 - k2 * y2 * y2;
        f[2] = k2 * y2 * y2;
    }
}

impl RhsJvp for Robertson {
    fn jvp(&mut self, _t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        let (y2, y3) = (u[1], u[2]);
        let (k1, k2, k3) = (p[0], p[1], p[2]);
        // Jacobian rows: [−k1, k3 y3, k3 y2], [k1, −k3 y3 − 2 k2 y2, −k3 y2], [0, 2 k2 y2, 0].
        out[0] = -k1 * v[0] + k3 * y3 * v[1] + k3 * y2 * v[2];
        out[1] = k1 * v[0] - (k3 * y3 + 2.0 * k2 * y2) * v[1] - k3 * y2 * v[2];
        out[2] = 2.0 * k2 * y2 * v[1];
    }
}

impl RhsVjp for Robertson {
    fn vjp(&mut self, _t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        let (y1, y2, y3) = (u[0], u[1], u[2]);
        let (k1, k2, k3) = (p[0], p[1], p[2]);
        gu[0] = -k1 * w[0] + k1 * w[1];
        gu[1] = k3 * y3 * w[0] - (k3 * y3 + 2.0 * k2 * y2) * w[1] + 2.0 * k2 * y2 * w[2];
        gu[2] = k3 * y2 * w[0] - k3 * y2 * w[1];
        gp[0] = -y1 * w[0] + y1 * w[1];
        gp[1] = -y2 * y2 * w[1] + y2 * y2 * w[2];
        gp[2] = y2 * y3 * w[0] - y2 * y3 * w[1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problems::tests::assert_derivatives;

    #[test]
    fn robertson_derivatives_and_conservation() {
        let mut m = Robertson::new();
        let p = Robertson::default_params();
        for u in [[0.9, 3e-5, 0.1], [0.5, 1e-6, 0.5]] {
            assert_derivatives(&mut m, &u, &p);
            let mut f = [0.0; 3];
            m.rhs(0.0, &u, &p, &mut f);
            assert!((f[0] + f[1] + f[2]).abs() <= 1e-15 * f.iter().map(|x| x.abs()).sum::<f64>());
        }
    }
}
