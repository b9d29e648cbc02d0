//! Lowering on the shared corpus: every `tests/corpus/ok` model lowers cleanly (IR snapshot per
//! file) and its RHS and loss functions pass the derivative checks; every
//! `tests/corpus/err-semantic` model reports errors exactly at its `# error-at:` positions
//! (rendered-diagnostics snapshot per file); damaged files never panic.

mod common;

use common::{Model, check};
use pnode_grammar::line_col;
use pnode_ir::Function;
use pnode_ir::lower::{Lowered, compile_source};
use std::path::{Path, PathBuf};

fn corpus(kind: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/corpus")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pode"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (
                name,
                std::fs::read_to_string(&p).expect("readable corpus file"),
            )
        })
        .collect()
}

fn render(source: &str, name: &str, l: &Lowered) -> String {
    l.diagnostics
        .iter()
        .map(|d| d.render_plain(source, &format!("{name}.pode")))
        .collect()
}

#[test]
fn ok_corpus_lowers_without_errors() {
    let files = corpus("ok");
    assert!(files.len() >= 25, "only {} ok files", files.len());
    for (name, source) in &files {
        let l = compile_source(source);
        assert!(
            l.diagnostics.is_empty(),
            "{name}:\n{}",
            render(source, name, &l)
        );
        let program = l.program.expect("a program");
        insta::assert_snapshot!(format!("ok_{name}"), program.to_string());
    }
}

/// The functions of a program: the RHS, the per-output loss and each fit's prediction.
fn functions(name: &str, source: &str) -> Vec<(String, Function)> {
    let p = compile_source(source).program.expect(name);
    let mut out = vec![(format!("{name}/rhs"), p.rhs.clone())];
    if let Some(l) = &p.loss {
        if let Some(e) = &l.expr {
            out.push((format!("{name}/loss"), e.clone()));
        }
        for (k, fit) in l.fits.iter().enumerate() {
            out.push((format!("{name}/fit{k}"), fit.prediction.clone()));
        }
    }
    out
}

#[test]
fn ok_corpus_derivatives_agree_with_finite_differences() {
    let mut worst = (0.0f64, 0.0f64, 0.0f64);
    let mut count = 0;
    for (name, source) in corpus("ok") {
        for (k, (fname, f)) in functions(&name, &source).into_iter().enumerate() {
            let l = *f.layout();
            let r = common::rand_vec(1000 + k as u64, l.state + l.param);
            // Small magnitudes, states positive (the corpus takes logs and square roots).
            let u: Vec<f64> = r[..l.state].iter().map(|x| 0.5 + 0.4 * x).collect();
            let p: Vec<f64> = r[l.state..].iter().map(|x| 0.5 * x).collect();
            let m = Model {
                name: Box::leak(fname.clone().into_boxed_str()),
                f,
                t: 0.3,
                u,
                p,
            };
            let e = check(&m);
            eprintln!(
                "{fname:<32} jvp-fd {:.2e}  dot {:.2e}  vjp_p-fd {:.2e}",
                e.jvp_fd, e.dot, e.vjp_p_fd
            );
            let (jvp, vjp) = (e.jvp_fd, e.vjp_p_fd);
            assert!(jvp <= 1e-7, "{fname}: JVP vs FD {jvp:e}");
            assert!(e.dot <= 1e-12, "{fname}: dot-product test {:e}", e.dot);
            assert!(vjp <= 1e-7, "{fname}: VJP_θ vs FD {vjp:e}");
            worst = (worst.0.max(jvp), worst.1.max(e.dot), worst.2.max(vjp));
            count += 1;
        }
    }
    eprintln!(
        "{count} functions; worst jvp-fd {:.2e}, dot {:.2e}, vjp_p-fd {:.2e}",
        worst.0, worst.1, worst.2
    );
}

/// `# error-at: L:C[, L:C…]` of an err file.
fn expected_positions(name: &str, source: &str) -> Vec<(usize, usize)> {
    let header = source
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# error-at:"))
        .unwrap_or_else(|| panic!("{name}: first line must be `# error-at: LINE:COL`"));
    header
        .split(',')
        .map(|p| {
            let (l, c) = p.trim().split_once(':').expect("LINE:COL");
            (l.parse().expect("line"), c.parse().expect("column"))
        })
        .collect()
}

#[test]
fn err_semantic_corpus_reports_errors_where_the_header_says() {
    let files = corpus("err-semantic");
    assert!(files.len() >= 25, "only {} err-semantic files", files.len());
    let mut failures = Vec::new();
    for (name, source) in &files {
        let expected = expected_positions(name, source);
        let parsed = pnode_grammar::parse(source);
        assert!(
            !parsed.diagnostics.iter().any(|d| d.is_error()),
            "{name}: a syntax error; semantic err files must parse"
        );
        let l = compile_source(source);
        assert!(l.program.is_none(), "{name}: lowered without error");
        let found: Vec<(usize, usize)> = l
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| line_col(source, d.primary_span().expect("a primary label").start))
            .collect();
        if found != expected {
            failures.push(format!(
                "{name}: found {found:?}, expected {expected:?}\n{}",
                render(source, name, &l)
            ));
        }
        insta::assert_snapshot!(format!("err_{name}"), render(source, name, &l));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every prefix and every one-byte deletion of some files: parse + lower never panics, and
/// every diagnostic has a primary span inside the file.
#[test]
fn damaged_files_never_panic() {
    let ok = corpus("ok");
    let err = corpus("err-semantic");
    let pick = [
        "lotka_volterra",
        "odenet_image",
        "hybrid_physics",
        "robertson",
        "indexing",
        "user_tableau",
        "several_errors",
        "conv_channels",
    ];
    for (name, source) in ok
        .iter()
        .chain(&err)
        .filter(|(n, _)| pick.contains(&n.as_str()))
    {
        let cuts: Vec<usize> = (0..=source.len())
            .filter(|&i| source.is_char_boundary(i))
            .collect();
        for (k, &i) in cuts.iter().enumerate() {
            let next = cuts.get(k + 1).copied().unwrap_or(source.len());
            for damaged in [
                source[..i].to_string(),
                format!("{}{}", &source[..i], &source[next..]),
            ] {
                let l = compile_source(&damaged);
                for d in &l.diagnostics {
                    let s = d
                        .primary_span()
                        .unwrap_or_else(|| panic!("{name}@{i}: no span"));
                    assert!(
                        s.start <= s.end && s.end <= damaged.len(),
                        "{name}@{i}: {s:?}"
                    );
                }
                assert_eq!(l.program.is_some(), !l.has_errors(), "{name}@{i}");
            }
        }
    }
}
