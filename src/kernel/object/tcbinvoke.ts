/**
 * The performing half of the TCB invocations (seL4 src/object/tcb.c invokeTCB_*, MCS) and the
 * checks they share: register transfer (ReadRegisters, WriteRegisters, CopyRegisters),
 * installing caps in the TCB's own slots (ThreadControlCaps) and scheduling parameters
 * (ThreadControlSched). Decoding is in tcb.ts.
 *
 * Registers (AArch64 seL4_UserContext order, types.ts): the 17 frame registers pc, sp, spsr,
 * x0-x8, x16-x18, x29, x30 come first, then the 19 gp registers x9-x15, x19-x28, tpidr_el0,
 * tpidrro_el0, so frame register i is register i and gp register i is register 17 + i.
 */

import { getMRHi, getMRLo, setMRHalves, setMsgInfo, syscallError } from "../core/message.js";
import {
  getRestartPC,
  rescheduleRequired,
  restart,
  setMCPriority,
  setPriority,
  setThreadState,
  suspend,
} from "../core/thread.js";
import type { Kernel } from "../state.js";
import {
  type Cap,
  type Frame,
  ipcBufferView,
  type SchedContext,
  type Slot,
  type TCB,
} from "../structures.js";
import {
  CapType,
  Exception,
  IPC_BUFFER_SIZE_BITS,
  NUM_FRAME_REGISTERS,
  NUM_REGISTERS,
  REG_BADGE,
  REG_PC,
  REG_SPSR,
  RIGHT_GRANT,
  RIGHT_GRANT_REPLY,
  RIGHT_WRITE,
  SeL4Error,
  TCB_CTABLE,
  TCB_FAULT_HANDLER,
  TCB_IPC_BUFFER,
  TCB_TIMEOUT_HANDLER,
  TCB_VTABLE,
  ThreadState,
} from "../types.js";
import { cteDelete, cteInsert } from "./cnode.js";
import { sameObjectAs } from "./objecttype.js";
import { schedContextBindTCB, schedContextUnbindTCB } from "./schedcontext.js";

const TWO32 = 4294967296;
export const NUM_GP_REGISTERS = NUM_REGISTERS - NUM_FRAME_REGISTERS;

// thread_control_caps_update_* / thread_control_sched_update_* (seL4 include/object/tcb.h)
export const UPDATE_SPACE = 0x1;
export const UPDATE_IPC_BUFFER = 0x2;
export const UPDATE_FAULT = 0x4;
export const UPDATE_TIMEOUT = 0x8;
export const UPDATE_MCP = 0x1;
export const UPDATE_PRIORITY = 0x2;
export const UPDATE_SC = 0x4;
export const SCHED_UPDATE_FAULT = 0x8;

/** AArch64 PSTATE_USER (PMODE_FIRQ | PMODE_EL0t | PMODE_SERROR, release build). */
const PSTATE_USER = 0x40 | 0x100;

// ---- checks shared by the decoders ----

/** seL4 checkPrio: a priority or MCP may not exceed the authority thread's MCP. */
export function checkPrio(k: Kernel, prio: number, auth: TCB): Exception {
  if (prio > auth.mcp) {
    k.syscallError.rangeErrorMin = 0;
    k.syscallError.rangeErrorMax = auth.mcp;
    return syscallError(k, SeL4Error.RangeError);
  }
  return Exception.None;
}

/** seL4 validFaultHandler (MCS): an endpoint we may send on with Grant or GrantReply, or none. */
export function validFaultHandler(cap: Cap): boolean {
  if (cap.type === CapType.Null) return true;
  if (cap.type !== CapType.Endpoint) return false;
  return (cap.rights & RIGHT_WRITE) !== 0 && (cap.rights & (RIGHT_GRANT | RIGHT_GRANT_REPLY)) !== 0;
}

