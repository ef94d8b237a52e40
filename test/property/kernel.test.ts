/**
 * Property test (quick mode, part of `npm test`): at least 100,000 random kernel operations over
 * fresh systems, each checked for host exceptions, seL4 answers and the kernel invariants.
 * `npm run fuzz:kernel` runs the same property for millions of operations.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { newStats, type Op, runOps } from "./random-syscalls.js";

const u32 = fc.nat({ max: 0xffffffff });
export const opArb: fc.Arbitrary<Op> = fc.tuple(u32, u32, u32, u32, u32, u32, u32, u32);

test("random syscalls: no host exception, seL4 answers, invariants hold (100,000 ops)", () => {
  const stats = newStats();
  const OPS_PER_RUN = 2_000;
  const RUNS = 60;
  fc.assert(
    fc.property(fc.array(opArb, { minLength: OPS_PER_RUN, maxLength: OPS_PER_RUN }), (ops) => {
      runOps(ops, stats);
    }),
    { numRuns: RUNS, seed: 20261125, endOnFailure: false },
  );
  // Steps where every core was idle only let time pass: they do not count as operations.
  const operations = stats.ops - stats.idle;
  assert.ok(operations >= 100_000, `only ${operations} kernel operations ran`);
  // The run must really exercise the kernel, not just idle cores.
  assert.ok(
    stats.syscalls > operations / 4,
    `only ${stats.syscalls} worker syscalls in ${operations} operations`,
  );
  assert.ok(stats.kernelAnswers > 1000, `only ${stats.kernelAnswers} kernel invocations answered`);
});
