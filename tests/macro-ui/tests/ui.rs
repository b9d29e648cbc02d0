//! trybuild UI tests: every `tests/ui/fail/*.rs` must fail to compile with exactly the
//! diagnostics of its `.stderr` file (one error, at the offending tokens), every
//! `tests/ui/pass/*.rs` must compile and run. `TRYBUILD=overwrite cargo test -p
//! pnode-macro-ui-tests` rewrites the snapshots.
//!
//! The `model!` cases name their `.pode` files relative to trybuild's project directory
//! (`target/tests/trybuild/pnode-macro-ui-tests`, which is `CARGO_MANIFEST_DIR` there), so they
//! assume the default target directory. Time on the 2-core development VM: about 12 min cold
//! (trybuild builds `pnode` and its dependencies once in `target/tests/trybuild`), 10–45 s warm.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
