//! One IR [`Function`] → the statements of a method body.
//!
//! Every node becomes a value ([`Val`]): a scalar expression (a `let` binding, an input element,
//! a literal), a view into an array (a local `[f64; N]`, a scratch buffer, an input buffer or a
//! constant table, at an offset) or a uniform fill. Views cost nothing: inputs, `reshape`,
//! `index` and contiguous slices alias their operand. Every kernel replays the interpreter's
//! loop (same operands, same accumulation order), so the results agree to the last bit
//! except possibly the sign of a zero sum.

use crate::index::{
    Idx, bstrides, flat_elementwise, float, lin, loops, loops_named, split_axis, strides,
};
use crate::{Error, Options};
use pnode_ir::{BinaryOp, Function, Node, Op, Shape, UnaryOp};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// A node's value in generated code.
#[derive(Debug, Clone)]
enum Val {
    /// A scalar expression (an identifier, an input element or a literal).
    Scalar(TokenStream),
    /// Elements `base[offset .. offset + len]` of an indexable base.
    Array {
        base: TokenStream,
        offset: usize,
        len: usize,
    },
    /// `len` copies of one literal (uniform constants, zeros).
    Fill { lit: TokenStream, len: usize },
    /// An output concatenation written part by part straight into the output buffer.
    Parts(Vec<Val>),
    /// The transpose `[rows, cols]` of `inner` (`[cols, rows]`), not materialized: only matrix
    /// products read it (as their left operand), with swapped strides.
    Transposed { inner: Box<Val>, rows: usize },
    /// An elementwise expression of the flat loop index `i`, inlined into its one consumer
    /// (an elementwise operation of the same length) instead of stored.
    Lazy { expr: TokenStream, len: usize },
}

impl Val {
    fn len(&self) -> usize {
        match self {
            Val::Scalar(_) => 1,
            Val::Array { len, .. } | Val::Fill { len, .. } => *len,
            Val::Parts(p) => p.iter().map(Val::len).sum(),
            Val::Transposed { inner, .. } => inner.len(),
            Val::Lazy { len, .. } => *len,
        }
    }
}

/// Which helper functions the generated code calls.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Helpers {
    pub(crate) sigmoid: bool,
    pub(crate) softplus: bool,
}

/// A scratch buffer the struct must hold: field name and length.
pub(crate) type Scratch = (syn::Ident, usize);

/// Where output `k` goes: a buffer identifier and the offset in it.
pub(crate) struct Dest {
    pub(crate) buf: syn::Ident,
    pub(crate) offset: usize,
    /// Length of the whole buffer (to write `buf.copy_from_slice` when an output fills it).
    pub(crate) buf_len: usize,
}

