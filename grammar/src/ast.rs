//! The syntax tree of a `.pode` file.
//!
//! Every node carries the byte [`Span`] of the source text it was parsed from. The tree is
//! purely syntactic: names are not resolved, shapes are not checked and option values are kept
//! as general [`Expr`] trees, so that the IR can decide which options fit which method.
//!
//! `PartialEq` compares spans too; [`Model::without_spans`] (and the same method on
//! [`Expr`]) gives a copy with every span zeroed, for comparisons that ignore positions, such as
//! `parse(print(ast)) == ast`.

/// A half-open byte range `start..end` into the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span covers no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A name with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The name as written.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// One model: the whole file.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The comment lines directly above the `model` header, without their `#` and one space.
    pub doc: Vec<String>,
    /// The model's name (empty, with an empty span, when the header is missing).
    pub name: Ident,
    /// Every other item, in source order.
    pub items: Vec<Item>,
    /// The whole file.
    pub span: Span,
}

/// A top-level item other than the `model` header.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `state …`, `param …` or `const …`.
    Decl(Decl),
    /// `layer net = mlp(…)`.
    Layer(Layer),
    /// `let v = …`.
    Let(Let),
    /// `d(u)/dt = …` or `d(u[0])/dt = …`.
    Equation(Equation),
    /// `solve { … }` or `train { … }`.
    Block(Block),
    /// `loss = …`.
    Loss(Loss),
}

/// Which kind of declaration a [`Decl`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeclKind {
    /// `state`: part of the ODE's state vector; the flat state concatenates states in order.
    State,
    /// `param`: learnable.
    Param,
    /// `const`: fixed.
    Const,
}

impl DeclKind {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            DeclKind::State => "state",
            DeclKind::Param => "param",
            DeclKind::Const => "const",
        }
    }
}

/// `state u[2] = [1.0, 1.0]`, `param W[2, 2] = normal(0.1)`, `const k1 = 0.04`.
#[derive(Clone, Debug, PartialEq)]
pub struct Decl {
    /// State, parameter or constant.
    pub kind: DeclKind,
    /// The declared name.
    pub name: Ident,
    /// The shape `[d0, d1, …]`; `None` for a scalar.
    pub shape: Option<Shape>,
    /// The value or initializer after `=`: a literal, `zeros`, `normal(0.1)`, `data("x.npy")`…
    pub init: Expr,
    /// The whole item.
    pub span: Span,
}

/// A shape `[d0, d1, …]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// The dimensions (usually integer literals or constant names).
    pub dims: Vec<Expr>,
    /// From `[` to `]`.
    pub span: Span,
}

/// `layer net = mlp([2, 50, 2], activation = tanh)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The layer's name, used as a function in expressions.
    pub name: Ident,
    /// The layer kind: `mlp`, `linear`, `dense`, `conv2d`, `groupnorm`.
    pub kind: Ident,
    /// The constructor's arguments.
    pub args: Vec<Arg>,
    /// The whole item.
    pub span: Span,
}

/// `let v = u ^ 3`.
#[derive(Clone, Debug, PartialEq)]
pub struct Let {
    /// The local name.
    pub name: Ident,
    /// Its value.
    pub value: Expr,
    /// The whole item.
    pub span: Span,
}

/// `d(u)/dt = rhs` or, for some components, `d(u[0])/dt = rhs`.
#[derive(Clone, Debug, PartialEq)]
pub struct Equation {
    /// The state whose derivative is given.
    pub state: Ident,
    /// The components, for a component equation.
    pub index: Option<Index>,
    /// The right-hand side.
    pub rhs: Expr,
    /// The whole item.
    pub span: Span,
}

/// Which block a [`Block`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// `solve { … }`: integrator, time grid, outputs, checkpointing.
    Solve,
    /// `train { … }`: optimizer and training loop.
    Train,
}

impl BlockKind {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            BlockKind::Solve => "solve",
            BlockKind::Train => "train",
        }
    }
}

