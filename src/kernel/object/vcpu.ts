/**
 * Virtual CPUs for hardware-virtualised guests (seL4 src/arch/arm/object/vcpu.c; manual §7.5
 * "Virtualisation", ARM VCPU invocations of object-api-arch.xml).
 *
 * A VCPU holds the guest's EL1 system registers (by seL4_VCPUReg number), the virtual GIC list
 * registers through which the VMM injects virtual interrupts, and the mask state of the virtual
 * PPIs the kernel forwards (the virtual timer). The VCPU backend (vmm/) reads and writes these.
 */
import {
  getSyscallArg,
  getSyscallArgHi,
  getSyscallArgLo,
  illegalOperation,
  invalidArgument,
  rangeError,
  setMR,
  setMsgInfo,
  syscallError,
  truncatedMessage,
} from "../core/message.js";
import { setThreadState } from "../core/thread.js";
import type { Kernel } from "../state.js";
import type { Cap, TCB, VCPU } from "../structures.js";
import { CapType, Exception, Invocation, REG_BADGE, REG_SPSR, SeL4Error, ThreadState } from "../types.js";

/** seL4_VCPUReg_Num on AArch64 (SCTLR .. CNTKCTL_EL1). */
export const VCPU_REG_NUM = 24;
export const VCPU_REG_SCTLR = 0;
/** List registers of the virtual GIC interface (GICv2 on QEMU virt implements 4). */
export const GIC_VCPU_NUM_LIST_REGS = 4;
/** The virtual timer PPI, the only VPPI event seL4 forwards on ARM (INTERRUPT_VTIMER_EVENT). */
export const INTERRUPT_VTIMER_EVENT = 27;
/** Index of the virtual timer in the VCPU's VPPI mask set (seL4 VPPIEventIRQ_VTimer). */
export const VPPI_EVENT_VTIMER = 0;
/** SCTLR_EL1 a new VCPU starts with (seL4 SCTLR_EL1_VM). */
const SCTLR_EL1_VM = 0x34d58820;
/** SPSR of a thread without a VCPU: EL0t with FIQs masked (seL4 PSTATE_USER). */
const PSTATE_USER = 0x40;

/** GICv2 list-register encoding: vid[9:0], EOI maintenance[19], priority[27:23], state[29:28], group[30]. */
export const LR_STATE_PENDING = 1;
export const LR_STATE_ACTIVE = 2;
/** Maintenance interrupt on EOI, which seL4 always requests for injected interrupts. */
const LR_EOI_IRQ_EN = 1 << 19;
export function lrState(lr: number): number {
  return (lr >>> 28) & 3;
}
function virqPending(group: number, priority: number, vid: number): number {
  return ((group << 30) | (LR_STATE_PENDING << 28) | (priority << 23) | LR_EOI_IRQ_EN | vid) >>> 0;
}

/** seL4 vcpu_init: reset system registers, empty list registers. */
export function vcpuInit(v: VCPU): void {
  v.regs.set(VCPU_REG_SCTLR, SCTLR_EL1_VM);
  v.lrs.length = 0;
  for (let i = 0; i < GIC_VCPU_NUM_LIST_REGS; i++) v.lrs.push(0);
}

/** seL4 dissociateVCPUTCB: break the pairing; the thread's SPSR is sanitised for user mode. */
export function dissociateVCPUTCB(_k: Kernel, v: VCPU, t: TCB): void {
  if (t.vcpu !== v || v.tcb !== t) return;
  t.vcpu = null;
  v.tcb = null;
  // sanitiseRegister(SPSR_EL1, v, archInfo = false): keep the flags, force EL0t.
  const spsr = t.regs[2 * REG_SPSR]!;
  t.regs[2 * REG_SPSR] = ((spsr & 0xf0000000) | PSTATE_USER) >>> 0;
  t.regs[2 * REG_SPSR + 1] = 0;
}

/** seL4 associateVCPUTCB: each side drops any previous partner first. */
function associateVCPUTCB(k: Kernel, v: VCPU, t: TCB): void {
  if (t.vcpu !== null) dissociateVCPUTCB(k, t.vcpu, t);
  if (v.tcb !== null) dissociateVCPUTCB(k, v, v.tcb);
  t.vcpu = v;
  v.tcb = t;
}

