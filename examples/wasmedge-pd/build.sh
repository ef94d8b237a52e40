#!/bin/sh
# Build what wasmedge-pd.system runs into build/examples/wasmedge-pd/ (git-ignored): the C PD
# (examples/hello/hello.c, a Microkit PD) and its WASI applications (bigfile.wasm and spin.wasm are for other tests) (clang-16 with wasi-libc,
# installed by scripts/setup.sh). Rebuilds only what is missing or older than its source.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/build/examples/wasmedge-pd"
mkdir -p "$OUT"
stale() { [ ! -f "$1" ] || [ "$2" -nt "$1" ]; }
if stale "$OUT/hello-pd.wasm" "$ROOT/examples/hello/hello.c"; then
  "$ROOT/scripts/build-c-pd.sh" "$OUT/hello-pd.wasm.tmp" "$ROOT/examples/hello/hello.c"
  mv "$OUT/hello-pd.wasm.tmp" "$OUT/hello-pd.wasm"
fi
for app in hello:examples/wasi/hello/hello.c readfile:examples/wasmedge-pd/apps/readfile.c \
  bigfile:examples/wasmedge-pd/apps/bigfile.c spin:examples/wasi/spin/spin.c; do
  name=${app%%:*}
  src="$ROOT/${app#*:}"
  if stale "$OUT/$name.wasm" "$src"; then
    clang-16 --target=wasm32-wasi -O2 -o "$OUT/$name.wasm.tmp" "$src"
    mv "$OUT/$name.wasm.tmp" "$OUT/$name.wasm"
  fi
done
