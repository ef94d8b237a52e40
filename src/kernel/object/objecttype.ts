/**
 * Per-type capability operations (seL4 src/object/objecttype.c and
 * src/arch/arm/64/object/objecttype.c): invocation dispatch, object creation, finalisation,
 * derivation, rights masking, cap data (badges, guards) and the region/object comparisons the
 * derivation tree is built on (manual §3.1 "Capabilities", §2.4 "Kernel objects").
 */
import { doReplyTransfer } from "../core/ipc.js";
import { invalidCapability, syscallError } from "../core/message.js";
import { remoteTCBStall, setThreadState, suspend } from "../core/thread.js";
import { extractHi, extractLo } from "../core/word.js";
import type { Kernel } from "../state.js";
import {
  type ASIDPool,
  Cap,
  CNodeObj,
  Endpoint,
  Frame,
  type KObject,
  Notification,
  NULL_CAP,
  PageTable,
  Reply,
  SchedContext,
  type Slot,
  TCB,
  VCPU,
  VSpace,
} from "../structures.js";
import {
  ALL_RIGHTS,
  CapType,
  ENDPOINT_BITS,
  Exception,
  HUGE_PAGE_BITS,
  LARGE_PAGE_BITS,
  NOTIFICATION_BITS,
  ObjectType,
  PAGE_BITS,
  PAGE_TABLE_BITS,
  REFILL_BYTES,
  REG_SPSR,
  REPLY_BITS,
  RIGHT_GRANT,
  RIGHT_GRANT_REPLY,
  RIGHT_READ,
  RIGHT_WRITE,
  SCHED_CONTEXT_HEADER_BYTES,
  SeL4Error,
  SLOT_BITS,
  TCB_BITS,
  TCB_CNODE_ENTRIES,
  ThreadState,
  VCPU_BITS,
  VSPACE_BITS,
  WORD_BITS,
  ZOMBIE_TYPE_TCB,
} from "../types.js";
import { decodeCNodeInvocation, ensureNoChildren } from "./cnode.js";
import { cancelAllIPC, cancelIPC, sendIPC } from "./endpoint.js";
import { decodeIRQControlInvocation, decodeIRQHandlerInvocation, deletingIRQHandler } from "./interrupt.js";
import { cancelAllSignals, sendSignal, unbindMaybeNotification, unbindNotification } from "./notification.js";
import { replyRemove } from "./reply.js";
import {
  decodeSchedContextInvocation,
  schedContextCompleteYieldTo,
  schedContextUnbindAllTCBs,
  schedContextUnbindNtfn,
  schedContextUnbindReply,
  schedContextUnbindTCB,
} from "./schedcontext.js";
import { decodeSchedControlInvocation } from "./schedcontrol.js";
import { decodeDomainInvocation, decodeTCBInvocation } from "./tcb.js";
import { decodeUntypedInvocation } from "./untyped.js";
import { decodeARMVCPUInvocation, dissociateVCPUTCB, vcpuFinalise, vcpuInit } from "./vcpu.js";
import {
  decodeARMMMUInvocation,
  deleteASID,
  deleteASIDPool,
  maskVMRights,
  unmapFrameCap,
  unmapPageTable,
  VM_READ_WRITE,
} from "./vspace.js";

/** AArch64 PSTATE of a fresh user thread: EL0t with FIQs masked (seL4 PSTATE_USER). */
const PSTATE_USER = 0x40;

/** The object's last capability is gone: it no longer exists (capvisor bookkeeping). */
export function retireObject(k: Kernel, obj: KObject): void {
  obj.live = false;
  k.objects.delete(obj);
}

// ---------------------------------------------------------------------------------------------
// Invocation dispatch
// ---------------------------------------------------------------------------------------------

/** seL4 isArchCap (AArch64 caps we model). */
function isArchCap(type: CapType): boolean {
  return type >= CapType.Frame;
}

