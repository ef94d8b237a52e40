/**
 * CSpace addressing (manual §3.3 "CSpace Addressing"): a capability address is resolved by
 * consuming, at each CNode, the cap's guard and then its radix bits from the most significant
 * end of the `depth` least significant bits of the address. Mirrors seL4 src/kernel/cspace.c.
 */
import type { Kernel } from "../state.js";
import type { Cap, CNodeObj, LookupFault, Slot, TCB } from "../structures.js";
import { CapType, Exception, LookupFailure, SeL4Error, TCB_CTABLE, WORD_BITS } from "../types.js";
import { extractBits, extractHi, extractLo } from "./word.js";

export function lookupFault(
  type: LookupFailure,
  bitsLeft = 0,
  bitsFound = 0,
  guardFoundLo = 0,
  guardFoundHi = 0,
): LookupFault {
  return { type, bitsLeft, bitsFound, guardFoundLo, guardFoundHi };
}

/**
 * Resolve `nBits` bits of the address (hi:lo) starting at nodeCap. Returns the slot reached,
 * or null with k.lookupFault set. k.bitsRemaining tells how many bits were left unresolved
 * when resolution stopped at a slot holding something other than a CNode cap.
 */
export function resolveAddressBits(
  k: Kernel,
  nodeCap: Cap,
  hi: number,
  lo: number,
  nBits: number,
): Slot | null {
  k.bitsRemaining = nBits;
  if (nodeCap.type !== CapType.CNode) {
    k.lookupFault = lookupFault(LookupFailure.InvalidRoot);
    return null;
  }
  for (;;) {
    const radixBits = nodeCap.sizeBits;
    const guardBits = nodeCap.guardSize;
    const levelBits = radixBits + guardBits;
    if (guardBits > nBits) {
      k.lookupFault = lookupFault(
        LookupFailure.GuardMismatch,
        nBits,
        guardBits,
        nodeCap.guardLo,
        nodeCap.guardHi,
      );
      return null;
    }
    if (guardBits > 0) {
      const shift = nBits - guardBits;
      const gLo = extractLo(hi, lo, shift, guardBits);
      const gHi = extractHi(hi, lo, shift, guardBits);
      if (gLo !== nodeCap.guardLo || gHi !== nodeCap.guardHi) {
        k.lookupFault = lookupFault(
          LookupFailure.GuardMismatch,
          nBits,
          guardBits,
          nodeCap.guardLo,
          nodeCap.guardHi,
        );
        return null;
      }
    }
    if (levelBits > nBits) {
      k.lookupFault = lookupFault(LookupFailure.DepthMismatch, nBits, levelBits);
      return null;
    }
    const offset = extractBits(hi, lo, nBits - levelBits, radixBits);
    const slot = (nodeCap.obj as CNodeObj).slot(offset);
    if (nBits === levelBits) {
      k.bitsRemaining = 0;
      return slot;
    }
    nBits -= levelBits;
    nodeCap = slot.cap;
    if (nodeCap.type !== CapType.CNode) {
      k.bitsRemaining = nBits;
      return slot;
    }
  }
}

/** seL4 lookupSlot: resolve a full word in the thread's CSpace (bits may remain: "don't care" bits). */
export function lookupSlot(k: Kernel, thread: TCB, hi: number, lo: number): Slot | null {
  return resolveAddressBits(k, thread.ctes[TCB_CTABLE]!.cap, hi, lo, WORD_BITS);
}

/** seL4 lookupCap: the cap at the address, or null with k.lookupFault set. */
export function lookupCap(k: Kernel, thread: TCB, hi: number, lo: number): Cap | null {
  const s = lookupSlot(k, thread, hi, lo);
  return s === null ? null : s.cap;
}

/**
 * seL4 lookupSlotForCNodeOp: an exact-depth lookup for CNode invocations. On failure sets
 * k.syscallError and returns null.
 */
export function lookupSlotForCNodeOp(
  k: Kernel,
  isSource: boolean,
  root: Cap,
  hi: number,
  lo: number,
  depth: number,
): Slot | null {
  const err = k.syscallError;
  if (root.type !== CapType.CNode) {
    err.type = SeL4Error.FailedLookup;
    err.failedLookupWasSource = isSource;
    k.lookupFault = lookupFault(LookupFailure.InvalidRoot);
    return null;
  }
  if (depth < 1 || depth > WORD_BITS) {
    err.type = SeL4Error.RangeError;
    err.rangeErrorMin = 1;
    err.rangeErrorMax = WORD_BITS;
    return null;
  }
  const slot = resolveAddressBits(k, root, hi, lo, depth);
  if (slot === null) {
    err.type = SeL4Error.FailedLookup;
    err.failedLookupWasSource = isSource;
    return null;
  }
  if (k.bitsRemaining !== 0) {
    err.type = SeL4Error.FailedLookup;
    err.failedLookupWasSource = isSource;
    k.lookupFault = lookupFault(LookupFailure.DepthMismatch, k.bitsRemaining, 0);
    return null;
  }
  return slot;
}

export function lookupSourceSlot(k: Kernel, root: Cap, hi: number, lo: number, depth: number): Slot | null {
  return lookupSlotForCNodeOp(k, true, root, hi, lo, depth);
}
export function lookupTargetSlot(k: Kernel, root: Cap, hi: number, lo: number, depth: number): Slot | null {
  return lookupSlotForCNodeOp(k, false, root, hi, lo, depth);
}
export function lookupPivotSlot(k: Kernel, root: Cap, hi: number, lo: number, depth: number): Slot | null {
  return lookupSlotForCNodeOp(k, true, root, hi, lo, depth);
}

/** Status for callers that mirror seL4's exception_t returns. */
export const LOOKUP_OK = Exception.None;

/** seL4 lookupCapAndSlot: the slot at the address (its cap is slot.cap), or null with k.lookupFault set. */
export function lookupCapAndSlot(k: Kernel, thread: TCB, hi: number, lo: number): Slot | null {
  return lookupSlot(k, thread, hi, lo);
}