/** AArch64 isValidVTableRoot: a VSpace cap that has an ASID (is mapped). */
export function isValidVTableRoot(cap: Cap): boolean {
  return cap.type === CapType.VSpace && cap.mappedAsid !== 0;
}

/**
 * AArch64 checkValidIPCBuffer: a non-device frame, and a buffer address aligned to the IPC
 * buffer size. (seL4 checks rights only when it uses the buffer; see ipcBufferFor.)
 */
export function checkValidIPCBuffer(k: Kernel, vaddrLo: number, cap: Cap): Exception {
  if (cap.type !== CapType.Frame) return syscallError(k, SeL4Error.IllegalOperation);
  if (cap.isDevice) return syscallError(k, SeL4Error.IllegalOperation);
  if ((vaddrLo & ((1 << IPC_BUFFER_SIZE_BITS) - 1)) !== 0) return syscallError(k, SeL4Error.AlignmentError);
  return Exception.None;
}

/**
 * seL4 isFinalCapability + slotCapLongRunningDelete: deleting the cap in this slot would
 * destroy a CNode or TCB (a long, preemptible operation), so it may not be replaced now.
 */
export function slotCapLongRunningDelete(slot: Slot): boolean {
  const cap = slot.cap;
  if (cap.type === CapType.Null) return false;
  const prev = slot.mdbPrev;
  if (prev !== null && sameObjectAs(prev.cap, cap)) return false;
  const next = slot.mdbNext;
  if (next !== null && sameObjectAs(cap, next.cap)) return false;
  return cap.type === CapType.Thread || cap.type === CapType.Zombie || cap.type === CapType.CNode;
}

/**
 * The IPC buffer view for the frame cap in a TCB's buffer slot, or null. seL4's lookupIPCBuffer
 * refuses device frames and, for the receiver, frames it cannot write; the kernel writes
 * through this one view, so it needs a writable frame.
 */
function ipcBufferFor(cap: Cap, vaddr: number): Uint32Array | null {
  if (cap.type !== CapType.Frame || cap.isDevice || (cap.rights & RIGHT_WRITE) === 0) return null;
  const frame = cap.obj as Frame;
  const offset = vaddr % 2 ** frame.sizeBits;
  return ipcBufferView(frame, offset);
}

// ---- register access ----

/** Frame register 0 is seL4's FaultIP: the pc the thread resumes at. */
function readRegLo(t: TCB, r: number): number {
  return r === REG_PC ? getRestartPC(t) >>> 0 : t.regs[2 * r]!;
}
function readRegHi(t: TCB, r: number): number {
  return r === REG_PC ? Math.floor(getRestartPC(t) / TWO32) >>> 0 : t.regs[2 * r + 1]!;
}
/** Set FaultIP and NextIP together (seL4 writes FaultIP, then setNextPC(getRestartPC)). */
function setPC(t: TCB, lo: number, hi: number): void {
  t.regs[2 * REG_PC] = lo;
  t.regs[2 * REG_PC + 1] = hi;
  t.faultIP = hi * TWO32 + lo;
}

/**
 * AArch64 sanitiseRegister: user code cannot give itself a privileged PSTATE. Only a thread
 * with a VCPU may run in EL0t, EL1t or EL1h; anything else keeps the flags (NZCV) only.
 */
function spsrAllowed(lo: number, archInfo: boolean): boolean {
  if (!archInfo) return false;
  const mode = lo & 0x1f;
  return mode === 0 || mode === 4 || mode === 5;
}

/**
 * seL4 invokeTCB_ReadRegisters: the first n registers of src go to the caller's MRs (frame
 * registers first); without an IPC buffer only the register MRs are written.
 */
