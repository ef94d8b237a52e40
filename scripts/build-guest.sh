#!/bin/sh
# Builds the Linux guest image for capvisor's VMs into build/guest/ (git-ignored):
#   vmlinuz     Debian 12's i386 686 kernel: the version linux-image-686:i386 depends on
#   initrd.img  an uncompressed newc initramfs of our own: busybox-static:i386 with its applet
#               links, guest/init as /init, the guest tool wasmedge-run (guest/tools/, built here
#               freestanding with clang-16 + ld.lld-16, no libc) in /usr/bin, and the WASI examples
#               of scripts/build-wasi-examples.sh in /root/wasm/
#   image.json  {"kernel", "initrd" (file names relative to image.json's folder), "cmdline",
#               "hash", "kernelVersion" (the guest's `uname -r`), "packages"}
# Downloaded .debs are kept in build/guest/debs/. The hash covers every input (this script,
# guest/**, the package versions, the wasm files, the compiler); when image.json already has it,
# the script prints nothing and exits 0.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/build/guest"
DEBS="$OUT/debs"
# DESIGN.md, reference figures: the serial console, no TSC calibration or speculation
# mitigations (no use under an emulator), no crypto self-tests and no ISA PnP probe: each of
# those costs seconds under v86. Five initcalls that took 1.8 s of a cold boot under v86
# (initcall_debug) and do nothing this guest needs are skipped: kprobe tracing, the module-signing
# certificates (the guest loads no modules), the encrypted-keys key type, and two crypto self-tests.
# A kernel oops or a soft lockup (a hung kernel) panics, so that the VMM sees it and restarts the
# VM from its snapshot (src/vmm/vmm-pd.ts).
CMDLINE="console=ttyS0 tsc=reliable mitigations=off cryptomgr.notests noisapnp quiet panic_on_oops=1 softlockup_panic=1 initcall_blacklist=init_kprobe_trace,load_system_certificate_list,crypto_kdf108_init,init_encrypted,blake2s_mod_init"
KERNEL_META="linux-image-686:i386"
BUSYBOX="busybox-static:i386"
say() { echo "build-guest.sh: $*"; }
die() {
  echo "build-guest.sh: $*" >&2
  exit 1
}

# Tools: cpio and the i386 package index (setup-vm.sh), clang-16 and ld.lld-16 (setup.sh).
command -v cpio >/dev/null 2>&1 || sh "$ROOT/scripts/setup-vm.sh"
{ command -v clang-16 >/dev/null 2>&1 && command -v ld.lld-16 >/dev/null 2>&1; } || sh "$ROOT/scripts/setup.sh"
sh "$ROOT/scripts/build-wasi-examples.sh"

