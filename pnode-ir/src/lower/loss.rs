//! The loss: a sum of terms. A term `c · mse(e, data(…))`, `mse(…) / c` or `-mse(…)` (or
//! `mae`; `c` a constant factor of number literals and scalar constants) is a [`DataFit`]; the
//! other terms form one scalar function of the state at one output time, summed over the
//! output times.

use super::codes;
use super::exprs::{Cx, error_at, is_call};
use super::options::data_source;
use super::program::{DataFit, LossSpec, Metric};
use super::scope::{Scope, Sym};
use super::{Lr, Reported};
use crate::graph::NodeId;
use pnode_grammar::ast::{BinOp, Expr, ExprKind, Loss};

enum Term<'e> {
    Fit {
        metric: Metric,
        weight: f64,
        prediction: &'e Expr,
        data: &'e Expr,
    },
    Other {
        weight: f64,
        expr: &'e Expr,
    },
}

fn split<'e>(scope: &Scope, e: &'e Expr, w: f64, out: &mut Vec<Term<'e>>) {
    stacker::maybe_grow(64 * 1024, 2 * 1024 * 1024, || split_inner(scope, e, w, out));
}

/// The value of a constant factor: number literals and scalar constants combined by
/// arithmetic (at most 64 levels deep).
fn factor(scope: &Scope, e: &Expr, depth: usize) -> Option<f64> {
    if depth > 64 {
        return None;
    }
    let v = match &e.kind {
        ExprKind::Int(v) => *v as f64,
        ExprKind::Float(v) => *v,
        ExprKind::Neg(x) => -factor(scope, x, depth + 1)?,
        ExprKind::Name(n) => match scope.lookup(n)? {
            Sym::Const(i) => {
                let t = scope.consts[i].value.as_ref()?;
                if !t.shape().is_scalar() {
                    return None;
                }
                t.data()[0]
            }
            _ => return None,
        },
        ExprKind::Binary { op, lhs, rhs } => {
            let (a, b) = (
                factor(scope, lhs, depth + 1)?,
                factor(scope, rhs, depth + 1)?,
            );
            match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                BinOp::Pow => a.powf(b),
                BinOp::MatMul => return None,
            }
        }
        _ => return None,
    };
    v.is_finite().then_some(v)
}

fn split_inner<'e>(scope: &Scope, e: &'e Expr, w: f64, out: &mut Vec<Term<'e>>) {
    match &e.kind {
        ExprKind::Binary { op, lhs, rhs } => match op {
            BinOp::Add => {
                split(scope, lhs, w, out);
                split(scope, rhs, w, out);
                return;
            }
            BinOp::Sub => {
                split(scope, lhs, w, out);
                split(scope, rhs, -w, out);
                return;
            }
            BinOp::Mul => {
                if let Some(c) = factor(scope, lhs, 0) {
                    split(scope, rhs, w * c, out);
                    return;
                }
                if let Some(c) = factor(scope, rhs, 0) {
                    split(scope, lhs, w * c, out);
                    return;
                }
            }
            BinOp::Div => {
                if let Some(c) = factor(scope, rhs, 0).filter(|c| *c != 0.0) {
                    split(scope, lhs, w / c, out);
                    return;
                }
            }
            _ => {}
        },
        ExprKind::Neg(x) => {
            split(scope, x, -w, out);
            return;
        }
        ExprKind::Call { func, args } if func.name == "mse" || func.name == "mae" => {
            let pos: Vec<&Expr> = args
                .iter()
                .filter(|a| a.name.is_none())
                .map(|a| &a.value)
                .collect();
            if args.len() == 2 && pos.len() == 2 {
                let metric = if func.name == "mse" {
                    Metric::Mse
                } else {
                    Metric::Mae
                };
                let (a, b) = (pos[0], pos[1]);
                let fit = match (is_call(a, "data"), is_call(b, "data")) {
                    (false, true) => Some((a, b)),
                    (true, false) => Some((b, a)),
                    _ => None,
                };
                if let Some((prediction, data)) = fit {
                    out.push(Term::Fit {
                        metric,
                        weight: w,
                        prediction,
                        data,
                    });
                    return;
                }
            }
        }
        _ => {}
    }
    out.push(Term::Other { weight: w, expr: e });
}

/// Lowers the loss with `cx` (the model's builder, so the RHS's nodes are shared).
pub(super) fn loss(cx: &mut Cx, l: &Loss) -> Lr<LossSpec> {
    let mut terms = Vec::new();
    split(cx.scope, &l.value, 1.0, &mut terms);
    let mut fits = Vec::new();
    let mut total: Option<NodeId> = None;
    let mut failed = false;
    for t in terms {
        match t {
            Term::Fit {
                metric,
                weight,
                prediction,
                data,
            } => {
                if is_call(prediction, "data") {
                    failed = true;
                    continue;
                }
                let (p, d) = (cx.expr(prediction), data_source(cx, data));
                let (Ok(p), Ok(d)) = (p, d) else {
                    failed = true;
                    continue;
                };
                match cx.b.finish(&[p]) {
                    Ok(f) => fits.push(DataFit {
                        metric,
                        weight,
                        prediction: f,
                        data: d,
                    }),
                    Err(_) => failed = true,
                }
            }
            Term::Other { weight, expr } => {
                let Ok(x) = cx.expr(expr) else {
                    failed = true;
                    continue;
                };
                let s = cx.shape_of(x);
                if !s.is_scalar() {
                    cx.report(
                        error_at(
                            codes::LOSS,
                            format!("the loss must be a scalar, but this term has shape {s}"),
                            expr.span,
                            format!("shape {s}"),
                        )
                        .with_note("reduce it with `sum(…)` or `mean(…)`"),
                    );
                    failed = true;
                    continue;
                }
                let term = if weight == 1.0 {
                    x
                } else {
                    let r = cx.b.scale(x, weight);
                    cx.built(r, expr.span)?
                };
                total = Some(match total {
                    None => term,
                    Some(acc) => {
                        let r = cx.b.add(acc, term);
                        cx.built(r, l.value.span)?
                    }
                });
            }
        }
    }
    if failed {
        return Err(Reported);
    }
    let expr = match total {
        None => None,
        Some(n) => Some(cx.b.finish(&[n]).map_err(|_| Reported)?),
    };
    Ok(LossSpec { fits, expr })
}
