/**
 * The programs a platform runs and the worker each thread's code lives in: a Wasm PD's
 * (pd-worker.ts) or, for a thread that is not a Wasm PD (a VM's vcpu), the worker its program
 * names. Both speak the channel protocol of channel.ts.
 */
import { type MessagePort, Worker } from "node:worker_threads";
import type { TCB } from "../kernel/structures.js";
import type { Channel, CustomWorkerInit, SetVar, SharedMapping, WorkerInit } from "./channel.js";
import type { DirectCallInit, DirectServerInit } from "./direct-call.js";
import type { HostPriorities, HostSetting } from "./host-priority.js";

/** A PD program: its code and how it sees memory. */
export interface PDProgram {
  name: string;
  wasm: Uint8Array;
  maps: SharedMapping[];
  setvars: SetVar[];
  /**
   * A thread that is not a Wasm PD (a VM's vcpu, src/vmm/vm-worker.ts): the worker script to run
   * instead of pd-worker.js and the data it gets (CustomWorkerInit). It speaks the same channel
   * protocol, so the kernel schedules it like any thread; `wasm`, `maps` and `setvars` are unused.
   */
  /** A server of direct protected calls (direct-call.ts): its shared memory and lock. */
  direct?: DirectServerInit;
  /** The servers it may call directly. */
  directCalls?: DirectCallInit[];
  worker?: {
    url: URL;
    data: unknown;
    transfer?: MessagePort[];
    /**
     * Its code enters the kernel at the fuel checks of the preemption instrumentation, as a Wasm
     * PD's does (a WASI application thread, src/wasmedge/app-thread.ts): within one check of its
     * core's timer deadline, so the platform takes that timer interrupt at the deadline
     * (wasm-platform.ts, K_PREEMPT). Other workers (a VM's vcpu) are charged until they come in.
     */
    fuelChecks?: boolean;
    /** Called when the worker fails (an uncaught error, V8 out of memory): it runs no more. */
    onError?: (e: Error) => void;
  };
}

export type ThreadPhase = "loading" | "waiting" | "pending" | "running" | "dead";

export interface PDThread {
  tcb: TCB;
  program: PDProgram;
  entry: number;
  ch: Channel;
  worker: Worker;
  phase: ThreadPhase;
  started: boolean;
  core: number;
  /** Kind of the last request, and the thread's pc when it made it. */
  lastKind: number;
  pcBefore: number;
  /** The host priority last given to its thread. */
  host: HostSetting;
}

export interface PlatformOptions {
  /** Loop iterations between preemption checks (default 20,000). */
  fuel?: number;
  /** Each complete line a PD prints (seL4_DebugPutChar / microkit_dbg_puts). */
  onLine?: (pd: string, line: string) => void;
  /** Something worth telling the user: a trap, a PD that could not load. */
  onEvent?: (pd: string, message: string) => void;
  /**
   * Measurement probe (bench/ipc.ts, bench/rt.ts, bench/compute.ts): called when a PD thread's
   * syscall request reaches the kernel, just before the kernel handles it, with the syscall
   * number and the shared host clock (`clockNs()`, ns). Costs one clock read when set; nothing
   * when not. The time is when the main thread saw the request, not when the PD issued it.
   * `resumedNs` is when the thread's worker last resumed before making this request (its code
   * started running again after its previous kernel entry; `Channel.resumedAt`).
   */
  onSyscall?: (pd: string, sysno: number, ns: number, resumedNs: number) => void;
  /**
   * Probe: called when the platform takes an interrupt raised through an interrupt source, with
   * the host clock and whether it coalesced with one still pending (seL4 keeps one bit a line).
   */
  onInterrupt?: (line: number, ns: number, coalesced: boolean) => void;
  /**
   * Give each PD thread's host thread a host priority from its seL4 priority, and the kernel's
   * thread a higher one, when the host allows (default true: nice values; "realtime": SCHED_FIFO
   * for the kernel and priorities from 128 up; false: nothing). See host-priority.ts.
   */
  hostPriorities?: HostPriorities;
}

/** Start the worker that runs `program` for one thread, over control block `ch`. */
export function startThreadWorker(
  program: PDProgram,
  ch: Channel,
  bell: SharedArrayBuffer,
  fuel: number,
): Worker {
  if (program.worker !== undefined) {
    const init: CustomWorkerInit = { name: program.name, sab: ch.sab, bell, data: program.worker.data };
    return new Worker(program.worker.url, { workerData: init, transferList: program.worker.transfer ?? [] });
  }
  const init: WorkerInit = {
    name: program.name,
    wasm: program.wasm,
    sab: ch.sab,
    bell,
    maps: program.maps,
    setvars: program.setvars,
    fuel,
    ...(program.direct ? { direct: program.direct } : {}),
    ...(program.directCalls ? { directCalls: program.directCalls } : {}),
  };
  return new Worker(new URL("./pd-worker.js", import.meta.url), { workerData: init });
}

/** What a device model needs to raise interrupts from another thread (see raiseFromSource). */
export interface InterruptSource {
  irqs: SharedArrayBuffer;
  bell: SharedArrayBuffer;
}

/** Raise `line` from any thread: set its bit, then ring the platform's doorbell. */
export function raiseFromSource(source: InterruptSource, line: number): void {
  Atomics.or(new Int32Array(source.irqs), line >>> 5, 1 << (line & 31));
  const bell = new Int32Array(source.bell);
  Atomics.add(bell, 0, 1);
  Atomics.notify(bell, 0);
}
