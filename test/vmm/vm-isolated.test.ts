/**
 * A VM declared without a channel (examples/vm-isolated.system) reaches nothing outside its VM:
 * in the running system its guest finds no channel device, and `capvisor verify` finds no path
 * from it to the other PD. Its scheduling context (the description's budget and period) holds.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type BootedSystem, bootSystem } from "../../src/system/boot.js";
import { analyseFile, infoPath } from "../../src/verify/authority.js";
import { type VmmPD, vmmRuntime } from "../../src/vmm/vmm-pd.js";
import { type RuntimePD, wasmedgeRuntime } from "../../src/wasmedge/runtime-pd.js";
import { Console } from "./guest-console.js";

const SYSTEM = fileURLToPath(new URL("../../../examples/vm-isolated.system", import.meta.url));

let sys: BootedSystem<RuntimePD | VmmPD>;
let guest: Console;
const lines: string[] = [];

before(async () => {
  sys = await bootSystem<RuntimePD | VmmPD>(SYSTEM, {
    runtimes: [wasmedgeRuntime, vmmRuntime],
    cores: 2,
    onLine: (pd, line) => lines.push(`[${pd}] ${line}`),
  });
  const vmm = sys.runtimes.find((r): r is VmmPD => "vcpuTcb" in r)!;
  guest = new Console(vmm);
  vmm.sendConsole(new TextEncoder().encode("\n"));
  await guest.waitFor(/linux:.*# /, 60_000);
});

after(async () => {
  await sys?.stop();
});

test("the guest of a VM without a channel has no channel device: wasmedge-run says so and exits 2", async () => {
  const out = await guest.sh("wasmedge-run /root/wasm/hello.wasm 2>&1");
  assert.equal(
    out,
    "wasmedge-run: no capvisor channel device (this VM has no channel to a WasmEdge PD)\nrc=2",
  );
  // The Wasm PD beside it ran undisturbed.
  assert.ok(
    lines.some((l) => l.startsWith("[hello] ")),
    lines.join("\n"),
  );
});

test("the VM's budget holds: a guest spinning on its CPU gets 2 ms every 10 ms of its core, no more", async (t) => {
  const sc = sys.loaded.vms[0]!.tcb.sc!;
  await guest.sh("(while :; do :; done) & sleep 0");
  const c0 = sc.consumed;
  const t0 = sys.platform.now();
  await new Promise((r) => setTimeout(r, 3000));
  const share = (sc.consumed - c0) / (sys.platform.now() - t0);
  t.diagnostic(`the spinning VM used ${(share * 100).toFixed(1)}% of its core`);
  // MCS: at most budget/period over a window, plus the overrun of one slice the kernel charges
  // back as debt; and a runnable guest alone on its core gets its budget.
  assert.ok(share <= 0.3, `the VM used ${(share * 100).toFixed(1)}% of its core`);
  assert.ok(share >= 0.1, `the VM used only ${(share * 100).toFixed(1)}% of its core`);
  await guest.sh("kill %1");
});

test("capvisor verify: no information path from the VM to the other PD, only to its VMM", async () => {
  const { graph } = await analyseFile(join(SYSTEM));
  assert.equal(infoPath(graph, "linux", "hello"), null);
  assert.notEqual(infoPath(graph, "linux", "vmm"), null);
});
