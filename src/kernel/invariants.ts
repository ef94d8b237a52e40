/**
 * Kernel invariants as executable checks. seL4's proofs carry these as invariants of the abstract
 * and C specifications (valid_objs, valid_mdb, valid_queues, valid_sched, valid_refills, ...);
 * capvisor checks them after every step of its tests, property tests and model checker.
 * `checkInvariants` throws an InvariantError naming the first broken invariant and the culprit.
 */
import { isRoundRobin } from "./core/sporadic.js";
import { isMDBParentOf } from "./object/cnode.js";
import type { Kernel } from "./state.js";
import {
  type Cap,
  CNodeObj,
  Endpoint,
  type KObject,
  Notification,
  Reply,
  SchedContext,
  type Slot,
  TCB,
} from "./structures.js";
import { CapType, EndpointState, NotificationState, NUM_PRIORITIES, ThreadState } from "./types.js";

export class InvariantError extends Error {
  constructor(
    readonly invariant: string,
    detail: string,
  ) {
    super(`kernel invariant "${invariant}" broken: ${detail}`);
    this.name = "InvariantError";
  }
}

function fail(invariant: string, detail: string): never {
  throw new InvariantError(invariant, detail);
}

function describe(t: TCB): string {
  return t.name !== "" ? `thread "${t.name}"` : `thread@${t.paddr.toString(16)}`;
}

/** Every slot that can hold a capability: CNode slots, TCB cnodes, the IRQ handler slots. */
function* allSlots(k: Kernel): IterableIterator<Slot> {
  for (const o of k.objects) {
    if (o instanceof CNodeObj) yield* o.usedSlots();
    else if (o instanceof TCB) yield* o.ctes;
  }
  yield* k.irq.handlerSlots;
}

/** The physical range a cap covers, for the containment check. */
function capRange(c: Cap): [number, number] | null {
  if (c.type === CapType.Untyped) return [c.paddr, c.paddr + 2 ** c.sizeBits];
  if (c.obj !== null) return [c.obj.paddr, c.obj.paddr + 2 ** c.obj.sizeBits];
  return null;
}

function checkCapsAndMdb(k: Kernel): void {
  for (const s of allSlots(k)) {
    const c = s.cap;
    if (c.type === CapType.Null) {
      if (s.mdbPrev !== null || s.mdbNext !== null)
        fail("mdb: null slots unlinked", `slot ${s.index} is linked`);
      continue;
    }
    // No capability to a deleted object (seL4 valid_objs / no dangling cap).
    if (c.obj !== null && (!c.obj.live || !k.objects.has(c.obj)))
      fail(
        "no cap to a deleted object",
        `slot ${s.index} holds a cap of type ${CapType[c.type]} to a dead object`,
      );
    if (s.mdbNext !== null && s.mdbNext.mdbPrev !== s)
      fail("mdb: doubly linked", `slot ${s.index}: next.prev is not this slot`);
    if (s.mdbPrev !== null && s.mdbPrev.mdbNext !== s)
      fail("mdb: doubly linked", `slot ${s.index}: prev.next is not this slot`);
    if (s.mdbNext !== null && s.mdbNext.cap.type === CapType.Null)
      fail("mdb: links only between caps", `slot ${s.index} links to an empty slot`);
    // Children of an Untyped lie inside it and below its watermark (seL4 untyped_children_in_mdb).
    if (c.type === CapType.Untyped) {
      const end = c.paddr + c.freeIndex;
      let n = s.mdbNext;
      let steps = 0;
      while (n !== null && isMDBParentOf(s, n)) {
        const r = capRange(n.cap);
        if (r !== null && (r[0] < c.paddr || r[1] > end))
          fail(
            "untyped children inside their parent",
            `a ${CapType[n.cap.type]} at 0x${r[0].toString(16)}..0x${r[1].toString(16)} lies outside untyped 0x${c.paddr.toString(16)} (watermark 0x${end.toString(16)})`,
          );
        n = n.mdbNext;
        if (++steps > 1e7) fail("mdb: acyclic", "derivation list does not end");
      }
    }
  }
}

function checkNoOverlap(k: Kernel): void {
  const objs: KObject[] = [];
  for (const o of k.objects) objs.push(o);
  objs.sort((a, b) => a.paddr - b.paddr);
  for (let i = 1; i < objs.length; i++) {
    const a = objs[i - 1]!;
    const b = objs[i]!;
    if (a.paddr + 2 ** a.sizeBits > b.paddr)
      fail(
        "objects do not overlap",
        `${a.constructor.name}@0x${a.paddr.toString(16)} overlaps ${b.constructor.name}@0x${b.paddr.toString(16)}`,
      );
  }
}

