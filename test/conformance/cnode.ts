/**
 * Conformance tests of the CNode invocations, CSpace addressing, Untyped_Retype, badged-send
 * cancellation, revoke preemption and the trivial framework rows (sel4test cnodeops.c, cspace.c,
 * inc_untyped.c, endpoints.c, preempt.c, trivial.c), written from the rows' intent and the seL4
 * reference manual. Every test boots its own kernel and checks the invariants after each entry.
 *
 * What a user observes is asserted exactly: error codes and their message-register payloads,
 * badges and messages received, thread states, and the contents of slots (the kernel state that
 * is the observable effect of a capability operation).
 */
import assert from "node:assert/strict";
import { bootKernel } from "../../src/kernel/core/boot.js";
import { checkInvariants } from "../../src/kernel/invariants.js";
import type { Kernel } from "../../src/kernel/state.js";
import type { Cap, CNodeObj, Endpoint, TCB } from "../../src/kernel/structures.js";
import {
  CapType,
  LookupFailure,
  ObjectType,
  PAGE_BITS,
  RETYPE_FAN_OUT_LIMIT,
  RIGHT_READ,
  RIGHT_WRITE,
  SeL4Error,
  TCB_BITS,
  ThreadState,
} from "../../src/kernel/types.js";
import { Allocator, createThread } from "../../src/pd/alloc.js";
import {
  readInfoReg,
  type Sel4Gen,
  seL4_AllRights,
  seL4_Call,
  seL4_CanGrant,
  seL4_CanRead,
  seL4_CanWrite,
  seL4_CapInitThreadCNode,
  seL4_CapInitThreadTCB,
  seL4_CapInitThreadVSpace,
  seL4_CapIRQControl,
  seL4_DebugPutString,
  seL4_GetMR,
  seL4_MessageInfo_get_label,
  seL4_MessageInfo_get_length,
  seL4_MessageInfo_new,
  seL4_ReadWrite,
  seL4_Recv,
  seL4_ReplyRecv,
  seL4_Send,
  seL4_SetMR,
  seL4_Signal,
  seL4_Wait,
  type Word,
} from "../../src/pd/libsel4.js";
import {
  seL4_ARM_Page_GetAddress,
  seL4_CNode_CancelBadgedSends,
  seL4_CNode_Copy,
  seL4_CNode_Delete,
  seL4_CNode_Mint,
  seL4_CNode_Move,
  seL4_CNode_Mutate,
  seL4_CNode_Revoke,
  seL4_CNode_Rotate,
  seL4_IRQControl_Get,
  seL4_IRQHandler_Ack,
  seL4_IRQHandler_SetNotification,
  seL4_TCB_SetPriority,
  seL4_TCB_SetSpace,
  seL4_TCB_Suspend,
  seL4_Untyped_Retype,
} from "../../src/pd/libsel4-invocations.js";
import { Machine, type UserThread } from "../../src/pd/machine.js";
import { conformance } from "./rows.js";

const R = seL4_CapInitThreadCNode;
const W = 64;
const E = SeL4Error;

type RootBody = (u: UserThread, a: Allocator, k: Kernel, m: Machine) => Sel4Gen<void>;

/** Boot a kernel, run `body` as the root task to completion (it must finish), checking invariants. */
function rootTest(body: RootBody, maxSteps = 200_000, setup?: (m: Machine) => void): Machine {
  const k = bootKernel();
  const m = new Machine(k, { afterEachEntry: (kk) => checkInvariants(kk) });
  setup?.(m);
  let finished = false;
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    yield* body(u, a, k, m);
    finished = true;
  });
  const r = m.run({ maxSteps });
  assert.equal(finished, true, `the root task finished (run stopped: ${r.reason})`);
  return m;
}

/** The cap in slot `cptr` of the root CNode. */
function capAt(k: Kernel, cptr: number): Cap {
  return k.rootCNode.slot(cptr).cap;
}
function isEmpty(k: Kernel, cptr: number): boolean {
  return capAt(k, cptr).type === CapType.Null;
}
function tcbOf(k: Kernel, cptr: number): TCB {
  return capAt(k, cptr).obj as TCB;
}
/** The error reply's message registers MR0..n-1 (the stub copied MR0..3 to the IPC buffer). */
function mrs(u: UserThread, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(seL4_GetMR(u, i));
  return out;
}
/** Length of the last reply's message (the error payload's length). */
function replyLength(u: UserThread): number {
  return readInfoReg(u.tcb).length;
}

// Root-CNode wrappers: every address is a full 64-bit cptr of the root CSpace.
function copy(u: UserThread, src: Word, dest: Word, rights: number): Sel4Gen<SeL4Error> {
  return seL4_CNode_Copy(u, R, dest, W, R, src, W, rights);
}
function mint(u: UserThread, src: Word, dest: Word, rights: number, badge: Word): Sel4Gen<SeL4Error> {
  return seL4_CNode_Mint(u, R, dest, W, R, src, W, rights, badge);
}
function move(u: UserThread, src: Word, dest: Word): Sel4Gen<SeL4Error> {
  return seL4_CNode_Move(u, R, dest, W, R, src, W);
}
function mutate(u: UserThread, src: Word, dest: Word, data: Word): Sel4Gen<SeL4Error> {
  return seL4_CNode_Mutate(u, R, dest, W, R, src, W, data);
}
/** dest <- pivot <- src; destData updates the cap moving to dest (the pivot's), pivotData the src cap. */
function rotate(
  u: UserThread,
  src: Word,
  pivot: Word,
  dest: Word,
  destData: Word = 0,
  pivotData: Word = 0,
): Sel4Gen<SeL4Error> {
  return seL4_CNode_Rotate(u, R, dest, W, destData, R, pivot, W, pivotData, R, src, W);
}
function del(u: UserThread, slot: Word): Sel4Gen<SeL4Error> {
  return seL4_CNode_Delete(u, R, slot, W);
}
function revoke(u: UserThread, slot: Word): Sel4Gen<SeL4Error> {
  return seL4_CNode_Revoke(u, R, slot, W);
}
function cancelBadged(u: UserThread, slot: Word): Sel4Gen<SeL4Error> {
  return seL4_CNode_CancelBadgedSends(u, R, slot, W);
}
/** Retype `n` objects into root-CNode slots [offset, offset + n). */
function retype(
  u: UserThread,
  ut: Word,
  type: ObjectType,
  sizeBits: number,
  offset: number,
  n: number,
): Sel4Gen<SeL4Error> {
  return seL4_Untyped_Retype(u, ut, type, sizeBits, R, 0, 0, offset, n);
}
/** seL4_CNode_CapData_new(guard, guardSize). */
function cnodeData(guard: number, guardSize: number): number {
  return guard * 64 + guardSize;
}
/** Lower the root task below the helpers (100) so that a helper runs as soon as it is runnable. */
function* lowerRoot(u: UserThread, prio = 50): Sel4Gen<void> {
  assert.equal(yield* seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, prio), E.NoError);
}
/** n consecutive fresh slots of the root CNode; returns the first. */
function slots(a: Allocator, n: number): number {
  const first = a.slot();
  for (let i = 1; i < n; i++) assert.equal(a.slot(), first + i);
  return first;
}

/** Assert a FailedLookup error: MR0 = source?, MR1 = failure type, then its details (exact length). */
function assertFailedLookup(u: UserThread, err: SeL4Error, payload: number[]): void {
  assert.equal(err, E.FailedLookup);
  assert.equal(replyLength(u), payload.length, "FailedLookup payload length");
  assert.deepEqual(mrs(u, payload.length), payload);
}
function assertRangeError(u: UserThread, err: SeL4Error, min: number, max: number): void {
  assert.equal(err, E.RangeError);
  assert.equal(replyLength(u), 2);
  assert.deepEqual(mrs(u, 2), [min, max]);
}

// ---------------------------------------------------------------------------------------------
// CNode operations
// ---------------------------------------------------------------------------------------------

