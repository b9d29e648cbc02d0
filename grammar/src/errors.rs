//! pest syntax errors as [`Diagnostic`]s with a human message: ``expected expression, found `)` ``.

use crate::ast::Span;
use crate::codes;
use crate::diagnostic::{Diagnostic, floor_char_boundary};
use crate::parser::Rule;
use pest::error::{Error, ErrorVariant, InputLocation};
use std::collections::BTreeSet;

/// What a rule is called in an "expected …" message; `None` leaves it out.
fn rule_name(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::expr
        | Rule::product
        | Rule::unary
        | Rule::power
        | Rule::postfix
        | Rule::paren
        | Rule::array
        | Rule::call
        | Rule::number
        | Rule::bytes
        | Rule::number_part
        | Rule::string
        | Rule::boolean
        | Rule::neg
        | Rule::slice_start
        | Rule::slice_end
        | Rule::expr_only
        | Rule::primary => "expression",
        Rule::ident => "name",
        Rule::add_op | Rule::mul_op | Rule::pow_op => "operator",
        Rule::index => return None,
        Rule::index_item => "index",
        Rule::colon => "`:`",
        Rule::shape => "shape `[…]`",
        Rule::arg | Rule::kwarg | Rule::arg_list => "argument",
        Rule::option | Rule::options | Rule::option_only => "option `name = value`",
        Rule::byte_unit => "byte unit",
        Rule::EOI => "end of item",
        Rule::escape => "escape",
        Rule::file
        | Rule::item
        | Rule::model_decl
        | Rule::state_decl
        | Rule::param_decl
        | Rule::const_decl
        | Rule::layer_decl
        | Rule::let_decl
        | Rule::equation
        | Rule::loss_decl
        | Rule::solve_block
        | Rule::train_block
        | Rule::kw_model
        | Rule::kw_state
        | Rule::kw_param
        | Rule::kw_const
        | Rule::kw_layer
        | Rule::kw_let
        | Rule::kw_solve
        | Rule::kw_train
        | Rule::kw_loss
        | Rule::kw_d => "item",
        Rule::keyword | Rule::ident_char | Rule::WHITESPACE | Rule::COMMENT => return None,
    })
}

/// Literal tokens worth naming; operators are summarized as "operator".
const PUNCTUATION: [&str; 12] = ["=", ",", "]", ")", "(", "[", "{", "}", "..", ":", "/", "dt"];
const OPERATORS: [&str; 6] = ["+", "-", "*", "/", "@", "^"];

/// Converts a pest error on the part of `source` that starts at byte `offset`.
pub(crate) fn syntax_error(err: &Error<Rule>, source: &str, offset: usize) -> Diagnostic {
    let rel = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let attempts = err.parse_attempts();
    // pest places the error at the furthest rule it tried; a literal token tried further on
    // (`/` in `d(u) = …`) is the better place, and then the rules tried earlier do not count.
    let nameable = |t: String| PUNCTUATION.contains(&t.as_str()) || OPERATORS.contains(&t.as_str());
    let further = attempts
        .as_ref()
        .filter(|a| a.max_position > rel)
        .filter(|a| {
            a.expected_tokens()
                .into_iter()
                .any(|t| nameable(t.to_string()))
        })
        .map(|a| a.max_position);
    let rel = further.unwrap_or(rel);
    let (found, span) = found_at(source, offset + rel);
    if let Some(d) = unterminated_string(source, span) {
        return d;
    }
    let mut expected: BTreeSet<&'static str> = BTreeSet::new();
    if let (ErrorVariant::ParsingError { positives, .. }, None) = (&err.variant, further) {
        expected.extend(positives.iter().filter_map(|&rule| rule_name(rule)));
    }
    // The item could end here, or a new item begin. Items begin on a new line: name "item"
    // only there, or when nothing else fits.
    let line_start = source[..floor_char_boundary(source, span.start)]
        .trim_end_matches([' ', '\t', '\r'])
        .ends_with('\n');
    let item_fits = expected.remove("end of item") | expected.remove("item");
    if item_fits && (expected.is_empty() || line_start) {
        expected.insert("item");
    }
    let mut literals: BTreeSet<String> = BTreeSet::new();
    if let Some(attempts) = attempts {
        // Tokens are only those tried at the furthest position.
        if attempts.max_position == rel {
            for token in attempts.expected_tokens() {
                let token = token.to_string();
                if PUNCTUATION.contains(&token.as_str()) || OPERATORS.contains(&token.as_str()) {
                    literals.insert(token);
                }
            }
        }
    }
    // Tokens that start an expression, or continue one (operators, indexing, calls), are
    // summarized by "expression" and "operator".
    if expected.contains("operator") {
        literals.retain(|t| !OPERATORS.contains(&t.as_str()) && t != "[" && t != "(");
    }
    if ["expression", "argument", "index"]
        .iter()
        .any(|n| expected.contains(n))
    {
        literals.retain(|t| t != "(" && t != "[" && t != "-");
    }
    let mut names: Vec<String> = literals.into_iter().map(|t| format!("`{t}`")).collect();
    names.extend(expected.iter().map(|n| n.to_string()));
    names.dedup();
    if names.iter().any(|n| n == "item") && found == "end of file" {
        names.clear();
    }
    let message = match names.as_slice() {
        [] if found == "end of file" => "unexpected end of file".to_string(),
        [] => format!("unexpected {found}"),
        names => format!("expected {}, found {found}", join_or(names)),
    };
    let label = match names.as_slice() {
        [] => "unexpected".to_string(),
        names => format!("expected {}", join_or(names)),
    };
    let mut diag = Diagnostic::error(message)
        .with_code(codes::SYNTAX)
        .with_primary(span, label);
    if let Some(note) = hint(source, offset + rel, &expected) {
        diag = diag.with_note(note);
    }
    diag
}

