// Guest snapshots: a Linux guest cold-boots in seconds under v86 but restores from a saved
// machine in well under one (DESIGN.md, reference figures), so capvisor boots each guest image
// once, to its shell prompt, saves the machine next to the image and starts every later VM
// from that file.
//
// File format (capvisor's own): the 8 bytes "CVSNAP1\n", a little-endian u32 length and that
// many bytes of JSON metadata, then the backend's state compressed with raw deflate (level 1:
// it halves a v86 state in about 0.4 s and inflates in under 0.1 s, where restore time is what
// counts). The file name carries a hash of everything the state depends on: the image, the
// backend's version and the guest's RAM size, so a change to any of them makes a new file.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import {
  createV86Backend,
  DEFAULT_GUEST_MEMORY,
  type V86BackendOptions,
  v86BackendVersion,
} from "./v86-backend.js";
import { driveUntil, type VcpuBackend } from "./vcpu-backend.js";

/** The line the guest's /init prints once user space runs (scripts/build-guest.sh). */
export const GUEST_READY_LINE = "capvisor-guest: ready";
/** The shell prompt that follows it. */
export const GUEST_PROMPT = "# ";

const MAGIC = "CVSNAP1\n";

/**
 * A guest image: scripts/build-guest.sh writes vmlinuz, initrd.img and image.json (with
 * "kernel", "initrd", "cmdline" and "hash") into build/guest/. The same shape as vm-types.ts's
 * GuestImage plus the folder.
 */
export interface GuestImage {
  /** Absolute paths. */
  readonly kernel: string;
  readonly initrd: string;
  readonly cmdline: string;
  /** Identity of the image: image.json's "hash", or a hash of its files and command line. */
  readonly hash: string;
  /** The image's folder, where its snapshots go by default (else the kernel's folder). */
  readonly dir?: string;
}

/** The guest image directory: $CAPVISOR_GUEST_DIR, else build/guest in the repository. */
export function defaultGuestDir(): string {
  const override = process.env.CAPVISOR_GUEST_DIR;
  if (override) return resolve(override);
  return fileURLToPath(new URL("../../../build/guest/", import.meta.url));
}

function stringField(json: Record<string, unknown>, name: string): string | undefined {
  const value = json[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

export function loadGuestImage(dir: string = defaultGuestDir()): GuestImage {
  const manifestPath = join(dir, "image.json");
  if (!existsSync(manifestPath)) {
    throw new Error(`no guest image in ${dir} (image.json missing): run sh scripts/build-guest.sh`);
  }
  const json: unknown = JSON.parse(readFileSync(manifestPath, "utf8"));
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`${manifestPath}: not a JSON object`);
  }
  const manifest = json as Record<string, unknown>;
  const cmdline = stringField(manifest, "cmdline");
  if (cmdline === undefined) throw new Error(`${manifestPath}: no "cmdline"`);
  const kernel = resolve(dir, stringField(manifest, "kernel") ?? "vmlinuz");
  const initrd = resolve(dir, stringField(manifest, "initrd") ?? "initrd.img");
  let hash = stringField(manifest, "hash");
  if (hash === undefined) {
    const digest = createHash("sha256");
    digest.update(readFileSync(kernel));
    digest.update(readFileSync(initrd));
    digest.update(cmdline);
    hash = digest.digest("hex");
  }
  return { kernel, initrd, cmdline, hash, dir: resolve(dir) };
}

export interface SnapshotMeta {
  readonly format: 1;
  /** VcpuBackend.version of the machine that saved it. */
  readonly backend: string;
  readonly memoryBytes: number;
  readonly imageHash: string;
  /** Length of the uncompressed state. */
  readonly stateBytes: number;
}

export function packSnapshot(state: Uint8Array, meta: SnapshotMeta): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify(meta));
  const body = deflateRawSync(state, { level: 1 });
  const out = new Uint8Array(MAGIC.length + 4 + header.length + body.length);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, header.length, true);
  out.set(header, MAGIC.length + 4);
  out.set(body, MAGIC.length + 4 + header.length);
  return out;
}

