#!/bin/sh
# Build the WASI example applications for `capvisor run` (README, "The WasmEdge-compatible
# runtime") into build/examples/wasi/ (git-ignored):
#   hello.wasm   examples/wasi/hello/hello.c with clang-16 --target=wasm32-wasi and wasi-libc
#                (installed by scripts/setup.sh)
#   spin.wasm    examples/wasi/spin/spin.c, the same way: prints a line, then spins for ever
#   as-cat.wasm  examples/wasi/as-cat/cat.ts with AssemblyScript and @assemblyscript/wasi-shim
#                (npm packages only: devDependencies, brought by npm install)
# Rebuilds only what is missing or older than its source. Each result must import nothing but
# wasi_snapshot_preview1: an ordinary WASI application, runnable by wasmedge or node:wasi too.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/build/examples/wasi"
ASC="$ROOT/node_modules/assemblyscript/bin/asc.js"
SHIM="$ROOT/node_modules/@assemblyscript/wasi-shim/asconfig.json"
mkdir -p "$OUT"

stale() { # stale <out> <inputs...>: true when <out> is missing or older than an input
  out=$1
  shift
  [ -f "$out" ] || return 0
  for dep in "$@"; do
    [ "$dep" -nt "$out" ] && return 0
  done
  return 1
}

check_imports() {
  node -e '
    const fs = require("fs");
    const m = new WebAssembly.Module(fs.readFileSync(process.argv[1]));
    const bad = WebAssembly.Module.imports(m).filter((i) => i.module !== "wasi_snapshot_preview1");
    if (bad.length > 0) {
      console.error(`build-wasi-examples.sh: ${process.argv[1]} imports ${bad.map((i) => `${i.module}.${i.name}`).join(", ")}`);
      process.exit(1);
    }
  ' "$1" || { rm -f "$1"; exit 1; }
}

hello="$OUT/hello.wasm"
if stale "$hello" "$ROOT/examples/wasi/hello/hello.c" "$0"; then
  command -v clang-16 >/dev/null 2>&1 || "$ROOT/scripts/setup.sh"
  clang-16 --target=wasm32-wasi -O2 -Wall -Wl,--strip-debug -o "$hello" "$ROOT/examples/wasi/hello/hello.c"
  check_imports "$hello"
fi

spin="$OUT/spin.wasm"
if stale "$spin" "$ROOT/examples/wasi/spin/spin.c" "$0"; then
  command -v clang-16 >/dev/null 2>&1 || "$ROOT/scripts/setup.sh"
  clang-16 --target=wasm32-wasi -O2 -Wall -Wl,--strip-debug -o "$spin" "$ROOT/examples/wasi/spin/spin.c"
  check_imports "$spin"
fi

cat="$OUT/as-cat.wasm"
if stale "$cat" "$ROOT/examples/wasi/as-cat/cat.ts" "$0"; then
  if [ ! -f "$ASC" ] || [ ! -f "$SHIM" ]; then
    echo "build-wasi-examples.sh: assemblyscript or @assemblyscript/wasi-shim is not installed; run npm install" >&2
    exit 1
  fi
  # The shim's config maps abort, console, process, Date, ... onto WASI imports (--use) and
  # exports _start: a WASI command module. asc resolves the config's "lib" folder against the
  # working directory when given an absolute config path, so it runs from the root, relative.
  (cd "$ROOT" && node node_modules/assemblyscript/bin/asc.js examples/wasi/as-cat/cat.ts \
    --config node_modules/@assemblyscript/wasi-shim/asconfig.json -O3 --outFile "$cat") || {
    rm -f "$cat"
    exit 1
  }
  check_imports "$cat"
fi
