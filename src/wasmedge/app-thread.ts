/**
 * The worker of an application thread: a kernel thread of a runtime PD (app-threads.ts) whose
 * code is one WASI application at a time. It speaks the platform's channel protocol
 * (platform/channel.ts) like a Wasm PD's worker, so the kernel schedules it like any thread:
 * - it runs only while the kernel has its thread on a core, and its module carries the fuel
 *   checks of the preemption instrumentation, where it enters the kernel when the platform asks
 *   (PREEMPT) or its core's timer deadline passed (budget end, a higher priority released);
 * - a request to its services (files, sockets, stdio: the channel of service.ts) blocks the
 *   thread in the kernel, in seL4_Wait on its own notification, which its runtime PD signals once
 *   the answer is there; so its core goes to other threads while it waits;
 * - when its application has finished it posts the result on its port and waits, in seL4_Wait on
 *   its notification, for the next one: the runtime PD starts the thread for its first application
 *   (TCB_WriteRegisters) and signals it for each later one. (Exiting instead, a fault that leaves
 *   the thread Inactive until restarted, raced: the result could reach the pool, and a new job
 *   restart the thread, before the kernel took the exit, which then stopped the new job.)
 */
import { receiveMessageOnPort, workerData } from "node:worker_threads";
import { Syscall } from "../kernel/types.js";
import {
  askEventLoop,
  type CustomWorkerInit,
  K_EXIT,
  K_PREEMPT,
  K_READY,
  K_SYSCALL,
  R_RESTART,
  R_START,
  ThreadSide,
} from "../platform/channel.js";
import {
  type AppJob,
  type AppThreadData,
  CANCEL,
  execute,
  type KernelThreadHooks,
  LimitAbort,
  POSTED,
  TRAP_EXIT_CODE,
  trapOf,
} from "./appworker.js";
import type { RunResult } from "./types.js";

const init = workerData as CustomWorkerInit;
const data = init.data as AppThreadData;
const side = new ThreadSide(init);
const { ch, bell } = side;
const control = new Int32Array(data.control);

/** The kernel started the thread at its entry again in the middle of a job. */
class Restarted extends Error {}

/** Enter the kernel and block until it resumes this thread; returns how. */
function enter(kind: number, arg: number, pollMs = 0): number {
  const response = side.request(kind, arg, pollMs);
  if (response === R_START && kind !== K_EXIT && kind !== K_READY) {
    throw new Restarted("the application thread was restarted");
  }
  return response;
}

/** seL4_Wait on the thread's notification (x0: the cap; the badge comes back in x0). */
function waitOnNotification(): void {
  for (;;) {
    ch.regs.fill(0);
    ch.regs[0] = data.ntfnSlot;
    if (enter(K_SYSCALL, Syscall.Wait) !== R_RESTART) return;
  }
}

const cancelled = () => Atomics.load(control, CANCEL) !== 0;

const hooks: KernelThreadHooks = {
  block(svc, state) {
    // The request is served by the main thread's event loop: ask for it before blocking.
    askEventLoop(bell);
    while (Atomics.load(svc, 0) === state) {
      if (cancelled()) throw new LimitAbort("Interrupted", "cancelled");
      waitOnNotification();
    }
  },
  preempt() {
    const poll = side.preemptDue();
    if (poll !== null) enter(K_PREEMPT, 0, poll);
  },
  cancelled,
};

/** Jobs taken so far (control[POSTED] counts those posted). */
let taken = 0;

/**
 * The next job. Between jobs the thread waits in the kernel, in seL4_Wait on its notification,
 * which the runtime PD signals after posting one (or starts it, the first time). A job counted in
 * POSTED but not yet readable on the port is waited for here, briefly.
 */
function takeJob(): AppJob {
  for (;;) {
    const m = receiveMessageOnPort(data.port);
    if (m !== undefined) {
      taken++;
      return m.message as AppJob;
    }
    const posted = Atomics.load(control, POSTED);
    if (posted !== taken) Atomics.wait(control, POSTED, posted, 1);
    else waitOnNotification();
  }
}

let response = enter(K_READY, 0);
while (response !== R_START) response = enter(K_EXIT, 0);
for (;;) {
  let job: AppJob;
  try {
    job = takeJob();
  } catch (e) {
    if (e instanceof Restarted) continue;
    throw e;
  }
  let r: RunResult;
  try {
    r = execute(job, hooks);
  } catch (e) {
    r = { exitCode: TRAP_EXIT_CODE, trap: trapOf(e), stats: { totalNs: 0, hostNs: 0 } };
  }
  data.port.postMessage(r);
}
