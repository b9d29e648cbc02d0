//! Rendering [`pnode_grammar::Diagnostic`]s with codespan-reporting.
//!
//! The grammar and the IR produce renderer-neutral diagnostics (severity, message, labelled
//! byte spans, notes, a stable code); this module is the one place that turns them into
//! codespan-reporting's form and writes them, in colour only where asked.

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label as CsLabel};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::termcolor::{ColorChoice, NoColor, StandardStream, WriteColor};
use codespan_reporting::term::{self, Config};
use pnode_grammar::{Diagnostic, Severity};
use std::io::{self, IsTerminal, Write};

/// When to colour diagnostics (`--color`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorMode {
    /// Colour when stderr is a terminal (and `NO_COLOR` is unset).
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorMode {
    /// The termcolor choice for a stream, given whether that stream is a terminal.
    pub fn choice(self, is_terminal: bool) -> ColorChoice {
        match self {
            ColorMode::Always => ColorChoice::Always,
            ColorMode::Never => ColorChoice::Never,
            // termcolor's `Auto` only looks at `TERM` and `NO_COLOR`, not at the stream.
            ColorMode::Auto if is_terminal => ColorChoice::Auto,
            ColorMode::Auto => ColorChoice::Never,
        }
    }

    /// A locked-on-write stderr stream coloured as this mode says.
    pub fn stderr(self) -> StandardStream {
        StandardStream::stderr(self.choice(io::stderr().is_terminal()))
    }
}

/// Converts one diagnostic of `source` (file id `file_id`) to codespan-reporting's form.
///
/// The primary label comes first and is rendered with `^`, secondary labels with `-`; notes
/// and the code are kept. Spans are clamped into the source and onto character boundaries,
/// so a diagnostic with an odd span still renders (codespan-reporting rejects such spans).
pub fn to_codespan<F: Copy>(diag: &Diagnostic, file_id: F, source: &str) -> CsDiagnostic<F> {
    let severity = match diag.severity {
        Severity::Error => codespan_reporting::diagnostic::Severity::Error,
        Severity::Warning => codespan_reporting::diagnostic::Severity::Warning,
        Severity::Note => codespan_reporting::diagnostic::Severity::Note,
    };
    let mut labels: Vec<_> = diag.labels.iter().collect();
    // The first primary label is the diagnostic's location; codespan prints the location of
    // the first label it is given, so it goes first.
    labels.sort_by_key(|l| !l.primary);
    let labels = labels
        .into_iter()
        .map(|l| {
            let start = floor_char_boundary(source, l.span.start);
            let end = ceil_char_boundary(source, l.span.end.max(start));
            let label = if l.primary {
                CsLabel::primary(file_id, start..end)
            } else {
                CsLabel::secondary(file_id, start..end)
            };
            label.with_message(&l.message)
        })
        .collect();
    let mut out = CsDiagnostic::new(severity)
        .with_message(&diag.message)
        .with_labels(labels)
        .with_notes(diag.notes.clone());
    if let Some(code) = diag.code {
        out = out.with_code(code);
    }
    out
}

/// Source lines longer than this many bytes are not quoted under a diagnostic (a one-line
/// model of megabytes would be printed whole for each label); a note gives the place instead.
pub const MAX_QUOTED_LINE: usize = 1000;

/// `diag` with each label on a line longer than [`MAX_QUOTED_LINE`] turned into a note
/// `at NAME:LINE:COLUMN: message`.
fn without_long_lines(diag: &Diagnostic, file: &SimpleFile<&str, &str>) -> Option<Diagnostic> {
    use codespan_reporting::files::Files as _;
    let source = *file.source();
    let long = |start: usize| {
        let line = file.line_index((), start).ok()?;
        let range = file.line_range((), line).ok()?;
        (range.len() > MAX_QUOTED_LINE).then_some((line, range.start))
    };
    let at = |l: &pnode_grammar::Label| floor_char_boundary(source, l.span.start);
    if !diag.labels.iter().any(|l| long(at(l)).is_some()) {
        return None;
    }
    let mut out = diag.clone();
    out.labels.clear();
    out.notes.clear();
    for label in &diag.labels {
        match long(at(label)) {
            Some((line, line_start)) => {
                let column = source[line_start..at(label)].chars().count() + 1;
                out.notes.push(format!(
                    "at {}:{}:{column}{}{} (the line is too long to show)",
                    file.name(),
                    line + 1,
                    if label.message.is_empty() { "" } else { ": " },
                    label.message
                ));
            }
            None => out.labels.push(label.clone()),
        }
    }
    out.notes.extend(diag.notes.iter().cloned());
    Some(out)
}

