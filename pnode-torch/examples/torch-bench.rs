//! pnode side of the pnode-torch vs torchdiffeq benchmark (`scripts/bench-torch.sh`).
//!
//! One (workload, checkpointing) per process, one JSON line on stdout:
//!
//! ```text
//! torch-bench --workload b --method revolve [--slots 10] [--weights results/…/b.npz]
//! ```
//!
//! Workloads (tanh MLPs `f(t, u) = L_out(tanh(… tanh(L_in(u))))`, loss = mean of the squared
//! final state, t ∈ [0, 1], float32, one thread):
//!
//! * `a`: 2–64–2, batch 64, 100 steps;
//! * `b`: 64–512–512–64, batch 256, 100 steps;
//! * `c`: 16–128–128–16, batch 128, 2000 steps.
//!
//! The integrator is `Tableau::rk38()` (the 3/8 rule, which is torchdiffeq's `rk4`). The
//! gradient is what a user writes: `y = block.forward(&x)`, `loss = y.square().mean()`,
//! `loss.backward()` with `x` requiring grad. The forward time is `block.forward` under
//! `no_grad`. Times are medians over `--reps` repetitions after one warm-up gradient. The peak
//! RSS increase is measured on one gradient after the warm-up: glibc's `malloc_trim(0)` returns
//! what the warm-up freed (so the measured gradient cannot reuse it unseen), `5` is written to
//! `/proc/self/clear_refs` (resets VmHWM), VmRSS is read, the gradient runs, VmHWM is read. The
//! Python side does the same.
//!
//! `--rhs module` (default) is the generic `ModuleRhs` over a closure of `nn::Linear` layers
//! (its stage VJP runs libtorch's autograd engine); `--rhs mlp` is `MlpRhs` over the same
//! layers (hand-derived VJP, same forward ops).
//!
//! With `--weights`, the weights and the initial state come from an `.npz` written by
//! `benches/torchdiffeq_bench.py --export`, so both sides compute the same loss.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use pnode_torch::pnode_runtime::checkpoint::Checkpointing;
use pnode_torch::pnode_runtime::{Tableau, TimeGrid};
use pnode_torch::tch::{self, Device, Kind, Tensor, nn, nn::Module};
use pnode_torch::{Activation, MlpRhs, ModuleRhs, OdeBlock};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Workload {
    A,
    B,
    C,
}

