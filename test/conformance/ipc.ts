/**
 * Conformance tests for IPC: endpoints (Send, NBSend, Call, Recv, NBRecv, ReplyRecv, NBSendRecv),
 * Reply objects (MCS), endpoint rights, cap transfer and unwrapping, notification binding.
 * Rows IPC0001..IPC0004, IPC0010, IPC1001..IPC1004, IPCRIGHTS0001..0005, NBWAIT0001,
 * BIND0001..0004, REPLY0001, REPLY0002. Written from the seL4 reference manual (§4 message
 * passing, §5 notifications, §6.1 MCS) and the intent of sel4test's tests of the same names.
 */
import assert from "node:assert/strict";
import { bootKernel } from "../../src/kernel/core/boot.js";
import { checkInvariants } from "../../src/kernel/invariants.js";
import type { Kernel } from "../../src/kernel/state.js";
import type { CNodeObj, Endpoint, KObject, Reply, TCB } from "../../src/kernel/structures.js";
import {
  CapType,
  EndpointState,
  FaultType,
  LookupFailure,
  MSG_MAX_LENGTH,
  ObjectType,
  SeL4Error,
  ThreadState,
} from "../../src/kernel/types.js";
import { Allocator, createThread, mapPage, startThread } from "../../src/pd/alloc.js";
import {
  type RecvResult,
  type Sel4Gen,
  seL4_AllRights,
  seL4_Call,
  seL4_CanGrant,
  seL4_CanGrantReply,
  seL4_CanRead,
  seL4_CanWrite,
  seL4_CapInitThreadASIDPool,
  seL4_CapInitThreadCNode,
  seL4_CapInitThreadTCB,
  seL4_GetBadgeBig,
  seL4_GetMR,
  seL4_GetMRBig,
  type seL4_MessageInfo,
  seL4_MessageInfo_new,
  seL4_NBRecv,
  seL4_NBSend,
  seL4_NBSendRecv,
  seL4_Poll,
  seL4_ReadWrite,
  seL4_Recv,
  seL4_ReplyRecv,
  seL4_Send,
  seL4_SetCap,
  seL4_SetCapReceivePath,
  seL4_SetMR,
  seL4_Signal,
  seL4_Wait,
  type Word,
} from "../../src/pd/libsel4.js";
import {
  seL4_ARM_ASIDPool_Assign,
  seL4_CNode_Copy,
  seL4_CNode_Delete,
  seL4_CNode_Mint,
  seL4_SchedControl_ConfigureFlags,
  seL4_TCB_BindNotification,
  seL4_TCB_Configure,
  seL4_TCB_Resume,
  seL4_TCB_SetPriority,
  seL4_TCB_SetSchedParams,
  seL4_TCB_Suspend,
  seL4_TCB_UnbindNotification,
} from "../../src/pd/libsel4-invocations.js";
import { EXIT_FAULT_NUMBER, Machine, type Request, type UserThread } from "../../src/pd/machine.js";
import { conformance } from "./rows.js";

// ---------------------------------------------------------------- common set-up

const BIT63 = 1n << 63n;
const W64 = (x: bigint): bigint => BigInt.asUintN(64, x);

interface Env {
  k: Kernel;
  m: Machine;
}

function boot(cores = 1): Env {
  const k = bootKernel({ cores });
  const m = new Machine(k, { afterEachEntry: (kk) => checkInvariants(kk) });
  return { k, m };
}

/** Run the machine until it is quiescent and check the root task reached its end. */
function runToEnd(env: Env, done: () => boolean, maxSteps = 3_000_000): void {
  const r = env.m.run({ maxSteps });
  assert.equal(r.reason, "idle", "the system did not settle");
  assert.equal(done(), true, "the root task did not finish its test");
}

function objAt(k: Kernel, cptr: number): KObject | null {
  return k.rootCNode.slot(cptr).cap.obj;
}
function tcbAt(k: Kernel, cptr: number): TCB {
  return objAt(k, cptr) as TCB;
}

function* ok(step: string, e: Sel4Gen<SeL4Error>): Sel4Gen<void> {
  const err = yield* e;
  assert.equal(err, SeL4Error.NoError, `${step}: ${SeL4Error[err]}`);
}

/** Mint `src` (root CNode) into a fresh root slot with `rights` and `badge`. */
function* mint(u: UserThread, a: Allocator, src: number, rights: number, badge: Word): Sel4Gen<number> {
  const slot = a.slot();
  yield* ok(
    "CNode_Mint",
    seL4_CNode_Mint(u, seL4_CapInitThreadCNode, slot, 64, seL4_CapInitThreadCNode, src, 64, rights, badge),
  );
  return slot;
}

/** A message info of `length` words with a label derived from it. */
function tag(length: number, caps = 0, label = 0xabc00 + length): seL4_MessageInfo {
  return seL4_MessageInfo_new(label, 0, caps, length);
}

/** Wait on the fault endpoint for the exit faults of `n` helpers; returns their badges in order. */
function* waitExits(u: UserThread, faultEp: number, reply: number, n: number): Sel4Gen<number[]> {
  const got: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = yield* seL4_Recv(u, faultEp, reply);
    assert.equal(r.info.label, FaultType.UserException, "a helper faulted instead of finishing");
    assert.equal(seL4_GetMR(u, 3), EXIT_FAULT_NUMBER);
    assert.equal(seL4_GetMR(u, 4), 0, "helper exit code");
    got.push(r.sender);
  }
  return got;
}

// ---- threads in their own CSpace and VSpace (sel4utils processes) ----

const PROC_CNODE_BITS = 8;
/** The process's own CNode cap, in its own CSpace (for receive paths). */
const PROC_SELF = 1;
/** First slot of the caps handed to a process. */
const PROC_FIRST_CAP = 2;
const PROC_IPC_VADDR = 0x2000_0000;

interface Proc {
  tcb: number;
  sc: number;
  /** Root cptr of the process CNode cap (guarded to resolve 64-bit cptrs). */
  cnode: number;
}

interface ProcOptions {
  entry: number;
  priority: number;
  core?: number;
  faultEp: Word;
  caps: readonly { src: number; rights: number; badge: Word }[];
}

/** A thread with its own CNode (caps at PROC_FIRST_CAP..) and its own VSpace with an IPC buffer. */
function* createProcess(u: UserThread, a: Allocator, o: ProcOptions): Sel4Gen<Proc> {
  const raw = yield* a.alloc(u, ObjectType.CapTable, PROC_CNODE_BITS);
  // Guard size 64 - radix: a full 64-bit cptr resolves in this one level.
  const cnode = yield* mint(u, a, raw, seL4_AllRights, 64 - PROC_CNODE_BITS);
  yield* ok(
    "copy self cap",
    seL4_CNode_Copy(u, cnode, PROC_SELF, 64, seL4_CapInitThreadCNode, cnode, 64, seL4_AllRights),
  );
  for (let i = 0; i < o.caps.length; i++) {
    const c = o.caps[i]!;
    yield* ok(
      "give cap",
      seL4_CNode_Mint(
        u,
        cnode,
        PROC_FIRST_CAP + i,
        64,
        seL4_CapInitThreadCNode,
        c.src,
        64,
        c.rights,
        c.badge,
      ),
    );
  }
  const vspace = yield* a.alloc(u, ObjectType.VSpace);
  yield* ok("ASIDPool_Assign", seL4_ARM_ASIDPool_Assign(u, seL4_CapInitThreadASIDPool, vspace));
  const frame = yield* a.alloc(u, ObjectType.SmallPage);
  yield* ok("map IPC buffer", mapPage(u, a, frame, PROC_IPC_VADDR, seL4_ReadWrite, undefined, vspace));
  const tcb = yield* a.alloc(u, ObjectType.TCB);
  yield* ok("TCB_Configure", seL4_TCB_Configure(u, tcb, cnode, 0, vspace, 0, PROC_IPC_VADDR, frame));
  const sc = yield* a.alloc(u, ObjectType.SchedContext);
  yield* ok(
    "SchedControl_Configure",
    seL4_SchedControl_ConfigureFlags(u, a.schedControl + (o.core ?? 0), sc, 1000, 1000, 0, 0, 0),
  );
  yield* ok(
    "TCB_SetSchedParams",
    seL4_TCB_SetSchedParams(u, tcb, seL4_CapInitThreadTCB, o.priority, o.priority, sc, o.faultEp),
  );
  yield* ok("TCB_WriteRegisters", startThread(u, tcb, o.entry, [], false));
  return { tcb, sc, cnode };
}

