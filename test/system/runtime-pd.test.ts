/**
 * The WasmEdge runtime PD inside a system description (src/wasmedge/runtime-pd.ts): boots
 * examples/wasmedge-pd/wasmedge-pd.system, a runtime PD with two WASI applications next to a C PD,
 * and checks the output, that files were served by the file-server PD over kernel IPC, that an
 * escape from the preopen fails with EPERM, and, in the kernel's own state, that the runtime PD
 * holds exactly the capabilities the loader is meant to give it. Then the configuration errors.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { Cap, CNodeObj } from "../../src/kernel/structures.js";
import { CapType, TCB_CTABLE, ThreadState } from "../../src/kernel/types.js";
import { bootSystem } from "../../src/system/boot.js";
import { INPUT_CAP, LoadError, MONITOR_EP, REPLY_CAP } from "../../src/system/loader.js";
import { loadSdf } from "../../src/system/sdf.js";
import { type VmmPD, vmmRuntime } from "../../src/vmm/vmm-pd.js";
import { APP_NTFN_BASE, APP_TCB_BASE } from "../../src/wasmedge/app-threads.js";
import {
  RUNTIME_FS_EP,
  RUNTIME_NET_EP,
  RUNTIME_WAKE,
  type RuntimePD,
  runtimeConfigs,
  wasmedgeRuntime,
} from "../../src/wasmedge/runtime-pd.js";
import { fixtures, ROOT } from "../fixtures.js";

const SYSTEM = join(ROOT, "examples/wasmedge-pd/wasmedge-pd.system");
const fx = fixtures("rt", ["examples/wasmedge-pd/build.sh"]);

/** The non-null caps of a thread's CSpace root, by slot. */
function cspace(t: { ctes: { cap: Cap }[] }): Map<number, Cap> {
  const root = t.ctes[TCB_CTABLE]!.cap.obj as CNodeObj;
  const out = new Map<number, Cap>();
  for (const s of root.usedSlots()) if (!s.cap.isNull) out.set(s.index, s.cap);
  return out;
}

