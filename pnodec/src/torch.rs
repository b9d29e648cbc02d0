//! The libtorch backend of the running commands (cargo feature `torch`).
//!
//! `--backend torch` runs the model's right-hand side with libtorch
//! ([`pnode_torch::TorchIrModel`]: tch operations, JVPs by forward-mode AD, VJPs by one
//! autograd backward; the discrete adjoint stays the runtime's). Without `--backend`, a model
//! the JIT does not lower (convolutions, group norms) runs on libtorch with a one-line note.
//! A pnodec built without the feature says how to rebuild it.

use crate::{BackendError, Error};
use pnode_ir::lower::Program;

/// The hint for a model the JIT refuses, in a pnodec built without libtorch.
pub const REBUILD_HINT: &str = "rebuild pnodec with `--features torch` (cargo build -p pnodec \
     --features torch) to run it with libtorch, or run it with `--backend interp`";

/// The environment variable that makes one RHS evaluation of the libtorch backend raise a
/// libtorch exception (its 0-based index among the solve's RHS evaluations): a test hook for
/// the error path ([`pnode_torch::TorchIrModel::fail_rhs_at`]); ignored unless it is a number.
pub const FAULT_VAR: &str = "PNODE_TORCH_FAIL_RHS";

/// The libtorch model of `program`'s right-hand side.
#[cfg(feature = "torch")]
pub fn build(program: &Program) -> Result<pnode_torch::TorchIrModel, Error> {
    let mut model =
        pnode_torch::TorchIrModel::new(&program.rhs).map_err(|source| BackendError::Torch {
            model: program.name.clone(),
            source,
        })?;
    if let Some(call) = std::env::var(FAULT_VAR)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        model.fail_rhs_at(call);
    }
    Ok(model)
}

/// `--backend torch` in a pnodec built without libtorch: an error that says how to rebuild.
#[cfg(not(feature = "torch"))]
pub fn build(program: &Program) -> Result<std::convert::Infallible, Error> {
    Err(BackendError::NoTorch {
        model: program.name.clone(),
    }
    .into())
}

/// The note printed when a model the JIT refuses runs on libtorch instead.
pub fn fallback_note(program: &Program, op: &str) -> String {
    format!(
        "note: the JIT does not lower `{op}`; running model `{}` with libtorch (`--backend \
         torch`)",
        program.name
    )
}
