//! Emission helpers over Cranelift's `FunctionBuilder`: where a tensor's elements live
//! ([`Val`]), loads and stores, counted loops, scratch allocation and calls to the math
//! symbols.
//!
//! A tensor is either *in registers* (`Val::Regs`, one SSA value per element: small tensors,
//! whose operations are unrolled) or *in memory* (`Val::Mem`, a base pointer and an element
//! offset: views of the input buffers, constants in the pool, and results of looped operations
//! in the scratch buffer). Scratch is handed out by a bump allocator, so every tensor of a
//! kernel has its own region and no value is overwritten while the kernel runs.

use crate::abi::Services;
use crate::error::{Error, Result};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    BlockArg, FuncRef, InstBuilder, MemFlagsData, Value, types::F64, types::F64X2, types::I64,
};
use cranelift_frontend::FunctionBuilder;
use std::collections::HashMap;

/// Tensors with at most this many elements live in registers.
pub(crate) const REG_MAX: usize = 16;
/// Operations whose unrolled form would take more than this many scalar operations are looped.
pub(crate) const UNROLL_WORK: usize = 64;
/// The largest element offset generated code addresses (32-bit byte displacements).
pub(crate) const MAX_ELEMS: usize = (i32::MAX as usize) / 8;

/// Where a tensor's elements are (row-major).
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// One SSA value per element.
    Regs(Vec<Value>),
    /// `len` elements at `base + 8·off`.
    Mem {
        /// A pointer value.
        base: Value,
        /// Element offset.
        off: usize,
        /// Number of elements.
        len: usize,
    },
}

impl Val {
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            Val::Regs(v) => v.len(),
            Val::Mem { len, .. } => *len,
        }
    }

    /// The contiguous elements `off .. off + len`.
    pub(crate) fn slice(&self, at: usize, n: usize) -> Val {
        match self {
            Val::Regs(v) => Val::Regs(v[at..at + n].to_vec()),
            Val::Mem { base, off, .. } => Val::Mem {
                base: *base,
                off: off + at,
                len: n,
            },
        }
    }
}

/// A kernel body being emitted.
pub(crate) struct Emit<'a, 'b, 's> {
    pub(crate) fb: &'a mut FunctionBuilder<'b>,
    sv: &'a mut Services<'s>,
    refs: HashMap<&'static str, FuncRef>,
    scratch: Value,
    /// Scratch elements in use now.
    scratch_len: usize,
    /// The most scratch elements ever in use (the kernel's scratch length).
    peak: usize,
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

fn disp(off: usize) -> i32 {
    // Offsets are checked against MAX_ELEMS by `alloc` and the kernels' entry checks.
    (off * 8) as i32
}

impl<'a, 'b, 's> Emit<'a, 'b, 's> {
    /// An emitter whose scratch buffer is `scratch`.
    pub(crate) fn new(
        fb: &'a mut FunctionBuilder<'b>,
        sv: &'a mut Services<'s>,
        scratch: Value,
    ) -> Self {
        Emit {
            fb,
            sv,
            refs: HashMap::new(),
            scratch,
            scratch_len: 0,
            peak: 0,
        }
    }

    /// The constant `x`.
    pub(crate) fn f64c(&mut self, x: f64) -> Value {
        self.fb.ins().f64const(x)
    }

    /// `len` fresh elements of scratch.
    pub(crate) fn alloc(&mut self, len: usize) -> Result<Val> {
        let off = self.scratch_len;
        self.scratch_len += len;
        self.peak = self.peak.max(self.scratch_len);
        if self.scratch_len > MAX_ELEMS {
            return Err(Error::TooLarge {
                what: "scratch",
                len: self.scratch_len,
            });
        }
        Ok(Val::Mem {
            base: self.scratch,
            off,
            len,
        })
    }

    /// The kernel's scratch length: the most elements ever in use.
    pub(crate) fn scratch_peak(&self) -> usize {
        self.peak
    }

    /// A mark to [`Emit::release`] to: scratch allocated after it can be reused.
    pub(crate) fn mark(&self) -> usize {
        self.scratch_len
    }

    /// Hand scratch allocated since `mark` out again. The caller must no longer use tensors in
    /// that region (values already loaded into registers are unaffected: loads are never moved
    /// past stores).
    pub(crate) fn release(&mut self, mark: usize) {
        self.scratch_len = mark.min(self.scratch_len);
    }

    /// The address of pooled reals.
    pub(crate) fn pool_reals(&mut self, data: &[f64]) -> Value {
        let at = self.sv.pool.reals(data);
        self.fb.ins().iconst(I64, at)
    }

    /// The address of a pooled index table.
    pub(crate) fn pool_indices(&mut self, data: &[usize]) -> Value {
        let d: Vec<i64> = data.iter().map(|&i| i as i64).collect();
        let at = self.sv.pool.indices(&d);
        self.fb.ins().iconst(I64, at)
    }

