//! Print the Rust that pnode-codegen emits for a corpus model (and, with `--rk4` or
//! `--dopri5`, a fused stepper): a preview of `pnodec emit --rust`.
//!
//! ```text
//! cargo run -p pnode-codegen --features testmodels --example emit -- lotka_volterra
//! cargo run -p pnode-codegen --features testmodels --example emit -- --rk4
//! ```

use pnode_codegen::{Options, generate_erk_stepper, generate_model, testmodels, to_source};

fn main() {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "lotka_volterra".into());
    let opts = Options::default();
    let tokens = match arg.as_str() {
        "--rk4" => generate_erk_stepper("Rk4", &testmodels::rk4(), &opts),
        "--dopri5" => generate_erk_stepper("Dopri5", &testmodels::dopri5(), &opts),
        name => match testmodels::by_name(name) {
            Some(m) => generate_model(&m.type_name(), &m.f, &opts),
            None => {
                let names: Vec<_> = testmodels::all().iter().map(|m| m.name).collect();
                eprintln!("unknown model `{name}`; one of {names:?}, --rk4, --dopri5");
                std::process::exit(2);
            }
        },
    };
    match tokens {
        Ok(t) => print!("{}", to_source(&t)),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
