//! PNODE's stiff experiment: learn Robertson's kinetics (k = 0.04, 3·10⁷, 10⁴; u(0) = (1, 0, 0))
//! from 40 log-spaced observations on [10⁻⁵, 100] with a 3–5–5–5–5–5–5–3 GELU network, by
//! Crank–Nicolson with exact discrete-adjoint gradients through its Newton stage solves — and the
//! same training with classic RK4 on the same steps, which fails.
//!
//! The network acts on scaled species and scaled rates (Kim et al. 2021):
//! `f(u) = r ⊙ s ⊙ N(u ⊘ s)`, with `s` the range of each species in the data (`y₂` peaks near
//! 3.6·10⁻⁵, the others near 1) and `r` the fastest rate of change of each scaled species
//! between consecutive observations, `r_i = max_k |ŷ_i(t_{k+1}) − ŷ_i(t_k)| / (t_{k+1} − t_k)`
//! (`y₂` moves at about 10³ per unit time at the start, the others at 10⁻²–10⁻¹), so that an
//! `O(1)` network output has the data's time scales. The loss is the mean squared error of the
//! scaled species over the observations. A model that fits the data is therefore as stiff as
//! the data: its fast eigenvalue is `O(−10³)` while the late steps are `O(10)` long, far
//! outside RK4's stability interval (`|hλ| ≤ 2.79`), which is what [`rk4_on_learned`] shows. The grid is
//! `0, t_1, …, t_40` with `substeps` log-spaced steps per interval (1: the observation times
//! themselves, as in PNODE). The right-hand side is a tch closure run through
//! [`FlatTorchModel`], so the runtime's θ-method and its Newton solver are used unchanged.
//!
//! # References
//! * H. Zhang, W. Zhao, "A memory-efficient neural ODE framework based on high-level adjoint
//!   differentiation", arXiv 2206.01298 (PNODE), §5.
//! * S. Kim, W. Ji, S. Deng, Y. Ma, C. Rackauckas, "Stiff neural ordinary differential
//!   equations", Chaos 31 (2021).
//! * H. H. Robertson, "The solution of a set of reaction rate equations", 1966.

use pnode_runtime::checkpoint::{Checkpointing, Stats};
use pnode_runtime::implicit::LineSearch;
use pnode_runtime::optim::{Adam, AdamConfig, Optimizer};
use pnode_runtime::problems::Robertson;
use pnode_runtime::{
    DirkStepper, DirkTableau, NewtonConfig, Solver, Tableau, ThetaStepper, TimeGrid,
};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::FlatTorchModel;
use crate::demo::spiral::share;
use crate::error::Result;

/// The integrator trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StiffMethod {
    /// Crank–Nicolson (θ = ½), Newton with dense LU.
    CrankNicolson,
    /// Classic explicit RK4 on the same steps.
    Rk4,
}

/// Training set-up.
#[derive(Debug, Clone)]
pub struct StiffConfig {
    /// Log-spaced observation times on `[t_first, t_last]`.
    pub observations: usize,
    /// First observation time.
    pub t_first: f64,
    /// Last observation time.
    pub t_last: f64,
    /// Log-spaced steps per observation interval.
    pub substeps: usize,
    /// Adam iterations.
    pub iterations: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Hidden layers and their width.
    pub hidden_layers: usize,
    /// Width of each hidden layer.
    pub width: i64,
    /// Seed of the initialisation.
    pub seed: i64,
    /// Integrator.
    pub method: StiffMethod,
    /// Adam steps that may be rejected (a failed solve: the step is undone and the learning
    /// rate halved) before training stops.
    pub max_rejections: usize,
}

impl Default for StiffConfig {
    fn default() -> Self {
        Self {
            observations: 40,
            t_first: 1e-5,
            t_last: 100.0,
            substeps: 1,
            iterations: 600,
            learning_rate: 1e-2,
            hidden_layers: 6,
            width: 5,
            seed: 0,
            method: StiffMethod::CrankNicolson,
            max_rejections: 10,
        }
    }
}

/// What training produced.
#[derive(Debug)]
pub struct StiffResult {
    /// Observation times.
    pub times: Vec<f64>,
    /// True species at the observation times.
    pub truth: Vec<[f64; 3]>,
    /// The learned model's species at the observation times (last successful solve).
    pub learned: Vec<[f64; 3]>,
    /// Loss per completed iteration.
    pub losses: Vec<f64>,
    /// Why training stopped early, if it did (the solver's error).
    pub failure: Option<String>,
    /// Adam steps rejected because the next solve failed (each retried with half the rate).
    pub rejected: Vec<String>,
    /// Statistics of the last gradient (Newton and linear iterations included).
    pub stats: Stats,
    /// Classic RK4 on the training steps with the learned model (the parameters of the last
    /// successful solve): the loss of its solution, or the error it stops with.
    pub rk4_on_learned: std::result::Result<f64, String>,
    /// The species scales `s` and rate scales `r` of the model `f(u) = r ⊙ s ⊙ (N(u ⊘ s) − u ⊘ s)`.
    pub scales: ([f64; 3], [f64; 3]),
}

