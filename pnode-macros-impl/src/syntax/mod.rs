//! Rust syntax → the `.pode` syntax tree (`pnode_grammar::ast`).
//!
//! The `#[neural_ode(…)]` arguments become a `solve { }` block; inside the module,
//! `state! { … }`, `param! { … }` and `layer! { … }` become declarations and layers, `const`
//! items constants, and `fn rhs(t, x, y) -> … { let …; (dx, dy) }` the `let`s and one equation
//! per state (the returned tuple, in declaration order). Expressions map one to one onto the
//! DSL's, except where Rust spells an operation differently: `x.powi(2)`, `x.powf(y)` and
//! `pow(x, y)` are `x ^ y` (Rust's `^` is exclusive or), `a.matmul(b)`/`matmul(a, b)` is
//! `a @ b`, `x.ln()` is `log(x)`, other methods `x.f(a)` are calls `f(x, a)`, `f(x, axis = 0)`
//! passes a keyword argument, `x[(1, ..)]` indexes several axes, `x[1..3]` slices.
//!
//! The checks the DSL parser makes on its own trees (duplicate definitions, options and keyword
//! arguments, unknown options and layer kinds) are made here, so `lower` sees a tree the parser
//! would have accepted.

mod exprs;

use crate::spans::SpanMap;
use exprs::{call_args, expr, path_ident, strip};
use pnode_grammar::ast::{
    Arg, Block, BlockKind, Decl, DeclKind, Equation, Expr, ExprKind, Ident, Item, Layer, Let,
    Model, OptionEntry, Shape,
};
use pnode_grammar::{LAYER_KINDS, did_you_mean};
use pnode_ir::lower::STEP_CONTROL_KEYWORDS;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use std::collections::HashMap;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Token, bracketed};

/// The options `#[neural_ode(…)]` takes.
/// `newton_tol` … `krylov_restart` configure the Newton stage solver of implicit methods (the
/// DSL's `solve` options of the same names); `rtol` … `max_steps`
/// ([`STEP_CONTROL_KEYWORDS`]) make the steps of a method with an error estimate adaptive:
/// `method = "dopri5", rtol = 1e-6` is the DSL's `method = dopri5(rtol = 1e-6)`.
pub const ATTRIBUTE_OPTIONS: &[&str] = &[
    "method",
    "t",
    "steps",
    "outputs",
    "checkpoint",
    "newton_tol",
    "max_iters",
    "line_search",
    "linear_solver",
    "krylov_tol",
    "krylov_restart",
    "rtol",
    "atol",
    "h0",
    "h_min",
    "h_max",
    "max_steps",
];

/// A translated model with the table mapping its positions back to tokens.
#[derive(Debug)]
pub struct Translated {
    /// The `.pode` syntax tree.
    pub model: Model,
    /// Positions → token spans.
    pub spans: SpanMap,
    /// Where each attribute option's value was written (for errors found after lowering).
    pub options: HashMap<String, pnode_grammar::ast::Span>,
}

/// Collects errors: every problem found is reported, not only the first.
struct Cx {
    spans: SpanMap,
    errors: Vec<syn::Error>,
    names: HashMap<String, Span>,
}

impl Cx {
    fn error(&mut self, node: &dyn ToTokens, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(node, message));
    }

    fn ident(&mut self, id: &syn::Ident) -> Ident {
        Ident {
            name: id.to_string(),
            span: self.spans.at(id.span()),
        }
    }

    /// Records a definition; a second one of the same name is an error (the DSL's P007).
    fn define(&mut self, id: &syn::Ident) -> bool {
        let name = id.to_string();
        if name == "t" {
            self.error(id, "`t` is the time and cannot be defined");
            return false;
        }
        if self.names.contains_key(&name) {
            self.error(id, format!("`{name}` is defined twice"));
            return false;
        }
        self.names.insert(name, id.span());
        true
    }
}

