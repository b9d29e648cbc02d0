//! pnode-runtime's tests, one binary (one link): adaptive stepping (`adaptive`, ESDIRK pairs
//! in `adaptive_dirk`), convergence
//! orders (`convergence`), the disk tier of checkpointing (`disk_tier`), bad input
//! (`errors`), discrete-adjoint gradients (`gradient`, `step_adjoint`), θ-methods and DIRKs
//! (`implicit`), failing models (`model_errors`), the PETSc backend (`petsc`, whose tests
//! switch on the `petsc` feature with `cfg`), the statistics snapshots (`statistics`) and
//! tolerance proportionality of adaptive steps (`tolerance_proportionality`). No test changes
//! process-global state (environment, working directory, global allocator): checkpoint files
//! go to temporary directories, so the tests share the binary.
#![allow(missing_docs)]

mod adaptive;
mod adaptive_dirk;
mod common;
mod convergence;
mod disk_tier;
mod errors;
mod gradient;
mod implicit;
mod model_errors;
mod petsc;
mod statistics;
mod step_adjoint;
mod tolerance_proportionality;
