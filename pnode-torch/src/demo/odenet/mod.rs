//! ODE-Net image classification (Chen et al. 2018, §7.1): a convolutional stem, one ODE block
//! in place of a stack of residual blocks, and a pooled linear head, trained on MNIST (IDX
//! files) or on a generated set of digit-like images, once per checkpoint mode so their
//! accuracy, time and memory can be compared.
//!
//! ```text
//! x [B, 1, H, W]
//!  │ stem    conv 3×3, 1→C, stride 2 (28×28 → 14×14) → GroupNorm → ReLU
//!  │         [downsample = 2: conv 4×4, C→C, stride 2 (14×14 → 7×7) → GroupNorm → ReLU]
//!  │ block   du/dt = f(u), t ∈ [0, 1], RK4 with `steps` steps, discrete adjoint
//!  │         f = GN → ReLU → conv 3×3 (C→C) → GN → ReLU → conv 3×3 (C→C) → GN
//!  │ head    GroupNorm → ReLU → adaptive average pool → flatten → linear C→10
//!  ▼
//! logits [B, 10]
//! ```
//!
//! The right-hand side is ODE-Net's `ODEfunc` (`odenet_mnist.py`) without the time channel
//! its `ConcatConv2d` appends (the block here is autonomous), with GroupNorm of
//! `min(32, C/2)` groups (ODE-Net's `min(32, C)` at `C = 64`); the head is ODE-Net's. The
//! stem's second, 4×4 stride-2 convolution is one of ODE-Net's downsampling layers (which
//! end at 6×6): it makes the block four times cheaper than at 14×14, which lets a CPU train
//! it in minutes (`downsample = 1` drops it). The block is an [`OdeBlock`] over a
//! [`ModuleRhs`] whose closure holds shallow clones of the weights of a `VarStore` of its
//! own; the stem and the head live in a second `VarStore`, and Adam trains both on the
//! cross-entropy.
//!
//! Memory is reported two ways: the tensor bytes the block's checkpoints held at their peak
//! ([`Stats::peak_stored_bytes`], exact, and the schedule's prediction), and the increase of
//! the process's peak resident set during training ([`RssProbe`], Linux only). The first
//! gradient of each run is kept, so runs that differ only in the checkpoint mode can be
//! checked for bitwise-identical gradients.
//!
//! The weights come from libtorch's global generator seeded with `tch::manual_seed`, so
//! networks built concurrently in one process (tests on several threads) must take turns.
//!
//! # References
//! * R. T. Q. Chen, Y. Rubanova, J. Bettencourt, D. Duvenaud, "Neural ordinary differential
//!   equations", NeurIPS 2018 (ODE-Net, §7.1).
//! * Y. Wu, K. He, "Group normalization", ECCV 2018.
//! * Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
//!   recognition", Proc. IEEE 86(11), 1998 (MNIST and its IDX file format).
//! * A. Griewank, A. Walther, "Algorithm 799: revolve", ACM TOMS 26(1), 2000.

use std::time::Instant;

use pnode_runtime::checkpoint::{Checkpointing, Stats};
use pnode_runtime::{Tableau, TimeGrid};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::{ModuleRhs, OdeBlock, TensorSolver};

/// Number of classes (digits 0–9).
pub const CLASSES: i64 = 10;

/// Revolve slots of the `revolve` mode when none are given (`revolve:K` gives `K`).
pub const DEFAULT_REVOLVE_SLOTS: usize = 2;

/// Mean and standard deviation of the MNIST training pixels (in `[0, 1]`), the usual input
/// normalisation; applied to both MNIST and the generated set.
const PIXEL_MEAN: f64 = 0.1307;
const PIXEL_STD: f64 = 0.3081;

mod data;
mod rss;

pub use data::*;
pub use rss::RssProbe;

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// Network and training set-up.
#[derive(Debug, Clone)]
pub struct OdeNetConfig {
    /// Channels of the stem, the ODE block and the head (ODE-Net: 64).
    pub channels: i64,
    /// Stride-2 convolutions in the stem, 1 or 2: the 3×3 one from the image, then a 4×4
    /// one (28×28 images give the block 14×14 or 7×7 feature maps).
    pub downsample: u32,
    /// RK4 steps of the ODE block on `[0, 1]`.
    pub steps: usize,
    /// Training iterations (minibatches).
    pub iterations: usize,
    /// Images per minibatch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Seed of the initialisation and of the minibatch order.
    pub seed: u64,
    /// Accuracy is measured on at most this many images of each set (the first ones); `None`
    /// for all.
    pub eval_limit: Option<usize>,
    /// Where the network and the ODE block run; minibatches are moved there.
    pub device: Device,
}

