/**
 * The platform's periodic timer device (src/platform/timer-device.ts, WasmPlatform.periodicTimer):
 * the kernel's thread raises its line at each expiry; every expiry is either delivered to the
 * handler PD or coalesced with one still pending, never dropped unaccounted; a spinning
 * lower-priority PD on the handler's core does not keep the interrupt out; the device stops; a
 * handler that reads the device's count register accounts for every expiry, coalesced or not.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { TimerDevice } from "../../src/platform/timer-device.js";
import { bootSystem } from "../../src/system/boot.js";
import { cPds, ROOT, sleep } from "../fixtures.js";

const LINE = 40;
const pds = cPds("timer", "test/platform/timer", [
  ["ticker.wasm", "ticker.c"],
  ["counter.wasm", "counter.c", "--export=timer_regs"],
]);

/**
 * Boot `pds` (PD elements) next to a priority-1 spinner on cpu 0; returns the system and what its
 * PDs print and report, once `ready` has been printed.
 */
async function bootWithSpinner(
  pdsXml: string,
  ready: string,
  onInterrupt?: (line: number, ns: number, merged: boolean) => void,
): Promise<{ sys: Awaited<ReturnType<typeof bootSystem>>; lines: string[]; events: string[] }> {
  const file = pds.systemFile(
    `<system>
${pdsXml}
    <protection_domain name="spin" priority="1" cpu="0">
        <program_image path="${join(ROOT, "examples/bench/spinner.wasm")}" />
    </protection_domain>
</system>`,
  );
  const lines: string[] = [];
  const events: string[] = [];
  const sys = await bootSystem(file, {
    cores: 2,
    onLine: (pd, line) => lines.push(`${pd}: ${line}`),
    onEvent: (pd, m) => events.push(`${pd}: ${m}`),
    ...(onInterrupt !== undefined ? { platform: { onInterrupt } } : {}),
  });
  pds.track(sys);
  for (let i = 0; i < 500 && !lines.includes(ready); i++) await sleep(10);
  assert.deepEqual(lines, [ready]);
  return { sys, lines, events };
}

test("TimerDevice counts every expiry due and stops after its count or when stopped", () => {
  const d = new TimerDevice(LINE, 1000, 5000, 10);
  assert.equal(d.nextNs(), 5000);
  assert.equal(d.expire(4999), 0);
  assert.equal(d.expire(5000), 1);
  assert.equal(d.nextNs(), 6000);
  // Late by three and a half periods: the four expiries due are counted at once.
  assert.equal(d.expire(9500), 4);
  assert.equal(d.ticks, 5);
  assert.equal(d.nextNs(), 10000);
  // No more than `count` in all.
  assert.equal(d.expire(1e9), 5);
  assert.equal(d.ticks, 10);
  assert.equal(d.nextNs(), Number.POSITIVE_INFINITY);
  assert.equal(d.expire(2e9), 0);
  const e = new TimerDevice(LINE, 1000, 0, Number.POSITIVE_INFINITY);
  assert.equal(e.expire(2500), 3);
  e.stop();
  assert.equal(e.nextNs(), Number.POSITIVE_INFINITY);
  assert.equal(e.expire(1e6), 0);
  assert.throws(() => new TimerDevice(LINE, 0, 0, 1), /timer period must be positive, not 0 ns/);
});

