//! Data-driven parser tests: one helper per kind of check, many one-liners.

use crate::common;

use common::{render_all, sexpr};
use pnode_grammar::*;

/// Parses `input` as an expression and compares its S-expression.
#[track_caller]
fn check_expr(input: &str, expect: &str) {
    let e = parse_expr(input).unwrap_or_else(|d| panic!("`{input}`: {d:?}"));
    assert_eq!(sexpr(&e), expect, "input `{input}`");
}

/// Parses `input` as an expression and compares the canonical printing.
#[track_caller]
fn check_print_expr(input: &str, expect: &str) {
    let e = parse_expr(input).unwrap_or_else(|d| panic!("`{input}`: {d:?}"));
    assert_eq!(e.to_string(), expect, "input `{input}`");
    let again = parse_expr(expect).expect("printed text parses");
    assert_eq!(again.without_spans(), e.without_spans());
}

/// Parses a model and compares its canonical printing.
#[track_caller]
fn check_fmt(input: &str, expect: &str) {
    let parsed = parse(input);
    assert!(
        parsed.diagnostics.is_empty(),
        "{}",
        render_all(input, "t.pode")
    );
    assert_eq!(print(&parsed.model), expect);
    common::assert_round_trip(input);
}

/// Parses a model and compares the plain rendering of all its diagnostics.
#[track_caller]
fn check_diags(input: &str, expect: &str) {
    assert_eq!(render_all(input, "t.pode"), expect, "input:\n{input}");
}

/// Parses a model and compares the first diagnostic's message.
#[track_caller]
fn check_message(input: &str, expect: &str) {
    let parsed = parse(input);
    let first = parsed
        .diagnostics
        .first()
        .unwrap_or_else(|| panic!("no diagnostic for {input:?}"));
    assert_eq!(first.message, expect, "input {input:?}");
}

#[test]
fn precedence_and_associativity() {
    check_expr("1 + 2 * 3", "(+ 1 (* 2 3))");
    check_expr("1 - 2 - 3", "(- (- 1 2) 3)");
    check_expr("1 / 2 / 3", "(/ (/ 1 2) 3)");
    check_expr("a * b @ c", "(@ (* a b) c)");
    check_expr("-x ^ 2", "(neg (^ x 2))");
    check_expr("(-x) ^ 2", "(^ (neg x) 2)");
    check_expr("a ^ b ^ c", "(^ a (^ b c))");
    check_expr("a ^ -b", "(^ a (neg b))");
    check_expr("a ^ -b ^ c", "(^ a (neg (^ b c)))");
    check_expr("-a * b", "(* (neg a) b)");
    check_expr("--a", "(neg (neg a))");
    check_expr("a - -b", "(- a (neg b))");
    check_expr("2 * x ^ 3 + 1", "(+ (* 2 (^ x 3)) 1)");
    check_expr("(a + b) * c", "(* (+ a b) c)");
    check_expr("u[0] ^ 2", "(^ (index u [0]) 2)");
    check_expr("-u[0]", "(neg (index u [0]))");
}

