//! `Display` for [`Program`]: the layout tables, the specs and the IR of every function
//! (`pnodec emit ir`, and the corpus snapshots).

use super::program::*;
use std::fmt::{self, Write as _};

fn init(i: &Initializer) -> String {
    match i {
        Initializer::Values(v) if v.len() <= 8 => {
            let s: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
            format!("[{}]", s.join(", "))
        }
        Initializer::Values(v) => format!("<{} values>", v.len()),
        Initializer::Fill(x) => format!("fill({x:?})"),
        Initializer::Zeros => "zeros".into(),
        Initializer::Ones => "ones".into(),
        Initializer::Normal { std } => format!("normal({std:?})"),
        Initializer::Xavier => "xavier".into(),
        Initializer::Uniform { bound } => format!("uniform(±{bound:?})"),
        Initializer::Data(d) => data(d),
        Initializer::DataPart {
            source,
            start,
            total,
        } => format!("{}[{start}..] of {total}", data(source)),
    }
}

fn data(d: &DataSource) -> String {
    match d.column {
        Some(c) => format!("data({:?}, column = {c})", d.path),
        None => format!("data({:?})", d.path),
    }
}

fn method(m: &Method) -> String {
    match m {
        Method::Theta(t) => format!("theta({t:?})"),
        Method::Erk(t) => format!("erk(a = {:?}, b = {:?}, c = {:?})", t.a, t.b, t.c),
        m => m.name().to_string(),
    }
}

fn list(v: &[f64]) -> String {
    let s: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("[{}]", s.join(", "))
}

impl fmt::Display for SolveSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = format!(
            "method {}, t {:?} .. {:?}, steps ",
            method(&self.method),
            self.t0,
            self.t1
        );
        match &self.steps {
            Steps::Uniform(n) => write!(s, "{n}")?,
            Steps::Logspace { start, end, count } => {
                write!(s, "logspace({start:?}, {end:?}, {count})")?
            }
            Steps::Times(v) => s += &list(v),
            Steps::Data(d) => s += &data(d),
            Steps::Adaptive(c) => write!(s, "adaptive {c:?}")?,
        }
        match &self.outputs {
            None => {}
            Some(Outputs::Linspace { start, end, count }) => {
                write!(s, ", outputs linspace({start:?}, {end:?}, {count})")?
            }
            Some(Outputs::Times(v)) => write!(s, ", outputs {}", list(v))?,
            Some(Outputs::Data(d)) => write!(s, ", outputs {}", data(d))?,
        }
        if let Some(c) = &self.checkpoint {
            write!(s, ", checkpoint {c:?}")?;
        }
        if self.newton != NewtonOptions::default() {
            write!(s, ", {:?}", self.newton)?;
        }
        f.write_str(&s)
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model {}", self.name)?;
        for s in &self.states {
            let end = s.offset + s.shape.len();
            writeln!(
                f,
                "state {} {} = u[{}..{end}] init {}",
                s.name,
                s.shape,
                s.offset,
                init(&s.init)
            )?;
        }
        for p in &self.params {
            let end = p.offset + p.shape.len();
            writeln!(
                f,
                "param {} {} = p[{}..{end}] init {}",
                p.name,
                p.shape,
                p.offset,
                init(&p.init)
            )?;
        }
        writeln!(f, "rhs {}", self.rhs)?;
        if let Some(s) = &self.solve {
            writeln!(f, "solve {s}")?;
        }
        if let Some(l) = &self.loss {
            for fit in &l.fits {
                writeln!(
                    f,
                    "loss fit {:?} weight {:?} against {} of {}",
                    fit.metric,
                    fit.weight,
                    data(&fit.data),
                    fit.prediction
                )?;
            }
            if let Some(e) = &l.expr {
                writeln!(f, "loss per output {e}")?;
            }
        }
        if let Some(t) = &self.train {
            writeln!(f, "train {t:?}")?;
        }
        Ok(())
    }
}
