//! PNODE's stiff experiment on pnode: learn Robertson's kinetics from 40 log-spaced
//! observations on [1e-5, 100] with a 3–5–5–5–5–5–5–3 GELU network, trained with
//! Crank–Nicolson (exact discrete adjoints through its Newton solves) and, for comparison, with
//! classic RK4 on the same steps (see `pnode_torch::demo::stiff`).
//!
//! `bash scripts/example.sh stiff-robertson --help` lists the options. Prints the loss of both
//! trainings, how RK4 fails, and writes `stiff-robertson.svg` (the three species, truth vs
//! learned, on a log time axis; loss curves) to the output directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use pnode_torch::demo::stiff::{StiffConfig, StiffMethod, StiffResult, rk4_on_truth, train};

/// Learn Robertson's stiff kinetics with a GELU neural ODE: Crank–Nicolson vs RK4.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Adam iterations per method.
    #[arg(long, default_value_t = 600)]
    iterations: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-2)]
    learning_rate: f64,
    /// Log-spaced steps per observation interval (1: the observation times themselves).
    #[arg(long, default_value_t = 1)]
    substeps: usize,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// Print the loss every this many iterations (0: never).
    #[arg(long, default_value_t = 0)]
    log_every: usize,
    /// Skip the RK4 comparison.
    #[arg(long)]
    no_explicit: bool,
    /// Directory for the plot (created if missing).
    #[arg(long, default_value = "results/stiff-robertson")]
    out: PathBuf,
}

fn run(config: &StiffConfig, label: &str, log_every: usize) -> Result<StiffResult> {
    let bar = ProgressBar::new(config.iterations as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{label:>15} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}}] {{msg}}"
        ))
        .context("progress bar template")?,
    );
    let start = Instant::now();
    let result = train(config, |it, loss| {
        if log_every > 0 && it % log_every == 0 {
            bar.suspend(|| println!("{label}: iteration {it}: loss {loss:.4e}"));
        }
        bar.inc(1);
        bar.set_message(format!("loss {loss:.4e}"));
    })?;
    bar.finish_and_clear();
    let first = result.losses.first().copied().unwrap_or(f64::NAN);
    let last = result.losses.last().copied().unwrap_or(f64::NAN);
    println!(
        "{label}: {} iterations in {:.1} s, loss {first:.4e} → {last:.4e}",
        result.losses.len(),
        start.elapsed().as_secs_f64()
    );
    for rejected in &result.rejected {
        println!("{label}: rejected an Adam step (learning rate halved): {rejected}");
    }
    if let Some(failure) = &result.failure {
        println!("{label} failed: {failure}");
    }
    Ok(result)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.iterations == 0 || args.substeps == 0 {
        bail!("--iterations and --substeps must be positive");
    }
    if !(args.learning_rate.is_finite() && args.learning_rate > 0.0) {
        bail!("--learning-rate must be a positive number");
    }
    let base = StiffConfig {
        iterations: args.iterations,
        learning_rate: args.learning_rate,
        substeps: args.substeps,
        seed: args.seed,
        ..StiffConfig::default()
    };
    println!(
        "Robertson (k = 0.04, 3e7, 1e4): {} log-spaced observations on [{:e}, {}], network 3–{}×{}–3 \
         GELU on scaled species, Adam for {} iterations, {} step(s) per observation interval",
        base.observations,
        base.t_first,
        base.t_last,
        base.width,
        base.hidden_layers,
        base.iterations,
        base.substeps
    );
    match rk4_on_truth(&base)? {
        Some(error) => println!("RK4 on the true kinetics, same steps: {error}"),
        None => println!("RK4 on the true kinetics, same steps: stays finite"),
    }
    let cn = run(&base, "Crank–Nicolson", args.log_every)?;
    println!(
        "Crank–Nicolson statistics of the last gradient: {:?}",
        cn.stats
    );
    println!(
        "species scales s = {:?}, rate scales r = {:?}",
        cn.scales.0, cn.scales.1
    );
    match &cn.rk4_on_learned {
        Ok(loss) if loss.is_finite() => {
            println!("RK4 on the model Crank–Nicolson learned, same steps: loss {loss:.4e}")
        }
        Ok(loss) => {
            println!("RK4 on the model Crank–Nicolson learned, same steps: diverges (loss {loss})")
        }
        Err(error) => println!("RK4 on the model Crank–Nicolson learned, same steps: {error}"),
    }
    let rk4 = if args.no_explicit {
        None
    } else {
        Some(run(
            &StiffConfig {
                method: StiffMethod::Rk4,
                ..base.clone()
            },
            "RK4",
            args.log_every,
        )?)
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating output directory {}", args.out.display()))?;
    let path = args.out.join("stiff-robertson.svg");
    plot(&cn, rk4.as_ref(), &path).with_context(|| format!("writing {}", path.display()))?;
    println!("plot: {}", path.display());
    Ok(())
}

