#!/usr/bin/env bash
# Captures every corpus case with gcap into corpus/captures/<case>.gcap (root, eBPF).
# These files are committed: the analyzer's tests read them on any machine.
#
#   corpus/capture_all.sh [CASE[:GO_VERSION]...]       (default: every case)
#
# Uses target/release/gcap (built if missing) and the newest Go toolchain (GO=... to pick);
# CASE:VERSION builds the case with /opt/go-bin/VERSION and writes <case>_go<major.minor>.gcap.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
gcap=${GCAP:-$root/target/release/gcap}
[[ -x "$gcap" ]] || (cd "$root" && cargo build --release -q -p gcap)
out=$here/captures
mkdir -p "$out"
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=(lock_convoy worker_pool slow_downstream slow_sql gc_pressure cpu_starvation goroutine_leak lifecycle hung_request timer_timeout wait_group wait_group:1.21.13 lazy_worker)
for spec in "${cases[@]}"; do
  c=${spec%%:*}
  name=$c
  toolchain=()
  if [[ $spec == *:* ]]; then
    v=${spec#*:}
    toolchain=(GO="/opt/go-bin/$v/go/bin/go")
    name=${c}_go${v%.*}
  fi
  echo "capture_all: $name" >&2
  extra=()
  case $c in
    slow_downstream) extra=(MODE=split TRACEPARENT=1) ;;
    *) extra=(TRACEPARENT=1) ;;
  esac
  env "${extra[@]}" ${toolchain[@]+"${toolchain[@]}"} GCAP="$gcap" OUT="$out/$name.gcap" \
    GCAP_D=${GCAP_D:-4s} D=${D:-3s} GCAP_ARGS="--force ${GCAP_ARGS:-}" \
    "$here/run_case.sh" "$c" > "$out/$name.loadgen.json"
  [[ -x "$root/target/release/ganalyze" ]] && "$root/target/release/ganalyze" verify "$out/$name.gcap" >&2 || true
done
