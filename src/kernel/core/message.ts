/**
 * Message registers, message info and syscall errors (seL4 include/api/types.h, src/api/faults.c
 * setMRs_* and src/kernel/thread.c replyFromKernel_*). Shared by every invocation decoder.
 *
 * Register ABI (AArch64): x1 carries the message info; MR0..MR3 are x2..x5; MR4..MR119 live only
 * in the IPC buffer, at word 1 + i. Words are two 32-bit halves (lo at even index).
 */
import type { Kernel } from "../state.js";
import type { TCB } from "../structures.js";
import {
  Exception,
  IPCBUF_CAPS,
  IPCBUF_MSG,
  LookupFailure,
  MSG_MAX_LENGTH,
  MSG_REGISTERS,
  REG_BADGE,
  REG_MR0,
  REG_MSGINFO,
  SeL4Error,
} from "../types.js";
import { extractBits } from "./word.js";

const TWO32 = 4294967296;

// ---- message info (manual §4.2.2; label:52 | capsUnwrapped:3 | extraCaps:2 | length:7) ----

export function msgInfoLength(t: TCB): number {
  return t.regs[2 * REG_MSGINFO]! & 0x7f;
}
export function msgInfoExtraCaps(t: TCB): number {
  return (t.regs[2 * REG_MSGINFO]! >>> 7) & 3;
}
export function msgInfoCapsUnwrapped(t: TCB): number {
  return (t.regs[2 * REG_MSGINFO]! >>> 9) & 7;
}
export function msgInfoLabel(t: TCB): number {
  return extractBits(t.regs[2 * REG_MSGINFO + 1]!, t.regs[2 * REG_MSGINFO]!, 12, 52);
}
/** Low and high halves of the label field (for exact copies of a 52-bit label). */
export function setMsgInfo(
  t: TCB,
  label: number,
  capsUnwrapped: number,
  extraCaps: number,
  length: number,
): void {
  // label < 2^52: its low 20 bits go to lo[12..31], the rest to hi.
  const lo =
    ((label % 1048576) * 4096 + ((capsUnwrapped & 7) << 9) + ((extraCaps & 3) << 7) + (length & 0x7f)) >>> 0;
  const hi = Math.floor(label / 1048576) >>> 0;
  t.regs[2 * REG_MSGINFO] = lo;
  t.regs[2 * REG_MSGINFO + 1] = hi;
}
/** Copy the raw message-info word (label kept exactly) but with new unwrapped/extra/length fields. */
export function copyMsgInfoLabel(
  from: TCB,
  to: TCB,
  capsUnwrapped: number,
  extraCaps: number,
  length: number,
): void {
  const lo = from.regs[2 * REG_MSGINFO]!;
  to.regs[2 * REG_MSGINFO] =
    ((lo & 0xfffff000) | ((capsUnwrapped & 7) << 9) | ((extraCaps & 3) << 7) | (length & 0x7f)) >>> 0;
  to.regs[2 * REG_MSGINFO + 1] = from.regs[2 * REG_MSGINFO + 1]!;
}

// ---- message registers ----

/** Low half of MR i of t (0 when it lies in a missing IPC buffer). */
export function getMRLo(t: TCB, i: number): number {
  if (i < MSG_REGISTERS) return t.regs[2 * (REG_MR0 + i)]!;
  const b = t.ipcBuffer;
  return b === null ? 0 : b[2 * (IPCBUF_MSG + i)]!;
}
export function getMRHi(t: TCB, i: number): number {
  if (i < MSG_REGISTERS) return t.regs[2 * (REG_MR0 + i) + 1]!;
  const b = t.ipcBuffer;
  return b === null ? 0 : b[2 * (IPCBUF_MSG + i) + 1]!;
}
/** MR i as a number (exact below 2^53; higher bits are rounded, so use the halves for badges). */
export function getMR(t: TCB, i: number): number {
  return getMRHi(t, i) * TWO32 + getMRLo(t, i);
}
/**
 * seL4 setMR: write MR i; returns i + 1, or MSG_REGISTERS when the register does not exist (no
 * IPC buffer), which is how seL4 truncates messages to threads without a buffer.
 */
export function setMRHalves(t: TCB, i: number, lo: number, hi: number): number {
  if (i < MSG_REGISTERS) {
    t.regs[2 * (REG_MR0 + i)] = lo;
    t.regs[2 * (REG_MR0 + i) + 1] = hi;
    return i + 1;
  }
  const b = t.ipcBuffer;
  if (b === null) return MSG_REGISTERS;
  if (i >= MSG_MAX_LENGTH) return i;
  b[2 * (IPCBUF_MSG + i)] = lo;
  b[2 * (IPCBUF_MSG + i) + 1] = hi;
  return i + 1;
}
/** setMR for a value in [0, 2^53) (or a negative number, stored as its 64-bit two's complement). */
export function setMR(t: TCB, i: number, v: number): number {
  if (v < 0) {
    const m = -v;
    const lo = m >>> 0;
    const hi = Math.floor(m / TWO32) >>> 0;
    // two's complement of (hi:lo)
    const nlo = (~lo + 1) >>> 0;
    const nhi = (~hi + (nlo === 0 ? 1 : 0)) >>> 0;
    return setMRHalves(t, i, nlo, nhi);
  }
  return setMRHalves(t, i, v >>> 0, Math.floor(v / TWO32) >>> 0);
}

