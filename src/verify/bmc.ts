/**
 * Bounded model checking of the kernel itself (issue 6, "Bounded model checking" bullet).
 *
 * From one small initial state, every sequence of steps up to depth k is executed, where a step
 * is the current thread's choice of one syscall from a finite alphabet of concrete operations
 * (IPC on each endpoint and the notification, CNode Copy/Mint/Delete/Revoke on chosen slots,
 * Untyped_Retype into a chosen slot, TCB Suspend/Resume of the other thread, Yield), or a timer
 * tick (time jumps to the core's timer deadline and the timer interrupt is taken; on a core
 * whose timer leaves out a lone thread's budget end, one budget passes with no interrupt).
 *
 * Initial state (built with real syscalls by the root task, run synchronously): one core; two
 * worker threads A and B at equal priority, each with its own 16-slot CNode as CSpace (guard 60,
 * so a cptr is the slot number), an IPC buffer, and a round-robin scheduling context; two
 * endpoints (ep0 given with all rights, ep1 read/write only), a notification, a Reply object per
 * thread, an Untyped of 2^10 bytes (A only), and a TCB cap of the other thread. The root task
 * then suspends itself (B runs first). Branches are explored depth-first from deep copies (bmc-clone.ts) of the
 * state before the step; states are deduplicated by a SHA-1 of a canonical serialisation of the
 * whole kernel (minus statistics and per-syscall scratch), keeping the largest remaining depth
 * with which each state was explored, so the result is exactly "every sequence of length <= k".
 *
 * After every step: no host exception; checkInvariants; and the abstract authority model: every
 * capability in a slot of any thread's reachable CSpace that differs from what that slot held
 * before the step must be justified by one of seL4's rules:
 *  - derivation (CNode Copy/Mint by the acting thread): a cap of the same type and object held
 *    before in the acting thread's CSpace, rights not increased, badge kept or set on an
 *    unbadged cap;
 *  - creation (Untyped_Retype by the acting thread): an object that did not exist before, placed
 *    inside an Untyped cap the acting thread held, with that Untyped cap as its MDB parent;
 *  - transfer (IPC): a cap of the same type, object, badge and no more rights, held before by a
 *    thread other than the receiver that could grant in this step: the acting thread sending
 *    through an endpoint cap with Grant (or replying through a Reply cap with Grant), or a
 *    thread blocked on a send with Grant whose message the acting thread's receive took.
 * Any other new cap is a violation, reported with the exact syscall trace from the initial state.
 */
import { pathToFileURL } from "node:url";
import { interruptEntry, syscallEntry } from "../kernel/api/syscall.js";
import { bootKernel } from "../kernel/core/boot.js";
import { checkInvariants } from "../kernel/invariants.js";
import type { Kernel } from "../kernel/state.js";
import { type Cap, CNodeObj, type KObject, type Slot, TCB } from "../kernel/structures.js";
import {
  CapType,
  IPCBUF_RECV_CNODE,
  IPCBUF_RECV_DEPTH,
  IPCBUF_RECV_INDEX,
  ObjectType,
  REG_PC,
  REG_SYSCALL,
  RIGHT_GRANT,
  RIGHT_READ,
  RIGHT_WRITE,
  SeL4Error,
  TCB_CTABLE,
  ThreadState,
} from "../kernel/types.js";
import { Allocator, createThread } from "../pd/alloc.js";
import {
  type Sel4Gen,
  seL4_AllRights,
  seL4_Call,
  seL4_CapInitThreadCNode,
  seL4_CapInitThreadTCB,
  seL4_CapInitThreadVSpace,
  seL4_MessageInfo_new,
  seL4_NBRecv,
  seL4_Recv,
  seL4_ReplyRecv,
  seL4_Send,
  seL4_Signal,
  seL4_Wait,
  seL4_Yield,
} from "../pd/libsel4.js";
import {
  seL4_CNode_Copy,
  seL4_CNode_Delete,
  seL4_CNode_Mint,
  seL4_CNode_Revoke,
  seL4_TCB_Resume,
  seL4_TCB_SetSpace,
  seL4_TCB_Suspend,
  seL4_Untyped_Retype,
} from "../pd/libsel4-invocations.js";
import type { ThreadContext } from "../pd/machine.js";
import { runSync, SyncThread } from "../pd/syncthread.js";
import { canonicalHash, deepClone } from "./bmc-clone.js";

