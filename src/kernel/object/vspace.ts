/**
 * Virtual address spaces (seL4 src/arch/arm/64/kernel/vspace.c; manual §7 "Address Spaces and
 * Virtual Memory", and the AArch64 invocations of libsel4's object-api-arch.xml).
 *
 * Simplified honestly: a VSpace does not hold page-table entries in memory. It keeps a Map of
 * page mappings keyed by their first virtual address, and a Map of the page tables mapped into it
 * keyed by (level, covered base), which is exactly the information seL4's walk (lookupPTSlot)
 * needs. The translation has three levels with 4 KiB granules and a 39-bit address space:
 *   - the VSpace root: 512 entries of 1 GiB (a huge page, or a level-1 page table);
 *   - a level-1 page table covers 1 GiB: 512 entries of 2 MiB (a large page, or a level-2 table);
 *   - a level-2 page table covers 2 MiB: 512 entries of 4 KiB pages.
 * So, as in seL4, mapping a 4 KiB page needs both tables present and a 2 MiB page the level-1
 * table; otherwise Page_Map fails with FailedLookup (MissingCapability, bits left).
 *
 * ASIDs: k.asidTable holds 128 pools of 512 ASIDs (7 + 9 bits); ASID 0 is never handed out.
 */
import { lookupFault, lookupTargetSlot } from "../core/cspace.js";
import {
  failedLookup,
  getSyscallArg,
  getSyscallArgHi,
  getSyscallArgLo,
  illegalOperation,
  invalidArgument,
  invalidCapability,
  rangeError,
  setMR,
  setMsgInfo,
  syscallError,
  truncatedMessage,
} from "../core/message.js";
import { setThreadState } from "../core/thread.js";
import type { Kernel } from "../state.js";
import {
  ASIDPool,
  Cap,
  type Frame,
  type Mapping,
  type PageTable,
  type Slot,
  type VSpace,
} from "../structures.js";
import {
  ALL_RIGHTS,
  ASID_LOW_BITS,
  ASID_POOL_BITS,
  ASID_POOL_SIZE,
  CapType,
  Exception,
  HUGE_PAGE_BITS,
  Invocation,
  LARGE_PAGE_BITS,
  LookupFailure,
  NUM_ASID_POOLS,
  PAGE_BITS,
  REG_BADGE,
  RIGHT_READ,
  RIGHT_WRITE,
  SeL4Error,
  ThreadState,
} from "../types.js";
import { cteInsert, ensureEmptySlot, ensureNoChildren, isFinalCapability } from "./cnode.js";

/** Highest user virtual address: a 39-bit address space (seL4_UserTop of this layout). */
export const USER_TOP = 2 ** 39 - 1;

/** seL4 vm_rights_t as frame-cap rights bits: KernelOnly, ReadOnly, ReadWrite. */
export const VM_KERNEL_ONLY = 0;
export const VM_READ_ONLY = RIGHT_READ;
export const VM_READ_WRITE = RIGHT_READ | RIGHT_WRITE;

/** seL4_ARM_VMAttributes: bit 2 = ExecuteNever (bit 0 cacheable, bit 1 parity). */
const ATTR_EXECUTE_NEVER = 4;

/** The vm_rights_t a frame cap's rights bits stand for (boot caps may carry ALL_RIGHTS = ReadWrite). */
function vmRightsOf(rights: number): number {
  if ((rights & RIGHT_READ) === 0) return VM_KERNEL_ONLY;
  return (rights & RIGHT_WRITE) !== 0 ? VM_READ_WRITE : VM_READ_ONLY;
}

/**
 * seL4 maskVMRights: read-only stays read-only given Read; read-write keeps Write only with Read
 * and Write; anything else (including write-only requests) is kernel-only.
 */
export function maskVMRights(capRights: number, mask: number): number {
  const vm = vmRightsOf(capRights);
  const canRead = (mask & RIGHT_READ) !== 0;
  if (vm === VM_READ_ONLY && canRead) return VM_READ_ONLY;
  if (vm === VM_READ_WRITE && canRead) return (mask & RIGHT_WRITE) !== 0 ? VM_READ_WRITE : VM_READ_ONLY;
  return VM_KERNEL_ONLY;
}

/** Key of a page table in VSpace.tables: its level (1 or 2) and the base address it covers. */
export function tableKey(level: number, vaddr: number): string {
  return `${level}:${vaddr}`;
}

function roundDown(v: number, bits: number): number {
  const a = 2 ** bits;
  return v - (v % a);
}

