/**
 * Notifications (seL4 src/object/notification.c, include/object/notification.h, MCS
 * configuration; manual §5 "Notifications", §5.3 binding, §6.1.4 passive threads woken by a
 * notification run on the notification's scheduling context).
 */
import { doNBRecvFailedTransfer } from "../core/ipc.js";
import { refillUnblockCheck, scSporadic } from "../core/sporadic.js";
import { isSchedulable, possibleSwitchTo, rescheduleRequired, setThreadState } from "../core/thread.js";
import type { Kernel } from "../state.js";
import type { Cap, Notification, TCB } from "../structures.js";
import { NotificationState, REG_BADGE, ThreadState } from "../types.js";
import { cancelIPC, tcbQueueAppend, tcbQueueRemove } from "./endpoint.js";
import { schedContextDonate, schedContextResume } from "./schedcontext.js";

function setBadge(t: TCB, lo: number, hi: number): void {
  t.regs[2 * REG_BADGE] = lo;
  t.regs[2 * REG_BADGE + 1] = hi;
}

/** seL4 ntfn_set_active. */
function ntfnSetActive(n: Notification, lo: number, hi: number): void {
  n.state = NotificationState.Active;
  n.msgLo = lo >>> 0;
  n.msgHi = hi >>> 0;
}

/** seL4 tcbNTFNAppend (MCS): priority ordered. */
function tcbNTFNAppend(n: Notification, t: TCB): void {
  tcbQueueAppend(n, t);
  n.state = NotificationState.Waiting;
}

/** seL4 tcbNTFNDequeue (MCS). */
function tcbNTFNDequeue(n: Notification, t: TCB): void {
  tcbQueueRemove(n, t);
  if (n.qHead === null) n.state = NotificationState.Idle;
}

/** The woken thread's SC unblock check, when it is sporadic and not the running SC. */
function unblockIfSporadic(k: Kernel, t: TCB): void {
  const sc = t.sc;
  if (sc !== null && scSporadic(sc) && sc !== k.node.curSC) refillUnblockCheck(k, sc);
}

/**
 * seL4 maybeDonateSchedContext: a passive thread woken by the notification borrows the
 * notification's SC, if that SC is not lent to someone else.
 */
export function maybeDonateSchedContext(k: Kernel, t: TCB, n: Notification): void {
  if (t.sc !== null) return;
  const sc = n.sc;
  if (sc !== null && sc.tcb === null) {
    schedContextDonate(k, sc, t);
    schedContextResume(k, sc);
  }
}

/**
 * seL4 maybeReturnSchedContext: a thread about to wait gives the notification's SC back (it will
 * get it again with the next signal).
 */
export function maybeReturnSchedContext(k: Kernel, n: Notification, t: TCB): void {
  const sc = n.sc;
  if (sc !== null && sc === t.sc) {
    t.sc = null;
    sc.tcb = null;
    // A current thread that gave back its SC must not continue by default.
    if (t === k.curThread) rescheduleRequired(k);
  }
}

/**
 * seL4 sendSignal: OR the badge into the notification, or wake one waiter (manual §5.1). A bound
 * thread waiting on an endpoint receives the signal instead (manual §5.3); a bound thread that is
 * in the middle of a Call does not.
 */
export function sendSignal(k: Kernel, n: Notification, badgeLo: number, badgeHi: number): void {
  switch (n.state) {
    case NotificationState.Idle: {
      const t = n.boundTCB;
      if (t !== null && t.state === ThreadState.BlockedOnReceive) {
        cancelIPC(k, t);
        setThreadState(k, t, ThreadState.Running);
        setBadge(t, badgeLo >>> 0, badgeHi >>> 0);
        maybeDonateSchedContext(k, t, n);
        if (isSchedulable(k, t)) possibleSwitchTo(k, t);
        unblockIfSporadic(k, t);
      } else {
        ntfnSetActive(n, badgeLo, badgeHi);
      }
      break;
    }
    case NotificationState.Waiting: {
      const dest = n.qHead!;
      tcbNTFNDequeue(n, dest);
      setThreadState(k, dest, ThreadState.Running);
      setBadge(dest, badgeLo >>> 0, badgeHi >>> 0);
      maybeDonateSchedContext(k, dest, n);
      if (isSchedulable(k, dest)) possibleSwitchTo(k, dest);
      unblockIfSporadic(k, dest);
      break;
    }
    case NotificationState.Active:
      n.msgLo = (n.msgLo | badgeLo) >>> 0;
      n.msgHi = (n.msgHi | badgeHi) >>> 0;
      break;
  }
}

