/**
 * Interrupts (seL4 src/object/interrupt.c and src/arch/arm/object/interrupt.c; manual §9
 * "Hardware I/O", "Interrupt delivery").
 *
 * IRQControl issues one IRQHandler cap per line; the handler cap binds a notification (a copy of
 * the notification cap is kept in the line's slot of the kernel's IRQ node). A raised line in the
 * Signal state signals that notification with the cap's badge and stays masked until the handler
 * acknowledges it. The timer line belongs to the kernel (IRQState.Timer) and is never issued.
 */
import { lookupTargetSlot } from "../core/cspace.js";
import {
  getSyscallArg,
  getSyscallArgHi,
  getSyscallArgLo,
  illegalOperation,
  invalidCapability,
  rangeError,
  syscallError,
  truncatedMessage,
} from "../core/message.js";
import { setThreadState } from "../core/thread.js";
import type { Kernel } from "../state.js";
import { Cap, IRQState, type Notification, type Slot } from "../structures.js";
import { CapType, Exception, Invocation, RIGHT_WRITE, SeL4Error, ThreadState } from "../types.js";
import { cteDeleteOne, cteInsert, ensureEmptySlot } from "./cnode.js";
import { sendSignal } from "./notification.js";

/** On the GIC, lines below 32 are SGIs and PPIs: private to a core (seL4 NUM_PPI). */
const NUM_PPI = 32;

/** The kernel's timer line counts as active from boot (seL4 reserves KERNEL_TIMER_IRQ). */
function irqState(k: Kernel, line: number): IRQState {
  const s = k.irq.state[line]!;
  if (s === IRQState.Inactive && line === k.config.timerIrq) {
    k.irq.state[line] = IRQState.Timer;
    return IRQState.Timer;
  }
  return s;
}

/** seL4 isIRQActive. */
export function isIRQActive(k: Kernel, line: number): boolean {
  return irqState(k, line) !== IRQState.Inactive;
}

/** seL4 setIRQState: an inactive line is masked, any other unmasked. */
export function setIRQState(k: Kernel, state: IRQState, line: number): void {
  k.irq.state[line] = state;
  k.irq.masked[line] = state === IRQState.Inactive ? 1 : 0;
}

/** seL4 Arch_checkIRQ: lines 0..maxIRQ exist. */
function checkIRQ(k: Kernel, irq: number): Exception {
  const maxIRQ = k.config.irqLines - 1;
  if (irq > maxIRQ) return rangeError(k, 0, maxIRQ);
  return Exception.None;
}

/**
 * The common tail of IRQControl Get and GetTrigger: line free, destination slot empty, then
 * issue the handler cap as an MDB child of the IRQControl cap.
 */
function issueIRQHandler(
  k: Kernel,
  srcSlot: Slot,
  irq: number,
  root: Cap,
  indexLo: number,
  indexHi: number,
  depth: number,
): Exception {
  if (isIRQActive(k, irq)) return syscallError(k, SeL4Error.RevokeFirst);
  const destSlot = lookupTargetSlot(k, root, indexHi, indexLo, depth);
  if (destSlot === null) return Exception.SyscallError;
  if (ensureEmptySlot(k, destSlot) !== Exception.None) return Exception.SyscallError;
  setThreadState(k, k.curThread, ThreadState.Restart);
  invokeIRQControl(k, irq, destSlot, srcSlot);
  return Exception.None;
}

/** seL4 invokeIRQControl. */
function invokeIRQControl(k: Kernel, irq: number, handlerSlot: Slot, controlSlot: Slot): void {
  setIRQState(k, IRQState.Signal, irq);
  const cap = new Cap(CapType.IRQHandler, null);
  cap.irq = irq;
  cteInsert(k, cap, controlSlot, handlerSlot);
}

/**
 * seL4 decodeIRQControlInvocation: IRQControl_Get(irq, root, index, depth) and the ARM
 * IRQControl_GetTrigger(irq, trigger, root, index, depth).
 */
