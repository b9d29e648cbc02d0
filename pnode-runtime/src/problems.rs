//! Reference problems with hand-written (analytic) derivatives, shared by tests and benchmarks.
//!
//! Every problem implements [`Rhs`], [`RhsJvp`] and [`RhsVjp`] without automatic
//! differentiation, so it can serve as an oracle for the integrators and the adjoint:
//!
//! * [`LinearSystem`]: `du/dt = A u` with the matrix as parameters, and a matrix exponential for
//!   the exact solution (convergence-order tests);
//! * [`LotkaVolterra`]: the predator–prey model with its conserved quantity;
//! * [`VanDerPol`]: the (moderately stiff) relaxation oscillator;
//! * [`Mlp`]: a batched `tanh` multilayer perceptron, the typical neural-ODE right-hand side,
//!   written so that `rhs`, `jvp` and `vjp` never allocate.
//!
//! All problems are autonomous: the time argument is ignored.

use crate::error::{Error, Result, check_len};
use crate::model::{Rhs, RhsJvp, RhsVjp};

mod mlp;
mod robertson;
pub use mlp::Mlp;
pub use robertson::Robertson;

/// `Σ a_i b_i` with eight independent accumulators, so the loop vectorizes (a single running
/// sum is a serial dependency chain LLVM may not reorder).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc = [0.0f64; 8];
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `y += a x` over the common length.
#[inline]
fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

// ---------------------------------------------------------------------------------------------
// Linear system
// ---------------------------------------------------------------------------------------------

/// The linear system `du/dt = A u`, with the `n × n` matrix `A` (row-major) as the `n²`
/// parameters `θ`.
///
/// Derivatives: `f_u v = A v`, `f_uᵀ w = Aᵀ w`, `f_θᵀ w = w uᵀ` (flattened row-major, so
/// `∂⟨f, w⟩/∂A_ij = w_i u_j`). The exact solution `u(t) = exp(A t) u0` is given by
/// [`LinearSystem::exact_solution`], which makes this the problem for convergence-order tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearSystem {
    n: usize,
}

impl LinearSystem {
    /// The linear system of dimension `n` (state length `n`, parameter length `n²`).
    pub fn new(n: usize) -> Self {
        Self { n }
    }

    /// The dimension `n`.
    pub fn dim(&self) -> usize {
        self.n
    }

    /// A fixed, well-conditioned, non-normal 3 × 3 test matrix (row-major):
    ///
    /// ```text
    ///     ⎡ -0.1  -1.0   0.0 ⎤
    /// A = ⎢  1.0  -0.1   0.0 ⎥
    ///     ⎣  0.5   0.3  -0.5 ⎦
    /// ```
    ///
    /// A decaying rotation in the first two components (eigenvalues `-0.1 ± i`) driving a damped
    /// third component (eigenvalue `-0.5`) through the coupling row. All eigenvalues have
    /// negative real part, the solution oscillates, and `A Aᵀ ≠ Aᵀ A`.
    pub fn example_matrix() -> Vec<f64> {
        vec![-0.1, -1.0, 0.0, 1.0, -0.1, 0.0, 0.5, 0.3, -0.5]
    }

    /// The initial state used with [`LinearSystem::example_matrix`]: `[1, 0, 0.5]`.
    pub fn example_u0() -> Vec<f64> {
        vec![1.0, 0.0, 0.5]
    }

    /// The exact solution `u(t) = exp(A t) u0` with `n = u0.len()` and `A` the `n × n`
    /// row-major matrix `a`, by [`expm`] (scaling and squaring with a Taylor approximant).
    ///
    /// Returns [`Error::LengthMismatch`] if `a.len() != n²`, and [`Error::InvalidConfig`] if
    /// `a` or `t` is not finite.
    pub fn exact_solution(a: &[f64], t: f64, u0: &[f64]) -> Result<Vec<f64>> {
        let n = u0.len();
        check_len("matrix", n * n, a.len())?;
        if !t.is_finite() {
            return Err(Error::InvalidConfig(format!("time {t} is not finite")));
        }
        let at: Vec<f64> = a.iter().map(|x| x * t).collect();
        let e = expm(&at, n)?;
        Ok(e.chunks_exact(n.max(1)).map(|row| dot(row, u0)).collect())
    }
}

