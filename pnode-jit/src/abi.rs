//! The one calling convention of generated code, the JIT module that owns it, and the only
//! place that turns code addresses into callable function pointers.
//!
//! Every kernel pnode-jit generates — an RHS, a JVP, a VJP, a fused forward step, a fused
//! stage recomputation, a fused adjoint step — has the signature
//!
//! ```text
//! extern "C" fn(t: f64, h: f64, u: *const f64, p: *const f64, x: *const f64,
//!               out: *mut f64, scratch: *mut f64)
//! ```
//!
//! over flat `f64` buffers whose lengths are fixed at compile time ([`Lens`]):
//!
//! | kernel | `h` | `u` | `x` | `out` |
//! |---|---|---|---|---|
//! | RHS `f` | unused | state | unused | `f(t, u; θ)` |
//! | JVP | unused | state | tangent `v` | `f_u v` |
//! | VJP | unused | state | cotangent `w` | `[f_uᵀ w, f_θᵀ w]` |
//! | ERK step | step | `u_n` | unused | `u_{n+1}` |
//! | ERK step keeping stages | step | `u_n` | unused | `[Y_1, …, Y_s]`; `u_{n+1}` in `scratch[..n]` |
//! | ERK stage recomputation | step | `u_n` | unused | `[Y_1, …, Y_s]` |
//! | ERK adjoint step | step | `[Y_1, …, Y_s]` | `λ_{n+1}` | `[λ_n, μ]`, `μ` read and updated |
//! | ERK trial step (embedded pair) | step | `u_n` | unused, or `K_1` given | `[Y_1, …, Y_s, u_{n+1}, err, K_1, K_S]` (`K_S`, the last stage, for FSAL pairs only) |
//!
//! `p` is always the flat parameter vector `θ`. `scratch` is the kernel's working memory (its
//! layout table says where each tensor lives); it need not be initialized and nothing in it
//! survives a call. The generated code reads and writes exactly the lengths recorded in
//! [`Lens`], which the crate's safe wrappers check before every call.
//!
//! Set the environment variable `PNODE_JIT_DUMP` to print every kernel's Cranelift IR and
//! machine code to standard error as it is compiled; [`crate::clif`] returns the IR as text.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use cranelift_codegen::Context;
use cranelift_codegen::ir::{AbiParam, Signature, UserFuncName, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use std::collections::HashMap;
use std::sync::Arc;

/// The native type of every kernel (see the module documentation).
type KernelFn =
    unsafe extern "C" fn(f64, f64, *const f64, *const f64, *const f64, *mut f64, *mut f64);

/// The buffer lengths a kernel reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lens {
    /// Length of `u`.
    pub u: usize,
    /// Length of `p`.
    pub p: usize,
    /// Length of `x`.
    pub x: usize,
    /// Length of `out`.
    pub out: usize,
    /// Length of `scratch`.
    pub scratch: usize,
}

/// Constant tensors and index tables the generated code reads by address; boxed slices, so
/// their addresses never change while the code lives.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    reals: Vec<Box<[f64]>>,
    indices: Vec<Box<[i64]>>,
}

impl Pool {
    /// Keep `data` alive with the code and return its address.
    pub(crate) fn reals(&mut self, data: &[f64]) -> i64 {
        let b: Box<[f64]> = data.into();
        let at = b.as_ptr() as i64;
        self.reals.push(b);
        at
    }

    /// Keep `data` alive with the code and return its address.
    pub(crate) fn indices(&mut self, data: &[i64]) -> i64 {
        let b: Box<[i64]> = data.into();
        let at = b.as_ptr() as i64;
        self.indices.push(b);
        at
    }
}

/// What a kernel body emitter receives: the builder, the entry block's parameters and the
/// module services (imported math functions, the constant pool).
pub(crate) struct Services<'a> {
    pub(crate) module: &'a mut JITModule,
    pub(crate) funcs: &'a HashMap<&'static str, FuncId>,
    pub(crate) pool: &'a mut Pool,
}

/// The entry block parameters of a kernel: `[t, h, u, p, x, out, scratch]`.
pub(crate) type Params = [cranelift_codegen::ir::Value; 7];

/// A module being built: kernels are defined one by one, then [`JitBuild::finish`] links them.
pub(crate) struct JitBuild {
    module: JITModule,
    ctx: Context,
    fctx: FunctionBuilderContext,
    funcs: HashMap<&'static str, FuncId>,
    pool: Pool,
    kernels: Vec<(FuncId, Lens)>,
    /// With [`JitBuild::capture_ir`]: every kernel's IR as generated and as optimized.
    captured: Option<Vec<CapturedIr>>,
}

/// One kernel's Cranelift IR, kept by [`JitBuild::capture_ir`].
pub(crate) struct CapturedIr {
    /// The IR the emitters generated (the optimizer's input).
    pub(crate) generated: cranelift_codegen::ir::Function,
    /// The IR after Cranelift's optimizer and legalization (what was lowered to machine code).
    pub(crate) optimized: cranelift_codegen::ir::Function,
    /// The kernel's buffer lengths.
    pub(crate) lens: Lens,
}

