/**
 * The runtime PD's job server (src/wasmedge/vm-jobs.ts), alone against raw ring records and end
 * to end with the guest device (src/vmm/channel-device.ts) over one small region: 16 concurrent
 * jobs whose modules and outputs are larger than the rings, pumped alternately in one thread and
 * then by two threads that wake each other the way a Microkit notification does. Last, the real
 * WASI runner (defaultRun) on the hello example, and cancelling a guest that never ends.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import {
  JOB_CANCEL,
  JOB_DATA,
  JOB_EXIT,
  JOB_START,
  OUT_STDERR,
  OUT_STDOUT,
  type RingRecord,
  RingRegion,
} from "../../src/platform/ring.js";
import {
  ChannelDevice,
  CTRL_CLOSE,
  CTRL_SUBMIT,
  PORT_OPEN,
  REG_AVAIL,
  REG_CTRL,
  REG_DATA,
  SLOT_BASE,
} from "../../src/vmm/channel-device.js";
import { defaultRun, type RunJob, VmJobServer } from "../../src/wasmedge/vm-jobs.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
const port = (slot: number, reg: number) => SLOT_BASE + 16 * slot + reg;
const tick = () => new Promise<void>((r) => setImmediate(r));

// ---- the guest's side, as the guest tool would drive the device ----

function request(args: string[], module: Uint8Array): Uint8Array {
  const strings = args.flatMap((a) => [...enc.encode(a), 0]);
  const out = new Uint8Array(4 + strings.length + module.length);
  new DataView(out.buffer).setUint32(0, args.length, true);
  out.set(strings, 4);
  out.set(module, 4 + strings.length);
  return out;
}

interface JobResult {
  stdout: string;
  stderr: string;
  exit: number | null;
  /** Records after the exit record (must stay 0). */
  afterExit: number;
}

/** Submits jobs through the ports and collects their response streams. */
class Guest {
  private readonly pending = new Map<number, { buf: number[]; result: JobResult }>();
  constructor(private readonly dev: ChannelDevice) {}

  submit(args: string[], module: Uint8Array): { slot: number; result: JobResult } {
    const slot = this.dev.in32(PORT_OPEN);
    assert.notEqual(slot, 0xffffffff);
    const bytes = request(args, module);
    const v = new DataView(bytes.buffer);
    let i = 0;
    for (; i + 4 <= bytes.length; i += 4) this.dev.out32(port(slot, REG_DATA), v.getUint32(i, true));
    for (; i < bytes.length; i++) this.dev.out8(port(slot, REG_DATA), bytes[i]!);
    this.dev.out32(port(slot, REG_CTRL), CTRL_SUBMIT);
    const result: JobResult = { stdout: "", stderr: "", exit: null, afterExit: 0 };
    this.pending.set(slot, { buf: [], result });
    return { slot, result };
  }

  /** Takes what every slot has; closes slots whose exit record arrived. True when all are done. */
  poll(): boolean {
    for (const [slot, p] of this.pending) {
      for (let n = this.dev.in32(port(slot, REG_AVAIL)); n > 0; n = this.dev.in32(port(slot, REG_AVAIL))) {
        if (n >= 4) {
          const w = this.dev.in32(port(slot, REG_DATA));
          p.buf.push(w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24);
        } else p.buf.push(this.dev.in8(port(slot, REG_DATA)));
      }
      // Parse whole records.
      while (p.buf.length >= 5) {
        const len = (p.buf[1]! | (p.buf[2]! << 8) | (p.buf[3]! << 16) | (p.buf[4]! << 24)) >>> 0;
        if (p.buf.length < 5 + len) break;
        const kind = p.buf[0]!;
        const data = Uint8Array.from(p.buf.slice(5, 5 + len));
        p.buf.splice(0, 5 + len);
        if (p.result.exit !== null) p.result.afterExit++;
        else if (kind === 1) p.result.stdout += dec.decode(data);
        else if (kind === 2) p.result.stderr += dec.decode(data);
        else if (kind === 3) p.result.exit = new DataView(data.buffer).getInt32(0, true);
      }
      if (p.result.exit !== null) {
        this.dev.out32(port(slot, REG_CTRL), CTRL_CLOSE);
        this.pending.delete(slot);
      }
    }
    return this.pending.size === 0;
  }
}

