/**
 * Sporadic-server budget replenishment (seL4 src/kernel/sporadic.c and include/kernel/sporadic.h,
 * MCS; manual §6.1 "Scheduling contexts"). A scheduling context holds a circular buffer of
 * refills, each `amount` ns usable from `time`; the amounts always sum to the budget. Consuming
 * time moves that much budget one period into the future, so no thread uses more than `budget`
 * in any window of `period` (Stanovich et al., "Defects of the POSIX sporadic server").
 *
 * Layout (MAP.md): refill i is time at `refills[2*i]`, amount at `refills[2*i+1]`; the buffer
 * starts at `refillHead`, holds `refillCount` refills and wraps at `maxRefills` (seL4
 * scRefillMax). Round-robin SCs (budget == period) have period 0, exactly as seL4 encodes them:
 * their two refills are the budget left (head) and the budget used (tail).
 *
 * Nothing here allocates: refills are read and written in place.
 */
import type { Kernel } from "../state.js";
import type { SchedContext } from "../structures.js";

/** Nanoseconds per microsecond: the API takes µs (libsel4 seL4_Time), the kernel counts ns. */
export const NS_PER_US = 1000;

/**
 * seL4 MAX_PERIOD_US = getMaxUsToTicks() / 8: the largest period whose arithmetic cannot
 * overflow the time representation. Our times are float64 ns, exact up to 2^53, so the
 * representable maximum is 2^53 ns and a period may be an eighth of it (about 13 days).
 */
export const MAX_PERIOD_US = Math.floor(Number.MAX_SAFE_INTEGER / NS_PER_US / 8);
export const MAX_PERIOD_NS = MAX_PERIOD_US * NS_PER_US;
/** seL4 MAX_RELEASE_TIME: refills are never pushed past this point (UINT64_MAX - 5 * MAX_PERIOD). */
export const MAX_RELEASE_TIME = Number.MAX_SAFE_INTEGER - 5 * MAX_PERIOD_NS;

/** seL4 MIN_BUDGET: enough budget to enter and leave the kernel (2 * kernel WCET), ns. */
export function minBudget(k: Kernel): number {
  return 2 * k.config.kernelWcetNs;
}
/** seL4 MIN_BUDGET_US, rounded up so that any budget of at least this many µs is accepted. */
export function minBudgetUs(k: Kernel): number {
  return Math.ceil(minBudget(k) / NS_PER_US);
}

// ---- circular buffer primitives ----

function refillNext(sc: SchedContext, i: number): number {
  return i === sc.maxRefills - 1 ? 0 : i + 1;
}
function tailIndex(sc: SchedContext): number {
  const t = sc.refillHead + sc.refillCount - 1;
  return t >= sc.maxRefills ? t - sc.maxRefills : t;
}
/** seL4 refill_size: number of refills in the buffer. */
export function refillSize(sc: SchedContext): number {
  return sc.refillCount;
}
function refillSingle(sc: SchedContext): boolean {
  return sc.refillCount === 1;
}
function refillFull(sc: SchedContext): boolean {
  return sc.refillCount === sc.maxRefills;
}
export function refillHeadTime(sc: SchedContext): number {
  return sc.refills[2 * sc.refillHead]!;
}
export function refillHeadAmount(sc: SchedContext): number {
  return sc.refills[2 * sc.refillHead + 1]!;
}
export function refillTailTime(sc: SchedContext): number {
  return sc.refills[2 * tailIndex(sc)]!;
}
export function refillTailAmount(sc: SchedContext): number {
  return sc.refills[2 * tailIndex(sc) + 1]!;
}
function setHead(sc: SchedContext, time: number, amount: number): void {
  const h = 2 * sc.refillHead;
  sc.refills[h] = time;
  sc.refills[h + 1] = amount;
}
function setTail(sc: SchedContext, time: number, amount: number): void {
  const t = 2 * tailIndex(sc);
  sc.refills[t] = time;
  sc.refills[t + 1] = amount;
}
/** seL4 refill_pop_head (the popped refill is read by the caller before popping). */
function popHead(sc: SchedContext): void {
  sc.refillHead = refillNext(sc, sc.refillHead);
  sc.refillCount--;
}
/** seL4 refill_add_tail. */
function addTail(sc: SchedContext, time: number, amount: number): void {
  sc.refillCount++;
  setTail(sc, time, amount);
}

