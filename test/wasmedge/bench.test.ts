/**
 * `npm run bench:wasmedge -- --quick` runs end to end and prints every figure it promises: the
 * start-up rows (in one process and as whole processes), the compute rows with one checksum, the
 * concurrent apps' total time and peak memory, and issue 4's goal lines. Nothing here looks at
 * how fast anything was: only that each figure is there and that every app ran correctly.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const FIGURE = /\d+(\.\d+)? (ns|µs|ms)/;

test("bench:wasmedge --quick prints start-up, compute, concurrent apps, file requests and the goals", () => {
  const r = spawnSync(process.execPath, ["--no-warnings", join(ROOT, "dist/bench/wasmedge.js"), "--quick"], {
    encoding: "utf8",
    timeout: 120_000,
  });
  const out = r.stdout;
  assert.equal(r.status, 0, `exit ${r.status}\n${out}\n${r.stderr}`);
  assert.match(out, /^machine: .+, \d+ core\(s\)/m);
  assert.match(out, /mode: quick/);
  const line = (start: string): string => {
    const l = out.split("\n").find((x) => x.trimStart().startsWith(start));
    assert.ok(l !== undefined, `no line "${start}" in:\n${out}`);
    return l;
  };
  for (const name of [
    "node:wasi cold",
    "node:wasi cached",
    "capvisor run, cold",
    "capvisor run, cached",
    "of which runWasi on the compiled module",
    "capvisor run --enable-gas-measuring, first",
    "cold (instrument + compile)",
    "disk cache (compile the cached bytes)",
    "cached (in memory)",
    "node + node:wasi",
    "capvisor run   ",
    "capvisor run --enable-gas-measuring, empty cache",
    "capvisor run --enable-gas-measuring, cached",
    "bare V8, node:wasi",
    "capvisor runWasi (unmetered",
    "capvisor runWasi, metered",
    "capvisor run (in-process file server)",
    "runtime PD (application thread, file-server PD)",
  ])
    assert.match(line(name), FIGURE, `row without a figure: ${line(name)}`);
  assert.doesNotMatch(out, /NOT RUN/);
  assert.match(out, /checksums: all variants agree/);
  const apps = /total .*\d (ns|µs|ms) for (\d+) apps .*; (\d+) ran correctly, 0 failed/.exec(out);
  assert.ok(apps !== null, out);
  assert.equal(apps[2], apps[3]);
  assert.match(out, /peak RSS: \d+ MiB sampled/);
  assert.match(out, /cached start within 1\.5x .*: (MET|MISSED)$/m);
  assert.match(out, /compute within 10% of bare V8: .*: (MET|MISSED)$/m);
  assert.match(out, /1,000 concurrent apps under 24 GiB: .*GiB peak RSS.*: (MET|MISSED)$/m);
});
