/**
 * A thread alone at its priority on a round-robin scheduling context (budget == period, the
 * Microkit default) runs without budget-end timer interrupts (setNextInterrupt in
 * src/kernel/core/thread.ts). What a program can observe must not change: its consumed time as
 * another core reads it, and a thread that becomes ready at its priority, which gets the core
 * at the next budget end, as on seL4. Run on the deterministic Machine, two cores.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bootKernel } from "../../src/kernel/core/boot.js";
import { checkInvariants } from "../../src/kernel/invariants.js";
import type { Kernel } from "../../src/kernel/state.js";
import { SeL4Error } from "../../src/kernel/types.js";
import { Allocator, createThread, startThread } from "../../src/pd/alloc.js";
import {
  seL4_SchedContext_Consumed,
  seL4_SchedControl_ConfigureFlags,
} from "../../src/pd/libsel4-invocations.js";
import { Machine, type UserThread } from "../../src/pd/machine.js";

const US = 1_000;
const MS = 1_000_000;

function boot(): { k: Kernel; m: Machine } {
  const k = bootKernel({ cores: 2 });
  return { k, m: new Machine(k, { afterEachEntry: (kk) => checkInvariants(kk) }) };
}

/** A program that computes in 10 µs steps forever, logging the virtual time of each step. */
function spinner(m: Machine, log: number[]): number {
  return m.program(function* (u: UserThread) {
    for (;;) {
      yield* u.compute(10 * US);
      log.push(u.now());
    }
  });
}

test("a lone round-robin thread takes no budget-end interrupts, and its consumed time is exact", () => {
  const { k, m } = boot();
  const steps: number[] = [];
  const spin = spinner(m, steps);
  let consumedUs = -1;
  let timerInterrupts = -1;
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    const t = yield* createThread(u, a, { entry: spin, priority: 100, core: 1, budgetUs: 1000 });
    const before = k.stats.timerInterrupts;
    // The root task, alone on core 0, computes while the spinner runs alone on core 1.
    yield* u.compute(20.5 * MS);
    timerInterrupts = k.stats.timerInterrupts - before;
    const r = yield* seL4_SchedContext_Consumed(u, t.sc);
    assert.equal(r.error, SeL4Error.NoError);
    consumedUs = r.consumed;
  });
  m.run({ maxNs: 21 * MS, maxSteps: 1_000_000 });
  // seL4 takes about 20 timer interrupts here (one per 1 ms budget); capvisor takes none.
  assert.equal(timerInterrupts, 0);
  // The spinner ran the whole 20.5 ms: 2050 steps of 10 µs, give or take the root's syscalls.
  assert.ok(steps.length >= 2040, `the spinner ran ${steps.length} steps`);
  // As on seL4, reading it from another core stalls the spinner's core, which charges its time
  // up to now (remoteTCBStall): all 20.5 ms, give or take the root's syscalls.
  assert.ok(consumedUs >= 20_400 && consumedUs <= 20_600, `consumed ${consumedUs} µs`);
});

test("a thread made ready at a lone thread's priority gets the core at its next budget end", () => {
  const { k, m } = boot();
  const a1: number[] = [];
  const b1: number[] = [];
  const spinA = spinner(m, a1);
  const spinB = spinner(m, b1);
  let resumedB = -1;
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    yield* createThread(u, a, { entry: spinA, priority: 100, core: 1, budgetUs: 1000 });
    yield* u.compute(10.3 * MS);
    resumedB = u.now();
    yield* createThread(u, a, { entry: spinB, priority: 100, core: 1, budgetUs: 1000 });
    yield* u.compute(20 * MS);
  });
  m.run({ maxNs: 30 * MS, maxSteps: 1_000_000 });
  assert.ok(resumedB > 0 && b1.length > 0);
  // B waits for A's timeslice to end: A's budget ends fall 1 ms apart from its start (A's first
  // step ended 10 µs after it started).
  const aStart = a1[0]! - 10 * US;
  const firstB = b1[0]! - 10 * US;
  const boundary = aStart + Math.ceil((resumedB - aStart) / MS) * MS;
  assert.ok(firstB >= resumedB, `B ran at ${firstB}, before it was resumed at ${resumedB}`);
  assert.ok(Math.abs(firstB - boundary) <= 20 * US, `B ran at ${firstB}, A's budget ended at ${boundary}`);
  // From then on they take turns, one budget each: about the same number of 10 µs steps.
  const aAfter = a1.filter((t) => t > firstB).length;
  assert.ok(Math.abs(aAfter - b1.length) <= 110, `A ran ${aAfter} steps and B ${b1.length} after B started`);
  assert.ok(b1.length >= 850, `B ran ${b1.length} steps`);
});

test("a lone thread that gives its own SC a budget below its period is held to it at once", () => {
  const { k, m } = boot();
  const steps: number[] = [];
  let configuredAt = -1;
  const self = m.program(function* (u: UserThread, schedControl: number, sc: number) {
    // Round robin first (tickless), then 2 ms every 10 ms on its own SC, then spin.
    yield* u.compute(5 * MS);
    const err = yield* seL4_SchedControl_ConfigureFlags(u, schedControl, sc, 2000, 10_000, 0, 0, 0);
    assert.equal(err, SeL4Error.NoError);
    configuredAt = u.now();
    for (;;) {
      yield* u.compute(10 * US);
      steps.push(u.now());
    }
  });
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    const t = yield* createThread(u, a, {
      entry: self,
      priority: 100,
      core: 1,
      budgetUs: 1000,
      resume: false,
    });
    // Its arguments: core 1's SchedControl and its own SC (it shares the root task's CSpace).
    yield* startThread(u, t.tcb, self, [a.schedControl + 1, t.sc]);
  });
  m.run({ maxNs: 60 * MS, maxSteps: 1_000_000 });
  assert.ok(configuredAt > 0, "the thread did not configure its SC");
  // From then on 2 ms in every 10: at most 200 steps of 10 µs per period, 5 periods (the first
  // may be shorter: the change keeps the bandwidth the SC already used, refillUpdate). Without
  // its budget end on the timer it would run all 5000.
  const after = steps.filter((t) => t > configuredAt && t <= configuredAt + 50 * MS).length;
  assert.ok(after >= 700 && after <= 1100, `${after} steps in the 50 ms after its budget was set to 20%`);
});
