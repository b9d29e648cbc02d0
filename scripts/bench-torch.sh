#!/usr/bin/env bash
# Side-by-side benchmark: pnode-torch (OdeBlock, discrete adjoint; store-all, solution-only,
# Revolve) against torchdiffeq (odeint = backprop through the solver, odeint_adjoint =
# continuous adjoint) on three tanh-MLP workloads, float32, one thread, RK 3/8 rule on both
# sides (torchdiffeq's 'rk4' is the 3/8 rule; pnode uses Tableau::rk38()).
#
# pnode runs with the generic ModuleRhs (closure of nn::Linear layers; VJP through libtorch's
# autograd engine) in all three modes, and with MlpRhs (hand-derived VJP, same layers) in
# store-all and Revolve mode. Revolve uses ceil(sqrt(N)) slots (10 for N = 100, 45 for 2000).
#
# Every (workload, contestant) runs in a fresh process that prints one JSON line (one warm-up
# gradient, one gradient for the peak RSS increase, then the timed repetitions). A workload
# runs in rounds, each round one process per contestant, so that slow drifts of the machine hit
# every contestant alike; the summary pools the repetitions of all rounds (median) and takes
# the median of the rounds' peak RSS increases. The JSON lines go to results/torch-bench.json,
# the markdown table with the ratios to stdout. Both sides start from the same weights and
# initial state (an .npz written by the Python script with a fixed seed), so their losses must
# agree.
#
# Usage: bash scripts/bench-torch.sh [workload ...]     (default: a b c)
# Env:   REPS_A, REPS_B, REPS_C      repetitions per process (default 20, 5, 3)
#        ROUNDS_A, ROUNDS_B, ROUNDS_C rounds (default 5, 1, 1)
#        MLP_RHS=0                    skips the MlpRhs runs
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/setup.sh
ensure_torchdiffeq

export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

workloads=("$@")
[ ${#workloads[@]} -eq 0 ] && workloads=(a b c)

cargo build --release -q -p pnode-torch --features torch --example torch-bench
bench="${CARGO_TARGET_DIR:-$root/target}/release/examples/torch-bench"

mkdir -p results
weights=results/torch-bench-weights
python benches/torchdiffeq_bench.py --export "$weights"

declare -A default_reps=([a]=20 [b]=5 [c]=3) default_rounds=([a]=5 [b]=1 [c]=1)
out=results/torch-bench.json
: > "$out"
for w in "${workloads[@]}"; do
    reps_var="REPS_${w^^}" rounds_var="ROUNDS_${w^^}"
    reps=${!reps_var:-${default_reps[$w]}}
    rounds=${!rounds_var:-${default_rounds[$w]}}
    runs=("torchdiffeq odeint" "torchdiffeq odeint_adjoint"
        "module store-all" "module solution-only" "module revolve")
    [ "${MLP_RHS:-1}" != 0 ] && runs+=("mlp store-all" "mlp revolve")
    for ((round = 1; round <= rounds; round++)); do
        for run in "${runs[@]}"; do
            read -r kind m <<< "$run"
            echo "workload $w, round $round/$rounds: $kind $m ..." >&2
            if [ "$kind" = torchdiffeq ]; then
                python benches/torchdiffeq_bench.py --workload "$w" --method "$m" \
                    --weights "$weights/$w.npz" --reps "$reps" >> "$out"
            else
                "$bench" --workload "$w" --method "$m" --rhs "$kind" \
                    --weights "$weights/$w.npz" --reps "$reps" >> "$out"
            fi
        done
    done
done

python - "$out" <<'PY'
import json, statistics, sys

lines = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
specs = {
    "a": "2–64–2, batch 64, 100 steps",
    "b": "64–512–512–64, batch 256, 100 steps",
    "c": "16–128–128–16, batch 128, 2000 steps",
}

# Pool the rounds of each (workload, contestant), keeping the first-seen order.
rows, order = {}, []
for r in lines:
    key = (r["workload"], r["side"], r["method"])
    if key not in rows:
        rows[key] = []
        order.append(key)
    rows[key].append(r)

def pooled(rs):
    first = rs[0]
    return {
        **first,
        "rounds": len(rs),
        "forward_s": statistics.median(x for r in rs for x in r["forward_times"]),
        "gradient_s": statistics.median(x for r in rs for x in r["gradient_times"]),
        "peak_rss_increase_bytes": statistics.median(r["peak_rss_increase_bytes"] for r in rs),
        "losses": sorted({r["loss"] for r in rs}),
        "loads": [float(r["loadavg"][0]) for r in rs],
    }

def t(s):
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.2f} s"

def mib(b):
    return f"{b / 2**20:.1f} MiB"

print("| workload | contestant | forward | gradient | peak RSS increase | gradient / odeint | "
      "gradient / odeint_adjoint | RSS increase / odeint |")
print("|---|---|---|---|---|---|---|---|")
notes = []
for w in sorted({k[0] for k in order}):
    rs = [pooled(rows[k]) for k in order if k[0] == w]
    ref = {r["method"]: r for r in rs if r["side"] == "torchdiffeq"}
    od, adj = ref.get("odeint"), ref.get("odeint_adjoint")
    for r in rs:
        name = ("torchdiffeq " if r["side"] == "torchdiffeq" else "pnode ") + r["method"]
        rt = f"{r['gradient_s'] / od['gradient_s']:.2f}" if od else "–"
        ra = f"{r['gradient_s'] / adj['gradient_s']:.2f}" if adj else "–"
        rm = (f"{r['peak_rss_increase_bytes'] / od['peak_rss_increase_bytes']:.3f}"
              if od and od["peak_rss_increase_bytes"] > 0 else "–")
        print(f"| {w} ({specs[w]}) | {name} | {t(r['forward_s'])} | {t(r['gradient_s'])} | "
              f"{mib(r['peak_rss_increase_bytes'])} | {rt} | {ra} | {rm} |")
    base = od["loss"] if od else rs[0]["loss"]
    worst = max(abs(x - base) / abs(base) for r in rs for x in r["losses"])
    held = ", ".join(f"{r['method']} {mib(r['stats']['peak_stored_bytes'])}"
                     for r in rs if r["side"] == "pnode")
    loads = sorted(x for r in rs for x in r["loads"])
    rounds = sorted({r["rounds"] for r in rs})
    notes.append(f"* {w}: {'/'.join(map(str, rounds))} round(s) of {rs[0]['reps']} repetitions; "
                 f"loss {base:.7g} (odeint), largest relative difference of any contestant "
                 f"{worst:.1e}; pnode checkpoint bytes (its own count): {held}; 1-min load "
                 f"average at the end of each process {loads[0]:.2f}–{loads[-1]:.2f}.")
print()
print("\n".join(notes))
PY
