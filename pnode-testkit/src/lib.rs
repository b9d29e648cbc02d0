//! What the tests of several pnode crates share, so that no test includes another crate's test
//! sources by `#[path]` and no helper is written twice.
//!
//! * [`corpus`]: the `.pode` corpus at the workspace root (`tests/corpus/{ok,err,err-semantic}`)
//!   with the `# error-at: LINE:COL[, LINE:COL…]` positions of its error files;
//! * [`numeric`]: vector norms and error measures (`rel_err`, `rel_max`, `same_bits`, …);
//! * [`alloc`]: a counting global allocator for the no-allocation tests;
//! * [`cpu`]: the calling thread's CPU time (benchmarks and work-counting tests);
//! * with the feature `ir`: [`models`] (the model tables: `pnode_ir::testmodels` and the larger
//!   models that take the JIT's looped paths), [`derivatives`] (`eval` and the JVP/VJP checks
//!   against central differences and the dot-product test) and [`random_ir`] (the random-IR
//!   generator of the property tests), all gathered in [`prelude`].
//!
//! A dev-dependency only (`publish = false`); it depends on the grammar and, with `ir`, on the
//! IR without its runtime, never on a back end.

pub mod alloc;
pub mod corpus;
pub mod cpu;
pub mod numeric;

#[cfg(feature = "ir")]
pub mod derivatives;
#[cfg(feature = "ir")]
pub mod models;
#[cfg(feature = "ir")]
pub mod random_ir;

/// The model tables, the numeric helpers and the derivative checks, for `use …::prelude::*`.
#[cfg(feature = "ir")]
pub mod prelude {
    pub use crate::derivatives::{Errors, check, eval};
    pub use crate::models::*;
    pub use crate::numeric::*;
}
