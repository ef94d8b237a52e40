/**
 * CNode invocations and the capability derivation tree (seL4 src/object/cnode.c, MCS).
 *
 * The derivation tree is seL4's mapping database (manual §3.1.2 "Capability derivation"): every
 * non-null slot sits in one doubly-linked list (`mdbPrev`/`mdbNext`) in preorder of the tree, so
 * a slot's children are the entries right after it for which isMDBParentOf holds. `revocable`
 * marks original caps (those that may have children) and `firstBadged` the first cap minted with
 * a given badge, which is what makes badged endpoint caps revocable on their own.
 *
 * Deletion follows seL4's two-phase scheme: finaliseSlot asks finaliseCap to tear the object
 * down; objects with slots of their own (CNodes, TCBs) turn into Zombie caps whose slots are
 * emptied one by one (reduceZombie), with a preemption point after each, so deleting a large
 * CNode is a long-running, restartable operation (manual §3.1.4 "Deleting", §2.3).
 */
import { lookupFault, lookupPivotSlot, lookupSourceSlot, lookupTargetSlot } from "../core/cspace.js";
import {
  failedLookup,
  getSyscallArg,
  getSyscallArgHi,
  getSyscallArgLo,
  illegalOperation,
  preemptionPoint,
  syscallError,
  truncatedMessage,
} from "../core/message.js";
import { setThreadState } from "../core/thread.js";
import type { Kernel } from "../state.js";
import {
  type Cap,
  type CNodeObj,
  type Endpoint,
  type KObject,
  NULL_CAP,
  type Slot,
  TCB,
} from "../structures.js";
import {
  ALL_RIGHTS,
  CapType,
  Exception,
  Invocation,
  LookupFailure,
  SeL4Error,
  TCB_IPC_BUFFER,
  ThreadState,
} from "../types.js";
import { cancelBadgedSends } from "./endpoint.js";
import { deletedIRQHandler } from "./interrupt.js";
import {
  deriveCap,
  finaliseCap,
  hasCancelSendRights,
  isCapRevocable,
  maskCapRights,
  retireObject,
  sameObjectAs,
  sameRegionAs,
  updateCapData,
} from "./objecttype.js";
import { frameCapMoved } from "./vspace.js";

// ---------------------------------------------------------------------------------------------
// Decoding (manual §3.1 and the CNode methods of libsel4's object-api.xml)
// ---------------------------------------------------------------------------------------------

/** The rights word of Copy/Mint (seL4_CapRights_t: grantReply, grant, read, write in the low bits). */
function rightsFromWord(lo: number): number {
  return lo & ALL_RIGHTS;
}