/// `solve { key = value … }` or `train { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Which block.
    pub kind: BlockKind,
    /// The options in source order.
    pub options: Vec<OptionEntry>,
    /// The whole item.
    pub span: Span,
}

impl Block {
    /// The option named `key`, if given.
    pub fn get(&self, key: &str) -> Option<&OptionEntry> {
        self.options.iter().find(|o| o.key.name == key)
    }
}

/// `key = value` inside a block; the value may be a range `a .. b`.
#[derive(Clone, Debug, PartialEq)]
pub struct OptionEntry {
    /// The option's name.
    pub key: Ident,
    /// Its value.
    pub value: Expr,
    /// From the key to the end of the value.
    pub span: Span,
}

/// `loss = mse(u, data("obs.csv"))`.
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    /// The loss expression.
    pub value: Expr,
    /// The whole item.
    pub span: Span,
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is (parentheses around it excluded).
    pub span: Span,
}

/// The kinds of expression. Parentheses leave no node: the printer puts back those needed.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal: digits only, `2`, `1000`.
    Int(u64),
    /// A real literal: with `.` or an exponent, `1.5`, `1e-3`, `2.5e+7`. Always finite, `≥ 0`.
    Float(f64),
    /// A byte size, `64MB`, `1.5GiB`.
    Bytes {
        /// The number before the unit.
        value: f64,
        /// The unit.
        unit: ByteUnit,
    },
    /// A string literal, escapes resolved.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// A name: a state, parameter, constant, `let`, layer, `t`, or a bare option value (`rk4`).
    Name(String),
    /// `[a, b, …]`.
    Array(Vec<Expr>),
    /// `f(a, key = b)`: a built-in function, a layer, or an option constructor.
    Call {
        /// The callee.
        func: Ident,
        /// Positional arguments first, then keyword arguments.
        args: Vec<Arg>,
    },
    /// `base[i, j:k, :]`.
    Index {
        /// What is indexed.
        base: Box<Expr>,
        /// The index list.
        index: Index,
    },
    /// `-x`.
    Neg(Box<Expr>),
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `start .. end` (only as an option value).
    Range {
        /// Start.
        start: Box<Expr>,
        /// End.
        end: Box<Expr>,
    },
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*` (elementwise)
    Mul,
    /// `/` (elementwise)
    Div,
    /// `@` (matrix product, same as `matmul(a, b)`)
    MatMul,
    /// `^` (elementwise power, right-associative)
    Pow,
}

impl BinOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::MatMul => "@",
            BinOp::Pow => "^",
        }
    }
}

/// Units of a byte size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteUnit {
    /// `B`
    B,
    /// `KB` = 10³ B
    Kb,
    /// `MB` = 10⁶ B
    Mb,
    /// `GB` = 10⁹ B
    Gb,
    /// `TB` = 10¹² B
    Tb,
    /// `KiB` = 2¹⁰ B
    Kib,
    /// `MiB` = 2²⁰ B
    Mib,
    /// `GiB` = 2³⁰ B
    Gib,
    /// `TiB` = 2⁴⁰ B
    Tib,
}

impl ByteUnit {
    /// Every unit, for parsing.
    pub const ALL: [ByteUnit; 9] = [
        ByteUnit::B,
        ByteUnit::Kb,
        ByteUnit::Mb,
        ByteUnit::Gb,
        ByteUnit::Tb,
        ByteUnit::Kib,
        ByteUnit::Mib,
        ByteUnit::Gib,
        ByteUnit::Tib,
    ];

    /// The unit as written.
    pub fn symbol(self) -> &'static str {
        match self {
            ByteUnit::B => "B",
            ByteUnit::Kb => "KB",
            ByteUnit::Mb => "MB",
            ByteUnit::Gb => "GB",
            ByteUnit::Tb => "TB",
            ByteUnit::Kib => "KiB",
            ByteUnit::Mib => "MiB",
            ByteUnit::Gib => "GiB",
            ByteUnit::Tib => "TiB",
        }
    }

    /// Bytes per unit.
    pub fn multiplier(self) -> f64 {
        match self {
            ByteUnit::B => 1.0,
            ByteUnit::Kb => 1e3,
            ByteUnit::Mb => 1e6,
            ByteUnit::Gb => 1e9,
            ByteUnit::Tb => 1e12,
            ByteUnit::Kib => 1024.0,
            ByteUnit::Mib => 1024.0 * 1024.0,
            ByteUnit::Gib => 1024.0 * 1024.0 * 1024.0,
            ByteUnit::Tib => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        }
    }
}

/// One argument of a call: positional (`name` is `None`) or keyword (`key = value`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The keyword, for a keyword argument.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
    /// The whole argument.
    pub span: Span,
}

/// An index list `[i, j:k, :]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Index {
    /// One entry per axis.
    pub items: Vec<IndexItem>,
    /// From `[` to `]`.
    pub span: Span,
}

