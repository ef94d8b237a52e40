/**
 * TCB invocations, decoding half (seL4 src/object/tcb.c decodeTCBInvocation and its decoders,
 * MCS configuration; manual §6.3 and the TCB methods of §10.3). Argument layouts follow
 * libsel4's object-api.xml with the MCS conditions:
 *
 * - ReadRegisters(flags = suspend_source | arch_flags << 8, count)
 * - WriteRegisters(flags = resume_target | arch_flags << 8, count, regs...)
 * - CopyRegisters(source cap; flags = suspend | resume << 1 | frame << 2 | integer << 3 | arch << 8)
 * - Configure(cspace_root cap, cspace_root_data, vspace_root cap, vspace_root_data, buffer, bufferFrame cap)
 * - SetPriority(authority cap, priority), SetMCPriority(authority cap, mcp)
 * - SetSchedParams(authority cap, mcp, priority, sched_context cap, fault_ep cap)
 * - SetTimeoutEndpoint(timeout_fault_ep cap), SetIPCBuffer(buffer, bufferFrame cap)
 * - SetSpace(fault_ep cap, cspace_root cap, cspace_root_data, vspace_root cap, vspace_root_data)
 * - Suspend, Resume, BindNotification(notification cap), UnbindNotification
 * - SetTLSBase(tls_base), SetFlags(clear, set) -> flags
 * SetAffinity does not exist under MCS (a thread runs on its SC's core): IllegalOperation.
 *
 * The performing half is in tcbinvoke.ts.
 */
import {
  getMR,
  getMRHi,
  getMRLo,
  illegalOperation,
  invalidCapability,
  setMR,
  setMsgInfo,
  syscallError,
  truncatedMessage,
} from "../core/message.js";
import { scReleased } from "../core/sporadic.js";
import {
  isBlocked,
  remoteTCBStall,
  rescheduleRequired,
  restart,
  setThreadState,
  suspend,
} from "../core/thread.js";
import type { Kernel } from "../state.js";
import {
  type Cap,
  type Notification,
  NULL_CAP,
  type SchedContext,
  type Slot,
  type TCB,
} from "../structures.js";
import {
  CapType,
  Exception,
  Invocation,
  NUM_REGISTERS,
  REG_BADGE,
  REG_TPIDR_EL0,
  RIGHT_READ,
  SeL4Error,
  TCB_CTABLE,
  TCB_VTABLE,
  ThreadState,
} from "../types.js";
import { bindNotification, unbindNotification } from "./notification.js";
import { deriveCap, updateCapData } from "./objecttype.js";
import {
  checkPrio,
  checkValidIPCBuffer,
  invokeCopyRegisters,
  invokeReadRegisters,
  invokeThreadControlCaps,
  invokeThreadControlSched,
  invokeWriteRegisters,
  isValidVTableRoot,
  SCHED_UPDATE_FAULT,
  slotCapLongRunningDelete,
  type ThreadControlCaps,
  UPDATE_FAULT,
  UPDATE_IPC_BUFFER,
  UPDATE_MCP,
  UPDATE_PRIORITY,
  UPDATE_SC,
  UPDATE_SPACE,
  UPDATE_TIMEOUT,
  validFaultHandler,
} from "./tcbinvoke.js";

export { decodeDomainInvocation } from "./domain.js";

/** libsel4 seL4_TCBFlag_MASK on AArch64 (CONFIG_HAVE_FPU): only fpuDisabled (bit 0) exists. */
export const TCB_FLAG_MASK = 1;

function extraSlot(k: Kernel, i: number): Slot | null {
  const s = k.extraCaps[i];
  return s === undefined ? null : s;
}

function controlCaps(): ThreadControlCaps {
  return {
    fhCap: NULL_CAP,
    fhSlot: null,
    thCap: NULL_CAP,
    thSlot: null,
    cRootCap: NULL_CAP,
    cRootSlot: null,
    vRootCap: NULL_CAP,
    vRootSlot: null,
    bufferAddr: 0,
    bufferCap: NULL_CAP,
    bufferSlot: null,
  };
}

