//! Layers: their definitions (`layer net = mlp([2, 50, 2], activation = tanh)`), their
//! parameters, and their application to a value of the right shape.
//!
//! Parameter layout (each layer's slice of `θ`, in this order):
//!
//! | kind | parameters |
//! |---|---|
//! | `linear(in, out)`, `dense` | `L.weight [out, in]`, `L.bias [out]` |
//! | `mlp([n0, …, nk])` | `L.0.weight [n1, n0]`, `L.0.bias [n1]`, …, `L.{k-1}.bias [nk]` |
//! | `conv2d(in, out, kernel = k)` | `L.weight [out, in, k, k]`, `L.bias [out]` |
//! | `groupnorm(groups = g, channels = c)` | `L.weight [c]` (ones), `L.bias [c]` (zeros) |
//! | `opaque(in, out)` | none declared: the layer brings its own, after all declared ones |

use super::codes;
use super::exprs::{Cx, check_kwargs, error_at};
use super::program::{DataSource, Initializer};
use super::{Lr, MAX_VALUE_ELEMENTS, Reported};
use crate::graph::{ConvParams, NodeId};
use crate::layers::{Activation, linear};
use crate::shape::Shape;
use pnode_grammar::ast::{Arg, Expr, ExprKind, Layer, Span};
use pnode_grammar::did_you_mean;

/// A validated layer definition.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum LayerDef {
    Linear {
        input: usize,
        output: usize,
    },
    Mlp {
        sizes: Vec<usize>,
        activation: Activation,
    },
    Conv2d {
        input: usize,
        output: usize,
        kernel: usize,
        conv: ConvParams,
    },
    GroupNorm {
        groups: usize,
        channels: usize,
        eps: f64,
    },
    /// A layer computed outside pnode (a libtorch module, say): `y = g(x; φ)` with `x` of
    /// shape `input`, `y` of shape `output`; its parameters are supplied with the layer, not
    /// declared here.
    Opaque {
        input: Shape,
        output: Shape,
        /// Its index among the model's opaque layers (declaration order).
        index: usize,
    },
}

const ACTIVATIONS: &[(&str, Activation)] = &[
    ("tanh", Activation::Tanh),
    ("relu", Activation::Relu),
    ("gelu", Activation::Gelu),
    ("sigmoid", Activation::Sigmoid),
    ("softplus", Activation::Softplus),
    ("identity", Activation::Identity),
];

impl LayerDef {
    /// The parameters `(name suffix, shape, initializer)`, in layout order.
    pub fn params(&self) -> Vec<(String, Shape, Initializer)> {
        let uniform = |fan_in: usize| Initializer::Uniform {
            bound: 1.0 / (fan_in.max(1) as f64).sqrt(),
        };
        match self {
            LayerDef::Linear { input, output } => vec![
                (
                    "weight".into(),
                    Shape::new(&[*output, *input]),
                    uniform(*input),
                ),
                ("bias".into(), Shape::new(&[*output]), uniform(*input)),
            ],
            LayerDef::Mlp { sizes, .. } => sizes
                .windows(2)
                .enumerate()
                .flat_map(|(k, p)| {
                    [
                        (
                            format!("{k}.weight"),
                            Shape::new(&[p[1], p[0]]),
                            uniform(p[0]),
                        ),
                        (format!("{k}.bias"), Shape::new(&[p[1]]), uniform(p[0])),
                    ]
                })
                .collect(),
            LayerDef::Conv2d {
                input,
                output,
                kernel,
                ..
            } => {
                let fan_in = input.saturating_mul(*kernel).saturating_mul(*kernel);
                vec![
                    (
                        "weight".into(),
                        Shape::new(&[*output, *input, *kernel, *kernel]),
                        uniform(fan_in),
                    ),
                    ("bias".into(), Shape::new(&[*output]), uniform(fan_in)),
                ]
            }
            LayerDef::GroupNorm { channels, .. } => vec![
                ("weight".into(), Shape::new(&[*channels]), Initializer::Ones),
                ("bias".into(), Shape::new(&[*channels]), Initializer::Zeros),
            ],
            LayerDef::Opaque { .. } => Vec::new(),
        }
    }

