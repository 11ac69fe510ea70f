#!/usr/bin/env bash
# Builds and tests the tconv Python package (python/): makes a virtual environment over Debian's
# /usr/bin/python3 (--system-site-packages, so Debian's python3-torch and python3-numpy are visible; PEP 668
# forbids pip into the system interpreter), `pip install ./python` into it (+ pytest), and runs the tests.
#
#   scripts/python_test.sh [pytest arguments...]
#
# Environment: TCONV_PY_VENV (default build-py/venv), PYTHON (default /usr/bin/python3),
# TCONV_PY_FAST=1 reuses the installed build tools (pip --no-build-isolation; no download of
# scikit-build-core/nanobind into a fresh isolated environment on every run).
# Exit status: pytest's, except that "no tests collected" (5) is turned into a failure (1).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-/usr/bin/python3}"
VENV="${TCONV_PY_VENV:-$ROOT/build-py/venv}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "python_test: creating $VENV"
  "$PYTHON" -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q pytest
"$VENV/bin/python" -c "import torch, numpy" || {
  echo "python_test: torch/numpy not importable from $PYTHON (scripts/install-deps.sh installs them)" >&2
  exit 1
}

pip_args=()
if [ "${TCONV_PY_FAST:-0}" = "1" ]; then
  "$VENV/bin/python" -m pip install -q "scikit-build-core>=0.10" "nanobind>=2.0"
  pip_args+=(--no-build-isolation)
fi
echo "python_test: pip install $ROOT/python"
"$VENV/bin/python" -m pip install -q "${pip_args[@]}" "$ROOT/python"

# Run from outside python/ so that `import tconv` is the installed package, not the source folder.
cd "$ROOT"
set +e
"$VENV/bin/python" -P -m pytest -q "$ROOT/python/tests" "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "python_test: no tests were collected" >&2
  exit 1
fi
exit $rc
