//! Time against memory for every checkpoint schedule on a long MLP horizon:
//! tanh MLP 16–128–128–16, batch 128, RK4, 2000 steps (state: 2048 values, 16 KiB).
//!
//! Schedules: store-all, solution-only, Revolve with c = 10, 45, 200 solution slots, and
//! multistage at the same byte budgets (10, 45, 200 vectors). Each gradient is timed over
//! `PNODE_BENCH_REPS` runs (default 1; these take seconds each, so criterion's sampling is not
//! used) after checking that its statistics equal the planner's prediction and its gradient is
//! bitwise identical to store-all's.
//!
//! Run: `cargo bench -p pnode-runtime --bench checkpoint_memory` (optionally with
//! `PNODE_BENCH_STEPS=200` for a quick run). Writes `target/checkpoint-memory.csv` and
//! `target/checkpoint-memory.svg` (time per gradient against peak checkpoint memory).

use std::time::Instant;

use plotters::prelude::*;
use pnode_runtime::problems::Mlp;
use pnode_runtime::{Budget, Checkpointing, Solver, Tableau, TimeGrid};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Row {
    name: String,
    peak_bytes: u64,
    seconds: f64,
    rhs: u64,
    vjp: u64,
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let n_steps = env_or("PNODE_BENCH_STEPS", 2000);
    let reps = env_or("PNODE_BENCH_REPS", 1).max(1);
    let mut model = Mlp::new(&[16, 128, 128, 16], 128).expect("valid widths");
    let p = model.init_params(1);
    let u0: Vec<f64> = (0..16 * 128)
        .map(|i| ((i * 37 % 101) as f64 / 50.0) - 1.0)
        .collect();
    let grid = TimeGrid::uniform(0.0, 1.0, n_steps).expect("grid");
    let t_end = grid.t(n_steps);

    let mut modes = vec![
        ("store-all".to_string(), Checkpointing::StoreAll),
        ("solution-only".to_string(), Checkpointing::SolutionOnly),
    ];
    for c in [10usize, 45, 200] {
        modes.push((
            format!("revolve c={c}"),
            Checkpointing::Revolve { slots: c },
        ));
    }
    for c in [10u64, 45, 200] {
        modes.push((
            format!("multistage {c} vectors"),
            Checkpointing::Budget(Budget::Vectors(c)),
        ));
    }

    println!("MLP 16-128-128-16, batch 128, RK4, {n_steps} steps, {reps} rep(s) per schedule");
    let mut reference: Option<Vec<f64>> = None;
    let mut rows = Vec::new();
    for (name, mode) in modes {
        let plan_start = Instant::now();
        let mut solver = Solver::explicit(Tableau::rk4(), &model, grid.clone(), &[t_end], mode)
            .expect("plannable");
        let plan_seconds = plan_start.elapsed().as_secs_f64();
        let mut best = f64::INFINITY;
        let mut grad = None;
        for _ in 0..reps {
            let start = Instant::now();
            let (_, g) = solver
                .value_and_grad(&mut model, &u0, &p, |out, dl| {
                    dl.copy_from_slice(out);
                    0.5 * out.iter().map(|x| x * x).sum::<f64>()
                })
                .expect("gradient");
            best = best.min(start.elapsed().as_secs_f64());
            grad = Some(g);
        }
        let grad = grad.expect("at least one rep");
        let stats = solver.stats();
        assert_eq!(stats, solver.predicted_stats().expect("valid"), "{name}");
        match &reference {
            None => reference = Some(grad.dp.clone()),
            Some(r) => assert!(
                r.iter()
                    .zip(&grad.dp)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{name}: gradient differs from store-all"
            ),
        }
        println!(
            "{name:<24} peak {:>10} bytes ({:>5} vectors)  {:>8.3} s/gradient  {:>6} RHS  {:>5} VJP  (planned in {:.2} s)",
            stats.peak_stored_bytes,
            stats.peak_stored_vectors,
            best,
            stats.rhs_evals,
            stats.vjp_evals,
            plan_seconds
        );
        rows.push(Row {
            name,
            peak_bytes: stats.peak_stored_bytes,
            seconds: best,
            rhs: stats.rhs_evals,
            vjp: stats.vjp_evals,
        });
    }
    let start = Instant::now();
    let mut solver = Solver::explicit(
        Tableau::rk4(),
        &model,
        grid,
        &[t_end],
        Checkpointing::StoreAll,
    )
    .expect("plannable");
    solver.solve(&mut model, &u0, &p).expect("forward");
    let forward = start.elapsed().as_secs_f64();
    println!("forward solve alone: {forward:.3} s");

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&dir).expect("target dir");
    let mut csv = String::from(
        "schedule,peak_bytes,seconds_per_gradient,rhs_evals,vjp_evals,ratio_to_forward\n",
    );
    for r in &rows {
        csv.push_str(&format!(
            "{},{},{:.6},{},{},{:.3}\n",
            r.name,
            r.peak_bytes,
            r.seconds,
            r.rhs,
            r.vjp,
            r.seconds / forward
        ));
    }
    std::fs::write(dir.join("checkpoint-memory.csv"), csv).expect("write csv");
    plot(&rows, &dir.join("checkpoint-memory.svg")).expect("plot");
    println!("wrote target/checkpoint-memory.csv and target/checkpoint-memory.svg");
}

fn plot(rows: &[Row], path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_min = rows.iter().map(|r| r.peak_bytes.max(1)).min().unwrap_or(1) as f64 / 2.0;
    let x_max = rows.iter().map(|r| r.peak_bytes).max().unwrap_or(1) as f64 * 2.0;
    let y_max = rows.iter().map(|r| r.seconds).fold(0.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Gradient time vs checkpoint memory (MLP 16-128-128-16, RK4)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x_min..x_max).log_scale(), 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("peak checkpoint memory (bytes, log scale)")
        .y_desc("seconds per gradient")
        .draw()?;
    for (family, color) in [("revolve", RED), ("multistage", BLUE)] {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.name.starts_with(family))
            .map(|r| (r.peak_bytes as f64, r.seconds))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(family)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, color.filled())))?;
    }
    for r in rows {
        let color = if r.name.starts_with("revolve") {
            RED
        } else if r.name.starts_with("multistage") {
            BLUE
        } else {
            BLACK
        };
        let at = (r.peak_bytes.max(1) as f64, r.seconds);
        chart.draw_series([Circle::new(at, 5, color.filled())])?;
        // Revolve labels above their points, the others below, so equal budgets stay legible.
        let dy = if color == RED { 0.045 } else { -0.01 } * y_max;
        let label_at = (at.0 * 1.08, at.1 + dy);
        chart.draw_series([Text::new(r.name.clone(), label_at, ("sans-serif", 13))])?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