/// The fastest rate of change of each scaled species between consecutive observations
/// (starting from `u(0) = (1, 0, 0)` at `t = 0`): `r_i = max_k |Δu_i / s_i| / Δt_k`.
pub fn data_rates(obs: &[f64], truth: &[[f64; 3]], scale: &[f64; 3]) -> [f64; 3] {
    let mut rate = [0.0f64; 3];
    let (mut t_prev, mut u_prev) = (0.0, [1.0, 0.0, 0.0]);
    for (&t, u) in obs.iter().zip(truth) {
        for i in 0..3 {
            rate[i] = rate[i].max((u[i] - u_prev[i]).abs() / scale[i] / (t - t_prev));
        }
        (t_prev, u_prev) = (t, *u);
    }
    rate
}

/// `n` log-spaced points on `[a, b]`.
fn log_space(a: f64, b: f64, n: usize) -> Vec<f64> {
    let (la, lb) = (a.ln(), b.ln());
    (0..n)
        .map(|i| (la + (lb - la) * i as f64 / (n - 1).max(1) as f64).exp())
        .collect()
}

/// The grid `0, t_1, …, t_K` with `substeps` log-spaced steps inside each interval `[t_k,
/// t_{k+1}]` (the first interval `[0, t_1]` is one step).
pub fn stiff_grid(obs: &[f64], substeps: usize) -> Vec<f64> {
    let mut times = vec![0.0, obs[0]];
    for w in obs.windows(2) {
        let inner = log_space(w[0], w[1], substeps + 1);
        times.extend_from_slice(&inner[1..]);
    }
    times
}

