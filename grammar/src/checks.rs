//! Checks that need no name resolution or shapes: the `model` header, duplicate blocks,
//! options, keyword arguments and definitions, and unknown option names and layer kinds (with
//! a "did you mean" note by edit distance).

use crate::ast::*;
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::parser::Entry;
use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;

/// The options a `solve { }` block accepts.
pub const SOLVE_OPTIONS: &[&str] = &[
    "method",
    "t",
    "steps",
    "outputs",
    "checkpoint",
    "newton_tol",
    "max_iters",
    "linear_solver",
    "line_search",
    "krylov_tol",
    "krylov_restart",
];

/// The options a `train { }` block accepts.
pub const TRAIN_OPTIONS: &[&str] = &["optimizer", "iterations", "seed", "log_every", "batch_size"];

/// The layer kinds `layer name = kind(…)` accepts.
pub const LAYER_KINDS: &[&str] = &["mlp", "linear", "dense", "conv2d", "groupnorm", "opaque"];

/// The options a block of this kind accepts.
pub fn known_options(kind: BlockKind) -> &'static [&'static str] {
    match kind {
        BlockKind::Solve => SOLVE_OPTIONS,
        BlockKind::Train => TRAIN_OPTIONS,
    }
}

/// Builds the model from the parsed entries: the header (first, once), its doc comments.
pub(crate) fn assemble(
    source: &str,
    entries: Vec<Entry>,
    header_written: bool,
    diags: &mut Vec<Diagnostic>,
) -> Model {
    let mut name: Option<(Ident, Span)> = None;
    let mut items = Vec::new();
    for entry in entries {
        match entry {
            Entry::Header(ident, span) => {
                if let Some((first, _)) = &name {
                    diags.push(
                        Diagnostic::error("a file describes one model: second `model` header")
                            .with_code(codes::MODEL_HEADER)
                            .with_primary(span, "second header")
                            .with_secondary(first.span, "the model is named here"),
                    );
                } else {
                    if let Some(first) = first_item_span(&items) {
                        diags.push(
                            Diagnostic::error("the `model` header must come first")
                                .with_code(codes::MODEL_HEADER)
                                .with_primary(span, "header")
                                .with_secondary(first, "an item before it"),
                        );
                    }
                    name = Some((ident, span));
                }
            }
            Entry::Item(item) => items.push(item),
        }
    }
    let (name, doc) = match name {
        Some((ident, span)) => (ident, doc_comments(source, span.start)),
        None => {
            if !header_written {
                diags.push(
                    Diagnostic::error("missing `model NAME` header")
                        .with_code(codes::MODEL_HEADER)
                        .with_primary(Span::new(0, 0), "expected `model NAME` here")
                        .with_note("every file starts with `model NAME`"),
                );
            }
            (
                Ident {
                    name: String::new(),
                    span: Span::default(),
                },
                Vec::new(),
            )
        }
    };
    Model {
        doc,
        name,
        items,
        span: Span::new(0, source.len()),
    }
}

fn first_item_span(items: &[Item]) -> Option<Span> {
    items.first().map(Item::span)
}

/// The comment lines directly above the line of byte `at` (no blank line between), without
/// `#` and one following space.
fn doc_comments(source: &str, at: usize) -> Vec<String> {
    let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
    if !source[line_start..at].trim().is_empty() {
        return Vec::new();
    }
    let mut doc = Vec::new();
    let mut lines = source[..line_start].lines().rev();
    for line in lines.by_ref() {
        let line = line.trim_end_matches('\r');
        let Some(text) = line.trim_start().strip_prefix('#') else {
            break;
        };
        doc.push(text.strip_prefix(' ').unwrap_or(text).to_string());
    }
    doc.reverse();
    doc
}