/** seL4 getSyscallArg: argument i of an invocation (the caller checked the length). */
export function getSyscallArg(t: TCB, i: number): number {
  return getMR(t, i);
}
export function getSyscallArgLo(t: TCB, i: number): number {
  return getMRLo(t, i);
}
export function getSyscallArgHi(t: TCB, i: number): number {
  return getMRHi(t, i);
}

/** The cptr of extra cap i in the IPC buffer (caps_or_badges). */
export function extraCapCptrLo(t: TCB, i: number): number {
  const b = t.ipcBuffer;
  return b === null ? 0 : b[2 * (IPCBUF_CAPS + i)]!;
}
export function extraCapCptrHi(t: TCB, i: number): number {
  const b = t.ipcBuffer;
  return b === null ? 0 : b[2 * (IPCBUF_CAPS + i) + 1]!;
}

// ---- syscall errors (manual §10.1 and "Error codes" of each invocation) ----

export function syscallError(k: Kernel, type: SeL4Error): Exception {
  k.syscallError.type = type;
  return Exception.SyscallError;
}
export function invalidArgument(k: Kernel, argNumber: number): Exception {
  k.syscallError.invalidArgumentNumber = argNumber;
  return syscallError(k, SeL4Error.InvalidArgument);
}
export function invalidCapability(k: Kernel, capNumber: number): Exception {
  k.syscallError.invalidCapNumber = capNumber;
  return syscallError(k, SeL4Error.InvalidCapability);
}
export function illegalOperation(k: Kernel): Exception {
  return syscallError(k, SeL4Error.IllegalOperation);
}
export function truncatedMessage(k: Kernel): Exception {
  return syscallError(k, SeL4Error.TruncatedMessage);
}
export function rangeError(k: Kernel, min: number, max: number): Exception {
  k.syscallError.rangeErrorMin = min;
  k.syscallError.rangeErrorMax = max;
  return syscallError(k, SeL4Error.RangeError);
}
/** FailedLookup; the lookup fault details must already be in k.lookupFault. */
export function failedLookup(k: Kernel, wasSource: boolean): Exception {
  k.syscallError.failedLookupWasSource = wasSource;
  return syscallError(k, SeL4Error.FailedLookup);
}

/**
 * seL4 setMRs_lookup_failure: the lookup failure type (libsel4 numbering) at `offset`, then its
 * details. Returns the message length.
 */
export function setMRsLookupFailure(k: Kernel, t: TCB, offset: number): number {
  const lf = k.lookupFault;
  const type = lf === null ? LookupFailure.NoFailure : lf.type;
  const i = setMR(t, offset, type);
  if (lf === null || type === LookupFailure.NoFailure || type === LookupFailure.InvalidRoot) return i;
  setMR(t, offset + 1, lf.bitsLeft);
  if (type === LookupFailure.MissingCapability) return offset + 2;
  if (type === LookupFailure.DepthMismatch) {
    setMR(t, offset + 2, lf.bitsFound);
    return offset + 3;
  }
  setMRHalves(t, offset + 2, lf.guardFoundLo, lf.guardFoundHi);
  setMR(t, offset + 3, lf.bitsFound);
  return offset + 4;
}

/** seL4 setMRs_syscall_error: the error's payload; returns the message length. */
function setMRsSyscallError(k: Kernel, t: TCB): number {
  const e = k.syscallError;
  switch (e.type) {
    case SeL4Error.InvalidArgument:
      return setMR(t, 0, e.invalidArgumentNumber);
    case SeL4Error.InvalidCapability:
      return setMR(t, 0, e.invalidCapNumber);
    case SeL4Error.RangeError:
      setMR(t, 0, e.rangeErrorMin);
      return setMR(t, 1, e.rangeErrorMax);
    case SeL4Error.FailedLookup:
      setMR(t, 0, e.failedLookupWasSource ? 1 : 0);
      return setMRsLookupFailure(k, t, 1);
    case SeL4Error.NotEnoughMemory:
      return setMR(t, 0, e.memoryLeft);
    default:
      return 0;
  }
}

/** seL4 replyFromKernel_error: the invoker of a failed Call gets label = error, payload in MRs. */
export function replyFromKernelError(k: Kernel, t: TCB): void {
  t.regs[2 * REG_BADGE] = 0;
  t.regs[2 * REG_BADGE + 1] = 0;
  const len = setMRsSyscallError(k, t);
  setMsgInfo(t, k.syscallError.type, 0, 0, len);
}

/** seL4 replyFromKernel_success_empty. */
export function replyFromKernelSuccessEmpty(_k: Kernel, t: TCB): void {
  t.regs[2 * REG_BADGE] = 0;
  t.regs[2 * REG_BADGE + 1] = 0;
  setMsgInfo(t, 0, 0, 0, 0);
}

/**
 * seL4 preemptionPoint: long operations (revoke, delete, untyped reset) call this once per unit
 * of work; every workUnitsPerPreemption units, an interrupt that became pending lets the kernel
 * stop the operation, which the thread then restarts from its syscall (manual §2.3).
 */
export function preemptionPoint(k: Kernel): Exception {
  k.workUnits++;
  if (k.workUnits < k.config.workUnitsPerPreemption) return Exception.None;
  k.workUnits = 0;
  if (k.irqPending) {
    k.stats.preemptions++;
    return Exception.Preempted;
  }
  return Exception.None;
}