/** A thread or a process, created stopped. */
interface Helper {
  tcb: number;
  sc: number;
  /** Root cptr of the process's CNode; 0 for a thread in the root CSpace. */
  cnode: number;
  /** cptrs of the endpoint and reply in the helper's own CSpace. */
  ep: number;
  reply: number;
}

function* makeHelper(
  u: UserThread,
  a: Allocator,
  interAS: boolean,
  entry: number,
  faultEp: number,
  ep: number,
  epRights: number,
  epBadge: Word,
  core = 0,
): Sel4Gen<Helper> {
  const reply = yield* a.alloc(u, ObjectType.Reply);
  if (interAS) {
    const p = yield* createProcess(u, a, {
      entry,
      priority: 100,
      core,
      faultEp,
      caps: [
        { src: ep, rights: epRights, badge: epBadge },
        { src: reply, rights: seL4_AllRights, badge: 0 },
      ],
    });
    return { tcb: p.tcb, sc: p.sc, cnode: p.cnode, ep: PROC_FIRST_CAP, reply: PROC_FIRST_CAP + 1 };
  }
  const myEp = yield* mint(u, a, ep, epRights, epBadge);
  const h = yield* createThread(u, a, { entry, priority: 100, core, faultEp, resume: false });
  return { tcb: h.tcb, sc: h.sc, cnode: 0, ep: myEp, reply };
}

// ---------------------------------------------------------------- IPC pair tests (IPC0001..IPC1004)

type Kind = "send" | "nbsend" | "call" | "wait" | "nbwait" | "replyRecv" | "replyThenRecv";

interface Round {
  seed: bigint;
  badge: bigint;
  shouldWait: boolean;
  /** Messages the receiving side checked in this round. */
  received: number;
  /** Replies the calling side checked in this round. */
  replies: number;
}

/**
 * sel4test's test_ipc_pair: a sender-side program (a) and a receiver-side program (b) exchange
 * messages of every length 0..seL4_MsgMaxLength through the IPC buffer; every word is 64 bits
 * wide and checked exactly, as are the label, the length and the sender's badge (bit 63 set).
 * The pair runs on one core, or on two with the threads' scheduling contexts on different cores
 * (both ways), with sender priorities below, equal to and above the
 * waiter's, and both start orders.
 */
function ipcPair(fa: Kind, fb: Kind, interAS: boolean, cores: number): void {
  const env = boot(cores);
  const { k, m } = env;
  const cur: Round = { seed: 0n, badge: 0n, shouldWait: true, received: 0, replies: 0 };
  const nextSeed = (s: bigint) => W64(s + 1n);

  function checkMsg(u: UserThread, r: seL4_MessageInfo, len: number, seed: bigint): bigint {
    assert.equal(r.length, len, "received length");
    assert.equal(r.label, 0xabc00 + len, "received label");
    assert.equal(r.extraCaps, 0);
    assert.equal(r.capsUnwrapped, 0);
    let s = seed;
    for (let i = 0; i < len; i++) {
      assert.equal(seL4_GetMRBig(u, i), s, `MR${i} of a ${len}-word message`);
      s = nextSeed(s);
    }
    return s;
  }
  function fill(u: UserThread, len: number, seed: bigint): bigint {
    let s = seed;
    for (let i = 0; i < len; i++) {
      seL4_SetMR(u, i, s);
      s = nextSeed(s);
    }
    return s;
  }

  const programs: Record<
    Kind,
    (u: UserThread, ep: number, reply: number) => Generator<Request, number, void>
  > = {
    *send(u, ep) {
      let s = cur.seed;
      for (let len = 0; len <= MSG_MAX_LENGTH; len++) {
        s = fill(u, len, s);
        yield* seL4_Send(u, ep, tag(len));
      }
      return 0;
    },
    *nbsend(u, ep) {
      let s = cur.seed;
      for (let len = 0; len <= MSG_MAX_LENGTH; len++) {
        s = fill(u, len, s);
        yield* seL4_NBSend(u, ep, tag(len));
      }
      return 0;
    },
    *call(u, ep) {
      let s = cur.seed;
      for (let len = 0; len <= MSG_MAX_LENGTH; len++) {
        s = fill(u, len, s);
        const r = yield* seL4_Call(u, ep, tag(len));
        s = checkMsg(u, r, len, s);
        cur.replies++;
      }
      return 0;
    },
    *wait(u, ep, reply) {
      let s = cur.seed;
      for (let len = 0; len <= MSG_MAX_LENGTH; len++) {
        const r = yield* seL4_Recv(u, ep, reply);
        assert.equal(r.senderBig, cur.badge, "badge");
        s = checkMsg(u, r.info, len, s);
        cur.received++;
      }
      return 0;
    },
    *nbwait(u, ep, reply) {
      if (!cur.shouldWait) return 0;
      let s = cur.seed;
      for (let len = 0; len <= MSG_MAX_LENGTH; len++) {
        const r = yield* seL4_Recv(u, ep, reply);
        assert.equal(r.senderBig, cur.badge, "badge");
        s = checkMsg(u, r.info, len, s);
        cur.received++;
      }
      return 0;
    },
    *replyRecv(u, ep, reply) {
      let s = cur.seed;
      let t = seL4_MessageInfo_new(0, 0, 0, 0);
      let r: RecvResult | null = null;
      for (let len = 0; len <= MSG_MAX_LENGTH; len++) {
        // The first receive has nothing to reply to: NBSendRecv (its send goes nowhere).
        r = r === null ? yield* seL4_NBSendRecv(u, ep, t, ep, reply) : yield* seL4_ReplyRecv(u, ep, t, reply);
        assert.equal(r.senderBig, cur.badge, "badge");
        s = checkMsg(u, r.info, len, s);
        cur.received++;
        s = fill(u, len, s);
        t = tag(len);
      }
      // MCS has no Reply syscall: the last reply is a Send on the Reply object.
      yield* seL4_Send(u, reply, t);
      return 0;
    },
    *replyThenRecv(u, ep, reply) {
      let s = cur.seed;
      let t: seL4_MessageInfo | null = null;
      for (let len = 0; len <= MSG_MAX_LENGTH; len++) {
        if (t !== null) yield* seL4_Send(u, reply, t);
        const r = yield* seL4_Recv(u, ep, reply);
        assert.equal(r.senderBig, cur.badge, "badge");
        s = checkMsg(u, r.info, len, s);
        cur.received++;
        s = fill(u, len, s);
        t = tag(len);
      }
      yield* seL4_Send(u, reply, t!);
      return 0;
    },
  };
  const entryA = m.program((u, ep, reply) => programs[fa](u, ep, reply));
  const entryB = m.program((u, ep, reply) => programs[fb](u, ep, reply));
  const isCall = fa === "call";
  const blocking = fb !== "nbwait";

  let done = false;
  let rounds = 0;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const faultEp = yield* a.alloc(u, ObjectType.Endpoint);
    const rootReply = yield* a.alloc(u, ObjectType.Reply);
    const faultA = yield* mint(u, a, faultEp, seL4_AllRights, 1);
    const faultB = yield* mint(u, a, faultEp, seL4_AllRights, 2);
    const senderRights = seL4_CanWrite | seL4_CanGrant | seL4_CanGrantReply;
    const A = yield* makeHelper(u, a, interAS, entryA, faultA, ep, senderRights, 0, 0);
    const B = yield* makeHelper(u, a, interAS, entryB, faultB, ep, seL4_ReadWrite, 0, 0);
    // The sender's endpoint cap carries a badge with bit 63 set, minted into a second cap.
    let seed = 0xf0e1_d2c3_abba_cafen;
    for (let coreA = 0; coreA < cores; coreA++) {
      yield* ok(
        "affinity A",
        seL4_SchedControl_ConfigureFlags(u, a.schedControl + coreA, A.sc, 1000, 1000, 0, 0, 0),
      );
      for (let coreB = 0; coreB < cores; coreB++) {
        // With two cores the pair runs on different cores (the same-core case is the 1-core run).
        if (cores > 1 && coreA === coreB) continue;
        yield* ok(
          "affinity B",
          seL4_SchedControl_ConfigureFlags(u, a.schedControl + coreB, B.sc, 1000, 1000, 0, 0, 0),
        );
        // Below, equal to and above the waiter (sel4test steps 98..102; 98/99 and 101/102 only
        // repeat the first and last relation).
        for (const senderPrio of [99, 100, 101]) {
          yield* ok("prio A", seL4_TCB_SetPriority(u, A.tcb, seL4_CapInitThreadTCB, senderPrio));
          const waiterPrio = 100;
          yield* ok("prio B", seL4_TCB_SetPriority(u, B.tcb, seL4_CapInitThreadTCB, waiterPrio));
          for (const senderFirst of [true, false]) {
            const badge = BIT63 | BigInt(rounds + 1);
            // Each round the sender gets a fresh cap with this round's badge, in its own CSpace.
            const sendCap = yield* mint(u, a, ep, senderRights, badge);
            yield* giveSendCap(u, A, sendCap);
            cur.seed = seed;
            cur.badge = badge;
            cur.shouldWait = senderPrio < waiterPrio;
            cur.received = 0;
            cur.replies = 0;
            if (senderFirst) {
              yield* ok("start B", startThread(u, B.tcb, entryB, [B.ep, B.reply]));
              yield* ok("start A", startThread(u, A.tcb, entryA, [A.ep, A.reply]));
            } else {
              yield* ok("start A", startThread(u, A.tcb, entryA, [A.ep, A.reply]));
              yield* ok("start B", startThread(u, B.tcb, entryB, [B.ep, B.reply]));
            }
            const exits = yield* waitExits(u, faultEp, rootReply, 2);
            assert.deepEqual([...exits].sort(), [1, 2]);
            assert.equal(tcbAt(k, A.tcb).core, coreA, "sender's core");
            assert.equal(tcbAt(k, B.tcb).core, coreB, "receiver's core");
            const expected = blocking || cur.shouldWait ? MSG_MAX_LENGTH + 1 : 0;
            assert.equal(cur.received, expected, "messages received");
            if (isCall) assert.equal(cur.replies, MSG_MAX_LENGTH + 1, "replies received");
            // Nothing is left queued on the endpoint: NBSend never queues, blocking IPC all matched.
            assert.equal((objAt(k, ep) as Endpoint).state, EndpointState.Idle);
            const nb = yield* seL4_NBRecv(u, ep, rootReply);
            assert.equal(nb.senderBig, 0n);
            seed = W64(seed + 0x7171_7171n);
            rounds++;
          }
        }
      }
    }
    done = true;
  });
  runToEnd(env, () => done, 20_000_000);
  assert.equal(rounds, (cores > 1 ? cores * (cores - 1) : 1) * 3 * 2);
}

