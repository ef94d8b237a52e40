/**
 * The cross-VM channel device as the guest sees it (docs/vm-channel.md, "The guest device"):
 * ports 0x2000-0x20ff, 16 slots, each a job a guest process stages, submits and reads the output
 * of. The VMM's port handlers call in8/in32/out8/out32 synchronously (v86 calls its registered
 * I/O handlers from the emulated `in`/`out` instruction), so nothing here blocks or waits:
 * submitted jobs are only staged, and pump() moves them into the request ring as space allows
 * and moves response records into the slots, whenever the VMM runs it (after a guest SUBMIT or
 * CLOSE, and on each notification of the channel).
 *
 * The device is the VMM's defence against its own guest: a staged job is capped (64 MiB by
 * default), so is the output buffered for a slot the guest does not read, and a malformed
 * request fails only its own slot with a stderr record and exit code 1.
 */
import {
  JOB_CANCEL,
  JOB_DATA,
  JOB_EXIT,
  JOB_START,
  OUT_STDERR,
  OUT_STDOUT,
  RingError,
  type RingRegion,
} from "../platform/ring.js";

export const PORT_BASE = 0x2000;
export const PORT_LAST = 0x20ff;
export const PORT_ID = 0x2000;
export const PORT_OPEN = 0x2004;
export const PORT_VERSION = 0x2008;
/** Slot s's registers are at SLOT_BASE + SLOT_STRIDE * s + one of the offsets below. */
export const SLOT_BASE = 0x2040;
export const SLOT_STRIDE = 16;
export const REG_CTRL = 0;
export const REG_DATA = 4;
export const REG_AVAIL = 8;
export const REG_STATE = 12;

export const DEVICE_ID = 0x48435643; // "CVCH" read as a little-endian u32
export const DEVICE_VERSION = 1;
export const SLOTS = 16;
export const NO_SLOT = 0xffffffff;

export const CTRL_SUBMIT = 1;
export const CTRL_CLOSE = 2;

export const STATE_FREE = 0;
export const STATE_STAGING = 1;
export const STATE_SUBMITTED = 2;
export const STATE_FINISHED = 3;

/** Kinds of the records in a slot's response stream. */
export const KIND_STDOUT = 1;
export const KIND_STDERR = 2;
export const KIND_EXIT = 3;

export const DEFAULT_MAX_STAGED = 64 * 1024 * 1024;
export const DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024;

export interface ChannelDeviceOptions {
  /** Bytes a slot may stage for one job (the doc's 64 MiB). */
  maxStaged?: number;
  /** Response bytes buffered for a slot the guest does not read before its job is cancelled. */
  maxBuffered?: number;
}

export interface ChannelDeviceStats {
  /** Response records for a job id the device does not know (dropped). */
  unknownJob: number;
  /** Response records for a job whose slot was closed (dropped, as expected after CLOSE). */
  droppedAfterClose: number;
  /** Response records of a wrong type or size (dropped). */
  malformed: number;
  /** Set when the response ring was found corrupt: the device reads it no more. */
  ringError: string | null;
}

/** A submitted job whose request records are still being sent. */
interface Outgoing {
  job: number;
  /** JOB_START's payload: argc, moduleBytes, the strings. */
  start: Uint8Array;
  module: Uint8Array;
  startSent: boolean;
  /** Module bytes already sent in JOB_DATA records. */
  sent: number;
}

interface Slot {
  state: number;
  /** Staged request bytes: the first stagedBytes of this buffer. */
  staged: Uint8Array;
  stagedBytes: number;
  /** Set when staging went past the cap: the job fails at SUBMIT. */
  overflowed: boolean;
  /** The running job's id, 0 when none. */
  job: number;
  /** The response stream: kind/len/bytes records, not yet taken by the guest. */
  out: Uint8Array[];
  /** Bytes of out[0] already taken. */
  outPos: number;
  outBytes: number;
}

const EMPTY = new Uint8Array(0);

function emptySlot(): Slot {
  return {
    state: STATE_FREE,
    staged: EMPTY,
    stagedBytes: 0,
    overflowed: false,
    job: 0,
    out: [],
    outPos: 0,
    outBytes: 0,
  };
}