// ---- predicates (include/kernel/sporadic.h, include/kernel/thread.h) ----

/** seL4 isRoundRobin: period 0 means the budget is simply recharged at the end of each timeslice. */
export function isRoundRobin(sc: SchedContext): boolean {
  return sc.period === 0;
}
/** seL4 sc_active: configured by SchedControl_ConfigureFlags (or boot) and not yet finalised. */
export function scActive(sc: SchedContext): boolean {
  return sc.configured && sc.maxRefills > 0;
}
/** seL4 sc_sporadic: refills are delayed when the bound thread becomes runnable. */
export function scSporadic(sc: SchedContext | null): boolean {
  if (sc === null) return false;
  return sc.sporadic && scActive(sc);
}
/** seL4 sc_released: active, and its head refill may be used now. */
export function scReleased(k: Kernel, sc: SchedContext): boolean {
  return scActive(sc) && refillReady(k, sc);
}
/** seL4 refill_capacity: budget left in the head refill once `usage` is charged. */
export function refillCapacity(_k: Kernel, sc: SchedContext, usage: number): number {
  const head = refillHeadAmount(sc);
  return usage > head ? 0 : head - usage;
}
/** seL4 refill_sufficient: the head can pay for `usage` and still enter and leave the kernel. */
export function refillSufficient(k: Kernel, sc: SchedContext, usage: number): boolean {
  return refillCapacity(k, sc, usage) >= minBudget(k);
}
/** seL4 refill_ready: the head refill's release time has come (on the current core's clock). */
export function refillReady(k: Kernel, sc: SchedContext): boolean {
  return refillHeadTime(sc) <= k.node.curTime;
}

// ---- configuration ----

function maybeAddEmptyTail(sc: SchedContext): void {
  // Round robin: an empty tail records the time used in the current timeslice.
  if (isRoundRobin(sc)) addTail(sc, refillHeadTime(sc), 0);
}

/**
 * seL4 refill_new: give an inactive SC its full budget from now. seL4's callers pass period 0
 * for a round-robin SC (budget == period); boot passes the budget as the period, which we read
 * the same way, as seL4's boot code does by passing 0.
 */
export function refillNew(
  k: Kernel,
  sc: SchedContext,
  maxRefills: number,
  budget: number,
  period: number,
): void {
  sc.period = period === budget ? 0 : period;
  sc.budget = budget;
  sc.refillHead = 0;
  sc.refillCount = 1;
  sc.maxRefills = maxRefills;
  sc.configured = true;
  setHead(sc, k.node.curTime, budget);
  maybeAddEmptyTail(sc);
}

/**
 * seL4 refill_update: change the parameters of an SC in use without ever exceeding the new
 * budget within the new period, even transiently.
 */
export function refillUpdate(
  k: Kernel,
  sc: SchedContext,
  period: number,
  budget: number,
  maxRefills: number,
): void {
  // Move the head refill to slot 0 and truncate to it, so the new maxRefills is a valid bound.
  const headTime = refillHeadTime(sc);
  const headAmount = refillHeadAmount(sc);
  sc.refills[0] = headTime;
  sc.refills[1] = headAmount;
  sc.refillHead = 0;
  sc.refillCount = 1;
  sc.maxRefills = maxRefills;
  sc.period = period;
  sc.budget = budget;
  if (refillReady(k, sc)) sc.refills[0] = k.node.curTime;
  if (refillHeadAmount(sc) >= budget) {
    // The head already holds at least the new budget: trim it.
    sc.refills[1] = budget;
    maybeAddEmptyTail(sc);
  } else {
    // Otherwise the rest of the new budget becomes available one period after the head.
    addTail(sc, refillHeadTime(sc) + period, budget - refillHeadAmount(sc));
  }
}

