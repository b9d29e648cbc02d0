//! The shared corpus at the workspace root: `tests/corpus/ok/*.pode` parse without any
//! diagnostic and round-trip through the printer; each `tests/corpus/err/*.pode` starts with
//! `# error-at: LINE:COL[, LINE:COL…]`, exactly the positions of its error diagnostics.

use crate::common;

use pnode_grammar::*;
use pnode_testkit::corpus::{Kind, error_positions, files, parse_error_at};

/// The files of one corpus folder as (file name, text).
fn corpus(kind: Kind) -> Vec<(String, String)> {
    files(kind)
        .into_iter()
        .map(|f| (f.file_name(), f.source))
        .collect()
}

#[test]
fn ok_files_parse_without_diagnostics_and_round_trip() {
    let files = corpus(Kind::Ok);
    assert!(files.len() >= 25, "only {} ok files", files.len());
    for (name, source) in &files {
        let parsed = parse(source);
        assert!(
            parsed.diagnostics.is_empty(),
            "{name}:\n{}",
            common::render_all(source, name)
        );
        assert!(!parsed.model.name.name.is_empty(), "{name}");
        common::assert_round_trip(source);
        common::assert_spans_cover(source, &parsed.model);
    }
}

#[test]
fn err_files_report_errors_where_their_header_says() {
    let files = corpus(Kind::Err);
    assert!(files.len() >= 10, "only {} err files", files.len());
    let mut failures = Vec::new();
    for (name, source) in &files {
        let expected = parse_error_at(source).unwrap_or_else(|e| panic!("{name}: {e}"));
        let parsed = parse(source);
        let found = error_positions(source, &parsed.diagnostics);
        if found != expected {
            let rendered = common::render_all(source, name);
            failures.push(format!(
                "{name}: found {found:?}, expected {expected:?}\n{rendered}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn err_diagnostics_snapshot() {
    let mut out = String::new();
    for (name, source) in corpus(Kind::Err) {
        out += &format!("=== {name}\n");
        out += &common::render_all(&source, &name);
    }
    insta::assert_snapshot!("err_diagnostics", out);
}

#[test]
fn ast_snapshots() {
    for name in [
        "minimal.pode",
        "precedence.pode",
        "indexing.pode",
        "lotka_volterra.pode",
    ] {
        let (_, source) = corpus(Kind::Ok)
            .into_iter()
            .find(|(n, _)| n == name)
            .expect("corpus file");
        insta::assert_debug_snapshot!(
            format!("ast_{}", name.trim_end_matches(".pode")),
            parse(&source).model
        );
    }
}

#[test]
fn formatted_snapshots() {
    for name in [
        "lotka_volterra.pode",
        "multiline.pode",
        "comments.pode",
        "strings.pode",
    ] {
        let (_, source) = corpus(Kind::Ok)
            .into_iter()
            .find(|(n, _)| n == name)
            .expect("corpus file");
        insta::assert_snapshot!(
            format!("fmt_{}", name.trim_end_matches(".pode")),
            print(&parse(&source).model)
        );
    }
}

/// Every prefix and every one-byte deletion of a few corpus files: no panic, and an error
/// always comes with a primary span inside the file.
#[test]
fn damaged_corpus_files_never_panic() {
    let files = corpus(Kind::Ok);
    for (name, source) in files.iter().filter(|(n, _)| {
        [
            "lotka_volterra.pode",
            "multiline.pode",
            "strings.pode",
            "indexing.pode",
        ]
        .contains(&n.as_str())
    }) {
        let cuts: Vec<usize> = (0..=source.len())
            .filter(|&i| source.is_char_boundary(i))
            .collect();
        for (k, &i) in cuts.iter().enumerate() {
            let prefix = &source[..i];
            let next = cuts.get(k + 1).copied().unwrap_or(source.len());
            for damaged in [prefix.to_string(), format!("{prefix}{}", &source[next..])] {
                let parsed = parse(&damaged);
                for d in &parsed.diagnostics {
                    let span = d
                        .primary_span()
                        .unwrap_or_else(|| panic!("{name}@{i}: no span"));
                    assert!(
                        span.start <= span.end && span.end <= damaged.len(),
                        "{name}@{i}: {span:?}"
                    );
                    let _ = d.render_plain(&damaged, name);
                }
                if parsed.diagnostics.is_empty() {
                    common::assert_round_trip(&damaged);
                }
            }
        }
    }
}
