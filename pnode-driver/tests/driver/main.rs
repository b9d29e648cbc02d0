//! pnode-driver's tests, one binary (one link): adaptive steps (`adaptive`), the shared corpus through the driver
//! (`corpus`), bad input (`errors`), loss gradients against finite differences (`gradients`),
//! what `Setup::new` resolves (`setup`), the explicit-stepper hook (`stepper`) and training
//! (`train`). No test changes process-global state (environment, working directory, global
//! allocator), so they share the binary; data files go to temporary directories.
#![allow(missing_docs)]

mod adaptive;
mod common;
mod corpus;
mod errors;
mod gradients;
mod setup;
mod stepper;
mod train;
