#!/usr/bin/env bash
# Several device scripts in one call of the device tool (its start-up and
# builds are paid once): each PART runs under its own time limit, in order,
# and its log lands in $OUT. Usage (on the GPU machine, carry .device):
#   bench/session_device.sh "SECONDS:COMMAND" ["SECONDS:COMMAND" ...]
# e.g. bench/session_device.sh "200:bench/python_device.sh" \
#        "60:bench/epilogue_device.sh"
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/device-out}
mkdir -p "$out"
status=0
for part in "$@"; do
  limit=${part%%:*}
  command=${part#*:}
  echo "=== $command (at most ${limit}s, from $(date -u +%H:%M:%S))"
  (cd "$root" && timeout --signal=TERM "$limit" bash -c "$command")
  rc=$?
  [ $rc = 124 ] && echo "=== $command: stopped after ${limit}s"
  [ $rc != 0 ] && status=1
done
exit $status