/// Translates `#[neural_ode(attr)] item`.
pub fn translate(attr: TokenStream, item: TokenStream) -> Result<Translated, syn::Error> {
    let module: syn::ItemMod = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("#[neural_ode] goes on a module holding the model: {e}"),
        )
    })?;
    let mut cx = Cx {
        spans: SpanMap::new(module.ident.span()),
        errors: Vec::new(),
        names: HashMap::new(),
    };
    let name = cx.ident(&module.ident);
    let mut items = Vec::new();
    let mut options = HashMap::new();
    let block = attribute(&mut cx, attr, &mut options)?;
    let Some((_, content)) = &module.content else {
        return Err(syn::Error::new_spanned(
            &module,
            "the model module needs a body: `mod name { state! { … } … fn rhs(…) { … } }`",
        ));
    };
    let mut rhs_seen: Option<&syn::ItemFn> = None;
    for it in content {
        match it {
            syn::Item::Macro(m) => decl_macro(&mut cx, m, &mut items),
            syn::Item::Const(c) => {
                if cx.define(&c.ident) {
                    let init = expr(&mut cx, &c.expr, 0);
                    let span = cx.spans.of(c);
                    items.push(Item::Decl(Decl {
                        kind: DeclKind::Const,
                        name: cx.ident(&c.ident),
                        shape: None,
                        init,
                        span,
                    }));
                }
            }
            syn::Item::Fn(f) => {
                if f.sig.ident != "rhs" {
                    cx.error(
                        &f.sig.ident,
                        "the right-hand side is the function `rhs`; a model has no other functions",
                    );
                } else if rhs_seen.is_some() {
                    cx.error(&f.sig.ident, "`rhs` is defined twice");
                } else {
                    rhs_seen = Some(f);
                }
            }
            other => cx.error(
                other,
                "a model module holds `state! { … }`, `param! { … }`, `layer! { … }`, `const` \
                 items and `fn rhs`",
            ),
        }
    }
    match rhs_seen {
        Some(f) => rhs(&mut cx, f, &mut items),
        None => cx.error(
            &module.ident,
            "the model has no `fn rhs(t, …) -> … { … }` giving du/dt",
        ),
    }
    if let Some(block) = block {
        items.push(Item::Block(block));
    }
    if let Some(mut first) = cx.errors.first().cloned() {
        for e in cx.errors.into_iter().skip(1) {
            first.combine(e);
        }
        return Err(first);
    }
    let span = name.span;
    Ok(Translated {
        model: Model {
            doc: Vec::new(),
            name,
            items,
            span,
        },
        spans: cx.spans,
        options,
    })
}

// ---- the attribute -------------------------------------------------------------------------

fn attribute(
    cx: &mut Cx,
    attr: TokenStream,
    spans: &mut HashMap<String, pnode_grammar::ast::Span>,
) -> Result<Option<Block>, syn::Error> {
    if attr.is_empty() {
        return Ok(None);
    }
    let args =
        Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated.parse2(attr.clone())?;
    let mut options = Vec::new();
    // `rtol = …`, `atol = …`, …: keyword arguments of the method, as the DSL writes them.
    let mut control = Vec::new();
    for nv in &args {
        let Some(key) = nv.path.get_ident() else {
            cx.error(&nv.path, "expected an option name");
            continue;
        };
        let name = key.to_string();
        if !ATTRIBUTE_OPTIONS.contains(&name.as_str()) {
            let hint = did_you_mean(&name, ATTRIBUTE_OPTIONS)
                .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
            cx.error(
                key,
                format!(
                    "unknown option `{name}` (the options are {}){hint}",
                    ATTRIBUTE_OPTIONS.join(", ")
                ),
            );
            continue;
        }
        if spans.contains_key(&name) {
            cx.error(key, format!("option `{name}` is given twice"));
            continue;
        }
        let value = option_value(cx, &name, &nv.value);
        spans.insert(name.clone(), value.span);
        let span = cx.spans.of(nv);
        if STEP_CONTROL_KEYWORDS.contains(&name.as_str()) {
            control.push((
                key.clone(),
                pnode_grammar::ast::Arg {
                    name: Some(cx.ident(key)),
                    value,
                    span,
                },
            ));
            continue;
        }
        options.push(OptionEntry {
            key: cx.ident(key),
            value,
            span,
        });
    }
    adaptive_method(cx, &mut options, control);
    let span = cx.spans.of(&attr);
    // The options the DSL requires, defaulted as the driver defaults a missing `solve` block.
    for (key, value) in [
        ("method", ExprKind::Name("rk4".into())),
        ("t", ExprKind::Int(0)),
        ("steps", ExprKind::Int(100)),
    ] {
        if spans.contains_key(key) || (key == "steps" && adaptive(&options)) {
            continue;
        }
        let value = match value {
            ExprKind::Int(0) => ExprKind::Range {
                start: Box::new(Expr {
                    kind: ExprKind::Float(0.0),
                    span,
                }),
                end: Box::new(Expr {
                    kind: ExprKind::Float(1.0),
                    span,
                }),
            },
            v => v,
        };
        options.push(OptionEntry {
            key: Ident {
                name: key.into(),
                span,
            },
            value: Expr { kind: value, span },
            span,
        });
    }
    Ok(Some(Block {
        kind: BlockKind::Solve,
        options,
        span,
    }))
}