/** seL4 vcpu_finalise: a VCPU being deleted leaves its thread. */
export function vcpuFinalise(k: Kernel, v: VCPU): void {
  if (v.tcb !== null) dissociateVCPUTCB(k, v, v.tcb);
}

/**
 * seL4 decodeARMVCPUInvocation. `isCall` matters only to ReadRegs, which replies with the value
 * only to a Call (an addition to the shared signature, defaulting to a Call).
 */
export function decodeARMVCPUInvocation(
  k: Kernel,
  label: number,
  length: number,
  cap: Cap,
  isCall = true,
): Exception {
  const v = cap.obj as VCPU;
  const t = k.curThread;
  switch (label) {
    case Invocation.ARMVCPUSetTCB: {
      const tcbSlot = k.extraCaps[0];
      if (tcbSlot === null || tcbSlot === undefined) return truncatedMessage(k);
      const tcbCap = tcbSlot.cap;
      if (tcbCap.type !== CapType.Thread) return illegalOperation(k);
      setThreadState(k, t, ThreadState.Restart);
      associateVCPUTCB(k, v, tcbCap.obj as TCB);
      return Exception.None;
    }
    case Invocation.ARMVCPUReadReg: {
      if (length < 1) return truncatedMessage(k);
      const field = getSyscallArg(t, 0);
      if (field >= VCPU_REG_NUM) return invalidArgument(k, 1);
      setThreadState(k, t, ThreadState.Restart);
      const value = v.regs.get(field) ?? 0;
      if (isCall) {
        t.regs[2 * REG_BADGE] = 0;
        t.regs[2 * REG_BADGE + 1] = 0;
        setMsgInfo(t, 0, 0, 0, setMR(t, 0, value));
      }
      setThreadState(k, t, ThreadState.Running);
      return Exception.None;
    }
    case Invocation.ARMVCPUWriteReg: {
      if (length < 2) return truncatedMessage(k);
      const field = getSyscallArg(t, 0);
      // Registers are kept as numbers: values above 2^53 lose their low bits.
      const value = getSyscallArg(t, 1);
      if (field >= VCPU_REG_NUM) return invalidArgument(k, 1);
      setThreadState(k, t, ThreadState.Restart);
      v.regs.set(field, value);
      return Exception.None;
    }
    case Invocation.ARMVCPUInjectIRQ:
      return decodeInjectIRQ(k, length, v);
    case Invocation.ARMVCPUAckVPPI: {
      if (length < 1) return truncatedMessage(k);
      const irq = getSyscallArg(t, 0);
      const maxIRQ = k.config.irqLines - 1;
      if (irq > maxIRQ) return rangeError(k, 0, maxIRQ);
      if (irq !== INTERRUPT_VTIMER_EVENT) return invalidArgument(k, 0);
      setThreadState(k, t, ThreadState.Restart);
      v.vppiMasked.delete(VPPI_EVENT_VTIMER);
      return Exception.None;
    }
    default:
      return illegalOperation(k);
  }
}

/**
 * ARM_VCPU_InjectIRQ(virq, priority, group, index), packed in MR0 on AArch64: vid bits 0-15,
 * priority 16-23, group 24-31, list-register index 32-39.
 */
function decodeInjectIRQ(k: Kernel, length: number, v: VCPU): Exception {
  if (length < 1) return truncatedMessage(k);
  const t = k.curThread;
  const lo = getSyscallArgLo(t, 0);
  const vid = lo & 0xffff;
  const priority = (lo >>> 16) & 0xff;
  const group = (lo >>> 24) & 0xff;
  const index = getSyscallArgHi(t, 0) & 0xff;
  if (vid > (1 << 10) - 1) return rangeError(k, 0, (1 << 10) - 1);
  if (priority > 31) return rangeError(k, 0, 31);
  if (group > 1) return rangeError(k, 0, 1);
  if (index >= GIC_VCPU_NUM_LIST_REGS) return rangeError(k, 0, GIC_VCPU_NUM_LIST_REGS - 1);
  // A list register the guest is still servicing cannot be overwritten.
  if (lrState(v.lrs[index] ?? 0) === LR_STATE_ACTIVE) return syscallError(k, SeL4Error.DeleteFirst);
  setThreadState(k, t, ThreadState.Restart);
  v.lrs[index] = virqPending(group, priority, vid);
  return Exception.None;
}