conformance("CNODEOP0001", () => {
  rootTest(function* (u, a, k) {
    // A copy that succeeds names the same object.
    const tcb = yield* a.alloc(u, ObjectType.TCB);
    const dest = a.slot();
    assert.equal(isEmpty(k, dest), true);
    assert.equal(yield* copy(u, tcb, dest, seL4_AllRights), E.NoError);
    assert.equal(capAt(k, dest).type, CapType.Thread);
    assert.equal(capAt(k, dest).obj, capAt(k, tcb).obj);
    assert.equal(yield* seL4_TCB_Suspend(u, dest), E.NoError, "the copy is a working TCB cap");

    // Copy to an occupied slot.
    const tcb2 = yield* a.alloc(u, ObjectType.TCB);
    assert.equal(yield* copy(u, tcb, tcb2, seL4_AllRights), E.DeleteFirst);
    assert.equal(capAt(k, tcb2).obj, tcbOf(k, tcb2));
    assert.notEqual(tcbOf(k, tcb2), tcbOf(k, tcb));
    // From a free slot to an occupied slot: the destination is checked first.
    const free1 = a.slot();
    assert.equal(yield* copy(u, free1, tcb2, seL4_AllRights), E.DeleteFirst);
    // From a free slot to a free slot: the source lookup finds no cap.
    const free2 = a.slot();
    const err = yield* copy(u, free1, free2, seL4_AllRights);
    assertFailedLookup(u, err, [1, LookupFailure.MissingCapability, W]);
    assert.equal(isEmpty(k, free2), true);

    // Depth out of range for the destination.
    assertRangeError(u, yield* seL4_CNode_Copy(u, R, free2, 0, R, tcb, W, seL4_AllRights), 1, W);
    assertRangeError(u, yield* seL4_CNode_Copy(u, R, free2, 65, R, tcb, W, seL4_AllRights), 1, W);

    // Rights are masked, never gained: a read-only copy stays read-only.
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    assert.equal(capAt(k, ep).rights, seL4_AllRights);
    const ro = a.slot();
    assert.equal(yield* copy(u, ep, ro, seL4_CanRead), E.NoError);
    assert.equal(capAt(k, ro).rights, RIGHT_READ);
    const ro2 = a.slot();
    assert.equal(yield* copy(u, ro, ro2, seL4_AllRights), E.NoError);
    assert.equal(capAt(k, ro2).rights, RIGHT_READ);
    // Without full rights CancelBadgedSends is refused, with them it is allowed.
    assert.equal(yield* cancelBadged(u, ro2), E.IllegalOperation);
    assert.equal(yield* cancelBadged(u, ep), E.NoError);
    // A notification has no Grant right to copy.
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const nc = a.slot();
    assert.equal(yield* copy(u, ntfn, nc, seL4_CanGrant | seL4_CanWrite), E.NoError);
    assert.equal(capAt(k, nc).rights, RIGHT_WRITE);

    // A copy of a badged cap keeps the badge and is a child of the badged original.
    const badged = a.slot();
    assert.equal(yield* mint(u, ep, badged, seL4_AllRights, 42), E.NoError);
    const bcopy = a.slot();
    assert.equal(yield* copy(u, badged, bcopy, seL4_AllRights), E.NoError);
    assert.equal(capAt(k, bcopy).badgeLo, 42);
    assert.equal(yield* revoke(u, badged), E.NoError);
    assert.equal(isEmpty(k, bcopy), true, "revoking the badged original deleted its copy");
    assert.equal(capAt(k, badged).badgeLo, 42);
    assert.equal(capAt(k, ro).type, CapType.Endpoint, "copies of the unbadged cap are untouched");

    // Untyped caps derive only while they have no children.
    const ut = yield* a.alloc(u, ObjectType.Untyped, 12);
    const utCopy = a.slot();
    assert.equal(yield* copy(u, ut, utCopy, seL4_AllRights), E.NoError);
    assert.equal(capAt(k, utCopy).type, CapType.Untyped);
    // ut now has a child (the copy): it may not be derived again.
    const utCopy2 = a.slot();
    assert.equal(yield* copy(u, ut, utCopy2, seL4_AllRights), E.RevokeFirst);
    assert.equal(yield* mint(u, ut, utCopy2, seL4_AllRights, 0), E.RevokeFirst);
    assert.equal(isEmpty(k, utCopy2), true);
    // A child untyped covering the whole parent marks the parent full.
    const obj = a.slot();
    let e = yield* retype(u, ut, ObjectType.Endpoint, 0, obj, 1);
    assert.equal(e, E.NotEnoughMemory);
    assert.deepEqual(mrs(u, 1), [0]);
    assert.equal(yield* retype(u, utCopy, ObjectType.Endpoint, 0, obj, 1), E.NoError);
    assert.equal(yield* copy(u, utCopy, utCopy2, seL4_AllRights), E.RevokeFirst);
    // After a revoke the untyped is childless and derives again.
    assert.equal(yield* revoke(u, ut), E.NoError);
    assert.equal(isEmpty(k, utCopy), true);
    assert.equal(isEmpty(k, obj), true);
    assert.equal(yield* copy(u, ut, utCopy2, seL4_AllRights), E.NoError);

    // IRQControl never derives.
    const irqc = a.slot();
    assert.equal(yield* copy(u, seL4_CapIRQControl, irqc, seL4_AllRights), E.IllegalOperation);
    assert.equal(isEmpty(k, irqc), true);
    e = yield* copy(u, seL4_CapInitThreadTCB, irqc, seL4_AllRights);
    assert.equal(e, E.NoError);
  });
});

conformance("CNODEOP0002", () => {
  const labels: number[] = [];
  rootTest(function* (u, a, k, m) {
    // A delete that succeeds empties the slot.
    const tcb = yield* a.alloc(u, ObjectType.TCB);
    assert.equal(yield* del(u, tcb), E.NoError);
    assert.equal(isEmpty(k, tcb), true);
    // Deleting a free slot succeeds and leaves it free.
    const free = a.slot();
    assert.equal(yield* del(u, free), E.NoError);
    assert.equal(isEmpty(k, free), true);

    // Deleting an original that has a child: the child stays and the object lives on.
    yield* lowerRoot(u);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const child = a.slot();
    assert.equal(yield* copy(u, ep, child, seL4_AllRights), E.NoError);
    const caller = m.program(function* (hu: UserThread, cptr: number) {
      const info = yield* seL4_Call(hu, cptr, seL4_MessageInfo_new(0, 0, 0, 0));
      labels.push(seL4_MessageInfo_get_label(info));
    });
    const h = yield* createThread(u, a, { entry: caller, args: [child], priority: 100 });
    const t = tcbOf(k, h.tcb);
    assert.equal(t.state, ThreadState.BlockedOnSend, "the helper called and waits on the endpoint");
    const epObj = capAt(k, ep).obj;
    assert.equal(yield* del(u, ep), E.NoError);
    assert.equal(isEmpty(k, ep), true);
    assert.equal(capAt(k, child).type, CapType.Endpoint);
    assert.equal(capAt(k, child).obj, epObj);
    assert.equal(t.state, ThreadState.BlockedOnSend, "a non-final delete leaves the IPC alone");
    assert.deepEqual(labels, []);
    // Deleting the last cap destroys the endpoint: the caller restarts, and its Call now names an
    // empty slot.
    assert.equal(yield* del(u, child), E.NoError);
    assert.equal(isEmpty(k, child), true);
    assert.deepEqual(labels, [E.InvalidCapability]);
    assert.equal(epObj?.live, false);
  });
});

