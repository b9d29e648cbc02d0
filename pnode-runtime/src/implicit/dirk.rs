//! Diagonally implicit Runge–Kutta methods (SDIRK, ESDIRK) and their discrete adjoints.
//!
//! Forward (Hairer & Wanner II, §IV.6), stage by stage:
//!
//! ```text
//! Y_i − h a_ii f(t_n + c_i h, Y_i) = u_n + h Σ_{j<i} a_ij K_j,   K_i = f(t_n + c_i h, Y_i),
//! u_{n+1} = u_n + h Σ_i b_i K_i,
//! ```
//!
//! each implicit stage solved by Newton from the previous stage's converged value (`u_n` for
//! the first stage: a predictor that depends on `(t_n, h, u_n)` only, so a recomputation
//! reproduces the step bit for bit); a stage with `a_ii = 0` is explicit. Tableaux may carry
//! embedded weights `b̂` ([`DirkTableau::with_embedded`]) for adaptive stepping
//! ([`crate::adaptive::EmbeddedDirk`]). Reverse, for
//! `i = s … 1` (the exact derivative at the converged stages):
//!
//! ```text
//! (I − h a_ii f_u(Y_i))ᵀ w_i = h (b_i λ_{n+1} + Σ_{j>i} a_ji ξ_j),
//! (ξ_i, g_i) = (f_u(Y_i)ᵀ w_i, f_θ(Y_i)ᵀ w_i),     λ_n = λ_{n+1} + Σ_i ξ_i,   μ += Σ_i g_i,
//! ```
//!
//! the explicit-RK adjoint of [`crate::erk`] with one transposed linear solve per implicit
//! stage. Every stage's VJP is taken at its own point with its own cotangent. A step's stage
//! values are `[u_n, Y_1, …, Y_s]`.
//!
//! # References
//! * E. Hairer, G. Wanner, *Solving ODEs II*, 2nd ed., Springer 1996, §IV.6.
//! * R. Alexander, "Diagonally implicit Runge–Kutta methods for stiff ODEs", SIAM J. Numer.
//!   Anal. 14 (1977) — SDIRK2 with γ = 1 − 1/√2.
//! * M. E. Hosea, L. F. Shampine, "Analysis and implementation of TR-BDF2", Appl. Numer. Math.
//!   20 (1996).
//! * A. Kværnø, "Singly diagonally implicit Runge–Kutta methods with an explicit first stage",
//!   BIT 44 (2004) 489–502 — ESDIRK3 with its 3(2) pair, and the 5(4) pair `kvaerno5`.

use pnode_checkpoint::{Stats, StepCost};

use super::newton::{Newton, NewtonConfig};
use crate::erk::{add_stage_adjoints, rk_combination, stage_cotangent, stage_vjp};
use crate::error::{Error, Phase, Result};
use crate::model::{Eval, RhsJvp, RhsVjp};
use crate::stepper::{AdjointStepper, ForwardStepper, StepAt};
use crate::tableau::{OrderCondition, order_residuals};

/// A validated DIRK tableau: `A` lower triangular (diagonal included), `c_i = Σ_j a_ij`.
#[derive(Debug, Clone, PartialEq)]
pub struct DirkTableau {
    name: String,
    s: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    order: u32,
    /// Embedded weights `b̂` and their order, for error estimation ([`DirkTableau::with_embedded`]).
    embedded: Option<(Vec<f64>, u32)>,
}

