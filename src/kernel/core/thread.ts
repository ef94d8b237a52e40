/**
 * Thread states and the MCS scheduler (seL4 src/kernel/thread.c scheduling part,
 * include/kernel/thread.h, the queue functions of src/object/tcb.c and src/model/smp.c;
 * manual §6 "Threads and Execution" and §6.1 "Scheduling").
 *
 * Each core has ready queues indexed by domain * 256 + priority with a bitmap of non-empty
 * priorities, and a release queue of threads waiting for their head refill, ordered by its
 * release time. Threads are queued on the core of their scheduling context (`t.core`). The
 * scheduler's action is per core: resume the current thread, choose a new one, or switch to
 * `switchTarget`.
 *
 * Time: `updateTimestamp` adds the time since the last entry to `node.consumed`; that time is
 * charged to the current SC by `commitTime` (on a switch or reprogram) or `chargeBudget` (when
 * the head refill is exhausted). `setNextInterrupt` then tells the platform when to interrupt
 * next (`node.timerDeadline`).
 *
 * Hot path: nothing here allocates.
 */
import { timeoutFault } from "../api/faults.js";
import { cancelIPC, reorderEP } from "../object/endpoint.js";
import { reorderNTFN } from "../object/notification.js";
import {
  schedContextCancelYieldTo,
  schedContextCompleteYieldTo,
  schedContextResume,
} from "../object/schedcontext.js";
import { ACTION_CHOOSE, ACTION_RESUME, ACTION_SWITCH, type CoreState, type Kernel } from "../state.js";
import type { Endpoint, Notification, SchedContext, TCB } from "../structures.js";
import { INSTRUCTION_SIZE, NUM_PRIORITIES, REG_PC, ThreadState } from "../types.js";
import { handleTimeout, validTimeoutHandler } from "./faulthandler.js";
import {
  isRoundRobin,
  minBudget,
  refillBudgetCheck,
  refillHeadAmount,
  refillHeadTime,
  refillReady,
  refillSufficient,
  refillUnblockCheck,
  scActive,
  scSporadic,
} from "./sporadic.js";

const TWO32 = 4294967296;
/** Bitmap words per domain (256 priorities / 32 bits). */
const BITMAP_WORDS = NUM_PRIORITIES / 32;

// ---- thread state predicates (include/kernel/thread.h) ----

export function isRunnable(t: TCB): boolean {
  return t.state === ThreadState.Running || t.state === ThreadState.Restart;
}
export function isBlocked(t: TCB): boolean {
  const s = t.state;
  return (
    s === ThreadState.BlockedOnReceive ||
    s === ThreadState.BlockedOnSend ||
    s === ThreadState.BlockedOnNotification ||
    s === ThreadState.BlockedOnReply
  );
}
export function isStopped(t: TCB): boolean {
  return t.state === ThreadState.Inactive || isBlocked(t);
}
/** seL4 isSchedulable (MCS): runnable, with an active SC, and not waiting for a refill. */
export function isSchedulable(_k: Kernel, t: TCB): boolean {
  return isRunnable(t) && t.sc !== null && scActive(t.sc) && !t.inReleaseQueue;
}

// ---- thread state ----

export function setThreadState(k: Kernel, t: TCB, s: ThreadState): void {
  t.state = s;
  scheduleTCB(k, t);
}

/** seL4 scheduleTCB: the current thread stopped being schedulable, so something else must run. */
export function scheduleTCB(k: Kernel, t: TCB): void {
  const node = k.node;
  if (t === node.curThread && node.schedulerAction === ACTION_RESUME && !isSchedulable(k, t)) {
    node.schedulerAction = ACTION_CHOOSE;
  }
}

/** pc += one instruction (seL4 setNextPC after a syscall), exact on the lo/hi halves. */
export function setNextPC(t: TCB): void {
  const lo = t.regs[2 * REG_PC]! + INSTRUCTION_SIZE;
  if (lo >= TWO32) {
    t.regs[2 * REG_PC] = lo - TWO32;
    t.regs[2 * REG_PC + 1] = (t.regs[2 * REG_PC + 1]! + 1) >>> 0;
  } else {
    t.regs[2 * REG_PC] = lo;
  }
}

