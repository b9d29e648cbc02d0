//! The arena: nodes with typed ids, operations, constants, hash-consing.
//!
//! A [`Graph`] is a vector of [`Node`]s; a node's inputs always have smaller ids, so the arena
//! order is a topological order and iteration is deterministic. Nodes are *hash-consed*: adding
//! an `(op, inputs)` pair that already exists returns the existing id, which is the IR's
//! common-subexpression elimination. The lookup table is used only for that lookup, never
//! iterated.

use crate::shape::Shape;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The id of a node in its [`Graph`] (an index into the arena).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The arena index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// One of the flat input buffers a function reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Buffer {
    /// The state `u`.
    State,
    /// The parameters `θ`.
    Param,
    /// A state tangent `v` (read by JVP functions).
    Tangent,
    /// An output cotangent `w` (read by VJP functions).
    Cotangent,
}

impl Buffer {
    /// The short name used by the printer: `u`, `p`, `v`, `w`.
    pub fn short(self) -> &'static str {
        match self {
            Buffer::State => "u",
            Buffer::Param => "p",
            Buffer::Tangent => "v",
            Buffer::Cotangent => "w",
        }
    }
}

impl fmt::Display for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Buffer::State => "state",
            Buffer::Param => "parameter",
            Buffer::Tangent => "tangent",
            Buffer::Cotangent => "cotangent",
        };
        f.write_str(name)
    }
}

/// An `f64` compared and hashed by its bits (so constants can be hash-consed).
#[derive(Debug, Clone, Copy)]
pub struct Real(pub f64);