/** seL4 decodeCNodeInvocation. MR0/MR1 name the destination slot relative to the invoked CNode. */
export function decodeCNodeInvocation(k: Kernel, label: number, length: number, cap: Cap): Exception {
  // Under MCS there is no SaveCaller, so Rotate is the last CNode label (seL4 CNODE_LAST_INVOCATION).
  if (label < Invocation.CNodeRevoke || label > Invocation.CNodeRotate) return illegalOperation(k);
  if (length < 2) return truncatedMessage(k);
  const t = k.curThread;
  const destSlot = lookupTargetSlot(
    k,
    cap,
    getSyscallArgHi(t, 0),
    getSyscallArgLo(t, 0),
    getSyscallArg(t, 1),
  );
  if (destSlot === null) return Exception.SyscallError;

  if (label >= Invocation.CNodeCopy && label <= Invocation.CNodeMutate) {
    const srcRoot = k.extraCaps[0];
    if (length < 4 || srcRoot === null || srcRoot === undefined) return truncatedMessage(k);
    const srcDepth = getSyscallArg(t, 3);
    if (ensureEmptySlot(k, destSlot) !== Exception.None) return Exception.SyscallError;
    const srcSlot = lookupSourceSlot(k, srcRoot.cap, getSyscallArgHi(t, 2), getSyscallArgLo(t, 2), srcDepth);
    if (srcSlot === null) return Exception.SyscallError;
    if (srcSlot.cap.type === CapType.Null) {
      k.lookupFault = lookupFault(LookupFailure.MissingCapability, srcDepth);
      return failedLookup(k, true);
    }
    let newCap: Cap;
    let isMove: boolean;
    switch (label) {
      case Invocation.CNodeCopy: {
        if (length < 5) return truncatedMessage(k);
        const derived = deriveCap(
          k,
          srcSlot,
          maskCapRights(rightsFromWord(getSyscallArgLo(t, 4)), srcSlot.cap),
        );
        if (derived === null) return Exception.SyscallError;
        newCap = derived;
        isMove = false;
        break;
      }
      case Invocation.CNodeMint: {
        if (length < 6) return truncatedMessage(k);
        const masked = maskCapRights(rightsFromWord(getSyscallArgLo(t, 4)), srcSlot.cap);
        const derived = deriveCap(
          k,
          srcSlot,
          updateCapData(false, getSyscallArgLo(t, 5), getSyscallArgHi(t, 5), masked),
        );
        if (derived === null) return Exception.SyscallError;
        newCap = derived;
        isMove = false;
        break;
      }
      case Invocation.CNodeMove:
        newCap = srcSlot.cap;
        isMove = true;
        break;
      default: {
        // Mutate: move with new cap data, but never a new badge (preserve = true).
        if (length < 5) return truncatedMessage(k);
        newCap = updateCapData(true, getSyscallArgLo(t, 4), getSyscallArgHi(t, 4), srcSlot.cap);
        isMove = true;
        break;
      }
    }
    // A refused badge/guard update or an underivable cap yields a null cap (seL4: IllegalOperation).
    if (newCap.type === CapType.Null) return illegalOperation(k);
    setThreadState(k, t, ThreadState.Restart);
    if (isMove) cteMove(k, newCap, srcSlot, destSlot);
    else cteInsert(k, newCap, srcSlot, destSlot);
    return Exception.None;
  }

  if (label === Invocation.CNodeRevoke) {
    setThreadState(k, t, ThreadState.Restart);
    return cteRevoke(k, destSlot);
  }
  if (label === Invocation.CNodeDelete) {
    setThreadState(k, t, ThreadState.Restart);
    return cteDelete(k, destSlot, true);
  }
  if (label === Invocation.CNodeCancelBadgedSends) {
    const destCap = destSlot.cap;
    if (!hasCancelSendRights(destCap)) return illegalOperation(k);
    setThreadState(k, t, ThreadState.Restart);
    // An unbadged cap cancels nothing (seL4 invokeCNodeCancelBadgedSends).
    if (destCap.hasBadge)
      return cancelBadgedSends(k, destCap.obj as Endpoint, destCap.badgeLo, destCap.badgeHi);
    return Exception.None;
  }
  return decodeRotate(k, length, destSlot);
}

/** CNode_Rotate: dest <- pivot <- src, with new cap data for both moved caps (manual §3.1.3). */
function decodeRotate(k: Kernel, length: number, destSlot: Slot): Exception {
  const t = k.curThread;
  const pivotRoot = k.extraCaps[0];
  const srcRoot = k.extraCaps[1];
  if (
    length < 8 ||
    pivotRoot === null ||
    pivotRoot === undefined ||
    srcRoot === null ||
    srcRoot === undefined
  ) {
    return truncatedMessage(k);
  }
  const pivotDepth = getSyscallArg(t, 4);
  const srcDepth = getSyscallArg(t, 7);
  const srcSlot = lookupSourceSlot(k, srcRoot.cap, getSyscallArgHi(t, 6), getSyscallArgLo(t, 6), srcDepth);
  if (srcSlot === null) return Exception.SyscallError;
  const pivotSlot = lookupPivotSlot(
    k,
    pivotRoot.cap,
    getSyscallArgHi(t, 3),
    getSyscallArgLo(t, 3),
    pivotDepth,
  );
  if (pivotSlot === null) return Exception.SyscallError;
  if (pivotSlot === srcSlot || pivotSlot === destSlot) return illegalOperation(k);
  if (srcSlot !== destSlot && ensureEmptySlot(k, destSlot) !== Exception.None) return Exception.SyscallError;
  if (srcSlot.cap.type === CapType.Null) {
    k.lookupFault = lookupFault(LookupFailure.MissingCapability, srcDepth);
    return failedLookup(k, true);
  }
  if (pivotSlot.cap.type === CapType.Null) {
    k.lookupFault = lookupFault(LookupFailure.MissingCapability, pivotDepth);
    return failedLookup(k, false);
  }
  const newSrcCap = updateCapData(true, getSyscallArgLo(t, 5), getSyscallArgHi(t, 5), srcSlot.cap);
  const newPivotCap = updateCapData(true, getSyscallArgLo(t, 2), getSyscallArgHi(t, 2), pivotSlot.cap);
  if (newSrcCap.type === CapType.Null) return illegalOperation(k);
  if (newPivotCap.type === CapType.Null) return illegalOperation(k);
  setThreadState(k, t, ThreadState.Restart);
  if (srcSlot === destSlot) {
    cteSwap(k, newSrcCap, srcSlot, newPivotCap, pivotSlot);
  } else {
    cteMove(k, newPivotCap, pivotSlot, destSlot);
    cteMove(k, newSrcCap, srcSlot, pivotSlot);
  }
  return Exception.None;
}

