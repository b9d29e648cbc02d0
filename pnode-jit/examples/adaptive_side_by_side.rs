//! pnode side of the adaptive-stepping benchmark against diffrax and torchdiffeq
//! (`scripts/bench-adaptive.sh`, issue 16).
//!
//! Error-controlled steps (`AdaptiveSolver`, automatic first step) at `rtol = 1e-6`,
//! `atol = 1e-9`, store-all, exact discrete gradient `dL/du0` and `dL/dθ` on the accepted grid,
//! f64, one thread:
//!
//! * `lv`: dopri5; Lotka–Volterra `f = [α x − β x y, δ x y − γ y]`,
//!   `[α, β, δ, γ] = [1.5, 1, 3, 1]`, `u0 = [1, 1]`, to t = 10, loss `L = Σ_i u_i(10)`;
//! * `mlp`: dopri5; `f(u) = W2 tanh(W1 u + b1) + b2` (widths 2-50-2, the spiral network's
//!   shape) on a batch of 64 points (state `u` = 64 × 2 row-major, 252 parameters, layer by
//!   layer `W` (out × in, row-major) then `b`), Glorot weights from seed 0 scaled by 3 (so the
//!   field moves the points visibly), small fixed biases, to t = 5, loss `L = ½ Σ_i u_i(5)²`;
//! * `robertson`: Kværnø's 5(4) ESDIRK (`DirkTableau::kvaerno5()`, Newton with
//!   `NewtonConfig::default()`); Robertson's kinetics, `k = [0.04, 3e7, 1e4]`,
//!   `y0 = [1, 0, 0]`, to t = 1e5, loss `L = 1e4 y2(1e5) + y3(1e5)`.
//!
//! Contestants, each with pnode's default PI controller: for dopri5 the fused JIT trial step
//! (`JitErkStepper::with_error_estimate` through `AdaptiveSolver::new`), the IR compiled by
//! Cranelift (`JitModel`) and the hand-written models (`pnode_runtime::problems`) through the
//! runtime's `EmbeddedErk`; for Robertson `JitModel` and the hand-written model through
//! `EmbeddedDirk`. One JIT contestant runs once more with the I controller of diffrax's default
//! `PIDController` gains (`k_I = 1`, `k_P = 0`), whose step sequence is comparable to
//! diffrax's. Each runs a few warm-up gradients, then `--reps` timed ones (one `Instant` per
//! gradient; the thread's CPU time over all of them from `CLOCK_THREAD_CPUTIME_ID`, which on a
//! shared machine leaves out the time spent waiting for the core).
//!
//! The reference gradient is pnode's own, hand-written model, at tight tolerances: dopri5 at
//! `rtol = atol = 1e-12` (steps ~16× smaller, discretization error ~10⁶× smaller than the
//! contestants'), kvaerno5 at `rtol = 1e-10`, `atol = 1e-14`. Every contestant's gradient
//! error is `max_i |g_i − g_ref,i| / max_i |g_ref,i|` over `dL/du0` and `dL/dθ` together; the
//! Python sides read the inputs and the reference from this line.
//!
//! Prints one JSON line per problem: the inputs (`u0`, `p`), the reference loss and gradient,
//! and per contestant its stepper, loss, accepted and rejected steps, RHS and VJP evaluations,
//! times and gradient error.
//!
//! `cargo run --release -p pnode-jit --example adaptive_side_by_side --
//! [--problem lv|mlp|robertson|all] [--reps-lv N] [--reps-mlp N] [--reps-robertson N]`

use pnode_testkit::cpu::thread_cpu_time;
use std::error::Error;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pnode_ir::layers::{Activation, mlp, mlp_param_len};
use pnode_ir::{Builder, Function, Layout};
use pnode_jit::{JitErkStepper, JitModel};
use pnode_runtime::adaptive::{
    AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver, AdaptiveStats, EmbeddedStepper,
};
use pnode_runtime::model::{RhsJvp, RhsVjp};
use pnode_runtime::problems::{LotkaVolterra, Mlp, Robertson};
use pnode_runtime::stepper::AdjointStepper;
use pnode_runtime::{DirkTableau, Gradient, NewtonConfig, Tableau};

type Res<T> = Result<T, Box<dyn Error>>;

