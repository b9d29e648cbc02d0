//! A light pre-scan of the source, independent of pest: it splits a file into top-level items
//! for error recovery, splits a block's body into options, and measures bracket nesting so
//! that over-deep input is rejected before any recursive descent.
//!
//! The scan skips strings and comments and tracks `(`, `[`, `{` nesting. An item starts at the
//! beginning of a line whose first word is an item keyword (`model`, `state`, `param`,
//! `const`, `layer`, `let`, `solve`, `train`, `loss`: reserved words that cannot occur inside
//! an item) or, outside any bracket, `d(` (an equation).

/// Item keywords: a line starting with one of these always starts a new item.
pub(crate) const ITEM_KEYWORDS: [&str; 9] = [
    "model", "state", "param", "const", "layer", "let", "solve", "train", "loss",
];

/// A piece of the source: `start..end`, and where its bracket nesting first went past the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub start: usize,
    pub end: usize,
    pub too_deep_at: Option<usize>,
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

/// Splits `text` into pieces. A piece boundary is placed at the start of a line (after its
/// indentation) when `boundary(text, i, depth)` says so; `depth` is the bracket depth there.
/// Returning `true` from `reset` at a boundary resets the depth to zero.
fn split(
    text: &str,
    max_depth: usize,
    mut boundary: impl FnMut(&[u8], usize, usize) -> Option<bool>,
) -> Vec<Chunk> {
    let bytes = text.as_bytes();
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut too_deep_at = None;
    let mut at_line_start = true;
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
                        too_deep_at,
                    });
                }
                start = i;
                too_deep_at = None;
                if reset {
                    depth = 0;
                }
            }
        }
        match b {
            b'\n' => at_line_start = true,
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
                continue;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > max_depth && too_deep_at.is_none() {
                    too_deep_at = Some(i);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        chunks.push(Chunk {
            start,
            end: bytes.len(),
            too_deep_at,
        });
    }
    chunks
}

/// Splits a file into top-level items (see the module docs).
pub(crate) fn items(text: &str, max_depth: usize) -> Vec<Chunk> {
    split(text, max_depth, |bytes, i, depth| {
        if ITEM_KEYWORDS.iter().any(|k| starts_with_word(bytes, i, k)) {
            Some(true)
        } else if depth == 0 && starts_equation(bytes, i) {
            Some(false)
        } else {
            None
        }
    })
}

/// Splits the body of a block (the text between its braces) into options: a new option starts
/// at the beginning of a line, outside brackets, whose first word is followed by `=`.
///
/// A line starting with a known option name and `=` starts an option even inside brackets
/// (an unclosed bracket then breaks one option only).
pub(crate) fn options(body: &str, known: &[&str]) -> Vec<Chunk> {
    split(body, usize::MAX, |bytes, i, depth| {
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
                    too_deep_at: None,
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
            too_deep_at: None,
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
