//! An ODE block inside a tch model: `y = block.forward(&x)` solves `du/dt = f(t, u; θ)` from
//! `u(t_0) = x` and returns `u(t_N)` as a tensor that joins the caller's autograd graph, so
//! `loss.backward()` fills the gradients of the layers before the block (through `dL/dx`), of
//! the layers after it, and of the block's own parameters.
//!
//! The forward solve runs without gradient tracking, keeping only the checkpoints of the
//! block's schedule. The outputs are attached to a custom autograd node (`csrc/shim.cpp`,
//! a `torch::autograd::Node` built against the same libtorch headers tch uses) whose inputs are
//! `x` and the parameters and whose backward calls back into Rust: it runs the discrete-adjoint
//! reverse sweep from the output gradients and returns `(dL/dx, dL/dθ)` to the autograd engine,
//! which routes them on (into `.grad` of the parameters, into the stem's graph for `x`). So
//! the block's memory is its checkpoint schedule's, not the graph of every RHS evaluation.
//!
//! Why a C++ node rather than a Rust-side trick: tch exposes no custom autograd functions or
//! tensor hooks; a node is the only way for a backward pass driven by libtorch to call Rust.
//! Each forward call owns its checkpoints (the node drops them with the graph), so a block used
//! twice in one model, or a graph dropped without backward, is handled.

use std::ffi::{c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use pnode_runtime::adaptive::{AdaptiveCheckpointing, AdaptiveOptions};
use pnode_runtime::checkpoint::{Checkpointing, Stats};
use pnode_runtime::{AdaptiveStats, Tableau, TimeGrid};
use tch::Tensor;
use torch_sys::C_tensor;

use crate::error::{Error, Result, panic_message};
use crate::ffi;
use crate::model::TensorRhs;
use crate::solver::TensorSolver;

struct Shared {
    model: Box<dyn TensorRhs + Send>,
    template: TensorSolver,
    last_stats: Stats,
    /// The accepted grid and controller counts of the last forward call of an adaptive block.
    last_adaptive: Option<(Vec<f64>, AdaptiveStats)>,
}

/// A neural-ODE block: a tensor right-hand side, an explicit tableau, a grid and a checkpoint
/// schedule, usable as a layer of a tch model.
#[derive(Clone)]
pub struct OdeBlock {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for OdeBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OdeBlock").finish_non_exhaustive()
    }
}

/// State of one forward call, owned by its autograd node.
struct Call {
    shared: Arc<Mutex<Shared>>,
    solver: TensorSolver,
}

impl OdeBlock {
    /// A block integrating `model` with `tableau` over `grid`, returning the solution at
    /// `output_times` (from [`OdeBlock::forward_outputs`]; [`OdeBlock::forward`] returns the
    /// last), checkpointing as `checkpointing` says.
    pub fn new(
        model: impl TensorRhs + Send + 'static,
        tableau: Tableau,
        grid: TimeGrid,
        output_times: &[f64],
        checkpointing: Checkpointing,
    ) -> Result<Self> {
        if output_times.is_empty() {
            return Err(Error::Usage(
                "an ODE block needs at least one output time".into(),
            ));
        }
        let template = TensorSolver::new(tableau, grid, output_times, checkpointing)?;
        Ok(Self::with_template(model, template))
    }

    /// A block with adaptive steps (the embedded pair `tableau`, error control as `options`
    /// say, see [`crate::solver::adaptive`]) from `t0` to the last of `output_times`,
    /// checkpointing the accepted steps as `checkpointing` says. Each forward call chooses its
    /// own grid; its backward is the discrete adjoint on that grid.
    pub fn adaptive(
        model: impl TensorRhs + Send + 'static,
        tableau: Tableau,
        t0: f64,
        output_times: &[f64],
        options: AdaptiveOptions,
        checkpointing: AdaptiveCheckpointing,
    ) -> Result<Self> {
        let template = TensorSolver::adaptive(tableau, t0, output_times, options, checkpointing)?;
        Ok(Self::with_template(model, template))
    }

