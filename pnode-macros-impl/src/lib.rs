//! The library behind `pnode-macros`: `#[neural_ode]` and `model!` as plain functions from
//! tokens to tokens, so they are unit-testable without a compiler.
//!
//! ```text
//! #[neural_ode(…)] mod m { … } ──syntax──▶ .pode AST ─┐
//! model!("m.pode") ──pnode_grammar::parse──▶ AST ──────┤
//!                                                      ▼
//!                       pnode_ir::lower (the same diagnostics as pnodec check)
//!                                                      ▼
//!        plan (tableau, grid, schedule + predicted cost, u0/θ0)  ── pnode-checkpoint
//!        (adaptive steps: the error control and the online checkpointing's bound)
//!                                                      ▼
//!        generate: pnode-codegen's Model + Stepper, and Ode with the plan as constants
//!        (adaptive: Ode over the runtime's AdaptiveSolver, see [`adaptive`])
//! ```
//!
//! Every problem is a `compile_error!` at the tokens it concerns (for `model!`, at the string
//! literal, naming `file:line:col` in the `.pode` file), followed by a fallback module with the
//! generated module's names, so that one mistake gives one error and not a cascade of
//! unresolved names. Lowering warnings (an unused parameter, say) become compiler warnings at
//! their tokens, through the one mechanism stable Rust offers procedural macros: the use of a
//! `#[deprecated]` item whose note is the warning.

pub mod adaptive;
pub mod generate;
pub mod plan;
pub mod spans;
pub mod syntax;

pub use generate::Paths;

use pnode_grammar::Diagnostic;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use std::path::Path;

/// A diagnostic's text for a compile error: message and code, primary label, notes.
fn diagnostic_text(d: &Diagnostic) -> String {
    let mut text = d.message.clone();
    if let Some(code) = d.code {
        text += &format!(" [{code}]");
    }
    if let Some(l) = d.labels.iter().find(|l| l.primary)
        && !l.message.is_empty()
    {
        text += &format!("\n  = {}", l.message);
    }
    for l in d
        .labels
        .iter()
        .filter(|l| !l.primary && !l.message.is_empty())
    {
        text += &format!("\n  = also: {}", l.message);
    }
    for n in &d.notes {
        text += &format!("\n  = note: {n}");
    }
    text
}

/// The lowering's warnings `(tokens, text)` as compiler warnings at those tokens. Stable Rust
/// has no warning API for procedural macros; the use of a `#[deprecated]` item is the one way
/// to make rustc warn at chosen tokens, so each warning is a deprecated constant used once,
/// its note the warning's text (`#[allow(deprecated)]` on the module silences them).
fn warnings(items: impl IntoIterator<Item = (Span, String)>) -> TokenStream {
    let mut out = TokenStream::new();
    for (k, (span, text)) in items.into_iter().enumerate() {
        let name = syn::Ident::new(&format!("pnode_warning_{k}"), span);
        let note = format!("pnode: {text}");
        out.extend(quote::quote_spanned! {span=>
            #[deprecated(note = #note)]
            #[allow(non_upper_case_globals, dead_code)]
            const #name: () = ();
            const _: () = #name;
        });
    }
    out
}

/// Whether the tokens call `opaque(…)` anywhere (a model with opaque layers, for the fallback
/// module after an error).
fn mentions_opaque(tokens: &TokenStream) -> bool {
    let mut prev_opaque = false;
    for t in tokens.clone() {
        match t {
            proc_macro2::TokenTree::Group(g) => {
                if prev_opaque && g.delimiter() == proc_macro2::Delimiter::Parenthesis {
                    return true;
                }
                if mentions_opaque(&g.stream()) {
                    return true;
                }
                prev_opaque = false;
            }
            proc_macro2::TokenTree::Ident(i) => prev_opaque = i == "opaque",
            _ => prev_opaque = false,
        }
    }
    false
}

fn combine(errors: impl IntoIterator<Item = syn::Error>) -> Option<syn::Error> {
    errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    })
}

