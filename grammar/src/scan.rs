//! A light pre-scan of the source, independent of pest: it splits a file into top-level items
//! for error recovery, splits a block's body into options, and measures bracket nesting so
//! that over-deep input is rejected before any recursive descent.
//!
//! The scan skips strings and comments and tracks `(`, `[`, `{` nesting. An item starts at the
//! beginning of a line whose first word is an item keyword (`model`, `state`, `param`,
//! `const`, `layer`, `let`, `solve`, `train`, `loss`: reserved words that cannot occur inside
//! an item) or, outside any bracket, `d(` (an equation; after an operator it may also go on
//! the expression before it, see [`Chunk::may_continue`]). It also keeps a lower bound of the
//! expression depth ([`ExprDepth`]), so that a chain too long to build is refused before pest
//! sees it. It is linear in the length of the text.

/// Item keywords: a line starting with one of these always starts a new item.
pub(crate) const ITEM_KEYWORDS: [&str; 9] = [
    "model", "state", "param", "const", "layer", "let", "solve", "train", "loss",
];

/// Where a piece of the source first went past a depth limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TooDeep {
    /// Its bracket nesting went past the limit at this `(`, `[` or `{`.
    Brackets(usize),
    /// Its expression tree would be deeper than the limit from this operator on.
    Expr(usize),
    /// It has more operands (names, numbers, strings) than the limit, the first past it here.
    Long(usize),
}

/// A piece of the source: `start..end`, and where it first went past a depth limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub start: usize,
    pub end: usize,
    pub too_deep: Option<TooDeep>,
    /// It starts at an equation `d(` right after an operator or separator, so the previous
    /// piece's expression may go on into it (`2 *⏎d(x)` with a layer `d`).
    pub may_continue: bool,
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `text[i..]` starts with the word `word` (followed by a non-identifier character).
fn starts_with_word(text: &[u8], i: usize, word: &str) -> bool {
    let w = word.as_bytes();
    text.len() >= i + w.len()
        && &text[i..i + w.len()] == w
        && text.get(i + w.len()).is_none_or(|&b| !is_ident_char(b))
}

