//! Property tests: random ASTs print to text that parses back to the same AST; random token
//! soup never panics the parser, and whatever parses cleanly round-trips.

use crate::common;

use pnode_grammar::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};

const KEYWORDS: [&str; 11] = [
    "model", "state", "param", "const", "layer", "let", "solve", "train", "loss", "true", "false",
];

fn span() -> Span {
    Span::default()
}

fn ident_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,5}".prop_filter("not a keyword", |s| !KEYWORDS.contains(&s.as_str()))
}

fn ident() -> impl Strategy<Value = Ident> {
    ident_name().prop_map(|name| Ident { name, span: span() })
}

fn expr_of(kind: ExprKind) -> Expr {
    Expr { kind, span: span() }
}

fn finite_non_negative() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(f64::abs),
        (0u32..10_000).prop_map(|v| f64::from(v) / 8.0),
    ]
}

fn leaf() -> impl Strategy<Value = Expr> + Clone {
    prop_oneof![
        any::<u64>().prop_map(ExprKind::Int),
        finite_non_negative().prop_map(ExprKind::Float),
        (
            finite_non_negative(),
            prop::sample::select(ByteUnit::ALL.to_vec())
        )
            .prop_map(|(value, unit)| ExprKind::Bytes { value, unit }),
        prop::collection::vec(any::<char>(), 0..6)
            .prop_map(|cs| ExprKind::Str(cs.into_iter().collect())),
        any::<bool>().prop_map(ExprKind::Bool),
        ident_name().prop_map(ExprKind::Name),
    ]
    .prop_map(expr_of)
}

fn args(inner: impl Strategy<Value = Expr> + Clone) -> impl Strategy<Value = Vec<Arg>> {
    (
        prop::collection::vec(inner.clone(), 0..3),
        prop::collection::btree_map(ident_name(), inner, 0..3),
    )
        .prop_map(
            |(positional, keyword): (Vec<Expr>, BTreeMap<String, Expr>)| {
                let positional = positional.into_iter().map(|value| Arg {
                    name: None,
                    value,
                    span: span(),
                });
                let keyword = keyword.into_iter().map(|(name, value)| Arg {
                    name: Some(Ident { name, span: span() }),
                    value,
                    span: span(),
                });
                positional.chain(keyword).collect()
            },
        )
}

fn index(inner: impl Strategy<Value = Expr> + Clone) -> impl Strategy<Value = Index> {
    let item = prop_oneof![
        inner.clone().prop_map(IndexItem::At),
        (prop::option::of(inner.clone()), prop::option::of(inner)).prop_map(|(start, end)| {
            IndexItem::Slice {
                start,
                end,
                span: span(),
            }
        }),
    ];
    prop::collection::vec(item, 1..3).prop_map(|items| Index {
        items,
        span: span(),
    })
}

fn expr() -> impl Strategy<Value = Expr> + Clone {
    let ops = [
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::MatMul,
        BinOp::Pow,
    ];
    leaf().prop_recursive(5, 64, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(ExprKind::Array),
            (ident(), args(inner.clone())).prop_map(|(func, args)| ExprKind::Call { func, args }),
            (inner.clone(), index(inner.clone())).prop_map(|(base, index)| ExprKind::Index {
                base: Box::new(base),
                index
            }),
            inner.clone().prop_map(|e| ExprKind::Neg(Box::new(e))),
            (
                prop::sample::select(ops.to_vec()),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, lhs, rhs)| ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs)
                }),
        ]
        .prop_map(expr_of)
    })
}

fn option_value() -> impl Strategy<Value = Expr> {
    prop_oneof![
        3 => expr(),
        1 => (expr(), expr()).prop_map(|(s, e)| expr_of(ExprKind::Range {
            start: Box::new(s),
            end: Box::new(e),
        })),
    ]
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![Just(BlockKind::Solve), Just(BlockKind::Train)].prop_flat_map(|kind| {
        let keys = known_options(kind).to_vec();
        prop::collection::vec((prop::sample::select(keys), option_value()), 0..5).prop_map(
            move |entries| {
                let mut seen = HashSet::new();
                let options = entries
                    .into_iter()
                    .filter(|(k, _)| seen.insert(*k))
                    .map(|(k, value)| OptionEntry {
                        key: Ident {
                            name: k.to_string(),
                            span: span(),
                        },
                        value,
                        span: span(),
                    })
                    .collect();
                Block {
                    kind,
                    options,
                    span: span(),
                }
            },
        )
    })
}

