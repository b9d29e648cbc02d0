//! Building the AST from pest's pairs: one `match` arm per grammar rule, each naming the rule
//! it handles. Spans exclude the whitespace and comments pest lets a rule end with; operator
//! nodes span their operands' parentheses. Tree depth is bounded by [`MAX_EXPR_DEPTH`]: a
//! chain is measured before it is folded, so nothing deeper is ever built.

use crate::ast::*;
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::parser::{Entry, MAX_EXPR_DEPTH, Rule};
use pest::iterators::Pair;

/// Below this much remaining stack, building continues on a new segment of [`STACK_SEGMENT`].
const RED_ZONE: usize = 128 * 1024;
const STACK_SEGMENT: usize = 4 * 1024 * 1024;

/// Builds AST nodes from pest pairs of a text that starts at byte `offset` of the file.
pub(crate) struct Builder<'d> {
    offset: usize,
    pub(crate) diags: &'d mut Vec<Diagnostic>,
    reported_depth: bool,
}

impl<'d> Builder<'d> {
    pub(crate) fn new(offset: usize, diags: &'d mut Vec<Diagnostic>) -> Self {
        Builder {
            offset,
            diags,
            reported_depth: false,
        }
    }

    /// The pair's span without the whitespace and comments pest lets a rule end with.
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        let len = trim_trivia(pair.as_str());
        Span::new(s.start() + self.offset, s.start() + len + self.offset)
    }

    fn ident(&self, pair: Pair<'_, Rule>) -> Ident {
        Ident {
            span: self.span(&pair),
            name: pair.as_str().to_string(),
        }
    }

    /// Builds an item and keeps it unless building it reported an error.
    pub(crate) fn item_checked(&mut self, pair: Pair<'_, Rule>, entries: &mut Vec<Entry>) {
        let before = self.diags.len();
        self.reported_depth = false;
        let entry = self.item(pair);
        if self.diags.len() == before {
            entries.extend(entry);
        }
    }

    fn item(&mut self, pair: Pair<'_, Rule>) -> Option<Entry> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let mut next = move || inner.next().expect("grammar: item has this child");
        Some(match rule {
            // model_decl = { kw_model ~ ident }
            Rule::model_decl => {
                next();
                Entry::Header(self.ident(next()), span)
            }
            // state_decl | param_decl | const_decl = { kw ~ ident ~ shape? ~ "=" ~ expr }
            Rule::state_decl | Rule::param_decl | Rule::const_decl => {
                let kind = match rule {
                    Rule::state_decl => DeclKind::State,
                    Rule::param_decl => DeclKind::Param,
                    _ => DeclKind::Const,
                };
                next();
                let name = self.ident(next());
                let mut p = next();
                let shape = if p.as_rule() == Rule::shape {
                    let shape = self.shape(p);
                    p = next();
                    Some(shape)
                } else {
                    None
                };
                let init = self.expr(p, 0);
                Entry::Item(Item::Decl(Decl {
                    kind,
                    name,
                    shape,
                    init,
                    span,
                }))
            }
            // layer_decl = { kw_layer ~ ident ~ "=" ~ ident ~ "(" ~ arg_list ~ ")" }
            Rule::layer_decl => {
                next();
                let name = self.ident(next());
                let kind = self.ident(next());
                let args = self.args(next(), 0);
                Entry::Item(Item::Layer(Layer {
                    name,
                    kind,
                    args,
                    span,
                }))
            }
            // let_decl = { kw_let ~ ident ~ "=" ~ expr }
            Rule::let_decl => {
                next();
                let name = self.ident(next());
                let value = self.expr(next(), 0);
                Entry::Item(Item::Let(Let { name, value, span }))
            }
            // equation = { kw_d ~ "(" ~ ident ~ index? ~ ")" ~ "/" ~ "dt" ~ "=" ~ expr }
            Rule::equation => {
                next();
                let state = self.ident(next());
                let mut p = next();
                let index = if p.as_rule() == Rule::index {
                    let index = self.index(p, 0);
                    p = next();
                    Some(index)
                } else {
                    None
                };
                let rhs = self.expr(p, 0);
                Entry::Item(Item::Equation(Equation {
                    state,
                    index,
                    rhs,
                    span,
                }))
            }
            // loss_decl = { kw_loss ~ "=" ~ expr }
            Rule::loss_decl => {
                next();
                Entry::Item(Item::Loss(Loss {
                    value: self.expr(next(), 0),
                    span,
                }))
            }
            // solve_block | train_block = { kw ~ "{" ~ options ~ "}" }
            Rule::solve_block | Rule::train_block => {
                let kind = if rule == Rule::solve_block {
                    BlockKind::Solve
                } else {
                    BlockKind::Train
                };
                next();
                // options = { (option ~ ","?)* }
                let options = next().into_inner().map(|o| self.option(o)).collect();
                Entry::Item(Item::Block(Block {
                    kind,
                    options,
                    span,
                }))
            }
            _ => return None,
        })
    }

    // option = { ident ~ "=" ~ expr ~ (".." ~ expr)? }
    pub(crate) fn option(&mut self, pair: Pair<'_, Rule>) -> OptionEntry {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let key = self.ident(inner.next().expect("grammar: option key"));
        let first = inner.next().expect("grammar: option value");
        let value = match inner.next() {
            Some(second) => {
                let outer = self.span(&first).to(self.span(&second));
                let start = Box::new(self.expr(first, 1));
                let end = Box::new(self.expr(second, 1));
                Expr {
                    kind: ExprKind::Range { start, end },
                    span: outer,
                }
            }
            None => self.expr(first, 0),
        };
        OptionEntry { key, value, span }
    }

    // shape = { "[" ~ expr ~ ("," ~ expr)* ~ ","? ~ "]" }
    fn shape(&mut self, pair: Pair<'_, Rule>) -> Shape {
        let span = self.span(&pair);
        let dims = pair.into_inner().map(|p| self.expr(p, 1)).collect();
        Shape { dims, span }
    }

    // arg_list = { (arg ~ ("," ~ arg)* ~ ","?)? }, arg = { kwarg | expr }
    fn args(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Vec<Arg> {
        let mut args: Vec<Arg> = Vec::new();
        // The keyword arguments so far by name, and the last one (a call may have many
        // arguments: no scan of the earlier ones per argument).
        let mut keywords: std::collections::HashMap<String, Span> = Default::default();
        let mut last_keyword: Option<Span> = None;
        for arg in pair.into_inner() {
            let span = self.span(&arg);
            let inner = arg.into_inner().next().expect("grammar: arg has a child");
            let built = match inner.as_rule() {
                // kwarg = { ident ~ "=" ~ expr }
                Rule::kwarg => {
                    let mut kv = inner.into_inner();
                    let name = self.ident(kv.next().expect("grammar: kwarg name"));
                    let value = self.expr(kv.next().expect("grammar: kwarg value"), depth + 1);
                    if let Some(&first) = keywords.get(&name.name) {
                        self.diags.push(
                            Diagnostic::error(format!(
                                "keyword argument `{}` given twice",
                                name.name
                            ))
                            .with_code(codes::DUPLICATE_ARGUMENT)
                            .with_primary(name.span, "given again here")
                            .with_secondary(first, "first given here"),
                        );
                    } else {
                        keywords.insert(name.name.clone(), name.span);
                    }
                    last_keyword = Some(name.span);
                    Arg {
                        name: Some(name),
                        value,
                        span,
                    }
                }
                // expr (a positional argument)
                _ => {
                    let value = self.expr(inner, depth + 1);
                    if let Some(kw) = last_keyword {
                        self.diags.push(
                            Diagnostic::error("positional argument after a keyword argument")
                                .with_code(codes::ARGUMENT_ORDER)
                                .with_primary(span, "positional argument")
                                .with_secondary(kw, "keyword argument before it")
                                .with_note("put positional arguments first"),
                        );
                    }
                    Arg {
                        name: None,
                        value,
                        span,
                    }
                }
            };
            args.push(built);
        }
        args
    }

    // index = { "[" ~ index_item ~ ("," ~ index_item)* ~ ","? ~ "]" }
    fn index(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Index {
        let span = self.span(&pair);
        let mut items = Vec::new();
        // index_item = { !("]" | ",") ~ slice_start? ~ (colon ~ slice_end?)? }
        for item in pair.into_inner() {
            let item_span = self.span(&item);
            let (mut start, mut end, mut colon) = (None, None, false);
            for part in item.into_inner() {
                match part.as_rule() {
                    // colon = { ":" }
                    Rule::colon => colon = true,
                    // slice_start = { expr }, slice_end = { expr }
                    rule => {
                        let e = part.into_inner().next().expect("grammar: slice bound");
                        let e = self.expr(e, depth + 1);
                        if rule == Rule::slice_start {
                            start = Some(e)
                        } else {
                            end = Some(e)
                        }
                    }
                }
            }
            items.push(match (start, colon) {
                (Some(at), false) => IndexItem::At(at),
                (start, _) => IndexItem::Slice {
                    start,
                    end,
                    span: item_span,
                },
            });
        }
        Index { items, span }
    }

    fn too_deep(&mut self, span: Span) -> Expr {
        if !self.reported_depth {
            self.reported_depth = true;
            self.diags.push(
                Diagnostic::error(format!("expression nested more than {MAX_EXPR_DEPTH} deep"))
                    .with_code(codes::TOO_DEEP)
                    .with_primary(span, "this expression is too deep")
                    .with_note("split it with `let` definitions"),
            );
        }
        Expr {
            kind: ExprKind::Name(String::new()),
            span,
        }
    }

    /// Builds any expression rule at tree depth `depth`. Deep input continues on a fresh
    /// stack segment instead of overflowing (frames are large in unoptimized builds).
    pub(crate) fn expr(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Expr {
        stacker::maybe_grow(RED_ZONE, STACK_SEGMENT, || self.expr_rule(pair, depth))
    }

    fn expr_rule(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Expr {
        let span = self.span(&pair);
        if depth > MAX_EXPR_DEPTH {
            return self.too_deep(span);
        }
        let leaf = |kind| Expr { kind, span };
        match pair.as_rule() {
            // expr = { product ~ (add_op ~ product)* }, product = { unary ~ (mul_op ~ unary)* }
            Rule::expr | Rule::product => self.chain(pair, span, depth),
            // unary = { neg* ~ power }
            Rule::unary => self.unary(pair, span, depth),
            // power = { postfix ~ (pow_op ~ neg* ~ postfix)* }
            Rule::power => self.power(pair, span, depth),
            // postfix = { primary ~ index* }
            Rule::postfix => self.postfix(pair, span, depth),
            // paren = { "(" ~ expr ~ ")" }
            Rule::paren => {
                let inner = pair.into_inner().next().expect("grammar: paren content");
                self.expr(inner, depth + 1)
            }
            // array = { "[" ~ (expr ~ ("," ~ expr)* ~ ","?)? ~ "]" }
            Rule::array => {
                let items = pair.into_inner().map(|p| self.expr(p, depth + 1)).collect();
                leaf(ExprKind::Array(items))
            }
            // call = { ident ~ "(" ~ arg_list ~ ")" }
            Rule::call => {
                let mut inner = pair.into_inner();
                let func = self.ident(inner.next().expect("grammar: callee"));
                let args = self.args(inner.next().expect("grammar: arg_list"), depth);
                leaf(ExprKind::Call { func, args })
            }
            // bytes = ${ number_part ~ byte_unit }
            Rule::bytes => {
                let mut inner = pair.into_inner();
                let number = inner.next().expect("grammar: bytes number");
                let unit_text = inner.next().map_or("", |p| p.as_str());
                let unit = ByteUnit::ALL
                    .into_iter()
                    .find(|u| u.symbol() == unit_text)
                    .unwrap_or(ByteUnit::B);
                let value = self.float(number.as_str(), span);
                leaf(ExprKind::Bytes { value, unit })
            }
            // number = @{ digits ~ ("." ~ digits)? ~ exponent? ~ !ident_char }
            Rule::number => leaf(self.number(pair.as_str(), span)),
            // string = @{ "\"" ~ (escape | !("\"" | "\\" | "\n") ~ ANY)* ~ "\"" }
            Rule::string => leaf(ExprKind::Str(self.string(pair.as_str(), span.start))),
            // boolean = @{ ("true" | "false") ~ !ident_char }
            Rule::boolean => leaf(ExprKind::Bool(pair.as_str() == "true")),
            // ident = @{ !keyword ~ (ASCII_ALPHA | "_") ~ ident_char* }
            Rule::ident => leaf(ExprKind::Name(pair.as_str().to_string())),
            other => unreachable!("grammar: {other:?} is not an expression"),
        }
    }

    /// A left-associative chain `a op b op c`, measured before it is folded.
    fn chain(&mut self, pair: Pair<'_, Rule>, span: Span, depth: usize) -> Expr {
        let parts: Vec<_> = pair.into_inner().collect();
        let depth = depth + parts.len() / 2;
        if depth > MAX_EXPR_DEPTH {
            return self.too_deep(span);
        }
        let mut parts = parts.into_iter();
        let first = parts.next().expect("grammar: first operand");
        // Spans of operators cover their operands' parentheses: the operand pairs' spans.
        let mut outer = self.span(&first);
        let mut acc = self.expr(first, depth);
        while let (Some(op), Some(rhs)) = (parts.next(), parts.next()) {
            // add_op = { "+" | "-" }, mul_op = { "*" | "/" | "@" }
            let op = match op.as_str() {
                "+" => BinOp::Add,
                "-" => BinOp::Sub,
                "*" => BinOp::Mul,
                "/" => BinOp::Div,
                _ => BinOp::MatMul,
            };
            outer = outer.to(self.span(&rhs));
            let rhs = self.expr(rhs, depth);
            acc = binary(op, acc, rhs, outer);
        }
        acc
    }

    /// `- - x`: the signs apply to the whole power that follows.
    fn unary(&mut self, pair: Pair<'_, Rule>, span: Span, depth: usize) -> Expr {
        let parts: Vec<_> = pair.into_inner().collect();
        let negs: Vec<Span> = parts[..parts.len() - 1]
            .iter()
            .map(|p| self.span(p))
            .collect();
        let depth = depth + negs.len();
        if depth > MAX_EXPR_DEPTH {
            return self.too_deep(span);
        }
        let operand = parts.into_iter().last().expect("grammar: unary operand");
        let outer = self.span(&operand);
        let operand = self.expr(operand, depth);
        wrap_negs(&negs, operand, outer)
    }

    /// `a ^ b ^ -c`, kept flat by the grammar and folded to the right here.
    fn power(&mut self, pair: Pair<'_, Rule>, span: Span, depth: usize) -> Expr {
        let mut base = None;
        let mut groups: Vec<(Vec<Span>, Pair<'_, Rule>)> = Vec::new();
        let mut negs = Vec::new();
        let mut count = 0;
        for p in pair.into_inner() {
            match p.as_rule() {
                // pow_op = { "^" }
                Rule::pow_op => {}
                // neg = { "-" }: a sign of the next exponent
                Rule::neg => {
                    count += 1;
                    negs.push(self.span(&p));
                }
                // postfix: the base, then the exponents
                _ if base.is_none() => base = Some(p),
                _ => {
                    count += 1;
                    groups.push((std::mem::take(&mut negs), p));
                }
            }
        }
        let depth = depth + count;
        if depth > MAX_EXPR_DEPTH {
            return self.too_deep(span);
        }
        let base = base.expect("grammar: power base");
        let base_outer = self.span(&base);
        let base = self.expr(base, depth);
        let mut acc: Option<Expr> = None;
        for (negs, operand) in groups.into_iter().rev() {
            // This operand's text runs to the end of the tower when it has an exponent.
            let mut outer = self.span(&operand);
            let operand = self.expr(operand, depth);
            let value = match acc {
                Some(exponent) => {
                    outer = Span::new(outer.start, span.end);
                    binary(BinOp::Pow, operand, exponent, outer)
                }
                None => operand,
            };
            acc = Some(wrap_negs(&negs, value, outer));
        }
        match acc {
            Some(exponent) => binary(BinOp::Pow, base, exponent, base_outer.to(span)),
            None => base,
        }
    }

    /// `x[i][j]`.
    fn postfix(&mut self, pair: Pair<'_, Rule>, span: Span, depth: usize) -> Expr {
        let parts: Vec<_> = pair.into_inner().collect();
        let depth = depth + parts.len() - 1;
        if depth > MAX_EXPR_DEPTH {
            return self.too_deep(span);
        }
        let mut parts = parts.into_iter();
        let first = parts.next().expect("grammar: postfix base");
        let outer = self.span(&first);
        let mut acc = self.expr(first, depth);
        for p in parts {
            let index = self.index(p, depth);
            let span = outer.to(index.span);
            acc = Expr {
                kind: ExprKind::Index {
                    base: Box::new(acc),
                    index,
                },
                span,
            };
        }
        acc
    }

    /// An integer (digits only) or a real.
    fn number(&mut self, text: &str, span: Span) -> ExprKind {
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return ExprKind::Float(self.float(text, span));
        }
        match text.parse::<u64>() {
            Ok(v) => ExprKind::Int(v),
            Err(_) => {
                self.diags.push(
                    Diagnostic::error("integer literal too large")
                        .with_code(codes::INVALID_LITERAL)
                        .with_primary(span, "does not fit in 64 bits")
                        .with_note(format!(
                            "the largest integer is {}; write a real number such as `1e20` instead",
                            u64::MAX
                        )),
                );
                ExprKind::Int(0)
            }
        }
    }

    fn float(&mut self, text: &str, span: Span) -> f64 {
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                self.diags.push(
                    Diagnostic::error("number out of range")
                        .with_code(codes::INVALID_LITERAL)
                        .with_primary(span, "too large for a 64-bit float"),
                );
                0.0
            }
        }
    }

    /// Resolves the escapes of a string literal (with its quotes) that starts at `start`.
    fn string(&mut self, quoted: &str, start: usize) -> String {
        let body = &quoted[1..quoted.len() - 1];
        let mut out = String::with_capacity(body.len());
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                other => {
                    let len = 1 + other.map_or(0, |(_, c)| c.len_utf8());
                    let at = start + 1 + i;
                    self.diags.push(
                        Diagnostic::error("unknown escape in string")
                            .with_code(codes::INVALID_LITERAL)
                            .with_primary(Span::new(at, at + len), "unknown escape")
                            .with_note(r#"the escapes are \" \\ \n \r \t"#),
                    );
                }
            }
        }
        out
    }
}

fn binary(op: BinOp, lhs: Expr, rhs: Expr, span: Span) -> Expr {
    Expr {
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span,
    }
}

/// Applies the minus signs at `negs` (outermost first) to `operand`, whose text (with its
/// parentheses) spans `outer`.
fn wrap_negs(negs: &[Span], operand: Expr, outer: Span) -> Expr {
    negs.iter().rev().fold(operand, |acc, neg| {
        let span = neg.to(outer);
        Expr {
            kind: ExprKind::Neg(Box::new(acc)),
            span,
        }
    })
}

/// The length of `text` without trailing whitespace and comments.
fn trim_trivia(text: &str) -> usize {
    let mut text = text.trim_end();
    loop {
        let line_start = text.rfind('\n').map_or(0, |i| i + 1);
        let Some(hash) = comment_start(&text[line_start..]) else {
            return text.len();
        };
        text = text[..line_start + hash].trim_end();
    }
}

/// Where a comment starts in one line, outside strings.
fn comment_start(line: &str) -> Option<usize> {
    if !line.contains('#') {
        return None;
    }
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '#' if !in_string => return Some(i),
            _ => {}
        }
    }
    None
}