test("a periodic timer's interrupts reach their handler PD past a spinning PD, each delivered or coalesced", async () => {
  let coalesced = 0;
  let taken = 0;
  const { sys, lines, events } = await bootWithSpinner(
    `    <protection_domain name="ticker" priority="200" cpu="0">
        <program_image path="${pds.out}/ticker.wasm" />
        <irq irq="${LINE}" id="3" />
    </protection_domain>`,
    "ticker: ticker ready",
    (line, _ns, merged) => {
      if (line !== LINE) return;
      taken++;
      if (merged) coalesced++;
    },
  );

  assert.throws(() => sys.platform.periodicTimer(9999, 1e6), /interrupt line 9999 does not exist/);
  const count = 20;
  const timer = sys.platform.periodicTimer(LINE, 5e6, { count });
  assert.equal(timer.line, LINE);
  assert.equal(timer.periodNs, 5e6);
  const delivered0 = sys.kernel.stats.interrupts;
  for (let i = 0; i < 1000 && timer.ticks < count; i++) await sleep(10);
  assert.equal(timer.ticks, count);
  // The last tick's handler has had time to print (its priority is above the spinner's).
  await sleep(200);
  const ticks = lines.filter((l) => l.startsWith("ticker: tick "));
  assert.ok(ticks.length >= 1, `no tick handled: ${lines.join("; ")}`);
  // The handler counts from 1 with no gaps: it ran once for every interrupt delivered to it.
  assert.deepEqual(
    ticks,
    ticks.map((_, i) => `ticker: tick ${i + 1}`),
  );
  assert.equal(sys.kernel.stats.interrupts - delivered0, ticks.length);
  // Every expiry was taken by the kernel's thread (several at once count as one raise) and each
  // raise was delivered or coalesced with the one still pending.
  assert.ok(taken <= count, `${taken} raises for ${count} expiries`);
  assert.equal(ticks.length + coalesced, taken);
  assert.deepEqual(events, []);

  // It stopped after `count`: nothing more arrives.
  const before = lines.length;
  await sleep(30);
  assert.equal(lines.length, before);
  assert.equal(timer.ticks, count);

  // stop() stops an endless one.
  const endless = sys.platform.periodicTimer(LINE, 2e6);
  for (let i = 0; i < 500 && endless.ticks < 3; i++) await sleep(10);
  endless.stop();
  const at = endless.ticks;
  await sleep(30);
  assert.equal(endless.ticks, at);
  assert.ok(at >= 3);
});

test("a handler reading the timer's count register accounts for every expiry, coalesced or not", async () => {
  const { sys, lines, events } = await bootWithSpinner(
    `    <memory_region name="timer" size="0x1000" />
    <memory_region name="small" size="0x1000" />
    <protection_domain name="counter" priority="200" cpu="0">
        <program_image path="${pds.out}/counter.wasm" />
        <map mr="timer" vaddr="0x3000000" perms="r" setvar_vaddr="timer_regs" />
        <irq irq="${LINE}" id="3" />
    </protection_domain>`,
    "counter: counter ready",
  );
  assert.throws(() => sys.region("nonesuch"), /there is no memory region "nonesuch"/);
  const tiny = { backing: new SharedArrayBuffer(8), lock: sys.region("small").lock };
  assert.throws(
    () => sys.platform.periodicTimer(LINE, 1e6, { registers: tiny }),
    /a timer's register page needs 16 bytes; the region has 8/,
  );

  // 100 µs apart: faster than the handler prints a line, so interrupts coalesce.
  const count = 300;
  const delivered0 = sys.kernel.stats.interrupts;
  const timer = sys.platform.periodicTimer(LINE, 100_000, { count, registers: sys.region("timer") });
  for (let i = 0; i < 1000 && timer.ticks < count; i++) await sleep(10);
  assert.equal(timer.ticks, count);
  const handled = (): string[] => lines.filter((l) => l.startsWith("counter: interrupt "));
  for (let i = 0; i < 300 && !handled().at(-1)?.includes(`count ${count} `); i++) await sleep(10);

  assert.equal(lines[1], "counter: period 100000 ns");
  const got = handled().map((l) => {
    const m = /^counter: interrupt (\d+): count (\d+) \(\+(\d+)\)$/.exec(l);
    assert.ok(m, `unexpected line: ${l}`);
    return { n: Number(m[1]), count: Number(m[2]), added: Number(m[3]) };
  });
  // One line per interrupt delivered, numbered from 1; the counts only grow.
  assert.deepEqual(
    got.map((g) => g.n),
    got.map((_, i) => i + 1),
  );
  assert.equal(sys.kernel.stats.interrupts - delivered0, got.length);
  // Every expiry is accounted for: the last read sees all of them, and the increments add up.
  assert.equal(got.at(-1)!.count, count);
  assert.equal(
    got.reduce((sum, g) => sum + g.added, 0),
    count,
  );
  assert.deepEqual(events, []);
  process.stdout.write(`${count} expiries reached the handler in ${got.length} interrupts\n`);
});