// ---- the worker CSpace layout (same slot numbers in A's and B's CNode) ----
const CNODE_RADIX = 4;
const S_EP0 = 1;
const S_EP1 = 2;
const S_NTFN = 3;
const S_REPLY = 4;
const S_UNTYPED = 5;
const S_SELF_CNODE = 6;
const S_OTHER_TCB = 7;
/** Copy/Mint/Retype destinations and the IPC receive slot. */
const S_COPY = 8;
const S_RECV = 9;
const S_MINT = 10;
const S_COPY_RECV = 11;
const S_RETYPE = 12;
/** Where user code sits: every step executes the syscall instruction at this pc. */
const USER_PC = 0x40_0000;

/** The explored system: the kernel plus the driver's clock. Cloned as a whole per branch. */
export interface BmcState {
  k: Kernel;
  now: number;
}

/** The world a checker run starts from, with the names the authority model needs. */
export interface World {
  state: BmcState;
  threadA: TCB;
  threadB: TCB;
}

export type ActionKind = "ipc" | "cnode" | "retype" | "tcb" | "sched" | "tick";

export interface Action {
  name: string;
  kind: ActionKind;
  /** IPC: the slot of the cap the syscall sends through (extra caps travel only if it has Grant). */
  capSlot?: number;
  /** IPC: the syscall also replies through the thread's Reply cap (ReplyRecv). */
  replySends?: boolean;
  /** The libsel4 call that sets the current thread's registers; absent for the tick. */
  make?: (u: ThreadContext) => Sel4Gen<unknown>;
}

const msg1 = seL4_MessageInfo_new(1, 0, 0, 1);
/** A message carrying one cap (the notification cap) as extra cap. */
const msgCap = seL4_MessageInfo_new(2, 0, 1, 1);

function withCap<T>(u: ThreadContext, slot: number, g: Sel4Gen<T>): Sel4Gen<T> {
  u.ipcBuffer[2 * 122] = slot;
  u.ipcBuffer[2 * 122 + 1] = 0;
  return g;
}