/**
 * Replace the sender's endpoint cap (at its `ep` cptr, in its own CSpace) with `sendCap`: delete,
 * then copy. For a thread in the root CSpace the cptr is renamed instead.
 */
function* giveSendCap(u: UserThread, h: Helper, sendCap: number): Sel4Gen<void> {
  if (h.cnode === 0) {
    h.ep = sendCap;
    return;
  }
  yield* ok("delete old cap", seL4_CNode_Delete(u, h.cnode, h.ep, 64));
  yield* ok(
    "copy new cap",
    seL4_CNode_Copy(u, h.cnode, h.ep, 64, seL4_CapInitThreadCNode, sendCap, 64, seL4_AllRights),
  );
}

for (const [id, fa, fb, interAS, smp] of [
  ["IPC0001", "send", "wait", false, true],
  ["IPC0002", "call", "replyRecv", false, true],
  ["IPC0003", "call", "replyThenRecv", false, true],
  ["IPC0004", "nbsend", "nbwait", false, false],
  ["IPC1001", "send", "wait", true, true],
  ["IPC1002", "call", "replyRecv", true, true],
  ["IPC1003", "call", "replyThenRecv", true, true],
  ["IPC1004", "nbsend", "nbwait", true, false],
] as const) {
  conformance(id, () => {
    ipcPair(fa, fb, interAS, 1);
    if (smp) ipcPair(fa, fb, interAS, 2);
    if (id === "IPC0001" || id === "IPC1001") capTransfer(interAS);
    if (id === "IPC0001") truncatedLength();
  });
}

// ---------------------------------------------------------------- cap transfer and unwrapping

/**
 * Caps sent with a message (manual §4.2.2): a cap to the endpoint the message travels through is
 * unwrapped (its badge goes to caps_or_badges[i], bit i of capsUnwrapped set); any other cap goes
 * to the receiver's one receive slot; the first cap that cannot be transferred ends the transfer,
 * and extraCaps counts the caps handled before it. With `interAS` the receiver is in its own
 * CSpace and VSpace and names its receive slot in its own CNode.
 */
