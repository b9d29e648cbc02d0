//! Renderer-neutral diagnostics: a message, labelled spans, notes and a stable code.
//!
//! The compiler renders them with codespan-reporting; [`Diagnostic::render_plain`] is a small
//! dependency-free text form used by tests and as a fallback.

use crate::ast::Span;
use std::fmt::Write as _;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The input is rejected.
    Error,
    /// Accepted, but probably not what was meant.
    Warning,
    /// Extra information.
    Note,
}

impl Severity {
    /// `error`, `warning` or `note`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// A span of the source with a message; the primary label says where the problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// What is labelled.
    pub span: Span,
    /// What to say there (may be empty).
    pub message: String,
    /// Whether this is where the problem is (`^^^`) rather than context (`---`).
    pub primary: bool,
}

/// One problem found in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious.
    pub severity: Severity,
    /// One line, lowercase, no final period: ``expected expression, found `)` ``.
    pub message: String,
    /// Labelled spans; the first primary label is the location of the diagnostic.
    pub labels: Vec<Label>,
    /// Extra lines (`did you mean `method`?`).
    pub notes: Vec<String>,
    /// A stable code, see [`codes`](crate::codes).
    pub code: Option<&'static str>,
}

impl Diagnostic {
    /// A new diagnostic with no labels.
    pub fn new(severity: Severity, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            code: None,
        }
    }

    /// A new error.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message)
    }

    /// A new warning.
    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message)
    }

    /// Adds the primary label.
    pub fn with_primary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: true,
        });
        self
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: false,
        });
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Sets the code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The span of the first primary label (else of the first label).
    pub fn primary_span(&self) -> Option<Span> {
        self.labels
            .iter()
            .find(|l| l.primary)
            .or_else(|| self.labels.first())
            .map(|l| l.span)
    }

    /// Shifts every label by `offset` bytes.
    pub fn shifted(mut self, offset: usize) -> Self {
        for label in &mut self.labels {
            label.span = Span::new(label.span.start + offset, label.span.end + offset);
        }
        self
    }

    /// A plain-text rendering, in the style of rustc:
    ///
    /// ```text
    /// error[P001]: expected expression, found `)`
    ///  --> model.pode:3:14
    ///   |
    /// 3 | let v = (u + )
    ///   |              ^ expected expression
    ///   = note: …
    /// ```
    ///
    /// Secondary labels are underlined with `-`. Spans past the end of `source` are clamped.
    pub fn render_plain(&self, source: &str, file_name: &str) -> String {
        let mut out = String::new();
        let _ = write!(out, "{}", self.severity.as_str());
        if let Some(code) = self.code {
            let _ = write!(out, "[{code}]");
        }
        let _ = writeln!(out, ": {}", self.message);
        let mut labels: Vec<&Label> = self.labels.iter().collect();
        labels.sort_by_key(|l| (!l.primary, l.span.start));
        let width = labels
            .iter()
            .map(|l| line_col(source, l.span.start).0.to_string().len())
            .max()
            .unwrap_or(1);
        let pad = " ".repeat(width);
        for (i, label) in labels.iter().enumerate() {
            let (line, col) = line_col(source, label.span.start);
            let arrow = if i == 0 { "-->" } else { ":::" };
            let _ = writeln!(out, "{pad}{arrow} {file_name}:{line}:{col}");
            let _ = writeln!(out, "{pad} |");
            let start = floor_char_boundary(source, label.span.start);
            let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = source[start..]
                .find('\n')
                .map_or(source.len(), |e| start + e);
            let text = source[line_start..line_end].trim_end_matches('\r');
            let _ = writeln!(out, "{line:>width$} | {text}");
            // Underline within the first line of the span, at least one character wide.
            let line_end = line_start + text.len();
            let end = floor_char_boundary(source, label.span.end.min(line_end)).max(start);
            let marks = source[start..end].chars().count().max(1);
            let mark = if label.primary { "^" } else { "-" };
            let _ = write!(out, "{pad} | {}{}", " ".repeat(col - 1), mark.repeat(marks));
            if !label.message.is_empty() {
                let _ = write!(out, " {}", label.message);
            }
            out.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(out, "{pad} = note: {note}");
        }
        out
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.severity.as_str())?;
        if let Some(code) = self.code {
            write!(f, "[{code}]")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Caps a list of diagnostics sorted by position at [`MAX_ERRORS`](crate::MAX_ERRORS) errors,
/// as rustc does: everything after the last error kept is dropped. When errors were dropped,
/// or `stopped` says that checking stopped early, a note `aborting after 100 errors` ends the
/// list. Linear in the length of `diags`; a list already capped stays as it is.
pub fn limit_errors(diags: &mut Vec<Diagnostic>, stopped: bool) {
    let limit = crate::MAX_ERRORS;
    let already = diags.last().is_some_and(is_abort_note);
    if already {
        diags.pop();
    }
    let mut errors = 0;
    let cut = diags.iter().position(|d| {
        errors += usize::from(d.is_error());
        errors > limit
    });
    if let Some(cut) = cut {
        diags.truncate(cut);
    }
    if already || stopped || cut.is_some() {
        diags.push(
            Diagnostic::new(Severity::Note, format!("aborting after {limit} errors"))
                .with_note("the rest is not checked; fix these errors first"),
        );
    }
}

/// Whether `d` is the note [`limit_errors`] ends a capped list with.
pub fn is_abort_note(d: &Diagnostic) -> bool {
    d.severity == Severity::Note
        && d.labels.is_empty()
        && d.message == format!("aborting after {} errors", crate::MAX_ERRORS)
}

/// The 1-based line and 1-based column (in characters) of byte `offset` of `source`; offsets
/// past the end, or inside a character, are moved back to the nearest character boundary.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset);
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, source[line_start..offset].chars().count() + 1)
}

/// The largest char boundary `≤ i` (and `≤ s.len()`).
pub(crate) fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
