//! The classic neural-ODE demo (Chen et al. 2018; torchdiffeq's `ode_demo.py`): learn the
//! spiral `du/dt = A u³`, `A = [[−0.1, 2], [−2, −0.1]]`, `u(0) = (2, 0)`, `t ∈ [0, 25]`, from
//! one sampled trajectory with `f(u) = MLP(u³)`, a 2–50–2 tanh network.
//!
//! Training follows the demo: weights drawn from N(0, 0.1²) and zero biases, RMSprop; each
//! iteration draws `batch_size` start points of the true trajectory and fits the next
//! `batch_time` samples from each (mean absolute error), with the gradient from an
//! [`OdeBlock`] (fixed-step RK4 on the sample grid, discrete adjoint).
//!
//! # References
//! * R. T. Q. Chen, Y. Rubanova, J. Bettencourt, D. Duvenaud, "Neural ordinary differential
//!   equations", NeurIPS 2018.

use pnode_runtime::checkpoint::Checkpointing;
use pnode_runtime::{Tableau, TimeGrid};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::{ModuleRhs, OdeBlock, TensorSolver};

/// Spiral training set-up.
#[derive(Debug, Clone)]
pub struct SpiralConfig {
    /// Samples of the true trajectory on `[0, t_end]`.
    pub samples: usize,
    /// End time.
    pub t_end: f64,
    /// Samples per training window.
    pub batch_time: usize,
    /// Windows per iteration.
    pub batch_size: usize,
    /// Training iterations.
    pub iterations: usize,
    /// RMSprop learning rate.
    pub learning_rate: f64,
    /// Hidden width of the MLP.
    pub hidden: i64,
    /// Evaluate the full-trajectory loss every this many iterations.
    pub eval_every: usize,
    /// Seed of the initialisation and the window draws.
    pub seed: i64,
    /// Checkpointing of the training block.
    pub checkpointing: Checkpointing,
    /// Where the network, the data and the ODE block run (`Device::cuda_if_available()` picks
    /// a GPU when libtorch sees one).
    pub device: Device,
}

impl Default for SpiralConfig {
    fn default() -> Self {
        Self {
            samples: 1000,
            t_end: 25.0,
            batch_time: 10,
            batch_size: 20,
            iterations: 2000,
            learning_rate: 1e-3,
            hidden: 50,
            eval_every: 100,
            seed: 0,
            checkpointing: Checkpointing::SolutionOnly,
            device: Device::Cpu,
        }
    }
}

/// What training produced.
#[derive(Debug)]
pub struct SpiralResult {
    /// Sample times.
    pub times: Vec<f64>,
    /// The true trajectory, `samples × 2`.
    pub truth: Vec<[f64; 2]>,
    /// The learned model's trajectory from the same `u(0)`, `samples × 2`.
    pub learned: Vec<[f64; 2]>,
    /// `(iteration, mean |learned − truth| over the whole trajectory)`.
    pub eval_losses: Vec<(usize, f64)>,
    /// Mean absolute error of each training iteration's batch.
    pub batch_losses: Vec<f64>,
}

fn true_matrix() -> Tensor {
    Tensor::from_slice(&[-0.1f64, 2.0, -2.0, -0.1]).view([2, 2])
}

/// The true trajectory: RK4 on the sample grid with 10 substeps per sample interval.
fn true_trajectory(times: &[f64]) -> Result<Tensor> {
    let a = true_matrix();
    let fine: Vec<f64> = (0..(times.len() - 1) * 10 + 1)
        .map(|i| {
            times[0]
                + (times[times.len() - 1] - times[0]) * i as f64 / ((times.len() - 1) * 10) as f64
        })
        .collect();
    let grid = TimeGrid::from_times(&fine)?;
    let mut solver = TensorSolver::new(Tableau::rk4(), grid, &fine, Checkpointing::SolutionOnly)?;
    let mut model = ModuleRhs::with_parameters(vec![], move |_t, u: &Tensor| {
        u.pow_tensor_scalar(3).matmul(&a)
    });
    let u0 = Tensor::from_slice(&[2.0f64, 0.0]).view([1, 2]);
    let out = solver.solve(&mut model, &u0)?;
    Ok(Tensor::cat(&out.iter().step_by(10).collect::<Vec<_>>(), 0))
}