/// Emits the body of one function.
pub(crate) struct Emitter<'a> {
    f: &'a Function,
    opts: &'a Options,
    /// Prefix of scratch field names (`rhs`, `jvp`, `vjp`).
    prefix: &'static str,
    vals: Vec<Option<Val>>,
    stmts: Vec<TokenStream>,
    pub(crate) scratch: Vec<Scratch>,
    pub(crate) helpers: Helpers,
    /// Elements of the stack arrays so far.
    stack_used: usize,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(f: &'a Function, opts: &'a Options, prefix: &'static str) -> Self {
        Emitter {
            f,
            opts,
            prefix,
            vals: vec![None; f.node_count()],
            stmts: Vec::new(),
            scratch: Vec::new(),
            helpers: Helpers::default(),
            stack_used: 0,
        }
    }

    /// The statements computing every node and writing the outputs to `dests`.
    pub(crate) fn body(mut self, dests: &[Dest]) -> Result<(TokenStream, Self), Error> {
        let nodes = self.f.graph().nodes();
        let mut uses = vec![0usize; nodes.len()];
        // Transposes read only as the left operand of matrix products stay lazy: the product's
        // inner loop runs along the right operand's rows, which must stay contiguous.
        let mut only_matmul_lhs = vec![true; nodes.len()];
        for n in nodes {
            for (k, x) in n.inputs.iter().enumerate() {
                uses[x.index()] += 1;
                only_matmul_lhs[x.index()] &= n.op == Op::MatMul && k == 0;
            }
        }
        let outputs: Vec<usize> = self.f.outputs().iter().map(|o| o.index()).collect();
        let mut consumer = vec![None; nodes.len()];
        for (c, n) in nodes.iter().enumerate() {
            for x in &n.inputs {
                consumer[x.index()] = Some(c);
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            let is_output = outputs.contains(&i);
            let lazy = !is_output
                && uses[i] == 1
                && flat_elementwise(self.f, node, false)
                && consumer[i].is_some_and(|c| {
                    let cn = &nodes[c];
                    cn.shape.len() == node.shape.len() && flat_elementwise(self.f, cn, true)
                });
            let direct = is_output && uses[i] == 0;
            if node.op == Op::Transpose && only_matmul_lhs[i] && !is_output {
                let inner = Box::new(self.val(node, 0));
                self.vals[i] = Some(Val::Transposed {
                    inner,
                    rows: node.shape.dims()[0],
                });
                continue;
            }
            let v = self.node(i, node, direct, lazy)?;
            self.vals[i] = Some(v);
        }
        for (k, &o) in outputs.iter().enumerate() {
            let v = self.vals[o].clone().expect("outputs are nodes");
            self.write(&v, &dests[k]);
        }
        let stmts = std::mem::take(&mut self.stmts);
        Ok((quote!(#(#stmts)*), self))
    }

    fn val(&self, node: &Node, k: usize) -> Val {
        self.vals[node.inputs[k].index()]
            .clone()
            .expect("operands precede their node")
    }

    fn shape(&self, node: &Node, k: usize) -> &'a Shape {
        &self.f.graph().nodes()[node.inputs[k].index()].shape
    }

    /// Element `idx` of a value.
    fn elem(v: &Val, idx: &Idx) -> TokenStream {
        match v {
            Val::Scalar(e) => e.clone(),
            Val::Fill { lit, .. } => lit.clone(),
            // Only flat loops over `i` read lazy values (see `fusable`).
            Val::Lazy { expr, .. } => expr.clone(),
            Val::Array { base, offset, .. } => {
                let i = idx.plus(*offset).tokens();
                quote!(#base[#i])
            }
            Val::Parts(_) | Val::Transposed { .. } => {
                unreachable!("only outputs read concatenations, only products lazy transposes")
            }
        }
    }

    /// Element `[row, col]` of a matrix value with `cols` columns (`vars = [row, col]`),
    /// reading a lazy transpose through its operand.
    fn elem2(v: &Val, vars: &[Option<TokenStream>], cols: usize) -> TokenStream {
        match v {
            Val::Transposed { inner, rows } => Self::elem(inner, &lin(vars, &[1, *rows], 0)),
            _ => Self::elem(v, &lin(vars, &[cols, 1], 0)),
        }
    }

    /// A place expression of type `[f64]` (or an array) for a value: `x5[0..4]`, `[0.0; 3]`.
    fn place(v: &Val) -> TokenStream {
        match v {
            Val::Scalar(e) => quote!([#e]),
            Val::Fill { lit, len } => {
                let n = Literal::usize_unsuffixed(*len);
                quote!([#lit; #n])
            }
            Val::Array { base, offset, len } => {
                let (a, b) = (
                    Literal::usize_unsuffixed(*offset),
                    Literal::usize_unsuffixed(offset + len),
                );
                quote!(#base[#a..#b])
            }
            Val::Parts(_) | Val::Transposed { .. } | Val::Lazy { .. } => {
                unreachable!("only outputs read concatenations, only products lazy transposes")
            }
        }
    }

    /// A `&[f64]` expression for a value.
    fn slice(v: &Val) -> TokenStream {
        let p = Self::place(v);
        quote!(&#p)
    }

    /// Whether an array of `len` elements goes on the stack (within [`Options::stack_limit`]
    /// and, counting every array before it, [`Options::stack_budget`]); if so, it is counted.
    fn on_stack(&mut self, len: usize) -> bool {
        let ok = len <= self.opts.stack_limit && self.stack_used + len <= self.opts.stack_budget;
        if ok {
            self.stack_used += len;
        }
        ok
    }

    /// A fresh array for node `i` of `len` elements: a zeroed stack array, or a scratch
    /// buffer (zeroed only when `zero`).
    fn alloc(&mut self, i: usize, len: usize, zero: bool) -> (syn::Ident, Val) {
        let x = format_ident!("x{}", i);
        let n = Literal::usize_unsuffixed(len);
        if self.on_stack(len) {
            self.stmts.push(quote!(let mut #x = [0.0f64; #n];));
        } else {
            let field = format_ident!("{}_x{}", self.prefix, i);
            self.stmts.push(quote!(let #x = &mut self.#field[..];));
            if zero {
                self.stmts.push(quote!(#x.fill(0.0);));
            }
            self.scratch.push((field, len));
        }
        let v = Val::Array {
            base: quote!(#x),
            offset: 0,
            len,
        };
        (x, v)
    }

    /// `let xi = expr;`, a scalar.
    fn bind(&mut self, i: usize, e: TokenStream) -> Val {
        let x = format_ident!("x{}", i);
        self.stmts.push(quote!(let #x = #e;));
        Val::Scalar(quote!(#x))
    }

    fn unary(&mut self, u: UnaryOp, e: TokenStream) -> TokenStream {
        match u {
            UnaryOp::Neg => quote!(-#e),
            UnaryOp::Tanh => {
                let sp = &self.opts.special_path;
                quote!(#sp::tanh(#e))
            }
            UnaryOp::Sigmoid => {
                self.helpers.sigmoid = true;
                quote!(Self::sigmoid(#e))
            }
            UnaryOp::Relu => quote!(if #e > 0.0 { #e } else { 0.0 }),
            UnaryOp::Softplus => {
                self.helpers.softplus = true;
                quote!(Self::softplus(#e))
            }
            UnaryOp::Gelu => {
                let sp = &self.opts.special_path;
                quote!(#e * #sp::norm_cdf(#e))
            }
            UnaryOp::Exp => quote!(f64::exp(#e)),
            UnaryOp::Log => quote!(f64::ln(#e)),
            UnaryOp::Sin => quote!(f64::sin(#e)),
            UnaryOp::Cos => quote!(f64::cos(#e)),
            UnaryOp::Sqrt => quote!(f64::sqrt(#e)),
            UnaryOp::Abs => quote!(f64::abs(#e)),
            UnaryOp::Step => quote!(if #e > 0.0 { 1.0 } else { 0.0 }),
            UnaryOp::Sign => quote!(if #e > 0.0 { 1.0 } else if #e < 0.0 { -1.0 } else { 0.0 }),
            UnaryOp::NormCdf => {
                let sp = &self.opts.special_path;
                quote!(#sp::norm_cdf(#e))
            }
            UnaryOp::Powi(n) => {
                let n = Literal::i32_unsuffixed(n);
                quote!(f64::powi(#e, #n))
            }
            UnaryOp::Powf(a) => {
                let a = float(a.0);
                quote!(f64::powf(#e, #a))
            }
        }
    }

    fn binary(op: BinaryOp, a: TokenStream, b: TokenStream) -> TokenStream {
        match op {
            BinaryOp::Add => quote!(#a + #b),
            BinaryOp::Sub => quote!(#a - #b),
            BinaryOp::Mul => quote!(#a * #b),
            BinaryOp::Div => quote!(#a / #b),
            BinaryOp::Pow => quote!(f64::powf(#a, #b)),
        }
    }

    /// The value of node `i`; `direct` when it is an output with no other use.
    fn node(&mut self, i: usize, node: &Node, direct: bool, lazy: bool) -> Result<Val, Error> {
        let len = node.shape.len();
        let s = &node.shape;
        Ok(match &node.op {
            Op::Time => Val::Scalar(quote!(t)),
            Op::Input {
                buffer,
                offset,
                shape,
            } => {
                let buf = format_ident!("{}", buffer.short());
                let n = shape.len();
                if n == 1 {
                    let x = format_ident!("{}{}", buffer.short(), offset);
                    let o = Literal::usize_unsuffixed(*offset);
                    self.stmts.push(quote!(let #x = #buf[#o];));
                    Val::Scalar(quote!(#x))
                } else {
                    Val::Array {
                        base: quote!(#buf),
                        offset: *offset,
                        len: n,
                    }
                }
            }
            Op::Const(t) => {
                let d = t.data();
                if d.len() == 1 {
                    Val::Scalar(float(d[0]))
                } else if d.iter().all(|x| x.to_bits() == d[0].to_bits()) {
                    Val::Fill {
                        lit: d.first().map_or(quote!(0.0), |&x| float(x)),
                        len: d.len(),
                    }
                } else {
                    let c = format_ident!("C{}", i);
                    let n = Literal::usize_unsuffixed(d.len());
                    let items = d.iter().map(|&x| float(x));
                    self.stmts
                        .push(quote!(const #c: [f64; #n] = [#(#items),*];));
                    Val::Array {
                        base: quote!(#c),
                        offset: 0,
                        len: d.len(),
                    }
                }
            }
            Op::Unary(u) => {
                let a = self.val(node, 0);
                if len == 1 {
                    let e = self.unary(*u, Self::elem(&a, &Idx::lit(0)));
                    self.bind(i, e)
                } else {
                    let iv = quote!(i);
                    let e = self.unary(*u, Self::elem(&a, &Idx::var(&iv)));
                    if lazy {
                        let call = !matches!(
                            u,
                            UnaryOp::Neg
                                | UnaryOp::Relu
                                | UnaryOp::Step
                                | UnaryOp::Sign
                                | UnaryOp::Gelu
                        );
                        let expr = if call { e } else { quote!((#e)) };
                        return Ok(Val::Lazy { expr, len });
                    }
                    let (x, v) = self.alloc(i, len, false);
                    let n = Literal::usize_unsuffixed(len);
                    self.stmts.push(quote!(for i in 0..#n { #x[i] = #e; }));
                    v
                }
            }
            Op::Binary(op) => {
                let (a, b) = (self.val(node, 0), self.val(node, 1));
                if len == 1 {
                    let e = Self::binary(
                        *op,
                        Self::elem(&a, &Idx::lit(0)),
                        Self::elem(&b, &Idx::lit(0)),
                    );
                    return Ok(self.bind(i, e));
                }
                let flat = |v: &Val| v.len() == len || v.len() == 1;
                if flat(&a) && flat(&b) {
                    let iv = quote!(i);
                    let at = |v: &Val| {
                        if v.len() == 1 {
                            Self::elem(v, &Idx::lit(0))
                        } else {
                            Self::elem(v, &Idx::var(&iv))
                        }
                    };
                    let e = Self::binary(*op, at(&a), at(&b));
                    if lazy {
                        let call = *op == BinaryOp::Pow;
                        let expr = if call { e } else { quote!((#e)) };
                        return Ok(Val::Lazy { expr, len });
                    }
                    let (x, v) = self.alloc(i, len, false);
                    let n = Literal::usize_unsuffixed(len);
                    self.stmts.push(quote!(for i in 0..#n { #x[i] = #e; }));
                    return Ok(v);
                }
                let (x, v) = self.alloc(i, len, false);
                let (sa, sb) = (
                    bstrides(self.shape(node, 0), s),
                    bstrides(self.shape(node, 1), s),
                );
                let so = strides(s.dims());
                let code = loops(s.dims(), |vars| {
                    let o = lin(vars, &so, 0).tokens();
                    let ea = Self::elem(&a, &lin(vars, &sa, 0));
                    let eb = Self::elem(&b, &lin(vars, &sb, 0));
                    let e = Self::binary(*op, ea, eb);
                    quote!(#x[#o] = #e;)
                });
                self.stmts.push(code);
                v
            }
            Op::MatMul => {
                let (a, b) = (self.val(node, 0), self.val(node, 1));
                let k = self.shape(node, 1).dims()[0];
                let m = a.len() / k.max(1);
                let n = b.len() / k.max(1);
                let (x, v) = if len == 1 {
                    let x = format_ident!("x{}", i);
                    self.stmts.push(quote!(let mut #x = 0.0;));
                    (x.clone(), Val::Scalar(quote!(#x)))
                } else {
                    self.alloc(i, len, true)
                };
                let code = loops_named(&[m, k, n], &["i", "l", "j"], |vars| {
                    let (vi, vl, vj) = (&vars[0..1], &vars[1..2], &vars[2..3]);
                    let both = |p: &[Option<TokenStream>], q: &[Option<TokenStream>]| {
                        vec![p[0].clone(), q[0].clone()]
                    };
                    let ea = Self::elem2(&a, &both(vi, vl), k);
                    let eb = Self::elem2(&b, &both(vl, vj), n);
                    if len == 1 {
                        quote!(#x += #ea * #eb;)
                    } else {
                        let o = lin(&both(vi, vj), &[n, 1], 0).tokens();
                        quote!(#x[#o] += #ea * #eb;)
                    }
                });
                self.stmts.push(code);
                v
            }
            Op::Transpose => {
                let a = self.val(node, 0);
                let d = self.shape(node, 0).dims();
                let (m, n) = (d[0], d[1]);
                let (x, v) = self.alloc(i, len, false);
                let code = loops(&[m, n], |vars| {
                    let o = lin(vars, &[1, m], 0).tokens();
                    let e = Self::elem(&a, &lin(vars, &[n, 1], 0));
                    quote!(#x[#o] = #e;)
                });
                self.stmts.push(code);
                v
            }
            Op::Index(idx) => {
                let a = self.val(node, 0);
                let st = self.shape(node, 0).strides();
                let off: usize = idx.iter().zip(&st).map(|(i, s)| i * s).sum();
                self.view(i, &a, off, len)
            }
            Op::Slice { axis, start, end } => {
                let a = self.val(node, 0);
                let (outer, d, inner) = split_axis(self.shape(node, 0), *axis);
                if outer == 1 {
                    return Ok(self.view(i, &a, start * inner, len));
                }
                let w = (end - start) * inner;
                let (x, v) = self.alloc(i, len, false);
                let code = loops(&[outer, w], |vars| {
                    let o = lin(vars, &[w, 1], 0).tokens();
                    let e = Self::elem(&a, &lin(vars, &[d * inner, 1], start * inner));
                    quote!(#x[#o] = #e;)
                });
                self.stmts.push(code);
                v
            }
            Op::Pad { axis, before, .. } => {
                let a = self.val(node, 0);
                if len == 1 || a.len() == len {
                    return Ok(a);
                }
                let (outer, d, inner) = split_axis(self.shape(node, 0), *axis);
                let dout = s.dims()[*axis];
                let w = d * inner;
                let (x, v) = self.alloc(i, len, true);
                if w > 0 {
                    let code = loops(&[outer, w], |vars| {
                        let o = lin(vars, &[dout * inner, 1], before * inner).tokens();
                        let e = Self::elem(&a, &lin(vars, &[w, 1], 0));
                        quote!(#x[#o] = #e;)
                    });
                    self.stmts.push(code);
                }
                v
            }
            Op::Scatter { index, shape } => {
                let a = self.val(node, 0);
                if a.len() == len {
                    return Ok(a);
                }
                let st = shape.strides();
                let off: usize = index.iter().zip(&st).map(|(i, s)| i * s).sum();
                let (x, v) = self.alloc(i, len, true);
                let code = loops(&[a.len()], |vars| {
                    let o = lin(vars, &[1], off).tokens();
                    let e = Self::elem(&a, &lin(vars, &[1], 0));
                    quote!(#x[#o] = #e;)
                });
                self.stmts.push(code);
                v
            }
            Op::Sum(None) => {
                let a = self.val(node, 0);
                self.total(i, &a)
            }
            Op::Sum(Some(axis)) => {
                let a = self.val(node, 0);
                if len == 1 {
                    return Ok(self.total(i, &a));
                }
                let (outer, d, inner) = split_axis(self.shape(node, 0), *axis);
                let (x, v) = self.alloc(i, len, true);
                let code = loops(&[outer, d, inner], |vars| {
                    let o = lin(&[vars[0].clone(), vars[2].clone()], &[inner, 1], 0).tokens();
                    let e = Self::elem(&a, &lin(vars, &[d * inner, inner, 1], 0));
                    quote!(#x[#o] += #e;)
                });
                self.stmts.push(code);
                v
            }
            Op::Concat(axis) => self.concat(i, node, *axis, direct),
            Op::Reshape(_) => self.val(node, 0),
            Op::Broadcast(_) => {
                let a = self.val(node, 0);
                if a.len() == len {
                    return Ok(a);
                }
                if a.len() == 1 {
                    let e = Self::elem(&a, &Idx::lit(0));
                    if let Val::Fill { .. } = a {
                        return Ok(Val::Fill { lit: e, len });
                    }
                    let n = Literal::usize_unsuffixed(len);
                    if self.on_stack(len) {
                        let x = format_ident!("x{}", i);
                        self.stmts.push(quote!(let #x = [#e; #n];));
                        return Ok(Val::Array {
                            base: quote!(#x),
                            offset: 0,
                            len,
                        });
                    }
                    let (x, v) = self.alloc(i, len, false);
                    self.stmts.push(quote!(#x.fill(#e);));
                    return Ok(v);
                }
                let sa = bstrides(self.shape(node, 0), s);
                let so = strides(s.dims());
                let (x, v) = self.alloc(i, len, false);
                let code = loops(s.dims(), |vars| {
                    let o = lin(vars, &so, 0).tokens();
                    let e = Self::elem(&a, &lin(vars, &sa, 0));
                    quote!(#x[#o] = #e;)
                });
                self.stmts.push(code);
                v
            }
            Op::SumTo(to) => {
                let a = self.val(node, 0);
                if a.len() == len {
                    return Ok(a);
                }
                if len == 1 {
                    return Ok(self.total(i, &a));
                }
                let sin = self.shape(node, 0);
                let so = bstrides(to, sin);
                let si = strides(sin.dims());
                let (x, v) = self.alloc(i, len, true);
                let code = loops(sin.dims(), |vars| {
                    let o = lin(vars, &so, 0).tokens();
                    let e = Self::elem(&a, &lin(vars, &si, 0));
                    quote!(#x[#o] += #e;)
                });
                self.stmts.push(code);
                v
            }
            Op::Opaque { layer, .. } => {
                let k = Literal::usize_unsuffixed(*layer);
                let xs = Self::slice(&self.val(node, 0));
                let (y, v) = self.alloc(i, len, false);
                self.stmts
                    .push(quote!(self.layers.forward(#k, #xs, p_opaque, &mut #y[..])?;));
                v
            }
            Op::OpaqueJvp { layer, .. } => {
                let k = Literal::usize_unsuffixed(*layer);
                let xs = Self::slice(&self.val(node, 0));
                let dxs = Self::slice(&self.val(node, 1));
                let (dy, v) = self.alloc(i, len, false);
                self.stmts
                    .push(quote!(self.layers.jvp(#k, #xs, p_opaque, #dxs, &mut #dy[..])?;));
                v
            }
            Op::OpaqueVjp { layer, .. } => {
                let k = Literal::usize_unsuffixed(*layer);
                let xs = Self::slice(&self.val(node, 0));
                let ybs = Self::slice(&self.val(node, 1));
                let (xb, v) = self.alloc(i, len, false);
                self.stmts.push(quote!(
                    self.layers.vjp(#k, #xs, p_opaque, #ybs, &mut #xb[..], gp_opaque)?;
                ));
                v
            }
            Op::Conv2d(_)
            | Op::Conv2dBackwardInput { .. }
            | Op::Conv2dBackwardWeight { .. }
            | Op::GroupNorm { .. }
            | Op::GroupNormBackward { .. } => {
                return Err(Error::Unsupported { op: node.op.name() });
            }
        })
    }

    /// `len` elements of `a` from `off`: a scalar binding or a view.
    fn view(&mut self, i: usize, a: &Val, off: usize, len: usize) -> Val {
        if len == 1 {
            let e = Self::elem(a, &Idx::lit(off));
            return match a {
                Val::Array { .. } => self.bind(i, e),
                _ => Val::Scalar(e),
            };
        }
        match a {
            Val::Array { base, offset, .. } => Val::Array {
                base: base.clone(),
                offset: offset + off,
                len,
            },
            Val::Fill { lit, .. } => Val::Fill {
                lit: lit.clone(),
                len,
            },
            _ => a.clone(),
        }
    }

    /// The sum of all elements of `a` (the interpreter's `iter().sum()`).
    fn total(&mut self, i: usize, a: &Val) -> Val {
        match a {
            Val::Scalar(_) => a.clone(),
            _ => {
                let pl = Self::place(a);
                let x = format_ident!("x{}", i);
                self.stmts.push(quote!(let #x: f64 = #pl.iter().sum();));
                Val::Scalar(quote!(#x))
            }
        }
    }

    fn concat(&mut self, i: usize, node: &Node, axis: usize, direct: bool) -> Val {
        let parts: Vec<Val> = (0..node.inputs.len()).map(|k| self.val(node, k)).collect();
        let len = node.shape.len();
        let (outer, dout, inner) = split_axis(&node.shape, axis);
        let nonempty: Vec<&Val> = parts.iter().filter(|p| p.len() > 0).collect();
        if nonempty.len() == 1 && nonempty[0].len() == len {
            return nonempty[0].clone();
        }
        if outer == 1 && direct {
            return Val::Parts(parts);
        }
        if outer == 1 && len <= 16 && self.on_stack(len) {
            let items = parts
                .iter()
                .flat_map(|p| (0..p.len()).map(move |e| Self::elem(p, &Idx::lit(e))));
            let x = format_ident!("x{}", i);
            self.stmts.push(quote!(let #x = [#(#items),*];));
            return Val::Array {
                base: quote!(#x),
                offset: 0,
                len,
            };
        }
        let (x, v) = self.alloc(i, len, false);
        let mut at = 0;
        for (k, p) in parts.iter().enumerate() {
            let dk = self.shape(node, k).dims()[axis];
            let w = dk * inner;
            if w > 0 {
                let code = loops(&[outer, w], |vars| {
                    let o = lin(vars, &[dout * inner, 1], at * inner).tokens();
                    let e = Self::elem(p, &lin(vars, &[w, 1], 0));
                    quote!(#x[#o] = #e;)
                });
                self.stmts.push(code);
            }
            at += dk;
        }
        v
    }

    /// Write value `v` to `dest`.
    fn write(&mut self, v: &Val, dest: &Dest) {
        let buf = &dest.buf;
        let len = v.len();
        if len == 0 {
            return;
        }
        let (a, b) = (
            Literal::usize_unsuffixed(dest.offset),
            Literal::usize_unsuffixed(dest.offset + len),
        );
        let whole = dest.offset == 0 && len == dest.buf_len;
        let range = if whole {
            quote!(#buf)
        } else {
            quote!(#buf[#a..#b])
        };
        match v {
            Val::Scalar(e) => self.stmts.push(quote!(#buf[#a] = #e;)),
            Val::Fill { lit, .. } => self.stmts.push(quote!(#range.fill(#lit);)),
            Val::Array { .. } | Val::Transposed { .. } | Val::Lazy { .. } => {
                let sl = Self::slice(v);
                self.stmts.push(quote!(#range.copy_from_slice(#sl);));
            }
            Val::Parts(parts) => {
                let mut off = dest.offset;
                for p in parts {
                    let d = Dest {
                        buf: buf.clone(),
                        offset: off,
                        buf_len: dest.buf_len,
                    };
                    self.write(p, &d);
                    off += p.len();
                }
            }
        }
    }
}
