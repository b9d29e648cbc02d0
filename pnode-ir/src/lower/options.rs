//! The `solve { }` and `train { }` blocks: typed option values, and which options fit which
//! method. Option values are constant expressions (constants may be used: `steps = n`).

use super::codes;
use super::exprs::{Cx, check_kwargs, error_at, number_text};
use super::program::*;
use super::{Lr, MAX_COUNT, Reported};
use pnode_grammar::ast::{Arg, Block, Expr, ExprKind, Ident, OptionEntry, Span};
use pnode_grammar::{Diagnostic, did_you_mean};

/// How an option value is written, for messages.
fn kind_of(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(_) => "an integer".into(),
        ExprKind::Float(_) => "a real number".into(),
        ExprKind::Bytes { .. } => "a byte size".into(),
        ExprKind::Str(_) => "a string".into(),
        ExprKind::Bool(_) => "a boolean".into(),
        ExprKind::Name(n) => format!("the name `{n}`"),
        ExprKind::Array(_) => "a list".into(),
        ExprKind::Call { func, .. } => format!("`{}(…)`", func.name),
        ExprKind::Range { .. } => "a range".into(),
        _ => "an expression".into(),
    }
}

/// An option value of the wrong kind.
fn wrong(cx: &mut Cx, key: &str, e: &Expr, expected: &str) -> Reported {
    cx.report(error_at(
        codes::OPTION_VALUE,
        format!("`{key}` expects {expected}, found {}", kind_of(e)),
        e.span,
        format!("expected {expected}"),
    ))
}

/// A constant number.
pub(super) fn number(cx: &mut Cx, key: &str, e: &Expr) -> Lr<f64> {
    let numeric = matches!(
        &e.kind,
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Neg(_) | ExprKind::Binary { .. }
    ) || matches!(&e.kind, ExprKind::Name(n) if cx.scope.lookup(n).is_some());
    if !numeric {
        return Err(wrong(cx, key, e, "a number"));
    }
    let id = cx.expr(e)?;
    match cx.b.graph().constant(id) {
        Some(t) if t.shape().is_scalar() && t.data()[0].is_finite() => Ok(t.data()[0]),
        _ => Err(wrong(cx, key, e, "a finite scalar")),
    }
}

/// A number in `range` (described as `what`).
pub(super) fn number_in(
    cx: &mut Cx,
    key: &str,
    e: &Expr,
    ok: impl Fn(f64) -> bool,
    what: &str,
) -> Lr<f64> {
    let v = number(cx, key, e)?;
    if ok(v) {
        Ok(v)
    } else {
        Err(cx.report(error_at(
            codes::OPTION_VALUE,
            format!("`{key}` must be {what}, found {}", number_text(e, v)),
            e.span,
            format!("expected {what}"),
        )))
    }
}

/// An integer `≥ min` (and `≤ MAX_COUNT`).
pub(super) fn integer(cx: &mut Cx, key: &str, e: &Expr, min: u64) -> Lr<u64> {
    let v = number(cx, key, e)?;
    if v.fract() != 0.0 || v < min as f64 || v > MAX_COUNT as f64 {
        let what = if min == 0 {
            "a non-negative integer"
        } else {
            "a positive integer"
        };
        return Err(cx.report(error_at(
            codes::OPTION_VALUE,
            format!(
                "`{key}` must be {what} (at most {MAX_COUNT}), found {}",
                number_text(e, v)
            ),
            e.span,
            format!("expected {what}"),
        )));
    }
    Ok(v as u64)
}

fn boolean(cx: &mut Cx, key: &str, e: &Expr) -> Lr<bool> {
    match e.kind {
        ExprKind::Bool(b) => Ok(b),
        _ => Err(wrong(cx, key, e, "`true` or `false`")),
    }
}

/// `f(…)`'s callee and arguments, if `e` is a call.
fn as_call(e: &Expr) -> Option<(&Ident, &[Arg])> {
    match &e.kind {
        ExprKind::Call { func, args } => Some((func, args)),
        _ => None,
    }
}

fn kwarg<'a>(args: &'a [Arg], key: &str) -> Option<&'a Expr> {
    args.iter()
        .find(|a| a.name.as_ref().is_some_and(|n| n.name == key))
        .map(|a| &a.value)
}

