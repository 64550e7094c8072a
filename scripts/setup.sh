#!/usr/bin/env bash
# Installs what MoE-MLIR builds with (Debian packages), only what is missing:
# LLVM/MLIR 22 (with FileCheck and lit), GoogleTest, CMake, Ninja, a C/C++
# compiler, and for the fuzzers (scripts/fuzz.sh) clang 22 with its libFuzzer
# and sanitizer runtimes, Open MPI (expert parallelism on the CPU: mpirun
# runs the multi-rank tests; moert loads libmpi.so.40 with dlopen); then the
# Python packages of the bindings (pip).
# Needs root (or sudo) only when a Debian package is missing.
set -euo pipefail

packages=(llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
          libgtest-dev cmake ninja-build g++ python3
          clang-22 libclang-rt-22-dev
          libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all build dependencies are installed"
else
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root to install ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The Python bindings and their tests (python_bindings/), for the python3 on
# PATH, from PyPI: nanobind and scikit-build-core build them, NumPy,
# ml_dtypes (bf16 arrays) and pytest test them, PyTorch tests moe_mlir.torch.
# PyPI's torch for Linux x86_64 is its CUDA build (about 1 GB, with about
# 3 GB of NVIDIA libraries; CPU-only wheels are not on PyPI). MOE_MLIR_NO_TORCH=1
# skips it (the torch tests then skip).
python_missing=()
for module in numpy nanobind scikit_build_core pytest ml_dtypes; do
  python3 -c "import $module" 2>/dev/null || python_missing+=("$module")
done
if [ -z "${MOE_MLIR_NO_TORCH:-}" ] && ! python3 -c "import torch" 2>/dev/null; then
  python_missing+=(torch)
fi
if [ ${#python_missing[@]} -gt 0 ]; then
  echo "setup: pip installing ${python_missing[*]//_/-}"
  python3 -m pip install -q --disable-pip-version-check \
    "${python_missing[@]//_/-}"
else
  echo "setup: all Python dependencies are installed"
fi