# Package versions, in one apt-cache call (each call rebuilds apt's cache: about 1 s here).
query_packages() {
  apt-cache show --no-all-versions "$KERNEL_META" "$BUSYBOX" 2>/dev/null |
    awk '/^Package:/ { p = $2 } /^Version:/ { v[p] = $2 }
         /^Depends:/ && p ~ /^linux-image-/ { split($0, d, /[ ,]+/); dep = d[2] }
         END { print dep, v["linux-image-686"], v["busybox-static"] }'
}
set -- $(query_packages)
if [ $# -ne 3 ]; then
  sh "$ROOT/scripts/setup-vm.sh"
  set -- $(query_packages)
  [ $# -eq 3 ] || die "cannot resolve $KERNEL_META and $BUSYBOX from apt (run scripts/setup-vm.sh)"
fi
KERNEL_PKG="$1:i386"
# The metapackage comes from the same linux source upload as the image it depends on (its
# Depends pins `(= version)`), so its version is the kernel package's version.
KERNEL_VER=$2
BUSYBOX_VER=$3
KERNEL_RELEASE=${1#linux-image-}
PACKAGES="$KERNEL_PKG=$KERNEL_VER $BUSYBOX=$BUSYBOX_VER"

WASM_DIR="$ROOT/build/examples/wasi"
WASM_FILES=$(find "$WASM_DIR" -maxdepth 1 -name '*.wasm' -type f | LC_ALL=C sort)
[ -n "$WASM_FILES" ] || die "no WASI examples in $WASM_DIR"

# The hash: every input by name and content, then the package versions and the compiler.
hash_inputs() {
  (
    cd "$ROOT"
    for f in scripts/build-guest.sh $(find guest -type f | LC_ALL=C sort); do
      echo "$f $(sha256sum <"$f")"
    done
    for f in $WASM_FILES; do
      echo "wasm/${f##*/} $(sha256sum <"$f")"
    done
    echo "$PACKAGES"
    clang-16 --version | head -n 1
  ) | sha256sum | cut -d' ' -f1
}
HASH=$(hash_inputs)
if [ -f "$OUT/image.json" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] &&
  grep -q "\"hash\": \"$HASH\"" "$OUT/image.json"; then
  exit 0
fi

mkdir -p "$DEBS"
rm -f "$OUT/image.json"

# fetch <package:arch> <version>: the .deb path, downloading it unless cached.
fetch() {
  name=${1%:*}
  for deb in "$DEBS/${name}"_*_i386.deb; do
    [ -f "$deb" ] || continue
    if [ "$(dpkg-deb -f "$deb" Version)" = "$2" ]; then
      echo "$deb"
      return 0
    fi
    rm -f "$deb" # an older version: superseded
  done
  say "downloading $1 $2" >&2
  log=$(mktemp)
  if ! (cd "$DEBS" && apt-get download "$1=$2") >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "apt-get download $1=$2 failed"
  fi
  rm -f "$log"
  for deb in "$DEBS/${name}"_*_i386.deb; do
    [ -f "$deb" ] && [ "$(dpkg-deb -f "$deb" Version)" = "$2" ] && echo "$deb" && return 0
  done
  die "apt-get download $1=$2 left no .deb in $DEBS"
}
kernel_deb=$(fetch "$KERNEL_PKG" "$KERNEL_VER")
busybox_deb=$(fetch "$BUSYBOX" "$BUSYBOX_VER")

WORK="$OUT/work"
rm -rf "$WORK"
mkdir -p "$WORK/deb" "$WORK/tools"

# Only the files the image uses come out of the packages: the kernel .deb is mostly modules,
# which this guest does not load (serial console, devtmpfs and initramfs are built in).
say "unpacking $KERNEL_PKG $KERNEL_VER"
dpkg-deb --fsys-tarfile "$kernel_deb" | tar -x -C "$WORK/deb" "./boot/vmlinuz-$KERNEL_RELEASE" ||
  die "no /boot/vmlinuz-$KERNEL_RELEASE in $kernel_deb"
say "unpacking $BUSYBOX $BUSYBOX_VER"
dpkg-deb --fsys-tarfile "$busybox_deb" | tar -x -C "$WORK/deb" ./bin/busybox

say "building wasmedge-run (freestanding i386, no libc)"
CFLAGS="--target=i386-linux-gnu -march=i686 -static -nostdlib -ffreestanding -fno-stack-protector -O2"
CFLAGS="$CFLAGS -fno-pic -fno-asynchronous-unwind-tables -Wall -Wextra -Werror"
for c in rt wasmedge-run; do
  # shellcheck disable=SC2086
  clang-16 $CFLAGS -c "$ROOT/guest/tools/$c.c" -o "$WORK/tools/$c.o"
done
mkdir -p "$OUT/tools"
ld.lld-16 -m elf_i386 -static --gc-sections -s -o "$OUT/tools/wasmedge-run" \
  "$WORK/tools/rt.o" "$WORK/tools/wasmedge-run.o"

say "building initramfs"
R="$WORK/root"
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" \
  "$R/root/wasm" "$R/etc"
cp "$WORK/deb/bin/busybox" "$R/bin/busybox"
# The applet list comes from busybox itself; running the i386 binary needs the host kernel's
# IA32 emulation. Without it /init installs the links at boot instead (a few ms).
if applets=$("$R/bin/busybox" --list-full 2>/dev/null) && [ -n "$applets" ]; then
  for a in $applets; do
    case "$a" in
    bin/busybox) continue ;; # the binary itself
    */*) ;;
    *) continue ;; # linuxrc: an initrd's old entry point, unused with /init
    esac
    mkdir -p "$R/${a%/*}"
    ln -s /bin/busybox "$R/$a"
  done
else
  say "cannot run the i386 busybox here: the guest will install its applet links at boot"
  ln -s busybox "$R/bin/sh"
fi
cp "$ROOT/guest/init" "$R/init"
chmod 755 "$R/init"
cp "$OUT/tools/wasmedge-run" "$R/usr/bin/wasmedge-run"
for f in $WASM_FILES; do cp "$f" "$R/root/wasm/"; done
echo linux >"$R/etc/hostname"
echo "root:x:0:0:root:/root:/bin/sh" >"$R/etc/passwd"
echo "root:x:0:" >"$R/etc/group"
# Uncompressed: the kernel unpacks it with no decompressor, which under an emulator costs more
# than the extra megabytes cost to load. newc with every file owned by root.
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$OUT/initrd.img.tmp"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
cp "$WORK/deb/boot/vmlinuz-$KERNEL_RELEASE" "$OUT/vmlinuz"
rm -rf "$WORK"

cat >"$OUT/image.json.tmp" <<EOF
{
  "kernel": "vmlinuz",
  "initrd": "initrd.img",
  "cmdline": "$CMDLINE",
  "hash": "$HASH",
  "kernelVersion": "$KERNEL_RELEASE",
  "packages": { "${KERNEL_PKG%:*}": "$KERNEL_VER", "${BUSYBOX%:*}": "$BUSYBOX_VER" }
}
EOF
mv "$OUT/image.json.tmp" "$OUT/image.json"
say "done: $OUT (kernel $KERNEL_RELEASE, initrd $(($(wc -c <"$OUT/initrd.img") / 1024)) KiB)"
