//! `pnodec check`: parse and lower each file, render every diagnostic, print a summary.

use crate::render::{self, ColorMode};
use crate::{Error, Exit, SourceFile, read_source};
use codespan_reporting::term::termcolor::WriteColor;
use pnode_grammar::ast::{DeclKind, ExprKind, Model};
use pnode_grammar::{Diagnostic, parse};
use std::io::Write;
use std::path::PathBuf;

/// What the front end made of one source: the (possibly partial) model and every diagnostic
/// of parsing and lowering, in that order.
#[derive(Debug)]
pub struct Analysis {
    /// The parsed model (partial when there are syntax errors).
    pub model: Model,
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

/// Parses `source` and, when it parses without errors, lowers it.
pub fn analyze(source: &str) -> Analysis {
    let parsed = parse(source);
    let syntax_ok = !parsed.has_errors();
    Analysis {
        model: parsed.model,
        diagnostics: parsed.diagnostics,
        syntax_ok,
    }
}

/// The one-line summary of a checked model:
/// ``model `lotka_volterra`: 2 states (u[2]), 4 parameters, method rk4, 1000 steps``.
pub fn summary(model: &Model) -> String {
    let consts = integer_consts(model);
    let size_of = |shape: &Option<pnode_grammar::ast::Shape>| -> Option<u64> {
        let Some(shape) = shape else { return Some(1) };
        shape.dims.iter().try_fold(1u64, |acc, d| {
            let n = match &d.kind {
                ExprKind::Int(n) => Some(*n),
                ExprKind::Name(name) => consts.iter().find(|(c, _)| c == name).map(|(_, v)| *v),
                _ => None,
            }?;
            acc.checked_mul(n)
        })
    };
    let count = |kind: DeclKind| -> Option<u64> {
        model
            .decls(kind)
            .try_fold(0u64, |acc, d| acc.checked_add(size_of(&d.shape)?))
    };
    let states: Vec<String> = model
        .decls(DeclKind::State)
        .map(|d| match &d.shape {
            Some(shape) => format!("{}{}", d.name.name, print_shape(shape)),
            None => d.name.name.clone(),
        })
        .collect();
    let n_states = count(DeclKind::State).map_or("?".to_string(), |n| n.to_string());
    let mut out = format!(
        "model `{}`: {} {} ({})",
        model.name.name,
        n_states,
        plural(count(DeclKind::State), "state", "states"),
        states.join(", ")
    );
    let n_params = count(DeclKind::Param);
    let layers = model.layers().count();
    out += &format!(
        ", {} {}",
        n_params.map_or("?".to_string(), |n| n.to_string()),
        plural(n_params, "parameter", "parameters")
    );
    if layers > 0 {
        out += &format!(
            " + {layers} {}",
            if layers == 1 { "layer" } else { "layers" }
        );
    }
    match model.solve() {
        Some(solve) => {
            if let Some(method) = solve.get("method") {
                out += &format!(", method {}", method.value);
            }
            if let Some(steps) = solve.get("steps") {
                match &steps.value.kind {
                    ExprKind::Int(n) => out += &format!(", {n} steps"),
                    ExprKind::Array(items) => {
                        out += &format!(", {} steps", items.len().saturating_sub(1))
                    }
                    _ => out += &format!(", steps {}", steps.value),
                }
            }
        }
        None => out += ", no solve block",
    }
    out
}

fn plural(n: Option<u64>, one: &'static str, many: &'static str) -> &'static str {
    if n == Some(1) { one } else { many }
}

fn print_shape(shape: &pnode_grammar::ast::Shape) -> String {
    let dims: Vec<String> = shape.dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// The scalar integer constants (`const N = 4`), usable as dimensions.
fn integer_consts(model: &Model) -> Vec<(String, u64)> {
    model
        .decls(DeclKind::Const)
        .filter(|d| d.shape.is_none())
        .filter_map(|d| Some((d.name.name.clone(), d.init.as_u64()?)))
        .collect()
}

/// Checks one source: renders its diagnostics to `err`, and, when it has no error, prints
/// the summary followed by ` — ok` to `out`. Returns whether it is free of errors.
pub fn check_source(
    file: &SourceFile,
    out: &mut dyn Write,
    err: &mut dyn WriteColor,
) -> Result<bool, Error> {
    let analysis = analyze(&file.text);
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
        writeln!(out, "{} — ok", summary(&analysis.model))?;
        Ok(true)
    }
}

/// `pnodec check FILE…`: every file is checked, even after one fails.
pub fn run(files: &[PathBuf], color: ColorMode) -> Exit {
    let mut err = color.stderr();
    let mut out = std::io::stdout().lock();
    let mut exit = Exit::Ok;
    for path in files {
        let result = read_source(path).and_then(|file| check_source(&file, &mut out, &mut err));
        let status = match result {
            Ok(true) => Exit::Ok,
            Ok(false) => Exit::Failed,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                e.exit()
            }
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
        assert_eq!(summary(&analysis.model), expect);
    }

    #[test]
    fn summaries() {
        check(
            "model lv\nstate u[2] = [1.0, 1.0]\nparam theta[4] = zeros\nd(u)/dt = u\n\
             solve { method = rk4\n steps = 1000 }",
            "model `lv`: 2 states (u[2]), 4 parameters, method rk4, 1000 steps",
        );
        check(
            "model d\nstate u = 1.0\nparam k = 0.5\nd(u)/dt = -k * u\n",
            "model `d`: 1 state (u), 1 parameter, no solve block",
        );
        check(
            "model n\nconst N = 3\nstate x[N, 2] = zeros\nstate y = 0.0\nlayer net = mlp([2, 4, 2])\n\
             d(x)/dt = net(x)\nd(y)/dt = 0\nsolve { method = theta(0.75)\n steps = [0, 0.5, 1] }",
            "model `n`: 7 states (x[N, 2], y), 0 parameters + 1 layer, method theta(0.75), 2 steps",
        );
    }
}