/// The step-control options `(key, argument)` moved into the method's call:
/// `method = "dopri5", rtol = 1e-6` becomes `method = dopri5(rtol = 1e-6)` (the lowering then
/// checks them as it checks the DSL's). Without `method` they are an error at each key.
fn adaptive_method(cx: &mut Cx, options: &mut [OptionEntry], control: Vec<(syn::Ident, Arg)>) {
    if control.is_empty() {
        return;
    }
    let Some(method) = options.iter_mut().find(|o| o.key.name == "method") else {
        for (key, _) in &control {
            cx.error(
                key,
                format!(
                    "`{key}` sets the error control of adaptive steps: give the method too, \
                     `method = \"dopri5\", {key} = …` (methods with an error estimate: {})",
                    pnode_ir::lower::ADAPTIVE_METHOD_NAMES.join(", ")
                ),
            );
        }
        return;
    };
    let args = control.into_iter().map(|(_, a)| a);
    let span = method.value.span;
    match &mut method.value.kind {
        ExprKind::Name(name) => {
            let func = Ident {
                name: std::mem::take(name),
                span,
            };
            method.value.kind = ExprKind::Call {
                func,
                args: args.collect(),
            };
        }
        // `method = dopri5(h0 = …), rtol = …`: one argument list (duplicates are the
        // lowering's error, as in the DSL).
        ExprKind::Call { args: a, .. } => a.extend(args),
        // Anything else is the lowering's error about `method`.
        _ => {}
    }
}

/// Whether the `method` option carries step control (`dopri5(rtol = …)`): then the steps are
/// adaptive and there is no default `steps`.
fn adaptive(options: &[OptionEntry]) -> bool {
    options.iter().any(|o| {
        o.key.name == "method"
            && matches!(&o.value.kind, ExprKind::Call { args, .. }
                if args.iter().any(|a| a.name.as_ref()
                    .is_some_and(|k| STEP_CONTROL_KEYWORDS.contains(&k.name.as_str()))))
    })
}

/// An option value: names may be written as strings (`"rk4"`, `"store_all"`, `"all"`,
/// `"dense"`), the
/// time span as `(t0, t1)` or `t0..t1`.
fn option_value(cx: &mut Cx, key: &str, value: &syn::Expr) -> Expr {
    let span = cx.spans.of(value);
    match (key, value) {
        (
            "method" | "checkpoint" | "linear_solver",
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }),
        ) => {
            let mut name = s.value();
            if name == "all" {
                name = "store_all".into();
            }
            Expr {
                kind: ExprKind::Name(name),
                span,
            }
        }
        ("t", syn::Expr::Tuple(t)) if t.elems.len() == 2 => {
            let start = Box::new(expr(cx, &t.elems[0], 0));
            let end = Box::new(expr(cx, &t.elems[1], 0));
            Expr {
                kind: ExprKind::Range { start, end },
                span,
            }
        }
        ("t", syn::Expr::Range(r)) => match (&r.start, &r.end, &r.limits) {
            (Some(a), Some(b), syn::RangeLimits::HalfOpen(_)) => {
                let start = Box::new(expr(cx, a, 0));
                let end = Box::new(expr(cx, b, 0));
                Expr {
                    kind: ExprKind::Range { start, end },
                    span,
                }
            }
            _ => {
                cx.error(value, "the time span is `(t0, t1)` or `t0..t1`");
                placeholder(span)
            }
        },
        ("t", _) => {
            cx.error(value, "the time span is `(t0, t1)` or `t0..t1`");
            placeholder(span)
        }
        _ => expr(cx, value, 0),
    }
}

