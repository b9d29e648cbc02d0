//! Fixed time grids and output times.
//!
//! A grid is the list of step end points `t_0 < t_1 < … < t_N`; step `n` goes from `t_n` to
//! `t_{n+1}` with size `h_n`. Output times must be points of the grid: the solution is
//! reported exactly at grid points, never interpolated, so the gradient of a loss on the
//! outputs is the exact derivative of what was computed.
//!
//! A uniform grid stores only `t0, t1, N, h` and computes its points on demand, so its memory
//! does not grow with `N` (a gradient over 10⁷ steps needs no 160 MB table of points); listed
//! grids store their points and step sizes. Either way every point and step size has the bits
//! a stored table of the same grid would have.

use std::sync::Arc;

use crate::error::{Error, Result};

/// A fixed time grid `t_0 < t_1 < … < t_N` with its step sizes.
///
/// Read it point by point ([`TimeGrid::t`], [`TimeGrid::h`], [`TimeGrid::points`]); a table
/// of the points ([`TimeGrid::to_times`]) is made only on request, for small grids.
#[derive(Debug, Clone)]
pub struct TimeGrid {
    points: Points,
}

#[derive(Debug, Clone)]
enum Points {
    /// `t_n = t0 + n·h` for `n < N`, `t_N = t1`, computed on demand.
    Uniform {
        t0: f64,
        t1: f64,
        n_steps: usize,
        h: f64,
        sizes: StepSizes,
    },
    /// Stored points and step sizes, shared so clones of a grid (the setup's and its
    /// solver's) cost nothing.
    Listed {
        times: Arc<Vec<f64>>,
        steps: Arc<Vec<f64>>,
    },
}

/// How a uniform grid's step sizes are defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepSizes {
    /// `h_n = h` for every step ([`TimeGrid::uniform`]).
    Equal,
    /// `h_n = t_{n+1} − t_n` of the computed points ([`TimeGrid::uniform_points`]).
    Differences,
}

impl TimeGrid {
    /// `n_steps` equal steps `h = (t1 − t0) / n_steps` from `t0` to `t1`.
    ///
    /// Every step has exactly the same `h`; `t_n = t0 + n h` for `n < N` and `t_N = t1`.
    /// Nothing per step is stored.
    pub fn uniform(t0: f64, t1: f64, n_steps: usize) -> Result<Self> {
        Self::uniform_with(t0, t1, n_steps, StepSizes::Equal)
    }

    /// The points of [`TimeGrid::uniform`] (`t_n = t0 + n h`, `t_N = t1`) with the step sizes
    /// of their differences, `h_n = t_{n+1} − t_n`: bitwise the grid
    /// [`TimeGrid::from_times`] builds from those points, without storing them.
    ///
    /// The step must exceed 4 ulps of the larger end, `h > 4 ε max(|t0|, |t1|)` (the
    /// lowering's condition on `steps`), which keeps the rounded points distinct, as
    /// `from_times` requires.
    pub fn uniform_points(t0: f64, t1: f64, n_steps: usize) -> Result<Self> {
        let grid = Self::uniform_with(t0, t1, n_steps, StepSizes::Differences)?;
        let h = (t1 - t0) / n_steps as f64;
        let largest = t0.abs().max(t1.abs());
        if h <= largest * f64::EPSILON * 4.0 {
            return Err(invalid(format!(
                "{n_steps} steps from t0 = {t0} to t1 = {t1} are shorter than the resolution of \
                 f64 there (h = {h})"
            )));
        }
        Ok(grid)
    }

    fn uniform_with(t0: f64, t1: f64, n_steps: usize, sizes: StepSizes) -> Result<Self> {
        if n_steps == 0 {
            return Err(invalid("a grid needs at least one step".into()));
        }
        if !(t0.is_finite() && t1.is_finite()) || t1 <= t0 {
            return Err(invalid(format!(
                "need finite t0 < t1, got t0 = {t0}, t1 = {t1}"
            )));
        }
        let h = (t1 - t0) / n_steps as f64;
        if !h.is_finite() {
            return Err(invalid(format!("t1 − t0 overflows: t0 = {t0}, t1 = {t1}")));
        }
        Ok(Self {
            points: Points::Uniform {
                t0,
                t1,
                n_steps,
                h,
                sizes,
            },
        })
    }