// ---- a fake runtime: echoes its args and module, with output larger than the ring ----

function checksum(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const x of b) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return h;
}

function moduleFor(i: number): Uint8Array {
  return Uint8Array.from({ length: 20_000 + 3_331 * i }, (_, k) => (k * 31 + i) & 0xff);
}

/** What the fake run prints for a job: a line, then a long block, in several writes. */
function expectedOutput(
  args: string[],
  module: Uint8Array,
): { stdout: string; stderr: string; exit: number } {
  const tag = args[1] ?? "";
  const block = `${tag}:`.repeat(3000);
  return {
    stdout: `args=${JSON.stringify(args)} size=${module.length} sum=${checksum(module)}\n${block}\n`,
    stderr: `done ${tag}\n`,
    exit: Number(tag.replace(/\D/g, "")) % 7,
  };
}

const echoRun: RunJob = async (module, args, io) => {
  const e = expectedOutput(args, module);
  const out = enc.encode(e.stdout);
  // Several writes, with the event loop turning between them, so jobs interleave.
  for (let i = 0; i < out.length; i += 7000) {
    io.stdout(out.subarray(i, i + 7000));
    await tick();
  }
  io.stderr(enc.encode(e.stderr));
  return e.exit;
};

const JOBS = 16;
const jobArgs = (i: number) => [`job${i}.wasm`, `t${i}`, "second arg"];

function checkResults(results: JobResult[]): void {
  assert.equal(results.length, JOBS);
  results.forEach((r, i) => {
    const e = expectedOutput(jobArgs(i), moduleFor(i));
    assert.equal(r.stdout, e.stdout, `job ${i} stdout`);
    assert.equal(r.stderr, e.stderr, `job ${i} stderr`);
    assert.equal(r.exit, e.exit, `job ${i} exit`);
    assert.equal(r.afterExit, 0, `job ${i}: nothing after its exit record`);
  });
}

// ---- worker-thread ends for the two-thread test ----

interface WorkerSetup {
  role: "vmm" | "runtime";
  sab: SharedArrayBuffer;
  /** Two Int32 words: [0] the VMM's notification bit, [1] the runtime PD's. */
  bells: SharedArrayBuffer;
}
const VMM = 0;
const RUNTIME = 1;

/** Rings the other side's bell: like seL4_Signal on a notification, several rings wake it once. */
function ring(bells: Int32Array, who: number): void {
  Atomics.store(bells, who, 1);
  Atomics.notify(bells, who);
}

/** Waits for our bell, unless it already rang. */
async function waitBell(bells: Int32Array, me: number): Promise<void> {
  const w = Atomics.waitAsync(bells, me, 0);
  if (w.async) await w.value;
}

async function workerMain(setup: WorkerSetup): Promise<void> {
  const region = new RingRegion(setup.sab);
  const bells = new Int32Array(setup.bells);
  const me = setup.role === "vmm" ? VMM : RUNTIME;
  // Keeps this thread alive while it waits: the main thread terminates it.
  parentPort!.on("message", () => {});
  if (setup.role === "runtime") {
    const server = new VmJobServer(region, { run: echoRun, notify: () => ring(bells, VMM) });
    for (;;) {
      // Clear the bit before looking, so that a ring during the pump is not lost.
      Atomics.store(bells, me, 0);
      server.pump();
      await waitBell(bells, me);
    }
  }
  const dev = new ChannelDevice(region);
  const guest = new Guest(dev);
  const results = Array.from({ length: JOBS }, (_, i) => guest.submit(jobArgs(i), moduleFor(i)).result);
  let wakes = 0;
  for (;;) {
    Atomics.store(bells, me, 0);
    if (dev.pump().notify) ring(bells, RUNTIME);
    if (guest.poll()) break;
    // The guest reading its slots frees no ring space: only the runtime's records wake us.
    await waitBell(bells, me);
    wakes++;
  }
  parentPort!.postMessage({ results, wakes, stats: dev.stats });
}

