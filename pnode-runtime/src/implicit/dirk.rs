//! Diagonally implicit Runge–Kutta methods (SDIRK, ESDIRK) and their discrete adjoints.
//!
//! Forward (Hairer & Wanner II, §IV.6), stage by stage:
//!
//! ```text
//! Y_i − h a_ii f(t_n + c_i h, Y_i) = u_n + h Σ_{j<i} a_ij K_j,   K_i = f(t_n + c_i h, Y_i),
//! u_{n+1} = u_n + h Σ_i b_i K_i,
//! ```
//!
//! each implicit stage solved by Newton; a stage with `a_ii = 0` is explicit. Reverse, for
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
//!   BIT 44 (2004) — the ESDIRK3 used here.

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
        })
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
        .expect("built-in tableau is valid")
    }

    /// The built-ins: sdirk2, trbdf2, esdirk3.
    pub fn all() -> Vec<Self> {
        vec![Self::sdirk2(), Self::trbdf2(), Self::esdirk3()]
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
            let y = &mut stages[(i + 1) * n..(i + 2) * n];
            if a_ii == 0.0 {
                y.copy_from_slice(&self.rhs_const);
                model
                    .try_rhs(t_i, y, p, &mut self.k[i * n..(i + 1) * n])
                    .map_err(|e| Error::model(at.index, t_i, phase, Eval::Rhs, e))?;
                stats.rhs_evals += 1;
            } else {
                y.copy_from_slice(u);
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