/// Runs the checks on a built model.
pub(crate) fn check(model: &Model, diags: &mut Vec<Diagnostic>) {
    let mut blocks: Vec<(BlockKind, Span)> = Vec::new();
    let mut loss: Option<Span> = None;
    let mut defs: Vec<&Ident> = Vec::new();
    for item in &model.items {
        match item {
            Item::Block(block) => {
                let head = Span::new(
                    block.span.start,
                    block.span.start + block.kind.keyword().len(),
                );
                if let Some((_, first)) = blocks.iter().find(|(k, _)| *k == block.kind) {
                    diags.push(
                        Diagnostic::error(format!("second `{}` block", block.kind.keyword()))
                            .with_code(codes::DUPLICATE_SECTION)
                            .with_primary(head, "second block")
                            .with_secondary(*first, "first block here")
                            .with_note("put all the options in one block"),
                    );
                } else {
                    blocks.push((block.kind, head));
                }
                check_options(block, diags);
            }
            Item::Loss(l) => {
                let head = Span::new(l.span.start, l.span.start + "loss".len());
                if let Some(first) = loss {
                    diags.push(
                        Diagnostic::error("second `loss`")
                            .with_code(codes::DUPLICATE_SECTION)
                            .with_primary(head, "second loss")
                            .with_secondary(first, "first loss here"),
                    );
                } else {
                    loss = Some(head);
                }
            }
            Item::Decl(d) => defs.push(&d.name),
            Item::Let(l) => defs.push(&l.name),
            Item::Layer(l) => {
                defs.push(&l.name);
                if !LAYER_KINDS.contains(&l.kind.name.as_str()) {
                    let mut d = Diagnostic::error(format!("unknown layer kind `{}`", l.kind.name))
                        .with_code(codes::UNKNOWN_LAYER)
                        .with_primary(l.kind.span, "unknown layer kind");
                    d = with_suggestion(d, &l.kind.name, LAYER_KINDS);
                    diags.push(
                        d.with_note(format!("the layer kinds are {}", LAYER_KINDS.join(", "))),
                    );
                }
            }
            Item::Equation(_) => {}
        }
    }
    let mut first_def: HashMap<&str, &Ident> = HashMap::new();
    for name in defs {
        match first_def.entry(&name.name) {
            MapEntry::Occupied(first) => diags.push(
                Diagnostic::error(format!("`{}` is defined twice", name.name))
                    .with_code(codes::DUPLICATE_DEFINITION)
                    .with_primary(name.span, "defined again here")
                    .with_secondary(first.get().span, "first defined here"),
            ),
            MapEntry::Vacant(slot) => {
                slot.insert(name);
            }
        }
    }
}

fn check_options(block: &Block, diags: &mut Vec<Diagnostic>) {
    let known = known_options(block.kind);
    let kw = block.kind.keyword();
    // The first option of each name (a map: a block may hold many options).
    let mut first_given: HashMap<&str, &Ident> = HashMap::new();
    for option in &block.options {
        let key = &option.key;
        if let Some(first) = first_given.get(key.name.as_str()) {
            diags.push(
                Diagnostic::error(format!("option `{}` given twice in `{kw}`", key.name))
                    .with_code(codes::DUPLICATE_OPTION)
                    .with_primary(key.span, "given again here")
                    .with_secondary(first.span, "first given here"),
            );
            continue;
        }
        first_given.insert(&key.name, key);
        if !known.contains(&key.name.as_str()) {
            let d = Diagnostic::error(format!("unknown option `{}` in `{kw}`", key.name))
                .with_code(codes::UNKNOWN_OPTION)
                .with_primary(key.span, "unknown option");
            let d = with_suggestion(d, &key.name, known);
            diags.push(d.with_note(format!("the `{kw}` options are {}", known.join(", "))));
        }
    }
}

/// Adds "did you mean `x`?" when a known name is close to `name`.
fn with_suggestion(d: Diagnostic, name: &str, known: &[&str]) -> Diagnostic {
    match did_you_mean(name, known) {
        Some(s) => d.with_note(format!("did you mean `{s}`?")),
        None => d,
    }
}

/// The known name closest to `name` in edit distance, if it is close enough: at most a third
/// of the longer name's length (and at least one edit).
pub fn did_you_mean<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let name_len = name.chars().count();
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= (name_len.max(k.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters (inputs are truncated at 64 characters).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}