if (!isMainThread && (workerData as WorkerSetup | undefined)?.role !== undefined) {
  void workerMain(workerData as WorkerSetup);
}

// ---- the tests (main thread only) ----

const HELLO = fileURLToPath(new URL("../../../build/examples/wasi/hello.wasm", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Reads every response record the server published. */
function responses(region: RingRegion): RingRecord[] {
  const out: RingRecord[] = [];
  for (let r = region.response.read(); r !== null; r = region.response.read()) out.push(r);
  return out;
}

function startPayload(args: string[], moduleBytes: number): Uint8Array {
  const strings = args.flatMap((a) => [...enc.encode(a), 0]);
  const p = new Uint8Array(8 + strings.length);
  const v = new DataView(p.buffer);
  v.setUint32(0, args.length, true);
  v.setUint32(4, moduleBytes, true);
  p.set(strings, 8);
  return p;
}

const exitOf = (r: RingRecord) => new DataView(r.payload.buffer, r.payload.byteOffset, 4).getInt32(0, true);

if (isMainThread) {
  before(() => {
    const b = spawnSync("sh", [join(ROOT, "scripts/build-wasi-examples.sh")], { encoding: "utf8" });
    assert.equal(b.status, 0, `build-wasi-examples.sh failed:\n${b.stdout}\n${b.stderr}`);
  });

  test("bad requests fail their own job with a stderr message and JOB_EXIT 1", async () => {
    const region = RingRegion.create();
    let notified = 0;
    const runs: string[][] = [];
    const server = new VmJobServer(region, {
      run: async (_m, args) => {
        runs.push(args);
        return 0;
      },
      notify: () => notified++,
      maxModuleBytes: 1000,
    });
    const req = region.request;
    const bad: [number, number, Uint8Array, RegExp][] = [
      [1, JOB_START, startPayload(["a"], 1001), /module of 1001 bytes exceeds/],
      [2, JOB_START, Uint8Array.of(1, 0, 0), /shorter than its 8-byte header/],
      [3, JOB_START, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x61, 0), /argument count/],
      [4, JOB_START, Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x62), /not NUL-terminated/],
      [5, JOB_DATA, Uint8Array.of(1, 2, 3), /never started/],
    ];
    for (const [job, type, payload] of bad) assert.ok(req.tryWrite(type, job, payload));
    // Job 6 announces 4 bytes and sends 5.
    req.tryWrite(JOB_START, 6, startPayload(["x"], 4));
    req.tryWrite(JOB_DATA, 6, Uint8Array.of(1, 2, 3, 4, 5));
    // In-flight data for a refused job is dropped quietly, and an unknown type is ignored.
    req.tryWrite(JOB_DATA, 1, Uint8Array.of(1));
    req.tryWrite(99, 7, Uint8Array.of(1));
    server.pump();
    assert.equal(notified, 1, "one notification for the whole batch");
    const recs = responses(region);
    const byJob = new Map<number, RingRecord[]>();
    for (const r of recs) byJob.set(r.job, [...(byJob.get(r.job) ?? []), r]);
    for (const [job, , , message] of [...bad, [6, 0, new Uint8Array(0), /past the announced 4/] as const]) {
      const rs = byJob.get(job)!;
      assert.deepEqual(
        rs.map((r) => r.type),
        [OUT_STDERR, JOB_EXIT],
        `job ${job}`,
      );
      assert.match(dec.decode(rs[0]!.payload), message);
      assert.equal(exitOf(rs[1]!), 1);
    }
    assert.equal(byJob.size, 6);
    assert.deepEqual(runs, []);
    assert.equal(server.stats.rejected, 6);
    assert.equal(server.stats.ignored, 2);
  });

  test("JOB_CANCEL: an assembling job ends at once; a running job is aborted, then exits", async () => {
    const region = RingRegion.create();
    const server = new VmJobServer(region, {
      run: (_m, _args, io, signal) =>
        new Promise((resolve) => {
          io.stdout(enc.encode("started\n"));
          signal.addEventListener("abort", () => resolve(9));
        }),
      notify: () => {},
    });
    region.request.tryWrite(JOB_START, 1, startPayload(["a"], 10));
    region.request.tryWrite(JOB_DATA, 1, new Uint8Array(5));
    region.request.tryWrite(JOB_CANCEL, 1, new Uint8Array(0));
    region.request.tryWrite(JOB_START, 2, startPayload(["b"], 0));
    server.pump();
    let recs = responses(region);
    assert.deepEqual(
      recs.map((r) => [r.job, r.type]),
      [
        [1, OUT_STDERR],
        [1, JOB_EXIT],
        [2, OUT_STDOUT],
      ],
    );
    assert.equal(server.active, 1);
    region.request.tryWrite(JOB_CANCEL, 2, new Uint8Array(0));
    server.pump();
    await tick();
    recs = responses(region);
    assert.deepEqual(
      recs.map((r) => [r.job, r.type]),
      [[2, JOB_EXIT]],
    );
    assert.equal(exitOf(recs[0]!), 9);
    assert.equal(server.active, 0);
  });

  test("output is split into records of at most maxPayload and queued while the ring is full", async () => {
    const region = RingRegion.create();
    let notified = 0;
    const big = Uint8Array.from({ length: 100_000 }, (_, i) => i % 251);
    const server = new VmJobServer(region, {
      run: async (_m, _a, io) => {
        io.stdout(big);
        io.stderr(enc.encode("end"));
        return 3;
      },
      notify: () => notified++,
    });
    region.request.tryWrite(JOB_START, 5, startPayload(["a"], 0));
    server.pump();
    await tick();
    assert.ok(server.queuedRecords > 0, "the ring filled and the rest waits");
    assert.ok(region.response.waiting, "the server said it waits for space");
    const got: RingRecord[] = [];
    for (let i = 0; i < 100 && server.queuedRecords > 0; i++) {
      got.push(...responses(region));
      // The VMM drained the ring and saw `waiting`: it notifies, the server pumps.
      assert.equal(region.response.consumerDone(), true);
      const before = notified;
      server.pump();
      assert.equal(notified, before + 1);
    }
    got.push(...responses(region));
    const out = got.filter((r) => r.type === OUT_STDOUT);
    assert.ok(out.every((r) => r.payload.length <= region.response.maxPayload));
    assert.deepEqual(Buffer.concat(out.map((r) => r.payload)), Buffer.from(big));
    assert.deepEqual(
      got.slice(-2).map((r) => r.type),
      [OUT_STDERR, JOB_EXIT],
    );
    assert.equal(exitOf(got.at(-1)!), 3);
  });

  test("16 concurrent jobs through device and server in one thread: exact output, nothing lost", async () => {
    const region = RingRegion.create(0x10000);
    let wakeServer = false;
    let wakeVmm = false;
    const server = new VmJobServer(region, {
      run: echoRun,
      notify: () => {
        wakeVmm = true;
      },
    });
    const dev = new ChannelDevice(region);
    const guest = new Guest(dev);
    const results = Array.from({ length: JOBS }, (_, i) => guest.submit(jobArgs(i), moduleFor(i)).result);
    assert.ok(moduleFor(0).length > region.cap, "modules larger than the ring");
    let rounds = 0;
    // Each side runs only when the other notified it (plus the first run of each).
    wakeServer = dev.pump().notify;
    for (; !guest.poll(); rounds++) {
      assert.ok(rounds < 100_000, "no progress");
      if (wakeServer) {
        wakeServer = false;
        server.pump();
      }
      if (wakeVmm) {
        wakeVmm = false;
        if (dev.pump().notify) wakeServer = true;
      }
      if (!wakeServer && !wakeVmm) await tick();
    }
    checkResults(results);
    assert.deepEqual(dev.stats, { unknownJob: 0, droppedAfterClose: 0, malformed: 0, ringError: null });
    assert.equal(server.stats.started, JOBS);
    assert.equal(server.stats.exited, JOBS);
    assert.equal(server.queuedRecords, 0);
  });

  test("16 concurrent jobs with device and server in two threads waking each other", {
    timeout: 120_000,
  }, async () => {
    const sab = new SharedArrayBuffer(0x10000);
    const bells = new SharedArrayBuffer(8);
    const url = new URL(import.meta.url);
    const runtime = new Worker(url, { workerData: { role: "runtime", sab, bells } satisfies WorkerSetup });
    const vmm = new Worker(url, { workerData: { role: "vmm", sab, bells } satisfies WorkerSetup });
    try {
      const msg = await new Promise<{ results: JobResult[]; wakes: number; stats: unknown }>(
        (resolve, reject) => {
          vmm.once("message", resolve);
          vmm.once("error", reject);
          runtime.once("error", reject);
        },
      );
      checkResults(msg.results);
      assert.deepEqual(msg.stats, { unknownJob: 0, droppedAfterClose: 0, malformed: 0, ringError: null });
      console.log(`two threads: the VMM side woke ${msg.wakes} times`);
    } finally {
      await runtime.terminate();
      await vmm.terminate();
    }
  });

  test("defaultRun: the WASI hello example through the device, with its exit code", async () => {
    const region = RingRegion.create();
    let wake = false;
    const server = new VmJobServer(region, {
      run: defaultRun({ env: [["EXIT_CODE", "3"]], preopens: [] }),
      notify: () => {
        wake = true;
      },
    });
    const dev = new ChannelDevice(region);
    const guest = new Guest(dev);
    const hello = guest.submit(["hello.wasm", "from the guest"], readFileSync(HELLO)).result;
    const broken = guest.submit(["broken.wasm"], Uint8Array.of(0, 0x61, 0x73, 0x6d, 9)).result;
    for (let i = 0; !guest.poll(); i++) {
      assert.ok(i < 200_000, "no progress");
      server.pump();
      dev.pump();
      if (!wake) await new Promise((r) => setTimeout(r, 1));
      wake = false;
    }
    assert.deepEqual(hello, {
      stdout: "hello, world\narg 1: from the guest\n",
      stderr: "",
      exit: 3,
      afterExit: 0,
    });
    assert.equal(broken.exit, 1);
    assert.equal(broken.stdout, "");
    assert.match(broken.stderr, /ValidationFailed/);
  });

  test("defaultRun: JOB_CANCEL stops a guest that never ends", async () => {
    // (module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))
    const spin = Uint8Array.from([
      0x00,
      0x61,
      0x73,
      0x6d,
      0x01,
      0x00,
      0x00,
      0x00,
      0x01,
      0x04,
      0x01,
      0x60,
      0x00,
      0x00,
      0x03,
      0x02,
      0x01,
      0x00,
      0x05,
      0x03,
      0x01,
      0x00,
      0x01,
      0x07,
      0x13,
      0x02,
      0x06,
      ...enc.encode("memory"),
      0x02,
      0x00,
      0x06,
      ...enc.encode("_start"),
      0x00,
      0x00,
      0x0a,
      0x09,
      0x01,
      0x07,
      0x00,
      0x03,
      0x40,
      0x0c,
      0x00,
      0x0b,
      0x0b,
    ]);
    assert.ok(WebAssembly.validate(spin));
    const region = RingRegion.create();
    const server = new VmJobServer(region, { run: defaultRun({ env: [], preopens: [] }), notify: () => {} });
    region.request.tryWrite(JOB_START, 1, startPayload(["spin.wasm"], spin.length));
    region.request.tryWrite(JOB_DATA, 1, spin);
    server.pump();
    assert.equal(server.stats.started, 1);
    // Let it start spinning in its worker.
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(responses(region), []);
    region.request.tryWrite(JOB_CANCEL, 1, new Uint8Array(0));
    server.pump();
    const got: RingRecord[] = [];
    for (let i = 0; i < 500 && !got.some((r) => r.type === JOB_EXIT); i++) {
      await new Promise((r) => setTimeout(r, 10));
      server.pump();
      got.push(...responses(region));
    }
    assert.deepEqual(
      got.map((r) => [r.type, r.type === OUT_STDERR ? dec.decode(r.payload) : exitOf(r)]),
      [
        [OUT_STDERR, "cancelled\n"],
        [JOB_EXIT, 1],
      ],
    );
  });
}