fn item() -> impl Strategy<Value = Item> {
    let kinds = [DeclKind::State, DeclKind::Param, DeclKind::Const];
    prop_oneof![
        (
            prop::sample::select(kinds.to_vec()),
            ident(),
            prop::option::of(prop::collection::vec(expr(), 1..3)),
            expr()
        )
            .prop_map(|(kind, name, dims, init)| Item::Decl(Decl {
                kind,
                name,
                shape: dims.map(|dims| Shape { dims, span: span() }),
                init,
                span: span(),
            })),
        (
            ident(),
            prop::sample::select(LAYER_KINDS.to_vec()),
            args(expr())
        )
            .prop_map(|(name, kind, args)| Item::Layer(Layer {
                name,
                kind: Ident {
                    name: kind.to_string(),
                    span: span()
                },
                args,
                span: span(),
            })),
        (ident(), expr()).prop_map(|(name, value)| Item::Let(Let {
            name,
            value,
            span: span()
        })),
        (ident(), prop::option::of(index(expr())), expr()).prop_map(|(state, index, rhs)| {
            Item::Equation(Equation {
                state,
                index,
                rhs,
                span: span(),
            })
        }),
        expr().prop_map(|value| Item::Loss(Loss {
            value,
            span: span()
        })),
        block().prop_map(Item::Block),
    ]
}

/// A model that is valid for the parser's checks: unique names, one block of each kind, one
/// loss.
fn model() -> impl Strategy<Value = Model> {
    (
        prop::collection::vec("[ -~]{0,16}", 0..3),
        ident(),
        prop::collection::vec(item(), 0..8),
    )
        .prop_map(|(doc, name, items)| {
            let mut names = HashSet::new();
            let mut sections = HashSet::new();
            let items = items
                .into_iter()
                .filter(|item| match item {
                    Item::Decl(d) => names.insert(d.name.name.clone()),
                    Item::Layer(l) => names.insert(l.name.name.clone()),
                    Item::Let(l) => names.insert(l.name.name.clone()),
                    Item::Block(b) => sections.insert(b.kind.keyword()),
                    Item::Loss(_) => sections.insert("loss"),
                    Item::Equation(_) => true,
                })
                .collect();
            Model {
                doc,
                name,
                items,
                span: span(),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printed_models_parse_back_to_the_same_ast(m in model()) {
        let text = print(&m);
        let parsed = parse(&text);
        prop_assert!(parsed.diagnostics.is_empty(), "{text}\n{}", common::render_all(&text, "gen"));
        prop_assert_eq!(parsed.model.without_spans(), m.without_spans(), "{}", text);
        prop_assert_eq!(print(&parsed.model), text);
        common::assert_spans_cover(&print(&parsed.model), &parsed.model);
    }

    #[test]
    fn printed_expressions_parse_back(e in expr()) {
        let text = e.to_string();
        let parsed = parse_expr(&text);
        prop_assert!(parsed.is_ok(), "{text}: {parsed:?}");
        prop_assert_eq!(parsed.unwrap().without_spans(), e.without_spans(), "{}", text);
    }
}

/// Pieces of the language, glued at random.
fn token_soup() -> impl Strategy<Value = String> {
    let tokens = [
        "model",
        "state",
        "param",
        "const",
        "layer",
        "let",
        "solve",
        "train",
        "loss",
        "d(",
        "d",
        "/dt",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "=",
        "+",
        "-",
        "*",
        "/",
        "@",
        "^",
        "..",
        ":",
        ",",
        "u",
        "x",
        "net",
        "1",
        "1.5e3",
        "1e999",
        "99999999999999999999999",
        "\"s\"",
        "\"a\\q",
        "\"",
        "\n",
        " ",
        "#c\n",
        "64MB",
        "mlp",
        "method",
        "t",
        "steps",
        "true",
        "é",
        "\t",
        "\r\n",
    ];
    prop::collection::vec(prop::sample::select(tokens.to_vec()), 0..40).prop_map(|t| t.concat())
}

fn check_never_panics(source: &str) -> Result<(), TestCaseError> {
    let parsed = parse(source);
    for d in &parsed.diagnostics {
        let span = d.primary_span();
        prop_assert!(span.is_some(), "diagnostic without a span: {d:?}");
        let span = span.unwrap();
        prop_assert!(
            span.start <= span.end && span.end <= source.len(),
            "{span:?} in {source:?}"
        );
        let _ = d.render_plain(source, "soup");
    }
    if parsed.diagnostics.is_empty() {
        common::assert_round_trip(source);
        common::assert_spans_cover(source, &parsed.model);
    }
    let _ = parse_expr(source);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(source in token_soup()) {
        check_never_panics(&source)?;
    }

    #[test]
    fn header_plus_token_soup_never_panics(source in token_soup()) {
        check_never_panics(&format!("model m\nstate u = 1\n{source}"))?;
    }

    #[test]
    fn arbitrary_text_never_panics(source in any::<String>()) {
        check_never_panics(&source)?;
    }
}
