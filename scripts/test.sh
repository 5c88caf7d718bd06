#!/usr/bin/env bash
# The full test suite: formatting, lints, and every unit and end-to-end test. Capture tests
# attach real eBPF probes, so run this as root on a kernel with BTF (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
