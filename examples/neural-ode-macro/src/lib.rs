//! Lotka–Volterra written in Rust syntax with `#[pnode::neural_ode]`, and the spiral MLP
//! compiled from `models/spiral.pode` with `pnode::model!`: both become specialized forward
//! and discrete-adjoint code at compile time. [`fit`] recovers the four rates from
//! observations the model itself generated, with Adam on the exact gradient.

use pnode::runtime::optim::{Adam, AdamConfig};

#[cfg(feature = "torch")]
pub mod tch_spiral;

/// Lotka–Volterra predator–prey with its four rates as parameters.
#[pnode::neural_ode(
    method = "rk4",
    steps = 1000,
    t = (0.0, 10.0),
    outputs = linspace(0.0, 10.0, 25),
    checkpoint = revolve(slots = 10)
)]
pub mod lotka_volterra {
    state! { x = 1.0, y = 1.0 }
    param! { alpha = 1.5, beta = 1.0, delta = 3.0, gamma = 1.0 }

    fn rhs(t: f64, x: f64, y: f64) -> (f64, f64) {
        let xy = x * y;
        (alpha * x - beta * xy, delta * xy - gamma * y)
    }
}

pnode::model!("models/spiral.pode");

/// The result of [`fit`].
#[derive(Debug, Clone)]
pub struct Fit {
    /// The rates at the start.
    pub start: Vec<f64>,
    /// The rates found.
    pub rates: Vec<f64>,
    /// The loss before each Adam step.
    pub losses: Vec<f64>,
}

/// Mean squared error of `outputs` against `data`, writing `∂L/∂outputs` into `dl`.
pub fn mse(outputs: &[f64], data: &[f64], dl: &mut [f64]) -> f64 {
    let n = outputs.len() as f64;
    let mut loss = 0.0;
    for ((o, d), g) in outputs.iter().zip(data).zip(dl.iter_mut()) {
        let r = o - d;
        loss += r * r / n;
        *g = 2.0 * r / n;
    }
    loss
}

/// Fits the Lotka–Volterra rates, starting 20 % off, to the trajectory of the declared ones.
pub fn fit(iterations: usize, lr: f64) -> pnode::runtime::Result<Fit> {
    use lotka_volterra::Ode;
    let mut ode = Ode::new()?;
    let data = ode.forward(&Ode::U0, &Ode::THETA0)?.to_vec();
    let start: Vec<f64> = Ode::THETA0
        .iter()
        .zip([1.2, 0.8, 1.2, 0.8])
        .map(|(a, b)| a * b)
        .collect();
    let mut rates = start.clone();
    let mut adam = Adam::new(AdamConfig {
        lr,
        ..AdamConfig::default()
    })?;
    let losses = ode.train(&Ode::U0, &mut rates, &mut adam, iterations, |out, dl| {
        mse(out, &data, dl)
    })?;
    Ok(Fit {
        start,
        rates,
        losses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_the_rates() {
        let f = fit(400, 0.02).unwrap();
        let (first, last) = (f.losses[0], *f.losses.last().unwrap());
        assert!(last < 1e-3 * first, "loss {first} -> {last}");
        for (r, t) in f.rates.iter().zip(lotka_volterra::Ode::THETA0) {
            assert!((r - t).abs() < 0.02 * t, "rates {:?}", f.rates);
        }
    }

    #[test]
    fn the_file_model_runs() {
        let mut ode = spiral::Ode::new().unwrap();
        assert_eq!(spiral::Ode::PARAM_LEN, 2 * 16 + 16 + 16 * 2 + 2);
        assert_eq!(spiral::Ode::SCHEDULE_NAME, ode.solver().schedule().name());
        let out = ode.forward(&spiral::Ode::U0, &spiral::Ode::THETA0).unwrap();
        assert_eq!(out.len(), 5 * 2);
        assert!(out.iter().all(|x| x.is_finite()));
    }
}