/**
 * The pc a thread resumes at (seL4 getRestartPC, FaultIP). seL4 refreshes FaultIP on every
 * kernel entry, so for a Running thread it equals its pc; a thread that is stopped or will
 * restart its syscall resumes at `faultIP`.
 */
export function getRestartPC(t: TCB): number {
  return t.state === ThreadState.Running ? t.getReg(REG_PC) : t.faultIP;
}

// ---- ready queues (src/object/tcb.c) ----

function addToBitmap(node: CoreState, dom: number, prio: number): void {
  const w = dom * BITMAP_WORDS + (prio >>> 5);
  node.readyBitmap[w] = node.readyBitmap[w]! | (1 << (prio & 31));
}
function removeFromBitmap(node: CoreState, dom: number, prio: number): void {
  const w = dom * BITMAP_WORDS + (prio >>> 5);
  node.readyBitmap[w] = node.readyBitmap[w]! & ~(1 << (prio & 31));
}
/** seL4 getHighestPrio: the highest priority with a non-empty ready queue in `dom` (-1 if none). */
export function getHighestPrio(node: CoreState, dom: number): number {
  const base = dom * BITMAP_WORDS;
  for (let w = BITMAP_WORDS - 1; w >= 0; w--) {
    const bits = node.readyBitmap[base + w]!;
    if (bits !== 0) return w * 32 + 31 - Math.clz32(bits);
  }
  return -1;
}
/** seL4 isHighestPrio: no ready thread of this core in `dom` has a higher priority than `prio`. */
export function isHighestPrio(node: CoreState, dom: number, prio: number): boolean {
  const h = getHighestPrio(node, dom);
  return h < 0 || prio >= h;
}

/**
 * seL4 remoteQueueUpdate: a thread queued on another core in the current domain that should
 * preempt that core's thread (or a core whose timer must be reprogrammed) gets a reschedule IPI.
 */
function remoteQueueUpdate(k: Kernel, t: TCB): void {
  if (t.core === k.cur || t.domain !== k.curDomain) return;
  const node = k.nodes[t.core]!;
  const cur = node.curThread;
  if (cur === node.idleThread || t.priority > cur.priority || node.reprogram) node.ipiPending = true;
  // A lone round-robin thread's budget end is not on that core's timer (setNextInterrupt): a
  // thread now ready at its priority must have the timer reprogrammed there, or wait forever.
  else if (node.ticklessFor === cur && t.priority === cur.priority) node.ipiPending = true;
}

/** seL4 tcbSchedEnqueue (+ remoteQueueUpdate, i.e. SCHED_ENQUEUE): add at the head of its queue. */
export function tcbSchedEnqueue(k: Kernel, t: TCB): void {
  if (t.inReadyQueue) return;
  const node = k.nodes[t.core]!;
  const idx = t.domain * NUM_PRIORITIES + t.priority;
  const head = node.qHead[idx]!;
  if (head === null) {
    addToBitmap(node, t.domain, t.priority);
    node.qTail[idx] = t;
  } else {
    head.schedPrev = t;
  }
  t.schedNext = head;
  t.schedPrev = null;
  node.qHead[idx] = t;
  t.inReadyQueue = true;
  remoteQueueUpdate(k, t);
}

/** seL4 tcbSchedAppend (+ remoteQueueUpdate): add at the tail of its queue. */
export function tcbSchedAppend(k: Kernel, t: TCB): void {
  if (t.inReadyQueue) return;
  const node = k.nodes[t.core]!;
  const idx = t.domain * NUM_PRIORITIES + t.priority;
  const tail = node.qTail[idx]!;
  if (tail === null) {
    addToBitmap(node, t.domain, t.priority);
    node.qHead[idx] = t;
  } else {
    tail.schedNext = t;
  }
  t.schedPrev = tail;
  t.schedNext = null;
  node.qTail[idx] = t;
  t.inReadyQueue = true;
  remoteQueueUpdate(k, t);
}