/** The alphabet: concrete, meaningful operations named by the worker CSpace layout. */
export const ALPHABET: readonly Action[] = [
  ...[
    ["ep0", S_EP0],
    ["ep1", S_EP1],
  ].flatMap(([n, s]) => {
    const ep = s as number;
    return [
      {
        name: `Send(${n}, +ntfn cap)`,
        kind: "ipc",
        capSlot: ep,
        make: (u) => withCap(u, S_NTFN, seL4_Send(u, ep, msgCap)),
      },
      { name: `Call(${n})`, kind: "ipc", capSlot: ep, make: (u) => seL4_Call(u, ep, msg1) },
      { name: `Recv(${n}, reply)`, kind: "ipc", make: (u) => seL4_Recv(u, ep, S_REPLY) },
      { name: `NBRecv(${n}, reply)`, kind: "ipc", make: (u) => seL4_NBRecv(u, ep, S_REPLY) },
      {
        name: `ReplyRecv(${n}, reply, +ep1 cap)`,
        kind: "ipc",
        replySends: true,
        make: (u) => withCap(u, S_EP1, seL4_ReplyRecv(u, ep, msgCap, S_REPLY)),
      },
    ] satisfies Action[];
  }),
  { name: "Signal(ntfn)", kind: "ipc", make: (u) => seL4_Signal(u, S_NTFN) },
  { name: "Wait(ntfn)", kind: "ipc", make: (u) => seL4_Wait(u, S_NTFN) },
  { name: "Yield", kind: "sched", make: (u) => seL4_Yield(u) },
  {
    name: "CNode_Copy(ep0 -> 8, RW)",
    kind: "cnode",
    make: (u) =>
      seL4_CNode_Copy(u, S_SELF_CNODE, S_COPY, 64, S_SELF_CNODE, S_EP0, 64, RIGHT_READ | RIGHT_WRITE),
  },
  {
    name: "CNode_Mint(ntfn -> 10, badge 7)",
    kind: "cnode",
    make: (u) => seL4_CNode_Mint(u, S_SELF_CNODE, S_MINT, 64, S_SELF_CNODE, S_NTFN, 64, seL4_AllRights, 7),
  },
  {
    name: "CNode_Copy(9 -> 11, all)",
    kind: "cnode",
    make: (u) => seL4_CNode_Copy(u, S_SELF_CNODE, S_COPY_RECV, 64, S_SELF_CNODE, S_RECV, 64, seL4_AllRights),
  },
  { name: "CNode_Delete(8)", kind: "cnode", make: (u) => seL4_CNode_Delete(u, S_SELF_CNODE, S_COPY, 64) },
  { name: "CNode_Delete(9)", kind: "cnode", make: (u) => seL4_CNode_Delete(u, S_SELF_CNODE, S_RECV, 64) },
  { name: "CNode_Revoke(ep0)", kind: "cnode", make: (u) => seL4_CNode_Revoke(u, S_SELF_CNODE, S_EP0, 64) },
  { name: "CNode_Revoke(ntfn)", kind: "cnode", make: (u) => seL4_CNode_Revoke(u, S_SELF_CNODE, S_NTFN, 64) },
  {
    name: "CNode_Revoke(untyped)",
    kind: "cnode",
    make: (u) => seL4_CNode_Revoke(u, S_SELF_CNODE, S_UNTYPED, 64),
  },
  {
    name: "Untyped_Retype(Endpoint -> 12)",
    kind: "retype",
    make: (u) => seL4_Untyped_Retype(u, S_UNTYPED, ObjectType.Endpoint, 0, S_SELF_CNODE, 0, 0, S_RETYPE, 1),
  },
  {
    name: "Untyped_Retype(Notification -> 12)",
    kind: "retype",
    make: (u) =>
      seL4_Untyped_Retype(u, S_UNTYPED, ObjectType.Notification, 0, S_SELF_CNODE, 0, 0, S_RETYPE, 1),
  },
  { name: "TCB_Suspend(other)", kind: "tcb", make: (u) => seL4_TCB_Suspend(u, S_OTHER_TCB) },
  { name: "TCB_Resume(other)", kind: "tcb", make: (u) => seL4_TCB_Resume(u, S_OTHER_TCB) },
  { name: "tick", kind: "tick" },
];

// ---- building the initial state ----

function must(step: string, err: SeL4Error): void {
  if (err !== SeL4Error.NoError)
    throw new Error(`bmc: building the initial state: ${step} failed (${SeL4Error[err]})`);
}

