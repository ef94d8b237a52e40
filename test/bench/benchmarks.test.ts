/**
 * The IPC, real-time and compute benchmarks run end to end in --quick mode and print every figure
 * they promise: the machine and Node version, each row with a figure or an explicit "NOT RUN:"
 * reason, and the issue-3 goal lines. Nothing here looks at how fast anything was.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

function runQuick(name: string): string {
  const r = spawnSync(process.execPath, [join(ROOT, "dist/bench", `${name}.js`), "--quick"], {
    encoding: "utf8",
    timeout: 180_000,
  });
  assert.equal(r.status, 0, `bench ${name} exited with ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^machine: .+, \d+ core\(s\)/m);
  assert.match(r.stdout, new RegExp(`node ${process.version.replace(/\./g, "\\.")} `));
  assert.match(r.stdout, /mode: quick/);
  return r.stdout;
}

/** A row: its name followed by a time figure, or by "NOT RUN: <reason>". */
function assertRow(out: string, name: string): void {
  const line = out.split("\n").find((l) => l.startsWith(name));
  assert.ok(line !== undefined, `no row "${name}" in:\n${out}`);
  assert.ok(/\d+(\.\d+)? (ns|µs|ms)/.test(line) || /NOT RUN: \S/.test(line), `row without a figure: ${line}`);
}

test("bench:ipc --quick prints every round trip and the goals", () => {
  const out = runQuick("ipc");
  for (const row of [
    "pp call, same core, direct",
    "pp call, same core, via the kernel",
    "pp call, passive server, caller on cpu 1, direct",
    "pp call, passive server, caller on cpu 1, via the kernel",
    "pp call, active server across cores",
    "notification, same core",
    "notification, across cores",
    "C futex ping-pong (2 threads)",
    "Linux pipe ping-pong (2 processes)",
    "Node MessagePort round trip",
  ])
    assertRow(out, row);
  // The Wasm PD rows must have run: they are what the benchmark is for.
  assert.doesNotMatch(
    out
      .split("\n")
      .filter((l) => l.startsWith("pp call") || l.startsWith("notification"))
      .join("\n"),
    /NOT RUN/,
  );
  assert.match(out, /within 2x of the futex ping-pong: .*(MET|MISSED|cannot tell)/);
  assert.match(out, /faster than the pipe: .*(MET|MISSED|cannot tell)/);
  assert.match(out, /same-core pp call under 1 µs \(direct\): .*(MET|MISSED|cannot tell)/);
});

test("bench:rt --quick prints capvisor's and cyclictest's latencies and the interrupt counts", () => {
  const out = runQuick("rt");
  for (const row of [
    "capvisor --realtime: scheduled tick -> handler PD",
    "capvisor --realtime, device in its own thread",
    "capvisor, nice values (the default)",
    "cyclictest -p",
    "cyclictest (SCHED_OTHER), load nice 19",
  ])
    assertRow(out, row);
  assert.doesNotMatch(out, /capvisor --realtime: scheduled tick -> handler PD.*NOT RUN/);
  assert.doesNotMatch(out, /capvisor --realtime, device in its own thread.*NOT RUN/);
  const counts =
    /ticks \(--realtime\): (\d+) raised, in (\d+) interrupts delivered by the kernel; (\d+) coalesced[\s\S]*?; (\d+) handled \(the handler ran after each\), (\d+) lost; the handler's\s+own record: (\d+) ticks/.exec(
      out,
    );
  assert.ok(counts !== null, out);
  const [raised, delivered, coalesced, handled, lost, recorded] = counts.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // Every tick is accounted for: handled or counted as lost; each interrupt delivered carried
  // at least one tick, the coalesced ones shared one.
  assert.equal(handled + lost, raised);
  assert.ok(
    delivered + coalesced <= raised,
    `${delivered} delivered and ${coalesced} coalesced of ${raised}`,
  );
  // The handler's own record comes from the timer's count register: once it has run after the
  // last tick, it has read the count of all of them.
  assert.ok(recorded <= raised);
  if (lost === 0) assert.equal(recorded, raised);
  assert.match(out, /p99 within 3x of cyclictest's, both real-time .*: .*(MET|MISSED|cannot tell)/);
  assert.match(out, /p99 within 3x of cyclictest's, both time-shared .*: .*(MET|MISSED|cannot tell)/);
  assert.match(out, /no interrupt lost \(--realtime\): (MET|MISSED)/);
});

test("bench:compute --quick prints native, bare V8, PD and instrumentation figures with one checksum", () => {
  const out = runQuick("compute");
  for (const row of [
    "native (gcc -O2)",
    "bare V8, node:wasi (--no-liftoff)",
    "bare V8, node:wasi (default tiering)",
    "capvisor PD (instrumented, bootSystem)",
    "PD module, bare V8 stubs, not instrumented",
    "PD module, bare V8 stubs, instrumented",
  ])
    assertRow(out, row);
  assert.doesNotMatch(out, /capvisor PD.*NOT RUN/);
  assert.match(out, /checksums: all variants agree/);
  assert.match(out, /PD within 10% of bare V8: .*(MET|MISSED|cannot tell)/);
  assert.match(out, /instrumentation cost: -?\d+\.\d%/);
});
