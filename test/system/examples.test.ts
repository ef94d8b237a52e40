/**
 * The examples of examples/ booted end to end, with what each one proves asserted on its output
 * and on kernel state: the queue (shared memory coherent at kernel entry and exit, notifications
 * both ways, flow control), restart (a trap is a fault delivered to the parent, which restarts
 * the child), traps (each Wasm trap kind reported as its own user exception), the spinners
 * (preemption of `while (1) {}` and MCS budgets), and the default system of `npm start`.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { SchedContext } from "../../src/kernel/structures.js";
import { ThreadState } from "../../src/kernel/types.js";
import { type BootedSystem, bootSystem } from "../../src/system/boot.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const EXAMPLES = join(ROOT, "examples");
const MAIN = join(ROOT, "dist/src/cli/main.js");

before(() => {
  execFileSync("sh", [join(ROOT, "scripts/build-examples.sh")], { stdio: ["ignore", "inherit", "inherit"] });
});

interface Entry {
  /** Host time (ms, performance.now()) when the line or event arrived. */
  at: number;
  pd: string;
  text: string;
  event: boolean;
}

interface Run {
  sys: BootedSystem;
  log: Entry[];
  /** Lines of one PD, in order. */
  lines(pd: string): string[];
  events(): string[];
}

const running: BootedSystem[] = [];
after(async () => {
  for (const s of running) await s.stop();
});

/** Boot a system and record its output and events until `done` holds (or time runs out). */
async function runUntil(file: string, done: (r: Run) => boolean, ms = 15_000): Promise<Run> {
  // One system at a time: the spinners of an earlier test would take host cores from this one
  // (the host has as few as two), and the budget tests measure what a PD gets of its core.
  for (let s = running.pop(); s !== undefined; s = running.pop()) await s.stop();
  const log: Entry[] = [];
  const sys = await bootSystem(file, {
    cores: 2,
    onLine: (pd, text) => log.push({ at: performance.now(), pd, text, event: false }),
    onEvent: (pd, text) => log.push({ at: performance.now(), pd, text, event: true }),
  });
  running.push(sys);
  const r: Run = {
    sys,
    log,
    lines: (pd) => log.filter((e) => !e.event && e.pd === pd).map((e) => e.text),
    events: () => log.filter((e) => e.event).map((e) => `${e.pd}: ${e.text}`),
  };
  const t0 = Date.now();
  while (!done(r) && Date.now() - t0 < ms) await new Promise((res) => setTimeout(res, 5));
  return r;
}

/** Index of the last log entry that satisfies `p` (-1 if none). */
function lastIndex(log: Entry[], p: (e: Entry) => boolean): number {
  for (let i = log.length - 1; i >= 0; i--) if (p(log[i]!)) return i;
  return -1;
}

function pdOf(r: Run, name: string) {
  const p = r.sys.loaded.pds.find((x) => x.pd.name === name);
  assert.ok(p !== undefined, `no PD ${name}`);
  return p;
}

function stateOf(r: Run, name: string): string {
  return ThreadState[pdOf(r, name).tcb.state]!;
}

/**
 * The PD's kernel thread state once it reaches `want` (or after 2 s): a PD that has printed its
 * last line may still be on its way to its next receive, or waiting for a refill to get there.
 */
async function settledState(r: Run, name: string, want: string): Promise<string> {
  const t0 = Date.now();
  while (stateOf(r, name) !== want && Date.now() - t0 < 2000) await new Promise((res) => setTimeout(res, 5));
  return stateOf(r, name);
}

// ---------------------------------------------------------------------------------- the queue

/** What producer.c and consumer.c compute: item i and the order-sensitive checksum. */
function queueChecksum(items: number): string {
  let sum = 0;
  for (let i = 0; i < items; i++) {
    const item = Math.imul(i + 1, 2654435761) >>> 0;
    sum = (Math.imul(sum, 31) + item) >>> 0;
  }
  return `0x${sum.toString(16).padStart(8, "0")}`;
}

