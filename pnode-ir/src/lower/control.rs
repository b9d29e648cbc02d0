//! Error control on the method: `method = dopri5(rtol = 1e-6, atol = 1e-9, h0 = 1e-3,
//! h_min = 1e-12, h_max = 0.5, max_steps = 10000)` makes the steps adaptive (and then the
//! `solve` block has no `steps`). Only methods with an embedded error estimate
//! ([`ADAPTIVE_METHOD_NAMES`]) take these arguments; a tolerance is a positive number or a
//! list with one non-negative number per component of the flat state `u`.

use super::codes;
use super::exprs::{Cx, check_kwargs, error_at};
use super::options::{integer, number_in, numbers};
use super::program::*;
use super::{Lr, Reported};
use pnode_grammar::ast::{Arg, Expr, ExprKind, Ident};

/// The keyword arguments of an adaptive method.
pub const STEP_CONTROL_KEYWORDS: &[&str] = &["rtol", "atol", "h0", "h_min", "h_max", "max_steps"];

/// `NAME(rtol = …, …)` for a method `m` without other arguments; `state_len` is the length of
/// the flat state (0 when the layout failed: then per-component lengths are not checked).
pub(super) fn step_control(
    cx: &mut Cx,
    m: &Method,
    func: &Ident,
    args: &[Arg],
    state_len: usize,
) -> Lr<StepControl> {
    if !m.has_error_estimate() {
        return Err(cx.report(
            error_at(
                codes::OPTION_VALUE,
                format!(
                    "`{}` has no error estimate, so it cannot choose its own steps",
                    func.name
                ),
                func.span,
                "fixed-step method",
            )
            .with_note(format!(
                "write `method = {}` with `steps = …`, or use a method with an embedded pair: {}",
                func.name,
                ADAPTIVE_METHOD_NAMES.join(", ")
            )),
        ));
    }
    check_kwargs(cx.diags, func, args, STEP_CONTROL_KEYWORDS)?;
    if let Some(a) = args.iter().find(|a| a.name.is_none()) {
        return Err(cx.report(
            error_at(
                codes::ARGUMENTS,
                format!("`{}` takes only keyword arguments", func.name),
                a.value.span,
                "positional argument",
            )
            .with_note(format!(
                "the keywords are {}",
                STEP_CONTROL_KEYWORDS.join(", ")
            )),
        ));
    }
    let mut c = StepControl::default();
    let mut failed = false;
    for a in args {
        let (Some(k), v) = (&a.name, &a.value) else {
            continue;
        };
        let key = k.name.as_str();
        let positive = |x: f64| x > 0.0;
        let r: Lr<()> = match key {
            "rtol" => tolerance(cx, key, v, state_len).map(|t| c.rtol = Some(t)),
            "atol" => tolerance(cx, key, v, state_len).map(|t| c.atol = Some(t)),
            "h0" => number_in(cx, key, v, positive, "a step size > 0").map(|x| c.h0 = Some(x)),
            "h_min" => {
                number_in(cx, key, v, |x| x >= 0.0, "a step size ≥ 0").map(|x| c.h_min = Some(x))
            }
            "h_max" => {
                number_in(cx, key, v, positive, "a step size > 0").map(|x| c.h_max = Some(x))
            }
            _ => integer(cx, key, v, 1).map(|x| c.max_steps = Some(x)),
        };
        failed |= r.is_err();
    }
    if failed {
        return Err(Reported);
    }
    if let (Some(lo), Some(hi)) = (c.h_min, c.h_max)
        && lo > hi
    {
        let span = args
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|n| n.name == "h_max"))
            .map_or(func.span, |a| a.value.span);
        return Err(cx.report(error_at(
            codes::OPTION_VALUE,
            format!("`h_max` = {hi} is below `h_min` = {lo}"),
            span,
            "below h_min",
        )));
    }
    if let (Some(Tolerance::Scalar(r)), Some(Tolerance::Scalar(a))) = (&c.rtol, &c.atol)
        && *r == 0.0
        && *a == 0.0
    {
        return Err(cx.report(error_at(
            codes::OPTION_VALUE,
            "`rtol` and `atol` are both 0: no error would ever be accepted",
            func.span,
            "zero tolerances",
        )));
    }
    Ok(c)
}

/// A tolerance: a number ≥ 0 (a relative tolerance below 1), or a list of them, one per
/// component of `u`.
fn tolerance(cx: &mut Cx, key: &str, e: &Expr, state_len: usize) -> Lr<Tolerance> {
    let ok = |x: f64| x >= 0.0 && (key != "rtol" || x < 1.0);
    let what = if key == "rtol" {
        "a number in [0, 1)"
    } else {
        "a number ≥ 0"
    };
    if !matches!(e.kind, ExprKind::Array(_)) {
        return number_in(cx, key, e, ok, what).map(Tolerance::Scalar);
    }
    let v = numbers(cx, key, e)?;
    if let Some(i) = v.iter().position(|&x| !ok(x)) {
        let span = match &e.kind {
            ExprKind::Array(items) => items[i].span,
            _ => e.span,
        };
        return Err(cx.report(error_at(
            codes::OPTION_VALUE,
            format!("`{key}` component {i} must be {what}, found {}", v[i]),
            span,
            format!("expected {what}"),
        )));
    }
    if state_len > 0 && v.len() != state_len {
        return Err(cx.report(
            error_at(
                codes::OPTION_VALUE,
                format!(
                    "`{key}` has {} components, the state has {state_len}",
                    v.len()
                ),
                e.span,
                format!("expected {state_len} numbers or one"),
            )
            .with_note(
                "a list gives one tolerance per component of the flat state, in declaration order",
            ),
        ));
    }
    Ok(Tolerance::PerComponent(v))
}
