#!/usr/bin/env bash
# Shared set-up for scripts/main.sh and scripts/test.sh: checks (and, where a package registry
# can provide it, installs) what the build needs. Idempotent: does nothing when all is present.
# Default cargo features need only the Rust toolchain; libtorch and PETSc are opt-in features
# whose installs are added here when those features land.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "error: cargo not found; pnode needs a Rust toolchain >= 1.95 (https://rustup.rs)" >&2
        exit 1
    fi
fi

rust_version=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n1.95.0\n' "$rust_version" | sort -V | head -n1)" != "1.95.0" ]; then
    echo "error: rustc $rust_version is too old; pnode needs >= 1.95" >&2
    exit 1
fi

# Incremental builds stay on; two cores: let cargo use both.
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
