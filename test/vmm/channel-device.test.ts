/**
 * The guest-facing channel device (src/vmm/channel-device.ts) against docs/vm-channel.md: the
 * guest's port accesses on one side, and on the other the raw ring records a runtime PD would
 * see and send (played here directly on the region).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
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
  DEVICE_ID,
  NO_SLOT,
  PORT_ID,
  PORT_OPEN,
  PORT_VERSION,
  REG_AVAIL,
  REG_CTRL,
  REG_DATA,
  REG_STATE,
  SLOT_BASE,
  STATE_FINISHED,
  STATE_FREE,
  STATE_STAGING,
  STATE_SUBMITTED,
} from "../../src/vmm/channel-device.js";

const port = (slot: number, reg: number) => SLOT_BASE + 16 * slot + reg;
const enc = new TextEncoder();

/** The staged request format: u32 argc, NUL-terminated strings, the module. */
function request(args: string[], module: Uint8Array): Uint8Array {
  const strings = args.flatMap((a) => [...enc.encode(a), 0]);
  const out = new Uint8Array(4 + strings.length + module.length);
  new DataView(out.buffer).setUint32(0, args.length, true);
  out.set(strings, 4);
  out.set(module, 4 + strings.length);
  return out;
}

/** Stages bytes the way a guest tool would: words with out32, the tail with out8. */
function stage(dev: ChannelDevice, slot: number, bytes: Uint8Array): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 0;
  for (; i + 4 <= bytes.length; i += 4) dev.out32(port(slot, REG_DATA), v.getUint32(i, true));
  for (; i < bytes.length; i++) dev.out8(port(slot, REG_DATA), bytes[i]!);
}

