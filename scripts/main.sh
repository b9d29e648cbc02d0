#!/usr/bin/env bash
# The main job: fit the four Lotka–Volterra rates to noisy data with exact discrete-adjoint
# gradients (Adam, RK4). Extra arguments go to the example (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec cargo run --release --locked -p lotka-volterra-fit -- "$@"
