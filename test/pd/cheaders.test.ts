/**
 * The C side of the Wasm PD ABI (docs/wasm-abi.md): include/sel4/sel4.h, include/microkit.h,
 * lib/microkit/microkit.c and scripts/build-c-pd.sh. Builds the C examples with clang (installed
 * by scripts/setup.sh), checks each module's imports and exports, and runs the modules against a
 * JS stub of `sel4.syscall` that plays the kernel's part for a few syscalls.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Syscall } from "../../src/kernel/types.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const OUT = join(ROOT, "build", "test-pd");

const INPUT_CAP = 1n;
const REPLY_CAP = 4n;
const BASE_OUTPUT_NOTIFICATION_CAP = 10n;
const BASE_ENDPOINT_CAP = 74n;
const PPC_BADGE = 1n << 63n;

const examples = {
  hello: "examples/hello/hello.c",
  ping: "examples/pingpong/ping.c",
  pong: "examples/pingpong/pong.c",
} as const;
type Example = keyof typeof examples;

const wasmPath = (name: Example): string => join(OUT, `${name}.wasm`);

function msginfo(label: bigint, extraCaps: bigint, length: bigint): bigint {
  return (label << 12n) | (extraCaps << 7n) | length;
}

/** Thrown by the stub kernel to end a PD's event loop. */
class StopPd extends Error {}

interface PdExports {
  memory: WebAssembly.Memory;
  capvisor_abi_version(): number;
  capvisor_regs(): number;
  capvisor_ipc_buffer(): number;
  capvisor_start(): void;
  microkit_name: WebAssembly.Global;
  microkit_pps: WebAssembly.Global;
  microkit_notifications: WebAssembly.Global;
}

interface StubPd {
  exports: PdExports;
  /** x0..x8 */
  regs(): BigUint64Array;
  /** the IPC buffer's 128 words */
  ipc(): BigUint64Array;
  console(): string;
}

/**
 * Instantiate a PD whose `sel4.syscall` prints DebugPutChar's byte (x0) and hands every other
 * syscall to `handle`, which reads and writes the register block as the kernel would.
 */
function instantiate(name: Example, handle: (sysno: number, pd: StubPd) => void): StubPd {
  const module = new WebAssembly.Module(readFileSync(wasmPath(name)));
  let out = "";
  let exports: PdExports | null = null;
  const pd: StubPd = {
    get exports(): PdExports {
      return exports!;
    },
    regs: () => new BigUint64Array(exports!.memory.buffer, exports!.capvisor_regs(), 9),
    ipc: () => new BigUint64Array(exports!.memory.buffer, exports!.capvisor_ipc_buffer(), 128),
    console: () => out,
  };
  const instance = new WebAssembly.Instance(module, {
    sel4: {
      syscall(sysno: number): void {
        if (sysno === Syscall.DebugPutChar) {
          out += String.fromCharCode(Number(pd.regs()[0]! & 0xffn));
          return;
        }
        handle(sysno, pd);
      },
    },
  });
  exports = instance.exports as unknown as PdExports;
  return pd;
}

/** Run capvisor_start until the stub kernel stops it. */
function runUntilStopped(pd: StubPd): void {
  assert.throws(() => pd.exports.capvisor_start(), StopPd);
}

function writeWord(pd: StubPd, global: WebAssembly.Global, value: bigint): void {
  new DataView(pd.exports.memory.buffer).setBigUint64(global.value as number, value, true);
}

function writeName(pd: StubPd, name: string): void {
  const bytes = new TextEncoder().encode(`${name}\0`);
  new Uint8Array(pd.exports.memory.buffer, pd.exports.microkit_name.value as number, bytes.length).set(bytes);
}

before(() => {
  // No skipping: setup.sh installs clang-16 and lld-16 when they are missing (quiet otherwise).
  execFileSync(join(ROOT, "scripts", "setup.sh"), { stdio: ["ignore", "inherit", "inherit"] });
  mkdirSync(OUT, { recursive: true });
  for (const [name, src] of Object.entries(examples)) {
    execFileSync(join(ROOT, "scripts", "build-c-pd.sh"), [wasmPath(name as Example), join(ROOT, src)], {
      cwd: ROOT,
      stdio: ["ignore", "inherit", "inherit"],
    });
  }
});

for (const name of Object.keys(examples) as Example[]) {
  test(`${name}.wasm imports only sel4.syscall and exports the ABI`, () => {
    const module = new WebAssembly.Module(readFileSync(wasmPath(name)));
    assert.deepEqual(WebAssembly.Module.imports(module), [
      { module: "sel4", name: "syscall", kind: "function" },
    ]);
    const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
    assert.equal(exports.get("memory"), "memory");
    for (const fn of ["capvisor_abi_version", "capvisor_regs", "capvisor_ipc_buffer", "capvisor_start"]) {
      assert.equal(exports.get(fn), "function", fn);
    }
    // The variables the loader patches, as libmicrokit's tool patches them.
    for (const v of [
      "microkit_name",
      "microkit_passive",
      "microkit_irqs",
      "microkit_notifications",
      "microkit_pps",
      "microkit_ioports",
    ]) {
      assert.equal(exports.get(v), "global", v);
    }
  });
}