/// The benchmark's tolerances (issue 16).
const RTOL: f64 = 1e-6;
const ATOL: f64 = 1e-9;
/// The reference solve's tolerances (dopri5).
const REF_TOL: f64 = 1e-12;
const STORE_ALL: AdaptiveCheckpointing = AdaptiveCheckpointing::StoreAll;
/// The stepper names the JSON line reports.
const FUSED: &str = "fused JIT dopri5 trial step (JitErkStepper::with_error_estimate)";
const ERK: &str = "runtime EmbeddedErk dopri5";
const DIRK: &str = "runtime EmbeddedDirk kvaerno5, Newton default";

/// `f = [α x − β x y, δ x y − γ y]` as IR (the IR of `benches/lotka_volterra.rs`).
fn lv_ir() -> Res<Function> {
    let mut b = Builder::new(Layout::new(2, 4));
    let x = b.state(0, [])?;
    let y = b.state(1, [])?;
    let mut k = Vec::with_capacity(4);
    for i in 0..4 {
        k.push(b.param(i, [])?);
    }
    let xy = b.mul(x, y)?;
    let ax = b.mul(k[0], x)?;
    let bxy = b.mul(k[1], xy)?;
    let f0 = b.sub(ax, bxy)?;
    let dxy = b.mul(k[2], xy)?;
    let gy = b.mul(k[3], y)?;
    let f1 = b.sub(dxy, gy)?;
    let f = b.stack(&[f0, f1], 0)?;
    Ok(b.finish_rhs(&[f])?)
}

/// The tanh MLP with `widths` on `batch` samples as IR (the IR of `benches/mlp.rs`).
fn mlp_ir(widths: &[usize], batch: usize) -> Res<Function> {
    let mut b = Builder::new(Layout::new(batch * widths[0], mlp_param_len(widths)));
    let u = b.state(0, [batch, widths[0]])?;
    let (y, _) = mlp(&mut b, u, widths, 0, Activation::Tanh)?;
    let y = b.flatten(y)?;
    Ok(b.finish_rhs(&[y])?)
}

/// Robertson's kinetics `f = [−k1 y1 + k3 y2 y3, k1 y1 − k3 y2 y3 − k2 y2², k2 y2²]` as IR, the
/// rates `θ = [k1, k2, k3]`.
fn robertson_ir() -> Res<Function> {
    let mut b = Builder::new(Layout::new(3, 3));
    let y: Vec<_> = (0..3).map(|i| b.state(i, [])).collect::<Result<_, _>>()?;
    let k: Vec<_> = (0..3).map(|i| b.param(i, [])).collect::<Result<_, _>>()?;
    let r1 = b.mul(k[0], y[0])?;
    let y23 = b.mul(y[1], y[2])?;
    let r3 = b.mul(k[2], y23)?;
    let y22 = b.mul(y[1], y[1])?;
    let r2 = b.mul(k[1], y22)?;
    let f0 = b.sub(r3, r1)?;
    let d = b.sub(r1, r3)?;
    let f1 = b.sub(d, r2)?;
    let f = b.stack(&[f0, f1, r2], 0)?;
    Ok(b.finish_rhs(&[f])?)
}

/// `L = 1e4 y2 + y3` (Robertson: `y2` is ~1e-5, so it gets the large weight).
fn robertson_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.copy_from_slice(&[0.0, 1e4, 1.0]);
    1e4 * out[1] + out[2]
}

/// `L = Σ_i u_i`, `∂L/∂u_i = 1`.
fn sum_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.fill(1.0);
    out.iter().sum()
}

/// `L = ½ Σ_i u_i²`, `∂L/∂u_i = u_i`.
fn half_square_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.copy_from_slice(out);
    0.5 * out.iter().map(|v| v * v).sum::<f64>()
}

/// One problem: IR, end time, inputs, loss.
struct Problem {
    name: &'static str,
    method: Method,
    f: Function,
    t1: f64,
    u0: Vec<f64>,
    p: Vec<f64>,
    loss: fn(&[f64], &mut [f64]) -> f64,
    reps: usize,
}

/// Loss, gradient, step counts and the times of the timed gradients of one contestant.
struct Run {
    name: &'static str,
    /// Which stepper ran the trial steps.
    stepper: &'static str,
    loss: f64,
    grad: Gradient,
    stats: AdaptiveStats,
    /// Wall-clock time of each timed gradient.
    times: Vec<Duration>,
    /// CPU time of this thread over all timed gradients, divided by their number (`None`
    /// where the thread CPU clock is unavailable).
    cpu_per_rep: Option<Duration>,
}