impl PartialEq for Real {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for Real {}
impl Hash for Real {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

fn check_const_shape(shape: &Shape) -> Result<(), crate::ShapeError> {
    if shape.rank() > crate::shape::MAX_RANK {
        return Err(crate::ShapeError::RankTooHigh {
            op: "const",
            rank: shape.rank(),
        });
    }
    if shape.checked_len().is_none() {
        return Err(crate::ShapeError::TooLarge {
            op: "const",
            shape: shape.clone(),
        });
    }
    Ok(())
}

/// A dense row-major `f64` tensor (a constant of the IR).
#[derive(Debug, Clone)]
pub struct Tensor {
    shape: Shape,
    data: Vec<f64>,
}

impl Tensor {
    /// A tensor from its shape and row-major data, or an error if the lengths differ.
    pub fn new(shape: impl Into<Shape>, data: Vec<f64>) -> Result<Self, crate::ShapeError> {
        let shape = shape.into();
        check_const_shape(&shape)?;
        if shape.len() != data.len() {
            return Err(crate::ShapeError::ConstLength {
                shape,
                found: data.len(),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A scalar.
    pub fn scalar(x: f64) -> Self {
        Tensor {
            shape: Shape::scalar(),
            data: vec![x],
        }
    }

    /// A tensor with every element equal to `x`, or an error if the shape is too large.
    pub fn filled(shape: impl Into<Shape>, x: f64) -> Result<Self, crate::ShapeError> {
        let shape = shape.into();
        check_const_shape(&shape)?;
        let data = vec![x; shape.len()];
        Ok(Tensor { shape, data })
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The row-major data.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// Whether every element is exactly `x` (bitwise, so `-0.0` is not `0.0`).
    pub fn is_all(&self, x: f64) -> bool {
        self.data.iter().all(|d| d.to_bits() == x.to_bits())
    }
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape
            && self.data.len() == other.data.len()
            && self
                .data
                .iter()
                .zip(&other.data)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}
impl Eq for Tensor {}
impl Hash for Tensor {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.shape.hash(state);
        for d in &self.data {
            d.to_bits().hash(state);
        }
    }
}

/// Elementwise unary operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `−x`.
    Neg,
    /// `tanh x`.
    Tanh,
    /// `σ(x) = 1 / (1 + e^{−x})`.
    Sigmoid,
    /// `max(x, 0)`.
    Relu,
    /// `ln(1 + eˣ)`, computed as `max(x, 0) + ln(1 + e^{−|x|})`.
    Softplus,
    /// `x Φ(x)` (exact, erf form; Hendrycks and Gimpel, "Gaussian error linear units",
    /// arXiv:1606.08415).
    Gelu,
    /// `eˣ`.
    Exp,
    /// `ln x`.
    Log,
    /// `sin x`.
    Sin,
    /// `cos x`.
    Cos,
    /// `√x`.
    Sqrt,
    /// `|x|`.
    Abs,
    /// Heaviside step `H(x)`: 1 for `x > 0`, else 0 (the derivative of relu; `H(0) = 0`).
    Step,
    /// `sign x` ∈ {−1, 0, 1} (the derivative of `|x|`).
    Sign,
    /// The standard normal CDF `Φ(x)`.
    NormCdf,
    /// `xⁿ` for a constant integer `n`.
    Powi(i32),
    /// `xᵃ` for a constant real `a`.
    Powf(Real),
}

/// Elementwise binary operations (NumPy trailing broadcasting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// `aᵇ` (general power).
    Pow,
}

/// Convolution hyper-parameters (square stride and zero padding on both spatial axes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvParams {
    /// Stride (≥ 1).
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
}

/// An operation; the inputs of a node are its operands, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// The time `t` (a scalar). No operands.
    Time,
    /// A shaped view of `buffer` starting at `offset` (row-major, contiguous). No operands.
    Input {
        /// Which buffer.
        buffer: Buffer,
        /// First element read.
        offset: usize,
        /// Shape of the view.
        shape: Shape,
    },
    /// A constant tensor. No operands.
    Const(Tensor),
    /// Elementwise unary.
    Unary(UnaryOp),
    /// Elementwise binary with broadcasting.
    Binary(BinaryOp),
    /// `a · b` contracting the last axis of `a` with the first axis of `b` (see
    /// [`crate::Builder::matmul`]).
    MatMul,
    /// Transpose of a rank-2 tensor.
    Transpose,
    /// `x[i₀, …, i_{k−1}]`: the sub-tensor at fixed leading indices.
    Index(Vec<usize>),
    /// `x[…, start..end, …]` along `axis`.
    Slice {
        /// The axis.
        axis: usize,
        /// First index kept.
        start: usize,
        /// One past the last index kept.
        end: usize,
    },
    /// Zero padding along `axis` (the adjoint of [`Op::Slice`]).
    Pad {
        /// The axis.
        axis: usize,
        /// Zeros before.
        before: usize,
        /// Zeros after.
        after: usize,
    },
    /// Place the operand at leading indices `index` of a zero tensor of `shape` (the adjoint of
    /// [`Op::Index`]).
    Scatter {
        /// Leading indices.
        index: Vec<usize>,
        /// Shape of the result.
        shape: Shape,
    },
    /// Sum of all elements (`None`, a scalar) or along one axis (which is removed).
    Sum(Option<usize>),
    /// Concatenation of the operands along `axis`.
    Concat(usize),
    /// Same data, new shape.
    Reshape(Shape),
    /// Broadcast to a shape (NumPy trailing rule).
    Broadcast(Shape),
    /// Sum over broadcast axes down to `shape` (the adjoint of [`Op::Broadcast`]).
    SumTo(Shape),
    /// 2-D cross-correlation of `x` (`[C,H,W]` or `[N,C,H,W]`) with `w` (`[Co,C,kh,kw]`).
    Conv2d(ConvParams),
    /// `x̄ = Σ ḡ w`, the adjoint of [`Op::Conv2d`] in `x` (a transposed convolution); operands
    /// `(ḡ, w)`, result of shape `input`.
    Conv2dBackwardInput {
        /// Convolution hyper-parameters.
        conv: ConvParams,
        /// Shape of `x`.
        input: Shape,
    },
    /// `w̄ = Σ ḡ x`, the adjoint of [`Op::Conv2d`] in `w`; operands `(x, ḡ)`, result of shape
    /// `kernel`.
    Conv2dBackwardWeight {
        /// Convolution hyper-parameters.
        conv: ConvParams,
        /// Shape of `w`.
        kernel: Shape,
    },
    /// Group normalization without affine part: `x̂ = (x − μ_g)/√(σ²_g + ε)` over each group
    /// of `C/groups` channels (and all spatial positions) of each sample.
    GroupNorm {
        /// Number of groups (divides `C`).
        groups: usize,
        /// `ε`.
        eps: Real,
    },
    /// `J(x) g` where `J` is the (symmetric) Jacobian of [`Op::GroupNorm`] at `x`: both its
    /// JVP and its VJP. Operands `(x, g)`.
    GroupNormBackward {
        /// Number of groups.
        groups: usize,
        /// `ε`.
        eps: Real,
    },
    /// `y = g_k(x; φ_k)`: the model's opaque layer `layer` (computed outside pnode, a libtorch
    /// module say; see `pnode_runtime::opaque`). Operand `x`; result of shape `output`. Its
    /// parameters `φ_k` are not IR values: they are the layer's segment of `θ` after the
    /// declared parameters, which only the code that calls the layer sees, so an opaque node
    /// is always *active* (it depends on `θ`).
    Opaque {
        /// Index of the layer in the model.
        layer: usize,
        /// Shape of `y`.
        output: Shape,
    },
    /// `ẏ = ∂g_k/∂x ẋ`, the JVP of [`Op::Opaque`] in its input; operands `(x, ẋ)`.
    OpaqueJvp {
        /// Index of the layer.
        layer: usize,
        /// Shape of `ẏ`.
        output: Shape,
    },
    /// `x̄ = (∂g_k/∂x)ᵀ ȳ`, the VJP of [`Op::Opaque`]; operands `(x, ȳ)`, result of the shape of
    /// `x`. Evaluating it also accumulates `φ̄_k += (∂g_k/∂φ)ᵀ ȳ` into the layer's segment of
    /// the parameter gradient, so a VJP function keeps these nodes as effects
    /// ([`crate::Function::effects`]) even where `x̄` is not needed.
    OpaqueVjp {
        /// Index of the layer.
        layer: usize,
        /// Shape of `ȳ` (the layer's output).
        output: Shape,
    },
}

impl Op {
    /// The printer's mnemonic.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Time => "time",
            Op::Input { .. } => "input",
            Op::Const(_) => "const",
            Op::Unary(u) => match u {
                UnaryOp::Neg => "neg",
                UnaryOp::Tanh => "tanh",
                UnaryOp::Sigmoid => "sigmoid",
                UnaryOp::Relu => "relu",
                UnaryOp::Softplus => "softplus",
                UnaryOp::Gelu => "gelu",
                UnaryOp::Exp => "exp",
                UnaryOp::Log => "log",
                UnaryOp::Sin => "sin",
                UnaryOp::Cos => "cos",
                UnaryOp::Sqrt => "sqrt",
                UnaryOp::Abs => "abs",
                UnaryOp::Step => "step",
                UnaryOp::Sign => "sign",
                UnaryOp::NormCdf => "normcdf",
                UnaryOp::Powi(_) => "powi",
                UnaryOp::Powf(_) => "powf",
            },
            Op::Binary(b) => match b {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
                BinaryOp::Div => "div",
                BinaryOp::Pow => "pow",
            },
            Op::MatMul => "matmul",
            Op::Transpose => "transpose",
            Op::Index(_) => "index",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Scatter { .. } => "scatter",
            Op::Sum(_) => "sum",
            Op::Concat(_) => "concat",
            Op::Reshape(_) => "reshape",
            Op::Broadcast(_) => "broadcast",
            Op::SumTo(_) => "sum_to",
            Op::Conv2d(_) => "conv2d",
            Op::Conv2dBackwardInput { .. } => "conv2d_backward_input",
            Op::Conv2dBackwardWeight { .. } => "conv2d_backward_weight",
            Op::GroupNorm { .. } => "group_norm",
            Op::GroupNormBackward { .. } => "group_norm_backward",
            Op::Opaque { .. } => "opaque",
            Op::OpaqueJvp { .. } => "opaque_jvp",
            Op::OpaqueVjp { .. } => "opaque_vjp",
        }
    }