export function decodeIRQControlInvocation(
  k: Kernel,
  label: number,
  length: number,
  srcSlot: Slot,
): Exception {
  const t = k.curThread;
  const root = k.extraCaps[0];
  if (label === Invocation.IRQIssueIRQHandler) {
    if (length < 3 || root === null || root === undefined) return truncatedMessage(k);
    const irq = getSyscallArg(t, 0);
    if (checkIRQ(k, irq) !== Exception.None) return Exception.SyscallError;
    return issueIRQHandler(
      k,
      srcSlot,
      irq,
      root.cap,
      getSyscallArgLo(t, 1),
      getSyscallArgHi(t, 1),
      getSyscallArg(t, 2),
    );
  }
  if (label === Invocation.ARMIRQIssueIRQHandlerTrigger) {
    if (length < 4 || root === null || root === undefined) return truncatedMessage(k);
    const irq = getSyscallArg(t, 0);
    // The trigger mode (MR1) only programs the GIC; the abstract lines have no trigger to set.
    if (checkIRQ(k, irq) !== Exception.None) return Exception.SyscallError;
    // With SMP, private lines need the per-core variant (seL4 GetTriggerCore), not modelled.
    if (k.config.cores > 1 && irq < NUM_PPI) return illegalOperation(k);
    return issueIRQHandler(
      k,
      srcSlot,
      irq,
      root.cap,
      getSyscallArgLo(t, 2),
      getSyscallArgHi(t, 2),
      getSyscallArg(t, 3),
    );
  }
  return illegalOperation(k);
}

/** seL4 decodeIRQHandlerInvocation: Ack, SetNotification, Clear. */
export function decodeIRQHandlerInvocation(k: Kernel, label: number, irq: number): Exception {
  const t = k.curThread;
  switch (label) {
    case Invocation.IRQAckIRQ:
      setThreadState(k, t, ThreadState.Restart);
      invokeAckIRQ(k, irq);
      return Exception.None;
    case Invocation.IRQSetIRQHandler: {
      const slot = k.extraCaps[0];
      if (slot === null || slot === undefined) return truncatedMessage(k);
      const ntfnCap = slot.cap;
      if (ntfnCap.type !== CapType.Notification || (ntfnCap.rights & RIGHT_WRITE) === 0) {
        return invalidCapability(k, 0);
      }
      setThreadState(k, t, ThreadState.Restart);
      const irqSlot = k.irq.handlerSlots[irq]!;
      cteDeleteOne(k, irqSlot);
      cteInsert(k, ntfnCap, slot, irqSlot);
      return Exception.None;
    }
    case Invocation.IRQClearIRQHandler:
      setThreadState(k, t, ThreadState.Restart);
      cteDeleteOne(k, k.irq.handlerSlots[irq]!);
      return Exception.None;
    default:
      return illegalOperation(k);
  }
}

/**
 * seL4 invokeIRQHandler_AckIRQ: unmask the line. A line raised while masked was held pending by
 * the interrupt controller; it is taken now, as the hardware would right after the unmask.
 */
function invokeAckIRQ(k: Kernel, irq: number): void {
  k.irq.masked[irq] = 0;
  if (k.irq.pending[irq] !== 0) {
    k.irq.pending[irq] = 0;
    handleInterrupt(k, irq);
  }
}

/** seL4 deletingIRQHandler: the last handler cap goes; drop the notification bound to the line. */
export function deletingIRQHandler(k: Kernel, line: number): void {
  cteDeleteOne(k, k.irq.handlerSlots[line]!);
}

/** seL4 deletedIRQHandler: the line is free again (and masked). */
export function deletedIRQHandler(k: Kernel, line: number): void {
  setIRQState(k, IRQState.Inactive, line);
}

/**
 * seL4 handleInterrupt: deliver a raised line. Signal: signal the bound notification (if it has
 * the Write right) with its badge and mask the line until Ack (GICv2 behaviour). Timer: the
 * kernel reprograms its deadline (MCS). Inactive or reserved: mask it, as seL4 does.
 */
export function handleInterrupt(k: Kernel, line: number): void {
  if (line < 0 || line >= k.irq.state.length) return;
  switch (irqState(k, line)) {
    case IRQState.Signal: {
      const cap = k.irq.handlerSlots[line]!.cap;
      if (cap.type === CapType.Notification && (cap.rights & RIGHT_WRITE) !== 0) {
        sendSignal(k, cap.obj as Notification, cap.badgeLo, cap.badgeHi);
      }
      k.irq.masked[line] = 1;
      k.stats.interrupts++;
      break;
    }
    case IRQState.Timer:
      // MCS: ackDeadlineIRQ; the deadline is recomputed on the way out (ksReprogram).
      k.node.reprogram = true;
      k.stats.timerInterrupts++;
      break;
    default:
      k.irq.masked[line] = 1;
      break;
  }
}