impl DirkTableau {
    /// A user tableau from the rows of `A` (each of length `s`, upper part zero), `b`, `c` and
    /// its order. Errors name the offending entry.
    pub fn new(
        name: impl Into<String>,
        a: &[&[f64]],
        b: &[f64],
        c: &[f64],
        order: u32,
    ) -> Result<Self> {
        let name = name.into();
        let bad = |reason: String| Error::InvalidTableau {
            name: name.clone(),
            reason,
        };
        let s = a.len();
        if s == 0 {
            return Err(bad("a tableau needs at least one stage".into()));
        }
        if b.len() != s || c.len() != s {
            return Err(bad(format!(
                "A has {s} rows but b has {} and c has {} entries",
                b.len(),
                c.len()
            )));
        }
        if order == 0 {
            return Err(bad("the order must be at least 1".into()));
        }
        let mut flat = vec![0.0; s * s];
        for (i, row) in a.iter().enumerate() {
            if row.len() != s {
                return Err(bad(format!(
                    "row {i} of A has {} entries, not {s}",
                    row.len()
                )));
            }
            for (j, &v) in row.iter().enumerate() {
                if !v.is_finite() {
                    return Err(bad(format!("a[{i}][{j}] = {v} is not finite")));
                }
                if j > i && v != 0.0 {
                    return Err(bad(format!(
                        "a[{i}][{j}] = {v} is above the diagonal: a DIRK's A is lower triangular"
                    )));
                }
                if j == i && v < 0.0 {
                    return Err(bad(format!(
                        "a[{i}][{i}] = {v} is a negative diagonal entry"
                    )));
                }
                flat[i * s + j] = v;
            }
            let sum: f64 = row.iter().sum();
            if !(c[i].is_finite() && (sum - c[i]).abs() <= 1e-13 * c[i].abs().max(1.0)) {
                return Err(bad(format!("c[{i}] = {} but Σ_j a[{i}][j] = {sum}", c[i])));
            }
        }
        if let Some((i, v)) = b.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bad(format!("b[{i}] = {v} is not finite")));
        }
        let total: f64 = b.iter().sum();
        if (total - 1.0).abs() > 1e-13 {
            return Err(bad(format!(
                "Σ b = {total}, not 1 (the method is inconsistent)"
            )));
        }
        Ok(Self {
            name,
            s,
            a: flat,
            b: b.to_vec(),
            c: c.to_vec(),
            order,
            embedded: None,
        })
    }

    /// The tableau with embedded weights `b̂` of order `order` (less than the method's): the
    /// error estimate of a step is `e = h Σ_i (b_i − b̂_i) K_i = u_{n+1} − û_{n+1}`, of size
    /// `O(h^{order+1})` (Hairer & Wanner II, §IV.8). Errors name the offending entry.
    pub fn with_embedded(mut self, b_hat: &[f64], order: u32) -> Result<Self> {
        let bad = |reason: String| Error::InvalidTableau {
            name: self.name.clone(),
            reason,
        };
        if b_hat.len() != self.s {
            return Err(bad(format!(
                "b̂ has {} entries for {} stages",
                b_hat.len(),
                self.s
            )));
        }
        if let Some((i, v)) = b_hat.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bad(format!("b̂[{i}] = {v} is not finite")));
        }
        let total: f64 = b_hat.iter().sum();
        if (total - 1.0).abs() > 1e-13 {
            return Err(bad(format!(
                "Σ b̂ = {total}, not 1 (the embedded method is inconsistent)"
            )));
        }
        if order == 0 || order >= self.order {
            return Err(bad(format!(
                "the embedded order {order} must be at least 1 and below the method's {}",
                self.order
            )));
        }
        if b_hat == self.b.as_slice() {
            return Err(bad("b̂ equals b: the error estimate would vanish".into()));
        }
        self.embedded = Some((b_hat.to_vec(), order));
        Ok(self)
    }

    /// The θ-method as a two-stage ESDIRK: `A = [[0, 0], [1−θ, θ]]`, `b = [1−θ, θ]`.
    pub fn theta(theta: f64) -> Result<Self> {
        let order = if theta == 0.5 { 2 } else { 1 };
        Self::new(
            format!("theta({theta})"),
            &[&[0.0, 0.0], &[1.0 - theta, theta]],
            &[1.0 - theta, theta],
            &[0.0, 1.0],
            order,
        )
    }

    /// SDIRK2 (Alexander 1977): L-stable, order 2, `γ = 1 − 1/√2`,
    /// `A = [[γ, 0], [1−γ, γ]]`, `b = [1−γ, γ]`, `c = [γ, 1]`.
    pub fn sdirk2() -> Self {
        let g = 1.0 - std::f64::consts::FRAC_1_SQRT_2;
        Self::new(
            "sdirk2",
            &[&[g, 0.0], &[1.0 - g, g]],
            &[1.0 - g, g],
            &[g, 1.0],
            2,
        )
        .expect("built-in tableau is valid")
    }

    /// TR-BDF2 as an ESDIRK (Hosea & Shampine 1996): `γ = 2 − √2`, `d = γ/2`,
    /// `w = √2/4`, `A = [[0,0,0], [d, d, 0], [w, w, d]]`, `b = [w, w, d]`, `c = [0, γ, 1]`;
    /// L-stable, order 2.
    pub fn trbdf2() -> Self {
        let g = 2.0 - std::f64::consts::SQRT_2;
        let d = g / 2.0;
        let w = std::f64::consts::SQRT_2 / 4.0;
        Self::new(
            "trbdf2",
            &[&[0.0, 0.0, 0.0], &[d, d, 0.0], &[w, w, d]],
            &[w, w, d],
            &[0.0, g, 1.0],
            2,
        )
        .expect("built-in tableau is valid")
    }

    /// Kværnø's ESDIRK3 (4 stages, stiffly accurate, L-stable, order 3): `γ ≈ 0.4358665215`
    /// is the root in (0, 1) of `6γ³ − 18γ² + 9γ − 1 = 0`, and
    /// `a31 = (−4γ² + 6γ − 1)/(4γ)`, `a32 = (1 − 2γ)/(4γ)`, `a41 = (6γ − 1)/(12γ)`,
    /// `a42 = −1/((24γ − 12)γ)`, `a43 = (−6γ² + 6γ − 1)/(6γ − 3)`, `b` = last row.
    ///
    /// Embedded weights of order 2: `b̂ = (a31, a32, γ, 0)`, the third row — the stage
    /// `Y_3` at `c_3 = 1` is itself a stiffly accurate, L-stable second-order solution
    /// (`Σ b̂ = c_3 = 1`, `Σ b̂_i c_i = 2γ a32 + γ = 1/2`), so `e = u_{n+1} − Y_3` (Kværnø 2004,
    /// the 3(2) pair).
    pub fn esdirk3() -> Self {
        // Newton on the cubic from γ = 0.4358665: converges to the L-stability root.
        let mut g: f64 = 0.435_866_5;
        for _ in 0..8 {
            let p = ((6.0 * g - 18.0) * g + 9.0) * g - 1.0;
            let dp = (18.0 * g - 36.0) * g + 9.0;
            g -= p / dp;
        }
        let a31 = (-4.0 * g * g + 6.0 * g - 1.0) / (4.0 * g);
        let a32 = (1.0 - 2.0 * g) / (4.0 * g);
        let a41 = (6.0 * g - 1.0) / (12.0 * g);
        let a42 = -1.0 / ((24.0 * g - 12.0) * g);
        let a43 = (-6.0 * g * g + 6.0 * g - 1.0) / (6.0 * g - 3.0);
        let c3 = a31 + a32 + g;
        Self::new(
            "esdirk3",
            &[
                &[0.0, 0.0, 0.0, 0.0],
                &[g, g, 0.0, 0.0],
                &[a31, a32, g, 0.0],
                &[a41, a42, a43, g],
            ],
            &[a41, a42, a43, g],
            &[0.0, 2.0 * g, c3, a41 + a42 + a43 + g],
            3,
        )
        .and_then(|t| t.with_embedded(&[a31, a32, g, 0.0], 2))
        .expect("built-in tableau is valid")
    }

    /// Kværnø's ESDIRK 5(4) (7 stages, `γ = 0.26`, Kværnø 2004, the 5/4 method):
    /// stiffly accurate and L-stable, order 5 with `b` the last row of `A`, and an embedded
    /// order-4 solution that is the sixth stage (`b̂` = the sixth row, `c_6 = c_7 = 1`, also
    /// stiffly accurate and L-stable), so `e = u_{n+1} − Y_6`. The coefficients are the
    /// paper's, to 17 digits; `order_condition_residuals(5)` and
    /// `embedded_order_condition_residuals(4)` vanish to round-off (tested).
    ///
    /// ```text
    /// c     | A
    /// 0     | 0
    /// 0.52  | γ                    γ
    /// 1.23… | 0.13                 0.84033320996790809  γ
    /// 0.89… | 0.22371961478320505  0.47675532319799699 −0.06470895363112615  γ
    /// 0.43… | 0.16648564323248321  0.10450018841591720  0.03631482272098715 −0.13090704451073998  γ
    /// 1     | 0.13855640231268224  0                   −0.04245337201752043  0.02446657898003141
    ///       |   0.61943039072480676  γ
    /// 1     | 0.13659751177640291  0                   −0.05496908796538376 −0.04118626728321046
    ///       |   0.62993304899016403  0.06962479448202728  γ
    /// ```
    // The paper's 17 digits, kept as published.
    #[allow(clippy::excessive_precision)]
    pub fn kvaerno5() -> Self {
        let g = 0.26;
        let rows: [[f64; 7]; 7] = [
            [0.0; 7],
            [g, g, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.13, 0.840_333_209_967_908_09, g, 0.0, 0.0, 0.0, 0.0],
            [
                0.223_719_614_783_205_05,
                0.476_755_323_197_996_99,
                -0.064_708_953_631_126_15,
                g,
                0.0,
                0.0,
                0.0,
            ],
            [
                0.166_485_643_232_483_21,
                0.104_500_188_415_917_2,
                0.036_314_822_720_987_15,
                -0.130_907_044_510_739_98,
                g,
                0.0,
                0.0,
            ],
            [
                0.138_556_402_312_682_24,
                0.0,
                -0.042_453_372_017_520_43,
                0.024_466_578_980_031_41,
                0.619_430_390_724_806_76,
                g,
                0.0,
            ],
            [
                0.136_597_511_776_402_91,
                0.0,
                -0.054_969_087_965_383_76,
                -0.041_186_267_283_210_46,
                0.629_933_048_990_164_03,
                0.069_624_794_482_027_28,
                g,
            ],
        ];
        let mut c: Vec<f64> = rows.iter().map(|r| r.iter().sum()).collect();
        // The last two stages sit exactly at t_n + h.
        c[5] = 1.0;
        c[6] = 1.0;
        let a: Vec<&[f64]> = rows.iter().map(|r| r.as_slice()).collect();
        Self::new("kvaerno5", &a, &rows[6], &c, 5)
            .and_then(|t| t.with_embedded(&rows[5], 4))
            .expect("built-in tableau is valid")
    }

    /// The built-ins: sdirk2, trbdf2, esdirk3, kvaerno5.
    pub fn all() -> Vec<Self> {
        vec![
            Self::sdirk2(),
            Self::trbdf2(),
            Self::esdirk3(),
            Self::kvaerno5(),
        ]
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of stages `s`.
    pub fn stages(&self) -> usize {
        self.s
    }

    /// Coefficient `a_ij`.
    pub fn a(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.s + j]
    }

    /// Weights `b`.
    pub fn b(&self) -> &[f64] {
        &self.b
    }

    /// Nodes `c`.
    pub fn c(&self) -> &[f64] {
        &self.c
    }

    /// Classical order.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Order-condition residuals of `b` up to `max_order` (rooted trees; see
    /// [`crate::Tableau::order_condition_residuals`]).
    pub fn order_condition_residuals(&self, max_order: u32) -> Vec<OrderCondition> {
        order_residuals(&self.a, self.s, &self.b, max_order)
    }

    /// Embedded weights `b̂`, if the tableau has an error estimate.
    pub fn b_embedded(&self) -> Option<&[f64]> {
        self.embedded.as_ref().map(|(b, _)| b.as_slice())
    }

    /// Order of the embedded weights, if any.
    pub fn embedded_order(&self) -> Option<u32> {
        self.embedded.as_ref().map(|&(_, q)| q)
    }

    /// Order-condition residuals of `b̂` up to `max_order` (empty without embedded weights).
    pub fn embedded_order_condition_residuals(&self, max_order: u32) -> Vec<OrderCondition> {
        match &self.embedded {
            Some((b_hat, _)) => order_residuals(&self.a, self.s, b_hat, max_order),
            None => Vec::new(),
        }
    }
}