/// One axis of an [`Index`].
#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// A single position `i`.
    At(Expr),
    /// A slice `start:end`, either bound optional (`:` is the whole axis).
    Slice {
        /// Inclusive start (default 0).
        start: Option<Expr>,
        /// Exclusive end (default the axis length).
        end: Option<Expr>,
        /// The whole slice.
        span: Span,
    },
}

// ---------------------------------------------------------------------------------------------
// Visiting spans
// ---------------------------------------------------------------------------------------------

/// Visits every span of a node mutably (used to zero or shift spans).
pub trait VisitSpans {
    /// Calls `f` on every span in the node, children included.
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span));
}

impl VisitSpans for Ident {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(&mut self.span);
    }
}

impl VisitSpans for Model {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(&mut self.span);
        self.name.visit_spans(f);
        for item in &mut self.items {
            item.visit_spans(f);
        }
    }
}

impl VisitSpans for Item {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        match self {
            Item::Decl(d) => {
                f(&mut d.span);
                d.name.visit_spans(f);
                if let Some(shape) = &mut d.shape {
                    f(&mut shape.span);
                    shape.dims.iter_mut().for_each(|e| e.visit_spans(f));
                }
                d.init.visit_spans(f);
            }
            Item::Layer(l) => {
                f(&mut l.span);
                l.name.visit_spans(f);
                l.kind.visit_spans(f);
                l.args.iter_mut().for_each(|a| a.visit_spans(f));
            }
            Item::Let(l) => {
                f(&mut l.span);
                l.name.visit_spans(f);
                l.value.visit_spans(f);
            }
            Item::Equation(e) => {
                f(&mut e.span);
                e.state.visit_spans(f);
                if let Some(index) = &mut e.index {
                    index.visit_spans(f);
                }
                e.rhs.visit_spans(f);
            }
            Item::Block(b) => {
                f(&mut b.span);
                for o in &mut b.options {
                    f(&mut o.span);
                    o.key.visit_spans(f);
                    o.value.visit_spans(f);
                }
            }
            Item::Loss(l) => {
                f(&mut l.span);
                l.value.visit_spans(f);
            }
        }
    }
}

impl VisitSpans for Arg {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(&mut self.span);
        if let Some(name) = &mut self.name {
            name.visit_spans(f);
        }
        self.value.visit_spans(f);
    }
}

impl VisitSpans for Index {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(&mut self.span);
        for item in &mut self.items {
            match item {
                IndexItem::At(e) => e.visit_spans(f),
                IndexItem::Slice { start, end, span } => {
                    f(span);
                    start
                        .iter_mut()
                        .chain(end.iter_mut())
                        .for_each(|e| e.visit_spans(f));
                }
            }
        }
    }
}