/** seL4 tcbSchedDequeue. */
export function tcbSchedDequeue(k: Kernel, t: TCB): void {
  if (!t.inReadyQueue) return;
  const node = k.nodes[t.core]!;
  const idx = t.domain * NUM_PRIORITIES + t.priority;
  const prev = t.schedPrev;
  const next = t.schedNext;
  if (prev === null) node.qHead[idx] = next;
  else prev.schedNext = next;
  if (next === null) node.qTail[idx] = prev;
  else next.schedPrev = prev;
  t.schedPrev = null;
  t.schedNext = null;
  t.inReadyQueue = false;
  if (node.qHead[idx] === null) removeFromBitmap(node, t.domain, t.priority);
}

// ---- release queue (MCS) ----

/**
 * seL4 tcbReleaseEnqueue: insert by the release time of the head refill, after threads with
 * the same time (seL4 prepends only when strictly earlier than the head, appends when not
 * earlier than the tail, else inserts before the first later thread: the same order).
 */
export function tcbReleaseEnqueue(k: Kernel, t: TCB): void {
  const node = k.nodes[t.core]!;
  const time = refillHeadTime(t.sc!);
  let prev: TCB | null = null;
  let cur = node.releaseHead;
  while (cur !== null && refillHeadTime(cur.sc!) <= time) {
    prev = cur;
    cur = cur.schedNext;
  }
  t.schedPrev = prev;
  t.schedNext = cur;
  if (cur !== null) cur.schedPrev = t;
  if (prev === null) {
    node.releaseHead = t;
    releaseHeadChanged(k, t.core);
  } else {
    prev.schedNext = t;
  }
  t.inReleaseQueue = true;
}

/** seL4 tcbReleaseRemove: take a thread out of its core's release queue. */
export function tcbReleaseDequeue(k: Kernel, t: TCB): void {
  if (!t.inReleaseQueue) return;
  const node = k.nodes[t.core]!;
  const prev = t.schedPrev;
  const next = t.schedNext;
  if (prev === null) {
    node.releaseHead = next;
    releaseHeadChanged(k, t.core);
  } else {
    prev.schedNext = next;
  }
  if (next !== null) next.schedPrev = prev;
  t.schedPrev = null;
  t.schedNext = null;
  t.inReleaseQueue = false;
}
export const tcbReleaseRemove = tcbReleaseDequeue;

/**
 * The head of a release queue changed: that core must reprogram its timer (seL4 ksReprogram).
 * seL4 leaves a remote core to notice at its next entry; capvisor's platform only reprograms
 * on kernel entry, so a remote core also gets an IPI (one extra entry, never a missed release).
 */
function releaseHeadChanged(k: Kernel, core: number): void {
  const node = k.nodes[core]!;
  node.reprogram = true;
  if (core !== k.cur) node.ipiPending = true;
}

/** seL4 postpone: the SC's thread waits in the release queue for its next refill. */
export function postpone(k: Kernel, sc: SchedContext): void {
  const t = sc.tcb!;
  tcbSchedDequeue(k, t);
  tcbReleaseEnqueue(k, t);
  k.nodes[sc.core]!.reprogram = true;
}

// ---- scheduler actions ----

/** seL4 rescheduleRequired: put any pending switch target back in its queue and choose again. */
export function rescheduleRequired(k: Kernel): void {
  const node = k.node;
  const target = node.switchTarget;
  if (node.schedulerAction === ACTION_SWITCH && target !== null && isSchedulable(k, target)) {
    tcbSchedEnqueue(k, target);
  }
  node.schedulerAction = ACTION_CHOOSE;
  node.switchTarget = null;
}

/**
 * seL4 possibleSwitchTo: a thread became runnable. Threads of another domain or core are
 * queued (the other core gets an IPI through remoteQueueUpdate); otherwise the thread becomes
 * the switch candidate, unless a decision is already pending.
 */
export function possibleSwitchTo(k: Kernel, t: TCB): void {
  if (t.sc === null || t.inReleaseQueue) return;
  const node = k.node;
  if (k.curDomain !== t.domain || t.core !== k.cur) {
    tcbSchedEnqueue(k, t);
  } else if (node.schedulerAction !== ACTION_RESUME) {
    rescheduleRequired(k);
    tcbSchedEnqueue(k, t);
  } else {
    node.schedulerAction = ACTION_SWITCH;
    node.switchTarget = t;
  }
}