function capTransfer(interAS: boolean): void {
  const env = boot();
  const { k, m } = env;
  const BADGE = BIT63 | 0x1234n;
  const NTFN_BADGE = 0x55n;
  let recvCNode = 0;
  let slot1 = 0;
  let slot2 = 0;
  const seen: string[] = [];
  const receiver = m.program(function* (u, ep, reply) {
    const expectMRs = (n: number) => {
      for (let i = 0; i < n; i++) assert.equal(seL4_GetMRBig(u, i), W64(BADGE + BigInt(i)));
    };
    // 1: [badged cap to this endpoint, notification, unbadged cap to this endpoint].
    seL4_SetCapReceivePath(u, recvCNode, slot1, 64);
    let r = yield* seL4_Recv(u, ep, reply);
    assert.equal(r.senderBig, 0n);
    assert.equal(r.info.length, 2);
    assert.equal(r.info.extraCaps, 3);
    assert.equal(r.info.capsUnwrapped, 0b101);
    assert.equal(seL4_GetBadgeBig(u, 0), BADGE);
    assert.equal(seL4_GetBadgeBig(u, 2), 0n);
    expectMRs(2);
    // The notification arrived: use it.
    yield* seL4_Signal(u, slot1);
    seen.push("1");
    // 2: [cap to another endpoint, notification]: one receive slot, so only the first moves.
    seL4_SetCapReceivePath(u, recvCNode, slot2, 64);
    r = yield* seL4_Recv(u, ep, reply);
    assert.equal(r.info.extraCaps, 1);
    assert.equal(r.info.capsUnwrapped, 0);
    seen.push("2");
    // 3: receive slot occupied; [notification, badged cap to this endpoint]: the first cap cannot
    // move, which ends the transfer before the unwrappable second one.
    seL4_SetCapReceivePath(u, recvCNode, slot1, 64);
    r = yield* seL4_Recv(u, ep, reply);
    assert.equal(r.info.length, 1);
    assert.equal(r.info.extraCaps, 0);
    assert.equal(r.info.capsUnwrapped, 0);
    expectMRs(1);
    seen.push("3");
    // 4: receive slot occupied; [badged cap to this endpoint, notification]: unwrapped, then stop.
    r = yield* seL4_Recv(u, ep, reply);
    assert.equal(r.info.extraCaps, 1);
    assert.equal(r.info.capsUnwrapped, 0b001);
    assert.equal(seL4_GetBadgeBig(u, 0), BADGE);
    seen.push("4");
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const ep2 = yield* a.alloc(u, ObjectType.Endpoint);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const faultEp = yield* a.alloc(u, ObjectType.Endpoint);
    const rootReply = yield* a.alloc(u, ObjectType.Reply);
    const ntfnB = yield* mint(u, a, ntfn, seL4_AllRights, NTFN_BADGE);
    const epB = yield* mint(u, a, ep, seL4_AllRights, BADGE);
    let h: Helper;
    if (interAS) {
      h = yield* makeHelper(u, a, true, receiver, faultEp, ep, seL4_CanRead, 0);
      recvCNode = PROC_SELF;
      slot1 = 20;
      slot2 = 21;
    } else {
      h = yield* makeHelper(u, a, false, receiver, faultEp, ep, seL4_CanRead, 0);
      recvCNode = seL4_CapInitThreadCNode;
      slot1 = a.slot();
      slot2 = a.slot();
    }
    yield* ok("start", startThread(u, h.tcb, receiver, [h.ep, h.reply]));
    const send = function* (caps: number[], len: number) {
      for (let i = 0; i < caps.length; i++) seL4_SetCap(u, i, caps[i]!);
      for (let i = 0; i < len; i++) seL4_SetMR(u, i, W64(BADGE + BigInt(i)));
      yield* seL4_Send(u, ep, tag(len, caps.length));
    };
    yield* send([epB, ntfnB, ep], 2);
    yield* send([ep2, ntfnB], 0);
    yield* send([ntfnB, epB], 1);
    yield* send([epB, ntfnB], 0);
    yield* waitExits(u, faultEp, rootReply, 1);
    assert.deepEqual(seen, ["1", "2", "3", "4"]);
    // The notification cap the receiver got (and signalled) is the badged one.
    const p = yield* seL4_Poll(u, ntfn);
    assert.equal(p.senderBig, NTFN_BADGE);
    // Kernel view of the receive slots: a notification cap, then a cap to the other endpoint.
    const cn = (interAS ? objAt(k, h.cnode) : k.rootCNode) as CNodeObj;
    assert.equal(cn.slot(slot1).cap.type, CapType.Notification);
    assert.equal(cn.slot(slot1).cap.obj, objAt(k, ntfn));
    assert.equal(cn.slot(slot2).cap.type, CapType.Endpoint);
    assert.equal(cn.slot(slot2).cap.obj, objAt(k, ep2));
    done = true;
  });
  runToEnd(env, () => done);
}

/** A length field above seL4_MsgMaxLength is clamped to it: 120 words arrive. */
function truncatedLength(): void {
  const env = boot();
  const { k, m } = env;
  let got = -1;
  const receiver = m.program(function* (u, ep, reply) {
    const r = yield* seL4_Recv(u, ep, reply);
    got = r.info.length;
    for (let i = 0; i < MSG_MAX_LENGTH; i++) assert.equal(seL4_GetMRBig(u, i), BIT63 | BigInt(i));
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    yield* createThread(u, a, { entry: receiver, args: [ep, reply] });
    for (let i = 0; i < MSG_MAX_LENGTH; i++) seL4_SetMR(u, i, BIT63 | BigInt(i));
    yield* seL4_Send(u, ep, seL4_MessageInfo_new(1, 0, 0, 127));
    done = true;
  });
  runToEnd(env, () => done);
  assert.equal(got, MSG_MAX_LENGTH);
}

// ---------------------------------------------------------------- IPC0010

/**
 * A caller suspended while its Call waits for the reply leaves the call: it is Inactive and off
 * the Reply object, so the server's reply goes nowhere and the server is free. Resumed, the caller
 * restarts its Call (the syscall re-executes: the server receives the same message again).
 * Suspended while still queued on the endpoint, it leaves the queue.
 */
conformance("IPC0010", () => {
  const env = boot();
  const { k, m } = env;
  const BADGE = BIT63 | 0xca11n;
  const replies: bigint[] = [];
  const caller = m.program(function* (u, ep) {
    for (let i = 0; i < 3; i++) seL4_SetMR(u, i, W64(BADGE + BigInt(i)));
    const r = yield* seL4_Call(u, ep, tag(3));
    replies.push(BigInt(r.label), seL4_GetMRBig(u, 0));
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const callerEp = yield* mint(u, a, ep, seL4_AllRights, BADGE);
    const c = yield* createThread(u, a, { entry: caller, args: [callerEp], priority: 100 });
    const ct = tcbAt(k, c.tcb);
    const epObj = objAt(k, ep) as Endpoint;
    const replyObj = objAt(k, reply) as Reply;
    const expectCall = (r: RecvResult) => {
      assert.equal(r.senderBig, BADGE);
      assert.equal(r.info.length, 3);
      assert.equal(r.info.label, 0xabc03);
      for (let i = 0; i < 3; i++) assert.equal(seL4_GetMRBig(u, i), W64(BADGE + BigInt(i)));
    };
    // The caller runs when the server (us) blocks; its Call gets to us.
    expectCall(yield* seL4_Recv(u, ep, reply));
    assert.equal(ct.state, ThreadState.BlockedOnReply);
    assert.equal(replyObj.tcb, ct);
    // Suspend mid-Call.
    yield* ok("Suspend", seL4_TCB_Suspend(u, c.tcb));
    assert.equal(ct.state, ThreadState.Inactive);
    assert.equal(replyObj.tcb, null);
    assert.equal(ct.reply, null);
    assert.equal(k.rootThread.state, ThreadState.Running);
    // Replying now reaches nobody.
    seL4_SetMR(u, 0, 0xdeadn);
    yield* seL4_Send(u, reply, tag(1));
    assert.equal(ct.state, ThreadState.Inactive);
    assert.deepEqual(replies, []);
    // Resume: the Call restarts and reaches the server again, with the same message.
    yield* ok("Resume", seL4_TCB_Resume(u, c.tcb));
    assert.equal(ct.state, ThreadState.Restart);
    expectCall(yield* seL4_Recv(u, ep, reply));
    assert.equal(ct.state, ThreadState.BlockedOnReply);
    // Suspend again, for good measure: Inactive, and the endpoint and reply are clean.
    yield* ok("Suspend", seL4_TCB_Suspend(u, c.tcb));
    assert.equal(ct.state, ThreadState.Inactive);
    assert.equal(replyObj.tcb, null);
    assert.equal(epObj.state, EndpointState.Idle);
    // Resume once more, and suspend while the Call is still queued on the endpoint.
    yield* ok("Resume", seL4_TCB_Resume(u, c.tcb));
    yield* ok("prio", seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 50));
    // We ran again only because the caller blocked: it is queued on the endpoint.
    assert.equal(ct.state, ThreadState.BlockedOnSend);
    assert.equal(epObj.state, EndpointState.Send);
    assert.equal(epObj.qHead, ct);
    yield* ok("Suspend", seL4_TCB_Suspend(u, c.tcb));
    assert.equal(ct.state, ThreadState.Inactive);
    assert.equal(epObj.state, EndpointState.Idle);
    assert.equal(epObj.qHead, null);
    const nb = yield* seL4_NBRecv(u, ep, reply);
    assert.equal(nb.senderBig, 0n);
    // The server still serves: a fresh Call completes with its reply.
    yield* ok("Resume", seL4_TCB_Resume(u, c.tcb));
    expectCall(yield* seL4_Recv(u, ep, reply));
    seL4_SetMR(u, 0, BIT63 | 7n);
    yield* seL4_Send(u, reply, seL4_MessageInfo_new(0x77, 0, 0, 1));
    yield* ok("prio", seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 10));
    assert.deepEqual(replies, [0x77n, BIT63 | 7n]);
    // Delete the caller's TCB (cleanup_helper).
    yield* ok("Delete", seL4_CNode_Delete(u, seL4_CapInitThreadCNode, c.tcb, 64));
    done = true;
  });
  runToEnd(env, () => done);
});

