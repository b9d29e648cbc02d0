//! The classic neural-ODE demo on pnode's libtorch backend: learn the spiral `du/dt = A u³`
//! with a 2–50–2 tanh MLP from one sampled trajectory (see `pnode_torch::demo::spiral`).
//!
//! `bash scripts/spiral.sh --help` (or `cargo run --release -p pnode-torch --features torch
//! --example spiral -- --help` with the torch environment) lists the options. Prints the loss
//! as it trains and writes `spiral.svg` (phase portrait and components over time, truth vs
//! learned; loss curve) to the output directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use pnode_torch::demo::parse_device;
use pnode_torch::demo::spiral::{SpiralConfig, SpiralResult, train};
use pnode_torch::pnode_runtime::checkpoint::Checkpointing;

/// Learn the spiral du/dt = A u³ with a neural ODE (RK4, exact discrete-adjoint gradients).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Adam iterations.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Samples of the true trajectory on [0, 25].
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Samples per training window.
    #[arg(long, default_value_t = 10)]
    batch_time: usize,
    /// Windows per iteration.
    #[arg(long, default_value_t = 20)]
    batch_size: usize,
    /// RMSprop learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Seed of the initialisation and the window draws.
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// Keep every stage (fastest) instead of only solutions.
    #[arg(long)]
    store_all: bool,
    /// Device: cpu, cuda (GPU 0) or auto (CUDA when libtorch sees a GPU).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// libtorch intra-op threads.
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// Directory for the plot (created if missing).
    #[arg(long, default_value = "results/spiral")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.samples < 3 || args.batch_time < 2 || args.batch_time >= args.samples {
        bail!("need --samples ≥ 3 and 2 ≤ --batch-time < --samples");
    }
    if args.batch_size == 0 || args.iterations == 0 || args.threads < 1 {
        bail!("--batch-size, --iterations and --threads must be positive");
    }
    if !(args.learning_rate.is_finite() && args.learning_rate > 0.0) {
        bail!("--learning-rate must be a positive number");
    }
    pnode_torch::tch::set_num_threads(args.threads);
    let device = parse_device(&args.device).map_err(anyhow::Error::msg)?;
    let config = SpiralConfig {
        samples: args.samples,
        batch_time: args.batch_time,
        batch_size: args.batch_size,
        iterations: args.iterations,
        learning_rate: args.learning_rate,
        seed: args.seed,
        eval_every: (args.iterations / 20).max(1),
        checkpointing: if args.store_all {
            Checkpointing::StoreAll
        } else {
            Checkpointing::SolutionOnly
        },
        device,
        ..SpiralConfig::default()
    };
    println!(
        "spiral: du/dt = A u³ on [0, {}], {} samples; f = MLP(u³), 2–{}–2 tanh; RK4, windows of {} \
         samples × {} per iteration; RMSprop for {} iterations on {:?}",
        config.t_end,
        config.samples,
        config.hidden,
        config.batch_time,
        config.batch_size,
        config.iterations,
        config.device
    );
    let bar = ProgressBar::new(config.iterations as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise}] {msg}")
            .context("progress bar template")?,
    );
    let start = Instant::now();
    let result = train(&config, |it, loss| {
        bar.inc(1);
        if it % 20 == 0 {
            bar.set_message(format!("batch loss {loss:.4}"));
        }
    })?;
    bar.finish_and_clear();
    let elapsed = start.elapsed();
    for (it, loss) in &result.eval_losses {
        println!("iteration {it:>5}: trajectory loss (mean |u − u_true|) {loss:.5}");
    }
    println!(
        "trained in {:.2} s ({:.2} ms per iteration)",
        elapsed.as_secs_f64(),
        1e3 * elapsed.as_secs_f64() / config.iterations as f64
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating output directory {}", args.out.display()))?;
    let path = args.out.join("spiral.svg");
    plot(&result, &path).with_context(|| format!("writing {}", path.display()))?;
    println!("plot: {}", path.display());
    Ok(())
}

/// Left: phase portrait, truth vs learned. Middle: both components over time. Right: the
/// trajectory loss at each evaluation (log scale).
fn plot(result: &SpiralResult, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1500, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let extent = result
        .truth
        .iter()
        .chain(&result.learned)
        .flat_map(|u| u.iter())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, |a, &b| a.max(b.abs()))
        .clamp(0.5, 10.0)
        * 1.1;
    let mut phase = ChartBuilder::on(&panels[0])
        .caption("phase portrait", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(-extent..extent, -extent..extent)?;
    phase.configure_mesh().x_desc("u₁").y_desc("u₂").draw()?;
    phase
        .draw_series(LineSeries::new(
            result.truth.iter().map(|u| (u[0], u[1])),
            BLUE.mix(0.4).stroke_width(4),
        ))?
        .label("truth")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.mix(0.4).stroke_width(4)));
    phase
        .draw_series(LineSeries::new(
            result.learned.iter().map(|u| (u[0], u[1])),
            RED.stroke_width(1),
        ))?
        .label("learned")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    phase
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let t_end = *result.times.last().context("empty trajectory")?;
    let mut time = ChartBuilder::on(&panels[1])
        .caption("components over time", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..t_end, -extent..extent)?;
    time.configure_mesh().x_desc("t").y_desc("u").draw()?;
    for (c, color) in [(0, BLUE), (1, GREEN)] {
        time.draw_series(LineSeries::new(
            result
                .times
                .iter()
                .zip(&result.truth)
                .map(|(&t, u)| (t, u[c])),
            color.mix(0.4).stroke_width(4),
        ))?
        .label(format!("u{} truth", c + 1))
        .legend(move |(x, y)| {
            PathElement::new([(x, y), (x + 20, y)], color.mix(0.4).stroke_width(4))
        });
        time.draw_series(LineSeries::new(
            result
                .times
                .iter()
                .zip(&result.learned)
                .map(|(&t, u)| (t, u[c])),
            color.stroke_width(1),
        ))?
        .label(format!("u{} learned", c + 1))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    }
    time.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let (lo, hi) = result
        .eval_losses
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, l)| {
            (lo.min(l), hi.max(l))
        });
    let last = result.eval_losses.last().map_or(1, |&(i, _)| i.max(1));
    let mut loss = ChartBuilder::on(&panels[2])
        .caption("trajectory loss", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0..last, (lo * 0.5..hi * 2.0).log_scale())?;
    loss.configure_mesh()
        .x_desc("iteration")
        .y_desc("mean |u − u_true|")
        .draw()?;
    loss.draw_series(LineSeries::new(result.eval_losses.iter().copied(), BLACK))?;
    root.present()?;
    Ok(())
}
