#!/usr/bin/env bash
# The README's main command: installs what it needs, builds, and runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
OUT=${OUT:-out/main}
mkdir -p "$OUT"
exec build/tools/tconv/tconv train --out "$OUT" "$@"
