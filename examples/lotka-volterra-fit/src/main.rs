//! Recover the four Lotka–Volterra rates from noisy observations, through the runtime's Rust
//! API (the main job, `scripts/main.sh`, now does the fit with `pnodec` on
//! `examples/lotka_volterra`).
//!
//! `cargo run --release -p lotka-volterra-fit -- --help` lists the options. Prints progress,
//! the recovered rates next to the truth, and writes `fit.svg` (data, truth and fit; loss curve)
//! to the output directory.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use lotka_volterra_fit::{FitConfig, FitResult, fit};
use plotters::prelude::*;
use pnode_runtime::Checkpointing;

/// Fit the Lotka–Volterra rates [α, β, δ, γ] to noisy synthetic data with exact
/// discrete-adjoint gradients.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Adam iterations.
    #[arg(long, default_value_t = 4000)]
    iterations: usize,
    /// Relative noise level of the observations.
    #[arg(long, default_value_t = 0.01)]
    noise: f64,
    /// Number of observation times on [0, 10].
    #[arg(long, default_value_t = 25)]
    observations: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Keep only solutions and recompute stages in the reverse sweep (less memory).
    #[arg(long)]
    solution_only: bool,
    /// Directory for the plot (created if missing).
    #[arg(long, default_value = "results/lotka-volterra-fit")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.noise.is_finite() && args.noise >= 0.0) {
        bail!(
            "--noise must be a finite non-negative number, got {}",
            args.noise
        );
    }
    if args.observations < 2 {
        bail!("--observations must be at least 2");
    }
    let config = FitConfig {
        iterations: args.iterations,
        noise: args.noise,
        n_obs: args.observations,
        seed: args.seed,
        checkpointing: if args.solution_only {
            Checkpointing::SolutionOnly
        } else {
            Checkpointing::StoreAll
        },
        ..FitConfig::default()
    };
    println!(
        "Lotka–Volterra fit: {} observations of both species on [0, {}] with {:.1} % noise, \
         RK4 with {} steps, Adam for {} iterations",
        config.n_obs,
        config.t_end,
        100.0 * config.noise,
        config.n_obs * config.steps_per_obs,
        config.iterations
    );
    let bar = ProgressBar::new(config.iterations as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise}] {msg}")
            .context("progress bar template")?,
    );
    let start = Instant::now();
    let result = fit(&config, |it, loss, p| {
        if it % 10 == 0 {
            bar.set_message(format!(
                "loss {loss:.3e}  θ = [{:.4}, {:.4}, {:.4}, {:.4}]",
                p[0], p[1], p[2], p[3]
            ));
        }
        bar.inc(1);
    })?;
    bar.finish();
    let elapsed = start.elapsed();

    println!(
        "\n{} gradients in {:.2} s ({:.1} µs per gradient); last gradient: {} RHS, {} VJPs, \
         {} stored vectors",
        config.iterations,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / config.iterations as f64,
        result.stats.rhs_evals,
        result.stats.vjp_evals,
        result.stats.peak_stored_vectors
    );
    println!(
        "loss: {:.3e} -> {:.3e}",
        result.losses[0],
        result.losses[result.losses.len() - 1]
    );
    println!(
        "\n{:<6} {:>10} {:>10} {:>10} {:>9}",
        "rate", "initial", "recovered", "true", "error"
    );
    for (i, name) in ["α", "β", "δ", "γ"].iter().enumerate() {
        let (p, t) = (result.params[i], config.true_params[i]);
        println!(
            "{name:<6} {:>10.4} {:>10.4} {:>10.4} {:>8.2}%",
            config.initial_params[i],
            p,
            t,
            100.0 * (p - t).abs() / t
        );
    }
    let worst = result.max_relative_error(&config.true_params);
    println!("largest relative error: {:.2} %", 100.0 * worst);

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating output directory {}", args.out.display()))?;
    let path = args.out.join("fit.svg");
    plot(&result, &path).with_context(|| format!("writing {}", path.display()))?;
    println!("plot: {}", path.display());
    Ok(())
}

/// Left: observations, true and fitted trajectories. Right: loss per iteration (log scale).
fn plot(result: &FitResult, path: &std::path::Path) -> Result<()> {
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(720);
    let t_end = *result.dense_times.last().context("empty grid")?;
    let y_max = result
        .truth_dense
        .iter()
        .chain(&result.observations)
        .fold(0.0_f64, |a, &b| a.max(b))
        * 1.1;
    let mut chart = ChartBuilder::on(&left)
        .caption("Lotka–Volterra: data, truth and fit", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..t_end, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("t")
        .y_desc("population")
        .draw()?;
    let colors = [BLUE, RED];
    for (species, name) in ["prey", "predator"].iter().enumerate() {
        let color = colors[species];
        let series = |values: &[f64]| -> Vec<(f64, f64)> {
            result
                .dense_times
                .iter()
                .zip(values.chunks(2))
                .map(|(&t, u)| (t, u[species]))
                .collect()
        };
        chart
            .draw_series(LineSeries::new(
                series(&result.truth_dense),
                color.mix(0.4).stroke_width(4),
            ))?
            .label(format!("{name} (truth)"))
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.mix(0.4).stroke_width(4))
            });
        chart
            .draw_series(LineSeries::new(
                series(&result.fitted_dense),
                color.stroke_width(1),
            ))?
            .label(format!("{name} (fit)"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        chart.draw_series(
            result
                .obs_times
                .iter()
                .zip(result.observations.chunks(2))
                .map(|(&t, d)| Circle::new((t, d[species]), 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let n = result.losses.len().max(1);
    let (lo, hi) = result
        .losses
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &l| {
            (lo.min(l), hi.max(l))
        });
    let mut loss_chart = ChartBuilder::on(&right)
        .caption("loss per iteration", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0..n, (lo * 0.5..hi * 2.0).log_scale())?;
    loss_chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("loss")
        .draw()?;
    loss_chart.draw_series(LineSeries::new(
        result.losses.iter().enumerate().map(|(i, &l)| (i, l)),
        BLACK,
    ))?;
    root.present()?;
    Ok(())
}