/// A linear layer over the same weight tensors.
pub(crate) fn share(l: &nn::Linear) -> nn::Linear {
    nn::Linear {
        ws: l.ws.shallow_clone(),
        bs: l.bs.as_ref().map(Tensor::shallow_clone),
    }
}

fn rows(t: &Tensor) -> Vec<[f64; 2]> {
    let v: Vec<f64> =
        Vec::<f64>::try_from(t.to_device(Device::Cpu).flatten(0, -1)).expect("f64 tensor");
    v.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
}

/// Train on the spiral; `on_iteration(i, batch_loss)` is called after each iteration.
pub fn train(
    config: &SpiralConfig,
    mut on_iteration: impl FnMut(usize, f64),
) -> Result<SpiralResult> {
    tch::manual_seed(config.seed);
    let n = config.samples;
    let times: Vec<f64> = (0..n)
        .map(|i| config.t_end * i as f64 / (n - 1) as f64)
        .collect();
    let device = config.device;
    let truth = true_trajectory(&times)?.to_device(device); // [n, 2]

    let mut vs = nn::VarStore::new(device);
    let root = vs.root();
    // The demo's initialisation: weights N(0, 0.1²), biases 0 — a nearly still field to start.
    let init = nn::LinearConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.1,
        },
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    let l1 = nn::linear(&root / "l1", 2, config.hidden, init);
    let l2 = nn::linear(&root / "l2", config.hidden, 2, init);
    vs.set_kind(Kind::Double);
    // f(u) = MLP(u³), over shallow copies of the weights (one closure per solver).
    let rhs = || {
        let (l1, l2) = (share(&l1), share(&l2));
        move |_t: f64, u: &Tensor| l2.forward(&l1.forward(&u.pow_tensor_scalar(3)).tanh())
    };

    // Training windows: batch_time samples, all on the uniform sample grid.
    let dt = times[1] - times[0];
    let window: Vec<f64> = (0..config.batch_time).map(|i| i as f64 * dt).collect();
    let block = OdeBlock::new(
        ModuleRhs::new(&vs, rhs()),
        Tableau::rk4(),
        TimeGrid::from_times(&window)?,
        &window,
        config.checkpointing.clone(),
    )?;
    let mut opt = nn::RmsProp::default().build(&vs, config.learning_rate)?;

    let mut eval_model = ModuleRhs::new(&vs, rhs());
    let mut eval_solver = TensorSolver::new(
        Tableau::rk4(),
        TimeGrid::from_times(&times)?,
        &times,
        Checkpointing::SolutionOnly,
    )?;
    let u0 = truth.get(0).view([1, 2]);
    let mut evaluate = |solver: &mut TensorSolver| -> Result<(f64, Tensor)> {
        let pred = Tensor::cat(solver.solve(&mut eval_model, &u0)?, 0);
        let loss = (&pred - &truth).abs().mean(Kind::Double).double_value(&[]);
        Ok((loss, pred))
    };

    let mut eval_losses = vec![(0, evaluate(&mut eval_solver)?.0)];
    let mut batch_losses = Vec::with_capacity(config.iterations);
    for it in 1..=config.iterations {
        let starts = Tensor::randint(
            (n - config.batch_time) as i64,
            [config.batch_size as i64],
            (Kind::Int64, device),
        );
        let batch_y0 = truth.index_select(0, &starts); // [B, 2]
        let offsets = Tensor::arange(config.batch_time as i64, (Kind::Int64, device));
        let idx = starts.unsqueeze(1) + offsets.unsqueeze(0); // [B, T]
        let batch_y = truth.index_select(0, &idx.flatten(0, -1)).view([
            config.batch_size as i64,
            config.batch_time as i64,
            2,
        ]);
        let pred = Tensor::stack(&block.forward_outputs(&batch_y0)?, 1); // [B, T, 2]
        let loss = (pred - batch_y).abs().mean(Kind::Double);
        opt.zero_grad();
        loss.f_backward()?;
        opt.step();
        let value = loss.double_value(&[]);
        batch_losses.push(value);
        on_iteration(it, value);
        if it % config.eval_every == 0 || it == config.iterations {
            eval_losses.push((it, evaluate(&mut eval_solver)?.0));
        }
    }
    let (_, learned) = evaluate(&mut eval_solver)?;
    Ok(SpiralResult {
        times,
        truth: rows(&truth),
        learned: rows(&learned),
        eval_losses,
        batch_losses,
    })
}