/// The step-size controller of a contestant.
#[derive(Clone, Copy)]
enum Gains {
    /// pnode's default PI controller (`k_I = 0.3`, `k_P = 0.4`).
    Pi,
    /// The I controller `h·0.9·err^(−1/5)` (`k_I = 1`, `k_P = 0`): diffrax's default
    /// `PIDController` gains, so the step sequences are comparable.
    I,
}

/// Adaptive options at the given tolerances and gains, with room for the reference's steps.
fn options(rtol: f64, atol: f64, gains: Gains) -> AdaptiveOptions {
    let mut options = AdaptiveOptions::with_tolerances(rtol, atol);
    options.max_steps = 10_000_000;
    if let Gains::I = gains {
        options.controller.k_i = 1.0;
        options.controller.k_p = 0.0;
    }
    options
}

/// The method of a problem: dopri5 (explicit) or Kværnø's 5(4) ESDIRK.
#[derive(Clone, Copy, PartialEq)]
enum Method {
    Dopri5,
    Kvaerno5,
}

/// Runs `WARMUP` untimed and `reps` timed gradients of `model` through `solver`.
fn time_gradient<S, M>(
    name: &'static str,
    stepper: &'static str,
    mut solver: AdaptiveSolver<S>,
    model: &mut M,
    pb: &Problem,
) -> Res<Run>
where
    M: RhsVjp,
    S: EmbeddedStepper<M> + AdjointStepper<M>,
{
    const WARMUP: usize = 3;
    let mut last = None;
    for _ in 0..WARMUP {
        last = Some(solver.value_and_grad(model, &pb.u0, &pb.p, pb.loss)?);
    }
    let mut times = Vec::with_capacity(pb.reps);
    let cpu_start = thread_cpu_time();
    for _ in 0..pb.reps {
        let start = Instant::now();
        let r = solver.value_and_grad(model, &pb.u0, &pb.p, pb.loss)?;
        times.push(start.elapsed());
        last = Some(r);
    }
    let cpu_per_rep = match (cpu_start, thread_cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).div_f64(pb.reps as f64)),
        _ => None,
    };
    let (loss, grad) = last.ok_or("no gradient computed")?;
    Ok(Run {
        name,
        stepper,
        loss,
        grad,
        stats: solver.stats(),
        times,
        cpu_per_rep,
    })
}

/// Largest `|a_i − b_i|` over the largest `|b_i|` (both gradients concatenated).
fn rel_diff(a: &Gradient, b: &Gradient) -> f64 {
    let xs = a.du0.iter().chain(&a.dp);
    let ys: Vec<f64> = b.du0.iter().chain(&b.dp).copied().collect();
    let num = xs.zip(&ys).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let den = ys.iter().map(|y| y.abs()).fold(0.0, f64::max);
    num / den
}

fn json_array(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("[{}]", items.join(","))
}

fn secs(v: &[Duration]) -> Vec<f64> {
    v.iter().map(Duration::as_secs_f64).collect()
}

/// The explicit contestants: the fused JIT trial step (`JitErkStepper` with its error
/// estimate), `JitModel` and the hand-written model through `EmbeddedErk`.
fn explicit_runs<H: RhsVjp + Clone>(pb: &Problem, hand: &H) -> Res<Vec<Run>> {
    let (t1, tableau) = (pb.t1, Tableau::dopri5);
    let mut jit = JitModel::new(&pb.f)?;
    let mut runs = Vec::new();
    for (name, gains) in [
        ("jit-fused", Gains::Pi),
        ("jit-fused, I controller", Gains::I),
    ] {
        let fused = JitErkStepper::with_error_estimate(tableau(), &pb.f)?;
        let o = options(RTOL, ATOL, gains);
        let s = AdaptiveSolver::new(fused, &jit, 0.0, &[t1], o, AdaptiveCheckpointing::StoreAll)?;
        runs.push(time_gradient(name, FUSED, s, &mut jit, pb)?);
    }
    let o = options(RTOL, ATOL, Gains::Pi);
    let s = AdaptiveSolver::explicit(tableau(), &jit, 0.0, &[t1], o.clone(), STORE_ALL)?;
    runs.push(time_gradient("jit-model", ERK, s, &mut jit, pb)?);
    let mut hand = hand.clone();
    let s = AdaptiveSolver::explicit(tableau(), &hand, 0.0, &[t1], o, STORE_ALL)?;
    runs.push(time_gradient("hand-written", ERK, s, &mut hand, pb)?);
    Ok(runs)
}