    /// Element `i` (a compile-time index).
    pub(crate) fn get(&mut self, v: &Val, i: usize) -> Value {
        match v {
            Val::Regs(r) => r[i],
            Val::Mem { base, off, .. } => self.fb.ins().load(F64, flags(), *base, disp(off + i)),
        }
    }

    /// Element `idx` (a run-time `i64` index) of a tensor in memory; a one-element tensor in
    /// registers is returned as is (a broadcast scalar).
    pub(crate) fn get_dyn(&mut self, v: &Val, idx: Value) -> Value {
        match v {
            Val::Regs(r) => {
                debug_assert_eq!(r.len(), 1, "looped access to a tensor in registers");
                r[0]
            }
            Val::Mem { base, off, .. } => {
                let a = self.elem_addr(*base, idx);
                self.fb.ins().load(F64, flags(), a, disp(*off))
            }
        }
    }

    /// `base + 8·idx`.
    fn elem_addr(&mut self, base: Value, idx: Value) -> Value {
        let b = self.fb.ins().ishl_imm_u(idx, 3);
        self.fb.ins().iadd(base, b)
    }

    /// Entry `idx` (run-time) of an index table at `table`.
    pub(crate) fn table_dyn(&mut self, table: Value, idx: Value) -> Value {
        let a = self.elem_addr(table, idx);
        self.fb.ins().load(I64, flags(), a, 0)
    }

    /// Store `x` at element `i` of a tensor in memory.
    pub(crate) fn put(&mut self, dst: &Val, i: usize, x: Value) {
        if let Val::Mem { base, off, .. } = dst {
            self.fb.ins().store(flags(), x, *base, disp(off + i));
        }
    }

    /// Store `x` at element `idx` (run-time) of a tensor in memory.
    pub(crate) fn put_dyn(&mut self, dst: &Val, idx: Value, x: Value) {
        if let Val::Mem { base, off, .. } = dst {
            let a = self.elem_addr(*base, idx);
            self.fb.ins().store(flags(), x, a, disp(*off));
        }
    }

    /// Every element in registers (loads from memory).
    pub(crate) fn regs(&mut self, v: &Val) -> Vec<Value> {
        match v {
            Val::Regs(r) => r.clone(),
            Val::Mem { .. } => (0..v.len()).map(|i| self.get(v, i)).collect(),
        }
    }

    /// The tensor in memory, suitable for looped access: tensors in registers with more than
    /// one element are spilled to fresh scratch.
    pub(crate) fn mem(&mut self, v: &Val) -> Result<Val> {
        match v {
            Val::Regs(r) if r.len() > 1 => {
                let dst = self.alloc(r.len())?;
                for (i, x) in r.clone().into_iter().enumerate() {
                    self.put(&dst, i, x);
                }
                Ok(dst)
            }
            _ => Ok(v.clone()),
        }
    }

    /// A small tensor in memory is loaded into registers; others are returned as they are.
    pub(crate) fn small_to_regs(&mut self, v: Val) -> Val {
        if matches!(v, Val::Mem { .. }) && v.len() <= REG_MAX {
            Val::Regs(self.regs(&v))
        } else {
            v
        }
    }

