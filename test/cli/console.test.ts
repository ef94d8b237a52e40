/**
 * `capvisor up` with a VM and `capvisor console <vm>` as a user runs them, in two processes: the
 * VM's console streamed by `up`, the interactive console joined from another command, Ctrl-C
 * showing each domain's state; and `console` with no such VM.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const SYSTEM = fileURLToPath(new URL("../../../examples/default.system", import.meta.url));

test("capvisor console <vm> joins a running VM's serial console; up streams it and reports states", async () => {
  // Our own socket directory, so that a system a user runs on this machine is not disturbed.
  const runtimeDir = mkdtempSync(join(tmpdir(), "capvisor-console-"));
  const env = { ...process.env, XDG_RUNTIME_DIR: runtimeDir };
  const up = spawn(process.execPath, [MAIN, "up", SYSTEM, "--for", "120000"], { env });
  let out = "";
  let err = "";
  up.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  up.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => up.on("exit", (code) => r(code)));
  try {
    const deadline = Date.now() + 120_000;
    while (!/VM linux is up; its console: capvisor console linux/.test(err)) {
      assert.ok(Date.now() < deadline, `up did not start the VM:\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const con = spawn(process.execPath, [MAIN, "console", "linux"], { env });
    let conOut = "";
    con.stdout.on("data", (d: Buffer) => {
      conOut += d.toString();
    });
    con.stdin.write('wasmedge-run /root/wasm/hello.wasm via console; echo "rc=$((40+2))"\n');
    while (!/rc=42/.test(conOut)) {
      assert.ok(Date.now() < deadline, `no answer on the console:\n${conOut}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    con.stdin.end();
    const conCode = await new Promise<number | null>((r) => con.on("exit", (code) => r(code)));
    assert.equal(conCode, 0);
    assert.match(conOut.replace(/\r/g, ""), /hello, world\narg 1: via\narg 2: console\n/);
    // The same console, streamed by up with the VM's name.
    assert.match(out, /^\[linux\] arg 2: console$/m);
    assert.match(out, /^\[wasmedge\] job \d+ from the VM: \/root\/wasm\/hello\.wasm via console/m);
  } finally {
    up.kill("SIGINT");
  }
  assert.equal(await exited, 0);
  assert.match(err, /^ {2}linux +\S+ +core 1$/m);
  assert.match(err, /^ {2}vmm +BlockedOnReceive +core 1$/m);
  rmSync(runtimeDir, { recursive: true, force: true });
});

test("capvisor console with no such VM says what to do and exits 1", () => {
  const runtimeDir = mkdtempSync(join(tmpdir(), "capvisor-console-"));
  const r = spawnSync(process.execPath, [MAIN, "console", "nosuchvm"], {
    encoding: "utf8",
    env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir },
    input: "",
  });
  rmSync(runtimeDir, { recursive: true, force: true });
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /no running system has a VM named "nosuchvm"; start one with "capvisor up <system.xml>"/,
  );
});
