//! Names: the symbol table, the order in which constants and `let`s are lowered (their
//! dependencies, cycles), and which definitions are used.

use super::codes;
use super::exprs::error_at;
use super::layers::LayerDef;
use crate::graph::{NodeId, Tensor};
use crate::shape::Shape;
use pnode_grammar::Diagnostic;
use pnode_grammar::ast::{
    Arg, Decl, Expr, ExprKind, Index, IndexItem, Item, Layer, Let, Model, Span,
};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

/// What a name refers to (an index into the matching table of [`Scope`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Sym {
    State(usize),
    Param(usize),
    Const(usize),
    Layer(usize),
    Let(usize),
}

impl Sym {
    /// `state`, `parameter`, …
    pub fn kind(self) -> &'static str {
        match self {
            Sym::State(_) => "state",
            Sym::Param(_) => "parameter",
            Sym::Const(_) => "constant",
            Sym::Layer(_) => "layer",
            Sym::Let(_) => "`let` value",
        }
    }
}

/// A `state` item.
pub(super) struct StateInfo<'m> {
    pub decl: &'m Decl,
    /// `None` when the declared shape is invalid (uses are then silent errors).
    pub shape: Option<Shape>,
    pub offset: usize,
}

/// A `param` item.
pub(super) struct ParamInfo<'m> {
    pub decl: &'m Decl,
    pub shape: Option<Shape>,
    pub offset: usize,
}

/// A `const` item.
pub(super) struct ConstInfo<'m> {
    pub decl: &'m Decl,
    pub value: Option<Tensor>,
    /// The value's node in the constants' builder and in the model's (indexed by the
    /// [`Mode`](super::exprs::Mode) that lowers into each), so that a large constant is
    /// copied and hashed once per builder, not once per use.
    pub nodes: [Cell<Option<NodeId>>; 2],
}

/// A `layer` item.
pub(super) struct LayerInfo<'m> {
    pub layer: &'m Layer,
    pub def: Option<LayerDef>,
    /// `init = data(..)`: the file holding all the layer's parameters.
    pub init: Option<super::program::DataSource>,
    pub offset: usize,
}

/// A `let` item.
pub(super) struct LetInfo<'m> {
    pub def: &'m Let,
    pub node: Cell<Option<NodeId>>,
}

/// Every definition of the model.
#[derive(Default)]
pub(super) struct Scope<'m> {
    names: HashMap<&'m str, Sym>,
    order: Vec<&'m str>,
    pub states: Vec<StateInfo<'m>>,
    pub params: Vec<ParamInfo<'m>>,
    pub consts: Vec<ConstInfo<'m>>,
    pub layers: Vec<LayerInfo<'m>>,
    pub lets: Vec<LetInfo<'m>>,
    /// Suggestions already made (they are capped, as each costs a scan of every name).
    suggestions: Cell<usize>,
}

impl<'m> Scope<'m> {
    /// The symbol table of `model`; the first definition of a name wins (the parser reports
    /// duplicates). Defining `t` is an error.
    pub fn collect(model: &'m Model, diags: &mut Vec<Diagnostic>) -> Self {
        let mut s = Scope::default();
        for item in &model.items {
            let (name, span, sym) = match item {
                Item::Decl(d) => {
                    let sym = match d.kind {
                        pnode_grammar::DeclKind::State => {
                            s.states.push(StateInfo {
                                decl: d,
                                shape: None,
                                offset: 0,
                            });
                            Sym::State(s.states.len() - 1)
                        }
                        pnode_grammar::DeclKind::Param => {
                            s.params.push(ParamInfo {
                                decl: d,
                                shape: None,
                                offset: 0,
                            });
                            Sym::Param(s.params.len() - 1)
                        }
                        pnode_grammar::DeclKind::Const => {
                            s.consts.push(ConstInfo {
                                decl: d,
                                value: None,
                                nodes: Default::default(),
                            });
                            Sym::Const(s.consts.len() - 1)
                        }
                    };
                    (d.name.name.as_str(), d.name.span, sym)
                }
                Item::Layer(l) => {
                    s.layers.push(LayerInfo {
                        layer: l,
                        def: None,
                        init: None,
                        offset: 0,
                    });
                    (
                        l.name.name.as_str(),
                        l.name.span,
                        Sym::Layer(s.layers.len() - 1),
                    )
                }
                Item::Let(l) => {
                    s.lets.push(LetInfo {
                        def: l,
                        node: Cell::new(None),
                    });
                    (
                        l.name.name.as_str(),
                        l.name.span,
                        Sym::Let(s.lets.len() - 1),
                    )
                }
                _ => continue,
            };
            if name == "t" {
                diags.push(
                    error_at(
                        codes::MISPLACED,
                        "`t` is the time and cannot be redefined",
                        span,
                        "reserved name",
                    )
                    .with_note("choose another name"),
                );
                continue;
            }
            if !s.names.contains_key(name) {
                s.names.insert(name, sym);
                s.order.push(name);
            }
        }
        s
    }