/// The module `#vis mod #name` with the generated module's names, for after an error: uses of
/// `name::Ode` and its methods still resolve, so the error is the only one.
///
/// With `opaque` (the model declares opaque layers), `Ode::new` takes the layers (of any type,
/// so the call still type-checks).
pub fn fallback_module(
    attrs: &[syn::Attribute],
    vis: &syn::Visibility,
    name: &syn::Ident,
    opaque: bool,
) -> TokenStream {
    let new = if opaque {
        quote! {
            pub fn new<L>(layers: L) -> ::core::result::Result<Self, ::std::string::String> {
                ::core::result::Result::Err("the model failed to compile".into())
            }
        }
    } else {
        quote! {
            pub fn new() -> ::core::result::Result<Self, ::std::string::String> {
                ::core::result::Result::Err("the model failed to compile".into())
            }
        }
    };
    quote! {
        #(#attrs)*
        #[allow(dead_code, unused_variables, clippy::all)]
        #vis mod #name {
            /// The model failed to compile (see the error above).
            #[derive(Debug, Default, Clone)]
            pub struct Model;
            impl Model {
                /// State length.
                pub const STATE_LEN: usize = 0;
                /// Parameter length.
                pub const PARAM_LEN: usize = 0;
                /// The model.
                pub fn new() -> Self { Model }
            }
            /// The model failed to compile (see the error above).
            #[derive(Debug, Clone)]
            pub struct Stepper;
            /// The model failed to compile (see the error above).
            #[derive(Debug)]
            pub struct Ode { pub model: Model }
            impl Ode {
                pub const STATE_LEN: usize = 0;
                pub const PARAM_LEN: usize = 0;
                pub const U0: &'static [f64] = &[];
                pub const THETA0: &'static [f64] = &[];
                pub const OUTPUT_TIMES: &'static [f64] = &[];
                pub const N_STEPS: usize = 0;
                pub const GRID_TIMES: [f64; 0] = [];
                pub const METHOD: &'static str = "";
                pub const SCHEDULE_NAME: &'static str = "";
                pub const SCHEDULE_SUMMARY: &'static str = "";
                #new
                pub fn param_len(&self) -> usize {
                    0
                }
                pub fn theta0(&self) -> ::std::vec::Vec<f64> {
                    ::std::vec::Vec::new()
                }
                pub fn forward(&mut self, u0: &[f64], theta: &[f64])
                    -> ::core::result::Result<&[f64], ::std::string::String> {
                    ::core::result::Result::Err("the model failed to compile".into())
                }
                pub fn gradient(&mut self, u0: &[f64], theta: &[f64], dl_du: &[f64])
                    -> ::core::result::Result<(), ::std::string::String> {
                    ::core::result::Result::Err("the model failed to compile".into())
                }
            }
        }
    }
}

/// `#[neural_ode(attr)] item`, data files relative to the current directory (see
/// [`neural_ode_in`]).
pub fn neural_ode(attr: TokenStream, item: TokenStream, paths: &Paths) -> TokenStream {
    neural_ode_in(attr, item, Path::new("."), paths)
}

