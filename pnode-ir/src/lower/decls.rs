//! Declarations: shapes (`[d0, d1, …]`, positive integers or integer constants) and initial
//! values (literals checked against the shape, `zeros`, `ones`, `normal(σ)`, `xavier`,
//! `data("path", column = k)`).

use super::codes;
use super::data::{ConstData, const_from_file};
use super::exprs::{Cx, check_size, error_at, number_text};
use super::options::data_source;
use super::program::Initializer;
use super::{Lr, MAX_CONST_ELEMENTS, MAX_VALUE_ELEMENTS, Reported};
use crate::graph::Tensor;
use crate::shape::{MAX_RANK, Shape};
use pnode_grammar::ast::{Decl, DeclKind, Expr, ExprKind, Span};

/// The declared shape, if the declaration has one.
fn declared_shape(cx: &mut Cx, d: &Decl) -> Lr<Option<Shape>> {
    let Some(shape) = &d.shape else {
        return Ok(None);
    };
    if shape.dims.len() > MAX_RANK {
        return Err(cx.report(error_at(
            codes::DIMENSION,
            format!(
                "`{}` has {} dimensions; the most is {MAX_RANK}",
                d.name.name,
                shape.dims.len()
            ),
            shape.span,
            "rank too high",
        )));
    }
    let mut dims = Vec::with_capacity(shape.dims.len());
    let mut failed = false;
    for e in &shape.dims {
        match dimension(cx, e) {
            Ok(n) => dims.push(n),
            Err(_) => failed = true,
        }
    }
    if failed {
        return Err(Reported);
    }
    let s = Shape(dims);
    check_size(&s, shape.span).map_err(|e| cx.report(e))?;
    Ok(Some(s))
}

/// One dimension: a positive integer, at most [`MAX_VALUE_ELEMENTS`] (no value is larger).
fn dimension(cx: &mut Cx, e: &Expr) -> Lr<usize> {
    let bad = |cx: &mut Cx, found: String| {
        cx.report(
            error_at(
                codes::DIMENSION,
                format!("a dimension must be a positive integer, found {found}"),
                e.span,
                "not a positive integer",
            )
            .with_note("dimensions are integer literals or integer constants"),
        )
    };
    let too_large = |cx: &mut Cx, found: String| {
        cx.report(
            error_at(
                codes::TOO_LARGE,
                format!("a dimension of {found} is too large; the largest is {MAX_VALUE_ELEMENTS}"),
                e.span,
                format!("more than {MAX_VALUE_ELEMENTS}"),
            )
            .with_note(format!("a value has at most {MAX_VALUE_ELEMENTS} elements")),
        )
    };
    if let ExprKind::Float(v) = e.kind {
        return Err(bad(cx, v.to_string()));
    }
    let id = cx.expr(e)?;
    let value = cx.b.graph().constant(id).cloned();
    match value {
        Some(t) if t.shape().is_scalar() => {
            let v = t.data()[0];
            if v.fract() != 0.0 || v < 1.0 {
                Err(bad(cx, number_text(e, v)))
            } else if v > MAX_VALUE_ELEMENTS as f64 {
                Err(too_large(cx, number_text(e, v)))
            } else {
                Ok(v as usize)
            }
        }
        Some(t) => Err(bad(cx, format!("a value of shape {}", t.shape()))),
        None => Err(bad(cx, "a non-constant".into())),
    }
}

/// The shape and initializer of a `state` or `param`.
pub(super) fn state_or_param(cx: &mut Cx, d: &Decl) -> Lr<(Shape, Initializer)> {
    let declared = declared_shape(cx, d);
    let init = initializer(cx, d, declared.as_ref().ok().cloned().flatten());
    let declared = declared?;
    let (shape, init) = init?;
    Ok((declared.unwrap_or(shape), init))
}

/// Checks a constant `name` of `shape` against [`MAX_CONST_ELEMENTS`] and, when `held` (its
/// values are held without being folded by the builder: fills, files), takes its bytes from
/// the model's constant byte budget; errors (I020) at `span`.
pub(super) fn const_size(cx: &mut Cx, name: &str, shape: &Shape, span: Span, held: bool) -> Lr<()> {
    if shape.checked_len().is_none_or(|n| n > MAX_CONST_ELEMENTS) {
        return Err(cx.report(error_at(
            codes::TOO_LARGE,
            format!("constant `{name}` of shape {shape} is too large"),
            span,
            format!("more than {MAX_CONST_ELEMENTS} elements"),
        )));
    }
    if held {
        let mut budget = cx.b.fold_budget();
        let bytes = shape.len() as u64 * 8;
        if bytes > budget.bytes {
            return Err(cx.report(
                error_at(
                    codes::TOO_LARGE,
                    format!("constant `{name}` of shape {shape} is too large"),
                    span,
                    "over the constant budget",
                )
                .with_note(super::budget_note()),
            ));
        }
        budget.bytes -= bytes;
        cx.b.set_fold_budget(budget);
    }
    Ok(())
}

