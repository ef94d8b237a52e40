#!/bin/sh
# Installs the tools capvisor needs to build C protection domains for WebAssembly:
# clang-16, lld-16 (wasm-ld), wasi-libc and the wasm32 compiler runtime, and for `capvisor verify
# --channel` the SPIN model checker and gcc (Debian 12 packages).
# Idempotent: prints nothing and exits 0 when everything is already present.
# Runs as root (no sudo needed) or through sudo when it exists.
set -u

PACKAGES="clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32 spin gcc"

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

tools_present() {
  command -v clang-16 >/dev/null 2>&1 && command -v wasm-ld-16 >/dev/null 2>&1
}

missing=""
for p in $PACKAGES; do
  installed "$p" || missing="$missing $p"
done
if [ -z "$missing" ] && tools_present; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "setup.sh: missing packages:$missing; run this script as root (no sudo available)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup.sh: missing packages:$missing; apt-get not found (Debian 12 expected)" >&2
  exit 1
fi

echo "setup.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
echo "setup.sh: apt-get update"
if ! $SUDO apt-get update -qq >/dev/null 2>&1; then
  # One index can be mid-sync (apt-get update exits 100): carry on and check what we need.
  echo "setup.sh: apt-get update reported errors; checking whether the packages are available anyway"
fi
for p in $missing; do
  if ! apt-cache show "$p" >/dev/null 2>&1; then
    echo "setup.sh: package $p is not available from the configured apt sources" >&2
    exit 1
  fi
done
echo "setup.sh: apt-get install$missing"
log=$(mktemp)
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y -q --no-install-recommends $missing >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "setup.sh: apt-get install$missing failed" >&2
  exit 1
fi
rm -f "$log"
for p in $PACKAGES; do
  if ! installed "$p"; then
    echo "setup.sh: $p is still not installed" >&2
    exit 1
  fi
done
if ! tools_present; then
  echo "setup.sh: clang-16 or wasm-ld-16 not found on PATH after installing" >&2
  exit 1
fi
echo "setup.sh: done ($(clang-16 --version | head -n 1))"