/// `const _: &[u8] = include_bytes!("abs");` for each file read at compile time, so cargo
/// rebuilds the expansion when one changes.
fn track_files(files: &[std::path::PathBuf]) -> TokenStream {
    let abs = files.iter().map(|p| {
        let p = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        p.to_string_lossy().into_owned()
    });
    quote!(#(const _: &[u8] = ::core::include_bytes!(#abs);)*)
}

/// The span of the string literal among `tokens` that names `file` (a data file the
/// resolver read from `dir.join(literal)`), for errors about that file.
fn path_literal(tokens: &TokenStream, file: &Path) -> Option<Span> {
    for t in tokens.clone() {
        match t {
            proc_macro2::TokenTree::Group(g) => {
                if let Some(s) = path_literal(&g.stream(), file) {
                    return Some(s);
                }
            }
            proc_macro2::TokenTree::Literal(l) => {
                let lit = syn::parse_str::<syn::LitStr>(&l.to_string());
                if let Ok(lit) = lit
                    && !lit.value().is_empty()
                    && file.ends_with(lit.value())
                {
                    return Some(l.span());
                }
            }
            _ => {}
        }
    }
    None
}

/// `#[neural_ode(attr)] item`: `data("…")` files (constants, initial values, output times,
/// grid points) are read now, relative to `manifest_dir` (the crate's `CARGO_MANIFEST_DIR`),
/// and tracked.
pub fn neural_ode_in(
    attr: TokenStream,
    item: TokenStream,
    manifest_dir: &Path,
    paths: &Paths,
) -> TokenStream {
    let module: syn::ItemMod = match syn::parse2(item.clone()) {
        Ok(m) => m,
        Err(_) => {
            let e = syn::Error::new_spanned(
                &item,
                "#[neural_ode] goes on a module: `mod name { state! { … } param! { … } fn rhs(…) \
                 { … } }`",
            );
            return e.to_compile_error();
        }
    };
    let attrs = &module.attrs;
    let (vis, ident) = (&module.vis, &module.ident);
    let opaque = mentions_opaque(&item);
    let fail = |e: syn::Error| {
        let mut out = e.to_compile_error();
        out.extend(fallback_module(attrs, vis, ident, opaque));
        out
    };
    // Attribute and body, to find the literal of a data file an error concerns.
    let tokens: TokenStream = attr.clone().into_iter().chain(item.clone()).collect();
    let tr = match syntax::translate(attr, item) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    // Data files (constants' too) are relative to the crate's manifest directory.
    let data = plan::CompileData::new(manifest_dir);
    let lowered = pnode_ir::lower::lower_with(&tr.model, &pnode_driver::ConstFiles(&data));
    let errors = lowered
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let span = d.primary_span().unwrap_or(tr.model.name.span);
            tr.spans.error(span, diagnostic_text(d))
        });
    if let Some(e) = combine(errors) {
        return fail(e);
    }
    let Some(program) = lowered.program else {
        return fail(syn::Error::new(
            ident.span(),
            "the model could not be lowered",
        ));
    };
    let plan = plan::plan(&program, &data);
    let tracked = track_files(&data.files());
    let fail = |e: syn::Error| {
        let mut out = fail(e);
        out.extend(tracked.clone());
        out
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            let at = tr.options.get(&e.option).copied();
            let lit = e.file.as_deref().and_then(|f| path_literal(&tokens, f));
            let err = match (lit, at) {
                (Some(span), _) => syn::Error::new(span, &e.message),
                (None, Some(span)) => tr.spans.error(span, &e.message),
                (None, None) => {
                    syn::Error::new(ident.span(), format!("{}: {}", e.option, e.message))
                }
            };
            return fail(err);
        }
    };
    let warned = warnings(
        lowered
            .diagnostics
            .iter()
            .filter(|d| !d.is_error())
            .map(|d| {
                let span = d.primary_span().unwrap_or(tr.model.name.span);
                (tr.spans.tokens(span).0, diagnostic_text(d))
            }),
    );
    match generate::module_items(&program, &plan, paths) {
        Ok(items) => quote! {
            #(#attrs)*
            #vis mod #ident {
                #tracked
                #warned
                #items
            }
        },
        Err(e) => fail(syn::Error::new(
            ident.span(),
            format!("the model cannot be generated: {e}"),
        )),
    }
}

