#!/usr/bin/env bash
# Installs what is needed, builds gcap and ganalyze, and runs the main job:
#   bash scripts/quickstart.sh                  explain the SLO breach in a bundled corpus capture
#                                               (lock convoy: GET /api/orders p99 < 20ms)
#   bash scripts/quickstart.sh -p PID           capture a running Go process for 10 s (DURATION=..), then report
#   bash scripts/quickstart.sh -- PROGRAM ARGS  start a Go program under capture, then report
# SLO="GET /api/x: p99 < 200ms" adds an SLO to the report of your own capture.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release -q -p ganalyze -p gcap
bin=target/release
capture=corpus/captures/lock_convoy.gcap
slo=(--slo "GET /api/orders: p99 < 20ms" --slo "GET /api/health: p99 < 20ms")
if [ $# -gt 0 ]; then
  capture=$(mktemp -u /tmp/gcap-quickstart-XXXXXX.gcap)
  if [ "$1" = "-p" ]; then
    "$bin/gcap" -o "$capture" -d "${DURATION:-10s}" "$@"
  else
    "$bin/gcap" -o "$capture" "$@"
  fi
  slo=()
  [ -z "${SLO:-}" ] || slo=(--slo "$SLO")
fi
"$bin/ganalyze" verify "$capture"
"$bin/ganalyze" report "$capture" ${slo[@]+"${slo[@]}"}
