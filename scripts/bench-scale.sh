#!/usr/bin/env bash
# bench-scale.sh: the scale figures of docs/benchmarks.md ("Scale to a million secrets"). Builds
# the binary and runs `strongroom bench scale` on a fresh data folder: the command starts and owns
# the server (loopback only, the same server flags as bench-matrix.sh), writes N secrets over V
# vaults at c=64, measures at 1,000 secrets and at N, stops the server and prints one JSON object
# on stdout (progress on stderr). KEEP=1 keeps the work folder (binary, data folder).
# Usage: scripts/bench-scale.sh [secrets] [vaults] [more `bench scale` flags...] > result.json
#   scripts/bench-scale.sh 1000000 1        # 1,000,000 secrets in one vault
#   scripts/bench-scale.sh 1000000 10000    # 10,000 vaults x 100 secrets
set -euo pipefail
secrets=${1:-1000000}
vaults=${2:-1}
if [ $# -gt 0 ]; then shift; fi
if [ $# -gt 0 ]; then shift; fi
work=$(mktemp -d /tmp/srscale.XXXXXX)
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$work"' EXIT; else echo "work folder: $work" >&2; fi
cd "$(dirname "$0")/.."
go build -o "$work/sr" ./cmd/strongroom
"$work/sr" bench scale --server-binary "$work/sr" --data-dir "$work/data" --listen 127.0.0.1:18543 \
  --secrets "$secrets" --vaults "$vaults" --baseline 1000 --workers 64 --value-size 100 \
  --read-window 15s --warmup 2s --list-samples 50 --idle 20s --max-duration 1h --cold-cache fadvise \
  --json "$@"