/// The implicit contestants: `JitModel` and the hand-written model through `EmbeddedDirk`
/// (kvaerno5, Newton with the default configuration), pnode's PI and the I controller.
fn implicit_runs<H: RhsVjp + RhsJvp + Clone>(pb: &Problem, hand: &H) -> Res<Vec<Run>> {
    let t1 = pb.t1;
    let mut jit = JitModel::new(&pb.f)?;
    let mut hand = hand.clone();
    let mut runs = Vec::new();
    for (name, gains) in [
        ("jit-model", Gains::Pi),
        ("jit-model, I controller", Gains::I),
    ] {
        let s = AdaptiveSolver::dirk(
            DirkTableau::kvaerno5(),
            NewtonConfig::default(),
            &jit,
            0.0,
            &[t1],
            options(RTOL, ATOL, gains),
            STORE_ALL,
        )?;
        runs.push(time_gradient(name, DIRK, s, &mut jit, pb)?);
    }
    let s = AdaptiveSolver::dirk(
        DirkTableau::kvaerno5(),
        NewtonConfig::default(),
        &hand,
        0.0,
        &[t1],
        options(RTOL, ATOL, Gains::Pi),
        STORE_ALL,
    )?;
    runs.push(time_gradient("hand-written", DIRK, s, &mut hand, pb)?);
    Ok(runs)
}

/// The reference gradient: the hand-written model with the problem's method at tight
/// tolerances (`REF_TOL`; Robertson: `rtol = 1e-10`, `atol = 1e-14`).
fn reference<H: RhsVjp + RhsJvp + Clone>(pb: &Problem, hand: &H) -> Res<(f64, Gradient, u64)> {
    let mut model = hand.clone();
    Ok(match pb.method {
        Method::Dopri5 => {
            let o = options(REF_TOL, REF_TOL, Gains::Pi);
            let mut s =
                AdaptiveSolver::explicit(Tableau::dopri5(), &model, 0.0, &[pb.t1], o, STORE_ALL)?;
            let (l, g) = s.value_and_grad(&mut model, &pb.u0, &pb.p, pb.loss)?;
            (l, g, s.stats().accepted_steps)
        }
        Method::Kvaerno5 => {
            let o = options(1e-10, 1e-14, Gains::Pi);
            let mut s = AdaptiveSolver::dirk(
                DirkTableau::kvaerno5(),
                NewtonConfig::default(),
                &model,
                0.0,
                &[pb.t1],
                o,
                STORE_ALL,
            )?;
            let (l, g) = s.value_and_grad(&mut model, &pb.u0, &pb.p, pb.loss)?;
            (l, g, s.stats().accepted_steps)
        }
    })
}

/// Times every contestant on `pb` with the hand-written model `hand` and prints the JSON line.
fn bench<H: RhsVjp + RhsJvp + Clone>(pb: &Problem, hand: &H, extra: &str) -> Res<()> {
    let (ref_loss, ref_grad, ref_steps) = reference(pb, hand)?;
    let ref_by = match pb.method {
        Method::Dopri5 => format!("pnode dopri5, rtol = atol = {REF_TOL:e}"),
        Method::Kvaerno5 => "pnode kvaerno5, rtol = 1e-10, atol = 1e-14".to_string(),
    };
    let runs = match pb.method {
        Method::Dopri5 => explicit_runs(pb, hand)?,
        Method::Kvaerno5 => implicit_runs(pb, hand)?,
    };
    let mut contestants = String::new();
    for (i, r) in runs.iter().enumerate() {
        if i > 0 {
            contestants.push(',');
        }
        write!(
            contestants,
            "\"{}\":{{\"stepper\":\"{}\",\"loss\":{:?},\
             \"accepted\":{},\"rejected\":{},\"rhs_evals\":{},\"vjp_evals\":{},\
             \"times\":{},\"cpu_s_per_rep\":{},\"grad_rel_err\":{:?}}}",
            r.name,
            r.stepper,
            r.loss,
            r.stats.accepted_steps,
            r.stats.rejected_steps,
            r.stats.sweep.rhs_evals,
            r.stats.sweep.vjp_evals,
            json_array(&secs(&r.times)),
            r.cpu_per_rep
                .map_or("null".to_string(), |c| format!("{:?}", c.as_secs_f64())),
            rel_diff(&r.grad, &ref_grad)
        )?;
    }
    println!(
        "{{\"side\":\"pnode\",\"problem\":\"{}\",\"t1\":{:?},\"rtol\":{RTOL:?},\"atol\":{ATOL:?},\
         \"reps\":{},{extra}\"u0\":{},\"p\":{},\
         \"reference\":{{\"by\":\"{ref_by}\",\"accepted\":{ref_steps},\
         \"loss\":{ref_loss:?},\"grad_u0\":{},\"grad_p\":{}}},\
         \"contestants\":{{{contestants}}}}}",
        pb.name,
        pb.t1,
        pb.reps,
        json_array(&pb.u0),
        json_array(&pb.p),
        json_array(&ref_grad.du0),
        json_array(&ref_grad.dp),
    );
    for r in &runs {
        let mut t = r.times.clone();
        t.sort();
        eprintln!(
            "{} {:<23} {} accepted, {} rejected; median {:>9.1} µs  min {:>9.1} µs  \
             CPU {:>9.1} µs  gradient error {:.1e}",
            pb.name,
            r.name,
            r.stats.accepted_steps,
            r.stats.rejected_steps,
            t[t.len() / 2].as_secs_f64() * 1e6,
            t[0].as_secs_f64() * 1e6,
            r.cpu_per_rep.map_or(f64::NAN, |c| c.as_secs_f64() * 1e6),
            rel_diff(&r.grad, &ref_grad)
        );
    }
    Ok(())
}

