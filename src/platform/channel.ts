/**
 * The shared control block between the kernel (main thread) and one PD thread's worker: a
 * SharedArrayBuffer holding a small state machine, the AArch64 syscall registers x0..x8 and a
 * copy of the IPC buffer. The worker blocks in Atomics.wait while its thread is not running
 * (blocked in the kernel, preempted, or not yet started), exactly when an seL4 thread is not
 * on a core. See docs/wasm-abi.md for the PD side of the ABI.
 */
import { IPC_BUFFER_WORDS } from "../kernel/types.js";
import type { DirectCallInit, DirectServerInit } from "./direct-call.js";
import { hostThreadId } from "./host-priority.js";

export type { DirectCallInit, DirectServerInit };

/** Indices in the Int32 control words. */
export const STATE = 0;
export const KIND = 1;
export const ARG = 2;
/** Set by the kernel side to make a running worker come in at its next preemption check. */
export const PREEMPT = 3;
/** How the kernel resumes the worker (RESUME_*). */
export const RESPONSE = 4;
/** The worker's host thread id (Linux tid), written by the worker at start; 0 when unknown. */
export const TID = 5;

/** STATE values: the worker runs; it made a request; the kernel resumed it. */
export const S_RUNNING = 0;
export const S_REQUEST = 1;
export const S_RESUMED = 2;

/** KIND of a request. */
export const K_SYSCALL = 1;
export const K_PREEMPT = 2;
export const K_TRAP = 3;
export const K_EXIT = 4;
/** The worker is loaded and waits to be started. */
export const K_READY = 5;
/** The module could not be instantiated (ARG: 0); the message is posted separately. */
export const K_LOAD_ERROR = 6;
/**
 * A VM thread's exit to its VMM (src/vmm/vm-worker.ts): a VM fault at address ARG (seL4 delivers
 * a guest's access to an unmapped device page as a VMFault to the VMM's fault endpoint, as
 * libvmm's virtio devices rely on). The thread restarts where it was once the VMM replies.
 */
export const K_VMFAULT = 7;

/** RESPONSE values. */
export const R_CONTINUE = 0;
/** The kernel rewound the syscall (seL4 Restart): execute it again. */
export const R_RESTART = 1;
/** Start (or restart) the program at its entry point (capvisor_start). */
export const R_START = 2;
/** Stop the worker for good. */
export const R_TERMINATE = 3;

const CTL_BYTES = 64;
const REGS_OFFSET = CTL_BYTES;
export const REG_WORDS = 9;
const IPC_OFFSET = REGS_OFFSET + 2 * 4 * REG_WORDS + 8;
const DEADLINE_OFFSET = IPC_OFFSET + 8 * IPC_BUFFER_WORDS;
/** Two Float64 words: the deadline, then when the worker last resumed (see Channel.resumedAt). */
export const CHANNEL_BYTES = DEADLINE_OFFSET + 16;

export class Channel {
  readonly ctl: Int32Array;
  /** x0..x8 as lo/hi halves. */
  readonly regs: Uint32Array;
  /** The IPC buffer, 128 words as lo/hi halves. */
  readonly ipc: Uint32Array;
  /** Nanoseconds on the shared clock (performance.timeOrigin based) at which the thread must enter the kernel. */
  readonly deadline: Float64Array;
  /**
   * resumedAt[0]: when the worker last came back from waiting for the kernel (clockNs), written
   * by the worker as its code is about to continue: the moment a thread is "running again" for a
   * latency measurement, as a cyclictest thread's return from clock_nanosleep is.
   */
  readonly resumedAt: Float64Array;
  constructor(readonly sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, CTL_BYTES / 4);
    this.regs = new Uint32Array(sab, REGS_OFFSET, 2 * REG_WORDS);
    this.ipc = new Uint32Array(sab, IPC_OFFSET, 2 * IPC_BUFFER_WORDS);
    this.deadline = new Float64Array(sab, DEADLINE_OFFSET, 1);
    this.resumedAt = new Float64Array(sab, DEADLINE_OFFSET + 8, 1);
  }
  static create(): Channel {
    return new Channel(new SharedArrayBuffer(CHANNEL_BYTES));
  }
}

