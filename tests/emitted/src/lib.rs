//! The Rust that `pnode-codegen` emits for the corpus models of
//! [`pnode_codegen::testmodels`], compiled: one struct per model (`LotkaVolterra`, `MlpTanh`,
//! …; `MlpTanhScratch`, the MLP with every tensor in scratch buffers; `MlpTanhBudget`, with a
//! small stack budget; `Random0`, … and `Edge0`, … with their tables), and the fused steppers
//! `Rk4`, `Dopri5` and `Fehlberg45` (the last two pairs, implementing `EmbeddedStepper` too).
//! `build.rs` writes the source into `OUT_DIR` (`generated.rs`).

#![deny(warnings)]

/// A model with all three capabilities (for tables of generated models).
pub trait Model: pnode_runtime::model::RhsJvp + pnode_runtime::model::RhsVjp {}
impl<M: pnode_runtime::model::RhsJvp + pnode_runtime::model::RhsVjp> Model for M {}

/// The generated models and steppers.
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/generated.rs"));
}
