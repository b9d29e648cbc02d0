//! Property tests: lowering mutated corpus files and token soup never panics, lowering a
//! partial (syntactically broken) tree never panics either, every diagnostic has a primary
//! span inside the input, and a program comes back exactly when there is no error; a
//! program's functions differentiate.

use pnode_ir::lower::{Lowered, compile_source, lower};
use proptest::prelude::*;
use std::path::Path;

fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
    let mut out = Vec::new();
    for kind in ["ok", "err-semantic"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(kind))
            .expect("corpus")
            .map(|e| e.expect("entry").path())
            // The corpus also holds the data files some models read.
            .filter(|p| p.extension().is_some_and(|x| x == "pode"))
            .collect();
        files.sort();
        out.extend(
            files
                .iter()
                .map(|p| std::fs::read_to_string(p).expect("file")),
        );
    }
    out
}

const TOKENS: &[&str] = &[
    "model m",
    "state",
    "param",
    "const",
    "layer",
    "let",
    "loss",
    "solve",
    "train",
    "u",
    "v",
    "k",
    "net",
    "t",
    "x",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ",",
    "=",
    "..",
    ":",
    "+",
    "-",
    "*",
    "/",
    "@",
    "^",
    "\n",
    "d(u)/dt",
    "d(u[0])/dt",
    "d(x)/dt",
    "0",
    "1",
    "2",
    "3",
    "-1",
    "0.5",
    "1e300",
    "18446744073709551615",
    "64MB",
    "\"f.csv\"",
    "true",
    "zeros",
    "ones",
    "xavier",
    "normal(0.1)",
    "data(\"x.csv\")",
    "mlp([2, 4, 2])",
    "linear(2, 2)",
    "conv2d(2, 2, kernel = 3)",
    "groupnorm(groups = 2, channels = 2)",
    "tanh",
    "sum",
    "mean",
    "mse",
    "mae",
    "matmul",
    "transpose",
    "method",
    "rk4",
    "crank_nicolson",
    "theta(0.5)",
    "erk(a = [[0]], b = [1], c = [0])",
    "steps",
    "outputs",
    "linspace(0, 1, 3)",
    "logspace(0.1, 1, 3)",
    "checkpoint",
    "revolve(slots = 2)",
    "newton_tol",
    "optimizer",
    "adam(lr = 1e-3)",
    "iterations",
    "axis",
    "column",
];

fn check(src: &str, l: &Lowered) -> Result<(), TestCaseError> {
    for d in &l.diagnostics {
        let s = d.primary_span();
        prop_assert!(s.is_some(), "no span: {}", d);
        let s = s.unwrap_or_default();
        prop_assert!(
            s.start <= s.end && s.end <= src.len(),
            "{:?} in {} bytes",
            s,
            src.len()
        );
        let _ = d.render_plain(src, "m.pode");
        prop_assert!(
            d.code != Some(pnode_ir::lower::codes::INTERNAL),
            "{}\n{}",
            d,
            src
        );
    }
    prop_assert_eq!(l.program.is_some(), !l.has_errors(), "{}", src);
    if let Some(p) = &l.program {
        let _ = p.to_string();
        prop_assert!(pnode_ir::jvp(&p.rhs).is_ok());
        prop_assert!(pnode_ir::vjp(&p.rhs).is_ok());
    }
    Ok(())
}

fn run(src: &str) -> Result<(), TestCaseError> {
    check(src, &compile_source(src))?;
    // The partial tree of a file with syntax errors, lowered anyway.
    let parsed = pnode_grammar::parse(src);
    check(src, &lower(&parsed.model))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_corpus_files_never_panic(
        file in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, 0usize..TOKENS.len()), 1..6),
    ) {
        let files = corpus();
        let mut s = files[file.index(files.len())].clone();
        for (at, kind, tok) in edits {
            let mut i = at.index(s.len() + 1);
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            match kind {
                0 => s.insert_str(i, TOKENS[tok]),
                1 => {
                    let mut j = (i + 1 + tok % 16).min(s.len());
                    while !s.is_char_boundary(j) {
                        j -= 1;
                    }
                    s.replace_range(i..j, "");
                }
                2 => s.insert_str(i, &format!(" {} ", TOKENS[tok])),
                _ => {
                    let line = s[i..].lines().next().unwrap_or("").to_string();
                    s.insert_str(i, &format!("{line}\n"));
                }
            }
        }
        run(&s)?;
    }

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(0usize..TOKENS.len(), 0..60)) {
        let body: Vec<&str> = toks.iter().map(|&t| TOKENS[t]).collect();
        run(&format!("model m\n{}", body.join(" ")))?;
    }
}