export function switchToThread(k: Kernel, t: TCB): void {
  tcbSchedDequeue(k, t);
  k.node.curThread = t;
}
export function switchToIdleThread(k: Kernel): void {
  const node = k.node;
  node.curThread = node.idleThread;
}

/** seL4 chooseThread: the head of the highest non-empty queue of the current domain, else idle. */
export function chooseThread(k: Kernel): void {
  const node = k.node;
  const dom = k.config.domains > 1 ? k.curDomain : 0;
  const prio = getHighestPrio(node, dom);
  if (prio >= 0) switchToThread(k, node.qHead[dom * NUM_PRIORITIES + prio]!);
  else switchToIdleThread(k);
}

/** seL4 nextDomain: advance the domain schedule. */
export function nextDomain(k: Kernel): void {
  const sched = k.config.domainSchedule;
  k.domainScheduleIdx++;
  if (k.domainScheduleIdx >= sched.length) k.domainScheduleIdx = 0;
  k.node.reprogram = true;
  k.workUnits = 0;
  const entry = sched[k.domainScheduleIdx]!;
  k.curDomain = entry[0];
  k.domainTime = entry[1];
}

function scheduleChooseNewThread(k: Kernel): void {
  if (k.domainTime === 0) nextDomain(k);
  chooseThread(k);
}

function isCurDomainExpired(k: Kernel): boolean {
  return k.config.domains > 1 && k.domainTime === 0;
}

/** seL4 checkDomainTime. */
function checkDomainTime(k: Kernel): void {
  if (isCurDomainExpired(k)) {
    k.node.reprogram = true;
    rescheduleRequired(k);
  }
}

/** seL4 schedule (MCS): release due threads, act on the scheduler action, switch SC, set the timer. */
export function schedule(k: Kernel): void {
  awaken(k);
  checkDomainTime(k);
  const node = k.node;
  const prev = node.curThread;
  if (node.schedulerAction !== ACTION_RESUME) {
    const cur = node.curThread;
    const wasRunnable = isSchedulable(k, cur);
    if (wasRunnable) tcbSchedEnqueue(k, cur);
    if (node.schedulerAction === ACTION_CHOOSE) {
      scheduleChooseNewThread(k);
    } else {
      const candidate = node.switchTarget!;
      // As the fastpath: skip the bitmap when the candidate outranks the current thread.
      const fastfail = cur === node.idleThread || candidate.priority < cur.priority;
      if (fastfail && !isHighestPrio(node, k.curDomain, candidate.priority)) {
        tcbSchedEnqueue(k, candidate);
        node.schedulerAction = ACTION_CHOOSE;
        scheduleChooseNewThread(k);
      } else if (wasRunnable && candidate.priority === cur.priority) {
        // Equal priority: the current thread (queued at the head) keeps the processor.
        tcbSchedAppend(k, candidate);
        node.schedulerAction = ACTION_CHOOSE;
        scheduleChooseNewThread(k);
      } else {
        switchToThread(k, candidate);
      }
    }
  }
  node.schedulerAction = ACTION_RESUME;
  node.switchTarget = null;
  if (!ticklessHolds(k)) node.reprogram = true;
  switchSchedContext(k);
  if (node.reprogram) {
    setNextInterrupt(k);
    node.reprogram = false;
  }
  if (node.curThread !== prev) k.stats.contextSwitches++;
}

/** seL4 activateThread: complete a YieldTo, and restart an interrupted syscall. */
export function activateThread(k: Kernel): void {
  const t = k.node.curThread;
  if (t.yieldTo !== null) schedContextCompleteYieldTo(k, t);
  switch (t.state) {
    case ThreadState.Running:
    case ThreadState.Idle:
      break;
    case ThreadState.Restart:
      t.setReg(REG_PC, t.faultIP);
      setThreadState(k, t, ThreadState.Running);
      break;
    default:
      throw new Error(`activateThread: current thread ${t.name} is blocked (state ${t.state})`);
  }
}

// ---- time accounting (include/kernel/thread.h, MCS) ----