conformance("CNODEOP0003", () => {
  const BADGE = 0xfedc_ba98_7654_3210n;
  const got: { badge: bigint; mr0: number }[] = [];
  rootTest(function* (u, a, k, m) {
    // A mint with no data names the same object.
    const tcb = yield* a.alloc(u, ObjectType.TCB);
    const dest = a.slot();
    assert.equal(yield* mint(u, tcb, dest, seL4_AllRights, 0), E.NoError);
    assert.equal(capAt(k, dest).obj, capAt(k, tcb).obj);
    // To an occupied slot.
    const tcb2 = yield* a.alloc(u, ObjectType.TCB);
    assert.equal(yield* mint(u, tcb, tcb2, seL4_AllRights, 0), E.DeleteFirst);
    // From an empty slot.
    const f1 = a.slot();
    const f2 = a.slot();
    assertFailedLookup(u, yield* mint(u, f1, f2, seL4_AllRights, 0), [1, LookupFailure.MissingCapability, W]);
    assert.equal(isEmpty(k, f2), true);

    // A 64-bit badge, seen by the receiver.
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const badged = a.slot();
    assert.equal(yield* mint(u, ep, badged, seL4_AllRights, BADGE), E.NoError);
    const sender = m.program(function* (hu: UserThread, cptr: number) {
      seL4_SetMR(hu, 0, 0x77);
      yield* seL4_Send(hu, cptr, seL4_MessageInfo_new(0, 0, 0, 1));
    });
    yield* createThread(u, a, { entry: sender, args: [badged], priority: 100 });
    const r = yield* seL4_Wait(u, ep);
    got.push({ badge: r.senderBig, mr0: seL4_GetMR(u, 0) });
    assert.deepEqual(got, [{ badge: BADGE, mr0: 0x77 }]);

    // The badge is set once: minting from a badged cap is refused, whatever the new badge.
    const again = a.slot();
    assert.equal(yield* mint(u, badged, again, seL4_AllRights, 9), E.IllegalOperation);
    assert.equal(yield* mint(u, badged, again, seL4_AllRights, 0), E.IllegalOperation);
    assert.equal(isEmpty(k, again), true);
    // A copy of it keeps the badge; the freshly minted cap is an original: Revoke deletes the copy.
    assert.equal(yield* copy(u, badged, again, seL4_AllRights), E.NoError);
    assert.equal(capAt(k, again).badgeLo, Number(BADGE & 0xffffffffn));
    assert.equal(capAt(k, again).badgeHi, Number(BADGE >> 32n));
    assert.equal(yield* revoke(u, badged), E.NoError);
    assert.equal(isEmpty(k, again), true);
    assert.equal(capAt(k, badged).type, CapType.Endpoint);
    assert.equal(capAt(k, ep).type, CapType.Endpoint);

    // Rights: masked by the source's, unknown bits ignored.
    const wo = a.slot();
    assert.equal(yield* mint(u, ep, wo, seL4_CanWrite, 0), E.NoError);
    assert.equal(capAt(k, wo).rights, RIGHT_WRITE);
    assert.equal(capAt(k, wo).badgeLo, 0);
    const wo5 = a.slot();
    assert.equal(yield* mint(u, wo, wo5, seL4_AllRights | 0xf0, 5), E.NoError);
    assert.equal(capAt(k, wo5).rights, RIGHT_WRITE);
    assert.equal(capAt(k, wo5).badgeLo, 5);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const nb = a.slot();
    assert.equal(yield* mint(u, ntfn, nb, seL4_AllRights, 3), E.NoError);
    assert.equal(capAt(k, nb).rights, RIGHT_READ | RIGHT_WRITE);
    assert.equal(yield* mint(u, nb, a.slot(), seL4_AllRights, 4), E.IllegalOperation);
    // The badge shows on the notification word when signalled through it.
    yield* seL4_Signal(u, nb);
    assert.equal((yield* seL4_Wait(u, ntfn)).sender, 3);

    // Mint sets the guard of a CNode cap; a guard too long for the radix is refused.
    const cn = yield* a.alloc(u, ObjectType.CapTable, 4);
    const g = a.slot();
    assert.equal(yield* mint(u, cn, g, seL4_AllRights, cnodeData(0xa, 4)), E.NoError);
    assert.equal(capAt(k, g).guardSize, 4);
    assert.equal(capAt(k, g).guardLo, 0xa);
    assert.equal(yield* mint(u, cn, a.slot(), seL4_AllRights, cnodeData(0, 61)), E.IllegalOperation);
    // The guarded cap resolves guard + radix = 8 bits.
    assert.equal(yield* seL4_CNode_Copy(u, g, (0xa << 4) | 3, 8, R, ep, W, seL4_AllRights), E.NoError);
    assert.equal((capAt(k, cn).obj as CNodeObj).slot(3).cap.type, CapType.Endpoint);
    assertFailedLookup(u, yield* seL4_CNode_Copy(u, g, (0xb << 4) | 4, 8, R, ep, W, seL4_AllRights), [
      0,
      LookupFailure.GuardMismatch,
      8,
      0xa,
      4,
    ]);
  });
});

conformance("CNODEOP0004", () => {
  rootTest(function* (u, a, k) {
    // A move that succeeds empties the source.
    const tcb = yield* a.alloc(u, ObjectType.TCB);
    const obj = tcbOf(k, tcb);
    const dest = a.slot();
    assert.equal(yield* move(u, tcb, dest), E.NoError);
    assert.equal(isEmpty(k, tcb), true);
    assert.equal(capAt(k, dest).obj, obj);
    // From an empty slot.
    const f1 = a.slot();
    const f2 = a.slot();
    assertFailedLookup(u, yield* move(u, f1, f2), [1, LookupFailure.MissingCapability, W]);
    assert.equal(isEmpty(k, f2), true);
    // To an occupied slot.
    const t2 = yield* a.alloc(u, ObjectType.TCB);
    assert.equal(yield* move(u, dest, t2), E.DeleteFirst);
    assert.equal(capAt(k, dest).obj, obj);
    assert.notEqual(capAt(k, t2).obj, obj);
    // Onto itself: the destination is occupied (by itself).
    assert.equal(yield* move(u, dest, dest), E.DeleteFirst);
    assert.equal(capAt(k, dest).obj, obj);

    // A moved cap keeps rights, badge and place in the derivation tree: the badged original,
    // moved, still revokes its copy.
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const b = a.slot();
    assert.equal(yield* mint(u, ep, b, seL4_ReadWrite, 7), E.NoError);
    const bc = a.slot();
    assert.equal(yield* copy(u, b, bc, seL4_AllRights), E.NoError);
    const b2 = a.slot();
    assert.equal(yield* move(u, b, b2), E.NoError);
    assert.equal(isEmpty(k, b), true);
    assert.equal(capAt(k, b2).badgeLo, 7);
    assert.equal(capAt(k, b2).rights, seL4_ReadWrite);
    assert.equal(yield* revoke(u, b2), E.NoError);
    assert.equal(isEmpty(k, bc), true);
    assert.equal(capAt(k, b2).type, CapType.Endpoint);

    // An untyped with children moves (a move derives nothing), and its children follow it.
    const ut = yield* a.alloc(u, ObjectType.Untyped, 12);
    const child = a.slot();
    assert.equal(yield* retype(u, ut, ObjectType.Endpoint, 0, child, 1), E.NoError);
    const ut2 = a.slot();
    assert.equal(yield* move(u, ut, ut2), E.NoError);
    assert.equal(yield* revoke(u, ut2), E.NoError);
    assert.equal(isEmpty(k, child), true);
  });
});

