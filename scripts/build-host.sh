#!/bin/sh
# Builds capvisor's host helper (src/platform/host/sched-slice.c) into build/host/ with the C
# compiler scripts/setup.sh installs. Quiet and idempotent: does nothing when the helper is newer
# than its source. Without a compiler it says so and leaves capvisor to run without the helper
# (host-priority.ts then leaves the threads' slices as they are).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
src="$ROOT/src/platform/host/sched-slice.c"
out="$ROOT/build/host/sched-slice"
[ -x "$out" ] && [ "$out" -nt "$src" ] && exit 0
cc=$(command -v gcc || command -v cc || true)
if [ -z "$cc" ]; then
  echo "build-host.sh: no C compiler; run scripts/setup.sh (low-priority PD threads keep the host's default slice)" >&2
  exit 0
fi
mkdir -p "$ROOT/build/host"
"$cc" -O2 -Wall -o "$out" "$src"
