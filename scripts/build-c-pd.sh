#!/bin/sh
# Build a C protection domain for capvisor (docs/wasm-abi.md).
#
#   scripts/build-c-pd.sh [options] <out.wasm> <source.c>...
#
# Compiles the sources with clang-16 --target=wasm32 -O2 (no libc, no WASI), links them with
# capvisor's libsel4 runtime (lib/sel4/sel4.c) and libmicrokit (lib/microkit/microkit.c), and
# checks that the module's only imports are sel4.syscall (and capvisor.preempt).
#
# Options (before <out.wasm>):
#   --sel4          a plain seL4 program: capvisor_start calls `int main(void)`, no libmicrokit
#   --export=NAME   also export global variable NAME (its address), e.g. for a <setvar> the
#                   loader patches; may be repeated
#   -I... -D... -O... -g -W... -f... -m...   passed to clang for the sources
#
# Exports: memory, capvisor_abi_version, capvisor_regs, capvisor_ipc_buffer, capvisor_start,
# and for Microkit PDs the globals microkit_name, microkit_passive, microkit_irqs,
# microkit_notifications, microkit_pps, microkit_ioports (each holds the variable's address).
# The stack (64 KiB) sits below the data, so overflowing it traps instead of corrupting memory.
# Environment: CLANG, WASM_LD override the tools; run scripts/setup.sh to install them.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLANG=${CLANG:-clang-16}
WASM_LD=${WASM_LD:-wasm-ld-16}

usage() {
  echo "usage: $0 [--sel4] [--export=NAME]... [-I.. -D.. -O..] <out.wasm> <source.c>..." >&2
  exit 2
}

mode=microkit
exports=""
cflags=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sel4) mode=sel4 ;;
    --export=*) exports="$exports --export=${1#--export=}" ;;
    -I*|-D*|-U*|-O*|-g*|-W*|-f*|-m*|-std=*) cflags="$cflags $1" ;;
    --) shift; break ;;
    -*) echo "build-c-pd.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
  shift
done
[ $# -ge 2 ] || usage
out=$1
shift

for tool in "$CLANG" "$WASM_LD"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-c-pd.sh: $tool not found; run scripts/setup.sh" >&2
    exit 1
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/capvisor-pd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

target="--target=wasm32 -nostdlib -O2 -I$ROOT/include"
common="$target -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration"

objs=""
n=0
# The runtime pieces are freestanding: no builtins, so memset & co. do not call themselves.
lib_defs=""
[ "$mode" = sel4 ] && lib_defs="-DCAPVISOR_SEL4_MAIN"
# shellcheck disable=SC2086
"$CLANG" $common -ffreestanding -fno-builtin $lib_defs -c "$ROOT/lib/sel4/sel4.c" -o "$tmp/sel4.o"
objs="$tmp/sel4.o"
if [ "$mode" = microkit ]; then
  # shellcheck disable=SC2086
  "$CLANG" $common -ffreestanding -fno-builtin -c "$ROOT/lib/microkit/microkit.c" -o "$tmp/microkit.o"
  objs="$objs $tmp/microkit.o"
  for v in microkit_name microkit_passive microkit_irqs microkit_notifications microkit_pps microkit_ioports; do
    exports="$exports --export-if-defined=$v"
  done
fi

for src in "$@"; do
  n=$((n + 1))
  obj="$tmp/$n-$(basename "$src" | sed 's/\.[^.]*$//').o"
  # shellcheck disable=SC2086
  "$CLANG" $common $cflags -c "$src" -o "$obj"
  objs="$objs $obj"
done

# compiler-rt builtins (128-bit arithmetic, long double) if the package is installed.
builtins=$("$CLANG" --target=wasm32-wasi -print-libgcc-file-name 2>/dev/null || true)
[ -n "$builtins" ] && [ -f "$builtins" ] || builtins=""

mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086
"$WASM_LD" --no-entry --stack-first -z stack-size=65536 --gc-sections --strip-debug \
  --export=capvisor_abi_version --export=capvisor_regs --export=capvisor_ipc_buffer --export=capvisor_start \
  $exports $objs $builtins -o "$out"

# Only the ABI's imports are allowed (docs/wasm-abi.md): no WASI, no stray undefined symbols.
if command -v node >/dev/null 2>&1; then
  node -e '
    const fs = require("fs");
    const m = new WebAssembly.Module(fs.readFileSync(process.argv[1]));
    const allowed = new Set(["sel4.syscall", "capvisor.preempt"]);
    const bad = WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}`).filter((n) => !allowed.has(n));
    if (bad.length > 0) {
      console.error(`build-c-pd.sh: ${process.argv[1]} imports ${bad.join(", ")}; only sel4.syscall is allowed`);
      process.exit(1);
    }
  ' "$out" || { rm -f "$out"; exit 1; }
fi
