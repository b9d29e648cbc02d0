//! `pnodec fmt`: rewrite `.pode` files in the canonical format of [`pnode_grammar::print`].
//!
//! Safety rules, because this command overwrites what the user wrote:
//!
//! * a file with a syntax error is never rewritten (its diagnostics are shown instead);
//! * the printer drops every comment but the model's doc comment, so a file holding other
//!   comments is only rewritten with `--allow-comment-loss` (the lines are listed);
//! * the formatted text must parse back to the same AST, or nothing is written;
//! * a file is written only when its content changes, through a temporary file in the same
//!   directory renamed over it (permissions kept, symlinks followed), so a crash leaves
//!   either the old or the new file, never a truncated one.

use crate::render::{self, ColorMode};
use crate::{Error, Exit, SourceFile, read_source};
use codespan_reporting::term::termcolor::WriteColor;
use pnode_grammar::{Diagnostic, Model, parse, print};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options of `pnodec fmt`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FmtOptions {
    /// Write nothing; report the files that would change (`--check`).
    pub check: bool,
    /// Rewrite files even if comments other than the doc comment would be dropped.
    pub allow_comment_loss: bool,
}

/// What formatting one source would do.
#[derive(Debug, PartialEq)]
pub enum Formatted {
    /// Already in canonical form.
    Unchanged,
    /// The canonical text, which differs from the source.
    Changed {
        /// The new text.
        text: String,
        /// 1-based lines of comments that the new text drops.
        lost_comments: Vec<usize>,
    },
    /// The source does not parse: every diagnostic (errors first in source order).
    SyntaxErrors(Vec<Diagnostic>),
    /// The printed text does not parse back to the same model (a printer bug): nothing may
    /// be written.
    RoundTripFailed,
}

/// Formats one source without touching any file.
pub fn format_source(source: &str) -> Formatted {
    let parsed = parse(source);
    if parsed.has_errors() {
        return Formatted::SyntaxErrors(parsed.diagnostics);
    }
    let text = print(&parsed.model);
    let again = parse(&text);
    if again.has_errors() || again.model.without_spans() != parsed.model.without_spans() {
        return Formatted::RoundTripFailed;
    }
    if text == source {
        Formatted::Unchanged
    } else {
        Formatted::Changed {
            lost_comments: lost_comment_lines(source, &parsed.model),
            text,
        }
    }
}

/// The 1-based lines holding a `#` comment (outside string literals).
pub fn comment_lines(source: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut line = 1;
    let mut in_string = false;
    let mut in_comment = false;
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                line += 1;
                in_string = false; // strings never span lines
                in_comment = false;
            }
            _ if in_comment => {}
            // An escape: the next character cannot end the string (a newline still ends it).
            '\\' if in_string && chars.clone().next() != Some('\n') => {
                chars.next();
            }
            '"' => in_string = !in_string,
            '#' if !in_string => {
                in_comment = true;
                lines.push(line);
            }
            _ => {}
        }
    }
    lines
}

/// The lines of comments that [`print`] drops: every comment but the doc comment, i.e. the
/// comment lines directly above the `model` header.
pub fn lost_comment_lines(source: &str, model: &Model) -> Vec<usize> {
    let doc = if model.doc.is_empty() {
        0..0
    } else {
        // In a file without errors the header comes first: its line is the first one that
        // is neither blank nor a comment, and the doc comment ends on the line above it.
        let header_line = source
            .lines()
            .position(|l| {
                let l = l.trim();
                !l.is_empty() && !l.starts_with('#')
            })
            .map_or(0, |i| i + 1);
        header_line.saturating_sub(model.doc.len())..header_line
    };
    comment_lines(source)
        .into_iter()
        .filter(|line| !doc.contains(line))
        .collect()
}

