//! Helpers shared by the grammar tests.
#![allow(dead_code)]

use pnode_grammar::*;

/// The expression as an S-expression: `(+ a (* b c))`, `(neg x)`, `(call f a :k v)`.
pub fn sexpr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(v) => v.to_string(),
        ExprKind::Float(v) => format!("{v:?}"),
        ExprKind::Bytes { value, unit } => format!("{value:?}{}", unit.symbol()),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Name(n) => n.clone(),
        ExprKind::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(sexpr).collect::<Vec<_>>().join(" ")
            )
        }
        ExprKind::Call { func, args } => {
            let mut s = format!("(call {}", func.name);
            for a in args {
                if let Some(n) = &a.name {
                    s += &format!(" :{}", n.name);
                }
                s += &format!(" {}", sexpr(&a.value));
            }
            s + ")"
        }
        ExprKind::Index { base, index } => {
            format!("(index {} {})", sexpr(base), index_sexpr(index))
        }
        ExprKind::Neg(e) => format!("(neg {})", sexpr(e)),
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", op.symbol(), sexpr(lhs), sexpr(rhs))
        }
        ExprKind::Range { start, end } => format!("(.. {} {})", sexpr(start), sexpr(end)),
    }
}

/// `[0 (: 1 _)]`
pub fn index_sexpr(index: &Index) -> String {
    let items: Vec<String> = index
        .items
        .iter()
        .map(|i| match i {
            IndexItem::At(e) => sexpr(e),
            IndexItem::Slice { start, end, .. } => format!(
                "(: {} {})",
                start.as_ref().map_or("_".to_string(), sexpr),
                end.as_ref().map_or("_".to_string(), sexpr)
            ),
        })
        .collect();
    format!("[{}]", items.join(" "))
}

/// Every expression node of a model, outermost first.
pub fn all_exprs(model: &Model) -> Vec<&Expr> {
    fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
        out.push(e);
        match &e.kind {
            ExprKind::Array(items) => items.iter().for_each(|e| walk(e, out)),
            ExprKind::Call { args, .. } => args.iter().for_each(|a| walk(&a.value, out)),
            ExprKind::Index { base, index } => {
                walk(base, out);
                walk_index(index, out);
            }
            ExprKind::Neg(e) => walk(e, out),
            ExprKind::Binary { lhs, rhs, .. } => {
                walk(lhs, out);
                walk(rhs, out);
            }
            ExprKind::Range { start, end } => {
                walk(start, out);
                walk(end, out);
            }
            _ => {}
        }
    }
    fn walk_index<'a>(index: &'a Index, out: &mut Vec<&'a Expr>) {
        for item in &index.items {
            match item {
                IndexItem::At(e) => walk(e, out),
                IndexItem::Slice { start, end, .. } => {
                    start.iter().chain(end.iter()).for_each(|e| walk(e, out))
                }
            }
        }
    }
    let mut out = Vec::new();
    for item in &model.items {
        match item {
            Item::Decl(d) => {
                d.shape
                    .iter()
                    .flat_map(|s| &s.dims)
                    .for_each(|e| walk(e, &mut out));
                walk(&d.init, &mut out);
            }
            Item::Layer(l) => l.args.iter().for_each(|a| walk(&a.value, &mut out)),
            Item::Let(l) => walk(&l.value, &mut out),
            Item::Equation(e) => {
                if let Some(index) = &e.index {
                    walk_index(index, &mut out);
                }
                walk(&e.rhs, &mut out);
            }
            Item::Block(b) => b.options.iter().for_each(|o| walk(&o.value, &mut out)),
            Item::Loss(l) => walk(&l.value, &mut out),
        }
    }
    out
}

/// Renders every diagnostic of `source` as plain text.
pub fn render_all(source: &str, file_name: &str) -> String {
    parse(source)
        .diagnostics
        .iter()
        .map(|d| d.render_plain(source, file_name))
        .collect()
}

/// Asserts that printing the model of `source` and parsing that text again gives the same
/// model (spans aside) with no diagnostic, and that printing is idempotent.
pub fn assert_round_trip(source: &str) -> String {
    let first = parse(source);
    let printed = print(&first.model);
    let second = parse(&printed);
    assert!(
        second.diagnostics.is_empty(),
        "printed text has diagnostics:\n{printed}\n{:?}",
        second.diagnostics
    );
    assert_eq!(
        second.model.without_spans(),
        first.model.without_spans(),
        "printed:\n{printed}"
    );
    assert_eq!(print(&second.model), printed, "printing is not idempotent");
    printed
}

/// Asserts that every span of the model lies in the source and that each expression's span,
/// cut out of the source, parses alone to the same expression.
pub fn assert_spans_cover(source: &str, model: &Model) {
    let mut m = model.clone();
    m.visit_spans(&mut |s| {
        assert!(
            s.start <= s.end && s.end <= source.len(),
            "span {s:?} outside the source"
        );
    });
    for e in all_exprs(model) {
        if matches!(e.kind, ExprKind::Range { .. }) {
            continue;
        }
        let text = &source[e.span.start..e.span.end];
        let alone =
            parse_expr(text).unwrap_or_else(|d| panic!("`{text}` does not parse alone: {d:?}"));
        assert_eq!(
            alone.without_spans(),
            e.without_spans(),
            "span text `{text}`"
        );
    }
}
