/**
 * Fault delivery (seL4 src/kernel/faulthandler.c, MCS configuration). Manual §6.2: a faulting
 * thread's fault is sent as a message on the endpoint in its TCB's fault handler slot, as if the
 * thread had called it; MCS adds a timeout handler slot for budget overruns (manual §6.2.7).
 */
import { recordLookupFailure } from "../api/faults.js";
import { sendIPC } from "../object/endpoint.js";
import type { Kernel } from "../state.js";
import type { Cap, Endpoint, TCB } from "../structures.js";
import {
  CapType,
  FaultType,
  RIGHT_GRANT,
  RIGHT_GRANT_REPLY,
  TCB_FAULT_HANDLER,
  TCB_TIMEOUT_HANDLER,
  ThreadState,
} from "../types.js";
import { setThreadState } from "./thread.js";

/**
 * seL4 handleFault (MCS): deliver k.currentFault of `t` to its fault handler; a thread without
 * one becomes Inactive. The scheduling context goes with the fault when the thread has one.
 */
export function handleFault(k: Kernel, t: TCB): void {
  const handlerCap = t.ctes[TCB_FAULT_HANDLER]!.cap;
  if (!sendFaultIPC(k, t, handlerCap, t.sc !== null)) handleNoFaultHandler(k, t);
}

/** seL4 handleTimeout: a timeout fault goes to the timeout handler, never donating the SC. */
export function handleTimeout(k: Kernel, t: TCB): void {
  sendFaultIPC(k, t, t.ctes[TCB_TIMEOUT_HANDLER]!.cap, false);
}

/** seL4 validTimeoutHandler: the timeout handler slot holds an endpoint cap. */
export function validTimeoutHandler(t: TCB): boolean {
  return t.ctes[TCB_TIMEOUT_HANDLER]!.cap.type === CapType.Endpoint;
}

/**
 * seL4 sendFaultIPC (MCS): a blocking send of the fault on the handler endpoint, with the grant
 * rights of the handler cap. The fault makes sendIPC treat it as a call (a reply object is needed
 * to answer it). Returns false when the handler cap is not an endpoint cap (a null cap: seL4
 * validates the slot's contents when it is set, TCB_SetSpace / TCB_Configure).
 */
export function sendFaultIPC(k: Kernel, t: TCB, handlerCap: Cap, canDonate: boolean): boolean {
  if (handlerCap.type !== CapType.Endpoint) return false;
  const fault = k.currentFault;
  if (fault === null) return false;
  t.fault = fault;
  if (fault.type === FaultType.CapFault) {
    t.lookupFault = k.lookupFault;
    recordLookupFailure(fault, k.lookupFault);
  }
  k.stats.faults++;
  sendIPC(
    k,
    true,
    false,
    handlerCap.badgeLo,
    handlerCap.badgeHi,
    (handlerCap.rights & RIGHT_GRANT) !== 0,
    (handlerCap.rights & RIGHT_GRANT_REPLY) !== 0,
    canDonate,
    t,
    handlerCap.obj as Endpoint,
  );
  return true;
}

/** seL4 handleNoFaultHandler (MCS): the thread cannot run on; it becomes Inactive. */
export function handleNoFaultHandler(k: Kernel, t: TCB): void {
  setThreadState(k, t, ThreadState.Inactive);
}
