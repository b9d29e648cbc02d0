//! ODE-Net image classifier (Chen et al. 2018): conv stem → ODE block (RK4, exact discrete
//! adjoint) → pooled linear head, trained once per checkpoint mode on MNIST or on a generated
//! digit-like set, with accuracy, time per iteration and memory compared side by side.
//!
//! `cargo run --release -p pnode-torch --features torch --example odenet -- --help` lists
//! the options. Prints a progress bar per mode and a summary table, and writes `losses.svg`
//! (loss curve per mode) and `summary.json` to the output directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use pnode_torch::demo::odenet::{
    self, Comparison, Event, OdeNetConfig, SyntheticConfig, mode_name, parse_mode,
};
use pnode_torch::demo::parse_device;
use pnode_torch::pnode_runtime::checkpoint::Checkpointing;
use serde_json::json;

/// Train an ODE-Net image classifier (conv stem → ODE block of 3×3 convs with GroupNorm →
/// pooling → linear) once per checkpoint mode and compare accuracy, time per iteration and
/// memory.
///
/// The ODE block integrates du/dt = f(u) on [0, 1] with RK4 and gets its gradient from the
/// exact discrete adjoint, executed under each checkpoint schedule in turn: store-all keeps
/// every stage, solution-only keeps every step's solution and recomputes stages, revolve
/// keeps K solutions and recomputes steps. All modes start from the same weights and see the
/// same minibatches, so their gradients agree to the bit; they differ in time and memory.
///
/// Without --mnist, trains on a generated set of digit-like stroke images (10 classes, 28×28,
/// random shift, rotation, shear, stroke width and noise; deterministic from --seed).
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Directory with the four plain (gunzipped) MNIST IDX files: train-images-idx3-ubyte,
    /// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte. Without it,
    /// the generated set is used.
    #[arg(long, value_name = "DIR")]
    mnist: Option<PathBuf>,
    /// Training iterations (minibatches) per mode.
    #[arg(long, default_value_t = 150)]
    iterations: usize,
    /// Images per minibatch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// RK4 steps of the ODE block on [0, 1].
    #[arg(long, default_value_t = 6)]
    steps: usize,
    /// Checkpoint modes to compare, comma-separated: store-all, solution-only, revolve
    /// (2 slots), revolve:K, online:K.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "store-all,solution-only,revolve",
        value_parser = parse_mode
    )]
    modes: Vec<Checkpointing>,
    /// Channels of the stem, the ODE block and the head (even up to 64, a multiple of 32
    /// above; GroupNorm uses min(32, channels/2) groups).
    #[arg(long, default_value_t = 64)]
    channels: i64,
    /// Stride-2 convolutions in the stem: 1 (3×3; the block sees 14×14 maps of 28×28
    /// images) or 2 (then 4×4, as ODE-Net's downsampling; 7×7 maps, four times cheaper).
    #[arg(long, default_value_t = 2)]
    downsample: u32,
    /// Adam learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Seed of the weights, the minibatch order and the generated set.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// libtorch intra-op threads; 0: libtorch's choice (one per core). One is the default:
    /// it keeps the timings steady on a shared machine, where libtorch's spinning workers
    /// can make two threads ten times slower than one.
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// Device: cpu, cuda (GPU 0) or auto (CUDA when libtorch sees a GPU).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Training images of the generated set.
    #[arg(long, default_value_t = 2000)]
    train_size: usize,
    /// Test images of the generated set.
    #[arg(long, default_value_t = 500)]
    test_size: usize,
    /// Measure accuracy on at most this many images of each set (0: all; a full MNIST test
    /// pass is slow on a CPU).
    #[arg(long, default_value_t = 1000)]
    eval_limit: usize,
    /// Directory for losses.svg and summary.json (created if missing).
    #[arg(long, default_value = "results/odenet")]
    out: PathBuf,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.modes.is_empty() {
        bail!("--modes needs at least one checkpoint mode");
    }
    match args.threads {
        0 => {}
        n if n > 0 => pnode_torch::tch::set_num_threads(n),
        n => bail!("--threads must be 0 (libtorch's choice) or positive, got {n}"),
    }
    let config = OdeNetConfig {
        channels: args.channels,
        downsample: args.downsample,
        steps: args.steps,
        iterations: args.iterations,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        seed: args.seed,
        eval_limit: (args.eval_limit > 0).then_some(args.eval_limit),
        device: parse_device(&args.device).map_err(anyhow::Error::msg)?,
    };
    config.validate()?;

    let load = Instant::now();
    let data = match &args.mnist {
        Some(dir) => odenet::load_mnist(dir).context("loading MNIST")?,
        None => odenet::generate(&SyntheticConfig {
            train: args.train_size,
            test: args.test_size,
            seed: args.seed,
            ..SyntheticConfig::default()
        })
        .context("generating the data set")?,
    };
    let (h, w) = data.train.image_size();
    println!(
        "data: {} ({} training, {} test images of {h}×{w}, ready in {:.2} s)",
        data.source,
        data.train.len(),
        data.test.len(),
        load.elapsed().as_secs_f64()
    );
    let (fh, fw) = config.feature_size(h, w);
    println!(
        "network: conv 3×3/2 (1→{c}){} + GN + ReLU → ODE block on {fh}×{fw}×{c} \
         [GN→ReLU→conv 3×3→GN→ReLU→conv 3×3→GN, RK4 × {} steps on [0, 1]] → GN + ReLU → avg \
         pool → linear {c}→10",
        if config.downsample > 1 {
            format!(" + GN + ReLU → conv 4×4/2 ({0}→{0})", config.channels)
        } else {
            String::new()
        },
        config.steps,
        c = config.channels
    );
    println!(
        "training: Adam (lr {}), {} iterations of {} images per mode, seed {}, {} libtorch \
         thread(s)\n",
        config.learning_rate,
        config.iterations,
        config.batch_size,
        config.seed,
        pnode_torch::tch::get_num_threads()
    );

    let style = ProgressStyle::with_template("{prefix:>15} {bar:40} {pos}/{len} [{elapsed}] {msg}")
        .context("progress bar template")?;
    let mut bar = ProgressBar::hidden();
    let comparison = odenet::compare(&config, &data, &args.modes, |event| match event {
        Event::Started { mode, .. } => {
            bar = ProgressBar::new(config.iterations as u64)
                .with_style(style.clone())
                .with_prefix(mode_name(mode));
        }
        Event::Iteration {
            iteration, loss, ..
        } => {
            if iteration % 5 == 0 || iteration == 1 {
                bar.set_message(format!("loss {loss:.4}"));
            }
            bar.inc(1);
            if iteration == config.iterations {
                bar.set_message(format!("loss {loss:.4}, evaluating"));
            }
        }
        Event::Finished { result } => {
            let message = format!(
                "loss {:.4}, test accuracy {:.1} %",
                result.last_losses_mean(1),
                100.0 * result.test_accuracy
            );
            if bar.is_hidden() {
                // No terminal (a log file): one line per mode instead of the bar.
                println!(
                    "{:>15} {} iterations in {:.1} s, {message}",
                    mode_name(&result.mode),
                    result.losses.len(),
                    result.iteration_seconds.iter().sum::<f64>()
                );
            }
            bar.finish_with_message(message);
        }
    })?;

    print_summary(&comparison);

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating output directory {}", args.out.display()))?;
    let plot_path = args.out.join("losses.svg");
    plot(&comparison, &plot_path).with_context(|| format!("writing {}", plot_path.display()))?;
    let json_path = args.out.join("summary.json");
    let summary = summary_json(&args, &config, &data.source, &comparison);
    std::fs::write(&json_path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!(
        "\nplot: {}\nsummary: {}",
        plot_path.display(),
        json_path.display()
    );
    Ok(())
}