/**
 * How long a worker that came in for its own core's timer deadline (a budget's end, a timeslice)
 * polls for its resume before it sleeps (ms). Most such entries resume the same thread at once,
 * and a worker that sleeps through the handoff lets its host CPU go idle: on a VM without guest
 * halt polling (this machine: haltpoll.guest_halt_poll_ns=0), waking an idle vCPU again can take
 * hundreds of µs, and the next interrupt waits for it. Measured with bench:rt's system (two
 * spinners with Microkit's 1 ms timeslice, 8,000 ticks at 1 ms), three rounds alternated: p99 with
 * nice values 2.9/1.6/2.3 ms without polling, 1.9/1.3/1.6 ms with 0.2 ms (0.5 ms: no better);
 * ticks lost 263/145/192 against 180/90/129.
 */
export const DEADLINE_POLL_MS = 0.2;

/** Spin until the kernel side resumes the thread or performance.now() reaches `until` (ms). */
function pollResume(ctl: Int32Array, until: number): void {
  for (;;) {
    for (let i = 0; i < 256; i++) if (Atomics.load(ctl, STATE) === S_RESUMED) return;
    if (performance.now() >= until) return;
  }
}

/**
 * The worker's side of a kernel entry: post a request (K_*) with its argument, ring the
 * platform's doorbell, poll for the resume for `pollMs` (see DEADLINE_POLL_MS), then block until
 * the kernel side resumes the thread; returns how (R_*).
 */
export function postRequest(ch: Channel, bell: Int32Array, kind: number, arg: number, pollMs = 0): number {
  const ctl = ch.ctl;
  ctl[KIND] = kind;
  ctl[ARG] = arg;
  Atomics.store(ctl, STATE, S_REQUEST);
  Atomics.add(bell, 0, 1);
  Atomics.notify(bell, 0);
  if (pollMs > 0) pollResume(ctl, performance.now() + pollMs);
  for (;;) {
    const s = Atomics.load(ctl, STATE);
    if (s === S_RESUMED) break;
    Atomics.wait(ctl, STATE, s);
  }
  ch.resumedAt[0] = clockNs();
  const response = ctl[RESPONSE]!;
  Atomics.store(ctl, STATE, S_RUNNING);
  return response;
}

/**
 * A worker's side of its thread's channel (pd-worker.ts, a VM's vcpu, a WASI application thread):
 * it records its host thread id for the platform, enters the kernel and reports a failed load.
 */
export class ThreadSide {
  readonly ch: Channel;
  readonly ctl: Int32Array;
  readonly bell: Int32Array;
  constructor(init: { sab: SharedArrayBuffer; bell: SharedArrayBuffer }) {
    this.ch = new Channel(init.sab);
    this.ctl = this.ch.ctl;
    this.ctl[TID] = hostThreadId();
    this.bell = new Int32Array(init.bell);
  }

  /** Enter the kernel (postRequest) and return how it resumed the thread; R_TERMINATE ends the worker. */
  request(kind: number, arg: number, pollMs = 0): number {
    const response = postRequest(this.ch, this.bell, kind, arg, pollMs);
    if (response === R_TERMINATE) process.exit(0);
    return response;
  }

  /**
   * At a preemption point: whether the thread must enter the kernel (K_PREEMPT), because the
   * kernel asked for its core (PREEMPT) or its core's timer deadline has passed. Returns null when
   * it may go on, else how long to poll for the resume: DEADLINE_POLL_MS for its own deadline,
   * after which the kernel usually resumes it; 0 when the kernel asked, as another thread takes
   * the core then.
   */
  preemptDue(): number | null {
    const asked = Atomics.load(this.ctl, PREEMPT) !== 0;
    if (!asked && clockNs() < this.ch.deadline[0]!) return null;
    Atomics.store(this.ctl, PREEMPT, 0);
    return asked ? 0 : DEADLINE_POLL_MS;
  }