    fn with_template(model: impl TensorRhs + Send + 'static, template: TensorSolver) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                model: Box::new(model),
                template,
                last_stats: Stats::default(),
                last_adaptive: None,
            })),
        }
    }

    /// A block returning only the final state `u(t_N)`.
    pub fn final_state(
        model: impl TensorRhs + Send + 'static,
        tableau: Tableau,
        grid: TimeGrid,
        checkpointing: Checkpointing,
    ) -> Result<Self> {
        let t_end = grid.end();
        Self::new(model, tableau, grid, &[t_end], checkpointing)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Shared>> {
        self.shared
            .lock()
            .map_err(|_| Error::Usage("the ODE block was poisoned by an earlier panic".into()))
    }

    /// Forward calls whose autograd graphs are still alive, each holding its checkpoints until
    /// its backward has run and its outputs are dropped.
    pub fn live_calls(&self) -> usize {
        Arc::strong_count(&self.shared) - 1
    }

    /// Statistics of the last completed forward (and backward, once it ran) of this block.
    pub fn stats(&self) -> Result<Stats> {
        Ok(self.lock()?.last_stats)
    }

    /// The accepted grid of the last forward call of an adaptive block (`None` for a
    /// fixed-grid block or before the first call).
    pub fn accepted_times(&self) -> Result<Option<Vec<f64>>> {
        Ok(self.lock()?.last_adaptive.as_ref().map(|(t, _)| t.clone()))
    }

    /// The step controller's counts of the last forward call of an adaptive block.
    pub fn adaptive_stats(&self) -> Result<Option<AdaptiveStats>> {
        Ok(self.lock()?.last_adaptive.as_ref().map(|(_, s)| *s))
    }

    /// The statistics the cost model predicts for one forward + backward with input like `x`.
    pub fn predicted_stats(&self, x: &Tensor) -> Result<Stats> {
        self.lock()?.template.predicted_stats(x)
    }

    /// The solution at the last output time, differentiable with respect to `x` and the
    /// block's parameters through the discrete adjoint.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_outputs(x)?.pop().expect("at least one output"))
    }

    /// The solution at every output time, each differentiable through the discrete adjoint.
    pub fn forward_outputs(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let (outputs, call, params) = {
            let mut shared = self.lock()?;
            let Shared {
                model,
                template,
                last_stats,
                last_adaptive,
            } = &mut *shared;
            // Plans once per state size, on the template, so later calls reuse the schedule.
            template.prepare(x)?;
            let mut solver = template.spawn();
            let outputs: Vec<Tensor> = solver
                .forward(model.as_mut(), x)?
                .iter()
                .map(Tensor::shallow_clone)
                .collect();
            *last_stats = solver.stats();
            *last_adaptive = solver
                .adaptive_stats()
                .map(|counts| (solver.accepted_times(), counts));
            // The node will own the solver; its kept outputs must not share the returned
            // tensors' autograd metadata (whose grad_fn is the node): that cycle would keep
            // every graph, checkpoints included, alive forever.
            solver.detach_outputs();
            let params: Vec<Tensor> = model
                .parameters()
                .iter()
                .map(Tensor::shallow_clone)
                .collect();
            let call = Call {
                shared: self.shared.clone(),
                solver,
            };
            (outputs, call, params)
        };
        let needs_grad =
            ffi::grad_enabled() && (x.requires_grad() || params.iter().any(Tensor::requires_grad));
        if !needs_grad {
            return Ok(outputs);
        }
        let mut inputs: Vec<&Tensor> = vec![x];
        inputs.extend(params.iter());
        let refs: Vec<&Tensor> = outputs.iter().collect();
        let state = Box::into_raw(Box::new(call)).cast::<c_void>();
        ffi::attach_backward(&inputs, &refs, state, call_backward, call_drop)?;
        Ok(outputs)
    }
}

impl Call {
    fn backward(&mut self, grads: Vec<Option<Tensor>>) -> Result<Vec<Tensor>> {
        let dl_du: Vec<Tensor> = grads
            .into_iter()
            .zip(self.solver.outputs())
            .map(|(g, u)| g.unwrap_or_else(|| u.zeros_like()))
            .collect();
        let mut shared = self
            .shared
            .lock()
            .map_err(|_| Error::Usage("the ODE block was poisoned by an earlier panic".into()))?;
        let grad = self.solver.backward(shared.model.as_mut(), &dl_du);
        shared.last_stats = self.solver.stats();
        let grad = grad?;
        let mut out = vec![grad.du0];
        out.extend(grad.dparams);
        Ok(out)
    }
}

/// The node's backward: gradients of the outputs in, `(dL/dx, dL/dθ…)` out.
#[allow(unsafe_code)]
unsafe extern "C" fn call_backward(
    state: *mut c_void,
    grads: *mut *mut C_tensor,
    n_grads: c_int,
    out: *mut *mut C_tensor,
    n_out: c_int,
) -> *mut c_char {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `state` is the `Call` this node owns; the engine runs one backward of a
        // node at a time. `grads` holds `n_grads` NULL-or-fresh handles that we now own.
        let call = unsafe { &mut *state.cast::<Call>() };
        let grads: Vec<Option<Tensor>> = (0..n_grads as usize)
            .map(|i| unsafe { ffi::from_raw(*grads.add(i)) })
            .collect();
        let values = call.backward(grads)?;
        if values.len() != n_out as usize {
            return Err(Error::Usage(format!(
                "the ODE block's parameters changed between forward and backward ({} inputs, {} \
                 gradients)",
                n_out,
                values.len()
            )));
        }
        for (i, v) in values.into_iter().enumerate() {
            // SAFETY: `out` has `n_out` entries; the shim takes ownership of each handle.
            unsafe { *out.add(i) = ffi::into_raw(v) };
        }
        Ok(())
    }));
    match result {
        Ok(Ok(())) => std::ptr::null_mut(),
        Ok(Err(e)) => ffi::c_message(&format!("pnode ODE block backward: {e}")),
        Err(payload) => ffi::c_message(&format!(
            "pnode ODE block backward panicked: {}",
            panic_message(payload.as_ref())
        )),
    }
}

/// Drops the `Call` a node owned (its checkpoints go with it).
#[allow(unsafe_code)]
unsafe extern "C" fn call_drop(state: *mut c_void) {
    // SAFETY: `state` came from `Box::into_raw` in `forward_outputs` and is dropped once.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        drop(unsafe { Box::from_raw(state.cast::<Call>()) })
    }));
}