/**
 * seL4 receiveSignal (Wait / NBWait / Poll): take the word if the notification is active, else
 * block (or return badge 0 when non-blocking).
 */
export function receiveSignal(k: Kernel, t: TCB, cap: Cap, isBlocking: boolean): void {
  const n = cap.obj as Notification;
  if (n.state === NotificationState.Active) {
    setBadge(t, n.msgLo, n.msgHi);
    n.state = NotificationState.Idle;
    n.msgLo = 0;
    n.msgHi = 0;
    maybeDonateSchedContext(k, t, n);
    // The SC may have been donated just now (ReplyRecv / NBSendRecv onto a notification).
    unblockIfSporadic(k, t);
    return;
  }
  if (isBlocking) {
    t.blockingObject = n;
    setThreadState(k, t, ThreadState.BlockedOnNotification);
    tcbNTFNAppend(n, t);
    maybeReturnSchedContext(k, n, t);
  } else {
    doNBRecvFailedTransfer(t);
  }
}

/** seL4 removeAndRestartNTFNQueuedThread. */
function removeAndRestartNTFNQueuedThread(k: Kernel, t: TCB, n: Notification): void {
  tcbNTFNDequeue(n, t);
  setThreadState(k, t, ThreadState.Restart);
  unblockIfSporadic(k, t);
  possibleSwitchTo(k, t);
}

/** seL4 cancelAllSignals: every waiter restarts its Wait (the notification is being deleted). */
export function cancelAllSignals(k: Kernel, n: Notification): void {
  if (n.state !== NotificationState.Waiting) return;
  let t = n.qHead;
  while (t !== null) {
    const next = t.epNext;
    removeAndRestartNTFNQueuedThread(k, t, n);
    t = next;
  }
  rescheduleRequired(k);
}

/** seL4 cancelSignal: a waiter stops waiting and becomes Inactive. */
export function cancelSignal(k: Kernel, t: TCB, n: Notification): void {
  tcbNTFNDequeue(n, t);
  setThreadState(k, t, ThreadState.Inactive);
}

/** seL4 completeSignal: deliver an active bound notification to its thread in receiveIPC. */
export function completeSignal(k: Kernel, n: Notification, t: TCB): void {
  if (n.state !== NotificationState.Active) return;
  setBadge(t, n.msgLo, n.msgHi);
  n.state = NotificationState.Idle;
  n.msgLo = 0;
  n.msgHi = 0;
  maybeDonateSchedContext(k, t, n);
  const sc = t.sc;
  // Only unblock if the SC was donated from the notification.
  if (sc !== null && scSporadic(sc) && sc === n.sc && sc !== k.node.curSC) refillUnblockCheck(k, sc);
}

/** seL4 bindNotification (TCB_BindNotification). */
export function bindNotification(_k: Kernel, t: TCB, n: Notification): void {
  n.boundTCB = t;
  t.boundNotification = n;
}

/** seL4 unbindNotification. */
export function unbindNotification(_k: Kernel, t: TCB): void {
  const n = t.boundNotification;
  if (n !== null) {
    n.boundTCB = null;
    t.boundNotification = null;
  }
}

/** seL4 unbindMaybeNotification (the notification is being deleted or unbound from its side). */
export function unbindMaybeNotification(_k: Kernel, n: Notification): void {
  const t = n.boundTCB;
  if (t !== null) {
    n.boundTCB = null;
    t.boundNotification = null;
  }
}

/** seL4 reorderNTFN: a waiting thread changed priority. */
export function reorderNTFN(_k: Kernel, n: Notification, t: TCB): void {
  tcbQueueRemove(n, t);
  tcbQueueAppend(n, t);
}