// ---------------------------------------------------------------- IPCRIGHTS

const RIGHTS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const has = (r: number, bit: number) => (r & bit) !== 0;

/**
 * Send and NBSend on an endpoint cap without Write do nothing (no error, no blocking, nothing
 * queued); Call on it fails with InvalidCapability (cap 0). The receiver gets only messages sent
 * through caps with Write.
 */
conformance("IPCRIGHTS0001", () => {
  const env = boot();
  const { k, m } = env;
  const got: bigint[] = [];
  const receiver = m.program(function* (u, ep, reply) {
    for (;;) {
      const r = yield* seL4_Recv(u, ep, reply);
      got.push(r.senderBig, seL4_GetMRBig(u, 0));
    }
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const epObj = objAt(k, ep) as Endpoint;
    for (const rights of RIGHTS.filter((r) => !has(r, seL4_CanWrite))) {
      const cap = yield* mint(u, a, ep, rights, BigInt(rights + 1));
      seL4_SetMR(u, 0, 0xbadn);
      yield* seL4_Send(u, cap, tag(1));
      assert.equal(epObj.state, EndpointState.Idle, `Send without Write (rights ${rights}) queued`);
      yield* seL4_NBSend(u, cap, tag(1));
      assert.equal(epObj.state, EndpointState.Idle);
      seL4_SetMR(u, 0, 0xbadn);
      const info = yield* seL4_Call(u, cap, tag(1));
      assert.equal(info.label, SeL4Error.InvalidCapability, `Call without Write (rights ${rights})`);
      assert.equal(seL4_GetMR(u, 0), 0, "invalid cap index");
      assert.equal(epObj.state, EndpointState.Idle);
    }
    yield* createThread(u, a, { entry: receiver, args: [ep, reply] });
    for (const rights of RIGHTS.filter((r) => has(r, seL4_CanWrite))) {
      const cap = yield* mint(u, a, ep, rights, BIT63 | BigInt(rights));
      seL4_SetMR(u, 0, 0x600dn + BigInt(rights));
      yield* seL4_Send(u, cap, tag(1));
    }
    // Let the receiver take the last one.
    yield* ok("prio", seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 50));
    done = true;
  });
  runToEnd(env, () => done);
  const expected: bigint[] = [];
  for (const r of RIGHTS.filter((x) => has(x, seL4_CanWrite)))
    expected.push(BIT63 | BigInt(r), 0x600dn + BigInt(r));
  assert.deepEqual(got, expected);
});

/**
 * Recv on an endpoint cap without Read raises a cap fault in the receive phase (MissingCapability,
 * no bits left); the thread is not queued. With Read it receives.
 */
conformance("IPCRIGHTS0002", () => {
  const env = boot();
  const { k, m } = env;
  const got: bigint[] = [];
  const receiver = m.program(function* (u, ep, reply) {
    yield* seL4_Recv(u, ep, reply);
    got.push(seL4_GetMRBig(u, 0));
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const faultEp = yield* a.alloc(u, ObjectType.Endpoint);
    const rootReply = yield* a.alloc(u, ObjectType.Reply);
    const epObj = objAt(k, ep) as Endpoint;
    for (const rights of RIGHTS) {
      const cap = yield* mint(u, a, ep, rights, 0);
      const reply = yield* a.alloc(u, ObjectType.Reply);
      const h = yield* createThread(u, a, { entry: receiver, args: [cap, reply], faultEp });
      if (has(rights, seL4_CanRead)) {
        seL4_SetMR(u, 0, BIT63 | BigInt(rights));
        // The receiver is not waiting yet: we block until it receives.
        yield* seL4_Send(u, ep, tag(1));
        yield* waitExits(u, faultEp, rootReply, 1);
        assert.equal(got.at(-1), BIT63 | BigInt(rights));
      } else {
        const r = yield* seL4_Recv(u, faultEp, rootReply);
        assert.equal(r.info.label, FaultType.CapFault, `Recv without Read (rights ${rights})`);
        assert.equal(r.info.length, 5);
        assert.equal(seL4_GetMR(u, 1), cap, "fault address: the cptr");
        assert.equal(seL4_GetMR(u, 2), 1, "in receive phase");
        assert.equal(seL4_GetMR(u, 3), LookupFailure.MissingCapability);
        assert.equal(seL4_GetMR(u, 4), 0, "bits left");
        assert.equal(epObj.state, EndpointState.Idle);
        assert.equal(tcbAt(k, h.tcb).state, ThreadState.BlockedOnReply);
      }
    }
    assert.equal(got.length, 8);
    done = true;
  });
  runToEnd(env, () => done);
});

/**
 * Caps travel only through a cap with Grant: without it the message arrives with extraCaps = 0,
 * nothing unwrapped and the receive slot empty; with it the notification lands in the receive
 * slot and the cap to the same endpoint is unwrapped.
 */
conformance("IPCRIGHTS0003", () => {
  const env = boot();
  const { k, m } = env;
  const writeRights = RIGHTS.filter((r) => has(r, seL4_CanWrite));
  const slots: number[] = [];
  const log: { extraCaps: number; unwrapped: number; mr0: bigint; badge1: bigint }[] = [];
  const receiver = m.program(function* (u, ep, reply) {
    for (let i = 0; i < writeRights.length; i++) {
      seL4_SetCapReceivePath(u, seL4_CapInitThreadCNode, slots[i]!, 64);
      const r = yield* seL4_Recv(u, ep, reply);
      log.push({
        extraCaps: r.info.extraCaps,
        unwrapped: r.info.capsUnwrapped,
        mr0: seL4_GetMRBig(u, 0),
        badge1: r.info.capsUnwrapped !== 0 ? seL4_GetBadgeBig(u, 1) : -1n,
      });
    }
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const faultEp = yield* a.alloc(u, ObjectType.Endpoint);
    const rootReply = yield* a.alloc(u, ObjectType.Reply);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const epBadged = yield* mint(u, a, ep, seL4_AllRights, BIT63 | 0x42n);
    for (let i = 0; i < writeRights.length; i++) slots.push(a.slot());
    yield* createThread(u, a, { entry: receiver, args: [ep, reply], faultEp });
    for (const rights of writeRights) {
      const cap = yield* mint(u, a, ep, rights, 0);
      seL4_SetCap(u, 0, ntfn);
      seL4_SetCap(u, 1, epBadged);
      seL4_SetMR(u, 0, BigInt(rights));
      yield* seL4_Send(u, cap, tag(1, 2));
    }
    yield* waitExits(u, faultEp, rootReply, 1);
    writeRights.forEach((rights, i) => {
      const grant = has(rights, seL4_CanGrant);
      assert.deepEqual(
        log[i],
        grant
          ? { extraCaps: 2, unwrapped: 0b10, mr0: BigInt(rights), badge1: BIT63 | 0x42n }
          : { extraCaps: 0, unwrapped: 0, mr0: BigInt(rights), badge1: -1n },
        `rights ${rights}`,
      );
      const s = k.rootCNode.slot(slots[i]!).cap;
      assert.equal(s.type, grant ? CapType.Notification : CapType.Null, `receive slot, rights ${rights}`);
      if (grant) assert.equal(s.obj, objAt(k, ntfn));
    });
    done = true;
  });
  runToEnd(env, () => done);
});