/// Whether `text[i..]` is `d` followed by optional blanks and `(`.
fn starts_equation(text: &[u8], i: usize) -> bool {
    if text.get(i) != Some(&b'd') {
        return false;
    }
    let mut j = i + 1;
    while matches!(text.get(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    text.get(j) == Some(&b'(')
}

/// The end of the number token that starts at digit `text[i]` (the grammar's `number`:
/// digits, `.digits`, an exponent with its sign), with any letters glued to it (`64MB`).
fn number_end(text: &[u8], mut i: usize) -> usize {
    let digits = |text: &[u8], mut i: usize| {
        while text.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    i = digits(text, i);
    if text.get(i) == Some(&b'.') && text.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i = digits(text, i + 1);
    }
    if matches!(text.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(text.get(i + 1), Some(b'+' | b'-')));
        if text.get(i + 1 + sign).is_some_and(u8::is_ascii_digit) {
            i = digits(text, i + 1 + sign);
        }
    }
    while text.get(i).is_some_and(|&b| is_ident_char(b)) {
        i += 1;
    }
    i
}

/// The running operator counts of one bracket level of an expression (see [`ExprDepth`]).
#[derive(Clone, Copy, Default)]
struct Level {
    /// Binary `+` and `-` so far in this expression.
    sums: usize,
    /// `*`, `/` and `@` so far in the current term.
    products: usize,
    /// Signs and `^` so far in the current factor.
    powers: usize,
}

impl Level {
    fn total(self) -> usize {
        self.sums + self.products + self.powers
    }
}

/// A lower bound of the depth of the expression tree the builder would make, kept while
/// scanning, so that a chain too long to build (`u + u + … + u`) is refused before pest parses
/// it. At a point of the text the bound is, summed over the enclosing brackets, one per
/// bracket and the operators met so far in that bracket's expression that the point's operand
/// sits under (all the `+`/`-` of the chain; the `*`, `/`, `@` of its term; the signs and `^`
/// of its factor). The builder counts at least these (a whole chain at once), so the bound
/// never exceeds the real depth by more than the `{` of a block and the `(` of `d(u)`, which
/// are not expression brackets.
struct ExprDepth {
    /// Over the enclosing levels: their totals plus one per bracket.
    outer: usize,
    current: Level,
    stack: Vec<Level>,
}

/// What [`ExprDepth::bound`] may exceed the builder's depth by (see [`ExprDepth`]).
const EXPR_DEPTH_SLACK: usize = 2;

impl ExprDepth {
    fn new() -> Self {
        ExprDepth {
            outer: 0,
            current: Level::default(),
            stack: Vec::new(),
        }
    }

    fn bound(&self) -> usize {
        self.outer + self.current.total()
    }

    fn open(&mut self) {
        self.outer += self.current.total() + 1;
        self.stack.push(self.current);
        self.current = Level::default();
    }

    fn close(&mut self) {
        if let Some(outer) = self.stack.pop() {
            self.outer -= outer.total() + 1;
            self.current = outer;
        } else {
            self.current = Level::default();
        }
    }
}

/// Splits `text` into pieces. A piece boundary is placed at the start of a line (after its
/// indentation) when `boundary(text, i, depth)` says so; `depth` is the bracket depth there.
/// Returning `Some(true)` resets the depth to zero; a `Some(false)` boundary right after an
/// operator or separator (not after a name, number, string or closing bracket) is marked
/// [`Chunk::may_continue`]. With `max_expr_depth`, a piece whose expression tree would be
/// deeper is marked [`TooDeep::Expr`]; one with more than `max_operands` names, numbers and
/// strings [`TooDeep::Long`].
fn split(
    text: &str,
    max_depth: usize,
    max_expr_depth: Option<usize>,
    max_operands: usize,
    mut boundary: impl FnMut(&[u8], usize, usize) -> Option<bool>,
) -> Vec<Chunk> {
    let bytes = text.as_bytes();
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut too_deep = None;
    let mut at_line_start = true;
    let mut after_operand = false;
    let mut may_continue = false;
    let mut exprs = ExprDepth::new();
    let mut operands = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if at_line_start {
            if b == b' ' || b == b'\t' || b == b'\r' {
                i += 1;
                continue;
            }
            at_line_start = false;
            if let Some(reset) = boundary(bytes, i, depth) {
                if i > start {
                    chunks.push(Chunk {
                        start,
                        end: i,
                        too_deep,
                        may_continue,
                    });
                }
                start = i;
                too_deep = None;
                may_continue = !reset && !after_operand && i > 0;
                exprs = ExprDepth::new();
                operands = 0;
                if reset {
                    depth = 0;
                }
            }
        }
        if matches!(b, b'"' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'_') {
            operands += 1;
            if operands > max_operands && too_deep.is_none() {
                too_deep = Some(TooDeep::Long(i));
            }
        }
        // Whether this token ends an operand; operators and separators do not.
        let mut operand = false;
        match b {
            b'\n' => {
                at_line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' && bytes.get(i + 1).is_some_and(|&c| c != b'\n') {
                        2
                    } else {
                        1
                    };
                }
                if i < bytes.len() && bytes[i] == b'"' {
                    i += 1;
                }
                after_operand = true;
                continue;
            }
            b'0'..=b'9' => {
                i = number_end(bytes, i);
                after_operand = true;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                while i < bytes.len() && is_ident_char(bytes[i]) {
                    i += 1;
                }
                after_operand = true;
                continue;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > max_depth && too_deep.is_none() {
                    too_deep = Some(TooDeep::Brackets(i));
                }
                if too_deep.is_none() {
                    exprs.open();
                }
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if too_deep.is_none() {
                    exprs.close();
                }
                operand = true;
            }
            b'+' | b'-' if after_operand => {
                exprs.current = Level {
                    sums: exprs.current.sums + 1,
                    ..Level::default()
                };
            }
            b'-' => exprs.current.powers += 1,
            b'+' => {}
            b'*' | b'/' | b'@' => {
                exprs.current.products += 1;
                exprs.current.powers = 0;
            }
            b'^' => exprs.current.powers += 1,
            b',' | b'=' | b':' => exprs.current = Level::default(),
            b'.' if bytes.get(i + 1) == Some(&b'.') => {
                exprs.current = Level::default();
                i += 1;
            }
            // Anything else is not in the grammar: let an equation start after it.
            _ => operand = true,
        }
        if let Some(max) = max_expr_depth
            && too_deep.is_none()
            && exprs.bound() > max + EXPR_DEPTH_SLACK
        {
            too_deep = Some(TooDeep::Expr(i));
        }
        after_operand = operand;
        i += 1;
    }
    if start < bytes.len() {
        chunks.push(Chunk {
            start,
            end: bytes.len(),
            too_deep,
            may_continue,
        });
    }
    chunks
}

