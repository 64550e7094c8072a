#!/usr/bin/env bash
# Installs what MoE-MLIR builds with (Debian packages), only what is missing:
# LLVM/MLIR 22 (with FileCheck and lit), GoogleTest, CMake, Ninja, a C/C++
# compiler, and for the fuzzers (scripts/fuzz.sh) clang 22 with its libFuzzer
# and sanitizer runtimes. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
          libgtest-dev cmake ninja-build g++ python3
          clang-22 libclang-rt-22-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all build dependencies are installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root to install ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