    /// Whether the node is a leaf (time, input read or constant).
    pub fn is_leaf(&self) -> bool {
        matches!(self, Op::Time | Op::Input { .. } | Op::Const(_))
    }

    /// The opaque layer a node calls ([`Op::Opaque`], [`Op::OpaqueJvp`], [`Op::OpaqueVjp`]).
    pub fn opaque_layer(&self) -> Option<usize> {
        match self {
            Op::Opaque { layer, .. }
            | Op::OpaqueJvp { layer, .. }
            | Op::OpaqueVjp { layer, .. } => Some(*layer),
            _ => None,
        }
    }
}

/// A node of the arena: an operation, its operands and its inferred shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// The operands (all with smaller ids).
    pub inputs: Vec<NodeId>,
    /// The result's static shape.
    pub shape: Shape,
}

/// The arena of nodes, hash-consed.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    index: HashMap<(Op, Vec<NodeId>), NodeId>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nodes in arena (topological) order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// A node, if `id` belongs to this graph.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }

    /// The node `id`; callers inside the crate only pass ids they checked.
    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// The constant a node holds, if it is a constant.
    pub fn constant(&self, id: NodeId) -> Option<&Tensor> {
        match &self.get(id)?.op {
            Op::Const(t) => Some(t),
            _ => None,
        }
    }

    /// The existing node for `(op, inputs)`, if any.
    pub(crate) fn lookup(&self, op: &Op, inputs: &[NodeId]) -> Option<NodeId> {
        // The key is owned; build it only for the lookup (cheap relative to building a node).
        self.index.get(&(op.clone(), inputs.to_vec())).copied()
    }

    /// Add a node (the caller has checked shapes and that no equal node exists).
    pub(crate) fn push(&mut self, op: Op, inputs: Vec<NodeId>, shape: Shape) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        self.index.insert((op.clone(), inputs.clone()), id);
        self.nodes.push(Node { op, inputs, shape });
        id
    }

    /// The nodes reachable from `roots` (a mask over the arena).
    pub fn reachable(&self, roots: &[NodeId]) -> Vec<bool> {
        let mut live = vec![false; self.nodes.len()];
        for r in roots {
            if let Some(l) = live.get_mut(r.index()) {
                *l = true;
            }
        }
        for i in (0..self.nodes.len()).rev() {
            if live[i] {
                for inp in &self.nodes[i].inputs {
                    live[inp.index()] = true;
                }
            }
        }
        live
    }

    /// A copy holding only the nodes marked in `keep` (in the same relative order), and the
    /// map from old ids to new ids.
    pub(crate) fn compact(&self, keep: &[bool]) -> (Graph, Vec<Option<NodeId>>) {
        let mut g = Graph::new();
        let mut map = vec![None; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            if keep[i] {
                let inputs = node
                    .inputs
                    .iter()
                    .map(|x| map[x.index()].expect("inputs of a kept node are kept"))
                    .collect();
                map[i] = Some(g.push(node.op.clone(), inputs, node.shape.clone()));
            }
        }
        (g, map)
    }
}
