#!/bin/sh
# Installs what the benchmarks compare against (bench/ipc.ts, bench/rt.ts, bench/compute.ts):
# gcc (native comparators) and Debian's rt-tests (cyclictest). Idempotent and quiet: prints
# nothing and exits 0 when everything is present. Exits 1 with a reason when something is
# missing and cannot be installed; the benchmarks then report that comparator as not run.
# Runs as root (no sudo needed) or through sudo when it exists.
set -u
NAME=setup-bench.sh
. "$(dirname "$0")/apt-lib.sh"

PACKAGES="gcc rt-tests"

# shellcheck disable=SC2086
missing=$(missing_packages $PACKAGES)
if [ -z "$missing" ] && command -v gcc >/dev/null 2>&1 && command -v cyclictest >/dev/null 2>&1; then
  exit 0
fi

need_apt "packages:$missing"
apt_update
# shellcheck disable=SC2086
apt_available $missing
# shellcheck disable=SC2086
apt_install $missing
if ! command -v gcc >/dev/null 2>&1 || ! command -v cyclictest >/dev/null 2>&1; then
  echo "$NAME: gcc or cyclictest still not found after installing$missing" >&2
  exit 1
fi
