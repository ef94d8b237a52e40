#!/bin/sh
# Installs what the benchmarks compare against (bench/ipc.ts, bench/rt.ts, bench/compute.ts):
# gcc (native comparators) and Debian's rt-tests (cyclictest). Idempotent and quiet: prints
# nothing and exits 0 when everything is present. Exits 1 with a reason when something is
# missing and cannot be installed; the benchmarks then report that comparator as not run.
# Runs as root (no sudo needed) or through sudo when it exists.
set -u

PACKAGES="gcc rt-tests"

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=""
for p in $PACKAGES; do
  installed "$p" || missing="$missing $p"
done
if [ -z "$missing" ] && command -v gcc >/dev/null 2>&1 && command -v cyclictest >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "setup-bench.sh: missing packages:$missing; run this script as root (no usable sudo)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-bench.sh: missing packages:$missing; apt-get not found (Debian 12 expected)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# One index can be mid-sync (apt-get update exits 100): carry on and check what we need.
$SUDO apt-get update -qq >/dev/null 2>&1 || true
for p in $missing; do
  if ! apt-cache show "$p" >/dev/null 2>&1; then
    echo "setup-bench.sh: package $p is not available from the configured apt sources" >&2
    exit 1
  fi
done
log=$(mktemp)
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y -q --no-install-recommends $missing >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "setup-bench.sh: apt-get install$missing failed" >&2
  exit 1
fi
rm -f "$log"
if ! command -v gcc >/dev/null 2>&1 || ! command -v cyclictest >/dev/null 2>&1; then
  echo "setup-bench.sh: gcc or cyclictest still not found after installing$missing" >&2
  exit 1
fi
