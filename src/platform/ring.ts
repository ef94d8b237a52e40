/**
 * The two single-producer, single-consumer byte rings of the cross-VM channel region
 * (docs/vm-channel.md, "The rings"): the request ring (VMM to runtime PD) and the response ring
 * (runtime PD to VMM), laid out in a SharedArrayBuffer so that the two ends may run in different
 * threads.
 *
 * Memory ordering: a producer writes a record's bytes with plain stores, then publishes it with
 * an Atomics.store of `head`; a consumer reads `head` with Atomics.load before reading the bytes.
 * Atomics operations are sequentially consistent in the JavaScript memory model, so the store of
 * `head` synchronizes with the load that observes it and every byte written before it is visible:
 * the "release" the protocol asks for. `tail` and `waiting` are accessed the same way.
 *
 * The ring never trusts what it reads: the other end may be buggy or hostile. A record that is
 * larger than cap/2 or extends past `head`, or a `head` more than `cap` ahead of `tail`, is
 * reported as a RingError naming the stream offset, and the ring stays broken (every later read
 * throws again) so that a consumer never acts on bytes after a corruption.
 */

/** Offsets inside the region (docs/vm-channel.md). */
export const REQUEST_HEADER = 0x000;
export const RESPONSE_HEADER = 0x040;
export const DATA_START = 0x1000;
/** The smallest region the protocol allows, and the granule its size must be a multiple of. */
export const MIN_REGION_BYTES = 0x10000;
export const REGION_GRANULE = 0x1000;

/** A record's header: u32 len, u32 type, u32 job. */
export const RECORD_HEADER_BYTES = 12;

/** Request record types (VMM to runtime PD). */
export const JOB_START = 1;
export const JOB_DATA = 2;
export const JOB_CANCEL = 3;
/** Response record types (runtime PD to VMM). */
export const OUT_STDOUT = 16;
export const OUT_STDERR = 17;
export const JOB_EXIT = 18;

/** Word indices in a ring header. */
const HEAD = 0;
const TAIL = 1;
const WAITING = 2;

/** One record read from a ring; `payload` is a copy, owned by the caller. */
export interface RingRecord {
  type: number;
  job: number;
  payload: Uint8Array;
}

/** The other end broke the protocol: what was read is not a valid record. */
export class RingError extends Error {
  constructor(
    /** The stream offset (bytes ever consumed, mod 2^32) at which the bad record starts. */
    readonly offset: number,
    detail: string,
  ) {
    super(`corrupt ring record at stream offset ${offset}: ${detail}`);
    this.name = "RingError";
  }
}

/** Payload bytes rounded up to the 4-byte boundary the next record starts on. */
export function padded(len: number): number {
  return (len + 3) & ~3;
}

/** The ring capacity for a region of `size` bytes: the largest power of two with 0x1000 + 2*cap <= size. */
export function ringCapacity(size: number): number {
  let cap = 1;
  while (DATA_START + 4 * cap <= size) cap *= 2;
  return cap;
}

// The header words are read and written as native Int32 (Atomics needs a typed array); the
// protocol fixes them little-endian, which every platform Node supports is.
if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("ring.ts assumes a little-endian host");
}

/** One SPSC ring: a header of three words and `cap` data bytes. */
export class Ring {
  /** The largest record, header and padding included (the protocol's cap/2). */
  readonly maxRecord: number;
  /** The largest payload one record can carry. */
  readonly maxPayload: number;
  private readonly words: Int32Array;
  private readonly data: Uint8Array;
  private readonly view: DataView;
  private broken: RingError | null = null;

  constructor(
    sab: SharedArrayBuffer,
    headerOffset: number,
    dataOffset: number,
    readonly cap: number,
  ) {
    this.words = new Int32Array(sab, headerOffset, 3);
    this.data = new Uint8Array(sab, dataOffset, cap);
    this.view = new DataView(sab, dataOffset, cap);
    this.maxRecord = cap / 2;
    this.maxPayload = this.maxRecord - RECORD_HEADER_BYTES;
  }

  /** Bytes published and not yet consumed, as the caller sees it now. */
  used(): number {
    return (Atomics.load(this.words, HEAD) - Atomics.load(this.words, TAIL)) >>> 0;
  }

  /** Whether the producer has said it waits for space. */
  get waiting(): boolean {
    return Atomics.load(this.words, WAITING) === 1;
  }

  // ---- the producer's side ----

  /**
   * Publishes one record if there is room (protocol steps 1 and 2). When there is not, sets
   * `waiting` and looks at `tail` once more, so that a consumer that drained in between is not
   * missed; returns false if there is still no room: the caller retries after the next
   * notification. The caller notifies the channel after it has published (step 3).
   */
  tryWrite(type: number, job: number, payload: Uint8Array): boolean {
    const n = RECORD_HEADER_BYTES + padded(payload.length);
    if (n > this.maxRecord) {
      throw new RangeError(
        `a record of ${payload.length} payload bytes exceeds the ring's ${this.maxPayload}`,
      );
    }
    const head = Atomics.load(this.words, HEAD) >>> 0;
    if (this.cap - ((head - (Atomics.load(this.words, TAIL) >>> 0)) >>> 0) < n) {
      Atomics.store(this.words, WAITING, 1);
      if (this.cap - ((head - (Atomics.load(this.words, TAIL) >>> 0)) >>> 0) < n) return false;
    }
    this.putWord(head, payload.length);
    this.putWord(head + 4, type);
    this.putWord(head + 8, job);
    this.putBytes(head + RECORD_HEADER_BYTES, payload);
    const pad = n - RECORD_HEADER_BYTES - payload.length;
    if (pad > 0) this.putBytes(head + RECORD_HEADER_BYTES + payload.length, new Uint8Array(pad));
    Atomics.store(this.words, HEAD, (head + n) | 0);
    return true;
  }