// ---------------------------------------------------------------------------------------------
// The mapping database
// ---------------------------------------------------------------------------------------------

/**
 * seL4 isMDBParentOf: b is a child of a when a is an original (revocable) cap of the same region
 * and, for badged endpoint/notification caps, b carries the same badge and is not itself the first
 * cap minted with it (manual §3.1.2).
 */
export function isMDBParentOf(a: Slot, b: Slot): boolean {
  if (!a.revocable) return false;
  const ca = a.cap;
  const cb = b.cap;
  if (!sameRegionAs(ca, cb)) return false;
  // Arch_isMDBParentOf is true for every AArch64 cap we model (SGI and SMC caps are not modelled).
  if (ca.type === CapType.Endpoint || ca.type === CapType.Notification) {
    if ((ca.badgeLo | ca.badgeHi) === 0) return true;
    return ca.badgeLo === cb.badgeLo && ca.badgeHi === cb.badgeHi && !b.firstBadged;
  }
  return true;
}

/** seL4 ensureNoChildren: RevokeFirst when the slot has derived children. */
export function ensureNoChildren(k: Kernel, slot: Slot): Exception {
  const next = slot.mdbNext;
  if (next !== null && isMDBParentOf(slot, next)) return syscallError(k, SeL4Error.RevokeFirst);
  return Exception.None;
}

/** seL4 ensureEmptySlot: DeleteFirst when the slot holds a cap. */
export function ensureEmptySlot(k: Kernel, slot: Slot): Exception {
  if (slot.cap.type !== CapType.Null) return syscallError(k, SeL4Error.DeleteFirst);
  return Exception.None;
}

/** seL4 isFinalCapability: no neighbour in the MDB refers to the same object. */
export function isFinalCapability(slot: Slot): boolean {
  const prev = slot.mdbPrev;
  if (prev !== null && sameObjectAs(prev.cap, slot.cap)) return false;
  const next = slot.mdbNext;
  if (next === null) return true;
  return !sameObjectAs(slot.cap, next.cap);
}

/** seL4 slotCapLongRunningDelete: deleting this cap may need preemption (final TCB, CNode or Zombie). */
export function slotCapLongRunningDelete(slot: Slot): boolean {
  const type = slot.cap.type;
  if (type === CapType.Null || !isFinalCapability(slot)) return false;
  return type === CapType.Thread || type === CapType.Zombie || type === CapType.CNode;
}

/** seL4 setUntypedCapAsFull: a child untyped covering the whole parent stops the parent retyping. */
function setUntypedCapAsFull(srcCap: Cap, newCap: Cap): void {
  if (
    srcCap.type === CapType.Untyped &&
    newCap.type === CapType.Untyped &&
    srcCap.paddr === newCap.paddr &&
    srcCap.sizeBits === newCap.sizeBits
  ) {
    srcCap.freeIndex = 2 ** srcCap.sizeBits;
  }
}

/** seL4 cteInsert: place newCap (derived from src's cap) in the empty dest, right after src in the MDB. */
export function cteInsert(_k: Kernel, newCap: Cap, src: Slot, dest: Slot): void {
  const srcCap = src.cap;
  // A Cap belongs to exactly one slot (structures.ts): never share the source's object.
  const cap = newCap === srcCap ? newCap.clone() : newCap;
  const revocable = isCapRevocable(cap, srcCap);
  setUntypedCapAsFull(srcCap, cap);
  const next = src.mdbNext;
  dest.cap = cap;
  dest.mdbPrev = src;
  dest.mdbNext = next;
  dest.revocable = revocable;
  dest.firstBadged = revocable;
  src.mdbNext = dest;
  if (next !== null) next.mdbPrev = dest;
}

/** seL4 cteMove: move src's MDB node to the empty dest with cap newCap; src becomes empty. */
export function cteMove(k: Kernel, newCap: Cap, src: Slot, dest: Slot): void {
  const prev = src.mdbPrev;
  const next = src.mdbNext;
  dest.cap = newCap;
  dest.mdbPrev = prev;
  dest.mdbNext = next;
  dest.revocable = src.revocable;
  dest.firstBadged = src.firstBadged;
  src.cap = NULL_CAP;
  src.mdbPrev = null;
  src.mdbNext = null;
  src.revocable = false;
  src.firstBadged = false;
  if (prev !== null) prev.mdbNext = dest;
  if (next !== null) next.mdbPrev = dest;
  clearIPCBufferIfOwned(src);
  if (newCap.type === CapType.Frame && newCap.mappedAsid !== 0) frameCapMoved(k, newCap, dest);
}