test("a runtime PD runs its applications, and their files come from its file-server PD over IPC", async () => {
  const lines: string[] = [];
  const events: string[] = [];
  const sys = await bootSystem(SYSTEM, {
    runtimes: [wasmedgeRuntime],
    cores: 2,
    onLine: (pd, l) => lines.push(`[${pd}] ${l}`),
    onEvent: (pd, m) => events.push(`${pd}: ${m}`),
  });
  fx.track(sys);
  assert.equal(sys.runtimes.length, 1);
  const rt = sys.runtimes[0]!;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const results = await Promise.race([
    rt.done,
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timeout; output so far: ${lines}`)), 20_000);
    }),
  ]);
  clearTimeout(timer);
  // The C PD prints from init(); give it the moment it may still need.
  for (let i = 0; i < 200 && !lines.includes("[hello] hello, world"); i++)
    await new Promise((r) => setTimeout(r, 10));

  assert.deepEqual(
    results.map((r) => [r.exitCode, r.trap]),
    [
      [0, undefined],
      [0, undefined],
    ],
  );
  assert.deepEqual(events, []);
  const of = (prefix: string) => lines.filter((l) => l.startsWith(prefix));
  assert.deepEqual(of("[hello]"), ["[hello] hello, world"]);
  assert.deepEqual(of("[runtime/hello]"), [
    "[runtime/hello] hello,runtime",
    "[runtime/hello] arg 1: one",
    "[runtime/hello] arg 2: two",
  ]);
  assert.deepEqual(of("[runtime/readfile]"), [
    "[runtime/readfile] /data/greeting.txt: hello from the file-server PD",
    "[runtime/readfile] escape /data/../secret/key.txt: EPERM",
  ]);
  assert.equal(lines.length, 6);

  // Served by the file-server PD: the opens (the file and the escape attempt) and the reads
  // arrived as IPC messages; besides the requests, each application's session was closed.
  const st = rt.fileServer;
  assert.ok((st.ops.open ?? 0) >= 2, `opens: ${JSON.stringify(st.ops)}`);
  assert.ok((st.ops.read ?? 0) >= 1, `reads: ${JSON.stringify(st.ops)}`);
  assert.equal(
    st.requests,
    Object.values(st.ops).reduce((a, b) => a + b, 0),
  );
  for (let i = 0; i < 200 && st.messages < st.requests + 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(st.messages, st.requests + 2);

  // The kernel's view. The file server is a real thread, waiting for the next request.
  assert.equal(rt.fileServerTcb.name, "runtime.fs");
  assert.equal(rt.fileServerTcb.state, ThreadState.BlockedOnReceive);
  // The runtime PD's CSpace holds exactly: its notification, its Reply, the monitor endpoint,
  // the badged endpoint to its file server, the IRQHandler of its doorbell, the badged
  // endpoint to its network PD (test/wasmedge/netserver-pd.test.ts checks that one), and for
  // each of its two applications the TCB of its application thread and Write on its notification.
  const rtPd = sys.loaded.pds.find((p) => p.pd.name === "runtime")!;
  const caps = cspace(rt.tcb);
  assert.deepEqual(
    [...caps.entries()].map(([slot, c]) => [slot, CapType[c.type]]),
    [
      [INPUT_CAP, "Notification"],
      [REPLY_CAP, "Reply"],
      [MONITOR_EP, "Endpoint"],
      [RUNTIME_FS_EP, "Endpoint"],
      [RUNTIME_WAKE, "IRQHandler"],
      [RUNTIME_NET_EP, "Endpoint"],
      [APP_TCB_BASE, "Thread"],
      [APP_TCB_BASE + 1, "Thread"],
      [APP_NTFN_BASE, "Notification"],
      [APP_NTFN_BASE + 1, "Notification"],
    ],
  );
  // Each application ran on a kernel thread of its own, one priority below the runtime PD, with
  // the runtime PD's budget; it holds nothing but Read on its own notification (the one the
  // runtime PD signals), and having finished it waits on that notification for the next application.
  assert.deepEqual(
    rt.appThreads.map((t) => t.name),
    ["runtime/hello", "runtime/readfile"],
  );
  for (const [i, { tcb }] of rt.appThreads.entries()) {
    for (let w = 0; w < 200 && tcb.state !== ThreadState.BlockedOnNotification; w++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(tcb.state, ThreadState.BlockedOnNotification);
    assert.equal(tcb.priority, rtPd.pd.priority - 1);
    assert.ok(tcb.sc !== null, "an application thread has its own scheduling context");
    assert.notEqual(tcb.sc, rt.tcb.sc);
    assert.equal(caps.get(APP_TCB_BASE + i)!.obj, tcb);
    const own = cspace(tcb);
    assert.deepEqual(
      [...own.entries()].map(([slot, c]) => [slot, CapType[c.type], c.rights]),
      [[INPUT_CAP, "Notification", 2]],
    );
    assert.equal(own.get(INPUT_CAP)!.obj, caps.get(APP_NTFN_BASE + i)!.obj);
  }
  const fsCap = caps.get(RUNTIME_FS_EP)!;
  assert.equal(fsCap.badgeLo, rtPd.index + 1);
  assert.equal(fsCap.rights & 2, 0, "the runtime PD cannot receive on its file server's endpoint");
  assert.equal(rtPd.tcb, rt.tcb);
  // The file server's CSpace: its endpoint (the object behind the runtime's cap) and its Reply.
  const fsCaps = cspace(rt.fileServerTcb);
  assert.deepEqual(
    [...fsCaps.entries()].map(([slot, c]) => [slot, CapType[c.type]]),
    [
      [INPUT_CAP, "Endpoint"],
      [REPLY_CAP, "Reply"],
    ],
  );
  assert.equal(fsCaps.get(INPUT_CAP)!.obj, fsCap.obj);
  // No other PD can reach the file server.
  for (const p of sys.loaded.pds)
    if (p.pd.name !== "runtime")
      for (const c of cspace(p.tcb).values())
        assert.notEqual(c.obj, fsCap.obj, `${p.pd.name} reaches the file server`);
});

test("payloads larger than the shared buffer travel in chunks; a symlink cannot leave the preopen", async () => {
  const dir = fx.tempDir();
  mkdirSync(join(dir, "w"));
  mkdirSync(join(dir, "secret"));
  writeFileSync(join(dir, "secret/key.txt"), "top secret\n");
  writeFileSync(join(dir, "w/note.txt"), "a note\n");
  symlinkSync("../secret", join(dir, "w/link"));
  const apps = join(ROOT, "build/examples/wasmedge-pd");
  const file = join(dir, "big.system");
  writeFileSync(
    file,
    `<system>
  <protection_domain name="rt" priority="60" capvisor:runtime="wasmedge" capvisor:dirs="/w:./w"
      capvisor:apps="${apps}/bigfile.wasm /w/big.bin 200000; ${apps}/readfile.wasm /w/note.txt /w/link/key.txt">
    <program_image path="${apps}/bigfile.wasm" />
  </protection_domain>
</system>
`,
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
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    rt.done,
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timeout; output so far: ${lines}`)), 20_000);
    }),
  ]);
  clearTimeout(timer);
  assert.deepEqual(events, []);
  assert.deepEqual(lines.sort(), [
    "[rt/bigfile] wrote 200000, read 200000, equal",
    "[rt/readfile] /w/note.txt: a note",
    "[rt/readfile] escape /w/link/key.txt: EPERM",
  ]);
  assert.equal(readFileSync(join(dir, "w/big.bin")).length, 200_000);
  // 200,000 bytes each way through a 64 KiB buffer: at least 3 extra chunks each way.
  for (let i = 0; i < 200 && rt.fileServer.messages < rt.fileServer.requests + 8; i++)
    await new Promise((r) => setTimeout(r, 10));
  assert.ok(
    rt.fileServer.messages >= rt.fileServer.requests + 2 + 6,
    `messages ${rt.fileServer.messages}, requests ${rt.fileServer.requests}`,
  );
});

