//! `pnode-codegen`: IR → readable Rust source.
//!
//! Given an RHS [`Function`](pnode_ir::Function) of `pnode-ir`, [`generate_model`] emits a struct implementing
//! `pnode_runtime`'s `Rhs`, `RhsJvp` and `RhsVjp`, whose bodies are the function, its symbolic
//! JVP and its symbolic VJP written out as straight-line Rust: scalars become `let` bindings,
//! tensors fixed-size arrays (or scratch buffers of the struct, above
//! [`Options::stack_limit`] or [`Options::stack_budget`]) filled by plain `for` loops, constants literals in a round-trip
//! float format, so the compiled code reproduces the interpreter's arithmetic operation by
//! operation. [`generate_erk_stepper`] emits an explicit Runge–Kutta stepper with its stages
//! unrolled and its coefficients as constants, implementing the runtime's `ForwardStepper` and
//! `AdjointStepper`; [`generate_erk_pair_stepper`] adds, for an embedded pair, the error
//! estimate and the runtime's `EmbeddedStepper` (adaptive stepping). [`to_source`] formats tokens with prettyplease.
//!
//! The generated code depends only on the runtime (named through [`Options::runtime_path`]) and,
//! for the normal CDF and GELU, on `pnode_ir::special` ([`Options::special_path`]). This crate
//! depends on neither Cranelift, libtorch nor PETSc, so a proc macro can use it.
//!
//! ```
//! use pnode_ir::{Builder, Layout};
//! // du/dt = -k u
//! let mut b = Builder::new(Layout::new(1, 1));
//! let u = b.state(0, [1])?;
//! let k = b.param(0, [])?;
//! let ku = b.mul(k, u)?;
//! let f = b.neg(ku)?;
//! let rhs = b.finish_rhs(&[f])?;
//! let tokens = pnode_codegen::generate_model("Decay", &rhs, &Default::default())?;
//! let src = pnode_codegen::to_source(&tokens);
//! assert!(src.contains("pub struct Decay"));
//! assert!(src.contains("let x3 = -x2;"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod emit;
mod erk;
mod erk_pair;
mod index;
mod model;
#[cfg(feature = "testmodels")]
pub mod testmodels;

pub use erk::{
    ErkCoefficients, generate_erk_pair_stepper, generate_erk_stepper, generate_erk_stepper_sized,
};
pub use erk_pair::EmbeddedWeights;
pub use model::generate_model;

use proc_macro2::TokenStream;

/// Everything that can go wrong while generating code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An operation the code generator does not emit (convolutions, group norm and their
    /// backward operations).
    #[error("code generation does not support the {op} operation")]
    Unsupported {
        /// The operation's mnemonic.
        op: &'static str,
    },
    /// Building the JVP or VJP failed.
    #[error(transparent)]
    Ir(#[from] pnode_ir::Error),
    /// The requested type name is not a Rust identifier.
    #[error("`{name}` is not a valid Rust type name")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The function is not an RHS (outputs not totalling the state length, or it reads a
    /// tangent or cotangent buffer).
    #[error("not a right-hand side: {reason}")]
    NotAnRhs {
        /// What is wrong.
        reason: String,
    },
    /// The coefficients do not describe an explicit Runge–Kutta method.
    #[error("tableau {name}: {reason}")]
    InvalidTableau {
        /// The tableau's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Options of the code generator.
#[derive(Clone)]
pub struct Options {
    /// The path under which generated code names the runtime (`::pnode_runtime` by default; a
    /// facade crate re-exporting it passes its own path, e.g. `::pnode::runtime`).
    pub runtime_path: syn::Path,
    /// The path of the special functions (`norm_cdf`), used by GELU and the normal CDF
    /// (`::pnode_ir::special` by default).
    pub special_path: syn::Path,
    /// Tensors of at most this many elements live on the stack (`[f64; N]` locals); larger
    /// ones are scratch buffers of the generated struct, allocated once by `new`.
    pub stack_limit: usize,
    /// The most elements all stack arrays of one method may hold together (so a deep network
    /// cannot overflow a thread's stack); arrays beyond it become scratch buffers.
    pub stack_budget: usize,
    /// The model's opaque layers `(name, input length, output length)`, by index (the `layer`
    /// of its `opaque` nodes): the generated model holds them in a runtime `LayerSet` and its
    /// `θ` is `[declared parameters | the layers' parameters]`. Empty for a model without any.
    pub opaque_layers: Vec<(String, usize, usize)>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = |p: &syn::Path| quote::ToTokens::to_token_stream(p).to_string();
        f.debug_struct("Options")
            .field("runtime_path", &path(&self.runtime_path))
            .field("special_path", &path(&self.special_path))
            .field("stack_limit", &self.stack_limit)
            .field("stack_budget", &self.stack_budget)
            .field("opaque_layers", &self.opaque_layers)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runtime_path: syn::parse_quote!(::pnode_runtime),
            special_path: syn::parse_quote!(::pnode_ir::special),
            stack_limit: 1024,
            stack_budget: 16 * 1024,
            opaque_layers: Vec::new(),
        }
    }
}

/// Format generated tokens as Rust source with prettyplease, one blank line between items.
/// Tokens that do not parse as a file (never produced by this crate) are returned unformatted.
pub fn to_source(tokens: &TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => file
            .items
            .into_iter()
            .map(|item| {
                prettyplease::unparse(&syn::File {
                    shebang: None,
                    attrs: Vec::new(),
                    items: vec![item],
                })
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(_) => tokens.to_string(),
    }
}

/// Parse a type name.
fn type_ident(name: &str) -> Result<syn::Ident, Error> {
    syn::parse_str::<syn::Ident>(name).map_err(|_| Error::InvalidName { name: name.into() })
}
