//! Explicit Butcher tableaux as data.
//!
//! An explicit `s`-stage Runge–Kutta method for `du/dt = f(t, u)` is
//!
//! ```text
//! Y_i     = u_n + h Σ_{j<i} a_ij f(t_n + c_i h, Y_j)     i = 1..s
//! u_{n+1} = u_n + h Σ_i b_i f(t_n + c_i h, Y_i)
//! ```
//!
//! [`Tableau`] holds `(A, b, c)`, optionally embedded weights `b̂` for an error estimate, the
//! claimed orders, the FSAL flag and which stages are live. Every tableau, built-in or
//! user-supplied, goes through the same validation; failures are [`Error::InvalidTableau`] with
//! a reason that names the offending entry (indices are 0-based, as in [`Tableau::a`]).
//! [`Tableau::order_condition_residuals`] checks the Butcher order conditions for any weights.

use crate::error::{Error, Result};

/// Absolute-plus-relative tolerance for `c_i = Σ_j a_ij` and `Σ_i b_i = 1`.
const TOL: f64 = 1e-13;

/// Message for the built-in constructors; the unit tests prove every built-in validates.
const VALID: &str = "built-in tableau is valid";

/// A tableau's coefficients over its live stages only (see [`Tableau::live_coefficients`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCoefficients {
    /// `a[i][j]` for live stages `j < i`, row-major `s × s`.
    pub a: Vec<f64>,
    /// Weights of the live stages.
    pub b: Vec<f64>,
    /// Nodes of the live stages.
    pub c: Vec<f64>,
    /// Number of live stages.
    pub s: usize,
}

/// A validated explicit Butcher tableau.
///
/// `A` is strictly lower triangular (stored row-major, `s × s`), `c_i = Σ_j a_ij`, `Σ_i b_i = 1`
/// and all entries are finite. Build one with [`Tableau::explicit`] (plus
/// [`Tableau::with_embedded`] and [`Tableau::with_fsal`]) or take a built-in such as
/// [`Tableau::dopri5`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tableau {
    name: String,
    s: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    b_embedded: Option<Vec<f64>>,
    order: u32,
    embedded_order: Option<u32>,
    fsal: bool,
    live: Vec<bool>,
}

/// One order condition `Φ(t) = 1/γ(t)` evaluated for a set of weights.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderCondition {
    /// Order `|t|` of the rooted tree (its number of nodes).
    pub order: u32,
    /// The tree in bracket notation: `τ` is a single node, `[t_1 … t_m]` a root with subtrees.
    pub tree: String,
    /// `Φ(t) − 1/γ(t)`; zero (to round-off) when the condition holds.
    pub residual: f64,
}

/// Return `Err(Error::InvalidTableau)` from the enclosing function, the reason formatted.
macro_rules! bail {
    ($name:expr, $($reason:tt)+) => {
        return Err(Error::InvalidTableau { name: $name.to_string(), reason: format!($($reason)+) })
    };
}

fn close(x: f64, target: f64) -> bool {
    (x - target).abs() <= TOL * target.abs().max(1.0)
}

/// Check that `w` is a finite weight vector of length `s` summing to one.
fn check_weights(name: &str, what: &str, w: &[f64], s: usize) -> Result<()> {
    if w.len() != s {
        bail!(name, "{what} has {} entries, expected s = {s}", w.len());
    }
    if let Some(i) = w.iter().position(|x| !x.is_finite()) {
        bail!(name, "{what}[{i}] = {} is not finite", w[i]);
    }
    let sum: f64 = w.iter().sum();
    if !close(sum, 1.0) {
        bail!(name, "Σ {what}_i = {sum}, but consistency needs 1");
    }
    Ok(())
}