impl VisitSpans for Expr {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(&mut self.span);
        match &mut self.kind {
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bytes { .. }
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Name(_) => {}
            ExprKind::Array(items) => items.iter_mut().for_each(|e| e.visit_spans(f)),
            ExprKind::Call { func, args } => {
                func.visit_spans(f);
                args.iter_mut().for_each(|a| a.visit_spans(f));
            }
            ExprKind::Index { base, index } => {
                base.visit_spans(f);
                index.visit_spans(f);
            }
            ExprKind::Neg(e) => e.visit_spans(f),
            ExprKind::Binary { lhs, rhs, .. } => {
                lhs.visit_spans(f);
                rhs.visit_spans(f);
            }
            ExprKind::Range { start, end } => {
                start.visit_spans(f);
                end.visit_spans(f);
            }
        }
    }
}

impl Item {
    /// The span of the whole item.
    pub fn span(&self) -> Span {
        match self {
            Item::Decl(d) => d.span,
            Item::Layer(l) => l.span,
            Item::Let(l) => l.span,
            Item::Equation(e) => e.span,
            Item::Block(b) => b.span,
            Item::Loss(l) => l.span,
        }
    }
}

impl Model {
    /// The declarations of one kind (`state`, `param` or `const`), in source order. The flat
    /// state vector is the concatenation of the states in this order.
    pub fn decls(&self, kind: DeclKind) -> impl Iterator<Item = &Decl> {
        self.items.iter().filter_map(move |item| match item {
            Item::Decl(d) if d.kind == kind => Some(d),
            _ => None,
        })
    }

    /// The layers, in source order.
    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.items.iter().filter_map(|item| match item {
            Item::Layer(l) => Some(l),
            _ => None,
        })
    }

    /// The `let` definitions, in source order.
    pub fn lets(&self) -> impl Iterator<Item = &Let> {
        self.items.iter().filter_map(|item| match item {
            Item::Let(l) => Some(l),
            _ => None,
        })
    }

    /// The equations, in source order.
    pub fn equations(&self) -> impl Iterator<Item = &Equation> {
        self.items.iter().filter_map(|item| match item {
            Item::Equation(e) => Some(e),
            _ => None,
        })
    }

    /// The loss, if given.
    pub fn loss(&self) -> Option<&Loss> {
        self.items.iter().find_map(|item| match item {
            Item::Loss(l) => Some(l),
            _ => None,
        })
    }

    /// A copy with every span set to `0..0`, for comparisons that ignore positions.
    pub fn without_spans(&self) -> Model {
        let mut m = self.clone();
        m.visit_spans(&mut |s| *s = Span::default());
        m
    }

    /// The `solve { }` block, if any.
    pub fn solve(&self) -> Option<&Block> {
        self.block(BlockKind::Solve)
    }

    /// The `train { }` block, if any.
    pub fn train(&self) -> Option<&Block> {
        self.block(BlockKind::Train)
    }

    fn block(&self, kind: BlockKind) -> Option<&Block> {
        self.items.iter().find_map(|item| match item {
            Item::Block(b) if b.kind == kind => Some(b),
            _ => None,
        })
    }
}

impl Expr {
    /// The value of a number literal (integer or real), if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self.kind {
            ExprKind::Int(v) => Some(v as f64),
            ExprKind::Float(v) => Some(v),
            _ => None,
        }
    }

    /// The value of an integer literal, if this is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self.kind {
            ExprKind::Int(v) => Some(v),
            _ => None,
        }
    }

    /// The number of bytes of a byte size (`64MB` → 64 000 000), if this is one.
    pub fn as_bytes(&self) -> Option<f64> {
        match self.kind {
            ExprKind::Bytes { value, unit } => Some(value * unit.multiplier()),
            _ => None,
        }
    }

    /// The name, if this is a bare name (`rk4`, `u`, `t`).
    pub fn as_name(&self) -> Option<&str> {
        match &self.kind {
            ExprKind::Name(n) => Some(n),
            _ => None,
        }
    }

    /// A copy with every span set to `0..0`.
    pub fn without_spans(&self) -> Expr {
        let mut e = self.clone();
        e.visit_spans(&mut |s| *s = Span::default());
        e
    }
}
