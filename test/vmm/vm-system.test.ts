/**
 * Linux VMs beside the WasmEdge runtime PD (issue 5), end to end: examples/default.system and
 * examples/vm-isolated.system booted with bootSystem, the guest driven through its serial
 * console as a user would (`capvisor console linux`), starting from the saved snapshot (the first
 * run of the suite makes it with one cold boot).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ThreadState } from "../../src/kernel/types.js";
import { type BootedSystem, bootSystem } from "../../src/system/boot.js";
import { type VmmPD, vmmRuntime } from "../../src/vmm/vmm-pd.js";
import { type RuntimePD, wasmedgeRuntime } from "../../src/wasmedge/runtime-pd.js";
import { Console } from "./guest-console.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const EXAMPLES = join(ROOT, "examples");

let sys: BootedSystem<RuntimePD | VmmPD>;
let vmm: VmmPD;
let guest: Console;
const lines: string[] = [];
const events: string[] = [];

before(async () => {
  sys = await bootSystem<RuntimePD | VmmPD>(join(EXAMPLES, "default.system"), {
    runtimes: [wasmedgeRuntime, vmmRuntime],
    cores: 2,
    onLine: (pd, line) => lines.push(`[${pd}] ${line}`),
    onEvent: (pd, msg) => events.push(`[${pd}] ${msg}`),
  });
  vmm = sys.runtimes.find((r): r is VmmPD => "vcpuTcb" in r)!;
  guest = new Console(vmm);
  // The snapshot was taken at the prompt: a newline gives a fresh one.
  vmm.sendConsole(new TextEncoder().encode("\n"));
  await guest.waitFor(/linux:.*# /, 60_000);
});

after(async () => {
  await sys?.stop();
});

test("the VM and its VMM run beside the WasmEdge PD, each with its kernel state", () => {
  const status = sys.status();
  const names = status.map((s) => s.name).sort();
  assert.deepEqual(
    names,
    ["wasmedge.fs", "wasmedge.net", "linux", "vmm", "wasmedge"].sort(),
    JSON.stringify(status),
  );
  const linux = status.find((s) => s.name === "linux")!;
  assert.equal(linux.core, 1);
  assert.equal(sys.loaded.vms.length, 1);
  assert.equal(sys.loaded.vms[0]!.tcb.priority, 50);
});

test("from the Linux shell, a .wasm file with arguments runs in the WasmEdge PD: output and exit code", async () => {
  const out = await guest.sh("wasmedge-run /root/wasm/hello.wasm one 'two words'");
  assert.equal(out, "hello, world\narg 1: one\narg 2: two words\nrc=0");
  assert.ok(
    lines.some((l) => /^\[wasmedge\] job \d+ from the VM: \/root\/wasm\/hello\.wasm one two words/.test(l)),
    lines.join("\n"),
  );
  assert.ok(vmm.stats.doorbells > 0);
  // The job ran on one of the WasmEdge PD's application threads, a kernel thread that the kernel
  // scheduled (its scheduling context was charged) and that exited when the job ended.
  const rt = sys.runtimes.find((r): r is RuntimePD => "appThreads" in r)!;
  const ran = rt.appThreads.filter((t) => t.tcb.sc!.consumed > 0);
  assert.ok(ran.length >= 1, "a job thread ran");
  for (const t of ran) {
    assert.match(t.name, /^wasmedge\/job-\d+$/);
    // It posts the result just before it exits.
    for (let i = 0; i < 100 && t.tcb.state !== ThreadState.BlockedOnNotification; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(t.tcb.state, ThreadState.BlockedOnNotification);
  }
});

test("the job's files are the WasmEdge PD's preopens, and nothing else", async () => {
  assert.equal(
    await guest.sh("wasmedge-run /root/wasm/as-cat.wasm /data/greeting.txt"),
    "hello from the WasmEdge PD's /data\n-- /data/greeting.txt: 35 bytes, 1 lines\nrc=0",
  );
  const escaped = await guest.sh("wasmedge-run /root/wasm/as-cat.wasm /data/../../etc/passwd");
  assert.match(escaped, /rc=[1-9]\d*$/);
  assert.doesNotMatch(escaped, /root:/);
});

test("concurrent jobs from several guest processes each get their own output", async () => {
  const out = await guest.sh(
    "for i in 1 2 3 4 5 6; do wasmedge-run /root/wasm/hello.wasm job$i > /tmp/o$i & done; wait; cat /tmp/o1 /tmp/o2 /tmp/o3 /tmp/o4 /tmp/o5 /tmp/o6",
    120_000,
  );
  const expected = [1, 2, 3, 4, 5, 6].map((i) => `hello, world\narg 1: job${i}\n`).join("");
  assert.equal(out, `${expected}rc=0`);
});

test("a module that is not Wasm: a clear error on stderr and exit code 1; the PD keeps serving", async () => {
  const out = await guest.sh("echo 'not wasm' > /tmp/bad.wasm; wasmedge-run /tmp/bad.wasm 2>&1");
  assert.match(out, /rc=1$/);
  assert.match(out, /magic|valid|Wasm|wasm/);
  assert.equal(
    await guest.sh("wasmedge-run /root/wasm/hello.wasm again"),
    "hello, world\narg 1: again\nrc=0",
  );
});

test("a job that spins on its application thread is preempted, and cancelled when its guest process is stopped", async () => {
  const rt = sys.runtimes.find((r): r is RuntimePD => "appThreads" in r)!;
  const used = () => rt.appThreads.map((t) => t.tcb.sc!.consumed);
  const before = used();
  // The guest's own shell keeps answering while the job spins in the WasmEdge PD: the job's
  // thread is preempted like any PD's. SIGTERM makes wasmedge-run close its slot (JOB_CANCEL).
  const out = await guest.sh(
    "wasmedge-run /root/wasm/spin.wasm > /tmp/spin & p=$!; sleep 2; echo alive; kill $p; wait $p; echo killed=$?; cat /tmp/spin",
  );
  assert.equal(out, "alive\nkilled=143\nspinning\nrc=0");
  // The thread that ran it spent time on a core, and is free again: waiting for the next job.
  const after = used();
  const ran = rt.appThreads.filter((_, i) => after[i]! - before[i]! > 100e6);
  assert.equal(ran.length, 1, `threads that ran for over 100 ms: ${ran.map((t) => t.name)}`);
  for (let i = 0; i < 200 && ran[0]!.tcb.state !== ThreadState.BlockedOnNotification; i++)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(ran[0]!.tcb.state, ThreadState.BlockedOnNotification);
  assert.ok(
    lines.some((l) => /^\[wasmedge\] job \d+ exited with code 1$/.test(l)),
    lines.join("\n"),
  );
  assert.equal(await guest.sh("wasmedge-run /root/wasm/hello.wasm next"), "hello, world\narg 1: next\nrc=0");
});

test("the guest kernel crashing: the VMM restarts the VM from its snapshot; the WasmEdge PD is untouched", async () => {
  const restarts = vmm.stats.restarts;
  const from = guest.output.length;
  vmm.sendConsole(new TextEncoder().encode("echo c > /proc/sysrq-trigger\n"));
  await guest.waitFor(/Kernel panic/, 60_000, from);
  // After the restart the guest is at its prompt again (the snapshot's); a newline shows one.
  const deadline = Date.now() + 60_000;
  while (vmm.stats.restarts === restarts && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  assert.equal(vmm.stats.restarts, restarts + 1);
  assert.ok(
    events.some((e) => /\[linux\] the guest kernel panicked; restarting the VM from its snapshot/.test(e)),
    events.join("\n"),
  );
  vmm.sendConsole(new TextEncoder().encode("\n"));
  await guest.waitFor(/linux:.*# /, 60_000, guest.output.length);
  assert.equal(
    await guest.sh("wasmedge-run /root/wasm/hello.wasm after"),
    "hello, world\narg 1: after\nrc=0",
  );
});

test("VmmPD.restart(): the VMM restarts a VM on request (a hung guest) through its restart doorbell", async () => {
  const restarts = vmm.stats.restarts;
  // The guest's shell is busy for good: only a restart gets it back.
  vmm.sendConsole(new TextEncoder().encode("while :; do :; done\n"));
  await new Promise((r) => setTimeout(r, 500));
  vmm.restart();
  const deadline = Date.now() + 60_000;
  while (vmm.stats.restarts === restarts && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  assert.equal(vmm.stats.restarts, restarts + 1);
  assert.ok(
    events.some((e) => e === "[linux] restarting the VM from its snapshot, as asked"),
    events.join("\n"),
  );
  vmm.sendConsole(new TextEncoder().encode("\n"));
  await guest.waitFor(/linux:.*# /, 60_000, guest.output.length);
  assert.equal(
    await guest.sh("wasmedge-run /root/wasm/hello.wasm restarted"),
    "hello, world\narg 1: restarted\nrc=0",
  );
});

test("a VM that keeps crashing is left stopped after 3 restarts in 30 s, until restart() is asked", async () => {
  // The count before asking: the VMM may handle the doorbell at once, within restart().
  const base = vmm.stats.restarts + 1;
  vmm.restart(); // forget the faults of the tests above
  const panicOnce = async (): Promise<void> => {
    const from = guest.output.length;
    vmm.sendConsole(new TextEncoder().encode("\n"));
    await guest.waitFor(/linux:.*# /, 60_000, from);
    vmm.sendConsole(new TextEncoder().encode("echo c > /proc/sysrq-trigger\n"));
    await guest.waitFor(/end Kernel panic/, 60_000, from);
  };
  const waitRestarts = async (n: number): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while (vmm.stats.restarts < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(vmm.stats.restarts, n, `restarts; the events so far:\n${events.join("\n")}`);
  };
  await waitRestarts(base);
  for (let i = 1; i <= 3; i++) {
    await panicOnce();
    await waitRestarts(base + i);
  }
  await panicOnce();
  const deadline = Date.now() + 60_000;
  while (!events.some((e) => /stays stopped/.test(e)) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  assert.ok(
    events.some(
      (e) =>
        e ===
        "[linux] the guest kernel panicked; it failed 4 times in 30 s, so it stays stopped (restart() tries again)",
    ),
    events.join("\n"),
  );
  assert.equal(vmm.stats.restarts, base + 3);
  vmm.restart();
  await waitRestarts(base + 4);
  vmm.sendConsole(new TextEncoder().encode("\n"));
  await guest.waitFor(/linux:.*# /, 60_000, guest.output.length);
  assert.equal(await guest.sh("wasmedge-run /root/wasm/hello.wasm back"), "hello, world\narg 1: back\nrc=0");
});