/// Writes every diagnostic of the file `name` (contents `source`) to `writer`.
pub fn emit(
    writer: &mut dyn WriteColor,
    name: &str,
    source: &str,
    diagnostics: &[Diagnostic],
) -> io::Result<()> {
    let file = SimpleFile::new(name, source);
    let config = Config::default();
    for diag in diagnostics {
        let shortened = without_long_lines(diag, &file);
        let cs = to_codespan(shortened.as_ref().unwrap_or(diag), (), source);
        term::emit(writer, &config, &file, &cs).map_err(|e| match e {
            codespan_reporting::files::Error::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })?;
    }
    Ok(())
}

/// Reports an error that is not about a model (an unreadable file, a failed write) in the
/// style of the diagnostics, and returns its exit status. A closed standard output (`pnodec
/// emit … | head`) is not reported.
pub fn report_error(writer: &mut dyn WriteColor, error: &crate::Error) -> crate::Exit {
    if let crate::Error::Output(e) = error
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        return error.exit();
    }
    let file = SimpleFile::new("", "");
    let diag = CsDiagnostic::<()>::error().with_message(error.to_string());
    if term::emit(writer, &Config::default(), &file, &diag).is_err() {
        // A closed or failing stderr: try once more plainly, never panic.
        let _ = writeln!(io::stderr(), "error: {error}");
    }
    error.exit()
}

/// The diagnostics rendered as plain text (no colour), as [`emit`] writes them.
pub fn render_to_string(name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let mut out = NoColor::new(Vec::new());
    // Writing to a Vec cannot fail, and clamped spans always resolve.
    let _ = emit(&mut out, name, source, diagnostics);
    String::from_utf8_lossy(&out.into_inner()).into_owned()
}

fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnode_grammar::Span;

    #[test]
    fn converts_severity_code_labels_and_notes() {
        let source = "model m\nstate u = 1.0\n";
        let diag = Diagnostic::error("something is off")
            .with_code("P999")
            .with_secondary(Span::new(0, 5), "context")
            .with_primary(Span::new(14, 19), "here")
            .with_note("a note");
        let cs = to_codespan(&diag, 7usize, source);
        assert_eq!(cs.severity, codespan_reporting::diagnostic::Severity::Error);
        assert_eq!(cs.code.as_deref(), Some("P999"));
        assert_eq!(cs.message, "something is off");
        assert_eq!(cs.notes, ["a note"]);
        assert_eq!(cs.labels.len(), 2);
        assert_eq!(
            cs.labels[0].style,
            codespan_reporting::diagnostic::LabelStyle::Primary
        );
        assert_eq!(cs.labels[0].range, 14..19);
        assert_eq!(cs.labels[0].file_id, 7);
        assert_eq!(cs.labels[1].message, "context");

        let text = render_to_string("m.pode", source, &[diag]);
        assert!(text.starts_with("error[P999]: something is off"), "{text}");
        assert!(text.contains("m.pode:2:7"), "{text}");
        assert!(text.contains("^^^^^ here"), "{text}");
        assert!(text.contains("----- context"), "{text}");
        assert!(text.contains("= a note"), "{text}");
    }

    #[test]
    fn warnings_and_odd_spans_render() {
        let source = "model é\n";
        let diags = [
            Diagnostic::warning("inside a character").with_primary(Span::new(7, 8), ""),
            Diagnostic::error("past the end").with_primary(Span::new(100, 200), "eof"),
            Diagnostic::error("reversed").with_primary(Span::new(5, 2), ""),
            Diagnostic::error("no label at all"),
        ];
        let text = render_to_string("m.pode", source, &diags);
        assert!(text.contains("warning: inside a character"), "{text}");
        assert!(text.contains("error: past the end"), "{text}");
        assert!(text.contains("error: no label at all"), "{text}");
    }

    #[test]
    fn color_only_on_terminals_in_auto_mode() {
        assert_eq!(ColorMode::Auto.choice(false), ColorChoice::Never);
        assert_eq!(ColorMode::Auto.choice(true), ColorChoice::Auto);
        assert_eq!(ColorMode::Always.choice(false), ColorChoice::Always);
        assert_eq!(ColorMode::Never.choice(true), ColorChoice::Never);
    }
}