/**
 * Call through a cap with Grant or GrantReply blocks the caller on the server's Reply object until
 * the reply; without either the message is delivered and the caller becomes Inactive (nothing to
 * reply to). Both when the server waits first and when the caller is queued first.
 */
conformance("IPCRIGHTS0004", () => {
  const env = boot();
  const { k, m } = env;
  const replies: bigint[] = [];
  const caller = m.program(function* (u, cap, id) {
    seL4_SetMR(u, 0, BigInt(id));
    const r = yield* seL4_Call(u, cap, tag(1));
    replies.push(BigInt(id), BigInt(r.label), seL4_GetMRBig(u, 0));
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const replyObj = objAt(k, reply) as Reply;
    yield* ok("prio", seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 200));
    let id = 0;
    for (const serverFirst of [true, false]) {
      for (const rights of RIGHTS.filter((r) => has(r, seL4_CanWrite))) {
        id++;
        const cap = yield* mint(u, a, ep, rights, BIT63 | BigInt(id));
        const canReply = has(rights, seL4_CanGrant) || has(rights, seL4_CanGrantReply);
        // serverFirst: the caller is below us and runs when we block in Recv. Otherwise it is
        // above us, runs at once and queues its Call before we receive.
        const c = yield* createThread(u, a, {
          entry: caller,
          args: [cap, id],
          priority: serverFirst ? 100 : 254,
          mcp: 254,
        });
        const ct = tcbAt(k, c.tcb);
        if (!serverFirst) assert.equal(ct.state, ThreadState.BlockedOnSend);
        const r = yield* seL4_Recv(u, ep, reply);
        assert.equal(r.senderBig, BIT63 | BigInt(id));
        assert.equal(seL4_GetMRBig(u, 0), BigInt(id));
        const before = replies.length;
        if (canReply) {
          assert.equal(ct.state, ThreadState.BlockedOnReply, `rights ${rights}`);
          assert.equal(replyObj.tcb, ct);
        } else {
          assert.equal(ct.state, ThreadState.Inactive, `rights ${rights}`);
          assert.equal(replyObj.tcb, null);
        }
        seL4_SetMR(u, 0, BIT63 | 0x1000n | BigInt(id));
        yield* seL4_Send(u, reply, seL4_MessageInfo_new(0x55, 0, 0, 1));
        if (canReply) {
          // A caller above us ran at once; one below us runs later: check after the loop.
          if (!serverFirst)
            assert.deepEqual(replies.slice(before), [BigInt(id), 0x55n, BIT63 | 0x1000n | BigInt(id)]);
        } else {
          assert.equal(ct.state, ThreadState.Inactive);
          assert.equal(replies.length, before);
        }
      }
    }
    // Let the callers below us finish.
    yield* ok("prio", seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 50));
    const ids = RIGHTS.filter((r) => has(r, seL4_CanWrite));
    const expected: bigint[] = [];
    for (const serverFirst of [true, false]) {
      ids.forEach((rights, i) => {
        const rid = BigInt((serverFirst ? 0 : ids.length) + i + 1);
        if (has(rights, seL4_CanGrant) || has(rights, seL4_CanGrantReply)) {
          expected.push(rid, 0x55n, BIT63 | 0x1000n | rid);
        }
      });
    }
    const sortKey = (xs: bigint[]) => {
      const rows: bigint[][] = [];
      for (let i = 0; i < xs.length; i += 3) rows.push(xs.slice(i, i + 3));
      return rows.sort((p, q) => (p[0]! < q[0]! ? -1 : 1));
    };
    assert.deepEqual(sortKey(replies), sortKey(expected));
    done = true;
  });
  runToEnd(env, () => done);
});

/**
 * Under MCS a reply goes through a Reply object, and whether it may carry caps is the Grant right
 * of the Reply cap the server replies with (the MCS counterpart of the non-MCS rule that the reply
 * cap inherits the Grant right of the endpoint cap the server received on). The endpoint cap the
 * server received through does not matter. Both Send on the Reply cap and ReplyRecv.
 */
conformance("IPCRIGHTS0005", () => {
  const env = boot();
  const { k, m } = env;
  const slots: number[] = [];
  const log: number[] = [];
  const caller = m.program(function* (u, cap, n) {
    for (let i = 0; i < n; i++) {
      seL4_SetCapReceivePath(u, seL4_CapInitThreadCNode, slots[i]!, 64);
      seL4_SetMR(u, 0, i);
      const r = yield* seL4_Call(u, cap, tag(1));
      assert.equal(seL4_GetMR(u, 0), 1000 + i);
      log.push(r.extraCaps);
    }
    return 0;
  });
  let done = false;
  const cases: { epGrant: boolean; replyGrant: boolean; replyRecv: boolean }[] = [];
  for (const epGrant of [false, true])
    for (const replyGrant of [false, true])
      for (const replyRecv of [false, true]) cases.push({ epGrant, replyGrant, replyRecv });
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const replyNoGrant = yield* mint(u, a, reply, seL4_CanRead | seL4_CanWrite | seL4_CanGrantReply, 0);
    const recvGrant = yield* mint(u, a, ep, seL4_CanRead | seL4_CanGrant, 0);
    const recvNoGrant = yield* mint(u, a, ep, seL4_CanRead, 0);
    for (let i = 0; i < cases.length; i++) slots.push(a.slot());
    const callCap = yield* mint(u, a, ep, seL4_AllRights, 9);
    yield* createThread(u, a, { entry: caller, args: [callCap, cases.length] });
    let pending: { replyCap: number; i: number } | null = null;
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i]!;
      const recvCap = c.epGrant ? recvGrant : recvNoGrant;
      const replyCap = c.replyGrant ? reply : replyNoGrant;
      let r: RecvResult;
      if (pending !== null) {
        // Reply to the previous call with ReplyRecv through its Reply cap, receiving with this one.
        seL4_SetCap(u, 0, ntfn);
        seL4_SetMR(u, 0, 1000 + pending.i);
        assert.equal(pending.replyCap, replyCap, "ReplyRecv uses the same Reply cap for both phases");
        r = yield* seL4_ReplyRecv(u, recvCap, tag(1, 1), replyCap);
        pending = null;
      } else {
        r = yield* seL4_Recv(u, recvCap, replyCap);
      }
      assert.equal(r.sender, 9);
      assert.equal(seL4_GetMR(u, 0), i);
      const next = cases[i + 1];
      if (next?.replyRecv && next.replyGrant === c.replyGrant) {
        pending = { replyCap, i };
        continue;
      }
      seL4_SetCap(u, 0, ntfn);
      seL4_SetMR(u, 0, 1000 + i);
      yield* seL4_Send(u, replyCap, tag(1, 1));
    }
    yield* ok("prio", seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 50));
    assert.deepEqual(
      log,
      cases.map((c) => (c.replyGrant ? 1 : 0)),
    );
    cases.forEach((c, i) => {
      assert.equal(k.rootCNode.slot(slots[i]!).cap.type, c.replyGrant ? CapType.Notification : CapType.Null);
    });
    done = true;
  });
  runToEnd(env, () => done);
});

