//! `cargo run -p neural-ode-macro`: the compile-time schedule of the macro-generated
//! Lotka–Volterra model, then a fit of its rates with Adam.

use neural_ode_macro::{fit, lotka_volterra::Ode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("{}", Ode::SCHEDULE_SUMMARY);
    let f = fit(400, 0.02)?;
    println!(
        "loss {:.3e} -> {:.3e} in {} Adam steps",
        f.losses[0],
        f.losses.last().copied().unwrap_or(f64::NAN),
        f.losses.len()
    );
    println!(
        "start {:?}\nfound {:?}\ntrue  {:?}",
        f.start,
        f.rates,
        Ode::THETA0
    );
    Ok(())
}
