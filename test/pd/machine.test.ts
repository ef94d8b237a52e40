/**
 * Smoke test of the user-level machine: boot a kernel, run a root task that makes an endpoint,
 * a reply object and a server thread, and do Call / ReplyRecv round trips, printing with
 * seL4_DebugPutChar.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bootKernel } from "../../src/kernel/core/boot.js";
import { checkInvariants } from "../../src/kernel/invariants.js";
import { FaultType, ObjectType, SeL4Error, ThreadState } from "../../src/kernel/types.js";
import { Allocator, createThread, mapPage } from "../../src/pd/alloc.js";
import {
  seL4_AllRights,
  seL4_Call,
  seL4_CapInitThreadCNode,
  seL4_CapInitThreadTCB,
  seL4_CapIRQControl,
  seL4_DebugPutString,
  seL4_GetMR,
  seL4_MessageInfo_get_label,
  seL4_MessageInfo_get_length,
  seL4_MessageInfo_new,
  seL4_Recv,
  seL4_ReplyRecv,
  seL4_SetMR,
  seL4_Wait,
} from "../../src/pd/libsel4.js";
import {
  seL4_CNode_Mint,
  seL4_CNode_Revoke,
  seL4_IRQControl_Get,
  seL4_IRQHandler_Ack,
  seL4_IRQHandler_SetNotification,
  seL4_TCB_SetPriority,
  seL4_Untyped_Retype,
} from "../../src/pd/libsel4-invocations.js";
import { EXIT_FAULT_NUMBER, Machine, type UserThread } from "../../src/pd/machine.js";

test("root task and a server do Call / ReplyRecv round trips", () => {
  const k = bootKernel();
  const m = new Machine(k, { afterEachEntry: (kk) => checkInvariants(kk) });

  // The server: receive a number, reply with number + 1, forever.
  const server = m.program(function* (u: UserThread, ep: number, reply: number) {
    let r = yield* seL4_Recv(u, ep, reply);
    for (;;) {
      const label = seL4_MessageInfo_get_label(r.info);
      seL4_SetMR(u, 0, seL4_GetMR(u, 0) + 1);
      r = yield* seL4_ReplyRecv(u, ep, seL4_MessageInfo_new(label + 1, 0, 0, 1), reply);
    }
  });

  const results: number[] = [];
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    yield* createThread(u, a, { entry: server, args: [ep, reply], priority: 200, name: "server" });
    yield* seL4_DebugPutString(u, "hello\n");
    for (let i = 0; i < 3; i++) {
      seL4_SetMR(u, 0, 41 + i);
      const info = yield* seL4_Call(u, ep, seL4_MessageInfo_new(7, 0, 0, 1));
      assert.equal(seL4_MessageInfo_get_label(info), 8);
      assert.equal(seL4_MessageInfo_get_length(info), 1);
      results.push(seL4_GetMR(u, 0));
      yield* u.compute(1000);
    }
    yield* seL4_DebugPutString(u, `got ${results.join(",")}\n`);
    return SeL4Error.NoError;
  });

  const r = m.run({ maxSteps: 100_000 });
  process.stdout.write(m.console());
  assert.deepEqual(results, [42, 43, 44]);
  assert.equal(m.console(), "hello\ngot 42,43,44\n");
  assert.equal(r.reason, "idle");
  // The root task's exit fault had no handler: the kernel made it Inactive.
  assert.equal(k.rootThread.state, ThreadState.Inactive);
  assert.ok(EXIT_FAULT_NUMBER > 0);
});

test("a VM fault goes to the fault handler, which maps the page; the exit fault follows", () => {
  const k = bootKernel();
  const m = new Machine(k, { afterEachEntry: (kk) => checkInvariants(kk) });
  const VADDR = 0x5000_0000;
  const child = m.program(function* (u: UserThread) {
    const ok = yield* u.write32(VADDR + 8, 0xcafe);
    const v = yield* u.read32(VADDR + 8);
    yield* seL4_DebugPutString(u, `child ${ok} ${v?.toString(16)}\n`);
    return 7;
  });
  const faults: number[][] = [];
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const frame = yield* a.alloc(u, ObjectType.SmallPage);
    yield* createThread(u, a, { entry: child, faultEp: ep, priority: 100 });
    let r = yield* seL4_Recv(u, ep, reply);
    for (;;) {
      const label = seL4_MessageInfo_get_label(r.info);
      const mrs: number[] = [label];
      for (let i = 0; i < seL4_MessageInfo_get_length(r.info); i++) mrs.push(seL4_GetMR(u, i));
      faults.push(mrs);
      if (label !== FaultType.VMFault) break;
      assert.equal(yield* mapPage(u, a, frame, VADDR), SeL4Error.NoError);
      r = yield* seL4_ReplyRecv(u, ep, seL4_MessageInfo_new(0, 0, 0, 0), reply);
    }
  });
  const r = m.run({ maxSteps: 100_000 });
  assert.equal(r.reason, "idle");
  assert.equal(m.console(), "child true cafe\n");
  assert.equal(faults.length, 2);
  const [vm, exit] = faults as [number[], number[]];
  assert.equal(vm[0], FaultType.VMFault);
  assert.equal(vm[2], VADDR + 8); // address
  assert.equal(vm[3], 0); // not a prefetch fault
  assert.equal(exit[0], FaultType.UserException);
  assert.equal(exit[4], EXIT_FAULT_NUMBER);
  assert.equal(exit[5], 7);
});

test("two threads of equal priority share the core by their budgets", () => {
  const k = bootKernel();
  const m = new Machine(k, { afterEachEntry: (kk) => checkInvariants(kk) });
  const log: string[] = [];
  const worker = m.program(function* (u: UserThread, id: number) {
    for (let i = 0; i < 3; i++) {
      yield* u.compute(1_500_000);
      log.push(`${id}@${Math.round(u.now() / 1e5) / 10}ms`);
    }
  });
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    for (const id of [1, 2]) {
      yield* createThread(u, a, {
        entry: worker,
        args: [id],
        priority: 50,
        budgetUs: 1000,
        ipcBuffer: false,
      });
    }
  });
  const r = m.run({ maxNs: 50_000_000 });
  assert.equal(r.reason, "idle");
  // seL4 enqueues a resumed lower-priority thread at the head of its queue, so the second thread
  // created runs first; then round robin by 1 ms budgets: 1.5 ms of work ends in a second slice.
  assert.deepEqual(
    log.map((s) => s.split("@")[0]),
    ["2", "1", "2", "1", "2", "1"],
  );
  assert.equal(log[0], "2@2.5ms");
  process.stdout.write(`${log.join(" ")}\n`);
});

test("an external interrupt wakes a thread waiting on a notification, on core 1", () => {
  const k = bootKernel({ cores: 2 });
  const m = new Machine(k, { afterEachEntry: (kk) => checkInvariants(kk) });
  const LINE = 33;
  let woke = -1;
  const handler = m.program(function* (u: UserThread, ntfn: number, irq: number) {
    const r = yield* seL4_Wait(u, ntfn);
    woke = u.now();
    assert.equal(r.sender, 1);
    assert.equal(u.core, 1);
    assert.equal(yield* seL4_IRQHandler_Ack(u, irq), SeL4Error.NoError);
  });
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const badged = a.slot();
    assert.equal(
      yield* seL4_CNode_Mint(
        u,
        seL4_CapInitThreadCNode,
        badged,
        64,
        seL4_CapInitThreadCNode,
        ntfn,
        64,
        seL4_AllRights,
        1,
      ),
      SeL4Error.NoError,
    );
    const irq = a.slot();
    assert.equal(
      yield* seL4_IRQControl_Get(u, seL4_CapIRQControl, LINE, seL4_CapInitThreadCNode, irq, 64),
      0,
    );
    assert.equal(yield* seL4_IRQHandler_SetNotification(u, irq, badged), 0);
    yield* createThread(u, a, { entry: handler, args: [ntfn, irq], priority: 10, core: 1 });
  });
  m.raiseAt(5_000_000, LINE);
  const r = m.run({ maxSteps: 100_000 });
  assert.equal(r.reason, "idle");
  assert.ok(woke >= 5_000_000 && woke < 5_010_000, `woke at ${woke}`);
});

test("an interrupt during a long Revoke preempts it; the syscall restarts and completes", () => {
  const k = bootKernel();
  const m = new Machine(k, { afterEachEntry: (kk) => checkInvariants(kk) });
  const LINE = 40;
  const order: string[] = [];
  const handler = m.program(function* (u: UserThread, ntfn: number) {
    yield* seL4_Wait(u, ntfn);
    order.push("irq");
  });
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const irq = a.slot();
    assert.equal(
      yield* seL4_IRQControl_Get(u, seL4_CapIRQControl, LINE, seL4_CapInitThreadCNode, irq, 64),
      0,
    );
    assert.equal(yield* seL4_IRQHandler_SetNotification(u, irq, ntfn), 0);
    yield* createThread(u, a, { entry: handler, args: [ntfn], priority: 254, ipcBuffer: false });
    // Below the handler, so that it runs as soon as the preempted Revoke lets the interrupt in.
    assert.equal(yield* seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 100), 0);
    // An untyped with 250 endpoints carved from it.
    const ut = yield* a.alloc(u, ObjectType.Untyped, 16);
    const first = a.slot();
    for (let i = 1; i < 250; i++) a.slot();
    assert.equal(
      yield* seL4_Untyped_Retype(u, ut, ObjectType.Endpoint, 0, seL4_CapInitThreadCNode, 0, 0, first, 250),
      SeL4Error.NoError,
    );
    // The interrupt falls due while the kernel runs the Revoke.
    m.raiseAt(u.now() + 50, LINE);
    const before = k.stats.preemptions;
    assert.equal(yield* seL4_CNode_Revoke(u, seL4_CapInitThreadCNode, ut, 64), SeL4Error.NoError);
    order.push("revoked");
    assert.ok(k.stats.preemptions > before, "the Revoke was preempted");
  });
  const r = m.run({ maxSteps: 100_000 });
  assert.equal(r.reason, "idle");
  assert.deepEqual(order, ["irq", "revoked"]);
});