/// `data("path", column = k)`.
pub(super) fn data_source(cx: &mut Cx, e: &Expr) -> Lr<DataSource> {
    let Some((func, args)) = as_call(e) else {
        return Err(wrong(cx, "data", e, "`data(\"path\")`"));
    };
    let [path] = cx.positional::<1>(func, args, &["column"])?;
    let ExprKind::Str(p) = &path.kind else {
        return Err(wrong(cx, "data", path, "a file name string"));
    };
    let column = match kwarg(args, "column") {
        Some(c) => Some(integer(cx, "column", c, 0)?),
        None => None,
    };
    Ok(DataSource {
        path: p.clone(),
        column,
    })
}

fn head(block: &Block) -> Span {
    Span::new(
        block.span.start,
        block.span.start + block.kind.keyword().len(),
    )
}

fn missing(cx: &mut Cx, block: &Block, key: &str, example: &str) -> Reported {
    cx.report(
        error_at(
            codes::MISSING,
            format!("the `{}` block needs `{key}`", block.kind.keyword()),
            head(block),
            format!("no `{key}`"),
        )
        .with_note(format!("for example `{key} = {example}`")),
    )
}

/// The `solve { }` block.
pub(super) fn solve(cx: &mut Cx, block: &Block, state_len: usize) -> Lr<SolveSpec> {
    let get = |k: &str| block.get(k);
    let method = match get("method") {
        Some(o) => method(cx, &o.value, state_len),
        None => Err(missing(cx, block, "method", "rk4")),
    };
    let (method, control) = match method {
        Ok((m, c)) => (Ok(m), c),
        Err(e) => (Err(e), None),
    };
    let span = match get("t") {
        Some(o) => time_span(cx, &o.value),
        None => Err(missing(cx, block, "t", "0 .. 1")),
    };
    let (t0, t1) = span.unwrap_or((f64::NAN, f64::NAN));
    let steps = match (get("steps"), control) {
        (Some(o), Some(_)) => Err(cx.report(
            error_at(
                codes::OPTION_METHOD,
                "`steps` and tolerances on the method conflict: an adaptive method chooses its own steps",
                o.key.span,
                "fixed steps",
            )
            .with_secondary(get("method").map_or(o.key.span, |m| m.value.span), "adaptive method")
            .with_note("remove `steps`, or the method's tolerances"),
        )),
        (None, Some(c)) => Ok(Steps::Adaptive(c)),
        (Some(o), None) if span.is_ok() => steps(cx, &o.value, t0, t1),
        (Some(_), None) => Err(Reported),
        (None, None) if method.is_err() => Err(Reported),
        (None, None) => Err(cx.report(
            error_at(
                codes::MISSING,
                "the `solve` block needs `steps`",
                head(block),
                "no `steps`",
            )
            .with_note("for example `steps = 100`, or tolerances on a method with an error estimate for adaptive steps: `method = dopri5(rtol = 1e-6, atol = 1e-9)`"),
        )),
    };
    let outputs = match get("outputs") {
        Some(o) if span.is_ok() => outputs(cx, &o.value, t0, t1).map(Some),
        Some(_) => Err(Reported),
        None => Ok(None),
    };
    let checkpoint = match get("checkpoint") {
        Some(o) => checkpoint(cx, &o.value).map(Some),
        None => Ok(None),
    };
    let newton = newton(cx, block, method.as_ref().ok(), get("method"));
    Ok(SolveSpec {
        method: method?,
        t0,
        t1,
        steps: steps?,
        outputs: outputs?,
        checkpoint: checkpoint?,
        newton: newton?,
    })
}