test("queue: 1000 items through a shared ring buffer arrive once and in order (one core)", async () => {
  const sum = queueChecksum(1000);
  const r = await runUntil(join(EXAMPLES, "queue/queue.system"), (x) => x.lines("consumer").length >= 2);
  assert.deepEqual(r.lines("producer"), [
    "producer: queue at 0x00200000",
    // 1000 items, 64 slots: the producer (higher priority) fills the queue 15 times before the last 40.
    `producer: sent 1000 items, checksum ${sum}, waited for room 15 times`,
  ]);
  assert.deepEqual(r.lines("consumer"), [
    "consumer: queue at 0x00100000",
    `consumer: received 1000 items, 0 out of order or lost, checksum ${sum}`,
  ]);
  assert.deepEqual(r.events(), []);
  assert.equal(r.sys.kernel.stats.faults, 0);
  assert.equal(await settledState(r, "producer", "BlockedOnNotification"), "BlockedOnNotification");
  assert.equal(await settledState(r, "consumer", "BlockedOnNotification"), "BlockedOnNotification");
});

test("queue: producer and consumer on different cores, running at the same time", async () => {
  // The same images with the consumer on core 1: both PDs now write the region concurrently,
  // each only its own index, which per-PD copies must not lose (README, shared memory).
  const dir = mkdtempSync(join(tmpdir(), "capvisor-queue-"));
  const file = join(dir, "queue-2cores.system");
  const text = readFileSync(join(EXAMPLES, "queue/queue.system"), "utf8")
    .replace('name="consumer" priority="100"', 'name="consumer" priority="100" cpu="1"')
    .replaceAll('path="', `path="${join(EXAMPLES, "queue")}/`);
  assert.match(text, /cpu="1"/);
  writeFileSync(file, text);
  const sum = queueChecksum(1000);
  const r = await runUntil(file, (x) => x.lines("consumer").length >= 2 && x.lines("producer").length >= 2);
  assert.equal(pdOf(r, "consumer").tcb.core, 1);
  assert.equal(pdOf(r, "producer").tcb.core, 0);
  assert.deepEqual(r.lines("consumer"), [
    "consumer: queue at 0x00100000",
    `consumer: received 1000 items, 0 out of order or lost, checksum ${sum}`,
  ]);
  const p = r.lines("producer");
  assert.equal(p.length, 2, p.join("\n"));
  // How often the producer found the queue full depends on the two cores' timing.
  assert.match(p[1]!, new RegExp(`^producer: sent 1000 items, checksum ${sum}, waited for room \\d+ times$`));
  assert.deepEqual(r.events(), []);
});

// ------------------------------------------------------------------------------- restart

const BYSTANDER = [
  "bystander: round 1 sum 32896",
  "bystander: round 2 sum 296320",
  "bystander: round 3 sum 2173696",
  "bystander: round 4 sum 15348992",
  "bystander: round 5 sum 107609984",
  "bystander: round 6 sum 753471104",
  "bystander: round 7 sum 979566080",
  "bystander: round 8 sum 2562265600",
  "bystander: round 9 sum 756295296",
  "bystander: round 10 sum 999440256",
  "bystander: done",
];