impl Workload {
    /// `(dim, hidden layers, batch, steps, default repetitions)`.
    fn spec(self) -> (i64, &'static [i64], i64, usize, usize) {
        match self {
            Workload::A => (2, &[64], 64, 100, 20),
            Workload::B => (64, &[512, 512], 256, 100, 5),
            Workload::C => (16, &[128, 128], 128, 2000, 3),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Workload::A => "a",
            Workload::B => "b",
            Workload::C => "c",
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Method {
    StoreAll,
    SolutionOnly,
    Revolve,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Rhs {
    /// `ModuleRhs` over a closure (VJP through libtorch's autograd engine).
    Module,
    /// `MlpRhs` (hand-derived VJP).
    Mlp,
}

#[derive(Parser, Debug)]
#[command(about = "pnode-torch side of the pnode vs torchdiffeq benchmark")]
struct Args {
    /// Workload: a (2–64–2, 100 steps), b (64–512–512–64, 100 steps), c (16–128–128–16, 2000).
    #[arg(long, value_enum)]
    workload: Workload,
    /// Checkpointing mode of the ODE block.
    #[arg(long, value_enum)]
    method: Method,
    /// The right-hand side's implementation.
    #[arg(long, value_enum, default_value = "module")]
    rhs: Rhs,
    /// Revolve's solution slots (default ⌈√N⌉).
    #[arg(long)]
    slots: Option<usize>,
    /// Timed repetitions (the median is reported); default 20 for a, 5 for b, 3 for c.
    #[arg(long)]
    reps: Option<usize>,
    /// `.npz` with `w{i}`, `b{i}` (layer i's weight and bias) and `x0`.
    #[arg(long)]
    weights: Option<String>,
}

fn share(l: &nn::Linear) -> nn::Linear {
    nn::Linear {
        ws: l.ws.shallow_clone(),
        bs: l.bs.as_ref().map(Tensor::shallow_clone),
    }
}

/// The MLP's layers in `vs` and the initial state.
fn build(
    vs: &nn::VarStore,
    workload: Workload,
    weights: Option<&str>,
) -> Result<(Vec<nn::Linear>, Tensor)> {
    let (dim, hidden, batch, _, _) = workload.spec();
    let sizes: Vec<i64> = std::iter::once(dim)
        .chain(hidden.iter().copied())
        .chain(std::iter::once(dim))
        .collect();
    let root = vs.root();
    let layers: Vec<nn::Linear> = sizes
        .windows(2)
        .enumerate()
        .map(|(i, io)| nn::linear(&root / format!("l{i}"), io[0], io[1], Default::default()))
        .collect();
    tch::manual_seed(1);
    let mut x0 = Tensor::randn([batch, dim], (Kind::Float, Device::Cpu));
    if let Some(path) = weights {
        let data = Tensor::read_npz(path).with_context(|| format!("reading {path}"))?;
        let get = |name: &str| -> Result<Tensor> {
            data.iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .with_context(|| format!("{path} has no array {name}"))
        };
        tch::no_grad(|| -> Result<()> {
            for (i, layer) in layers.iter().enumerate() {
                let (w, b) = (get(&format!("w{i}"))?, get(&format!("b{i}"))?);
                if w.size() != layer.ws.size() || w.kind() != Kind::Float {
                    bail!(
                        "w{i}: {:?} {:?}, expected {:?} Float",
                        w.size(),
                        w.kind(),
                        layer.ws.size()
                    );
                }
                layer.ws.shallow_clone().copy_(&w);
                layer.bs.as_ref().expect("bias").shallow_clone().copy_(&b);
            }
            Ok(())
        })?;
        x0 = get("x0")?;
        if x0.size() != [batch, dim] {
            bail!("x0: {:?}, expected [{batch}, {dim}]", x0.size());
        }
    }
    Ok((layers, x0))
}

// SAFETY: glibc's `int malloc_trim(size_t)`, callable at any time from any thread.
#[allow(unsafe_code)]
unsafe extern "C" {
    /// glibc: releases free heap memory to the system.
    safe fn malloc_trim(pad: usize) -> std::ffi::c_int;
}

/// Returns freed heap memory to the system and resets the process's VmHWM to its VmRSS.
fn reset_peak() -> Result<()> {
    malloc_trim(0);
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")
}

/// A field of `/proc/self/status` in bytes.
fn proc_status(field: &str) -> Result<i64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .with_context(|| format!("{field} not in /proc/self/status"))?;
    let kib: i64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed status line")?
        .parse()?;
    Ok(kib * 1024)
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    tch::set_num_threads(1);
    let (_, _, _, n, default_reps) = args.workload.spec();
    let reps = args.reps.unwrap_or(default_reps);
    let slots = args.slots.unwrap_or((n as f64).sqrt().ceil() as usize);
    let checkpointing = match args.method {
        Method::StoreAll => Checkpointing::StoreAll,
        Method::SolutionOnly => Checkpointing::SolutionOnly,
        Method::Revolve => Checkpointing::Revolve { slots },
    };

    let vs = nn::VarStore::new(Device::Cpu);
    let (layers, x0) = build(&vs, args.workload, args.weights.as_deref())?;
    let params = vs.trainable_variables();
    let f_layers: Vec<nn::Linear> = layers.iter().map(share).collect();
    let f = move |_t: f64, u: &Tensor| {
        let (last, hidden) = f_layers.split_last().expect("at least one layer");
        let mut h = u.shallow_clone();
        for l in hidden {
            h = l.forward(&h).tanh();
        }
        last.forward(&h)
    };
    let (tableau, grid) = (Tableau::rk38(), TimeGrid::uniform(0.0, 1.0, n)?);
    let block = match args.rhs {
        Rhs::Module => OdeBlock::final_state(ModuleRhs::new(&vs, f), tableau, grid, checkpointing)?,
        Rhs::Mlp => OdeBlock::final_state(
            MlpRhs::from_linears(&layers, Activation::Tanh)?,
            tableau,
            grid,
            checkpointing,
        )?,
    };

    let forward = || -> Result<Tensor> { Ok(tch::no_grad(|| block.forward(&x0))?) };
    let gradient = || -> Result<(f64, Tensor)> {
        for p in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let x = x0.detach().copy().set_requires_grad(true);
        let y = block.forward(&x)?;
        let loss = y.square().mean(Kind::Float);
        loss.backward();
        Ok((loss.double_value(&[]), x.grad()))
    };
    let timed = |run: &dyn Fn() -> Result<()>| -> Result<Vec<f64>> {
        (0..reps)
            .map(|_| {
                let start = Instant::now();
                run()?;
                Ok(start.elapsed().as_secs_f64())
            })
            .collect()
    };

    let (loss, dx) = gradient()?; // warm-up
    reset_peak()?;
    let rss_before = proc_status("VmRSS")?;
    drop(gradient()?);
    let peak = proc_status("VmHWM")?;
    let stats = block.stats()?;
    drop(forward()?); // warm-up
    let forward_times = timed(&|| forward().map(drop))?;
    let gradient_times = timed(&|| gradient().map(drop))?;

    let grad_params_norm = params
        .iter()
        .map(|p| p.grad().square().sum(Kind::Float).double_value(&[]))
        .sum::<f64>()
        .sqrt();
    let method = match args.method {
        Method::StoreAll => "store-all".to_owned(),
        Method::SolutionOnly => "solution-only".to_owned(),
        Method::Revolve => format!("revolve-{slots}"),
    };
    let method = match args.rhs {
        Rhs::Module => method,
        Rhs::Mlp => format!("{method} (MlpRhs)"),
    };
    let out = serde_json::json!({
        "side": "pnode",
        "workload": args.workload.name(),
        "method": method,
        "dtype": "float32",
        "tableau": "rk38",
        "steps": n,
        "reps": reps,
        "forward_s": median(&forward_times),
        "gradient_s": median(&gradient_times),
        "forward_times": forward_times,
        "gradient_times": gradient_times,
        "rss_before_bytes": rss_before,
        "peak_rss_increase_bytes": peak - rss_before,
        "loss": loss,
        "grad_x_norm": dx.norm().double_value(&[]),
        "grad_params_norm": grad_params_norm,
        "stats": serde_json::to_value(stats)?,
        "loadavg": std::fs::read_to_string("/proc/loadavg")?
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>(),
    });
    println!("{out}");
    Ok(())
}