/**
 * seL4 cteSwap: exchange two slots' caps and MDB positions. The neighbour updates happen in
 * seL4's order so that adjacent slots are handled correctly.
 */
export function cteSwap(k: Kernel, cap1: Cap, slot1: Slot, cap2: Cap, slot2: Slot): void {
  slot1.cap = cap2;
  slot2.cap = cap1;
  const p1 = slot1.mdbPrev;
  const n1 = slot1.mdbNext;
  const r1 = slot1.revocable;
  const f1 = slot1.firstBadged;
  if (p1 !== null) p1.mdbNext = slot2;
  if (n1 !== null) n1.mdbPrev = slot2;
  const p2 = slot2.mdbPrev;
  const n2 = slot2.mdbNext;
  slot1.mdbPrev = p2;
  slot1.mdbNext = n2;
  slot1.revocable = slot2.revocable;
  slot1.firstBadged = slot2.firstBadged;
  slot2.mdbPrev = p1;
  slot2.mdbNext = n1;
  slot2.revocable = r1;
  slot2.firstBadged = f1;
  if (p2 !== null) p2.mdbNext = slot1;
  if (n2 !== null) n2.mdbPrev = slot1;
  if (cap1.type === CapType.Frame && cap1.mappedAsid !== 0) frameCapMoved(k, cap1, slot2);
  if (cap2.type === CapType.Frame && cap2.mappedAsid !== 0) frameCapMoved(k, cap2, slot1);
}

/** seL4 capSwapForDelete. */
function capSwapForDelete(k: Kernel, slot1: Slot, slot2: Slot): void {
  if (slot1 === slot2) return;
  cteSwap(k, slot1.cap, slot1, slot2.cap, slot2);
}

/** seL4 insertNewCap: a freshly created object's cap, an original child of the untyped in parent. */
export function insertNewCap(_k: Kernel, parent: Slot, slot: Slot, cap: Cap): void {
  const next = parent.mdbNext;
  slot.cap = cap;
  slot.mdbNext = next;
  slot.mdbPrev = parent;
  slot.revocable = true;
  slot.firstBadged = true;
  if (next !== null) next.mdbPrev = slot;
  parent.mdbNext = slot;
}

/** The IPC buffer view belongs to the frame cap in the TCB's IPC-buffer slot; it goes with it. */
function clearIPCBufferIfOwned(slot: Slot): void {
  const owner = slot.owner;
  if (slot.index === TCB_IPC_BUFFER && owner instanceof TCB) owner.ipcBuffer = null;
}

// ---------------------------------------------------------------------------------------------
// Revoke and delete
// ---------------------------------------------------------------------------------------------

/** seL4 cteRevoke: delete every MDB child of the slot; preemptible (manual §3.1.4 "Revoke"). */
export function cteRevoke(k: Kernel, slot: Slot): Exception {
  for (let next = slot.mdbNext; next !== null && isMDBParentOf(slot, next); next = slot.mdbNext) {
    let status = cteDelete(k, next, true);
    if (status !== Exception.None) return status;
    status = preemptionPoint(k);
    if (status !== Exception.None) return status;
  }
  return Exception.None;
}

/** seL4 cteDelete: finalise the slot's cap and empty it. Preemptible for CNodes and TCBs. */
export function cteDelete(k: Kernel, slot: Slot, exposed: boolean): Exception {
  const status = finaliseSlot(k, slot, exposed);
  if (status !== Exception.None) return status;
  // Read the results at once: nested deletions reuse them.
  const success = finaliseSlotResult.success;
  const cleanupInfo = finaliseSlotResult.cleanupInfo;
  if (exposed || success) emptySlot(k, slot, cleanupInfo);
  return Exception.None;
}

/** Results of the last finaliseSlot (seL4 finaliseSlot_ret_t), kept to avoid allocating. */
export const finaliseSlotResult: { success: boolean; cleanupInfo: Cap } = {
  success: true,
  cleanupInfo: NULL_CAP,
};

/** The i-th slot a Zombie cap refers to; undefined for a CNode slot never touched (it is empty). */
function zombieSlot(obj: KObject, i: number): Slot | undefined {
  if (obj instanceof TCB) return obj.ctes[i];
  return (obj as CNodeObj).existingSlot(i);
}

