//! The torchdiffeq spiral with a **tch** network inside a `#[neural_ode]` model (feature
//! `torch`): `du/dt = N(u³)` where `N` is a libtorch 2–50–2 tanh MLP, declared as an opaque
//! layer and handed to `Ode::new` as a `pnode::torch::TorchLayer`. pnode generates the
//! integrator and its discrete adjoint at compile time and calls the module for its value,
//! JVP and VJP; the runtime's Adam trains the module's weights (the tail of `θ`) to the
//! trajectory of the true dynamics `du/dt = A u³`, `A = [[−0.1, 2], [−2, −0.1]]`, from
//! `u(0) = [1, 0]` at 21 output times over `[0, 2]`.

use pnode::runtime::opaque::OpaqueLayer;
use pnode::runtime::optim::{Adam, AdamConfig};
use pnode::torch::TorchLayer;
use pnode::torch::tch::{Device, Kind, nn};

/// The true dynamics, which generate the observations.
#[pnode::neural_ode(method = "rk4", steps = 100, t = (0.0, 2.0), outputs = linspace(0.0, 2.0, 21), checkpoint = "all")]
pub mod spiral_true {
    state! { u[2] = [1.0, 0.0] }
    param! { a[2, 2] = [[-0.1, 2.0], [-2.0, -0.1]] }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        matmul(a, u.powi(3))
    }
}

/// The neural ODE: the same grid and outputs, the right-hand side a tch module on `u³`.
#[pnode::neural_ode(method = "rk4", steps = 100, t = (0.0, 2.0), outputs = linspace(0.0, 2.0, 21), checkpoint = revolve(slots = 10))]
pub mod spiral_tch {
    state! { u[2] = [1.0, 0.0] }
    layer! { net = opaque(2, 2) }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        net(u.powi(3))
    }
}

/// The libtorch network `linear(2, 50) → tanh → linear(50, 2)` in f64, initialised as in
/// torchdiffeq's spiral example from `seed`.
pub fn network(seed: i64) -> pnode::torch::Result<TorchLayer> {
    pnode::torch::tch::manual_seed(seed);
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let root = vs.root();
    // torchdiffeq's initialisation: weights N(0, 0.1²), biases zero.
    let init = || nn::LinearConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.1,
        },
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    let mlp = nn::seq()
        .add(nn::linear(&root / "hidden", 2, 50, init()))
        .add_fn(|x| x.tanh())
        .add(nn::linear(&root / "out", 50, 2, init()));
    TorchLayer::from_module(&vs, &[2], 2, mlp)
}

/// The losses of `iterations` Adam steps (learning rate `lr`) of the tch network on the
/// spiral's mean squared trajectory error.
pub fn fit(iterations: usize, lr: f64, seed: i64) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let mut truth = spiral_true::Ode::new()?;
    let data = truth
        .forward(&spiral_true::Ode::U0, &spiral_true::Ode::THETA0)?
        .to_vec();
    let layers: Vec<Box<dyn OpaqueLayer>> = vec![Box::new(network(seed)?)];
    let mut ode = spiral_tch::Ode::new(layers)?;
    let mut theta = ode.theta0();
    let mut adam = Adam::new(AdamConfig {
        lr,
        ..AdamConfig::default()
    })?;
    let losses = ode.train(
        &spiral_tch::Ode::U0,
        &mut theta,
        &mut adam,
        iterations,
        |out, dl| crate::mse(out, &data, dl),
    )?;
    Ok(losses)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tch_network_learns_the_spiral() {
        let losses = super::fit(150, 0.01, 0).unwrap();
        let (first, last) = (losses[0], *losses.last().unwrap());
        println!(
            "tch spiral: loss {first:.3e} -> {last:.3e} in {} Adam steps",
            losses.len()
        );
        assert!(last < 0.01 * first, "loss {first} -> {last}");
    }
}