    /// A counted loop `for i in 0..n { body(i) }` with an `i64` induction variable.
    pub(crate) fn for_range(
        &mut self,
        n: usize,
        mut body: impl FnMut(&mut Self, Value) -> Result<()>,
    ) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let header = self.fb.create_block();
        let inner = self.fb.create_block();
        let exit = self.fb.create_block();
        let i = self.fb.append_block_param(header, I64);
        let zero = self.fb.ins().iconst(I64, 0);
        self.fb.ins().jump(header, &[BlockArg::Value(zero)]);
        self.fb.switch_to_block(header);
        let more = self.fb.ins().icmp_imm_s(IntCC::SignedLessThan, i, n as i64);
        self.fb.ins().brif(more, inner, &[], exit, &[]);
        self.fb.switch_to_block(inner);
        body(self, i)?;
        let next = self.fb.ins().iadd_imm_s(i, 1);
        self.fb.ins().jump(header, &[BlockArg::Value(next)]);
        self.fb.switch_to_block(exit);
        Ok(())
    }

    /// Write `src` into `dst` (in memory), element by element.
    pub(crate) fn copy(&mut self, dst: &Val, src: &Val) -> Result<()> {
        match src {
            Val::Regs(r) => {
                for (i, x) in r.clone().into_iter().enumerate() {
                    self.put(dst, i, x);
                }
            }
            Val::Mem { .. } if src.len() <= REG_MAX => {
                for i in 0..src.len() {
                    let x = self.get(src, i);
                    self.put(dst, i, x);
                }
            }
            Val::Mem { .. } => {
                // Pairs of elements as `f64x2`, then the odd last one.
                let (src, n) = (src.clone(), src.len());
                self.for_range(n / 2, |e, j| {
                    let i = e.fb.ins().ishl_imm_u(j, 1);
                    let from = e.row_addr(&src, i);
                    let x = e.load2_at(from);
                    let to = e.row_addr(dst, i);
                    e.store2_at(to, x);
                    Ok(())
                })?;
                if n % 2 == 1 {
                    let x = self.get(&src, n - 1);
                    self.put(dst, n - 1, x);
                }
            }
        }
        Ok(())
    }

    /// Fill a tensor in memory with `x`.
    pub(crate) fn fill(&mut self, dst: &Val, x: f64) -> Result<()> {
        let c = self.f64c(x);
        if dst.len() <= REG_MAX {
            for i in 0..dst.len() {
                self.put(dst, i, c);
            }
            return Ok(());
        }
        self.for_range(dst.len(), |e, i| {
            e.put_dyn(dst, i, c);
            Ok(())
        })
    }

    /// The concatenation of `parts`: in registers when short, else one tensor in memory (the
    /// part itself when there is only one).
    pub(crate) fn concat(&mut self, parts: &[Val]) -> Result<Val> {
        let len: usize = parts.iter().map(Val::len).sum();
        if len <= REG_MAX {
            let mut r = Vec::with_capacity(len);
            for p in parts {
                r.extend(self.regs(p));
            }
            return Ok(Val::Regs(r));
        }
        if let [one] = parts {
            return Ok(one.clone());
        }
        let dst = self.alloc(len)?;
        let mut at = 0;
        for p in parts {
            let d = dst.slice(at, p.len());
            self.copy(&d, p)?;
            at += p.len();
        }
        Ok(dst)
    }

    fn func_ref(&mut self, name: &'static str) -> Result<FuncRef> {
        if let Some(r) = self.refs.get(name) {
            return Ok(*r);
        }
        let id = *self
            .sv
            .funcs
            .get(name)
            .ok_or_else(|| Error::Codegen(format!("unknown symbol {name}")))?;
        let r = cranelift_module::Module::declare_func_in_func(self.sv.module, id, self.fb.func);
        self.refs.insert(name, r);
        Ok(r)
    }

    /// Call a one-argument math symbol.
    pub(crate) fn call1(&mut self, name: &'static str, x: Value) -> Result<Value> {
        let f = self.func_ref(name)?;
        let inst = self.fb.ins().call(f, &[x]);
        Ok(self.fb.inst_results(inst)[0])
    }

    /// Call a native kernel of [`crate::kernels`] that returns nothing.
    pub(crate) fn call_void(&mut self, name: &'static str, args: &[Value]) -> Result<()> {
        let f = self.func_ref(name)?;
        self.fb.ins().call(f, args);
        Ok(())
    }

    /// The address of the first element of a tensor in memory.
    pub(crate) fn addr(&mut self, v: &Val) -> Value {
        let zero = self.fb.ins().iconst(I64, 0);
        self.row_addr(v, zero)
    }

    /// `xʸ` through the `powf` symbol.
    pub(crate) fn powf(&mut self, x: Value, y: Value) -> Result<Value> {
        let f = self.func_ref(crate::math::POWF)?;
        let inst = self.fb.ins().call(f, &[x, y]);
        Ok(self.fb.inst_results(inst)[0])
    }

    /// The address of element `idx` (run-time) of a tensor in memory, as a pointer value.
    pub(crate) fn row_addr(&mut self, v: &Val, idx: Value) -> Value {
        match v {
            Val::Mem { base, off, .. } => {
                let a = self.elem_addr(*base, idx);
                self.fb.ins().iadd_imm_s(a, (off * 8) as i64)
            }
            // Callers pass tensors in memory; a register tensor has no address.
            Val::Regs(_) => self.fb.ins().iconst(I64, 0),
        }
    }

    /// The `f64` at address `at`.
    pub(crate) fn load_at(&mut self, at: Value) -> Value {
        self.fb.ins().load(F64, flags(), at, 0)
    }

    /// Store an `f64` at address `at`.
    pub(crate) fn store_at(&mut self, at: Value, x: Value) {
        self.fb.ins().store(flags(), x, at, 0);
    }

    /// The `f64x2` at address `at` (8-byte aligned).
    pub(crate) fn load2_at(&mut self, at: Value) -> Value {
        self.fb
            .ins()
            .load(F64X2, MemFlagsData::new().with_notrap(), at, 0)
    }

    /// Store an `f64x2` at address `at` (8-byte aligned).
    pub(crate) fn store2_at(&mut self, at: Value, x: Value) {
        self.fb
            .ins()
            .store(MemFlagsData::new().with_notrap(), x, at, 0);
    }

    /// The scratch pointer.
    pub(crate) fn scratch(&self) -> Value {
        self.scratch
    }
}