fn codegen<E: std::fmt::Display>(e: E) -> Error {
    Error::Codegen(e.to_string())
}

impl JitBuild {
    /// A fresh module for the host machine, optimizing for speed, with the math symbols.
    pub(crate) fn new() -> Result<Self> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(codegen)?;
        flags
            .set("use_colocated_libcalls", "false")
            .map_err(codegen)?;
        flags.set("is_pic", "false").map_err(codegen)?;
        // The IR is generated, not hand-written: skip the verifier in release builds.
        let verify = if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        };
        flags.set("enable_verifier", verify).map_err(codegen)?;
        let isa = cranelift_native::builder()
            .map_err(codegen)?
            .finish(settings::Flags::new(flags))
            .map_err(codegen)?;
        let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
        for (name, f) in crate::math::unary_symbols() {
            jb.symbol(name, f as *const u8);
        }
        jb.symbol(crate::math::POWF, crate::math::powf as *const u8);
        jb.symbol(
            crate::kernels::MATMUL,
            crate::kernels::matmul_symbol() as *const u8,
        );
        jb.symbol(
            crate::kernels::TANH_MAP,
            crate::kernels::tanh_symbol() as *const u8,
        );
        let mut module = JITModule::new(jb);
        let mut funcs = HashMap::new();
        let call_conv = module.target_config().default_call_conv;
        let sig = |params: &[types::Type]| {
            let mut s = Signature::new(call_conv);
            s.params.extend(params.iter().map(|t| AbiParam::new(*t)));
            s.returns.push(AbiParam::new(types::F64));
            s
        };
        for (name, _) in crate::math::unary_symbols() {
            let id = module
                .declare_function(name, Linkage::Import, &sig(&[types::F64]))
                .map_err(codegen)?;
            funcs.insert(name, id);
        }
        let id = module
            .declare_function(
                crate::math::POWF,
                Linkage::Import,
                &sig(&[types::F64, types::F64]),
            )
            .map_err(codegen)?;
        funcs.insert(crate::math::POWF, id);
        // (a, b, c, m, k, n) -> (): see `crate::kernels`.
        let mut mm = Signature::new(call_conv);
        mm.params.extend([types::I64; 6].map(AbiParam::new));
        let id = module
            .declare_function(crate::kernels::MATMUL, Linkage::Import, &mm)
            .map_err(codegen)?;
        funcs.insert(crate::kernels::MATMUL, id);
        // (x, y, n) -> (): see `crate::kernels`.
        let mut map = Signature::new(call_conv);
        map.params.extend([types::I64; 3].map(AbiParam::new));
        let id = module
            .declare_function(crate::kernels::TANH_MAP, Linkage::Import, &map)
            .map_err(codegen)?;
        funcs.insert(crate::kernels::TANH_MAP, id);
        Ok(Self {
            ctx: module.make_context(),
            module,
            fctx: FunctionBuilderContext::new(),
            funcs,
            pool: Pool::default(),
            kernels: Vec::new(),
            captured: None,
        })
    }

    /// Keep the Cranelift IR of every kernel defined from now on ([`JitBuild::take_ir`]).
    pub(crate) fn capture_ir(&mut self) {
        self.captured.get_or_insert_with(Vec::new);
    }

    /// The IR kept since [`JitBuild::capture_ir`], in definition order.
    pub(crate) fn take_ir(&mut self) -> Vec<CapturedIr> {
        self.captured.take().unwrap_or_default()
    }

    /// The signature of every kernel.
    fn kernel_signature(&self) -> Signature {
        let ptr = self.module.target_config().pointer_type();
        let mut s = Signature::new(self.module.target_config().default_call_conv);
        s.params.push(AbiParam::new(types::F64));
        s.params.push(AbiParam::new(types::F64));
        for _ in 0..5 {
            s.params.push(AbiParam::new(ptr));
        }
        s
    }

    /// Define one kernel; `body` emits its code from the entry block (and must end it with a
    /// return) and returns the buffer lengths it uses. Returns the kernel's index.
    pub(crate) fn define(
        &mut self,
        body: impl FnOnce(&mut FunctionBuilder<'_>, Params, &mut Services<'_>) -> Result<Lens>,
    ) -> Result<usize> {
        let index = self.kernels.len();
        let sig = self.kernel_signature();
        let id = self
            .module
            .declare_function(&format!("pnode_kernel_{index}"), Linkage::Local, &sig)
            .map_err(codegen)?;
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(0, id.as_u32());
        let frontend = self.module.target_config();
        let lens = {
            let mut fb = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let entry = fb.create_block();
            fb.append_block_params_for_function_params(entry);
            fb.switch_to_block(entry);
            let p = fb.block_params(entry);
            let params: Params = [p[0], p[1], p[2], p[3], p[4], p[5], p[6]];
            let mut services = Services {
                module: &mut self.module,
                funcs: &self.funcs,
                pool: &mut self.pool,
            };
            let lens = body(&mut fb, params, &mut services);
            fb.seal_all_blocks();
            fb.finalize(frontend);
            lens?
        };
        let generated = self.captured.as_ref().map(|_| self.ctx.func.clone());
        let dump = std::env::var_os("PNODE_JIT_DUMP").is_some();
        if dump {
            eprintln!(
                "; pnode kernel {index}: Cranelift IR\n{}",
                self.ctx.func.display()
            );
            self.ctx.set_disasm(true);
        }
        let defined = self.module.define_function(id, &mut self.ctx);
        if dump && let Some(asm) = self.ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
            eprintln!("; pnode kernel {index}: machine code\n{asm}");
        }
        if let (Some(c), Some(generated)) = (self.captured.as_mut(), generated) {
            c.push(CapturedIr {
                generated,
                optimized: self.ctx.func.clone(),
                lens,
            });
        }
        self.module.clear_context(&mut self.ctx);
        defined.map_err(|e| Error::Codegen(format!("{e:?}")))?;
        self.kernels.push((id, lens));
        Ok(index)
    }

    /// Link every kernel defined so far.
    pub(crate) fn finish(mut self) -> Result<Arc<Code>> {
        self.module.finalize_definitions().map_err(codegen)?;
        let fns = self
            .kernels
            .iter()
            .map(|(id, lens)| {
                let addr = self.module.get_finalized_function(*id);
                // SAFETY: `addr` is the entry of a function this module just finalized, defined
                // with `kernel_signature()` (two f64 then five pointers, the platform's default
                // calling convention, no return value), which is exactly `KernelFn`.
                let f = unsafe { std::mem::transmute::<*const u8, KernelFn>(addr) };
                (f, *lens)
            })
            .collect();
        Ok(Arc::new(Code {
            module: Some(self.module),
            _pool: self.pool,
            fns,
        }))
    }
}

