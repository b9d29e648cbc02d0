//! The crate's error type.

/// Everything that can go wrong in `pnode-jit`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An operation the Cranelift backend does not lower (convolutions, group norm and their
    /// adjoints: use the interpreter-backed `pnode_ir::runtime::IrModel` for those models).
    #[error("the JIT backend does not support the operation `{op}`")]
    Unsupported {
        /// The operation's mnemonic (as printed by the IR printer).
        op: &'static str,
    },
    /// An error from the IR (for example while deriving the JVP or VJP).
    #[error(transparent)]
    Ir(#[from] pnode_ir::Error),
    /// Cranelift could not compile or link the generated code.
    #[error("code generation failed: {0}")]
    Codegen(String),
    /// A buffer of the wrong length.
    #[error("{what}: expected length {expected}, found {found}")]
    Length {
        /// Which buffer.
        what: &'static str,
        /// The length the compiled function needs.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A function or step whose buffers are too large for the 32-bit displacements of the
    /// generated code.
    #[error("{what} needs {len} elements, more than the JIT backend addresses")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its length in elements.
        len: usize,
    },
    /// Adaptive stepping (the trial-step kernels of an embedded pair) asked of a tableau
    /// without embedded weights.
    #[error(
        "`{method}` has no embedded error estimate (adaptive stepping needs a pair such as dopri5, tsit5, bosh3 or fehlberg45)"
    )]
    NoErrorEstimate {
        /// The tableau's name.
        method: String,
    },
    /// A function that cannot serve as the right-hand side asked for.
    #[error("invalid model: {0}")]
    InvalidModel(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// `Ok(())` if `found == expected`, else [`Error::Length`].
pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::Length {
            what,
            expected,
            found,
        })
    }
}
