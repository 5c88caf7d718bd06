#!/usr/bin/env bash
# Build one corpus case, start it, drive it with loadgen, print loadgen's JSON
# summary on stdout, and stop it. Progress messages go to stderr.
#
#   corpus/run_case.sh CASE
#
# Environment:
#   C=8            loadgen concurrency (32 for hung_request)
#   RATE=N         loadgen -rate: requests per second over all URLs (0: unpaced);
#                  default per case (see rates below), 500 for most
#   D=5s           load duration (default 3s when GCAP is set, to fit in the capture)
#   GO=...         toolchain for build.sh;  NOBUILD=1 uses the existing bin/ as is
#   TRACEPARENT=1  loadgen sends a fresh W3C traceparent with every request
#   MODE=split     slow_downstream only: backend and frontend as two processes
#   ARGS="..."     extra flags for the service (e.g. ARGS="-hold 50ms")
#   GCAP=path OUT=file.gcap   capture hook, see below
#   GCAP_D=5s GCAP_SETTLE=1 GCAP_ARGS="..."   capture duration, seconds to let
#                  gcap attach before the load starts, extra gcap flags
#
# The lifecycle case is not a server: it is started with -wait, (captured if
# GCAP is set), released with SIGUSR1, and its JSON facts are printed instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case_=${1:?usage: run_case.sh CASE}
[[ -f "$here/$case_/main.go" && "$case_" != loadgen ]] || { echo "run_case.sh: unknown case $case_" >&2; exit 2; }
bin=$here/bin
# hung_request leaves a loadgen worker waiting for every hung request: more of them.
declare -A concurrency=([hung_request]=32)
C=${C:-${concurrency[$case_]:-8}}
if [[ -n "${GCAP:-}" ]]; then D=${D:-3s}; else D=${D:-5s}; fi
read -r -a svc_args <<<"${ARGS:-}"

tmp=$(mktemp -d)
pids=()     # services we started
gcap_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$gcap_pid" ]] && kill -0 "$gcap_pid" 2>/dev/null; then
    # SIGTERM (background jobs of a script ignore SIGINT): gcap finishes its file
    kill -TERM "$gcap_pid" 2>/dev/null || true
    wait "$gcap_pid" 2>/dev/null || true
  fi
  for p in ${pids[@]+"${pids[@]}"}; do
    kill "$p" 2>/dev/null || true
  done
  for p in ${pids[@]+"${pids[@]}"}; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${NOBUILD:-}" ]]; then
  "$here/build.sh" "$case_" loadgen
fi

# start NAME ARGS... : start bin/CASE in the background, wait for its
# "listening on ADDR" line, and set $addr and $pid.
start() {
  local name=$1; shift
  : >"$tmp/$name.out"
  "$bin/$case_" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do
    addr=$(sed -n 's/^listening on //p' "$tmp/$name.out" | head -n 1 || true)
    [[ -n "$addr" ]] && { echo "run_case: $name pid $pid on $addr" >&2; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "run_case: $name did not start:" >&2
  cat "$tmp/$name.err" >&2
  exit 1
}

# ---- GCAP HOOK: capture the target pids while the load runs ----------------
# When GCAP (path to the gcap binary) and OUT (output file) are set, gcap is
# attached to every service process for GCAP_D, the load starts GCAP_SETTLE
# seconds later, and the script waits for gcap to finish after the load.
gcap_start() {
  [[ -n "${GCAP:-}" ]] || return 0
  : "${OUT:?set OUT=file.gcap together with GCAP}"
  local pargs=() p
  for p in "$@"; do pargs+=(-p "$p"); done
  read -r -a gextra <<<"${GCAP_ARGS:-}"
  echo "run_case: $GCAP -o $OUT -d ${GCAP_D:-5s} ${pargs[*]} ${gextra[*]:-}" >&2
  "$GCAP" -o "$OUT" -d "${GCAP_D:-5s}" "${pargs[@]}" ${gextra[@]+"${gextra[@]}"} &
  gcap_pid=$!
  sleep "${GCAP_SETTLE:-1}"
  kill -0 "$gcap_pid" 2>/dev/null || { wait "$gcap_pid" || true; gcap_pid=""; echo "run_case: gcap exited early" >&2; exit 1; }
}
gcap_wait() {
  [[ -n "$gcap_pid" ]] || return 0
  local rc=0
  wait "$gcap_pid" || rc=$?
  gcap_pid=""
  echo "run_case: gcap exited with $rc, capture in $OUT" >&2
  return "$rc"
}
# ---------------------------------------------------------------------------

if [[ "$case_" == lifecycle ]]; then
  : >"$tmp/lc.err"
  "$bin/lifecycle" -wait ${svc_args[@]+"${svc_args[@]}"} >"$tmp/lc.out" 2>"$tmp/lc.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do grep -q waiting "$tmp/lc.err" && break; sleep 0.1; done
  grep -q waiting "$tmp/lc.err" || { cat "$tmp/lc.err" >&2; exit 1; }
  gcap_start "$pid"
  kill -USR1 "$pid"
  rc=0; wait "$pid" || rc=$?
  pids=()
  [[ $rc -eq 0 ]] || { cat "$tmp/lc.err" >&2; exit "$rc"; }
  gcap_wait
  cat "$tmp/lc.out"
  exit 0
fi

declare -A paths=(
  [lock_convoy]="/api/orders /api/health"
  [worker_pool]="/api/work /api/health"
  [slow_downstream]="/api/checkout /api/health"
  [slow_sql]="/api/orders /api/users"
  [gc_pressure]="/api/alloc /api/health"
  [cpu_starvation]="/api/work /api/health"
  [goroutine_leak]="/api/search /api/health"
  [hung_request]="/api/orders /api/health"
  [timer_timeout]="/api/poll /api/ctx /api/health"
  [wait_group]="/api/fanout /api/health"
  [lazy_worker]="/api/orders /api/health"
)
[[ -n "${paths[$case_]:-}" ]] || { echo "run_case: no URLs known for $case_" >&2; exit 2; }

if [[ "$case_" == slow_downstream && "${MODE:-}" == split ]]; then
  start backend -mode=backend ${svc_args[@]+"${svc_args[@]}"}
  start frontend -mode=frontend -backend "http://$addr" ${svc_args[@]+"${svc_args[@]}"}
else
  start "$case_" ${svc_args[@]+"${svc_args[@]}"}
fi

urls=()
for p in ${paths[$case_]}; do urls+=("http://$addr$p"); done
declare -A rates=([worker_pool]=800 [gc_pressure]=100 [lazy_worker]=600)
lg=("$bin/loadgen" -c "$C" -d "$D" -rate "${RATE:-${rates[$case_]:-500}}" -url "$(IFS=,; echo "${urls[*]}")")
[[ -n "${TRACEPARENT:-}" ]] && lg+=(-traceparent)

gcap_start "${pids[@]}"
echo "run_case: ${lg[*]}" >&2
"${lg[@]}" &   # in the background so that a signal interrupts the wait at once
lg_pid=$!
pids+=("$lg_pid")
wait "$lg_pid"
gcap_wait