function isSnapshotMeta(value: unknown): value is SnapshotMeta {
  if (typeof value !== "object" || value === null) return false;
  const meta = value as Record<string, unknown>;
  return (
    meta.format === 1 &&
    typeof meta.backend === "string" &&
    typeof meta.memoryBytes === "number" &&
    typeof meta.imageHash === "string" &&
    typeof meta.stateBytes === "number"
  );
}

export function unpackSnapshot(file: Uint8Array): { meta: SnapshotMeta; state: Uint8Array } {
  const magic = new TextDecoder().decode(file.subarray(0, MAGIC.length));
  if (magic !== MAGIC || file.byteLength < MAGIC.length + 4) throw new Error("not a capvisor snapshot");
  const headerLength = new DataView(file.buffer, file.byteOffset).getUint32(MAGIC.length, true);
  const headerEnd = MAGIC.length + 4 + headerLength;
  const meta: unknown = JSON.parse(new TextDecoder().decode(file.subarray(MAGIC.length + 4, headerEnd)));
  if (!isSnapshotMeta(meta)) throw new Error("capvisor snapshot: bad metadata");
  const state = new Uint8Array(inflateRawSync(file.subarray(headerEnd)));
  if (state.byteLength !== meta.stateBytes) throw new Error("capvisor snapshot: truncated state");
  return { meta, state };
}

export type SnapshotProgress =
  | { readonly phase: "reused"; readonly path: string }
  | { readonly phase: "booting"; readonly elapsedMs: number }
  | { readonly phase: "ready"; readonly elapsedMs: number }
  | { readonly phase: "prompt"; readonly elapsedMs: number }
  | { readonly phase: "saving" }
  | { readonly phase: "saved"; readonly path: string; readonly fileBytes: number };

export interface SnapshotOptions {
  /** Guest RAM (default 128 MiB). */
  readonly memoryBytes?: number;
  /** Where snapshot files go (default: the image's folder). */
  readonly dir?: string;
  /** Cold boot limit (default 180 s: a loaded 2-core machine boots in 6-17 s). */
  readonly timeoutMs?: number;
  /** Progress; describeProgress() turns it into a line for people. */
  readonly onProgress?: (progress: SnapshotProgress) => void;
  readonly backend?: V86BackendOptions;
  /** Guest serial output during the cold boot (for logs). */
  readonly onSerialOutput?: (byte: number) => void;
}

export interface SnapshotInfo {
  readonly path: string;
  /** False when an existing file was reused. */
  readonly created: boolean;
  readonly fileBytes: number;
  /** The backend's saved machine (uncompressed), ready for createV86Backend({ state }). */
  readonly state: Uint8Array;
  /** Only when created: the measured phases, host milliseconds. */
  readonly bootToReadyMs?: number;
  readonly bootToPromptMs?: number;
  readonly saveMs?: number;
}

export function snapshotPath(image: GuestImage, options: SnapshotOptions = {}): string {
  const memoryBytes = options.memoryBytes ?? DEFAULT_GUEST_MEMORY;
  const id = createHash("sha256")
    .update(`${image.hash}\0${v86BackendVersion()}\0${memoryBytes}`)
    .digest("hex")
    .slice(0, 16);
  return join(options.dir ?? image.dir ?? dirname(image.kernel), `snapshot-${id}.bin`);
}

export function describeProgress(progress: SnapshotProgress): string {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  switch (progress.phase) {
    case "reused":
      return `guest snapshot: reusing ${progress.path}`;
    case "booting":
      return `guest snapshot: booting the image (${seconds(progress.elapsedMs)} elapsed)`;
    case "ready":
      return `guest snapshot: user space up after ${seconds(progress.elapsedMs)}`;
    case "prompt":
      return `guest snapshot: shell prompt after ${seconds(progress.elapsedMs)}`;
    case "saving":
      return "guest snapshot: saving";
    case "saved":
      return `guest snapshot: saved ${progress.path} (${(progress.fileBytes / 2 ** 20).toFixed(1)} MiB)`;
  }
}

/** Read a snapshot file made for `image` by this backend version. */
export function readSnapshot(path: string, image: GuestImage): Uint8Array {
  const { meta, state } = unpackSnapshot(readFileSync(path));
  if (meta.imageHash !== image.hash) throw new Error(`${path}: saved from another image`);
  const version = v86BackendVersion();
  if (meta.backend !== version) throw new Error(`${path}: saved by ${meta.backend}, this is ${version}`);
  return state;
}