/** Build the initial world with real syscalls from the root task. */
export function buildWorld(): World {
  const k = bootKernel({ cores: 1, rootCNodeBits: 8, memoryBytes: 1 << 20, irqLines: 4 });
  const root = k.rootThread;
  const u = new SyncThread(root);
  runSync(
    k,
    u,
    (function* () {
      const a = new Allocator(k.bootInfo);
      const ep0 = yield* a.alloc(u, ObjectType.Endpoint);
      const ep1 = yield* a.alloc(u, ObjectType.Endpoint);
      const ntfn = yield* a.alloc(u, ObjectType.Notification);
      const replyA = yield* a.alloc(u, ObjectType.Reply);
      const replyB = yield* a.alloc(u, ObjectType.Reply);
      const ut = yield* a.alloc(u, ObjectType.Untyped, 10);
      const cn = [
        yield* a.alloc(u, ObjectType.CapTable, CNODE_RADIX),
        yield* a.alloc(u, ObjectType.CapTable, CNODE_RADIX),
      ];
      const tcbs: number[] = [];
      for (const name of ["A", "B"]) {
        const h = yield* createThread(u, a, { entry: USER_PC, priority: 100, resume: false, name });
        tcbs.push(h.tcb);
      }
      const guard = 64 - CNODE_RADIX; // guard size, guard value 0: cptr = slot number
      for (let i = 0; i < 2; i++) {
        const into = function* (slot: number, src: number, rights: number, badge = 0): Sel4Gen<void> {
          must(
            `mint into slot ${slot}`,
            yield* seL4_CNode_Mint(
              u,
              cn[i]!,
              slot,
              CNODE_RADIX,
              seL4_CapInitThreadCNode,
              src,
              64,
              rights,
              badge,
            ),
          );
        };
        yield* into(S_EP0, ep0, seL4_AllRights);
        yield* into(S_EP1, ep1, RIGHT_READ | RIGHT_WRITE);
        yield* into(S_NTFN, ntfn, RIGHT_READ | RIGHT_WRITE);
        yield* into(S_REPLY, i === 0 ? replyA : replyB, seL4_AllRights);
        if (i === 0) yield* into(S_UNTYPED, ut, seL4_AllRights);
        yield* into(S_SELF_CNODE, cn[i]!, seL4_AllRights, guard);
        yield* into(S_OTHER_TCB, tcbs[1 - i]!, seL4_AllRights);
        must(
          "TCB_SetSpace",
          yield* seL4_TCB_SetSpace(u, tcbs[i]!, 0, cn[i]!, guard, seL4_CapInitThreadVSpace, 0),
        );
      }
      for (const t of tcbs) must("TCB_Resume", yield* seL4_TCB_Resume(u, t));
    })(),
    () => 0,
  );
  let threadA: TCB | undefined;
  let threadB: TCB | undefined;
  for (const o of k.objects)
    if (o instanceof TCB) {
      if (o.name === "A") threadA = o;
      if (o.name === "B") threadB = o;
    }
  if (threadA === undefined || threadB === undefined) throw new Error("bmc: worker threads not built");
  for (const t of [threadA, threadB]) {
    const b = t.ipcBuffer;
    if (b === null) throw new Error("bmc: worker without IPC buffer");
    b[2 * IPCBUF_RECV_CNODE] = S_SELF_CNODE;
    b[2 * IPCBUF_RECV_INDEX] = S_RECV;
    b[2 * IPCBUF_RECV_DEPTH] = 64;
    t.setReg(REG_PC, USER_PC);
  }
  // The root task leaves the stage: it suspends itself, and A runs.
  const g = seL4_TCB_Suspend(u, seL4_CapInitThreadTCB);
  g.next();
  syscallEntry(k, 0, 0, root.regs[2 * REG_SYSCALL]! | 0);
  if (k.nodes[0]!.curThread !== threadA && k.nodes[0]!.curThread !== threadB)
    throw new Error(
      `bmc: no worker is running after the root task left (current ${k.nodes[0]!.curThread.name}, A state ${threadA.state}, root state ${root.state}, x0 ${root.regs[2 * 3]})`,
    );
  checkInvariants(k);
  return { state: { k, now: 0 }, threadA, threadB };
}

// ---- stepping ----

/** Execute one action on a state (mutates it). */
export function applyAction(s: BmcState, act: Action): void {
  const k = s.k;
  const node = k.nodes[0]!;
  if (act.make === undefined) {
    if (Number.isFinite(node.timerDeadline)) {
      s.now = Math.max(s.now, node.timerDeadline);
      interruptEntry(k, 0, s.now, k.config.timerIrq);
    } else if (node.ticklessFor !== null) {
      // The core's timer leaves out a lone thread's budget end (setNextInterrupt): time passes
      // all the same, one budget, charged at the thread's next kernel entry.
      s.now += node.curSC.budget;
    }
    return;
  }
  const t = node.curThread;
  if (t === node.idleThread || t.ipcBuffer === null) return;
  t.setReg(REG_PC, USER_PC);
  const g = act.make({ tcb: t, ipcBuffer: t.ipcBuffer });
  g.next();
  syscallEntry(k, 0, s.now, t.regs[2 * REG_SYSCALL]! | 0);
}