/// The method, and its error control when it was given tolerances (see [`super::control`]).
fn method(cx: &mut Cx, e: &Expr, state_len: usize) -> Lr<(Method, Option<StepControl>)> {
    let unknown = |cx: &mut Cx, n: &str, span: Span| {
        let mut d = error_at(
            codes::OPTION_VALUE,
            format!("unknown method `{n}`"),
            span,
            "not a method",
        );
        if let Some(s) = did_you_mean(n, METHOD_NAMES) {
            d = d.with_note(format!("did you mean `{s}`?"));
        }
        cx.report(d.with_note(format!("the methods are {}", METHOD_NAMES.join(", "))))
    };
    match &e.kind {
        ExprKind::Name(n) => match Method::by_name(n) {
            Some(m) => Ok((m, None)),
            None if n == "theta" || n == "erk" => Err(cx.report(error_at(
                codes::OPTION_VALUE,
                format!("`{n}` needs arguments"),
                e.span,
                if n == "theta" {
                    "write `theta(0.5)`"
                } else {
                    "write `erk(a = …, b = …, c = …)`"
                },
            ))),
            None => Err(unknown(cx, n, e.span)),
        },
        ExprKind::Call { func, args } if func.name == "theta" => {
            let [x] = cx.positional::<1>(func, args, &[])?;
            let th = number_in(cx, "theta", x, |v| v > 0.0 && v <= 1.0, "in (0, 1]")?;
            Ok((Method::Theta(th), None))
        }
        ExprKind::Call { func, args } if func.name == "erk" => Ok((tableau(cx, func, args)?, None)),
        ExprKind::Call { func, args } => match Method::by_name(&func.name) {
            Some(m) => {
                let c = super::control::step_control(cx, &m, func, args, state_len)?;
                Ok((m, Some(c)))
            }
            None => Err(unknown(cx, &func.name, func.span)),
        },
        _ => Err(wrong(cx, "method", e, "a method name")),
    }
}