    /// Total parameter count, or `None` on overflow.
    pub fn param_len(&self) -> Option<usize> {
        self.params()
            .iter()
            .try_fold(0usize, |a, (_, s, _)| a.checked_add(s.checked_len()?))
    }

    /// The definition as written, for labels: `mlp([2, 50, 2])`.
    fn describe(&self) -> String {
        match self {
            LayerDef::Linear { input, output } => format!("linear({input}, {output})"),
            LayerDef::Mlp { sizes, .. } => format!("mlp({sizes:?})"),
            LayerDef::Conv2d {
                input,
                output,
                kernel,
                ..
            } => format!("conv2d({input}, {output}, kernel = {kernel})"),
            LayerDef::GroupNorm {
                groups, channels, ..
            } => format!("groupnorm(groups = {groups}, channels = {channels})"),
            LayerDef::Opaque { input, output, .. } => format!("opaque({input}, {output})"),
        }
    }
}

/// A positive (or, with `zero_ok`, non-negative) integer argument.
fn count(cx: &mut Cx, e: &Expr, what: &str, zero_ok: bool) -> Lr<usize> {
    let v = cx.const_int(e, what)?;
    let min = i64::from(!zero_ok);
    if v < min || v as u64 > MAX_VALUE_ELEMENTS as u64 {
        let want = if zero_ok { "non-negative" } else { "positive" };
        return Err(cx.report(error_at(
            codes::LAYER_DEFINITION,
            format!("{what} must be a {want} integer, found {v}"),
            e.span,
            format!("{want} integer expected"),
        )));
    }
    Ok(v as usize)
}

fn kwarg<'a>(args: &'a [Arg], key: &str) -> Option<&'a Expr> {
    args.iter()
        .find(|a| a.name.as_ref().is_some_and(|n| n.name == key))
        .map(|a| &a.value)
}

fn positional(args: &[Arg]) -> Vec<&Expr> {
    args.iter()
        .filter(|a| a.name.is_none())
        .map(|a| &a.value)
        .collect()
}

/// Checks the number of positional arguments of a layer constructor.
fn want_positional<'a>(cx: &mut Cx, l: &'a Layer, n: usize, usage: &str) -> Lr<Vec<&'a Expr>> {
    let pos = positional(&l.args);
    if pos.len() != n {
        let span = pos.get(n).map_or(l.kind.span, |e| e.span);
        return Err(cx.report(
            error_at(
                codes::ARGUMENTS,
                format!(
                    "`{}` takes {n} positional argument{}, found {}",
                    l.kind.name,
                    if n == 1 { "" } else { "s" },
                    pos.len()
                ),
                span,
                if pos.len() > n {
                    "unexpected argument"
                } else {
                    "missing arguments"
                },
            )
            .with_note(format!("usage: {usage}")),
        ));
    }
    Ok(pos)
}

fn required<'a>(cx: &mut Cx, l: &'a Layer, key: &str, usage: &str) -> Lr<&'a Expr> {
    kwarg(&l.args, key).ok_or_else(|| {
        cx.report(
            error_at(
                codes::ARGUMENTS,
                format!("`{}` needs the keyword argument `{key}`", l.kind.name),
                l.kind.span,
                format!("`{key} = …` missing"),
            )
            .with_note(format!("usage: {usage}")),
        )
    })
}