/** The actions enabled in a state: the alphabet for a running worker, only the tick when idle. */
function enabled(s: BmcState): readonly Action[] {
  const node = s.k.nodes[0]!;
  const t = node.curThread;
  if (t === node.idleThread || t.ipcBuffer === null) return [ALPHABET[ALPHABET.length - 1]!];
  return ALPHABET;
}

// ---- the abstract authority model ----

interface CapFact {
  slot: Slot;
  cap: Cap;
  type: CapType;
  obj: KObject | null;
  rights: number;
  badgeLo: number;
  badgeHi: number;
  paddr: number;
  sizeBits: number;
  /** The MDB parent's cap (the previous slot when it is a parent), for Retype. */
  mdbPrev: Cap | null;
}

function fact(slot: Slot): CapFact {
  const c = slot.cap;
  return {
    slot,
    cap: c,
    type: c.type,
    obj: c.obj,
    rights: c.rights,
    badgeLo: c.badgeLo,
    badgeHi: c.badgeHi,
    paddr: c.paddr,
    sizeBits: c.sizeBits,
    mdbPrev: slot.mdbPrev?.cap ?? null,
  };
}

/** Slots of the CSpace reachable from a thread's CTable (CNode caps followed transitively). */
function cspaceSlots(t: TCB): Slot[] {
  const out: Slot[] = [];
  const seen = new Set<CNodeObj>();
  const stack: CNodeObj[] = [];
  const push = (c: Cap): void => {
    if (c.type === CapType.CNode && c.obj instanceof CNodeObj && !seen.has(c.obj)) {
      seen.add(c.obj);
      stack.push(c.obj);
    }
  };
  push(t.ctes[TCB_CTABLE]!.cap);
  while (stack.length > 0) {
    const cn = stack.pop()!;
    for (const s of cn.usedSlots()) {
      if (s.cap.type === CapType.Null) continue;
      out.push(s);
      push(s.cap);
    }
  }
  return out;
}

interface Snapshot {
  /** Per thread: its CSpace facts. */
  byThread: Map<TCB, CapFact[]>;
  /** Every slot in some thread's CSpace -> its fact. */
  bySlot: Map<Slot, CapFact>;
  objects: Set<KObject>;
  /** Threads blocked on a send (or call) made through an endpoint cap with Grant. */
  sendersWithGrant: Set<TCB>;
}

function snapshot(k: Kernel): Snapshot {
  const byThread = new Map<TCB, CapFact[]>();
  const bySlot = new Map<Slot, CapFact>();
  const sendersWithGrant = new Set<TCB>();
  for (const o of k.objects) {
    if (!(o instanceof TCB)) continue;
    if (o.state === ThreadState.BlockedOnSend && o.blockingCanGrant) sendersWithGrant.add(o);
    const facts = cspaceSlots(o).map((s) => bySlot.get(s) ?? fact(s));
    for (const f of facts) bySlot.set(f.slot, f);
    byThread.set(o, facts);
  }
  return { byThread, bySlot, objects: new Set(k.objects), sendersWithGrant };
}

function sameCap(a: CapFact, b: CapFact): boolean {
  return (
    a.cap === b.cap &&
    a.type === b.type &&
    a.obj === b.obj &&
    a.rights === b.rights &&
    a.badgeLo === b.badgeLo &&
    a.badgeHi === b.badgeHi &&
    a.paddr === b.paddr &&
    a.sizeBits === b.sizeBits
  );
}

/** `c` could have been derived from `p`: same type and object, rights not increased, badge kept or newly set. */
function derivable(c: CapFact, p: CapFact): boolean {
  if (c.type !== p.type || c.obj !== p.obj) return false;
  if ((c.rights & ~p.rights) !== 0) return false;
  if (c.type === CapType.Untyped && (c.paddr !== p.paddr || c.sizeBits !== p.sizeBits)) return false;
  const pBadged = (p.badgeLo | p.badgeHi) !== 0;
  return !pBadged || (c.badgeLo === p.badgeLo && c.badgeHi === p.badgeHi);
}

