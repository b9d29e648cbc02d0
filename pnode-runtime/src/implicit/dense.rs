//! Dense LU factorization with partial pivoting, for the small Newton systems of implicit
//! stages.
//!
//! `P A = L U` by Gaussian elimination with row pivoting (Golub & Van Loan, *Matrix
//! Computations*, 4th ed., Alg. 3.4.1); solves `A x = b` and `Aᵀ x = b` from the same factors
//! (`Aᵀ = Uᵀ Lᵀ P`). Row-major, in place, no allocation after construction.

/// An `n × n` LU factorization with partial pivoting, reusable across matrices of one size.
#[derive(Debug, Clone)]
pub struct DenseLu {
    n: usize,
    /// Factors in place: `U` on and above the diagonal, `L` (unit diagonal) below.
    lu: Vec<f64>,
    /// Row `i` of `P A` is row `pivots[i]` of `A`.
    pivots: Vec<usize>,
}

impl DenseLu {
    /// Storage for `n × n` factorizations.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            lu: vec![0.0; n * n],
            pivots: (0..n).collect(),
        }
    }

    /// The matrix to factor, row-major; fill it, then call [`DenseLu::factor`].
    pub fn matrix_mut(&mut self) -> &mut [f64] {
        &mut self.lu
    }

    /// Factor the matrix in place. Returns `false` if it is singular to working precision
    /// (a zero or non-finite pivot).
    pub fn factor(&mut self) -> bool {
        let n = self.n;
        for (i, p) in self.pivots.iter_mut().enumerate() {
            *p = i;
        }
        for k in 0..n {
            let (mut piv, mut best) = (k, self.lu[k * n + k].abs());
            for i in k + 1..n {
                let v = self.lu[i * n + k].abs();
                if v > best {
                    (piv, best) = (i, v);
                }
            }
            if !(best.is_finite() && best > 0.0) {
                return false;
            }
            if piv != k {
                for j in 0..n {
                    self.lu.swap(k * n + j, piv * n + j);
                }
                self.pivots.swap(k, piv);
            }
            let d = self.lu[k * n + k];
            for i in k + 1..n {
                let l = self.lu[i * n + k] / d;
                self.lu[i * n + k] = l;
                if l != 0.0 {
                    for j in k + 1..n {
                        self.lu[i * n + j] -= l * self.lu[k * n + j];
                    }
                }
            }
        }
        true
    }

    /// Solve `A x = b` in place (`x` holds `b` on entry).
    pub fn solve(&self, x: &mut [f64], scratch: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            scratch[i] = x[self.pivots[i]];
        }
        for i in 0..n {
            let mut s = scratch[i];
            for j in 0..i {
                s -= self.lu[i * n + j] * scratch[j];
            }
            scratch[i] = s;
        }
        for i in (0..n).rev() {
            let mut s = scratch[i];
            for j in i + 1..n {
                s -= self.lu[i * n + j] * scratch[j];
            }
            scratch[i] = s / self.lu[i * n + i];
        }
        x.copy_from_slice(&scratch[..n]);
    }

    /// Solve `Aᵀ x = b` in place: `Uᵀ z = b`, `Lᵀ y = z`, `x = Pᵀ y`.
    pub fn solve_transpose(&self, x: &mut [f64], scratch: &mut [f64]) {
        let n = self.n;
        scratch[..n].copy_from_slice(x);
        for i in 0..n {
            let mut s = scratch[i];
            for j in 0..i {
                s -= self.lu[j * n + i] * scratch[j];
            }
            scratch[i] = s / self.lu[i * n + i];
        }
        for i in (0..n).rev() {
            let mut s = scratch[i];
            for j in i + 1..n {
                s -= self.lu[j * n + i] * scratch[j];
            }
            scratch[i] = s;
        }
        for i in 0..n {
            x[self.pivots[i]] = scratch[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_and_transposed_solves_match_the_matrix() {
        let a = [0.0, 2.0, 1.0, 1.0, -1.0, 4.0, 3.0, 0.5, -2.0];
        let mut lu = DenseLu::new(3);
        lu.matrix_mut().copy_from_slice(&a);
        assert!(lu.factor());
        let b = [1.0, -2.0, 0.5];
        let mut scratch = [0.0; 3];
        let mut x = b;
        lu.solve(&mut x, &mut scratch);
        for i in 0..3 {
            let r: f64 = (0..3).map(|j| a[i * 3 + j] * x[j]).sum();
            assert!((r - b[i]).abs() < 1e-14, "A x row {i}: {r} vs {}", b[i]);
        }
        let mut y = b;
        lu.solve_transpose(&mut y, &mut scratch);
        for i in 0..3 {
            let r: f64 = (0..3).map(|j| a[j * 3 + i] * y[j]).sum();
            assert!((r - b[i]).abs() < 1e-14, "Aᵀ y row {i}: {r} vs {}", b[i]);
        }
    }

    #[test]
    fn singular_matrices_are_reported() {
        let mut lu = DenseLu::new(2);
        lu.matrix_mut().copy_from_slice(&[1.0, 2.0, 2.0, 4.0]);
        assert!(!lu.factor());
    }
}