/// Linked machine code: the module's executable memory, the constant pool it reads and the
/// kernels' entry points. Freed when the last [`Kernel`] referring to it is dropped.
pub(crate) struct Code {
    module: Option<JITModule>,
    _pool: Pool,
    fns: Vec<(KernelFn, Lens)>,
}

// SAFETY: after `finalize_definitions` nothing mutates the module, its executable memory or
// the pool: kernels are pure functions of their arguments and only read the pool, so sharing
// or sending `Code` between threads is sound. The module is touched again only by `Drop`, which
// has exclusive access.
unsafe impl Send for Code {}
// SAFETY: see `Send` above; `&Code` only reads immutable data.
unsafe impl Sync for Code {}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code")
            .field("kernels", &self.fns.len())
            .finish()
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the function pointers into this module live only in `self.fns` and in
            // `Kernel`s, which hold an `Arc` of `self`; this is the last owner, so no pointer
            // into the module's memory can be called after it is freed.
            unsafe { m.free_memory() };
        }
    }
}

/// One callable kernel of a [`Code`] (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    /// Keeps the code alive.
    _code: Arc<Code>,
    f: KernelFn,
    lens: Lens,
}

impl Kernel {
    /// Kernel `index` of `code`.
    pub(crate) fn new(code: &Arc<Code>, index: usize) -> Self {
        let (f, lens) = code.fns[index];
        Kernel {
            _code: code.clone(),
            f,
            lens,
        }
    }

    /// The buffer lengths of this kernel.
    pub(crate) fn lens(&self) -> Lens {
        self.lens
    }

    /// Run the kernel after checking every buffer's length.
    #[inline]
    pub(crate) fn call(
        &self,
        t: f64,
        h: f64,
        u: &[f64],
        p: &[f64],
        x: &[f64],
        out: &mut [f64],
        scratch: &mut [f64],
    ) -> Result<()> {
        let (f, l) = (self.f, self.lens);
        crate::error::check_len("u", l.u, u.len())?;
        crate::error::check_len("parameters", l.p, p.len())?;
        crate::error::check_len("x", l.x, x.len())?;
        crate::error::check_len("output", l.out, out.len())?;
        if scratch.len() < l.scratch {
            return Err(Error::Length {
                what: "scratch",
                expected: l.scratch,
                found: scratch.len(),
            });
        }
        // SAFETY: `f` has the `KernelFn` ABI (see `JitBuild::finish`) and its code is alive
        // (`self._code` owns it). The generated code reads at most `l.u`, `l.p`, `l.x` elements
        // of `u`, `p`, `x`, reads and writes at most `l.out` elements of `out` and `l.scratch`
        // of `scratch`, and the lengths were checked just above; `out` and `scratch` are
        // exclusive borrows, so no other reference observes the writes. Generated code does
        // not unwind and calls only the `extern "C"` functions of `crate::math` and
        // `crate::kernels`, which do not panic.
        unsafe {
            f(
                t,
                h,
                u.as_ptr(),
                p.as_ptr(),
                x.as_ptr(),
                out.as_mut_ptr(),
                scratch.as_mut_ptr(),
            )
        };
        Ok(())
    }
}