/** One response-stream record: u8 kind, u32 len (LE), then the bytes. */
function streamRecord(kind: number, bytes: Uint8Array): Uint8Array {
  const r = new Uint8Array(5 + bytes.length);
  r[0] = kind;
  new DataView(r.buffer).setUint32(1, bytes.length, true);
  r.set(bytes, 5);
  return r;
}

function exitCodeBytes(code: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, code, true);
  return b;
}

const utf8 = new TextEncoder();

/**
 * Splits a staged request (u32 argc, argc NUL-terminated strings, module bytes) into the
 * JOB_START payload (u32 argc, u32 moduleBytes, the strings) and the module.
 */
export function parseStaged(bytes: Uint8Array): { start: Uint8Array; module: Uint8Array } | string {
  if (bytes.length < 4) return "the request is shorter than its argument count";
  const argc = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  let at = 4;
  for (let i = 0; i < argc; i++) {
    const nul = bytes.indexOf(0, at);
    if (nul < 0) return `argument ${i} of ${argc} is missing or not NUL-terminated`;
    at = nul + 1;
  }
  const strings = bytes.subarray(4, at);
  const start = new Uint8Array(8 + strings.length);
  const v = new DataView(start.buffer);
  v.setUint32(0, argc, true);
  v.setUint32(4, bytes.length - at, true);
  start.set(strings, 8);
  return { start, module: bytes.subarray(at) };
}

export class ChannelDevice {
  readonly stats: ChannelDeviceStats = { unknownJob: 0, droppedAfterClose: 0, malformed: 0, ringError: null };
  private readonly slots: Slot[] = Array.from({ length: SLOTS }, emptySlot);
  private readonly maxStaged: number;
  private readonly maxBuffered: number;
  /** The last job id given out: ids increase from 1 and are never reused. */
  private lastJob = 0;
  /** Running jobs by id, to the slot they answer to. */
  private readonly running = new Map<number, Slot>();
  /** Jobs whose slot was closed: their records are dropped until their JOB_EXIT. */
  private readonly closed = new Set<number>();
  /** Submitted jobs whose request records are not all sent, in submission order. */
  private outgoing: Outgoing[] = [];
  /** JOB_CANCEL records still to send. */
  private readonly cancels: number[] = [];

  constructor(
    private readonly region: RingRegion,
    opts: ChannelDeviceOptions = {},
  ) {
    this.maxStaged = opts.maxStaged ?? DEFAULT_MAX_STAGED;
    this.maxBuffered = opts.maxBuffered ?? DEFAULT_MAX_BUFFERED;
  }

  /** Whether `port` belongs to this device (for the VMM's port dispatch). */
  static claims(port: number): boolean {
    return port >= PORT_BASE && port <= PORT_LAST;
  }

  // ---- port accesses (synchronous, from the VMM's I/O handlers) ----

  in32(port: number): number {
    switch (port) {
      case PORT_ID:
        return DEVICE_ID;
      case PORT_VERSION:
        return DEVICE_VERSION;
      case PORT_OPEN:
        return this.open();
    }
    const r = this.slotReg(port);
    if (!r) return 0;
    const { slot, reg } = r;
    switch (reg) {
      case REG_STATE:
        return slot.state;
      case REG_AVAIL:
        return slot.state >= STATE_SUBMITTED ? slot.outBytes : 0;
      case REG_DATA: {
        // Takes up to 4 bytes, little-endian; missing high bytes read 0 (the guest reads AVAIL
        // first and takes the rest with in8).
        let v = 0;
        for (let i = 0; i < 4 && slot.outBytes > 0; i++) v |= this.takeByte(slot) << (8 * i);
        return v >>> 0;
      }
    }
    return 0;
  }

  in8(port: number): number {
    const r = this.slotReg(port);
    if (!r || r.reg !== REG_DATA || r.slot.outBytes === 0) return 0;
    return this.takeByte(r.slot);
  }

  out32(port: number, value: number): void {
    const r = this.slotReg(port);
    if (!r) return;
    if (r.reg === REG_CTRL) {
      if (value === CTRL_SUBMIT) this.submit(r.slot);
      else if (value === CTRL_CLOSE) this.close(r.slot);
    } else if (r.reg === REG_DATA) {
      this.stage(r.slot, value, 4);
    }
  }

  out8(port: number, value: number): void {
    const r = this.slotReg(port);
    if (r?.reg === REG_DATA) this.stage(r.slot, value, 1);
  }

