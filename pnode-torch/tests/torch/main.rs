//! pnode-torch's tests but for the trained demos, one binary (one link; feature `torch`):
//! adaptive stepping against the fixed grid and the runtime (`adaptive`), gradients against
//! autograd backprop (`autograd_oracle`), `OdeBlock` inside tch models
//! (`block`), `FlatTorchModel` (`flat`), lowered `.pode` models on libtorch (`ir`) and
//! `TorchLayer` (`opaque`). They draw random tensors from libtorch's global generator but
//! assert nothing that depends on which values they draw, so they share the binary; the
//! seeded demo trainings, which do, have their own (`tests/demo`).
#![allow(missing_docs)]

mod adaptive;
mod autograd_oracle;
mod block;
mod common;
mod flat;
mod ir;
mod opaque;
