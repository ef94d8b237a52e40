/**
 * SPIN checks of the cross-VM channel protocol (src/verify/spin.ts, model
 * src/verify/spin/vm-channel.pml): the protocol as docs/vm-channel.md states it is PROVED safe
 * and live, and each variant that breaks one of its rules yields a counterexample of the kind
 * that rule prevents. Needs spin and gcc (sh scripts/setup.sh).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  CHANNEL_CHECKS,
  CHANNEL_MUTANTS,
  COPYING_CHECKS,
  checkChannelProtocol,
  formatSpinVerdict,
  SpinToolMissing,
  type SpinVerdict,
} from "../../src/verify/spin.js";

/** This process's temporary directories (other test runs may be going on at the same time). */
const spinDirs = () => readdirSync(tmpdir()).filter((f) => f.startsWith(`capvisor-spin-${process.pid}-`));

// One run of every check (two at a time); the tests below read its verdicts.
let all: Promise<Map<string, SpinVerdict>> | null = null;
function verdicts(): Promise<Map<string, SpinVerdict>> {
  // Of the copying-PD checks, the documented protocol's counterexample, and the fix at 5 records
  // each way instead of 7 (a fifth of the states); the full set is `node dist/src/verify/spin.js --copying`.
  const byName = (n: string) => COPYING_CHECKS.find((c) => c.name === n)!;
  const fix = byName("vm-channel.copying-pd.signal-before-recheck.safety");
  const copying = [
    byName("vm-channel.copying-pd.safety"),
    { ...fix, defines: fix.defines.map((d) => (d.startsWith("N=") ? "N=5" : d)) },
  ];
  all ??= checkChannelProtocol([...CHANNEL_CHECKS, ...CHANNEL_MUTANTS, ...copying]).then(
    (vs) => new Map(vs.map((v) => [v.name, v])),
  );
  return all;
}
async function verdict(name: string): Promise<SpinVerdict> {
  const v = (await verdicts()).get(name);
  assert.ok(v, `no check named ${name}`);
  return v;
}

test("the protocol as documented: no loss, duplication or deadlock in any interleaving (PROVED)", async () => {
  const v = await verdict("vm-channel.safety");
  assert.equal(v.verdict, "PROVED", formatSpinVerdict(v));
  assert.equal(v.errors, 0);
  // An exhaustive search of a model this size visits far more than a handful of states.
  assert.ok(v.statesStored > 100_000, `only ${v.statesStored} states`);
  assert.ok(v.depthReached > 100);
  // Every temporary directory (model, pan.c, pan, trail) is gone.
  assert.deepEqual(spinDirs(), []);
});

test("the protocol as documented: every record sent is received, under weak fairness (PROVED)", async () => {
  const v = await verdict("vm-channel.progress");
  assert.equal(v.verdict, "PROVED", formatSpinVerdict(v));
  assert.ok(v.statesStored > 100_000);
});

test("producer that does not read tail again after setting waiting: lost wake-up, both ends blocked", async () => {
  const v = await verdict("vm-channel.mutant.no-recheck.safety");
  assert.equal(v.verdict, "COUNTEREXAMPLE");
  assert.equal(v.error, "invalid end state");
  const trail = v.trail!.join("\n");
  assert.match(trail, /final: VMM blocked in seL4_Wait/);
  assert.match(trail, /final: runtime blocked in seL4_Wait/);
  assert.match(trail, /too full: waiting\[(req|resp)\] = 1/);
  assert.match(
    formatSpinVerdict(v),
    /^COUNTEREXAMPLE +vm-channel\.mutant\.no-recheck\.safety \(\d+ states stored, depth \d+/,
  );
});

test("the same lost wake-up breaks progress: an acceptance cycle of the LTL claim", async () => {
  const v = await verdict("vm-channel.mutant.no-recheck.progress");
  assert.equal(v.verdict, "COUNTEREXAMPLE");
  assert.equal(v.error, "acceptance cycle");
  assert.match(v.trail!.join("\n"), /acceptance cycle/);
});

test("consumer that never looks at waiting: a full producer sleeps for ever", async () => {
  const v = await verdict("vm-channel.mutant.no-waiting.safety");
  assert.equal(v.verdict, "COUNTEREXAMPLE");
  assert.equal(v.error, "invalid end state");
  assert.doesNotMatch(v.trail!.join("\n"), /sees waiting/);
});

test("consumer that takes one record per wake (counting notifications): records are left behind", async () => {
  const v = await verdict("vm-channel.mutant.one-per-wake.safety");
  assert.equal(v.verdict, "COUNTEREXAMPLE");
  assert.equal(v.error, "invalid end state");
  // The final state has records in a ring that nobody will take: head != tail.
  const fin = v.trail!.find((l) => l.includes("head=["))!;
  const m = /head=\[(\d+),(\d+)\] tail=\[(\d+),(\d+)\]/.exec(fin)!;
  assert.ok(m[1] !== m[3] || m[2] !== m[4], fin);
});

test("producer that publishes head before the bytes: the consumer reads a stale record", async () => {
  const v = await verdict("vm-channel.mutant.head-first.safety");
  assert.equal(v.verdict, "COUNTEREXAMPLE");
  assert.match(v.error!, /^assertion violated/);
  // Breadth-first search: the shortest such run, publish then read, a few steps long.
  assert.ok(v.depthReached < 30, formatSpinVerdict(v));
  const trail = v.trail!.join("\n");
  assert.match(trail, /published: head\[(req|resp)\] = 1/);
  assert.match(trail, /sees a record in (req|resp) ring/);
});

test("an end that sees the region as decision-5 copies: the documented protocol loses a wake-up", async () => {
  const v = await verdict("vm-channel.copying-pd.safety");
  assert.equal(v.verdict, "COUNTEREXAMPLE", formatSpinVerdict(v));
  assert.equal(v.error, "invalid end state");
  const trail = v.trail!.join("\n");
  // The re-read of tail after setting waiting saw the end's stale copy: still "too little space".
  assert.match(trail, /too full: waiting\[(req|resp)\] = 1 \[copy\]\n.*sees too little space/);
  assert.match(trail, /final: VMM blocked in seL4_Wait/);
});

test("copying ends, producer signals between setting waiting and re-reading tail: PROVED", async () => {
  const v = await verdict("vm-channel.copying-pd.signal-before-recheck.safety");
  assert.equal(v.verdict, "PROVED", formatSpinVerdict(v));
  assert.ok(v.statesStored > 100_000);
});

test("a search cut short by the depth bound is INCOMPLETE, not PROVED; a killed run's directory is swept", async () => {
  await verdicts(); // the sweep must not meet this process's own runs
  const gone = spawnSync(process.execPath, ["-e", "0"]).pid!;
  const stale = join(tmpdir(), `capvisor-spin-${gone}-left`);
  mkdirSync(stale);
  const [v] = await checkChannelProtocol([CHANNEL_CHECKS[0]!], { maxDepth: 40 });
  assert.equal(existsSync(stale), false);
  assert.equal(v!.verdict, "INCOMPLETE", formatSpinVerdict(v!));
  assert.match(v!.incomplete!, /max search depth too small/);
});

test("without spin on PATH: SpinToolMissing telling how to install it", async () => {
  await verdicts(); // not while the other checks still need PATH
  const path = process.env.PATH;
  process.env.PATH = "/nonexistent";
  try {
    await assert.rejects(checkChannelProtocol(), (e: unknown) => {
      assert.ok(e instanceof SpinToolMissing);
      assert.match(e.message, /sh scripts\/setup\.sh/);
      return true;
    });
  } finally {
    process.env.PATH = path;
  }
});