/// Validates a layer definition (its arguments are constant expressions).
pub(super) fn define(cx: &mut Cx, l: &Layer) -> Lr<LayerDef> {
    let kind = l.kind.name.as_str();
    let def = match kind {
        "linear" | "dense" => {
            let usage = format!("`{kind}(in, out)`");
            check_kwargs(cx.diags, &l.kind, &l.args, &["init"])?;
            let pos = want_positional(cx, l, 2, &usage)?;
            let (i, o) = (
                count(cx, pos[0], "`in`", false),
                count(cx, pos[1], "`out`", false),
            );
            LayerDef::Linear {
                input: i?,
                output: o?,
            }
        }
        "mlp" => {
            let usage = "`mlp([in, hidden…, out], activation = tanh)`";
            check_kwargs(cx.diags, &l.kind, &l.args, &["activation", "init"])?;
            let pos = want_positional(cx, l, 1, usage)?;
            let sizes = mlp_sizes(cx, pos[0])?;
            let activation = match kwarg(&l.args, "activation") {
                None => Activation::Tanh,
                Some(e) => activation(cx, e)?,
            };
            LayerDef::Mlp { sizes, activation }
        }
        "conv2d" => {
            let usage = "`conv2d(in, out, kernel = k, padding = p, stride = s)`";
            check_kwargs(
                cx.diags,
                &l.kind,
                &l.args,
                &["kernel", "padding", "stride", "init"],
            )?;
            let pos = want_positional(cx, l, 2, usage)?;
            let (i, o) = (
                count(cx, pos[0], "`in`", false),
                count(cx, pos[1], "`out`", false),
            );
            let k = required(cx, l, "kernel", usage).and_then(|e| count(cx, e, "`kernel`", false));
            let p = kwarg(&l.args, "padding").map_or(Ok(0), |e| count(cx, e, "`padding`", true));
            let s = kwarg(&l.args, "stride").map_or(Ok(1), |e| count(cx, e, "`stride`", false));
            LayerDef::Conv2d {
                input: i?,
                output: o?,
                kernel: k?,
                conv: ConvParams {
                    padding: p?,
                    stride: s?,
                },
            }
        }
        "groupnorm" => {
            let usage = "`groupnorm(groups = g, channels = c)`";
            check_kwargs(
                cx.diags,
                &l.kind,
                &l.args,
                &["groups", "channels", "eps", "init"],
            )?;
            want_positional(cx, l, 0, usage)?;
            let ge = required(cx, l, "groups", usage);
            let ce = required(cx, l, "channels", usage);
            let (ge, ce) = (ge?, ce?);
            let (g, c) = (
                count(cx, ge, "`groups`", false),
                count(cx, ce, "`channels`", false),
            );
            let (g, c) = (g?, c?);
            if c % g != 0 {
                return Err(cx.report(
                    error_at(
                        codes::LAYER_DEFINITION,
                        format!("{g} groups do not divide {c} channels"),
                        ge.span,
                        format!("does not divide {c}"),
                    )
                    .with_secondary(ce.span, "channels"),
                ));
            }
            let eps = match kwarg(&l.args, "eps") {
                None => 1e-5,
                Some(e) => {
                    let id = cx.expr(e)?;
                    match cx
                        .b
                        .graph()
                        .constant(id)
                        .map(|t| (t.shape().is_scalar(), t.data()[0]))
                    {
                        Some((true, v)) if v > 0.0 && v.is_finite() => v,
                        _ => {
                            return Err(cx.report(error_at(
                                codes::LAYER_DEFINITION,
                                "`eps` must be a positive number",
                                e.span,
                                "positive number expected",
                            )));
                        }
                    }
                }
            };
            LayerDef::GroupNorm {
                groups: g,
                channels: c,
                eps,
            }
        }
        "opaque" => {
            let usage = "`opaque(in, out)`, each a size `n` or a shape `[d0, d1, …]`";
            check_kwargs(cx.diags, &l.kind, &l.args, &[])?;
            let pos = want_positional(cx, l, 2, usage)?;
            let (i, o) = (
                opaque_shape(cx, pos[0], "`in`"),
                opaque_shape(cx, pos[1], "`out`"),
            );
            LayerDef::Opaque {
                input: i?,
                output: o?,
                index: 0,
            }
        }
        // The parser reports unknown kinds (P011); `lower` on an unchecked tree reports too.
        _ => {
            return Err(cx.report(error_at(
                codes::LAYER_DEFINITION,
                format!("unknown layer kind `{kind}`"),
                l.kind.span,
                "unknown layer kind",
            )));
        }
    };
    if def.param_len().is_none_or(|n| n > MAX_VALUE_ELEMENTS) {
        return Err(cx.report(error_at(
            codes::TOO_LARGE,
            format!("layer `{}` has too many parameters", l.name.name),
            l.span,
            format!("more than {MAX_VALUE_ELEMENTS}"),
        )));
    }
    Ok(def)
}

