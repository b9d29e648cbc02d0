//! From source text to [`Model`]: pest does the recognizing (`pode.pest`), [`crate::builder`]
//! turns pest's pairs into the spanned AST.
//!
//! A pre-scan ([`crate::scan`]) splits the file into items and each item is parsed alone (and,
//! inside a broken block, each option), so every broken item gives its own diagnostic and
//! pest's memory (its token queue, a few hundred bytes per token) is that of one item. Input
//! nested deeper than [`MAX_NESTING`] brackets, or whose expression tree would be deeper than
//! [`MAX_EXPR_DEPTH`], is rejected by the scan with a diagnostic before anything recurses that
//! deep or pest sees it.
//!
//! Limits, so that every input is answered in time and memory linear in its size: a file of
//! more than [`MAX_SOURCE_BYTES`] is refused whole, and parsing stops after [`MAX_ERRORS`]
//! errors with a note (as rustc does). The parse runs on the caller's stack; only an item too
//! deep for what is left of it is parsed again on a thread with a [`PARSE_STACK`] stack.

use crate::ast::*;
use crate::builder::Builder;
use crate::codes;
use crate::diagnostic::{Diagnostic, limit_errors};
use crate::errors::syntax_error;
use crate::scan::{self, Chunk, TooDeep};
use pest::Parser as _;
use pest::error::ErrorVariant;
use pest::iterators::Pairs;

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

/// The most operands (names, numbers, strings) of one item: 2^19 (an array literal of half a
/// million numbers; no constant may have more than 2^20 elements anyway). pest holds a few
/// hundred bytes per operand while it parses an item, so this bounds its memory (about
/// 300 MiB); larger arrays belong in data files.
pub const MAX_ITEM_OPERANDS: usize = 1 << 19;

/// The largest model file accepted: 8 MiB.
///
/// A model is code, not data: the largest models of the corpus and examples are a few KiB, and
/// large arrays belong in data files (`data("w.csv")`). At this size every command answers in
/// seconds with memory bounded by a few hundred MiB at worst (pest's token queue of one item,
/// the syntax tree of the file); see BENCHMARKS.md. A larger file is refused with one error
/// before anything is parsed.
pub const MAX_SOURCE_BYTES: usize = 8 << 20;

/// The most errors reported for one file. Parsing stops after this many (and so does the
/// lowering), and a note `aborting after 100 errors` ends the diagnostics, so that garbage
/// input does not buffer a diagnostic per line.
pub const MAX_ERRORS: usize = 100;

/// The stack an item too deep for the caller's stack is parsed again on: pest's generated
/// parser and the builder recurse once per bracket, and their frames are large in unoptimized
/// builds; [`MAX_NESTING`] brackets fit.
pub const PARSE_STACK: usize = 16 * 1024 * 1024;

/// Below this much stack left, [`parse`] and [`parse_expr`] run on a new stack segment of this
/// size; above it (the usual case: a main thread has megabytes) they map nothing.
const RED_ZONE: usize = 256 * 1024;

/// The result of [`parse`]: the model and every diagnostic found.
///
/// When there are errors the model is partial: an item with a syntax error is left out (a
/// block keeps the options that parsed), so later passes can still report what they find in
/// the rest.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The (possibly partial) model.
    pub model: Model,
    /// Errors and warnings, ordered by position; after [`MAX_ERRORS`] errors, a note.
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

/// The error for a file of `len` bytes, more than [`MAX_SOURCE_BYTES`].
pub fn too_large_diagnostic(len: u64) -> Diagnostic {
    Diagnostic::error(format!(
        "the model is {len} bytes; a model file may have at most {MAX_SOURCE_BYTES} bytes (8 MiB)"
    ))
    .with_code(codes::TOO_LARGE)
    .with_note(
        "keep large arrays in data files (`data(\"values.csv\")`) and split long expressions \
         with `let` definitions",
    )
}

/// Parses a whole `.pode` file. Never panics; every problem is a [`Diagnostic`]. A leading
/// UTF-8 byte-order mark is skipped like whitespace (spans stay byte offsets into `source`).
/// Time and memory are linear in the length of `source`, which is at most
/// [`MAX_SOURCE_BYTES`] (a longer source gives one error and an empty model).
///
/// Sets pest's process-wide error detail (`pest::set_error_detail`) before each of its
/// parses, under a lock: on for a text that failed, whose message relies on it, off otherwise.
pub fn parse(source: &str) -> Parsed {
    if source.len() > MAX_SOURCE_BYTES {
        return Parsed {
            model: Model {
                doc: Vec::new(),
                name: Ident {
                    name: String::new(),
                    span: Span::default(),
                },
                items: Vec::new(),
                span: Span::new(0, source.len()),
            },
            diagnostics: vec![too_large_diagnostic(source.len() as u64)],
        };
    }
    // The mark is three bytes; three spaces in its place keep every byte offset.
    let blanked;
    let source = match source.strip_prefix('\u{feff}') {
        Some(rest) => {
            blanked = format!("   {rest}");
            blanked.as_str()
        }
        None => source,
    };
    stacker::maybe_grow(RED_ZONE, PARSE_STACK, || parse_file(source))
}

