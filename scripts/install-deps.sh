#!/usr/bin/env bash
# Installs everything tconv's build, tests and main job need on a fresh Debian 12 machine (run as root).
# Idempotent: skips apt when every package is already there.
set -euo pipefail
PKGS=(
  cmake ninja-build ccache g++ pkg-config
  libgtest-dev libgmock-dev          # tests
  libhwy-dev libopenblas-dev         # CPU kernels (Highway SIMD), sgemm reference rate in benchmarks
  nlohmann-json3-dev libcli11-dev libstb-dev zlib1g-dev
  clang-14 libclang-rt-14-dev libomp-14-dev   # fuzzing and sanitizers
  python3-torch python3-numpy python3-matplotlib  # oracle (Debian's /usr/bin/python3), plots
  python3-pip python3-venv           # the Python package (scripts/python_test.sh: venv + pip install ./python)
  dataset-fashion-mnist              # the main job's data
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