export function invokeReadRegisters(
  k: Kernel,
  src: TCB,
  suspendSource: boolean,
  n: number,
  isCall: boolean,
): Exception {
  const cur = k.curThread;
  if (suspendSource) suspend(k, src);
  if (isCall) {
    cur.regs[2 * REG_BADGE] = 0;
    cur.regs[2 * REG_BADGE + 1] = 0;
    let i = 0;
    for (; i < n && i < NUM_FRAME_REGISTERS; i++) {
      if (setMRHalves(cur, i, readRegLo(src, i), readRegHi(src, i)) === i) break;
    }
    const j = i;
    i = 0;
    if (cur.ipcBuffer !== null) {
      for (; i < NUM_GP_REGISTERS && i + NUM_FRAME_REGISTERS < n; i++) {
        const r = NUM_FRAME_REGISTERS + i;
        setMRHalves(cur, r, src.regs[2 * r]!, src.regs[2 * r + 1]!);
      }
    }
    setMsgInfo(cur, 0, 0, 0, i + j);
  }
  setThreadState(k, cur, ThreadState.Running);
  return Exception.None;
}

/** seL4 invokeTCB_WriteRegisters: registers come from the caller's MR2 onwards. */
export function invokeWriteRegisters(k: Kernel, dest: TCB, resumeTarget: boolean, w: number): Exception {
  const cur = k.curThread;
  const n = Math.min(w, NUM_REGISTERS);
  const archInfo = dest.vcpu !== null;
  let pcLo = getRestartPC(dest) >>> 0;
  let pcHi = Math.floor(getRestartPC(dest) / TWO32) >>> 0;
  for (let i = 0; i < n; i++) {
    let lo = getMRLo(cur, i + 2);
    let hi = getMRHi(cur, i + 2);
    if (i === REG_PC) {
      pcLo = lo;
      pcHi = hi;
      continue;
    }
    if (i === REG_SPSR && !spsrAllowed(lo, archInfo)) {
      lo = ((lo & 0xf0000000) | PSTATE_USER) >>> 0;
      hi = 0;
    }
    dest.regs[2 * i] = lo;
    dest.regs[2 * i + 1] = hi;
  }
  setPC(dest, pcLo, pcHi);
  if (resumeTarget) restart(k, dest);
  if (dest === cur) rescheduleRequired(k);
  return Exception.None;
}

/** seL4 invokeTCB_CopyRegisters. */
export function invokeCopyRegisters(
  k: Kernel,
  dest: TCB,
  src: TCB,
  suspendSource: boolean,
  resumeTarget: boolean,
  transferFrame: boolean,
  transferInteger: boolean,
): Exception {
  if (suspendSource) suspend(k, src);
  if (resumeTarget) restart(k, dest);
  if (transferFrame) {
    const pc = getRestartPC(src);
    for (let r = 1; r < NUM_FRAME_REGISTERS; r++) {
      dest.regs[2 * r] = src.regs[2 * r]!;
      dest.regs[2 * r + 1] = src.regs[2 * r + 1]!;
    }
    setPC(dest, pc >>> 0, Math.floor(pc / TWO32) >>> 0);
  }
  if (transferInteger) {
    for (let r = NUM_FRAME_REGISTERS; r < NUM_REGISTERS; r++) {
      dest.regs[2 * r] = src.regs[2 * r]!;
      dest.regs[2 * r + 1] = src.regs[2 * r + 1]!;
    }
  }
  if (dest === k.curThread) rescheduleRequired(k);
  return Exception.None;
}

// ---- thread control ----

/** The slot still holds a cap to `target` (seL4 sameObjectAs(tCap, slot->cap)). */
function holdsTCB(slot: Slot | null, target: TCB): boolean {
  return slot !== null && slot.cap.type === CapType.Thread && slot.cap.obj === target;
}

/**
 * seL4 installTCBCap: delete the cap in TCB slot `index`, then copy `newCap` there, but only if
 * the source cap and the invoked TCB cap are still in place (deletion may have removed them).
 */
