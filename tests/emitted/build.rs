//! Generates the corpus models and two fused steppers with pnode-codegen into `OUT_DIR`.

use pnode_codegen::{Options, generate_erk_stepper, generate_model, testmodels, to_source};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let opts = Options::default();
    let mut tokens = proc_macro2::TokenStream::new();
    for m in testmodels::all() {
        tokens.extend(generate_model(&m.type_name(), &m.f, &opts).expect(m.name));
    }
    // The MLP once more with every tensor in scratch buffers of the struct.
    let scratch = Options {
        stack_limit: 1,
        ..Options::default()
    };
    let mlp = testmodels::mlp_tanh();
    tokens.extend(generate_model("MlpTanhScratch", &mlp.f, &scratch).expect("mlp"));
    tokens.extend(generate_erk_stepper("Rk4", &testmodels::rk4(), &opts).expect("rk4"));
    tokens.extend(generate_erk_stepper("Dopri5", &testmodels::dopri5(), &opts).expect("dopri5"));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("generated.rs"), to_source(&tokens)).expect("write generated.rs");
}