conformance("CNODEOP0005", () => {
  rootTest(function* (u, a, k) {
    // A mutate that succeeds moves the cap.
    const tcb = yield* a.alloc(u, ObjectType.TCB);
    const obj = tcbOf(k, tcb);
    const dest = a.slot();
    assert.equal(yield* mutate(u, tcb, dest, 0), E.NoError);
    assert.equal(isEmpty(k, tcb), true);
    assert.equal(capAt(k, dest).obj, obj);
    // To an occupied slot.
    const t2 = yield* a.alloc(u, ObjectType.TCB);
    assert.equal(yield* mutate(u, dest, t2, 0), E.DeleteFirst);
    assert.equal(capAt(k, dest).obj, obj);
    assert.equal(capAt(k, t2).type, CapType.Thread);
    // From an empty slot.
    const f1 = a.slot();
    const f2 = a.slot();
    assertFailedLookup(u, yield* mutate(u, f1, f2, 0), [1, LookupFailure.MissingCapability, W]);
    assert.equal(isEmpty(k, f1), true);
    assert.equal(isEmpty(k, f2), true);

    // Mutate never badges: endpoint and notification caps are refused, badged or not.
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    assert.equal(yield* mutate(u, ep, f2, 5), E.IllegalOperation);
    assert.equal(yield* mutate(u, ep, f2, 0), E.IllegalOperation);
    const b = a.slot();
    assert.equal(yield* mint(u, ep, b, seL4_AllRights, 5), E.NoError);
    assert.equal(yield* mutate(u, b, f2, 6), E.IllegalOperation);
    assert.equal(capAt(k, b).badgeLo, 5);
    assert.equal(capAt(k, ep).type, CapType.Endpoint);
    assert.equal(isEmpty(k, f2), true);

    // Mutate sets a CNode cap's guard. A copy of the root CNode cap with guard size 0 resolves
    // only the radix (12 bits).
    const rootCopy = a.slot();
    assert.equal(yield* copy(u, R, rootCopy, seL4_AllRights), E.NoError);
    const noGuard = a.slot();
    assert.equal(yield* mutate(u, rootCopy, noGuard, cnodeData(0, 0)), E.NoError);
    assert.equal(isEmpty(k, rootCopy), true);
    assert.equal(capAt(k, noGuard).guardSize, 0);
    const radix = k.bootInfo.rootCNodeBits;
    const target = a.slot();
    assert.equal(yield* seL4_CNode_Copy(u, noGuard, target, radix, R, ep, W, seL4_AllRights), E.NoError);
    assert.equal(capAt(k, target).obj, capAt(k, ep).obj);
    // At depth 64, the radix picks slot 0 (the top bits of a small index) and 52 bits are left over.
    const t3 = a.slot();
    assertFailedLookup(u, yield* seL4_CNode_Copy(u, noGuard, t3, W, R, ep, W, seL4_AllRights), [
      0,
      LookupFailure.DepthMismatch,
      W - radix,
      0,
    ]);
    // A guard that makes guard + radix exceed 64 bits is refused, and the source stays.
    assert.equal(yield* mutate(u, noGuard, t3, cnodeData(0, W - radix + 1)), E.IllegalOperation);
    assert.equal(capAt(k, noGuard).type, CapType.CNode);
    // Restoring the boot guard makes 64-bit addresses work through it again.
    assert.equal(yield* mutate(u, noGuard, t3, cnodeData(0, W - radix)), E.NoError);
    const t4 = a.slot();
    assert.equal(yield* seL4_CNode_Copy(u, t3, t4, W, R, ep, W, seL4_AllRights), E.NoError);
    assert.equal(capAt(k, t4).type, CapType.Endpoint);
  });
});

conformance("CNODEOP0006", () => {
  const order: number[] = [];
  rootTest(function* (u, a, k, m) {
    // On an unbadged endpoint cap with full rights: nothing to cancel, the cap stays.
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    assert.equal(yield* cancelBadged(u, ep), E.NoError);
    assert.equal(capAt(k, ep).type, CapType.Endpoint);
    // On an empty slot.
    const free = a.slot();
    assert.equal(yield* cancelBadged(u, free), E.IllegalOperation);
    assert.equal(isEmpty(k, free), true);
    // Without full rights, and on a notification.
    const rw = a.slot();
    assert.equal(yield* mint(u, ep, rw, seL4_ReadWrite, 1), E.NoError);
    assert.equal(yield* cancelBadged(u, rw), E.IllegalOperation);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    assert.equal(yield* cancelBadged(u, ntfn), E.IllegalOperation);

    // Senders A (badge 1), B (badge 2), C (badge 1) queue in that order. Cancelling badge 1
    // restarts A and C only: they send again and so queue behind B, which never left the queue.
    yield* lowerRoot(u);
    const b1 = a.slot();
    const b2 = a.slot();
    assert.equal(yield* mint(u, ep, b1, seL4_AllRights, 1), E.NoError);
    assert.equal(yield* mint(u, ep, b2, seL4_AllRights, 2), E.NoError);
    const sender = m.program(function* (hu: UserThread, cptr: number, id: number) {
      seL4_SetMR(hu, 0, id);
      yield* seL4_Send(hu, cptr, seL4_MessageInfo_new(0, 0, 0, 1));
    });
    const hA = yield* createThread(u, a, { entry: sender, args: [b1, 0xa], priority: 100 });
    const hB = yield* createThread(u, a, { entry: sender, args: [b2, 0xb], priority: 100 });
    const hC = yield* createThread(u, a, { entry: sender, args: [b1, 0xc], priority: 100 });
    const epObj = capAt(k, ep).obj as Endpoint;
    const [tA, tB, tC] = [hA, hB, hC].map((h) => tcbOf(k, h.tcb)) as [TCB, TCB, TCB];
    assert.deepEqual([epObj.qHead, tA.epNext, tB.epNext, tC.epNext], [tA, tB, tC, null]);
    assert.equal(yield* cancelBadged(u, b1), E.NoError);
    for (const t of [tA, tB, tC]) assert.equal(t.state, ThreadState.BlockedOnSend);
    assert.equal(epObj.qHead, tB, "the badge-2 sender was not cancelled");
    for (let i = 0; i < 3; i++) {
      const r = yield* seL4_Wait(u, ep);
      order.push(r.sender, seL4_GetMR(u, 0));
    }
    assert.deepEqual(order.slice(0, 2), [2, 0xb]);
    assert.deepEqual(
      [order.slice(2, 4), order.slice(4, 6)].sort((x, y) => x[1]! - y[1]!),
      [
        [1, 0xa],
        [1, 0xc],
      ],
    );
  });
});

conformance("CNODEOP0007", () => {
  rootTest(function* (u, a, k) {
    // Revoking a cap without children: it stays.
    const tcb = yield* a.alloc(u, ObjectType.TCB);
    assert.equal(yield* revoke(u, tcb), E.NoError);
    assert.equal(capAt(k, tcb).type, CapType.Thread);
    // Revoking an empty slot succeeds.
    const free = a.slot();
    assert.equal(yield* revoke(u, free), E.NoError);
    assert.equal(isEmpty(k, free), true);

    // Revoke deletes the children (all descendants) only.
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const c1 = a.slot();
    const c2 = a.slot();
    const b = a.slot();
    const bc = a.slot();
    const other = yield* a.alloc(u, ObjectType.Endpoint);
    const oc = a.slot();
    assert.equal(yield* copy(u, ep, c1, seL4_AllRights), E.NoError);
    assert.equal(yield* copy(u, c1, c2, seL4_CanRead), E.NoError);
    assert.equal(yield* mint(u, ep, b, seL4_AllRights, 9), E.NoError);
    assert.equal(yield* copy(u, b, bc, seL4_AllRights), E.NoError);
    assert.equal(yield* copy(u, other, oc, seL4_AllRights), E.NoError);
    // A copy (not an original) has no children to revoke.
    assert.equal(yield* revoke(u, c1), E.NoError);
    assert.equal(capAt(k, c2).type, CapType.Endpoint);
    // The badged original revokes only its own copy.
    assert.equal(yield* revoke(u, b), E.NoError);
    assert.equal(isEmpty(k, bc), true);
    for (const s of [ep, c1, c2, b, other, oc]) assert.equal(capAt(k, s).type, CapType.Endpoint, `slot ${s}`);
    // The unbadged original revokes everything derived from it, badged caps included.
    assert.equal(yield* copy(u, b, bc, seL4_AllRights), E.NoError);
    assert.equal(yield* revoke(u, ep), E.NoError);
    for (const s of [c1, c2, b, bc]) assert.equal(isEmpty(k, s), true, `slot ${s} revoked`);
    assert.equal(capAt(k, ep).type, CapType.Endpoint);
    assert.equal(capAt(k, other).type, CapType.Endpoint);
    assert.equal(capAt(k, oc).type, CapType.Endpoint);
    assert.equal(capAt(k, ep).obj?.live, true);

    // Revoking an untyped destroys what was retyped from it.
    const ut = yield* a.alloc(u, ObjectType.Untyped, 14);
    const objs = slots(a, 4);
    assert.equal(yield* retype(u, ut, ObjectType.Endpoint, 0, objs, 4), E.NoError);
    const dead = [0, 1, 2, 3].map((i) => capAt(k, objs + i).obj);
    assert.equal(yield* revoke(u, ut), E.NoError);
    for (let i = 0; i < 4; i++) assert.equal(isEmpty(k, objs + i), true);
    for (const o of dead) assert.equal(o?.live, false);
    assert.equal(capAt(k, ut).type, CapType.Untyped);
  });
});