    /// A grid from `t0` and a list of positive step sizes (`t_{n+1} = t_n + h_n`).
    pub fn from_steps(t0: f64, steps: &[f64]) -> Result<Self> {
        if steps.is_empty() {
            return Err(invalid("a grid needs at least one step".into()));
        }
        if !t0.is_finite() {
            return Err(invalid(format!("t0 must be finite, got {t0}")));
        }
        if let Some((i, h)) = steps
            .iter()
            .enumerate()
            .find(|(_, h)| !(h.is_finite() && **h > 0.0))
        {
            return Err(invalid(format!(
                "step {i} has size {h}; every step must be positive and finite"
            )));
        }
        let mut times = Vec::with_capacity(steps.len() + 1);
        times.push(t0);
        let mut t = t0;
        for (i, h) in steps.iter().enumerate() {
            let next = t + h;
            if next <= t {
                return Err(invalid(format!(
                    "step {i} of size {h} does not advance t = {t} in floating point"
                )));
            }
            t = next;
            times.push(t);
        }
        Ok(Self::listed(times, steps.to_vec()))
    }

    /// A grid from its strictly increasing points `t_0 < … < t_N` (at least two).
    pub fn from_times(times: &[f64]) -> Result<Self> {
        Self::from_points(times.to_vec())
    }

    /// [`TimeGrid::from_times`] taking the points by value (no copy of them).
    pub fn from_points(times: Vec<f64>) -> Result<Self> {
        if times.len() < 2 {
            return Err(invalid("a grid needs at least two time points".into()));
        }
        if let Some((i, t)) = times.iter().enumerate().find(|(_, t)| !t.is_finite()) {
            return Err(invalid(format!("time point {i} is {t}")));
        }
        if let Some(i) = (1..times.len()).find(|&i| times[i] <= times[i - 1]) {
            return Err(invalid(format!(
                "time points must increase strictly: t[{}] = {} ≤ t[{}] = {}",
                i,
                times[i],
                i - 1,
                times[i - 1]
            )));
        }
        let steps = times.windows(2).map(|w| w[1] - w[0]).collect();
        Ok(Self::listed(times, steps))
    }

    fn listed(times: Vec<f64>, steps: Vec<f64>) -> Self {
        Self {
            points: Points::Listed {
                times: Arc::new(times),
                steps: Arc::new(steps),
            },
        }
    }

    /// Number of steps `N`.
    #[inline]
    pub fn n_steps(&self) -> usize {
        match &self.points {
            Points::Uniform { n_steps, .. } => *n_steps,
            Points::Listed { steps, .. } => steps.len(),
        }
    }

    /// Grid point `t_n`, `n ≤ N` (panics past the end, as indexing does).
    #[inline]
    pub fn t(&self, n: usize) -> f64 {
        match &self.points {
            Points::Uniform {
                t0, t1, n_steps, h, ..
            } => {
                assert!(n <= *n_steps, "grid point {n} of a {n_steps}-step grid");
                if n < *n_steps { t0 + n as f64 * h } else { *t1 }
            }
            Points::Listed { times, .. } => times[n],
        }
    }

    /// Step size `h_n`, `n < N`: `t_{n+1} − t_n`, except that every step of
    /// [`TimeGrid::uniform`] is exactly its `h`.
    #[inline]
    pub fn h(&self, n: usize) -> f64 {
        match &self.points {
            Points::Uniform {
                n_steps, h, sizes, ..
            } => {
                assert!(n < *n_steps, "step {n} of a {n_steps}-step grid");
                match sizes {
                    StepSizes::Equal => *h,
                    StepSizes::Differences => self.t(n + 1) - self.t(n),
                }
            }
            Points::Listed { steps, .. } => steps[n],
        }
    }

    /// The first point `t_0`.
    pub fn start(&self) -> f64 {
        self.t(0)
    }

    /// The last point `t_N`.
    pub fn end(&self) -> f64 {
        self.t(self.n_steps())
    }

    /// All grid points `t_0 … t_N`, computed one by one.
    pub fn points(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        (0..self.n_steps() + 1).map(|n| self.t(n))
    }

    /// All step sizes `h_0 … h_{N−1}`, computed one by one.
    pub fn step_sizes(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        (0..self.n_steps()).map(|n| self.h(n))
    }

