/**
 * Kernel entry: system calls, user-level exceptions, VM faults and interrupts (seL4
 * src/api/syscall.c, MCS configuration). Every entry takes the platform's current time, charges
 * the time since the last entry to the running scheduling context, handles the event, then
 * picks the thread to run next (schedule + activateThread), exactly in seL4's order.
 */

import { capFault, unknownSyscallFault, userException, vmFault } from "../api/faults.js";
import { lookupCap, lookupCapAndSlot, lookupFault } from "../core/cspace.js";
import { handleFault } from "../core/faulthandler.js";
import { lookupExtraCaps } from "../core/ipc.js";
import {
  msgInfoLabel,
  msgInfoLength,
  replyFromKernelError,
  replyFromKernelSuccessEmpty,
} from "../core/message.js";
import { refillHeadAmount } from "../core/sporadic.js";
import {
  activateThread,
  chargeBudget,
  checkBudget,
  checkBudgetRestart,
  isSchedulable,
  rescheduleRequired,
  schedule,
  setNextPC,
  setThreadState,
  updateTimestamp,
} from "../core/thread.js";
import { fastpathCall, fastpathReplyRecv } from "../fastpath.js";
import { receiveIPC } from "../object/endpoint.js";
import { handleInterrupt } from "../object/interrupt.js";
import { receiveSignal } from "../object/notification.js";
import { decodeInvocation } from "../object/objecttype.js";
import type { Kernel } from "../state.js";
import type { Endpoint, Notification, TCB } from "../structures.js";
import { NULL_CAP } from "../structures.js";
import {
  CapType,
  Exception,
  LookupFailure,
  MSG_REGISTERS,
  REG_CAP,
  REG_NBSR_DEST,
  REG_PC,
  REG_REPLY,
  RIGHT_READ,
  Syscall,
  ThreadState,
} from "../types.js";

/** seL4 handleInvocation (MCS): invoke the cap at (hi:lo) with the message in the caller's registers. */
function handleInvocation(
  k: Kernel,
  isCall: boolean,
  isBlocking: boolean,
  canDonate: boolean,
  firstPhase: boolean,
  cptrLo: number,
  cptrHi: number,
): Exception {
  const thread = k.curThread;
  const slot = lookupCapAndSlot(k, thread, cptrHi, cptrLo);
  if (slot === null) {
    k.currentFault = capFault(cptrLo, cptrHi, false);
    if (isBlocking) handleFault(k, thread);
    return Exception.None;
  }
  if (lookupExtraCaps(k, thread) !== Exception.None) {
    if (isBlocking) handleFault(k, thread);
    return Exception.None;
  }
  let length = msgInfoLength(thread);
  // Without an IPC buffer only the register MRs exist: seL4 truncates rather than failing.
  if (length > MSG_REGISTERS && thread.ipcBuffer === null) length = MSG_REGISTERS;
  const status = decodeInvocation(
    k,
    msgInfoLabel(thread),
    length,
    cptrLo,
    cptrHi,
    slot,
    slot.cap,
    isBlocking,
    isCall,
    canDonate,
    firstPhase,
  );
  if (status === Exception.Preempted) return status;
  if (status === Exception.SyscallError) {
    if (isCall) replyFromKernelError(k, thread);
    return Exception.None;
  }
  if (thread.state === ThreadState.Restart) {
    if (isCall) replyFromKernelSuccessEmpty(k, thread);
    setThreadState(k, thread, ThreadState.Running);
  }
  return Exception.None;
}

/** MCS lookupReply: the Reply cap named in x6, or a cap fault (receive phase). */
function lookupReplyCap(k: Kernel, thread: TCB) {
  const lo = thread.regs[2 * REG_REPLY]!;
  const hi = thread.regs[2 * REG_REPLY + 1]!;
  const cap = lookupCap(k, thread, hi, lo);
  if (cap === null) {
    k.currentFault = capFault(lo, hi, true);
    return null;
  }
  if (cap.type !== CapType.Reply) {
    k.lookupFault = lookupFault(LookupFailure.MissingCapability, 0);
    k.currentFault = capFault(lo, hi, true);
    return null;
  }
  return cap;
}