  /** The slot and register a port names, or null for a port outside the slots. */
  private slotReg(port: number): { slot: Slot; reg: number } | null {
    const rel = port - SLOT_BASE;
    if (rel < 0 || rel >= SLOTS * SLOT_STRIDE || (rel & 3) !== 0) return null;
    return { slot: this.slots[rel >> 4]!, reg: rel & (SLOT_STRIDE - 1) };
  }

  private open(): number {
    const i = this.slots.findIndex((s) => s.state === STATE_FREE);
    if (i < 0) return NO_SLOT;
    this.slots[i] = { ...emptySlot(), state: STATE_STAGING };
    return i;
  }

  /** Appends the low `count` bytes of `value`, little-endian, to the slot's staged request. */
  private stage(slot: Slot, value: number, count: 1 | 4): void {
    if (slot.state !== STATE_STAGING || slot.overflowed) return;
    const end = slot.stagedBytes + count;
    if (end > this.maxStaged) {
      // Keep nothing more: the job fails at SUBMIT, and the memory is given back now.
      slot.overflowed = true;
      slot.staged = EMPTY;
      return;
    }
    if (end > slot.staged.length) {
      // Doubling keeps the copies linear in the job's size; guests stage a byte or a word per
      // access, so anything per access beyond a store would dominate.
      const grown = new Uint8Array(Math.min(this.maxStaged, Math.max(4096, 2 * slot.staged.length, end)));
      grown.set(slot.staged.subarray(0, slot.stagedBytes));
      slot.staged = grown;
    }
    const b = slot.staged;
    let at = slot.stagedBytes;
    for (let i = 0; i < count; i++) b[at++] = (value >>> (8 * i)) & 0xff;
    slot.stagedBytes = end;
  }

  private submit(slot: Slot): void {
    if (slot.state !== STATE_STAGING) return;
    slot.state = STATE_SUBMITTED;
    if (slot.overflowed) {
      this.failLocally(slot, `capvisor: the staged job exceeds the device's ${this.maxStaged}-byte limit\n`);
      return;
    }
    const staged = slot.staged.subarray(0, slot.stagedBytes);
    slot.staged = EMPTY;
    const parsed = parseStaged(staged);
    if (typeof parsed === "string") {
      this.failLocally(slot, `capvisor: malformed job request: ${parsed}\n`);
      return;
    }
    if (parsed.start.length > this.region.request.maxPayload) {
      this.failLocally(
        slot,
        `capvisor: the job's arguments take ${parsed.start.length - 8} bytes, more than the channel's ${this.region.request.maxPayload - 8}\n`,
      );
      return;
    }
    if (this.lastJob === 0xffffffff) {
      this.failLocally(slot, "capvisor: the channel has run out of job ids\n");
      return;
    }
    const job = ++this.lastJob;
    slot.job = job;
    this.running.set(job, slot);
    this.outgoing.push({ job, start: parsed.start, module: parsed.module, startSent: false, sent: 0 });
  }

  private close(slot: Slot): void {
    if (slot.state === STATE_FREE) return;
    const job = slot.job;
    if (job !== 0 && this.running.get(job) === slot) {
      this.running.delete(job);
      const i = this.outgoing.findIndex((o) => o.job === job);
      const unsent = i >= 0 && !this.outgoing[i]!.startSent;
      if (i >= 0) this.outgoing.splice(i, 1);
      // A job the runtime never heard of needs no cancel; any other gets one, and its records
      // are dropped until the runtime's JOB_EXIT retires the id.
      if (!unsent) {
        this.cancels.push(job);
        this.closed.add(job);
      }
    }
    const idx = this.slots.indexOf(slot);
    this.slots[idx] = emptySlot();
  }

  /**
   * The guest was restarted (its processes are gone): close every slot, which cancels the jobs
   * the runtime knows of. Job ids keep increasing, so a late record of an old job is never taken
   * for a new one's.
   */
  reset(): void {
    for (const slot of this.slots) this.close(slot);
  }

  /** Ends a submitted job without the runtime: a stderr record, then exit 1. */
  private failLocally(slot: Slot, message: string): void {
    this.append(slot, KIND_STDERR, utf8.encode(message));
    this.append(slot, KIND_EXIT, exitCodeBytes(1));
    slot.state = STATE_FINISHED;
  }

  private append(slot: Slot, kind: number, bytes: Uint8Array): void {
    const r = streamRecord(kind, bytes);
    slot.out.push(r);
    slot.outBytes += r.length;
  }