/** seL4 updateTimestamp: read the clock at kernel entry; the elapsed time is to be charged. */
export function updateTimestamp(k: Kernel, now: number): void {
  const node = k.node;
  const prev = node.curTime;
  // The platform's clock is monotonic per core; never charge negative time.
  const consumed = now > prev ? now - prev : 0;
  if (now > prev) node.curTime = now;
  node.consumed += consumed;
  if (node.ticklessFor !== null) foldTicklessBudgets(node);
  if (k.config.domains > 1) {
    if (consumed + minBudget(k) >= k.domainTime) k.domainTime = 0;
    else k.domainTime -= consumed;
  }
}

/** seL4 commitTime: charge the time consumed so far to the current SC. */
export function commitTime(k: Kernel): void {
  const node = k.node;
  const sc = node.curSC;
  if (scActive(sc) && sc !== node.idleThread.sc) {
    const consumed = node.consumed;
    if (consumed > 0) {
      if (isRoundRobin(sc)) roundRobinUse(sc, consumed);
      else refillBudgetCheck(k, consumed);
    }
    sc.consumed += consumed;
  }
  node.consumed = 0;
}

/** A round-robin SC has two refills: the head is what is left, the tail what was used. */
function roundRobinTail(sc: SchedContext): number {
  const t = sc.refillHead + 1;
  return t >= sc.maxRefills ? 0 : t;
}
function roundRobinUse(sc: SchedContext, consumed: number): void {
  const h = 2 * sc.refillHead;
  const t = 2 * roundRobinTail(sc);
  sc.refills[h + 1] = sc.refills[h + 1]! - consumed;
  sc.refills[t + 1] = sc.refills[t + 1]! + consumed;
}
/** The end of a round-robin timeslice: the used tail goes back into the head (chargeBudget). */
function roundRobinRecharge(sc: SchedContext): void {
  const h = 2 * sc.refillHead;
  const t = 2 * roundRobinTail(sc);
  sc.refills[h + 1] = sc.refills[h + 1]! + sc.refills[t + 1]!;
  sc.refills[t + 1] = 0;
}

/**
 * The budget ends a tickless core left out (setNextInterrupt), taken in arrears: each would have
 * charged the SC a whole timeslice and given the budget back (chargeBudget, round robin), and
 * put the lone thread back where it was (endTimeslice). The time since the last of them stays
 * uncommitted in node.consumed, as after a real budget end. So the thread's next kernel entry
 * finds its budget as seL4 would have left it, and its syscall is not restarted for time it
 * could not have overrun.
 */
function foldTicklessBudgets(node: CoreState): void {
  const sc = node.curSC;
  const head = refillHeadAmount(sc);
  const consumed = node.consumed;
  if (consumed < head) return;
  const rest = (consumed - head) % sc.budget;
  roundRobinRecharge(sc);
  sc.consumed += consumed - rest;
  node.consumed = rest;
}

/**
 * seL4 checkBudget: true when the current SC can pay for this kernel entry; otherwise the
 * timeslice ends (charged, requeued or postponed, maybe a timeout fault) and false is returned.
 */
export function checkBudget(k: Kernel): boolean {
  const node = k.node;
  if (refillSufficient(k, node.curSC, node.consumed)) {
    return !isCurDomainExpired(k);
  }
  chargeBudget(k, node.consumed, true);
  return false;
}

/** seL4 checkBudgetRestart: as checkBudget, and the interrupted operation restarts later. */
export function checkBudgetRestart(k: Kernel): boolean {
  const result = checkBudget(k);
  const cur = k.node.curThread;
  if (!result && isRunnable(cur)) setThreadState(k, cur, ThreadState.Restart);
  return result;
}

/** seL4 chargeBudget: the head refill is used up: charge `consumed` and end the timeslice. */
export function chargeBudget(k: Kernel, consumed: number, canTimeoutFault: boolean): void {
  const node = k.node;
  const sc = node.curSC;
  if (sc !== node.idleThread.sc) {
    if (isRoundRobin(sc)) roundRobinRecharge(sc);
    else refillBudgetCheck(k, consumed);
    sc.consumed += consumed;
  }
  node.consumed = 0;
  if (isSchedulable(k, node.curThread)) {
    endTimeslice(k, canTimeoutFault);
    rescheduleRequired(k);
    node.reprogram = true;
  }
}

/**
 * seL4 endTimeslice: a thread with a timeout handler and a sporadic SC takes a timeout fault
 * (manual §6.1.4 "Timeout faults"); otherwise it goes to the back of its queue, or waits in
 * the release queue until its next refill.
 */
