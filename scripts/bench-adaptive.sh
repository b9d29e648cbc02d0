#!/usr/bin/env bash
# Side-by-side benchmark of error-controlled (adaptive) stepping with exact gradients, issue 16:
# pnode against diffrax (jax on CPU, PIDController, RecursiveCheckpointAdjoint storing every
# step) and torchdiffeq (dopri5: backprop through odeint, and odeint_adjoint), all at
# rtol = 1e-6, atol = 1e-9, f64, one thread:
#
#   lv:        Lotka–Volterra, [α, β, δ, γ] = [1.5, 1, 3, 1], u0 = [1, 1], to t = 10, dopri5,
#              loss Σ u(10), gradient in u0 and the 4 parameters;
#   mlp:       2-50-2 tanh MLP (Glorot weights ×3 from seed 0, small fixed biases) on a batch of
#              64 points, to t = 5, dopri5, loss ½ Σ u(5)², gradient in u0 and all 252
#              parameters;
#   robertson: Robertson's kinetics, k = (0.04, 3e7, 1e4), y0 = (1, 0, 0), to t = 1e5,
#              Kvaerno5 (Kværnø's 5(4) ESDIRK), loss 1e4 y2 + y3 at t = 1e5, gradient in y0 and
#              k; pnode and diffrax only (torchdiffeq has no adaptive implicit method).
#
# pnode (pnode-jit's `adaptive_side_by_side` example, release) times, for dopri5, the fused JIT
# trial step (JitErkStepper::with_error_estimate), the JIT-compiled model and the hand-written
# model through the runtime's explicit pair (EmbeddedErk); for Kvaerno5 the JIT model and the
# hand-written model through EmbeddedDirk. Each with pnode's default PI controller, and one JIT
# contestant with diffrax's default gains (the I controller) as well. It computes the reference
# gradient (dopri5 at rtol = atol = 1e-12; Kvaerno5 at rtol = 1e-10, atol = 1e-14) and prints
# inputs and reference as JSON; the Python
# scripts read that line, so every contestant starts from the same numbers and is measured
# against the same reference. Every process is pinned to core 0 (taskset); the contestants run
# in ROUNDS rounds so slow drifts of the machine hit each alike; the summary pools the
# repetitions (median wall time) and reports CPU time per gradient (the thread's or process's
# CPU time over the timed repetitions, which on a shared machine leaves out the time spent
# waiting for the core) and the ratios to pnode's fastest contestant on both. jax's trace and
# XLA compile times are measured apart and excluded. JSON lines go to
# results/adaptive-bench.json, the markdown table to stdout.
#
# Usage: bash scripts/bench-adaptive.sh
# Env:   ROUNDS (default 3); REPS_LV, REPS_MLP (pnode, default 500, 50); REPS_DIFFRAX (20);
#        REPS_ROBERTSON (diffrax, 10); REPS_ROBERTSON_PNODE (20); REPS_TORCH (5)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/setup.sh
ensure_torchdiffeq
ensure_diffrax

export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
rounds=${ROUNDS:-3}
reps_lv=${REPS_LV:-500}
reps_mlp=${REPS_MLP:-50}
reps_dx=${REPS_DIFFRAX:-20}
reps_rob=${REPS_ROBERTSON:-10}
reps_rob_pn=${REPS_ROBERTSON_PNODE:-20}
reps_torch=${REPS_TORCH:-5}

cargo build --release -q --locked -p pnode-jit --example adaptive_side_by_side
bench="${CARGO_TARGET_DIR:-$root/target}/release/examples/adaptive_side_by_side"
pin=()
command -v taskset >/dev/null 2>&1 && pin=(taskset -c 0)

mkdir -p results
out=results/adaptive-bench.json
: > "$out"
ref=results/adaptive-bench-pnode-inputs.json
for ((round = 1; round <= rounds; round++)); do
    echo "round $round/$rounds: pnode ..." >&2
    "${pin[@]}" "$bench" --reps-lv "$reps_lv" --reps-mlp "$reps_mlp" \
        --reps-robertson "$reps_rob_pn" | tee -a "$out" > "$ref.tmp"
    mv "$ref.tmp" "$ref"
    for problem in lv mlp; do
        echo "round $round/$rounds: diffrax $problem ..." >&2
        "${pin[@]}" python benches/adaptive_diffrax_bench.py --problem "$problem" --pnode "$ref" \
            --reps "$reps_dx" >> "$out"
        for mode in backprop adjoint; do
            echo "round $round/$rounds: torchdiffeq $mode $problem ..." >&2
            "${pin[@]}" python benches/adaptive_torchdiffeq_bench.py --problem "$problem" \
                --pnode "$ref" --mode "$mode" --reps "$reps_torch" >> "$out"
        done
    done
    echo "round $round/$rounds: diffrax robertson ..." >&2
    "${pin[@]}" python benches/adaptive_diffrax_bench.py --problem robertson --pnode "$ref" \
        --reps "$reps_rob" >> "$out"
    echo "round $round/$rounds: load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

