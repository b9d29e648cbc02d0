#!/usr/bin/env bash
# The whole test suite: formatting, lints (warnings are errors), every test of the workspace
# with default features, then the PETSc backend (installed on first use) with its feature.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

ensure_petsc
petsc_features=(-p pnode-petsc -p pnode-runtime --features pnode-runtime/petsc --locked)
cargo clippy --all-targets "${petsc_features[@]}" -- -D warnings
cargo test "${petsc_features[@]}"