// ---- registers ----

function decodeReadRegisters(k: Kernel, cap: Cap, length: number, isCall: boolean): Exception {
  if (length < 2) return truncatedMessage(k);
  const t = k.curThread;
  const flags = getMRLo(t, 0);
  const n = getMR(t, 1);
  if (n < 1 || n > NUM_REGISTERS) {
    k.syscallError.rangeErrorMin = 1;
    k.syscallError.rangeErrorMax = NUM_REGISTERS;
    return syscallError(k, SeL4Error.RangeError);
  }
  const target = cap.obj as TCB;
  if (target === t) return illegalOperation(k);
  setThreadState(k, t, ThreadState.Restart);
  return invokeReadRegisters(k, target, (flags & 1) !== 0, n, isCall);
}

function decodeWriteRegisters(k: Kernel, cap: Cap, length: number): Exception {
  if (length < 2) return truncatedMessage(k);
  const t = k.curThread;
  const flags = getMRLo(t, 0);
  const w = getMR(t, 1);
  if (length - 2 < w) return truncatedMessage(k);
  const target = cap.obj as TCB;
  if (target === t) return illegalOperation(k);
  setThreadState(k, t, ThreadState.Restart);
  return invokeWriteRegisters(k, target, (flags & 1) !== 0, w);
}

function decodeCopyRegisters(k: Kernel, cap: Cap, length: number): Exception {
  const srcSlot = extraSlot(k, 0);
  if (length < 1 || srcSlot === null) return truncatedMessage(k);
  const flags = getMRLo(k.curThread, 0);
  if (srcSlot.cap.type !== CapType.Thread) return invalidCapability(k, 1);
  const src = srcSlot.cap.obj as TCB;
  // Deviation from seL4: decodeTCBInvocation stalls only the invoked (destination) thread, so
  // suspending a source that is running on another core leaves that core's ksCurThread Inactive
  // and seL4 halts there at its next activateThread ("Current thread is blocked"). Stall the
  // source as well (seL4 remoteTCBStall), as the destination is, before suspend() changes it.
  if ((flags & 1) !== 0) remoteTCBStall(k, src);
  setThreadState(k, k.curThread, ThreadState.Restart);
  return invokeCopyRegisters(
    k,
    cap.obj as TCB,
    src,
    (flags & 1) !== 0,
    (flags & 2) !== 0,
    (flags & 4) !== 0,
    (flags & 8) !== 0,
  );
}

// ---- spaces and IPC buffer ----

/**
 * Derive the new CSpace and VSpace roots (seL4 decodeTCBConfigure / decodeSetSpace): the data
 * words, when non-zero, set the CNode guard (updateCapData), the caps must derive, the CSpace
 * root must be a CNode and the VSpace root a mapped VSpace. Fills a.cRootCap and a.vRootCap.
 */
function deriveRoots(
  k: Kernel,
  a: ThreadControlCaps,
  cDataLo: number,
  cDataHi: number,
  vDataLo: number,
  vDataHi: number,
): Exception {
  let cRootCap = a.cRootSlot!.cap;
  if ((cDataLo | cDataHi) !== 0) cRootCap = updateCapData(false, cDataLo, cDataHi, cRootCap);
  const c = deriveCap(k, a.cRootSlot!, cRootCap);
  if (c === null) return Exception.SyscallError;
  if (c.type !== CapType.CNode) return illegalOperation(k);
  let vRootCap = a.vRootSlot!.cap;
  if ((vDataLo | vDataHi) !== 0) vRootCap = updateCapData(false, vDataLo, vDataHi, vRootCap);
  const v = deriveCap(k, a.vRootSlot!, vRootCap);
  if (v === null) return Exception.SyscallError;
  if (!isValidVTableRoot(v)) return illegalOperation(k);
  a.cRootCap = c;
  a.vRootCap = v;
  return Exception.None;
}