/** An endpoint or notification queue: doubly linked, every member blocked on this object. */
function checkWaitQueue(
  what: string,
  obj: Endpoint | Notification,
  head: TCB | null,
  tail: TCB | null,
  okState: (t: TCB) => boolean,
): number {
  let n = 0;
  let prev: TCB | null = null;
  for (let t = head; t !== null; t = t.epNext) {
    if (t.epPrev !== prev) fail(`${what} queue doubly linked`, `${describe(t)} has a wrong prev link`);
    if (t.blockingObject !== obj)
      fail(`${what} queue members block on it`, `${describe(t)} blocks elsewhere`);
    if (!okState(t)) fail(`${what} queue members blocked`, `${describe(t)} is ${ThreadState[t.state]}`);
    if (!t.live) fail(`${what} queue members live`, `${describe(t)} was deleted`);
    prev = t;
    if (++n > 1e6) fail(`${what} queue acyclic`, "queue does not end");
  }
  if (prev !== tail) fail(`${what} queue tail`, "tail is not the last member");
  return n;
}

function checkEndpoint(ep: Endpoint): void {
  const n = checkWaitQueue("endpoint", ep, ep.qHead, ep.qTail, (t) =>
    ep.state === EndpointState.Send
      ? t.state === ThreadState.BlockedOnSend
      : t.state === ThreadState.BlockedOnReceive,
  );
  if ((n === 0) !== (ep.state === EndpointState.Idle))
    fail("endpoint idle iff its queue is empty", `state ${EndpointState[ep.state]} with ${n} waiting`);
}

function checkNotification(nt: Notification): void {
  const n = checkWaitQueue(
    "notification",
    nt,
    nt.qHead,
    nt.qTail,
    (t) => t.state === ThreadState.BlockedOnNotification,
  );
  if (n > 0 !== (nt.state === NotificationState.Waiting))
    fail(
      "notification waiting iff its queue is non-empty",
      `state ${NotificationState[nt.state]} with ${n} waiting`,
    );
  if (nt.boundTCB !== null && nt.boundTCB.boundNotification !== nt)
    fail("notification binding symmetric", `bound ${describe(nt.boundTCB)} does not point back`);
  if (nt.sc !== null && nt.sc.notification !== nt)
    fail("notification scheduling context symmetric", "its SC is bound elsewhere");
}

function checkSchedContext(k: Kernel, sc: SchedContext): void {
  if (sc.tcb !== null && sc.tcb.sc !== sc)
    fail("SC-TCB binding symmetric", `${describe(sc.tcb)} runs on another SC`);
  if (sc.notification !== null && sc.notification.sc !== sc)
    fail("SC-notification binding symmetric", "its notification points elsewhere");
  // sc.maxRefills is seL4's scRefillMax: the configured length of the circular refill buffer.
  if (!sc.configured || sc.maxRefills === 0) return;
  if (sc.maxRefills > sc.refillMax)
    fail("refills well formed", `${sc.maxRefills} refills exceed capacity ${sc.refillMax}`);
  if (sc.refillCount < 1 || sc.refillCount > sc.maxRefills)
    fail("refills well formed", `refill count ${sc.refillCount} outside 1..${sc.maxRefills}`);
  if (sc.refillHead < 0 || sc.refillHead >= sc.maxRefills)
    fail("refills well formed", "head index out of range");
  const roundRobin = isRoundRobin(sc);
  let sum = 0;
  let prevEnd = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < sc.refillCount; i++) {
    const j = (sc.refillHead + i) % sc.maxRefills;
    const time = sc.refills[2 * j]!;
    const amount = sc.refills[2 * j + 1]!;
    if (amount < 0) fail("refills well formed", `refill ${i} has a negative amount`);
    // Round-robin SCs keep a zero-length tail refill at the head's time (seL4 refill_ordered skips them).
    if (!roundRobin && time < prevEnd)
      fail("refills well formed", `refill ${i} starts before the previous one ends`);
    prevEnd = time + amount;
    sum += amount;
  }
  // The refills always add up to the budget (seL4 refill_sum == budget).
  if (Math.abs(sum - sc.budget) > 1e-6 * Math.max(1, sc.budget))
    fail("refills sum to the budget", `sum ${sum} != budget ${sc.budget}`);
  void k;
}

