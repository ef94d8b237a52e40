/**
 * The IPC fastpath (seL4 src/fastpath/fastpath.c, MCS configuration): Call to a passive server
 * waiting on an endpoint, and ReplyRecv from a server back to its caller, done in one step
 * without the general machinery. It is taken only under the conditions seL4's fastpath checks,
 * tightened where needed so that the result is always exactly the state the slow path
 * (handleSyscall + schedule + activateThread) would produce; otherwise it returns false before
 * changing anything and the slow path runs.
 *
 * Entered from syscallEntry after the timestamp update, t.faultIP and setNextPC. Allocates
 * nothing on the success path.
 */
import { lookupCap } from "./core/cspace.js";
import { copyMsgInfoLabel } from "./core/message.js";
import { refillReady, refillSufficient } from "./core/sporadic.js";
import { isHighestPrio, setNextInterrupt, switchSchedContext, ticklessHolds } from "./core/thread.js";
import { tcbEPAppend, tcbEPDequeue } from "./object/endpoint.js";
import { ACTION_RESUME, type CoreState, type Kernel } from "./state.js";
import type { Endpoint, Reply, TCB, VSpace } from "./structures.js";
import {
  CapType,
  EndpointState,
  MSG_REGISTERS,
  NotificationState,
  REG_BADGE,
  REG_CAP,
  REG_MR0,
  REG_MSGINFO,
  REG_REPLY,
  RIGHT_GRANT,
  RIGHT_GRANT_REPLY,
  RIGHT_READ,
  RIGHT_WRITE,
  TCB_VTABLE,
  ThreadState,
} from "./types.js";

/**
 * seL4 fastpath_mi_check: no extra caps and the message fits in the message registers
 * (low 9 bits of the message info = extraCaps:2 | length:7).
 */
function miCheckFails(t: TCB): boolean {
  return (t.regs[2 * REG_MSGINFO]! & 0x1ff) > MSG_REGISTERS;
}

/** seL4 isValidVTableRoot_fp: the thread has a VSpace cap with an ASID assigned. */
function hasValidVTable(t: TCB): boolean {
  const cap = t.ctes[TCB_VTABLE]!.cap;
  if (cap.type !== CapType.VSpace) return false;
  return cap.mappedAsid !== 0 || (cap.obj as VSpace).asid !== 0;
}

/**
 * What must hold on this core for the kernel entry itself to take no other action: the slow
 * path's checkBudgetRestart would pass (the current SC can pay for the entry, the domain has time
 * left), no scheduling decision is pending, and schedule()'s awaken() would release nobody.
 */
function entryIsQuiet(k: Kernel, node: CoreState, cur: TCB): boolean {
  const sc = node.curSC;
  if (cur.sc !== sc || sc.core !== k.cur) return false;
  if (!refillSufficient(k, sc, node.consumed)) return false;
  // domainTime 0 means isCurDomainExpired (several domains) or nextDomain in schedule().
  if (k.domainTime === 0) return false;
  if (node.schedulerAction !== ACTION_RESUME) return false;
  const rlq = node.releaseHead;
  return rlq === null || !refillReady(k, rlq.sc!);
}

/** Copy MR0..MR(len-1) (registers only: len <= MSG_REGISTERS) and the message info (seL4 fastpath_copy_mrs). */
function copyRegisterMessage(from: TCB, to: TCB, len: number): void {
  const fr = from.regs;
  const tr = to.regs;
  for (let i = 0; i < len; i++) {
    const r = 2 * (REG_MR0 + i);
    tr[r] = fr[r]!;
    tr[r + 1] = fr[r + 1]!;
  }
  copyMsgInfoLabel(from, to, 0, 0, len);
}

/**
 * The second half of the slow path's schedule() + activateThread() once `next` is the chosen
 * thread: same SC as before, so switchSchedContext only commits time if a reprogram is due.
 */
function switchTo(k: Kernel, node: CoreState, next: TCB): void {
  node.curThread = next;
  node.schedulerAction = ACTION_RESUME;
  node.switchTarget = null;
  if (!ticklessHolds(k)) node.reprogram = true;
  switchSchedContext(k);
  if (node.reprogram) {
    setNextInterrupt(k);
    node.reprogram = false;
  }
  k.stats.contextSwitches++;
}

/**
 * seL4 fastpath_call (MCS): the caller's SC is donated to a passive server that waits on the
 * endpoint with a reply object; the caller blocks on that reply and the server runs at once.
 */
