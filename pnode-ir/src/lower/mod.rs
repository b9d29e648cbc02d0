//! Lowering: a `.pode` syntax tree → a validated [`Program`] (the RHS as an IR
//! [`Function`](crate::Function), the state and parameter layout, the typed solve, loss and
//! train specifications), with every problem a [`Diagnostic`] at its span.
//!
//! ```
//! let src = "model decay\nstate u[2] = [1.0, 2.0]\nparam k = 0.5\nd(u)/dt = -k * u\n";
//! let lowered = pnode_ir::lower::compile_source(src);
//! let program = lowered.program.expect("no errors");
//! assert_eq!((program.state_len(), program.param_len()), (2, 1));
//! assert_eq!(program.params[0].name, "k");
//! ```
//!
//! Phases (each reports all the errors it finds, and a definition that failed is silently
//! skipped by its users, so one mistake gives one error):
//!
//! 1. names (`scope`): the symbol table; `t` is the time and cannot be defined;
//! 2. constants, in dependency order (cycles are errors), folded to IR constants (the files of
//!    `const … = data(..)` read through the [`ConstData`] of [`lower_with`]);
//! 3. declarations (`decls`): shapes and initial values; layers (`layers`): arguments and
//!    parameter shapes; then the layout: the flat state concatenates the states, the flat
//!    parameters the `param` items and the layers' weights, in declaration order;
//! 4. `let`s in dependency order, each lowered once into the model's builder (uses share the
//!    node); expressions (`exprs`) check every shape;
//! 5. equations (`equations`): every component of every state exactly once;
//! 6. the loss (`loss`), `solve` and `train` (`options`);
//! 7. warnings for unused parameters, layers, `let`s and constants.
//!
//! `lower` assumes a tree the parser accepted (on other trees it never panics, but e.g. the
//! second of two equal names is ignored); [`compile_source`] lowers only when parsing found no
//! error.
//!
//! Limits (so that no input makes lowering allocate without bound): every value and each of
//! the flat state and parameter buffers have at most [`MAX_VALUE_ELEMENTS`] elements, a
//! constant at most [`MAX_CONST_ELEMENTS`], counts (steps, outputs, slots) at most
//! [`MAX_COUNT`]; expressions are at most as deep as the parser allows
//! (`pnode_grammar::MAX_EXPR_DEPTH`), and deep recursion runs on a grown stack.

mod calls;
pub mod codes;
mod control;
mod data;
mod decls;
mod equations;
mod exprs;
mod layers;
mod loss;
mod options;
mod print;
mod program;
mod scope;

pub use control::STEP_CONTROL_KEYWORDS;
pub use data::{ConstData, ConstDataError, ConstTable, NoFiles};
pub use program::*;

use crate::builder::{Builder, FoldBudget};
use crate::function::Layout;
use exprs::{Cx, Mode, error_at};
use pnode_grammar::ast::{Expr, Ident, Item, Model, Span};
use pnode_grammar::{DeclKind, Diagnostic};
use scope::{Scope, Sym, arg_exprs, decl_exprs, dependency_order, deps_of, unused_warnings};

/// The most elements of one value, and of the flat state and parameter buffers.
pub const MAX_VALUE_ELEMENTS: usize = 1 << 22;

/// The most elements of one constant.
pub const MAX_CONST_ELEMENTS: usize = 1 << 20;

/// The most work constant folding may do in one model: multiply-adds of products and
/// convolutions, elements read and written by the other operations. Beyond it an operation on
/// constants stays symbolic in the model (computed when it runs) and is an error (I020) where
/// a value must be known at compile time.
pub const FOLD_WORK_BUDGET: u64 = 1 << 28;

/// The most bytes of constants one model may fold or declare (see [`FOLD_WORK_BUDGET`]).
pub const CONST_BYTES_BUDGET: u64 = 1 << 27;

