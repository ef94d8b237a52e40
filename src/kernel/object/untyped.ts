/**
 * Untyped memory (seL4 src/object/untyped.c; manual §2.4 "Kernel Memory Allocation").
 *
 * An untyped cap covers 2^sizeBits bytes from `paddr`; `freeIndex` is the watermark (bytes used
 * from the start). Retype carves objects from the watermark, each aligned to its own size, and
 * inserts their caps as MDB children of the untyped. An untyped without children may be reused
 * from the start: its watermark is reset (the memory is cleared in chunks, preemptibly).
 */
import { lookupFault, lookupTargetSlot } from "../core/cspace.js";
import {
  failedLookup,
  getSyscallArg,
  getSyscallArgHi,
  getSyscallArgLo,
  illegalOperation,
  invalidArgument,
  preemptionPoint,
  rangeError,
  syscallError,
  truncatedMessage,
} from "../core/message.js";
import { setThreadState } from "../core/thread.js";
import type { Kernel } from "../state.js";
import type { Cap, CNodeObj, Slot } from "../structures.js";
import {
  CapType,
  Exception,
  Invocation,
  LookupFailure,
  MAX_UNTYPED_BITS,
  MIN_SCHED_CONTEXT_BITS,
  MIN_UNTYPED_BITS,
  OBJECT_TYPE_COUNT,
  ObjectType,
  RETYPE_FAN_OUT_LIMIT,
  SeL4Error,
  ThreadState,
  WORD_BITS,
} from "../types.js";
import { insertNewCap, isMDBParentOf } from "./cnode.js";
import { createObject, getObjectSize } from "./objecttype.js";

/** CONFIG_RESET_CHUNK_BITS default: an untyped is cleared 256 bytes per preemption point. */
export const RESET_CHUNK_BITS = 8;

function alignUp(value: number, bits: number): number {
  const a = 2 ** bits;
  return Math.ceil(value / a) * a;
}

function isFrameType(type: number): boolean {
  return type === ObjectType.SmallPage || type === ObjectType.LargePage || type === ObjectType.HugePage;
}

/**
 * seL4 decodeUntypedInvocation: Untyped_Retype(type, size_bits, root, node_index, node_depth,
 * node_offset, num_objects), with every check in seL4's order (manual §2.4.1, §10 "Retype").
 */