conformance("CNODEOP0008", () => {
  rootTest(function* (u, a, k) {
    // dest <- pivot <- src.
    let src = yield* a.alloc(u, ObjectType.TCB);
    let pivot = yield* a.alloc(u, ObjectType.TCB);
    let dest = a.slot();
    let so = tcbOf(k, src);
    let po = tcbOf(k, pivot);
    assert.equal(yield* rotate(u, src, pivot, dest), E.NoError);
    assert.equal(isEmpty(k, src), true);
    assert.equal(capAt(k, pivot).obj, so);
    assert.equal(capAt(k, dest).obj, po);

    // Destination occupied.
    src = yield* a.alloc(u, ObjectType.TCB);
    pivot = yield* a.alloc(u, ObjectType.TCB);
    dest = yield* a.alloc(u, ObjectType.TCB);
    const d0 = tcbOf(k, dest);
    so = tcbOf(k, src);
    po = tcbOf(k, pivot);
    assert.equal(yield* rotate(u, src, pivot, dest), E.DeleteFirst);
    assert.equal(capAt(k, src).obj, so);
    assert.equal(capAt(k, pivot).obj, po);
    assert.equal(capAt(k, dest).obj, d0);

    // src == dest swaps src and pivot.
    assert.equal(yield* rotate(u, src, pivot, src), E.NoError);
    assert.equal(capAt(k, src).obj, po);
    assert.equal(capAt(k, pivot).obj, so);

    // The pivot must differ from both ends.
    const free = a.slot();
    assert.equal(yield* rotate(u, src, src, free), E.IllegalOperation);
    assert.equal(yield* rotate(u, src, free, free), E.IllegalOperation);
    assert.equal(capAt(k, src).obj, po);
    assert.equal(isEmpty(k, free), true);

    // Empty slots: the source first (MR0 = 1), then the pivot (MR0 = 0).
    const e1 = a.slot();
    const e2 = a.slot();
    const e3 = a.slot();
    assertFailedLookup(u, yield* rotate(u, e1, e2, e3), [1, LookupFailure.MissingCapability, W]);
    assertFailedLookup(u, yield* rotate(u, src, e2, e3), [0, LookupFailure.MissingCapability, W]);
    assert.equal(isEmpty(k, e3), true);
    assert.equal(capAt(k, src).obj, po);

    // Rotate, like Mutate, never badges: endpoint caps are refused and stay put.
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const ep2 = yield* a.alloc(u, ObjectType.Endpoint);
    assert.equal(yield* rotate(u, ep, ep2, e3), E.IllegalOperation);
    assert.equal(yield* rotate(u, src, ep2, e3), E.IllegalOperation);
    assert.equal(capAt(k, ep).type, CapType.Endpoint);
    assert.equal(capAt(k, ep2).type, CapType.Endpoint);
    assert.equal(isEmpty(k, e3), true);
    // Rotate sets the guards of CNode caps it moves.
    const cn = yield* a.alloc(u, ObjectType.CapTable, 2);
    const cn2 = yield* a.alloc(u, ObjectType.CapTable, 3);
    assert.equal(yield* rotate(u, cn, cn2, e3, cnodeData(1, 2), cnodeData(0x15, 5)), E.NoError);
    assert.equal(capAt(k, e3).sizeBits, 3);
    assert.deepEqual([capAt(k, e3).guardLo, capAt(k, e3).guardSize], [1, 2]);
    assert.equal(capAt(k, cn2).sizeBits, 2);
    assert.deepEqual([capAt(k, cn2).guardLo, capAt(k, cn2).guardSize], [0x15, 5]);
  });
});

// ---------------------------------------------------------------------------------------------
// CSpace addressing
// ---------------------------------------------------------------------------------------------

conformance("CSPACE0001", () => {
  // The helper's 64-bit path through 64 one-bit CNodes (bit 63 chooses the slot in cnode[0]).
  const PATH = 0xb5c3_96a1_0f2e_7d49n;
  const READY = 0x12374153;
  const SUCCESS = 0x12374151;
  const seen: number[] = [];
  rootTest(function* (u, a, k, m) {
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const cnode: number[] = [];
    for (let i = 0; i < W; i++) cnode.push(yield* a.alloc(u, ObjectType.CapTable, 1));
    const bit = (i: number): number => Number((PATH >> BigInt(W - 1 - i)) & 1n);
    for (let i = 0; i < W - 1; i++) {
      assert.equal(yield* seL4_CNode_Copy(u, cnode[i]!, bit(i), 1, R, cnode[i + 1]!, W, seL4_AllRights), 0);
    }
    assert.equal(yield* seL4_CNode_Copy(u, cnode[W - 1]!, bit(W - 1), 1, R, ep, W, seL4_AllRights), 0);

    // Resolution at every depth through the chain reaches the next CNode, at 64 the endpoint.
    const tmp = a.slot();
    for (let d = 1; d <= W; d++) {
      const index = PATH >> BigInt(W - d);
      assert.equal(
        yield* seL4_CNode_Copy(u, R, tmp, W, cnode[0]!, index, d, seL4_AllRights),
        0,
        `depth ${d}`,
      );
      const want = d < W ? capAt(k, cnode[d]!).obj : capAt(k, ep).obj;
      assert.equal(capAt(k, tmp).obj, want, `depth ${d}`);
      assert.equal(yield* del(u, tmp), 0);
    }
    // A wrong bit at level j meets an empty slot with 63 - j bits left: a depth mismatch, except at
    // the last level, where the slot is simply empty.
    for (const j of [0, 1, 31, 62, 63]) {
      const index = PATH ^ (1n << BigInt(W - 1 - j));
      const err = yield* seL4_CNode_Copy(u, R, tmp, W, cnode[0]!, index, W, seL4_AllRights);
      if (j < W - 1) assertFailedLookup(u, err, [1, LookupFailure.DepthMismatch, W - 1 - j, 0]);
      else assertFailedLookup(u, err, [1, LookupFailure.MissingCapability, W]);
    }

    // A helper thread whose CSpace is the chain: only the one 64-bit path names a cap.
    const helper = m.program(function* (hu: UserThread, ep0: number) {
      seL4_SetMR(hu, 0, READY);
      yield* seL4_Send(hu, ep0, seL4_MessageInfo_new(0, 0, 0, 1));
      for (let i = 0; i < W; i++) {
        const info = yield* seL4_Call(hu, i, seL4_MessageInfo_new(0, 0, 0, 0));
        seen.push(seL4_MessageInfo_get_label(info));
      }
      for (let i = 0; i < W; i++) {
        const info = yield* seL4_Call(hu, PATH ^ (1n << BigInt(i)), seL4_MessageInfo_new(0, 0, 0, 0));
        seen.push(seL4_MessageInfo_get_label(info));
      }
      seL4_SetMR(hu, 0, SUCCESS);
      yield* seL4_Send(hu, PATH, seL4_MessageInfo_new(0, 0, 0, 1));
    });
    const h = yield* createThread(u, a, { entry: helper, args: [ep], priority: 100 });
    let r = yield* seL4_Wait(u, ep);
    assert.equal(seL4_MessageInfo_get_length(r.info), 1);
    assert.equal(seL4_GetMR(u, 0), READY);
    assert.equal(yield* seL4_TCB_SetSpace(u, h.tcb, 0, cnode[0]!, 0, seL4_CapInitThreadVSpace, 0), E.NoError);
    r = yield* seL4_Wait(u, ep);
    assert.equal(seL4_MessageInfo_get_length(r.info), 1);
    assert.equal(seL4_GetMR(u, 0), SUCCESS);
    assert.deepEqual(seen, new Array<number>(2 * W).fill(E.InvalidCapability));

    // Two levels with a guard: top (radix 8, no guard) slot 0x5a holds `mid` (radix 4, guard
    // 0b101 of 3 bits); mid's slot j is at depth 8 + 3 + 4 = 15.
    const top = yield* a.alloc(u, ObjectType.CapTable, 8);
    const mid = yield* a.alloc(u, ObjectType.CapTable, 4);
    const S = 0x5a;
    assert.equal(yield* seL4_CNode_Mint(u, top, S, 8, R, mid, W, seL4_AllRights, cnodeData(5, 3)), 0);
    const at = (j: number, guard = 5): number => (S << 7) | (guard << 4) | j;
    const midSlots = capAt(k, mid).obj as CNodeObj;
    assert.equal(yield* seL4_CNode_Copy(u, top, at(6), 15, R, ep, W, seL4_AllRights), E.NoError);
    assert.equal(midSlots.slot(6).cap.obj, capAt(k, ep).obj);
    // Depth 8 names top's slot: the guarded CNode cap itself.
    assert.equal(yield* seL4_CNode_Copy(u, R, tmp, W, top, S, 8, seL4_AllRights), E.NoError);
    assert.deepEqual(
      [capAt(k, tmp).type, capAt(k, tmp).guardLo, capAt(k, tmp).guardSize],
      [CapType.CNode, 5, 3],
    );
    assert.equal(yield* del(u, tmp), 0);
    // Guard mismatch: bitsLeft after top, the guard the cap holds, its size.
    assertFailedLookup(u, yield* seL4_CNode_Copy(u, top, at(7, 3), 15, R, ep, W, seL4_AllRights), [
      0,
      LookupFailure.GuardMismatch,
      7,
      5,
      3,
    ]);
    // Fewer bits left than the guard: also a guard mismatch.
    assertFailedLookup(u, yield* seL4_CNode_Copy(u, top, (S << 2) | 1, 10, R, ep, W, seL4_AllRights), [
      0,
      LookupFailure.GuardMismatch,
      2,
      5,
      3,
    ]);
    // Guard fits but not the radix: depth mismatch with bitsLeft and the bits the level needs.
    assertFailedLookup(
      u,
      yield* seL4_CNode_Copy(u, top, (S << 5) | (5 << 2) | 1, 13, R, ep, W, seL4_AllRights),
      [0, LookupFailure.DepthMismatch, 5, 7],
    );
    // Resolution stops at a non-CNode cap with bits left over: depth mismatch (bitsFound 0).
    assertFailedLookup(u, yield* seL4_CNode_Copy(u, R, tmp, W, top, (at(6) << 2) | 3, 17, seL4_AllRights), [
      1,
      LookupFailure.DepthMismatch,
      2,
      0,
    ]);
    // An empty slot at exact depth: missing capability with the depth as bitsLeft.
    assertFailedLookup(u, yield* seL4_CNode_Copy(u, R, tmp, W, top, at(9), 15, seL4_AllRights), [
      1,
      LookupFailure.MissingCapability,
      15,
    ]);
    // Depth out of range.
    assertRangeError(u, yield* seL4_CNode_Copy(u, R, tmp, W, top, at(6), 0, seL4_AllRights), 1, W);
    // A root that is not a CNode: invalid root, for the source and for a retype destination.
    assertFailedLookup(u, yield* seL4_CNode_Copy(u, R, tmp, W, ep, 0, W, seL4_AllRights), [
      1,
      LookupFailure.InvalidRoot,
    ]);
    const ut = yield* a.alloc(u, ObjectType.Untyped, 12);
    assertFailedLookup(u, yield* seL4_Untyped_Retype(u, ut, ObjectType.Endpoint, 0, ep, 0, W, 0, 1), [
      0,
      LookupFailure.InvalidRoot,
    ]);
    // A retype destination that resolves to a non-CNode cap: missing capability, node depth left.
    assertFailedLookup(u, yield* seL4_Untyped_Retype(u, ut, ObjectType.Endpoint, 0, top, at(6), 15, 0, 1), [
      0,
      LookupFailure.MissingCapability,
      15,
    ]);
    // Retype through the guarded path into mid itself (depth 8 names the mid cap).
    assert.equal(yield* seL4_Untyped_Retype(u, ut, ObjectType.Endpoint, 0, top, S, 8, 2, 1), E.NoError);
    assert.equal(midSlots.slot(2).cap.type, CapType.Endpoint);
  });
});