// ---- charging ----

/** seL4 schedule_used: add a used refill at the tail, merging when adjacent or when the buffer is full. */
function scheduleUsed(sc: SchedContext, time: number, amount: number): void {
  const tailTime = refillTailTime(sc);
  const tailAmount = refillTailAmount(sc);
  if (tailTime + tailAmount >= time) {
    // Overlapping or adjacent: extend the tail (keeps incremental charging to one refill).
    setTail(sc, tailTime, tailAmount + amount);
  } else if (!refillFull(sc)) {
    addTail(sc, time, amount);
  } else {
    // Full: delay the existing tail so that it ends where the new refill would have ended.
    setTail(sc, time - tailAmount, tailAmount + amount);
  }
}

function headOverlapping(sc: SchedContext): boolean {
  if (refillSingle(sc)) return false;
  const end = refillHeadTime(sc) + refillHeadAmount(sc);
  return sc.refills[2 * refillNext(sc, sc.refillHead)]! <= end;
}

/** seL4 handle_overrun: charge whole head refills while the usage covers them. */
function handleOverrun(sc: SchedContext, usage: number): number {
  let left = usage;
  while (refillHeadAmount(sc) <= left && refillHeadTime(sc) < MAX_RELEASE_TIME) {
    const time = refillHeadTime(sc);
    const amount = refillHeadAmount(sc);
    if (refillSingle(sc)) {
      sc.refills[2 * sc.refillHead] = time + sc.period;
    } else {
      popHead(sc);
      scheduleUsed(sc, time + sc.period, amount);
    }
    left -= amount;
  }
  return left;
}

/**
 * seL4 refill_budget_check: charge `usage` ns to the current core's SC (a sporadic one), which
 * has used up (or is about to use up) its head refill.
 */
export function refillBudgetCheck(k: Kernel, usage: number): void {
  const sc = k.node.curSC;
  const left = handleOverrun(sc, usage);
  const headTime = refillHeadTime(sc);
  if (left > 0 && headTime < MAX_RELEASE_TIME) {
    const headAmount = refillHeadAmount(sc);
    // Keep the head no more than a period before the tail ends (seL4 keeps the queue ordered this way).
    setHead(sc, headTime + left, headAmount - left);
    scheduleUsed(sc, headTime + sc.period, left);
  }
  // The head must always hold at least MIN_BUDGET: merge the next refill into it, delaying it.
  const min = minBudget(k);
  while (refillHeadAmount(sc) < min && !refillSingle(sc)) {
    const amount = refillHeadAmount(sc);
    popHead(sc);
    const h = 2 * sc.refillHead;
    sc.refills[h + 1] = sc.refills[h + 1]! + amount;
    sc.refills[h] = sc.refills[h]! - amount;
  }
}

/**
 * seL4 refill_unblock_check: a thread becomes runnable again; if its head refill is due, start
 * it now and merge every refill that is already available.
 */
export function refillUnblockCheck(k: Kernel, sc: SchedContext): void {
  if (isRoundRobin(sc)) return;
  if (!refillReady(k, sc)) return;
  sc.refills[2 * sc.refillHead] = k.node.curTime;
  k.node.reprogram = true;
  while (headOverlapping(sc)) {
    const amount = refillHeadAmount(sc);
    const time = refillHeadTime(sc);
    popHead(sc);
    const h = 2 * sc.refillHead;
    sc.refills[h] = time;
    sc.refills[h + 1] = sc.refills[h + 1]! + amount;
  }
}

/** Sum of the refill amounts (equals the budget; used by invariant checks). */
export function refillSum(sc: SchedContext): number {
  let sum = 0;
  let i = sc.refillHead;
  for (let n = 0; n < sc.refillCount; n++) {
    sum += sc.refills[2 * i + 1]!;
    i = refillNext(sc, i);
  }
  return sum;
}

/** seL4 refill_absolute_max for an SC object: how many refills its size holds. */
export function refillAbsoluteMax(sc: SchedContext): number {
  return sc.refillMax;
}
