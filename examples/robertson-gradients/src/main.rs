//! Robertson's stiff kinetics (k = 0.04, 3e7, 1e4; u0 = [1, 0, 0]) over 60 log-spaced steps to
//! t = 100, with Crank–Nicolson and the L-stable ESDIRK3: the sensitivities `∂y_i(100)/∂k_j`
//! by exact discrete adjoints (one reverse sweep per species), checked against central finite
//! differences of the same solve.
//!
//! Run: `cargo run --release -p robertson-gradients`.

use anyhow::Result;
use pnode_runtime::model::RhsVjp;
use pnode_runtime::problems::Robertson;
use pnode_runtime::stepper::AdjointStepper;
use pnode_runtime::{Checkpointing, DirkStepper, DirkTableau, NewtonConfig, Solver, TimeGrid};

fn main() -> Result<()> {
    // Log-spaced from 1e-6 (a coarse first step gives Crank–Nicolson several Newton roots).
    let n = 60;
    let mut times = vec![0.0];
    times.extend((0..=n).map(|k| 1e-6 * f64::powf(1e8, f64::from(k) / f64::from(n))));
    let grid = TimeGrid::from_times(&times)?;
    let newton = NewtonConfig {
        // y2 lives near 1e-5: an absolute tolerance far below it keeps the finite differences
        // (and the adjoint, which is exact for the converged stages) clean.
        atol: 1e-18,
        rtol: 1e-13,
        ..NewtonConfig::default()
    };
    let k = Robertson::default_params();
    let u0 = Robertson::default_u0();
    println!(
        "Robertson kinetics, k = {k:?}, u0 = {u0:?}, {} log-spaced steps to t = 100",
        n + 1
    );
    for tableau in [DirkTableau::theta(0.5)?, DirkTableau::esdirk3()] {
        let name = if tableau.order() == 2 && tableau.stages() == 2 {
            "Crank–Nicolson".to_string()
        } else {
            tableau.name().to_string()
        };
        let stepper = DirkStepper::new(tableau, 3, 3, newton)?;
        let mut solver = Solver::new(
            stepper,
            &Robertson::new(),
            grid.clone(),
            &[100.0],
            Checkpointing::Revolve { slots: 8 },
        )?;
        report(&name, &mut solver, &u0, &k)?;
    }
    Ok(())
}

fn report<S: AdjointStepper<Robertson>>(
    name: &str,
    solver: &mut Solver<S>,
    u0: &[f64],
    k: &[f64],
) -> Result<()> {
    let mut model = Robertson::new();
    let y = solver.solve(&mut model, u0, k)?.to_vec();
    println!(
        "\n{name}: y(100) = [{:.6e}, {:.6e}, {:.6e}]",
        y[0], y[1], y[2]
    );
    println!(
        "{:<10} {:>14} {:>14} {:>14}   rel. diff. to FD (row)",
        "", "∂/∂k1", "∂/∂k2", "∂/∂k3"
    );
    let mut stats = None;
    for species in 0..3 {
        let mut unit = [0.0; 3];
        unit[species] = 1.0;
        solver.forward(&mut model, u0, k)?;
        let grad = solver.backward(&mut model, &unit)?;
        stats.get_or_insert(solver.stats());
        let fd = finite_differences(solver, &mut model, u0, k, species)?;
        // ‖g − g_fd‖_∞ / ‖g_fd‖_∞ over the row.
        let scale = fd.iter().map(|f| f.abs()).fold(0.0, f64::max).max(1e-300);
        let err = grad
            .dp
            .iter()
            .zip(&fd)
            .map(|(g, f)| (g - f).abs() / scale)
            .fold(0.0, f64::max);
        println!(
            "∂y{}(100)  {:>14.6e} {:>14.6e} {:>14.6e}   {err:.1e}",
            species + 1,
            grad.dp[0],
            grad.dp[1],
            grad.dp[2]
        );
    }
    let stats = stats.unwrap_or_default();
    println!(
        "one gradient (Revolve, 8 slots): {} Newton iterations, {} RHS, {} JVPs, {} VJPs, {} recomputed steps, {} stored vectors",
        stats.newton_iterations,
        stats.rhs_evals,
        stats.jvp_evals,
        stats.vjp_evals,
        stats.recomputed_steps,
        stats.peak_stored_vectors
    );
    Ok(())
}

/// Relative step of the finite differences. The converged Newton stages carry noise at the
/// solver tolerance, which dominates smaller steps for the tiny `y2` (1e-7 gives 4e-4, 1e-5
/// gives 3e-6, 1e-4 gives 7e-7 on its row); the adjoint has no such limit.
const FD_STEP: f64 = 1e-4;

/// Central differences of `y_species(100)` in each rate constant (relative step [`FD_STEP`]).
fn finite_differences<M: RhsVjp, S: AdjointStepper<M>>(
    solver: &mut Solver<S>,
    model: &mut M,
    u0: &[f64],
    k: &[f64],
    species: usize,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(k.len());
    for j in 0..k.len() {
        let e = FD_STEP * k[j];
        let mut kp = k.to_vec();
        kp[j] += e;
        let up = solver.solve(model, u0, &kp)?[species];
        kp[j] = k[j] - e;
        let down = solver.solve(model, u0, &kp)?[species];
        out.push((up - down) / (2.0 * e));
    }
    Ok(out)
}