/** The VSpace an ASID names, or null (no lookup-fault side effect). */
function vspaceForASID(k: Kernel, asid: number): VSpace | null {
  const pool = k.asidTable[Math.floor(asid / ASID_POOL_SIZE)];
  if (pool === null || pool === undefined) return null;
  return pool.entries[asid % ASID_POOL_SIZE] ?? null;
}

/** seL4 findVSpaceForASID: null with an InvalidRoot lookup fault when the ASID names no VSpace. */
export function findVSpaceForASID(k: Kernel, asid: number): VSpace | null {
  const vs = vspaceForASID(k, asid);
  if (vs === null) k.lookupFault = lookupFault(LookupFailure.InvalidRoot);
  return vs;
}

/**
 * seL4 lookupPTSlot: walk from the root while the entry holds a table; returns the number of
 * address bits the reached entry translates (30 at the root, 21 in a level-1 table, 12 in a
 * level-2 table), i.e. the size of page that entry can hold.
 */
export function lookupPTSlot(vs: VSpace, vaddr: number): number {
  if (!vs.tables.has(tableKey(1, roundDown(vaddr, HUGE_PAGE_BITS)))) return HUGE_PAGE_BITS;
  if (!vs.tables.has(tableKey(2, roundDown(vaddr, LARGE_PAGE_BITS)))) return LARGE_PAGE_BITS;
  return PAGE_BITS;
}

/** The page mapped in the entry lookupPTSlot reached (seL4 pte_is_page_type), or undefined. */
function pageInSlot(vs: VSpace, vaddr: number, bitsLeft: number): Mapping | undefined {
  const m = vs.mappings.get(roundDown(vaddr, bitsLeft));
  return m !== undefined && m.frame.sizeBits === bitsLeft ? m : undefined;
}