// ---------------------------------------------------------------------------------------------
// Badged sends
// ---------------------------------------------------------------------------------------------

const NUM_BADGED_CLIENTS = 6;

conformance("CANCEL_BADGED_SENDS_0001", () => {
  const done = new Array<number>(NUM_BADGED_CLIENTS).fill(-1);
  rootTest(function* (u, a, k, m) {
    yield* lowerRoot(u);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    // Call once (expecting ~msg back), then again: the second Call must end in InvalidCapability.
    const caller = m.program(function* (hu: UserThread, cptr: number, msg: number, idx: number) {
      seL4_SetMR(hu, 0, msg);
      let info = yield* seL4_Call(hu, cptr, seL4_MessageInfo_new(0, 0, 0, 1));
      assert.equal(seL4_MessageInfo_get_length(info), 1);
      assert.equal(seL4_GetMR(hu, 0), 0xffff - msg);
      done[idx] = 0;
      seL4_SetMR(hu, 0, msg);
      info = yield* seL4_Call(hu, cptr, seL4_MessageInfo_new(0, 0, 0, 1));
      assert.equal(seL4_MessageInfo_get_label(info), E.InvalidCapability);
      done[idx] = 1;
    });
    const badged: number[] = [];
    const tcbs: TCB[] = [];
    for (let i = 0; i < NUM_BADGED_CLIENTS; i++) {
      const b = a.slot();
      const d = a.slot();
      assert.equal(yield* mint(u, ep, b, seL4_AllRights, i + 200), E.NoError);
      assert.equal(yield* copy(u, b, d, seL4_AllRights), E.NoError);
      badged.push(b);
      const h = yield* createThread(u, a, { entry: caller, args: [d, i + 100, i], priority: 100 });
      tcbs.push(tcbOf(k, h.tcb));
    }
    // Each sender waits in its first Call: serve them in order, checking the badge.
    let r = yield* seL4_Recv(u, ep, reply);
    for (let i = 0; i < NUM_BADGED_CLIENTS; i++) {
      assert.equal(r.sender, 200 + i);
      assert.equal(seL4_GetMR(u, 0), r.sender - 100);
      seL4_SetMR(u, 0, 0xffff - seL4_GetMR(u, 0));
      const tag = seL4_MessageInfo_new(0, 0, 0, 1);
      if (i < NUM_BADGED_CLIENTS - 1) r = yield* seL4_ReplyRecv(u, ep, tag, reply);
      else yield* seL4_Send(u, reply, tag);
    }
    assert.deepEqual(done, new Array<number>(NUM_BADGED_CLIENTS).fill(0));
    for (const t of tcbs) assert.equal(t.state, ThreadState.BlockedOnSend);
    // Revoke each badge's copies and cancel its sends: exactly that sender's Call fails.
    for (let i = 0; i < NUM_BADGED_CLIENTS; i++) {
      assert.equal(yield* revoke(u, badged[i]!), E.NoError);
      assert.equal(yield* cancelBadged(u, badged[i]!), E.NoError);
      for (let j = 0; j < NUM_BADGED_CLIENTS; j++) {
        assert.equal(done[j], j <= i ? 1 : 0, `after cancelling ${i}: client ${j}`);
        if (j > i) assert.equal(tcbs[j]!.state, ThreadState.BlockedOnSend);
      }
    }
  });
});