/** The folder of the last description `describe` wrote. */
let describedIn = "";

/** A description in a temporary folder (with a data directory and an app module). */
function describe(pdXml: string): string {
  const dir = fx.tempDir();
  describedIn = dir;
  mkdirSync(join(dir, "data"));
  writeFileSync(join(dir, "app.wasm"), new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  writeFileSync(join(dir, "pd.wasm"), new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  const file = join(dir, "t.system");
  writeFileSync(file, `<?xml version="1.0"?>\n<system>\n${pdXml}\n</system>\n`);
  return file;
}

async function configError(pdXml: string): Promise<string> {
  const file = describe(pdXml);
  const sys = await loadSdf(file);
  try {
    runtimeConfigs(sys);
  } catch (e) {
    assert.ok(e instanceof LoadError, String(e));
    return e.message.replace(file, "FILE");
  }
  return "no error";
}

test("runtime PD configuration: attributes, defaults and clear errors", async () => {
  const ok = await loadSdf(
    describe(`<protection_domain name="rt" capvisor:runtime="wasmedge" capvisor:dirs="/d:./data:readonly" capvisor:env="A=1 B=x=y">
  <program_image path="app.wasm" /></protection_domain>`),
  );
  const cfg = runtimeConfigs(ok).get(ok.allProtectionDomains[0]!)!;
  assert.deepEqual(
    cfg.apps.map((a) => [a.name, a.args]),
    [["app", ["app.wasm"]]],
  );
  assert.deepEqual(
    cfg.preopens.map((p) => [p.guest, p.readOnly]),
    [["/d", true]],
  );
  assert.deepEqual(cfg.env, [
    ["A", "1"],
    ["B", "x=y"],
  ]);

  const pd = (attrs: string, image = "app.wasm") =>
    `<protection_domain name="rt" ${attrs}>\n  <program_image path="${image}" /></protection_domain>`;
  // An unknown runtime is refused when the system boots, naming the runtimes there are.
  const unknown = describe(pd('capvisor:runtime="wasmtime"'));
  await assert.rejects(
    bootSystem<RuntimePD | VmmPD>(unknown, { runtimes: [wasmedgeRuntime, vmmRuntime] }),
    (e: Error) => {
      assert.ok(e instanceof LoadError);
      assert.equal(
        e.message.replace(unknown, "FILE"),
        'FILE:3:1: <protection_domain>: PD "rt": capvisor:runtime="wasmtime" is not a runtime capvisor has here; the runtimes are "wasmedge", "vmm"',
      );
      return true;
    },
  );
  assert.equal(
    await configError(pd('capvisor:runtime="wasmedge" capvisor:dirs="/d:./nowhere"')),
    `FILE:3:1: <protection_domain>: PD "rt": capvisor:dirs: "./nowhere" (${describedIn}/nowhere) is not a directory; create it or fix the path`,
  );
  assert.match(
    await configError(pd('capvisor:runtime="wasmedge" capvisor:dirs="d:./data"')),
    /capvisor:dirs entry "d:.\/data" is not guest:host or guest:host:readonly/,
  );
  assert.equal(
    await configError(pd('capvisor:runtime="wasmedge" capvisor:apps="app.wasm x"', "pd.wasm")),
    'FILE:3:1: <protection_domain>: PD "rt": <program_image path="pd.wasm"> must name the first application of capvisor:apps ("app.wasm")',
  );
  assert.match(
    await configError(pd('capvisor:runtime="wasmedge" capvisor:apps="app.wasm; missing.wasm"')),
    /PD "rt": cannot read application "missing.wasm" \(ENOENT\); build it first/,
  );
  assert.equal(
    await configError(pd('capvisor:apps="app.wasm"')),
    'FILE:3:1: <protection_domain>: PD "rt": capvisor:apps configures a runtime PD; add capvisor:runtime="wasmedge" or remove it',
  );
  assert.match(await configError(pd('capvisor:runtime="wasmedge" passive="true"')), /cannot be passive/);
  // The cross-VM channel: both attributes, a declared channel end and a read-write map of the ring.
  assert.match(
    await configError(pd('capvisor:runtime="wasmedge" capvisor:channel="1"')),
    /capvisor:channel and capvisor:ring go together/,
  );
  assert.match(
    await configError(pd('capvisor:runtime="wasmedge" capvisor:channel="1" capvisor:ring="r"')),
    /capvisor:channel="1": this PD has no channel end with id 1 that may notify; declare the <channel>/,
  );
  assert.match(
    await configError('<protection_domain name="rt" capvisor:runtime="wasmedge"></protection_domain>'),
    /needs a <program_image> \(its first application\) or capvisor:channel and capvisor:ring/,
  );
});