impl Tableau {
    /// A user-supplied explicit tableau, validated.
    ///
    /// `a` has `s >= 1` rows of length `s` (zeros on and above the diagonal), `b` and `c` have
    /// `s` entries, and `order >= 1` is the classical order of the weights `b`. The order is
    /// taken on trust; check it with [`Tableau::order_condition_residuals`].
    pub fn explicit(
        name: impl Into<String>,
        a: &[&[f64]],
        b: &[f64],
        c: &[f64],
        order: u32,
    ) -> Result<Tableau> {
        let name = name.into();
        let s = a.len();
        if s == 0 {
            bail!(name, "A has no rows; a tableau needs s >= 1 stages");
        }
        if let Some(i) = a.iter().position(|row| row.len() != s) {
            bail!(
                name,
                "row a[{i}] has {} entries, expected s = {s}",
                a[i].len()
            );
        }
        if c.len() != s {
            bail!(name, "c has {} entries, expected s = {s}", c.len());
        }
        for (i, row) in a.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                if !v.is_finite() {
                    bail!(name, "a[{i}][{j}] = {v} is not finite");
                }
                if j >= i && v != 0.0 {
                    bail!(name, "a[{i}][{j}] = {v} is on or above the diagonal of A");
                }
            }
        }
        if let Some(i) = c.iter().position(|x| !x.is_finite()) {
            bail!(name, "c[{i}] = {} is not finite", c[i]);
        }
        for (i, row) in a.iter().enumerate() {
            let sum: f64 = row.iter().sum();
            if !close(sum, c[i]) {
                bail!(
                    name,
                    "c[{i}] = {} but the row sum Σ_j a[{i}][j] = {sum}",
                    c[i]
                );
            }
        }
        check_weights(&name, "b", b, s)?;
        if order == 0 {
            bail!(name, "order must be >= 1");
        }
        let a: Vec<f64> = a.iter().flat_map(|row| row.iter().copied()).collect();
        let mut live = vec![false; s];
        for i in (0..s).rev() {
            live[i] = b[i] != 0.0 || (i + 1..s).any(|j| live[j] && a[j * s + i] != 0.0);
        }
        Ok(Tableau {
            name,
            s,
            a,
            b: b.to_vec(),
            c: c.to_vec(),
            b_embedded: None,
            order,
            embedded_order: None,
            fsal: false,
            live,
        })
    }

    /// Add embedded weights `b̂` (length `s`, finite, `Σ b̂_i = 1`) of order `embedded_order >= 1`
    /// for an error estimate `h Σ_i (b_i − b̂_i) k_i`.
    pub fn with_embedded(mut self, b_embedded: &[f64], embedded_order: u32) -> Result<Tableau> {
        check_weights(&self.name, "b_embedded", b_embedded, self.s)?;
        if embedded_order == 0 {
            bail!(self.name, "embedded order must be >= 1");
        }
        self.b_embedded = Some(b_embedded.to_vec());
        self.embedded_order = Some(embedded_order);
        Ok(self)
    }

    /// Mark the tableau first-same-as-last: the last stage is evaluated at `u_{n+1}` itself, so
    /// its `f` value is the first stage of the next step.
    ///
    /// Requires, exactly (bit for bit, so reusing the stage changes nothing), that the last row
    /// of `A` equals `b` (hence `b_s = 0`) and `c_s = 1`.
    pub fn with_fsal(mut self) -> Result<Tableau> {
        let (s, last, c_last) = (self.s, self.s - 1, self.c[self.s - 1]);
        if c_last != 1.0 {
            bail!(self.name, "FSAL needs c[{last}] = 1, found {c_last}");
        }
        if let Some(j) = (0..s).find(|&j| self.a[last * s + j] != self.b[j]) {
            let (a, b) = (self.a[last * s + j], self.b[j]);
            bail!(
                self.name,
                "FSAL needs row a[{last}] = b: a[{last}][{j}] = {a} ≠ b[{j}] = {b}"
            );
        }
        self.fsal = true;
        Ok(self)
    }

    /// The tableau's name (`"dopri5"` for the built-in Dormand–Prince method).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of stages `s`.
    pub fn stages(&self) -> usize {
        self.s
    }

    /// Coefficient `a_ij` (0-based; zero for `j >= i`).
    ///
    /// # Panics
    ///
    /// If `i >= s` or `j >= s` (a caller bug, not bad user input).
    pub fn a(&self, i: usize, j: usize) -> f64 {
        let s = self.s;
        assert!(i < s && j < s, "a({i}, {j}) out of range for s = {s}");
        self.a[i * self.s + j]
    }

    /// Solution weights `b`.
    pub fn b(&self) -> &[f64] {
        &self.b
    }

    /// Nodes `c` (`c_i = Σ_j a_ij`).
    pub fn c(&self) -> &[f64] {
        &self.c
    }

    /// Embedded weights `b̂`, if any.
    pub fn b_embedded(&self) -> Option<&[f64]> {
        self.b_embedded.as_deref()
    }

    /// Classical order of the solution weights `b`.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Classical order of the embedded weights, if any.
    pub fn embedded_order(&self) -> Option<u32> {
        self.embedded_order
    }

    /// Whether the tableau is first-same-as-last (see [`Tableau::with_fsal`]).
    pub fn is_fsal(&self) -> bool {
        self.fsal
    }

    /// Whether stage `i` influences `u_{n+1}`: `b_i != 0`, or `a_ji != 0` for some live `j > i`.
    ///
    /// Dead stages (the FSAL stage of dopri5, tsit5 and bosh3, which has `b_s = 0`) need not be
    /// computed at fixed steps. Out-of-range `i` is not live.
    pub fn is_live(&self, i: usize) -> bool {
        self.live.get(i).copied().unwrap_or(false)
    }

    /// Number of live stages (see [`Tableau::is_live`]).
    pub fn live_stages(&self) -> usize {
        self.live.iter().filter(|&&l| l).count()
    }

    /// The coefficients restricted to the live stages, in order: what a fixed-step ERK step
    /// computes (dead stages dropped, `a` re-indexed).
    pub fn live_coefficients(&self) -> LiveCoefficients {
        let live: Vec<usize> = (0..self.stages()).filter(|&i| self.is_live(i)).collect();
        let s = live.len();
        let mut a = vec![0.0; s * s];
        for (li, &i) in live.iter().enumerate() {
            for (lj, &j) in live.iter().enumerate().take(li) {
                a[li * s + lj] = self.a(i, j);
            }
        }
        LiveCoefficients {
            a,
            b: live.iter().map(|&i| self.b[i]).collect(),
            c: live.iter().map(|&i| self.c[i]).collect(),
            s,
        }
    }

    /// Forward Euler: `c = [0]`, `b = [1]`, order 1.
    pub fn euler() -> Tableau {
        from_lower("euler", &[&[]], &[1.0], &[0.0], 1).expect(VALID)
    }

    /// Explicit midpoint rule, order 2 (Hairer–Nørsett–Wanner I, §II.1).
    ///
    /// ```text
    /// 0   |
    /// 1/2 | 1/2
    /// ----+---------
    ///     | 0    1
    /// ```
    pub fn midpoint() -> Tableau {
        from_lower("midpoint", &[&[], &[0.5]], &[0.0, 1.0], &[0.0, 0.5], 2).expect(VALID)
    }

    /// Heun's method (explicit trapezoid), order 2, with embedded Euler `b̂ = [1, 0]` (order 1)
    /// (Hairer–Nørsett–Wanner I, §II.1).
    ///
    /// ```text
    /// 0 |
    /// 1 | 1
    /// --+---------
    ///   | 1/2  1/2
    ///   | 1    0      (embedded)
    /// ```
    pub fn heun() -> Tableau {
        from_lower("heun", &[&[], &[1.0]], &[0.5, 0.5], &[0.0, 1.0], 2)
            .and_then(|t| t.with_embedded(&[1.0, 0.0], 1))
            .expect(VALID)
    }

    /// Ralston's second-order method, the 2-stage order-2 method with minimal error bound
    /// (Ralston 1962; Hairer–Nørsett–Wanner I, §II.1).
    ///
    /// ```text
    /// 0   |
    /// 2/3 | 2/3
    /// ----+---------
    ///     | 1/4  3/4
    /// ```
    pub fn ralston() -> Tableau {
        let (a, c) = (&[&[][..], &[2.0 / 3.0]], [0.0, 2.0 / 3.0]);
        from_lower("ralston", a, &[0.25, 0.75], &c, 2).expect(VALID)
    }

    /// Bogacki–Shampine 3(2), FSAL (Bogacki & Shampine 1989, Appl. Math. Lett. 2(4)).
    ///
    /// ```text
    /// 0   |
    /// 1/2 | 1/2
    /// 3/4 | 0     3/4
    /// 1   | 2/9   1/3  4/9
    /// ----+----------------------
    ///     | 2/9   1/3  4/9  0      order 3
    ///     | 7/24  1/4  1/3  1/8    order 2 (embedded)
    /// ```
    #[rustfmt::skip]
    pub fn bosh3() -> Tableau {
        let b = [2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0];
        let a: &[&[f64]] = &[&[], &[0.5], &[0.0, 0.75], &b[..3]];
        let bhat = [7.0 / 24.0, 0.25, 1.0 / 3.0, 0.125];
        from_lower("bosh3", a, &b, &[0.0, 0.5, 0.75, 1.0], 3)
            .and_then(|t| t.with_embedded(&bhat, 2))
            .and_then(Tableau::with_fsal)
            .expect(VALID)
    }

    /// The classical Runge–Kutta method of order 4 (Hairer–Nørsett–Wanner I, Table II.1.1).
    ///
    /// ```text
    /// 0   |
    /// 1/2 | 1/2
    /// 1/2 | 0    1/2
    /// 1   | 0    0    1
    /// ----+-------------------
    ///     | 1/6  1/3  1/3  1/6
    /// ```
    #[rustfmt::skip]
    pub fn rk4() -> Tableau {
        let a: &[&[f64]] = &[&[], &[0.5], &[0.0, 0.5], &[0.0, 0.0, 1.0]];
        let b = [1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0];
        from_lower("rk4", a, &b, &[0.0, 0.5, 0.5, 1.0], 4).expect(VALID)
    }

    /// Kutta's 3/8 rule, order 4 (Hairer–Nørsett–Wanner I, Table II.1.1).
    ///
    /// ```text
    /// 0   |
    /// 1/3 | 1/3
    /// 2/3 | -1/3  1
    /// 1   | 1     -1   1
    /// ----+-------------------
    ///     | 1/8   3/8  3/8  1/8
    /// ```
    #[rustfmt::skip]
    pub fn rk38() -> Tableau {
        let a: &[&[f64]] = &[&[], &[1.0 / 3.0], &[-1.0 / 3.0, 1.0], &[1.0, -1.0, 1.0]];
        let b = [0.125, 0.375, 0.375, 0.125];
        from_lower("rk38", a, &b, &[0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0], 4).expect(VALID)
    }

    /// Dormand–Prince 5(4), FSAL, 7 stages (Dormand & Prince 1980, J. Comput. Appl. Math. 6(1);
    /// Hairer–Nørsett–Wanner I, Table II.5.2).
    ///
    /// ```text
    /// 0    |
    /// 1/5  | 1/5
    /// 3/10 | 3/40        9/40
    /// 4/5  | 44/45       −56/15       32/9
    /// 8/9  | 19372/6561  −25360/2187  64448/6561  −212/729
    /// 1    | 9017/3168   −355/33      46732/5247  49/176   −5103/18656
    /// 1    | 35/384      0            500/1113    125/192  −2187/6784    11/84
    /// -----+---------------------------------------------------------------------------
    ///      | 35/384      0            500/1113    125/192  −2187/6784    11/84    0
    ///      | 5179/57600  0            7571/16695  393/640  −92097/339200 187/2100 1/40
    /// ```
    ///
    /// The first weight row is order 5, the embedded one order 4.
    #[rustfmt::skip]
    pub fn dopri5() -> Tableau {
        let b = [35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0,
                 0.0];
        let a: &[&[f64]] = &[
            &[],
            &[1.0 / 5.0],
            &[3.0 / 40.0, 9.0 / 40.0],
            &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
            &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
            &[9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
            &b[..6],
        ];
        let c = [0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0];
        let bhat = [5179.0 / 57600.0, 0.0, 7571.0 / 16695.0, 393.0 / 640.0,
                    -92097.0 / 339200.0, 187.0 / 2100.0, 1.0 / 40.0];
        from_lower("dopri5", a, &b, &c, 5)
            .and_then(|t| t.with_embedded(&bhat, 4))
            .and_then(Tableau::with_fsal)
            .expect(VALID)
    }

    /// Tsitouras 5(4), FSAL, 7 stages (Ch. Tsitouras, "Runge–Kutta pairs of order 5(4)
    /// satisfying only the first column simplifying assumption", Comput. Math. Appl. 62(2),
    /// 2011, 770–775).
    ///
    /// `c = [0, 0.161, 0.327, 0.9, 0.98002554090450968…, 1, 1]`; `b` is the last row of `A`
    /// (order 5, `b_7 = 0`); the embedded weights (order 4) have `b̂_7 = 1/66`. The coefficients
    /// are the 80-digit values of OrdinaryDiffEq.jl (`Tsit5ConstantCache`, whose error weights
    /// are `btilde = b̂ − b`) correctly rounded to `f64`.
    #[rustfmt::skip]
    pub fn tsit5() -> Tableau {
        let b = [0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742,
                 -3.290069515436081, 2.324710524099774, 0.0];
        let a: &[&[f64]] = &[
            &[],
            &[0.161],
            &[-0.008480655492356989, 0.335480655492357],
            &[2.8971530571054935, -6.359448489975075, 4.3622954328695815],
            &[5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
            &[5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401,
              -0.028269050394068383],
            &b[..6],
        ];
        let c = [0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0];
        let bhat = [0.09468075576583945, 0.009183565540343254, 0.4877705284247616,
                    1.234297566930479, -2.7077123499835256, 1.866628418170587, 1.0 / 66.0];
        from_lower("tsit5", a, &b, &c, 5)
            .and_then(|t| t.with_embedded(&bhat, 4))
            .and_then(Tableau::with_fsal)
            .expect(VALID)
    }

    /// Runge–Kutta–Fehlberg 4(5), 6 stages, advancing with the order-4 weights (Fehlberg 1969,
    /// NASA TR R-315; Hairer–Nørsett–Wanner I, Table II.5.1).
    ///
    /// ```text
    /// 0     |
    /// 1/4   | 1/4
    /// 3/8   | 3/32       9/32
    /// 12/13 | 1932/2197  −7200/2197  7296/2197
    /// 1     | 439/216    −8          3680/513    −845/4104
    /// 1/2   | −8/27      2           −3544/2565  1859/4104    −11/40
    /// ------+------------------------------------------------------------
    ///       | 25/216     0           1408/2565   2197/4104    −1/5    0      order 4
    ///       | 16/135     0           6656/12825  28561/56430  −9/50   2/55   order 5 (embedded)
    /// ```
    #[rustfmt::skip]
    pub fn fehlberg45() -> Tableau {
        let a: &[&[f64]] = &[
            &[],
            &[0.25],
            &[3.0 / 32.0, 9.0 / 32.0],
            &[1932.0 / 2197.0, -7200.0 / 2197.0, 7296.0 / 2197.0],
            &[439.0 / 216.0, -8.0, 3680.0 / 513.0, -845.0 / 4104.0],
            &[-8.0 / 27.0, 2.0, -3544.0 / 2565.0, 1859.0 / 4104.0, -11.0 / 40.0],
        ];
        let b = [25.0 / 216.0, 0.0, 1408.0 / 2565.0, 2197.0 / 4104.0, -1.0 / 5.0, 0.0];
        let c = [0.0, 0.25, 0.375, 12.0 / 13.0, 1.0, 0.5];
        let bhat = [16.0 / 135.0, 0.0, 6656.0 / 12825.0, 28561.0 / 56430.0, -9.0 / 50.0,
                    2.0 / 55.0];
        from_lower("fehlberg45", a, &b, &c, 4)
            .and_then(|t| t.with_embedded(&bhat, 5))
            .expect(VALID)
    }

    /// The ten built-in tableaux: euler, midpoint, heun, ralston, bosh3, rk4, rk38, dopri5,
    /// tsit5, fehlberg45 (in that order).
    pub fn all() -> Vec<Tableau> {
        vec![
            Self::euler(),
            Self::midpoint(),
            Self::heun(),
            Self::ralston(),
            Self::bosh3(),
            Self::rk4(),
            Self::rk38(),
            Self::dopri5(),
            Self::tsit5(),
            Self::fehlberg45(),
        ]
    }

    /// The built-in tableau called `name`; the error lists the known names.
    pub fn by_name(name: &str) -> Result<Tableau> {
        let all = Self::all();
        if let Some(t) = all.iter().find(|t| t.name == name) {
            return Ok(t.clone());
        }
        let known: Vec<&str> = all.iter().map(Tableau::name).collect();
        bail!(
            name,
            "unknown tableau; known tableaux: {}",
            known.join(", ")
        )
    }

    /// Residuals `Φ(t) − 1/γ(t)` of the order conditions for all rooted trees `t` with
    /// `|t| <= max_order`, for the weights `w` (`b`, `b̂` or anything else).
    ///
    /// For a tree `t = [t_1 … t_m]` (a root whose subtrees are `t_k`) the stage vector is
    /// `g(t) = ∏_k (A g(t_k))` (elementwise), with `g(τ) = 1`; then `Φ(t) = Σ_i w_i g(t)_i` and
    /// `γ(t) = |t| ∏_k γ(t_k)`. The weights have order `p` iff every residual with `|t| <= p`
    /// vanishes (Butcher 1963; Hairer–Nørsett–Wanner I, §II.2, Theorem 2.13). Trees come
    /// ordered by `|t|`, then canonically (1, 1, 2, 4, 9, 20, 48, … trees of order 1, 2, 3, …).
    ///
    /// Missing weights (when `w.len() < s`) count as zero and extra ones are ignored.
    pub fn order_condition_residuals(&self, w: &[f64], max_order: u32) -> Vec<OrderCondition> {
        order_residuals(&self.a, self.s, w, max_order)
    }
}

/// Order-condition residuals `Φ(t) − 1/γ(t)` of weights `w` for a general `s × s` coefficient
/// matrix `a` (row-major; explicit or implicit), for every rooted tree up to `max_order`. See
/// [`Tableau::order_condition_residuals`].
pub(crate) fn order_residuals(
    a: &[f64],
    s: usize,
    w: &[f64],
    max_order: u32,
) -> Vec<OrderCondition> {
    {
        let trees = rooted_trees(max_order);
        // A g(t) and γ(t) for every tree so far; children always precede their parent.
        let mut ag: Vec<Vec<f64>> = Vec::with_capacity(trees.len());
        let mut gamma: Vec<f64> = Vec::with_capacity(trees.len());
        let mut out = Vec::with_capacity(trees.len());
        for tree in &trees {
            let mut g = vec![1.0; s];
            let mut gam = f64::from(tree.order);
            for &k in &tree.children {
                for (gi, agi) in g.iter_mut().zip(&ag[k]) {
                    *gi *= agi;
                }
                gam *= gamma[k];
            }
            let phi: f64 = w.iter().zip(&g).map(|(wi, gi)| wi * gi).sum();
            out.push(OrderCondition {
                order: tree.order,
                tree: tree_string(&trees, tree),
                residual: phi - 1.0 / gam,
            });
            let agt = (0..s)
                .map(|i| (0..s).map(|j| a[i * s + j] * g[j]).sum())
                .collect();
            ag.push(agt);
            gamma.push(gam);
        }
        out
    }
}

/// A built-in from the strictly lower part of `A` (row `i` lists `a_i0 … a_i,i−1`), padded
/// with zeros to `s × s` and validated by [`Tableau::explicit`].
fn from_lower(name: &str, lower: &[&[f64]], b: &[f64], c: &[f64], order: u32) -> Result<Tableau> {
    let s = lower.len();
    let rows: Vec<Vec<f64>> = lower
        .iter()
        .map(|r| {
            r.iter()
                .copied()
                .chain(std::iter::repeat(0.0))
                .take(s)
                .collect()
        })
        .collect();
    let rows: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
    Tableau::explicit(name, &rows, b, c, order)
}

/// A rooted tree: a root whose subtrees are earlier trees of the list (indices non-increasing).
struct Tree {
    order: u32,
    children: Vec<usize>,
}

/// All rooted trees with at most `max_order` nodes, ordered by order, then canonically.
///
/// A tree of order `n` is a root plus a multiset of trees whose orders sum to `n − 1`; the
/// multiset is generated as a non-increasing sequence of list indices, so each tree appears
/// exactly once.
fn rooted_trees(max_order: u32) -> Vec<Tree> {
    let mut trees = Vec::new();
    if max_order == 0 {
        return trees;
    }
    trees.push(Tree {
        order: 1,
        children: Vec::new(),
    });
    for n in 2..=max_order {
        let mut found = Vec::new();
        subtree_multisets(&trees, n - 1, trees.len(), &mut Vec::new(), &mut found);
        trees.extend(
            found
                .into_iter()
                .map(|children| Tree { order: n, children }),
        );
    }
    trees
}

/// Push every non-increasing sequence of indices `< bound` whose tree orders sum to `remaining`.
fn subtree_multisets(
    trees: &[Tree],
    remaining: u32,
    bound: usize,
    current: &mut Vec<usize>,
    out: &mut Vec<Vec<usize>>,
) {
    if remaining == 0 {
        out.push(current.clone());
        return;
    }
    for k in 0..bound {
        if trees[k].order <= remaining {
            current.push(k);
            subtree_multisets(trees, remaining - trees[k].order, k + 1, current, out);
            current.pop();
        }
    }
}

fn tree_string(trees: &[Tree], tree: &Tree) -> String {
    if tree.children.is_empty() {
        return "τ".to_owned();
    }
    let inner: String = tree
        .children
        .iter()
        .map(|&k| tree_string(trees, &trees[k]))
        .collect();
    format!("[{inner}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<Tableau>) -> String {
        match r {
            Err(Error::InvalidTableau { reason, .. }) => reason,
            other => panic!("expected InvalidTableau, got {other:?}"),
        }
    }

    #[test]
    fn tree_counts_names_and_gammas() {
        let trees = rooted_trees(6);
        let counts: Vec<usize> = (1..=6)
            .map(|n| trees.iter().filter(|t| t.order == n).count())
            .collect();
        assert_eq!(counts, [1, 1, 2, 4, 9, 20]);
        assert_eq!(rooted_trees(8).len(), 1 + 1 + 2 + 4 + 9 + 20 + 48 + 115);
        // With zero weights the residual is −1/γ(t).
        let conds = Tableau::rk4().order_condition_residuals(&[0.0; 4], 4);
        let got: Vec<(&str, f64)> = conds
            .iter()
            .map(|c| (c.tree.as_str(), -1.0 / c.residual))
            .collect();
        let want = [
            ("τ", 1.0),
            ("[τ]", 2.0),
            ("[ττ]", 3.0),
            ("[[τ]]", 6.0),
            ("[τττ]", 4.0),
            ("[[τ]τ]", 8.0),
            ("[[ττ]]", 12.0),
            ("[[[τ]]]", 24.0),
        ];
        assert_eq!(got.len(), want.len());
        for ((t, g), (wt, wg)) in got.iter().zip(want) {
            assert_eq!(*t, wt);
            assert!((g - wg).abs() < 1e-12, "{t}: γ = {g}, want {wg}");
        }
        // Euler misses [τ] by exactly 1/2.
        let e = Tableau::euler().order_condition_residuals(&[1.0], 2);
        assert_eq!((e[1].tree.as_str(), e[1].residual), ("[τ]", -0.5));
    }

    fn max_residual(t: &Tableau, w: &[f64], order: u32) -> f64 {
        t.order_condition_residuals(w, order)
            .iter()
            .map(|c| c.residual.abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn builtins_satisfy_their_order_conditions_and_no_more() {
        let all = Tableau::all();
        assert_eq!(all.len(), 10);
        for t in &all {
            // Tsitouras' coefficients reach 12.9, so rounding them to f64 alone leaves order-5
            // residuals of 1.05e-14 even in exact arithmetic (the 80-digit values give 1e-82).
            let tol = if t.name() == "tsit5" { 2e-14 } else { 1e-14 };
            let p = t.order();
            let r = max_residual(t, t.b(), p);
            assert!(r <= tol, "{}: order {p} residual {r:e}", t.name());
            // Order p + 1 fails for every built-in's b, so the claimed order is exact.
            let r = max_residual(t, t.b(), p + 1);
            assert!(r > 1e-6, "{}: order {} holds too ({r:e})", t.name(), p + 1);
            if let (Some(bh), Some(q)) = (t.b_embedded(), t.embedded_order()) {
                let r = max_residual(t, bh, q);
                assert!(r <= tol, "{}: embedded order {q} residual {r:e}", t.name());
                let r = max_residual(t, bh, q + 1);
                assert!(
                    r > 1e-6,
                    "{}: embedded order {} holds ({r:e})",
                    t.name(),
                    q + 1
                );
            }
        }
    }

    #[test]
    fn builtin_metadata() {
        let got: Vec<String> = Tableau::all()
            .iter()
            .map(|t| {
                format!(
                    "{} {} {} {}",
                    t.name(),
                    t.stages(),
                    t.live_stages(),
                    t.is_fsal()
                )
            })
            .collect();
        let want = [
            "euler 1 1 false",
            "midpoint 2 2 false",
            "heun 2 2 false",
            "ralston 2 2 false",
            "bosh3 4 3 true",
            "rk4 4 4 false",
            "rk38 4 4 false",
            "dopri5 7 6 true",
            "tsit5 7 6 true",
            "fehlberg45 6 5 false",
        ];
        assert_eq!(got, want);
        let d = Tableau::dopri5();
        assert!(d.is_live(5) && !d.is_live(6) && !d.is_live(7));
        assert_eq!((d.a(4, 3), d.a(3, 4)), (-212.0 / 729.0, 0.0));
        assert_eq!((d.order(), d.embedded_order()), (5, Some(4)));
        // Fehlberg's stage 2 has b_2 = 0 but feeds later stages; stage 6 is dead.
        let f = Tableau::fehlberg45();
        assert!(f.is_live(1) && !f.is_live(5));
        assert_eq!(Tableau::rk4().b_embedded(), None);
    }

    type Case<'a> = (&'a [&'a [f64]], &'a [f64], &'a [f64], u32, &'a str);

    #[test]
    fn invalid_tableaux_are_errors() {
        let (a, b, c): (&[&[f64]], &[f64], &[f64]) =
            (&[&[0.0, 0.0], &[0.5, 0.0]], &[0.0, 1.0], &[0.0, 0.5]);
        let nan = f64::NAN;
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&[&[0.0, 0.5], &[0.5, 0.0]], b, &[0.5, 0.5], 2, "a[0][1] = 0.5 is on or above"),
            (&[&[0.0, 0.0], &[0.5, 0.1]], b, &[0.0, 0.6], 2, "a[1][1] = 0.1 is on or above"),
            (a, b, &[0.0, 0.4], 2, "c[1] = 0.4 but the row sum Σ_j a[1][j] = 0.5"),
            (&[&[0.0], &[0.5, 0.0]], b, c, 2, "row a[0] has 1 entries, expected s = 2"),
            (&[&[0.0, 0.0], &[0.5]], b, c, 2, "row a[1] has 1 entries, expected s = 2"),
            (a, &[1.0], c, 2, "b has 1 entries, expected s = 2"),
            (a, b, &[0.0], 2, "c has 1 entries, expected s = 2"),
            (&[], &[], &[], 1, "s >= 1"),
            (&[&[0.0, 0.0], &[nan, 0.0]], b, c, 2, "a[1][0] = NaN is not finite"),
            (a, &[0.0, nan], c, 2, "b[1] = NaN is not finite"),
            (a, b, &[nan, 0.5], 2, "c[0] = NaN is not finite"),
            (a, &[0.5, 0.4], c, 2, "Σ b_i = 0.9, but consistency needs 1"),
            (a, b, c, 0, "order must be >= 1"),
        ];
        for &(a, b, c, order, want) in cases {
            let r = reason(Tableau::explicit("t", a, b, c, order));
            assert!(r.contains(want), "{r:?} does not contain {want:?}");
        }
        let t = Tableau::midpoint();
        let r = reason(t.clone().with_embedded(&[1.0], 1));
        assert!(r.contains("b_embedded has 1 entries"), "{r}");
        let r = reason(t.clone().with_embedded(&[f64::INFINITY, 0.0], 1));
        assert!(r.contains("b_embedded[0] = inf"), "{r}");
        // Bad FSAL: midpoint has c_2 = 1/2; Heun's last row [1, 0] is not b = [1/2, 1/2].
        assert!(reason(t.with_fsal()).contains("FSAL needs c[1] = 1, found 0.5"));
        let r = reason(Tableau::heun().with_fsal());
        assert!(r.contains("a[1][0] = 1 ≠ b[0] = 0.5"), "{r}");
    }

    #[test]
    fn by_name_round_trips() {
        for t in Tableau::all() {
            assert_eq!(Tableau::by_name(t.name()).unwrap(), t);
        }
        let err = Tableau::by_name("rk5").unwrap_err().to_string();
        assert!(err.starts_with("invalid tableau `rk5`: unknown"), "{err}");
        assert!(
            err.contains("euler, midpoint, heun") && err.contains("fehlberg45"),
            "{err}"
        );
    }
}
