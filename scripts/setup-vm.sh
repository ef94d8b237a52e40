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
NAME=setup-vm.sh
. "$(dirname "$0")/apt-lib.sh"

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

# shellcheck disable=SC2086
missing=$(missing_packages $PACKAGES)
files_ok=1
for f in $FILES; do
  [ -f "$f" ] || files_ok=0
done
if [ -z "$missing" ] && [ "$files_ok" = 1 ] && has_i386 && guest_index; then
  exit 0
fi

need_apt "packages or the i386 architecture"

if ! has_i386; then
  echo "$NAME: dpkg --add-architecture i386"
  $SUDO dpkg --add-architecture i386 || {
    echo "$NAME: dpkg --add-architecture i386 failed" >&2
    exit 1
  }
fi

apt_update
# shellcheck disable=SC2086
apt_available $missing
if ! guest_index; then
  echo "$NAME: linux-image-686:i386 or busybox-static:i386 is not available from the configured apt sources" >&2
  exit 1
fi

if [ -n "$missing" ] || [ "$files_ok" = 0 ]; then
  reinstall=""
  # seabios installed but its files gone (deleted by hand): only --reinstall brings them back.
  if [ "$files_ok" = 0 ] && installed seabios; then reinstall="--reinstall"; fi
  [ -n "$missing" ] || missing=" seabios"
  # shellcheck disable=SC2086
  apt_install $reinstall $missing
fi

# shellcheck disable=SC2086
still_installed $PACKAGES
for f in $FILES; do
  if [ ! -f "$f" ]; then
    echo "$NAME: $f is missing after installing seabios" >&2
    exit 1
  fi
done
echo "$NAME: done"