  /** Tell the kernel side that the thread's program could not be loaded (K_LOAD_ERROR). */
  loadFailed(): void {
    this.ctl[KIND] = K_LOAD_ERROR;
    Atomics.store(this.ctl, STATE, S_REQUEST);
    Atomics.add(this.bell, 0, 1);
    Atomics.notify(this.bell, 0);
  }
}

/**
 * The platform's doorbell is two Int32 words: BELL_RING, which every worker adds 1 to (and
 * notifies) after posting a request, and BELL_EVENT_LOOP, set by a worker that posted work for
 * a host service served by the main thread's event loop (a WASI application thread's file or
 * stdout request, src/wasmedge/app-thread.ts): the kernel's pump then returns to the event loop
 * at once instead of at the end of its slice.
 */
export const BELL_RING = 0;
export const BELL_EVENT_LOOP = 1;
export const BELL_BYTES = 8;

/** From a worker: ask the main thread's event loop to run now (see BELL_EVENT_LOOP). */
export function askEventLoop(bell: Int32Array): void {
  Atomics.store(bell, BELL_EVENT_LOOP, 1);
  Atomics.add(bell, BELL_RING, 1);
  Atomics.notify(bell, BELL_RING);
}

/** Nanoseconds on a clock shared by all threads of the process. */
export function clockNs(): number {
  return (performance.timeOrigin + performance.now()) * 1e6;
}

/** A memory region shared by several PDs: one backing buffer, mapped at a vaddr in each. */
export interface SharedMapping {
  backing: SharedArrayBuffer;
  /**
   * One Int32 lock per region, shared by all its mappings: a PD publishes its changes and reads
   * the region under it, so another PD sees all of one kernel entry's changes or none of them.
   */
  lock: SharedArrayBuffer;
  vaddr: number;
  size: number;
  writable: boolean;
}

/**
 * Take a shared region's lock (SharedMapping.lock, an Int32 at 0): PD workers publish and read
 * their copies under it (pd-worker.ts), and devices write their register pages under it
 * (timer-device.ts), so that a reader sees all of one writer's changes or none of them.
 */
export function lockRegion(l: Int32Array): void {
  while (Atomics.compareExchange(l, 0, 0, 1) !== 0) Atomics.wait(l, 0, 1);
}
export function unlockRegion(l: Int32Array): void {
  Atomics.store(l, 0, 0);
  Atomics.notify(l, 0, 1);
}

/**
 * A variable of the PD's program to patch before it starts (Microkit's setvar, libmicrokit's
 * name and channel masks): the module exports a global whose value is the variable's address
 * in linear memory; `bytes` are written there. A missing optional symbol is skipped.
 */
export interface SetVar {
  symbol: string;
  bytes: Uint8Array;
  optional: boolean;
}

/** A 32-bit (wasm32 uintptr_t) or 64-bit little-endian value as setvar bytes. */
export function leBytes(value: number | bigint, size: 4 | 8): Uint8Array {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  if (size === 4) v.setUint32(0, Number(value) >>> 0, true);
  else v.setBigUint64(0, BigInt.asUintN(64, BigInt(value)), true);
  return b;
}

/**
 * What the kernel side gives a thread's worker that runs something other than a Wasm PD (a VM's
 * vcpu): the control block and doorbell, plus the data its program registered.
 */
export interface CustomWorkerInit {
  name: string;
  sab: SharedArrayBuffer;
  bell: SharedArrayBuffer;
  data: unknown;
}

/** What the kernel side gives a PD worker at start. */
export interface WorkerInit {
  name: string;
  wasm: Uint8Array;
  sab: SharedArrayBuffer;
  /** The platform's doorbell (one Int32), rung after every request. */
  bell: SharedArrayBuffer;
  maps: SharedMapping[];
  /** Variables to patch before the program starts (see SetVar). */
  setvars: SetVar[];
  fuel: number;
  /** This PD is a server of direct protected calls: its shared memory and lock (direct-call.ts). */
  direct?: DirectServerInit;
  /** The servers this PD may call directly (direct-call.ts). */
  directCalls?: DirectCallInit[];
}
