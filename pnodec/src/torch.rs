//! The libtorch backend of the running commands (cargo feature `torch`).
//!
//! `--backend torch` runs the model's right-hand side with libtorch
//! ([`pnode_torch::TorchIrModel`]: tch operations, JVPs by forward-mode AD, VJPs by one
//! autograd backward; the discrete adjoint stays the runtime's). Without `--backend`, a model
//! the JIT does not lower (convolutions, group norms) runs on libtorch with a one-line note.
//! A pnodec built without the feature says how to rebuild it.

use crate::Error;
use pnode_ir::lower::Program;

/// The hint for a model the JIT refuses, in a pnodec built without libtorch.
pub const REBUILD_HINT: &str = "rebuild pnodec with `--features torch` (cargo build -p pnodec \
     --features torch) to run it with libtorch, or run it with `--backend interp`";

/// The libtorch model of `program`'s right-hand side.
#[cfg(feature = "torch")]
pub fn build(program: &Program) -> Result<pnode_torch::TorchIrModel, Error> {
    pnode_torch::TorchIrModel::new(&program.rhs).map_err(|e| {
        Error::Jit(format!(
            "the libtorch backend cannot run model `{}`: {e}",
            program.name
        ))
    })
}

/// `--backend torch` in a pnodec built without libtorch: an error that says how to rebuild.
#[cfg(not(feature = "torch"))]
pub fn build(program: &Program) -> Result<std::convert::Infallible, Error> {
    Err(Error::Jit(format!(
        "model `{}`: this pnodec was built without the libtorch backend; rebuild it with \
         `--features torch` (cargo build -p pnodec --features torch)",
        program.name
    )))
}

/// The note printed when a model the JIT refuses runs on libtorch instead.
pub fn fallback_note(program: &Program, op: &str) -> String {
    format!(
        "note: the JIT does not lower `{op}`; running model `{}` with libtorch (`--backend \
         torch`)",
        program.name
    )
}
