//! Lowering of IR operations to Cranelift code.
//!
//! Nodes are visited in arena (topological) order. A node whose result is small
//! (`≤ REG_MAX` elements) and cheap (`≤ UNROLL_WORK` scalar operations) is *unrolled*: every
//! element is an SSA value computed from operand elements at compile-time indices. Larger
//! nodes are *looped*: their result gets a fresh region of scratch and one loop nest computes
//! it — elementwise maps (arithmetic ones in `f64x2` lanes), broadcasts as two nested strided
//! loops where a leading/trailing split allows and through index tables otherwise, matrix
//! products and `tanh` maps as calls of the native kernels of [`crate::kernels`], reductions,
//! and data movement through the index maps of [`crate::maps`]. `reshape` and `index` are
//! views: no code at all.
//!
//! Every kernel evaluates each element with the same operations, in the same order, as the
//! reference interpreter (`pnode_ir::Interpreter`): products accumulate `0 + a_{i1} b_{1j} +
//! a_{i2} b_{2j} + …`, reductions add in row-major input order, transcendentals call the same
//! functions ([`crate::math`], [`crate::kernels`]); neither Cranelift nor rustc reassociates or
//! contracts floating-point operations. JIT results therefore match the interpreter to
//! round-off, in practice bitwise.

use crate::emit::{Emit, REG_MAX, UNROLL_WORK, Val};
use crate::error::{Error, Result};
use crate::maps;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, Value, types::F64, types::F64X2, types::I64};
use pnode_ir::{BinaryOp, Buffer, Function, Op, Shape, UnaryOp};

/// What a function's leaves read: the time and, per buffer (`u`, `θ`, `v`, `w`), a tensor.
pub(crate) struct Bind {
    /// The time `t`.
    pub(crate) t: Value,
    /// `[u, θ, v, w]`; `None` for a buffer the function must not read.
    pub(crate) bufs: [Option<Val>; 4],
}

fn buffer_index(b: Buffer) -> usize {
    match b {
        Buffer::State => 0,
        Buffer::Param => 1,
        Buffer::Tangent => 2,
        Buffer::Cotangent => 3,
    }
}

/// [`Error::Unsupported`] naming the first operation of `f` the backend does not lower.
pub(crate) fn check_supported(f: &Function) -> Result<()> {
    for n in f.graph().nodes() {
        if matches!(
            n.op,
            Op::Conv2d(_)
                | Op::Conv2dBackwardInput { .. }
                | Op::Conv2dBackwardWeight { .. }
                | Op::GroupNorm { .. }
                | Op::GroupNormBackward { .. }
                | Op::Opaque { .. }
                | Op::OpaqueJvp { .. }
                | Op::OpaqueVjp { .. }
        ) {
            return Err(Error::Unsupported { op: n.op.name() });
        }
    }
    Ok(())
}

/// Emit `f` and return its outputs (in registers or memory).
pub(crate) fn lower(e: &mut Emit<'_, '_, '_>, f: &Function, bind: &Bind) -> Result<Vec<Val>> {
    Ok(lower_placed(e, f, bind)?.0)
}

/// Where a node's tensor lives in a compiled kernel (its entry of the layout table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In registers (one SSA value per element), never in memory.
    Registers,
    /// `len` elements of the scratch buffer from element `offset`.
    Scratch {
        /// First element.
        offset: usize,
        /// Number of elements.
        len: usize,
    },
    /// A view of an input buffer or of a constant: no storage of its own.
    View,
}

