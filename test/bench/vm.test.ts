/**
 * bench:vm runs end to end in --quick mode and prints every figure it promises: the machine, Node
 * and mode lines, the v86 cold boot and snapshot start (which must run: the guest image is built
 * by `npm test`'s pretest), the QEMU and whole-system rows each with a figure or an explicit
 * "NOT RUN:" reason, and both goal lines. Nothing here looks at how fast anything was.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** The line that starts with `name` (after the indentation rows have). */
function rowOf(out: string, name: string): string {
  const line = out.split("\n").find((l) => l.trimStart().startsWith(name));
  assert.ok(line !== undefined, `no row "${name}" in:\n${out}`);
  return line;
}

/** A row with a figure (a time or a size), or "NOT RUN: <reason>". */
function assertRow(out: string, name: string, mustRun = false): string {
  const line = rowOf(out, name);
  const figure = /\d+(\.\d+)? (ms|s|MiB)\b/.test(line);
  if (mustRun) assert.ok(figure && !line.includes("NOT RUN"), `row did not run: ${line}`);
  else assert.ok(figure || /NOT RUN: \S/.test(line), `row without a figure or a reason: ${line}`);
  return line;
}

test("bench:vm --quick prints v86 cold and snapshot boots, QEMU, the channel round trip, memory and the goals", () => {
  const r = spawnSync(process.execPath, [join(ROOT, "dist/bench/vm.js"), "--quick"], {
    encoding: "utf8",
    // A cold boot takes 6-25 s here, QEMU 3-6 s, the system a few more; a first run may also
    // make the snapshot (another cold boot) or install QEMU.
    timeout: 900_000,
  });
  const out = r.stdout;
  assert.equal(r.status, 0, `bench vm exited with ${r.status}\n${out}\n${r.stderr}`);
  assert.match(out, /^machine: .+, \d+ core\(s\)/m);
  assert.match(out, new RegExp(`node ${process.version.replace(/\./g, "\\.")} `));
  assert.match(out, /mode: quick/);
  assert.match(out, /^runs: 1 boot\(s\) of each kind, 1 snapshot start\(s\), 5 jobs per loop$/m);
  assert.match(out, /^guest: Linux \S+, initrd /m);

  // capvisor's own backend must have run: it is what the benchmark is for.
  assertRow(out, "v86 cold boot to the ready line", true);
  assertRow(out, "v86 cold boot to the shell prompt (no snapshot)", true);
  assertRow(out, "v86 snapshot start (restore, a command answered)", true);
  assert.match(rowOf(out, "snapshot file"), /\d+\.\d MiB {2}\(\/.+snapshot-[0-9a-f]+\.bin\)/);

  assertRow(out, "QEMU TCG boot to the shell prompt");
  assertRow(out, "bootSystem to the guest answering a command");
  const roundTrip = assertRow(out, "channel round trip per job (5 x wasmedge-run hello.wasm)");
  assertRow(out, "host RSS growth with the VM running");
  if (!roundTrip.includes("NOT RUN")) {
    // When the jobs ran, every one of them succeeded and the guest RAM is the description's.
    assert.match(out, /^ {2}jobs: 5 run, 0 failed;/m);
    assert.match(rowOf(out, "guest RAM (capvisor:ram)"), /128\.0 MiB/);
    assertRow(out, "the guest tool alone, no job", true);
  }

  assert.match(out, /snapshot start under 1 s: .*: (MET|MISSED)$/m);
  assert.match(out, /cold boot within 3x of QEMU TCG: .*: (MET|MISSED|cannot tell)$/m);
  // With QEMU measured, the cold boot goal has a ratio to judge.
  if (!rowOf(out, "QEMU TCG boot to the shell prompt").includes("NOT RUN"))
    assert.match(out, /cold boot within 3x of QEMU TCG: \d+\.\d\dx \(v86 .+, QEMU .+\): (MET|MISSED)$/m);
});