/// A list of numbers (`[0.5, 1.0]`), each constant.
pub(super) fn numbers(cx: &mut Cx, key: &str, e: &Expr) -> Lr<Vec<f64>> {
    let ExprKind::Array(items) = &e.kind else {
        return Err(wrong(cx, key, e, "a list of numbers"));
    };
    if items.is_empty() {
        return Err(wrong(cx, key, e, "a non-empty list"));
    }
    if items.len() as u64 > MAX_COUNT {
        return Err(wrong(cx, key, e, "a shorter list"));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut failed = false;
    for item in items {
        match number(cx, key, item) {
            Ok(v) => out.push(v),
            Err(_) => failed = true,
        }
    }
    if failed { Err(Reported) } else { Ok(out) }
}

fn tableau(cx: &mut Cx, func: &Ident, args: &[Arg]) -> Lr<Method> {
    check_kwargs(cx.diags, func, args, &["a", "b", "c"])?;
    let [] = cx.positional::<0>(func, args, &["a", "b", "c"])?;
    let get = |cx: &mut Cx, k: &str| {
        kwarg(args, k).ok_or_else(|| {
            cx.report(error_at(
                codes::TABLEAU,
                format!("`erk` needs `{k} = …`"),
                func.span,
                format!("`{k}` missing"),
            ))
        })
    };
    let (ae, be, ce) = (get(cx, "a"), get(cx, "b"), get(cx, "c"));
    let (ae, be, ce) = (ae?, be?, ce?);
    let ExprKind::Array(rows) = &ae.kind else {
        return Err(wrong(cx, "a", ae, "a list of rows"));
    };
    let mut a = Vec::with_capacity(rows.len());
    for r in rows {
        a.push((numbers(cx, "a", r)?, r.span));
    }
    let b = numbers(cx, "b", be)?;
    let c = numbers(cx, "c", ce)?;
    let s = a.len();
    let bad = |cx: &mut Cx, span: Span, msg: String, label: &str| {
        cx.report(error_at(codes::TABLEAU, msg, span, label))
    };
    if s == 0 {
        return Err(bad(
            cx,
            ae.span,
            "the tableau has no stages".into(),
            "empty",
        ));
    }
    for (i, (row, span)) in a.iter().enumerate() {
        if row.len() != s {
            let msg = format!("row {i} of `a` has {} entries, expected {s}", row.len());
            return Err(bad(cx, *span, msg, "wrong length"));
        }
        if let Some(j) = (i..s).find(|&j| row[j] != 0.0) {
            let msg = format!(
                "a[{i}][{j}] = {} is on or above the diagonal: `erk` is explicit",
                row[j]
            );
            return Err(bad(cx, *span, msg, "not strictly lower triangular"));
        }
    }
    for (v, e, k) in [(&b, be, "b"), (&c, ce, "c")] {
        if v.len() != s {
            let msg = format!(
                "`{k}` has {} entries, expected {s} (one per stage)",
                v.len()
            );
            return Err(bad(cx, e.span, msg, "wrong length"));
        }
    }
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * y.abs().max(1.0);
    let sum: f64 = b.iter().sum();
    if !close(sum, 1.0) {
        let msg = format!("the weights `b` sum to {sum}; consistency needs 1");
        return Err(bad(cx, be.span, msg, "Σ b ≠ 1"));
    }
    for (i, (row, _)) in a.iter().enumerate() {
        let rs: f64 = row.iter().sum();
        if !close(rs, c[i]) {
            let msg = format!("c[{i}] = {} but the row sum of `a` is {rs}", c[i]);
            return Err(bad(cx, ce.span, msg, "c ≠ row sums of a"));
        }
    }
    Ok(Method::Erk(UserTableau {
        a: a.into_iter().map(|(r, _)| r).collect(),
        b,
        c,
    }))
}

fn time_span(cx: &mut Cx, e: &Expr) -> Lr<(f64, f64)> {
    let ExprKind::Range { start, end } = &e.kind else {
        return Err(wrong(cx, "t", e, "a range `t0 .. t1`"));
    };
    let (a, b) = (number(cx, "t", start), number(cx, "t", end));
    let (a, b) = (a?, b?);
    if a >= b {
        return Err(cx.report(error_at(
            codes::TIMES,
            format!("the time span {a} .. {b} is empty"),
            e.span,
            "needs t0 < t1",
        )));
    }
    if !(b - a).is_finite() {
        return Err(cx.report(
            error_at(
                codes::TIMES,
                format!(
                    "the time span {} .. {} is too long: t1 - t0 overflows a 64-bit float",
                    time_text(a),
                    time_text(b)
                ),
                e.span,
                "t1 - t0 is infinite",
            )
            .with_note("shift or rescale the time so that t1 - t0 is at most 1.7e308"),
        ));
    }
    Ok((a, b))
}

/// A time as messages show it: `1e308` rather than its 309 digits.
fn time_text(t: f64) -> String {
    if t != 0.0 && !(1e-6..1e16).contains(&t.abs()) {
        format!("{t:e}")
    } else {
        t.to_string()
    }
}

/// `n` uniform steps over `t0 .. t1` whose grid points are told apart in `f64`: the step is
/// more than 4 ulps of the largest time, which is more than the rounding of `t0 + k·h` can
/// take back (so no point is NaN or equal to the next).
fn uniform_steps(cx: &mut Cx, e: &Expr, n: u64, t0: f64, t1: f64) -> Lr<Steps> {
    let h = (t1 - t0) / n as f64;
    let largest = t0.abs().max(t1.abs());
    if !(h.is_finite() && h > largest * f64::EPSILON * 4.0) {
        return Err(cx.report(
            error_at(
                codes::TIMES,
                format!(
                    "{} steps over {} .. {} are too small to tell the times apart: a step \
                     of {h:e} is below the precision of 64-bit floats there",
                    number_text(e, n as f64),
                    time_text(t0),
                    time_text(t1)
                ),
                e.span,
                "too many steps for this time span",
            )
            .with_note("use fewer steps, or shift the time span nearer to 0"),
        ));
    }
    Ok(Steps::Uniform(n))
}

/// Strictly increasing times.
fn increasing(cx: &mut Cx, key: &str, e: &Expr, v: &[f64]) -> Lr<()> {
    if let Some(i) = (1..v.len()).find(|&i| v[i] <= v[i - 1]) {
        let span = match &e.kind {
            ExprKind::Array(items) => items[i].span,
            _ => e.span,
        };
        return Err(cx.report(error_at(
            codes::TIMES,
            format!(
                "`{key}` must increase strictly: {} after {}",
                v[i],
                v[i - 1]
            ),
            span,
            "not after the previous time",
        )));
    }
    Ok(())
}

fn steps(cx: &mut Cx, e: &Expr, t0: f64, t1: f64) -> Lr<Steps> {
    match &e.kind {
        ExprKind::Array(items) => {
            let v = numbers(cx, "steps", e)?;
            increasing(cx, "steps", e, &v)?;
            let (first, last) = (v[0], v[v.len() - 1]);
            if v.len() < 2 || first != t0 || last != t1 {
                let span = if first != t0 {
                    items[0].span
                } else {
                    items[items.len() - 1].span
                };
                return Err(cx.report(error_at(
                    codes::TIMES,
                    format!("the step times must run from t0 = {t0} to t1 = {t1}"),
                    span,
                    "not an end of the time span",
                )));
            }
            Ok(Steps::Times(v))
        }
        ExprKind::Call { func, args } if func.name == "logspace" => {
            let [a, b, n] = cx.positional::<3>(func, args, &[])?;
            let (a_v, b_v, n_v) = (
                number(cx, "logspace", a),
                number(cx, "logspace", b),
                integer(cx, "logspace", n, 1),
            );
            let (a_v, b_v, n_v) = (a_v?, b_v?, n_v?);
            if !(a_v > 0.0 && a_v > t0 && a_v < b_v) {
                return Err(cx.report(error_at(
                    codes::TIMES,
                    format!("`logspace` needs 0 < start and t0 < start < end, found start {a_v}"),
                    a.span,
                    "bad start",
                )));
            }
            if b_v != t1 {
                return Err(cx.report(error_at(
                    codes::TIMES,
                    format!("`logspace` must end at t1 = {t1}, found {b_v}"),
                    b.span,
                    "not the end of the time span",
                )));
            }
            Ok(Steps::Logspace {
                start: a_v,
                end: b_v,
                count: n_v,
            })
        }
        ExprKind::Int(_) | ExprKind::Name(_) | ExprKind::Binary { .. } | ExprKind::Neg(_) => {
            let n = integer(cx, "steps", e, 1)?;
            uniform_steps(cx, e, n, t0, t1)
        }
        ExprKind::Call { func, .. } if func.name == "data" => Ok(Steps::Data(data_source(cx, e)?)),
        _ => Err(wrong(
            cx,
            "steps",
            e,
            "a step count, `logspace(a, b, n)`, a list of times or `data(\"t.csv\")`",
        )),
    }
}

fn outputs(cx: &mut Cx, e: &Expr, t0: f64, t1: f64) -> Lr<Outputs> {
    let outside = |cx: &mut Cx, v: f64, span: Span| {
        cx.report(error_at(
            codes::TIMES,
            format!("output time {v} is outside the time span {t0} .. {t1}"),
            span,
            "outside the time span",
        ))
    };
    match &e.kind {
        ExprKind::Array(items) => {
            let v = numbers(cx, "outputs", e)?;
            if let Some(i) = v.iter().position(|&x| x < t0 || x > t1) {
                return Err(outside(cx, v[i], items[i].span));
            }
            increasing(cx, "outputs", e, &v)?;
            Ok(Outputs::Times(v))
        }
        ExprKind::Call { func, args } if func.name == "linspace" => {
            let [a, b, n] = cx.positional::<3>(func, args, &[])?;
            let (a_v, b_v, n_v) = (
                number(cx, "linspace", a),
                number(cx, "linspace", b),
                integer(cx, "linspace", n, 1),
            );
            let (a_v, b_v, n_v) = (a_v?, b_v?, n_v?);
            for (v, s) in [(a_v, a.span), (b_v, b.span)] {
                if v < t0 || v > t1 {
                    return Err(outside(cx, v, s));
                }
            }
            if a_v > b_v || (a_v == b_v && n_v > 1) {
                return Err(cx.report(error_at(
                    codes::TIMES,
                    format!("`linspace({a_v}, {b_v}, {n_v})` does not increase"),
                    e.span,
                    "needs start < end",
                )));
            }
            Ok(Outputs::Linspace {
                start: a_v,
                end: b_v,
                count: n_v,
            })
        }
        ExprKind::Call { func, .. } if func.name == "data" => {
            Ok(Outputs::Data(data_source(cx, e)?))
        }
        _ => Err(wrong(
            cx,
            "outputs",
            e,
            "`linspace(a, b, n)`, a list of times or `data(…)`",
        )),
    }
}

fn checkpoint(cx: &mut Cx, e: &Expr) -> Lr<Checkpoint> {
    const KINDS: &[&str] = &["store_all", "solution_only", "revolve", "budget", "online"];
    let slots = |cx: &mut Cx, func: &Ident, args: &[Arg]| -> Lr<u64> {
        let [] = cx.positional::<0>(func, args, &["slots"])?;
        match kwarg(args, "slots") {
            Some(s) => integer(cx, "slots", s, 1),
            None => Err(cx.report(error_at(
                codes::OPTION_VALUE,
                format!("`{}` needs `slots = n`", func.name),
                func.span,
                "`slots` missing",
            ))),
        }
    };
    match &e.kind {
        ExprKind::Name(n) if n == "store_all" => Ok(Checkpoint::StoreAll),
        ExprKind::Name(n) if n == "solution_only" => Ok(Checkpoint::SolutionOnly),
        ExprKind::Call { func, args } if func.name == "revolve" => Ok(Checkpoint::Revolve {
            slots: slots(cx, func, args)?,
        }),
        ExprKind::Call { func, args } if func.name == "online" => Ok(Checkpoint::Online {
            slots: slots(cx, func, args)?,
        }),
        ExprKind::Call { func, args } if func.name == "budget" => {
            let [] = cx.positional::<0>(func, args, &["bytes", "vectors"])?;
            match (kwarg(args, "bytes"), kwarg(args, "vectors")) {
                (Some(b), None) => {
                    let v = match b.as_bytes() {
                        Some(v) => v,
                        None => number(cx, "bytes", b)?,
                    };
                    if !(v >= 1.0 && v <= u64::MAX as f64) {
                        return Err(wrong(cx, "bytes", b, "a positive byte size"));
                    }
                    Ok(Checkpoint::BudgetBytes(v as u64))
                }
                (None, Some(v)) => Ok(Checkpoint::BudgetVectors(integer(cx, "vectors", v, 1)?)),
                _ => Err(cx.report(error_at(
                    codes::OPTION_VALUE,
                    "`budget` needs exactly one of `bytes = …` and `vectors = …`",
                    e.span,
                    "one of bytes, vectors",
                ))),
            }
        }
        _ => {
            let name = e
                .as_name()
                .or_else(|| as_call(e).map(|(f, _)| f.name.as_str()));
            let mut d = error_at(
                codes::OPTION_VALUE,
                format!("`checkpoint` expects a schedule, found {}", kind_of(e)),
                e.span,
                "not a checkpoint schedule",
            );
            if let Some(s) = name.and_then(|n| did_you_mean(n, KINDS)) {
                d = d.with_note(format!("did you mean `{s}`?"));
            }
            Err(cx.report(d.with_note(
                "the schedules are store_all, solution_only, revolve(slots = n), \
                 budget(bytes = 64MB), budget(vectors = n), online(slots = n)",
            )))
        }
    }
}

const NEWTON_OPTIONS: &[&str] = &[
    "newton_tol",
    "max_iters",
    "line_search",
    "linear_solver",
    "krylov_tol",
    "krylov_restart",
];

fn newton(
    cx: &mut Cx,
    block: &Block,
    method: Option<&Method>,
    method_opt: Option<&OptionEntry>,
) -> Lr<NewtonOptions> {
    let mut n = NewtonOptions::default();
    let mut failed = false;
    for o in block
        .options
        .iter()
        .filter(|o| NEWTON_OPTIONS.contains(&o.key.name.as_str()))
    {
        let key = o.key.name.as_str();
        if let (Some(m), Some(mo)) = (method, method_opt)
            && !m.is_implicit()
        {
            cx.report(
                error_at(
                    codes::OPTION_METHOD,
                    format!("`{key}` only applies to implicit methods, and `{}` is explicit", m.name()),
                    o.key.span,
                    "implicit-only option",
                )
                .with_secondary(mo.value.span, "explicit method")
                .with_note("the implicit methods are backward_euler, crank_nicolson, theta(x), sdirk2, trbdf2, esdirk3"),
            );
            failed = true;
            continue;
        }
        let v = &o.value;
        let r: Lr<()> = match key {
            "newton_tol" => number_in(cx, key, v, |x| x > 0.0, "positive").map(|x| n.tol = Some(x)),
            "krylov_tol" => {
                number_in(cx, key, v, |x| x > 0.0, "positive").map(|x| n.krylov_tol = Some(x))
            }
            "max_iters" => integer(cx, key, v, 1).map(|x| n.max_iters = Some(x)),
            "krylov_restart" => integer(cx, key, v, 1).map(|x| n.krylov_restart = Some(x)),
            "line_search" => boolean(cx, key, v).map(|x| n.line_search = Some(x)),
            _ => linear_solver(cx, v).map(|x| n.linear_solver = Some(x)),
        };
        failed |= r.is_err();
    }
    if n.linear_solver == Some(LinearSolver::Dense) {
        for o in block
            .options
            .iter()
            .filter(|o| o.key.name.starts_with("krylov_"))
        {
            cx.diags.push(
                Diagnostic::warning(format!(
                    "`{}` has no effect with `linear_solver = dense`",
                    o.key.name
                ))
                .with_code(codes::NO_EFFECT)
                .with_primary(o.key.span, "ignored"),
            );
        }
    }
    if failed { Err(Reported) } else { Ok(n) }
}

fn linear_solver(cx: &mut Cx, e: &Expr) -> Lr<LinearSolver> {
    const NAMES: &[&str] = &["gmres", "dense", "petsc"];
    match e.as_name() {
        Some("gmres") => Ok(LinearSolver::Gmres),
        Some("dense") => Ok(LinearSolver::Dense),
        Some("petsc") => Ok(LinearSolver::Petsc),
        other => {
            let mut d = error_at(
                codes::OPTION_VALUE,
                format!(
                    "`linear_solver` expects gmres, dense or petsc, found {}",
                    kind_of(e)
                ),
                e.span,
                "not a linear solver",
            );
            if let Some(s) = other.and_then(|n| did_you_mean(n, NAMES)) {
                d = d.with_note(format!("did you mean `{s}`?"));
            }
            Err(cx.report(d))
        }
    }
}

/// The `train { }` block.
pub(super) fn train(cx: &mut Cx, block: &Block) -> Lr<TrainSpec> {
    let mut failed = false;
    let mut opt = |cx: &mut Cx, key: &str, min: u64| -> Option<u64> {
        let o = block.get(key)?;
        let r = integer(cx, key, &o.value, min);
        failed |= r.is_err();
        r.ok()
    };
    let iterations = opt(cx, "iterations", 1);
    let seed = opt(cx, "seed", 0);
    let log_every = opt(cx, "log_every", 1);
    let batch_size = opt(cx, "batch_size", 1);
    let optimizer = match block.get("optimizer") {
        None => Ok(Optimizer::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }),
        Some(o) => optimizer(cx, &o.value),
    };
    let optimizer = optimizer?;
    if failed {
        return Err(Reported);
    }
    Ok(TrainSpec {
        optimizer,
        iterations,
        seed,
        log_every,
        batch_size,
    })
}