fn print_summary(comparison: &Comparison) {
    let params: i64 = comparison.results[0]
        .first_gradients
        .iter()
        .map(|(_, g)| g.numel() as i64)
        .sum();
    println!("\n{params} parameters\n");
    println!(
        "{:<15} {:>9} {:>9} {:>9} {:>11} {:>23} {:>8} {:>9}",
        "mode",
        "train acc",
        "test acc",
        "ms/iter",
        "peak RSS Δ",
        "checkpoints pred/held",
        "RHS",
        "recomp."
    );
    for r in &comparison.results {
        let rss = r.peak_rss_increase.map_or_else(|| "n/a".to_owned(), mib);
        println!(
            "{:<15} {:>8.1}% {:>8.1}% {:>9.1} {:>11} {:>23} {:>8} {:>9}",
            mode_name(&r.mode),
            100.0 * r.train_accuracy,
            100.0 * r.test_accuracy,
            r.ms_per_iteration(),
            rss,
            format!(
                "{} / {}",
                mib(r.predicted.peak_stored_bytes),
                mib(r.stats.peak_stored_bytes)
            ),
            r.stats.rhs_evals,
            r.stats.recomputed_steps,
        );
    }
    println!(
        "\nRHS: right-hand-side evaluations per iteration (forward and recomputation; each \
         reversed stage adds one VJP); recomp.: steps taken again in the reverse sweep; peak \
         RSS Δ: growth of the process's peak resident set over the training iterations"
    );
    if comparison.results.len() > 1 {
        match comparison.max_first_gradient_difference() {
            Some(d) if comparison.first_gradients_identical() => println!(
                "first-iteration gradients: bitwise identical across modes (max |Δ| = {d:e})"
            ),
            Some(d) => println!("first-iteration gradients: max |Δ| across modes = {d:e}"),
            None => println!("first-iteration gradients: parameters differ across modes"),
        }
    }
}

