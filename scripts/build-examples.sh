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
  if [ ! -f "$out" ] || [ "$src" -nt "$out" ] || [ "$ROOT/lib/microkit/microkit.c" -nt "$out" ] || [ "$ROOT/lib/sel4/sel4.c" -nt "$out" ]; then
    "$ROOT/scripts/build-c-pd.sh" "$out" "$src"
  fi
done