function checkTCB(k: Kernel, t: TCB): void {
  if (t.sc !== null && t.sc.tcb !== t)
    fail("TCB-SC binding symmetric", `${describe(t)}'s SC points elsewhere`);
  if (t.boundNotification !== null && t.boundNotification.boundTCB !== t)
    fail("TCB-notification binding symmetric", `${describe(t)}'s notification points elsewhere`);
  if (t.inReadyQueue && t.inReleaseQueue)
    fail("ready and release queues disjoint", `${describe(t)} is in both`);
  if (t.state === ThreadState.BlockedOnReply && (t.reply === null || t.reply.tcb !== t))
    fail("reply objects consistent", `${describe(t)} waits for a reply that does not name it`);
  if (t.priority < 0 || t.priority >= NUM_PRIORITIES || t.mcp < 0 || t.mcp >= NUM_PRIORITIES)
    fail("priorities in range", `${describe(t)} has priority ${t.priority} mcp ${t.mcp}`);
  if (t.core < 0 || t.core >= k.nodes.length)
    fail("threads on existing cores", `${describe(t)} on core ${t.core}`);
}

function checkReadyQueues(k: Kernel): void {
  const seen = new Set<TCB>();
  k.nodes.forEach((node, core) => {
    for (let q = 0; q < node.qHead.length; q++) {
      const head = node.qHead[q] ?? null;
      const word = node.readyBitmap[q >>> 5]! >>> (q & 31);
      if ((head !== null) !== ((word & 1) === 1))
        fail("ready bitmap matches the queues", `core ${core} queue ${q}: bitmap and queue disagree`);
      let prev: TCB | null = null;
      for (let t = head; t !== null; t = t.schedNext) {
        if (t.schedPrev !== prev) fail("ready queue doubly linked", `${describe(t)} has a wrong prev link`);
        if (!t.inReadyQueue) fail("ready queue flags", `${describe(t)} is queued but not flagged`);
        if (seen.has(t)) fail("a thread is queued once", `${describe(t)} appears twice`);
        seen.add(t);
        if (t.core !== core)
          fail("threads queued on their own core", `${describe(t)} on core ${t.core} queued on ${core}`);
        if (t.domain * NUM_PRIORITIES + t.priority !== q)
          fail("threads queued at their priority", `${describe(t)} prio ${t.priority} in queue ${q}`);
        if (t.state !== ThreadState.Running && t.state !== ThreadState.Restart)
          fail("only runnable threads are ready", `${describe(t)} is ${ThreadState[t.state]}`);
        prev = t;
      }
      if (prev !== (node.qTail[q] ?? null)) fail("ready queue tail", `core ${core} queue ${q}`);
    }
    let prevTime = Number.NEGATIVE_INFINITY;
    for (let t = node.releaseHead; t !== null; t = t.schedNext) {
      if (!t.inReleaseQueue) fail("release queue flags", `${describe(t)} is queued but not flagged`);
      if (seen.has(t)) fail("a thread is queued once", `${describe(t)} appears twice`);
      seen.add(t);
      const sc = t.sc;
      if (sc === null) fail("released threads have an SC", describe(t));
      const time = sc.refills[2 * sc.refillHead]!;
      if (time < prevTime) fail("release queue ordered by release time", describe(t));
      prevTime = time;
    }
    // A core whose timer leaves out the budget end (setNextInterrupt) runs that thread, and any
    // thread ready at its priority has had an IPI sent to bring the budget end back.
    const lone = node.ticklessFor;
    if (
      lone !== null &&
      (lone !== node.curThread || (node.qHead[lone.priority] !== null && !node.ipiPending))
    )
      fail(
        "a tickless core runs a thread alone at its priority",
        `core ${core} leaves out the budget end of ${describe(lone)}, running ${describe(node.curThread)}`,
      );
    const cur = node.curThread;
    if (cur !== node.idleThread && cur.state !== ThreadState.Running && cur.state !== ThreadState.Restart) {
      // The current thread may have just blocked; the scheduler has then been asked to choose.
      if (node.schedulerAction === 0)
        fail(
          "the current thread is runnable",
          `core ${core} runs ${describe(cur)} in state ${ThreadState[cur.state]}`,
        );
    }
  });
  for (const o of k.objects)
    if (o instanceof TCB && (o.inReadyQueue || o.inReleaseQueue) !== seen.has(o))
      fail("ready queue flags", `${describe(o)} is flagged ${o.inReadyQueue} but queued ${seen.has(o)}`);
}

/** Check every invariant; throws InvariantError on the first violation. */
export function checkInvariants(k: Kernel): void {
  checkCapsAndMdb(k);
  checkNoOverlap(k);
  for (const o of k.objects) {
    if (!o.live) fail("registry holds live objects", `${o.constructor.name} is dead but registered`);
    if (o instanceof Endpoint) checkEndpoint(o);
    else if (o instanceof Notification) checkNotification(o);
    else if (o instanceof SchedContext) checkSchedContext(k, o);
    else if (o instanceof TCB) checkTCB(k, o);
    else if (o instanceof Reply && o.tcb !== null && o.tcb.reply !== o)
      fail("reply objects consistent", `a reply names ${describe(o.tcb)} which does not name it`);
  }
  checkReadyQueues(k);
}
