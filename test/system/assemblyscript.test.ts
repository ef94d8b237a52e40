/**
 * AssemblyScript protection domains (lib/as): built with npm packages only (the `assemblyscript`
 * devDependency, through scripts/build-as-pd.sh), checked against the Wasm PD ABI
 * (docs/wasm-abi.md), and booted in systems that mix them with the C PDs of examples/pingpong.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { instrumentPreemption } from "../../src/pd/wasm/instrument.js";
import { type BootedSystem, bootSystem } from "../../src/system/boot.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const AS_DIR = join(ROOT, "examples/as-pingpong");
const BUILD_AS = join(ROOT, "scripts/build-as-pd.sh");
const execFileP = promisify(execFile);

before(() => {
  // The C PDs the mixed systems use, and the AssemblyScript ones.
  execFileSync("sh", [join(ROOT, "scripts/build-examples.sh")], { stdio: ["ignore", "inherit", "inherit"] });
});

const running: BootedSystem[] = [];
after(async () => {
  for (const s of running) await s.stop();
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
  running.push(sys);
  const t0 = Date.now();
  while (!done(lines) && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 5));
  return { sys, lines, events };
}

const PINGPONG_OUTPUT = [
  "pong: pong: ready",
  "ping: ping: start",
  "ping: ping: pong answered 1",
  "ping: ping: pong answered 2",
  "ping: ping: pong answered 3",
  "ping: ping: pong answered 4",
  "ping: ping: pong answered 5",
  "ping: ping: done, counter = 5",
  "pong: pong: notified by ping",
];

const MICROKIT_GLOBALS = [
  "microkit_name",
  "microkit_passive",
  "microkit_irqs",
  "microkit_notifications",
  "microkit_pps",
  "microkit_ioports",
];

test("an AssemblyScript PD imports only sel4.syscall, plus capvisor.preempt once instrumented", () => {
  for (const name of ["ping", "pong"]) {
    const bytes = readFileSync(join(AS_DIR, `${name}.wasm`));
    const imports = (b: Uint8Array) =>
      WebAssembly.Module.imports(new WebAssembly.Module(b)).map((i) => `${i.module}.${i.name}:${i.kind}`);
    assert.deepEqual(imports(bytes), ["sel4.syscall:function"], name);
    assert.deepEqual(
      imports(instrumentPreemption(bytes)).sort(),
      ["capvisor.preempt:function", "sel4.syscall:function"],
      name,
    );
  }
});

test("an AssemblyScript PD exports what docs/wasm-abi.md lists, and nothing else", () => {
  for (const name of ["ping", "pong"]) {
    const mod = new WebAssembly.Module(readFileSync(join(AS_DIR, `${name}.wasm`)));
    const exports = WebAssembly.Module.exports(mod)
      .map((e) => `${e.name}:${e.kind}`)
      .sort();
    assert.deepEqual(
      exports,
      [
        "capvisor_abi_version:function",
        "capvisor_ipc_buffer:function",
        "capvisor_regs:function",
        "capvisor_start:function",
        "memory:memory",
        ...MICROKIT_GLOBALS.map((g) => `${g}:global`),
      ].sort(),
      name,
    );
    // Instantiate with a syscall that must not be reached: the ABI functions are plain reads.
    const inst = new WebAssembly.Instance(mod, {
      sel4: {
        syscall: () => {
          throw new Error("no syscall expected while reading the ABI exports");
        },
      },
    });
    const ex = inst.exports;
    const memory = ex.memory as WebAssembly.Memory;
    assert.equal((ex.capvisor_abi_version as () => number)(), 1);
    const regs = (ex.capvisor_regs as () => number)();
    const ipc = (ex.capvisor_ipc_buffer as () => number)();
    assert.equal(regs % 8, 0, "register block is 8-byte aligned");
    assert.equal(ipc % 1024, 0, "IPC buffer is 1 KiB aligned");
    // Each patched variable is its own storage inside memory, apart from the register block
    // and the IPC buffer (the loader writes 64 bytes of name and 8 of each mask).
    const spans: [string, number, number][] = [
      ["regs", regs, 72],
      ["ipc", ipc, 1024],
    ];
    for (const g of MICROKIT_GLOBALS) {
      const glob = ex[g];
      assert.ok(glob instanceof WebAssembly.Global, g);
      const at = glob.value as number;
      assert.equal(typeof at, "number", `${g} holds an i32 address`);
      const size = g === "microkit_name" ? 64 : g === "microkit_passive" ? 1 : 8;
      if (size === 8) assert.equal(at % 8, 0, `${g} is 8-byte aligned`);
      spans.push([g, at, size]);
    }
    for (const [n, at, size] of spans) assert.ok(at > 0 && at + size <= memory.buffer.byteLength, n);
    for (const [a, x, xs] of spans)
      for (const [b, y, ys] of spans)
        if (a !== b) assert.ok(x + xs <= y || y + ys <= x, `${a} overlaps ${b}`);
  }
});

test("AssemblyScript ping calls the C pong (passive) and notifies it", async () => {
  const r = await runUntil(join(AS_DIR, "ping-as.system"), (l) => l.includes("pong: pong: notified by ping"));
  assert.deepEqual(r.lines, PINGPONG_OUTPUT);
  const pong = r.sys.loaded.pds.find((p) => p.pd.name === "pong")!;
  assert.equal(pong.tcb.sc, null);
  assert.equal(r.events.length, 0, r.events.join("\n"));
});

test("C ping calls the AssemblyScript pong, which is passive: its SC went to the monitor", async () => {
  const r = await runUntil(join(AS_DIR, "pong-as.system"), (l) => l.includes("pong: pong: notified by ping"));
  assert.deepEqual(r.lines, PINGPONG_OUTPUT);
  // The AS event loop signalled the monitor after init(), which took pong's scheduling context.
  const pong = r.sys.loaded.pds.find((p) => p.pd.name === "pong")!;
  assert.equal(pong.tcb.sc, null);
  await new Promise((res) => setTimeout(res, 50));
  const states = Object.fromEntries(r.sys.status().map((s) => [s.name, s.state]));
  assert.deepEqual(states, { pong: "BlockedOnReceive", ping: "BlockedOnNotification" });
  assert.equal(r.events.length, 0, r.events.join("\n"));
});

test("an AssemblyScript abort traps to the parent's fault(), which restarts the child", async () => {
  const dir = mkdtempSync(join(tmpdir(), "capvisor-as-"));
  const lib = relative(dir, join(ROOT, "lib/as"));
  writeFileSync(
    join(dir, "child.ts"),
    `import { microkit_channel, microkit_dbg_put32, microkit_dbg_puts } from "${lib}/microkit";
let runs: u32 = 0;
export function init(): void {
  runs++;
  microkit_dbg_puts("child: run ");
  microkit_dbg_put32(runs);
  microkit_dbg_puts("\\n");
  assert(runs > 1, "child gives up");
}
export function notified(ch: microkit_channel): void {}
`,
  );
  writeFileSync(
    join(dir, "parent.ts"),
    `import { microkit_channel, microkit_child, microkit_dbg_put32, microkit_dbg_puts, microkit_mr_get,
  microkit_msginfo, microkit_msginfo_get_label, microkit_pd_restart } from "${lib}/microkit";
import { seL4_UserException_Number } from "${lib}/sel4";
export function init(): void {
  microkit_dbg_puts("parent: ready\\n");
}
export function notified(ch: microkit_channel): void {}
export function fault(child: microkit_child, msginfo: microkit_msginfo): bool {
  microkit_dbg_puts("parent: child ");
  microkit_dbg_put32(child);
  microkit_dbg_puts(" fault label ");
  microkit_dbg_put32(<u32>microkit_msginfo_get_label(msginfo));
  microkit_dbg_puts(" trap ");
  microkit_dbg_put32(<u32>microkit_mr_get(<u8>seL4_UserException_Number));
  microkit_dbg_puts("\\n");
  microkit_pd_restart(child, 0);
  return false;
}
`,
  );
  writeFileSync(
    join(dir, "restart.system"),
    `<system>
  <protection_domain name="parent" priority="200">
    <program_image path="parent.wasm" />
    <protection_domain name="child" id="3" priority="100">
      <program_image path="child.wasm" />
    </protection_domain>
  </protection_domain>
</system>
`,
  );
  // Both builds at once: each is a couple of CPU seconds of asc.
  await Promise.all(
    ["parent", "child"].map((pd) =>
      execFileP("sh", [BUILD_AS, join(dir, `${pd}.wasm`), join(dir, `${pd}.ts`)]),
    ),
  );
  const r = await runUntil(join(dir, "restart.system"), (l) => l.includes("child: child: run 2"));
  assert.equal(r.lines.length, 5, r.lines.join("\n"));
  assert.deepEqual(r.lines.slice(0, 2), ["parent: parent: ready", "child: child: run 1"]);
  // The abort message names the failed assertion and where it is.
  assert.match(r.lines[2]!, /^child: abort: child gives up at \S*child\.ts:\d+:\d+$/);
  // seL4_Fault_UserException (3), trap number 1 (unreachable), from child id 3.
  assert.deepEqual(r.lines.slice(3), ["parent: parent: child 3 fault label 3 trap 1", "child: child: run 2"]);
  assert.deepEqual(r.events, ["child: trapped: unreachable executed (user exception 1)"]);
});

test("build-as-pd.sh refuses a PD that would import anything but sel4.syscall", () => {
  const dir = mkdtempSync(join(tmpdir(), "capvisor-as-"));
  const lib = relative(dir, join(ROOT, "lib/as"));
  // Math.random needs a seed from the host (env.seed): not something a PD may import.
  writeFileSync(
    join(dir, "bad.ts"),
    `import { microkit_channel, microkit_dbg_put32 } from "${lib}/microkit";
export function init(): void { microkit_dbg_put32(<u32>(Math.random() * 10)); }
export function notified(ch: microkit_channel): void {}
`,
  );
  const out = join(dir, "bad.wasm");
  const b = spawnSync("sh", [BUILD_AS, out, join(dir, "bad.ts")], { encoding: "utf8" });
  assert.notEqual(b.status, 0);
  assert.match(b.stderr, /imports env\.seed; only sel4\.syscall is allowed/);
  assert.equal(spawnSync("test", ["-e", out]).status, 1, "no module is left behind");
});
