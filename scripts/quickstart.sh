#!/usr/bin/env bash
# Installs what is needed, builds gcap and ganalyze, and runs the main job:
#   bash scripts/quickstart.sh                  analyse the bundled corpus capture
#   bash scripts/quickstart.sh -p PID           capture a running Go process for 10 s, then analyse it
#   bash scripts/quickstart.sh -- PROGRAM ARGS  start a Go program under capture, then analyse it
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release -q -p ganalyze -p gcap
bin=target/release
capture=corpus/golden/format-v1.gcap
if [ $# -gt 0 ]; then
  capture=$(mktemp -u /tmp/gcap-quickstart-XXXXXX.gcap)
  "$bin/gcap" -o "$capture" -d "${DURATION:-10s}" "$@"
fi
"$bin/ganalyze" verify "$capture"
"$bin/ganalyze" info "$capture"