/// `init = data("net.npy", column = k)`: the file holding all of the layer's parameters in
/// layout order (`None` without the keyword; opaque layers refuse it in [`define`]).
pub(super) fn init_file(cx: &mut Cx, l: &Layer) -> Lr<Option<DataSource>> {
    match kwarg(&l.args, "init") {
        Some(e) if l.kind.name != "opaque" => super::options::data_source(cx, e).map(Some),
        _ => Ok(None),
    }
}

/// The input or output shape of an opaque layer: a size `n` (shape `[n]`) or a list of sizes.
fn opaque_shape(cx: &mut Cx, e: &Expr, what: &str) -> Lr<Shape> {
    let dims = match &e.kind {
        ExprKind::Array(items) if !items.is_empty() => {
            let mut dims = Vec::with_capacity(items.len());
            let mut failed = false;
            for item in items {
                match count(cx, item, "a dimension", false) {
                    Ok(n) => dims.push(n),
                    Err(_) => failed = true,
                }
            }
            if failed {
                return Err(Reported);
            }
            dims
        }
        ExprKind::Array(_) => {
            return Err(cx.report(error_at(
                codes::LAYER_DEFINITION,
                format!("{what} of an opaque layer needs at least one dimension"),
                e.span,
                "empty shape",
            )));
        }
        _ => vec![count(cx, e, what, false)?],
    };
    let shape = Shape(dims);
    if shape.checked_len().is_none_or(|n| n > MAX_VALUE_ELEMENTS)
        || shape.rank() > crate::shape::MAX_RANK
    {
        return Err(cx.report(error_at(
            codes::TOO_LARGE,
            format!("{what} shape {shape} is too large"),
            e.span,
            format!("more than {MAX_VALUE_ELEMENTS} elements or rank above the limit"),
        )));
    }
    Ok(shape)
}

fn mlp_sizes(cx: &mut Cx, e: &Expr) -> Lr<Vec<usize>> {
    let ExprKind::Array(items) = &e.kind else {
        return Err(cx.report(error_at(
            codes::LAYER_DEFINITION,
            "`mlp` needs a list of sizes `[in, hidden…, out]`",
            e.span,
            "expected a list",
        )));
    };
    if items.len() < 2 {
        return Err(cx.report(error_at(
            codes::LAYER_DEFINITION,
            format!("an MLP needs at least two sizes, found {}", items.len()),
            e.span,
            "at least [in, out]",
        )));
    }
    let mut sizes = Vec::with_capacity(items.len());
    let mut failed = false;
    for item in items {
        match count(cx, item, "a layer size", false) {
            Ok(n) => sizes.push(n),
            Err(_) => failed = true,
        }
    }
    if failed { Err(Reported) } else { Ok(sizes) }
}

fn activation(cx: &mut Cx, e: &Expr) -> Lr<Activation> {
    let names: Vec<&str> = ACTIVATIONS.iter().map(|a| a.0).collect();
    if let Some(n) = e.as_name()
        && let Some(&(_, a)) = ACTIVATIONS.iter().find(|a| a.0 == n)
    {
        return Ok(a);
    }
    let mut d = error_at(
        codes::LAYER_DEFINITION,
        "unknown activation",
        e.span,
        "not an activation",
    );
    if let Some(s) = e.as_name().and_then(|n| did_you_mean(n, &names)) {
        d = d.with_note(format!("did you mean `{s}`?"));
    }
    Err(cx.report(d.with_note(format!("the activations are {}", names.join(", ")))))
}

