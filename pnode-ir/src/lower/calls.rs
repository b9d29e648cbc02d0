//! Calls: built-in functions (`tanh`, `matmul`, `sum(x, axis = k)`, `mse`…) and layers.

use super::Lr;
use super::codes;
use super::exprs::{BUILTINS, Cx, Mode, NOT_EXPRESSIONS, UNARY, error_at, is_call};
use super::scope::Sym;
use crate::graph::NodeId;
use pnode_grammar::ast::{Arg, BinOp, Ident, Span};

impl Cx<'_, '_> {
    /// A call: a layer, or a built-in function.
    pub(super) fn call(&mut self, func: &Ident, args: &[Arg], span: Span) -> Lr<NodeId> {
        let n = func.name.as_str();
        if let Some(sym) = self.scope.lookup(n) {
            return match sym {
                Sym::Layer(i) if self.mode == Mode::Model => self.apply_layer(i, func, args, span),
                Sym::Layer(_) => Err(self.report(error_at(
                    codes::NOT_CONSTANT,
                    format!("layer `{n}` cannot be applied in a constant expression"),
                    func.span,
                    "not a constant",
                ))),
                other => Err(self.report(error_at(
                    codes::NOT_CALLABLE,
                    format!("`{n}` is a {}, not a layer or function", other.kind()),
                    func.span,
                    "cannot be called",
                ))),
            };
        }
        if let Some(&(_, u)) = UNARY.iter().find(|(name, _)| *name == n) {
            let [x] = self.positional::<1>(func, args, &[])?;
            let x = self.expr(x)?;
            let r = self.b.unary(u, x);
            return self.built(r, span);
        }
        match n {
            "matmul" => {
                let [a, c] = self.positional::<2>(func, args, &[])?;
                let (l, r) = (self.expr(a), self.expr(c));
                let (l, r) = (l?, r?);
                self.matmul(l, r, a.span, c.span, span)
            }
            "transpose" => {
                let [a] = self.positional::<1>(func, args, &[])?;
                let x = self.expr(a)?;
                let s = self.shape_of(x);
                if s.rank() != 2 {
                    return Err(self.report(error_at(
                        codes::SHAPE_MISMATCH,
                        format!("`transpose` needs a matrix, found shape {s}"),
                        a.span,
                        format!("shape {s}"),
                    )));
                }
                let r = self.b.transpose(x);
                self.built(r, span)
            }
            "sum" | "mean" => self.reduce(func, args, span),
            "mse" | "mae" => {
                let [a, c] = self.positional::<2>(func, args, &[])?;
                for e in [a, c] {
                    if is_call(e, "data") {
                        return Err(self.report(
                            error_at(
                                codes::LOSS,
                                "observations `data(…)` can only be fitted by a term of the loss",
                                e.span,
                                "observations",
                            )
                            .with_note(
                                "write the loss as a sum of terms like `w * mse(u, data(\"obs.csv\"))`",
                            ),
                        ));
                    }
                }
                let (l, r) = (self.expr(a), self.expr(c));
                let (l, r) = (l?, r?);
                let d = self.binary(BinOp::Sub, l, r, a.span, c.span, span)?;
                let e = if n == "mse" {
                    self.b.square(d)
                } else {
                    self.b.abs(d)
                };
                let e = self.built(e, span)?;
                let m = self.b.mean(e);
                self.built(m, span)
            }
            _ if NOT_EXPRESSIONS.contains(&n) => Err(self.report(
                error_at(
                    codes::MISPLACED,
                    format!("`{n}(…)` is not an expression"),
                    func.span,
                    "not allowed here",
                )
                .with_note(
                    "initializers are the value of a `state` or `param`; `data(…)` is an \
                     initial value, an output list or an observation in a loss term",
                ),
            )),
            _ => {
                let mut known: Vec<&str> = BUILTINS.to_vec();
                known.extend(self.scope.layer_names());
                let mut d = error_at(
                    codes::UNKNOWN_NAME,
                    format!("unknown function `{n}`"),
                    func.span,
                    "not a layer or built-in function",
                );
                if let Some(s) = self.scope.suggest(n, &known) {
                    d = d.with_note(format!("did you mean `{s}`?"));
                }
                Err(self.report(d))
            }
        }
    }

    /// `sum(x)`, `sum(x, axis = k)`, `mean(…)`.
    fn reduce(&mut self, func: &Ident, args: &[Arg], span: Span) -> Lr<NodeId> {
        let n = func.name.as_str();
        let [a] = self.positional::<1>(func, args, &["axis"])?;
        let x = self.expr(a)?;
        let s = self.shape_of(x);
        let axis = args.iter().find(|a| a.name.is_some());
        let r = match axis {
            None if n == "sum" => self.b.sum(x),
            None => self.b.mean(x),
            Some(ax) => {
                let k = self.const_int(&ax.value, "an axis")?;
                if k < 0 || k as usize >= s.rank() {
                    return Err(self.report(error_at(
                        codes::INDEX,
                        format!("no axis {k} in a value of shape {s}"),
                        ax.value.span,
                        format!("the axes are 0..{}", s.rank()),
                    )));
                }
                if n == "sum" {
                    self.b.sum_axis(x, k as usize)
                } else {
                    self.b.mean_axis(x, k as usize)
                }
            }
        };
        self.built(r, span)
    }
}
