#!/usr/bin/env bash
# Run one example by name with everything it needs installed first:
#   bash scripts/example.sh spiral [args]     neural-ODE spiral demo (libtorch; installs torch)
#   bash scripts/example.sh odenet [args]     ODE-Net image classifier (libtorch; installs torch)
#   bash scripts/example.sh stiff-robertson   learn Robertson's stiff kinetics with Crank–Nicolson (libtorch)
#   bash scripts/example.sh robertson [args]  stiff Robertson gradients (pure Rust)
#   bash scripts/example.sh macro-tch         a tch MLP as an opaque layer of a #[neural_ode] model learns the spiral (libtorch)
# Add --help after the name for the example's options.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
name=${1:-}
if [ -z "$name" ]; then
    echo "usage: bash scripts/example.sh {spiral|odenet|stiff-robertson|robertson|macro-tch} [args...]" >&2
    exit 2
fi
shift
case "$name" in
    spiral | odenet | stiff-robertson)
        ensure_torch
        # One libtorch thread unless asked otherwise: its OpenMP pool oversubscribes small machines.
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
        exec cargo run --release --locked -p pnode-torch --features torch --example "$name" -- "$@"
        ;;
    robertson)
        exec cargo run --release --locked -p robertson-gradients -- "$@"
        ;;
    macro-tch)
        ensure_torch
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
        exec cargo run --release --locked -p neural-ode-macro --features torch --bin tch_spiral -- "$@"
        ;;
    *)
        echo "unknown example '$name' (spiral, odenet, stiff-robertson, robertson, macro-tch)" >&2
        exit 2
        ;;
esac
