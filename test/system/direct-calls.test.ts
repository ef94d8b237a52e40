/**
 * Direct protected calls (src/platform/direct-call.ts, system/direct-calls.ts; DESIGN.md decision
 * 3): a caller runs a qualifying passive server's protected() in its own worker. What a PD can
 * observe must not change: each system runs twice, with direct calls and with every call through
 * the kernel, and prints the same, faults the same way and ends in the same kernel states; only
 * the count of direct calls differs. A server whose protected() makes system calls is not
 * called directly.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { SchedContext } from "../../src/kernel/structures.js";
import { directCallBlocker } from "../../src/pd/wasm/direct-call.js";
import { instrumentPreemption } from "../../src/pd/wasm/instrument.js";
import { type BootedSystem, bootSystem } from "../../src/system/boot.js";
import { cPds, ROOT, sleep } from "../fixtures.js";

const pds = cPds("direct", "test/system/direct", [
  ["calc.wasm", "calc.c"],
  ["client1.wasm", "client.c", "-DMODE=1"],
  ["client2.wasm", "client.c", "-DMODE=2"],
  ["client3.wasm", "client.c", "-DMODE=3"],
]);
const OUT = pds.out;

const system = pds.systemFile;

/** A client calling calc (a passive server), and a bystander; the client's <protection_domain> attributes. */
const calcSystem = (client: string, attrs = "") =>
  system(`<system>
    <protection_domain name="calc" priority="150" passive="true">
        <program_image path="${OUT}/calc.wasm" />
    </protection_domain>
    <protection_domain name="client" priority="100" ${attrs}>
        <program_image path="${OUT}/${client}" />
    </protection_domain>
    <protection_domain name="bystander" priority="90" cpu="1">
        <program_image path="${ROOT}/examples/hello/hello.wasm" />
    </protection_domain>
    <channel>
        <end pd="client" id="0" pp="true" />
        <end pd="calc" id="0" />
    </channel>
</system>`);

interface Run {
  sys: BootedSystem;
  lines: string[];
  /** Kernel states and direct calls once `until` held. */
  states: string[];
  direct: Record<string, number>;
}

/**
 * Boots `file`, waits for `until`, records what the test compares and stops the system, unless
 * `keep` (one system at a time: every system's kernel shares this process's main thread).
 */
async function boot(
  file: string,
  directCalls: boolean,
  until: (lines: string[]) => boolean,
  keep = false,
): Promise<Run> {
  const lines: string[] = [];
  const sys = await bootSystem(file, {
    cores: 2,
    directCalls,
    onLine: (pd, l) => lines.push(`${pd}: ${l}`),
    onEvent: (pd, m) => lines.push(`event ${pd}: ${m}`),
  });
  pds.track(sys);
  for (let i = 0; i < 1000 && !until(lines); i++) await sleep(10);
  await sleep(100);
  const run = { sys, lines, states: states(sys), direct: sys.directCalls() };
  if (!keep) await sys.stop();
  return run;
}

const states = (s: BootedSystem) => s.status().map((t) => `${t.name}: ${t.state}`);
/** The lines of the caller and the server (the bystander's interleave with them). */
const ours = (lines: string[]) => lines.filter((l) => !l.startsWith("bystander"));

test("ping-pong: every call is direct, and the output is the same as through the kernel", async () => {
  const file = join(ROOT, "examples/pingpong/pingpong.system");
  const done = (l: string[]) => l.some((x) => x.includes("done, counter = 5"));
  const kernel = await boot(file, false, done);
  const direct = await boot(file, true, done);
  assert.deepEqual(direct.lines, kernel.lines);
  assert.deepEqual(kernel.direct, {});
  assert.deepEqual(direct.direct, { pong: 5 });
  assert.deepEqual(direct.states, kernel.states);
});