/// The true species at `obs`: ESDIRK3 on the observation grid refined 20-fold, with tight
/// Newton tolerances.
pub fn robertson_truth(obs: &[f64]) -> Result<Vec<[f64; 3]>> {
    let grid = TimeGrid::from_times(&stiff_grid(obs, 20))?;
    let newton = NewtonConfig {
        atol: 1e-14,
        rtol: 1e-12,
        ..NewtonConfig::default()
    };
    let stepper = DirkStepper::new(DirkTableau::esdirk3(), 3, 3, newton)?;
    let mut model = Robertson::new();
    let mut solver = Solver::new(stepper, &model, grid, obs, Checkpointing::SolutionOnly)?;
    let out = solver.solve(
        &mut model,
        &Robertson::default_u0(),
        &Robertson::default_params(),
    )?;
    Ok(out.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
}

/// Train on Robertson; `on_iteration(i, loss)` after each iteration.
pub fn train(
    config: &StiffConfig,
    mut on_iteration: impl FnMut(usize, f64),
) -> Result<StiffResult> {
    tch::manual_seed(config.seed);
    let obs = log_space(config.t_first, config.t_last, config.observations);
    let truth = robertson_truth(&obs)?;
    // Species scales: the range of each species over the data.
    let mut scale = [0.0f64; 3];
    for u in truth.iter().chain(std::iter::once(&[1.0, 0.0, 0.0])) {
        for (s, v) in scale.iter_mut().zip(u) {
            *s = s.max(v.abs());
        }
    }

    let rate = data_rates(&obs, &truth, &scale);

    let mut vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let mut layers = Vec::new();
    let mut fan_in = 3;
    for i in 0..config.hidden_layers {
        layers.push(nn::linear(
            &root / format!("h{i}"),
            fan_in,
            config.width,
            Default::default(),
        ));
        fan_in = config.width;
    }
    // A zero output layer: the first model has no dynamics, so the first Newton solves are
    // trivial whatever the step, and no random initialisation starts with a fast unstable mode
    // (at rate `r₂ ≈ 10³` a positive eigenvalue leaves Crank–Nicolson's late steps without a
    // nearby root). The hidden layers are random, so the output layer's gradient is not zero.
    let out = nn::linear(
        &root / "out",
        fan_in,
        3,
        nn::LinearConfig {
            ws_init: nn::Init::Const(0.0),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        },
    );
    layers.push(out);
    vs.set_kind(Kind::Double);
    let s = Tensor::from_slice(&scale);
    let rs = Tensor::from_slice(&[rate[0] * scale[0], rate[1] * scale[1], rate[2] * scale[2]]);
    let shared: Vec<nn::Linear> = layers.iter().map(share).collect();
    let f = move |_t: f64, u: &Tensor| {
        let scaled = u / &s;
        let mut x = scaled.shallow_clone();
        for (i, layer) in shared.iter().enumerate() {
            x = layer.forward(&x);
            if i + 1 < shared.len() {
                x = x.gelu("none");
            }
        }
        (x - scaled) * &rs
    };
    let mut model = FlatTorchModel::new(&vs, &[3], f)?;
    let mut theta = model.parameters().to_vec();
    let n_params = theta.len();

    let grid = TimeGrid::from_times(&stiff_grid(&obs, config.substeps))?;
    let u0 = Robertson::default_u0();
    let mut adam = Adam::new(AdamConfig {
        lr: config.learning_rate,
        ..AdamConfig::default()
    })?;
    let truth_flat: Vec<f64> = truth.iter().flatten().copied().collect();
    let k = obs.len();
    let loss_fn = |out: &[f64], dl: &mut [f64]| {
        let mut loss = 0.0;
        for (i, (o, d)) in out.iter().zip(&truth_flat).enumerate() {
            let sc = scale[i % 3];
            let r = (o - d) / sc;
            loss += r * r / (3 * k) as f64;
            dl[i] = 2.0 * r / sc / (3 * k) as f64;
        }
        loss
    };

    let mut previous = theta.clone();
    let mut rejections = 0;
    let mut rejected = Vec::new();
    let mut losses = Vec::with_capacity(config.iterations);
    let mut failure = None;
    let mut stats = Stats::default();
    let mut learned: Vec<f64> = vec![f64::NAN; 3 * k];
    let mut record = |solver_out: &[f64]| learned.copy_from_slice(solver_out);
    macro_rules! run {
        ($solver:expr) => {{
            let mut solver = $solver;
            for it in 1..=config.iterations {
                match solver.value_and_grad(&mut model, &u0, &theta, loss_fn) {
                    Ok((loss, grad)) => {
                        record(solver.outputs());
                        stats = solver.stats();
                        losses.push(loss);
                        on_iteration(it, loss);
                        previous.copy_from_slice(&theta);
                        adam.step(&mut theta, &grad.dp)?;
                    }
                    Err(e) => {
                        let message = format!("iteration {it}: {e}");
                        // Reject the last Adam step (its parameters make the solve fail) and
                        // retry from the previous ones with half the learning rate.
                        rejections += 1;
                        if it == 1 || rejections > config.max_rejections {
                            failure = Some(message);
                            break;
                        }
                        theta.copy_from_slice(&previous);
                        adam.set_learning_rate(0.5 * adam.learning_rate());
                        rejected.push(message);
                    }
                }
            }
        }};
    }
    match config.method {
        StiffMethod::CrankNicolson => {
            let newton = NewtonConfig {
                atol: 1e-12,
                rtol: 1e-10,
                max_iters: 50,
                // The learned field can be far from linear over the long late steps.
                line_search: LineSearch::Backtracking(20),
                ..NewtonConfig::default()
            };
            let stepper = ThetaStepper::crank_nicolson(3, n_params, newton)?;
            run!(Solver::new(
                stepper,
                &model,
                grid.clone(),
                &obs,
                Checkpointing::SolutionOnly
            )?)
        }
        StiffMethod::Rk4 => {
            run!(Solver::explicit(
                Tableau::rk4(),
                &model,
                grid.clone(),
                &obs,
                Checkpointing::SolutionOnly
            )?)
        }
    }
    let rk4_on_learned = {
        let mut solver = Solver::explicit(
            Tableau::rk4(),
            &model,
            grid,
            &obs,
            Checkpointing::SolutionOnly,
        )?;
        let mut dl = vec![0.0; 3 * k];
        match solver.solve(&mut model, &u0, &previous) {
            Ok(out) => Ok(loss_fn(out, &mut dl)),
            Err(e) => Err(e.to_string()),
        }
    };
    Ok(StiffResult {
        rk4_on_learned,
        scales: (scale, rate),
        times: obs,
        truth,
        learned: learned
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect(),
        losses,
        failure,
        rejected,
        stats,
    })
}

/// What classic RK4 does on the training grid with the *true* Robertson kinetics: the error
/// it stops with (`None` if it stays finite).
pub fn rk4_on_truth(config: &StiffConfig) -> Result<Option<String>> {
    let obs = log_space(config.t_first, config.t_last, config.observations);
    let grid = TimeGrid::from_times(&stiff_grid(&obs, config.substeps))?;
    let mut model = Robertson::new();
    let mut solver = Solver::explicit(
        Tableau::rk4(),
        &model,
        grid,
        &obs,
        Checkpointing::SolutionOnly,
    )?;
    Ok(solver
        .solve(
            &mut model,
            &Robertson::default_u0(),
            &Robertson::default_params(),
        )
        .err()
        .map(|e| e.to_string()))
}
