//! Expressions: Rust syntax → `.pode` expressions (see the parent module for the mapping).

use super::{Cx, placeholder};
use pnode_grammar::MAX_EXPR_DEPTH;
use pnode_grammar::ast::{Arg, BinOp, Expr, ExprKind, Index, IndexItem};
use syn::Token;
use syn::punctuated::Punctuated;

pub(super) fn strip(mut e: &syn::Expr) -> &syn::Expr {
    loop {
        match e {
            syn::Expr::Paren(p) => e = &p.expr,
            syn::Expr::Group(g) => e = &g.expr,
            _ => return e,
        }
    }
}

pub(super) fn path_ident(e: &syn::Expr) -> Option<&syn::Ident> {
    match e {
        syn::Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => p.path.get_ident(),
        _ => None,
    }
}

/// One expression; `depth` bounds the recursion by the DSL's own limit.
pub(super) fn expr(cx: &mut Cx, e: &syn::Expr, depth: usize) -> Expr {
    let span = cx.spans.of(e);
    if depth > MAX_EXPR_DEPTH {
        cx.error(
            e,
            format!("expression nested deeper than {MAX_EXPR_DEPTH} levels"),
        );
        return placeholder(span);
    }
    let d = depth + 1;
    let kind = match e {
        syn::Expr::Paren(p) => return expr(cx, &p.expr, d),
        syn::Expr::Group(g) => return expr(cx, &g.expr, d),
        syn::Expr::Lit(l) => match literal(cx, &l.lit) {
            Some(k) => k,
            None => return placeholder(span),
        },
        syn::Expr::Path(_) => match path_ident(e) {
            Some(id) => ExprKind::Name(id.to_string()),
            None => {
                cx.error(e, "expected a name (paths are not model names)");
                return placeholder(span);
            }
        },
        syn::Expr::Unary(u) => match u.op {
            syn::UnOp::Neg(_) => ExprKind::Neg(Box::new(expr(cx, &u.expr, d))),
            _ => {
                cx.error(&u.op, "only `-` is a unary operator in a model");
                return placeholder(span);
            }
        },
        syn::Expr::Binary(b) => {
            let op = match b.op {
                syn::BinOp::Add(_) => BinOp::Add,
                syn::BinOp::Sub(_) => BinOp::Sub,
                syn::BinOp::Mul(_) => BinOp::Mul,
                syn::BinOp::Div(_) => BinOp::Div,
                syn::BinOp::BitXor(_) => {
                    cx.error(
                        &b.op,
                        "`^` is exclusive or in Rust (and binds looser than `+`): write a power \
                         as `x.powi(2)`, `x.powf(y)` or `pow(x, y)`",
                    );
                    return placeholder(span);
                }
                _ => {
                    cx.error(
                        &b.op,
                        "unsupported operator: a model uses `+ - * /`, `x.powi(n)` and \
                         `matmul(a, b)`",
                    );
                    return placeholder(span);
                }
            };
            let lhs = Box::new(expr(cx, &b.left, d));
            let rhs = Box::new(expr(cx, &b.right, d));
            ExprKind::Binary { op, lhs, rhs }
        }
        syn::Expr::Array(a) => ExprKind::Array(a.elems.iter().map(|x| expr(cx, x, d)).collect()),
        syn::Expr::Call(c) => {
            let Some(func) = path_ident(&c.func) else {
                cx.error(&c.func, "expected the name of a function or layer");
                return placeholder(span);
            };
            let name = func.to_string();
            let args = call_args(cx, &c.args, d);
            match name.as_str() {
                "pow" | "matmul" if args.len() == 2 && args.iter().all(|a| a.name.is_none()) => {
                    let mut it = args.into_iter();
                    let lhs = Box::new(it.next().expect("two arguments").value);
                    let rhs = Box::new(it.next().expect("two arguments").value);
                    let op = if name == "pow" {
                        BinOp::Pow
                    } else {
                        BinOp::MatMul
                    };
                    ExprKind::Binary { op, lhs, rhs }
                }
                _ => ExprKind::Call {
                    func: cx.ident(func),
                    args,
                },
            }
        }
        syn::Expr::MethodCall(m) => {
            if let Some(t) = &m.turbofish {
                cx.error(t, "type arguments are not part of a model");
                return placeholder(span);
            }
            let name = m.method.to_string();
            let receiver = expr(cx, &m.receiver, d);
            let mut args = call_args(cx, &m.args, d);
            match name.as_str() {
                "powi" | "powf" | "matmul" | "dot" => {
                    if args.len() != 1 || args[0].name.is_some() {
                        cx.error(&m.method, format!("`{name}` takes one argument"));
                        return placeholder(span);
                    }
                    let op = if name.starts_with("pow") {
                        BinOp::Pow
                    } else {
                        BinOp::MatMul
                    };
                    ExprKind::Binary {
                        op,
                        lhs: Box::new(receiver),
                        rhs: Box::new(args.remove(0).value),
                    }
                }
                _ => {
                    let mut func = cx.ident(&m.method);
                    if func.name == "ln" {
                        func.name = "log".into();
                    }
                    let rspan = receiver.span;
                    args.insert(
                        0,
                        Arg {
                            name: None,
                            value: receiver,
                            span: rspan,
                        },
                    );
                    ExprKind::Call { func, args }
                }
            }
        }
        syn::Expr::Index(ix) => {
            let base = Box::new(expr(cx, &ix.expr, d));
            let ispan = cx.spans.of(&ix.index);
            let items = match strip(&ix.index) {
                syn::Expr::Tuple(t) => t.elems.iter().map(|x| index_item(cx, x, d)).collect(),
                other => vec![index_item(cx, other, d)],
            };
            ExprKind::Index {
                base,
                index: Index { items, span: ispan },
            }
        }
        syn::Expr::Assign(a) => {
            cx.error(
                a,
                "`name = value` is a keyword argument and goes inside a call: `sum(x, axis = 0)`",
            );
            return placeholder(span);
        }
        other => {
            cx.error(
                other,
                "unsupported in a model expression: use numbers, names, `+ - * /`, calls, \
                 methods like `x.tanh()`, arrays and indexing",
            );
            return placeholder(span);
        }
    };
    Expr { kind, span }
}

