#!/usr/bin/env bash
# bench-matrix.sh: the c=64 matrix of docs/benchmarks.md. Builds the server, starts it on a fresh
# data folder and the trivial HTTPS ceiling next to it (loopback only), then for each repetition
# runs read, write and mix against both, back to back, and prints one JSON line per run.
# ACCESS=1 gives the server an access-control load first (200 directory groups, 1,000 role
# assignments) and reads and writes as an application granted through 10 nested groups.
# Usage: [MODES="read write mix"] [TRIVIAL_FLAGS=...] [ACCESS=1] scripts/bench-matrix.sh [reps] [duration] > results.jsonl
set -euo pipefail
reps=${1:-3}
dur=${2:-10s}
work=$(mktemp -d /tmp/srbench.XXXXXX)
cd "$(dirname "$0")/.."
go build -o "$work/sr" ./cmd/strongroom
go build -o "$work/triv-server" ./internal/bench/trivialserver
"$work/sr" server --data-dir "$work/data" --listen 127.0.0.1:18443 \
  --public-url https://localhost:18443 --vault-requests-per-10s 0 >"$work/server.log" 2>&1 &
sr_pid=$!
# TRIVIAL_FLAGS=--key-vault-headers makes the ceiling send Key Vault's response headers too.
"$work/triv-server" --listen 127.0.0.1:9443 --cert-dir "$work/triv" ${TRIVIAL_FLAGS:-} >"$work/triv.log" 2>&1 &
triv_pid=$!
trap 'kill $sr_pid $triv_pid 2>/dev/null; wait $sr_pid $triv_pid 2>/dev/null' EXIT
for _ in $(seq 50); do
  [ -f "$work/data/admin.json" ] && [ -f "$work/triv/admin.json" ] && break
  sleep 0.2
done
sleep 1
access=()
if [ "${ACCESS:-0}" = 1 ]; then
  access=(--groups 200 --assignments 1000 --reader-file "$work/reader.json")
fi
run() { # target-name port ca admin pid mode rep [extra flags]
  "$work/sr" bench --server "https://localhost:$2" --ca-file "$3" --admin-file "$4" --server-pid "$5" \
    --vault benchkv --workers 64 --duration "$dur" --warmup 2s --mode "$6" --mix-read 0.9 \
    --value-size 100 --secrets 1000 "${@:8}" --json | sed "s/^{/{\"server\":\"$1\",\"rep\":$7,/"
}
for rep in $(seq "$reps"); do
  for mode in ${MODES:-read write mix}; do
    run trivial 9443 "$work/triv/ca.pem" "$work/triv/admin.json" $triv_pid $mode "$rep"
    run strongroom 18443 "$work/data/tls/ca.pem" "$work/data/admin.json" $sr_pid $mode "$rep" "${access[@]}"
  done
done
rm -rf "$work"
