#!/bin/sh
# Installs what capvisor's Linux VMs need from Debian 12:
#   seabios  v86 (npm) ships no BIOS: the VMM loads Debian's /usr/share/seabios/bios.bin and
#            vgabios-stdvga.bin (DESIGN.md, "Known pitfalls")
#   cpio     packs the guest initramfs (scripts/build-guest.sh)
#   i386     the dpkg foreign architecture, so that `apt-get download linux-image-686:i386
#            busybox-static:i386` finds the guest's packages
# With --bench it also installs qemu-system-x86 (QEMU TCG, the reference the v86 boot time is
# compared with; nothing else uses it).
# Idempotent: prints nothing and exits 0 when everything is already present; otherwise one line
# per step. Runs as root (no sudo needed) or through sudo when it exists.
set -u

PACKAGES="seabios cpio"
FILES="/usr/share/seabios/bios.bin /usr/share/seabios/vgabios-stdvga.bin"
for arg in "$@"; do
  case "$arg" in
  --bench) PACKAGES="$PACKAGES qemu-system-x86" ;;
  *)
    echo "usage: setup-vm.sh [--bench]" >&2
    exit 2
    ;;
  esac
done

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

has_i386() {
  dpkg --print-foreign-architectures | grep -qx i386
}

# Guest packages resolvable: the i386 index has been fetched since the architecture was added.
# One apt-cache call (each one rebuilds apt's cache: about 1 s here); it exits 0 when at least one
# name is found, so count the records instead.
guest_index() {
  [ "$(apt-cache show --no-all-versions linux-image-686:i386 busybox-static:i386 2>/dev/null |
    grep -c '^Package:')" = 2 ]
}

missing=""
for p in $PACKAGES; do
  installed "$p" || missing="$missing $p"
done
files_ok=1
for f in $FILES; do
  [ -f "$f" ] || files_ok=0
done
if [ -z "$missing" ] && [ "$files_ok" = 1 ] && has_i386 && guest_index; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "setup-vm.sh: packages or the i386 architecture are missing; run this script as root (no sudo available)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-vm.sh: apt-get not found (Debian 12 expected)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

if ! has_i386; then
  echo "setup-vm.sh: dpkg --add-architecture i386"
  $SUDO dpkg --add-architecture i386 || {
    echo "setup-vm.sh: dpkg --add-architecture i386 failed" >&2
    exit 1
  }
fi

echo "setup-vm.sh: apt-get update"
if ! $SUDO apt-get update -qq >/dev/null 2>&1; then
  # One index (often i386 security) can be mid-sync and make apt-get update exit 100: carry on
  # and check that what we need is available anyway.
  echo "setup-vm.sh: apt-get update reported errors; checking whether the packages are available anyway"
fi
for p in $missing; do
  if ! apt-cache show "$p" >/dev/null 2>&1; then
    echo "setup-vm.sh: package $p is not available from the configured apt sources" >&2
    exit 1
  fi
done
if ! guest_index; then
  echo "setup-vm.sh: linux-image-686:i386 or busybox-static:i386 is not available from the configured apt sources" >&2
  exit 1
fi

if [ -n "$missing" ] || [ "$files_ok" = 0 ]; then
  reinstall=""
  # seabios installed but its files gone (deleted by hand): only --reinstall brings them back.
  if [ "$files_ok" = 0 ] && installed seabios; then reinstall="--reinstall"; fi
  [ -n "$missing" ] || missing=" seabios"
  echo "setup-vm.sh: apt-get install$missing"
  log=$(mktemp)
  # shellcheck disable=SC2086
  if ! $SUDO apt-get install -y -q --no-install-recommends $reinstall $missing >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "setup-vm.sh: apt-get install$missing failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

for p in $PACKAGES; do
  if ! installed "$p"; then
    echo "setup-vm.sh: $p is still not installed" >&2
    exit 1
  fi
done
for f in $FILES; do
  if [ ! -f "$f" ]; then
    echo "setup-vm.sh: $f is missing after installing seabios" >&2
    exit 1
  fi
done
echo "setup-vm.sh: done"