/// The value of a `const`; `data(..)` is read through `data`.
pub(super) fn const_value(cx: &mut Cx, d: &Decl, data: &dyn ConstData) -> Lr<Tensor> {
    let declared = declared_shape(cx, d);
    let declared_ok = declared.as_ref().ok().cloned().flatten();
    let init = initializer(cx, d, declared_ok);
    let declared = declared?;
    let (shape, init) = init?;
    if let Initializer::Data(src) = &init {
        return const_from_file(cx, data, d, src, declared);
    }
    let shape = declared.unwrap_or(shape);
    // A filled constant is held like a folded one: it spends the same byte budget.
    let filled = matches!(
        init,
        Initializer::Fill(_) | Initializer::Zeros | Initializer::Ones
    );
    const_size(cx, &d.name.name, &shape, d.name.span, filled)?;
    let t = match init {
        Initializer::Values(v) => Tensor::new(shape, v),
        Initializer::Fill(x) => Tensor::filled(shape, x),
        Initializer::Zeros => Tensor::filled(shape, 0.0),
        Initializer::Ones => Tensor::filled(shape, 1.0),
        _ => {
            return Err(cx.report(
                error_at(
                    codes::INITIALIZER,
                    format!("constant `{}` needs a value", d.name.name),
                    d.init.span,
                    "not a constant value",
                )
                .with_note("random initializers are for `param` and `state`"),
            ));
        }
    };
    t.map_err(|e| cx.shape_error(e, d.init.span))
}

/// The initializer of a declaration and the shape it implies when none is declared.
fn initializer(cx: &mut Cx, d: &Decl, declared: Option<Shape>) -> Lr<(Shape, Initializer)> {
    let e = &d.init;
    let scope = cx.scope;
    let shadowed = |n: &str| scope.lookup(n).is_some();
    let shape = declared.clone().unwrap_or_default();
    match &e.kind {
        ExprKind::Name(n) if n == "zeros" && !shadowed(n) => {
            return Ok((shape, Initializer::Zeros));
        }
        ExprKind::Name(n) if n == "ones" && !shadowed(n) => return Ok((shape, Initializer::Ones)),
        ExprKind::Name(n) if n == "xavier" && !shadowed(n) => {
            if shape.rank() < 2 {
                return Err(cx.report(
                    error_at(
                        codes::INITIALIZER,
                        format!(
                            "`xavier` needs a matrix or larger, `{}` has shape {shape}",
                            d.name.name
                        ),
                        e.span,
                        "needs rank ≥ 2",
                    )
                    .with_note("use `normal(σ)` or `zeros` for vectors and scalars"),
                ));
            }
            return Ok((shape, Initializer::Xavier));
        }
        ExprKind::Call { func, args } if func.name == "normal" && !shadowed("normal") => {
            let [std] = cx.positional::<1>(func, args, &[])?;
            let id = cx.expr(std)?;
            let v =
                cx.b.graph()
                    .constant(id)
                    .filter(|t| t.shape().is_scalar())
                    .map(|t| t.data()[0]);
            return match v {
                Some(s) if s > 0.0 && s.is_finite() => Ok((shape, Initializer::Normal { std: s })),
                _ => Err(cx.report(error_at(
                    codes::INITIALIZER,
                    "`normal(σ)` needs a positive standard deviation",
                    std.span,
                    "positive number expected",
                ))),
            };
        }
        ExprKind::Call { func, .. } if func.name == "data" && !shadowed("data") => {
            if declared.is_none() && d.kind != DeclKind::Const {
                return Err(cx.report(
                    error_at(
                        codes::INITIALIZER,
                        format!(
                            "`{}` is read from a file, so its shape must be declared",
                            d.name.name
                        ),
                        e.span,
                        "shape unknown",
                    )
                    .with_note(format!(
                        "write `{} {}[…] = data(…)`",
                        d.kind.keyword(),
                        d.name.name
                    )),
                ));
            }
            let src = data_source(cx, e)?;
            return Ok((shape, Initializer::Data(src)));
        }
        _ => {}
    }
    let id = cx.expr(e)?;
    let Some(t) = cx.b.graph().constant(id).cloned() else {
        return Err(cx.report(error_at(
            codes::NOT_CONSTANT,
            "an initial value must be constant",
            e.span,
            "not a constant",
        )));
    };
    match declared {
        None => Ok((t.shape().clone(), Initializer::Values(t.data().to_vec()))),
        Some(s) if s == *t.shape() => Ok((s, Initializer::Values(t.data().to_vec()))),
        Some(s) if t.shape().is_scalar() => Ok((s, Initializer::Fill(t.data()[0]))),
        Some(s) => {
            let mut diag = error_at(
                codes::INITIALIZER,
                format!(
                    "initial value of shape {} for `{}` of shape {s}",
                    t.shape(),
                    d.name.name
                ),
                e.span,
                format!("shape {}", t.shape()),
            );
            if let Some(sh) = &d.shape {
                diag = diag.with_secondary(sh.span, format!("declared {s}"));
            }
            Err(cx.report(diag))
        }
    }
}
