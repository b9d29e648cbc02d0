//! From source text to [`Model`]: pest does the recognizing (`pode.pest`), [`crate::builder`]
//! turns pest's pairs into the spanned AST.
//!
//! Error handling: the whole file is parsed in one go; if that fails, the file is split into
//! items by a pre-scan ([`crate::scan`]) and each item (and, inside a broken block, each option)
//! is parsed alone, so every broken item gives its own diagnostic. Input nested deeper than
//! [`MAX_NESTING`] brackets, or whose expression tree would be deeper than [`MAX_EXPR_DEPTH`],
//! is rejected with a diagnostic before anything recurses that deep.

use crate::ast::*;
use crate::builder::Builder;
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::errors::syntax_error;
use crate::scan::{self, Chunk};
use pest::Parser as _;

#[allow(missing_docs)]
mod generated {
    #[derive(pest_derive::Parser)]
    #[grammar = "pode.pest"]
    pub struct PodeParser;
}
pub(crate) use generated::{PodeParser, Rule};

/// The deepest bracket nesting accepted (`(`, `[`, `{` together).
pub const MAX_NESTING: usize = 256;
/// The deepest expression tree accepted (a chain `a + b + …` of `n` terms is `n` deep).
pub const MAX_EXPR_DEPTH: usize = 512;

/// The result of [`parse`]: the model and every diagnostic found.
///
/// When there are errors the model is partial: an item with a syntax error is left out (a
/// block keeps the options that parsed), so later passes can still report what they find in
/// the rest.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The (possibly partial) model.
    pub model: Model,
    /// Errors and warnings, ordered by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The model and its warnings if there is no error, else every diagnostic.
    pub fn into_result(self) -> Result<(Model, Vec<Diagnostic>), Vec<Diagnostic>> {
        if self.has_errors() {
            Err(self.diagnostics)
        } else {
            Ok((self.model, self.diagnostics))
        }
    }
}

/// Stack for one parse: pest's generated parser and the builder recurse once per bracket, and
/// their frames are large in unoptimized builds; the parse runs on a segment this large.
const PARSE_STACK: usize = 16 * 1024 * 1024;

/// Parses a whole `.pode` file. Never panics; every problem is a [`Diagnostic`]. A leading
/// UTF-8 byte-order mark is skipped like whitespace (spans stay byte offsets into `source`).
///
/// Turns on pest's process-wide error detail (`pest::set_error_detail`), which the messages
/// rely on.
pub fn parse(source: &str) -> Parsed {
    // The mark is three bytes; three spaces in its place keep every byte offset.
    let blanked;
    let source = match source.strip_prefix('\u{feff}') {
        Some(rest) => {
            blanked = format!("   {rest}");
            blanked.as_str()
        }
        None => source,
    };
    stacker::maybe_grow(PARSE_STACK / 2, PARSE_STACK, || parse_file(source))
}

fn parse_file(source: &str) -> Parsed {
    pest::set_error_detail(true);
    let mut diags = Vec::new();
    let mut entries = Vec::new();
    let chunks = scan::items(source, MAX_NESTING);
    let too_deep = chunks.iter().any(|c| c.too_deep_at.is_some());
    let mut whole_file_error = None;
    if !too_deep {
        match PodeParser::parse(Rule::file, source) {
            Ok(pairs) => {
                let mut builder = Builder::new(0, &mut diags);
                for pair in pairs.flat_map(|file| file.into_inner()) {
                    if pair.as_rule() != Rule::EOI {
                        builder.item_checked(pair, &mut entries);
                    }
                }
            }
            Err(e) => whole_file_error = Some(syntax_error(&e, source, 0)),
        }
    }
    if too_deep || whole_file_error.is_some() {
        // Recovery: item by item. Should every item parse alone, report the whole-file error.
        let before = diags.iter().filter(|d| d.is_error()).count();
        for chunk in &chunks {
            recover_item(source, *chunk, &mut entries, &mut diags);
        }
        if diags.iter().filter(|d| d.is_error()).count() == before {
            diags.extend(whole_file_error);
        }
    }
    // A header that failed to parse has its own diagnostic: do not also call it missing.
    let header_written = chunks
        .iter()
        .any(|c| scan::leading_keyword(&source[c.start..c.end]) == Some("model"));
    let model = crate::checks::assemble(source, entries, header_written, &mut diags);
    crate::checks::check(&model, &mut diags);
    diags.sort_by_key(|d| d.primary_span().map_or(0, |s| s.start));
    Parsed {
        model,
        diagnostics: diags,
    }
}

/// Parses one expression (for the proc macro, tests and tools).
pub fn parse_expr(source: &str) -> Result<Expr, Vec<Diagnostic>> {
    stacker::maybe_grow(PARSE_STACK / 2, PARSE_STACK, || parse_expr_text(source))
}

fn parse_expr_text(source: &str) -> Result<Expr, Vec<Diagnostic>> {
    pest::set_error_detail(true);
    if let Some(at) = scan_depth(source) {
        return Err(vec![too_deep_diag(at)]);
    }
    match PodeParser::parse(Rule::expr_only, source) {
        Ok(pairs) => {
            let mut diags = Vec::new();
            let mut builder = Builder::new(0, &mut diags);
            let expr = pairs
                .flat_map(|p| p.into_inner())
                .find(|p| p.as_rule() != Rule::EOI)
                .map(|p| builder.expr(p, 0));
            match expr {
                Some(e) if diags.is_empty() => Ok(e),
                _ => Err(diags),
            }
        }
        Err(e) => Err(vec![syntax_error(&e, source, 0)]),
    }
}

