/**
 * A runtime PD's applications are kernel threads (src/wasmedge/app-threads.ts): one that spins
 * without a system call is preempted at its fuel checks and held to its scheduling context's
 * budget, while another application of the same runtime PD, on the same core, runs to its end.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { ThreadState } from "../../src/kernel/types.js";
import { bootSystem } from "../../src/system/boot.js";
import { wasmedgeRuntime } from "../../src/wasmedge/runtime-pd.js";
import { fixtures, ROOT, sleep } from "../fixtures.js";

const APPS = join(ROOT, "build/examples/wasmedge-pd");
const fx = fixtures("app-threads", ["examples/wasmedge-pd/build.sh"]);

test("an application that spins is preempted and held to its budget; its neighbour on the core runs to its end", async (t) => {
  const file = fx.systemFile(
    `<system xmlns:capvisor="https://capvisor.dev/sdf">
  <protection_domain name="rt" priority="50" budget="2000" period="10000" cpu="1" capvisor:runtime="wasmedge"
      capvisor:apps="${APPS}/spin.wasm; ${APPS}/hello.wasm one two">
    <program_image path="${APPS}/spin.wasm" />
  </protection_domain>
</system>`,
    "spin.system",
  );
  const lines: string[] = [];
  const events: string[] = [];
  const sys = await bootSystem(file, {
    runtimes: [wasmedgeRuntime],
    cores: 2,
    onLine: (pd, l) => lines.push(`[${pd}] ${l}`),
    onEvent: (pd, m) => events.push(`${pd}: ${m}`),
  });
  fx.track(sys);
  const rt = sys.runtimes[0]!;
  const [spin, hello] = rt.appThreads;
  assert.equal(spin!.name, "rt/spin");
  assert.equal(hello!.name, "rt/hello");

  // Both start; hello finishes although spin never gives its core back of its own accord.
  for (
    let i = 0;
    i < 1000 && !(lines.includes("[rt/spin] spinning") && lines.includes("[rt/hello] arg 2: two"));
    i++
  )
    await sleep(10);
  assert.deepEqual(
    lines.filter((l) => l.startsWith("[rt/hello]")),
    ["[rt/hello] hello, world", "[rt/hello] arg 1: one", "[rt/hello] arg 2: two"],
  );
  assert.ok(lines.includes("[rt/spin] spinning"), lines.join("\n"));
  for (let i = 0; i < 200 && hello!.tcb.state !== ThreadState.BlockedOnNotification; i++) await sleep(10);
  assert.equal(
    hello!.tcb.state,
    ThreadState.BlockedOnNotification,
    "hello's thread waits for the next application once its own has ended",
  );

  // The spinner's share of its core, from its scheduling context, over 2 s of kernel time.
  const sc = spin!.tcb.sc!;
  assert.equal(sc.budget, 2_000_000);
  assert.equal(sc.period, 10_000_000);
  const t0 = sys.platform.now();
  const c0 = sc.consumed;
  while (sys.platform.now() - t0 < 2000e6) await sleep(20);
  const share = (sc.consumed - c0) / (sys.platform.now() - t0);
  t.diagnostic(`the spinning application used ${(100 * share).toFixed(1)}% of core 1 (budget/period 20%)`);
  // MCS: at most the budget in any period (plus one budget over the window); the lower bound is
  // that it does run, at about its budget (releases the host wakes late cost a little).
  assert.ok(share <= 0.205, `share ${share}`);
  assert.ok(share >= 0.12, `share ${share}`);
  assert.notEqual(spin!.tcb.state, ThreadState.BlockedOnNotification);
  // Its worker is a thread the platform runs and reports like any PD's.
  const st = sys.status().find((s) => s.name === "rt/spin");
  assert.ok(st !== undefined && st.hostThread > 0, JSON.stringify(sys.status()));
  assert.deepEqual(events, []);
});
