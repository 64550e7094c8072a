#!/usr/bin/env bash
# The main job on the CPU backend: install what is missing, build, then
# compile and run an MoE layer (OLMoE's routing, 64 experts top-8, at a size a
# laptop CPU runs in a blink) and check it against the naive reference.
# Pass another layer spec to run that instead, e.g. scripts/demo.sh tiny
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
spec=${1:-olmoe,tokens=128,hidden=256,ffn=128}
"$root/scripts/setup.sh"
"$root/scripts/build.sh" moe-run
"${BUILD_DIR:-$root/build}/bin/moe-run" --layer "$spec" --check --repeat 10