export function endTimeslice(k: Kernel, canTimeoutFault: boolean): void {
  const node = k.node;
  const sc = node.curSC;
  const cur = node.curThread;
  if (canTimeoutFault && !isRoundRobin(sc) && validTimeoutHandler(cur)) {
    // The consumed time is read from the SC when the fault message is built (seL4 setMRs_fault).
    k.currentFault = timeoutFault(sc.badgeLo, sc.badgeHi, 0);
    handleTimeout(k, cur);
  } else if (refillReady(k, sc) && refillSufficient(k, sc, 0)) {
    tcbSchedAppend(k, cur);
  } else {
    postpone(k, sc);
  }
}

/**
 * seL4 switchSchedContext: the chosen thread runs on its own SC. A constant-bandwidth
 * (non-sporadic) SC gets its due refills merged when it starts running; time is committed to
 * the outgoing SC whenever the timer is to be reprogrammed.
 */
export function switchSchedContext(k: Kernel): void {
  const node = k.node;
  const sc = node.curThread.sc!;
  if (node.curSC !== sc) {
    node.reprogram = true;
    if (!sc.sporadic) refillUnblockCheck(k, sc);
  }
  if (node.reprogram) commitTime(k);
  node.curSC = sc;
}

/**
 * Whether the current core's timer may go on leaving out the budget end (setNextInterrupt):
 * the same thread runs, still on a round-robin SC (it may have configured its own SC since), and
 * no other thread is ready at its priority. Always true when the deadline includes the budget end.
 */
export function ticklessHolds(k: Kernel): boolean {
  const node = k.node;
  const lone = node.ticklessFor;
  return (
    lone === null ||
    (lone === node.curThread && isRoundRobin(node.curSC) && node.qHead[lone.priority] === null)
  );
}

/** seL4 awaken: threads whose head refill is now due leave the release queue. */
export function awaken(k: Kernel): void {
  const node = k.node;
  for (;;) {
    const t = node.releaseHead;
    if (t === null || !refillReady(k, t.sc!)) return;
    tcbReleaseDequeue(k, t);
    possibleSwitchTo(k, t);
  }
}

/**
 * seL4 setNextInterrupt: the earliest of the current SC's budget running out, the end of the
 * domain's time slice and the next release; the platform interrupts the core then.
 *
 * capvisor leaves out the budget's end when it would change nothing, as Linux's nohz_full stops
 * the tick under a lone task: a round-robin SC (budget == period when SchedControl configures
 * it, manual §6.1.2) gets its budget back at the end of each timeslice and its thread goes to
 * the back of its ready queue (endTimeslice), so with no other thread ready at its priority the
 * same thread runs on. seL4
 * takes that timer interrupt in about a microsecond; here it would stop the thread's worker and
 * wake two host threads every budget (1 ms by default in Microkit), for nothing. The end comes
 * back as soon as it would matter: schedule() and the fastpath reprogram when another thread
 * is ready at that priority or another thread runs (ticklessHolds), and a remote core gets an
 * IPI for it (remoteQueueUpdate). The time is charged at the thread's next kernel entry, where
 * the budget ends it left out are charged in arrears (foldTicklessBudgets), or when another core
 * stalls it to read or change its SC or TCB (remoteTCBStall).
 */
export function setNextInterrupt(k: Kernel): void {
  const node = k.node;
  const cur = node.curThread;
  const sc = cur.sc!;
  const lone =
    isRoundRobin(sc) &&
    cur !== node.idleThread &&
    k.config.domains === 1 &&
    node.qHead[cur.priority] === null;
  node.ticklessFor = lone ? cur : null;
  let next = lone ? Number.POSITIVE_INFINITY : node.curTime + refillHeadAmount(sc);
  if (k.config.domains > 1) next = Math.min(next, node.curTime + k.domainTime);
  const rlq = node.releaseHead;
  if (rlq !== null) next = Math.min(next, refillHeadTime(rlq.sc!));
  node.timerDeadline = next;
}

// ---- thread control ----