impl Default for OdeNetConfig {
    fn default() -> Self {
        Self {
            channels: 64,
            downsample: 2,
            steps: 6,
            iterations: 150,
            batch_size: 32,
            learning_rate: 3e-3,
            seed: 0,
            eval_limit: Some(1000),
            device: Device::Cpu,
        }
    }
}

impl OdeNetConfig {
    /// Height and width of the ODE block's feature maps for `h × w` images.
    pub fn feature_size(&self, h: i64, w: i64) -> (i64, i64) {
        // 3×3, stride 2, padding 1; then 4×4, stride 2, padding 1.
        let down = |x: i64, k: i64| (x + 2 - k).div_euclid(2) + 1;
        let (mut h, mut w) = (down(h, 3), down(w, 3));
        for _ in 1..self.downsample {
            (h, w) = (down(h, 4), down(w, 4));
        }
        (h, w)
    }

    /// GroupNorm groups: `min(32, channels / 2)`, so at least two channels per group (at 64
    /// channels ODE-Net's `min(32, channels)`; one channel per group would leave the pooled
    /// head little to read).
    pub fn groups(&self) -> i64 {
        (self.channels / 2).clamp(1, 32)
    }

    /// Checks the set-up (channels that split into the GroupNorm groups, one or two
    /// downsamplings, positive counts and learning rate); [`train`] does too.
    pub fn validate(&self) -> Result<()> {
        if self.channels < 1 || self.channels % self.groups() != 0 {
            return Err(Error::Usage(format!(
                "{} channels do not split into {} GroupNorm groups (use an even number up to \
                 64, a multiple of 32 above)",
                self.channels,
                self.groups()
            )));
        }
        if !(1..=2).contains(&self.downsample) {
            return Err(Error::Usage(format!(
                "the stem downsamples once or twice (got {})",
                self.downsample
            )));
        }
        if self.steps == 0 || self.iterations == 0 || self.batch_size == 0 {
            return Err(Error::Usage(
                "steps, iterations and batch size must be positive".into(),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::Usage(format!(
                "the learning rate must be positive (got {})",
                self.learning_rate
            )));
        }
        Ok(())
    }
}

/// A convolution over shared weight tensors.
struct Conv {
    w: Tensor,
    b: Tensor,
    stride: i64,
    padding: i64,
}

impl Conv {
    /// A `k×k` convolution `cin → cout` with padding 1, created in `path` with PyTorch's
    /// default initialisation.
    fn new(path: nn::Path, cin: i64, cout: i64, k: i64, stride: i64) -> Self {
        let padding = 1;
        let c = nn::conv2d(
            path,
            cin,
            cout,
            k,
            nn::ConvConfig {
                stride,
                padding,
                ..Default::default()
            },
        );
        Self {
            w: c.ws,
            b: c.bs.expect("convolution with bias"),
            stride,
            padding,
        }
    }

    fn share(&self) -> Self {
        Self {
            w: self.w.shallow_clone(),
            b: self.b.shallow_clone(),
            stride: self.stride,
            padding: self.padding,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (s, p) = (self.stride, self.padding);
        x.conv2d(&self.w, Some(&self.b), [s, s], [p, p], [1, 1], 1)
    }
}

/// GroupNorm over shared weight tensors.
struct Norm {
    w: Tensor,
    b: Tensor,
    groups: i64,
}

impl Norm {
    fn new(path: nn::Path, groups: i64, channels: i64) -> Self {
        let n = nn::group_norm(path, groups, channels, Default::default());
        Self {
            w: n.ws.expect("affine group norm"),
            b: n.bs.expect("affine group norm"),
            groups,
        }
    }