    /// "Did you mean" among `known`, for the first 64 unknown names.
    pub fn suggest<'k>(&self, name: &str, known: &[&'k str]) -> Option<&'k str> {
        let n = self.suggestions.get();
        if n >= 64 || known.len() > 10_000 {
            return None;
        }
        self.suggestions.set(n + 1);
        pnode_grammar::did_you_mean(name, known)
    }

    /// What `name` refers to.
    pub fn lookup(&self, name: &str) -> Option<Sym> {
        self.names.get(name).copied()
    }

    /// Every defined name, in source order.
    pub fn names(&self) -> impl Iterator<Item = &'m str> + '_ {
        self.order.iter().copied()
    }

    /// The names of the states.
    pub fn state_names(&self) -> Vec<&'m str> {
        self.states
            .iter()
            .map(|s| s.decl.name.name.as_str())
            .collect()
    }

    /// The names of the layers.
    pub fn layer_names(&self) -> Vec<&'m str> {
        self.layers
            .iter()
            .map(|l| l.layer.name.name.as_str())
            .collect()
    }
}

// ---- names referenced by expressions --------------------------------------------------------

/// Every name an expression refers to (bare names and callees), with its span; iterative.
pub(super) fn names_in<'e>(roots: &[&'e Expr], out: &mut Vec<(&'e str, Span)>) {
    let mut stack: Vec<&'e Expr> = roots.to_vec();
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Name(n) => out.push((n, e.span)),
            ExprKind::Array(items) => stack.extend(items),
            ExprKind::Call { func, args } => {
                out.push((&func.name, func.span));
                stack.extend(args.iter().map(|a| &a.value));
            }
            ExprKind::Index { base, index } => {
                stack.push(base);
                push_index(index, &mut stack);
            }
            ExprKind::Neg(x) => stack.push(x),
            ExprKind::Binary { lhs, rhs, .. } => {
                stack.push(lhs);
                stack.push(rhs);
            }
            ExprKind::Range { start, end } => {
                stack.push(start);
                stack.push(end);
            }
            _ => {}
        }
    }
}

/// The expressions of an index list.
pub(super) fn push_index<'e>(index: &'e Index, stack: &mut Vec<&'e Expr>) {
    for item in &index.items {
        match item {
            IndexItem::At(e) => stack.push(e),
            IndexItem::Slice { start, end, .. } => {
                stack.extend(start.iter());
                stack.extend(end.iter());
            }
        }
    }
}

/// The expressions of a declaration: dimensions and initial value.
pub(super) fn decl_exprs(d: &Decl) -> Vec<&Expr> {
    let mut v: Vec<&Expr> = d.shape.iter().flat_map(|s| s.dims.iter()).collect();
    v.push(&d.init);
    v
}

/// The values of a list of arguments.
pub(super) fn arg_exprs(args: &[Arg]) -> Vec<&Expr> {
    args.iter().map(|a| &a.value).collect()
}

/// The order in which to lower `n` definitions whose dependencies (indices among them) are
/// `deps`: dependencies first, source order otherwise (Kahn's algorithm). The members of
/// cycles come back in the second list.
pub(super) fn dependency_order(deps: &[Vec<usize>]) -> (Vec<usize>, Vec<usize>) {
    let n = deps.len();
    let mut indegree: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &j in d {
            users[j].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &u in &users[i] {
            indegree[u] -= 1;
            if indegree[u] == 0 {
                ready.insert(u);
            }
        }
    }
    let cyclic = (0..n).filter(|&i| indegree[i] > 0).collect();
    (order, cyclic)
}