/** seL4 setPriority (MCS): requeue a queued thread, reorder the IPC queue of a blocked one. */
export function setPriority(k: Kernel, t: TCB, prio: number): void {
  switch (t.state) {
    case ThreadState.Running:
    case ThreadState.Restart:
      if (t.inReadyQueue || t === k.node.curThread) {
        tcbSchedDequeue(k, t);
        t.priority = prio;
        if (isSchedulable(k, t)) tcbSchedEnqueue(k, t);
        rescheduleRequired(k);
      } else {
        t.priority = prio;
      }
      break;
    case ThreadState.BlockedOnReceive:
    case ThreadState.BlockedOnSend:
      t.priority = prio;
      reorderEP(k, t.blockingObject as Endpoint, t);
      break;
    case ThreadState.BlockedOnNotification:
      t.priority = prio;
      reorderNTFN(k, t.blockingObject as Notification, t);
      break;
    default:
      t.priority = prio;
  }
}

export function setMCPriority(_k: Kernel, t: TCB, mcp: number): void {
  t.mcp = mcp;
}

/** seL4 setDomain (DomainSet_Set). */
export function setDomain(k: Kernel, t: TCB, dom: number): void {
  tcbSchedDequeue(k, t);
  t.domain = dom;
  if (isSchedulable(k, t)) tcbSchedEnqueue(k, t);
  if (t === k.node.curThread) rescheduleRequired(k);
}

/** seL4 restart (MCS): a stopped thread restarts its last syscall (TCB_Resume, manual §6.3). */
export function restart(k: Kernel, t: TCB): void {
  if (!isStopped(t)) return;
  cancelIPC(k, t);
  setThreadState(k, t, ThreadState.Restart);
  const sc = t.sc;
  if (scSporadic(sc) && sc !== k.node.curSC) refillUnblockCheck(k, sc!);
  schedContextResume(k, sc);
  if (isSchedulable(k, t)) possibleSwitchTo(k, t);
}

/** seL4 suspend (TCB_Suspend): cancel the thread's IPC and make it inactive. */
export function suspend(k: Kernel, t: TCB): void {
  cancelIPC(k, t);
  // seL4 updateRestartPC: a running thread resumes where it stopped, not at its last syscall.
  if (t.state === ThreadState.Running) t.faultIP = t.getReg(REG_PC);
  tcbSchedDequeue(k, t);
  tcbReleaseDequeue(k, t);
  schedContextCancelYieldTo(k, t);
  setThreadState(k, t, ThreadState.Inactive);
}

/** seL4 migrateTCB: the thread follows its SC to another core (requeued there if queued). */
export function migrateTCB(k: Kernel, t: TCB, core: number): void {
  if (t.core === core) return;
  const ready = t.inReadyQueue;
  const released = t.inReleaseQueue;
  tcbSchedDequeue(k, t);
  tcbReleaseDequeue(k, t);
  t.core = core;
  if (ready) tcbSchedEnqueue(k, t);
  if (released) tcbReleaseEnqueue(k, t);
}

/**
 * seL4 remoteTCBStall: before changing a thread that is running on another core, stop it there
 * (seL4 ipiStallCoreCallback): its time so far is charged on that core, it goes back to that
 * core's ready queue (or release queue, if its budget ran out), the core runs idle and gets a
 * reschedule IPI.
 */
export function remoteTCBStall(k: Kernel, t: TCB): void {
  const core = t.core;
  if (core === k.cur || t.sc === null) return;
  const node = k.nodes[core]!;
  if (node.curThread !== t) return;
  const self = k.cur;
  const now = k.nodes[self]!.curTime;
  k.cur = core;
  if (now > node.curTime) {
    node.consumed += now - node.curTime;
    node.curTime = now;
  }
  if (node.ticklessFor !== null) foldTicklessBudgets(node);
  node.ticklessFor = null;
  if (refillSufficient(k, node.curSC, node.consumed)) {
    if (isSchedulable(k, t)) tcbSchedEnqueue(k, t);
    commitTime(k);
  } else {
    chargeBudget(k, node.consumed, false);
  }
  node.curThread = node.idleThread;
  node.curSC = node.idleThread.sc!;
  node.schedulerAction = ACTION_RESUME;
  node.switchTarget = null;
  node.reprogram = true;
  node.ipiPending = true;
  k.cur = self;
}
