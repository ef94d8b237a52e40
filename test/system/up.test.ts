/**
 * Booting Microkit systems of Wasm PDs end to end: description -> loader (syscalls) -> workers.
 * The C examples are built first (scripts/build-examples.sh installs clang when missing).
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type BootedSystem, bootSystem } from "../../src/system/boot.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = join(ROOT, "dist/src/cli/main.js");

before(() => {
  execFileSync("sh", [join(ROOT, "scripts/build-examples.sh")], { stdio: ["ignore", "inherit", "inherit"] });
});

/** Boot a system and collect its output until `done(lines)` holds (or time runs out). */
async function runUntil(
  file: string,
  done: (lines: string[]) => boolean,
  ms = 10_000,
): Promise<{ sys: BootedSystem; lines: string[]; events: string[] }> {
  const lines: string[] = [];
  const events: string[] = [];
  const sys = await bootSystem(file, {
    cores: 2,
    onLine: (pd, l) => lines.push(`${pd}: ${l}`),
    onEvent: (pd, m) => events.push(`${pd}: ${m}`),
  });
  const t0 = Date.now();
  while (!done(lines) && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 5));
  return { sys, lines, events };
}

const running: BootedSystem[] = [];
after(async () => {
  for (const s of running) await s.stop();
});

test("hello: a PD prints from init() and then waits for events", async () => {
  const r = await runUntil(join(ROOT, "examples/hello/hello.system"), (l) => l.length >= 1);
  running.push(r.sys);
  assert.deepEqual(r.lines, ["hello: hello, world"]);
  await new Promise((res) => setTimeout(res, 50));
  const status = r.sys.status();
  assert.deepEqual(
    status.map(({ name, state, core }) => ({ name, state, core })),
    [{ name: "hello", state: "BlockedOnNotification", core: 0 }],
  );
  // Its worker's host thread (a Linux tid), to watch with top -H or chrt -p.
  assert.ok(status[0]!.hostThread > 0);
});

test("ping-pong: protected calls to a passive server, then a notification", async () => {
  const r = await runUntil(join(ROOT, "examples/pingpong/pingpong.system"), (l) =>
    l.includes("pong: pong: notified by ping"),
  );
  running.push(r.sys);
  assert.deepEqual(r.lines, [
    "pong: pong: ready",
    "ping: ping: start",
    "ping: ping: pong answered 1",
    "ping: ping: pong answered 2",
    "ping: ping: pong answered 3",
    "ping: ping: pong answered 4",
    "ping: ping: pong answered 5",
    "ping: ping: done, counter = 5",
    "pong: pong: notified by ping",
  ]);
  // pong is passive: its scheduling context went to its notification after init().
  const pong = r.sys.loaded.pds.find((p) => p.pd.name === "pong")!;
  assert.equal(pong.tcb.sc, null);
  assert.equal(r.events.length, 0, r.events.join("\n"));
});

test("capvisor up streams prefixed output, stops after --for and shows PD states", () => {
  const r = spawnSync(
    process.execPath,
    [MAIN, "up", join(ROOT, "examples/pingpong/pingpong.system"), "--for", "1500"],
    {
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^\[ping\] ping: pong answered 5$/m);
  assert.match(r.stderr, /^ {2}pong +BlockedOnReceive/m);
  assert.match(r.stderr, /^ {2}ping +BlockedOnNotification/m);
});

test("capvisor up refuses a broken description with the line and a non-zero exit", () => {
  const dir = mkdtempSync(join(tmpdir(), "capvisor-"));
  const f = join(dir, "bad.system");
  writeFileSync(
    f,
    '<system>\n  <protection_domain name="a" priority="300">\n    <program_image path="a.wasm" />\n  </protection_domain>\n</system>\n',
  );
  const r = spawnSync(process.execPath, [MAIN, "up", f], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.system:2:3: <protection_domain>: .*priority/);
});

test("capvisor up says which program image is missing", () => {
  const dir = mkdtempSync(join(tmpdir(), "capvisor-"));
  const f = join(dir, "missing.system");
  writeFileSync(
    f,
    '<system>\n  <protection_domain name="a">\n    <program_image path="nope.wasm" />\n  </protection_domain>\n</system>\n',
  );
  const r = spawnSync(process.execPath, [MAIN, "up", f], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /missing\.system:3:5: <program_image>: cannot read "nope\.wasm" for PD "a" \(ENOENT\)/,
  );
});