fn placeholder(span: pnode_grammar::ast::Span) -> Expr {
    Expr {
        kind: ExprKind::Int(0),
        span,
    }
}

// ---- state! / param! / layer! ----------------------------------------------------------------

/// `name = value` or `name[d0, d1] = value`.
struct Entry {
    name: syn::Ident,
    dims: Option<(Vec<syn::Expr>, TokenStream)>,
    value: syn::Expr,
    tokens: TokenStream,
}

impl Parse for Entry {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: syn::Ident = input.parse()?;
        let dims = if input.peek(syn::token::Bracket) {
            let content;
            let bracket = bracketed!(content in input);
            let dims = Punctuated::<syn::Expr, Token![,]>::parse_terminated(&content)?;
            let mut tokens = TokenStream::new();
            bracket.surround(&mut tokens, |t| dims.to_tokens(t));
            Some((dims.into_iter().collect(), tokens))
        } else {
            None
        };
        input.parse::<Token![=]>()?;
        let value: syn::Expr = input.parse()?;
        // First and last token, for the entry's span.
        let tokens = quote::quote!(#name #value);
        Ok(Entry {
            name,
            dims,
            value,
            tokens,
        })
    }
}

fn decl_macro(cx: &mut Cx, m: &syn::ItemMacro, items: &mut Vec<Item>) {
    let Some(which) = m.mac.path.get_ident().map(|i| i.to_string()) else {
        cx.error(&m.mac.path, "expected `state!`, `param!` or `layer!`");
        return;
    };
    let kind = match which.as_str() {
        "state" => Some(DeclKind::State),
        "param" => Some(DeclKind::Param),
        "layer" => None,
        _ => {
            cx.error(
                &m.mac.path,
                format!(
                    "unknown macro `{which}!` in a model (expected `state!`, `param!` or `layer!`)"
                ),
            );
            return;
        }
    };
    let entries =
        match Punctuated::<Entry, Token![,]>::parse_terminated.parse2(m.mac.tokens.clone()) {
            Ok(e) => e,
            Err(e) => {
                cx.errors.push(e);
                return;
            }
        };
    if entries.is_empty() {
        cx.error(&m.mac, format!("`{which}!` declares nothing"));
    }
    for e in entries {
        if !cx.define(&e.name) {
            continue;
        }
        let span = cx.spans.of(&e.tokens);
        let name = cx.ident(&e.name);
        match kind {
            Some(kind) => {
                let shape = e.dims.as_ref().map(|(dims, tokens)| Shape {
                    dims: dims.iter().map(|d| expr(cx, d, 0)).collect(),
                    span: cx.spans.of(tokens),
                });
                let init = expr(cx, &e.value, 0);
                items.push(Item::Decl(Decl {
                    kind,
                    name,
                    shape,
                    init,
                    span,
                }));
            }
            None => {
                if let Some((_, tokens)) = &e.dims {
                    cx.error(tokens, "a layer has no shape: `net = mlp([2, 16, 2])`");
                    continue;
                }
                let syn::Expr::Call(call) = &e.value else {
                    cx.error(
                        &e.value,
                        "a layer is a constructor call: `net = mlp([2, 16, 2], activation = tanh)`",
                    );
                    continue;
                };
                let Some(kind) = path_ident(&call.func) else {
                    cx.error(&call.func, "expected a layer kind (`mlp`, `linear`, …)");
                    continue;
                };
                let k = kind.to_string();
                if !LAYER_KINDS.contains(&k.as_str()) {
                    let hint = did_you_mean(&k, LAYER_KINDS)
                        .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                    cx.error(
                        kind,
                        format!(
                            "unknown layer kind `{k}` (the kinds are {}){hint}",
                            LAYER_KINDS.join(", ")
                        ),
                    );
                    continue;
                }
                let kind = cx.ident(kind);
                let args = call_args(cx, &call.args, 0);
                items.push(Item::Layer(Layer {
                    name,
                    kind,
                    args,
                    span,
                }));
            }
        }
    }
}