/// `model!("path.pode")`: the file, relative to `manifest_dir`, compiled into `pub mod NAME`
/// (`NAME` from its `model` header). The expansion `include_bytes!`s the file, so cargo
/// rebuilds when it changes.
pub fn model_file(input: TokenStream, manifest_dir: &Path, paths: &Paths) -> TokenStream {
    let lit: syn::LitStr = match syn::parse2(input) {
        Ok(l) => l,
        Err(e) => {
            return syn::Error::new(
                e.span(),
                "expected the path of a .pode file, relative to the crate's Cargo.toml: \
                 `model!(\"models/lv.pode\")`",
            )
            .to_compile_error();
        }
    };
    let rel = lit.value();
    let path = manifest_dir.join(&rel);
    let shown = rel.clone();
    let bytes =
        match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                return syn::Error::new(lit.span(), format!(
                    "cannot read `{rel}` (relative to the directory of the crate's Cargo.toml): {e}"
                ))
                .to_compile_error();
            }
        };
    let abs = path.to_string_lossy().into_owned();
    let track = quote!(
        const _: &[u8] = ::core::include_bytes!(#abs);
    );
    let source = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let (line, col) = pnode_grammar::line_col(
                &String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]),
                e.utf8_error().valid_up_to(),
            );
            let mut out = syn::Error::new(
                lit.span(),
                format!("{shown}:{line}:{col}: the file is not UTF-8"),
            )
            .to_compile_error();
            out.extend(track);
            return out;
        }
    };
    let at_lit = |msg: String| syn::Error::new(lit.span(), msg);
    // Data files (constants' too) are relative to the `.pode` file's directory.
    let data = plan::CompileData::new(path.parent().unwrap_or(manifest_dir));
    let lowered = pnode_ir::lower::compile_source_with(&source, &pnode_driver::ConstFiles(&data));
    let parsed_name = || pnode_grammar::parse(&source).model.name.name;
    let opaque = pnode_grammar::parse(&source)
        .model
        .items
        .iter()
        .any(|i| matches!(i, pnode_grammar::ast::Item::Layer(l) if l.kind.name == "opaque"));
    let fail = |e: syn::Error, name: &str| {
        let mut out = e.to_compile_error();
        match syn::parse_str::<syn::Ident>(name) {
            Ok(id) => {
                let m = fallback_module(&[], &syn::parse_quote!(pub), &id, opaque);
                out.extend(quote!(#m const _: () = { #track };));
            }
            Err(_) => out.extend(track.clone()),
        }
        out
    };
    let errors = lowered
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let (line, col) = d
                .primary_span()
                .map_or((1, 1), |s| pnode_grammar::line_col(&source, s.start));
            let code = d.code.map_or(String::new(), |c| format!(" [{c}]"));
            let rendered = d.render_plain(&source, &shown);
            at_lit(format!(
                "{shown}:{line}:{col}: {}{code}\n{}",
                d.message,
                rendered.trim_end()
            ))
        });
    if let Some(e) = combine(errors) {
        return fail(e, &parsed_name());
    }
    let Some(program) = lowered.program else {
        return fail(
            at_lit(format!("{shown}: the model could not be lowered")),
            &parsed_name(),
        );
    };
    let ident = match syn::parse_str::<syn::Ident>(&program.name) {
        Ok(id) => id,
        Err(_) => {
            let mut out = at_lit(format!(
                "{shown}: the model name `{}` is not usable as a Rust module name",
                program.name
            ))
            .to_compile_error();
            out.extend(track);
            return out;
        }
    };
    let plan = plan::plan(&program, &data);
    let data_files = track_files(&data.files());
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            let mut out = fail(
                at_lit(format!("{shown}: `{}`: {}", e.option, e.message)),
                &program.name,
            );
            out.extend(data_files);
            return out;
        }
    };
    let doc = format!(
        " The model `{}` of `{rel}`, compiled at build time.",
        program.name
    );
    let warned = warnings(
        lowered
            .diagnostics
            .iter()
            .filter(|d| !d.is_error())
            .map(|d| {
                let (line, col) = d
                    .primary_span()
                    .map_or((1, 1), |s| pnode_grammar::line_col(&source, s.start));
                (
                    lit.span(),
                    format!("{shown}:{line}:{col}: {}", diagnostic_text(d)),
                )
            }),
    );
    match generate::module_items(&program, &plan, paths) {
        Ok(items) => quote! {
            #[doc = #doc]
            pub mod #ident {
                #track
                #data_files
                #warned
                #items
            }
        },
        Err(e) => {
            let mut out = fail(
                at_lit(format!("{shown}: the model cannot be generated: {e}")),
                &program.name,
            );
            out.extend(data_files);
            out
        }
    }
}

/// The same as [`neural_ode`], with a panic anywhere inside turned into a compile error at
/// `span` (a last resort: no input is known to panic).
pub fn catch(span: Span, f: impl FnOnce() -> TokenStream) -> TokenStream {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(t) => t,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            syn::Error::new(
                span,
                format!("internal error in pnode's macro (please report it): {what}"),
            )
            .to_compile_error()
        }
    }
}
