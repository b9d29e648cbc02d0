//! trybuild UI tests: every `tests/ui/fail/*.rs` must fail to compile with exactly the
//! diagnostics of its `.stderr` file (one error, at the offending tokens), every
//! `tests/ui/pass/*.rs` must compile and run. `TRYBUILD=overwrite cargo test -p
//! pnode-macro-ui-tests` rewrites the snapshots.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