impl Cx<'_, '_> {
    /// `net(x)`: the layer `i` applied to one value.
    pub(super) fn apply_layer(
        &mut self,
        i: usize,
        func: &pnode_grammar::ast::Ident,
        args: &[Arg],
        span: Span,
    ) -> Lr<NodeId> {
        let scope = self.scope;
        let info = &scope.layers[i];
        let name = info.layer.name.name.as_str();
        let [arg] = self.positional::<1>(func, args, &[])?;
        let x = self.expr(arg)?;
        let def = info.def.as_ref().ok_or(Reported)?;
        let shape = self.shape_of(x);
        let kind = info.layer.kind.name.as_str();
        let defined = info.layer.span;
        let wrong = |cx: &mut Self, expected: String| {
            cx.report(
                error_at(
                    codes::LAYER_SHAPE,
                    format!("{kind} `{name}` expects {expected}, found {shape}"),
                    arg.span,
                    format!("shape {shape}"),
                )
                .with_secondary(defined, format!("`{name}` is {}", def.describe())),
            )
        };
        let off = info.offset;
        match def {
            LayerDef::Linear { input, output } => {
                if shape.dims().last() != Some(input) {
                    return Err(wrong(self, format!("a trailing dimension {input}")));
                }
                let mut out = shape.dims().to_vec();
                if let Some(last) = out.last_mut() {
                    *last = *output;
                }
                super::exprs::check_size(&Shape(out), span).map_err(|d| self.report(d))?;
                let w = self.b.param(off, [*output, *input]);
                let w = self.built(w, span)?;
                let bias = self.b.param(off + output * input, [*output]);
                let bias = self.built(bias, span)?;
                let r = linear(self.b, x, w, Some(bias));
                self.built(r, span)
            }
            LayerDef::Mlp { sizes, activation } => {
                let input = sizes[0];
                if shape.dims().last() != Some(&input) {
                    return Err(wrong(self, format!("a trailing dimension {input}")));
                }
                for &width in &sizes[1..] {
                    let mut out = shape.dims().to_vec();
                    if let Some(last) = out.last_mut() {
                        *last = width;
                    }
                    super::exprs::check_size(&Shape(out), span).map_err(|d| self.report(d))?;
                }
                let r = self.b.mlp(x, sizes, off, *activation).map(|(y, _)| y);
                self.built(r, span)
            }
            LayerDef::Conv2d {
                input,
                output,
                kernel,
                conv,
            } => {
                let expected = format!("[{input}, H, W] or [N, {input}, H, W]");
                let (c, h, w) = match shape.dims() {
                    [c, h, w] | [_, c, h, w] => (*c, *h, *w),
                    _ => return Err(wrong(self, expected)),
                };
                if c != *input {
                    return Err(wrong(self, expected));
                }
                let out = |n: usize| {
                    let padded = n.checked_add(conv.padding.checked_mul(2)?)?;
                    padded.checked_sub(*kernel).map(|d| d / conv.stride + 1)
                };
                let (Some(ho), Some(wo)) = (out(h), out(w)) else {
                    return Err(wrong(
                        self,
                        format!("an image of at least {kernel}×{kernel} after padding"),
                    ));
                };
                let mut o = shape.dims().to_vec();
                let r = o.len();
                o[r - 3] = *output;
                o[r - 2] = ho;
                o[r - 1] = wo;
                super::exprs::check_size(&Shape(o), span).map_err(|d| self.report(d))?;
                let wt = self.b.param(off, [*output, *input, *kernel, *kernel]);
                let wt = self.built(wt, span)?;
                let bias = self
                    .b
                    .param(off + output * input * kernel * kernel, [*output]);
                let bias = self.built(bias, span)?;
                let r = self.b.conv2d(x, wt, Some(bias), *conv);
                self.built(r, span)
            }
            LayerDef::GroupNorm {
                groups,
                channels,
                eps,
            } => {
                let expected = format!("[{channels}, H, W] or [N, {channels}, H, W]");
                let c = match shape.dims() {
                    [c, _, _] | [_, c, _, _] => *c,
                    _ => return Err(wrong(self, expected)),
                };
                if c != *channels {
                    return Err(wrong(self, expected));
                }
                let g = self.b.param(off, [*channels]);
                let g = self.built(g, span)?;
                let bias = self.b.param(off + channels, [*channels]);
                let bias = self.built(bias, span)?;
                let r = self.b.group_norm(x, *groups, *eps, Some(g), Some(bias));
                self.built(r, span)
            }
            LayerDef::Opaque {
                input,
                output,
                index,
            } => {
                if shape != *input {
                    return Err(wrong(self, format!("an input of shape {input}")));
                }
                let op = crate::graph::Op::Opaque {
                    layer: *index,
                    output: output.clone(),
                };
                let r = self.b.op(op, &[x]);
                self.built(r, span)
            }
        }
    }
}
