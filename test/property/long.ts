/**
 * `npm run fuzz:kernel -- --ops N --seed S`: the property of kernel.test.ts for N operations
 * (default 5,000,000). Prints progress and the counters; on a failure fast-check prints the
 * seed and the shrunk counterexample, and the exit code is 1.
 */
import fc from "fast-check";
import { newStats, type Op, runOps } from "./random-syscalls.js";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    console.error(`--${name} needs a non-negative number`);
    process.exit(2);
  }
  return v;
}

const total = arg("ops", 5_000_000);
const seed = arg("seed", Date.now() % 2 ** 31);
const perRun = 2_000;
const u32 = fc.nat({ max: 0xffffffff });
const opArb: fc.Arbitrary<Op> = fc.tuple(u32, u32, u32, u32, u32, u32, u32, u32);
const stats = newStats();
const t0 = Date.now();
let lastReport = t0;
console.log(`fuzz:kernel: ${total} operations, seed ${seed}`);
fc.assert(
  fc.property(fc.array(opArb, { minLength: perRun, maxLength: perRun }), (ops) => {
    runOps(ops, stats);
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      console.log(
        `  ${stats.ops} ops, ${stats.syscalls} syscalls, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
      );
    }
  }),
  { numRuns: Math.max(1, Math.ceil(total / perRun)), seed },
);
const s = (Date.now() - t0) / 1000;
console.log(
  `ok: ${stats.ops} ops (${stats.syscalls} syscalls, ${stats.kernelAnswers} kernel answers checked, ` +
    `${stats.interrupts} interrupts, ${stats.faults} faults) in ${s.toFixed(1)} s, invariants held after every step`,
);