/// [`lower`], also returning every node's [`Placement`] (in arena order).
pub(crate) fn lower_placed(
    e: &mut Emit<'_, '_, '_>,
    f: &Function,
    bind: &Bind,
) -> Result<(Vec<Val>, Vec<Placement>)> {
    check_supported(f)?;
    let nodes = f.graph().nodes();
    let mut vals: Vec<Val> = Vec::with_capacity(nodes.len());
    let mut places = Vec::with_capacity(nodes.len());
    for node in nodes {
        let v = match &node.op {
            Op::Time => Val::Regs(vec![bind.t]),
            Op::Input {
                buffer,
                offset,
                shape,
            } => {
                let src = bind.bufs[buffer_index(*buffer)].as_ref().ok_or_else(|| {
                    Error::InvalidModel(format!("the function reads the {buffer} buffer"))
                })?;
                let len = shape.len();
                if offset + len > src.len() {
                    return Err(Error::Length {
                        what: "input view",
                        expected: offset + len,
                        found: src.len(),
                    });
                }
                e.small_to_regs(src.slice(*offset, len))
            }
            Op::Const(t) => {
                crate::compile::check_size("constant", t.data().len())?;
                if t.data().len() <= REG_MAX {
                    Val::Regs(t.data().iter().map(|&x| e.f64c(x)).collect())
                } else {
                    let base = e.pool_reals(t.data());
                    Val::Mem {
                        base,
                        off: 0,
                        len: t.data().len(),
                    }
                }
            }
            op => {
                let args: Vec<&Val> = node.inputs.iter().map(|i| &vals[i.index()]).collect();
                let shapes: Vec<&Shape> = node
                    .inputs
                    .iter()
                    .map(|i| &nodes[i.index()].shape)
                    .collect();
                lower_op(e, op, &args, &shapes, &node.shape)?
            }
        };
        places.push(match &v {
            Val::Regs(_) => Placement::Registers,
            Val::Mem { base, off, len } if *base == e.scratch() => Placement::Scratch {
                offset: *off,
                len: *len,
            },
            Val::Mem { .. } => Placement::View,
        });
        vals.push(v);
    }
    let outs = f
        .outputs()
        .iter()
        .map(|o| vals[o.index()].clone())
        .collect();
    Ok((outs, places))
}

/// Scalar operations of an unrolled or looped elementwise unary node.
pub(crate) fn unary(e: &mut Emit<'_, '_, '_>, op: UnaryOp, x: Value) -> Result<Value> {
    Ok(match op {
        UnaryOp::Neg => e.fb.ins().fneg(x),
        UnaryOp::Abs => e.fb.ins().fabs(x),
        UnaryOp::Sqrt => e.fb.ins().sqrt(x),
        UnaryOp::Relu => {
            let zero = e.f64c(0.0);
            let gt = e.fb.ins().fcmp(FloatCC::GreaterThan, x, zero);
            e.fb.ins().select(gt, x, zero)
        }
        UnaryOp::Step => {
            let (zero, one) = (e.f64c(0.0), e.f64c(1.0));
            let gt = e.fb.ins().fcmp(FloatCC::GreaterThan, x, zero);
            e.fb.ins().select(gt, one, zero)
        }
        UnaryOp::Sign => {
            let (zero, one, m1) = (e.f64c(0.0), e.f64c(1.0), e.f64c(-1.0));
            let gt = e.fb.ins().fcmp(FloatCC::GreaterThan, x, zero);
            let lt = e.fb.ins().fcmp(FloatCC::LessThan, x, zero);
            let neg = e.fb.ins().select(lt, m1, zero);
            e.fb.ins().select(gt, one, neg)
        }
        UnaryOp::Tanh => e.call1("pnode_tanh", x)?,
        UnaryOp::Sigmoid => e.call1("pnode_sigmoid", x)?,
        UnaryOp::Softplus => e.call1("pnode_softplus", x)?,
        UnaryOp::Gelu => e.call1("pnode_gelu", x)?,
        UnaryOp::Exp => e.call1("pnode_exp", x)?,
        UnaryOp::Log => e.call1("pnode_ln", x)?,
        UnaryOp::Sin => e.call1("pnode_sin", x)?,
        UnaryOp::Cos => e.call1("pnode_cos", x)?,
        UnaryOp::NormCdf => e.call1("pnode_norm_cdf", x)?,
        UnaryOp::Powi(n) => powi(e, x, n),
        UnaryOp::Powf(a) => {
            let a = e.f64c(a.0);
            e.powf(x, a)?
        }
    })
}