conformance("CANCEL_BADGED_SENDS_0002", () => {
  const status = new Array<number>(NUM_BADGED_CLIENTS).fill(-1);
  rootTest(function* (u, a, _k, m) {
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    // A server that answers every call on the main endpoint.
    const bouncer = m.program(function* (hu: UserThread, src: number, reply: number) {
      yield* seL4_Recv(hu, src, reply);
      for (;;) yield* seL4_ReplyRecv(hu, src, seL4_MessageInfo_new(0, 0, 0, 0), reply);
    });
    const br = yield* a.alloc(u, ObjectType.Reply);
    yield* createThread(u, a, { entry: bouncer, args: [ep, br], priority: 150 });
    // Each client, poked on its own endpoint, calls the main endpoint through its derived badged cap.
    const client = m.program(function* (
      hu: UserThread,
      sync: number,
      test: number,
      idx: number,
      reply: number,
    ) {
      yield* seL4_Recv(hu, sync, reply);
      for (;;) {
        const info = yield* seL4_Call(hu, test, seL4_MessageInfo_new(0, 0, 0, 0));
        status[idx] = seL4_MessageInfo_get_label(info) !== E.InvalidCapability ? 1 : 0;
        yield* seL4_ReplyRecv(hu, sync, seL4_MessageInfo_new(0, 0, 0, 0), reply);
      }
    });
    const badged: number[] = [];
    const sync: number[] = [];
    for (let i = 0; i < NUM_BADGED_CLIENTS; i++) {
      const b = a.slot();
      const d = a.slot();
      const s = yield* a.alloc(u, ObjectType.Endpoint);
      const rp = yield* a.alloc(u, ObjectType.Reply);
      assert.equal(yield* mint(u, ep, b, seL4_AllRights, i + 200), E.NoError);
      assert.equal(yield* copy(u, b, d, seL4_AllRights), E.NoError);
      badged.push(b);
      sync.push(s);
      yield* createThread(u, a, { entry: client, args: [s, d, i, rp], priority: 100 });
    }
    const poke = seL4_MessageInfo_new(0, 0, 0, 0);
    for (let i = 0; i < NUM_BADGED_CLIENTS; i++) yield* seL4_Call(u, sync[i]!, poke);
    assert.deepEqual(status, new Array<number>(NUM_BADGED_CLIENTS).fill(1));
    for (let i = 0; i < NUM_BADGED_CLIENTS; i++) {
      assert.equal(yield* revoke(u, badged[i]!), E.NoError);
      assert.equal(yield* cancelBadged(u, badged[i]!), E.NoError);
      for (let j = 0; j < NUM_BADGED_CLIENTS; j++) yield* seL4_Call(u, sync[j]!, poke);
      assert.deepEqual(
        status,
        status.map((_, j) => (j <= i ? 0 : 1)),
        `after revoking badge ${200 + i}`,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Untyped_Retype
// ---------------------------------------------------------------------------------------------

conformance("RETYPE0000", () => {
  rootTest(function* (u, a, k) {
    const cnode = yield* a.alloc(u, ObjectType.CapTable, 2);
    const ut = yield* a.alloc(u, ObjectType.Untyped, TCB_BITS + 3);
    const into = (offset: number, n: number): Sel4Gen<SeL4Error> =>
      seL4_Untyped_Retype(u, ut, ObjectType.TCB, 0, R, cnode, W, offset, n);
    const slotsOf = capAt(k, cnode).obj as CNodeObj;

    // No objects at all: the count's range is 1..fan-out limit.
    assertRangeError(u, yield* into(1, 0), 1, RETYPE_FAN_OUT_LIMIT);
    // Two caps at the last slot overrun the CNode: at most 4 - 3 fit.
    assertRangeError(u, yield* into(3, 2), 1, 1);
    // One at a time into every slot.
    for (let i = 0; i < 4; i++) assert.equal(yield* into(i, 1), E.NoError);
    for (let i = 0; i < 4; i++) assert.equal(slotsOf.slot(i).cap.type, CapType.Thread);
    // An offset past the end.
    assertRangeError(u, yield* into(4, 2), 0, 3);
    // Over the top of existing caps.
    for (let i = 0; i < 4; i++) assert.equal(yield* into(i, 1), E.DeleteFirst);
    // Delete them all (through the CNode's own cap, 2-bit addresses).
    for (let i = 0; i < 4; i++) assert.equal(yield* seL4_CNode_Delete(u, cnode, i, 2), E.NoError);
    for (let i = 0; i < 4; i++) assert.equal(slotsOf.slot(i).cap.type, CapType.Null);
    // Too many.
    assertRangeError(u, yield* into(0, 2 ** 31), 1, RETYPE_FAN_OUT_LIMIT);
    assertRangeError(u, yield* into(0, 5), 1, 4);
    // All but one in one call, then only the last slot takes one more.
    assert.equal(yield* into(0, 3), E.NoError);
    for (let i = 0; i < 4; i++) assert.equal(yield* into(i, 1), i === 3 ? E.NoError : E.DeleteFirst);
    // The untyped (8 TCBs big) had its children deleted, so it was reused from its start: 4 used.
    assert.equal(capAt(k, ut).freeIndex, 4 * 2 ** TCB_BITS);
    const base = capAt(k, ut).paddr;
    const addrs = [0, 1, 2, 3]
      .map((i) => (slotsOf.slot(i).cap.obj as TCB).paddr - base)
      .sort((x, y) => x - y);
    assert.deepEqual(
      addrs,
      [0, 1, 2, 3].map((i) => i * 2 ** TCB_BITS),
    );
  });
});

conformance("RETYPE0001", () => {
  rootTest(function* (u, a, k) {
    const sizeBits = 13;
    const ut = yield* a.alloc(u, ObjectType.Untyped, sizeBits);
    const dest = a.slot();
    // Anything bigger than the untyped fails: NotEnoughMemory (all 8 KiB free) up to the largest
    // object size, RangeError beyond it.
    for (let i = 40; i > 0; i--) {
      const radix = sizeBits - 5 + i;
      const err = yield* retype(u, ut, ObjectType.CapTable, radix, dest, 1);
      if (radix + 5 > 47) {
        assertRangeError(u, err, 0, 47);
      } else {
        assert.equal(err, E.NotEnoughMemory, `radix ${radix}`);
        assert.equal(replyLength(u), 1);
        assert.deepEqual(mrs(u, 1), [2 ** sizeBits]);
      }
      assert.equal(isEmpty(k, dest), true);
    }
    // An object of exactly the untyped's size.
    assert.equal(yield* retype(u, ut, ObjectType.CapTable, sizeBits - 5, dest, 1), E.NoError);
    assert.equal(capAt(k, dest).type, CapType.CNode);
    assert.equal(capAt(k, dest).sizeBits, sizeBits - 5);
    assert.equal(capAt(k, ut).freeIndex, 2 ** sizeBits);
    // Now full: nothing left, even for the smallest object.
    const d2 = a.slot();
    assert.equal(yield* retype(u, ut, ObjectType.Endpoint, 0, d2, 1), E.NotEnoughMemory);
    assert.deepEqual(mrs(u, 1), [0]);
    // Sizes that are invalid for their type.
    assert.equal(yield* retype(u, ut, ObjectType.CapTable, 0, d2, 1), E.InvalidArgument);
    assert.deepEqual(mrs(u, 1), [1]);
    assert.equal(yield* retype(u, ut, ObjectType.Untyped, 3, d2, 1), E.InvalidArgument);
    assert.equal(yield* retype(u, ut, 99 as ObjectType, 0, d2, 1), E.InvalidArgument);
    assert.deepEqual(mrs(u, 1), [0]);
  });
});

conformance("RETYPE0002", () => {
  rootTest(function* (u, a, k) {
    const slot = slots(a, 17);
    const ut = yield* a.alloc(u, ObjectType.Untyped, 16);
    // Exactly sixteen 4 KiB pages fit.
    for (let i = 0; i < 16; i++) {
      assert.equal(yield* retype(u, ut, ObjectType.SmallPage, 0, slot + i, 1), E.NoError);
      assert.equal(capAt(k, ut).freeIndex, (i + 1) * 2 ** PAGE_BITS, "the watermark moves by one page");
    }
    // An obscene count.
    assertRangeError(u, yield* retype(u, ut, ObjectType.SmallPage, 0, slot + 16, 1024 * 1024), 1, 256);
    // Into an occupied slot.
    assert.equal(yield* retype(u, ut, ObjectType.SmallPage, 0, slot, 8), E.DeleteFirst);
    // The untyped is full.
    assert.equal(yield* retype(u, ut, ObjectType.SmallPage, 0, slot + 16, 1), E.NotEnoughMemory);
    assert.equal(replyLength(u), 1);
    assert.deepEqual(mrs(u, 1), [0]);
    // Deleting one page does not give its memory back while other children remain.
    assert.equal(yield* del(u, slot + 15), E.NoError);
    assert.equal(yield* retype(u, ut, ObjectType.SmallPage, 0, slot + 15, 1), E.NotEnoughMemory);
    assert.deepEqual(mrs(u, 1), [0]);
    // After a revoke (no children left) the untyped is reused from its start.
    assert.equal(yield* revoke(u, ut), E.NoError);
    const base = capAt(k, ut).paddr;

    // Alignment: an endpoint (16 bytes), then a page is aligned up to 4 KiB.
    assert.equal(yield* retype(u, ut, ObjectType.Endpoint, 0, slot, 1), E.NoError);
    assert.equal(capAt(k, ut).freeIndex, 16);
    assert.equal(yield* retype(u, ut, ObjectType.SmallPage, 0, slot + 1, 1), E.NoError);
    const pa = yield* seL4_ARM_Page_GetAddress(u, slot + 1);
    assert.equal(pa.error, E.NoError);
    assert.equal(pa.paddr, base + 2 ** PAGE_BITS);
    assert.equal(capAt(k, ut).freeIndex, 2 * 2 ** PAGE_BITS);
    // Another endpoint goes right after the page, then a 32 KiB CNode (radix 10) is aligned to 32 KiB.
    assert.equal(yield* retype(u, ut, ObjectType.Endpoint, 0, slot + 2, 1), E.NoError);
    assert.equal(capAt(k, ut).freeIndex, 2 * 2 ** PAGE_BITS + 16);
    assert.equal(yield* retype(u, ut, ObjectType.CapTable, 10, slot + 3, 1), E.NoError);
    assert.equal(capAt(k, ut).freeIndex, 2 ** 16);
    // NotEnoughMemory reports the bytes left past the watermark, not what alignment would waste.
    assert.equal(yield* revoke(u, ut), E.NoError);
    assert.equal(yield* retype(u, ut, ObjectType.CapTable, 9, slot, 3), E.NoError);
    assert.equal(capAt(k, ut).freeIndex, 3 * 2 ** 14);
    const e = yield* retype(u, ut, ObjectType.CapTable, 9, slot + 3, 2);
    assert.equal(e, E.NotEnoughMemory);
    assert.deepEqual(mrs(u, 1), [2 ** 14]);
    assert.equal(yield* retype(u, ut, ObjectType.SmallPage, 0, slot + 3, 4), E.NoError);
    assert.equal(capAt(k, ut).freeIndex, 2 ** 16);
  });
});

// ---------------------------------------------------------------------------------------------
// Revoke preemption
// ---------------------------------------------------------------------------------------------

conformance("PREEMPT_REVOKE", () => {
  const LINE = 45;
  const CNODE_BITS = 9;
  const NUM_CNODES = 2;
  let revoking = 0;
  let preemptCount = 0;
  let preemptionsBefore = 0;
  let k0: Kernel | null = null;
  const m = rootTest(function* (u, a, k, m) {
    k0 = k;
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    // Fill the CNodes with copies of the endpoint: all children of ep.
    const tables: number[] = [];
    for (let i = 0; i < NUM_CNODES; i++) {
      const t = yield* a.alloc(u, ObjectType.CapTable, CNODE_BITS);
      tables.push(t);
      for (let j = 0; j < 2 ** CNODE_BITS; j++) {
        assert.equal(yield* seL4_CNode_Copy(u, t, j, CNODE_BITS, R, ep, W, seL4_AllRights), E.NoError);
      }
    }
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const irq = a.slot();
    assert.equal(yield* seL4_IRQControl_Get(u, seL4_CapIRQControl, LINE, R, irq, W), E.NoError);
    assert.equal(yield* seL4_IRQHandler_SetNotification(u, irq, ntfn), E.NoError);

    // The counter (higher priority) counts the interrupts that arrive while the revoke is under
    // way and re-arms the "timer" each time; the revoker revokes.
    const counter = m.program(function* (hu: UserThread) {
      while (revoking < 2) {
        yield* seL4_Wait(hu, ntfn);
        if (revoking === 1) preemptCount++;
        assert.equal(yield* seL4_IRQHandler_Ack(hu, irq), E.NoError);
        if (revoking < 2) m.raiseAt(hu.now() + 150, LINE);
      }
    });
    const revoker = m.program(function* (hu: UserThread) {
      revoking = 1;
      preemptionsBefore = k.stats.preemptions;
      m.raiseAt(hu.now() + 50, LINE);
      assert.equal(yield* seL4_CNode_Revoke(hu, R, ep, W), E.NoError);
      revoking = 2;
      yield* seL4_DebugPutString(hu, "revoked\n");
    });
    yield* lowerRoot(u, 10);
    yield* createThread(u, a, { entry: counter, priority: 101, ipcBuffer: false });
    yield* createThread(u, a, { entry: revoker, priority: 100 });
    // Both helpers have run (and the revoke finished) before the root runs again.
    assert.equal(revoking, 2);
    for (const t of tables) {
      const obj = capAt(k, t).obj as CNodeObj;
      for (let j = 0; j < 2 ** CNODE_BITS; j++) assert.equal(obj.slot(j).cap.type, CapType.Null);
    }
    assert.equal(capAt(k, ep).type, CapType.Endpoint);
    // Wake the counter so it sees the revoke is over.
    yield* seL4_Signal(u, ntfn);
  }, 400_000);
  assert.equal(m.console(), "revoked\n");
  assert.ok(preemptCount > 1, `the revoke was preempted more than once (counted ${preemptCount})`);
  assert.ok(k0 !== null);
  // The last interrupt counted may arrive during the final, completed pass of the revoke.
  const preemptions = (k0 as Kernel).stats.preemptions - preemptionsBefore;
  assert.ok(preemptions >= 2 && preemptions >= preemptCount - 1, `kernel preemptions: ${preemptions}`);
});

// ---------------------------------------------------------------------------------------------
// Trivial rows: the framework and the allocator
// ---------------------------------------------------------------------------------------------

conformance("TRIVIAL0000", () => {
  const m = rootTest(function* (u) {
    assert.ok(2 >= 1);
    yield* seL4_DebugPutString(u, "trivial\n");
  });
  assert.equal(m.console(), "trivial\n");
  assert.equal(m.k.rootThread.state, ThreadState.Inactive, "the root task exited");
});

/** Allocate and free an endpoint 100 times from one untyped, using each one. */
function* allocatorRounds(u: UserThread, a: Allocator, k: Kernel, ut: number, rounds: number): Sel4Gen<void> {
  const slot = a.slot();
  const badged = a.slot();
  const base = capAt(k, ut).paddr;
  for (let i = 0; i < rounds; i++) {
    assert.equal(yield* retype(u, ut, ObjectType.Endpoint, 0, slot, 1), E.NoError);
    const cap = capAt(k, slot);
    assert.equal(cap.type, CapType.Endpoint);
    assert.equal((cap.obj as Endpoint).paddr, base, "freed memory is reused");
    assert.equal(yield* mint(u, slot, badged, seL4_AllRights, i + 1), E.NoError);
    assert.equal(capAt(k, badged).badgeLo, i + 1);
    assert.equal(yield* del(u, badged), E.NoError);
    assert.equal(yield* del(u, slot), E.NoError);
    assert.equal(cap.obj?.live, false);
  }
}

conformance("TRIVIAL0001", () => {
  rootTest(function* (u, a, k) {
    const seen = new Set<number>();
    for (let i = 0; i < 100; i++) {
      const ep = yield* a.alloc(u, ObjectType.Endpoint);
      assert.notEqual(ep, 0);
      assert.equal(capAt(k, ep).type, CapType.Endpoint);
      seen.add(ep);
    }
    assert.equal(seen.size, 100);
    const ut = yield* a.alloc(u, ObjectType.Untyped, 12);
    yield* allocatorRounds(u, a, k, ut, 100);
  });
});

conformance("TRIVIAL0002", () => {
  rootTest(function* (u, a, k) {
    const ut = yield* a.alloc(u, ObjectType.Untyped, 12);
    yield* allocatorRounds(u, a, k, ut, 100);
    // The watermark is reset lazily, by the next retype of the childless untyped.
    assert.equal(capAt(k, ut).freeIndex, 16);
    yield* allocatorRounds(u, a, k, ut, 100);
    assert.equal(capAt(k, ut).freeIndex, 16);
  });
});