/// A short unified-style diff of the first region where `old` and `new` differ, with up to
/// three lines of context before it and at most `MAX_DIFF_LINES` lines from each side.
pub fn first_diff(name: &str, old: &str, new: &str) -> String {
    const CONTEXT: usize = 3;
    const MAX_DIFF_LINES: usize = 12;
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let first = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    // The common tail after the first difference bounds the differing region.
    let tail = a[first..]
        .iter()
        .rev()
        .zip(b[first..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_end, b_end) = (a.len() - tail, b.len() - tail);
    let start = first.saturating_sub(CONTEXT);
    let mut out = format!("--- {name}\n+++ {name} (formatted)\n");
    out += &format!(
        "@@ -{},{} +{},{} @@\n",
        start + 1,
        a_end - start,
        start + 1,
        b_end - start
    );
    for line in &a[start..first] {
        out += &format!(" {line}\n");
    }
    for (lines, sign, end) in [(&a, '-', a_end), (&b, '+', b_end)] {
        for line in lines[first..end].iter().take(MAX_DIFF_LINES) {
            out += &format!("{sign}{line}\n");
        }
        if end - first > MAX_DIFF_LINES {
            out += &format!("{sign}… ({} more lines)\n", end - first - MAX_DIFF_LINES);
        }
    }
    if a.len() == b.len() && first == a.len() {
        // Only line endings or the final newline differ.
        out += "(line endings or the final newline differ)\n";
    }
    out
}

/// Replaces the file at `path` by `contents` atomically: a temporary file in the same
/// directory, flushed to disk, given the old file's permissions, renamed over the old one.
/// A symlink is followed, so the link stays a link.
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    let target = std::fs::canonicalize(path)?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let permissions = std::fs::metadata(&target)?.permissions();
    let mut tmp = tempfile::Builder::new()
        .prefix(".pnodec-fmt-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(contents.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.as_file().set_permissions(permissions)?;
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(())
}

/// Formats one file (or stdin for `-`) as `options` say; messages go to `err`, diffs and
/// stdin's formatted text to `out`.
pub fn format_file(
    path: &Path,
    options: FmtOptions,
    out: &mut dyn Write,
    err: &mut dyn WriteColor,
) -> Result<Exit, Error> {
    let SourceFile { name, text } = read_source(path)?;
    let stdin = path == Path::new("-");
    let (new_text, lost) = match format_source(&text) {
        Formatted::SyntaxErrors(diags) => {
            render::emit(err, &name, &text, &diags)?;
            writeln!(err, "{name}: not formatted: the file has syntax errors")?;
            return Ok(Exit::Failed);
        }
        Formatted::RoundTripFailed => {
            writeln!(
                err,
                "error: {name}: not formatted: the canonical text would not parse back to \
                 the same model (a bug in the printer; please report it)"
            )?;
            return Ok(Exit::Failed);
        }
        Formatted::Unchanged => {
            if stdin && !options.check {
                out.write_all(text.as_bytes())?;
            }
            return Ok(Exit::Ok);
        }
        Formatted::Changed {
            text: new_text,
            lost_comments,
        } => (new_text, lost_comments),
    };
    if options.check {
        writeln!(out, "{name}: would reformat")?;
        out.write_all(first_diff(&name, &text, &new_text).as_bytes())?;
        if !lost.is_empty() {
            writeln!(
                out,
                "{name}: formatting would drop the comments on {}",
                list_lines(&lost)
            )?;
        }
        return Ok(Exit::Failed);
    }
    if !lost.is_empty() && !options.allow_comment_loss {
        writeln!(
            err,
            "error: {name}: not formatted: the canonical format keeps only the model's doc \
             comment, and this file has other comments on {}\n  = note: move them into the \
             doc comment, or pass --allow-comment-loss to drop them",
            list_lines(&lost)
        )?;
        return Ok(Exit::Failed);
    }
    if stdin {
        out.write_all(new_text.as_bytes())?;
    } else {
        write_atomic(path, &new_text).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })?;
        writeln!(err, "reformatted {name}")?;
    }
    Ok(Exit::Ok)
}

fn list_lines(lines: &[usize]) -> String {
    let list: Vec<String> = lines.iter().map(usize::to_string).collect();
    format!(
        "{} {}",
        if lines.len() == 1 { "line" } else { "lines" },
        list.join(", ")
    )
}

/// `pnodec fmt FILE…`: every file is formatted, even after one fails.
pub fn run(files: &[PathBuf], options: FmtOptions, color: ColorMode) -> Exit {
    let mut err = color.stderr();
    let mut out = std::io::stdout().lock();
    let mut exit = Exit::Ok;
    for path in files {
        let status = match format_file(path, options, &mut out, &mut err) {
            Ok(status) => status,
            Err(e) => render::report_error(&mut err, &e),
        };
        exit = exit.max(status);
    }
    exit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_outside_strings() {
        let source = "# doc\nmodel m # trailing\nstate x = data(\"a#b\\\"#\") # c\n\"#\n# end";
        assert_eq!(comment_lines(source), [1, 2, 3, 5]);
    }

    #[test]
    fn doc_comment_is_not_lost() {
        let source = "# doc one\n#\n# doc two\nmodel m # trailing\n\n# between\nstate u = 1.0\n";
        let model = parse(source).model;
        assert_eq!(model.doc.len(), 3);
        assert_eq!(lost_comment_lines(source, &model), [4, 6]);
        let detached = "# detached\n\nmodel m\nstate u = 1.0\n";
        assert_eq!(lost_comment_lines(detached, &parse(detached).model), [1]);
        let split = "# doc\nmodel\n# model\nm\n";
        assert_eq!(parse(split).model.doc, ["doc"]);
        assert_eq!(lost_comment_lines(split, &parse(split).model), [3]);
    }

    #[test]
    fn formats_and_reports() {
        assert_eq!(format_source("model m\n"), Formatted::Unchanged);
        assert_eq!(
            format_source("model m\nstate u=1.0 # c\n"),
            Formatted::Changed {
                text: "model m\n\nstate u = 1.0\n".into(),
                lost_comments: vec![2]
            }
        );
        assert!(matches!(
            format_source("model m\nstate u = (\n"),
            Formatted::SyntaxErrors(d) if !d.is_empty()
        ));
    }

    #[test]
    fn diff_shows_the_first_difference() {
        let diff = first_diff("m.pode", "a\nb\nc\nd\nx=1\ne\n", "a\nb\nc\nd\nx = 1\ne\n");
        assert_eq!(
            diff,
            "--- m.pode\n+++ m.pode (formatted)\n@@ -2,4 +2,4 @@\n b\n c\n d\n-x=1\n+x = 1\n"
        );
        let eol = first_diff("m", "a\r\n", "a\n");
        assert!(eol.contains("line endings"), "{eol}");
    }
}