fn parse_file(source: &str) -> Parsed {
    let mut diags = Vec::new();
    let mut entries = Vec::new();
    let chunks = scan::items(source, MAX_NESTING, MAX_EXPR_DEPTH, MAX_ITEM_OPERANDS);
    let mut errors = 0;
    let mut stopped = false;
    // Chunks up to this index were already tried as the continuation of an earlier one.
    let mut joined_up_to = 0;
    let mut i = 0;
    while i < chunks.len() {
        if errors >= MAX_ERRORS {
            stopped = chunks[i..]
                .iter()
                .any(|c| !scan::is_blank(&source[c.start..c.end]));
            break;
        }
        let before = diags.len();
        let mut item_entries = Vec::new();
        parse_item(source, chunks[i], &mut item_entries, &mut diags);
        // An item whose expression goes on into the next (`let y = 2 *⏎d(x)` with a layer
        // `d`): parse it with the pieces that may continue it, as one text.
        let run = chunks[i + 1..]
            .iter()
            .take_while(|c| c.may_continue)
            .count();
        if diags[before..].iter().any(Diagnostic::is_error) && run > 0 && i >= joined_up_to {
            joined_up_to = i + run;
            let last = chunks[i + run];
            let joined = Chunk {
                start: chunks[i].start,
                end: last.end,
                too_deep: chunks[i..=i + run].iter().find_map(|c| c.too_deep),
                may_continue: false,
            };
            let mut joined_diags = Vec::new();
            let mut joined_entries = Vec::new();
            parse_item(source, joined, &mut joined_entries, &mut joined_diags);
            if !joined_diags.iter().any(Diagnostic::is_error) {
                diags.truncate(before);
                diags.extend(joined_diags);
                entries.extend(joined_entries);
                i += run + 1;
                continue;
            }
        }
        entries.extend(item_entries);
        errors += diags[before..].iter().filter(|d| d.is_error()).count();
        i += 1;
    }
    // A header that failed to parse has its own diagnostic: do not also call it missing.
    let header_written = chunks
        .iter()
        .any(|c| scan::leading_keyword(&source[c.start..c.end]) == Some("model"));
    let model = crate::checks::assemble(source, entries, header_written, &mut diags);
    crate::checks::check(&model, &mut diags);
    diags.sort_by_key(|d| d.primary_span().map_or(0, |s| s.start));
    limit_errors(&mut diags, stopped);
    Parsed {
        model,
        diagnostics: diags,
    }
}

/// pest's parse of `text` by `rule`, with or without pest's error detail (which the messages
/// need, but which makes parsing 2–3 times slower and, through its allocations, worse than
/// linear on large files). The detail is a process-wide flag that pest reads when a parse
/// starts, so it is set and the parse started under one lock.
fn pest_parse(
    rule: Rule,
    text: &str,
    detail: bool,
) -> Result<Pairs<'_, Rule>, pest::error::Error<Rule>> {
    static PEST: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = PEST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    pest::set_error_detail(detail);
    PodeParser::parse(rule, text)
}

/// pest's parse of `text` by `rule`, on the caller's stack, first without error detail; a
/// text that fails is parsed again with it, for the message. If pest runs short of stack (it
/// checks, and fails with a custom error), `run` is called again on a thread with a
/// [`PARSE_STACK`] stack. `run` gets pest's result and does all the work on the pairs (which
/// cannot leave the thread).
fn with_pest<T: Send>(
    rule: Rule,
    text: &str,
    run: impl Fn(Result<Pairs<'_, Rule>, pest::error::Error<Rule>>) -> T + Sync,
) -> Result<T, NoStack> {
    let short_of_stack = |r: &Result<Pairs<'_, Rule>, pest::error::Error<Rule>>| matches!(r, Err(e) if matches!(e.variant, ErrorVariant::CustomError { .. }));
    let fast = pest_parse(rule, text, false);
    if fast.is_ok() {
        return Ok(run(fast));
    }
    drop(fast);
    let detailed = pest_parse(rule, text, true);
    if !short_of_stack(&detailed) {
        return Ok(run(detailed));
    }
    drop(detailed);
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("pnode-parse".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(s, || {
                let again = pest_parse(rule, text, true);
                (!short_of_stack(&again)).then(|| run(again))
            })
            .map_err(|_| NoStack)?;
        worker.join().ok().flatten().ok_or(NoStack)
    })
}

/// No stack could be had for a deep item (a thread could not be started, or pest ran short
/// even on [`PARSE_STACK`]).
struct NoStack;

/// Parses one expression (for the proc macro, tests and tools).
pub fn parse_expr(source: &str) -> Result<Expr, Vec<Diagnostic>> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(vec![too_large_diagnostic(source.len() as u64)]);
    }
    stacker::maybe_grow(RED_ZONE, PARSE_STACK, || parse_expr_text(source))
}