/// `xⁿ` by the binary powering of `powi` (compiler-builtins' `__powidf2`, which
/// `f64::powi` calls for a run-time exponent, as the interpreter does), unrolled for the
/// constant `n`: `m = 1; loop { if n odd: m *= a; n >>= 1; if n = 0 break; a *= a }`, then
/// `1/m` for `n < 0`. The same multiplications in the same order (`1·a` is exact), so the
/// result is bitwise that of the call.
fn powi(e: &mut Emit<'_, '_, '_>, x: Value, n: i32) -> Value {
    let mut a = x;
    let mut pow = n.unsigned_abs();
    let mut m: Option<Value> = None;
    loop {
        if pow & 1 != 0 {
            m = Some(match m {
                None => a,
                Some(m) => e.fb.ins().fmul(m, a),
            });
        }
        pow >>= 1;
        if pow == 0 {
            break;
        }
        a = e.fb.ins().fmul(a, a);
    }
    let one = e.f64c(1.0);
    let m = m.unwrap_or(one);
    if n < 0 { e.fb.ins().fdiv(one, m) } else { m }
}

/// One scalar binary operation.
pub(crate) fn binary(e: &mut Emit<'_, '_, '_>, op: BinaryOp, a: Value, b: Value) -> Result<Value> {
    Ok(match op {
        BinaryOp::Add => e.fb.ins().fadd(a, b),
        BinaryOp::Sub => e.fb.ins().fsub(a, b),
        BinaryOp::Mul => e.fb.ins().fmul(a, b),
        BinaryOp::Div => e.fb.ins().fdiv(a, b),
        BinaryOp::Pow => e.powf(a, b)?,
    })
}

/// Operations on more elements than this that call a math function are looped.
const CALL_UNROLL_MAX: usize = 2;

/// Whether `op` calls a math function per element.
fn calls(op: &Op) -> bool {
    match op {
        Op::Unary(u) => !matches!(
            u,
            UnaryOp::Neg
                | UnaryOp::Abs
                | UnaryOp::Sqrt
                | UnaryOp::Relu
                | UnaryOp::Step
                | UnaryOp::Sign
                | UnaryOp::Powi(_)
        ),
        Op::Binary(b) => matches!(b, BinaryOp::Pow),
        _ => false,
    }
}

/// `(outer, extent, inner)` of a reduction that sums one contiguous axis block: `Sum` over
/// an axis, or `SumTo` a shape that is the input's trailing dimensions (a bias gradient).
fn axis_split(op: &Op, input: &Shape, out: &Shape) -> Option<(usize, usize, usize)> {
    let d = input.dims();
    match op {
        Op::Sum(Some(axis)) => Some((
            d[..*axis].iter().product(),
            d[*axis],
            d[axis + 1..].iter().product(),
        )),
        Op::SumTo(_) => {
            let to: Vec<usize> = out.dims().iter().copied().skip_while(|&x| x == 1).collect();
            let r = to.len();
            (r <= d.len() && d[d.len() - r..] == to[..]).then(|| {
                let inner: usize = to.iter().product();
                (1, input.len() / inner.max(1), inner)
            })
        }
        _ => None,
    }
}

/// Scalar operations the unrolled form of `op` would take.
fn work(op: &Op, shapes: &[&Shape], out: &Shape) -> usize {
    match op {
        Op::MatMul => {
            let k = shapes[1].dims().first().copied().unwrap_or(1);
            out.len().saturating_mul(k)
        }
        Op::Sum(_) | Op::SumTo(_) => shapes[0].len(),
        _ => out.len(),
    }
}