/** seL4 handleRecv (MCS): receive on the endpoint or notification in x0. */
function handleRecv(k: Kernel, isBlocking: boolean, canReply: boolean): void {
  const thread = k.curThread;
  const lo = thread.regs[2 * REG_CAP]!;
  const hi = thread.regs[2 * REG_CAP + 1]!;
  const cap = lookupCap(k, thread, hi, lo);
  if (cap === null) {
    k.currentFault = capFault(lo, hi, true);
    handleFault(k, thread);
    return;
  }
  if (cap.type === CapType.Endpoint) {
    // Receiving needs the Read right; without it the thread takes a cap fault (manual §4.2).
    if ((cap.rights & RIGHT_READ) === 0) {
      k.lookupFault = lookupFault(LookupFailure.MissingCapability, 0);
      k.currentFault = capFault(lo, hi, true);
      handleFault(k, thread);
      return;
    }
    let replyCap = NULL_CAP;
    if (canReply) {
      const r = lookupReplyCap(k, thread);
      if (r === null) {
        handleFault(k, thread);
        return;
      }
      replyCap = r;
    }
    receiveIPC(k, thread, cap, isBlocking, replyCap);
    return;
  }
  if (cap.type === CapType.Notification) {
    const ntfn = cap.obj as Notification;
    // A notification bound to another thread can only be waited on by that thread (manual §5.3).
    if ((cap.rights & RIGHT_READ) === 0 || (ntfn.boundTCB !== null && ntfn.boundTCB !== thread)) {
      k.lookupFault = lookupFault(LookupFailure.MissingCapability, 0);
      k.currentFault = capFault(lo, hi, true);
      handleFault(k, thread);
      return;
    }
    receiveSignal(k, thread, cap, isBlocking);
    return;
  }
  k.lookupFault = lookupFault(LookupFailure.MissingCapability, 0);
  k.currentFault = capFault(lo, hi, true);
  handleFault(k, thread);
}

/** seL4 mcsPreemptionPoint: charge time after a preempted operation. */
function mcsPreemptionPoint(k: Kernel): void {
  const node = k.node;
  if (isSchedulable(k, node.curThread)) checkBudget(k);
  else if (node.curSC.configured && node.curSC.refillCount > 0) chargeBudget(k, node.consumed, false);
  else node.consumed = 0;
}

/** Handle interrupts that arrived while a long operation was running (seL4 checkInterrupt). */
function handlePendingInterrupts(k: Kernel): void {
  if (!k.irqPending) return;
  k.irqPending = false;
  const p = k.irq.pending;
  for (let line = 0; line < p.length; line++) {
    if (p[line] !== 0 && k.irq.masked[line] === 0) {
      p[line] = 0;
      handleInterrupt(k, line);
    }
  }
}

function afterInvocation(k: Kernel, ret: Exception): boolean {
  if (ret !== Exception.None) {
    mcsPreemptionPoint(k);
    handlePendingInterrupts(k);
    return false;
  }
  return true;
}

function handleYield(k: Kernel): void {
  // Yield gives up the rest of the head refill; only what was really consumed is reported (seL4 MCS).
  const sc = k.node.curSC;
  const consumed = sc.consumed + k.node.consumed;
  chargeBudget(k, refillHeadAmount(sc), false);
  sc.consumed = consumed;
}

/** seL4 handleSyscall, after the budget check. */
function handleSyscallBody(k: Kernel, sys: Syscall): void {
  const t = k.curThread;
  const capLo = t.regs[2 * REG_CAP]!;
  const capHi = t.regs[2 * REG_CAP + 1]!;
  switch (sys) {
    case Syscall.Send:
      afterInvocation(k, handleInvocation(k, false, true, false, false, capLo, capHi));
      break;
    case Syscall.NBSend:
      afterInvocation(k, handleInvocation(k, false, false, false, false, capLo, capHi));
      break;
    case Syscall.Call:
      afterInvocation(k, handleInvocation(k, true, true, true, false, capLo, capHi));
      break;
    case Syscall.Recv:
      handleRecv(k, true, true);
      break;
    case Syscall.NBRecv:
      handleRecv(k, false, true);
      break;
    case Syscall.Wait:
      handleRecv(k, true, false);
      break;
    case Syscall.NBWait:
      handleRecv(k, false, false);
      break;
    case Syscall.ReplyRecv: {
      const lo = t.regs[2 * REG_REPLY]!;
      const hi = t.regs[2 * REG_REPLY + 1]!;
      if (afterInvocation(k, handleInvocation(k, false, false, true, true, lo, hi)))
        handleRecv(k, true, true);
      break;
    }
    case Syscall.NBSendRecv: {
      const lo = t.regs[2 * REG_NBSR_DEST]!;
      const hi = t.regs[2 * REG_NBSR_DEST + 1]!;
      if (afterInvocation(k, handleInvocation(k, false, false, true, true, lo, hi)))
        handleRecv(k, true, true);
      break;
    }
    case Syscall.NBSendWait: {
      const lo = t.regs[2 * REG_REPLY]!;
      const hi = t.regs[2 * REG_REPLY + 1]!;
      if (afterInvocation(k, handleInvocation(k, false, false, true, true, lo, hi)))
        handleRecv(k, true, false);
      break;
    }
    case Syscall.Yield:
      handleYield(k);
      break;
  }
}

