/**
 * MCS Reply objects and the call stack (seL4 src/object/reply.c, include/object/reply.h; manual
 * §6.2 "Reply objects" and §6.1.4 "Scheduling context donation").
 *
 * Representation (MAP.md): `reply.tcb` = seL4 replyTCB; `reply.prev` = replyPrev (the reply below
 * on the stack); seL4's replyNext is either `reply.next` (the reply above) or, for the head of the
 * stack, `reply.sc` (the scheduling context that was donated along the chain; seL4's isHead bit).
 * `sc.reply` = scReply, the head. `tcb.reply` = the reply in the thread state.
 */

import { setThreadState } from "../core/thread.js";
import type { Kernel } from "../state.js";
import type { Reply, TCB } from "../structures.js";
import { ThreadState } from "../types.js";
import { schedContextDonate } from "./schedcontext.js";

/**
 * seL4 reply_unlink: the thread no longer waits on the reply (it was the caller blocked on it or
 * the server receiving with it) and becomes Inactive; the caller sets the next state.
 */
export function replyUnlink(k: Kernel, reply: Reply, t: TCB): void {
  reply.tcb = null;
  t.reply = null;
  setThreadState(k, t, ThreadState.Inactive);
}

/**
 * seL4 reply_push: `caller` blocks on `reply`; when it has an SC, the callee has none and donation
 * is allowed, the reply goes on top of the SC's call stack and the SC moves to the callee.
 */
export function replyPush(k: Kernel, caller: TCB, callee: TCB, reply: Reply, canDonate: boolean): void {
  const scDonated = caller.sc;
  reply.tcb = caller;
  // setThreadStateBlockedOnReply
  caller.reply = reply;
  setThreadState(k, caller, ThreadState.BlockedOnReply);

  if (scDonated !== null && callee.sc === null && canDonate) {
    const oldCaller = scDonated.reply;
    if (oldCaller !== null) {
      // the old head now points to the new reply instead of the SC
      oldCaller.sc = null;
      oldCaller.next = reply;
    }
    reply.prev = oldCaller;
    scDonated.reply = reply;
    reply.next = null;
    reply.sc = scDonated;
    schedContextDonate(k, scDonated, callee);
  }
}

/**
 * seL4 reply_pop: remove the head reply of a call stack; the SC goes back to `t` (the caller)
 * unless it got another SC while it waited.
 */
export function replyPop(k: Kernel, reply: Reply, t: TCB): void {
  const sc = reply.sc;
  const prev = reply.prev;
  if (sc !== null) {
    sc.reply = prev;
    if (prev !== null) {
      prev.next = null;
      prev.sc = sc;
    }
  }
  reply.sc = null;
  reply.next = null;
  if (t.sc === null && sc !== null) schedContextDonate(k, sc, t);
  reply.prev = null;
  replyUnlink(k, reply, t);
}

/** seL4 reply_remove: remove a reply from its call stack (pop if head, else break the chain). */
export function replyRemove(k: Kernel, reply: Reply, t: TCB): void {
  if (reply.sc !== null) {
    replyPop(k, reply, t);
    return;
  }
  const next = reply.next;
  const prev = reply.prev;
  if (next !== null) next.prev = null;
  if (prev !== null) {
    prev.next = null;
    prev.sc = null;
  }
  reply.prev = null;
  reply.next = null;
  replyUnlink(k, reply, t);
}

/** seL4 reply_remove_tcb: a thread BlockedOnReply stops waiting (cancelIPC); its reply leaves the stack. */
export function replyRemoveTCB(k: Kernel, t: TCB): void {
  const reply = t.reply;
  if (reply === null) {
    setThreadState(k, t, ThreadState.Inactive);
    return;
  }
  const sc = reply.sc;
  const next = reply.next;
  const prev = reply.prev;
  if (sc !== null) sc.reply = null;
  else if (next !== null) next.prev = null;
  if (prev !== null) {
    prev.next = null;
    prev.sc = null;
  }
  reply.prev = null;
  reply.next = null;
  reply.sc = null;
  replyUnlink(k, reply, t);
}