/** Reads a slot's whole response stream through in32/in8, as records. */
function readStream(dev: ChannelDevice, slot: number): { kind: number; data: Uint8Array }[] {
  const bytes: number[] = [];
  for (let avail = dev.in32(port(slot, REG_AVAIL)); avail > 0; avail = dev.in32(port(slot, REG_AVAIL))) {
    if (avail >= 4) {
      const w = dev.in32(port(slot, REG_DATA));
      bytes.push(w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24);
    } else bytes.push(dev.in8(port(slot, REG_DATA)));
  }
  const out: { kind: number; data: Uint8Array }[] = [];
  const b = Uint8Array.from(bytes);
  const v = new DataView(b.buffer);
  for (let at = 0; at < b.length; ) {
    const len = v.getUint32(at + 1, true);
    out.push({ kind: b[at]!, data: b.slice(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return out;
}

function drain(region: RingRegion): RingRecord[] {
  const out: RingRecord[] = [];
  for (let r = region.request.read(); r !== null; r = region.request.read()) out.push(r);
  return out;
}

const exitBytes = (code: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, code, true);
  return b;
};

test("ID, VERSION and OPEN: 16 slots, then 0xffffffff; CLOSE frees a slot for the next OPEN", () => {
  const dev = new ChannelDevice(RingRegion.create());
  assert.equal(dev.in32(PORT_ID), DEVICE_ID);
  assert.equal(dev.in32(PORT_ID), 0x48435643);
  assert.equal(dev.in32(PORT_VERSION), 1);
  for (let s = 0; s < 16; s++) {
    assert.equal(dev.in32(port(s, REG_STATE)), STATE_FREE);
    assert.equal(dev.in32(PORT_OPEN), s);
    assert.equal(dev.in32(port(s, REG_STATE)), STATE_STAGING);
  }
  assert.equal(dev.in32(PORT_OPEN), NO_SLOT);
  dev.out32(port(5, REG_CTRL), CTRL_CLOSE);
  assert.equal(dev.in32(port(5, REG_STATE)), STATE_FREE);
  assert.equal(dev.in32(PORT_OPEN), 5);
  assert.equal(dev.in32(PORT_OPEN), NO_SLOT);
});

test("a submitted job becomes JOB_START and JOB_DATA records; responses become the slot's stream", () => {
  const region = RingRegion.create();
  const dev = new ChannelDevice(region);
  const module = Uint8Array.from({ length: 20000 }, (_, i) => i & 0xff);
  const s = dev.in32(PORT_OPEN);
  stage(dev, s, request(["app.wasm", "x y"], module.subarray(0, 19999)));
  dev.out8(port(s, REG_DATA), module[19999]!);
  assert.equal(dev.pump().notify, false, "nothing submitted yet");
  dev.out32(port(s, REG_CTRL), CTRL_SUBMIT);
  assert.equal(dev.in32(port(s, REG_STATE)), STATE_SUBMITTED);
  assert.equal(dev.pump().notify, true);
  const got: RingRecord[] = [];
  // The module is larger than the ring: it goes in as the runtime drains.
  for (let i = 0; i < 10 && (got.length === 0 || dev.pendingRequests); i++) {
    got.push(...drain(region));
    dev.pump();
  }
  got.push(...drain(region));
  const [start, ...data] = got;
  assert.equal(start!.type, JOB_START);
  const job = start!.job;
  assert.ok(job > 0);
  const sv = new DataView(start!.payload.buffer);
  assert.equal(sv.getUint32(0, true), 2, "argc");
  assert.equal(sv.getUint32(4, true), 20000, "moduleBytes");
  assert.deepEqual([...start!.payload.subarray(8)], [...enc.encode("app.wasm\0x y\0")]);
  assert.ok(data.length >= 3);
  assert.ok(
    data.every((r) => r.type === JOB_DATA && r.job === job && r.payload.length <= region.request.maxPayload),
  );
  assert.deepEqual(Buffer.concat(data.map((r) => r.payload)), Buffer.from(module));

  assert.equal(dev.in32(port(s, REG_AVAIL)), 0);
  assert.equal(dev.in32(port(s, REG_DATA)), 0, "no response bytes yet reads 0");
  region.response.tryWrite(OUT_STDOUT, job, enc.encode("hello\n"));
  region.response.tryWrite(OUT_STDERR, job, enc.encode("warn"));
  region.response.tryWrite(OUT_STDOUT, job, enc.encode("more"));
  region.response.tryWrite(JOB_EXIT, job, exitBytes(42));
  dev.pump();
  assert.equal(dev.in32(port(s, REG_STATE)), STATE_FINISHED);
  assert.equal(dev.in32(port(s, REG_AVAIL)), 5 + 6 + 5 + 4 + 5 + 4 + 5 + 4);
  assert.deepEqual(readStream(dev, s), [
    { kind: 1, data: enc.encode("hello\n") },
    { kind: 2, data: enc.encode("warn") },
    { kind: 1, data: enc.encode("more") },
    { kind: 3, data: exitBytes(42) },
  ]);
  assert.equal(dev.in32(port(s, REG_STATE)), STATE_FINISHED, "exit record taken: still finished");
  dev.out32(port(s, REG_CTRL), CTRL_CLOSE);
  assert.equal(dev.in32(port(s, REG_STATE)), STATE_FREE);
  // The id is retired: a late record for it is dropped and counted.
  region.response.tryWrite(OUT_STDOUT, job, enc.encode("late"));
  region.response.tryWrite(OUT_STDOUT, 999, enc.encode("who"));
  dev.pump();
  assert.equal(dev.stats.unknownJob, 2);
});

test("job ids increase, are never 0 and never reused", () => {
  const region = RingRegion.create();
  const dev = new ChannelDevice(region);
  const ids: number[] = [];
  for (let round = 0; round < 40; round++) {
    const s = dev.in32(PORT_OPEN);
    stage(dev, s, request(["a"], new Uint8Array(0)));
    dev.out32(port(s, REG_CTRL), CTRL_SUBMIT);
    dev.pump();
    const start = drain(region).find((r) => r.type === JOB_START);
    ids.push(start!.job);
    if (round % 2 === 0) {
      region.response.tryWrite(JOB_EXIT, start!.job, exitBytes(0));
      dev.pump();
    }
    dev.out32(port(s, REG_CTRL), CTRL_CLOSE);
  }
  assert.ok(
    ids.every((id, i) => id > 0 && (i === 0 || id > ids[i - 1]!)),
    `${ids}`,
  );
});

test("CLOSE of a running job sends JOB_CANCEL and drops its records until its JOB_EXIT", () => {
  const region = RingRegion.create();
  const dev = new ChannelDevice(region);
  const s = dev.in32(PORT_OPEN);
  stage(dev, s, request(["a"], new Uint8Array(100)));
  dev.out32(port(s, REG_CTRL), CTRL_SUBMIT);
  dev.pump();
  const [start, data] = drain(region);
  assert.equal(data!.type, JOB_DATA);
  dev.out32(port(s, REG_CTRL), CTRL_CLOSE);
  assert.equal(dev.pump().notify, true);
  assert.deepEqual(drain(region), [{ type: JOB_CANCEL, job: start!.job, payload: new Uint8Array(0) }]);
  // The slot is free at once and may be reused; the old job's output must not reach it.
  const s2 = dev.in32(PORT_OPEN);
  assert.equal(s2, s);
  region.response.tryWrite(OUT_STDOUT, start!.job, enc.encode("stale"));
  region.response.tryWrite(JOB_EXIT, start!.job, exitBytes(1));
  dev.pump();
  assert.equal(dev.in32(port(s2, REG_AVAIL)), 0);
  assert.equal(dev.in32(port(s2, REG_STATE)), STATE_STAGING);
  assert.equal(dev.stats.droppedAfterClose, 2);
  assert.equal(dev.stats.unknownJob, 0);
});

test("reset (the guest restarted) frees every slot, cancels the running jobs, and keeps ids increasing", () => {
  const region = RingRegion.create();
  const dev = new ChannelDevice(region);
  const a = dev.in32(PORT_OPEN);
  stage(dev, a, request(["a"], new Uint8Array(10)));
  dev.out32(port(a, REG_CTRL), CTRL_SUBMIT);
  const b = dev.in32(PORT_OPEN);
  stage(dev, b, request(["b"], new Uint8Array(10)));
  dev.pump();
  const [start] = drain(region);
  dev.reset();
  assert.equal(dev.pump().notify, true);
  assert.deepEqual(drain(region), [{ type: JOB_CANCEL, job: start!.job, payload: new Uint8Array(0) }]);
  for (let i = 0; i < 16; i++) assert.equal(dev.in32(port(i, REG_STATE)), STATE_FREE);
  const c = dev.in32(PORT_OPEN);
  stage(dev, c, request(["c"], new Uint8Array(10)));
  dev.out32(port(c, REG_CTRL), CTRL_SUBMIT);
  dev.pump();
  const [next] = drain(region);
  assert.equal(next!.type, JOB_START);
  assert.ok(next!.job > start!.job);
});

test("CLOSE before JOB_START was sent sends nothing at all", () => {
  const region = RingRegion.create();
  const dev = new ChannelDevice(region);
  const s = dev.in32(PORT_OPEN);
  stage(dev, s, request(["a"], new Uint8Array(10)));
  dev.out32(port(s, REG_CTRL), CTRL_SUBMIT);
  dev.out32(port(s, REG_CTRL), CTRL_CLOSE);
  assert.equal(dev.pump().notify, false);
  assert.deepEqual(drain(region), []);
});

test("accesses a slot's state does not allow are ignored, and reads of them return 0", () => {
  const region = RingRegion.create();
  const dev = new ChannelDevice(region);
  // Free slot: DATA, SUBMIT, CLOSE change nothing.
  dev.out32(port(3, REG_DATA), 0x12345678);
  dev.out8(port(3, REG_DATA), 1);
  dev.out32(port(3, REG_CTRL), CTRL_SUBMIT);
  dev.out32(port(3, REG_CTRL), CTRL_CLOSE);
  assert.equal(dev.in32(port(3, REG_STATE)), STATE_FREE);
  assert.equal(dev.in32(port(3, REG_DATA)), 0);
  assert.equal(dev.in8(port(3, REG_DATA)), 0);
  assert.equal(dev.in32(port(3, REG_AVAIL)), 0);
  // Ports outside the registers, unaligned ports and unknown CTRL values.
  for (const p of [0x200c, 0x2010, 0x203c, 0x2041, 0x2140, 0x20ff]) {
    assert.equal(dev.in32(p), 0, `port ${p.toString(16)}`);
    dev.out32(p, CTRL_SUBMIT);
  }
  const s = dev.in32(PORT_OPEN);
  assert.equal(s, 0, "OPEN unaffected by the stray accesses");
  dev.out32(port(s, REG_CTRL), 7);
  assert.equal(dev.in32(port(s, REG_STATE)), STATE_STAGING);
  // A submitted slot takes no more DATA.
  stage(dev, s, request(["a"], Uint8Array.of(1, 2, 3)));
  dev.out32(port(s, REG_CTRL), CTRL_SUBMIT);
  dev.out32(port(s, REG_DATA), 0xffffffff);
  dev.out32(port(s, REG_CTRL), CTRL_SUBMIT);
  dev.pump();
  const recs = drain(region);
  assert.equal(recs.length, 2);
  assert.deepEqual([...recs[1]!.payload], [1, 2, 3]);
  assert.equal(dev.in32(0x2000 + 0x100), 0, "outside the device");
});

test("a staged job over the cap fails with a stderr record and exit 1, without touching the ring", () => {
  const region = RingRegion.create();
  const dev = new ChannelDevice(region, { maxStaged: 1000 });
  const s = dev.in32(PORT_OPEN);
  stage(dev, s, request(["a"], new Uint8Array(2000)));
  dev.out32(port(s, REG_CTRL), CTRL_SUBMIT);
  assert.equal(dev.in32(port(s, REG_STATE)), STATE_FINISHED);
  const stream = readStream(dev, s);
  assert.equal(stream.length, 2);
  assert.equal(stream[0]!.kind, 2);
  assert.match(new TextDecoder().decode(stream[0]!.data), /exceeds the device's 1000-byte limit/);
  assert.deepEqual(stream[1], { kind: 3, data: exitBytes(1) });
  assert.equal(dev.pump().notify, false);
  assert.deepEqual(drain(region), []);
  // Exactly at the cap is fine.
  dev.out32(port(s, REG_CTRL), CTRL_CLOSE);
  const t = dev.in32(PORT_OPEN);
  stage(dev, t, request(["a"], new Uint8Array(1000 - 6)));
  dev.out32(port(t, REG_CTRL), CTRL_SUBMIT);
  assert.equal(dev.in32(port(t, REG_STATE)), STATE_SUBMITTED);
});

test("malformed requests and oversized arguments fail locally", () => {
  const region = RingRegion.create();
  const dev = new ChannelDevice(region);
  const cases: [Uint8Array, RegExp][] = [
    [Uint8Array.of(1, 0), /shorter than its argument count/],
    [Uint8Array.of(2, 0, 0, 0, 0x61, 0, 0x62), /argument 1 of 2 is missing/],
    [request(["x".repeat(region.request.maxPayload)], new Uint8Array(4)), /arguments take/],
  ];
  for (const [bytes, message] of cases) {
    const s = dev.in32(PORT_OPEN);
    stage(dev, s, bytes);
    dev.out32(port(s, REG_CTRL), CTRL_SUBMIT);
    const stream = readStream(dev, s);
    assert.match(new TextDecoder().decode(stream[0]!.data), message);
    assert.deepEqual(stream[1], { kind: 3, data: exitBytes(1) });
    dev.out32(port(s, REG_CTRL), CTRL_CLOSE);
  }
  dev.pump();
  assert.deepEqual(drain(region), []);
});

test("a slot whose output is not read past the bound: job cancelled, error and exit 1", () => {
  const region = RingRegion.create();
  const dev = new ChannelDevice(region, { maxBuffered: 100 });
  const s = dev.in32(PORT_OPEN);
  stage(dev, s, request(["a"], new Uint8Array(0)));
  dev.out32(port(s, REG_CTRL), CTRL_SUBMIT);
  dev.pump();
  const [start] = drain(region);
  for (let i = 0; i < 5; i++) region.response.tryWrite(OUT_STDOUT, start!.job, new Uint8Array(30));
  dev.pump();
  assert.deepEqual(drain(region), [{ type: JOB_CANCEL, job: start!.job, payload: new Uint8Array(0) }]);
  const stream = readStream(dev, s);
  assert.deepEqual(
    stream.map((r) => r.kind),
    [1, 1, 2, 3],
  );
  assert.deepEqual(stream[3], { kind: 3, data: exitBytes(1) });
});

test("a corrupt response ring ends every running job with an error instead of hanging the guest", () => {
  const region = RingRegion.create();
  const dev = new ChannelDevice(region);
  const s = dev.in32(PORT_OPEN);
  stage(dev, s, request(["a"], new Uint8Array(0)));
  dev.out32(port(s, REG_CTRL), CTRL_SUBMIT);
  dev.pump();
  // A head far beyond the ring's capacity.
  new DataView(region.sab).setUint32(0x40, region.cap * 2, true);
  dev.pump();
  assert.match(dev.stats.ringError ?? "", /corrupt ring record at stream offset 0/);
  const stream = readStream(dev, s);
  assert.match(new TextDecoder().decode(stream[0]!.data), /broken/);
  assert.deepEqual(stream[1], { kind: 3, data: exitBytes(1) });
});