// ---------------------------------------------------------------- NBWAIT0001

/**
 * NBRecv returns at once: badge 0 with nothing pending; a signal pending on the bound notification
 * (its badge, exactly, bit 63 included); a queued sender's message (its badge and words).
 */
conformance("NBWAIT0001", () => {
  const env = boot();
  const { k, m } = env;
  const sender = m.program(function* (u, ep) {
    seL4_SetMR(u, 0, 0xdeadbeefn);
    yield* seL4_Send(u, ep, tag(1));
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    yield* ok("Bind", seL4_TCB_BindNotification(u, seL4_CapInitThreadTCB, ntfn));
    const epB = yield* mint(u, a, ep, seL4_AllRights, 1);
    const NB = BIT63 | 2n;
    const ntfnB = yield* mint(u, a, ntfn, seL4_AllRights, NB);
    let r = yield* seL4_NBRecv(u, ep, reply);
    assert.equal(r.senderBig, 0n);
    r = yield* seL4_Poll(u, ntfn);
    assert.equal(r.senderBig, 0n);
    yield* seL4_Signal(u, ntfnB);
    r = yield* seL4_Poll(u, ntfn);
    assert.equal(r.senderBig, NB);
    r = yield* seL4_Poll(u, ntfn);
    assert.equal(r.senderBig, 0n);
    yield* seL4_Signal(u, ntfnB);
    // Bound: NBRecv on the endpoint takes the pending signal.
    r = yield* seL4_NBRecv(u, ep, reply);
    assert.equal(r.senderBig, NB);
    r = yield* seL4_NBRecv(u, ep, reply);
    assert.equal(r.senderBig, 0n);
    // A sender queued on the endpoint.
    yield* createThread(u, a, { entry: sender, args: [epB], priority: 100 });
    yield* ok("prio", seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 99));
    assert.equal((objAt(k, ep) as Endpoint).state, EndpointState.Send);
    r = yield* seL4_NBRecv(u, ep, reply);
    assert.equal(r.senderBig, 1n);
    assert.equal(r.info.length, 1);
    assert.equal(seL4_GetMRBig(u, 0), 0xdeadbeefn);
    r = yield* seL4_NBRecv(u, ep, reply);
    assert.equal(r.senderBig, 0n);
    yield* ok("Unbind", seL4_TCB_UnbindNotification(u, seL4_CapInitThreadTCB));
    done = true;
  });
  runToEnd(env, () => done);
});

// ---------------------------------------------------------------- BIND

const NUM_RUNS = 10;
const ASYNC = BIT63 | 1n;
const SYNC = 2n;

function bindTest(waitOnEndpoint: boolean): void {
  const env = boot();
  const { k, m } = env;
  const senderSync = m.program(function* (u, ep, runs) {
    for (let i = 0; i < runs; i++) {
      seL4_SetMR(u, 0, i);
      yield* seL4_Send(u, ep, tag(1));
    }
    return 0;
  });
  const senderAsync = m.program(function* (u, ntfn, runs) {
    for (let i = 0; i < runs; i++) yield* seL4_Signal(u, ntfn);
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const ntfnB = yield* mint(u, a, ntfn, seL4_AllRights, ASYNC);
    const epB = yield* mint(u, a, ep, seL4_AllRights, SYNC);
    yield* ok("Bind", seL4_TCB_BindNotification(u, seL4_CapInitThreadTCB, ntfn));
    yield* createThread(u, a, { entry: senderAsync, args: [ntfnB, NUM_RUNS] });
    if (waitOnEndpoint) yield* createThread(u, a, { entry: senderSync, args: [epB, NUM_RUNS] });
    let nAsync = 0;
    let nSync = 0;
    const expectedSync: number[] = [];
    for (let i = 0; i < NUM_RUNS * (waitOnEndpoint ? 2 : 1); i++) {
      const r = yield* seL4_Wait(u, waitOnEndpoint ? ep : ntfn);
      if (r.senderBig === ASYNC) {
        // A signal sets only the badge register (seL4 completeSignal): no message to check.
        nAsync++;
      } else if (r.senderBig === SYNC) {
        assert.equal(r.info.length, 1);
        expectedSync.push(seL4_GetMR(u, 0));
        nSync++;
      } else assert.fail(`unexpected badge ${r.senderBig}`);
    }
    assert.equal(nAsync, NUM_RUNS);
    assert.equal(nSync, waitOnEndpoint ? NUM_RUNS : 0);
    assert.deepEqual(expectedSync, waitOnEndpoint ? Array.from({ length: NUM_RUNS }, (_, i) => i) : []);
    yield* ok("Unbind", seL4_TCB_UnbindNotification(u, seL4_CapInitThreadTCB));
    done = true;
  });
  runToEnd(env, () => done);
}

conformance("BIND0001", () => bindTest(true));
conformance("BIND0002", () => bindTest(false));

/** A bound waiter and a signaller at the given priorities: the wake-up order follows priority. */
function bindOrder(waiterPrio: number, senderPrio: number): string[] {
  const env = boot();
  const { k, m } = env;
  const log: string[] = [];
  const BADGE = BIT63 | 0x7n;
  const waiter = m.program(function* (u, ntfn) {
    log.push("wait");
    const r = yield* seL4_Wait(u, ntfn);
    assert.equal(r.senderBig, BADGE);
    log.push("woke");
    return 0;
  });
  const sender = m.program(function* (u, ntfn) {
    log.push("signal");
    yield* seL4_Signal(u, ntfn);
    log.push("signalled");
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const faultEp = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const ntfnB = yield* mint(u, a, ntfn, seL4_AllRights, BADGE);
    const w = yield* createThread(u, a, {
      entry: waiter,
      args: [ntfn],
      priority: waiterPrio,
      faultEp,
      resume: false,
    });
    yield* ok("Bind", seL4_TCB_BindNotification(u, w.tcb, ntfn));
    yield* ok("start", startThread(u, w.tcb, waiter, [ntfn]));
    yield* createThread(u, a, { entry: sender, args: [ntfnB], priority: senderPrio, faultEp });
    yield* waitExits(u, faultEp, reply, 2);
    assert.equal(tcbAt(k, w.tcb).boundNotification, objAt(k, ntfn));
    done = true;
  });
  runToEnd(env, () => done);
  return log;
}

conformance("BIND0003", () => {
  assert.deepEqual(bindOrder(10, 9), ["wait", "signal", "woke", "signalled"]);
});
conformance("BIND0004", () => {
  assert.deepEqual(bindOrder(9, 10), ["signal", "signalled", "wait", "woke"]);
});

// ---------------------------------------------------------------- REPLY

/**
 * A server holding two callers on two Reply objects replies to each through its own Reply: each
 * caller gets its own reply. A Reply that has been used holds no caller: replying through it again
 * delivers nothing. ReplyRecv reuses its Reply object for the next caller.
 */