fn summary_json(
    args: &Args,
    config: &OdeNetConfig,
    source: &str,
    comparison: &Comparison,
) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = comparison
        .results
        .iter()
        .map(|r| {
            json!({
                "mode": mode_name(&r.mode),
                "train_accuracy": r.train_accuracy,
                "test_accuracy": r.test_accuracy,
                "ms_per_iteration": r.ms_per_iteration(),
                "peak_rss_increase_bytes": r.peak_rss_increase,
                "checkpoint_bytes_predicted": r.predicted.peak_stored_bytes,
                "checkpoint_bytes_held": r.stats.peak_stored_bytes,
                "checkpoint_vectors_held": r.stats.peak_stored_vectors,
                "rhs_evals_per_iteration": r.stats.rhs_evals,
                "vjp_evals_per_iteration": r.stats.vjp_evals,
                "recomputed_steps_per_iteration": r.stats.recomputed_steps,
                "stage_recomputations_per_iteration": r.stats.stage_recomputations,
                "losses": r.losses,
            })
        })
        .collect();
    json!({
        "data": source,
        "mnist": args.mnist.as_ref().map(|p| p.display().to_string()),
        "channels": config.channels,
        "downsample": config.downsample,
        "steps": config.steps,
        "iterations": config.iterations,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
        "threads": pnode_torch::tch::get_num_threads(),
        "eval_limit": config.eval_limit,
        "first_gradients_identical": comparison.first_gradients_identical(),
        "max_first_gradient_difference": comparison.max_first_gradient_difference(),
        "runs": runs,
    })
}

/// Minibatch loss per iteration, one line per mode (drawn widest first, so coinciding curves
/// stay visible).
fn plot(comparison: &Comparison, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = comparison
        .results
        .iter()
        .map(|r| r.losses.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let hi = comparison
        .results
        .iter()
        .flat_map(|r| r.losses.iter().copied())
        .fold(0.0f64, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "ODE-Net: minibatch cross-entropy per checkpoint mode (identical runs overlap)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(1usize..n, 0.0..hi.max(1e-3))?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("cross-entropy")
        .draw()?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    let count = comparison.results.len();
    for (i, r) in comparison.results.iter().enumerate() {
        let color = colors[i % colors.len()];
        let width = 2 * (count - i) as u32;
        let style = color.mix(0.75).stroke_width(width);
        chart
            .draw_series(LineSeries::new(
                r.losses.iter().enumerate().map(|(k, &l)| (k + 1, l)),
                style,
            ))?
            .label(format!(
                "{} (test acc. {:.1} %, {:.0} ms/iter)",
                mode_name(&r.mode),
                100.0 * r.test_accuracy,
                r.ms_per_iteration()
            ))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
