/** The `capvisor` command as a user runs it: output, exit codes, errors. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

function capvisor(...args: string[]) {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8" });
}

test("capvisor boot runs the default system and reports every thread", () => {
  const r = capvisor("boot", "--ms", "12");
  assert.equal(r.status, 0, r.stderr);
  for (let i = 1; i <= 5; i++)
    assert.match(r.stdout, new RegExp(`\\[client\\] square\\(${i}\\) = ${i * i} `));
  assert.match(r.stdout, /\[server\] passive server ready/);
  assert.match(r.stdout, /\[ticker\] 10 device interrupts handled/);
  assert.match(r.stdout, /^ {2}server +BlockedOnReceive/m);
  assert.match(r.stdout, /12 device interrupts/);
});

test("capvisor boot on one core gives the same answers", () => {
  const r = capvisor("boot", "--cores", "1", "--ms", "12");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\[client\] square\(5\) = 25 /);
});

test("bad commands and options exit 2 and say what is wrong", () => {
  const a = capvisor("frobnicate");
  assert.equal(a.status, 2);
  assert.match(a.stderr, /unknown command 'frobnicate'/);
  const b = capvisor("boot", "--cores", "0");
  assert.equal(b.status, 2);
  assert.match(b.stderr, /--cores needs an integer from 1 to 64 \(got '0'\)/);
  const c = capvisor("boot", "--color");
  assert.equal(c.status, 2);
  assert.match(c.stderr, /unknown option '--color'/);
});

test("capvisor version prints the package version", () => {
  const r = capvisor("version");
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^capvisor \d+\.\d+\.\d+/);
});