test("restart: the child traps, the parent's fault() gets it and restarts the child", async () => {
  const r = await runUntil(
    join(EXAMPLES, "restart/restart.system"),
    (x) => x.lines("bystander").includes("bystander: done") && x.lines("parent").length >= 4,
  );
  assert.deepEqual(r.lines("child"), [
    "child: run 1",
    "child: writing through a bad pointer",
    "child: run 2",
    "child: running normally",
  ]);
  assert.deepEqual(r.lines("parent"), [
    "parent: ready",
    // UserException (label 3), trap number 2: out of bounds memory access (docs/wasm-abi.md).
    "parent: child 0 faulted: label 3 (user exception), trap number 2",
    "parent: restarting child 0",
    "parent: child is back after 1 restart(s)",
  ]);
  assert.deepEqual(r.events(), ["child: trapped: out of bounds memory access (user exception 2)"]);
  // In order: the trap, then the parent's fault(), then the second run of the child.
  const at = (pd: string, text: string) => r.log.findIndex((e) => e.pd === pd && e.text === text);
  const trap = r.log.findIndex((e) => e.event);
  assert.ok(at("child", "child: writing through a bad pointer") < trap);
  assert.ok(trap < at("parent", "parent: child 0 faulted: label 3 (user exception), trap number 2"));
  assert.ok(at("parent", "parent: restarting child 0") < at("child", "child: run 2"));
  // The unrelated PD on the other core did all its rounds, with the right results, some of them
  // after the fault.
  assert.deepEqual(r.lines("bystander"), BYSTANDER);
  assert.ok(lastIndex(r.log, (e) => e.pd === "bystander") > trap);
  // Kernel state: exactly one fault, delivered and answered by a restart; everyone is waiting.
  const k = r.sys.kernel;
  assert.equal(k.stats.faults, 1);
  assert.equal(pdOf(r, "child").tcb.fault, null);
  assert.equal(await settledState(r, "child", "BlockedOnNotification"), "BlockedOnNotification");
  assert.equal(await settledState(r, "parent", "BlockedOnReceive"), "BlockedOnReceive");
  assert.equal(await settledState(r, "bystander", "BlockedOnNotification"), "BlockedOnNotification");
});

test("traps: each Wasm trap kind is reported as its own user exception; other PDs run on", async () => {
  const kinds: [string, string][] = [
    ["unreachable", "unreachable executed"],
    ["out_of_bounds", "out of bounds memory access"],
    ["stack_overflow", "call stack exhausted"],
    ["divide_by_zero", "integer divide by zero or overflow"],
  ];
  const r = await runUntil(
    join(EXAMPLES, "restart/traps.system"),
    (x) =>
      x.lines("bystander").includes("bystander: done") &&
      x.events().filter((e) => e.endsWith("it stays stopped")).length >= kinds.length,
  );
  const events = r.events();
  for (const [i, [pd, what]] of kinds.entries()) {
    assert.deepEqual(r.lines(pd), [`${pd}: about to trap`]);
    // The platform's report names the user exception number (docs/wasm-abi.md, 1..4) ...
    assert.ok(events.includes(`${pd}: trapped: ${what} (user exception ${i + 1})`), events.join("\n"));
    // ... and the monitor's, from the fault message the kernel sent it, says what happens next.
    assert.ok(events.includes(`${pd}: trapped: ${what}; it stays stopped`), events.join("\n"));
    // The monitor did not reply: its next receive on the same reply object left the PD Inactive.
    assert.equal(await settledState(r, pd, "Inactive"), "Inactive");
  }
  assert.equal(events.length, 2 * kinds.length, events.join("\n"));
  assert.equal(r.sys.kernel.stats.faults, kinds.length);
  assert.deepEqual(r.lines("bystander"), BYSTANDER);
  const lastTrap = lastIndex(r.log, (e) => e.event);
  assert.ok(lastIndex(r.log, (e) => e.pd === "bystander") > lastTrap);
  assert.equal(await settledState(r, "bystander", "BlockedOnNotification"), "BlockedOnNotification");
});

// ------------------------------------------------------------------------------- spinners

/** Sum of the SC's refill amounts (ns): an SC never holds more than its budget. */
function refillSum(sc: SchedContext): number {
  let s = 0;
  for (let i = 0; i < sc.refillCount; i++) s += sc.refills[2 * ((sc.refillHead + i) % sc.maxRefills) + 1]!;
  return s;
}

