//! Reading back the parameters file `pnodec train` writes ([`crate::train::params_json`]):
//!
//! ```json
//! { "model": "lotka_volterra", "iterations": 300, "loss": 1.2e-5,
//!   "params": { "theta": [1.5, 1.0, 3.0, 1.0] } }
//! ```
//!
//! `params` must hold exactly the program's parameters, each by name with the row-major
//! flattening of its shape (`shape.len()` finite numbers). Anything else is an
//! [`Error::Params`] naming the file and the parameter (exit 1); a file that cannot be read is
//! an [`Error::Read`] (exit 2). `model`, `iterations` and `loss` are informative: a different
//! model name is only noted ([`ParamsFile::notes`]).
//!
//! `solve`, `grad`, `bench` and `train` (as its starting point) take such a file with
//! `--params FILE` ([`theta_or_default`]); without it they run at the setup's `θ0`.

use crate::{Error, read_source};
use codespan_reporting::term::termcolor::WriteColor;
use pnode_ir::lower::Program;
use serde_json::Value;
use std::path::Path;

/// `θ` from `--params FILE` when given (checked by [`read_params`], and announced on `err` as
/// `parameters from FILE (NOTES)`), else `theta0`.
pub fn theta_or_default(
    params: Option<&Path>,
    program: &Program,
    theta0: &[f64],
    err: &mut dyn WriteColor,
) -> Result<Vec<f64>, Error> {
    let Some(p) = params else {
        return Ok(theta0.to_vec());
    };
    let file = read_params(p, program)?;
    let notes = file.notes.join("; ");
    // A note on a closed stderr is dropped, not an error of the command.
    let _ = writeln!(
        err,
        "parameters from {}{}",
        p.display(),
        if notes.is_empty() {
            String::new()
        } else {
            format!(" ({notes})")
        }
    );
    Ok(file.theta)
}

/// Parameters read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamsFile {
    /// `θ`, flat in the program's parameter order.
    pub theta: Vec<f64>,
    /// What the file says about itself, for the user (`trained 300 iterations, loss 1.2e-5`)
    /// and anything worth a note (another model's name).
    pub notes: Vec<String>,
}

fn describe_shape(shape: &[usize]) -> String {
    if shape.is_empty() {
        "a scalar".into()
    } else {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        format!("shape [{}]", dims.join(", "))
    }
}

/// Reads `path` and returns the flat `θ` for `program`, checking names and sizes.
pub fn read_params(path: &Path, program: &Program) -> Result<ParamsFile, Error> {
    let text = read_source(path)?.text;
    let err = |reason: String| Error::Params {
        path: path.to_path_buf(),
        reason,
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        err(format!(
            "not JSON ({e}); expected the file `pnodec train` writes"
        ))
    })?;
    let Some(params) = v.get("params").and_then(Value::as_object) else {
        return Err(err(
            "no `params` object (expected `{\"params\": {NAME: [values…]}}`, as `pnodec \
             train` writes)"
                .into(),
        ));
    };
    let mut theta = vec![0.0; program.param_len()];
    for p in &program.params {
        let n = p.shape.len();
        let Some(value) = params.get(&p.name) else {
            let have: Vec<&str> = params.keys().map(String::as_str).collect();
            return Err(err(format!(
                "no parameter `{}` ({} of model `{}`); the file has {}",
                p.name,
                describe_shape(p.shape.dims()),
                program.name,
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.iter()
                        .map(|h| format!("`{h}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        };
        // A scalar may be written as a bare number.
        let values: Vec<&Value> = match value {
            Value::Array(a) => a.iter().collect(),
            Value::Number(_) => vec![value],
            _ => {
                return Err(err(format!(
                    "parameter `{}` is not an array of numbers",
                    p.name
                )));
            }
        };
        if values.len() != n {
            return Err(err(format!(
                "parameter `{}` has {} values, but in model `{}` it has {} ({} values)",
                p.name,
                values.len(),
                program.name,
                describe_shape(p.shape.dims()),
                n
            )));
        }
        for (i, x) in values.iter().enumerate() {
            match x.as_f64() {
                Some(f) if f.is_finite() => theta[p.offset + i] = f,
                _ => {
                    return Err(err(format!(
                        "parameter `{}`: value {i} is `{x}`, not a finite number",
                        p.name
                    )));
                }
            }
        }
    }
    if let Some(extra) = params
        .keys()
        .find(|k| !program.params.iter().any(|p| &p.name == *k))
    {
        let names: Vec<String> = program
            .params
            .iter()
            .map(|p| format!("`{}`", p.name))
            .collect();
        return Err(err(format!(
            "`{extra}` is not a parameter of model `{}` (its parameters: {})",
            program.name,
            names.join(", ")
        )));
    }
    let mut notes = Vec::new();
    let mut origin = Vec::new();
    if let Some(i) = v.get("iterations").and_then(Value::as_u64) {
        origin.push(format!("trained {i} iterations"));
    }
    if let Some(l) = v.get("loss").and_then(Value::as_f64) {
        origin.push(format!("loss {l:e}"));
    }
    if !origin.is_empty() {
        notes.push(origin.join(", "));
    }
    if let Some(m) = v.get("model").and_then(Value::as_str)
        && m != program.name
    {
        notes.push(format!(
            "the file was written for model `{m}`, this is `{}` (names and sizes match)",
            program.name
        ));
    }
    Ok(ParamsFile { theta, notes })
}