fn parse_expr_text(source: &str) -> Result<Expr, Vec<Diagnostic>> {
    if let Some(deep) = scan::items(source, MAX_NESTING, MAX_EXPR_DEPTH, MAX_ITEM_OPERANDS)
        .iter()
        .find_map(|c| c.too_deep)
    {
        return Err(vec![too_deep_diag(deep)]);
    }
    let result = with_pest(Rule::expr_only, source, |result| match result {
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
    });
    result.unwrap_or_else(|NoStack| Err(vec![no_stack_diag(Span::new(0, source.len()))]))
}

fn too_deep_diag(deep: TooDeep) -> Diagnostic {
    match deep {
        TooDeep::Brackets(at) => {
            Diagnostic::error(format!("brackets nested more than {MAX_NESTING} deep"))
                .with_code(codes::TOO_DEEP)
                .with_primary(Span::new(at, at + 1), "this bracket is too deep")
                .with_note("the rest of this item is not parsed; split it with `let` definitions")
        }
        TooDeep::Long(at) => Diagnostic::error(format!(
            "an item with more than {MAX_ITEM_OPERANDS} names, numbers and strings"
        ))
        .with_code(codes::TOO_LARGE)
        .with_primary(
            Span::new(at, at + 1),
            format!("operand {} of the item", MAX_ITEM_OPERANDS + 1),
        )
        .with_note(
            "the rest of this item is not parsed; keep large arrays in data files \
             (`data(\"values.csv\")`)",
        ),
        TooDeep::Expr(at) => {
            Diagnostic::error(format!("expression nested more than {MAX_EXPR_DEPTH} deep"))
                .with_code(codes::TOO_DEEP)
                .with_primary(
                    Span::new(at, at + 1),
                    format!("the expression is more than {MAX_EXPR_DEPTH} operators deep here"),
                )
                .with_note(
                    "the rest of this item is not parsed; split it with `let` definitions (a \
                     chain `a + b + …` of n terms is n deep)",
                )
        }
    }
}

/// An item too deep for the stack that could be had.
fn no_stack_diag(span: Span) -> Diagnostic {
    let at = Span::new(span.start, span.start);
    Diagnostic::error("not enough memory for a stack to parse this deeply nested item")
        .with_code(codes::TOO_DEEP)
        .with_primary(at, "this item")
        .with_note(format!(
            "parsing it needs a {} MiB stack; nest it less deeply (split it with `let` definitions)",
            PARSE_STACK >> 20
        ))
}

/// A top-level item as built: the `model` header is kept apart from the other items.
pub(crate) enum Entry {
    Header(Ident, Span),
    Item(Item),
}

/// Parses one item (a chunk of the file), keeping what built without error.
fn parse_item(source: &str, chunk: Chunk, entries: &mut Vec<Entry>, diags: &mut Vec<Diagnostic>) {
    let text = &source[chunk.start..chunk.end];
    if let Some(deep) = chunk.too_deep {
        diags.push(too_deep_diag(deep));
        return;
    }
    if scan::is_blank(text) {
        return;
    }
    let built = with_pest(Rule::file, text, |result| {
        let mut built_entries = Vec::new();
        let mut built_diags = Vec::new();
        let error = match result {
            Ok(pairs) => {
                let mut builder = Builder::new(chunk.start, &mut built_diags);
                for pair in pairs.flat_map(|p| p.into_inner()) {
                    if pair.as_rule() != Rule::EOI {
                        builder.item_checked(pair, &mut built_entries);
                    }
                }
                None
            }
            Err(e) => Some(syntax_error(&e, source, chunk.start)),
        };
        (built_entries, built_diags, error)
    });
    let (built_entries, built_diags, error) = match built {
        Ok(built) => built,
        Err(NoStack) => {
            diags.push(no_stack_diag(Span::new(chunk.start, chunk.end)));
            return;
        }
    };
    entries.extend(built_entries);
    diags.extend(built_diags);
    let Some(err) = error else {
        return;
    };
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
        let built = with_pest(Rule::option_only, piece_text, |result| match result {
            Ok(pairs) => {
                let mut built_diags = Vec::new();
                let mut built_options = Vec::new();
                let mut builder = Builder::new(offset, &mut built_diags);
                for pair in pairs.flat_map(|p| p.into_inner()) {
                    if pair.as_rule() == Rule::option {
                        let before = builder.diags.len();
                        let option = builder.option(pair);
                        if builder.diags.len() == before {
                            built_options.push(option);
                        }
                    }
                }
                (built_options, built_diags)
            }
            Err(e) => (Vec::new(), vec![syntax_error(&e, source, offset)]),
        });
        match built {
            Ok((built_options, built_diags)) => {
                options.extend(built_options);
                diags.extend(built_diags);
            }
            Err(NoStack) => diags.push(no_stack_diag(Span::new(offset, offset))),
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
