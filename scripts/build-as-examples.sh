#!/bin/sh
# Build every AssemblyScript example PD next to its system description (examples/*/*.wasm,
# git-ignored) with scripts/build-as-pd.sh; needs only the npm packages. A .ts file is a PD
# when it exports init() (Microkit) or main() (with --sel4); others are helper modules. A PD
# may ask for build-as-pd.sh options on a line "capvisor-build-flags: OPTIONS" in its header.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for src in "$ROOT"/examples/*/*.ts; do
  [ -f "$src" ] || continue
  grep -Eq '^export function (init|main)\(' "$src" || continue
  out="$(dirname "$src")/$(basename "$src" .ts).wasm"
  stale=0
  [ -f "$out" ] || stale=1
  for dep in "$src" "$ROOT"/lib/as/*.ts "$ROOT/scripts/build-as-pd.sh"; do
    [ "$dep" -nt "$out" ] && stale=1
  done
  if [ "$stale" = 1 ]; then
    flags=$(sed -n 's/^.*capvisor-build-flags: *//p' "$src" | head -n 1)
    # shellcheck disable=SC2086
    "$ROOT/scripts/build-as-pd.sh" $flags "$out" "$src"
  fi
done