function describeCap(f: CapFact): string {
  const o = f.obj === null ? "-" : `${f.obj.constructor.name}@0x${f.obj.paddr.toString(16)}`;
  return `${CapType[f.type]} ${o} rights=${f.rights} badge=${f.badgeLo}`;
}

/** Returns a description of the first unjustified capability, or null. */
function checkAuthority(before: Snapshot, after: Snapshot, actor: TCB | null, act: Action): string | null {
  const actorFacts = actor === null ? [] : (before.byThread.get(actor) ?? []);
  for (const [t, facts] of after.byThread) {
    for (const f of facts) {
      const old = before.bySlot.get(f.slot);
      if (old !== undefined && sameCap(old, f)) continue;
      const ok =
        // derivation by the acting thread's CNode Copy/Mint
        (act.kind === "cnode" && actorFacts.some((p) => p.slot !== f.slot && derivable(f, p))) ||
        // creation by Retype: a new object inside an Untyped the actor held, which is its MDB parent
        (act.kind === "retype" &&
          f.obj !== null &&
          !before.objects.has(f.obj) &&
          actorFacts.some(
            (p) =>
              p.type === CapType.Untyped &&
              f.mdbPrev === p.cap &&
              f.obj!.paddr >= p.paddr &&
              f.obj!.paddr + 2 ** f.obj!.sizeBits <= p.paddr + 2 ** p.sizeBits,
          )) ||
        // transfer by IPC: the acting thread sending through a cap with Grant (the endpoint cap
        // it invoked, or its Reply cap for ReplyRecv), or a sender that was blocked on a send
        // with Grant whose message the acting thread's receive took
        (act.kind === "ipc" &&
          [...before.byThread].some(
            ([s, sf]) =>
              s !== t &&
              (s === actor
                ? actorFacts.some(
                    (p) =>
                      (p.slot.index === act.capSlot ||
                        (act.replySends === true && p.type === CapType.Reply)) &&
                      (p.rights & RIGHT_GRANT) !== 0,
                  )
                : before.sendersWithGrant.has(s)) &&
              sf.some((p) => derivable(f, p)),
          ));
      if (!ok) {
        // Name the thread whose CSpace root is the slot's CNode (the root task reaches every CNode).
        let holder = t;
        for (const [u, uf] of after.byThread)
          if (u.ctes[TCB_CTABLE]!.cap.obj === f.slot.owner && uf.includes(f)) holder = u;
        return `thread ${holder.name || "?"} slot ${f.slot.index} holds ${describeCap(f)}${
          old === undefined ? "" : ` (was ${describeCap(old)})`
        }, which no rule allows after ${act.name}`;
      }
    }
  }
  return null;
}

// ---- the search ----

/** Properties of the kernel state hash that do not influence later behaviour. */
export const HASH_SKIP: ReadonlySet<string> = new Set([
  "stats",
  "syscallError",
  "lookupFault",
  "bitsRemaining",
  "extraCaps",
  "workUnits",
  "debugOut",
  "config",
  "currentFault",
]);

export interface BmcOptions {
  depth: number;
  /** Test hook: mutate the state after each step (to check that the checker can fail). */
  afterStep?: (s: BmcState, act: Action) => void;
  /** Stop after this many executed steps (a safety net); the verdict then says so. */
  maxSteps?: number;
}

export interface BmcResult {
  verdict: "BOUNDED" | "COUNTEREXAMPLE" | "INCOMPLETE";
  depth: number;
  /** Distinct states (by hash), including the initial one. */
  states: number;
  /** Steps executed (transitions, including ones into already seen states). */
  transitions: number;
  /** Deepest level reached. */
  depthReached: number;
  /** For a counterexample: the actions from the initial state, each "A: Call(ep0)" style. */
  trace?: string[];
  violation?: string;
  ms: number;
  summary: string;
}