fn scan_depth(source: &str) -> Option<usize> {
    scan::items(source, MAX_NESTING)
        .iter()
        .find_map(|c| c.too_deep_at)
}

fn too_deep_diag(at: usize) -> Diagnostic {
    Diagnostic::error(format!("brackets nested more than {MAX_NESTING} deep"))
        .with_code(codes::TOO_DEEP)
        .with_primary(Span::new(at, at + 1), "this bracket is too deep")
        .with_note("the rest of this item is not parsed; split it with `let` definitions")
}

/// A top-level item as built: the `model` header is kept apart from the other items.
pub(crate) enum Entry {
    Header(Ident, Span),
    Item(Item),
}

/// Parses one chunk of a file that failed as a whole.
fn recover_item(source: &str, chunk: Chunk, entries: &mut Vec<Entry>, diags: &mut Vec<Diagnostic>) {
    let text = &source[chunk.start..chunk.end];
    if let Some(at) = chunk.too_deep_at {
        diags.push(too_deep_diag(at));
        return;
    }
    if scan::is_blank(text) {
        return;
    }
    match PodeParser::parse(Rule::file, text) {
        Ok(pairs) => {
            let mut builder = Builder::new(chunk.start, diags);
            for pair in pairs.flat_map(|p| p.into_inner()) {
                if pair.as_rule() != Rule::EOI {
                    builder.item_checked(pair, entries);
                }
            }
        }
        Err(e) => {
            let err = syntax_error(&e, source, chunk.start);
            match scan::leading_keyword(text) {
                Some(kw @ ("solve" | "train")) => {
                    let kind = if kw == "solve" {
                        BlockKind::Solve
                    } else {
                        BlockKind::Train
                    };
                    recover_block(source, chunk, kind, err, entries, diags)
                }
                _ => diags.push(err),
            }
        }
    }
}

/// Parses a broken block option by option.
fn recover_block(
    source: &str,
    chunk: Chunk,
    kind: BlockKind,
    item_error: Diagnostic,
    entries: &mut Vec<Entry>,
    diags: &mut Vec<Diagnostic>,
) {
    let text = &source[chunk.start..chunk.end];
    let kw_end = text.len() - text.trim_start().len() + kind.keyword().len();
    let after_kw = &text[kw_end..];
    let Some(open_rel) = after_kw
        .find('{')
        .filter(|&i| after_kw[..i].trim().is_empty())
    else {
        diags.push(item_error);
        return;
    };
    let open = chunk.start + kw_end + open_rel;
    let (body_end, close) = match matching_brace(source, open, chunk.end) {
        Some(close) => (close, Some(close)),
        None => (chunk.end, None),
    };
    let errors_before = diags.len();
    if close.is_none() {
        diags.push(
            Diagnostic::error(format!("unclosed `{{` of the `{}` block", kind.keyword()))
                .with_code(codes::UNCLOSED_BLOCK)
                .with_primary(Span::new(open, open + 1), "this `{` is never closed")
                .with_note("a block ends with `}` before the next item"),
        );
    } else if let Some(close) = close {
        let rest = &source[close + 1..chunk.end];
        if !scan::is_blank(rest) {
            let lead = rest.len() - rest.trim_start().len();
            let at = close + 1 + lead;
            let end = close + 1 + rest.trim_end().len();
            diags.push(
                Diagnostic::error(format!(
                    "unexpected text after the `{}` block",
                    kind.keyword()
                ))
                .with_code(codes::SYNTAX)
                .with_primary(Span::new(at, end), "expected a new item"),
            );
        }
    }
    let body_start = open + 1;
    let body = &source[body_start..body_end];
    let mut options = Vec::new();
    for piece in scan::options(body, crate::checks::known_options(kind)) {
        let piece_text = &body[piece.start..piece.end];
        if scan::is_blank(piece_text) {
            continue;
        }
        let offset = body_start + piece.start;
        match PodeParser::parse(Rule::option_only, piece_text) {
            Ok(pairs) => {
                let mut builder = Builder::new(offset, diags);
                let before = builder.diags.len();
                for pair in pairs.flat_map(|p| p.into_inner()) {
                    if pair.as_rule() == Rule::option {
                        let option = builder.option(pair);
                        if builder.diags.len() == before {
                            options.push(option);
                        }
                    }
                }
            }
            Err(e) => diags.push(syntax_error(&e, source, offset)),
        }
    }
    if diags.len() == errors_before {
        diags.push(item_error);
    }
    let span = Span::new(
        chunk.start + text.len() - text.trim_start().len(),
        close.map_or(chunk.end, |c| c + 1),
    );
    entries.push(Entry::Item(Item::Block(Block {
        kind,
        options,
        span,
    })));
}

/// The `}` matching the `{` at `open`, searching up to `end`, skipping strings and comments.
fn matching_brace(source: &str, open: usize, end: usize) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < end {
        match bytes[i] {
            b'#' => {
                while i < end && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < end && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}
