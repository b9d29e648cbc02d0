//! Dense layers expanded into IR primitives (they need no operation of their own).

use crate::builder::{Builder, Built};
use crate::graph::{NodeId, UnaryOp};
use crate::shape::ShapeError;

/// The activation of an MLP's hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// `tanh`.
    #[default]
    Tanh,
    /// `max(x, 0)`.
    Relu,
    /// Exact GELU `x Φ(x)`.
    Gelu,
    /// Logistic sigmoid.
    Sigmoid,
    /// `ln(1 + eˣ)`.
    Softplus,
    /// No activation.
    Identity,
}

impl Activation {
    /// Apply the activation.
    pub fn apply(self, b: &mut Builder, x: NodeId) -> Built {
        let u = match self {
            Activation::Tanh => UnaryOp::Tanh,
            Activation::Relu => UnaryOp::Relu,
            Activation::Gelu => UnaryOp::Gelu,
            Activation::Sigmoid => UnaryOp::Sigmoid,
            Activation::Softplus => UnaryOp::Softplus,
            Activation::Identity => return Ok(x),
        };
        b.unary(u, x)
    }
}

/// The affine layer `y = x Wᵀ + b` on the last axis of `x`: `x : [… , in]`, `W : [out, in]`,
/// `b : [out]` (broadcast over the leading axes) → `y : [… , out]`. Expanded as
/// `matmul(x, transpose(W)) + b`.
pub fn linear(b: &mut Builder, x: NodeId, w: NodeId, bias: Option<NodeId>) -> Built {
    let wt = b.transpose(w)?;
    let y = b.matmul(x, wt)?;
    match bias {
        Some(bias) => b.add(y, bias),
        None => Ok(y),
    }
}

/// A multilayer perceptron on the last axis of `x` whose weights are read from the parameter
/// buffer starting at `param_offset`: for each consecutive pair `(in, out)` of `widths`,
/// `W : [out, in]` (row-major) followed by `b : [out]` — the layout of
/// `pnode_runtime::problems::Mlp`. Hidden layers apply `activation`, the last layer is affine.
/// Returns the output and the parameter offset after the last layer.
///
/// ```
/// use pnode_ir::{Builder, Layout, layers::{Activation, mlp_param_len}};
/// assert_eq!(mlp_param_len(&[2, 16, 16, 2]), 354);
/// let mut b = Builder::new(Layout::new(8, 354)); // state [4, 2], a 2-16-16-2 MLP
/// let u = b.state(0, [4, 2])?;
/// let (y, used) = b.mlp(u, &[2, 16, 16, 2], 0, Activation::Tanh)?;
/// assert_eq!(used, 354);
/// let y = b.flatten(y)?;
/// let rhs = b.finish_rhs(&[y])?;
/// let vjp_text = pnode_ir::vjp(&rhs)?.to_string();
/// assert!(vjp_text.contains("matmul"));
/// # Ok::<(), pnode_ir::Error>(())
/// ```
pub fn mlp(
    b: &mut Builder,
    x: NodeId,
    widths: &[usize],
    param_offset: usize,
    activation: Activation,
) -> Result<(NodeId, usize), ShapeError> {
    if widths.len() < 2 {
        let s = b.shape(x)?.clone();
        return Err(crate::shape::invalid(
            "mlp",
            &s,
            format!("needs at least two widths, got {widths:?}"),
        ));
    }
    let mut h = x;
    let mut off = param_offset;
    let layers = widths.len() - 1;
    for (k, pair) in widths.windows(2).enumerate() {
        let (n_in, n_out) = (pair[0], pair[1]);
        let w = b.param(off, [n_out, n_in])?;
        off += n_out * n_in;
        let bias = b.param(off, [n_out])?;
        off += n_out;
        h = linear(b, h, w, Some(bias))?;
        if k + 1 < layers {
            h = activation.apply(b, h)?;
        }
    }
    Ok((h, off))
}

/// Number of parameters of [`mlp`] with these widths: `Σ (out·in + out)`.
pub fn mlp_param_len(widths: &[usize]) -> usize {
    widths.windows(2).map(|p| p[1] * p[0] + p[1]).sum()
}

impl Builder {
    /// The affine layer `x Wᵀ + b`; see [`linear`].
    pub fn linear(&mut self, x: NodeId, w: NodeId, bias: Option<NodeId>) -> Built {
        linear(self, x, w, bias)
    }

    /// A multilayer perceptron with weights from the parameter buffer; see [`mlp`].
    pub fn mlp(
        &mut self,
        x: NodeId,
        widths: &[usize],
        param_offset: usize,
        activation: Activation,
    ) -> Result<(NodeId, usize), ShapeError> {
        mlp(self, x, widths, param_offset, activation)
    }
}
