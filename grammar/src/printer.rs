//! The canonical printer (`pnodec fmt`): AST back to DSL text, so that
//! `parse(&print(&m)).model.without_spans() == m.without_spans()`.
//!
//! The format: doc comments, `model NAME`, a blank line, then the items in source order with a
//! blank line between groups (states, parameters, constants, layers, lets, equations, loss;
//! every block on its own); one option per line in blocks, indented four spaces; single
//! spaces around binary operators and `=`, none inside brackets; `, ` between elements;
//! parentheses only where precedence needs them; numbers in Rust's shortest round-trip form
//! (`1e-10`, `0.5`, `2.0`). Comments other than the model's doc comments are dropped.

use crate::ast::*;
use std::fmt::{self, Display, Write};

/// Prints a model as canonical `.pode` text.
pub fn print(model: &Model) -> String {
    model.to_string()
}

impl Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.doc {
            if line.is_empty() {
                writeln!(f, "#")?;
            } else {
                writeln!(f, "# {line}")?;
            }
        }
        writeln!(f, "model {}", self.name.name)?;
        let mut prev: Option<Group> = None;
        for item in &self.items {
            let group = group(item);
            if prev != Some(group) || group == Group::Block {
                writeln!(f)?;
            }
            prev = Some(group);
            writeln!(f, "{item}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Decl(DeclKind),
    Layer,
    Let,
    Equation,
    Loss,
    Block,
}

fn group(item: &Item) -> Group {
    match item {
        Item::Decl(d) => Group::Decl(d.kind),
        Item::Layer(_) => Group::Layer,
        Item::Let(_) => Group::Let,
        Item::Equation(_) => Group::Equation,
        Item::Loss(_) => Group::Loss,
        Item::Block(_) => Group::Block,
    }
}

impl Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Decl(d) => {
                write!(f, "{} {}", d.kind.keyword(), d.name.name)?;
                if let Some(shape) = &d.shape {
                    f.write_char('[')?;
                    list(f, &shape.dims)?;
                    f.write_char(']')?;
                }
                write!(f, " = {}", d.init)
            }
            Item::Layer(l) => {
                write!(f, "layer {} = {}(", l.name.name, l.kind.name)?;
                args(f, &l.args)?;
                f.write_char(')')
            }
            Item::Let(l) => write!(f, "let {} = {}", l.name.name, l.value),
            Item::Equation(e) => {
                write!(f, "d({}", e.state.name)?;
                if let Some(index) = &e.index {
                    write!(f, "{index}")?;
                }
                write!(f, ")/dt = {}", e.rhs)
            }
            Item::Loss(l) => write!(f, "loss = {}", l.value),
            Item::Block(b) => {
                if b.options.is_empty() {
                    return write!(f, "{} {{}}", b.kind.keyword());
                }
                writeln!(f, "{} {{", b.kind.keyword())?;
                for o in &b.options {
                    writeln!(f, "    {} = {}", o.key.name, o.value)?;
                }
                f.write_char('}')
            }
        }
    }
}

impl Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match item {
                IndexItem::At(e) => write!(f, "{e}")?,
                IndexItem::Slice { start, end, .. } => {
                    if let Some(s) = start {
                        write!(f, "{s}")?;
                    }
                    f.write_char(':')?;
                    if let Some(e) = end {
                        write!(f, "{e}")?;
                    }
                }
            }
        }
        f.write_char(']')
    }
}

fn list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}

fn args(f: &mut fmt::Formatter<'_>, args: &[Arg]) -> fmt::Result {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        if let Some(name) = &a.name {
            write!(f, "{} = ", name.name)?;
        }
        write!(f, "{}", a.value)?;
    }
    Ok(())
}

// Precedence levels, loosest first.
const RANGE: u8 = 0;
const SUM: u8 = 1;
const PRODUCT: u8 = 2;
const UNARY: u8 = 3;
const POWER: u8 = 4;
const POSTFIX: u8 = 5;
const ATOM: u8 = 6;

fn precedence(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Range { .. } => RANGE,
        ExprKind::Binary {
            op: BinOp::Add | BinOp::Sub,
            ..
        } => SUM,
        ExprKind::Binary {
            op: BinOp::Mul | BinOp::Div | BinOp::MatMul,
            ..
        } => PRODUCT,
        ExprKind::Neg(_) => UNARY,
        ExprKind::Binary { op: BinOp::Pow, .. } => POWER,
        ExprKind::Index { .. } => POSTFIX,
        _ => ATOM,
    }
}

/// Prints `e`, in parentheses if it binds looser than `min`.
fn operand(f: &mut fmt::Formatter<'_>, e: &Expr, min: u8) -> fmt::Result {
    if precedence(e) < min {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Deep trees continue on a fresh stack segment instead of overflowing.
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.fmt_expr(f))
    }
}

impl Expr {
    fn fmt_expr(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Int(v) => write!(f, "{v}"),
            ExprKind::Float(v) => write!(f, "{v:?}"),
            ExprKind::Bytes { value, unit } => {
                if value.fract() == 0.0 && *value < 9.007_199_254_740_992e15 {
                    write!(f, "{}{}", *value as u64, unit.symbol())
                } else {
                    write!(f, "{value:?}{}", unit.symbol())
                }
            }
            ExprKind::Str(s) => {
                f.write_char('"')?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\r' => f.write_str("\\r")?,
                        '\t' => f.write_str("\\t")?,
                        c => f.write_char(c)?,
                    }
                }
                f.write_char('"')
            }
            ExprKind::Bool(b) => write!(f, "{b}"),
            ExprKind::Name(n) => f.write_str(n),
            ExprKind::Array(items) => {
                f.write_char('[')?;
                list(f, items)?;
                f.write_char(']')
            }
            ExprKind::Call { func, args: a } => {
                write!(f, "{}(", func.name)?;
                args(f, a)?;
                f.write_char(')')
            }
            ExprKind::Index { base, index } => {
                operand(f, base, POSTFIX)?;
                write!(f, "{index}")
            }
            ExprKind::Neg(e) => {
                f.write_char('-')?;
                operand(f, e, UNARY)
            }
            ExprKind::Binary {
                op: BinOp::Pow,
                lhs,
                rhs,
            } => {
                operand(f, lhs, POSTFIX)?;
                f.write_str(" ^ ")?;
                operand(f, rhs, UNARY)
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let prec = precedence(self);
                operand(f, lhs, prec)?;
                write!(f, " {} ", op.symbol())?;
                operand(f, rhs, prec + 1)
            }
            ExprKind::Range { start, end } => {
                operand(f, start, SUM)?;
                f.write_str(" .. ")?;
                operand(f, end, SUM)
            }
        }
    }
}