fn lower_op(
    e: &mut Emit<'_, '_, '_>,
    op: &Op,
    args: &[&Val],
    shapes: &[&Shape],
    out: &Shape,
) -> Result<Val> {
    let n = out.len();
    // Unrolled calls keep every live register value across each call (they are clobbered):
    // only scalars of transcendental operations are unrolled.
    let limit = if calls(op) { CALL_UNROLL_MAX } else { REG_MAX };
    let small = n <= limit && work(op, shapes, out) <= UNROLL_WORK;
    // Views: no code.
    match op {
        Op::Reshape(_) => return Ok(args[0].clone()),
        Op::Index(idx) => {
            let off: usize = idx
                .iter()
                .zip(shapes[0].strides())
                .map(|(i, s)| i * s)
                .sum();
            return Ok(args[0].slice(off, n));
        }
        _ => {}
    }
    match op {
        Op::Unary(u) => {
            if small {
                let mut r = Vec::with_capacity(n);
                for i in 0..n {
                    let v = e.get(args[0], i);
                    r.push(unary(e, *u, v)?);
                }
                return Ok(Val::Regs(r));
            }
            let x = e.mem(args[0])?;
            let dst = e.alloc(n)?;
            if *u == UnaryOp::Tanh {
                // The vectorized map of the interpreter's `tanh` (crate::kernels).
                let (px, pd) = (e.addr(&x), e.addr(&dst));
                let len = e.fb.ins().iconst(I64, n as i64);
                e.call_void(crate::kernels::TANH_MAP, &[px, pd, len])?;
                return Ok(dst);
            }
            let lanes = match u {
                UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sqrt => true,
                UnaryOp::Powi(k) => *k >= 1,
                _ => false,
            };
            if lanes {
                // Pairs in `f64x2` lanes (the same IEEE operations per lane), then the odd one.
                e.for_range(n / 2, |e, j| {
                    let i = e.fb.ins().ishl_imm_u(j, 1);
                    let at = e.row_addr(&x, i);
                    let v = e.load2_at(at);
                    let r = unary(e, *u, v)?;
                    let at = e.row_addr(&dst, i);
                    e.store2_at(at, r);
                    Ok(())
                })?;
                if n % 2 == 1 {
                    let v = e.get(&x, n - 1);
                    let r = unary(e, *u, v)?;
                    e.put(&dst, n - 1, r);
                }
                return Ok(dst);
            }
            e.for_range(n, |e, i| {
                let v = e.get_dyn(&x, i);
                let r = unary(e, *u, v)?;
                e.put_dyn(&dst, i, r);
                Ok(())
            })?;
            Ok(dst)
        }
        Op::Binary(b) => lower_binary(e, *b, args, shapes, out, small),
        Op::MatMul => lower_matmul(e, args, shapes, out, small),
        Op::Sum(None) => {
            let x = args[0];
            if x.len() <= UNROLL_WORK {
                let mut acc = e.f64c(-0.0);
                for i in 0..x.len() {
                    let v = e.get(x, i);
                    acc = e.fb.ins().fadd(acc, v);
                }
                return Ok(Val::Regs(vec![acc]));
            }
            let x = e.mem(x)?;
            let acc = e.fb.declare_var(F64);
            let z = e.f64c(-0.0);
            e.fb.def_var(acc, z);
            e.for_range(x.len(), |e, i| {
                let v = e.get_dyn(&x, i);
                let a = e.fb.use_var(acc);
                let s = e.fb.ins().fadd(a, v);
                e.fb.def_var(acc, s);
                Ok(())
            })?;
            Ok(Val::Regs(vec![e.fb.use_var(acc)]))
        }
        Op::Sum(Some(_)) | Op::SumTo(_) => {
            let map = maps::reduce(op, shapes[0], out)
                .ok_or_else(|| Error::Codegen(format!("no reduction map for {}", op.name())))?;
            if small {
                let zero = e.f64c(0.0);
                let mut r = vec![zero; n];
                for (i, d) in map.into_iter().enumerate() {
                    let x = e.get(args[0], i);
                    r[d] = e.fb.ins().fadd(r[d], x);
                }
                return Ok(Val::Regs(r));
            }
            let x = e.mem(args[0])?;
            let dst = e.alloc(n)?;
            e.fill(&dst, 0.0)?;
            if let Some((outer, d, inner)) = axis_split(op, shapes[0], out) {
                // Strided: out[o, k] += x[o, j, k] for j ascending (the row-major order).
                e.for_range(outer, |e, o| {
                    let oi = e.fb.ins().imul_imm_s(o, inner as i64);
                    let drow = e.row_addr(&dst, oi);
                    e.for_range(d, |e, j| {
                        let od = e.fb.ins().imul_imm_s(o, d as i64);
                        let row = e.fb.ins().iadd(od, j);
                        let row = e.fb.ins().imul_imm_s(row, inner as i64);
                        let xrow = e.row_addr(&x, row);
                        e.for_range(inner, |e, k| {
                            let k8 = e.fb.ins().ishl_imm_u(k, 3);
                            let xa = e.fb.ins().iadd(xrow, k8);
                            let da = e.fb.ins().iadd(drow, k8);
                            let v = e.load_at(xa);
                            let c = e.load_at(da);
                            let s = e.fb.ins().fadd(c, v);
                            e.store_at(da, s);
                            Ok(())
                        })
                    })
                })?;
                return Ok(dst);
            }
            let table = e.pool_indices(&map);
            e.for_range(x.len(), |e, i| {
                let d = e.table_dyn(table, i);
                let v = e.get_dyn(&x, i);
                let cur = e.get_dyn(&dst, d);
                let s = e.fb.ins().fadd(cur, v);
                e.put_dyn(&dst, d, s);
                Ok(())
            })?;
            Ok(dst)
        }
        Op::Conv2d(_)
        | Op::Conv2dBackwardInput { .. }
        | Op::Conv2dBackwardWeight { .. }
        | Op::GroupNorm { .. }
        | Op::GroupNormBackward { .. }
        | Op::Opaque { .. }
        | Op::OpaqueJvp { .. }
        | Op::OpaqueVjp { .. } => Err(Error::Unsupported { op: op.name() }),
        Op::Time | Op::Input { .. } | Op::Const(_) => Err(Error::Codegen(format!(
            "leaf {} lowered as an operation",
            op.name()
        ))),
        Op::Transpose if !small => {
            // out[j, i] = x[i, j]: contiguous stores, loads at stride `c`.
            let (r, c) = (shapes[0].dims()[0], shapes[0].dims()[1]);
            let x = e.mem(args[0])?;
            let dst = e.alloc(n)?;
            e.for_range(c, |e, j| {
                let jr = e.fb.ins().imul_imm_s(j, r as i64);
                let drow = e.row_addr(&dst, jr);
                let xcol = e.row_addr(&x, j);
                e.for_range(r, |e, i| {
                    let ic = e.fb.ins().imul_imm_s(i, (c * 8) as i64);
                    let src = e.fb.ins().iadd(xcol, ic);
                    let v = e.load_at(src);
                    let i8 = e.fb.ins().ishl_imm_u(i, 3);
                    let d = e.fb.ins().iadd(drow, i8);
                    e.store_at(d, v);
                    Ok(())
                })
            })?;
            Ok(dst)
        }
        _ => {
            let map = maps::gather(op, shapes, out).ok_or(Error::Unsupported { op: op.name() })?;
            lower_gather(e, args, &map, small)
        }
    }
}