conformance("REPLY0001", () => {
  const env = boot();
  const { k, m } = env;
  const log: string[] = [];
  const client = m.program(function* (u, ep, id, calls) {
    for (let i = 0; i < calls; i++) {
      seL4_SetMR(u, 0, id * 100 + i);
      const r = yield* seL4_Call(u, ep, tag(1));
      log.push(`${id}:${r.label}:${seL4_GetMR(u, 0)}`);
    }
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const r1 = yield* a.alloc(u, ObjectType.Reply);
    const r2 = yield* a.alloc(u, ObjectType.Reply);
    const epA = yield* mint(u, a, ep, seL4_AllRights, 1);
    const epB = yield* mint(u, a, ep, seL4_AllRights, 2);
    const A = yield* createThread(u, a, { entry: client, args: [epA, 1, 2] });
    const B = yield* createThread(u, a, { entry: client, args: [epB, 2, 1] });
    const tcbs = [null, tcbAt(k, A.tcb), tcbAt(k, B.tcb)];
    const x = yield* seL4_Recv(u, ep, r1);
    const xid = x.sender;
    assert.equal(seL4_GetMR(u, 0), xid * 100);
    const y = yield* seL4_Recv(u, ep, r2);
    const yid = y.sender;
    assert.equal(seL4_GetMR(u, 0), yid * 100);
    assert.deepEqual([xid, yid].sort(), [1, 2]);
    assert.equal((objAt(k, r1) as Reply).tcb, tcbs[xid]);
    assert.equal((objAt(k, r2) as Reply).tcb, tcbs[yid]);
    assert.equal(tcbs[xid]!.state, ThreadState.BlockedOnReply);
    // Reply to the second caller first, through r2.
    seL4_SetMR(u, 0, yid * 1000);
    yield* seL4_Send(u, r2, seL4_MessageInfo_new(yid, 0, 0, 1));
    assert.equal(tcbs[yid]!.state, ThreadState.Running);
    assert.equal((objAt(k, r2) as Reply).tcb, null);
    assert.equal(tcbs[xid]!.state, ThreadState.BlockedOnReply, "the other caller still waits");
    // r2 is used: a second reply through it goes nowhere (it must not overwrite the first).
    seL4_SetMR(u, 0, 666);
    yield* seL4_Send(u, r2, seL4_MessageInfo_new(66, 0, 0, 1));
    // ReplyRecv through r1: the first caller gets its reply, and r1 takes the next call.
    seL4_SetMR(u, 0, xid * 1000);
    const z = yield* seL4_ReplyRecv(u, ep, seL4_MessageInfo_new(xid, 0, 0, 1), r1);
    // Only client 1 calls twice.
    assert.equal(z.sender, 1);
    assert.equal(seL4_GetMR(u, 0), 101);
    assert.equal((objAt(k, r1) as Reply).tcb, tcbs[1]);
    seL4_SetMR(u, 0, 1001);
    yield* seL4_Send(u, r1, seL4_MessageInfo_new(1, 0, 0, 1));
    yield* seL4_Send(u, r1, seL4_MessageInfo_new(99, 0, 0, 1));
    yield* ok("prio", seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 50));
    done = true;
  });
  runToEnd(env, () => done);
  const sorted = [...log].sort();
  assert.deepEqual(sorted, ["1:1:1000", "1:1:1001", "2:2:2000"]);
});

/**
 * Deleting the Reply cap of a waiting caller cancels the call: the caller becomes Inactive (not
 * blocked on a reply that can never come), and resumed it calls again. Deleting the Reply cap of a
 * server waiting in Recv unlinks it: the next Call reaches the server without a Reply object, so
 * that caller cannot wait for a reply and becomes Inactive.
 */
conformance("REPLY0002", () => {
  const env = boot();
  const { k, m } = env;
  const log: string[] = [];
  const client = m.program(function* (u, ep, id) {
    seL4_SetMR(u, 0, id);
    const r = yield* seL4_Call(u, ep, tag(1));
    log.push(`client${id}:${r.label}:${seL4_GetMR(u, 0)}`);
    return 0;
  });
  const server = m.program(function* (u, ep, reply) {
    const r = yield* seL4_Recv(u, ep, reply);
    log.push(`server:${r.sender}:${seL4_GetMR(u, 0)}`);
    return 0;
  });
  const waitServer = m.program(function* (u, ep) {
    const r = yield* seL4_Wait(u, ep);
    log.push(`waitServer:${r.sender}:${seL4_GetMR(u, 0)}`);
    return 0;
  });
  let done = false;
  m.runRoot(function* (u) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const faultEp = yield* a.alloc(u, ObjectType.Endpoint);
    const rootReply = yield* a.alloc(u, ObjectType.Reply);
    const r1 = yield* a.alloc(u, ObjectType.Reply);
    const r2 = yield* a.alloc(u, ObjectType.Reply);
    const ep1 = yield* mint(u, a, ep, seL4_AllRights, 1);
    const c = yield* createThread(u, a, { entry: client, args: [ep1, 1] });
    const ct = tcbAt(k, c.tcb);
    const x = yield* seL4_Recv(u, ep, r1);
    assert.equal(x.sender, 1);
    assert.equal(ct.state, ThreadState.BlockedOnReply);
    yield* ok("Delete reply", seL4_CNode_Delete(u, seL4_CapInitThreadCNode, r1, 64));
    assert.equal(ct.state, ThreadState.Inactive);
    assert.equal(ct.reply, null);
    // Resumed, the client calls again; this time it is answered.
    yield* ok("Resume", seL4_TCB_Resume(u, c.tcb));
    const y = yield* seL4_Recv(u, ep, r2);
    assert.equal(y.sender, 1);
    assert.equal(seL4_GetMR(u, 0), 1);
    seL4_SetMR(u, 0, 4242);
    yield* seL4_Send(u, r2, seL4_MessageInfo_new(3, 0, 0, 1));
    assert.equal(ct.state, ThreadState.Running);

    // A server waiting in Recv loses its Reply object: it is taken out of its Recv (Inactive, off
    // the endpoint), as it could not take a call. (We drop below it so that it runs now.)
    yield* ok("prio", seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 180));
    const r3 = yield* a.alloc(u, ObjectType.Reply);
    const s = yield* createThread(u, a, { entry: server, args: [ep, r3], priority: 200, faultEp });
    const st = tcbAt(k, s.tcb);
    const epObj = objAt(k, ep) as Endpoint;
    assert.equal(st.state, ThreadState.BlockedOnReceive);
    assert.equal(st.reply, objAt(k, r3));
    assert.equal(epObj.qHead, st);
    yield* ok("Delete server reply", seL4_CNode_Delete(u, seL4_CapInitThreadCNode, r3, 64));
    assert.equal(st.state, ThreadState.Inactive);
    assert.equal(st.reply, null);
    assert.equal(epObj.state, EndpointState.Idle);
    // A Call reaching a server that waits without a Reply object delivers the message, but the
    // caller has nothing to wait on: it becomes Inactive.
    yield* createThread(u, a, { entry: waitServer, args: [ep], priority: 200, faultEp });
    const ep2 = yield* mint(u, a, ep, seL4_AllRights, 2);
    const d = yield* createThread(u, a, { entry: client, args: [ep2, 2], priority: 150 });
    yield* waitExits(u, faultEp, rootReply, 1);
    assert.equal(tcbAt(k, d.tcb).state, ThreadState.Inactive);
    yield* ok("prio", seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 50));
    done = true;
  });
  runToEnd(env, () => done);
  assert.deepEqual(log, ["waitServer:2:2", "client1:3:4242"]);
});