fn literal(cx: &mut Cx, lit: &syn::Lit) -> Option<ExprKind> {
    match lit {
        syn::Lit::Int(i) => {
            if !matches!(i.suffix(), "" | "f64" | "usize" | "u64") {
                cx.error(i, "a model's numbers are f64 (no suffix, or `f64`)");
                return None;
            }
            if i.suffix() == "f64" {
                return i.base10_parse::<f64>().ok().map(ExprKind::Float);
            }
            match i.base10_parse::<u64>() {
                Ok(v) => Some(ExprKind::Int(v)),
                Err(_) => {
                    cx.error(i, "integer out of range (at most 2^64 − 1)");
                    None
                }
            }
        }
        syn::Lit::Float(f) => {
            if !matches!(f.suffix(), "" | "f64") {
                cx.error(f, "a model's numbers are f64 (no suffix, or `f64`)");
                return None;
            }
            match f.base10_parse::<f64>() {
                Ok(v) if v.is_finite() => Some(ExprKind::Float(v)),
                _ => {
                    cx.error(f, "number out of the range of f64");
                    None
                }
            }
        }
        syn::Lit::Str(s) => Some(ExprKind::Str(s.value())),
        syn::Lit::Bool(b) => Some(ExprKind::Bool(b.value)),
        other => {
            cx.error(other, "unsupported literal in a model");
            None
        }
    }
}

pub(super) fn call_args(
    cx: &mut Cx,
    args: &Punctuated<syn::Expr, Token![,]>,
    d: usize,
) -> Vec<Arg> {
    let mut out: Vec<Arg> = Vec::new();
    for a in args {
        let span = cx.spans.of(a);
        match a {
            syn::Expr::Assign(assign) => {
                let Some(key) = path_ident(&assign.left) else {
                    cx.error(&assign.left, "expected a keyword argument `name = value`");
                    continue;
                };
                let name = key.to_string();
                if out
                    .iter()
                    .any(|o| o.name.as_ref().is_some_and(|n| n.name == name))
                {
                    cx.error(key, format!("keyword argument `{name}` is given twice"));
                    continue;
                }
                let value = expr(cx, &assign.right, d);
                out.push(Arg {
                    name: Some(cx.ident(key)),
                    value,
                    span,
                });
            }
            _ => {
                if out.iter().any(|o| o.name.is_some()) {
                    cx.error(a, "positional arguments come before keyword arguments");
                    continue;
                }
                let value = expr(cx, a, d);
                out.push(Arg {
                    name: None,
                    value,
                    span,
                });
            }
        }
    }
    out
}

fn index_item(cx: &mut Cx, e: &syn::Expr, d: usize) -> IndexItem {
    match e {
        syn::Expr::Range(r) => {
            let span = cx.spans.of(r);
            if let syn::RangeLimits::Closed(c) = &r.limits {
                cx.error(c, "slices are half-open: `a..b` (`..=` is not supported)");
            }
            let start = r.start.as_ref().map(|x| expr(cx, x, d));
            let end = r.end.as_ref().map(|x| expr(cx, x, d));
            IndexItem::Slice { start, end, span }
        }
        other => IndexItem::At(expr(cx, other, d)),
    }
}
