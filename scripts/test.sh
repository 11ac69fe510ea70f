#!/usr/bin/env bash
# The README's test command: installs what it needs, builds, and runs every test (unit, kernel suite,
# API, I/O, CLI, the PyTorch oracle). Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
(cd build && ctest --output-on-failure -j "$(nproc)" ${CTEST_ARGS:-})
# The Python package: pip install ./python into a venv over Debian's interpreter, then pytest.
scripts/python_test.sh
