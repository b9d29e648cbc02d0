#!/usr/bin/env bash
# Shared set-up for scripts/main.sh and scripts/test.sh: checks (and, where a package registry
# can provide it, installs) what the build needs. Idempotent: does nothing when all is present.
# Default cargo features need only the Rust toolchain; `ensure_petsc` installs PETSc for the
# `petsc` feature.
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

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# OpenMPI (under PETSc) starts in ~60 ms with ob1 instead of ~300 ms.
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1}

# Debian's PETSc 3.18 (real scalars, 32-bit indices) and OpenMPI, found through pkg-config.
ensure_petsc() {
    if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists petsc ompi-c; then
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "error: PETSc is missing and installing it needs root (apt-get install libpetsc-real3.18-dev openmpi-bin pkg-config)" >&2
            return 1
        fi
    fi
    echo "installing PETSc 3.18 and OpenMPI (apt-get) ..."
    # The package lists must be fresh: stale ones can make libhdf5-openmpi-dev uninstallable.
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libpetsc-real3.18-dev openmpi-bin pkg-config
}

# PyTorch 2.13.0 (the libtorch tch 0.26 binds) in the project's .venv, for the `torch` feature.
# tch's build finds it through the active Python (LIBTORCH_USE_PYTORCH=1); pnode-torch's build
# script adds an rpath to torch/lib, so binaries run without LD_LIBRARY_PATH.
TORCH_VERSION=2.13.0
ensure_torch() {
    ensure_venv
    if ! python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
        echo "installing torch==$TORCH_VERSION into $VIRTUAL_ENV (pip) ..."
        python -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION"
    fi
    export LIBTORCH_USE_PYTORCH=1
}

# The project-local Python environment .venv (created when missing), activated.
ensure_venv() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    local venv="$root/.venv"
    if [ ! -x "$venv/bin/python" ]; then
        echo "creating $venv ..."
        if ! python3 -m venv "$venv"; then
            # Debian's own python3 ships venv separately.
            rm -rf "$venv"
            local sudo=""
            [ "$(id -u)" != 0 ] && sudo="sudo"
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
            python3 -m venv "$venv"
        fi
    fi
    export VIRTUAL_ENV="$venv"
    export PATH="$venv/bin:$PATH"
}

# torchdiffeq (from pip, into the same .venv) for the side-by-side benchmarks.
ensure_torchdiffeq() {
    ensure_torch
    if ! python -c "import torchdiffeq" 2>/dev/null; then
        echo "installing torchdiffeq into $VIRTUAL_ENV (pip) ..."
        python -m pip install -q --disable-pip-version-check torchdiffeq
    fi
}

# diffrax on jax (CPU, from pip, into the same .venv) for the implicit-integrator benchmark.
JAX_VERSION=0.10.2
DIFFRAX_VERSION=0.7.2
ensure_diffrax() {
    ensure_venv
    if ! python -c "import jax, diffrax, sys; sys.exit(jax.__version__ != '$JAX_VERSION' or diffrax.__version__ != '$DIFFRAX_VERSION')" 2>/dev/null; then
        echo "installing jax==$JAX_VERSION and diffrax==$DIFFRAX_VERSION into $VIRTUAL_ENV (pip) ..."
        python -m pip install -q --disable-pip-version-check "jax[cpu]==$JAX_VERSION" "diffrax==$DIFFRAX_VERSION"
    fi
}
