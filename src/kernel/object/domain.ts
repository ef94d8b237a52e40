/**
 * The Domain capability (seL4 src/object/domain.c; manual §6.4 "Domain scheduling"): DomainSet_Set
 * moves a thread to another scheduling domain. seL4's DomainSchedule_Configure/SetStart are not
 * part of the API capvisor implements (the domain schedule comes from the kernel configuration).
 */
import { getMR, illegalOperation, invalidArgument, truncatedMessage } from "../core/message.js";
import { setDomain, setThreadState } from "../core/thread.js";
import type { Kernel } from "../state.js";
import type { TCB } from "../structures.js";
import { CapType, Exception, Invocation, ThreadState } from "../types.js";

/** seL4 decodeDomainInvocation: DomainSet_Set(domain; extra cap 0 = the thread). */
export function decodeDomainInvocation(k: Kernel, label: number, length: number): Exception {
  if (label !== Invocation.DomainSetSet) return illegalOperation(k);
  if (length === 0) return truncatedMessage(k);
  const domain = getMR(k.curThread, 0);
  // An out-of-range domain is an InvalidArgument (argument 0), not a RangeError, as in seL4.
  if (domain >= k.config.domains) return invalidArgument(k, 0);
  const slot = k.extraCaps[0];
  if (slot === null || slot === undefined) return truncatedMessage(k);
  if (slot.cap.type !== CapType.Thread) return invalidArgument(k, 1);
  setThreadState(k, k.curThread, ThreadState.Restart);
  setDomain(k, slot.cap.obj as TCB, domain);
  return Exception.None;
}
