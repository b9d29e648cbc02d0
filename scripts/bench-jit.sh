#!/usr/bin/env bash
# Side-by-side benchmark of the Cranelift JIT's exact gradients against diffrax (jax on CPU,
# RecursiveCheckpointAdjoint storing every step) and torchdiffeq (backprop through odeint), and
# against pnode's hand-written-closure runtime path, all with classic RK4 on the same uniform
# grid, f64, one thread:
#
#   lv:  Lotka–Volterra, [α, β, δ, γ] = [1.5, 1, 3, 1], u0 = [1, 1], 1000 steps to t = 10,
#        loss Σ u(10), gradient in u0 and the 4 parameters;
#   mlp: 2-64-64-2 tanh MLP, batch 64 (128 states, 4610 parameters), 100 steps to t = 1,
#        loss ½ Σ u(1)², gradient in u0 and every parameter.
#
# pnode (pnode-jit's `side_by_side` example, release) times the hand-written runtime model,
# JitModel and the fused JitErkStepper, reports the JIT compile times and prints the problem's
# inputs and its gradient as JSON; the Python scripts read that line, so every contestant starts
# from the same numbers, and report their gradient's largest relative difference to pnode's.
# Every process is pinned to core 0 (taskset); the contestants run in ROUNDS rounds, so slow
# drifts of the machine hit each alike; the summary pools the repetitions (median) and prints the
# ratios, on wall-clock time and on CPU time (the process's or thread's CPU time over the timed
# repetitions, which on a shared machine leaves out the time spent waiting for the core). jax's trace and XLA compile time is measured apart and excluded from its times. JSON
# lines go to results/jit-bench.json, the markdown table to stdout.
#
# Usage: bash scripts/bench-jit.sh
# Env:   ROUNDS (default 3); REPS_LV, REPS_MLP (pnode, default 200, 20); REPS_DIFFRAX (20);
#        REPS_TORCH_LV, REPS_TORCH_MLP (5, 5)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/setup.sh
ensure_torchdiffeq
ensure_diffrax

export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
rounds=${ROUNDS:-3}
reps_lv=${REPS_LV:-200}
reps_mlp=${REPS_MLP:-20}
reps_dx=${REPS_DIFFRAX:-20}
reps_tlv=${REPS_TORCH_LV:-5}
reps_tmlp=${REPS_TORCH_MLP:-5}

cargo build --release -q --locked -p pnode-jit --example side_by_side
bench="${CARGO_TARGET_DIR:-$root/target}/release/examples/side_by_side"
pin=()
command -v taskset >/dev/null 2>&1 && pin=(taskset -c 0)

mkdir -p results
out=results/jit-bench.json
: > "$out"
ref=results/jit-bench-pnode-inputs.json
for ((round = 1; round <= rounds; round++)); do
    echo "round $round/$rounds: pnode (hand-written, jit-model, jit-fused) ..." >&2
    "${pin[@]}" "$bench" --reps-lv "$reps_lv" --reps-mlp "$reps_mlp" | tee -a "$out" > "$ref.tmp"
    mv "$ref.tmp" "$ref"
    for problem in lv mlp; do
        echo "round $round/$rounds: diffrax $problem ..." >&2
        "${pin[@]}" python benches/jit_diffrax_bench.py --problem "$problem" --pnode "$ref" \
            --reps "$reps_dx" >> "$out"
        treps=$reps_tlv
        [ "$problem" = mlp ] && treps=$reps_tmlp
        for method in rk4_classic rk4; do
            echo "round $round/$rounds: torchdiffeq $method $problem ..." >&2
            "${pin[@]}" python benches/jit_torchdiffeq_bench.py --problem "$problem" \
                --pnode "$ref" --method "$method" --reps "$treps" >> "$out"
        done
    done
    echo "round $round/$rounds: load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

python - "$out" <<'PY'
import json, statistics, sys

lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
specs = {"lv": "Lotka–Volterra, 1000 steps", "mlp": "MLP 2-64-64-2, batch 64, 100 steps"}

def t(s):
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else (f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s")

print("| problem | contestant | gradient (median wall) | min wall | JIT-fused speed-up (wall) | "
      "CPU per gradient | JIT-fused speed-up (CPU) | "
      "max rel. diff. of the gradient to pnode jit-fused | compile |")
print("|---|---|---|---|---|---|---|---|---|")
loads = sorted(float(r["loadavg"][0]) for r in lines if "loadavg" in r)
for prob in ["lv", "mlp"]:
    pn = [r for r in lines if r["side"] == "pnode" and r["problem"] == prob]
    if not pn:
        continue
    rows = []
    for name in ["jit-fused", "jit-model", "hand-written"]:
        ts = [x for r in pn for x in r["contestants"][name]["times"]]
        diff = max(r["contestants"][name]["grad_rel_diff_to_fused"] for r in pn)
        comp = (f"{statistics.median(r['compile_ms'][name] for r in pn):.2f} ms"
                if name in pn[0]["compile_ms"] else "–")
        cpu = statistics.median(r["contestants"][name]["cpu_s_per_rep"] for r in pn)
        rows.append((f"pnode {name}", ts, cpu, diff, comp))
    dx = [r for r in lines if r["side"] == "diffrax" and r["problem"] == prob]
    if dx:
        comp = (f"{statistics.median(r['compile_s']['xla'] for r in dx):.2f} s XLA + "
                f"{statistics.median(r['compile_s']['trace'] for r in dx):.2f} s trace")
        rows.append((dx[0]["backend"] + " (RecursiveCheckpointAdjoint)",
                     [x for r in dx for x in r["times"]],
                     statistics.median(r["cpu_s_per_rep"] for r in dx),
                     max(r["grad_rel_diff"] for r in dx), comp))
    for method, label in [("rk4_classic", "odeint backprop, classic RK4"),
                          ("rk4", "odeint backprop, its 'rk4' = 3/8 rule")]:
        td = [r for r in lines if r["side"] == "torchdiffeq" and r["problem"] == prob
              and r["method"] == method]
        if td:
            rows.append((f"{td[0]['backend']} ({label})", [x for r in td for x in r["times"]],
                         statistics.median(r["cpu_s_per_rep"] for r in td),
                         max(r["grad_rel_diff"] for r in td), "–"))
    fused, fused_cpu = statistics.median(rows[0][1]), rows[0][2]
    for name, ts, cpu, diff, comp in rows:
        med = statistics.median(ts)
        print(f"| {specs[prob]} | {name} | {t(med)} | {t(min(ts))} | {med / fused:.2f} | "
              f"{t(cpu)} | {cpu / fused_cpu:.2f} | {diff:.1e} | {comp} |")
print()
n = {s: sum(r["side"] == s for r in lines) for s in ["pnode", "diffrax", "torchdiffeq"]}
print(f"Processes: {n['pnode']} pnode, {n['diffrax']} diffrax, {n['torchdiffeq']} torchdiffeq "
      f"(wall-clock repetitions pooled over the rounds; CPU time per gradient: mean over a "
      f"process's repetitions, median over the rounds); 1-min load average at the end of each Python "
      f"process {loads[0]:.2f}–{loads[-1]:.2f}.")
PY
