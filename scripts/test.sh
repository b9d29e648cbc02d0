#!/usr/bin/env bash
# The whole test suite: formatting, lints (warnings are errors), every test of the workspace
# with default features, then the PETSc backend (installed on first use) with its feature, then
# the libtorch backend (PyTorch 2.13.0 installed into .venv on first use) with its feature.
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

ensure_torch
# One intra-op thread: libtorch's OpenMP pool, with tests running in parallel, oversubscribes a
# 2-core machine by orders of magnitude.
export OMP_NUM_THREADS=1
torch_features=(-p pnode-torch --features pnode-torch/torch --locked)
cargo clippy --all-targets "${torch_features[@]}" -- -D warnings
cargo test "${torch_features[@]}"
# pnodec with libtorch (`--backend torch`): lints, and only its torch test (the rest of its
# tests ran above with default features).
pnodec_torch=(-p pnodec --features pnodec/torch --locked)
cargo clippy --all-targets "${pnodec_torch[@]}" -- -D warnings
cargo test "${pnodec_torch[@]}" --test torch
# The facade with libtorch (`pnode::torch`, tch modules as the opaque layers of #[neural_ode]
# models) and the example that trains one: lints, the facade's torch test, the example's tests.
cargo clippy --all-targets -p pnode -p neural-ode-macro \
    --features pnode/torch,neural-ode-macro/torch --locked -- -D warnings
cargo test -p pnode --features pnode/torch --locked --test torch_layer
cargo test -p neural-ode-macro --features neural-ode-macro/torch --locked --lib