/// A DIRK stepper with a Newton stage solver and preallocated buffers.
#[derive(Debug, Clone)]
pub struct DirkStepper {
    tableau: DirkTableau,
    n: usize,
    newton: Newton,
    k: Vec<f64>,
    rhs_const: Vec<f64>,
    xi: Vec<f64>,
    w: Vec<f64>,
    gp: Vec<f64>,
    scratch_stages: Vec<f64>,
}

impl DirkStepper {
    /// A stepper for `tableau`, `state_len` states and `param_len` parameters.
    pub fn new(
        tableau: DirkTableau,
        state_len: usize,
        param_len: usize,
        newton: NewtonConfig,
    ) -> Result<Self> {
        super::theta::check_newton(&newton)?;
        let s = tableau.s;
        Ok(Self {
            tableau,
            n: state_len,
            newton: Newton::new(newton, state_len, param_len),
            k: vec![0.0; s * state_len],
            rhs_const: vec![0.0; state_len],
            xi: vec![0.0; s * state_len],
            w: vec![0.0; state_len],
            gp: vec![0.0; param_len],
            scratch_stages: vec![0.0; (s + 1) * state_len],
        })
    }

    /// Precondition the GMRES solves of this stepper (forward and adjoint).
    pub fn with_preconditioner(mut self, preconditioner: super::Preconditioner) -> Self {
        self.newton.preconditioner = Some(preconditioner);
        self
    }

