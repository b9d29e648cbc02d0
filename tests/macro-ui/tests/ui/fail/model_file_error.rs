// The path is relative to trybuild's project (target/tests/trybuild/pnode-macro-ui-tests).
pnode::model!("../../../../tests/macro-ui/tests/ui/fail/bad_model.pode");

fn main() {}
