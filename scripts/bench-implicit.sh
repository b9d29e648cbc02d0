#!/usr/bin/env bash
# Side-by-side benchmark of implicit-integrator gradients: pnode (built-in Newton with dense LU,
# and PETSc SNES/KSP) against diffrax (jax on CPU, RecursiveCheckpointAdjoint storing every
# step) on Robertson's kinetics, 1000 steps log-spaced from 1e-6 to t = 10, loss
# 1e4·y2(10) + y3(10), gradient in y0 and the three rate constants.
#
# Methods: backward Euler (diffrax ImplicitEuler), Crank–Nicolson (a θ = ½ ESDIRK tableau on
# the diffrax side), Kværnø's ESDIRK3 (diffrax Kvaerno3, the same method), and diffrax's
# Kvaerno5 for reference. Every (method, contestant) runs in a fresh process pinned to one core
# (taskset), in ROUNDS rounds so that slow drifts of the machine hit every contestant alike; the
# summary pools the repetitions (medians). JSON lines go to results/implicit-bench.json, the
# markdown table to stdout. jax's compile time is measured apart and reported.
#
# Usage: bash scripts/bench-implicit.sh        Env: REPS (default 20), ROUNDS (default 3)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/setup.sh
ensure_petsc
ensure_diffrax

reps=${REPS:-20}
rounds=${ROUNDS:-3}
cargo build --release -q --locked -p robertson-gradients --features petsc --bin implicit-bench
bench="${CARGO_TARGET_DIR:-$root/target}/release/implicit-bench"
pin=()
command -v taskset >/dev/null 2>&1 && pin=(taskset -c 0)

mkdir -p results
out=results/implicit-bench.json
: > "$out"
for ((round = 1; round <= rounds; round++)); do
    for method in be cn esdirk3; do
        for backend in builtin petsc; do
            echo "round $round/$rounds: pnode $method $backend ..." >&2
            "${pin[@]}" "$bench" --method "$method" --backend "$backend" --reps "$reps" >> "$out"
        done
        echo "round $round/$rounds: diffrax $method ..." >&2
        "${pin[@]}" python benches/diffrax_bench.py --method "$method" --reps "$reps" >> "$out"
    done
    echo "round $round/$rounds: diffrax kvaerno5 ..." >&2
    "${pin[@]}" python benches/diffrax_bench.py --method kvaerno5 --reps "$reps" >> "$out"
done

python - "$out" <<'PY'
import json, statistics, sys

lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
names = {"be": "backward Euler", "cn": "Crank–Nicolson", "esdirk3": "ESDIRK3 (Kværnø)",
         "kvaerno5": "Kvaerno5 (diffrax only)"}
rows, order = {}, []
for r in lines:
    key = (r["method"], r["side"], r["backend"] if r["side"] == "pnode" else "diffrax")
    if key not in rows:
        rows[key] = []
        order.append(key)
    rows[key].append(r)

def med(rs, field):
    return statistics.median(x for r in rs for x in r[field])

def ms(s):
    return f"{s * 1e3:.2f} ms"

def rel(a, b):
    return max(abs(x - y) for x, y in zip(a, b)) / max(abs(y) for y in b)

print("| method | contestant | forward | gradient | gradient / pnode built-in | "
      "max rel. diff. of the gradient to pnode built-in | jit compile (gradient) |")
print("|---|---|---|---|---|---|---|")
for m in ["be", "cn", "esdirk3", "kvaerno5"]:
    ref = rows.get((m, "pnode", "builtin"))
    if ref is None:
        ref = rows.get(("esdirk3", "pnode", "builtin"))
    ref_g = med(ref, "gradient_times")
    ref_grad = ref[0]["grad_u0"] + ref[0]["grad_k"]
    for key in order:
        if key[0] != m:
            continue
        rs = rows[key]
        g = med(rs, "gradient_times")
        grad = rs[0]["grad_u0"] + rs[0]["grad_k"]
        who = f"pnode {key[2]}" if key[1] == "pnode" else rs[0]["backend"]
        comp = (f"{statistics.median(r['compile_s']['gradient'] for r in rs):.2f} s"
                if key[1] == "diffrax" else "–")
        print(f"| {names[m]} | {who} | {ms(med(rs, 'forward_times'))} | {ms(g)} | "
              f"{g / ref_g:.2f} | {rel(grad, ref_grad):.1e} | {comp} |")
print()
print(f"{len(lines)} processes; repetitions per process: {lines[0]['reps']}; steps: "
      f"{lines[0]['steps']}. Kvaerno5's ratio and difference are against pnode's ESDIRK3 "
      f"(a different, 5th-order method).")
PY