    /// The tableau.
    pub fn tableau(&self) -> &DirkTableau {
        &self.tableau
    }

    /// Length of the state.
    pub fn state_len(&self) -> usize {
        self.n
    }

    /// The stage derivatives `K_i = f(t_n + c_i h, Y_i)` of the last step or recomputation
    /// (`s × n`), for an embedded error estimate.
    pub(crate) fn stage_derivatives(&self) -> &[f64] {
        &self.k
    }

    /// All stages from `u`; stage inputs go to `stages[(i+1)·n ..]`, `u` to `stages[..n]`. A
    /// model failure is reported as part of `phase`.
    #[allow(clippy::too_many_arguments)]
    fn run_stages<M: RhsJvp + ?Sized>(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        stages: &mut [f64],
        phase: Phase,
        stats: &mut Stats,
    ) -> Result<()> {
        let (n, s) = (self.n, self.tableau.s);
        stages[..n].copy_from_slice(u);
        for i in 0..s {
            // rhs_const = u + h Σ_{j<i} a_ij K_j
            let a_row = &self.tableau.a[i * s..i * s + i];
            rk_combination(u, at.h, a_row, &self.k, &mut self.rhs_const);
            let t_i = at.t + self.tableau.c[i] * at.h;
            let a_ii = self.tableau.a(i, i);
            let (done, rest) = stages.split_at_mut((i + 1) * n);
            let y = &mut rest[..n];
            if a_ii == 0.0 {
                y.copy_from_slice(&self.rhs_const);
                model
                    .try_rhs(t_i, y, p, &mut self.k[i * n..(i + 1) * n])
                    .map_err(|e| Error::model(at.index, t_i, phase, Eval::Rhs, e))?;
                stats.rhs_evals += 1;
            } else {
                // Predictor: Newton's converged iterate of the previous stage (`u_n` for the
                // first). A function of `(t_n, h, u_n)` only, so the reverse sweep's
                // recomputation and an adaptive trial step start Newton from bitwise the
                // same guess as this step did.
                y.copy_from_slice(&done[i * n..]);
                self.newton
                    .solve(model, t_i, at.h * a_ii, &self.rhs_const, p, y, stats)
                    .map_err(|e| e.into_error(at.index, t_i, phase, &format!("stage {i}")))?;
                self.k[i * n..(i + 1) * n].copy_from_slice(self.newton.last_f());
            }
        }
        Ok(())
    }
}