  private takeByte(slot: Slot): number {
    const head = slot.out[0]!;
    const b = head[slot.outPos++]!;
    slot.outBytes--;
    if (slot.outPos === head.length) {
      slot.out.shift();
      slot.outPos = 0;
    }
    return b;
  }

  // ---- the rings ----

  /**
   * Moves response records into the slots and staged jobs into the request ring. Returns
   * notify: true when the channel must be notified (request records were published, or response
   * space was freed while the runtime PD waited for it).
   */
  pump(): { notify: boolean } {
    const freed = this.drainResponses();
    const published = this.sendRequests();
    return { notify: freed || published };
  }

  /** Whether request records are still waiting for ring space. */
  get pendingRequests(): boolean {
    return this.outgoing.length > 0 || this.cancels.length > 0;
  }

  private drainResponses(): boolean {
    if (this.stats.ringError !== null) return false;
    const ring = this.region.response;
    try {
      for (let r = ring.read(); r !== null; r = ring.read()) this.deliver(r.type, r.job, r.payload);
    } catch (e) {
      if (!(e instanceof RingError)) throw e;
      this.stats.ringError = e.message;
      // Nothing more will come from the runtime: end every job so that no guest waits forever.
      for (const [job, slot] of this.running) {
        this.running.delete(job);
        this.failLocally(slot, "capvisor: the channel to the WasmEdge runtime is broken\n");
      }
      this.outgoing = [];
      return false;
    }
    return ring.consumerDone();
  }

  private deliver(type: number, job: number, payload: Uint8Array): void {
    const slot = this.running.get(job);
    if (!slot) {
      if (this.closed.has(job)) {
        this.stats.droppedAfterClose++;
        if (type === JOB_EXIT) this.closed.delete(job);
      } else this.stats.unknownJob++;
      return;
    }
    switch (type) {
      case OUT_STDOUT:
      case OUT_STDERR:
        if (slot.outBytes + 5 + payload.length > this.maxBuffered) {
          // The guest does not read its slot: stop the job rather than buffer without bound.
          this.running.delete(job);
          this.closed.add(job);
          this.cancels.push(job);
          this.outgoing = this.outgoing.filter((o) => o.job !== job);
          this.failLocally(slot, "capvisor: the job's output was not read; the job was stopped\n");
          return;
        }
        this.append(slot, type === OUT_STDOUT ? KIND_STDOUT : KIND_STDERR, payload);
        return;
      case JOB_EXIT: {
        let code = 1;
        if (payload.length === 4)
          code = new DataView(payload.buffer, payload.byteOffset, 4).getInt32(0, true);
        else this.stats.malformed++;
        this.running.delete(job);
        // A runtime that answers before it has all the module (it rejected the job) needs no
        // more of it.
        this.outgoing = this.outgoing.filter((o) => o.job !== job);
        this.append(slot, KIND_EXIT, exitCodeBytes(code));
        slot.state = STATE_FINISHED;
        return;
      }
      default:
        this.stats.malformed++;
    }
  }

  private sendRequests(): boolean {
    if (this.stats.ringError !== null) return false;
    const ring = this.region.request;
    let published = false;
    while (this.cancels.length > 0) {
      if (!ring.tryWrite(JOB_CANCEL, this.cancels[0]!, new Uint8Array(0))) return published;
      this.cancels.shift();
      published = true;
    }
    // Round robin, one record per job per pass, so that a small job is not stuck behind a large
    // module; each job's own records stay in order.
    while (this.outgoing.length > 0) {
      for (const o of this.outgoing) {
        let ok: boolean;
        if (!o.startSent) {
          ok = ring.tryWrite(JOB_START, o.job, o.start);
          if (ok) o.startSent = true;
        } else {
          const n = Math.min(ring.maxPayload, o.module.length - o.sent);
          ok = ring.tryWrite(JOB_DATA, o.job, o.module.subarray(o.sent, o.sent + n));
          if (ok) o.sent += n;
        }
        if (!ok) {
          this.outgoing = this.outgoing.filter((x) => !x.startSent || x.sent < x.module.length);
          return published;
        }
        published = true;
      }
      this.outgoing = this.outgoing.filter((x) => !x.startSent || x.sent < x.module.length);
    }
    return published;
  }
}