/// Left: the species (y₂ × 10⁴) over log time, truth vs Crank–Nicolson (and RK4) fits.
/// Right: loss curves.
fn plot(cn: &StiffResult, rk4: Option<&StiffResult>, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1300, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(800);
    let t0 = *cn.times.first().context("no observations")?;
    let t1 = *cn.times.last().context("no observations")?;
    let display = |u: &[f64; 3], i: usize| if i == 1 { u[i] * 1e4 } else { u[i] };
    let mut chart = ChartBuilder::on(&left)
        .caption("Robertson: truth (thick) vs learned", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d((t0..t1).log_scale(), -0.1..1.2)?;
    chart
        .configure_mesh()
        .x_desc("t")
        .y_desc("y1, 1e4·y2, y3")
        .draw()?;
    let colors = [BLUE, RED, GREEN];
    for (i, name) in ["y1", "1e4·y2", "y3"].iter().enumerate() {
        let color = colors[i];
        let pts = |r: &StiffResult| -> Vec<(f64, f64)> {
            r.times
                .iter()
                .zip(&r.learned)
                .map(|(&t, u)| (t, display(u, i)))
                .filter(|(_, v)| v.is_finite())
                .collect()
        };
        chart
            .draw_series(LineSeries::new(
                cn.times
                    .iter()
                    .zip(&cn.truth)
                    .map(|(&t, u)| (t, display(u, i))),
                color.mix(0.35).stroke_width(5),
            ))?
            .label(format!("{name} truth"))
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.mix(0.35).stroke_width(5))
            });
        chart
            .draw_series(LineSeries::new(pts(cn), color.stroke_width(2)))?
            .label(format!("{name} Crank–Nicolson"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        if let Some(rk) = rk4 {
            chart
                .draw_series(DashedLineSeries::new(pts(rk), 4, 4, color.stroke_width(1)))?
                .label(format!("{name} RK4 (dashed)"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 8, y)], color.stroke_width(1))
                });
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let all: Vec<f64> = cn
        .losses
        .iter()
        .chain(rk4.map(|r| r.losses.as_slice()).unwrap_or(&[]))
        .copied()
        .filter(|l| l.is_finite() && *l > 0.0)
        .collect();
    // No finite loss at all (training failed at once): an arbitrary decade range.
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).min(1.0);
    let hi = all.iter().copied().fold(0.0, f64::max).max(10.0 * lo);
    let n = cn
        .losses
        .len()
        .max(rk4.map_or(0, |r| r.losses.len()))
        .max(1);
    let mut loss = ChartBuilder::on(&right)
        .caption("loss per iteration", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0..n, (lo * 0.5..hi * 2.0).log_scale())?;
    loss.configure_mesh()
        .x_desc("iteration")
        .y_desc("scaled MSE")
        .draw()?;
    loss.draw_series(LineSeries::new(
        cn.losses.iter().copied().enumerate(),
        BLACK,
    ))?
    .label("Crank–Nicolson")
    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
    if let Some(rk) = rk4 {
        loss.draw_series(LineSeries::new(
            rk.losses
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, l)| l.is_finite()),
            MAGENTA,
        ))?
        .label("RK4")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], MAGENTA));
    }
    loss.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
