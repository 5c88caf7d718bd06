#!/usr/bin/env bash
# Captures every corpus case with gcap into corpus/captures/<case>.gcap (root, eBPF).
# These files are committed: the analyzer's tests read them on any machine.
#
#   corpus/capture_all.sh [CASE...]       (default: every case)
#
# Uses target/release/gcap (built if missing) and the newest Go toolchain (GO=... to pick).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
gcap=${GCAP:-$root/target/release/gcap}
[[ -x "$gcap" ]] || (cd "$root" && cargo build --release -q -p gcap)
out=$here/captures
mkdir -p "$out"
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=(lock_convoy worker_pool slow_downstream slow_sql gc_pressure cpu_starvation goroutine_leak lifecycle)
for c in "${cases[@]}"; do
  echo "capture_all: $c" >&2
  extra=()
  case $c in
    slow_downstream) extra=(MODE=split TRACEPARENT=1) ;;
    *) extra=(TRACEPARENT=1) ;;
  esac
  env "${extra[@]}" GCAP="$gcap" OUT="$out/$c.gcap" GCAP_D=${GCAP_D:-4s} D=${D:-3s} \
    GCAP_ARGS="--force ${GCAP_ARGS:-}" "$here/run_case.sh" "$c" > "$out/$c.loadgen.json"
  [[ -x "$root/target/release/ganalyze" ]] && "$root/target/release/ganalyze" verify "$out/$c.gcap" >&2 || true
done
