/**
 * Scheduling context objects (seL4 src/object/schedcontext.c, MCS; manual §6.1 "Scheduling
 * contexts" and the SchedContext invocations of §10.3). An SC is bound to at most one TCB and
 * at most one notification (whose passive waiters borrow it); it can be donated along a call
 * chain, and YieldTo lets a thread run another SC's thread in its place.
 */
import { illegalOperation, invalidCapability, setMR, setMsgInfo, truncatedMessage } from "../core/message.js";
import {
  refillReady,
  refillSufficient,
  refillUnblockCheck,
  scActive,
  scReleased,
  scSporadic,
} from "../core/sporadic.js";
import {
  isBlocked,
  isSchedulable,
  migrateTCB,
  postpone,
  remoteTCBStall,
  rescheduleRequired,
  setThreadState,
  tcbReleaseDequeue,
  tcbSchedDequeue,
  tcbSchedEnqueue,
} from "../core/thread.js";
import { ACTION_SWITCH, type Kernel } from "../state.js";
import type { Cap, Notification, SchedContext, TCB } from "../structures.js";
import { CapType, Exception, Invocation, REG_BADGE, ThreadState } from "../types.js";

/** ns per µs: seL4_SchedContext_Consumed reports microseconds (seL4 ticksToUs). */
const NS_PER_US = 1000;

// ---- helpers used across the kernel ----

/**
 * seL4 schedContext_resume: a schedulable thread whose SC cannot run now (head refill not yet
 * due, or too small) waits in the release queue.
 */
export function schedContextResume(k: Kernel, sc: SchedContext | null): void {
  if (sc === null || sc.tcb === null) return;
  if (isSchedulable(k, sc.tcb) && !(refillReady(k, sc) && refillSufficient(k, sc, 0))) postpone(k, sc);
}

/** seL4 schedContext_bindTCB: the TCB runs on this SC, on the SC's core. */
export function schedContextBindTCB(k: Kernel, sc: SchedContext, t: TCB): void {
  t.sc = sc;
  sc.tcb = t;
  migrateTCB(k, t, sc.core);
  if (scSporadic(sc) && scActive(sc) && sc !== k.node.curSC) refillUnblockCheck(k, sc);
  schedContextResume(k, sc);
  if (isSchedulable(k, t)) {
    tcbSchedEnqueue(k, t);
    rescheduleRequired(k);
  }
}

/** seL4 schedContext_unbindTCB (the caller already stalled a remote thread). */
export function schedContextUnbindTCB(k: Kernel, sc: SchedContext, t: TCB): void {
  if (t === k.node.curThread) rescheduleRequired(k);
  tcbSchedDequeue(k, t);
  tcbReleaseDequeue(k, t);
  t.sc = null;
  sc.tcb = null;
}

export function schedContextUnbindAllTCBs(k: Kernel, sc: SchedContext): void {
  const t = sc.tcb;
  if (t === null) return;
  remoteTCBStall(k, t);
  schedContextUnbindTCB(k, sc, t);
}

/** seL4 schedContext_donate: move the SC from its current holder to `to` (IPC donation, manual §6.1.3). */
export function schedContextDonate(k: Kernel, sc: SchedContext, to: TCB): void {
  const from = sc.tcb;
  if (from !== null) {
    remoteTCBStall(k, from);
    tcbSchedDequeue(k, from);
    tcbReleaseDequeue(k, from);
    from.sc = null;
    const node = k.node;
    if (from === node.curThread || (node.schedulerAction === ACTION_SWITCH && node.switchTarget === from)) {
      rescheduleRequired(k);
    }
  }
  sc.tcb = to;
  to.sc = sc;
  migrateTCB(k, to, sc.core);
}

export function schedContextBindNtfn(sc: SchedContext, n: Notification): void {
  n.sc = sc;
  sc.notification = n;
}

export function schedContextUnbindNtfn(_k: Kernel, sc: SchedContext): void {
  const n = sc.notification;
  if (n === null) return;
  n.sc = null;
  sc.notification = null;
}

/** seL4 schedContext_unbindReply: detach the call stack whose head names this SC. */
export function schedContextUnbindReply(_k: Kernel, sc: SchedContext): void {
  const r = sc.reply;
  if (r === null) return;
  r.sc = null;
  r.next = null;
  sc.reply = null;
}

/**
 * seL4 schedContext_updateConsumed: the time consumed since the last report, in µs, and reset
 * (like seL4, the sub-µs remainder is dropped with the reset).
 */
export function schedContextUpdateConsumed(_k: Kernel, sc: SchedContext): number {
  const consumed = sc.consumed;
  sc.consumed = 0;
  return Math.floor(consumed / NS_PER_US);
}

/** seL4 replyFromKernel_consumed: MR0 = consumed µs (seL4_Time is one word on 64-bit). */
function replyConsumed(t: TCB, consumed: number): void {
  t.regs[2 * REG_BADGE] = 0;
  t.regs[2 * REG_BADGE + 1] = 0;
  const length = setMR(t, 0, consumed);
  setMsgInfo(t, 0, 0, 0, length);
}

function setConsumedMaybeReply(k: Kernel, sc: SchedContext, t: TCB, writeMsg: boolean): void {
  const consumed = schedContextUpdateConsumed(k, sc);
  if (writeMsg) replyConsumed(t, consumed);
}

/** seL4 setConsumed with a reply: t's MR0 gets the consumed time (µs, as seL4) and it is reset. */
export function setConsumed(k: Kernel, sc: SchedContext, t: TCB): void {
  setConsumedMaybeReply(k, sc, t, true);
}

