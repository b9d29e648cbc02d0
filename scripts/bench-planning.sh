#!/usr/bin/env bash
# Planning and memory at large step counts (issue 15, findings 2 and 3): a release pnodec on a
# scalar decay model (RK4) written to a temporary .pode file.
#
# * `solve` of 10^5 steps (no schedule is planned or simulated, no checkpoint store allocated);
# * `emit --schedule` of 10^6 steps with store-all, solution-only, Revolve(10) and online(10)
#   (the schedule is generated action by action while the ledger predicts it);
# * `grad` with Revolve(10) over 10^6 and 10^7 steps: wall and CPU time and peak RSS, which
#   must not grow with N (the uniform grid computes its points, the checkpoints are 10 slots);
# * the planning share of that gradient: `Schedule::predict` of the same Revolve schedule (the
#   generation of every action plus the ledger) timed by the simulate example.
#
# Each line: what, wall seconds, user+system CPU seconds, peak RSS (KiB), from /usr/bin/time.
# Usage: bash scripts/bench-planning.sh      Env: STEPS_GRAD (default "1000000 10000000")
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo build --release -q -p pnodec
cargo build --release -q -p pnode-checkpoint --example simulate
bin="${CARGO_TARGET_DIR:-$root/target}/release"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

model() { # name steps checkpoint
    cat > "$tmp/$1.pode" <<POD
model decay
state u = 1.0
param k = 0.5
d(u)/dt = -k * u
solve {
  method = rk4
  t = 0 .. 1
  steps = $2
  checkpoint = $3
}
loss = u ^ 2
POD
}

measure() { # label command...
    local label=$1
    shift
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$@" > "$tmp/stdout" 2> "$tmp/stderr" || {
        echo "$label failed:" >&2
        cat "$tmp/stderr" >&2
        exit 1
    }
    read -r wall user sys rss < "$tmp/time"
    printf '%-40s wall %7.3f s  cpu %7.3f s  peak RSS %8d KiB\n' "$label" "$wall" \
        "$(echo "$user + $sys" | bc)" "$rss"
}

model solve5 100000 store_all
measure "solve 1e5 steps" "$bin/pnodec" solve --force -o "$tmp/u.csv" "$tmp/solve5.pode"

for ck in store_all solution_only "revolve(slots = 10)" "online(slots = 10)"; do
    model sched 1000000 "$ck"
    measure "emit --schedule 1e6 $ck" "$bin/pnodec" emit --schedule "$tmp/sched.pode"
done

for n in ${STEPS_GRAD:-1000000 10000000}; do
    model grad "$n" "revolve(slots = 10)"
    measure "grad revolve(10) N=$n" "$bin/pnodec" grad --force -o "$tmp/g.json" \
        "$tmp/grad.pode"
    grep -o '"grad_ms": *[0-9.]*' "$tmp/g.json" || true
    "$bin/examples/simulate" "$n" | grep revolve
done