/// The cycles among `remaining` (the second list of [`dependency_order`]: the members of
/// cycles and the definitions that depend on them): one per strongly connected component
/// that holds a cycle, as the path `s → … → s` (without repeating `s`) from its first member
/// `s` in source order, along the fewest edges; ordered by `s`. Linear time, no recursion.
pub(super) fn cycles(deps: &[Vec<usize>], remaining: &[usize]) -> Vec<Vec<usize>> {
    let n = deps.len();
    let mut live = vec![false; n];
    for &i in remaining {
        live[i] = true;
    }
    // Tarjan's algorithm with an explicit stack of (node, next edge).
    const NONE: usize = usize::MAX;
    let mut index = vec![NONE; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comp = vec![NONE; n];
    let mut comps: Vec<Vec<usize>> = Vec::new();
    let mut next = 0;
    for &root in remaining {
        if index[root] != NONE {
            continue;
        }
        let mut call = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(top) = call.last_mut() {
            let v = top.0;
            if let Some(&w) = deps[v].get(top.1) {
                top.1 += 1;
                if !live[w] {
                    continue;
                }
                if index[w] == NONE {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(u, _)) = call.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut members = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = comps.len();
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                comps.push(members);
            }
        }
    }
    let mut out = Vec::new();
    for (c, members) in comps.iter().enumerate() {
        let s = *members.iter().min().expect("a component has a member");
        if members.len() == 1 && !deps[s].contains(&s) {
            continue;
        }
        // Breadth-first from `s` inside the component until an edge leads back to `s`.
        let mut parent = std::collections::HashMap::from([(s, s)]);
        let mut queue = std::collections::VecDeque::from([s]);
        let mut last = s;
        'search: while let Some(v) = queue.pop_front() {
            for &w in &deps[v] {
                if w == s {
                    last = v;
                    break 'search;
                }
                if comp[w] == c && !parent.contains_key(&w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        let mut path = vec![last];
        while let Some(&p) = parent.get(path.last().expect("non-empty")) {
            if path.last() == Some(&p) {
                break;
            }
            path.push(p);
        }
        path.reverse();
        out.push(path);
    }
    out.sort_unstable_by_key(|p| p[0]);
    out
}

/// The indices of the definitions of kind `pick` that `exprs` refer to (deduplicated).
pub(super) fn deps_of(
    scope: &Scope,
    exprs: &[&Expr],
    pick: impl Fn(Sym) -> Option<usize>,
) -> Vec<usize> {
    let mut names = Vec::new();
    names_in(exprs, &mut names);
    let mut out: Vec<usize> = names
        .iter()
        .filter_map(|(n, _)| scope.lookup(n).and_then(&pick))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Warnings for parameters, layers, `let`s and constants that nothing uses: the uses are the
/// names in `roots` (equations, loss, declarations, layer arguments, options) and, transitively,
/// in the `let`s and constants they use.
pub(super) fn unused_warnings(scope: &Scope, roots: &[&Expr], diags: &mut Vec<Diagnostic>) {
    let mut used: HashSet<Sym> = HashSet::new();
    let mut names = Vec::new();
    names_in(roots, &mut names);
    let mut work: Vec<Sym> = names.iter().filter_map(|(n, _)| scope.lookup(n)).collect();
    while let Some(sym) = work.pop() {
        if !used.insert(sym) {
            continue;
        }
        let exprs: Vec<&Expr> = match sym {
            Sym::Let(i) => vec![&scope.lets[i].def.value],
            Sym::Const(i) => decl_exprs(scope.consts[i].decl),
            _ => continue,
        };
        let mut inner = Vec::new();
        names_in(&exprs, &mut inner);
        work.extend(inner.iter().filter_map(|(n, _)| scope.lookup(n)));
    }
    let mut warn = |sym: Sym, name: &str, span: Span, code: &'static str, what: &str| {
        if !used.contains(&sym) && scope.lookup(name) == Some(sym) && !name.starts_with('_') {
            diags.push(
                Diagnostic::warning(format!("unused {what} `{name}`"))
                    .with_code(code)
                    .with_primary(span, "never used")
                    .with_note("remove it, or start its name with `_` to silence this warning"),
            );
        }
    };
    for (i, p) in scope.params.iter().enumerate() {
        warn(
            Sym::Param(i),
            &p.decl.name.name,
            p.decl.name.span,
            codes::UNUSED_PARAM,
            "parameter",
        );
    }
    for (i, l) in scope.layers.iter().enumerate() {
        warn(
            Sym::Layer(i),
            &l.layer.name.name,
            l.layer.name.span,
            codes::UNUSED_LAYER,
            "layer",
        );
    }
    for (i, l) in scope.lets.iter().enumerate() {
        warn(
            Sym::Let(i),
            &l.def.name.name,
            l.def.name.span,
            codes::UNUSED_LET,
            "`let`",
        );
    }
    for (i, c) in scope.consts.iter().enumerate() {
        warn(
            Sym::Const(i),
            &c.decl.name.name,
            c.decl.name.span,
            codes::UNUSED_CONST,
            "constant",
        );
    }
}
