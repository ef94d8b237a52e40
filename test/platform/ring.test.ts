/**
 * The channel rings (src/platform/ring.ts) against docs/vm-channel.md: the exact bytes in the
 * region, wrap-around of the data area and of the 32-bit counters, the full ring and its
 * `waiting` flag, and corrupt records that the reader must refuse.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DATA_START,
  JOB_DATA,
  JOB_START,
  OUT_STDOUT,
  RESPONSE_HEADER,
  RingError,
  RingRegion,
  ringCapacity,
} from "../../src/platform/ring.js";

const bytes = (...xs: number[]) => Uint8Array.from(xs);
const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

test("cap is the largest power of two with 0x1000 + 2 * cap <= size; bad regions are refused", () => {
  assert.equal(ringCapacity(0x10000), 0x4000);
  assert.equal(ringCapacity(0x11000), 0x8000);
  assert.equal(ringCapacity(0x100000), 0x40000);
  assert.equal(RingRegion.create(0x10000).cap, 0x4000);
  assert.throws(() => RingRegion.create(0x8000), RangeError);
  assert.throws(() => new RingRegion(new SharedArrayBuffer(0x10800)), RangeError);
  assert.throws(() => new RingRegion(new SharedArrayBuffer(0x11000), 2, 0x10000), RangeError);
  // A region inside a larger buffer: its rings start at its own offset.
  const r = new RingRegion(new SharedArrayBuffer(0x20000), 0x10000, 0x10000);
  assert.equal(r.cap, 0x4000);
  assert.equal(r.request.maxPayload, 0x2000 - 12);
});

test("a record's bytes: header words, payload, zero padding, and head/tail in the region's header", () => {
  const sab = new SharedArrayBuffer(0x10000);
  const region = new RingRegion(sab);
  const words = new DataView(sab);
  new Uint8Array(sab).fill(0xee, DATA_START, DATA_START + 64); // padding must be written, not assumed
  assert.equal(region.request.tryWrite(JOB_START, 7, bytes(1, 2, 3)), true);
  assert.equal(words.getUint32(0, true), 16, "request head: 12 + 3 + 1 padding");
  assert.equal(words.getUint32(4, true), 0, "request tail");
  assert.deepEqual(
    [...new Uint8Array(sab, DATA_START, 16)],
    [3, 0, 0, 0, JOB_START, 0, 0, 0, 7, 0, 0, 0, 1, 2, 3, 0],
  );
  assert.equal(region.response.tryWrite(OUT_STDOUT, 0x01020304, bytes(9)), true);
  assert.equal(words.getUint32(RESPONSE_HEADER, true), 16);
  assert.deepEqual(
    [...new Uint8Array(sab, DATA_START + region.cap, 16)],
    [1, 0, 0, 0, OUT_STDOUT, 0, 0, 0, 4, 3, 2, 1, 9, 0, 0, 0],
  );
  const rec = region.request.read();
  assert.deepEqual(rec, { type: JOB_START, job: 7, payload: bytes(1, 2, 3) });
  assert.equal(words.getUint32(4, true), 16, "request tail after the read");
  assert.equal(region.request.read(), null);
  assert.deepEqual(region.response.read(), { type: OUT_STDOUT, job: 0x01020304, payload: bytes(9) });
});

test("records wrap around the end of the data area and keep their bytes", () => {
  const region = RingRegion.create();
  const ring = region.request;
  const sizes = [0, 1, 2, 3, 4, 5, 1000, 4093, ring.maxPayload, 777, 13];
  let seq = 0;
  let readSeq = 0;
  // Several times round the ring, with a few records in flight at once.
  for (let round = 0; round < 40; round++) {
    for (let k = 0; k < 3; k++) {
      const n = sizes[seq % sizes.length]!;
      if (!ring.tryWrite(JOB_DATA, seq + 1, pattern(n, seq))) break;
      seq++;
    }
    for (let r = ring.read(); r !== null; r = ring.read()) {
      const n = sizes[readSeq % sizes.length]!;
      assert.equal(r.job, readSeq + 1);
      assert.deepEqual(r.payload, pattern(n, readSeq));
      readSeq++;
    }
  }
  assert.equal(readSeq, seq);
  assert.ok(seq > 100);
  // The stream went past the data area's end many times.
  const head = new DataView(region.sab).getUint32(0, true);
  assert.ok(head > 4 * ring.cap, `head ${head}`);
});

test("a record split by the end of the data area: the first part at the end, the rest at offset 0", () => {
  const sab = new SharedArrayBuffer(0x10000);
  const region = new RingRegion(sab);
  const ring = region.request;
  const w = new DataView(sab);
  // Start the stream 8 bytes before the end: the header's third word and the payload wrap.
  w.setUint32(0, region.cap - 8, true);
  w.setUint32(4, region.cap - 8, true);
  assert.equal(ring.tryWrite(JOB_DATA, 5, bytes(0xa1, 0xa2, 0xa3, 0xa4, 0xa5)), true);
  const data = new Uint8Array(sab, DATA_START, region.cap);
  assert.deepEqual([...data.subarray(region.cap - 8)], [5, 0, 0, 0, JOB_DATA, 0, 0, 0]);
  assert.deepEqual([...data.subarray(0, 12)], [5, 0, 0, 0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0, 0, 0]);
  assert.deepEqual(ring.read(), { type: JOB_DATA, job: 5, payload: bytes(0xa1, 0xa2, 0xa3, 0xa4, 0xa5) });
});

test("head and tail are free-running and wrap at 2^32", () => {
  const sab = new SharedArrayBuffer(0x10000);
  const region = new RingRegion(sab);
  const w = new DataView(sab);
  w.setUint32(0, 0xffffff00, true);
  w.setUint32(4, 0xffffff00, true);
  for (let i = 0; i < 100; i++) {
    assert.equal(region.request.tryWrite(JOB_DATA, i + 1, pattern(i * 3, i)), true);
    assert.deepEqual(region.request.read(), { type: JOB_DATA, job: i + 1, payload: pattern(i * 3, i) });
  }
  assert.ok(w.getUint32(0, true) < 0x10000, "head wrapped past 2^32");
  assert.equal(w.getUint32(0, true), w.getUint32(4, true));
});

test("a full ring refuses a record and sets waiting; the consumer clears it once and asks to notify", () => {
  const sab = new SharedArrayBuffer(0x10000);
  const region = new RingRegion(sab);
  const ring = region.request;
  const w = new DataView(sab);
  const big = pattern(1000, 1); // 1012-byte records
  let written = 0;
  while (ring.tryWrite(JOB_DATA, 1, big)) written++;
  assert.equal(written, Math.floor(region.cap / 1012));
  assert.equal(w.getUint32(8, true), 1, "waiting set by the refused write");
  assert.equal(ring.waiting, true);
  // Smaller records still fit in the gap left.
  const gap = region.cap - written * 1012;
  assert.equal(ring.tryWrite(JOB_DATA, 2, new Uint8Array(gap - 12)), true);
  assert.equal(ring.tryWrite(JOB_DATA, 3, new Uint8Array(0)), false);
  assert.equal(ring.used(), region.cap);
  assert.notEqual(ring.read(), null);
  assert.equal(ring.consumerDone(), true, "the producer waited: notify it");
  assert.equal(w.getUint32(8, true), 0);
  assert.equal(ring.consumerDone(), false, "only once");
  assert.equal(ring.tryWrite(JOB_DATA, 3, big), true);
  assert.equal(ring.waiting, false, "a write that fits leaves waiting alone");
  assert.throws(() => ring.tryWrite(JOB_DATA, 4, new Uint8Array(ring.maxPayload + 1)), RangeError);
});

test("corrupt records are refused with the offset, and the ring stays broken", () => {
  // Each case publishes a bad record at stream offset 16 (after one good record): `head` sets
  // the request ring's head relative to 16, `word` writes a u32 of the record there.
  type Corrupt = (head: (rel: number) => void, word: (at: number, v: number) => void, cap: number) => void;
  const cases: [string, Corrupt, RegExp][] = [
    [
      "len beyond cap/2",
      (head, word) => {
        word(0, 0x2000);
        head(0x3000);
      },
      /length 8192 exceeds/,
    ],
    [
      "a huge len that would wrap when padded",
      (head, word) => {
        word(0, 0xfffffffe);
        head(16);
      },
      /length 4294967294 exceeds/,
    ],
    [
      "record past head",
      (head, word) => {
        word(0, 40);
        head(16);
      },
      /extends past head/,
    ],
    ["head too far ahead", (head, _word, cap) => head(cap + 4), /ahead of tail/],
    ["less than a header", (head) => head(8), /less than a record header/],
    ["unaligned head", (head) => head(18), /aligned/],
  ];
  for (const [name, corrupt, message] of cases) {
    const sab = new SharedArrayBuffer(0x10000);
    const region = new RingRegion(sab);
    const w = new DataView(sab);
    assert.equal(region.request.tryWrite(JOB_START, 1, bytes(1, 2, 3, 4)), true);
    assert.notEqual(region.request.read(), null);
    corrupt(
      (rel) => w.setUint32(0, 16 + rel, true),
      (at, v) => w.setUint32(DATA_START + 16 + at, v, true),
      region.cap,
    );
    for (let i = 0; i < 2; i++) {
      assert.throws(
        () => region.request.read(),
        (e: unknown) => e instanceof RingError && e.offset === 16 && message.test(e.message),
        `${name} (read ${i + 1})`,
      );
    }
    assert.equal(w.getUint32(4, true), 16, `${name}: tail not moved`);
  }
});