fn lower_gather(
    e: &mut Emit<'_, '_, '_>,
    args: &[&Val],
    map: &[Option<(usize, usize)>],
    small: bool,
) -> Result<Val> {
    let n = map.len();
    if small {
        let zero = e.f64c(0.0);
        let r = map
            .iter()
            .map(|m| match m {
                Some((k, i)) => e.get(args[*k], *i),
                None => zero,
            })
            .collect();
        return Ok(Val::Regs(r));
    }
    let dst = e.alloc(n)?;
    if map.iter().any(Option::is_none) {
        e.fill(&dst, 0.0)?;
    }
    for (k, arg) in args.iter().enumerate() {
        let (mut d, mut s) = (Vec::new(), Vec::new());
        for (o, m) in map.iter().enumerate() {
            if let Some((kk, i)) = m
                && *kk == k
            {
                d.push(o);
                s.push(*i);
            }
        }
        if d.is_empty() {
            continue;
        }
        let x = e.mem(arg)?;
        // A contiguous run is a plain copy.
        let run = d.windows(2).all(|w| w[1] == w[0] + 1) && s.windows(2).all(|w| w[1] == w[0] + 1);
        if run {
            let dd = dst.slice(d[0], d.len());
            let xx = x.slice(s[0], s.len());
            e.copy(&dd, &xx)?;
            continue;
        }
        let (td, ts) = (e.pool_indices(&d), e.pool_indices(&s));
        e.for_range(d.len(), |e, i| {
            let o = e.table_dyn(td, i);
            let j = e.table_dyn(ts, i);
            let v = e.get_dyn(&x, j);
            e.put_dyn(&dst, o, v);
            Ok(())
        })?;
    }
    Ok(dst)
}