test("message registers beyond the fourth, labels and a trap inside protected(): the same as through the kernel", async () => {
  const file = calcSystem("client1.wasm");
  const done = (l: string[]) => l.some((x) => x.includes("stays stopped"));
  const kernel = await boot(file, false, done);
  const direct = await boot(file, true, done);
  assert.deepEqual(ours(kernel.lines).slice(0, 5), [
    "calc: calc: ready",
    "client: client: label 1 count 6 sum 21 then 6 5 4 3 2 last 2",
    "client: client: label 2 count 30 sum 465 then 30 29 28 27 26 last 2",
    "calc: calc: notified on 0, calls so far 2",
    "client: client: calling with label 1",
  ]);
  assert.ok(
    kernel.lines.includes("event calc: trapped: integer divide by zero or overflow (user exception 4)"),
  );
  assert.deepEqual(ours(direct.lines), ours(kernel.lines));
  assert.ok(direct.lines.includes("bystander: hello, world"));
  // The server faulted in the call: its fault went to the monitor, and its caller waits for a
  // reply that will not come, exactly as through the kernel. The two sums were direct; the
  // trapping call went through the kernel with the trap (and turned direct calls off).
  assert.deepEqual(direct.states, kernel.states);
  assert.ok(direct.states.includes("client: BlockedOnReply"));
  assert.deepEqual(direct.direct, { calc: 2 });
});

test("a reply that carries a capability is sent by the server's thread, as through the kernel; later calls go through the kernel", async () => {
  const file = calcSystem("client3.wasm");
  const done = (l: string[]) => l.some((x) => x.includes("label 4 count 6"));
  const kernel = await boot(file, false, done);
  const direct = await boot(file, true, done);
  // The client has no receive slot, so the kernel transfers no capability: extra caps 0, the
  // label and MR0 as sent. protected() ran once for that call (calc counts its calls in the label).
  assert.ok(
    ours(kernel.lines).includes("client: client: the call returned label 9 extra caps 0 count 1 MR0 77"),
    kernel.lines.join("\n"),
  );
  assert.deepEqual(ours(direct.lines), ours(kernel.lines));
  assert.deepEqual(direct.states, kernel.states);
  assert.deepEqual(direct.direct, { calc: 2 });
});

function share(sc: SchedContext, ms: number, now: () => number): Promise<number> {
  const t0 = now();
  const c0 = sc.consumed;
  return sleep(ms).then(() => (sc.consumed - c0) / (now() - t0));
}

test("a protected() that spins in a direct call runs on its caller's budget, preempted as the caller", async (t) => {
  const file = calcSystem("client2.wasm", 'budget="2000" period="10000" cpu="1"');
  const spinning = (l: string[]) => l.some((x) => x.includes("calling with label 2"));
  const run = await boot(file, true, spinning, true);
  // The caller's scheduling context, wherever it is (with the caller, or donated to calc).
  const client = run.sys.loaded.pds.find((p) => p.pd.name === "client")!;
  const sc = run.sys.kernel.rootCNode.slot(client.scCap).cap.obj as SchedContext;
  const used = await share(sc, 2000, () => run.sys.platform.now());
  t.diagnostic(
    `the caller's scheduling context used ${(100 * used).toFixed(1)}% of core 1 (budget/period 20%)`,
  );
  assert.ok(used <= 0.205, `share ${used}`);
  assert.ok(used >= 0.12, `share ${used}`);
  // The lower-priority bystander on the same core still ran.
  assert.ok(run.lines.includes("bystander: hello, world"), run.lines.join("\n"));
  // What differs, and only in the kernel's own view: during a direct call the kernel sees the
  // caller running and the server waiting in its receive (through the kernel: the caller
  // BlockedOnReply, the server Running on the donated context). README, "Direct protected calls".
  assert.ok(states(run.sys).includes("client: Running"), states(run.sys).join(", "));
  assert.ok(states(run.sys).includes("calc: BlockedOnReceive"), states(run.sys).join(", "));
  await run.sys.stop();
});

test("the analysis: a server whose protected() may make system calls, or a PD without libmicrokit's entry, is called through the kernel", () => {
  const blocker = (path: string) => directCallBlocker(instrumentPreemption(readFileSync(path)));
  assert.equal(blocker(join(OUT, "calc.wasm")), null);
  assert.equal(blocker(join(ROOT, "examples/pingpong/pong.wasm")), null);
  // hello's protected() is libmicrokit's weak default, which prints (microkit_dbg_puts).
  assert.match(blocker(join(ROOT, "examples/hello/hello.wasm"))!, /sel4\.syscall/);
  assert.match(blocker(join(ROOT, "build/examples/wasi/hello.wasm"))!, /does not export capvisor_protected/);
});