    fn share(&self) -> Self {
        Self {
            w: self.w.shallow_clone(),
            b: self.b.shallow_clone(),
            groups: self.groups,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.group_norm(self.groups, Some(&self.w), Some(&self.b), 1e-5, true)
    }
}

/// ODE-Net's `ODEfunc`: GN → ReLU → conv → GN → ReLU → conv → GN.
struct OdeFunc {
    norm1: Norm,
    conv1: Conv,
    norm2: Norm,
    conv2: Conv,
    norm3: Norm,
}

impl OdeFunc {
    fn new(vs: &nn::VarStore, channels: i64, groups: i64) -> Self {
        let root = vs.root();
        Self {
            norm1: Norm::new(&root / "norm1", groups, channels),
            conv1: Conv::new(&root / "conv1", channels, channels, 3, 1),
            norm2: Norm::new(&root / "norm2", groups, channels),
            conv2: Conv::new(&root / "conv2", channels, channels, 3, 1),
            norm3: Norm::new(&root / "norm3", groups, channels),
        }
    }

    /// `f(t, u)` over shallow clones of the weights, as an owned closure.
    fn closure(&self) -> impl FnMut(f64, &Tensor) -> Tensor + Send + 'static + use<> {
        let f = Self {
            norm1: self.norm1.share(),
            conv1: self.conv1.share(),
            norm2: self.norm2.share(),
            conv2: self.conv2.share(),
            norm3: self.norm3.share(),
        };
        move |_t: f64, u: &Tensor| {
            let h = f.conv1.forward(&f.norm1.forward(u).relu());
            let h = f.conv2.forward(&f.norm2.forward(&h).relu());
            f.norm3.forward(&h)
        }
    }
}

/// The classifier: stem, ODE block, head.
struct OdeNet {
    /// Stem and head parameters.
    vs: nn::VarStore,
    /// ODE block parameters.
    ode_vs: nn::VarStore,
    /// Convolution, GroupNorm (then ReLU), once per downsampling.
    stem: Vec<(Conv, Norm)>,
    func: OdeFunc,
    block: OdeBlock,
    head_norm: Norm,
    fc: nn::Linear,
    grid: TimeGrid,
}

impl OdeNet {
    /// The network with libtorch seeded by `config.seed` (the same seed gives the same
    /// weights).
    fn new(config: &OdeNetConfig, checkpointing: Checkpointing) -> Result<Self> {
        tch::manual_seed(config.seed as i64);
        let (c, g) = (config.channels, config.groups());
        let vs = nn::VarStore::new(config.device);
        let ode_vs = nn::VarStore::new(config.device);
        let root = vs.root();
        let stem = (1..=config.downsample)
            .map(|k| {
                let (cin, kernel) = if k == 1 { (1, 3) } else { (c, 4) };
                (
                    Conv::new(&root / "stem" / format!("conv{k}"), cin, c, kernel, 2),
                    Norm::new(&root / "stem" / format!("norm{k}"), g, c),
                )
            })
            .collect();
        let func = OdeFunc::new(&ode_vs, c, g);
        let head_norm = Norm::new(&root / "head" / "norm", g, c);
        let fc = nn::linear(&root / "head" / "fc", c, CLASSES, Default::default());
        let grid = TimeGrid::uniform(0.0, 1.0, config.steps)?;
        let block = OdeBlock::final_state(
            ModuleRhs::new(&ode_vs, func.closure()),
            Tableau::rk4(),
            grid.clone(),
            checkpointing,
        )?;
        Ok(Self {
            vs,
            ode_vs,
            stem,
            func,
            block,
            head_norm,
            fc,
            grid,
        })
    }

    fn stem(&self, x: &Tensor) -> Tensor {
        let x = x.to_device(self.vs.device());
        self.stem
            .iter()
            .fold(x, |h, (conv, norm)| norm.forward(&conv.forward(&h)).relu())
    }