/** True when the Zombie sits in the first slot of its own object (seL4 capCyclicZombie). */
function isOwnFirstSlot(cap: Cap, slot: Slot): boolean {
  return slot.index === 0 && slot.owner === cap.obj;
}

/** seL4 capRemovable: finaliseCap's remainder lets the slot be emptied. */
function capRemovable(cap: Cap, slot: Slot): boolean {
  if (cap.type === CapType.Null) return true;
  const n = cap.zombieNumber;
  return n === 0 || (n === 1 && isOwnFirstSlot(cap, slot));
}

/**
 * seL4 finaliseSlot: finalise the cap until it is gone or a Zombie that cannot shrink further
 * now. Results in finaliseSlotResult; returns Preempted when a preemption point fired.
 */
export function finaliseSlot(k: Kernel, slot: Slot, immediate: boolean): Exception {
  const res = finaliseSlotResult;
  while (slot.cap.type !== CapType.Null) {
    const final = isFinalCapability(slot);
    const fc = finaliseCap(k, slot.cap, final, false);
    const remainder = fc.remainder;
    if (capRemovable(remainder, slot)) {
      // A Zombie that is done: the CNode or TCB it stood for is gone (its last cap goes now).
      if (remainder.type === CapType.Zombie && remainder.obj !== null) retireObject(k, remainder.obj);
      res.success = true;
      res.cleanupInfo = fc.cleanupInfo;
      return Exception.None;
    }
    slot.cap = remainder;
    if (!immediate && remainder.type === CapType.Zombie && isOwnFirstSlot(remainder, slot)) {
      res.success = false;
      res.cleanupInfo = fc.cleanupInfo;
      return Exception.None;
    }
    let status = reduceZombie(k, slot, immediate);
    if (status === Exception.None) status = preemptionPoint(k);
    if (status !== Exception.None) {
      res.success = false;
      res.cleanupInfo = NULL_CAP;
      return status;
    }
  }
  res.success = true;
  res.cleanupInfo = NULL_CAP;
  return Exception.None;
}

/**
 * seL4 reduceZombie: exposed, delete the Zombie's last remaining slot and count it down;
 * unexposed, move the Zombie into its own first slot (making it cyclic) so that the enclosing
 * deletion can proceed; the cyclic Zombie is reduced when its slot is deleted in turn.
 */
function reduceZombie(k: Kernel, slot: Slot, immediate: boolean): Exception {
  const zc = slot.cap;
  const obj = zc.obj as KObject;
  const n = zc.zombieNumber;
  const type = zc.zombieType;
  if (immediate) {
    const endSlot = zombieSlot(obj, n - 1);
    if (endSlot !== undefined) {
      const status = cteDelete(k, endSlot, false);
      if (status !== Exception.None) return status;
    }
    const c = slot.cap;
    // Unless the recursion replaced it with a new self-referential Zombie, count ours down.
    if (c.type === CapType.Zombie && c.obj === obj && c.zombieNumber === n && c.zombieType === type) {
      c.zombieNumber = n - 1;
    }
    return Exception.None;
  }
  const first = obj instanceof TCB ? obj.ctes[0]! : (obj as CNodeObj).slot(0);
  capSwapForDelete(k, first, slot);
  return Exception.None;
}

/** seL4 cteDeleteOne: delete a cap whose finalisation never needs a Zombie (no TCB/CNode caps). */
export function cteDeleteOne(k: Kernel, slot: Slot): void {
  if (slot.cap.type === CapType.Null) return;
  const final = isFinalCapability(slot);
  finaliseCap(k, slot.cap, final, true);
  emptySlot(k, slot, NULL_CAP);
}

/**
 * seL4 emptySlot: unlink the slot from the MDB (its children move up to its parent; a following
 * cap inherits firstBadged) and run postCapDeletion with cleanupInfo.
 */
export function emptySlot(k: Kernel, slot: Slot, cleanupInfo: Cap): void {
  if (slot.cap.type === CapType.Null) return;
  const prev = slot.mdbPrev;
  const next = slot.mdbNext;
  if (prev !== null) prev.mdbNext = next;
  if (next !== null) {
    next.mdbPrev = prev;
    next.firstBadged = next.firstBadged || slot.firstBadged;
  }
  slot.cap = NULL_CAP;
  slot.mdbPrev = null;
  slot.mdbNext = null;
  slot.revocable = false;
  slot.firstBadged = false;
  clearIPCBufferIfOwned(slot);
  // seL4 postCapDeletion: only IRQHandler caps leave cleanup work (the line becomes inactive).
  if (cleanupInfo.type === CapType.IRQHandler) deletedIRQHandler(k, cleanupInfo.irq);
}
