#!/bin/sh
# Build every example PD next to its system description (examples/*/*.wasm, git-ignored).
# Installs the C toolchain first if it is missing (scripts/setup.sh is quiet when all is there).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/setup.sh"
for src in "$ROOT"/examples/*/*.c; do
  dir=$(dirname "$src")
  name=$(basename "$src" .c)
  out="$dir/$name.wasm"
  if [ ! -f "$out" ] || [ "$src" -nt "$out" ] || [ "$ROOT/lib/microkit/microkit.c" -nt "$out" ] || [ "$ROOT/lib/sel4/sel4.c" -nt "$out" ] ||
    [ -n "$(find "$ROOT/include" -newer "$out" -name '*.h' | head -n 1)" ]; then
    # A source may ask for build-c-pd.sh options (e.g. --export=NAME for a setvar) on a line
    # "capvisor-build-flags: OPTIONS" in its header comment.
    flags=$(sed -n 's/^.*capvisor-build-flags: *//p' "$src" | head -n 1)
    # shellcheck disable=SC2086
    "$ROOT/scripts/build-c-pd.sh" $flags "$out" "$src"
  fi
done
# The AssemblyScript examples (npm packages only).
"$ROOT/scripts/build-as-examples.sh"
# The WASI applications for `capvisor run` (build/examples/wasi/).
"$ROOT/scripts/build-wasi-examples.sh"