    fn head(&self, u: &Tensor) -> Tensor {
        let h = self.head_norm.forward(u).relu();
        self.fc
            .forward(&h.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }

    /// The mean cross-entropy of `x` against `y` through the block (differentiable by its
    /// discrete adjoint).
    fn loss(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let u = self.block.forward(&self.stem(x))?;
        Ok(self
            .head(&u)
            .cross_entropy_for_logits(&y.to_device(self.vs.device())))
    }

    /// Fraction of `data` classified correctly (at most `limit` images), by forward solves
    /// that keep no checkpoints.
    fn accuracy(&self, data: &Dataset, limit: Option<usize>) -> Result<f64> {
        let n = limit.map_or(data.len(), |l| l.min(data.len()));
        if n == 0 {
            return Ok(f64::NAN);
        }
        let mut solver = TensorSolver::new(
            Tableau::rk4(),
            self.grid.clone(),
            &[1.0],
            Checkpointing::SolutionOnly,
        )?;
        let mut model = ModuleRhs::new(&self.ode_vs, self.func.closure());
        let mut correct = 0i64;
        tch::no_grad(|| -> Result<()> {
            for start in (0..n).step_by(256) {
                let len = 256.min(n - start) as i64;
                let x = data.images.narrow(0, start as i64, len);
                let y = data.labels.narrow(0, start as i64, len);
                let u = solver.solve(&mut model, &self.stem(&x))?[0].shallow_clone();
                let hits = self
                    .head(&u)
                    .argmax(-1, false)
                    .eq_tensor(&y.to_device(self.vs.device()));
                correct += hits.sum(Kind::Int64).int64_value(&[]);
            }
            Ok(())
        })?;
        Ok(correct as f64 / n as f64)
    }

    /// `(name, gradient copy)` of every parameter, sorted by name (`ode.` prefixes the
    /// block's).
    fn gradients(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .chain(
                self.ode_vs
                    .variables()
                    .into_iter()
                    .map(|(n, t)| (format!("ode.{n}"), t)),
            )
            .map(|(name, t)| {
                let g = t.grad();
                let g = if g.defined() {
                    g.copy()
                } else {
                    t.zeros_like()
                };
                (name, g)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------

/// Short name of a checkpoint mode: `store-all`, `solution-only`, `revolve:K`, ….
pub fn mode_name(mode: &Checkpointing) -> String {
    match mode {
        Checkpointing::StoreAll => "store-all".into(),
        Checkpointing::SolutionOnly => "solution-only".into(),
        Checkpointing::Revolve { slots } => format!("revolve:{slots}"),
        Checkpointing::Online { slots } => format!("online:{slots}"),
        other => format!("{other:?}"),
    }
}

/// Parses `store-all`, `solution-only`, `revolve` ([`DEFAULT_REVOLVE_SLOTS`] slots),
/// `revolve:K` or `online:K`.
pub fn parse_mode(text: &str) -> std::result::Result<Checkpointing, String> {
    let slots = |k: &str| -> std::result::Result<usize, String> {
        match k.parse::<usize>() {
            Ok(k) if k >= 1 => Ok(k),
            _ => Err(format!("`{text}`: slots must be a positive integer")),
        }
    };
    match text.trim().split_once(':') {
        None => match text.trim() {
            "store-all" => Ok(Checkpointing::StoreAll),
            "solution-only" => Ok(Checkpointing::SolutionOnly),
            "revolve" => Ok(Checkpointing::Revolve {
                slots: DEFAULT_REVOLVE_SLOTS,
            }),
            other => Err(format!(
                "unknown checkpoint mode `{other}` (store-all, solution-only, revolve, \
                 revolve:K, online:K)"
            )),
        },
        Some(("revolve", k)) => Ok(Checkpointing::Revolve { slots: slots(k)? }),
        Some(("online", k)) => Ok(Checkpointing::Online { slots: slots(k)? }),
        Some(_) => Err(format!(
            "unknown checkpoint mode `{text}` (store-all, solution-only, revolve, revolve:K, \
             online:K)"
        )),
    }
}

/// What one training run produced.
#[derive(Debug)]
pub struct TrainResult {
    /// The checkpoint mode of the ODE block.
    pub mode: Checkpointing,
    /// Cross-entropy of each iteration's minibatch.
    pub losses: Vec<f64>,
    /// Wall time of each iteration (minibatch, forward, backward, Adam step) in seconds.
    pub iteration_seconds: Vec<f64>,
    /// Accuracy on the training set (at most `eval_limit` images) after training.
    pub train_accuracy: f64,
    /// Accuracy on the test set (at most `eval_limit` images) after training.
    pub test_accuracy: f64,
    /// Increase of the peak resident set during the training iterations, in bytes; `None`
    /// where it cannot be measured (not Linux).
    pub peak_rss_increase: Option<u64>,
    /// The block's statistics of the last training iteration (forward and backward);
    /// `peak_stored_bytes` is the tensor bytes its checkpoints held.
    pub stats: Stats,
    /// The statistics the block's schedule predicts for one training iteration.
    pub predicted: Stats,
    /// The gradient of the first iteration, `(parameter name, tensor)` sorted by name.
    pub first_gradients: Vec<(String, Tensor)>,
}

impl TrainResult {
    /// Mean wall time per iteration in milliseconds, the first (warm-up) iteration excluded
    /// when there are others.
    pub fn ms_per_iteration(&self) -> f64 {
        let t = if self.iteration_seconds.len() > 1 {
            &self.iteration_seconds[1..]
        } else {
            &self.iteration_seconds[..]
        };
        1e3 * t.iter().sum::<f64>() / t.len().max(1) as f64
    }

    /// Mean loss of the first `k` iterations.
    pub fn first_losses_mean(&self, k: usize) -> f64 {
        let k = k.clamp(1, self.losses.len().max(1));
        self.losses.iter().take(k).sum::<f64>() / k as f64
    }

    /// Mean loss of the last `k` iterations.
    pub fn last_losses_mean(&self, k: usize) -> f64 {
        let k = k.clamp(1, self.losses.len().max(1));
        self.losses.iter().rev().take(k).sum::<f64>() / k as f64
    }
}

/// Trains the classifier once with the ODE block checkpointing as `mode`;
/// `on_iteration(iteration, loss)` is called after each iteration (from 1).
///
/// Time and memory are measured after one untimed warm-up pass of a throw-away network. The
/// weights and the minibatch order depend only on `config.seed`, so runs in different
/// modes compute the same gradients (to the bit, as the discrete adjoint is exact for each
/// schedule and recomputation repeats the same operations).
pub fn train(
    config: &OdeNetConfig,
    data: &Data,
    mode: &Checkpointing,
    mut on_iteration: impl FnMut(usize, f64),
) -> Result<TrainResult> {
    config.validate()?;
    let n_train = data.train.len();
    if n_train == 0 {
        return Err(Error::Usage("the training set is empty".into()));
    }
    let batch = config.batch_size.min(n_train);
    let (h, w) = data.train.image_size();
    let (fh, fw) = config.feature_size(h, w);
    if fh < 2 || fw < 2 || data.test.image_size() != (h, w) {
        return Err(Error::Usage(format!(
            "{h}×{w} training and {:?} test images are too small for the stem or differ \
             (the block would see {fh}×{fw} feature maps)",
            data.test.image_size()
        )));
    }
    warm_up(config, data, mode, batch)?;
    let net = OdeNet::new(config, mode.clone())?;
    let mut opt = nn::Adam::default().build(&net.vs, config.learning_rate)?;
    let mut ode_opt = nn::Adam::default().build(&net.ode_vs, config.learning_rate)?;

    let probe = RssProbe::start();
    let mut rng = SplitMix64(config.seed ^ 0x6d69_6e69_6261_7463); // "minibatc"
    let mut order = rng.permutation(n_train);
    let mut cursor = 0;
    let mut losses = Vec::with_capacity(config.iterations);
    let mut iteration_seconds = Vec::with_capacity(config.iterations);
    let mut first_gradients = Vec::new();
    let mut predicted = Stats::default();
    for it in 1..=config.iterations {
        let start = Instant::now();
        if cursor + batch > n_train {
            order = rng.permutation(n_train);
            cursor = 0;
        }
        let idx = Tensor::from_slice(&order[cursor..cursor + batch]);
        cursor += batch;
        let x = data.train.images.index_select(0, &idx);
        let y = data.train.labels.index_select(0, &idx);
        if it == 1 {
            predicted = net.block.predicted_stats(&tch::no_grad(|| net.stem(&x)))?;
        }
        opt.zero_grad();
        ode_opt.zero_grad();
        let loss = net.loss(&x, &y)?;
        loss.f_backward()?;
        if it == 1 {
            first_gradients = net.gradients();
        }
        opt.step();
        ode_opt.step();
        let value = loss.double_value(&[]);
        iteration_seconds.push(start.elapsed().as_secs_f64());
        if !value.is_finite() {
            return Err(Error::Usage(format!(
                "the loss became {value} at iteration {it}; lower the learning rate"
            )));
        }
        losses.push(value);
        on_iteration(it, value);
    }
    let peak_rss_increase = probe.and_then(|p| p.increase());
    let stats = net.block.stats()?;
    let train_accuracy = net.accuracy(&data.train, config.eval_limit)?;
    let test_accuracy = net.accuracy(&data.test, config.eval_limit)?;
    Ok(TrainResult {
        mode: mode.clone(),
        losses,
        iteration_seconds,
        train_accuracy,
        test_accuracy,
        peak_rss_increase,
        stats,
        predicted,
        first_gradients,
    })
}

/// One untimed forward and backward pass of a throw-away network, so that the one-time set-up
/// of libtorch (thread pool, oneDNN kernels for these shapes) is charged to neither the time
/// nor the memory of the run.
fn warm_up(config: &OdeNetConfig, data: &Data, mode: &Checkpointing, batch: usize) -> Result<()> {
    let net = OdeNet::new(config, mode.clone())?;
    let x = data.train.images.narrow(0, 0, batch as i64);
    let y = data.train.labels.narrow(0, 0, batch as i64);
    net.loss(&x, &y)?.f_backward()?;
    Ok(())
}

/// Progress of [`compare`].
#[derive(Debug)]
pub enum Event<'a> {
    /// Training in `mode` starts (run `index` of `of`).
    Started {
        /// The mode.
        mode: &'a Checkpointing,
        /// Its position in the list, from 0.
        index: usize,
        /// Number of modes.
        of: usize,
    },
    /// An iteration finished.
    Iteration {
        /// The mode.
        mode: &'a Checkpointing,
        /// Iteration, from 1.
        iteration: usize,
        /// Its minibatch loss.
        loss: f64,
    },
    /// Training and evaluation in a mode finished.
    Finished {
        /// Its result.
        result: &'a TrainResult,
    },
}

/// Training runs of the same network, data and seed in several checkpoint modes.
#[derive(Debug)]
pub struct Comparison {
    /// One result per mode, in the order asked for.
    pub results: Vec<TrainResult>,
}

impl Comparison {
    /// Largest `|g − g₀|` over all parameters between each run's first gradient and the first
    /// run's (0 when they agree to the bit); `None` if the parameters differ.
    pub fn max_first_gradient_difference(&self) -> Option<f64> {
        let first = &self.results.first()?.first_gradients;
        let mut worst = 0.0f64;
        for r in &self.results[1..] {
            if r.first_gradients.len() != first.len() {
                return None;
            }
            for ((na, a), (nb, b)) in first.iter().zip(&r.first_gradients) {
                if na != nb || a.size() != b.size() {
                    return None;
                }
                worst = worst.max((a - b).abs().max().double_value(&[]));
            }
        }
        Some(worst)
    }

    /// Whether every run's first gradient equals the first run's bit for bit.
    pub fn first_gradients_identical(&self) -> bool {
        let Some(first) = self.results.first().map(|r| &r.first_gradients) else {
            return true;
        };
        self.results[1..].iter().all(|r| {
            r.first_gradients.len() == first.len()
                && first
                    .iter()
                    .zip(&r.first_gradients)
                    .all(|((na, a), (nb, b))| na == nb && a.equal(b))
        })
    }
}

/// Trains once per mode in `modes` (same seed, so the same weights and minibatches),
/// reporting progress through `on_event`.
pub fn compare(
    config: &OdeNetConfig,
    data: &Data,
    modes: &[Checkpointing],
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Comparison> {
    let mut results = Vec::with_capacity(modes.len());
    for (index, mode) in modes.iter().enumerate() {
        on_event(Event::Started {
            mode,
            index,
            of: modes.len(),
        });
        let result = train(config, data, mode, |iteration, loss| {
            on_event(Event::Iteration {
                mode,
                iteration,
                loss,
            })
        })?;
        on_event(Event::Finished { result: &result });
        results.push(result);
    }
    Ok(Comparison { results })
}