fn parse_count(args: &mut impl Iterator<Item = String>, flag: &str) -> Res<usize> {
    let v = args.next().ok_or(format!("{flag} needs a value"))?;
    let n: usize = v
        .parse()
        .map_err(|_| format!("{flag}: expected a positive integer, got {v:?}"))?;
    if n == 0 {
        return Err(format!("{flag} must be positive").into());
    }
    Ok(n)
}

fn main() -> Res<()> {
    let mut problem = "all".to_string();
    let (mut reps_lv, mut reps_mlp, mut reps_rob) = (500, 50, 20);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--problem" => problem = args.next().ok_or("--problem needs a value")?,
            "--reps-lv" => reps_lv = parse_count(&mut args, "--reps-lv")?,
            "--reps-mlp" => reps_mlp = parse_count(&mut args, "--reps-mlp")?,
            "--reps-robertson" => reps_rob = parse_count(&mut args, "--reps-robertson")?,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: adaptive_side_by_side \
                     [--problem lv|mlp|robertson|all] [--reps-lv N] [--reps-mlp N] \
                     [--reps-robertson N]"
                )
                .into());
            }
        }
    }
    if !matches!(problem.as_str(), "lv" | "mlp" | "robertson" | "all") {
        return Err(format!("--problem must be lv, mlp, robertson or all, got {problem:?}").into());
    }
    let run = |name: &str| problem == "all" || problem == name;
    if run("lv") {
        let pb = Problem {
            name: "lv",
            method: Method::Dopri5,
            f: lv_ir()?,
            t1: 10.0,
            u0: LotkaVolterra::default_u0(),
            p: LotkaVolterra::default_params(),
            loss: sum_loss,
            reps: reps_lv,
        };
        bench(&pb, &LotkaVolterra::new(), "")?;
    }
    if run("mlp") {
        let (widths, batch) = ([2, 50, 2], 64);
        let hand = Mlp::new(&widths, batch)?;
        let mut p: Vec<f64> = hand.init_params(0).iter().map(|w| 3.0 * w).collect();
        // Small fixed biases (init_params leaves them zero), so their gradients are tested too.
        let mut off = 0;
        for w in widths.windows(2) {
            off += w[1] * w[0];
            for (j, b) in p[off..off + w[1]].iter_mut().enumerate() {
                *b = 0.02 * ((j * 7 % 11) as f64 - 5.0);
            }
            off += w[1];
        }
        let u0: Vec<f64> = (0..batch * widths[0])
            .map(|i| ((i * 37 % 19) as f64 - 9.0) / 9.0)
            .collect();
        let pb = Problem {
            name: "mlp",
            method: Method::Dopri5,
            f: mlp_ir(&widths, batch)?,
            t1: 5.0,
            u0,
            p,
            loss: half_square_loss,
            reps: reps_mlp,
        };
        let extra = format!("\"widths\":[2,50,2],\"batch\":{batch},");
        bench(&pb, &hand, &extra)?;
    }
    if run("robertson") {
        let pb = Problem {
            name: "robertson",
            method: Method::Kvaerno5,
            f: robertson_ir()?,
            t1: 1e5,
            u0: vec![1.0, 0.0, 0.0],
            p: Robertson::default_params(),
            loss: robertson_loss,
            reps: reps_rob,
        };
        bench(&pb, &Robertson::new(), "")?;
    }
    Ok(())
}
