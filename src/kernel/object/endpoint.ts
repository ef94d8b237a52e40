/**
 * Endpoints (seL4 src/object/endpoint.c, MCS configuration; manual §4 "Message passing" and
 * §6.1.4 on scheduling-context donation over IPC).
 *
 * Endpoint and notification queues are priority ordered under MCS (seL4 tcbAppend: a thread goes
 * after every queued thread of equal or higher priority), linked through tcb.epNext/epPrev.
 */
import { doIPCTransfer, doNBRecvFailedTransfer } from "../core/ipc.js";
import { preemptionPoint } from "../core/message.js";
import { refillUnblockCheck, scSporadic } from "../core/sporadic.js";
import { possibleSwitchTo, rescheduleRequired, setThreadState } from "../core/thread.js";
import type { Kernel } from "../state.js";
import type { Cap, Endpoint, Notification, Reply, TCB } from "../structures.js";
import { CapType, EndpointState, Exception, FaultType, NotificationState, ThreadState } from "../types.js";
import { cancelSignal, completeSignal, maybeReturnSchedContext } from "./notification.js";
import { replyPush, replyRemoveTCB, replyUnlink } from "./reply.js";
import { schedContextDonate } from "./schedcontext.js";

/** The queue part shared by endpoints and notifications. */
export interface TCBQueue {
  qHead: TCB | null;
  qTail: TCB | null;
}

/** seL4 tcbAppend (MCS): insert in priority order, FIFO among equal priorities. */
export function tcbQueueAppend(q: TCBQueue, t: TCB): void {
  const prio = t.priority;
  const head = q.qHead;
  if (head === null || prio > head.priority) {
    // prepend
    t.epPrev = null;
    t.epNext = head;
    if (head === null) q.qTail = t;
    else head.epPrev = t;
    q.qHead = t;
    return;
  }
  const tail = q.qTail!;
  if (tail.priority >= prio) {
    // append
    t.epPrev = tail;
    t.epNext = null;
    tail.epNext = t;
    q.qTail = t;
    return;
  }
  // rightmost thread whose priority is >= prio (exists: the head's is)
  let before = tail;
  while (prio > before.priority) before = before.epPrev!;
  const after = before.epNext!;
  t.epPrev = before;
  t.epNext = after;
  after.epPrev = t;
  before.epNext = t;
}

/** seL4 tcb_queue_remove. */
export function tcbQueueRemove(q: TCBQueue, t: TCB): void {
  const before = t.epPrev;
  const after = t.epNext;
  if (before === null) q.qHead = after;
  else before.epNext = after;
  if (after === null) q.qTail = before;
  else after.epPrev = before;
  t.epPrev = null;
  t.epNext = null;
}

/** seL4 tcbEPAppend (MCS). */
export function tcbEPAppend(ep: Endpoint, t: TCB, state: EndpointState): void {
  tcbQueueAppend(ep, t);
  ep.state = state;
}

/** seL4 tcbEPDequeue (MCS): the endpoint goes Idle when its queue empties. */
export function tcbEPDequeue(ep: Endpoint, t: TCB): void {
  tcbQueueRemove(ep, t);
  if (ep.qHead === null) ep.state = EndpointState.Idle;
}

/** seL4 sc_sporadic(tcb->tcbSchedContext) && sc != ksCurSC: refill_unblock_check. */
function unblockIfSporadic(k: Kernel, t: TCB): void {
  const sc = t.sc;
  if (sc !== null && scSporadic(sc) && sc !== k.node.curSC) refillUnblockCheck(k, sc);
}

/**
 * seL4 sendIPC (MCS). With a receiver waiting, the message is transferred at once; a Call (or a
 * fault message) then blocks the sender on the receiver's reply object, provided the cap has
 * Grant or GrantReply, else the sender becomes Inactive (manual §4.2.4). Otherwise a blocking send
 * queues the sender and a non-blocking send is dropped.
 */
export function sendIPC(
  k: Kernel,
  blocking: boolean,
  doCall: boolean,
  badgeLo: number,
  badgeHi: number,
  canGrant: boolean,
  canGrantReply: boolean,
  canDonate: boolean,
  t: TCB,
  ep: Endpoint,
): void {
  if (ep.state !== EndpointState.Recv) {
    if (blocking) {
      t.blockingObject = ep;
      t.blockingBadgeLo = badgeLo >>> 0;
      t.blockingBadgeHi = badgeHi >>> 0;
      t.blockingCanGrant = canGrant;
      t.blockingCanGrantReply = canGrantReply;
      t.blockingIsCall = doCall;
      setThreadState(k, t, ThreadState.BlockedOnSend);
      tcbEPAppend(ep, t, EndpointState.Send);
    }
    return;
  }
  const dest = ep.qHead!;
  tcbEPDequeue(ep, dest);
  doIPCTransfer(k, t, ep, badgeLo, badgeHi, canGrant, dest);

  const reply = dest.reply;
  if (reply !== null) replyUnlink(k, reply, dest);

  if (doCall || t.fault !== null) {
    if (reply !== null && (canGrant || canGrantReply)) replyPush(k, t, dest, reply, canDonate);
    else setThreadState(k, t, ThreadState.Inactive);
  } else if (canDonate && dest.sc === null && t.sc !== null) {
    schedContextDonate(k, t.sc, dest);
  }

  setThreadState(k, dest, ThreadState.Running);
  unblockIfSporadic(k, dest);
  possibleSwitchTo(k, dest);
}

/**
 * seL4 receiveIPC (MCS). A pending signal on the bound notification is taken first. Otherwise a
 * queued sender is served at once, or the receiver blocks (holding `replyCap`'s reply object), or
 * a non-blocking receive returns with badge 0.
 */
