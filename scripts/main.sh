#!/usr/bin/env bash
# The main job: `pnodec` fits the four Lotka–Volterra rates of examples/lotka_volterra to its
# 25 observations (Adam on exact discrete-adjoint gradients, RK4 through the Cranelift JIT's
# fused steps), solves the model with the fitted rates, and prints them next to the true ones
# of truth.pode. Writes into a fresh results/lotka_volterra/run-… directory (never over an
# earlier run). Extra arguments go to `pnodec train` (e.g. `-n 300`, `--backend interp`; see
# `pnodec train --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --release --locked -p pnodec
pnodec="${CARGO_TARGET_DIR:-target}/release/pnodec"
ex=examples/lotka_volterra
model=$ex/lotka_volterra.pode

# A fresh output directory: a timestamp, suffixed if two runs share the second.
base="results/lotka_volterra/run-$(date -u +%Y%m%d-%H%M%S)"
out=$base
i=1
while [ -e "$out" ]; do
    out="$base-$i"
    i=$((i + 1))
done
mkdir -p "$out"

# 2000 Adam iterations (the model's train block says 300) recover the rates to ~1e-7; an
# `-n`/`--iterations` among the arguments replaces that.
iterations=(-n 2000)
for a in "$@"; do
    case $a in -n | -n* | --iterations | --iterations=*) iterations=() ;; esac
done

start=$(date +%s.%N)
"$pnodec" train "$model" "${iterations[@]}" "$@" --out "$out/params.json" --log "$out/loss.csv" \
    --plot "$out/loss.svg"
"$pnodec" solve "$model" --params "$out/params.json" --out "$out/fit.csv" --plot "$out/fit.svg"
"$pnodec" solve "$ex/truth.pode" --out "$out/truth.csv"
end=$(date +%s.%N)

# The numbers of the first array `[a, b, …]` (possibly over several lines) on or after the
# first line of FILE matching PATTERN, one per line.
array_of() { # FILE PATTERN
    awk -v pat="$2" '
        !on && $0 ~ pat { on = 1; sub(/^.*\[/, "") }
        on { s = s $0; if (index($0, "]")) { sub(/\].*/, "", s); print s; exit } }' "$1" |
        tr ',' '\n' | tr -d ' '
}
fitted=$(array_of "$out/params.json" '"theta"')
truth=$(array_of "$ex/truth.pode" '^const theta')
echo
echo "fitted rates (examples/lotka_volterra/truth.pode has the true ones):"
paste <(echo "$fitted") <(echo "$truth") | awk '
    BEGIN { printf "  %-8s %22s %8s %10s\n", "", "fitted", "true", "rel. err" }
    { e = ($1 - $2) / $2; if (e < 0) e = -e; if (e > m) m = e
      printf "  theta[%d] %22.15f %8g %10.2e\n", NR - 1, $1, $2, e }
    END { printf "  largest relative error %.2e\n", m }'
# The fitted trajectory against the true one at the 25 output times.
paste -d, <(tail -n +2 "$out/fit.csv") <(tail -n +2 "$out/truth.csv") | awk -F, '
    { for (j = 2; j <= 3; j++) { d = $j - $(j + 3); if (d < 0) d = -d; if (d > m) m = d } }
    END { printf "fitted vs true trajectory at the %d output times: max |difference| %.2e\n", NR, m }'
echo "wrote $out/{params.json,loss.csv,loss.svg,fit.csv,fit.svg,truth.csv}"
awk -v s="$start" -v e="$end" 'BEGIN { printf "train + solve: %.2f s\n", e - s }'