export function runBmc(opts: BmcOptions): BmcResult {
  const t0 = Date.now();
  const world = buildWorld();
  const visited = new Map<string, number>();
  let transitions = 0;
  let depthReached = 0;
  const maxSteps = opts.maxSteps ?? Number.POSITIVE_INFINITY;
  let truncated = false;
  const trace: string[] = [];
  let violation: string | null = null;

  const hashOf = (s: BmcState): string => canonicalHash(s, HASH_SKIP);
  // DFS with remaining-depth memo: a state is re-expanded only when reached with more depth left.
  const dfs = (s: BmcState, left: number, level: number): boolean => {
    if (level > depthReached) depthReached = level;
    if (left === 0) return false;
    for (const act of enabled(s)) {
      if (transitions >= maxSteps) {
        truncated = true;
        return false;
      }
      transitions++;
      const next = deepClone(s);
      const node = next.k.nodes[0]!;
      const actor = node.curThread === node.idleThread ? null : node.curThread;
      const label = `${actor === null ? "idle" : actor.name}: ${act.name}`;
      const before = snapshot(next.k);
      try {
        applyAction(next, act);
        opts.afterStep?.(next, act);
        violation = checkAuthority(before, snapshot(next.k), actor, act);
        if (violation === null) checkInvariants(next.k);
      } catch (e) {
        violation = `kernel: ${e instanceof Error ? e.message : String(e)}`;
      }
      if (violation !== null) {
        trace.push(label);
        return true;
      }
      const h = hashOf(next);
      const seen = visited.get(h);
      if (seen !== undefined && seen >= left - 1) continue;
      visited.set(h, left - 1);
      trace.push(label);
      if (dfs(next, left - 1, level + 1)) return true;
      trace.pop();
    }
    return false;
  };
  const init = world.state;
  visited.set(hashOf(init), opts.depth);
  const found = dfs(init, opts.depth, 0);
  const ms = Date.now() - t0;
  const base = { depth: opts.depth, states: visited.size, transitions, depthReached, ms };
  if (found) {
    return {
      ...base,
      verdict: "COUNTEREXAMPLE",
      trace: [...trace],
      violation: violation ?? "",
      summary: `COUNTEREXAMPLE at depth ${trace.length}: ${violation}\n  trace: ${trace.join(" ; ")}`,
    };
  }
  if (truncated)
    return {
      ...base,
      verdict: "INCOMPLETE",
      summary: `INCOMPLETE: step limit ${maxSteps} reached before depth ${opts.depth} was exhausted (${visited.size} states)`,
    };
  return {
    ...base,
    verdict: "BOUNDED",
    summary: `BOUNDED(${opts.depth}): ${visited.size} states explored, ${transitions} transitions, no violation (${ms} ms)`,
  };
}

/** Rights bits, for the tests' broken variants. */
export const RIGHTS = { READ: RIGHT_READ, WRITE: RIGHT_WRITE, GRANT: RIGHT_GRANT } as const;
/** Worker slot numbers (for tests). */
export const SLOTS = { EP0: S_EP0, EP1: S_EP1, NTFN: S_NTFN, COPY: S_COPY, RECV: S_RECV } as const;

/** The worker threads of a state (for hooks). */
export function workers(s: BmcState): TCB[] {
  const out: TCB[] = [];
  for (const o of s.k.objects) if (o instanceof TCB && (o.name === "A" || o.name === "B")) out.push(o);
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** A worker's CNode slot (for hooks). */
export function workerSlot(t: TCB, index: number): Slot | null {
  const c = t.ctes[TCB_CTABLE]!.cap;
  return c.obj instanceof CNodeObj ? c.obj.slot(index) : null;
}

/** CLI: `node dist/src/verify/bmc.js [depth]`. */
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const depth = Number(process.argv[2] ?? 5);
  const r = runBmc({ depth });
  console.log(r.summary);
  console.log(`alphabet: ${ALPHABET.length} actions; depth reached ${r.depthReached}`);
  process.exitCode = r.verdict === "BOUNDED" ? 0 : 1;
}
