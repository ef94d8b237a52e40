/**
 * The monitor: after loading, the root task serves the monitor endpoint, as Microkit's monitor
 * does. Top-level PDs send their faults here (a PD with a parent faults to the parent's
 * `fault()` instead); the monitor reports them and leaves the PD stopped. A passive PD tells
 * the monitor when its `init()` is done, and the monitor takes its scheduling context away, so
 * that from then on it runs on its callers' (and on its notification's for notifications). Once
 * every passive PD has done so, the monitor starts the other PDs (loader.ts: LoadedSystem.deferred).
 */
import { FaultType, SeL4Error } from "../kernel/types.js";
import { startThread } from "../pd/alloc.js";
import {
  type Sel4Gen,
  seL4_GetMR,
  seL4_GetMRBig,
  seL4_MessageInfo_get_label,
  seL4_Recv,
} from "../pd/libsel4.js";
import { seL4_SchedContext_Bind, seL4_SchedContext_UnbindObject } from "../pd/libsel4-invocations.js";
import type { ThreadContext } from "../pd/machine.js";
import { EXIT_FAULT_NUMBER } from "../pd/machine.js";
import { TRAP_NAMES } from "../platform/traps.js";
import { FAULT_BADGE, type LoadedPD, type LoadedSystem } from "./loader.js";

/** Say in words what a fault message means (its label is the fault type, manual §6.2). */
export function describeFault(u: ThreadContext, label: number): string {
  switch (label) {
    case FaultType.UserException: {
      const n = seL4_GetMR(u, 3);
      if (n === EXIT_FAULT_NUMBER)
        return "its program returned (PD code must not return from capvisor_start)";
      return `trapped: ${TRAP_NAMES[n] ?? `user exception ${n}`}`;
    }
    case FaultType.CapFault:
      return `capability fault at cptr 0x${seL4_GetMRBig(u, 1).toString(16)} (lookup failure type ${seL4_GetMR(u, 3)})`;
    case FaultType.UnknownSyscall:
      return `unknown syscall ${seL4_GetMRBig(u, 12)}`;
    case FaultType.VMFault:
      return `VM fault at 0x${seL4_GetMRBig(u, 1).toString(16)}`;
    case FaultType.Timeout:
      return "budget exhausted (timeout fault)";
    default:
      return `fault of type ${label}`;
  }
}

export function* monitor(
  u: ThreadContext,
  sys: LoadedSystem,
  report: (pd: string, message: string) => void,
): Sel4Gen<void> {
  // The other PDs start once every passive PD's init() is done (loader.ts says why).
  const initPending = new Set(sys.pds.filter((p) => p.pd.passive));
  const initDone = function* (pd: LoadedPD): Sel4Gen<void> {
    if (!initPending.delete(pd) || initPending.size > 0) return;
    for (const d of sys.deferred) {
      const err = yield* startThread(u, d.tcbCap, d.entry);
      if (err !== SeL4Error.NoError) report(d.pd.name, `could not be started (seL4_${SeL4Error[err]})`);
    }
  };
  for (;;) {
    const r = yield* seL4_Recv(u, sys.monitorEp, sys.monitorReply);
    const badge = r.senderBig;
    const index = Number(badge & 0xffffn) - 1;
    const pd = sys.pds[index];
    if (pd === undefined) continue;
    if ((badge & FAULT_BADGE) !== 0n) {
      report(pd.pd.name, `${describeFault(u, seL4_MessageInfo_get_label(r.info))}; it stays stopped`);
      // A passive PD that faults in its init() will never report it done: start the others.
      yield* initDone(pd);
      continue;
    }
    // Microkit's monitor: the SC leaves the thread and goes to its notification, so that
    // notifications still run the passive PD (on that SC) while calls run it on the caller's.
    if (pd.pd.passive && initPending.has(pd)) {
      yield* seL4_SchedContext_UnbindObject(u, pd.scCap, pd.tcbCap);
      yield* seL4_SchedContext_Bind(u, pd.scCap, pd.ntfnCap);
      yield* initDone(pd);
    }
  }
}
