/**
 * The Linux guest image (scripts/build-guest.sh, guest/): what can be checked without booting a
 * VM. The script runs once (quick when build/guest/ is up to date) and again to show that an
 * up-to-date image is left alone; then the outputs are read the way the VMM and the guest's
 * kernel read them: image.json, the kernel's bzImage header, the newc initramfs and the guest
 * tool's ELF header (a static i386 executable: the guest has no libc and no loader).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const OUT = join(ROOT, "build/guest");
const SCRIPT = join(ROOT, "scripts/build-guest.sh");
const CMDLINE =
  "console=ttyS0 tsc=reliable mitigations=off cryptomgr.notests noisapnp quiet panic_on_oops=1 softlockup_panic=1 " +
  "initcall_blacklist=init_kprobe_trace,load_system_certificate_list,crypto_kdf108_init,init_encrypted,blake2s_mod_init";

interface Image {
  kernel: string;
  initrd: string;
  cmdline: string;
  hash: string;
  kernelVersion: string;
}

function readImage(): Image {
  const raw: unknown = JSON.parse(readFileSync(join(OUT, "image.json"), "utf8"));
  assert.ok(typeof raw === "object" && raw !== null, "image.json holds an object");
  const o = raw as Record<string, unknown>;
  for (const k of ["kernel", "initrd", "cmdline", "hash", "kernelVersion"]) {
    assert.equal(typeof o[k], "string", `image.json: ${k} is a string`);
  }
  return o as unknown as Image;
}

/** One entry of a newc ("070701") cpio archive: the format the kernel unpacks as initramfs. */
interface CpioEntry {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  data: Buffer;
}

