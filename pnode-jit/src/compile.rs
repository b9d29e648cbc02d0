//! Compiling one IR [`Function`] (an RHS, a JVP or a VJP) to a native kernel.

use crate::abi::{JitBuild, Kernel, Lens, Params};
use crate::emit::{Emit, MAX_ELEMS, Val};
use crate::error::{Error, Result};
use crate::lower::{Bind, Placement, lower_placed};
use cranelift_codegen::ir::InstBuilder;
use pnode_ir::Function;
use std::time::{Duration, Instant};

/// `Err(TooLarge)` if a buffer of `len` elements cannot be addressed.
pub(crate) fn check_size(what: &'static str, len: usize) -> Result<()> {
    if len > MAX_ELEMS {
        Err(Error::TooLarge { what, len })
    } else {
        Ok(())
    }
}

/// The length of the extra buffer `x` of `f` (its tangent or its cotangent buffer).
fn extra_len(f: &Function) -> Result<usize> {
    let l = f.layout();
    match (l.tangent, l.cotangent) {
        (0, w) => Ok(w),
        (v, 0) => Ok(v),
        _ => Err(Error::InvalidModel(
            "a kernel reads at most one of the tangent and cotangent buffers".into(),
        )),
    }
}

/// Define the kernel of `f` in `jb` (ABI row RHS / JVP / VJP of [`crate::abi`]); returns the
/// kernel index and the layout table.
pub(crate) fn define_function(jb: &mut JitBuild, f: &Function) -> Result<(usize, Vec<Placement>)> {
    let l = *f.layout();
    let x_len = extra_len(f)?;
    for (what, len) in [
        ("state", l.state),
        ("parameters", l.param),
        ("tangent or cotangent", x_len),
        ("output", f.output_len()),
    ] {
        check_size(what, len)?;
    }
    let mut places = Vec::new();
    let index = jb.define(|fb, prm: Params, sv| {
        let [t, _h, u, p, x, out, scratch] = prm;
        let mut e = Emit::new(fb, sv, scratch);
        let mem = |base, len| Some(Val::Mem { base, off: 0, len });
        let bind = Bind {
            t,
            bufs: [
                mem(u, l.state),
                mem(p, l.param),
                (l.tangent > 0).then_some(Val::Mem {
                    base: x,
                    off: 0,
                    len: l.tangent,
                }),
                (l.cotangent > 0).then_some(Val::Mem {
                    base: x,
                    off: 0,
                    len: l.cotangent,
                }),
            ],
        };
        let (outs, pl) = lower_placed(&mut e, f, &bind)?;
        places = pl;
        let dst = Val::Mem {
            base: out,
            off: 0,
            len: f.output_len(),
        };
        let mut at = 0;
        for o in &outs {
            e.copy(&dst.slice(at, o.len()), o)?;
            at += o.len();
        }
        e.fb.ins().return_(&[]);
        Ok(Lens {
            u: l.state,
            p: l.param,
            x: x_len,
            out: f.output_len(),
            scratch: e.scratch_len,
        })
    })?;
    Ok((index, places))
}

/// A [`Function`] compiled to native code, with its own scratch buffer.
///
/// [`CompiledFn::eval`] has the semantics of `pnode_ir::Interpreter::eval`: `extra` is the
/// tangent or the cotangent buffer, whichever the function reads (`&[]` for neither), and the
/// outputs, flattened and concatenated, are written to `out`. Every length is checked; a wrong
/// one is an [`Error::Length`], never undefined behaviour.
///
/// ```
/// use pnode_ir::{Builder, Layout};
/// use pnode_jit::CompiledFn;
/// // du/dt = -k u², θ = [k]
/// let mut b = Builder::new(Layout::new(1, 1));
/// let u = b.state(0, [1])?;
/// let k = b.param(0, [])?;
/// let u2 = b.mul(u, u)?;
/// let ku2 = b.mul(k, u2)?;
/// let f = b.neg(ku2)?;
/// let rhs = b.finish_rhs(&[f])?;
/// let mut jit = CompiledFn::new(&rhs)?;
/// let mut out = [0.0];
/// jit.eval(0.0, &[2.0], &[0.5], &[], &mut out)?;
/// assert_eq!(out, [-2.0]);
/// assert!(jit.eval(0.0, &[2.0, 1.0], &[0.5], &[], &mut out).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CompiledFn {
    kernel: Kernel,
    func: Function,
    places: Vec<Placement>,
    scratch: Vec<f64>,
    compile_time: Duration,
}

impl CompiledFn {
    /// Compile `f` (a copy is kept). Convolutions and group norms are
    /// [`Error::Unsupported`].
    pub fn new(f: &Function) -> Result<Self> {
        let start = Instant::now();
        let mut jb = JitBuild::new()?;
        let (index, places) = define_function(&mut jb, f)?;
        let code = jb.finish()?;
        let kernel = Kernel::new(&code, index);
        let scratch = vec![0.0; kernel.lens().scratch];
        Ok(CompiledFn {
            kernel,
            func: f.clone(),
            places,
            scratch,
            compile_time: start.elapsed(),
        })
    }

    /// Evaluate at `(t, u, θ)` with `extra` the tangent or cotangent (see the type's docs).
    pub fn eval(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        extra: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        self.kernel
            .call(t, 0.0, u, p, extra, out, &mut self.scratch)
    }

    /// The function compiled.
    pub fn function(&self) -> &Function {
        &self.func
    }

    /// Total length of the flattened outputs.
    pub fn output_len(&self) -> usize {
        self.func.output_len()
    }

    /// The layout table: where each node of [`CompiledFn::function`] (in arena order) lives.
    pub fn layout_table(&self) -> &[Placement] {
        &self.places
    }

    /// Length of the kernel's scratch buffer.
    pub fn scratch_len(&self) -> usize {
        self.scratch.len()
    }

    /// Wall time of IR → native code (code generation and linking).
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }
}