test("spinners: while (1) {} is preempted by priority and held to its budget", async () => {
  const TICKS = 10;
  // The hog's consumption between ticker ticks 2 and 10 (after start-up), in kernel time.
  const w = { t0: 0, c0: 0, t1: 0, c1: 0 };
  const r = await runUntil(join(EXAMPLES, "spinner/spinner.system"), (x) => {
    const ticks = x.lines("ticker").length;
    const hog = pdOf(x, "hog").tcb.sc!;
    if (w.t0 === 0 && ticks >= 2) {
      w.t0 = x.sys.platform.now();
      w.c0 = hog.consumed;
    }
    if (w.t0 !== 0 && w.t1 === 0 && ticks >= TICKS) {
      w.t1 = x.sys.platform.now();
      w.c1 = hog.consumed;
    }
    return x.lines("ticker").includes("ticker: done") && w.t1 !== 0;
  });
  const seq = (pd: string) => Array.from({ length: TICKS }, (_, i) => `${pd}: tick ${i + 1}`);
  assert.deepEqual(r.lines("ticker"), [...seq("ticker"), "ticker: done"]);
  // The ticker ticks again only when both handlers answered (examples/spinner/ticker.c): TICKS
  // ticks mean both handlers got the core every time, next to PDs that never make a syscall.
  assert.deepEqual(r.lines("responder"), seq("responder"));
  assert.deepEqual(r.lines("worker"), seq("worker"));
  assert.deepEqual(r.lines("spinner"), ["spinner: spinning"]);
  assert.deepEqual(r.lines("hog"), ["hog: spinning"]);
  assert.deepEqual(r.events(), []);

  // Latency from the ticker's line to each handler's line, on the host clock.
  const latency = (pd: string) =>
    seq(pd).map((text, i) => {
      const t = r.log.find((e) => e.pd === "ticker" && e.text === `ticker: tick ${i + 1}`)!.at;
      return r.log.find((e) => e.pd === pd && e.text === text)!.at - t;
    });
  const resp = latency("responder");
  const work = latency("worker");
  const fmt = (xs: number[]) =>
    `median ${[...xs].sort((a, b) => a - b)[xs.length >> 1]!.toFixed(2)} ms, max ${Math.max(...xs).toFixed(2)} ms`;
  console.log(`# responder (over a spinner, other core): ${fmt(resp)}`);
  console.log(`# worker (next to the budgeted hog, same core): ${fmt(work)}`);
  // The figures are printed above (typically 1-2 ms: a preemption check every 20,000 loop
  // iterations plus a few thread hand-offs). Host scheduling on a loaded 2-core machine can
  // stretch them, so the test only bounds them by a second, which still catches a handler that
  // waited for a spinner's budget to run out many times over instead of preempting it.
  for (const l of [...resp, ...work]) assert.ok(l < 1000, `handler latency ${l.toFixed(1)} ms`);

  // The hog asks for the whole core; its SC (2 ms every 10 ms) gives it 20%.
  const hog = pdOf(r, "hog").tcb.sc!;
  assert.equal(hog.budget, 2_000_000);
  assert.equal(hog.period, 10_000_000);
  assert.ok(refillSum(hog) <= hog.budget, "refills never exceed the budget");
  assert.ok(w.t1 > w.t0, "the measurement window closed");
  const share = (w.c1 - w.c0) / (w.t1 - w.t0);
  console.log(
    `# hog: ${((w.c1 - w.c0) / 1e6).toFixed(1)} ms consumed in ${((w.t1 - w.t0) / 1e6).toFixed(1)} ms: ${(100 * share).toFixed(1)}% (budget/period 20%)`,
  );
  // MCS promises at most `budget` in any `period` (the window is 8 ticker periods, 400 ms, so one
  // extra budget would be 0.5%). Without budget enforcement the hog would take all of core 1's
  // idle time (about 95%). The worker and the ticker take little of core 1, so the hog gets
  // nearly all of its budget; it got 12-14% while overruns split it into refills a period apart.
  assert.ok(share <= 0.21, `hog share ${share}`);
  assert.ok(share >= 0.15, `hog share ${share}`);
  // The spinner on core 0 has no budget limit (budget = period: round robin): it gets the rest.
  const spinner = pdOf(r, "spinner").tcb.sc!;
  assert.ok(spinner.consumed > 2 * hog.consumed, "the unlimited spinner ran most of the time");
  assert.equal(await settledState(r, "responder", "BlockedOnNotification"), "BlockedOnNotification");
  assert.equal(await settledState(r, "worker", "BlockedOnNotification"), "BlockedOnNotification");
  assert.equal(r.sys.kernel.stats.faults, 0);
});