fn lower_binary(
    e: &mut Emit<'_, '_, '_>,
    op: BinaryOp,
    args: &[&Val],
    shapes: &[&Shape],
    out: &Shape,
    small: bool,
) -> Result<Val> {
    let n = out.len();
    let (a, b) = (args[0], args[1]);
    if small {
        let (ma, mb) = (
            maps::broadcast_map(shapes[0], out),
            maps::broadcast_map(shapes[1], out),
        );
        let mut r = Vec::with_capacity(n);
        for o in 0..n {
            let x = e.get(a, ma[o]);
            let y = e.get(b, mb[o]);
            r.push(binary(e, op, x, y)?);
        }
        return Ok(Val::Regs(r));
    }
    let dst = e.alloc(n)?;
    // A one-element operand is loaded once, outside the loop.
    let hoist = |e: &mut Emit<'_, '_, '_>, v: &Val| -> Result<Val> {
        if v.len() == 1 {
            Ok(Val::Regs(e.regs(v)))
        } else {
            e.mem(v)
        }
    };
    let (a, b) = (hoist(e, a)?, hoist(e, b)?);
    let flat = |v: &Val| v.len() == n || v.len() == 1;
    if flat(&a) && flat(&b) {
        if op != BinaryOp::Pow {
            // Pairs of elements in `f64x2` lanes (the same IEEE operation per lane), then the
            // odd last element.
            let pair = |e: &mut Emit<'_, '_, '_>, v: &Val, i: Value| match v {
                Val::Regs(r) => e.fb.ins().splat(F64X2, r[0]),
                Val::Mem { .. } => {
                    let at = e.row_addr(v, i);
                    e.load2_at(at)
                }
            };
            e.for_range(n / 2, |e, j| {
                let i = e.fb.ins().ishl_imm_u(j, 1);
                let (x, y) = (pair(e, &a, i), pair(e, &b, i));
                let r = binary(e, op, x, y)?;
                let at = e.row_addr(&dst, i);
                e.store2_at(at, r);
                Ok(())
            })?;
            if n % 2 == 1 {
                let (x, y) = (
                    e.get(&a, (n - 1) * usize::from(a.len() > 1)),
                    e.get(&b, (n - 1) * usize::from(b.len() > 1)),
                );
                let r = binary(e, op, x, y)?;
                e.put(&dst, n - 1, r);
            }
            return Ok(dst);
        }
        e.for_range(n, |e, i| {
            let x = e.get_dyn(&a, i);
            let y = e.get_dyn(&b, i);
            let r = binary(e, op, x, y)?;
            e.put_dyn(&dst, i, r);
            Ok(())
        })?;
        return Ok(dst);
    }
    let (ma, mb) = (
        maps::broadcast_map(shapes[0], out),
        maps::broadcast_map(shapes[1], out),
    );
    if let Some((inner, ka, kb)) = strided(out, &ma, &mb) {
        // Two nested loops, each operand read at `o·so + i·si` (no index tables).
        let outer = n / inner;
        e.for_range(outer, |e, o| {
            let row = e.fb.ins().imul_imm_s(o, inner as i64);
            let (ra, rb) = (ka.row(o, row), kb.row(o, row));
            let drow = e.row_addr(&dst, row);
            e.for_range(inner, |e, i| {
                let x = ka.get(e, &a, ra, i);
                let y = kb.get(e, &b, rb, i);
                let r = binary(e, op, x, y)?;
                let i8 = e.fb.ins().ishl_imm_u(i, 3);
                let at = e.fb.ins().iadd(drow, i8);
                e.store_at(at, r);
                Ok(())
            })
        })?;
        return Ok(dst);
    }
    let ta = e.pool_indices(&ma);
    let tb = e.pool_indices(&mb);
    e.for_range(n, |e, i| {
        let ia = e.table_dyn(ta, i);
        let ib = e.table_dyn(tb, i);
        let x = e.get_dyn(&a, ia);
        let y = e.get_dyn(&b, ib);
        let r = binary(e, op, x, y)?;
        e.put_dyn(&dst, i, r);
        Ok(())
    })?;
    Ok(dst)
}