/// `C = A B` for `n × n` row-major matrices (i-k-j order: contiguous inner loop).
fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            axpy(
                a[i * n + k],
                &b[k * n..(k + 1) * n],
                &mut c[i * n..(i + 1) * n],
            );
        }
    }
    c
}

/// Matrix 1-norm (largest column sum of absolute values).
fn norm1(a: &[f64], n: usize) -> f64 {
    (0..n)
        .map(|j| (0..n).map(|i| a[i * n + j].abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// The matrix exponential `exp(A)` of the `n × n` row-major matrix `a`.
///
/// Method 3 of Moler & Van Loan (scaling and squaring): choose the least `s ≥ 0` with
/// `‖A‖₁ / 2^s ≤ 1/2`, sum the Taylor series of `F = exp(A / 2^s) − I` until the next term is
/// below `10⁻² ε` of the partial sum in the 1-norm (at most 40 terms; the truncation error is
/// then far below round-off), square `s` times as `F ← 2F + F²` (that is, `(I + F)²` without
/// forming `I + F`, which keeps the round-off relative to `F`; Higham 2009, §2), and return
/// `I + F`. For matrices with moderate `‖A‖₁` and well-conditioned eigenvectors the result is
/// accurate to a few ulps (about `1e-15` relative).
///
/// Returns [`Error::LengthMismatch`] if `a.len() != n²` and [`Error::InvalidConfig`] if an entry
/// is not finite.
///
/// # References
///
/// C. Moler and C. Van Loan, "Nineteen dubious ways to compute the exponential of a matrix,
/// twenty-five years later", SIAM Review 45(1), 2003; N. J. Higham, "The scaling and squaring
/// method for the matrix exponential revisited", SIAM Review 51(4), 2009.
pub fn expm(a: &[f64], n: usize) -> Result<Vec<f64>> {
    check_len("matrix", n * n, a.len())?;
    let norm = norm1(a, n);
    if !norm.is_finite() || a.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidConfig(
            "matrix exponential of a non-finite matrix".into(),
        ));
    }
    let mut s = 0u32;
    let mut scale = 1.0;
    while norm * scale > 0.5 {
        scale *= 0.5;
        s += 1;
    }
    // F = exp(X) − I, kept without the identity so that round-off stays relative to F.
    let x: Vec<f64> = a.iter().map(|v| v * scale).collect();
    let mut f = x.clone();
    let mut term = x.clone();
    for k in 2..=40 {
        term = matmul(&term, &x, n);
        let inv_k = 1.0 / k as f64;
        term.iter_mut().for_each(|v| *v *= inv_k);
        f.iter_mut().zip(&term).for_each(|(fi, ti)| *fi += ti);
        if norm1(&term, n) <= 1e-2 * f64::EPSILON * norm1(&f, n) {
            break;
        }
    }
    // (I + F)² = I + (2F + F²).
    for _ in 0..s {
        let f2 = matmul(&f, &f, n);
        f.iter_mut()
            .zip(&f2)
            .for_each(|(fi, gi)| *fi = 2.0 * *fi + gi);
    }
    for i in 0..n {
        f[i * n + i] += 1.0;
    }
    Ok(f)
}

impl Rhs for LinearSystem {
    fn state_len(&self) -> usize {
        self.n
    }
    fn param_len(&self) -> usize {
        self.n * self.n
    }
    fn rhs(&mut self, _t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        for (fi, row) in f.iter_mut().zip(p.chunks_exact(self.n.max(1))) {
            *fi = dot(row, u);
        }
    }
}

impl RhsJvp for LinearSystem {
    fn jvp(&mut self, _t: f64, _u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        for (oi, row) in out.iter_mut().zip(p.chunks_exact(self.n.max(1))) {
            *oi = dot(row, v);
        }
    }
}

impl RhsVjp for LinearSystem {
    fn vjp(&mut self, _t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        let n = self.n.max(1);
        gu.fill(0.0);
        for ((row, gp_row), &wi) in p.chunks_exact(n).zip(gp.chunks_exact_mut(n)).zip(w) {
            axpy(wi, row, gu);
            for (g, uj) in gp_row.iter_mut().zip(u) {
                *g = wi * uj;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lotka–Volterra
// ---------------------------------------------------------------------------------------------

/// The Lotka–Volterra predator–prey model, θ = `[α, β, δ, γ]`:
///
/// ```text
/// x' = α x − β x y
/// y' = δ x y − γ y
/// ```
///
/// Jacobian `[[α − β y, −β x], [δ y, δ x − γ]]`; parameter derivatives
/// `∂f/∂α = (x, 0)`, `∂f/∂β = (−x y, 0)`, `∂f/∂δ = (0, x y)`, `∂f/∂γ = (0, −y)`.
/// Orbits are closed: `V = δ x − γ ln x + β y − α ln y` is conserved
/// ([`LotkaVolterra::invariant`]), which makes long-time tests meaningful.
///
/// # References
///
/// A. J. Lotka, "Elements of physical biology", 1925; V. Volterra, "Variazioni e fluttuazioni
/// del numero d'individui in specie animali conviventi", 1926.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LotkaVolterra;

impl LotkaVolterra {
    /// The model (state `[x, y]`, parameters `[α, β, δ, γ]`).
    pub fn new() -> Self {
        Self
    }

    /// `[α, β, δ, γ] = [1.5, 1.0, 3.0, 1.0]`: the standard set of the DifferentialEquations.jl
    /// and DiffEqFlux.jl tutorials (and many neural-ODE benchmarks built on them), so results can
    /// be compared with those peers. The coexistence equilibrium is `(γ/δ, α/β) = (1/3, 3/2)`.
    pub fn default_params() -> Vec<f64> {
        vec![1.5, 1.0, 3.0, 1.0]
    }

    /// `[x, y] = [1, 1]`, the initial state of the same tutorials: away from the equilibrium, on
    /// a periodic orbit with a sharp predator peak.
    pub fn default_u0() -> Vec<f64> {
        vec![1.0, 1.0]
    }

    /// The conserved quantity `V(x, y) = δ x − γ ln x + β y − α ln y` (for `x, y > 0`).
    pub fn invariant(p: &[f64], u: &[f64]) -> f64 {
        let (a, b, d, g) = (p[0], p[1], p[2], p[3]);
        d * u[0] - g * u[0].ln() + b * u[1] - a * u[1].ln()
    }
}

impl Rhs for LotkaVolterra {
    fn state_len(&self) -> usize {
        2
    }
    fn param_len(&self) -> usize {
        4
    }
    fn rhs(&mut self, _t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        let (x, y) = (u[0], u[1]);
        let (a, b, d, g) = (p[0], p[1], p[2], p[3]);
        f[0] = a * x - b * x * y;
        f[1] = d * x * y - g * y;
    }
}

impl RhsJvp for LotkaVolterra {
    fn jvp(&mut self, _t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        let (x, y) = (u[0], u[1]);
        let (a, b, d, g) = (p[0], p[1], p[2], p[3]);
        out[0] = (a - b * y) * v[0] - b * x * v[1];
        out[1] = d * y * v[0] + (d * x - g) * v[1];
    }
}

impl RhsVjp for LotkaVolterra {
    fn vjp(&mut self, _t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        let (x, y) = (u[0], u[1]);
        let (a, b, d, g) = (p[0], p[1], p[2], p[3]);
        gu[0] = (a - b * y) * w[0] + d * y * w[1];
        gu[1] = -b * x * w[0] + (d * x - g) * w[1];
        gp[0] = x * w[0];
        gp[1] = -x * y * w[0];
        gp[2] = x * y * w[1];
        gp[3] = -y * w[1];
    }
}

// ---------------------------------------------------------------------------------------------
// Van der Pol
// ---------------------------------------------------------------------------------------------

/// The Van der Pol oscillator, θ = `[μ]`:
///
/// ```text
/// x' = y
/// y' = μ (1 − x²) y − x
/// ```
///
/// Jacobian `[[0, 1], [−2 μ x y − 1, μ (1 − x²)]]`; `∂f/∂μ = (0, (1 − x²) y)`. Every
/// trajectory approaches a limit cycle; for large `μ` the problem becomes stiff.
///
/// # References
///
/// B. van der Pol, "On relaxation-oscillations", Philosophical Magazine 2(11), 1926;
/// E. Hairer and G. Wanner, "Solving Ordinary Differential Equations II", §IV.1, Springer 1996.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VanDerPol;

impl VanDerPol {
    /// The model (state `[x, y]`, parameters `[μ]`).
    pub fn new() -> Self {
        Self
    }

    /// `[μ] = [2]`: a visibly nonlinear limit cycle that explicit methods still integrate
    /// comfortably (not stiff).
    pub fn default_params() -> Vec<f64> {
        vec![2.0]
    }

    /// `[x, y] = [2, 0]`, close to the limit cycle.
    pub fn default_u0() -> Vec<f64> {
        vec![2.0, 0.0]
    }

    /// `[μ] = [10]`: a relaxation oscillation, slow drifts along the branches `|x| > 1` and
    /// fast jumps between them, period `T ≈ (3 − 2 ln 2) μ + 7.014 μ^(−1/3) ≈ 19.4`
    /// (Hairer–Wanner II, §IV.1 and Exercise IV.1.3 give the asymptotic period). On the slow
    /// branches the Jacobian's eigenvalue `≈ μ (1 − x²)` reaches about −30, so explicit
    /// methods work at loose tolerances but their step sizes start to feel the stability
    /// bound: mildly stiff.
    pub fn relaxation_params() -> Vec<f64> {
        vec![10.0]
    }
}

impl Rhs for VanDerPol {
    fn state_len(&self) -> usize {
        2
    }
    fn param_len(&self) -> usize {
        1
    }
    fn rhs(&mut self, _t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        let (x, y) = (u[0], u[1]);
        f[0] = y;
        f[1] = p[0] * (1.0 - x * x) * y - x;
    }
}

impl RhsJvp for VanDerPol {
    fn jvp(&mut self, _t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        let (x, y, mu) = (u[0], u[1], p[0]);
        out[0] = v[1];
        out[1] = (-2.0 * mu * x * y - 1.0) * v[0] + mu * (1.0 - x * x) * v[1];
    }
}

impl RhsVjp for VanDerPol {
    fn vjp(&mut self, _t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        let (x, y, mu) = (u[0], u[1], p[0]);
        gu[0] = (-2.0 * mu * x * y - 1.0) * w[1];
        gu[1] = w[0] + mu * (1.0 - x * x) * w[1];
        gp[0] = (1.0 - x * x) * y * w[1];
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Derivative checks shared by every problem (and usable by other tests in the crate).
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub(crate) fn random_vec(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| rng.random_range(-scale..scale)).collect()
    }

    pub(crate) fn ip(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    pub(crate) fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        let diff = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
        let norm = a.iter().map(|x| x * x).sum::<f64>();
        diff.sqrt() / norm.sqrt().max(1e-300)
    }

    /// The three derivative checks of the brief at `(u, p)`, with random directions from `seed`:
    /// JVP vs central differences, the dot-product test, and `f_θᵀ w` vs central differences of
    /// `⟨f(θ), w⟩` componentwise. Returns the three relative errors.
    pub(crate) fn check_derivatives<M: RhsJvp + RhsVjp>(
        m: &mut M,
        u: &[f64],
        p: &[f64],
        seed: u64,
    ) -> [f64; 3] {
        let (n, np) = (m.state_len(), m.param_len());
        assert_eq!((u.len(), p.len()), (n, np));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let v = random_vec(&mut rng, n, 1.0);
        let w = random_vec(&mut rng, n, 1.0);
        let eps = 1e-6;
        let (mut fp, mut fm) = (vec![0.0; n], vec![0.0; n]);

        let mut jv = vec![0.0; n];
        m.jvp(0.0, u, p, &v, &mut jv);
        let up: Vec<f64> = u.iter().zip(&v).map(|(a, b)| a + eps * b).collect();
        let um: Vec<f64> = u.iter().zip(&v).map(|(a, b)| a - eps * b).collect();
        m.rhs(0.0, &up, p, &mut fp);
        m.rhs(0.0, &um, p, &mut fm);
        let fd: Vec<f64> = fp
            .iter()
            .zip(&fm)
            .map(|(a, b)| (a - b) / (2.0 * eps))
            .collect();
        let e_jvp = rel_err(&jv, &fd);

        let (mut gu, mut gp) = (vec![f64::NAN; n], vec![f64::NAN; np]);
        m.vjp(0.0, u, p, &w, &mut gu, &mut gp);
        let (lhs, rhs) = (ip(&jv, &w), ip(&v, &gu));
        let e_dot = (lhs - rhs).abs() / lhs.abs().max(rhs.abs());

        let mut fd_p = vec![0.0; np];
        let mut q = p.to_vec();
        for i in 0..np {
            let h = eps * p[i].abs().max(1.0);
            q[i] = p[i] + h;
            m.rhs(0.0, u, &q, &mut fp);
            q[i] = p[i] - h;
            m.rhs(0.0, u, &q, &mut fm);
            q[i] = p[i];
            fd_p[i] = (ip(&fp, &w) - ip(&fm, &w)) / (2.0 * h);
        }
        let e_p = rel_err(&gp, &fd_p);
        [e_jvp, e_dot, e_p]
    }

    pub(crate) fn assert_derivatives<M: RhsJvp + RhsVjp>(m: &mut M, u: &[f64], p: &[f64]) {
        for seed in 0..3 {
            let [e_jvp, e_dot, e_p] = check_derivatives(m, u, p, seed);
            assert!(e_jvp <= 1e-7, "JVP vs finite differences: {e_jvp:e}");
            assert!(e_dot <= 1e-12, "dot-product test: {e_dot:e}");
            assert!(e_p <= 1e-7, "parameter VJP vs finite differences: {e_p:e}");
        }
    }

    #[test]
    fn linear_system_derivatives() {
        let mut m = LinearSystem::new(3);
        assert_eq!((m.state_len(), m.param_len(), m.dim()), (3, 9, 3));
        assert_derivatives(
            &mut m,
            &LinearSystem::example_u0(),
            &LinearSystem::example_matrix(),
        );
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (a, u) = (random_vec(&mut rng, 25, 2.0), random_vec(&mut rng, 5, 2.0));
        assert_derivatives(&mut LinearSystem::new(5), &u, &a);
    }

    #[test]
    fn linear_system_rhs_and_vjp_values() {
        let mut m = LinearSystem::new(2);
        let a = [1.0, 2.0, 3.0, 4.0];
        let mut f = [0.0; 2];
        m.rhs(0.0, &[1.0, -1.0], &a, &mut f);
        assert_eq!(f, [-1.0, -1.0]);
        let (mut gu, mut gp) = ([0.0; 2], [0.0; 4]);
        m.vjp(0.0, &[1.0, -1.0], &a, &[2.0, 0.5], &mut gu, &mut gp);
        assert_eq!(gu, [3.5, 6.0]);
        assert_eq!(gp, [2.0, -2.0, 0.5, -0.5]);
    }

    #[test]
    fn exact_solution_rotation_decay() {
        let (a, b) = (0.3, 2.0);
        let mat = [-a, -b, b, -a];
        let u0 = [0.7, -1.3];
        for t in [0.1, 1.0, 2.5, 7.0] {
            let u = LinearSystem::exact_solution(&mat, t, &u0).unwrap();
            let (c, s, e) = ((b * t).cos(), (b * t).sin(), (-a * t).exp());
            let want = [e * (c * u0[0] - s * u0[1]), e * (s * u0[0] + c * u0[1])];
            let err = rel_err(&want, &u);
            assert!(err <= 1e-14, "t = {t}: relative error {err:e}");
        }
    }

    #[test]
    fn expm_identity_and_diagonal() {
        let a = LinearSystem::example_matrix();
        let u0 = LinearSystem::example_u0();
        assert_eq!(LinearSystem::exact_solution(&a, 0.0, &u0).unwrap(), u0);
        assert_eq!(
            expm(&[0.0; 9], 3).unwrap(),
            [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        );
        let e = expm(&[1.0, 0.0, 0.0, -3.0], 2).unwrap();
        assert!((e[0] - 1f64.exp()).abs() <= 1e-15 * 1f64.exp());
        assert!((e[3] - (-3f64).exp()).abs() <= 1e-15 * (-3f64).exp());
        assert_eq!((e[1], e[2]), (0.0, 0.0));
        assert!(expm(&[], 0).unwrap().is_empty());
    }

    #[test]
    fn exact_solution_semigroup_and_derivative() {
        let a = LinearSystem::example_matrix();
        let u0 = LinearSystem::example_u0();
        let (t, s) = (1.7, 2.9);
        let us = LinearSystem::exact_solution(&a, s, &u0).unwrap();
        let u_ts = LinearSystem::exact_solution(&a, t, &us).unwrap();
        let u_sum = LinearSystem::exact_solution(&a, t + s, &u0).unwrap();
        assert!(
            rel_err(&u_sum, &u_ts) <= 1e-14,
            "{:e}",
            rel_err(&u_sum, &u_ts)
        );
        // d/dt exp(At) u0 = A exp(At) u0, by a fourth-order central difference.
        let h = 1e-3;
        let at = |t: f64| LinearSystem::exact_solution(&a, t, &u0).unwrap();
        let (p1, m1, p2, m2) = (at(t + h), at(t - h), at(t + 2.0 * h), at(t - 2.0 * h));
        let du: Vec<f64> = (0..3)
            .map(|i| (8.0 * (p1[i] - m1[i]) - (p2[i] - m2[i])) / (12.0 * h))
            .collect();
        let mut f = vec![0.0; 3];
        LinearSystem::new(3).rhs(t, &at(t), &a, &mut f);
        assert!(rel_err(&f, &du) <= 1e-10, "{:e}", rel_err(&f, &du));
    }

    #[test]
    fn exact_solution_errors() {
        let e = LinearSystem::exact_solution(&[1.0; 3], 1.0, &[1.0, 2.0]).unwrap_err();
        assert_eq!(
            e,
            Error::LengthMismatch {
                what: "matrix",
                expected: 4,
                found: 3
            }
        );
        let bad = LinearSystem::exact_solution(&[f64::NAN, 0.0, 0.0, 1.0], 1.0, &[1.0, 2.0]);
        assert!(matches!(bad, Err(Error::InvalidConfig(_))));
        let bad_t = LinearSystem::exact_solution(&[1.0, 0.0, 0.0, 1.0], f64::INFINITY, &[1.0, 2.0]);
        assert!(matches!(bad_t, Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn lotka_volterra_derivatives_and_invariant() {
        let mut m = LotkaVolterra::new();
        let (p, u0) = (LotkaVolterra::default_params(), LotkaVolterra::default_u0());
        let mut f = [0.0; 2];
        m.rhs(0.0, &u0, &p, &mut f);
        assert_eq!(f, [0.5, 2.0]);
        assert_derivatives(&mut m, &u0, &p);
        assert_derivatives(&mut m, &[0.4, 2.3], &[1.1, 0.7, 2.2, 0.9]);
        // ∇V · f = 0: V is conserved along trajectories.
        let u = [0.8, 1.9];
        m.rhs(0.0, &u, &p, &mut f);
        let grad_v = [p[2] - p[3] / u[0], p[1] - p[0] / u[1]];
        assert!(ip(&grad_v, &f).abs() <= 1e-15);
        let v0 = LotkaVolterra::invariant(&p, &u0);
        assert!((v0 - 4.0).abs() <= 1e-15, "V(1, 1) = δ + β = 4, got {v0}");
    }

    #[test]
    fn van_der_pol_derivatives() {
        let mut m = VanDerPol::new();
        let (p, u0) = (VanDerPol::default_params(), VanDerPol::default_u0());
        let mut f = [0.0; 2];
        m.rhs(0.0, &u0, &p, &mut f);
        assert_eq!(f, [0.0, -2.0]);
        assert_derivatives(&mut m, &u0, &p);
        assert_derivatives(&mut m, &[-0.7, 1.4], &[5.0]);
        assert_derivatives(&mut m, &u0, &VanDerPol::relaxation_params());
    }
}