export function fastpathCall(k: Kernel): boolean {
  const node = k.node;
  const cur = node.curThread;
  if (miCheckFails(cur) || cur.fault !== null) return false;
  if (!entryIsQuiet(k, node, cur)) return false;

  const epCap = lookupCap(k, cur, cur.regs[2 * REG_CAP + 1]!, cur.regs[2 * REG_CAP]!);
  if (epCap === null || epCap.type !== CapType.Endpoint || (epCap.rights & RIGHT_WRITE) === 0) return false;
  const ep = epCap.obj as Endpoint;
  if (ep.state !== EndpointState.Recv) return false;
  const dest = ep.qHead!;
  if (!hasValidVTable(dest)) return false;

  // The server must be what chooseThread picks once it is runnable (seL4 checks the same
  // assuming the current thread outranks the ready queues; we check it outright).
  const dom = k.config.domains > 1 ? k.curDomain : 0;
  if (!isHighestPrio(node, dom, dest.priority)) return false;
  // A reply cap can only be made with Grant or GrantReply.
  if ((epCap.rights & (RIGHT_GRANT | RIGHT_GRANT_REPLY)) === 0) return false;
  if (dest.domain !== k.curDomain) return false;
  // Passive server with a reply object, on this core, not in the middle of a YieldTo.
  if (dest.sc !== null || dest.inReleaseQueue || dest.yieldTo !== null) return false;
  const reply: Reply | null = dest.reply;
  if (reply === null) return false;
  if (dest.core !== cur.core || cur.core !== k.cur) return false;

  // --- point of no return ---
  tcbEPDequeue(ep, dest);

  // Unlink dest <-> reply, link the caller <-> reply.
  dest.reply = null;
  cur.state = ThreadState.BlockedOnReply;
  cur.reply = reply;
  reply.tcb = cur;

  // Donate the SC and push the reply on its call stack (seL4 reply_push).
  const sc = cur.sc!;
  sc.tcb = dest;
  dest.sc = sc;
  cur.sc = null;
  const oldCaller = sc.reply;
  reply.prev = oldCaller;
  if (oldCaller !== null) {
    oldCaller.sc = null;
    oldCaller.next = reply;
  }
  reply.next = null;
  reply.sc = sc;
  sc.reply = reply;

  // The message: MRs, label and length, the badge of the cap (lookupExtraCaps found no caps).
  k.extraCaps[0] = null;
  copyRegisterMessage(cur, dest, cur.regs[2 * REG_MSGINFO]! & 0x7f);
  dest.regs[2 * REG_BADGE] = epCap.badgeLo;
  dest.regs[2 * REG_BADGE + 1] = epCap.badgeHi;

  dest.state = ThreadState.Running;
  switchTo(k, node, dest);
  k.stats.fastpathCalls++;
  return true;
}

/**
 * seL4 fastpath_reply_recv (MCS): reply to the caller at the head of the SC's call stack (the SC
 * goes back to it) and wait on the endpoint again with the same reply object.
 */
export function fastpathReplyRecv(k: Kernel): boolean {
  const node = k.node;
  const cur = node.curThread;
  if (miCheckFails(cur) || cur.fault !== null) return false;
  if (!entryIsQuiet(k, node, cur)) return false;

  const epCap = lookupCap(k, cur, cur.regs[2 * REG_CAP + 1]!, cur.regs[2 * REG_CAP]!);
  if (epCap === null || epCap.type !== CapType.Endpoint || (epCap.rights & RIGHT_READ) === 0) return false;
  const replyCap = lookupCap(k, cur, cur.regs[2 * REG_REPLY + 1]!, cur.regs[2 * REG_REPLY]!);
  if (replyCap === null || replyCap.type !== CapType.Reply) return false;

  // Nothing pending on the bound notification.
  const ntfn = cur.boundNotification;
  if (ntfn !== null && ntfn.state === NotificationState.Active) return false;

  const ep = epCap.obj as Endpoint;
  if (ep.state === EndpointState.Send) return false;

  // The reply must be the head of the call stack of the SC we run on.
  const reply = replyCap.obj as Reply;
  const caller = reply.tcb;
  const sc = cur.sc!;
  if (caller === null || reply.sc !== sc || caller.state !== ThreadState.BlockedOnReply) return false;
  if (caller.fault !== null) return false;
  if (!hasValidVTable(caller)) return false;

  const dom = k.config.domains > 1 ? k.curDomain : 0;
  if (!isHighestPrio(node, dom, caller.priority)) return false;
  if (caller.domain !== k.curDomain) return false;
  if (caller.sc !== null || caller.inReleaseQueue || caller.yieldTo !== null) return false;
  if (caller.core !== cur.core || cur.core !== k.cur) return false;
  // The returned SC must be able to run the caller now (else doReplyTransfer postpones it or
  // raises a timeout fault).
  if (!refillReady(k, sc) || !refillSufficient(k, sc, 0)) return false;

  // --- point of no return ---
  // The server waits on the endpoint with the reply object.
  cur.blockingObject = ep;
  cur.state = ThreadState.BlockedOnReceive;
  caller.reply = null;
  cur.reply = reply;
  reply.tcb = cur;
  tcbEPAppend(ep, cur, EndpointState.Recv);

  // Pop the call stack: the SC returns to the caller (seL4 reply_pop).
  const prev = reply.prev;
  cur.sc = null;
  caller.sc = sc;
  sc.tcb = caller;
  sc.reply = prev;
  if (prev !== null) {
    prev.next = null;
    prev.sc = sc;
  }
  reply.prev = null;
  reply.next = null;
  reply.sc = null;

  // The reply message: no badge.
  k.extraCaps[0] = null;
  copyRegisterMessage(cur, caller, cur.regs[2 * REG_MSGINFO]! & 0x7f);
  caller.regs[2 * REG_BADGE] = 0;
  caller.regs[2 * REG_BADGE + 1] = 0;

  caller.state = ThreadState.Running;
  switchTo(k, node, caller);
  k.stats.fastpathReplyRecvs++;
  return true;
}
