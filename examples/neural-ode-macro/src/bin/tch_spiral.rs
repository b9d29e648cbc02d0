//! `bash scripts/example.sh macro-tch`: a libtorch MLP inside a `#[neural_ode]` model learns
//! the spiral `du/dt = A u³`; prints the loss every 50 Adam steps.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations = 500;
    let losses = neural_ode_macro::tch_spiral::fit(iterations, 0.01, 0)?;
    for (i, l) in losses.iter().enumerate().filter(|(i, _)| i % 50 == 0) {
        println!("iteration {i:4}: loss {l:.4e}");
    }
    println!(
        "loss {:.3e} -> {:.3e} in {iterations} Adam steps",
        losses[0],
        losses.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
