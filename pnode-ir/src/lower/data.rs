//! Files read while lowering: the values of `const NAME = data("path", column = k)`.
//!
//! Constants are folded into the model, so their files are read when the model is lowered,
//! through a [`ConstData`] the front end passes in: `pnodec` and the driver read the
//! filesystem relative to the model file, the macros read at compile time and track the files
//! for rebuilds. [`NoFiles`] (what [`lower`](super::lower) and
//! [`compile_source`](super::compile_source) use) reads none and makes such a constant an
//! error that says so.
//!
//! Shape: a declared shape takes the file's numbers in row-major order and must match their
//! count; without one, a single column (or `column = k`) is a vector of the rows, a wider
//! table a `rows × cols` matrix.

use super::Lr;
use super::codes;
use super::decls::const_size;
use super::exprs::{Cx, error_at};
use super::program::DataSource;
use crate::graph::Tensor;
use crate::shape::Shape;
use pnode_grammar::ast::Decl;
use std::fmt;

/// Numbers read from a data file, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstTable {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows × cols` values, row-major.
    pub values: Vec<f64>,
}

/// Why a constant's file could not be read: the reader's own error, shown as its message.
#[derive(Debug)]
pub struct ConstDataError(pub Box<dyn std::error::Error + Send + Sync>);

impl fmt::Display for ConstDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ConstDataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Reads the files of `const … = data(..)` while lowering.
pub trait ConstData {
    /// The numbers `src` names (`column = k` already applied: then one column), or why they
    /// cannot be read. `None` when this reader reads no files at all.
    fn read(&self, src: &DataSource) -> Option<Result<ConstTable, ConstDataError>>;
}

/// A reader of no files: `const … = data(..)` is an error saying that files are not read
/// here.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFiles;

impl ConstData for NoFiles {
    fn read(&self, _: &DataSource) -> Option<Result<ConstTable, ConstDataError>> {
        None
    }
}

/// The value of `const d = data(src)` with the `declared` shape, if any.
pub(super) fn const_from_file(
    cx: &mut Cx,
    data: &dyn ConstData,
    d: &Decl,
    src: &DataSource,
    declared: Option<Shape>,
) -> Lr<Tensor> {
    let name = &d.name.name;
    let span = d.init.span;
    let table = match data.read(src) {
        None => {
            return Err(cx.report(
                error_at(
                    codes::INITIALIZER,
                    format!("constant `{name}` needs a value"),
                    span,
                    "no files are read here",
                )
                .with_note(
                    "this front end lowers without reading files: lower through \
                     `lower_with` and a `ConstData` reader (pnodec, the driver and the macros \
                     do), or make it a `param` initialized with `data(..)`",
                ),
            ));
        }
        Some(Err(e)) => {
            // The reader's error names the file as it resolved it; the label, as written.
            return Err(cx.report(error_at(
                codes::INITIALIZER,
                format!("cannot read constant `{name}`: {e}"),
                span,
                format!("\"{}\" not read", src.path),
            )));
        }
        Some(Ok(t)) => t,
    };
    let shape = match declared {
        Some(s) => s,
        None if table.cols == 1 => Shape(vec![table.rows]),
        None => Shape(vec![table.rows, table.cols]),
    };
    // A constant read from a file is held like a folded one: it spends the same byte budget.
    const_size(cx, name, &shape, span, true)?;
    if shape.len() != table.values.len() {
        return Err(cx.report(error_at(
            codes::INITIALIZER,
            format!(
                "constant `{name}` of shape {shape} needs {} values; \"{}\" has {} \
                 ({} × {})",
                shape.len(),
                src.path,
                table.values.len(),
                table.rows,
                table.cols
            ),
            span,
            "wrong number of values",
        )));
    }
    Tensor::new(shape, table.values).map_err(|e| cx.shape_error(e, span))
}