fn join_or(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A hint for common slips.
fn hint(source: &str, pos: usize, expected: &BTreeSet<&'static str>) -> Option<String> {
    let pos = floor_char_boundary(source, pos);
    let rest = &source[pos..];
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let keywords = [
        "model", "state", "param", "const", "layer", "let", "solve", "train", "loss", "true",
        "false",
    ];
    if expected.contains("name") && keywords.contains(&word.as_str()) {
        return Some(format!(
            "`{word}` is a keyword and cannot be used as a name"
        ));
    }
    let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
    if expected.contains("item") && line.starts_with('d') && line.contains("/dt") {
        return Some("equations are written `d(u)/dt = …`".to_string());
    }
    if rest.starts_with("..") {
        return Some("a range `a .. b` is only an option value (`t = 0 .. 10`)".to_string());
    }
    if rest.starts_with('*') && source[..pos].ends_with('*') {
        return Some("powers are written `x ^ 2`".to_string());
    }
    None
}

/// A string opened at `span` and not closed on its line.
fn unterminated_string(source: &str, span: Span) -> Option<Diagnostic> {
    let rest = &source[span.start..];
    let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
    let body = line.strip_prefix('"')?;
    let mut escaped = false;
    for c in body.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return None,
            _ => {}
        }
    }
    let end = span.start + line.trim_end().len();
    Some(
        Diagnostic::error("unterminated string")
            .with_code(codes::SYNTAX)
            .with_primary(Span::new(span.start, end), "this string is never closed")
            .with_note("a string ends with `\"` on the same line"),
    )
}

/// Describes the token at `pos` (skipping whitespace and comments) and its span.
fn found_at(text: &str, pos: usize) -> (String, Span) {
    let mut i = floor_char_boundary(text, pos);
    loop {
        let rest = &text[i..];
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        if trimmed.starts_with('#') {
            i += trimmed.find('\n').unwrap_or(trimmed.len());
        } else {
            break;
        }
    }
    let rest = &text[i..];
    let Some(c) = rest.chars().next() else {
        // Point just past the last token.
        let end = text.trim_end().len();
        return ("end of file".to_string(), Span::new(end, end));
    };
    let len = if c.is_ascii_digit() {
        rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len())
    } else if c.is_alphanumeric() || c == '_' {
        rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len())
    } else if c == '"' {
        rest[1..]
            .find(['"', '\n'])
            .map_or(rest.len(), |e| (e + 2).min(rest.len()))
    } else if rest.starts_with("..") {
        2
    } else {
        c.len_utf8()
    };
    let token = &rest[..len];
    let shown: String = token.chars().take(24).collect();
    let shown = if shown.len() < token.len() {
        format!("{shown}…")
    } else {
        shown
    };
    let shown: String = shown
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    (format!("`{shown}`"), Span::new(i, i + len))
}
