//! Safe wrappers over `csrc/shim.cpp`, the libtorch C++ API that tch does not expose.
//!
//! Tensors cross as tch's `C_tensor` handles (heap-allocated `at::Tensor`): a handle the shim
//! returns is owned by the Rust [`Tensor`] wrapping it; a handle Rust passes for the shim to
//! keep is forgotten on the Rust side ([`into_raw`]).

#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};

use tch::Tensor;
use torch_sys::C_tensor;

use crate::error::{Error, Result};

/// Backward callback of an ODE-block node: see `pnode_backward_fn` in `csrc/shim.cpp`.
pub(crate) type BackwardFn = unsafe extern "C" fn(
    state: *mut c_void,
    grads: *mut *mut C_tensor,
    n_grads: c_int,
    out: *mut *mut C_tensor,
    n_out: c_int,
) -> *mut c_char;

/// Drops the state of an ODE-block node.
pub(crate) type DropFn = unsafe extern "C" fn(state: *mut c_void);

unsafe extern "C" {
    fn pnode_free_message(msg: *mut c_char);
    fn pnode_alloc_message(msg: *const c_char, len: usize) -> *mut c_char;
    fn pnode_grad_enabled() -> c_int;
    fn pnode_attach_backward(
        inputs: *const *mut C_tensor,
        n_inputs: c_int,
        outputs: *const *mut C_tensor,
        n_outputs: c_int,
        state: *mut c_void,
        backward: BackwardFn,
        drop: DropFn,
    ) -> *mut c_char;
    fn pnode_vjp(
        out: *mut C_tensor,
        cot: *mut C_tensor,
        inputs: *const *mut C_tensor,
        n_inputs: c_int,
        grads: *mut *mut C_tensor,
        create_graph: c_int,
    ) -> *mut c_char;
    fn pnode_add_scaled(
        y: *mut C_tensor,
        x: *mut C_tensor,
        alpha: f64,
        result: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn pnode_add_scaled_(y: *mut C_tensor, x: *mut C_tensor, alpha: f64) -> *mut c_char;
    fn pnode_enter_dual_level(level: *mut i64) -> *mut c_char;
    fn pnode_exit_dual_level(level: i64) -> *mut c_char;
    fn pnode_make_dual(
        primal: *mut C_tensor,
        tangent: *mut C_tensor,
        level: i64,
        result: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn pnode_tangent(dual: *mut C_tensor, level: i64, tangent: *mut *mut C_tensor) -> *mut c_char;
}

fn raw(t: &Tensor) -> *mut C_tensor {
    t.as_ptr() as *mut C_tensor
}

/// Hands `t`'s handle over to C++, which deletes it.
pub(crate) fn into_raw(t: Tensor) -> *mut C_tensor {
    let ptr = raw(&t);
    std::mem::forget(t);
    ptr
}

/// Wraps a handle the shim allocated; `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or a live `at::Tensor*` from `new`, owned by nobody else.
pub(crate) unsafe fn from_raw(ptr: *mut C_tensor) -> Option<Tensor> {
    // SAFETY: the caller guarantees ownership of a live handle.
    (!ptr.is_null()).then(|| unsafe { Tensor::from_ptr(ptr) })
}

/// Turns a shim result into `Ok(())` or the error it carries, freeing the message.
fn check(msg: *mut c_char) -> Result<()> {
    if msg.is_null() {
        return Ok(());
    }
    // SAFETY: non-NULL results are NUL-terminated strings from malloc, ours to free.
    let text = unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned();
    unsafe { pnode_free_message(msg) };
    Err(Error::Torch(crate::error::trim_torch_message(&text)))
}

/// A malloc'd C string for the shim to free (a callback's error).
pub(crate) fn c_message(text: &str) -> *mut c_char {
    // SAFETY: reads `len` bytes of a live str.
    unsafe { pnode_alloc_message(text.as_ptr().cast(), text.len()) }
}

/// Whether autograd records operations on this thread now (`at::GradMode::is_enabled`).
pub(crate) fn grad_enabled() -> bool {
    // SAFETY: no arguments; reads a thread-local flag.
    unsafe { pnode_grad_enabled() != 0 }
}

/// `(∂out/∂inputs[i])ᵀ cot` for every input, zeros where `out` does not depend on it; frees
/// the graph behind `out` (one backward pass).
pub(crate) fn vjp(out: &Tensor, cot: &Tensor, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    vjp_impl(out, cot, inputs, false)
}

fn vjp_impl(
    out: &Tensor,
    cot: &Tensor,
    inputs: &[&Tensor],
    create_graph: bool,
) -> Result<Vec<Tensor>> {
    let ins: Vec<*mut C_tensor> = inputs.iter().map(|t| raw(t)).collect();
    let mut grads = vec![std::ptr::null_mut(); ins.len()];
    // SAFETY: all handles are live for the call; the shim fills `grads` with new handles.
    check(unsafe {
        pnode_vjp(
            raw(out),
            raw(cot),
            ins.as_ptr(),
            ins.len() as c_int,
            grads.as_mut_ptr(),
            c_int::from(create_graph),
        )
    })?;
    // SAFETY: on success every entry is a fresh handle.
    Ok(grads
        .into_iter()
        .map(|g| unsafe { from_raw(g) }.expect("pnode_vjp returns a tensor per input"))
        .collect())
}

/// `y + α x` as one op.
pub(crate) fn add_scaled(y: &Tensor, x: &Tensor, alpha: f64) -> Result<Tensor> {
    let mut out = std::ptr::null_mut();
    // SAFETY: live handles; the shim writes a fresh handle on success.
    check(unsafe { pnode_add_scaled(raw(y), raw(x), alpha, &mut out) })?;
    // SAFETY: fresh handle.
    Ok(unsafe { from_raw(out) }.expect("pnode_add_scaled returns a tensor"))
}

/// `y += α x` in place.
pub(crate) fn add_scaled_(y: &Tensor, x: &Tensor, alpha: f64) -> Result<()> {
    // SAFETY: live handles.
    check(unsafe { pnode_add_scaled_(raw(y), raw(x), alpha) })
}

/// Makes `outputs` the outputs of a new autograd node over `inputs` whose backward is
/// `backward(state, …)`; the node owns `state` (dropped with `drop`, also on error).
pub(crate) fn attach_backward(
    inputs: &[&Tensor],
    outputs: &[&Tensor],
    state: *mut c_void,
    backward: BackwardFn,
    drop: DropFn,
) -> Result<()> {
    let ins: Vec<*mut C_tensor> = inputs.iter().map(|t| raw(t)).collect();
    let outs: Vec<*mut C_tensor> = outputs.iter().map(|t| raw(t)).collect();
    // SAFETY: live handles for the call; ownership of `state` passes to the shim.
    check(unsafe {
        pnode_attach_backward(
            ins.as_ptr(),
            ins.len() as c_int,
            outs.as_ptr(),
            outs.len() as c_int,
            state,
            backward,
            drop,
        )
    })
}

/// Serialises forward-mode AD across threads: libtorch keeps one process-wide stack of
/// forward-AD levels and refuses a second level while one is open ("Nested forward mode AD is
/// not supported"), so two threads computing JVPs at once would make one of them fail.
static FORWARD_AD: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// Whether this thread is inside [`jvp_forward`] (a nested call is an error, not a deadlock).
    static IN_FORWARD_AD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Clears [`IN_FORWARD_AD`] when [`jvp_forward`] leaves, by return or by unwinding.
struct ForwardAdScope;

impl Drop for ForwardAdScope {
    fn drop(&mut self) {
        IN_FORWARD_AD.with(|flag| flag.set(false));
    }
}

/// `f_u(u) v` in one forward pass of `f` with forward-mode AD: `f` receives the dual tensor
/// `u + ε v` (at a fresh forward-AD level, left again afterwards whatever happens) and the
/// tangent of its result is returned. Returns `f`'s primal output too.
///
/// One JVP runs at a time in the process (libtorch's forward-AD levels are global, see
/// [`FORWARD_AD`]); calling it again from inside `f` is an error.
pub(crate) fn jvp_forward<E>(
    u: &Tensor,
    v: &Tensor,
    f: impl FnOnce(&Tensor) -> std::result::Result<Tensor, E>,
) -> Result<std::result::Result<(Tensor, Tensor), E>> {
    if IN_FORWARD_AD.with(|flag| flag.replace(true)) {
        return Err(Error::Torch(
            "nested forward-mode JVP: the model's function computed a JVP itself".into(),
        ));
    }
    let _scope = ForwardAdScope;
    // A panic in another thread's `f` poisons the lock but leaves no level open (the level is
    // released before the guard drops), so the poison carries no broken state.
    let _serial = FORWARD_AD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut level = 0i64;
    // SAFETY: writes one integer.
    check(unsafe { pnode_enter_dual_level(&mut level) })?;
    // Leaves the level if `f` unwinds (the normal path leaves it below and checks the result).
    struct OpenLevel(Option<i64>);
    impl Drop for OpenLevel {
        fn drop(&mut self) {
            if let Some(level) = self.0.take() {
                // SAFETY: releases a level this call entered; its error message is freed.
                let _ = check(unsafe { pnode_exit_dual_level(level) });
            }
        }
    }
    let mut open = OpenLevel(Some(level));
    let result = (|| -> Result<std::result::Result<(Tensor, Tensor), E>> {
        let mut dual = std::ptr::null_mut();
        // SAFETY: live handles; a fresh handle on success.
        check(unsafe { pnode_make_dual(raw(u), raw(v), level, &mut dual) })?;
        // SAFETY: fresh handle.
        let dual = unsafe { from_raw(dual) }.expect("pnode_make_dual returns a tensor");
        let out = match f(&dual) {
            Ok(out) => out,
            Err(e) => return Ok(Err(e)),
        };
        let mut tangent = std::ptr::null_mut();
        // SAFETY: live handle; a fresh handle on success.
        check(unsafe { pnode_tangent(raw(&out), level, &mut tangent) })?;
        // SAFETY: fresh handle.
        let tangent = unsafe { from_raw(tangent) }.expect("pnode_tangent returns a tensor");
        Ok(Ok((out.detach(), tangent)))
    })();
    open.0 = None;
    // SAFETY: releases the level entered above.
    let exit = check(unsafe { pnode_exit_dual_level(level) });
    let value = result?;
    exit?;
    Ok(value)
}
