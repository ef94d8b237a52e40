/**
 * A runtime PD's applications as kernel threads (issue 4: "preempted like every PD").
 *
 * Every application a runtime PD runs, one of its `capvisor:apps` or a job a Linux guest sends
 * over the cross-VM channel, runs in an application thread: a TCB with a scheduling context of
 * its own, built by the root task with the runtime PD's other objects (buildAppThreads), whose
 * code is app-thread.ts's worker. The kernel schedules it like any PD thread: it runs only while
 * the kernel has it on a core, its fuel checks give the core back at the kernel's word, and a
 * request to its services blocks it in the kernel.
 *
 * Each application thread has
 * - the runtime PD's budget and period on the runtime PD's core, one priority below it (so the
 *   runtime PD, which serves the applications' requests, is never kept waiting by one of them
 *   that spins; as Microkit gives each PD its own scheduling context, each application thread has
 *   its own: N applications that spin get N budgets, not one shared);
 * - its own CNode holding one capability, Read on its own notification (slot INPUT_CAP), and its
 *   own VSpace with its IPC buffer and its request channel, a page it shares with the runtime PD
 *   (APP_CHANNEL_VADDR; the runtime PD sees thread i's at RUNTIME_APP_CHANNELS_VADDR + i pages):
 *   it reaches its services only through that channel, served by the runtime PD;
 * - no fault handler; between applications it waits in seL4_Wait on its notification.
 * The runtime PD holds each application thread's TCB (to start it at its entry for each
 * application) and Write on its notification (to wake it when an answer is there), in slots
 * APP_TCB_BASE + i and APP_NTFN_BASE + i.
 *
 * How a run goes (AppThreadPool.run): the main thread posts the job on the thread's port and asks
 * the runtime PD to start the thread, the first time, or to signal its notification (the runtime
 * PD's program makes those syscalls, since only a thread the kernel runs can make one); when a
 * service answers, the channel's server asks the runtime PD to signal the thread's notification;
 * when the application ends, the worker posts its result and waits for the next job.
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
import { ObjectType, PAGE_BITS } from "../kernel/types.js";
import {
  type Sel4Gen,
  seL4_AllRights,
  seL4_ARM_Default_VMAttributes,
  seL4_CanRead,
  seL4_CanWrite,
  seL4_CapInitThreadASIDPool,
  seL4_CapInitThreadCNode,
} from "../pd/libsel4.js";
import { seL4_ARM_ASIDPool_Assign, seL4_CNode_Mint } from "../pd/libsel4-invocations.js";
import type { ThreadContext } from "../pd/machine.js";
import type { PDProgram } from "../platform/programs.js";
import { check, cnodeCapData, INPUT_CAP, type LoadedPD, type LoadedSystem } from "../system/loader.js";
import {
  type AppJob,
  type AppThreadData,
  CANCEL,
  CONTROL_WORDS,
  cancelledRun,
  POSTED,
  type RunServices,
  stdioService,
  TRAP_EXIT_CODE,
} from "./appworker.js";
import { configureRuntimeThread, shareFrame } from "./runtime-thread.js";
import { createChannelBuffer, serveChannel } from "./service.js";
import type { RunOptions, RunResult } from "./types.js";

/** The runtime PD's slots of its application threads' TCBs and notifications. */
export const APP_TCB_BASE = 384;
export const APP_NTFN_BASE = 448;
/** At most this many application threads per runtime PD (the slots above). */
export const MAX_APP_THREADS = 64;
/** Where an application thread sees its request channel, and where its runtime PD sees thread i's (+ i pages). */
export const APP_CHANNEL_VADDR = 0x2_0000_0000;
export const RUNTIME_APP_CHANNELS_VADDR = 0x2_0100_0000;
/** An application thread's CNode: 4 slots, of which INPUT_CAP holds its notification. */
const APP_CNODE_BITS = 2;

/** One application thread's kernel objects, as built. */
export interface BuiltAppThread {
  name: string;
  tcb: TCB;
  /** Its TCB cap in the root task's CNode. */
  tcbCap: number;
}

/**
 * Builds `names.length` application threads for runtime PD `rt` (root task, after its servers):
 * see the top of this file for what each holds. None is started.
 */