export function decodeUntypedInvocation(
  k: Kernel,
  label: number,
  length: number,
  slot: Slot,
  cap: Cap,
  _isCall: boolean,
): Exception {
  if (label !== Invocation.UntypedRetype) return illegalOperation(k);
  const rootSlot = k.extraCaps[0];
  if (length < 6 || rootSlot === null || rootSlot === undefined) return truncatedMessage(k);
  const t = k.curThread;
  // Words that do not fit below 2^53 are out of every range checked here, as in seL4.
  const newType = getSyscallArg(t, 0);
  const userObjSize = getSyscallArg(t, 1);
  const nodeIndexLo = getSyscallArgLo(t, 2);
  const nodeIndexHi = getSyscallArgHi(t, 2);
  const nodeDepth = getSyscallArg(t, 3);
  const nodeOffset = getSyscallArg(t, 4);
  const nodeWindow = getSyscallArg(t, 5);

  if (newType >= OBJECT_TYPE_COUNT) return invalidArgument(k, 0);
  const type = newType as ObjectType;
  const objectSize = getObjectSize(type, userObjSize);
  // userObjSize >= wordBits would overflow getObjectSize in C; both cases are RangeError.
  if (userObjSize >= WORD_BITS || objectSize > MAX_UNTYPED_BITS) return rangeError(k, 0, MAX_UNTYPED_BITS);
  if (type === ObjectType.CapTable && userObjSize === 0) return invalidArgument(k, 1);
  if (type === ObjectType.Untyped && userObjSize < MIN_UNTYPED_BITS) return invalidArgument(k, 1);
  if (type === ObjectType.SchedContext && userObjSize < MIN_SCHED_CONTEXT_BITS) return invalidArgument(k, 1);

  // The destination CNode: the root itself at depth 0, else the cap found at (index, depth).
  let nodeCap: Cap;
  if (nodeDepth === 0) {
    nodeCap = rootSlot.cap;
  } else {
    const s = lookupTargetSlot(k, rootSlot.cap, nodeIndexHi, nodeIndexLo, nodeDepth);
    if (s === null) return Exception.SyscallError;
    nodeCap = s.cap;
  }
  if (nodeCap.type !== CapType.CNode) {
    k.lookupFault = lookupFault(LookupFailure.MissingCapability, nodeDepth);
    return failedLookup(k, false);
  }

  const nodeSize = 2 ** nodeCap.sizeBits;
  if (nodeOffset > nodeSize - 1) return rangeError(k, 0, nodeSize - 1);
  if (nodeWindow < 1 || nodeWindow > RETYPE_FAN_OUT_LIMIT) return rangeError(k, 1, RETYPE_FAN_OUT_LIMIT);
  if (nodeWindow > nodeSize - nodeOffset) return rangeError(k, 1, nodeSize - nodeOffset);

  const destCNode = nodeCap.obj as CNodeObj;
  for (let i = nodeOffset; i < nodeOffset + nodeWindow; i++) {
    const s = destCNode.existingSlot(i);
    if (s !== undefined && s.cap.type !== CapType.Null) return syscallError(k, SeL4Error.DeleteFirst);
  }

  // With children, allocate from the watermark; without, start again from the beginning.
  const next = slot.mdbNext;
  const reset = !(next !== null && isMDBParentOf(slot, next));
  const freeIndex = reset ? 0 : cap.freeIndex;
  const freeRef = cap.paddr + freeIndex;

  // Anything that fits also fits aligned up (packed at the top), so check before aligning.
  const untypedFreeBytes = 2 ** cap.sizeBits - freeIndex;
  if (Math.floor(untypedFreeBytes / 2 ** objectSize) < nodeWindow) {
    k.syscallError.memoryLeft = untypedFreeBytes;
    return syscallError(k, SeL4Error.NotEnoughMemory);
  }

  const deviceMemory = cap.isDevice;
  if (deviceMemory && !isFrameType(type) && type !== ObjectType.Untyped) return invalidArgument(k, 1);

  const alignedFreeRef = alignUp(freeRef, objectSize);
  setThreadState(k, t, ThreadState.Restart);
  return invokeUntypedRetype(
    k,
    slot,
    reset,
    alignedFreeRef,
    type,
    userObjSize,
    destCNode,
    nodeOffset,
    nodeWindow,
    deviceMemory,
  );
}

/**
 * seL4 resetUntypedCap: the untyped has no children; clear what was used, from the top down in
 * chunks, moving the watermark down with each chunk so a preempted reset resumes where it
 * stopped. Device memory is not cleared. (Objects are fresh TypeScript objects, so there are no
 * bytes to clear here: memory of a new frame starts zeroed.)
 */
export function resetUntypedCap(k: Kernel, srcSlot: Slot): Exception {
  const cap = srcSlot.cap;
  let offset = cap.freeIndex;
  if (offset === 0) return Exception.None;
  const chunk = 2 ** RESET_CHUNK_BITS;
  if (cap.isDevice || cap.sizeBits < RESET_CHUNK_BITS) {
    cap.freeIndex = 0;
    return Exception.None;
  }
  for (offset = Math.floor((offset - 1) / chunk) * chunk; offset >= 0; offset -= chunk) {
    cap.freeIndex = offset;
    const status = preemptionPoint(k);
    if (status !== Exception.None) return status;
  }
  return Exception.None;
}

/**
 * seL4 invokeUntyped_Retype: reset if asked, move the watermark past the new objects, then
 * create them and insert their caps after the untyped (each new cap lands right after the
 * parent, so the last object created comes first in the MDB, as in seL4).
 */
export function invokeUntypedRetype(
  k: Kernel,
  srcSlot: Slot,
  reset: boolean,
  retypeBase: number,
  newType: ObjectType,
  userSize: number,
  destCNode: CNodeObj,
  destOffset: number,
  destLength: number,
  deviceMemory: boolean,
): Exception {
  if (reset) {
    const status = resetUntypedCap(k, srcSlot);
    if (status !== Exception.None) return status;
  }
  const cap = srcSlot.cap;
  const objectSize = getObjectSize(newType, userSize);
  const objBytes = 2 ** objectSize;
  cap.freeIndex = retypeBase + destLength * objBytes - cap.paddr;
  for (let i = 0; i < destLength; i++) {
    const newCap = createObject(k, newType, retypeBase + i * objBytes, userSize, deviceMemory);
    insertNewCap(k, srcSlot, destCNode.slot(destOffset + i), newCap);
  }
  return Exception.None;
}
