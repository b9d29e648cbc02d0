//! The Rust that `pnode-codegen` emits for the corpus models of
//! [`pnode_codegen::testmodels`], compiled: one struct per model (`LotkaVolterra`,
//! `MlpTanh`, …, and `MlpTanhScratch`, the MLP with every tensor in scratch buffers) and the
//! fused steppers `Rk4` and `Dopri5`. The source is written by `build.rs` into `OUT_DIR`
//! (`generated.rs`).

#![deny(warnings)]

/// A model with all three capabilities (for tables of generated models).
pub trait Model: pnode_runtime::model::RhsJvp + pnode_runtime::model::RhsVjp {}
impl<M: pnode_runtime::model::RhsJvp + pnode_runtime::model::RhsVjp> Model for M {}

/// The generated models and steppers.
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/generated.rs"));
}