    /// A table of the grid points `t_0 … t_N` (`8 (N + 1)` bytes: for small grids).
    pub fn to_times(&self) -> Vec<f64> {
        match &self.points {
            Points::Listed { times, .. } => times.as_ref().clone(),
            Points::Uniform { .. } => self.points().collect(),
        }
    }

    /// The grid points, taken out of the grid (copied only when a clone shares them, computed
    /// for a uniform grid).
    pub fn into_times(self) -> Vec<f64> {
        match self.points {
            Points::Listed { times, .. } => {
                Arc::try_unwrap(times).unwrap_or_else(|shared| shared.as_ref().clone())
            }
            Points::Uniform { .. } => self.points().collect(),
        }
    }

    /// Bytes the grid stores: `8 (2N + 1)` for listed points and step sizes, none for a
    /// uniform grid.
    pub fn stored_bytes(&self) -> u64 {
        match &self.points {
            Points::Uniform { .. } => 0,
            Points::Listed { times, steps } => 8 * (times.len() as u64 + steps.len() as u64),
        }
    }

    /// Grid indices of the output times, which must increase strictly and lie on the grid.
    ///
    /// A time matches grid point `t_n` when `|t − t_n| ≤ 1e-10 · (t_N − t_0)`: this forgives the
    /// round-off of summing step sizes but never snaps to a neighbouring point (steps are far
    /// larger than the tolerance or the grid is rejected as ambiguous).
    pub fn output_indices(&self, output_times: &[f64]) -> Result<Vec<usize>> {
        if output_times.is_empty() {
            return Err(invalid("at least one output time is needed".into()));
        }
        let tol = 1e-10 * (self.end() - self.start());
        let mut indices = Vec::with_capacity(output_times.len());
        for (k, &t) in output_times.iter().enumerate() {
            if !t.is_finite() {
                return Err(invalid(format!("output time {k} is {t}")));
            }
            let n = self.nearest(t);
            let nearest = self.t(n);
            if (t - nearest).abs() > tol {
                return Err(Error::OutputTimeOffGrid { time: t, nearest });
            }
            if let Some(&prev) = indices.last()
                && n <= prev
            {
                return Err(invalid(format!(
                    "output times must increase strictly: output {k} (t = {t}) does not come after output {}",
                    k - 1
                )));
            }
            indices.push(n);
        }
        Ok(indices)
    }

