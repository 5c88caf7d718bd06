#!/usr/bin/env bash
# The full test suite: formatting, lints, and every unit and end-to-end test. Capture tests
# attach real eBPF probes, so run this as root on a kernel with BTF (see README).
# Every step runs even when an earlier one fails (cargo test with --no-fail-fast); the run
# ends with the list of what failed, and exits non-zero if anything did.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1

failed=()
log=$(mktemp /tmp/gcap-test.XXXXXX.log)
step() { local name=$1; shift; echo "== $name" >&2; "$@" || failed+=("$name"); }

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "cargo test" bash -c 'set -o pipefail; cargo test --workspace --no-fail-fast 2>&1 | tee "$0"' "$log"

if [ ${#failed[@]} -gt 0 ]; then
  echo >&2
  echo "FAILED steps: ${failed[*]}" >&2
  # Each failing test ("test NAME ... FAILED") and each failing test target.
  grep -E '^test .* \.\.\. FAILED$' "$log" >&2 || true
  awk '/^error: [0-9]+ targets? failed/ {on=1} on' "$log" >&2
  echo "full cargo test log: $log" >&2
  exit 1
fi
rm -f "$log"