#[test]
fn literals() {
    check_expr("1", "1");
    check_expr("1.5", "1.5");
    check_expr("1e-3", "0.001");
    check_expr("2.5e+7", "25000000.0");
    check_expr("6E2", "600.0");
    check_expr("18446744073709551615", "18446744073709551615");
    check_expr("64MB", "64.0MB");
    check_expr("1.5GiB", "1.5GiB");
    check_expr("512B", "512.0B");
    check_expr("true", "true");
    check_expr("false", "false");
    check_expr(r#""a\"b\\c\nd\te""#, r#""a\"b\\c\nd\te""#);
    check_expr("[]", "[]");
    check_expr("[1, [2, 3],]", "[1 [2 3]]");
}

#[test]
fn calls_and_indexing() {
    check_expr("f()", "(call f)");
    check_expr(
        "mlp([2, 3], activation = tanh)",
        "(call mlp [2 3] :activation tanh)",
    );
    check_expr("sum(x, axis = 0)", "(call sum x :axis 0)");
    check_expr(
        "data(\"x.csv\", column = 1)",
        "(call data \"x.csv\" :column 1)",
    );
    check_expr("A[1, 0]", "(index A [1 0])");
    check_expr("u[0:2]", "(index u [(: 0 2)])");
    check_expr("x[:, 1]", "(index x [(: _ _) 1])");
    check_expr("x[1:, :3]", "(index x [(: 1 _) (: _ 3)])");
    check_expr("x[0][1]", "(index (index x [0]) [1])");
    check_expr("f(x)[0]", "(index (call f x) [0])");
    check_expr("(a + b)[0]", "(index (+ a b) [0])");
    check_expr("net(u ^ 3)", "(call net (^ u 3))");
}

#[test]
fn printer_puts_back_needed_parentheses_only() {
    check_print_expr("((a))", "a");
    check_print_expr("(a + b) * c", "(a + b) * c");
    check_print_expr("a + (b * c)", "a + b * c");
    check_print_expr("a - (b - c)", "a - (b - c)");
    check_print_expr("(a - b) - c", "a - b - c");
    check_print_expr("(a ^ b) ^ c", "(a ^ b) ^ c");
    check_print_expr("a ^ (b ^ c)", "a ^ b ^ c");
    check_print_expr("(-a) ^ 2", "(-a) ^ 2");
    check_print_expr("-(a ^ 2)", "-a ^ 2");
    check_print_expr("-(a * b)", "-(a * b)");
    check_print_expr("a ^ (-b)", "a ^ -b");
    check_print_expr("a ^ (b * c)", "a ^ (b * c)");
    check_print_expr("(a + b)[0]", "(a + b)[0]");
    check_print_expr("(-a)[0]", "(-a)[0]");
    check_print_expr("x[ : ,1]", "x[:, 1]");
    check_print_expr("f( a,b = 2 )", "f(a, b = 2)");
    check_print_expr("1e-10", "1e-10");
    check_print_expr("2.50", "2.5");
    check_print_expr("1E3", "1000.0");
    check_print_expr("64MB", "64MB");
    check_print_expr("1.5GiB", "1.5GiB");
    check_print_expr(r#""tab\there""#, r#""tab\there""#);
}

#[test]
fn canonical_formatting() {
    check_fmt(
        "# doc\nmodel   m\nstate u[ 2 ]=[1.0,1.0] # init\nparam k=0.5\nd(u)/dt=-k*u\nsolve{method=rk4,t=0..1\nsteps=10}\nloss=sum(u^2)\n",
        "# doc\nmodel m\n\nstate u[2] = [1.0, 1.0]\n\nparam k = 0.5\n\nd(u)/dt = -k * u\n\nsolve {\n    method = rk4\n    t = 0 .. 1\n    steps = 10\n}\n\nloss = sum(u ^ 2)\n",
    );
    check_fmt(
        "model m\nstate a = 1\nstate b = 2\nlet x = a\nlet y = b\nsolve {}\ntrain {}\n",
        "model m\n\nstate a = 1\nstate b = 2\n\nlet x = a\nlet y = b\n\nsolve {}\n\ntrain {}\n",
    );
    check_fmt("#\n#  indented\nmodel m\n", "#\n#  indented\nmodel m\n");
    check_fmt(
        "model m\nlayer net = mlp([2, 8, 2], activation = tanh)\nd(u[0:1])/dt = net(u)\n",
        "model m\n\nlayer net = mlp([2, 8, 2], activation = tanh)\n\nd(u[0:1])/dt = net(u)\n",
    );
}

#[test]
fn doc_comments_are_the_lines_directly_above_the_header() {
    let m = parse("# not doc\n\n# doc 1\n#doc 2\nmodel m\n").model;
    assert_eq!(m.doc, ["doc 1", "doc 2"]);
    assert!(parse("model m\n").model.doc.is_empty());
    assert!(parse("# x\n\nmodel m\n").model.doc.is_empty());
}

#[test]
fn a_leading_byte_order_mark_is_skipped_and_spans_stay_offsets_into_the_source() {
    let plain = "# doc\nmodel m\nstate u[2] = [1.0, 2.0]\nd(u)/dt = -u\n";
    let src = format!("\u{feff}{plain}");
    let parsed = parse(&src);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let m = &parsed.model;
    assert_eq!(m.without_spans(), parse(plain).model.without_spans());
    assert_eq!(m.doc, ["doc"]);
    assert_eq!(&src[m.name.span.start..m.name.span.end], "m");
    common::assert_spans_cover(&src, m);
    // Errors point at the original text.
    let src = "\u{feff}model m\nlet v = (u + )\n";
    let d = &parse(src).diagnostics;
    assert_eq!(d.len(), 1, "{d:?}");
    let s = d[0].primary_span().unwrap();
    assert_eq!(&src[s.start..], ")\n");
    // Only a leading mark is skipped.
    assert!(parse("model m\n\u{feff}state u = 1.0\n").has_errors());
}

#[test]
fn spans_point_at_the_source() {
    let src = "model m\nstate u[2] = [1.0, 2.0]\nd(u[0])/dt = -u[0] ^ 2 + f(a, k = 3)\n";
    let parsed = parse(src);
    assert!(parsed.diagnostics.is_empty());
    let m = &parsed.model;
    assert_eq!(&src[m.name.span.start..m.name.span.end], "m");
    let text = |s: Span| &src[s.start..s.end];
    let Item::Decl(d) = &m.items[0] else {
        panic!("not a decl")
    };
    assert_eq!(text(d.span), "state u[2] = [1.0, 2.0]");
    assert_eq!(text(d.shape.as_ref().unwrap().span), "[2]");
    assert_eq!(text(d.init.span), "[1.0, 2.0]");
    let Item::Equation(e) = &m.items[1] else {
        panic!("not an equation")
    };
    assert_eq!(text(e.span), "d(u[0])/dt = -u[0] ^ 2 + f(a, k = 3)");
    assert_eq!(text(e.index.as_ref().unwrap().span), "[0]");
    let ExprKind::Binary { lhs, rhs, .. } = &e.rhs.kind else {
        panic!("not binary")
    };
    assert_eq!(text(lhs.span), "-u[0] ^ 2");
    assert_eq!(text(rhs.span), "f(a, k = 3)");
    let ExprKind::Call { args, .. } = &rhs.kind else {
        panic!("not a call")
    };
    assert_eq!(text(args[1].span), "k = 3");
    assert_eq!(text(args[1].name.as_ref().unwrap().span), "k");
    common::assert_spans_cover(src, m);
}

#[test]
fn syntax_error_messages() {
    check_message(
        "model m\nlet v = (u + )\n",
        "expected expression, found `)`",
    );
    check_message("model m\nlet v = u u\n", "expected operator, found `u`");
    check_message(
        "model m\nstate u[2] = [1.0, 1.0\n",
        "expected `,`, `]` or operator, found end of file",
    );
    check_message("model m\nstate let = 1\n", "expected name, found `let`");
    check_message(
        "model m\nstate u[2 = 1\n",
        "expected `,`, `]` or operator, found `=`",
    );
    check_message(
        "model m\nd(u)/dt = 2 *\n",
        "expected expression, found end of file",
    );
    check_message("model m\nd(u) = 1\n", "expected `/`, found `=`");
    check_message("model m\nd(u)/dx = 1\n", "expected `dt`, found `dx`");
    check_message("model m\nlayer net = mlp[2]\n", "expected `(`, found `[`");
    check_message(
        "model m\nsolve { method rk4 }\n",
        "expected `=`, found `rk4`",
    );
    check_message(
        "model m\nlet x = f(1,,2)\n",
        "expected `)` or argument, found `,`",
    );
    check_message(
        "model m\nlet x = [1,,2]\n",
        "expected `]` or expression, found `,`",
    );
    check_message("model m\nlet x = u[]\n", "expected index, found `]`");
    check_message("model\n", "expected name, found end of file");
    check_message("model m\n%\n", "expected item, found `%`");
}

#[test]
fn rendered_syntax_error() {
    check_diags(
        "model m\nlet v = (u + )\n",
        "error[P001]: expected expression, found `)`\n --> t.pode:2:14\n  |\n2 | let v = (u + )\n  |              ^ expected expression\n",
    );
}

#[test]
fn rendered_unknown_option_with_suggestion() {
    check_diags(
        "model m\ntrain { iteratons = 10 }\n",
        "error[P006]: unknown option `iteratons` in `train`\n --> t.pode:2:9\n  |\n2 | train { iteratons = 10 }\n  |         ^^^^^^^^^ unknown option\n  = note: did you mean `iterations`?\n  = note: the `train` options are optimizer, iterations, seed, log_every, batch_size\n",
    );
}

#[test]
fn every_broken_item_is_reported() {
    let src = "model m\nlet a = (\nlet b = 1\nlet c = 2 +\nstate d = ]\nlet e = 3\n";
    let parsed = parse(src);
    let lines: Vec<usize> = parsed
        .diagnostics
        .iter()
        .map(|d| line_col(src, d.primary_span().unwrap().start).0)
        .collect();
    assert_eq!(lines, [3, 5, 5]);
    // The items that parsed are kept.
    let names: Vec<&str> = parsed
        .model
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Let(l) => Some(l.name.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["b", "e"]);
}

#[test]
fn broken_options_are_reported_one_by_one() {
    let src =
        "model m\nsolve {\n  method = rk4(\n  steps = 10\n  t = 0 ..\n  outputs = [1, 2]\n}\n";
    let parsed = parse(src);
    assert_eq!(parsed.diagnostics.len(), 2, "{}", render_all(src, "t.pode"));
    let block = parsed.model.solve().expect("the block is kept");
    let keys: Vec<&str> = block.options.iter().map(|o| o.key.name.as_str()).collect();
    assert_eq!(keys, ["steps", "outputs"]);
}

#[test]
fn semantic_free_checks() {
    check_message("model m\nsolve {}\nsolve {}\n", "second `solve` block");
    check_message("model m\ntrain {}\ntrain {}\n", "second `train` block");
    check_message("model m\nloss = 1\nloss = 2\n", "second `loss`");
    check_message("model m\nstate u = 1\nlet u = 2\n", "`u` is defined twice");
    check_message(
        "model m\nlayer f = mlp([1])\nconst f = 2\n",
        "`f` is defined twice",
    );
    check_message(
        "model m\nsolve { steps = 1, steps = 2 }\n",
        "option `steps` given twice in `solve`",
    );
    check_message(
        "model m\nsolve { mehtod = rk4 }\n",
        "unknown option `mehtod` in `solve`",
    );
    check_message("model m\nlayer l = lstm(2)\n", "unknown layer kind `lstm`");
    check_message(
        "model m\nlet x = f(k = 1, k = 2)\n",
        "keyword argument `k` given twice",
    );
    check_message(
        "model m\nlet x = f(k = 1, 2)\n",
        "positional argument after a keyword argument",
    );
    check_message(
        "model a\nmodel b\n",
        "a file describes one model: second `model` header",
    );
    check_message(
        "state u = 1\nmodel m\n",
        "the `model` header must come first",
    );
    check_message("state u = 1\n", "missing `model NAME` header");
    check_message("model m\nlet x = 1e999\n", "number out of range");
    check_message("model m\nlet x = \"\\x\"\n", "unknown escape in string");
}

#[test]
fn did_you_mean_uses_edit_distance() {
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(did_you_mean("metod", SOLVE_OPTIONS), Some("method"));
    assert_eq!(did_you_mean("step", SOLVE_OPTIONS), Some("steps"));
    assert_eq!(did_you_mean("xyz", SOLVE_OPTIONS), None);
    assert_eq!(did_you_mean("dens", LAYER_KINDS), Some("dense"));
    let d = &parse("model m\nsolve { chekpoint = store_all }\n").diagnostics[0];
    assert!(
        d.notes.contains(&"did you mean `checkpoint`?".to_string()),
        "{:?}",
        d.notes
    );
    let d = &parse("model m\nsolve { frobnicate = 1 }\n").diagnostics[0];
    assert!(
        !d.notes.iter().any(|n| n.starts_with("did you mean")),
        "{:?}",
        d.notes
    );
}

#[test]
fn nesting_limit() {
    let ok = format!(
        "model m\nlet x = {}1{}\n",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    assert!(
        parse(&ok).diagnostics.is_empty(),
        "{}",
        render_all(&ok, "t")
    );
    let deep = format!(
        "model m\nlet x = {}1{}\nlet y = (\n",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    let parsed = parse(&deep);
    let codes: Vec<_> = parsed.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, [Some(codes::TOO_DEEP), Some(codes::SYNTAX)]);
    let at = parsed.diagnostics[0].primary_span().unwrap().start;
    assert_eq!(at, "model m\nlet x = ".len() + MAX_NESTING);
    let arrays = format!(
        "model m\nlet x = {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(parse(&arrays).diagnostics[0].code, Some(codes::TOO_DEEP));
    assert!(parse_expr(&"(".repeat(100_000)).is_err());
}

#[test]
fn expression_depth_limit() {
    let terms = |n: usize, op: &str| vec!["x"; n].join(op);
    for op in [" + ", " * ", " ^ ", " ^ -"] {
        let ok = format!("model m\nlet x = {}\n", terms(MAX_EXPR_DEPTH / 2, op));
        assert!(parse(&ok).diagnostics.is_empty(), "{op}");
        common::assert_round_trip(&ok);
        let long = format!("model m\nlet x = {}\n", terms(100_000, op));
        let parsed = parse(&long);
        assert_eq!(parsed.diagnostics.len(), 1, "{op}");
        assert_eq!(parsed.diagnostics[0].code, Some(codes::TOO_DEEP));
    }
    let negs = format!("model m\nlet x = {}x\n", "-".repeat(100_000));
    assert_eq!(parse(&negs).diagnostics[0].code, Some(codes::TOO_DEEP));
    let indexes = format!("model m\nlet x = x{}\n", "[0]".repeat(100_000));
    assert_eq!(parse(&indexes).diagnostics[0].code, Some(codes::TOO_DEEP));
}

#[test]
fn parse_expr_reports_errors() {
    let errs = parse_expr("1 +").unwrap_err();
    assert_eq!(errs[0].message, "expected expression, found end of file");
    assert_eq!(errs[0].primary_span(), Some(Span::new(3, 3)));
    assert!(parse_expr("0 .. 1").is_err());
}

#[test]
fn into_result() {
    assert!(parse("model m\n").into_result().is_ok());
    let errs = parse("model m\nlet = 1\n").into_result().unwrap_err();
    assert_eq!(errs.len(), 1);
}

#[test]
fn line_col_counts_characters() {
    let src = "ab\nαβγ x\n";
    assert_eq!(line_col(src, 0), (1, 1));
    assert_eq!(line_col(src, 3), (2, 1));
    assert_eq!(line_col(src, src.find('x').unwrap()), (2, 5));
    assert_eq!(line_col(src, 1000), (3, 1));
    assert_eq!(
        line_col(src, 4),
        (2, 1),
        "inside α: moved back to its start"
    );
}

#[test]
fn renders_labels_on_non_ascii_lines_and_at_end_of_file() {
    let src = "model m\nlet α = 1\n";
    let out = render_all(src, "t.pode");
    assert!(
        out.contains("2 | let α = 1\n  |     ^ expected name"),
        "{out}"
    );
    let src = "model m\nlet x = 1 +";
    let out = render_all(src, "t.pode");
    assert!(out.contains(" --> t.pode:2:12\n"), "{out}");
}

/// Nesting every construct 60 deep, closed and unclosed, in an option and in an equation: a
/// grammar that parses anything twice per level (2^60) would never finish.
#[test]
fn no_exponential_backtracking() {
    let pairs = [
        ("x[", "]"),
        ("x[1:", "]"),
        ("x[:", "]"),
        ("f(a = ", ")"),
        ("f(", ")"),
        ("[", "]"),
        ("(", ")"),
        ("-(", ")"),
        ("2 ^ (", ")"),
    ];
    for (open, close) in pairs {
        for closed in [true, false] {
            let inner = format!(
                "{}0{}",
                open.repeat(60),
                if closed {
                    close.repeat(60)
                } else {
                    String::new()
                }
            );
            for src in [
                format!("model m\nsolve {{ t = {inner} .. 1 }}\n"),
                format!("model m\nd(u)/dt = {inner}\n"),
            ] {
                let parsed = parse(&src);
                assert_eq!(parsed.has_errors(), !closed, "{src}");
            }
        }
    }
}

#[test]
fn crlf_line_endings_parse_like_lf() {
    let lf = "# doc\nmodel m\nstate u = 1.0 # c\nsolve {\n  method = rk4\n  steps = 10\n}\n";
    let crlf = lf.replace('\n', "\r\n");
    let (a, b) = (parse(lf), parse(&crlf));
    assert!(b.diagnostics.is_empty(), "{}", render_all(&crlf, "t"));
    assert_eq!(a.model.without_spans(), b.model.without_spans());
    assert_eq!(b.model.doc, ["doc"]);
    let broken = "model m\r\nlet x = (\r\n";
    let out = render_all(broken, "t");
    assert!(!out.contains('\r'), "{out:?}");
}

#[test]
fn a_third_definition_points_back_at_the_first() {
    let src = "model m\nstate u = 1\nparam u = 2\nconst u = 3\n";
    let parsed = parse(src);
    let firsts: Vec<usize> = parsed
        .diagnostics
        .iter()
        .map(|d| {
            line_col(
                src,
                d.labels.iter().find(|l| !l.primary).unwrap().span.start,
            )
            .0
        })
        .collect();
    assert_eq!(firsts, [2, 2]);
}

#[test]
fn recovery_accepts_several_items_on_one_line() {
    // The file fails as a whole (last line), so it is parsed piece by piece; the first line
    // holds two items in one piece and must not be reported.
    let src = "model m\nstate a = 1 state b = 2\nlet c = (\n";
    let parsed = parse(src);
    assert_eq!(parsed.diagnostics.len(), 1, "{}", render_all(src, "t"));
    assert_eq!(parsed.model.items.len(), 2);
}

#[test]
fn render_plain_never_panics_on_odd_labels() {
    let src = "ab\r\nαβ\n";
    for start in 0..=src.len() + 2 {
        for end in [0, start, start + 1, src.len() + 5] {
            let d = Diagnostic::error("x").with_primary(Span::new(start, end), "here");
            let out = d.render_plain(src, "t");
            assert!(out.starts_with("error: x\n"), "{out}");
        }
    }
}

/// The deepest trees accepted, handled on a thread with a small (1 MiB) stack: parsing,
/// printing, `Debug`, cloning, comparing, visiting spans and dropping must not overflow.
#[test]
fn deepest_accepted_trees_on_a_small_stack() {
    let sources = [
        format!(
            "model m\nlet x = {}1{}\n",
            "(".repeat(MAX_NESTING),
            ")".repeat(MAX_NESTING)
        ),
        format!(
            "model m\nlet x = {}1{}\n",
            "[".repeat(MAX_NESTING),
            "]".repeat(MAX_NESTING)
        ),
        format!(
            "model m\nlet x = {}1{}\n",
            "f(k = ".repeat(MAX_NESTING / 2),
            ")".repeat(MAX_NESTING / 2)
        ),
        format!(
            "model m\nlet x = {}\n",
            vec!["x"; MAX_EXPR_DEPTH].join(" ^ ")
        ),
        format!(
            "model m\nlet x = {}\n",
            vec!["x"; MAX_EXPR_DEPTH].join(" - ")
        ),
        format!("model m\nlet x = {}x\n", "-".repeat(MAX_EXPR_DEPTH - 1)),
    ];
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            for src in &sources {
                let parsed = parse(src);
                assert!(parsed.diagnostics.is_empty(), "{}", &src[..40]);
                let text = print(&parsed.model);
                let copy = parsed.model.without_spans();
                assert_eq!(copy, parse(&text).model.without_spans());
                assert!(format!("{:?}", parsed.model).contains("Let("));
                drop(copy);
                drop(parsed);
            }
        })
        .expect("spawn")
        .join()
        .expect("no overflow");
}

#[test]
fn model_accessors() {
    let src = "model m\nstate a = 1\nparam p = 2\nstate b[2] = zeros\nlayer f = linear(2, 2)\nlet v = a\nd(a)/dt = -a\nd(b)/dt = f(b)\nsolve { method = rk4, checkpoint = budget(bytes = 64MB), steps = 10 }\nloss = a\n";
    let m = parse(src).into_result().expect("valid").0;
    let states: Vec<&str> = m
        .decls(DeclKind::State)
        .map(|d| d.name.name.as_str())
        .collect();
    assert_eq!(states, ["a", "b"]);
    assert_eq!(m.decls(DeclKind::Param).count(), 1);
    assert_eq!(m.decls(DeclKind::Const).count(), 0);
    assert_eq!(m.layers().next().unwrap().kind.name, "linear");
    assert_eq!(m.lets().count(), 1);
    assert_eq!(
        m.equations()
            .map(|e| e.state.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(m.loss().unwrap().value.as_name(), Some("a"));
    let solve = m.solve().unwrap();
    assert!(m.train().is_none());
    assert_eq!(solve.get("method").unwrap().value.as_name(), Some("rk4"));
    assert_eq!(solve.get("steps").unwrap().value.as_u64(), Some(10));
    assert_eq!(solve.get("steps").unwrap().value.as_f64(), Some(10.0));
    let ExprKind::Call { args, .. } = &solve.get("checkpoint").unwrap().value.kind else {
        panic!("not a call")
    };
    assert_eq!(args[0].value.as_bytes(), Some(64e6));
    assert_eq!(
        parse_expr("1GiB").unwrap().as_bytes(),
        Some(1024.0 * 1024.0 * 1024.0)
    );
    assert_eq!(parse_expr("2.5").unwrap().as_u64(), None);
    let spans: Vec<&str> = m
        .items
        .iter()
        .map(|i| &src[i.span().start..i.span().end])
        .collect();
    assert_eq!(spans[0], "state a = 1");
    assert_eq!(spans[spans.len() - 1], "loss = a");
}

#[test]
fn equation_hint_only_for_equation_like_lines() {
    let d = &parse("model m\ndu/dt = 1\n").diagnostics[0];
    assert_eq!(d.notes, ["equations are written `d(u)/dt = …`"]);
    let d = &parse("model m\ndelta = 3\nd(u)/dt = 1\n").diagnostics[0];
    assert!(d.notes.is_empty(), "{:?}", d.notes);
}

/// Issue 15, finding 6: a file longer than the limit is refused whole with one error (no
/// label: it is about the file), a file of exactly the limit is parsed.
#[test]
fn size_limit() {
    let mut at_limit = String::from("model m\nstate u = 1.0\nd(u)/dt = -u\n");
    let line = format!("# {}\n", "x".repeat(77));
    while at_limit.len() + line.len() <= MAX_SOURCE_BYTES {
        at_limit += &line;
    }
    at_limit += &"#".repeat(MAX_SOURCE_BYTES - at_limit.len());
    assert_eq!(at_limit.len(), MAX_SOURCE_BYTES);
    let parsed = parse(&at_limit);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    assert_eq!(parsed.model.items.len(), 2);

    let over = at_limit + "\n";
    let parsed = parse(&over);
    assert_eq!(parsed.diagnostics.len(), 1);
    let d = &parsed.diagnostics[0];
    assert_eq!(d.code, Some(codes::TOO_LARGE));
    assert!(d.labels.is_empty());
    assert_eq!(
        d.message,
        format!("the model is 8388609 bytes; a model file may have at most 8388608 bytes (8 MiB)")
    );
    assert!(parsed.model.items.is_empty());
    assert_eq!(
        parse_expr(&"1+".repeat(MAX_SOURCE_BYTES / 2 + 1)).unwrap_err()[0].code,
        Some(codes::TOO_LARGE)
    );
}

/// Issue 15, finding 6: garbage gets at most `MAX_ERRORS` errors and the note that parsing
/// stopped; the items after the stop are not parsed at all.
#[test]
fn error_limit() {
    let mut garbage = String::from("model m\n");
    for i in 0..5 * MAX_ERRORS {
        garbage += &format!("let x{i} = ) +\n");
    }
    let parsed = parse(&garbage);
    let errors = parsed.diagnostics.iter().filter(|d| d.is_error()).count();
    assert_eq!(errors, MAX_ERRORS);
    assert_eq!(parsed.diagnostics.len(), MAX_ERRORS + 1);
    let last = parsed.diagnostics.last().unwrap();
    assert_eq!(last.severity, Severity::Note);
    assert_eq!(last.message, "aborting after 100 errors");
    assert!(is_abort_note(last));
    let text = render_all(&garbage, "t.pode");
    assert!(text.ends_with("note: aborting after 100 errors\n  = note: the rest is not checked; fix these errors first\n"), "{}", &text[text.len() - 200..]);
    // The last error reported is the one of item 100.
    let line = |d: &Diagnostic| line_col(&garbage, d.primary_span().unwrap().start).0;
    assert_eq!(line(&parsed.diagnostics[MAX_ERRORS - 1]), MAX_ERRORS + 1);
    // Exactly the limit: no note.
    let mut hundred = String::from("model m\n");
    for i in 0..MAX_ERRORS {
        hundred += &format!("let x{i} = ) +\n");
    }
    let parsed = parse(&hundred);
    assert_eq!(parsed.diagnostics.len(), MAX_ERRORS);
    assert!(parsed.diagnostics.iter().all(Diagnostic::is_error));
    // Capping twice changes nothing.
    let mut diags = parse(&garbage).diagnostics;
    let before = diags.clone();
    limit_errors(&mut diags, false);
    assert_eq!(diags, before);
}

/// Issue 15, finding 6: a chain too long to build is refused by the pre-scan, at the operator
/// where it gets too deep, before pest sees it (the builder's own check labels the whole
/// expression instead); the scan never refuses a tree the builder accepts.
#[test]
fn long_chains_are_refused_before_parsing() {
    let long = format!("model m\nlet x = {}\n", vec!["x"; 1_000_000].join(" + "));
    let parsed = parse(&long);
    assert_eq!(parsed.diagnostics.len(), 1);
    let d = &parsed.diagnostics[0];
    assert_eq!(d.code, Some(codes::TOO_DEEP));
    assert_eq!(
        d.labels[0].message,
        "the expression is more than 512 operators deep here"
    );
    let at = d.primary_span().unwrap().start;
    assert_eq!(&long[at..at + 1], "+");
    // `x + x + …`: the 515th `+` (the scan's bound has a slack of 2 for the `{` of a block
    // and the `(` of `d(u)`).
    assert_eq!(at, "model m\nlet x = ".len() + (MAX_EXPR_DEPTH + 2) * 4 + 2);
    // The same chain one level down in brackets, and behind products.
    let nested = format!(
        "model m\nlet x = f([{}])\n",
        vec!["x * y"; 100_000].join(" - ")
    );
    assert_eq!(
        parse(&nested).diagnostics[0].labels[0].message,
        "the expression is more than 512 operators deep here"
    );

    // Around the limit: accepted exactly when the builder's depth (one for the parentheses,
    // and `depth(n)` for `n` terms) is at most the limit.
    type Depth = fn(usize) -> usize;
    let shapes: [(&str, Depth); 6] = [
        (" + ", |n| n - 1),
        (" * ", |n| n - 1),
        (" ^ ", |n| n - 1),
        (" ^ -", |n| 2 * (n - 1)),
        (" * 2 - ", |n| (n - 1) + 1),
        (" - -", |n| n),
    ];
    for (op, depth) in shapes {
        for n in 2..MAX_EXPR_DEPTH + 8 {
            if depth(n).abs_diff(MAX_EXPR_DEPTH) > 4 {
                continue;
            }
            let src = format!("model m\nlet x = ({})\n", vec!["x"; n].join(op));
            let accepted = parse(&src).diagnostics.is_empty();
            assert_eq!(accepted, depth(n) < MAX_EXPR_DEPTH, "{op:?} × {n}");
        }
    }
    // A sum of many short products is as deep as its terms are many, not its operators.
    let poly = format!("model m\nlet x = {}\n", vec!["2 * x * x"; 400].join(" + "));
    assert!(parse(&poly).diagnostics.is_empty());
}

/// An expression may go on across a line starting with `d(` (a layer called `d`): the
/// pieces are parsed together, as the whole file would be; a broken item before an equation
/// still gets its own error and the equation is kept.
#[test]
fn an_expression_may_go_on_into_a_line_starting_with_d() {
    let src = "model m\nlayer d = linear(1, 1)\nlet y = 2 *\nd(y)\nlet z = y -\n  d(y) -\nd(y)\n";
    let parsed = parse(src);
    assert!(parsed.diagnostics.is_empty(), "{}", render_all(src, "t"));
    assert_eq!(parsed.model.items.len(), 3, "{:#?}", parsed.model.items);
    let broken = "model m\nstate u = 1.0\nlet x = 1 +\nd(u)/dt = -u\n";
    let parsed = parse(broken);
    assert_eq!(parsed.diagnostics.len(), 1, "{}", render_all(broken, "t"));
    assert_eq!(
        parsed.diagnostics[0].message,
        "expected expression, found `d`"
    );
    assert!(matches!(parsed.model.items.last(), Some(Item::Equation(_))));
}

/// Issue 15, finding 5: a shallow model is parsed on the caller's stack (no new mapping: it
/// fits a thread of 512 KiB), a deep one on a parse thread of its own.
#[test]
fn shallow_models_need_little_stack() {
    let small = "model m\nstate u[2] = [1.0, 2.0]\nparam k = 0.5\nd(u)/dt = -k * (u + 1)\n";
    let deep = format!(
        "model m\nlet x = {}1{}\n",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            assert!(parse(small).diagnostics.is_empty());
            assert!(parse(&deep).diagnostics.is_empty());
        })
        .expect("spawn")
        .join()
        .expect("no overflow");
}

/// Issue 15, finding 6: an item with more operands than the limit is refused by the pre-scan
/// (pest's memory for an item grows with its operands); exactly the limit is parsed.
#[test]
fn operand_limit_per_item() {
    let array = |n: usize| {
        format!(
            "model m\nconst c = [{}]\nlet y = 1\n",
            vec!["1"; n].join(",")
        )
    };
    // `const` and `c` count too.
    let at_limit = array(MAX_ITEM_OPERANDS - 2);
    let parsed = parse(&at_limit);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let over = array(MAX_ITEM_OPERANDS - 1);
    let parsed = parse(&over);
    assert_eq!(parsed.diagnostics.len(), 1, "{:?}", parsed.diagnostics);
    let d = &parsed.diagnostics[0];
    assert_eq!(d.code, Some(codes::TOO_LARGE));
    assert_eq!(
        d.message,
        "an item with more than 524288 names, numbers and strings"
    );
    // The operand past the limit: the last number.
    let at = d.primary_span().unwrap().start;
    assert_eq!(
        at,
        "model m\nconst c = [".len() + 2 * (MAX_ITEM_OPERANDS - 2)
    );
    // The next item is still parsed.
    assert_eq!(parsed.model.items.len(), 1);
}