/** The buffer frame for Configure/SetIPCBuffer: address 0 means no buffer. */
function deriveBuffer(
  k: Kernel,
  a: ThreadControlCaps,
  addrLo: number,
  addrHi: number,
  slot: Slot,
): Exception {
  a.bufferAddr = addrHi * 4294967296 + addrLo;
  if ((addrLo | addrHi) === 0) {
    a.bufferSlot = null;
    a.bufferCap = slot.cap;
    return Exception.None;
  }
  const d = deriveCap(k, slot, slot.cap);
  if (d === null) return Exception.SyscallError;
  const e = checkValidIPCBuffer(k, addrLo, d);
  if (e !== Exception.None) return e;
  a.bufferSlot = slot;
  a.bufferCap = d;
  return Exception.None;
}

function spaceBeingDeleted(target: TCB): boolean {
  return (
    slotCapLongRunningDelete(target.ctes[TCB_CTABLE]!) || slotCapLongRunningDelete(target.ctes[TCB_VTABLE]!)
  );
}

function decodeConfigure(k: Kernel, cap: Cap, length: number, slot: Slot): Exception {
  const s0 = extraSlot(k, 0);
  const s1 = extraSlot(k, 1);
  const s2 = extraSlot(k, 2);
  if (length < 3 || s0 === null || s1 === null || s2 === null) return truncatedMessage(k);
  const t = k.curThread;
  const target = cap.obj as TCB;
  const a = controlCaps();
  a.cRootSlot = s0;
  a.vRootSlot = s1;
  let e = deriveBuffer(k, a, getMRLo(t, 2), getMRHi(t, 2), s2);
  if (e !== Exception.None) return e;
  if (spaceBeingDeleted(target)) return illegalOperation(k);
  e = deriveRoots(k, a, getMRLo(t, 0), getMRHi(t, 0), getMRLo(t, 1), getMRHi(t, 1));
  if (e !== Exception.None) return e;
  setThreadState(k, t, ThreadState.Restart);
  return invokeThreadControlCaps(k, target, slot, a, UPDATE_SPACE | UPDATE_IPC_BUFFER);
}

function decodeSetSpace(k: Kernel, cap: Cap, length: number, slot: Slot): Exception {
  const s0 = extraSlot(k, 0);
  const s1 = extraSlot(k, 1);
  const s2 = extraSlot(k, 2);
  if (length < 2 || s0 === null || s1 === null || s2 === null) return truncatedMessage(k);
  const t = k.curThread;
  const target = cap.obj as TCB;
  const a = controlCaps();
  a.fhSlot = s0;
  a.fhCap = s0.cap;
  a.cRootSlot = s1;
  a.vRootSlot = s2;
  if (spaceBeingDeleted(target)) return illegalOperation(k);
  const e = deriveRoots(k, a, getMRLo(t, 0), getMRHi(t, 0), getMRLo(t, 1), getMRHi(t, 1));
  if (e !== Exception.None) return e;
  if (!validFaultHandler(a.fhCap)) return invalidCapability(k, 1);
  setThreadState(k, t, ThreadState.Restart);
  return invokeThreadControlCaps(k, target, slot, a, UPDATE_SPACE | UPDATE_FAULT);
}

function decodeSetIPCBuffer(k: Kernel, cap: Cap, length: number, slot: Slot): Exception {
  const s0 = extraSlot(k, 0);
  if (length < 1 || s0 === null) return truncatedMessage(k);
  const t = k.curThread;
  const a = controlCaps();
  const e = deriveBuffer(k, a, getMRLo(t, 0), getMRHi(t, 0), s0);
  if (e !== Exception.None) return e;
  setThreadState(k, t, ThreadState.Restart);
  return invokeThreadControlCaps(k, cap.obj as TCB, slot, a, UPDATE_IPC_BUFFER);
}

function decodeSetTimeoutEndpoint(k: Kernel, cap: Cap, slot: Slot): Exception {
  const s0 = extraSlot(k, 0);
  if (s0 === null) return truncatedMessage(k);
  if (!validFaultHandler(s0.cap)) return invalidCapability(k, 1);
  const a = controlCaps();
  a.thCap = s0.cap;
  a.thSlot = s0;
  setThreadState(k, k.curThread, ThreadState.Restart);
  return invokeThreadControlCaps(k, cap.obj as TCB, slot, a, UPDATE_TIMEOUT);
}