export function receiveIPC(k: Kernel, t: TCB, cap: Cap, isBlocking: boolean, replyCap: Cap): void {
  const ep = cap.obj as Endpoint;
  let replyPtr: Reply | null = null;
  if (replyCap.type === CapType.Reply) {
    replyPtr = replyCap.obj as Reply;
    const replyTCB = replyPtr.tcb;
    // seL4: "Reply object already has unexecuted reply!" — the old waiter is cancelled.
    if (replyTCB !== null && replyTCB !== t) cancelIPC(k, replyTCB);
  }

  const ntfn = t.boundNotification;
  if (ntfn !== null && ntfn.state === NotificationState.Active) {
    completeSignal(k, ntfn, t);
    return;
  }
  // A passive server returns the notification's SC before waiting for donated ones.
  if (ntfn !== null && isBlocking) maybeReturnSchedContext(k, ntfn, t);

  if (ep.state !== EndpointState.Send) {
    if (isBlocking) {
      t.blockingObject = ep;
      t.reply = replyPtr;
      setThreadState(k, t, ThreadState.BlockedOnReceive);
      if (replyPtr !== null) replyPtr.tcb = t;
      tcbEPAppend(ep, t, EndpointState.Recv);
    } else {
      doNBRecvFailedTransfer(t);
    }
    return;
  }

  const sender = ep.qHead!;
  tcbEPDequeue(ep, sender);
  const canGrant = sender.blockingCanGrant;
  const canGrantReply = sender.blockingCanGrantReply;
  doIPCTransfer(k, sender, ep, sender.blockingBadgeLo, sender.blockingBadgeHi, canGrant, t);
  const doCall = sender.blockingIsCall;

  unblockIfSporadic(k, sender);

  const fault = sender.fault;
  if (doCall || fault !== null) {
    if ((canGrant || canGrantReply) && replyPtr !== null) {
      const canDonate = sender.sc !== null && (fault === null || fault.type !== FaultType.Timeout);
      replyPush(k, sender, t, replyPtr, canDonate);
    } else {
      setThreadState(k, sender, ThreadState.Inactive);
    }
  } else {
    setThreadState(k, sender, ThreadState.Running);
    possibleSwitchTo(k, sender);
  }
}

/**
 * seL4 cancelIPC (MCS): stop whatever IPC `t` is blocked in; any pending fault is dropped.
 */
export function cancelIPC(k: Kernel, t: TCB): void {
  t.fault = null;
  switch (t.state) {
    case ThreadState.BlockedOnSend:
    case ThreadState.BlockedOnReceive: {
      const ep = t.blockingObject as Endpoint;
      tcbEPDequeue(ep, t);
      if (t.state === ThreadState.BlockedOnReceive) {
        const reply = t.reply;
        if (reply !== null) replyUnlink(k, reply, t);
      }
      setThreadState(k, t, ThreadState.Inactive);
      break;
    }
    case ThreadState.BlockedOnNotification:
      cancelSignal(k, t, t.blockingObject as Notification);
      break;
    case ThreadState.BlockedOnReply:
      replyRemoveTCB(k, t);
      break;
    default:
      break;
  }
}

/** seL4 restart_thread_if_no_fault. */
function restartThreadIfNoFault(k: Kernel, t: TCB): void {
  if (t.fault === null) {
    setThreadState(k, t, ThreadState.Restart);
    unblockIfSporadic(k, t);
    possibleSwitchTo(k, t);
  } else {
    setThreadState(k, t, ThreadState.Inactive);
  }
}

/** seL4 removeAndRestartEPQueuedThread. */
function removeAndRestartEPQueuedThread(k: Kernel, t: TCB, ep: Endpoint): void {
  tcbEPDequeue(ep, t);
  if (t.state === ThreadState.BlockedOnReceive) {
    const reply = t.reply;
    if (reply !== null) replyUnlink(k, reply, t);
  }
  restartThreadIfNoFault(k, t);
}

/**
 * seL4 cancelAllIPC (MCS): every queued thread restarts its syscall (or becomes Inactive when it
 * was sending a fault), in queue order; used when the endpoint is deleted.
 */
export function cancelAllIPC(k: Kernel, ep: Endpoint): void {
  if (ep.state === EndpointState.Idle) return;
  let t = ep.qHead;
  while (t !== null) {
    const next = t.epNext;
    removeAndRestartEPQueuedThread(k, t, ep);
    t = next;
  }
  rescheduleRequired(k);
}

/**
 * seL4 cancelBadgedSends (MCS): restart every sender queued with this badge (CNode
 * CancelBadgedSends, manual §3.1.7). One preemption point per thread examined lets a long queue
 * yield to interrupts; the invocation is restarted and continues with the remaining senders.
 */
export function cancelBadgedSends(k: Kernel, ep: Endpoint, badgeLo: number, badgeHi: number): Exception {
  if (ep.state !== EndpointState.Send) return Exception.None;
  let t = ep.qHead;
  while (t !== null) {
    const next = t.epNext;
    if (t.blockingBadgeLo === badgeLo >>> 0 && t.blockingBadgeHi === badgeHi >>> 0) {
      tcbEPDequeue(ep, t);
      restartThreadIfNoFault(k, t);
    }
    t = next;
    if (t !== null && preemptionPoint(k) === Exception.Preempted) {
      rescheduleRequired(k);
      return Exception.Preempted;
    }
  }
  rescheduleRequired(k);
  return Exception.None;
}

/** seL4 reorderEP: a queued thread changed priority; move it to its new place. */
export function reorderEP(_k: Kernel, ep: Endpoint, t: TCB): void {
  tcbQueueRemove(ep, t);
  tcbQueueAppend(ep, t);
}
