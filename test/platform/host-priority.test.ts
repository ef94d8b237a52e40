/**
 * Host priorities (src/platform/host-priority.ts): in realtime mode the kernel's thread and PD
 * threads at seL4 priority 128 or more run under SCHED_FIFO, lower ones stay time-shared with a
 * nice value from their priority, and threads created later do not inherit FIFO. Read back from
 * /proc, as `chrt -p` would show a user. Changing a thread's scheduling policy needs root
 * (CAP_SYS_NICE); without it, the test checks that the system still runs with nothing changed.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { hostNice, hostRealtime, LOW_PRIORITY_SLICE_NS } from "../../src/platform/host-priority.js";
import { bootSystem } from "../../src/system/boot.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** SCHED_OTHER and SCHED_FIFO, as /proc/<pid>/task/<tid>/stat reports the policy (field 41). */
const SCHED_OTHER = 0;
const SCHED_FIFO = 1;

function hostSched(tid: number): { policy: number; rtPriority: number; nice: number } {
  const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, "utf8");
  // Fields after the command name (which is in parentheses and may hold spaces): field 3 onwards.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { policy: Number(f[41 - 3]), rtPriority: Number(f[40 - 3]), nice: Number(f[19 - 3]) };
}

test("the seL4 priority maps to a host priority: FIFO from 128 up, nice values below", () => {
  assert.equal(hostRealtime(255), 80);
  assert.equal(hostRealtime(128), 1);
  assert.equal(hostRealtime(127), 0);
  assert.equal(hostNice(200), 0);
  assert.equal(hostNice(0), 19);
  assert.ok(hostRealtime(254) > hostRealtime(200));
});

/** A thread's scheduler slice (ns) as /proc/<pid>/task/<tid>/sched shows it (se.slice), or NaN. */
function hostSlice(tid: number): number {
  const m = /^se\.slice\s*:\s*(\d+)/m.exec(readFileSync(`/proc/${process.pid}/task/${tid}/sched`, "utf8"));
  return m === null ? Number.NaN : Number(m[1]);
}

test("time-shared: a low-priority PD's host thread gets a short slice and its nice value", async () => {
  execFileSync("sh", [join(ROOT, "scripts/build-examples.sh")], { stdio: ["ignore", "inherit", "inherit"] });
  const sys = await bootSystem(join(ROOT, "examples/bench/rt.system"), { cores: 2 });
  try {
    const rows = sys.status();
    const spinner = rows.find((r) => r.name === "spin1");
    const handler = rows.find((r) => r.name === "handler");
    assert.ok(
      spinner !== undefined && spinner.hostThread > 0 && handler !== undefined && handler.hostThread > 0,
    );
    // A priority-1 PD: nice 19 and the short slice, so that the kernel's and the handler's
    // threads can preempt it as soon as they wake (LOW_PRIORITY_SLICE_NS).
    assert.equal(hostSched(spinner.hostThread).nice, hostNice(1));
    const before = hostSlice(process.pid);
    if (Number.isFinite(before)) {
      assert.equal(hostSlice(spinner.hostThread), LOW_PRIORITY_SLICE_NS);
      // A priority-254 PD keeps the host's default slice (the main thread's).
      assert.equal(hostSlice(handler.hostThread), before);
    }
  } finally {
    await sys.stop();
  }
});

test("realtime mode: kernel and high-priority PD under SCHED_FIFO, spinners time-shared", async () => {
  execFileSync("sh", [join(ROOT, "scripts/build-examples.sh")], { stdio: ["ignore", "inherit", "inherit"] });
  const root = process.getuid?.() === 0;
  const sys = await bootSystem(join(ROOT, "examples/bench/rt.system"), {
    cores: 2,
    platform: { hostPriorities: "realtime" },
  });
  try {
    // Every worker is loaded before bootSystem returns (preload); their host priorities with it.
    const rows = sys.status();
    const handler = rows.find((r) => r.name === "handler");
    const spinner = rows.find((r) => r.name === "spin0");
    assert.ok(handler !== undefined && handler.hostThread > 0, "the handler's host thread is known");
    assert.ok(spinner !== undefined && spinner.hostThread > 0, "the spinner's host thread is known");
    const h = hostSched(handler.hostThread);
    const s = hostSched(spinner.hostThread);
    const main = hostSched(process.pid);
    if (root) {
      assert.deepEqual([h.policy, h.rtPriority], [SCHED_FIFO, hostRealtime(254)]);
      assert.deepEqual([main.policy, main.rtPriority], [SCHED_FIFO, 90], "the kernel's thread");
      assert.equal(s.policy, SCHED_OTHER, "a priority-1 PD stays time-shared");
      assert.equal(s.nice, hostNice(1));
      // A thread created after the kernel's thread went FIFO does not inherit it (reset on fork).
      const w = new Worker(
        "const { parentPort } = require('node:worker_threads'); parentPort.postMessage(Number(require('node:fs').readlinkSync('/proc/thread-self').split('/')[2]));",
        { eval: true },
      );
      const tid = await new Promise<number>((r) => w.once("message", r));
      assert.equal(hostSched(tid).policy, SCHED_OTHER);
      await w.terminate();
    } else {
      assert.equal(h.policy, SCHED_OTHER, "without root nothing could change");
    }
    // And the system runs: the handler waits for its interrupt, the spinners spin.
    assert.ok(
      rows.every((r) => !r.state.startsWith("Faulted")),
      JSON.stringify(rows),
    );
  } finally {
    await sys.stop();
    // The test process's own thread goes back to time-sharing for the tests after this one.
    const { setHostRealtime } = await import("../../src/platform/host-priority.js");
    setHostRealtime(process.pid, 0);
  }
});
