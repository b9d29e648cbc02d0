//! `pnodec check`: parse and lower each file, render every diagnostic, print a summary.

use crate::render::{self, ColorMode};
use crate::{Error, Exit, SourceFile, read_source};
use codespan_reporting::term::termcolor::WriteColor;
use pnode_driver::{ConstFiles, FsData};
use pnode_grammar::ast::Model;
use pnode_grammar::{Diagnostic, parse};
use pnode_ir::lower::{ConstData, Method, NoFiles, Program, Steps, lower_with};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the front end made of one source: the (possibly partial) model, the lowered program
/// when there is no error, and every diagnostic of parsing and lowering, in that order.
#[derive(Debug)]
pub struct Analysis {
    /// The parsed model (partial when there are syntax errors).
    pub model: Model,
    /// The lowered program: `Some` iff no diagnostic is an error.
    pub program: Option<Program>,
    /// Parse diagnostics, then lowering diagnostics.
    pub diagnostics: Vec<Diagnostic>,
    /// Whether parsing gave no error (only then is the model lowered).
    pub syntax_ok: bool,
}

impl Analysis {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses `source` and, when it parses without errors, lowers it
/// ([`pnode_ir::lower::lower`]) without reading files: a `const … = data(..)` is an error
/// (the commands use [`analyze_in`]).
pub fn analyze(source: &str) -> Analysis {
    analyze_with(source, &NoFiles)
}

/// [`analyze`] for a model in `dir`: `const … = data(..)` files are read relative to it
/// ([`pnode_driver::ConstFiles`], the rules of the driver's initial values).
pub fn analyze_in(source: &str, dir: &Path) -> Analysis {
    analyze_with(source, &ConstFiles(&FsData::new(dir)))
}

fn analyze_with(source: &str, data: &dyn ConstData) -> Analysis {
    let parsed = parse(source);
    let syntax_ok = !parsed.has_errors();
    let mut diagnostics = parsed.diagnostics;
    let program = if syntax_ok {
        let lowered = lower_with(&parsed.model, data);
        diagnostics.extend(lowered.diagnostics);
        lowered.program
    } else {
        None
    };
    Analysis {
        model: parsed.model,
        program,
        diagnostics,
        syntax_ok,
    }
}

/// The one-line summary of a lowered model:
/// ``model `lotka_volterra`: 2 states (u[2]), 4 parameters, method rk4, 1000 steps``.
pub fn summary(program: &Program) -> String {
    let states: Vec<String> = program
        .states
        .iter()
        .map(|s| {
            if s.shape.rank() == 0 {
                s.name.clone()
            } else {
                format!("{}{}", s.name, s.shape)
            }
        })
        .collect();
    let mut out = format!(
        "model `{}`: {} ({}), {}",
        program.name,
        count(program.state_len(), "state", "states"),
        states.join(", "),
        count(program.param_len(), "parameter", "parameters"),
    );
    match &program.solve {
        Some(solve) => {
            out += ", method ";
            out += &method_name(&solve.method);
            out += ", ";
            out += &match &solve.steps {
                Steps::Uniform(n) => count(*n as usize, "step", "steps"),
                Steps::Logspace { count: n, .. } => {
                    count(*n as usize, "log-spaced step", "log-spaced steps")
                }
                Steps::Times(times) => count(times.len().saturating_sub(1), "step", "steps"),
                Steps::Data(_) => "steps from a file".into(),
                Steps::Adaptive(c) => adaptive_summary(c),
            };
        }
        None => out += ", no solve block",
    }
    out
}

/// Adaptive steps as the summary prints them: `adaptive steps (rtol 1e-6, atol 1e-9)`, with
/// the runtime's defaults (filled in by the driver's resolver) for what the model leaves out.
fn adaptive_summary(c: &pnode_ir::lower::StepControl) -> String {
    use pnode_runtime::adaptive::Tolerance;
    let tol = |t: &Tolerance| match t {
        Tolerance::Scalar(x) => format!("{x:e}"),
        Tolerance::PerComponent(v) => format!("{} values", v.len()),
    };
    match pnode_driver::resolve::adaptive_options(c) {
        Ok(o) => format!(
            "adaptive steps (rtol {}, atol {})",
            tol(&o.rtol),
            tol(&o.atol)
        ),
        Err(_) => "adaptive steps".into(),
    }
}

/// The integrator's name as reports print it: `rk4`, `theta(0.75)`, `erk (4 stages)`.
pub fn method_name(method: &Method) -> String {
    match method {
        Method::Theta(theta) => format!("theta({theta})"),
        Method::Erk(tableau) => format!("erk ({} stages)", tableau.b.len()),
        method => method.name().to_string(),
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Checks one source: renders its diagnostics to `err`, and, when it has no error, prints
/// the summary followed by ` — ok` (and the number of warnings, if any) to `out`. Returns whether it is free of errors.
pub fn check_source(
    file: &SourceFile,
    dir: &Path,
    out: &mut dyn Write,
    err: &mut dyn WriteColor,
) -> Result<bool, Error> {
    let analysis = analyze_in(&file.text, dir);
    render::emit(err, &file.name, &file.text, &analysis.diagnostics)?;
    if analysis.has_errors() {
        let n = analysis.diagnostics.iter().filter(|d| d.is_error()).count();
        writeln!(
            err,
            "{}: {n} {}",
            file.name,
            if n == 1 { "error" } else { "errors" }
        )?;
        Ok(false)
    } else {
        match &analysis.program {
            Some(program) => {
                let warnings = analysis
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == pnode_grammar::Severity::Warning)
                    .count();
                let note = match warnings {
                    0 => String::new(),
                    1 => " (1 warning)".to_string(),
                    n => format!(" ({n} warnings)"),
                };
                writeln!(out, "{} — ok{note}", summary(program))?
            }
            // Unreachable: without errors the lowering gives a program.
            None => writeln!(out, "model `{}` — ok", analysis.model.name.name)?,
        }
        Ok(true)
    }
}

/// `pnodec check FILE…`: every file is checked, even after one fails.
pub fn run(files: &[PathBuf], color: ColorMode) -> Exit {
    let mut err = color.stderr();
    let mut out = std::io::stdout().lock();
    let mut exit = Exit::Ok;
    for path in files {
        let result = read_source(path).and_then(|file| {
            check_source(&file, &crate::load::model_dir(path), &mut out, &mut err)
        });
        let status = match result {
            Ok(true) => Exit::Ok,
            Ok(false) => Exit::Failed,
            Err(e) => render::report_error(&mut err, &e),
        };
        exit = exit.max(status);
    }
    exit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str, expect: &str) {
        let analysis = analyze(source);
        assert!(!analysis.has_errors(), "{:?}", analysis.diagnostics);
        assert_eq!(summary(analysis.program.as_ref().unwrap()), expect);
    }

    #[test]
    fn summaries() {
        check(
            "model lv\nstate u[2] = [1.0, 1.0]\nparam theta[4] = zeros\n\
             d(u)/dt = theta[0] * u + theta[1] - theta[2] * theta[3]\n\
             solve { method = rk4\n t = 0 .. 1\n steps = 1000 }",
            "model `lv`: 2 states (u[2]), 4 parameters, method rk4, 1000 steps",
        );
        check(
            "model d\nstate u = 1.0\nparam k = 0.5\nd(u)/dt = -k * u\n",
            "model `d`: 1 state (u), 1 parameter, no solve block",
        );
        check(
            "model n\nconst N = 3\nstate x[N, 2] = zeros\nstate y = 0.0\n\
             layer net = linear(2, 2)\nd(x)/dt = net(x)\nd(y)/dt = 0\n\
             solve { method = theta(0.75)\n t = 0 .. 1\n steps = [0, 0.5, 1] }",
            "model `n`: 7 states (x[3, 2], y), 6 parameters, method theta(0.75), 2 steps",
        );
    }

    #[test]
    fn lowering_errors_are_reported() {
        let analysis = analyze("model m\nstate u = 1.0\nd(u)/dt = v\n");
        assert!(analysis.syntax_ok);
        assert!(analysis.program.is_none());
        assert_eq!(analysis.diagnostics[0].code, Some("I001"));
    }
}
