//! Generates the corpus models and three fused steppers (RK4, and the Dopri5 and Fehlberg45
//! pairs) with pnode-codegen into `OUT_DIR`, and
//! every valid `.pode` file of `tests/corpus/ok` that pnode-codegen supports, lowered from its
//! source (`Corpus…` types, listed by `corpus_models()`).

use pnode_codegen::{
    Options, generate_erk_pair_stepper, generate_erk_stepper, generate_model, testmodels, to_source,
};

/// Number of random models (seeds `0..RANDOM_MODELS`).
const RANDOM_MODELS: u64 = 40;

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
    // And with a stack budget of 300 elements per method: the first arrays on the stack, the
    // rest in scratch buffers.
    let budget = Options {
        stack_budget: 300,
        ..Options::default()
    };
    tokens.extend(generate_model("MlpTanhBudget", &mlp.f, &budget).expect("mlp"));
    tokens.extend(generate_erk_stepper("Rk4", &testmodels::rk4(), &opts).expect("rk4"));
    // The pairs also implement `EmbeddedStepper` (the fixed step is the same code).
    let (dopri5, dopri5_hat) = (testmodels::dopri5(), testmodels::dopri5_embedded());
    tokens
        .extend(generate_erk_pair_stepper("Dopri5", &dopri5, &dopri5_hat, &opts).expect("dopri5"));
    let (rkf, rkf_hat) = (testmodels::fehlberg45(), testmodels::fehlberg45_embedded());
    tokens.extend(generate_erk_pair_stepper("Fehlberg45", &rkf, &rkf_hat, &opts).expect("rkf45"));
    // The random corpus, and a table of it.
    let mut table = Vec::new();
    for seed in 0..RANDOM_MODELS {
        let m = testmodels::random(seed);
        let ty = quote::format_ident!("Random{}", seed);
        tokens.extend(generate_model(&ty.to_string(), &m.f, &opts).expect("random model"));
        table.push(quote::quote!((#seed, Box::new(#ty::new()))));
    }
    // The first ones again with every tensor in scratch buffers.
    let mut scratch_table = Vec::new();
    for seed in 0..RANDOM_MODELS / 4 {
        let m = testmodels::random(seed);
        let ty = quote::format_ident!("RandomScratch{}", seed);
        tokens.extend(generate_model(&ty.to_string(), &m.f, &scratch).expect("random model"));
        scratch_table.push(quote::quote!((#seed, Box::new(#ty::new()))));
    }
    let mut edge_table = Vec::new();
    for (k, m) in testmodels::edge_cases().iter().enumerate() {
        let ty = quote::format_ident!("Edge{}", k);
        tokens.extend(generate_model(&ty.to_string(), &m.f, &opts).expect("edge case"));
        let k = k as u64;
        edge_table.push(quote::quote!((#k, Box::new(#ty::new()))));
    }
    tokens.extend(quote::quote! {
        /// The corner cases of [`pnode_codegen::testmodels::edge_cases`]: `(index, model)`.
        pub fn edge_models() -> Vec<(u64, Box<dyn crate::Model>)> {
            vec![#(#edge_table),*]
        }

        /// The random corpus of [`pnode_codegen::testmodels::random`]: `(seed, model)`.
        pub fn random_models() -> Vec<(u64, Box<dyn crate::Model>)> {
            vec![#(#table),*]
        }

        /// The first quarter of the random corpus generated with every tensor in scratch
        /// buffers (`Options::stack_limit = 1`).
        pub fn random_scratch_models() -> Vec<(u64, Box<dyn crate::Model>)> {
            vec![#(#scratch_table),*]
        }
    });
    tokens.extend(corpus_models(&opts));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("generated.rs"), to_source(&tokens)).expect("write generated.rs");
}

/// `lotka_volterra` → `CorpusLotkaVolterra`.
fn corpus_type_name(stem: &str) -> String {
    let mut name = String::from("Corpus");
    for part in stem.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    name
}

/// The generated model of every corpus `ok` file pnode-codegen supports, and the table
/// `corpus_models() -> Vec<(file stem, model)>`; the file stems it does not support (convolutions,
/// group norms) are listed by `corpus_unsupported()`.
fn corpus_models(opts: &Options) -> proc_macro2::TokenStream {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/ok");
    println!("cargo::rerun-if-changed={dir}");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus directory")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pode"))
        .collect();
    files.sort();
    let mut tokens = proc_macro2::TokenStream::new();
    let (mut table, mut unsupported) = (Vec::new(), Vec::new());
    for path in files {
        let stem = path
            .file_stem()
            .expect("file stem")
            .to_string_lossy()
            .into_owned();
        let source = std::fs::read_to_string(&path).expect("readable corpus file");
        let program = pnode_ir::lower::compile_source(&source)
            .program
            .unwrap_or_else(|| panic!("{stem}: a corpus ok model lowers"));
        let name = corpus_type_name(&stem);
        match generate_model(&name, &program.rhs, opts) {
            Ok(model) => {
                tokens.extend(model);
                let ty = quote::format_ident!("{}", name);
                table.push(quote::quote!((#stem, Box::new(#ty::new()))));
            }
            Err(pnode_codegen::Error::Unsupported { .. }) => unsupported.push(stem),
            Err(e) => panic!("{stem}: {e}"),
        }
    }
    tokens.extend(quote::quote! {
        /// Every corpus `ok` model pnode-codegen supports: `(file stem, model)`.
        pub fn corpus_models() -> Vec<(&'static str, Box<dyn crate::Model>)> {
            vec![#(#table),*]
        }

        /// The corpus `ok` models pnode-codegen refuses (convolutions, group norms).
        pub fn corpus_unsupported() -> &'static [&'static str] {
            &[#(#unsupported),*]
        }
    });
    tokens
}