/** Write a system description into a fresh directory; `path="..."` is resolved from EXAMPLES. */
function tempSystem(name: string, xml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "capvisor-")), name);
  writeFileSync(file, xml.replaceAll('path="', `path="${EXAMPLES}/`));
  return file;
}

test("budget: a Wasm PD spinning alone on its core gets its 2 ms every 10 ms, and no more", async (t) => {
  // The hog of spinner.system without the worker and the ticker; core 0 is kept busy by the
  // unlimited spinner, as in examples/wasm-pds.system, so the platform's main thread is too.
  const file = tempSystem(
    "budget.system",
    `<system>
  <protection_domain name="spinner" priority="1" cpu="0"><program_image path="spinner/spinner.wasm" /></protection_domain>
  <protection_domain name="hog" priority="50" budget="2000" period="10000" cpu="1"><program_image path="spinner/spinner.wasm" /></protection_domain>
</system>`,
  );
  // Kernel time and the hog's consumed time, 0.5 s after boot (start-up done) and 3 s later.
  const w = { t0: 0, c0: 0, t1: 0, c1: 0 };
  const r = await runUntil(file, (x) => {
    const sc = pdOf(x, "hog").tcb.sc!;
    const now = x.sys.platform.now();
    if (w.t0 === 0 && x.lines("hog").length > 0 && now >= 500e6) {
      w.t0 = now;
      w.c0 = sc.consumed;
    }
    if (w.t0 !== 0 && now - w.t0 >= 3000e6) {
      w.t1 = now;
      w.c1 = sc.consumed;
    }
    return w.t1 !== 0;
  });
  assert.deepEqual(r.lines("hog"), ["hog: spinning"]);
  assert.deepEqual(r.events(), []);
  assert.ok(w.t1 > 0, "the measurement window closed");
  const sc = pdOf(r, "hog").tcb.sc!;
  assert.equal(sc.budget, 2_000_000);
  assert.ok(refillSum(sc) <= sc.budget, "refills never exceed the budget");
  const share = (w.c1 - w.c0) / (w.t1 - w.t0);
  t.diagnostic(`the hog used ${(100 * share).toFixed(1)}% of core 1 (budget/period 20%)`);
  // MCS: at most `budget` in any `period`, so over 3 s at most 20% plus one budget (0.07%); the
  // kernel takes the timer interrupt at the deadline however late the worker's check and the
  // hand-off are. And a PD alone on its core gets its budget: only releases that the host wakes
  // late (about 0.1 ms each on an idle host) are lost. It got 12-14% when overruns split its
  // budget into refills a period apart.
  assert.ok(share <= 0.205, `hog share ${share}`);
  assert.ok(share >= 0.15, `hog share ${share}`);
});

// ------------------------------------------------------------------------- passive servers