    /// Index of the grid point nearest to `t` (the earlier of two equally near), by bisection:
    /// `O(log N)` evaluations of [`TimeGrid::t`].
    pub fn nearest(&self, t: f64) -> usize {
        let len = self.n_steps() + 1;
        // First index whose point is not below `t` (the points increase).
        let (mut lo, mut hi) = (0, len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.t(mid) < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo;
        if i == 0 {
            0
        } else if i == len || (t - self.t(i - 1)) <= (self.t(i) - t) {
            i - 1
        } else {
            i
        }
    }
}

/// Grids are equal when they have the same points and the same step sizes, however stored.
impl PartialEq for TimeGrid {
    fn eq(&self, other: &Self) -> bool {
        if let (
            Points::Uniform {
                t0,
                t1,
                n_steps,
                sizes,
                ..
            },
            Points::Uniform {
                t0: t0b,
                t1: t1b,
                n_steps: nb,
                sizes: sb,
                ..
            },
        ) = (&self.points, &other.points)
            && (t0, t1, n_steps, sizes) == (t0b, t1b, nb, sb)
        {
            return true;
        }
        self.n_steps() == other.n_steps()
            && self.points().eq(other.points())
            && self.step_sizes().eq(other.step_sizes())
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidTimeGrid { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_grid_has_equal_steps_and_exact_end() {
        let g = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
        assert_eq!(g.n_steps(), 10);
        assert!(g.step_sizes().all(|h| h == 0.1));
        assert_eq!(g.t(10), 1.0);
        assert_eq!(g.stored_bytes(), 0);
        assert_eq!(g.output_indices(&[0.0, 0.3, 1.0]).unwrap(), vec![0, 3, 10]);
    }

    #[test]
    fn off_grid_and_unordered_outputs_are_errors() {
        let g = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
        assert_eq!(
            g.output_indices(&[0.25]),
            Err(Error::OutputTimeOffGrid {
                time: 0.25,
                nearest: g.t(2)
            })
        );
        assert!(matches!(
            g.output_indices(&[0.5, 0.5]),
            Err(Error::InvalidTimeGrid { .. })
        ));
        assert!(matches!(
            g.output_indices(&[f64::NAN]),
            Err(Error::InvalidTimeGrid { .. })
        ));
    }

    #[test]
    fn step_lists_and_time_lists_agree() {
        let a = TimeGrid::from_steps(1.0, &[0.5, 0.25, 0.25]).unwrap();
        let b = TimeGrid::from_times(&[1.0, 1.5, 1.75, 2.0]).unwrap();
        assert_eq!(a, b);
        assert!(TimeGrid::from_steps(0.0, &[0.1, -0.1]).is_err());
        assert!(TimeGrid::from_times(&[0.0, 1.0, 1.0]).is_err());
        assert!(TimeGrid::uniform(1.0, 0.0, 3).is_err());
        assert!(TimeGrid::uniform(0.0, 1.0, 0).is_err());
    }

    /// The stored tables the uniform grids replaced: `t_n = t0 + n h`, `t_N = t1`, and either
    /// `h` for every step or the differences of the points.
    fn stored(t0: f64, t1: f64, n: usize) -> (Vec<f64>, Vec<f64>) {
        let h = (t1 - t0) / n as f64;
        let mut times: Vec<f64> = (0..n).map(|i| t0 + i as f64 * h).collect();
        times.push(t1);
        (times, vec![h; n])
    }

    fn bits(v: impl IntoIterator<Item = f64>) -> Vec<u64> {
        v.into_iter().map(f64::to_bits).collect()
    }

    #[test]
    fn computed_uniform_points_have_the_bits_of_the_stored_tables() {
        for (t0, t1, n) in [
            (0.0, 1.0, 7),
            (-3.25, 10.1, 997),
            (1e-3, 0.7, 3),
            (5.0, 5.5, 1),
        ] {
            let (times, steps) = stored(t0, t1, n);
            let equal = TimeGrid::uniform(t0, t1, n).unwrap();
            assert_eq!(bits(equal.points()), bits(times.iter().copied()));
            assert_eq!(bits(equal.step_sizes()), bits(steps));
            // The resolver's grid: the points' differences, as `from_times` stores them.
            let points = TimeGrid::uniform_points(t0, t1, n).unwrap();
            let listed = TimeGrid::from_times(&times).unwrap();
            assert_eq!(bits(points.points()), bits(listed.points()));
            assert_eq!(bits(points.step_sizes()), bits(listed.step_sizes()));
            assert_eq!(points, listed);
            assert_eq!(points.to_times(), times);
            assert_eq!(
                (points.stored_bytes(), listed.stored_bytes()),
                (0, 16 * n as u64 + 8)
            );
        }
        // The last step of an equal-step grid is `h` even where `t_N − t_{N−1}` rounds
        // differently, so the two kinds differ there.
        let (t0, t1, n) = (0.0, 1.0, 3);
        let (times, _) = stored(t0, t1, n);
        assert_ne!(times[3] - times[2], 1.0 / 3.0);
        assert_ne!(
            TimeGrid::uniform(t0, t1, n),
            TimeGrid::uniform_points(t0, t1, n)
        );
    }

    #[test]
    fn a_uniform_grid_of_a_billion_steps_costs_nothing_and_finds_its_points() {
        let n = 1_000_000_000;
        let g = TimeGrid::uniform_points(0.0, 1.0, n).unwrap();
        assert_eq!((g.n_steps(), g.stored_bytes(), g.end()), (n, 0, 1.0));
        assert_eq!(g.t(250_000_000), 0.25);
        assert_eq!(g.h(n - 1), 1.0 - g.t(n - 1));
        assert_eq!(
            g.output_indices(&[0.0, 0.5, 0.5 + 1e-12, 1.0]),
            Err(invalid(
                "output times must increase strictly: output 2 (t = 0.500000000001) does not \
                 come after output 1"
                    .into()
            ))
        );
        assert_eq!(
            g.output_indices(&[1e-9, 0.75, 1.0]).unwrap(),
            vec![1, 750_000_000, n]
        );
        assert_eq!(g.nearest(-5.0), 0);
        assert_eq!(g.nearest(7.0), n);
        // Points closer than f64 resolves are refused.
        assert!(TimeGrid::uniform_points(1.0, 1.0 + 1e-12, 100_000).is_err());
        assert!(TimeGrid::uniform(-1e308, 1e308, 10).is_err());
    }
}
