/**
 * The worker of a VM's vcpu thread: the guest under the VCPU backend, run only while the kernel
 * has the thread on a core. It speaks the platform's channel protocol (platform/channel.ts) like
 * a Wasm PD's worker: it waits in Atomics.wait while the thread is not running, runs the guest in
 * short slices while it is, and enters the kernel
 * - when the platform asks it to (PREEMPT) or its core's timer deadline passes (K_PREEMPT),
 * - when the channel device has something for the other end (K_VMFAULT at the doorbell: the VMM
 *   notifies the channel and replies, and the guest continues),
 * - when the guest kernel panics (K_TRAP GUEST_PANIC: the VMM restarts the VM, and the kernel
 *   starts this thread at its entry again, which restores the snapshot).
 * The device model and the serial port are the VMM's (they live in its worker with the backend);
 * console bytes go to the VMM PD over a MessagePort.
 */
import { receiveMessageOnPort, workerData } from "node:worker_threads";
import {
  type CustomWorkerInit,
  clockNs,
  K_PREEMPT,
  K_READY,
  K_TRAP,
  K_VMFAULT,
  R_START,
  ThreadSide,
} from "../platform/channel.js";
import { RingRegion } from "../platform/ring.js";
import { ChannelDevice, PORT_BASE, PORT_LAST } from "./channel-device.js";
import { describeProgress, ensureSnapshot, readSnapshot, type SnapshotProgress } from "./snapshot.js";
import { createV86Backend } from "./v86-backend.js";
import type { VcpuBackend } from "./vcpu-backend.js";
import {
  BACKEND_FAILED,
  CONTROL_KICK,
  DOORBELL_ADDR,
  GUEST_PANIC,
  type VmCommand,
  type VmMessage,
  type VmWorkerData,
} from "./vm-types.js";

const init = workerData as CustomWorkerInit;
const data = init.data as VmWorkerData;
const side = new ThreadSide(init);
const { ch } = side;
const control = new Int32Array(data.control);

/** Longest slice of guest execution between two looks at the kernel's flags (ms). */
const SLICE_MS = 2;
/** Longest sleep of a halted guest before looking again (ms). */
const IDLE_MS = 2;
/** Printed by Linux when a panic is complete ("---[ end Kernel panic - not syncing: ..."). */
const PANIC_MARK = "end Kernel panic";

function post(m: VmMessage): void {
  data.port.postMessage(m);
}

/** Post a request and block until the kernel resumes this thread; returns the response. */
function request(kind: number, arg: number, pollMs = 0): number {
  return side.request(kind, arg, pollMs);
}

function loadError(message: string): never {
  post({ type: "error", message });
  side.loadFailed();
  // Let the message reach the VMM before the worker goes.
  setTimeout(() => process.exit(1), 100);
  throw new Error(message);
}

/** Progress of a first boot, for the user (it takes 10-20 s; later boots restore the snapshot). */
function progress(p: SnapshotProgress): void {
  if (p.phase !== "reused") post({ type: "progress", message: describeProgress(p) });
}

/** The snapshot file: read again at each restart rather than kept (45 MiB) for the VM's life. */
let snapshotPath: string;
let backend: VcpuBackend;
try {
  const info = await ensureSnapshot(data.image, {
    memoryBytes: data.memoryBytes,
    dir: data.snapshotDir,
    onProgress: progress,
  });
  snapshotPath = info.path;
  backend = await createV86Backend({ state: info.state });
} catch (e) {
  loadError(`cannot start the guest: ${(e as Error).message}`);
}

// Console output: batched per slice, scanned for a panic.
let out: number[] = [];
let tail = "";
let panicked = false;
backend.onSerialOutput((b) => {
  out.push(b);
});
function flushConsole(): void {
  if (out.length === 0) return;
  const bytes = Uint8Array.from(out);
  out = [];
  tail = (tail + Buffer.from(bytes).toString("latin1")).slice(-256);
  if (tail.includes(PANIC_MARK)) panicked = true;
  post({ type: "console", bytes });
}
function takeInput(): void {
  for (;;) {
    const m = receiveMessageOnPort(data.port) as { message: VmCommand } | undefined;
    if (m === undefined) return;
    if (m.message.type === "input") backend.sendSerial(m.message.bytes);
  }
}

let device: ChannelDevice | null = null;
function attachDevice(): void {
  if (data.ring === null) return;
  device = new ChannelDevice(new RingRegion(data.ring));
  const d = device;
  backend.registerPorts(PORT_BASE, PORT_LAST - PORT_BASE + 1, {
    in8: (p) => d.in8(p),
    in32: (p) => d.in32(p),
    out8: (p, v) => d.out8(p, v),
    out32: (p, v) => d.out32(p, v),
  });
}
attachDevice();

/** Start (or restart) the guest from the snapshot. */
function restart(): void {
  const t0 = performance.now();
  // A restarted guest's processes are gone: the old device's jobs are cancelled.
  device?.reset();
  backend.restoreState(readSnapshot(snapshotPath, data.image));
  out = [];
  tail = "";
  panicked = false;
  post({ type: "ready", restoredMs: performance.now() - t0, fromSnapshot: true });
}

/**
 * Run the guest until the kernel must be entered; returns that entry's response. Between slices
 * it returns to the event loop now and then, so that v86's compiled code is installed.
 */
async function runUntilEntry(): Promise<number> {
  let sinceYield = performance.now();
  for (;;) {
    const poll = side.preemptDue();
    if (poll !== null) return request(K_PREEMPT, 0, poll);
    takeInput();
    if (device?.pump().notify === true) {
      flushConsole();
      return request(K_VMFAULT, DOORBELL_ADDR);
    }
    const leftMs = (ch.deadline[0]! - clockNs()) / 1e6;
    const r = backend.run(Math.max(0.1, Math.min(SLICE_MS, leftMs)));
    flushConsole();
    if (panicked) return request(K_TRAP, GUEST_PANIC);
    if (r.status !== "preempted") {
      // A halted guest waits for its timer, for console input or for the channel (a kick).
      const kick = Atomics.load(control, CONTROL_KICK);
      const ms = Math.max(0, Math.min(r.wakeInMs, IDLE_MS, (ch.deadline[0]! - clockNs()) / 1e6));
      if (ms > 0) Atomics.wait(control, CONTROL_KICK, kick, ms);
    }
    if (performance.now() - sinceYield > 10) {
      await new Promise<void>((r) => setImmediate(r));
      sinceYield = performance.now();
    }
  }
}

let fresh = true;
let response = request(K_READY, 0);
for (;;) {
  try {
    if (response === R_START) {
      if (fresh) post({ type: "ready", restoredMs: 0, fromSnapshot: true });
      else restart();
      fresh = false;
    }
    response = await runUntilEntry();
  } catch (e) {
    post({ type: "error", message: `the VCPU backend failed: ${(e as Error).message}` });
    response = request(K_TRAP, BACKEND_FAILED);
  }
}
