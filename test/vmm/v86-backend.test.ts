/**
 * The v86 VCPU backend with the real guest image (build/guest/, or $CAPVISOR_GUEST_DIR): a VM
 * restored from the image's snapshot runs shell commands over its serial console; the guest
 * executes nothing between two slices; a port range the VMM registers sees the guest's port
 * I/O, also after restoring a saved state; the guest's RAM really is restored; an idle guest
 * says so; and the backend works inside a worker thread, where the VMM PD runs.
 *
 * Port I/O from the guest goes through Linux's /dev/port (one inb/outb per byte at the file
 * offset), which busybox's dd reaches without any extra tool in the image.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import {
  bootFromSnapshot,
  defaultGuestDir,
  ensureSnapshot,
  type GuestImage,
  loadGuestImage,
} from "../../src/vmm/snapshot.js";
import { driveUntil, type VcpuBackend } from "../../src/vmm/vcpu-backend.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BUILD_GUEST = join(ROOT, "scripts/build-guest.sh");

let image: GuestImage | undefined;
let skipReason: string | undefined;

before(async () => {
  const dir = defaultGuestDir();
  if (!existsSync(join(dir, "image.json"))) {
    if (process.env.CAPVISOR_GUEST_DIR === undefined && existsSync(BUILD_GUEST)) {
      execFileSync("sh", [BUILD_GUEST], { cwd: ROOT, stdio: "inherit" });
    } else {
      skipReason = `no guest image in ${dir} and no scripts/build-guest.sh to build one`;
      return;
    }
  }
  image = loadGuestImage(dir);
  // Made once here so that each test below starts from the file (a cold boot takes 6-25 s).
  await ensureSnapshot(image);
});

/** A VM at its shell prompt, with everything it has printed collected in `output()`. */
class Guest {
  private text = "";
  private constructor(readonly backend: VcpuBackend) {
    backend.onSerialOutput((byte) => {
      this.text += String.fromCharCode(byte);
    });
  }

  static async boot(): Promise<Guest> {
    assert.ok(image);
    return new Guest((await bootFromSnapshot(image)).backend);
  }

  output(): string {
    return this.text;
  }

  /**
   * Type a command line and run the guest until `expect` appears after it. The shell echoes the
   * line as typed, so callers expect text only the command's result can contain.
   */
  async command(line: string, expect: string | RegExp, timeoutMs = 30_000): Promise<string> {
    const from = this.text.length;
    this.backend.sendSerial(`${line}\n`);
    const seen = () => {
      const tail = this.text.slice(from);
      return typeof expect === "string" ? tail.includes(expect) : expect.test(tail);
    };
    try {
      await driveUntil(this.backend, seen, { timeoutMs });
    } catch (error) {
      throw new Error(`${String(error)}; guest printed: ${JSON.stringify(this.text.slice(from))}`);
    }
    return this.text.slice(from);
  }
}

const guests: Guest[] = [];
async function bootGuest(): Promise<Guest> {
  const guest = await Guest.boot();
  guests.push(guest);
  return guest;
}
after(async () => {
  for (const guest of guests) await guest.backend.stop();
});

test("a VM restored from the image's snapshot runs a shell command over the serial console", async (t) => {
  if (skipReason) return t.skip(skipReason);
  const guest = await bootGuest();
  // The command line is echoed as typed; only the shell's result has 42 on a line of its own.
  const out = await guest.command("echo $((6 * 7))", "\r\n42\r\n");
  assert.match(out, /^echo \$\(\(6 \* 7\)\)\r\n42\r\n/);
  await guest.command("uname -sm", /Linux i686\r\n/);
});

test("a guest's clock runs on after restoreState, however often the machine is restored", async (t) => {
  if (skipReason) return t.skip(skipReason);
  // This machine was already restored once (from the snapshot file, saved by another process
  // whose host clock was elsewhere); restore it again. v86 keeps the TSC as host time minus an
  // offset, and its set_tsc computes the new offset from the old one: unless the guest's clock
  // continues exactly from the saved one, the TSC jumps and Linux's clock stands still until it
  // catches up (14 s here before capvisor gave each machine its own clock).
  const guest = await bootGuest();
  const uptime = async (marker: string): Promise<number> => {
    const out = await guest.command(`cat /proc/uptime; echo ${marker}-$((2 + 2))`, `${marker}-4\r\n`);
    const line = /\r\n(\d+\.\d+) /.exec(out);
    assert.ok(line, `no uptime in ${JSON.stringify(out)}`);
    return Number(line[1]);
  };
  const before = await uptime("before");
  const hostStart = performance.now();
  guest.backend.restoreState(guest.backend.saveState());
  // The guest runs (idle at its prompt) for a second of host time.
  await driveUntil(guest.backend, () => performance.now() - hostStart > 1000);
  const after = await uptime("after");
  // Guest time is host time here (v86 reads the host clock), so the second reading is at least
  // a second later. Half a second leaves room for rounding; a stalled clock shows about 0.
  assert.ok(after - before >= 0.5, `the guest's uptime went from ${before} s to only ${after} s`);
});

