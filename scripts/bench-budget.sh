#!/usr/bin/env bash
# gcap at its defaults (a budget of 2% of the targets' CPU) vs Go's runtime/trace, on two
# services, in one run: CPU per request (service + gcap) with `gcap -p PID` and no flags,
# with `gcap --budget off` (every transition, the level's default) and with runtime/trace, and
# what `ganalyze report` explains on the default captures. Results are in docs/BENCHMARKS.md,
# section "gcap at its defaults vs runtime/trace".
#
#   sudo scripts/bench-budget.sh
#
# The services are benches/vs_trace/service (scripts/bench-vs-trace.sh's): 4 goroutines a
# request, under 8 closed-loop clients,
#   - "trivial": the handlers do almost nothing (-spin 200, ~20 µs of CPU a request);
#   - "fan-out": ~100 µs of CPU a request (-spin 10000).
# Both have slow episodes, the cause the report must find: during the last 3 s of every
# 20 s, one request in 5 waits 20 ms for a part goroutine sleeping in main.slowPart (gcap's
# running p99 leaves out the last second and looks 10 s back: episodes 20 s apart are each
# news to it). The report is asked for "GET /work: p99.9 < 10ms": closed-loop clients send
# few requests while they wait, so the slow ones are well under 1% of all.
#
# Environment: ROUNDS (3), D (load per run, 40s: two episodes), NOBUILD=1, KEEP=DIR, GO;
# SERVICES (trivial,fan-out). About 20 minutes on 2 vCPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
export ROUNDS=${ROUNDS:-3} D=${D:-40s} LEVELS=default,lifecycle OVERHEAD_ONLY=1
export EXPLAIN="GET /work: p99.9 < 10ms"
keep=${KEEP:-}
for svc in ${SERVICES:-trivial fan-out}; do
  case $svc in
    trivial) spin=200 ;;
    fan-out) spin=10000 ;;
    *) echo "bench-budget: unknown service $svc (trivial, fan-out)" >&2; exit 2 ;;
  esac
  echo "## $svc service (-spin $spin)"
  echo
  SERVICE_ARGS="-spin $spin -slow 20ms -slow-every 20s -slow-for 3s -slow-one-in 5" \
    KEEP=${keep:+$keep/$svc} bash scripts/bench-vs-trace.sh
  export NOBUILD=1
  echo
done