export function schedContextCancelYieldTo(_k: Kernel, t: TCB): void {
  const sc = t.yieldTo;
  if (sc === null) return;
  sc.yieldFrom = null;
  t.yieldTo = null;
}

/** seL4 schedContext_completeYieldTo: the yielder runs again and learns what the other SC consumed. */
export function schedContextCompleteYieldTo(k: Kernel, yielder: TCB): void {
  const sc = yielder.yieldTo;
  if (sc === null) return;
  setConsumed(k, sc, yielder);
  schedContextCancelYieldTo(k, yielder);
}

// ---- invocations ----

function decodeBind(k: Kernel, sc: SchedContext): Exception {
  const slot = k.extraCaps[0];
  if (slot === null || slot === undefined) return truncatedMessage(k);
  const cap = slot.cap;
  if (cap.type === CapType.Thread) {
    const t = cap.obj as TCB;
    if (sc.tcb !== null) return illegalOperation(k);
    if (t.sc !== null) return illegalOperation(k);
    if (isBlocked(t) && !scReleased(k, sc)) return illegalOperation(k);
    setThreadState(k, k.curThread, ThreadState.Restart);
    schedContextBindTCB(k, sc, t);
    return Exception.None;
  }
  if (cap.type === CapType.Notification) {
    const n = cap.obj as Notification;
    if (sc.notification !== null) return illegalOperation(k);
    if (n.sc !== null) return illegalOperation(k);
    setThreadState(k, k.curThread, ThreadState.Restart);
    schedContextBindNtfn(sc, n);
    return Exception.None;
  }
  return invalidCapability(k, 1);
}

function decodeUnbindObject(k: Kernel, sc: SchedContext): Exception {
  const slot = k.extraCaps[0];
  if (slot === null || slot === undefined) return truncatedMessage(k);
  const cap = slot.cap;
  if (cap.type === CapType.Thread) {
    if (sc.tcb !== cap.obj) return illegalOperation(k);
    if (sc.tcb === k.curThread) return illegalOperation(k);
    setThreadState(k, k.curThread, ThreadState.Restart);
    schedContextUnbindTCB(k, sc, cap.obj as TCB);
    return Exception.None;
  }
  if (cap.type === CapType.Notification) {
    if (sc.notification !== cap.obj) return illegalOperation(k);
    setThreadState(k, k.curThread, ThreadState.Restart);
    schedContextUnbindNtfn(k, sc);
    return Exception.None;
  }
  return invalidCapability(k, 1);
}

/**
 * seL4 invokeSchedContext_YieldTo: run the SC's thread now, in the caller's place, if it may
 * (same core, priority not below the caller's); the caller gets the consumed time when it next
 * runs. Otherwise the consumed time is returned at once.
 */
function invokeYieldTo(k: Kernel, sc: SchedContext, isCall: boolean): Exception {
  if (sc.yieldFrom !== null) schedContextCompleteYieldTo(k, sc.yieldFrom);
  schedContextResume(k, sc);
  const t = sc.tcb!;
  const cur = k.curThread;
  let returnNow = true;
  if (isSchedulable(k, t)) {
    if (sc.core !== k.cur || t.priority < cur.priority) {
      tcbSchedDequeue(k, t);
      tcbSchedEnqueue(k, t);
    } else {
      cur.yieldTo = sc;
      sc.yieldFrom = cur;
      tcbSchedDequeue(k, t);
      tcbSchedEnqueue(k, cur);
      tcbSchedEnqueue(k, t);
      rescheduleRequired(k);
      returnNow = false;
    }
  }
  if (returnNow) {
    setConsumedMaybeReply(k, sc, cur, isCall);
    setThreadState(k, cur, ThreadState.Running);
  }
  return Exception.None;
}

function decodeYieldTo(k: Kernel, sc: SchedContext, isCall: boolean): Exception {
  const t = sc.tcb;
  const cur = k.curThread;
  if (t === null) return illegalOperation(k);
  if (t === cur) return illegalOperation(k);
  if (t.priority > cur.mcp) return illegalOperation(k);
  if (cur.yieldTo !== null) return illegalOperation(k);
  setThreadState(k, cur, ThreadState.Restart);
  return invokeYieldTo(k, sc, isCall);
}

/**
 * seL4 decodeSchedContextInvocation. `isCall` says whether the invoker waits for a reply
 * (seL4 passes it; Consumed and YieldTo write their result only then). Defaults to a Call.
 */
export function decodeSchedContextInvocation(
  k: Kernel,
  label: number,
  _length: number,
  cap: Cap,
  isCall = true,
): Exception {
  const sc = cap.obj as SchedContext;
  if (sc.tcb !== null) remoteTCBStall(k, sc.tcb);
  switch (label) {
    case Invocation.SchedContextConsumed: {
      const cur = k.curThread;
      setThreadState(k, cur, ThreadState.Restart);
      setConsumedMaybeReply(k, sc, cur, isCall);
      setThreadState(k, cur, ThreadState.Running);
      return Exception.None;
    }
    case Invocation.SchedContextBind:
      return decodeBind(k, sc);
    case Invocation.SchedContextUnbindObject:
      return decodeUnbindObject(k, sc);
    case Invocation.SchedContextUnbind:
      if (sc.tcb !== null && sc.tcb === k.curThread) return illegalOperation(k);
      setThreadState(k, k.curThread, ThreadState.Restart);
      schedContextUnbindAllTCBs(k, sc);
      schedContextUnbindNtfn(k, sc);
      schedContextUnbindReply(k, sc);
      return Exception.None;
    case Invocation.SchedContextYieldTo:
      return decodeYieldTo(k, sc, isCall);
    default:
      return illegalOperation(k);
  }
}