/// Splits a file into top-level items (see the module docs), marking items nested deeper than
/// `max_depth` brackets, with an expression tree deeper than `max_expr_depth`, or with more
/// than `max_operands` operands.
pub(crate) fn items(
    text: &str,
    max_depth: usize,
    max_expr_depth: usize,
    max_operands: usize,
) -> Vec<Chunk> {
    split(
        text,
        max_depth,
        Some(max_expr_depth),
        max_operands,
        |bytes, i, depth| {
            if ITEM_KEYWORDS.iter().any(|k| starts_with_word(bytes, i, k)) {
                Some(true)
            } else if depth == 0 && starts_equation(bytes, i) {
                Some(false)
            } else {
                None
            }
        },
    )
}

/// Splits the body of a block (the text between its braces) into options: a new option starts
/// at the beginning of a line, outside brackets, whose first word is followed by `=`.
///
/// A line starting with a known option name and `=` starts an option even inside brackets
/// (an unclosed bracket then breaks one option only).
pub(crate) fn options(body: &str, known: &[&str]) -> Vec<Chunk> {
    split(body, usize::MAX, None, usize::MAX, |bytes, i, depth| {
        if !(bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') {
            return None;
        }
        let mut j = i;
        while j < bytes.len() && is_ident_char(bytes[j]) {
            j += 1;
        }
        let word = &bytes[i..j];
        while matches!(bytes.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if bytes.get(j) != Some(&b'=') || bytes.get(j + 1) == Some(&b'=') {
            return None;
        }
        let is_known = known.iter().any(|k| k.as_bytes() == word);
        (depth == 0 || is_known).then_some(is_known)
    })
    .into_iter()
    .flat_map(|chunk| split_commas(body, chunk))
    .collect()
}

/// Splits a chunk further at commas outside brackets, strings and comments.
fn split_commas(text: &str, chunk: Chunk) -> Vec<Chunk> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut depth, mut i) = (chunk.start, 0usize, chunk.start);
    while i < chunk.end {
        match bytes[i] {
            b'#' => {
                while i < chunk.end && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < chunk.end && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                pieces.push(Chunk {
                    start,
                    end: i,
                    too_deep: None,
                    may_continue: false,
                });
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < chunk.end {
        pieces.push(Chunk {
            start,
            end: chunk.end,
            too_deep: None,
            may_continue: false,
        });
    }
    pieces
}

/// Whether `text` holds nothing but whitespace and comments.
pub(crate) fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim_start();
        line.is_empty() || line.starts_with('#')
    })
}

/// The first keyword of an item chunk, if it starts with one.
pub(crate) fn leading_keyword(text: &str) -> Option<&'static str> {
    let trimmed = text.trim_start();
    let offset = text.len() - trimmed.len();
    ITEM_KEYWORDS
        .into_iter()
        .find(|k| starts_with_word(text.as_bytes(), offset, k))
}
