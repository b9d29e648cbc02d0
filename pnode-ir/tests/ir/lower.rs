//! Lowering on the shared corpus: every `tests/corpus/ok` model lowers cleanly (IR snapshot per
//! file) and its RHS and loss functions pass the derivative checks; every
//! `tests/corpus/err-semantic` model reports errors exactly at its `# error-at:` positions
//! (rendered-diagnostics snapshot per file); damaged files never panic.

use pnode_ir::Function;
use pnode_ir::lower::{Lowered, compile_source};
use pnode_testkit::corpus::{Kind, error_positions, files, parse_error_at};
use pnode_testkit::prelude::{Model, check, rand_vec};

/// The files of one corpus folder as (name without `.pode`, text).
fn corpus(kind: Kind) -> Vec<(String, String)> {
    files(kind)
        .into_iter()
        .map(|f| (f.name, f.source))
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
    let files = corpus(Kind::Ok);
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
    for (name, source) in corpus(Kind::Ok) {
        for (k, (fname, f)) in functions(&name, &source).into_iter().enumerate() {
            let l = *f.layout();
            let r = rand_vec(1000 + k as u64, l.state + l.param);
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

#[test]
fn err_semantic_corpus_reports_errors_where_the_header_says() {
    let files = corpus(Kind::ErrSemantic);
    assert!(files.len() >= 25, "only {} err-semantic files", files.len());
    let mut failures = Vec::new();
    for (name, source) in &files {
        let expected = parse_error_at(source).unwrap_or_else(|e| panic!("{name}: {e}"));
        let parsed = pnode_grammar::parse(source);
        assert!(
            !parsed.diagnostics.iter().any(|d| d.is_error()),
            "{name}: a syntax error; semantic err files must parse"
        );
        let l = compile_source(source);
        assert!(l.program.is_none(), "{name}: lowered without error");
        let found = error_positions(source, &l.diagnostics);
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
    let ok = corpus(Kind::Ok);
    let err = corpus(Kind::ErrSemantic);
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
