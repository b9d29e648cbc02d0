//! Index arithmetic and loop nests of the generated code, and float literals.

use pnode_ir::{Function, Node, Op, Shape, UnaryOp};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// An element index: a literal or an expression of loop variables plus a literal.
#[derive(Debug, Clone)]
pub(crate) struct Idx {
    pub(crate) expr: Option<TokenStream>,
    pub(crate) add: usize,
}

impl Idx {
    pub(crate) fn lit(add: usize) -> Self {
        Idx { expr: None, add }
    }
    pub(crate) fn var(v: &TokenStream) -> Self {
        Idx {
            expr: Some(v.clone()),
            add: 0,
        }
    }
    pub(crate) fn plus(&self, k: usize) -> Self {
        Idx {
            expr: self.expr.clone(),
            add: self.add + k,
        }
    }
    pub(crate) fn tokens(&self) -> TokenStream {
        let add = Literal::usize_unsuffixed(self.add);
        match (&self.expr, self.add) {
            (None, _) => quote!(#add),
            (Some(e), 0) => e.clone(),
            (Some(e), _) => quote!(#e + #add),
        }
    }
}

/// `Σ vars[a] · strides[a] + add`, dropping absent variables (extent-1 axes) and zero strides.
pub(crate) fn lin(vars: &[Option<TokenStream>], strides: &[usize], add: usize) -> Idx {
    let mut terms = Vec::new();
    for (v, &s) in vars.iter().zip(strides) {
        if let (Some(v), true) = (v, s != 0) {
            if s == 1 {
                terms.push(v.clone());
            } else {
                let s = Literal::usize_unsuffixed(s);
                terms.push(quote!(#v * #s));
            }
        }
    }
    let expr = if terms.is_empty() {
        None
    } else {
        Some(quote!(#(#terms)+*))
    };
    Idx { expr, add }
}

/// Nested `for` loops over `dims` (extent-1 axes get no loop); `body` receives the loop
/// variables.
pub(crate) fn loops(
    dims: &[usize],
    body: impl FnOnce(&[Option<TokenStream>]) -> TokenStream,
) -> TokenStream {
    loops_named(dims, &["i", "j", "k", "l", "m", "n"], body)
}

/// [`loops`] with the loop variables named `names`.
pub(crate) fn loops_named(
    dims: &[usize],
    names: &[&str],
    body: impl FnOnce(&[Option<TokenStream>]) -> TokenStream,
) -> TokenStream {
    let vars: Vec<Option<TokenStream>> = dims
        .iter()
        .enumerate()
        .map(|(a, &d)| {
            (d != 1).then(|| {
                let v = format_ident!("{}", names[a]);
                quote!(#v)
            })
        })
        .collect();
    let mut code = body(&vars);
    for (v, &d) in vars.iter().zip(dims).rev() {
        if let Some(v) = v {
            let d = Literal::usize_unsuffixed(d);
            code = quote!(for #v in 0..#d { #code });
        }
    }
    code
}

/// Row-major strides.
pub(crate) fn strides(dims: &[usize]) -> Vec<usize> {
    let mut st = vec![1; dims.len()];
    for a in (0..dims.len().saturating_sub(1)).rev() {
        st[a] = st[a + 1] * dims[a + 1];
    }
    st
}

/// Strides of `s` in the coordinates of `out` (`s` broadcasts to `out`, trailing rule): 0 on
/// axes where `s` is missing or has extent 1.
pub(crate) fn bstrides(s: &Shape, out: &Shape) -> Vec<usize> {
    let r = out.rank();
    let mut d = vec![1; r];
    d[r - s.rank()..].copy_from_slice(s.dims());
    let st = strides(&d);
    (0..r)
        .map(|a| {
            if d[a] == 1 && out.dims()[a] != 1 {
                0
            } else {
                st[a]
            }
        })
        .collect()
}

/// `(outer, extent, inner)` around `axis`.
pub(crate) fn split_axis(s: &Shape, axis: usize) -> (usize, usize, usize) {
    let d = s.dims();
    (
        d[..axis].iter().product(),
        d[axis],
        d[axis + 1..].iter().product(),
    )
}

/// Whether `node` is a unary or binary operation of more than one element that the flat
/// `for i in 0..len` loop computes (every operand has its length or one element); as a
/// consumer of a lazy value, also that it reads each operand once (not relu, step, sign,
/// GELU).
pub(crate) fn flat_elementwise(f: &Function, node: &Node, as_consumer: bool) -> bool {
    let len = node.shape.len();
    let ok_op = match &node.op {
        Op::Unary(u) => {
            !as_consumer
                || !matches!(
                    u,
                    UnaryOp::Relu | UnaryOp::Step | UnaryOp::Sign | UnaryOp::Gelu
                )
        }
        Op::Binary(_) => true,
        _ => false,
    };
    ok_op
        && len > 1
        && node.inputs.iter().all(|x| {
            let n = f.graph().nodes()[x.index()].shape.len();
            n == len || n == 1
        })
}

/// A float literal that parses back to exactly `x` (shortest round-trip form).
pub(crate) fn float(x: f64) -> TokenStream {
    if x.is_nan() {
        return quote!(f64::NAN);
    }
    if x.is_infinite() {
        return if x > 0.0 {
            quote!(f64::INFINITY)
        } else {
            quote!(f64::NEG_INFINITY)
        };
    }
    let s = format!("{:?}", x.abs());
    let lit: Literal = s.parse().expect("a float literal");
    if x.is_sign_negative() {
        quote!(-#lit)
    } else {
        quote!(#lit)
    }
}
