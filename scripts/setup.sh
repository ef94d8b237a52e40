#!/bin/sh
# Installs the tools capvisor needs to build C protection domains for WebAssembly:
# clang-16, lld-16 (wasm-ld), wasi-libc and the wasm32 compiler runtime, and for `capvisor verify
# --channel` the SPIN model checker and gcc (Debian 12 packages).
# Idempotent: prints nothing and exits 0 when everything is already present.
# Runs as root (no sudo needed) or through sudo when it exists.
set -u
NAME=setup.sh
. "$(dirname "$0")/apt-lib.sh"

PACKAGES="clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32 spin gcc"

tools_present() {
  command -v clang-16 >/dev/null 2>&1 && command -v wasm-ld-16 >/dev/null 2>&1
}

# shellcheck disable=SC2086
missing=$(missing_packages $PACKAGES)
if [ -z "$missing" ] && tools_present; then
  exit 0
fi

need_apt "packages:$missing"
echo "$NAME: installing$missing"
apt_update
# shellcheck disable=SC2086
apt_available $missing
# shellcheck disable=SC2086
apt_install $missing
# shellcheck disable=SC2086
still_installed $PACKAGES
if ! tools_present; then
  echo "$NAME: clang-16 or wasm-ld-16 not found on PATH after installing" >&2
  exit 1
fi
echo "$NAME: done ($(clang-16 --version | head -n 1))"