// ---- scheduling parameters ----

/** The authority TCB of SetPriority/SetMCPriority/SetSchedParams (extra cap 0), or null with the error set. */
function authority(k: Kernel, s: Slot): TCB | null {
  if (s.cap.type !== CapType.Thread) {
    invalidCapability(k, 1);
    return null;
  }
  return s.cap.obj as TCB;
}

function decodeSetPriority(k: Kernel, cap: Cap, length: number, mcp: boolean): Exception {
  const s0 = extraSlot(k, 0);
  if (length < 1 || s0 === null) return truncatedMessage(k);
  const value = getMR(k.curThread, 0);
  const auth = authority(k, s0);
  if (auth === null) return Exception.SyscallError;
  const e = checkPrio(k, value, auth);
  if (e !== Exception.None) return e;
  setThreadState(k, k.curThread, ThreadState.Restart);
  return invokeThreadControlSched(
    k,
    cap.obj as TCB,
    null,
    NULL_CAP,
    null,
    mcp ? value : 0,
    mcp ? 0 : value,
    null,
    mcp ? UPDATE_MCP : UPDATE_PRIORITY,
  );
}

function decodeSetSchedParams(k: Kernel, cap: Cap, length: number, slot: Slot): Exception {
  const s0 = extraSlot(k, 0);
  const s1 = extraSlot(k, 1);
  const s2 = extraSlot(k, 2);
  if (length < 2 || s0 === null || s1 === null || s2 === null) return truncatedMessage(k);
  const t = k.curThread;
  const newMcp = getMR(t, 0);
  const newPrio = getMR(t, 1);
  const auth = authority(k, s0);
  if (auth === null) return Exception.SyscallError;
  let e = checkPrio(k, newMcp, auth);
  if (e !== Exception.None) return e;
  e = checkPrio(k, newPrio, auth);
  if (e !== Exception.None) return e;
  const target = cap.obj as TCB;
  const scCap = s1.cap;
  let sc: SchedContext | null = null;
  let flags = UPDATE_MCP | UPDATE_PRIORITY | SCHED_UPDATE_FAULT;
  if (scCap.type === CapType.SchedContext) {
    sc = scCap.obj as SchedContext;
    if (target.sc !== sc) {
      if (target.sc !== null) return illegalOperation(k);
      if (sc.tcb !== null) return illegalOperation(k);
    }
    if (isBlocked(target) && !scReleased(k, sc)) return illegalOperation(k);
  } else if (scCap.type === CapType.Null) {
    if (target === t) return illegalOperation(k);
  } else {
    return invalidCapability(k, 2);
  }
  if (target.sc !== sc) flags |= UPDATE_SC;
  if (!validFaultHandler(s2.cap)) return invalidCapability(k, 3);
  setThreadState(k, t, ThreadState.Restart);
  return invokeThreadControlSched(k, target, slot, s2.cap, s2, newMcp, newPrio, sc, flags);
}

// ---- notifications, TLS, flags ----

function decodeBindNotification(k: Kernel, cap: Cap): Exception {
  const s0 = extraSlot(k, 0);
  if (s0 === null) return truncatedMessage(k);
  const target = cap.obj as TCB;
  if (target.boundNotification !== null) return illegalOperation(k);
  const ncap = s0.cap;
  if (ncap.type !== CapType.Notification) return illegalOperation(k);
  if ((ncap.rights & RIGHT_READ) === 0) return illegalOperation(k);
  const n = ncap.obj as Notification;
  if (n.qHead !== null || n.boundTCB !== null) return illegalOperation(k);
  setThreadState(k, k.curThread, ThreadState.Restart);
  bindNotification(k, target, n);
  return Exception.None;
}

