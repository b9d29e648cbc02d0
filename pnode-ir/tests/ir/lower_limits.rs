//! Issue 15, findings 6 and 7: the lowering's error limit, and messages that name the limit a
//! value exceeds and echo literals as written.

use pnode_grammar::{MAX_ERRORS, Severity, is_abort_note};
use pnode_ir::lower::codes;
use pnode_ir::lower::*;

fn lowered(body: &str) -> (String, Lowered) {
    let src = format!("model m\n{body}\n");
    let l = compile_source(&src);
    (src, l)
}

/// The only error of `body`: its code, message and the text its primary label spans.
#[track_caller]
fn only_error(body: &str) -> (&'static str, String, String) {
    let (src, l) = lowered(body);
    let errors: Vec<_> = l.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{:#?}", l.diagnostics);
    let d = errors[0];
    let span = d.primary_span().expect("a label");
    (
        d.code.expect("a code"),
        d.message.clone(),
        src[span.start..span.end].to_string(),
    )
}

#[test]
fn a_dimension_too_large_says_so_with_the_limit() {
    let limit = MAX_VALUE_ELEMENTS;
    assert_eq!(
        only_error("state u[4294967296] = zeros\nd(u)/dt = u"),
        (
            codes::TOO_LARGE,
            format!("a dimension of 4294967296 is too large; the largest is {limit}"),
            "4294967296".into()
        )
    );
    // Echoed as written, not rounded through f64 (18446744073709552000).
    assert_eq!(
        only_error("state u[2, 18446744073709551615] = zeros\nd(u)/dt = u").1,
        format!("a dimension of 18446744073709551615 is too large; the largest is {limit}")
    );
    // Through a constant, and the largest accepted dimension.
    assert_eq!(
        only_error("const N = 4194305\nstate u[N] = zeros\nd(u)/dt = u").1,
        format!("a dimension of 4194305 is too large; the largest is {limit}")
    );
    let (src, l) = lowered("const N = 4194304\nstate u[N] = zeros\nd(u)/dt = u");
    assert!(l.program.is_some(), "{src}\n{:#?}", l.diagnostics);
    // Zero and fractions are still not positive integers.
    for dim in ["0", "2.5"] {
        let (code, message, _) = only_error(&format!("state u[{dim}] = zeros\nd(u)/dt = u"));
        assert_eq!(code, codes::DIMENSION);
        assert_eq!(
            message,
            format!("a dimension must be a positive integer, found {dim}")
        );
    }
}

#[test]
fn integer_options_echo_the_literal() {
    let (code, message, at) = only_error(
        "state u = 1.0\nd(u)/dt = -u\nsolve { method = rk4, t = 0 .. 1, steps = 18446744073709551615 }",
    );
    assert_eq!(code, codes::OPTION_VALUE);
    assert_eq!(
        message,
        "`steps` must be a positive integer (at most 4294967296), found 18446744073709551615"
    );
    assert_eq!(at, "18446744073709551615");
}

#[test]
fn a_time_span_whose_points_overflow_is_an_error() {
    let solve =
        |opts: &str| format!("state u = 1.0\nd(u)/dt = -u\nsolve {{ method = rk4, {opts} }}");
    let (code, message, at) = only_error(&solve("t = -1e308 .. 1e308, steps = 10"));
    assert_eq!(code, codes::TIMES);
    assert_eq!(
        message,
        "the time span -1e308 .. 1e308 is too long: t1 - t0 overflows a 64-bit float"
    );
    assert_eq!(at, "-1e308 .. 1e308");
    // Steps below the precision of the times: the points would repeat.
    let (code, message, at) = only_error(&solve("t = 1 .. 1.000000000001, steps = 100000000"));
    assert_eq!(code, codes::TIMES);
    assert!(
        message.starts_with("100000000 steps over 1 .. 1.000000000001 are too small"),
        "{message}"
    );
    assert_eq!(at, "100000000");
    // The widest span that works, and as many steps as it can take.
    let (src, l) = lowered(&solve("t = -8e307 .. 8e307, steps = 1000"));
    assert!(l.program.is_some(), "{src}\n{:#?}", l.diagnostics);
    let (src, l) = lowered(&solve("t = 1 .. 2, steps = 4294967296"));
    assert!(l.program.is_some(), "{src}\n{:#?}", l.diagnostics);
}

#[test]
fn lowering_stops_reporting_after_the_error_limit() {
    // 3 × the limit of states without equations: one error each.
    let body: String = (0..3 * MAX_ERRORS)
        .map(|i| format!("state s{i} = 1.0\n"))
        .collect();
    let (_, l) = lowered(&body);
    let errors = l.diagnostics.iter().filter(|d| d.is_error()).count();
    assert_eq!(errors, MAX_ERRORS);
    assert_eq!(l.diagnostics.len(), MAX_ERRORS + 1);
    let last = l.diagnostics.last().unwrap();
    assert_eq!(last.severity, Severity::Note);
    assert!(is_abort_note(last));
    // The errors kept are the first in the file.
    assert!(l.diagnostics[MAX_ERRORS - 1].message.contains("`s99`"));
    // At the limit: every error, no note.
    let body: String = (0..MAX_ERRORS)
        .map(|i| format!("state s{i} = 1.0\n"))
        .collect();
    let (_, l) = lowered(&body);
    assert_eq!(l.diagnostics.len(), MAX_ERRORS);
    assert!(l.diagnostics.iter().all(|d| d.is_error()));
}

/// Many equations of one state (more than the 64 the sweep compares) are checked for overlaps
/// by marking components, linear in the components: each block given twice is one error at
/// its second equation pointing back at the first.
#[test]
fn many_component_equations_find_each_overlap() {
    let mut body = String::from("state u[2, 100] = zeros\n");
    for i in 0..2 {
        for j in 0..100 {
            body += &format!("d(u[{i}, {j}])/dt = 0\n");
        }
    }
    body += "d(u[1, 7])/dt = 1\nd(u[0, 3:5])/dt = [1, 2]\n";
    let (src, l) = lowered(&body);
    let errors: Vec<_> = l.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 2, "{:#?}", l.diagnostics);
    let text = |s: pnode_grammar::Span| &src[s.start..s.end];
    let line = |s: pnode_grammar::Span| src[..s.start].matches('\n').count() + 1;
    for (d, target, first_line) in [(errors[0], "u[1, 7]", 110), (errors[1], "u[0, 3:5]", 6)] {
        assert_eq!(d.code, Some(codes::COVERAGE));
        assert_eq!(d.message, "components of `u` are given twice");
        assert_eq!(text(d.labels[0].span), target);
        assert_eq!(line(d.labels[1].span), first_line);
    }
    // Without the repeats: every component once, a program.
    let body = body.lines().take(201).collect::<Vec<_>>().join("\n");
    let (src, l) = lowered(&body);
    assert!(l.program.is_some(), "{src}\n{:#?}", l.diagnostics);
}