/**
 * The snapshot of `image` at its shell prompt: reuse the file when it exists, otherwise cold
 * boot the image until it prints GUEST_READY_LINE and then GUEST_PROMPT, let it settle into
 * its idle loop, and save. Several processes may race to make the same file: each writes its
 * own temporary file and renames it into place, so readers only ever see a whole snapshot.
 */
export async function ensureSnapshot(
  image: GuestImage,
  options: SnapshotOptions = {},
): Promise<SnapshotInfo> {
  const report = (progress: SnapshotProgress): void => options.onProgress?.(progress);
  const path = snapshotPath(image, options);
  if (existsSync(path)) {
    report({ phase: "reused", path });
    const fileBytes = statSync(path).size;
    return { path, created: false, fileBytes, state: readSnapshot(path, image) };
  }
  const memoryBytes = options.memoryBytes ?? DEFAULT_GUEST_MEMORY;
  const backend = await createV86Backend(
    {
      kernel: readFileSync(image.kernel),
      initrd: readFileSync(image.initrd),
      cmdline: image.cmdline,
      memoryBytes,
    },
    options.backend,
  );
  try {
    let output = "";
    let readyAt = -1;
    backend.onSerialOutput((byte) => {
      output += String.fromCharCode(byte);
      options.onSerialOutput?.(byte);
    });
    const timeoutMs = options.timeoutMs ?? 180_000;
    const onTick = (elapsedMs: number) => report({ phase: "booting", elapsedMs });
    report({ phase: "booting", elapsedMs: 0 });
    const bootToReadyMs = await driveUntil(
      backend,
      () => {
        readyAt = output.indexOf(GUEST_READY_LINE);
        return readyAt >= 0;
      },
      { timeoutMs, onTick },
    );
    report({ phase: "ready", elapsedMs: bootToReadyMs });
    const afterReady = readyAt + GUEST_READY_LINE.length;
    const promptMs = await driveUntil(backend, () => output.indexOf(GUEST_PROMPT, afterReady) >= 0, {
      timeoutMs: Math.max(1000, timeoutMs - bootToReadyMs),
      onTick: (ms) => onTick(bootToReadyMs + ms),
    });
    const bootToPromptMs = bootToReadyMs + promptMs;
    report({ phase: "prompt", elapsedMs: bootToPromptMs });
    await settle(backend);
    report({ phase: "saving" });
    const saveStart = performance.now();
    const state = backend.saveState();
    const file = packSnapshot(state, {
      format: 1,
      backend: backend.version,
      memoryBytes,
      imageHash: image.hash,
      stateBytes: state.byteLength,
    });
    mkdirSync(dirname(path), { recursive: true });
    const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(temporary, file);
    renameSync(temporary, path);
    const saveMs = performance.now() - saveStart;
    report({ phase: "saved", path, fileBytes: file.byteLength });
    return { path, created: true, fileBytes: file.byteLength, state, bootToReadyMs, bootToPromptMs, saveMs };
  } finally {
    await backend.stop();
  }
}

/** Let a guest that just printed its prompt finish (the shell's terminal queries) and go idle. */
async function settle(backend: VcpuBackend): Promise<void> {
  const start = performance.now();
  while (performance.now() - start < 2000) {
    if (backend.run(20).status !== "preempted") return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

export interface BootedGuest {
  readonly backend: VcpuBackend;
  readonly snapshot: SnapshotInfo;
  /** Host milliseconds to read the snapshot file (unless just made) and make a machine from it. */
  readonly restoreMs: number;
}

/** A machine for `image` at its shell prompt, from its snapshot (made first if need be). */
export async function bootFromSnapshot(
  image: GuestImage,
  options: SnapshotOptions = {},
): Promise<BootedGuest> {
  const start = performance.now();
  const snapshot = await ensureSnapshot(image, options);
  // Restoring is reading and inflating the file (when it was reused) plus making the machine.
  const readMs = snapshot.created ? 0 : performance.now() - start;
  const createStart = performance.now();
  const backend = await createV86Backend({ state: snapshot.state }, options.backend);
  return { backend, snapshot, restoreMs: readMs + performance.now() - createStart };
}
