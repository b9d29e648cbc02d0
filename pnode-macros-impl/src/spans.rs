//! Byte spans of the `.pode` AST ↔ token spans of the Rust source.
//!
//! The AST built from Rust tokens has no source text, so each node gets a fresh position: the
//! span `i..i+1` where `i` indexes a table of `(first token, last token)` spans of the Rust
//! syntax it came from. A diagnostic span `start..end` (possibly the union of two nodes' spans,
//! as lowering forms them) maps back to the tokens from `table[start].0` to `table[end − 1].1`,
//! which `syn::Error::new_spanned` turns into a compile error underlining that range.

use pnode_grammar::ast;
use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::ToTokens;

/// The table of token spans behind the AST's positions.
#[derive(Debug, Default)]
pub struct SpanMap {
    entries: Vec<(Span, Span)>,
    /// Where errors without a usable position go (the attribute or macro call).
    fallback: Option<Span>,
}

impl SpanMap {
    /// An empty table whose errors without a position point at `fallback`.
    pub fn new(fallback: Span) -> Self {
        SpanMap {
            entries: Vec::new(),
            fallback: Some(fallback),
        }
    }

    /// A position for the tokens from `first` to `last`.
    pub fn add(&mut self, first: Span, last: Span) -> ast::Span {
        let i = self.entries.len();
        self.entries.push((first, last));
        ast::Span::new(i, i + 1)
    }

    /// A position for the tokens of `node`.
    pub fn of<T: ToTokens + ?Sized>(&mut self, node: &T) -> ast::Span {
        let (first, last) = first_last(node.to_token_stream()).unwrap_or_else(|| {
            let s = self.fallback();
            (s, s)
        });
        self.add(first, last)
    }

    /// A position for one token span.
    pub fn at(&mut self, span: Span) -> ast::Span {
        self.add(span, span)
    }

    fn fallback(&self) -> Span {
        self.fallback.unwrap_or_else(Span::call_site)
    }

    /// The first and last token spans of a position range.
    pub fn tokens(&self, span: ast::Span) -> (Span, Span) {
        let get = |i: usize| self.entries.get(i).copied();
        let first = get(span.start).map(|e| e.0);
        let last = get(span.end.saturating_sub(1).max(span.start)).map(|e| e.1);
        match (first, last) {
            (Some(f), Some(l)) => (f, l),
            (Some(f), None) => (f, f),
            _ => {
                let s = self.fallback();
                (s, s)
            }
        }
    }

    /// A compile error underlining the tokens of `span`.
    pub fn error(&self, span: ast::Span, message: impl std::fmt::Display) -> syn::Error {
        let (first, last) = self.tokens(span);
        spanned_error(first, last, message)
    }
}

/// A `syn::Error` from the token `first` to the token `last`.
pub fn spanned_error(first: Span, last: Span, message: impl std::fmt::Display) -> syn::Error {
    let mut tokens = TokenStream::new();
    tokens.extend([
        TokenTree::Ident(Ident::new("start", first)),
        TokenTree::Ident(Ident::new("end", last)),
    ]);
    syn::Error::new_spanned(tokens, message)
}

/// The spans of the first and the last token of `tokens` (a group's delimiters for a group).
pub fn first_last(tokens: TokenStream) -> Option<(Span, Span)> {
    let mut iter = tokens.into_iter();
    let first = iter.next()?;
    let last = iter.last().unwrap_or_else(|| first.clone());
    let open = match &first {
        TokenTree::Group(g) => g.span_open(),
        t => t.span(),
    };
    let close = match &last {
        TokenTree::Group(g) => g.span_close(),
        t => t.span(),
    };
    Some((open, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_fresh_and_map_back() {
        let mut map = SpanMap::new(Span::call_site());
        let a = map.at(Span::call_site());
        let b = map.of(&quote::quote!(x + y));
        assert_eq!((a.start, a.end, b.start, b.end), (0, 1, 1, 2));
        // A union of two positions and an out-of-range one still map to tokens.
        let _ = map.tokens(a.to(b));
        let _ = map.tokens(ast::Span::new(7, 9));
        assert!(first_last(TokenStream::new()).is_none());
        let e = map.error(b, "bad");
        assert_eq!(e.to_string(), "bad");
    }
}