export function* buildAppThreads(
  u: ThreadContext,
  k: Kernel,
  loaded: LoadedSystem,
  rt: LoadedPD,
  names: readonly string[],
): Sel4Gen<BuiltAppThread[]> {
  const a = loaded.alloc;
  const out: BuiltAppThread[] = [];
  for (const [i, name] of names.entries()) {
    const mint = function* (dst: number, slot: number, src: number, rights: number, badge: number) {
      check(
        `placing a capability in slot ${slot}`,
        name,
        yield* seL4_CNode_Mint(u, dst, slot, 64, seL4_CapInitThreadCNode, src, 64, rights, badge),
      );
    };
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const rawCNode = yield* a.alloc(u, ObjectType.CapTable, APP_CNODE_BITS);
    const cnode = a.slot();
    yield* mint(
      seL4_CapInitThreadCNode,
      cnode,
      rawCNode,
      seL4_AllRights,
      cnodeCapData(0, 64 - APP_CNODE_BITS),
    );
    const vspace = yield* a.alloc(u, ObjectType.VSpace);
    check("ASIDPool_Assign", name, yield* seL4_ARM_ASIDPool_Assign(u, seL4_CapInitThreadASIDPool, vspace));
    const tcb = yield* a.alloc(u, ObjectType.TCB);
    const sc = yield* a.alloc(u, ObjectType.SchedContext);
    // Its request channel (service.ts): a page mapped into both VSpaces, which is what the
    // channel is, shared memory between the application thread and the runtime PD (so that
    // `capvisor verify` sees the information flow both ways).
    const channel = yield* a.alloc(u, ObjectType.SmallPage);
    yield* shareFrame(
      u,
      a,
      channel,
      "an application thread's request channel",
      seL4_ARM_Default_VMAttributes,
      [
        [vspace, APP_CHANNEL_VADDR, name],
        [rt.vspaceCap, RUNTIME_APP_CHANNELS_VADDR + i * (1 << PAGE_BITS), rt.pd.name],
      ],
    );
    yield* mint(cnode, INPUT_CAP, ntfn, seL4_CanRead, 0);
    yield* mint(rt.cnodeCap, APP_NTFN_BASE + i, ntfn, seL4_CanWrite, 1);
    yield* mint(rt.cnodeCap, APP_TCB_BASE + i, tcb, seL4_AllRights, 0);
    yield* configureRuntimeThread(
      u,
      a,
      rt,
      name,
      { tcb, sc, cnode, vspace },
      Math.max(0, rt.pd.priority - 1),
    );
    out.push({ name, tcb: k.rootCNode.slot(tcb).cap.obj as TCB, tcbCap: tcb });
  }
  return out;
}

/** The worker program of an application thread, and the main thread's end of its port. */
export function appThreadProgram(name: string): {
  program: PDProgram;
  port: MessagePort;
  control: Int32Array;
  /** Set by the pool: what to do when the worker fails. */
  failed: { handler: (e: Error) => void };
} {
  const { port1, port2 } = new MessageChannel();
  const control = new SharedArrayBuffer(4 * CONTROL_WORDS);
  const data: AppThreadData = { port: port2, control, ntfnSlot: INPUT_CAP };
  const failed = { handler: (_e: Error) => {} };
  return {
    program: {
      name,
      wasm: new Uint8Array(0),
      maps: [],
      setvars: [],
      worker: {
        url: new URL("./app-thread.js", import.meta.url),
        data,
        transfer: [port2],
        fuelChecks: true,
        onError: (e) => failed.handler(e),
      },
    },
    port: port1,
    control: new Int32Array(control),
    failed,
  };
}

/** What the pool asks of the runtime PD's thread: the syscalls it makes for an application thread. */
export interface AppThreadOps {
  /** Start thread `i` at its entry (TCB_WriteRegisters with resume). */
  start(i: number): void;
  /** Signal thread `i`'s notification. */
  signal(i: number): void;
}

interface PoolThread {
  index: number;
  port: MessagePort;
  control: Int32Array;
  busy: boolean;
  /** Started by the runtime PD: later jobs only signal it. */
  started: boolean;
  /** Called with the result of its current run. */
  done: ((r: RunResult) => void) | null;
}

/**
 * A runtime PD's application threads as runWasi uses them (RunExtras.appThread): `runner(which)`
 * runs each job on the first free thread among `which`, waiting for one when all are busy.
 */