/// How a broadcast operand is read in a loop nest `out[o, i]`, `o < n / inner`, `i < inner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Element `o·inner + i` (the operand has the output's shape).
    Full,
    /// Element `i` (repeated over the leading axes).
    Row,
    /// Element `o` (repeated over the trailing axes).
    Col,
    /// Its only element.
    Scalar,
}

impl Read {
    fn of(map: &[usize], inner: usize) -> Option<Read> {
        let at = |f: fn(usize, usize, usize) -> usize| {
            map.iter()
                .enumerate()
                .all(|(k, &m)| m == f(k / inner, k % inner, inner))
        };
        [
            (
                Read::Full,
                (|o, i, w| o * w + i) as fn(usize, usize, usize) -> usize,
            ),
            (Read::Row, |_, i, _| i),
            (Read::Col, |o, _, _| o),
            (Read::Scalar, |_, _, _| 0),
        ]
        .into_iter()
        .find(|(_, f)| at(*f))
        .map(|(r, _)| r)
    }

    /// The row-dependent part of the address (`None`: none, or the value is hoisted).
    fn row(self, o: Value, row: Value) -> Option<Value> {
        match self {
            Read::Full => Some(row),
            Read::Col => Some(o),
            Read::Row | Read::Scalar => None,
        }
    }

    fn get(self, e: &mut Emit<'_, '_, '_>, v: &Val, row: Option<Value>, i: Value) -> Value {
        match (self, row) {
            (Read::Full, Some(r)) => {
                let idx = e.fb.ins().iadd(r, i);
                e.get_dyn(v, idx)
            }
            (Read::Col, Some(o)) => e.get_dyn(v, o),
            (Read::Row, _) => e.get_dyn(v, i),
            _ => {
                let zero = e.fb.ins().iconst(I64, 0);
                e.get_dyn(v, zero)
            }
        }
    }
}

/// A split `(inner, read a, read b)` of `out` into leading and trailing axes under which both
/// broadcast maps are strided (see [`Read`]); `None` if there is none.
fn strided(out: &Shape, ma: &[usize], mb: &[usize]) -> Option<(usize, Read, Read)> {
    let d = out.dims();
    (0..d.len()).find_map(|r| {
        let inner: usize = d[r..].iter().product();
        if inner == 0 {
            return None;
        }
        Some((inner, Read::of(ma, inner)?, Read::of(mb, inner)?))
    })
}

/// `C = A B` with `A` viewed as `[m, k]` and `B` as `[k, n]`:
/// `c_ij = 0 + a_i1 b_1j + … + a_ik b_kj`, the terms added in the order of the interpreter's
/// row-oriented loop (Golub and Van Loan, *Matrix Computations*, 4th ed., §1.1): unrolled with
/// a register accumulator, or a call of the register-tiled native kernel of [`crate::kernels`],
/// which does the same arithmetic per element.
fn lower_matmul(
    e: &mut Emit<'_, '_, '_>,
    args: &[&Val],
    shapes: &[&Shape],
    out: &Shape,
    small: bool,
) -> Result<Val> {
    let k = shapes[1].dims()[0];
    let (m, n) = (args[0].len() / k.max(1), args[1].len() / k.max(1));
    if small {
        let zero = e.f64c(0.0);
        let mut r = Vec::with_capacity(out.len());
        for i in 0..m {
            for j in 0..n {
                let mut acc = zero;
                for l in 0..k {
                    let x = e.get(args[0], i * k + l);
                    let y = e.get(args[1], l * n + j);
                    let p = e.fb.ins().fmul(x, y);
                    acc = e.fb.ins().fadd(acc, p);
                }
                r.push(acc);
            }
        }
        return Ok(Val::Regs(r));
    }
    let (a, b) = (e.mem(args[0])?, e.mem(args[1])?);
    let dst = e.alloc(m * n)?;
    let (pa, pb, pc) = (e.addr(&a), e.addr(&b), e.addr(&dst));
    let dims = [m, k, n].map(|d| e.fb.ins().iconst(I64, d as i64));
    e.call_void(
        crate::kernels::MATMUL,
        &[pa, pb, pc, dims[0], dims[1], dims[2]],
    )?;
    Ok(dst)
}