test("between two slices the guest executes nothing: no output, no instructions", async (t) => {
  if (skipReason) return t.skip(skipReason);
  const guest = await bootGuest();
  const { backend } = guest;
  // A guest that prints for as long as it runs.
  await guest.command("while :; do echo tick; done", "tick\r\ntick\r\ntick\r\n");
  for (let round = 0; round < 3; round++) {
    const result = backend.run(10);
    assert.equal(result.status, "preempted", "a printing loop never idles");
    assert.ok(result.instructions > 0);
    const printed = guest.output().length;
    const retired = backend.instructionCount();
    // Real time passes (timers would fire, v86's own scheduler would run the CPU) ...
    await new Promise((resolve) => setTimeout(resolve, 150));
    // ... but the guest has not run.
    assert.equal(guest.output().length, printed, "serial output arrived while the guest was not scheduled");
    assert.equal(
      backend.instructionCount(),
      retired,
      "instructions retired while the guest was not scheduled",
    );
    // The next slice picks up where it stopped.
    const lengthBefore = guest.output().length;
    await driveUntil(backend, () => guest.output().length > lengthBefore + 20, { timeoutMs: 10_000 });
    assert.match(guest.output().slice(lengthBefore), /tick/);
  }
});

test("ports the VMM registers see the guest's in and out, also after restoring a saved state", async (t) => {
  if (skipReason) return t.skip(skipReason);
  const guest = await bootGuest();
  const { backend } = guest;
  const writes: Array<[number, number]> = [];
  const reads: number[] = [];
  backend.registerPorts(0x2000, 0x100, {
    in8: (port) => {
      reads.push(port);
      return port === 0x2000 ? 0x43 : port - 0x2000;
    },
    out8: (port, value) => {
      writes.push([port, value]);
    },
  });
  const saved = backend.saveState();

  const exercise = async (marker: string): Promise<void> => {
    writes.length = 0;
    reads.length = 0;
    // outb('Z', 0x2004); then inb(0x2000) and inb(0x2003), shown as hex bytes.
    await guest.command(
      `printf Z | dd of=/dev/port bs=1 seek=${0x2004} 2>/dev/null; ` +
        `for p in ${0x2000} ${0x2003}; do dd if=/dev/port bs=1 skip=$p count=1 2>/dev/null; done | ` +
        `od -An -tx1; echo ${marker}-$((1 + 1))`,
      `${marker}-2\r\n`,
    );
    assert.deepEqual(writes, [[0x2004, 0x5a]]);
    assert.deepEqual(reads, [0x2000, 0x2003]);
    assert.match(guest.output(), / 43 03\r\n/);
  };
  await exercise("first");
  // Change the guest (a shell variable), then go back to the saved machine: the variable is
  // gone (RAM restored) and the VMM's ports still answer (handlers put back).
  await guest.command("MARK=set; echo $MARK-done", "set-done\r\n");
  backend.restoreState(saved);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
  await guest.command("echo ${MARK:-unset}-after", "unset-after\r\n");
  await exercise("again");
});

test("a guest at its prompt goes idle, and says when its next timer is due", async (t) => {
  if (skipReason) return t.skip(skipReason);
  const guest = await bootGuest();
  const { backend } = guest;
  await guest.command("echo $((40 + 2))awake", "42awake\r\n");
  let idle = 0;
  for (let i = 0; i < 50 && idle === 0; i++) {
    const result = backend.run(20);
    if (result.status === "idle") {
      idle++;
      assert.ok(backend.isHalted());
      assert.ok(result.wakeInMs >= 0 && result.wakeInMs <= 1000, `next timer in ${result.wakeInMs} ms`);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(idle > 0, "the guest never halted at its shell prompt");
  // Input wakes it: the byte is delivered at the start of the next slice.
  await guest.command("echo $((1 + 1))woken", "2woken\r\n");
});

test("the backend runs a guest inside a worker thread", async (t) => {
  if (skipReason) return t.skip(skipReason);
  assert.ok(image);
  const snapshotModule = new URL("../../src/vmm/snapshot.js", import.meta.url).href;
  const backendModule = new URL("../../src/vmm/vcpu-backend.js", import.meta.url).href;
  // The worker boots from the snapshot and reports what the guest printed for one command.
  const source = `
    const { parentPort, workerData } = require("node:worker_threads");
    (async () => {
      const { bootFromSnapshot, loadGuestImage } = await import(workerData.snapshotModule);
      const { driveUntil } = await import(workerData.backendModule);
      const { backend } = await bootFromSnapshot(loadGuestImage(workerData.dir));
      let out = "";
      backend.onSerialOutput((b) => { out += String.fromCharCode(b); });
      backend.sendSerial("echo in-a-worker\\n");
      await driveUntil(backend, () => out.includes("\\r\\nin-a-worker\\r\\n"), { timeoutMs: 30000 });
      await backend.stop();
      parentPort.postMessage(out);
    })().catch((e) => parentPort.postMessage("error: " + String(e)));
  `;
  const worker = new Worker(source, {
    eval: true,
    workerData: { snapshotModule, backendModule, dir: image.dir },
  });
  const out = await new Promise<unknown>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  await worker.terminate();
  assert.equal(typeof out, "string");
  assert.match(String(out), /\r\nin-a-worker\r\n/);
});