test("hello.wasm prints hello, world from init and then waits on its input endpoint", () => {
  const calls: { sysno: number; x0: bigint; x6: bigint }[] = [];
  const pd = instantiate("hello", (sysno, p) => {
    const r = p.regs();
    calls.push({ sysno, x0: r[0]!, x6: r[6]! });
    if (sysno === Syscall.Recv) throw new StopPd();
    assert.fail(`unexpected syscall ${sysno}`);
  });
  assert.equal(pd.exports.capvisor_abi_version(), 1);
  assert.equal(pd.exports.capvisor_ipc_buffer() % 1024, 0, "the IPC buffer is 1 KiB aligned");
  assert.equal(pd.exports.capvisor_regs() % 8, 0);
  runUntilStopped(pd);
  assert.equal(pd.console(), "hello, world\n");
  // libmicrokit's loop: Recv on INPUT_CAP with REPLY_CAP.
  assert.deepEqual(calls, [{ sysno: Syscall.Recv, x0: INPUT_CAP, x6: REPLY_CAP }]);
});

test("pong.wasm: the event loop dispatches a pp call to protected() and a badge bit to notified()", () => {
  const steps: string[] = [];
  const pd = instantiate("pong", (sysno, p) => {
    const r = p.regs();
    switch (steps.length) {
      case 0: // first receive: a protected call on channel 0 with MR0 = 41
        assert.equal(sysno, Syscall.Recv);
        assert.equal(r[0], INPUT_CAP);
        assert.equal(r[6], REPLY_CAP);
        r[0] = PPC_BADGE | 0n;
        r[1] = msginfo(0n, 0n, 1n);
        r[2] = 41n;
        break;
      case 1: // the reply goes out with the next receive; then a notification on channel 0
        assert.equal(sysno, Syscall.ReplyRecv);
        assert.equal(r[0], INPUT_CAP);
        assert.equal(r[6], REPLY_CAP);
        assert.equal(r[1], msginfo(0n, 0n, 1n));
        assert.equal(r[2], 42n);
        r[0] = 1n;
        r[1] = 0n;
        break;
      case 2: // no reply is owed after a notification: a plain Recv
        assert.equal(sysno, Syscall.Recv);
        steps.push("stop");
        throw new StopPd();
    }
    steps.push(String(sysno));
  });
  runUntilStopped(pd);
  assert.equal(steps.length, 3);
  assert.equal(pd.console(), "pong: ready\npong: notified by ping\n");
});

test("ping.wasm: ppcalls pong five times with a counter, prints the answers, then notifies", () => {
  let signalled: bigint | null = null;
  let calls = 0;
  const pd = instantiate("ping", (sysno, p) => {
    const r = p.regs();
    if (sysno === Syscall.Call) {
      // Stand in for pong: answer MR0 + 1 with label 0 and one word.
      assert.equal(r[0], BASE_ENDPOINT_CAP + 0n);
      assert.equal(r[1], msginfo(0n, 0n, 1n));
      calls++;
      r[1] = msginfo(0n, 0n, 1n);
      r[2] = r[2]! + 1n;
      return;
    }
    if (sysno === Syscall.Send) {
      assert.equal(r[1], 0n, "a signal is an empty message");
      signalled = r[0]!;
      return;
    }
    if (sysno === Syscall.Recv) throw new StopPd();
    assert.fail(`unexpected syscall ${sysno}`);
  });
  // What the loader does before starting a PD: name it and enable its channels.
  writeName(pd, "ping");
  writeWord(pd, pd.exports.microkit_pps, 1n << 0n);
  writeWord(pd, pd.exports.microkit_notifications, 1n << 0n);
  runUntilStopped(pd);
  assert.equal(calls, 5);
  assert.equal(signalled, BASE_OUTPUT_NOTIFICATION_CAP + 0n);
  assert.equal(
    pd.console(),
    "ping: start\n" +
      [1, 2, 3, 4, 5].map((n) => `ping: pong answered ${n}\n`).join("") +
      "ping: done, counter = 5\n",
  );
  // MR0 lives in x2 during the call and in the IPC buffer after it, as on AArch64.
  assert.equal(pd.ipc()[1], 5n);
});

test("without the loader's patch a PD's channels are invalid, as in libmicrokit", () => {
  const pd = instantiate("ping", (sysno) => {
    if (sysno === Syscall.Recv) throw new StopPd();
    assert.fail(`unexpected syscall ${sysno}`);
  });
  writeName(pd, "ping");
  runUntilStopped(pd);
  assert.match(pd.console(), /ping microkit_ppcall: invalid channel given '0'/);
});
