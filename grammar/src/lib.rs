//! The `.pode` model language: a pest grammar (`src/pode.pest`), a parser to a spanned
//! [`ast`], renderer-neutral [`Diagnostic`]s and a canonical printer ([`print`](fn@print)).
//!
//! ```
//! let source = "model decay\nstate u = 1.0\nparam k = 0.5\nd(u)/dt = -k * u\n";
//! let parsed = pnode_grammar::parse(source);
//! assert!(parsed.diagnostics.is_empty());
//! let text = pnode_grammar::print(&parsed.model);
//! assert_eq!(text, "model decay\n\nstate u = 1.0\n\nparam k = 0.5\n\nd(u)/dt = -k * u\n");
//! assert_eq!(pnode_grammar::parse(&text).model.without_spans(), parsed.model.without_spans());
//! ```
//!
//! The language reference is `grammar/README.md`. Parsing never panics: every problem is a
//! [`Diagnostic`], and parsing goes on after an error item by item so that each broken item
//! is reported, up to [`MAX_ERRORS`]. A file is at most [`MAX_SOURCE_BYTES`] long, and parsing
//! is linear in its length. The checks made here need no name resolution (duplicate blocks, options and
//! definitions, unknown options and layer kinds); names, shapes and which options fit which
//! method are checked by the IR.

pub mod ast;
mod builder;
mod checks;
pub mod diagnostic;
mod errors;
mod parser;
mod printer;
mod scan;

pub use ast::*;
pub use checks::{
    LAYER_KINDS, SOLVE_OPTIONS, TRAIN_OPTIONS, did_you_mean, edit_distance, known_options,
};
pub use diagnostic::{Diagnostic, Label, Severity, is_abort_note, limit_errors, line_col};
pub use parser::{
    MAX_ERRORS, MAX_EXPR_DEPTH, MAX_ITEM_OPERANDS, MAX_NESTING, MAX_SOURCE_BYTES, PARSE_STACK,
    Parsed, parse, parse_expr, too_large_diagnostic,
};
pub use printer::print;

/// The stable codes of the diagnostics this crate emits.
pub mod codes {
    /// A syntax error: the text does not match the grammar.
    pub const SYNTAX: &str = "P001";
    /// Brackets or an expression nested too deep.
    pub const TOO_DEEP: &str = "P002";
    /// The `model NAME` header is missing, repeated or not first.
    pub const MODEL_HEADER: &str = "P003";
    /// A second `solve` or `train` block, or a second `loss`.
    pub const DUPLICATE_SECTION: &str = "P004";
    /// An option given twice in a block.
    pub const DUPLICATE_OPTION: &str = "P005";
    /// An option the block does not know.
    pub const UNKNOWN_OPTION: &str = "P006";
    /// A name defined twice (`state`, `param`, `const`, `layer`, `let`).
    pub const DUPLICATE_DEFINITION: &str = "P007";
    /// A number out of range or an unknown string escape.
    pub const INVALID_LITERAL: &str = "P008";
    /// A positional argument after a keyword argument.
    pub const ARGUMENT_ORDER: &str = "P009";
    /// A keyword argument given twice.
    pub const DUPLICATE_ARGUMENT: &str = "P010";
    /// An unknown layer kind.
    pub const UNKNOWN_LAYER: &str = "P011";
    /// A block whose `{` is never closed.
    pub const UNCLOSED_BLOCK: &str = "P012";
    /// A file longer than [`MAX_SOURCE_BYTES`](crate::MAX_SOURCE_BYTES), or an item with more
    /// than [`MAX_ITEM_OPERANDS`](crate::MAX_ITEM_OPERANDS) operands.
    pub const TOO_LARGE: &str = "P013";
}