python - "$out" <<'PY'
import json, statistics, sys

lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
specs = {"lv": "Lotka–Volterra to t = 10", "mlp": "MLP 2-50-2, batch 64, to t = 5",
         "robertson": "Robertson to t = 1e5"}

def t(s):
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else (f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s")

print("| problem | contestant | accepted / rejected steps | gradient (median wall) | min wall | "
      "wall / pnode | CPU per gradient | CPU / pnode | gradient error vs reference | compile |")
print("|---|---|---|---|---|---|---|---|---|---|")
loads = sorted(float(r["loadavg"][0]) for r in lines if "loadavg" in r)
for prob in ["lv", "mlp", "robertson"]:
    rows = []
    pn = [r for r in lines if r["side"] == "pnode" and r["problem"] == prob]
    for name in (pn[0]["contestants"] if pn else []):
        c0 = pn[0]["contestants"][name]
        stepper = c0["stepper"].split(" (")[0].split(",")[0]
        rows.append((f"pnode {name} ({stepper})",
                     f"{c0['accepted']} / {c0['rejected']}",
                     [x for r in pn for x in r["contestants"][name]["times"]],
                     statistics.median(r["contestants"][name]["cpu_s_per_rep"] for r in pn),
                     max(r["contestants"][name]["grad_rel_err"] for r in pn), "–"))
    dx = [r for r in lines if r["side"] == "diffrax" and r["problem"] == prob]
    if dx:
        comp = (f"{statistics.median(r['compile_s']['xla'] for r in dx):.2f} s XLA + "
                f"{statistics.median(r['compile_s']['trace'] for r in dx):.2f} s trace")
        rows.append((f"{dx[0]['backend']} {dx[0]['method']} (RecursiveCheckpointAdjoint)",
                     f"{dx[0]['accepted']} / {dx[0]['rejected']}",
                     [x for r in dx for x in r["times"]],
                     statistics.median(r["cpu_s_per_rep"] for r in dx),
                     max(r["grad_rel_err"] for r in dx), comp))
    for mode, label in [("backprop", "dopri5, backprop through odeint"),
                        ("adjoint", "dopri5, odeint_adjoint")]:
        td = [r for r in lines if r["side"] == "torchdiffeq" and r["problem"] == prob
              and r["mode"] == mode]
        if td:
            steps = f"{td[0]['accepted']} / {td[0]['rejected']}"
            if mode == "adjoint":
                steps += (f" (+ {td[0]['accepted_adjoint']} / {td[0]['rejected_adjoint']} "
                          "backward)")
            rows.append((f"{td[0]['backend']} ({label})", steps,
                         [x for r in td for x in r["times"]],
                         statistics.median(r["cpu_s_per_rep"] for r in td),
                         max(r["grad_rel_err"] for r in td), "–"))
    if not rows:
        continue
    base_wall = statistics.median(rows[0][2])
    base_cpu = rows[0][3]
    for name, steps, ts, cpu, err, comp in rows:
        med = statistics.median(ts)
        print(f"| {specs[prob]} | {name} | {steps} | {t(med)} | {t(min(ts))} | "
              f"{med / base_wall:.2f} | {t(cpu)} | {cpu / base_cpu:.2f} | {err:.1e} | {comp} |")
print()
n = {s: sum(r["side"] == s for r in lines) for s in ["pnode", "diffrax", "torchdiffeq"]}
print(f"Result lines (one per problem and process): {n['pnode']} pnode, {n['diffrax']} diffrax, "
      f"{n['torchdiffeq']} torchdiffeq "
      f"(wall-clock repetitions pooled over the rounds; CPU time per gradient: mean over a "
      f"process's repetitions, median over the rounds; ratios against the problem's first "
      f"row); 1-min load average at the end of each Python process "
      f"{loads[0]:.2f}–{loads[-1]:.2f}.")
PY