function installTCBCap(
  k: Kernel,
  target: TCB,
  slot: Slot | null,
  index: number,
  newCap: Cap,
  src: Slot | null,
): Exception {
  const dest = target.ctes[index]!;
  const e = cteDelete(k, dest, true);
  if (e !== Exception.None) return e;
  if (
    newCap.type !== CapType.Null &&
    src !== null &&
    sameObjectAs(newCap, src.cap) &&
    holdsTCB(slot, target)
  ) {
    cteInsert(k, newCap === src.cap ? newCap.clone() : newCap, src, dest);
  }
  return Exception.None;
}

export interface ThreadControlCaps {
  fhCap: Cap;
  fhSlot: Slot | null;
  thCap: Cap;
  thSlot: Slot | null;
  cRootCap: Cap;
  cRootSlot: Slot | null;
  vRootCap: Cap;
  vRootSlot: Slot | null;
  bufferAddr: number;
  bufferCap: Cap;
  bufferSlot: Slot | null;
}

/** seL4 invokeTCB_ThreadControlCaps (Configure, SetSpace, SetIPCBuffer, SetTimeoutEndpoint). */
export function invokeThreadControlCaps(
  k: Kernel,
  target: TCB,
  slot: Slot,
  a: ThreadControlCaps,
  flags: number,
): Exception {
  let e: Exception;
  if ((flags & UPDATE_FAULT) !== 0) {
    e = installTCBCap(k, target, slot, TCB_FAULT_HANDLER, a.fhCap, a.fhSlot);
    if (e !== Exception.None) return e;
  }
  if ((flags & UPDATE_TIMEOUT) !== 0) {
    e = installTCBCap(k, target, slot, TCB_TIMEOUT_HANDLER, a.thCap, a.thSlot);
    if (e !== Exception.None) return e;
  }
  if ((flags & UPDATE_SPACE) !== 0) {
    e = installTCBCap(k, target, slot, TCB_CTABLE, a.cRootCap, a.cRootSlot);
    if (e !== Exception.None) return e;
    e = installTCBCap(k, target, slot, TCB_VTABLE, a.vRootCap, a.vRootSlot);
    if (e !== Exception.None) return e;
  }
  if ((flags & UPDATE_IPC_BUFFER) !== 0) {
    const bufferSlot = target.ctes[TCB_IPC_BUFFER]!;
    e = cteDelete(k, bufferSlot, true);
    if (e !== Exception.None) return e;
    target.ipcBufferVaddr = a.bufferAddr;
    const src = a.bufferSlot;
    if (src !== null && sameObjectAs(a.bufferCap, src.cap) && holdsTCB(slot, target)) {
      cteInsert(k, a.bufferCap === src.cap ? a.bufferCap.clone() : a.bufferCap, src, bufferSlot);
    }
    target.ipcBuffer = ipcBufferFor(bufferSlot.cap, a.bufferAddr);
    if (target === k.curThread) rescheduleRequired(k);
  }
  return Exception.None;
}

/** seL4 invokeTCB_ThreadControlSched (SetPriority, SetMCPriority, SetSchedParams). */
export function invokeThreadControlSched(
  k: Kernel,
  target: TCB,
  slot: Slot | null,
  fhCap: Cap,
  fhSlot: Slot | null,
  mcp: number,
  priority: number,
  sc: SchedContext | null,
  flags: number,
): Exception {
  if ((flags & SCHED_UPDATE_FAULT) !== 0) {
    const e = installTCBCap(k, target, slot, TCB_FAULT_HANDLER, fhCap, fhSlot);
    if (e !== Exception.None) return e;
  }
  if ((flags & UPDATE_MCP) !== 0) setMCPriority(k, target, mcp);
  if ((flags & UPDATE_PRIORITY) !== 0) setPriority(k, target, priority);
  if ((flags & UPDATE_SC) !== 0) {
    if (sc !== null) schedContextBindTCB(k, sc, target);
    else if (target.sc !== null) schedContextUnbindTCB(k, target.sc, target);
  }
  return Exception.None;
}