/** The mapping containing vaddr (a 4 KiB, 2 MiB or 1 GiB page), or null. */
export function lookupMapping(vs: VSpace, vaddr: number): Mapping | null {
  let m = vs.mappings.get(vaddr - (vaddr % 4096));
  if (m !== undefined && m.frame.sizeBits === PAGE_BITS) return m;
  m = vs.mappings.get(vaddr - (vaddr % 2097152));
  if (m !== undefined && m.frame.sizeBits === LARGE_PAGE_BITS) return m;
  m = vs.mappings.get(vaddr - (vaddr % 1073741824));
  if (m !== undefined && m.frame.sizeBits === HUGE_PAGE_BITS) return m;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Unmapping and ASID deletion (called from finaliseCap)
// ---------------------------------------------------------------------------------------------

/** seL4 unmapPage for the frame cap in the slot: remove its mapping if still in place. */
export function unmapPage(k: Kernel, frameCapSlot: Slot): void {
  unmapFrameCap(k, frameCapSlot.cap);
}

/**
 * seL4 unmapPage: the entry at the cap's address is cleared only if it still maps this very frame
 * (another Map may have replaced it, or its table may be gone).
 */
export function unmapFrameCap(k: Kernel, cap: Cap): void {
  const vs = vspaceForASID(k, cap.mappedAsid);
  if (vs === null) return;
  const frame = cap.obj as Frame;
  const m = vs.mappings.get(cap.mappedVaddr);
  if (m === undefined || m.frame.sizeBits !== frame.sizeBits || m.frame.paddr !== frame.paddr) return;
  vs.mappings.delete(cap.mappedVaddr);
}

/** A mapped frame cap changed slot (move/swap): the mapping now belongs to the new slot. */
export function frameCapMoved(k: Kernel, cap: Cap, slot: Slot): void {
  const vs = vspaceForASID(k, cap.mappedAsid);
  if (vs === null) return;
  const m = vs.mappings.get(cap.mappedVaddr);
  if (m !== undefined && m.frame === cap.obj) m.slot = slot;
}

/**
 * Take a page table out of its VSpace. Whatever was reachable only through it (deeper tables and
 * the pages they map) is no longer reachable: seL4 leaves those entries in the table's memory,
 * which is either cleared (PageTable_Unmap) or deleted with the table.
 */
function detachTable(vs: VSpace, pt: PageTable, level: number, base: number): void {
  vs.tables.delete(tableKey(level, base));
  pt.vspace = null;
  const coverBits = level === 1 ? HUGE_PAGE_BITS : LARGE_PAGE_BITS;
  const end = base + 2 ** coverBits;
  if (level === 1) {
    for (const [key, t] of vs.tables) {
      if (t.level === 2 && t.vaddr >= base && t.vaddr < end) {
        vs.tables.delete(key);
        t.vspace = null;
      }
    }
  }
  for (const [va, m] of vs.mappings) {
    if (va >= base && va < end && m.frame.sizeBits < coverBits) vs.mappings.delete(va);
  }
}

/** seL4 unmapPageTable: unhook pt if the walk for vaddr in the ASID's VSpace reaches it. */
export function unmapPageTable(k: Kernel, asid: number, vaddr: number, pt: PageTable): void {
  const vs = vspaceForASID(k, asid);
  if (vs === null) return;
  const level = pt.level;
  const base = roundDown(vaddr, level === 1 ? HUGE_PAGE_BITS : LARGE_PAGE_BITS);
  if (vs.tables.get(tableKey(level, base)) !== pt) return;
  detachTable(vs, pt, level, base);
}

/** seL4 deleteASID: the VSpace loses its ASID (if it still holds it). */
export function deleteASID(k: Kernel, asid: number, vs: VSpace): void {
  const pool = k.asidTable[Math.floor(asid / ASID_POOL_SIZE)];
  if (pool === null || pool === undefined) return;
  const i = asid % ASID_POOL_SIZE;
  if (pool.entries[i] === vs) {
    pool.entries[i] = null;
    vs.asid = 0;
  }
}

/** seL4 deleteASIDPool: every ASID of the pool becomes invalid. */
export function deleteASIDPool(k: Kernel, asidBase: number, pool: ASIDPool): void {
  const hi = Math.floor(asidBase / ASID_POOL_SIZE);
  if (k.asidTable[hi] !== pool) return;
  for (let i = 0; i < ASID_POOL_SIZE; i++) {
    const vs = pool.entries[i];
    if (vs !== null && vs !== undefined && vs.asid === asidBase + i) vs.asid = 0;
  }
  k.asidTable[hi] = null;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/** seL4 isValidNativeRoot: a VSpace cap with an ASID. */
function isValidNativeRoot(cap: Cap): boolean {
  return cap.type === CapType.VSpace && cap.mappedAsid !== 0;
}

/**
 * The VSpace named by a VSpace cap passed to an invocation, checked as seL4 does: FailedLookup
 * when its ASID names nothing, InvalidCapability(capNumber) when it names another VSpace.
 */
function checkedVSpace(k: Kernel, vsCap: Cap, capNumber: number): VSpace | null {
  const vs = findVSpaceForASID(k, vsCap.mappedAsid);
  if (vs === null) {
    failedLookup(k, false);
    return null;
  }
  if (vs !== vsCap.obj) {
    invalidCapability(k, capNumber);
    return null;
  }
  return vs;
}

/**
 * seL4 decodeARMMMUInvocation. `isCall` matters only to Page_GetAddress, which replies with the
 * address only to a Call (an addition to the shared signature, defaulting to a Call).
 */
export function decodeARMMMUInvocation(
  k: Kernel,
  label: number,
  length: number,
  slot: Slot,
  cap: Cap,
  isCall = true,
): Exception {
  switch (cap.type) {
    case CapType.VSpace:
      return decodeVSpaceRoot(k, label, length, cap);
    case CapType.PageTable:
      return decodePageTable(k, label, length, slot, cap);
    case CapType.Frame:
      return decodeFrame(k, label, length, slot, cap, isCall);
    case CapType.ASIDControl:
      return decodeASIDControl(k, label, length);
    case CapType.ASIDPool:
      return decodeASIDPool(k, label, cap);
    default:
      return illegalOperation(k);
  }
}

/** VSpace cache maintenance (ARM_VSpace_Clean_Data): checks only; caches are not modelled. */
function decodeVSpaceRoot(k: Kernel, label: number, length: number, cap: Cap): Exception {
  if (label !== Invocation.ARMVSpaceCleanData) return illegalOperation(k);
  if (length < 2) return truncatedMessage(k);
  const t = k.curThread;
  const start = getSyscallArg(t, 0);
  const end = getSyscallArg(t, 1);
  if (end <= start) return invalidArgument(k, 1);
  if (end > USER_TOP) return illegalOperation(k);
  if (!isValidNativeRoot(cap)) return invalidCapability(k, 0);
  const vs = checkedVSpace(k, cap, 0);
  if (vs === null) return Exception.SyscallError;
  const bits = lookupPTSlot(vs, start);
  if (pageInSlot(vs, start, bits) === undefined) {
    // Nothing mapped: nothing can be cached for it, and failing would be astonishing (seL4).
    setThreadState(k, t, ThreadState.Restart);
    return Exception.None;
  }
  if (roundDown(start, bits) !== roundDown(end - 1, bits)) {
    return rangeError(k, start, roundDown(start, bits) + 2 ** bits - 1);
  }
  setThreadState(k, t, ThreadState.Restart);
  return Exception.None;
}

/** ARM_PageTable_Map(vspace, vaddr, attr) and ARM_PageTable_Unmap. */
function decodePageTable(k: Kernel, label: number, length: number, slot: Slot, cap: Cap): Exception {
  const t = k.curThread;
  const pt = cap.obj as PageTable;
  if (label === Invocation.ARMPageTableUnmap) {
    // Other caps to a mapped table would go on claiming it is mapped.
    if (!isFinalCapability(slot)) return syscallError(k, SeL4Error.RevokeFirst);
    setThreadState(k, t, ThreadState.Restart);
    if (cap.mappedAsid !== 0) unmapPageTable(k, cap.mappedAsid, cap.mappedVaddr, pt);
    pt.vspace = null;
    cap.mappedAsid = 0;
    cap.mappedVaddr = 0;
    return Exception.None;
  }
  if (label !== Invocation.ARMPageTableMap) return illegalOperation(k);
  const vsSlot = k.extraCaps[0];
  if (length < 2 || vsSlot === null || vsSlot === undefined) return truncatedMessage(k);
  if (cap.mappedAsid !== 0) return invalidCapability(k, 0);
  const vaddr = getSyscallArg(t, 0);
  const vsCap = vsSlot.cap;
  if (!isValidNativeRoot(vsCap)) return invalidCapability(k, 1);
  if (vaddr > USER_TOP) return invalidArgument(k, 0);
  const vs = checkedVSpace(k, vsCap, 1);
  if (vs === null) return Exception.SyscallError;
  const bits = lookupPTSlot(vs, vaddr);
  // Every level already has a table, or the entry holds a page.
  if (bits === PAGE_BITS || pageInSlot(vs, vaddr, bits) !== undefined)
    return syscallError(k, SeL4Error.DeleteFirst);
  setThreadState(k, t, ThreadState.Restart);
  const level = bits === HUGE_PAGE_BITS ? 1 : 2;
  const base = roundDown(vaddr, bits);
  vs.tables.set(tableKey(level, base), pt);
  pt.vspace = vs;
  pt.vaddr = base;
  pt.level = level;
  cap.mappedAsid = vsCap.mappedAsid;
  cap.mappedVaddr = base;
  return Exception.None;
}

/** ARM_Page_Map(vspace, vaddr, rights, attr), ARM_Page_Unmap, ARM_Page_GetAddress. */
function decodeFrame(
  k: Kernel,
  label: number,
  length: number,
  slot: Slot,
  cap: Cap,
  isCall: boolean,
): Exception {
  const t = k.curThread;
  const frame = cap.obj as Frame;
  switch (label) {
    case Invocation.ARMPageMap: {
      const vsSlot = k.extraCaps[0];
      if (length < 3 || vsSlot === null || vsSlot === undefined) return truncatedMessage(k);
      const vaddr = getSyscallArg(t, 0);
      const attributes = getSyscallArgLo(t, 2);
      const vsCap = vsSlot.cap;
      const bits = frame.sizeBits;
      const vmRights = maskVMRights(cap.rights, getSyscallArgLo(t, 1) & ALL_RIGHTS);
      if (!isValidNativeRoot(vsCap)) return invalidCapability(k, 1);
      const asid = vsCap.mappedAsid;
      const vs = checkedVSpace(k, vsCap, 1);
      if (vs === null) return Exception.SyscallError;
      if (vaddr % 2 ** bits !== 0) return syscallError(k, SeL4Error.AlignmentError);
      if (cap.mappedAsid !== 0) {
        // A mapped cap may only be remapped in place (to change rights or attributes).
        if (cap.mappedAsid !== asid) return invalidCapability(k, 1);
        if (cap.mappedVaddr !== vaddr) return invalidArgument(k, 0);
      } else if (vaddr + 2 ** bits - 1 > USER_TOP) {
        return invalidArgument(k, 0);
      }
      const bitsLeft = lookupPTSlot(vs, vaddr);
      if (bitsLeft !== bits) {
        k.lookupFault = lookupFault(LookupFailure.MissingCapability, bitsLeft);
        return failedLookup(k, false);
      }
      setThreadState(k, t, ThreadState.Restart);
      cap.mappedAsid = asid;
      cap.mappedVaddr = vaddr;
      // Whatever the entry held is replaced (seL4 overwrites the PTE and flushes the TLB).
      vs.mappings.set(vaddr, {
        frame,
        vaddr,
        rights: vmRights,
        xn: (attributes & ATTR_EXECUTE_NEVER) !== 0,
        slot,
      });
      return Exception.None;
    }
    case Invocation.ARMPageUnmap:
      setThreadState(k, t, ThreadState.Restart);
      if (cap.mappedAsid !== 0) unmapFrameCap(k, cap);
      cap.mappedAsid = 0;
      cap.mappedVaddr = 0;
      return Exception.None;
    case Invocation.ARMPageGetAddress:
      setThreadState(k, t, ThreadState.Restart);
      // seL4 performPageGetAddress: the physical address in MR0, only to a Call.
      if (isCall) {
        t.regs[2 * REG_BADGE] = 0;
        t.regs[2 * REG_BADGE + 1] = 0;
        setMsgInfo(t, 0, 0, 0, setMR(t, 0, frame.paddr));
      }
      setThreadState(k, t, ThreadState.Running);
      return Exception.None;
    default:
      return illegalOperation(k);
  }
}

/** ARM_ASIDControl_MakePool(untyped, root, index, depth): a pool from a 4 KiB untyped. */
function decodeASIDControl(k: Kernel, label: number, length: number): Exception {
  if (label !== Invocation.ARMASIDControlMakePool) return illegalOperation(k);
  const parentSlot = k.extraCaps[0];
  const rootSlot = k.extraCaps[1];
  if (
    length < 2 ||
    parentSlot === null ||
    parentSlot === undefined ||
    rootSlot === null ||
    rootSlot === undefined
  ) {
    return truncatedMessage(k);
  }
  const t = k.curThread;
  let i = 0;
  while (i < NUM_ASID_POOLS && k.asidTable[i] !== null && k.asidTable[i] !== undefined) i++;
  if (i === NUM_ASID_POOLS) return syscallError(k, SeL4Error.DeleteFirst);
  const asidBase = i * 2 ** ASID_LOW_BITS;
  const untyped = parentSlot.cap;
  if (untyped.type !== CapType.Untyped || untyped.sizeBits !== ASID_POOL_BITS || untyped.isDevice) {
    return invalidCapability(k, 1);
  }
  if (ensureNoChildren(k, parentSlot) !== Exception.None) return Exception.SyscallError;
  const destSlot = lookupTargetSlot(
    k,
    rootSlot.cap,
    getSyscallArgHi(t, 0),
    getSyscallArgLo(t, 0),
    getSyscallArg(t, 1),
  );
  if (destSlot === null) return Exception.SyscallError;
  if (ensureEmptySlot(k, destSlot) !== Exception.None) return Exception.SyscallError;
  setThreadState(k, t, ThreadState.Restart);
  // The whole untyped becomes the pool: nothing else may be retyped from it.
  untyped.freeIndex = 2 ** ASID_POOL_BITS;
  const pool = new ASIDPool(untyped.paddr, asidBase);
  k.objects.add(pool);
  const poolCap = new Cap(CapType.ASIDPool, pool);
  poolCap.irq = asidBase;
  cteInsert(k, poolCap, parentSlot, destSlot);
  k.asidTable[i] = pool;
  return Exception.None;
}

/** ARM_ASIDPool_Assign(vspace): give an unassigned VSpace the pool's first free ASID. */
function decodeASIDPool(k: Kernel, label: number, cap: Cap): Exception {
  if (label !== Invocation.ARMASIDPoolAssign) return illegalOperation(k);
  const vsSlot = k.extraCaps[0];
  if (vsSlot === null || vsSlot === undefined) return truncatedMessage(k);
  const vsCap = vsSlot.cap;
  if (vsCap.type !== CapType.VSpace || vsCap.mappedAsid !== 0) return invalidCapability(k, 1);
  const pool = k.asidTable[Math.floor(cap.irq / ASID_POOL_SIZE)];
  if (pool === null || pool === undefined) {
    k.lookupFault = lookupFault(LookupFailure.InvalidRoot);
    return failedLookup(k, false);
  }
  if (pool !== cap.obj) return invalidCapability(k, 0);
  const base = cap.irq;
  let i = 0;
  while (i < ASID_POOL_SIZE && (base + i === 0 || pool.entries[i] !== null)) i++;
  if (i === ASID_POOL_SIZE) return syscallError(k, SeL4Error.DeleteFirst);
  const asid = base + i;
  setThreadState(k, k.curThread, ThreadState.Restart);
  const vs = vsCap.obj as VSpace;
  vsCap.mappedAsid = asid;
  pool.entries[i] = vs;
  vs.asid = asid;
  return Exception.None;
}