impl<M: RhsJvp + ?Sized> ForwardStepper<M> for DirkStepper {
    fn cost(&self) -> StepCost {
        StepCost {
            rhs_per_step: 0,
            rhs_per_stage_recompute: 0,
            vjp_per_reverse: 0,
            stage_vectors: self.tableau.s as u64 + 1,
        }
    }

    fn stage_vectors(&self) -> usize {
        self.tableau.s + 1
    }

    fn step(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        u_next: &mut [f64],
        stages: Option<&mut [f64]>,
        stats: &mut Stats,
    ) -> Result<()> {
        // Stage values go to the caller's slot, or to scratch when they are not kept.
        let mut scratch = std::mem::take(&mut self.scratch_stages);
        let result = match stages {
            Some(st) => self.run_stages(model, at, p, u, st, Phase::Forward, stats),
            None => self.run_stages(model, at, p, u, &mut scratch, Phase::Forward, stats),
        };
        self.scratch_stages = scratch;
        result?;
        rk_combination(u, at.h, &self.tableau.b, &self.k, u_next);
        Ok(())
    }

    fn recompute_stages(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        stages: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()> {
        self.run_stages(model, at, p, u, stages, Phase::Recompute, stats)
    }
}

impl<M: RhsJvp + RhsVjp + ?Sized> AdjointStepper<M> for DirkStepper {
    fn reverse(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        stages: &[f64],
        lambda: &mut [f64],
        mu: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()> {
        let (n, s) = (self.n, self.tableau.s);
        for i in (0..s).rev() {
            // r_i = h (b_i λ + Σ_{j>i} a_ji ξ_j)
            let tab = &self.tableau;
            stage_cotangent(
                i,
                at.h,
                tab.b[i],
                |j| tab.a(j, i),
                lambda,
                &self.xi,
                &mut self.w,
            );
            let t_i = at.t + self.tableau.c[i] * at.h;
            let y_i = &stages[(i + 1) * n..(i + 2) * n];
            let a_ii = self.tableau.a(i, i);
            if a_ii != 0.0 {
                // (I − h a_ii f_u(Y_i))ᵀ w_i = r_i
                self.newton
                    .solve_adjoint(model, t_i, at.h * a_ii, y_i, p, &mut self.w, stats)
                    .map_err(|e| e.into_adjoint_error(at.index, t_i, Some(i)))?;
            }
            let xi_i = &mut self.xi[i * n..(i + 1) * n];
            stage_vjp(
                model,
                at.index,
                t_i,
                y_i,
                p,
                &self.w,
                xi_i,
                &mut self.gp,
                mu,
                stats,
            )?;
        }
        add_stage_adjoints(lambda, &self.xi);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_tableaux_satisfy_their_order_conditions() {
        for t in DirkTableau::all()
            .into_iter()
            .chain([DirkTableau::theta(0.5).unwrap()])
        {
            let worst = t
                .order_condition_residuals(t.order())
                .iter()
                .map(|c| c.residual.abs())
                .fold(0.0, f64::max);
            assert!(worst <= 1e-14, "{}: residual {worst:e}", t.name());
            let next = t
                .order_condition_residuals(t.order() + 1)
                .iter()
                .filter(|c| c.order == t.order() + 1)
                .map(|c| c.residual.abs())
                .fold(0.0, f64::max);
            assert!(
                next > 1e-6,
                "{}: order {} conditions hold too",
                t.name(),
                t.order() + 1
            );
        }
    }

    /// `b̂` of every embedded pair satisfies the conditions of its order and fails the next
    /// (a typo in a coefficient breaks one or the other).
    #[test]
    fn embedded_weights_have_their_order() {
        let worst = |c: Vec<OrderCondition>, order: u32| {
            c.iter()
                .filter(|c| c.order == order)
                .map(|c| c.residual.abs())
                .fold(0.0, f64::max)
        };
        let mut pairs = 0;
        for t in DirkTableau::all() {
            let Some(q) = t.embedded_order() else {
                continue;
            };
            pairs += 1;
            for order in 1..=q {
                let r = worst(t.embedded_order_condition_residuals(q), order);
                assert!(r <= 1e-14, "{}: b̂ order {order} residual {r:e}", t.name());
            }
            let r = worst(t.embedded_order_condition_residuals(q + 1), q + 1);
            assert!(r > 1e-6, "{}: b̂ has order {} too", t.name(), q + 1);
            // Both kvaerno pairs are stiffly accurate: b = last row, b̂ = the row before.
            let s = t.stages();
            let b_hat = t.b_embedded().unwrap();
            for j in 0..s {
                assert_eq!(t.b()[j], t.a(s - 1, j), "{}", t.name());
            }
            let row = (0..s).find(|&i| (0..s).all(|j| b_hat[j] == t.a(i, j)));
            assert!(row.is_some(), "{}: b̂ is a stage", t.name());
        }
        assert_eq!(pairs, 2);
        assert_eq!(DirkTableau::esdirk3().embedded_order(), Some(2));
        assert_eq!(DirkTableau::kvaerno5().embedded_order(), Some(4));
        assert_eq!(DirkTableau::kvaerno5().order(), 5);
    }

    #[test]
    fn invalid_embedded_weights_are_errors() {
        let err = |b: &[f64], q| {
            DirkTableau::sdirk2()
                .with_embedded(b, q)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[1.0], 1).contains("b̂ has 1"));
        assert!(err(&[0.5, f64::NAN], 1).contains("not finite"));
        assert!(err(&[0.5, 0.6], 1).contains("inconsistent"));
        assert!(err(&[0.0, 1.0], 2).contains("embedded order 2"));
        let b = DirkTableau::sdirk2().b().to_vec();
        assert!(err(&b, 1).contains("equals b"));
    }

    #[test]
    fn invalid_dirk_tableaux_are_errors() {
        let err = |r: Result<DirkTableau>| r.unwrap_err().to_string();
        assert!(
            err(DirkTableau::new(
                "x",
                &[&[0.5, 0.1], &[0.5, 0.5]],
                &[0.5, 0.5],
                &[0.6, 1.0],
                1
            ))
            .contains("above the diagonal")
        );
        assert!(err(DirkTableau::new("x", &[&[0.5]], &[1.0], &[0.4], 1)).contains("c[0] = 0.4"));
        assert!(
            err(DirkTableau::new("x", &[&[-0.5]], &[1.0], &[-0.5], 1))
                .contains("negative diagonal")
        );
        assert!(err(DirkTableau::new("x", &[&[0.5]], &[0.9], &[0.5], 1)).contains("inconsistent"));
        assert!(
            err(DirkTableau::new("x", &[&[f64::NAN]], &[1.0], &[0.5], 1)).contains("not finite")
        );
        assert!(err(DirkTableau::new("x", &[&[0.5]], &[1.0, 0.0], &[0.5], 1)).contains("b has 2"));
    }
}
