/**
 * Fault values and fault messages (seL4 src/api/faults.c, src/arch/arm/api/faults.c,
 * include/api/faults.h), MCS configuration, AArch64 message layouts (libsel4
 * sel4_arch/constants.h). Manual §6.2 "Fault handlers" and §6.2.1-§6.2.7 describe each message.
 *
 * A Fault is `{type, words}`. The words hold what seL4 keeps in the seL4_Fault_t bitfield; the
 * registers a message reports (FaultIP, SP, x0..x7, ...) are read from the faulting thread when the
 * message is delivered, exactly as seL4's setMRs_fault reads them then.
 *
 * Word layouts:
 * - CapFault:       [addrLo, addrHi, inReceivePhase, lufType, bitsLeft, bitsFound, guardLo, guardHi]
 *                   (the last five are copied from the lookup failure when the fault is sent,
 *                   as seL4 copies current_lookup_fault into tcbLookupFailure)
 * - UnknownSyscall: [sysnoLo, sysnoHi]
 * - UserException:  [numberLo, numberHi, codeLo, codeHi]
 * - VMFault:        [addrLo, addrHi, prefetchFault, fsrLo, fsrHi]
 * - Timeout:        [badgeLo, badgeHi, consumedLo, consumedHi]
 */
import { schedContextUpdateConsumed } from "../object/schedcontext.js";
import type { Kernel } from "../state.js";
import type { Fault, LookupFault, TCB } from "../structures.js";
import {
  FaultType,
  IPCBUF_MSG,
  LookupFailure,
  MSG_MAX_LENGTH,
  MSG_REGISTERS,
  REG_MR0,
  REG_MSGINFO,
  REG_PC,
  REG_SP,
  REG_SPSR,
  REG_X0,
} from "../types.js";

const TWO32 = 4294967296;

/** Pseudo register index for seL4's FaultIP (kept in tcb.faultIP, not in the user context). */
const FAULT_IP = -1;

/** AArch64 PSTATE for user threads (seL4 PSTATE_USER, release build: PMODE_FIRQ | PMODE_SERROR). */
export const PSTATE_USER = 0x140;

/**
 * seL4 SYSCALL_MESSAGE (AArch64): X0..X7, FaultIP, SP, LR, SPSR. seL4 maps the "LR" entry to
 * ELR_EL1, the next pc, which is our REG_PC after the syscall advanced it.
 */
const SYSCALL_MESSAGE = Int8Array.of(
  REG_X0,
  REG_X0 + 1,
  REG_X0 + 2,
  REG_X0 + 3,
  REG_X0 + 4,
  REG_X0 + 5,
  REG_X0 + 6,
  REG_X0 + 7,
  FAULT_IP,
  REG_SP,
  REG_PC,
  REG_SPSR,
);
/** seL4 EXCEPTION_MESSAGE (AArch64): FaultIP, SP, SPSR. */
const EXCEPTION_MESSAGE = Int8Array.of(FAULT_IP, REG_SP, REG_SPSR);
/**
 * seL4 TIMEOUT_REPLY_MESSAGE (AArch64): FaultIP, SP, SPSR, x0..x8, x16, x17, x18, x29, x30,
 * x9..x15, x19..x28: the seL4_UserContext order with pc replaced by FaultIP, i.e. our register
 * indices 1..33 after FaultIP.
 */
const TIMEOUT_REPLY_MESSAGE = (() => {
  const a = new Int8Array(34);
  a[0] = FAULT_IP;
  for (let i = 1; i < 34; i++) a[i] = i;
  return a;
})();
const N_SYSCALL_MESSAGE = 12;
const N_EXCEPTION_MESSAGE = 3;
const N_TIMEOUT_MESSAGE = 34;

