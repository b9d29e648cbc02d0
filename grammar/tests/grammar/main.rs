//! The grammar's tests, one binary (one link): data-driven parser checks (`parse`), the shared
//! corpus (`corpus`), and property tests of the printer and the parser (`roundtrip`).

mod common;
mod corpus;
mod parse;
mod roundtrip;