test("passive server: its clients start only after its init() ends, then every call is answered on theirs", async () => {
  // slowpong is passive on core 0 and takes a while in init(); ping (examples/pingpong/ping.c)
  // calls it at once when it starts, from core 1. Were ping started with it, its call would be
  // waiting when slowpong first receives, and slowpong would serve it on its own SC just as the
  // monitor takes that SC away (both hung, in about 1 boot of 3). The monitor starts ping only
  // once slowpong's init() is done (loader.ts, monitor.ts).
  const dir = mkdtempSync(join(tmpdir(), "capvisor-passive-"));
  writeFileSync(
    join(dir, "slowpong.c"),
    `#include <microkit.h>
void init(void)
{
    for (volatile unsigned i = 0; i < 3000000; i++) {
    }
    microkit_dbg_puts("slowpong: ready\\n");
}
microkit_msginfo protected(microkit_channel ch, microkit_msginfo msginfo)
{
    microkit_mr_set(0, microkit_mr_get(0) + 1);
    return microkit_msginfo_new(0, 1);
}
void notified(microkit_channel ch)
{
    microkit_dbg_puts("slowpong: notified\\n");
}
`,
  );
  execFileSync(join(ROOT, "scripts/build-c-pd.sh"), [join(dir, "slowpong.wasm"), join(dir, "slowpong.c")]);
  const file = join(dir, "passive.system");
  writeFileSync(
    file,
    `<system>
  <protection_domain name="slowpong" priority="150" passive="true" cpu="0"><program_image path="slowpong.wasm" /></protection_domain>
  <protection_domain name="ping" priority="100" cpu="1"><program_image path="${EXAMPLES}/pingpong/ping.wasm" /></protection_domain>
  <channel><end pd="ping" id="0" pp="true" /><end pd="slowpong" id="0" /></channel>
</system>`,
  );
  const r = await runUntil(file, (x) => x.lines("slowpong").includes("slowpong: notified"), 10_000);
  assert.deepEqual(r.lines("ping")[0], "ping: start");
  assert.ok(
    r.log.findIndex((e) => e.text === "slowpong: ready") < r.log.findIndex((e) => e.text === "ping: start"),
    "ping started before slowpong's init() ended",
  );
  assert.ok(r.lines("ping").includes("ping: done, counter = 5"), r.lines("ping").join("\n"));
  assert.deepEqual(r.lines("slowpong"), ["slowpong: ready", "slowpong: notified"]);
  assert.deepEqual(r.events(), []);
  // It is passive: its SC went to its notification (which lent it back to run notified(), until
  // slowpong waits again).
  const pong = pdOf(r, "slowpong");
  const t0 = Date.now();
  while (pong.tcb.sc !== null && Date.now() - t0 < 2000) await new Promise((res) => setTimeout(res, 5));
  assert.equal(pong.tcb.sc, null);
  assert.notEqual(pong.tcb.boundNotification?.sc ?? null, null);
});

// ------------------------------------------------------------------------------- default

test("the Wasm PD showcase (examples/wasm-pds.system) runs ping-pong, the queue and the spinners together", () => {
  const res = spawnSync(process.execPath, [MAIN, "up", join(EXAMPLES, "wasm-pds.system"), "--for", "3000"], {
    encoding: "utf8",
  });
  assert.equal(res.status, 0, res.stderr);
  const out = res.stdout.split("\n").filter((l) => l !== "");
  const sum = queueChecksum(1000);
  for (const line of [
    "[pong] pong: ready",
    "[ping] ping: done, counter = 5",
    "[pong] pong: notified by ping",
    `[producer] producer: sent 1000 items, checksum ${sum}, waited for room 15 times`,
    `[consumer] consumer: received 1000 items, 0 out of order or lost, checksum ${sum}`,
    "[spinner] spinner: spinning",
    "[hog] hog: spinning",
    "[ticker] ticker: done",
    "[responder] responder: tick 10",
    "[worker] worker: tick 10",
  ])
    assert.ok(out.includes(line), `missing ${line} in\n${res.stdout}`);
  assert.doesNotMatch(res.stderr, /!!/);
  assert.match(res.stderr, /^ {2}spinner +Running +core 0$/m);
  assert.match(res.stderr, /^ {2}pong +BlockedOnReceive/m);
});