/** Low half of a 64-bit word given as a number in (-2^53, 2^53); negatives as two's complement. */
function lo64(v: number): number {
  if (v < 0) return (~(-v >>> 0) + 1) >>> 0;
  return v >>> 0;
}
function hi64(v: number): number {
  if (v < 0) {
    // two's complement of a small negative number (e.g. a syscall number)
    const m = -v;
    const lo = m >>> 0;
    const hi = Math.floor(m / TWO32) >>> 0;
    return (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  return Math.floor(v / TWO32) >>> 0;
}

// ---- constructors (seL4_Fault_*_new) ----

export function capFault(addrLo: number, addrHi: number, inReceivePhase: boolean): Fault {
  return {
    type: FaultType.CapFault,
    words: [addrLo >>> 0, addrHi >>> 0, inReceivePhase ? 1 : 0, LookupFailure.NoFailure, 0, 0, 0, 0],
  };
}

/**
 * Record the lookup failure of a cap fault in the fault itself (seL4 sendFaultIPC copies
 * current_lookup_fault into tcbLookupFailure when it sends a cap fault).
 */
export function recordLookupFailure(f: Fault, lf: LookupFault | null): void {
  if (f.type !== FaultType.CapFault) return;
  const w = f.words;
  if (lf === null) {
    w[3] = LookupFailure.NoFailure;
    w[4] = w[5] = w[6] = w[7] = 0;
    return;
  }
  w[3] = lf.type;
  w[4] = lf.bitsLeft;
  w[5] = lf.bitsFound;
  w[6] = lf.guardFoundLo >>> 0;
  w[7] = lf.guardFoundHi >>> 0;
}

export function unknownSyscallFault(sysno: number): Fault {
  return { type: FaultType.UnknownSyscall, words: [lo64(sysno), hi64(sysno)] };
}

export function userException(number: number, code: number): Fault {
  return { type: FaultType.UserException, words: [lo64(number), hi64(number), lo64(code), hi64(code)] };
}

export function vmFault(addr: number, fsr: number, instructionFault: boolean): Fault {
  return {
    type: FaultType.VMFault,
    words: [lo64(addr), hi64(addr), instructionFault ? 1 : 0, lo64(fsr), hi64(fsr)],
  };
}

/**
 * MCS timeout fault (seL4_Fault_Timeout_new(scBadge)). seL4 reads the SC's consumed time when the
 * message is delivered (setMRs_fault); `consumed` (µs) is added to that, for a caller that already
 * took the SC's consumed time. Callers following seL4 pass 0.
 */
export function timeoutFault(scBadgeLo: number, scBadgeHi: number, consumed: number): Fault {
  return {
    type: FaultType.Timeout,
    words: [scBadgeLo >>> 0, scBadgeHi >>> 0, lo64(consumed), hi64(consumed)],
  };
}

// ---- message registers with seL4's setMR semantics ----

/**
 * seL4 setMR: MR i of the receiver. Without an IPC buffer, writes to MR >= 4 are dropped and the
 * message length becomes n_msgRegisters (seL4 returns n_msgRegisters there, not i).
 */
function setMRFault(receiver: TCB, i: number, lo: number, hi: number): number {
  if (i < MSG_REGISTERS) {
    receiver.regs[2 * (REG_MR0 + i)] = lo;
    receiver.regs[2 * (REG_MR0 + i) + 1] = hi;
    return i + 1;
  }
  const b = receiver.ipcBuffer;
  if (b === null) return MSG_REGISTERS;
  b[2 * (IPCBUF_MSG + i)] = lo;
  b[2 * (IPCBUF_MSG + i) + 1] = hi;
  return i + 1;
}

function setMRNum(receiver: TCB, i: number, v: number): number {
  return setMRFault(receiver, i, lo64(v), hi64(v));
}

function regLo(t: TCB, r: number): number {
  return r === FAULT_IP ? t.faultIP >>> 0 : t.regs[2 * r]!;
}
function regHi(t: TCB, r: number): number {
  return r === FAULT_IP ? Math.floor(t.faultIP / TWO32) >>> 0 : t.regs[2 * r + 1]!;
}

/** seL4 copyMRsFault: registers of the faulting thread into the handler's MRs. */
function copyMRsFault(sender: TCB, receiver: TCB, table: Int8Array, length: number): void {
  let i = 0;
  for (; i < length && i < MSG_REGISTERS; i++) {
    const r = table[i]!;
    receiver.regs[2 * (REG_MR0 + i)] = regLo(sender, r);
    receiver.regs[2 * (REG_MR0 + i) + 1] = regHi(sender, r);
  }
  const b = receiver.ipcBuffer;
  if (b === null) return;
  for (; i < length; i++) {
    const r = table[i]!;
    b[2 * (IPCBUF_MSG + i)] = regLo(sender, r);
    b[2 * (IPCBUF_MSG + i) + 1] = regHi(sender, r);
  }
}

/**
 * seL4 sanitiseRegister (AArch64): user code may not set the SPSR to a privileged mode. A thread
 * with a VCPU may run its guest at EL1 (seL4 Arch_getSanitiseRegisterInfo).
 */
export function sanitiseRegister(
  r: number,
  lo: number,
  hi: number,
  hasVCPU: boolean,
  out: Uint32Array,
  at: number,
): void {
  if (r === REG_SPSR) {
    const mode = lo & 0x1f;
    if (hasVCPU && (mode === 0 || mode === 4 || mode === 5)) {
      out[at] = lo;
      out[at + 1] = hi;
      return;
    }
    out[at] = ((lo & 0xf0000000) | PSTATE_USER) >>> 0;
    out[at + 1] = 0;
    return;
  }
  out[at] = lo;
  out[at + 1] = hi;
}

function writeReplyReg(receiver: TCB, r: number, lo: number, hi: number): void {
  if (r === FAULT_IP) {
    receiver.faultIP = hi * TWO32 + lo;
    return;
  }
  sanitiseRegister(r, lo, hi, receiver.vcpu !== null, receiver.regs, 2 * r);
}

/** seL4 copyMRsFaultReply: the handler's reply MRs back into the faulted thread's registers. */
function copyMRsFaultReply(sender: TCB, receiver: TCB, table: Int8Array, length: number): void {
  let i = 0;
  for (; i < length && i < MSG_REGISTERS; i++) {
    writeReplyReg(receiver, table[i]!, sender.regs[2 * (REG_MR0 + i)]!, sender.regs[2 * (REG_MR0 + i) + 1]!);
  }
  if (i < length) {
    const b = sender.ipcBuffer;
    if (b === null) return;
    for (; i < length; i++) {
      writeReplyReg(receiver, table[i]!, b[2 * (IPCBUF_MSG + i)]!, b[2 * (IPCBUF_MSG + i) + 1]!);
    }
  }
}

/**
 * seL4 setMRs_fault: the fault message of `sender`'s pending fault, written to `receiver`.
 * Returns the message length (manual §6.2, layouts of seL4_CapFault_*, seL4_UnknownSyscall_*,
 * seL4_UserException_*, seL4_VMFault_*, seL4_Timeout_*).
 */
export function setMRsFault(k: Kernel, sender: TCB, receiver: TCB): number {
  const f = sender.fault;
  if (f === null) return 0;
  const w = f.words;
  switch (f.type) {
    case FaultType.CapFault: {
      // seL4_CapFault_IP, _Addr, _InRecvPhase, _LookupFailureType, then the failure's details.
      setMRNum(receiver, 0, sender.faultIP);
      setMRFault(receiver, 1, w[0]!, w[1]!);
      setMRNum(receiver, 2, w[2]!);
      const type = w[3]!;
      const n = setMRNum(receiver, 3, type);
      if (type === LookupFailure.NoFailure || type === LookupFailure.InvalidRoot) return n;
      const m = setMRNum(receiver, 4, w[4]!);
      if (type === LookupFailure.MissingCapability) return m;
      if (type === LookupFailure.DepthMismatch) return setMRNum(receiver, 5, w[5]!);
      // GuardMismatch: guard found, then its size.
      setMRFault(receiver, 5, w[6]!, w[7]!);
      return setMRNum(receiver, 6, w[5]!);
    }
    case FaultType.UnknownSyscall:
      copyMRsFault(sender, receiver, SYSCALL_MESSAGE, N_SYSCALL_MESSAGE);
      return setMRFault(receiver, N_SYSCALL_MESSAGE, w[0]!, w[1]!);
    case FaultType.UserException:
      copyMRsFault(sender, receiver, EXCEPTION_MESSAGE, N_EXCEPTION_MESSAGE);
      setMRFault(receiver, N_EXCEPTION_MESSAGE, w[0]!, w[1]!);
      return setMRFault(receiver, N_EXCEPTION_MESSAGE + 1, w[2]!, w[3]!);
    case FaultType.Timeout: {
      // seL4_Timeout_Data = badge; seL4_Timeout_Consumed only when the thread still has an SC.
      const sc = sender.sc;
      if (sc !== null) {
        const consumed = w[3]! * TWO32 + w[2]! + schedContextUpdateConsumed(k, sc);
        const len = setMRFault(receiver, 0, w[0]!, w[1]!);
        return setMRNum(receiver, len, consumed);
      }
      return setMRFault(receiver, 0, w[0]!, w[1]!);
    }
    case FaultType.VMFault:
      // seL4_VMFault_IP, _Addr, _PrefetchFault, _FSR.
      setMRNum(receiver, 0, sender.faultIP);
      setMRFault(receiver, 1, w[0]!, w[1]!);
      setMRNum(receiver, 2, w[2]!);
      return setMRFault(receiver, 3, w[3]!, w[4]!);
    default: {
      // Hypervisor faults (VGICMaintenance, VCPUFault, VPPIEvent) carry one word.
      if (w.length >= 2) return setMRFault(receiver, 0, w[0]!, w[1]!);
      return 0;
    }
  }
}

/** Label and (clamped, as seL4 messageInfoFromWord) length of a message info register. */
function replyLength(t: TCB): number {
  const len = t.regs[2 * REG_MSGINFO]! & 0x7f;
  return Math.min(len, MSG_MAX_LENGTH);
}
function replyLabelIsZero(t: TCB): boolean {
  return (t.regs[2 * REG_MSGINFO]! & 0xfffff000) === 0 && t.regs[2 * REG_MSGINFO + 1] === 0;
}

/**
 * seL4 handleFaultReply: a reply to a fault message. UnknownSyscall, UserException and Timeout
 * replies write the faulted thread's registers from the reply's MRs (up to the reply's length);
 * the thread restarts when the label is 0 (manual §6.2.3-§6.2.4). Cap faults and VM faults always
 * restart. Returns true when the faulted thread should restart.
 */
export function handleFaultReply(_k: Kernel, receiver: TCB, sender: TCB): boolean {
  const f = receiver.fault;
  if (f === null) return true;
  const length = replyLength(sender);
  switch (f.type) {
    case FaultType.CapFault:
      return true;
    case FaultType.UnknownSyscall:
      copyMRsFaultReply(sender, receiver, SYSCALL_MESSAGE, Math.min(length, N_SYSCALL_MESSAGE));
      return replyLabelIsZero(sender);
    case FaultType.UserException:
      copyMRsFaultReply(sender, receiver, EXCEPTION_MESSAGE, Math.min(length, N_EXCEPTION_MESSAGE));
      return replyLabelIsZero(sender);
    case FaultType.Timeout:
      copyMRsFaultReply(sender, receiver, TIMEOUT_REPLY_MESSAGE, Math.min(length, N_TIMEOUT_MESSAGE));
      return replyLabelIsZero(sender);
    default:
      // VMFault and the hypervisor faults restart the thread (seL4 Arch_handleFaultReply).
      return true;
  }
}