fn optimizer(cx: &mut Cx, e: &Expr) -> Lr<Optimizer> {
    const NAMES: &[&str] = &["adam", "sgd"];
    let (name, func, args): (&str, Option<&Ident>, &[Arg]) = match &e.kind {
        ExprKind::Name(n) => (n, None, &[]),
        ExprKind::Call { func, args } => (&func.name, Some(func), args),
        _ => return Err(wrong(cx, "optimizer", e, "`adam(lr = …)` or `sgd(lr = …)`")),
    };
    let value =
        |cx: &mut Cx, key: &str, default: f64, ok: fn(f64) -> bool, what: &str| -> Lr<f64> {
            match kwarg(args, key) {
                None => Ok(default),
                Some(v) => number_in(cx, key, v, ok, what),
            }
        };
    let kws: &[&str] = match name {
        "adam" => &["lr", "beta1", "beta2", "eps"],
        "sgd" => &["lr", "momentum"],
        _ => {
            let mut d = error_at(
                codes::OPTION_VALUE,
                format!("unknown optimizer `{name}`"),
                func.map_or(e.span, |f| f.span),
                "not an optimizer",
            );
            if let Some(s) = did_you_mean(name, NAMES) {
                d = d.with_note(format!("did you mean `{s}`?"));
            }
            return Err(cx.report(d.with_note("the optimizers are adam and sgd")));
        }
    };
    if let Some(f) = func {
        let [] = cx.positional::<0>(f, args, kws)?;
    }
    let lr = value(cx, "lr", 1e-3, |x| x > 0.0, "positive");
    if name == "adam" {
        let unit = |x: f64| (0.0..1.0).contains(&x);
        let b1 = value(cx, "beta1", 0.9, unit, "in [0, 1)");
        let b2 = value(cx, "beta2", 0.999, unit, "in [0, 1)");
        let eps = value(cx, "eps", 1e-8, |x| x > 0.0, "positive");
        Ok(Optimizer::Adam {
            lr: lr?,
            beta1: b1?,
            beta2: b2?,
            eps: eps?,
        })
    } else {
        let m = value(
            cx,
            "momentum",
            0.0,
            |x| (0.0..1.0).contains(&x),
            "in [0, 1)",
        );
        Ok(Optimizer::Sgd {
            lr: lr?,
            momentum: m?,
        })
    }
}