export class AppThreadPool {
  private readonly threads: PoolThread[];
  /** Runs waiting for a thread, each with the threads it may take. */
  private readonly waiting: { which: readonly number[]; take: (t: PoolThread) => void }[] = [];

  constructor(
    threads: readonly { port: MessagePort; control: Int32Array; failed?: { handler: (e: Error) => void } }[],
    private readonly ops: AppThreadOps,
  ) {
    this.threads = threads.map(
      (t, index): PoolThread => ({
        index,
        port: t.port,
        control: t.control,
        busy: false,
        started: false,
        done: null,
      }),
    );
    for (const [i, t] of this.threads.entries()) {
      // A worker that failed runs nothing more: its run ends with the error, and the thread stays
      // busy for good (later runs take the others).
      const failed = threads[i]!.failed;
      if (failed !== undefined)
        failed.handler = (e) => {
          const done = t.done;
          t.done = null;
          t.busy = true;
          t.port.unref();
          done?.({
            exitCode: TRAP_EXIT_CODE,
            trap: { kind: "HostError", message: `application thread failed: ${e.message}` },
            stats: { totalNs: 0, hostNs: 0 },
          });
        };
      t.port.on("message", (r: RunResult) => {
        const done = t.done;
        t.done = null;
        t.busy = false;
        t.port.unref();
        done?.(r);
        this.handOn(t);
      });
      t.port.unref();
    }
  }

  /** Runs on the threads numbered `which` (indices into the built threads). */
  runner(which: readonly number[]): AppThreadRunner {
    return {
      run: async (spec, services, out) => {
        const t = await this.take(which);
        return this.run(t, spec, services, out);
      },
    };
  }

  private take(which: readonly number[]): Promise<PoolThread> {
    for (const i of which) {
      const t = this.threads[i]!;
      if (!t.busy) {
        t.busy = true;
        return Promise.resolve(t);
      }
    }
    return new Promise((take) => this.waiting.push({ which, take }));
  }

  /** Thread `t` became free: give it to the first run waiting for it. */
  private handOn(t: PoolThread): void {
    const w = this.waiting.findIndex((x) => x.which.includes(t.index));
    if (w < 0) return;
    const { take } = this.waiting.splice(w, 1)[0]!;
    t.busy = true;
    take(t);
  }

  private run(
    t: PoolThread,
    spec: Omit<AppJob, "sab">,
    services: RunServices,
    out: Pick<RunOptions, "stdout" | "stderr"> & { signal?: AbortSignal },
  ): Promise<RunResult> {
    const sab = createChannelBuffer();
    const server = serveChannel(sab, { ...services, stdio: stdioService(out) }, () =>
      this.ops.signal(t.index),
    );
    Atomics.store(t.control, CANCEL, 0);
    return new Promise<RunResult>((resolve) => {
      let settled = false;
      const settle = (r: RunResult) => {
        if (settled) return;
        settled = true;
        out.signal?.removeEventListener("abort", onAbort);
        resolve(r);
      };
      // Cancelling: the application stops at its next fuel check or, blocked on a service, when
      // woken; the thread is free again once its worker has reported.
      const onAbort = () => {
        Atomics.store(t.control, CANCEL, 1);
        this.ops.signal(t.index);
        settle(cancelledRun(out, 0));
      };
      t.done = (r) => {
        server.close();
        settle(r);
      };
      t.port.ref();
      t.port.postMessage({ ...spec, sab, preemptible: true } satisfies AppJob);
      Atomics.add(t.control, POSTED, 1);
      Atomics.notify(t.control, POSTED);
      if (out.signal?.aborted) onAbort();
      else out.signal?.addEventListener("abort", onAbort, { once: true });
      // The first job starts the thread; it then waits in the kernel between jobs (app-thread.ts).
      if (t.started) this.ops.signal(t.index);
      else {
        t.started = true;
        this.ops.start(t.index);
      }
    });
  }
}

/** Runs one job on an application thread (runner.ts, RunExtras.appThread). */
export interface AppThreadRunner {
  run(
    spec: Omit<AppJob, "sab">,
    services: RunServices,
    out: Pick<RunOptions, "stdout" | "stderr"> & { signal?: AbortSignal },
  ): Promise<RunResult>;
}