/**
 * seL4 decodeInvocation (MCS). Thread, Domain, CNode, SchedControl and SchedContext caps cannot
 * be invoked in the first phase of ReplyRecv/NBSendRecv/NBSendWait (their send phase), because
 * those invocations could change what the receive phase relies on.
 */
export function decodeInvocation(
  k: Kernel,
  label: number,
  length: number,
  _cptrLo: number,
  _cptrHi: number,
  slot: Slot,
  cap: Cap,
  isBlocking: boolean,
  isCall: boolean,
  canDonate: boolean,
  firstPhase: boolean,
): Exception {
  const type = cap.type;
  if (isArchCap(type)) {
    if (type === CapType.VCPU) return decodeARMVCPUInvocation(k, label, length, cap, isCall);
    return decodeARMMMUInvocation(k, label, length, slot, cap, isCall);
  }
  const thread = k.curThread;
  switch (type) {
    case CapType.Endpoint: {
      if ((cap.rights & RIGHT_WRITE) === 0) return invalidCapability(k, 0);
      setThreadState(k, thread, ThreadState.Restart);
      sendIPC(
        k,
        isBlocking,
        isCall,
        cap.badgeLo,
        cap.badgeHi,
        (cap.rights & RIGHT_GRANT) !== 0,
        (cap.rights & RIGHT_GRANT_REPLY) !== 0,
        canDonate,
        thread,
        cap.obj as Endpoint,
      );
      return Exception.None;
    }
    case CapType.Notification:
      if ((cap.rights & RIGHT_WRITE) === 0) return invalidCapability(k, 0);
      setThreadState(k, thread, ThreadState.Restart);
      sendSignal(k, cap.obj as Notification, cap.badgeLo, cap.badgeHi);
      return Exception.None;
    case CapType.Reply:
      setThreadState(k, thread, ThreadState.Restart);
      doReplyTransfer(k, thread, cap.obj as Reply, (cap.rights & RIGHT_GRANT) !== 0);
      return Exception.None;
    case CapType.Thread:
      if (firstPhase) return invalidCapability(k, 0);
      return decodeTCBInvocation(k, label, length, cap, slot, isCall);
    case CapType.Domain:
      if (firstPhase) return invalidCapability(k, 0);
      return decodeDomainInvocation(k, label, length);
    case CapType.CNode:
      if (firstPhase) return invalidCapability(k, 0);
      return decodeCNodeInvocation(k, label, length, cap);
    case CapType.Untyped:
      return decodeUntypedInvocation(k, label, length, slot, cap, isCall);
    case CapType.IRQControl:
      return decodeIRQControlInvocation(k, label, length, slot);
    case CapType.IRQHandler:
      return decodeIRQHandlerInvocation(k, label, cap.irq);
    case CapType.SchedControl:
      if (firstPhase) return invalidCapability(k, 0);
      return decodeSchedControlInvocation(k, label, length, cap);
    case CapType.SchedContext:
      if (firstPhase) return invalidCapability(k, 0);
      return decodeSchedContextInvocation(k, label, length, cap, isCall);
    default:
      // Null and Zombie caps cannot be invoked.
      return invalidCapability(k, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Object creation (seL4 createObject / Arch_createObject)
// ---------------------------------------------------------------------------------------------

/** seL4 getObjectSize: the object's size in bits (AArch64 sizes, types.ts). */
export function getObjectSize(type: ObjectType, userSize: number): number {
  switch (type) {
    case ObjectType.TCB:
      return TCB_BITS;
    case ObjectType.Endpoint:
      return ENDPOINT_BITS;
    case ObjectType.Notification:
      return NOTIFICATION_BITS;
    case ObjectType.CapTable:
      return SLOT_BITS + userSize;
    case ObjectType.Untyped:
    case ObjectType.SchedContext:
      return userSize;
    case ObjectType.Reply:
      return REPLY_BITS;
    case ObjectType.SmallPage:
      return PAGE_BITS;
    case ObjectType.LargePage:
      return LARGE_PAGE_BITS;
    case ObjectType.HugePage:
      return HUGE_PAGE_BITS;
    case ObjectType.PageTable:
      return PAGE_TABLE_BITS;
    case ObjectType.VSpace:
      return VSPACE_BITS;
    case ObjectType.VCPU:
      return VCPU_BITS;
    default:
      return 0;
  }
}

function newCap<T extends KObject>(k: Kernel, type: CapType, obj: T): Cap {
  k.objects.add(obj);
  return new Cap(type, obj);
}

/** Refills a scheduling context of 2^bits bytes holds (seL4 refill_absolute_max). */
export function refillAbsoluteMax(bits: number): number {
  return Math.floor((2 ** bits - SCHED_CONTEXT_HEADER_BYTES) / REFILL_BYTES);
}

/**
 * seL4 createObject: make the object at paddr and return its original cap. New objects are
 * registered in k.objects; Untyped caps have no object.
 */
export function createObject(
  k: Kernel,
  type: ObjectType,
  paddr: number,
  userSize: number,
  deviceMemory: boolean,
): Cap {
  switch (type) {
    case ObjectType.TCB: {
      const tcb = new TCB(paddr, TCB_BITS);
      // Arch_initContext: a new thread runs at EL0; it starts in the current domain (seL4).
      tcb.setReg(REG_SPSR, PSTATE_USER);
      tcb.domain = k.curDomain;
      tcb.name = `child of: '${k.curThread.name}'`;
      return newCap(k, CapType.Thread, tcb);
    }
    case ObjectType.Endpoint: {
      const c = newCap(k, CapType.Endpoint, new Endpoint(paddr, ENDPOINT_BITS));
      c.rights = ALL_RIGHTS;
      return c;
    }
    case ObjectType.Notification: {
      // Notification caps carry only send (Write) and receive (Read) rights.
      const c = newCap(k, CapType.Notification, new Notification(paddr, NOTIFICATION_BITS));
      c.rights = RIGHT_READ | RIGHT_WRITE;
      return c;
    }
    case ObjectType.CapTable: {
      const c = newCap(k, CapType.CNode, new CNodeObj(paddr, userSize));
      c.sizeBits = userSize;
      return c;
    }
    case ObjectType.Untyped: {
      const c = new Cap(CapType.Untyped, null);
      c.paddr = paddr;
      c.sizeBits = userSize;
      c.isDevice = deviceMemory;
      return c;
    }
    case ObjectType.SchedContext: {
      const sc = newCap(k, CapType.SchedContext, makeSchedContext(paddr, userSize));
      sc.sizeBits = userSize;
      return sc;
    }
    case ObjectType.Reply: {
      const c = newCap(k, CapType.Reply, new Reply(paddr, REPLY_BITS));
      c.rights = RIGHT_GRANT;
      return c;
    }
    case ObjectType.SmallPage:
    case ObjectType.LargePage:
    case ObjectType.HugePage: {
      const bits = getObjectSize(type, userSize);
      const c = newCap(k, CapType.Frame, new Frame(paddr, bits, type, deviceMemory));
      c.rights = VM_READ_WRITE;
      c.paddr = paddr;
      c.sizeBits = bits;
      c.isDevice = deviceMemory;
      return c;
    }
    case ObjectType.VSpace:
      return newCap(k, CapType.VSpace, new VSpace(paddr, VSPACE_BITS));
    case ObjectType.PageTable:
      return newCap(k, CapType.PageTable, new PageTable(paddr, PAGE_TABLE_BITS));
    case ObjectType.VCPU: {
      const v = new VCPU(paddr, VCPU_BITS);
      vcpuInit(v);
      return newCap(k, CapType.VCPU, v);
    }
    default:
      return NULL_CAP;
  }
}

function makeSchedContext(paddr: number, bits: number): SchedContext {
  return new SchedContext(paddr, bits, refillAbsoluteMax(bits));
}

// ---------------------------------------------------------------------------------------------
// Finalisation (seL4 finaliseCap / Arch_finaliseCap)
// ---------------------------------------------------------------------------------------------

export interface FinaliseCapResult {
  remainder: Cap;
  cleanupInfo: Cap;
}

function zombieCap(obj: KObject, n: number, type: number): Cap {
  const z = new Cap(CapType.Zombie, obj);
  z.zombieNumber = n;
  z.zombieType = type;
  return z;
}

/**
 * seL4 finaliseCap: undo what the object's existence implies when `final` (this is its last
 * cap). CNodes and TCBs become Zombies whose slots cteDelete then empties; IRQ handler caps
 * return themselves as cleanup work for postCapDeletion.
 */
export function finaliseCap(k: Kernel, cap: Cap, final: boolean, _exposed: boolean): FinaliseCapResult {
  let remainder = NULL_CAP;
  let cleanupInfo = NULL_CAP;
  const obj = cap.obj;
  switch (cap.type) {
    case CapType.Endpoint:
      if (final) {
        cancelAllIPC(k, obj as Endpoint);
        retireObject(k, obj as KObject);
      }
      break;
    case CapType.Notification:
      if (final) {
        const n = obj as Notification;
        if (n.sc !== null) schedContextUnbindNtfn(k, n.sc);
        unbindMaybeNotification(k, n);
        cancelAllSignals(k, n);
        retireObject(k, n);
      }
      break;
    case CapType.Reply:
      if (final) {
        const reply = obj as Reply;
        const tcb = reply.tcb;
        if (tcb !== null) {
          if (tcb.state === ThreadState.BlockedOnReply) replyRemove(k, reply, tcb);
          else if (tcb.state === ThreadState.BlockedOnReceive) cancelIPC(k, tcb);
        }
        retireObject(k, reply);
      }
      break;
    case CapType.CNode:
      if (final) remainder = zombieCap(obj as KObject, 2 ** cap.sizeBits, cap.sizeBits);
      break;
    case CapType.Thread:
      if (final) {
        const tcb = obj as TCB;
        // seL4 finaliseCap: SMP_COND_STATEMENT(remoteTCBStall(tcb)) before the thread is torn down.
        remoteTCBStall(k, tcb);
        if (tcb.boundNotification !== null) unbindNotification(k, tcb);
        const sc = tcb.sc;
        if (sc !== null) {
          schedContextUnbindTCB(k, sc, tcb);
          if (sc.yieldFrom !== null) schedContextCompleteYieldTo(k, sc.yieldFrom);
        }
        suspend(k, tcb);
        // Arch_prepareThreadDelete: a dying thread lets go of its VCPU.
        if (tcb.vcpu !== null) dissociateVCPUTCB(k, tcb.vcpu, tcb);
        remainder = zombieCap(tcb, TCB_CNODE_ENTRIES, ZOMBIE_TYPE_TCB);
      }
      break;
    case CapType.SchedContext:
      if (final) {
        const sc = obj as SchedContext;
        schedContextUnbindAllTCBs(k, sc);
        if (sc.notification !== null) schedContextUnbindNtfn(k, sc);
        if (sc.reply !== null) schedContextUnbindReply(k, sc);
        if (sc.yieldFrom !== null) schedContextCompleteYieldTo(k, sc.yieldFrom);
        // seL4 marks the SC invalid: scRefillMax = 0, so sc_active is false from now on.
        sc.maxRefills = 0;
        sc.sporadic = false;
        retireObject(k, sc);
      }
      break;
    case CapType.Zombie:
      remainder = cap;
      break;
    case CapType.IRQHandler:
      if (final) {
        deletingIRQHandler(k, cap.irq);
        cleanupInfo = cap;
      }
      break;
    // ---- AArch64 (Arch_finaliseCap) ----
    case CapType.ASIDPool:
      if (final) {
        deleteASIDPool(k, cap.irq, obj as ASIDPool);
        retireObject(k, obj as KObject);
      }
      break;
    case CapType.VSpace:
      if (final) {
        if (cap.mappedAsid !== 0) deleteASID(k, cap.mappedAsid, obj as VSpace);
        retireObject(k, obj as KObject);
      }
      break;
    case CapType.PageTable:
      if (final) {
        if (cap.mappedAsid !== 0) unmapPageTable(k, cap.mappedAsid, cap.mappedVaddr, obj as PageTable);
        retireObject(k, obj as KObject);
      }
      break;
    case CapType.Frame:
      // Each frame cap holds its own mapping: it goes with the cap, final or not.
      if (cap.mappedAsid !== 0) unmapFrameCap(k, cap);
      if (final) retireObject(k, obj as KObject);
      break;
    case CapType.VCPU:
      if (final) {
        vcpuFinalise(k, obj as VCPU);
        retireObject(k, obj as KObject);
      }
      break;
    default:
      // Null, Domain, Untyped, IRQControl, SchedControl, ASIDControl: nothing to undo.
      break;
  }
  return { remainder, cleanupInfo };
}

// ---------------------------------------------------------------------------------------------
// Derivation, rights and cap data
// ---------------------------------------------------------------------------------------------

/**
 * seL4 deriveCap (+ Arch_deriveCap): the cap a Copy/Mint or a cap transfer may create from the
 * one in slot. Returns null with k.syscallError set when derivation is refused; NULL_CAP when
 * the cap type never derives (Zombie, IRQControl).
 */
export function deriveCap(k: Kernel, slot: Slot, cap: Cap): Cap | null {
  switch (cap.type) {
    case CapType.Zombie:
    case CapType.IRQControl:
      return NULL_CAP;
    case CapType.Untyped:
      // An untyped with children would let two caps retype the same memory (manual §2.4.1).
      if (ensureNoChildren(k, slot) !== Exception.None) return null;
      return cap;
    case CapType.VSpace:
    case CapType.PageTable:
      // Only a VSpace/page table that is in use (has an ASID / is mapped) may be copied, so an
      // unmapped table has exactly one cap to map it with (seL4 Arch_deriveCap).
      if (cap.mappedAsid === 0) {
        syscallError(k, SeL4Error.IllegalOperation);
        return null;
      }
      return cap;
    case CapType.Frame: {
      // A copy of a frame cap starts unmapped: each cap maps the frame at most once.
      const c = cap.clone();
      c.mappedAsid = 0;
      c.mappedVaddr = 0;
      return c;
    }
    default:
      // Under MCS Reply caps derive like any other cap (seL4 excludes them only without MCS).
      return cap;
  }
}

/** seL4 maskCapRights: a copy of the cap with only the rights also in `rights`. */
export function maskCapRights(rights: number, cap: Cap): Cap {
  const c = cap.clone();
  switch (cap.type) {
    case CapType.Endpoint:
      c.rights = cap.rights & rights & ALL_RIGHTS;
      break;
    case CapType.Notification:
      c.rights = cap.rights & rights & (RIGHT_READ | RIGHT_WRITE);
      break;
    case CapType.Reply:
      c.rights = cap.rights & rights & RIGHT_GRANT;
      break;
    case CapType.Frame:
      c.rights = maskVMRights(cap.rights, rights);
      break;
    default:
      break;
  }
  return c;
}

/**
 * seL4 updateCapData: Mint's badge or guard. Endpoint/notification caps take a badge only when
 * unbadged and not preserving (Mutate/Rotate cannot badge); CNode caps take guard size (bits
 * 0..5) and guard (bits 6..63) as seL4_CNode_CapData. Returns NULL_CAP when refused.
 */
export function updateCapData(preserve: boolean, dataLo: number, dataHi: number, cap: Cap): Cap {
  switch (cap.type) {
    case CapType.Endpoint:
    case CapType.Notification: {
      if (preserve || cap.hasBadge) return NULL_CAP;
      const c = cap.clone();
      c.badgeLo = dataLo >>> 0;
      c.badgeHi = dataHi >>> 0;
      return c;
    }
    case CapType.CNode: {
      const guardSize = dataLo & 0x3f;
      if (guardSize + cap.sizeBits > WORD_BITS) return NULL_CAP;
      const c = cap.clone();
      c.guardSize = guardSize;
      c.guardLo = extractLo(dataHi, dataLo, 6, guardSize);
      c.guardHi = extractHi(dataHi, dataLo, 6, guardSize);
      return c;
    }
    default:
      return cap;
  }
}

/** seL4 isCapRevocable: whether a cap derived from src is an original (may have children). */
export function isCapRevocable(derived: Cap, src: Cap): boolean {
  switch (derived.type) {
    case CapType.Endpoint:
    case CapType.Notification:
      // A newly badged cap is the original of that badge (manual §4.2.1).
      return derived.badgeLo !== src.badgeLo || derived.badgeHi !== src.badgeHi;
    case CapType.IRQHandler:
      return src.type === CapType.IRQControl;
    case CapType.Untyped:
      return true;
    default:
      return false;
  }
}

/** seL4 hasCancelSendRights: an endpoint cap with all four rights. */
export function hasCancelSendRights(cap: Cap): boolean {
  return cap.type === CapType.Endpoint && (cap.rights & ALL_RIGHTS) === ALL_RIGHTS;
}

// ---------------------------------------------------------------------------------------------
// Regions and objects
// ---------------------------------------------------------------------------------------------

/** seL4 cap_get_capIsPhysical: the cap names memory (an object or an untyped region). */
function capIsPhysical(c: Cap): boolean {
  return c.type === CapType.Untyped || (c.obj !== null && c.type !== CapType.Null);
}
function capBase(c: Cap): number {
  return c.type === CapType.Untyped ? c.paddr : (c.obj as KObject).paddr;
}
function capSizeBits(c: Cap): number {
  return c.type === CapType.Untyped ? c.sizeBits : (c.obj as KObject).sizeBits;
}

/** seL4 sameRegionAs (+ Arch_sameRegionAs): b lies within what a names. */
export function sameRegionAs(a: Cap, b: Cap): boolean {
  switch (a.type) {
    case CapType.Untyped: {
      if (!capIsPhysical(b)) return false;
      const aBase = a.paddr;
      const bBase = capBase(b);
      const aTop = aBase + 2 ** a.sizeBits - 1;
      const bTop = bBase + 2 ** capSizeBits(b) - 1;
      return aBase <= bBase && bTop <= aTop && bBase <= bTop;
    }
    case CapType.Endpoint:
    case CapType.Notification:
    case CapType.Thread:
    case CapType.Reply:
    case CapType.SchedContext:
    case CapType.PageTable:
    case CapType.VSpace:
    case CapType.ASIDPool:
    case CapType.VCPU:
      return b.type === a.type && b.obj === a.obj;
    case CapType.CNode:
      return b.type === CapType.CNode && b.obj === a.obj && b.sizeBits === a.sizeBits;
    case CapType.Domain:
    case CapType.SchedControl:
    case CapType.ASIDControl:
      return b.type === a.type;
    case CapType.IRQControl:
      return b.type === CapType.IRQControl || b.type === CapType.IRQHandler;
    case CapType.IRQHandler:
      return b.type === CapType.IRQHandler && b.irq === a.irq;
    case CapType.Frame: {
      if (b.type !== CapType.Frame) return false;
      const botA = capBase(a);
      const botB = capBase(b);
      const topA = botA + 2 ** capSizeBits(a) - 1;
      const topB = botB + 2 ** capSizeBits(b) - 1;
      return botA <= botB && topA >= topB && botB <= topB;
    }
    default:
      return false;
  }
}

/** seL4 sameObjectAs (+ Arch_sameObjectAs): a and b name the same object. */
export function sameObjectAs(a: Cap, b: Cap): boolean {
  if (a.type === CapType.Untyped || a.type === CapType.IRQControl) return false;
  if (a.type === CapType.Frame) {
    if (b.type !== CapType.Frame) return false;
    return (
      capBase(a) === capBase(b) &&
      capSizeBits(a) === capSizeBits(b) &&
      (a.obj as Frame).isDevice === (b.obj as Frame).isDevice
    );
  }
  return sameRegionAs(a, b);
}