function decodeUnbindNotification(k: Kernel, cap: Cap): Exception {
  const target = cap.obj as TCB;
  if (target.boundNotification === null) return illegalOperation(k);
  setThreadState(k, k.curThread, ThreadState.Restart);
  unbindNotification(k, target);
  return Exception.None;
}

function decodeSetTLSBase(k: Kernel, cap: Cap, length: number): Exception {
  if (length < 1) return truncatedMessage(k);
  const t = k.curThread;
  const lo = getMRLo(t, 0);
  const hi = getMRHi(t, 0);
  setThreadState(k, t, ThreadState.Restart);
  const target = cap.obj as TCB;
  // TLS_BASE is TPIDR_EL0 on AArch64 (seL4's default KernelArmTLSReg).
  target.setRegHalves(REG_TPIDR_EL0, lo, hi);
  target.tlsBase = hi * 4294967296 + lo;
  if (target === t) rescheduleRequired(k);
  return Exception.None;
}

function decodeSetFlags(k: Kernel, cap: Cap, length: number, isCall: boolean): Exception {
  if (length < 2) return truncatedMessage(k);
  const t = k.curThread;
  // Only bit 0 exists; the high halves of clear/set cannot touch it.
  const clear = getMRLo(t, 0);
  const set = getMRLo(t, 1);
  setThreadState(k, t, ThreadState.Restart);
  const target = cap.obj as TCB;
  const flags = ((target.flags & ~clear) | (set & TCB_FLAG_MASK)) >>> 0;
  target.flags = flags;
  if (isCall) {
    t.regs[2 * REG_BADGE] = 0;
    t.regs[2 * REG_BADGE + 1] = 0;
    setMsgInfo(t, 0, 0, 0, setMR(t, 0, flags));
  }
  setThreadState(k, t, ThreadState.Running);
  return Exception.None;
}

/** seL4 decodeTCBInvocation (MCS). */
export function decodeTCBInvocation(
  k: Kernel,
  label: number,
  length: number,
  cap: Cap,
  slot: Slot,
  isCall: boolean,
): Exception {
  const target = cap.obj as TCB;
  // A thread running on another core is stopped there before it is changed (seL4 SMP).
  remoteTCBStall(k, target);
  switch (label) {
    case Invocation.TCBReadRegisters:
      return decodeReadRegisters(k, cap, length, isCall);
    case Invocation.TCBWriteRegisters:
      return decodeWriteRegisters(k, cap, length);
    case Invocation.TCBCopyRegisters:
      return decodeCopyRegisters(k, cap, length);
    case Invocation.TCBSuspend:
      setThreadState(k, k.curThread, ThreadState.Restart);
      suspend(k, target);
      return Exception.None;
    case Invocation.TCBResume:
      setThreadState(k, k.curThread, ThreadState.Restart);
      restart(k, target);
      return Exception.None;
    case Invocation.TCBConfigure:
      return decodeConfigure(k, cap, length, slot);
    case Invocation.TCBSetPriority:
      return decodeSetPriority(k, cap, length, false);
    case Invocation.TCBSetMCPriority:
      return decodeSetPriority(k, cap, length, true);
    case Invocation.TCBSetSchedParams:
      return decodeSetSchedParams(k, cap, length, slot);
    case Invocation.TCBSetIPCBuffer:
      return decodeSetIPCBuffer(k, cap, length, slot);
    case Invocation.TCBSetSpace:
      return decodeSetSpace(k, cap, length, slot);
    case Invocation.TCBBindNotification:
      return decodeBindNotification(k, cap);
    case Invocation.TCBUnbindNotification:
      return decodeUnbindNotification(k, cap);
    case Invocation.TCBSetTimeoutEndpoint:
      return decodeSetTimeoutEndpoint(k, cap, slot);
    case Invocation.TCBSetTLSBase:
      return decodeSetTLSBase(k, cap, length);
    case Invocation.TCBSetFlags:
      return decodeSetFlags(k, cap, length, isCall);
    default:
      // Includes TCBSetAffinity: under MCS a thread's core is its scheduling context's.
      return illegalOperation(k);
  }
}