/** seL4 handleUnknownSyscall: the debug syscalls we support, else an UnknownSyscall fault. */
function handleUnknownSyscall(k: Kernel, sysno: number): void {
  const t = k.curThread;
  if (sysno === Syscall.DebugPutChar) {
    k.debugOut(t, t.regs[2 * REG_CAP]! & 0xff);
    return;
  }
  if (sysno === Syscall.DebugNameThread) {
    // The name is a NUL-terminated string in the IPC buffer's message words; the TCB is the cap in x0.
    const cap = lookupCap(k, t, t.regs[2 * REG_CAP + 1]!, t.regs[2 * REG_CAP]!);
    if (cap !== null && cap.type === CapType.Thread && t.ipcBuffer !== null) {
      const bytes = new Uint8Array(t.ipcBuffer.buffer, t.ipcBuffer.byteOffset + 8, 8 * 120);
      let end = bytes.indexOf(0);
      if (end < 0) end = bytes.length;
      (cap.obj as TCB).name = new TextDecoder().decode(bytes.subarray(0, end));
    }
    return;
  }
  if (
    sysno === Syscall.DebugDumpScheduler ||
    sysno === Syscall.DebugSnapshot ||
    sysno === Syscall.DebugCapIdentify
  ) {
    return;
  }
  if (checkBudgetRestart(k)) {
    k.currentFault = unknownSyscallFault(sysno);
    handleFault(k, t);
  }
}

function enter(k: Kernel, core: number, now: number): void {
  k.cur = core;
  k.workUnits = 0;
  updateTimestamp(k, now);
}

/**
 * seL4's lower_el_irq saves ELR as FaultIP: a user thread interrupted mid-stream that is later
 * restarted (e.g. by a reply to its timeout fault) resumes where it was interrupted, not at its
 * last syscall.
 */
function saveInterruptedIP(k: Kernel): void {
  const t = k.curThread;
  if (t !== k.node.idleThread) t.faultIP = t.getReg(REG_PC);
}

function leave(k: Kernel): void {
  schedule(k);
  activateThread(k);
}

/**
 * The thread running on `core` executed a syscall instruction: number `sysno`, arguments in its
 * registers and IPC buffer. Its pc must point at the syscall instruction.
 */
export function syscallEntry(k: Kernel, core: number, now: number, sysno: number): void {
  enter(k, core, now);
  const t = k.curThread;
  k.stats.syscalls++;
  // seL4 saves FaultIP and sets NextIP past the syscall; a restarted syscall rewinds to FaultIP.
  t.faultIP = t.getReg(REG_PC);
  setNextPC(t);
  if (sysno === Syscall.Call && fastpathCall(k)) return;
  if (sysno === Syscall.ReplyRecv && fastpathReplyRecv(k)) return;
  if (sysno < Syscall.Yield || sysno > Syscall.Call) {
    handleUnknownSyscall(k, sysno);
  } else if (checkBudgetRestart(k)) {
    handleSyscallBody(k, sysno as Syscall);
  }
  leave(k);
}

/** The running thread trapped (seL4 handleUserLevelFault): a Wasm trap maps here. */
export function userExceptionEntry(k: Kernel, core: number, now: number, number: number, code: number): void {
  enter(k, core, now);
  // seL4 saves ELR as FaultIP on exception entry, before the budget check: a thread whose
  // entry is restarted (budget expired) must come back to the faulting instruction.
  const t = k.curThread;
  t.faultIP = t.getReg(REG_PC);
  if (checkBudgetRestart(k)) {
    k.currentFault = userException(number, code);
    handleFault(k, t);
  }
  leave(k);
}

/** The running thread touched memory its VSpace does not allow (seL4 handleVMFaultEvent). */
export function vmFaultEntry(
  k: Kernel,
  core: number,
  now: number,
  addr: number,
  fsr: number,
  instructionFault: boolean,
): void {
  enter(k, core, now);
  // FaultIP before the budget check, as in userExceptionEntry.
  const t = k.curThread;
  t.faultIP = t.getReg(REG_PC);
  if (checkBudgetRestart(k)) {
    k.currentFault = vmFault(addr, fsr, instructionFault);
    handleFault(k, t);
  }
  leave(k);
}

/** An interrupt line was raised at time `now` (seL4 handleInterruptEntry). */
export function interruptEntry(k: Kernel, core: number, now: number, line: number): void {
  enter(k, core, now);
  saveInterruptedIP(k);
  checkBudget(k);
  k.irqPending = false;
  if (line >= 0 && line < k.irq.pending.length) {
    if (k.irq.masked[line] !== 0) k.irq.pending[line] = 1;
    else handleInterrupt(k, line);
  }
  handlePendingInterrupts(k);
  leave(k);
}

/**
 * Another core changed this core's ready queues (seL4's reschedule IPI): re-run the scheduler
 * on `core`, charging time as every entry does.
 */
export function ipiEntry(k: Kernel, core: number, now: number): void {
  enter(k, core, now);
  saveInterruptedIP(k);
  k.node.ipiPending = false;
  if (checkBudget(k)) rescheduleRequired(k);
  leave(k);
}

/** Mark an interrupt pending without entering the kernel; long operations yield to it at their next preemption point. */
export function raiseInterrupt(k: Kernel, line: number): void {
  if (line < 0 || line >= k.irq.pending.length) return;
  k.irq.pending[line] = 1;
  k.irqPending = true;
}

/** Used by tests and tools: the endpoint and notification types are part of the entry surface. */
export type BlockingObject = Endpoint | Notification;