// ---- fn rhs ----------------------------------------------------------------------------------

fn rhs(cx: &mut Cx, f: &syn::ItemFn, items: &mut Vec<Item>) {
    let states: Vec<(String, Ident)> = items
        .iter()
        .filter_map(|i| match i {
            Item::Decl(d) if d.kind == DeclKind::State => {
                Some((d.name.name.clone(), d.name.clone()))
            }
            _ => None,
        })
        .collect();
    if let Some(g) = f.sig.generics.params.first() {
        cx.error(g, "`rhs` takes no generic parameters");
    }
    let mut seen = Vec::new();
    for input in &f.sig.inputs {
        let syn::FnArg::Typed(pt) = input else {
            cx.error(input, "`rhs` takes the time and the states, not `self`");
            continue;
        };
        let syn::Pat::Ident(pi) = &*pt.pat else {
            cx.error(&pt.pat, "expected the name of a state or `t`");
            continue;
        };
        let name = pi.ident.to_string();
        if name != "t" && !states.iter().any(|(s, _)| *s == name) {
            let known: Vec<&str> = states.iter().map(|(s, _)| s.as_str()).collect();
            let hint = did_you_mean(&name, &known)
                .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
            cx.error(
                &pi.ident,
                format!("`{name}` is neither `t` nor a state of the model{hint}"),
            );
        } else if seen.contains(&name) {
            cx.error(&pi.ident, format!("`{name}` is an argument twice"));
        }
        seen.push(name);
    }
    let stmts = &f.block.stmts;
    let Some((last, lets)) = stmts.split_last() else {
        cx.error(
            &f.block,
            "`rhs` returns du/dt: one value per state, `(dx, dy)`",
        );
        return;
    };
    for stmt in lets {
        match stmt {
            syn::Stmt::Local(local) => {
                let pat = match &local.pat {
                    syn::Pat::Type(pt) => &*pt.pat,
                    p => p,
                };
                let syn::Pat::Ident(pi) = pat else {
                    cx.error(&local.pat, "expected `let name = …;`");
                    continue;
                };
                let Some(init) = &local.init else {
                    cx.error(local, "a `let` needs a value");
                    continue;
                };
                if let Some((_, diverge)) = &init.diverge {
                    cx.error(diverge, "`let … else` is not supported in a model");
                    continue;
                }
                if !cx.define(&pi.ident) {
                    continue;
                }
                let value = expr(cx, &init.expr, 0);
                let span = cx.spans.of(local);
                items.push(Item::Let(Let {
                    name: cx.ident(&pi.ident),
                    value,
                    span,
                }));
            }
            other => cx.error(
                other,
                "the body of `rhs` is `let` statements and then the derivatives `(dx, dy)`",
            ),
        }
    }
    let value = match last {
        syn::Stmt::Expr(e, None) => e,
        other => {
            cx.error(
                other,
                "`rhs` ends with the derivatives, one per state in declaration order, without `;`",
            );
            return;
        }
    };
    let parts: Vec<&syn::Expr> = match strip(value) {
        syn::Expr::Tuple(t) => t.elems.iter().collect(),
        e => vec![e],
    };
    if parts.len() != states.len() {
        let names: Vec<&str> = states.iter().map(|(s, _)| s.as_str()).collect();
        cx.error(
            value,
            format!(
                "`rhs` returns {} value{} but the model has {} state{} ({}): one derivative per \
                 state, in declaration order",
                parts.len(),
                if parts.len() == 1 { "" } else { "s" },
                states.len(),
                if states.len() == 1 { "" } else { "s" },
                names.join(", ")
            ),
        );
        return;
    }
    for ((_, state), part) in states.iter().zip(parts) {
        let rhs = expr(cx, part, 0);
        let span = rhs.span;
        items.push(Item::Equation(Equation {
            state: Ident {
                name: state.name.clone(),
                span,
            },
            index: None,
            rhs,
            span,
        }));
    }
}