  // ---- the consumer's side ----

  /**
   * Takes the next whole record (protocol consumer step 1), or null when the ring is empty.
   * Throws a RingError when what is there is not a record; the ring then stays broken.
   */
  read(): RingRecord | null {
    if (this.broken) throw this.broken;
    const tail = Atomics.load(this.words, TAIL) >>> 0;
    const head = Atomics.load(this.words, HEAD) >>> 0;
    if (head === tail) return null;
    const avail = (head - tail) >>> 0;
    const fail = (detail: string): never => {
      this.broken = new RingError(tail, detail);
      throw this.broken;
    };
    if (avail > this.cap) fail(`head is ${avail} bytes ahead of tail, more than the ring's ${this.cap}`);
    if ((tail & 3) !== 0 || (avail & 3) !== 0) fail("head or tail is not 4-byte aligned");
    if (avail < RECORD_HEADER_BYTES) fail(`only ${avail} bytes published, less than a record header`);
    const len = this.getWord(tail);
    const type = this.getWord(tail + 4);
    const job = this.getWord(tail + 8);
    // len is untrusted: compare before padding it so that a huge value cannot wrap around.
    if (len > this.maxPayload)
      fail(`length ${len} exceeds the largest record (${this.maxPayload} payload bytes)`);
    const n = RECORD_HEADER_BYTES + padded(len);
    if (n > avail) fail(`record of ${n} bytes extends past head (${avail} bytes published)`);
    const payload = this.getBytes(tail + RECORD_HEADER_BYTES, len);
    Atomics.store(this.words, TAIL, (tail + n) | 0);
    return { type, job, payload };
  }

  /**
   * After draining (protocol consumer step 2): if the producer waits for space, clears `waiting`
   * and returns true: the caller must notify the channel.
   */
  consumerDone(): boolean {
    if (Atomics.load(this.words, WAITING) !== 1) return false;
    Atomics.store(this.words, WAITING, 0);
    return true;
  }

  // ---- byte access with wrap-around: stream byte n lives at data offset n % cap ----

  private putWord(at: number, value: number): void {
    // Records and cap are multiples of 4, so a word never straddles the end of the data area.
    this.view.setUint32((at >>> 0) % this.cap, value >>> 0, true);
  }

  private getWord(at: number): number {
    return this.view.getUint32((at >>> 0) % this.cap, true);
  }

  private putBytes(at: number, bytes: Uint8Array): void {
    const start = (at >>> 0) % this.cap;
    const first = Math.min(bytes.length, this.cap - start);
    this.data.set(bytes.subarray(0, first), start);
    if (first < bytes.length) this.data.set(bytes.subarray(first), 0);
  }

  private getBytes(at: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const start = (at >>> 0) % this.cap;
    const first = Math.min(len, this.cap - start);
    out.set(this.data.subarray(start, start + first), 0);
    if (first < len) out.set(this.data.subarray(0, len - first), first);
    return out;
  }
}

/** The channel region: the request ring and the response ring (docs/vm-channel.md). */
export class RingRegion {
  /** VMM to runtime PD. */
  readonly request: Ring;
  /** Runtime PD to VMM. */
  readonly response: Ring;
  readonly cap: number;

  /**
   * @param offset where the region starts in `sab` (4-byte aligned)
   * @param size the region's bytes: at least 64 KiB, a multiple of 4 KiB (defaults to the rest of `sab`)
   */
  constructor(
    readonly sab: SharedArrayBuffer,
    readonly offset = 0,
    readonly size = sab.byteLength - offset,
  ) {
    if (offset % 4 !== 0 || offset < 0) throw new RangeError(`region offset ${offset} is not 4-byte aligned`);
    if (size < MIN_REGION_BYTES || size % REGION_GRANULE !== 0 || offset + size > sab.byteLength) {
      throw new RangeError(
        `a channel region must be at least 64 KiB, a multiple of 4 KiB and inside its buffer`,
      );
    }
    this.cap = ringCapacity(size);
    this.request = new Ring(sab, offset + REQUEST_HEADER, offset + DATA_START, this.cap);
    this.response = new Ring(sab, offset + RESPONSE_HEADER, offset + DATA_START + this.cap, this.cap);
  }

  /** A fresh, zeroed region of `size` bytes in a buffer of its own. */
  static create(size = MIN_REGION_BYTES): RingRegion {
    return new RingRegion(new SharedArrayBuffer(size));
  }
}
