//! `pnodec emit`: print one intermediate form of a model.
//!
//! | flag | prints |
//! |---|---|
//! | `--ast` (`--ast=debug`) | the spanned syntax tree, Rust `Debug` pretty-printed |
//! | `--ast=dsl` | the syntax tree printed back as canonical `.pode` text (what `fmt` writes) |
//! | `--ir` | the IR of the right-hand side `f(t, u; θ)` |
//! | `--jvp` | the IR of its JVP `f_u v` ([`pnode_ir::jvp`]) |
//! | `--vjp` | the IR of its VJP `(f_uᵀ w, f_θᵀ w)` ([`pnode_ir::vjp`]) |
//! | `--rust` | pnode-codegen's Rust model and, for an explicit method, its fused stepper ([`crate::emit_run`]) |
//! | `--clif` (`--clif=generated`), `--clif=optimized` | the Cranelift IR of the JIT's kernels: RHS, JVP, VJP and, for an explicit method, the fused step, step keeping stages, stage recomputation and adjoint step ([`crate::emit_run::clif_source`]), as generated or after Cranelift's optimizer |
//! | `--schedule` | the checkpoint schedule of a gradient with its predicted cost (reads a data file only when the grid or output times come from one, never the loss data) |
//!
//! `--ast` needs only parsing; the IR forms need the lowering too. A model with errors (of
//! what the form needs) prints nothing on stdout; its diagnostics go to stderr as in `check`.

use crate::check::analyze_in;
use crate::emit_run::ClifForm;
use crate::render::{self, ColorMode};
use crate::{Error, Exit, SourceFile, read_source};
use codespan_reporting::term::termcolor::WriteColor;
use std::io::Write;
use std::path::Path;

/// How `--ast` prints the tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AstFormat {
    /// Rust `Debug`, pretty-printed, with byte spans.
    #[default]
    Debug,
    /// Canonical `.pode` text.
    Dsl,
}

/// What to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitKind {
    /// The syntax tree.
    Ast(AstFormat),
    /// The right-hand side's IR.
    Ir,
    /// The IR of the JVP of the right-hand side.
    Jvp,
    /// The IR of the VJP of the right-hand side.
    Vjp,
    /// Generated Rust source.
    Rust,
    /// The Cranelift IR of the JIT's kernels.
    Clif(ClifForm),
    /// The checkpoint schedule and its predicted cost.
    Schedule,
}

/// The text `kind` prints for `source` (a model in `dir`, where its data paths start), or the
/// diagnostics that prevent it.
pub fn emit_source(
    source: &str,
    dir: &Path,
    kind: EmitKind,
) -> Result<(String, Vec<pnode_grammar::Diagnostic>), Vec<pnode_grammar::Diagnostic>> {
    if let EmitKind::Ast(format) = kind {
        // The syntax tree needs only parsing: a model with lowering errors still shows it.
        let parsed = pnode_grammar::parse(source);
        if parsed.has_errors() {
            return Err(parsed.diagnostics);
        }
        let text = match format {
            AstFormat::Debug => format!("{:#?}\n", parsed.model),
            AstFormat::Dsl => pnode_grammar::print(&parsed.model),
        };
        return Ok((text, parsed.diagnostics));
    }
    let analysis = analyze_in(source, dir);
    if analysis.has_errors() {
        return Err(analysis.diagnostics);
    }
    // Without errors the lowering always gives a program.
    let Some(program) = &analysis.program else {
        return Err(analysis.diagnostics);
    };
    let generated = match kind {
        EmitKind::Rust => Some(("Rust", crate::emit_run::rust_source(program))),
        EmitKind::Clif(form) => Some(("Cranelift IR", crate::emit_run::clif_source(program, form))),
        _ => None,
    };
    if let Some((what, result)) = generated {
        return match result {
            Ok(text) => Ok((text, analysis.diagnostics)),
            Err(e) => {
                let mut diags = analysis.diagnostics;
                diags.push(
                    pnode_grammar::Diagnostic::error(format!("cannot generate {what}: {e}"))
                        .with_primary(analysis.model.name.span, "in this model"),
                );
                Err(diags)
            }
        };
    }
    let function = match kind {
        EmitKind::Jvp => pnode_ir::jvp(&program.rhs),
        EmitKind::Vjp => pnode_ir::vjp(&program.rhs),
        _ => Ok(program.rhs.clone()),
    };
    match function {
        Ok(function) => Ok((format!("{function}\n"), analysis.diagnostics)),
        Err(e) => {
            let mut diags = analysis.diagnostics;
            diags.push(
                pnode_grammar::Diagnostic::error(format!(
                    "cannot differentiate the right-hand side: {e}"
                ))
                .with_primary(analysis.model.name.span, "in this model"),
            );
            Err(diags)
        }
    }
}

/// Emits one file: the text to `out`, diagnostics (warnings too) to `err`.
pub fn emit_file(
    path: &Path,
    kind: EmitKind,
    out: &mut dyn Write,
    err: &mut dyn WriteColor,
) -> Result<Exit, Error> {
    if kind == EmitKind::Schedule {
        let Some((_, program)) = crate::load::lower_file(path, err)? else {
            return Ok(Exit::Failed);
        };
        let text = crate::emit_run::schedule_summary(&program, path)?;
        out.write_all(text.as_bytes())?;
        return Ok(Exit::Ok);
    }
    let SourceFile { name, text } = read_source(path)?;
    match emit_source(&text, &crate::load::model_dir(path), kind) {
        Ok((emitted, warnings)) => {
            render::emit(err, &name, &text, &warnings)?;
            out.write_all(emitted.as_bytes())?;
            Ok(Exit::Ok)
        }
        Err(diags) => {
            render::emit(err, &name, &text, &diags)?;
            Ok(Exit::Failed)
        }
    }
}

/// `pnodec emit KIND FILE`.
pub fn run(path: &Path, kind: EmitKind, color: ColorMode) -> Exit {
    let mut err = color.stderr();
    let mut out = std::io::stdout().lock();
    match emit_file(path, kind, &mut out, &mut err) {
        Ok(status) => status,
        Err(e) => render::report_error(&mut err, &e),
    }
}
