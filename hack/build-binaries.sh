#!/usr/bin/env bash
# Builds the manager and the PSP simulator as static binaries, the way the
# container image runs them: no cgo, no local paths, no symbol table or DWARF.
# GOOS and GOARCH come from the environment and default to the host's.
#
#   hack/build-binaries.sh OUTDIR    writes OUTDIR/manager and OUTDIR/psp-simulator
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi

# Resolve OUTDIR before the cd below, so that a relative path stays relative
# to the caller's working directory.
mkdir -p "$1"
out=$(cd "$1" && pwd)

cd "$(dirname "$0")/.."

export CGO_ENABLED=0
go build -trimpath -ldflags "-s -w" -o "$out/manager" ./cmd/manager
go build -trimpath -ldflags "-s -w" -o "$out/psp-simulator" ./cmd/psp-simulator
