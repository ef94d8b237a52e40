/**
 * The SchedControl capability (seL4 src/object/schedcontrol.c, MCS; manual §6.1.2 and the
 * SchedControl_ConfigureFlags invocation of §10.3). One SchedControl cap per core (its core is
 * `cap.irq`); configuring an SC with it gives the SC its budget and period and moves it, and
 * its bound thread, to that core.
 *
 * Arguments (libsel4 object-api.xml, 64-bit so seL4_Time is one word): extra cap 0 = the
 * SchedContext; MR0 budget µs, MR1 period µs, MR2 extra_refills, MR3 badge, MR4 flags.
 */
import {
  getMR,
  getMRHi,
  getMRLo,
  illegalOperation,
  invalidCapability,
  rangeError,
  truncatedMessage,
} from "../core/message.js";
import {
  MAX_PERIOD_US,
  minBudget,
  minBudgetUs,
  NS_PER_US,
  refillAbsoluteMax,
  refillNew,
  refillUpdate,
  scActive,
} from "../core/sporadic.js";
import {
  commitTime,
  isRunnable,
  isSchedulable,
  migrateTCB,
  possibleSwitchTo,
  remoteTCBStall,
  rescheduleRequired,
  setThreadState,
  tcbReleaseDequeue,
  tcbSchedDequeue,
  tcbSchedEnqueue,
} from "../core/thread.js";
import type { Kernel } from "../state.js";
import type { Cap, SchedContext } from "../structures.js";
import { CapType, Exception, Invocation, MIN_REFILLS, ThreadState } from "../types.js";
import { schedContextResume } from "./schedcontext.js";

/** libsel4 seL4_SchedContext_Sporadic: refills are delayed when the thread becomes runnable. */
export const SCHED_CONTEXT_SPORADIC = 1;

function invokeConfigureFlags(
  k: Kernel,
  sc: SchedContext,
  core: number,
  budget: number,
  period: number,
  maxRefills: number,
  badgeLo: number,
  badgeHi: number,
  flags: number,
): void {
  const thread = sc.tcb;
  // Parameters must not change while the thread sits in a sorted queue.
  if (thread !== null) {
    remoteTCBStall(k, thread);
    tcbReleaseDequeue(k, thread);
    tcbSchedDequeue(k, thread);
    // Bill what the SC consumed so far before its parameters change (the syscall entry's
    // checkBudget already ensured the head refill can pay for it).
    if (k.node.curSC === sc) commitTime(k);
  }
  if (budget === period) {
    // Round robin: period 0 means the budget is always ready to be recharged (seL4's encoding).
    refillNew(k, sc, MIN_REFILLS, budget, 0);
  } else if (core === sc.core && scActive(sc) && thread !== null && isRunnable(thread)) {
    // In use: keep the bandwidth constraint across the change.
    refillUpdate(k, sc, period, budget, maxRefills);
  } else {
    // Not in use: the full budget is available from now.
    refillNew(k, sc, maxRefills, budget, period);
  }
  sc.core = core;
  if (thread !== null) migrateTCB(k, thread, core);
  if (thread !== null) {
    schedContextResume(k, sc);
    if (core === k.cur) {
      if (isRunnable(thread) && thread !== k.curThread) possibleSwitchTo(k, thread);
    } else if (isSchedulable(k, thread)) {
      tcbSchedEnqueue(k, thread);
    }
    if (thread === k.curThread) rescheduleRequired(k);
  }
  sc.badgeLo = badgeLo;
  sc.badgeHi = badgeHi;
  sc.sporadic = (flags & SCHED_CONTEXT_SPORADIC) !== 0;
}

function decodeConfigureFlags(k: Kernel, length: number, cap: Cap): Exception {
  const scSlot = k.extraCaps[0];
  if (scSlot === null || scSlot === undefined) return truncatedMessage(k);
  if (length < 5) return truncatedMessage(k);
  const t = k.curThread;
  const minUs = minBudgetUs(k);
  const budgetUs = getMR(t, 0);
  if (budgetUs > MAX_PERIOD_US) return rangeError(k, minUs, MAX_PERIOD_US);
  const budget = budgetUs * NS_PER_US;
  const periodUs = getMR(t, 1);
  if (periodUs > MAX_PERIOD_US) return rangeError(k, minUs, MAX_PERIOD_US);
  const period = periodUs * NS_PER_US;
  const min = minBudget(k);
  if (budget < min) return rangeError(k, minUs, MAX_PERIOD_US);
  if (period < min) return rangeError(k, minUs, MAX_PERIOD_US);
  if (budget > period) return rangeError(k, minUs, periodUs);
  const scCap = scSlot.cap;
  if (scCap.type !== CapType.SchedContext) return invalidCapability(k, 1);
  const sc = scCap.obj as SchedContext;
  const extraRefills = getMR(t, 2);
  const maxRefills = refillAbsoluteMax(sc);
  if (extraRefills > maxRefills - MIN_REFILLS) return rangeError(k, 0, maxRefills - MIN_REFILLS);
  const badgeLo = getMRLo(t, 3);
  const badgeHi = getMRHi(t, 3);
  const flags = getMRLo(t, 4);
  setThreadState(k, t, ThreadState.Restart);
  invokeConfigureFlags(k, sc, cap.irq, budget, period, extraRefills + MIN_REFILLS, badgeLo, badgeHi, flags);
  return Exception.None;
}

/** seL4 decodeSchedControlInvocation. */
export function decodeSchedControlInvocation(k: Kernel, label: number, length: number, cap: Cap): Exception {
  if (label === Invocation.SchedControlConfigureFlags) return decodeConfigureFlags(k, length, cap);
  return illegalOperation(k);
}
