//! Functions: a graph, its outputs and the layout of the flat input buffers it reads.

use crate::graph::{Buffer, Graph, NodeId};
use crate::shape::Shape;

/// Lengths of the four flat input buffers a function may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Layout {
    /// Length of the state `u`.
    pub state: usize,
    /// Length of the parameters `θ`.
    pub param: usize,
    /// Length of the tangent `v` (0 unless the function is a JVP).
    pub tangent: usize,
    /// Length of the cotangent `w` (0 unless the function is a VJP).
    pub cotangent: usize,
}

impl Layout {
    /// A layout for an RHS with `state` states and `param` parameters.
    pub fn new(state: usize, param: usize) -> Self {
        Layout {
            state,
            param,
            tangent: 0,
            cotangent: 0,
        }
    }

    /// The length of one buffer.
    pub fn len(&self, buffer: Buffer) -> usize {
        match buffer {
            Buffer::State => self.state,
            Buffer::Param => self.param,
            Buffer::Tangent => self.tangent,
            Buffer::Cotangent => self.cotangent,
        }
    }
}

/// A function of `(t, u, θ[, v | w])` with one or more shaped outputs.
///
/// A function holds only the nodes reachable from its outputs (dead nodes are dropped when it
/// is made), in arena order. An RHS function's outputs, flattened and concatenated, are
/// `du/dt`.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    graph: Graph,
    outputs: Vec<NodeId>,
    effects: Vec<NodeId>,
    layout: Layout,
}

impl PartialEq for Graph {
    fn eq(&self, other: &Self) -> bool {
        self.nodes() == other.nodes()
    }
}

impl Function {
    /// The function with `outputs` over `graph`, keeping only live nodes.
    pub(crate) fn new(
        graph: &Graph,
        outputs: &[NodeId],
        effects: &[NodeId],
        layout: Layout,
    ) -> Self {
        let roots: Vec<NodeId> = outputs.iter().chain(effects).copied().collect();
        let keep = graph.reachable(&roots);
        let (graph, map) = graph.compact(&keep);
        let remap = |ids: &[NodeId]| -> Vec<NodeId> {
            ids.iter()
                .filter_map(|o| map.get(o.index()).copied().flatten())
                .collect()
        };
        let (outputs, mut effects) = (remap(outputs), remap(effects));
        effects.sort();
        effects.dedup();
        Function {
            graph,
            outputs,
            effects,
            layout,
        }
    }

    /// The graph (only live nodes).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The output nodes.
    pub fn outputs(&self) -> &[NodeId] {
        &self.outputs
    }

    /// Nodes kept for their effect rather than their value (the VJPs of opaque layers, which
    /// accumulate the layers' parameter gradients), in arena order. Executors evaluate every
    /// node of the graph, so they run these too.
    pub fn effects(&self) -> &[NodeId] {
        &self.effects
    }

    /// The opaque layers the function calls (indices, ascending, without repeats).
    pub fn opaque_layers(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .nodes()
            .iter()
            .filter_map(|n| n.op.opaque_layer())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The input-buffer layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The shapes of the outputs.
    pub fn output_shapes(&self) -> Vec<Shape> {
        self.outputs
            .iter()
            .map(|o| self.graph.node(*o).shape.clone())
            .collect()
    }

    /// Total number of output elements (the length of the flat output buffer).
    pub fn output_len(&self) -> usize {
        self.outputs
            .iter()
            .map(|o| self.graph.node(*o).shape.len())
            .sum()
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.graph.len()
    }
}
