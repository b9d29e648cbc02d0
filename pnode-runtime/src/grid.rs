//! Fixed time grids and output times.
//!
//! A grid is the list of step end points `t_0 < t_1 < … < t_N`; step `n` goes from `t_n` to
//! `t_{n+1}` with size `h_n = t_{n+1} − t_n`. Output times must be points of the grid: the
//! solution is reported exactly at grid points, never interpolated, so the gradient of a loss on
//! the outputs is the exact derivative of what was computed.

use std::sync::Arc;

use crate::error::{Error, Result};

/// A fixed time grid `t_0 < t_1 < … < t_N` with its step sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeGrid {
    /// Shared, so clones of a grid (the setup's and its solver's) cost nothing.
    times: Arc<Vec<f64>>,
    steps: Arc<Vec<f64>>,
}

impl TimeGrid {
    /// `n_steps` equal steps `h = (t1 − t0) / n_steps` from `t0` to `t1`.
    ///
    /// Every step has exactly the same `h`; `t_n = t0 + n h` for `n < N` and `t_N = t1`.
    pub fn uniform(t0: f64, t1: f64, n_steps: usize) -> Result<Self> {
        if n_steps == 0 {
            return Err(invalid("a grid needs at least one step".into()));
        }
        if !(t0.is_finite() && t1.is_finite()) || t1 <= t0 {
            return Err(invalid(format!(
                "need finite t0 < t1, got t0 = {t0}, t1 = {t1}"
            )));
        }
        let h = (t1 - t0) / n_steps as f64;
        let mut times: Vec<f64> = (0..n_steps).map(|n| t0 + n as f64 * h).collect();
        times.push(t1);
        Ok(Self {
            times: Arc::new(times),
            steps: Arc::new(vec![h; n_steps]),
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
        Ok(Self {
            times: Arc::new(times),
            steps: Arc::new(steps.to_vec()),
        })
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
        Ok(Self {
            times: Arc::new(times),
            steps: Arc::new(steps),
        })
    }

    /// The grid points, taken out of the grid (copied only when a clone shares them).
    pub fn into_times(self) -> Vec<f64> {
        Arc::try_unwrap(self.times).unwrap_or_else(|shared| shared.as_ref().clone())
    }

    /// Number of steps `N`.
    pub fn n_steps(&self) -> usize {
        self.steps.len()
    }

    /// All grid points `t_0 … t_N`.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// All step sizes `h_0 … h_{N−1}`.
    pub fn steps(&self) -> &[f64] {
        &self.steps
    }

    /// Grid point `t_n`.
    pub fn t(&self, n: usize) -> f64 {
        self.times[n]
    }

    /// Step size `h_n = t_{n+1} − t_n`.
    pub fn h(&self, n: usize) -> f64 {
        self.steps[n]
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
        let span = self.times[self.times.len() - 1] - self.times[0];
        let tol = 1e-10 * span;
        let mut indices = Vec::with_capacity(output_times.len());
        for (k, &t) in output_times.iter().enumerate() {
            if !t.is_finite() {
                return Err(invalid(format!("output time {k} is {t}")));
            }
            let n = self.nearest(t);
            let nearest = self.times[n];
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

    fn nearest(&self, t: f64) -> usize {
        let i = self.times.partition_point(|&x| x < t);
        if i == 0 {
            0
        } else if i == self.times.len() || (t - self.times[i - 1]) <= (self.times[i] - t) {
            i - 1
        } else {
            i
        }
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
        assert!(g.steps().iter().all(|&h| h == 0.1));
        assert_eq!(g.t(10), 1.0);
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
}