function parseNewc(archive: Buffer): Map<string, CpioEntry> {
  const entries = new Map<string, CpioEntry>();
  const align4 = (n: number): number => (n + 3) & ~3;
  let at = 0;
  for (;;) {
    assert.ok(at + 110 <= archive.length, "cpio: truncated header");
    const header = archive.subarray(at, at + 110).toString("latin1");
    assert.equal(header.slice(0, 6), "070701", `cpio: newc magic at ${at}`);
    // Fields after the magic: 13 eight-digit hex numbers (ino, mode, uid, gid, nlink, mtime,
    // filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check).
    const field = (i: number): number => Number.parseInt(header.slice(6 + 8 * i, 14 + 8 * i), 16);
    const nameSize = field(11);
    const fileSize = field(6);
    const name = archive.subarray(at + 110, at + 110 + nameSize - 1).toString("utf8");
    const dataAt = align4(at + 110 + nameSize);
    if (name === "TRAILER!!!") return entries;
    entries.set(name.replace(/^\.\//, ""), {
      name,
      mode: field(1),
      uid: field(2),
      gid: field(3),
      data: archive.subarray(dataAt, dataAt + fileSize),
    });
    at = align4(dataAt + fileSize);
  }
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;

function runBuild(): { status: number | null; stdout: string; stderr: string } {
  // The first build downloads the kernel package (about 50 MB): allow for a slow mirror.
  const r = spawnSync("sh", [SCRIPT], { encoding: "utf8", timeout: 600_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let firstImage: Image;

before(() => {
  const r = runBuild();
  assert.equal(r.status, 0, `build-guest.sh failed:\n${r.stdout}\n${r.stderr}`);
  firstImage = readImage();
});

test("image.json names the kernel and initrd next to it, with the DESIGN.md command line", () => {
  const image = readImage();
  for (const file of [image.kernel, image.initrd]) {
    assert.ok(existsSync(join(OUT, file)), `${file} exists in build/guest`);
    assert.ok(statSync(join(OUT, file)).size > 0, `${file} is not empty`);
  }
  assert.equal(image.cmdline, CMDLINE);
  assert.match(image.hash, /^[0-9a-f]{64}$/);
  // Debian's 686 flavour: what linux-image-686:i386 depends on, e.g. 6.1.0-50-686.
  assert.match(image.kernelVersion, /^\d+\.\d+\.\d+-\d+-686$/);
});

test("a second run with nothing changed prints nothing and leaves the image alone", () => {
  const before = statSync(join(OUT, firstImage.initrd)).mtimeMs;
  const r = runBuild();
  assert.deepEqual(r, { status: 0, stdout: "", stderr: "" });
  assert.deepEqual(readImage(), firstImage);
  assert.equal(statSync(join(OUT, firstImage.initrd)).mtimeMs, before, "initrd.img was not rebuilt");
});

test("the kernel is a bzImage of the Linux boot protocol, which v86 and QEMU load directly", () => {
  const kernel = readFileSync(join(OUT, firstImage.kernel));
  // Documentation/x86/boot.rst: the setup header's magic "HdrS" at 0x202, boot flag 0xaa55 at 0x1fe.
  assert.equal(kernel.subarray(0x202, 0x206).toString("latin1"), "HdrS");
  assert.equal(kernel.readUInt16LE(0x1fe), 0xaa55);
  // Loadflags bit 0 (LOADED_HIGH): a bzImage rather than an old zImage.
  assert.equal(kernel[0x211]! & 1, 1);
  // The version string the header points at (kernel_version, +0x200) starts with uname -r.
  const versionAt = kernel.readUInt16LE(0x20e) + 0x200;
  assert.ok(
    kernel
      .subarray(versionAt, versionAt + 64)
      .toString("latin1")
      .startsWith(firstImage.kernelVersion),
    "kernel_version string matches image.json",
  );
});

test("the initramfs holds /init, busybox with applet links, the guest tool and the WASI examples", () => {
  const files = parseNewc(readFileSync(join(OUT, firstImage.initrd)));
  for (const [name, e] of files) {
    assert.equal(e.uid, 0, `${name} owned by root`);
    assert.equal(e.gid, 0, `${name} group root`);
  }
  const init = files.get("init");
  assert.ok(init !== undefined, "/init exists");
  assert.equal(init.mode & S_IFMT, S_IFREG);
  assert.equal(init.mode & 0o111, 0o111, "/init is executable");
  const script = init.data.toString("utf8");
  assert.ok(script.startsWith("#!/bin/sh\n"));
  assert.match(script, /^echo "capvisor-guest: ready"$/m);
  assert.match(script, /PS1='linux:\\w# '/);
  assert.match(script, /setsid cttyhack sh/);

  const busybox = files.get("bin/busybox");
  assert.ok(busybox !== undefined && (busybox.mode & S_IFMT) === S_IFREG, "/bin/busybox is a file");
  for (const applet of ["bin/sh", "bin/mount", "bin/hostname", "bin/cttyhack", "usr/bin/setsid"]) {
    const link = files.get(applet);
    assert.ok(link !== undefined, `${applet} exists`);
    assert.equal(link.mode & S_IFMT, S_IFLNK, `${applet} is a symlink`);
    assert.equal(link.data.toString("utf8"), "/bin/busybox");
  }
  for (const dir of ["proc", "sys", "dev", "root"]) {
    assert.equal((files.get(dir)?.mode ?? 0) & S_IFMT, S_IFDIR, `/${dir} is a directory`);
  }

  const tool = files.get("usr/bin/wasmedge-run");
  assert.ok(tool !== undefined, "/usr/bin/wasmedge-run exists");
  assert.equal(tool.mode & 0o111, 0o111, "wasmedge-run is executable");
  assert.ok(tool.data.equals(readFileSync(join(OUT, "tools/wasmedge-run"))), "the tool built by the script");

  for (const wasm of ["hello.wasm", "as-cat.wasm"]) {
    const inGuest = files.get(`root/wasm/${wasm}`);
    assert.ok(inGuest !== undefined, `/root/wasm/${wasm} exists`);
    assert.ok(
      inGuest.data.equals(readFileSync(join(ROOT, "build/examples/wasi", wasm))),
      `/root/wasm/${wasm} is the example the repo builds`,
    );
  }
});

test("wasmedge-run is a static i386 Linux executable: no interpreter, no dynamic section", () => {
  const elf = readFileSync(join(OUT, "tools/wasmedge-run"));
  // The ELF header (System V gABI; i386 psABI for the machine number).
  assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], "ELF magic");
  assert.equal(elf[4], 1, "ELFCLASS32");
  assert.equal(elf[5], 1, "ELFDATA2LSB");
  assert.equal(elf.readUInt16LE(16), 2, "ET_EXEC: not position independent, nothing to relocate");
  assert.equal(elf.readUInt16LE(18), 3, "EM_386");
  const phoff = elf.readUInt32LE(28);
  const phentsize = elf.readUInt16LE(42);
  const phnum = elf.readUInt16LE(44);
  assert.ok(phnum > 0, "has program headers");
  const types: number[] = [];
  for (let i = 0; i < phnum; i++) types.push(elf.readUInt32LE(phoff + i * phentsize));
  assert.ok(types.includes(1), "has a PT_LOAD segment");
  assert.ok(!types.includes(3), "no PT_INTERP: the guest has no dynamic loader");
  assert.ok(!types.includes(2), "no PT_DYNAMIC: links against nothing");
  // Entry point inside a loaded segment.
  const entry = elf.readUInt32LE(24);
  let inLoad = false;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (elf.readUInt32LE(at) !== 1) continue;
    const vaddr = elf.readUInt32LE(at + 8);
    const memsz = elf.readUInt32LE(at + 20);
    const flags = elf.readUInt32LE(at + 24);
    if (entry >= vaddr && entry < vaddr + memsz && (flags & 1) !== 0) inLoad = true;
  }
  assert.ok(inLoad, "entry point lies in an executable PT_LOAD segment");
});