/// The budget note of an I020 error for a value that could not be evaluated.
pub(crate) fn budget_note() -> String {
    format!(
        "a model's constants may take at most 2^{} multiply-adds or elements of work and {} MiB \
         in all to evaluate at compile time",
        FOLD_WORK_BUDGET.trailing_zeros(),
        CONST_BYTES_BUDGET >> 20
    )
}

/// The largest step count, output count or checkpoint slot count.
pub const MAX_COUNT: u64 = 1 << 32;

/// The marker of an error already reported as a diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported;

/// Shorthand for lowering results.
pub(crate) type Lr<T> = Result<T, Reported>;

/// The result of lowering: the program if there was no error, and every diagnostic (errors
/// and warnings) in source order, the errors capped at [`pnode_grammar::MAX_ERRORS`] and then
/// a note.
#[derive(Debug, Clone, PartialEq)]
pub struct Lowered {
    /// `Some` iff no diagnostic is an error.
    pub program: Option<Program>,
    /// Errors and warnings, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Lowered {
    /// Whether some diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses and lowers `source`: the syntax diagnostics, or, when there are none, the lowering's.
pub fn compile_source(source: &str) -> Lowered {
    compile_source_with(source, &NoFiles)
}

/// [`compile_source`], reading the files of `const … = data(..)` through `data`.
pub fn compile_source_with(source: &str, data: &dyn ConstData) -> Lowered {
    let parsed = pnode_grammar::parse(source);
    if parsed.diagnostics.iter().any(Diagnostic::is_error) {
        return Lowered {
            program: None,
            diagnostics: parsed.diagnostics,
        };
    }
    let mut lowered = lower_with(&parsed.model, data);
    let mut diagnostics = parsed.diagnostics;
    diagnostics.append(&mut lowered.diagnostics);
    lowered.diagnostics = diagnostics;
    lowered
}

/// Lowers and validates a model, reading no files (`const … = data(..)` is an error; see
/// [`lower_with`]).
pub fn lower(model: &Model) -> Lowered {
    lower_with(model, &NoFiles)
}

/// Lowers and validates a model, reading the files of `const … = data(..)` through `data`.
pub fn lower_with(model: &Model, data: &dyn ConstData) -> Lowered {
    let mut diags = Vec::new();
    let program = lower_inner(model, data, &mut diags);
    if program.is_none() && !diags.iter().any(Diagnostic::is_error) {
        // Every failure reports; this keeps `program.is_some() == no errors` regardless.
        diags.push(error_at(
            codes::INTERNAL,
            "the model could not be lowered",
            model.name.span,
            "",
        ));
    }
    diags.sort_by_key(|d| d.primary_span().map_or(0, |s| s.start));
    // The first `MAX_ERRORS` errors, then a note (as the parser does).
    pnode_grammar::limit_errors(&mut diags, false);
    let ok = !diags.iter().any(Diagnostic::is_error);
    Lowered {
        program: program.filter(|_| ok),
        diagnostics: diags,
    }
}

fn lower_inner(
    model: &Model,
    data: &dyn ConstData,
    diags: &mut Vec<Diagnostic>,
) -> Option<Program> {
    let mut scope = Scope::collect(model, diags);
    let mut cb = Builder::new(Layout::new(0, 0));
    cb.set_fold_budget(FoldBudget {
        work: FOLD_WORK_BUDGET,
        bytes: CONST_BYTES_BUDGET,
    });
    constants(&mut scope, &mut cb, data, diags);

    // Declarations and layers.
    let mut state_inits = vec![None; scope.states.len()];
    for (i, init) in state_inits.iter_mut().enumerate() {
        let decl = scope.states[i].decl;
        let mut cx = Cx {
            b: &mut cb,
            scope: &scope,
            diags,
            mode: Mode::Const,
        };
        if let Ok((shape, ini)) = decls::state_or_param(&mut cx, decl) {
            scope.states[i].shape = Some(shape);
            *init = Some(ini);
        }
    }
    let mut param_inits = vec![None; scope.params.len()];
    for (i, init) in param_inits.iter_mut().enumerate() {
        let decl = scope.params[i].decl;
        let mut cx = Cx {
            b: &mut cb,
            scope: &scope,
            diags,
            mode: Mode::Const,
        };
        if let Ok((shape, ini)) = decls::state_or_param(&mut cx, decl) {
            scope.params[i].shape = Some(shape);
            *init = Some(ini);
        }
    }
    for i in 0..scope.layers.len() {
        let layer = scope.layers[i].layer;
        let mut cx = Cx {
            b: &mut cb,
            scope: &scope,
            diags,
            mode: Mode::Const,
        };
        let def = layers::define(&mut cx, layer);
        let init = layers::init_file(&mut cx, layer);
        (scope.layers[i].def, scope.layers[i].init) = match (def, init) {
            (Ok(d), Ok(init)) => (Some(d), init),
            _ => (None, None),
        };
    }
    // Opaque layers are numbered in declaration order (the `layer` of their IR nodes).
    let mut opaque_layers = Vec::new();
    for info in &mut scope.layers {
        if let Some(layers::LayerDef::Opaque {
            input,
            output,
            index,
        }) = &mut info.def
        {
            *index = opaque_layers.len();
            opaque_layers.push(OpaqueLayerDecl {
                name: info.layer.name.name.clone(),
                input: input.clone(),
                output: output.clone(),
            });
        }
    }

    let (states, params) = layout(model, &mut scope, &state_inits, &param_inits, diags);
    let u_len = states.last().map_or(0, |s| s.offset + s.shape.len());
    let p_len = params.last().map_or(0, |p| p.offset + p.shape.len());

    // The model's expressions.
    // One folding budget for the whole model.
    let mut b = Builder::new(Layout::new(u_len, p_len));
    b.set_fold_budget(cb.fold_budget());
    lets(&scope, &mut b, diags);
    let rhs = {
        let mut cx = Cx {
            b: &mut b,
            scope: &scope,
            diags,
            mode: Mode::Model,
        };
        equations::lower_equations(&mut cx, model)
    };
    let rhs = rhs.ok().and_then(|outs| b.finish_rhs(&outs).ok());
    let loss = model.loss().map(|l| {
        let mut cx = Cx {
            b: &mut b,
            scope: &scope,
            diags,
            mode: Mode::Model,
        };
        loss::loss(&mut cx, l)
    });
    cb.set_fold_budget(b.fold_budget());
    let mut cx = Cx {
        b: &mut cb,
        scope: &scope,
        diags,
        mode: Mode::Const,
    };
    let solve = model.solve().map(|blk| options::solve(&mut cx, blk, u_len));
    let train = model.train().map(|blk| options::train(&mut cx, blk));
    if let Some(t) = model.train() {
        let head = Span::new(t.span.start, t.span.start + "train".len());
        if model.loss().is_none() {
            diags.push(
                error_at(
                    codes::MISSING,
                    "training needs a `loss`",
                    head,
                    "no loss to minimize",
                )
                .with_note("add e.g. `loss = mse(u, data(\"obs.csv\"))`"),
            );
        }
        if model.solve().is_none() {
            diags.push(
                error_at(
                    codes::MISSING,
                    "training needs a `solve` block",
                    head,
                    "no solver",
                )
                .with_note("add `solve { method = …, t = …, steps = … }`"),
            );
        }
    }
    unused_warnings(&scope, &roots(model), diags);

    Some(Program {
        name: model.name.name.clone(),
        rhs: rhs?,
        states,
        params,
        opaque_layers,
        solve: transpose(solve)?,
        loss: transpose(loss)?,
        train: transpose(train)?,
    })
}

/// The layout, in declaration order: the states' offsets in `u`, the `param` items' and the
/// layers' offsets in `θ`. A declaration that would exceed the limits is an error and is
/// dropped (its uses are then silent).
fn layout(
    model: &Model,
    scope: &mut Scope,
    state_inits: &[Option<Initializer>],
    param_inits: &[Option<Initializer>],
    diags: &mut Vec<Diagnostic>,
) -> (Vec<StateVar>, Vec<ParamVar>) {
    let (mut states, mut params) = (Vec::new(), Vec::new());
    let (mut u_len, mut p_len) = (0usize, 0usize);
    let too_large = |diags: &mut Vec<Diagnostic>, what: &str, span: Span| {
        diags.push(error_at(
            codes::TOO_LARGE,
            format!("the {what} has more than {MAX_VALUE_ELEMENTS} elements"),
            span,
            "exceeds the limit here",
        ));
    };
    for item in &model.items {
        match item {
            Item::Decl(d) if d.kind != DeclKind::Const => {
                let Some(sym) = scope.lookup(&d.name.name) else {
                    continue;
                };
                match sym {
                    Sym::State(i) if std::ptr::eq(scope.states[i].decl, d) => {
                        let Some(shape) = scope.states[i].shape.clone() else {
                            continue;
                        };
                        if u_len + shape.len() > MAX_VALUE_ELEMENTS {
                            too_large(diags, "state", d.name.span);
                            scope.states[i].shape = None;
                            continue;
                        }
                        scope.states[i].offset = u_len;
                        let init = state_inits[i].clone().unwrap_or(Initializer::Zeros);
                        let name = d.name.name.clone();
                        states.push(StateVar {
                            name,
                            shape: shape.clone(),
                            offset: u_len,
                            init,
                        });
                        u_len += shape.len();
                    }
                    Sym::Param(i) if std::ptr::eq(scope.params[i].decl, d) => {
                        let Some(shape) = scope.params[i].shape.clone() else {
                            continue;
                        };
                        if p_len + shape.len() > MAX_VALUE_ELEMENTS {
                            too_large(diags, "parameter vector", d.name.span);
                            scope.params[i].shape = None;
                            continue;
                        }
                        scope.params[i].offset = p_len;
                        let init = param_inits[i].clone().unwrap_or(Initializer::Zeros);
                        params.push(ParamVar {
                            name: d.name.name.clone(),
                            shape: shape.clone(),
                            offset: p_len,
                            init,
                        });
                        p_len += shape.len();
                    }
                    _ => {}
                }
            }
            Item::Layer(l) => {
                let Some(Sym::Layer(i)) = scope.lookup(&l.name.name) else {
                    continue;
                };
                if !std::ptr::eq(scope.layers[i].layer, l) {
                    continue;
                }
                let Some(def) = scope.layers[i].def.clone() else {
                    continue;
                };
                let n = def.param_len().unwrap_or(usize::MAX);
                if n > MAX_VALUE_ELEMENTS - p_len {
                    too_large(diags, "parameter vector", l.name.span);
                    scope.layers[i].def = None;
                    continue;
                }
                scope.layers[i].offset = p_len;
                let file = scope.layers[i].init.clone();
                let mut start = 0;
                for (suffix, shape, init) in def.params() {
                    let len = shape.len();
                    let init = match &file {
                        Some(source) => Initializer::DataPart {
                            source: source.clone(),
                            start,
                            total: n,
                        },
                        None => init,
                    };
                    start += len;
                    params.push(ParamVar {
                        name: format!("{}.{suffix}", l.name.name),
                        shape,
                        offset: p_len,
                        init,
                    });
                    p_len += len;
                }
            }
            _ => {}
        }
    }

    (states, params)
}

/// `None → Some(None)`, `Some(Ok(x)) → Some(Some(x))`, `Some(Err) → None`.
fn transpose<T>(x: Option<Lr<T>>) -> Option<Option<T>> {
    match x {
        None => Some(None),
        Some(Ok(v)) => Some(Some(v)),
        Some(Err(_)) => None,
    }
}

/// Evaluates the constants in dependency order.
fn constants(
    scope: &mut Scope,
    cb: &mut Builder,
    data: &dyn ConstData,
    diags: &mut Vec<Diagnostic>,
) {
    let pick = |s: Sym| match s {
        Sym::Const(j) => Some(j),
        _ => None,
    };
    let deps: Vec<Vec<usize>> = scope
        .consts
        .iter()
        .map(|c| deps_of(scope, &decl_exprs(c.decl), pick))
        .collect();
    let (order, cyclic) = dependency_order(&deps);
    for cycle in scope::cycles(&deps, &cyclic) {
        let names: Vec<&Ident> = cycle.iter().map(|&i| &scope.consts[i].decl.name).collect();
        diags.push(cycle_error("constant ", &names));
    }
    for i in order {
        let decl = scope.consts[i].decl;
        let v = {
            let mut cx = Cx {
                b: cb,
                scope: &*scope,
                diags,
                mode: Mode::Const,
            };
            decls::const_value(&mut cx, decl, data).ok()
        };
        scope.consts[i].value = v;
    }
}

/// The most members of a cycle its diagnostic lists.
const CYCLE_SHOWN: usize = 8;

/// One error for one cycle of definitions (`names` in cycle order, the first in source order
/// first): the primary label at the first, secondary labels at the next few, and the cycle
/// as a note. The definitions that depend on a cycle are skipped silently.
fn cycle_error(kind: &str, names: &[&Ident]) -> Diagnostic {
    let first = names[0];
    let label = match names.get(1) {
        Some(n) => format!("uses `{}`", n.name),
        None => "cyclic definition".to_string(),
    };
    let mut d = error_at(
        codes::CYCLE,
        format!("{kind}`{}` is defined in terms of itself", first.name),
        first.span,
        label,
    );
    if names.len() == 1 {
        return d;
    }
    let shown = names.len().min(CYCLE_SHOWN);
    for (k, n) in names[1..shown].iter().enumerate() {
        d = d.with_secondary(
            n.span,
            format!("which uses `{}`", names[(k + 2) % names.len()].name),
        );
    }
    let mut path: Vec<String> = names[..shown]
        .iter()
        .map(|n| format!("`{}`", n.name))
        .collect();
    if names.len() > shown {
        path.push(format!("… {} more", names.len() - shown));
    }
    path.push(format!("`{}`", first.name));
    d.with_note(format!(
        "the cycle ({} definitions): {}",
        names.len(),
        path.join(" → ")
    ))
}

/// Lowers the `let`s in dependency order.
fn lets(scope: &Scope, b: &mut Builder, diags: &mut Vec<Diagnostic>) {
    let pick = |s: Sym| match s {
        Sym::Let(j) => Some(j),
        _ => None,
    };
    let deps: Vec<Vec<usize>> = scope
        .lets
        .iter()
        .map(|l| deps_of(scope, &[&l.def.value], pick))
        .collect();
    let (order, cyclic) = dependency_order(&deps);
    for cycle in scope::cycles(&deps, &cyclic) {
        let names: Vec<&Ident> = cycle.iter().map(|&i| &scope.lets[i].def.name).collect();
        diags.push(cycle_error("", &names));
    }
    for i in order {
        let def = scope.lets[i].def;
        let mut cx = Cx {
            b,
            scope,
            diags,
            mode: Mode::Model,
        };
        let node = cx.expr(&def.value).ok();
        scope.lets[i].node.set(node);
    }
}

/// The expressions whose names count as uses (everything but `let` and `const` values).
fn roots(model: &Model) -> Vec<&Expr> {
    let mut out = Vec::new();
    for item in &model.items {
        match item {
            Item::Decl(d) if d.kind != DeclKind::Const => out.extend(decl_exprs(d)),
            Item::Decl(_) | Item::Let(_) => {}
            Item::Layer(l) => out.extend(arg_exprs(&l.args)),
            Item::Equation(e) => {
                out.push(&e.rhs);
                if let Some(ix) = &e.index {
                    scope::push_index(ix, &mut out);
                }
            }
            Item::Block(b) => out.extend(b.options.iter().map(|o| &o.value)),
            Item::Loss(l) => out.push(&l.value),
        }
    }
    out
}
