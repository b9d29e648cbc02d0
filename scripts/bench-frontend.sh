#!/usr/bin/env bash
# Front-end size benchmark (issue 15, findings 5 and 6): generates large model files and times
# `pnodec check` on each, with peak memory (GNU time's maximum resident set size).
#
#   scripts/bench-frontend.sh [PNODEC] [SIZE_BYTES]
#
# PNODEC defaults to target/release/pnodec (build it with `cargo build --release -p pnodec`),
# SIZE_BYTES to 52428800 (50 MB, the issue's examples). Each file is SIZE_BYTES long (give or
# take a line); `lets` is the issue's 2.1 M `let`s at 50 MB. The files are generated under
# ${TMPDIR:-/tmp}/pnode-bench-frontend and deleted afterwards. Each run is killed after
# ${LIMIT_S:-120} seconds.
set -euo pipefail
pnodec=${1:-target/release/pnodec}
size=${2:-52428800}
limit=${LIMIT_S:-120}
dir=${TMPDIR:-/tmp}/pnode-bench-frontend
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT

# sum: one line `d(u)/dt = u + u + … + u`.
gen_sum() {
  awk -v n="$1" 'BEGIN {
    printf "model m\nstate u = 1.0\nd(u)/dt = u"
    chunk = ""; for (i = 0; i < 1024; i++) chunk = chunk " + u"
    for (b = 40; b + 4096 <= n; b += 4096) printf "%s", chunk
    print ""
  }'
}
# states: `state s1 = 1.0` lines (no equations: each is an error of the lowering).
gen_states() {
  awk -v n="$1" 'BEGIN { print "model m"; for (b = 8; b < n; b += length(l) + 1) { l = "state s" ++i " = 1.0"; print l } }'
}
# garbage: deterministic token soup, one diagnostic or more per line.
gen_garbage() {
  awk -v n="$1" 'BEGIN {
    srand(15); split("let state = ) ( ] [ + * ^ , .. 1 1.5 u x \"s\" } { : d(u)/dt #", t, " ");
    bytes = 0
    while (bytes < n) {
      line = ""; k = 1 + int(rand() * 12)
      for (i = 0; i < k; i++) line = line t[1 + int(rand() * 21)] " "
      print line; bytes += length(line) + 1
    }
  }'
}
# lets: a chain `let l1 = u * 0.5`, `let l2 = l1 * 0.5`, …, used by the equation.
gen_lets() {
  awk -v n="$1" 'BEGIN {
    print "model m\nstate u = 1.0\nlet l0 = u"
    for (b = 30; b < n; b += length(l) + 1) { l = "let l" ++i " = l" i - 1 " * 0.5"; print l }
    print "d(u)/dt = l" i
  }'
}

# array: one constant `const c = [1,1,…]`.
gen_array() {
  awk -v n="$1" 'BEGIN { printf "model m\nconst c = [1"; for (b = 20; b + 2 < n; b += 2) printf ",1"; print "]" }'
}

printf '| input | bytes | exit | seconds | max RSS (MB) | stderr lines |\n|---|---|---|---|---|---|\n'
for kind in sum states garbage lets array; do
  f="$dir/$kind.pode"
  "gen_$kind" "$size" > "$f"
  bytes=$(stat -c %s "$f")
  set +e
  /usr/bin/time -f '%e %M' -o "$dir/time" timeout "$limit" "$pnodec" check --color never "$f" \
    > /dev/null 2> "$dir/err"
  rc=$?
  set -e
  read -r secs kb < <(tail -n 1 "$dir/time")
  [ "$rc" = 124 ] && secs=">$limit"
  printf '| %s | %s | %s | %s | %s | %s |\n' "$kind" "$bytes" "$rc" "$secs" "$((kb / 1024))" \
    "$(wc -l < "$dir/err")"
  rm -f "$f"
done
