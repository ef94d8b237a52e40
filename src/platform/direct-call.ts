/**
 * Direct protected calls (DESIGN.md decision 3; docs/wasm-abi.md, "Direct protected calls").
 *
 * On seL4 MCS a protected call to a passive server runs the server on the caller's scheduling
 * context (seL4 manual §6.1.5): the caller blocks on the reply, the server runs `protected()` and
 * replies, the caller goes on. When the server's `protected()` needs no kernel on the way
 * (src/pd/wasm/direct-call.ts decides that at load time), the caller's worker runs it itself: it
 * holds an instance of the server's module on the server's memory (a shared WebAssembly.Memory),
 * copies the message in as the kernel's transfer would, calls `capvisor_protected`, and copies
 * the reply back. Time is charged to the caller's scheduling context, as donation does, and the
 * server's fuel checks are the caller's preemption checks.
 *
 * One thread at a time runs the server: a lock word shared by the server's own worker and every
 * caller. The server's worker holds it whenever it runs, and lets go only while it is blocked in
 * its event loop's receive (the state in which seL4 would hand it a call); a caller that finds it
 * taken makes the call through the kernel instead, which queues it as seL4 does.
 *
 * When the server traps inside a direct call, the call is made through the kernel after all,
 * with a note for the server's worker: on receiving it, it raises that trap, so the fault reaches
 * the server's fault handler exactly as if the server had faulted in the call (the caller stays
 * blocked on its reply). A reply that carries capabilities is handed to the kernel the same way:
 * the server's worker replies with it (ReplyRecv) on the server's behalf. Either way the server is
 * called through the kernel from then on.
 */
import { trapNumber } from "./traps.js";

/** Int32 words of a server's lock block. */
export const DC_STATE = 0;
/** A note for the server's worker (DC_NOTE_*), with its arguments. */
export const DC_NOTE = 1;
export const DC_NOTE_ARG = 2;
export const DC_NOTE_ARG_HI = 3;
/** The server-side channel the noted call arrives on. */
export const DC_NOTE_CHANNEL = 4;
/** Direct calls made so far. */
export const DC_CALLS = 5;
export const DC_BYTES = 32;

/** DC_STATE: free (the server waits in its receive); taken; direct calls are off for good. */
export const DC_FREE = 0;
export const DC_BUSY = 1;
export const DC_OFF = 2;

export const DC_NOTE_NONE = 0;
export const DC_NOTE_TRAP = 1;
export const DC_NOTE_REPLY = 2;

/** What a server PD's worker gets: its memory (shared with its callers) and the lock block. */
export interface DirectServerInit {
  memory: WebAssembly.Memory;
  lock: SharedArrayBuffer;
}

/** What a caller's worker gets for one channel on which it may call a server directly. */
export interface DirectCallInit {
  /** The server's name (for messages). */
  server: string;
  /** The caller's endpoint cap slot of the channel (libmicrokit: BASE_ENDPOINT_CAP + id). */
  cap: number;
  /** The channel id at the server's end: what its protected() gets. */
  channel: number;
  /** The server's module, memory imported and without data segments (instrument.ts shareMemory). */
  wasm: Uint8Array;
  memory: WebAssembly.Memory;
  lock: SharedArrayBuffer;
}

export const SYS_CALL = -1;
const SYS_RECV = -7;
export const SYS_REPLY_RECV = -2;
const SYS_NB_SEND_RECV = -3;
/** libmicrokit's slots (system/loader.ts): the PD's notification/endpoint, and its Reply. */
const INPUT_CAP = 1;
const REPLY_CAP = 4;
/** Microkit's protected-call badge bit (bit 63), in the high word. */
const PPC_BIT_HI = 0x8000_0000;
const MAX_MRS = 120;
/** Message info bits the kernel sets itself on delivery: extraCaps (7-8) and capsUnwrapped (9-11). */
const CAP_BITS = 0x1f << 7;

/** A trap of the server that the server's worker raises on receiving the noted call. */
export class DirectCallTrap extends Error {
  constructor(readonly trap: number) {
    super(`trap ${trap} in a direct protected call`);
  }
}

/** The server's side, in its own worker. */
export class DirectServer {
  private readonly lock: Int32Array;
  constructor(init: DirectServerInit) {
    this.lock = new Int32Array(init.lock);
  }

  /** Before a system call: when it is the event loop's receive, callers may come in. */
  release(sysno: number, x0: number): boolean {
    if (x0 !== INPUT_CAP || (sysno !== SYS_RECV && sysno !== SYS_REPLY_RECV && sysno !== SYS_NB_SEND_RECV))
      return false;
    if (Atomics.compareExchange(this.lock, DC_STATE, DC_BUSY, DC_FREE) === DC_BUSY)
      Atomics.notify(this.lock, DC_STATE);
    return true;
  }

  /** After the kernel resumed it from such a receive: wait out a direct call, then take the lock. */
  retake(): void {
    for (;;) {
      const s = Atomics.compareExchange(this.lock, DC_STATE, DC_FREE, DC_BUSY);
      if (s === DC_FREE || s === DC_OFF) return;
      Atomics.wait(this.lock, DC_STATE, s);
    }
  }

  /**
   * The note left for the message just received (badge in x0), taken: a trap to raise, or a
   * reply (message info) to send on the server's behalf; null for an ordinary message.
   */
  note(badgeLo: number, badgeHi: number): { trap: number } | { reply: [number, number] } | null {
    const kind = Atomics.load(this.lock, DC_NOTE);
    if (kind === DC_NOTE_NONE) return null;
    if (badgeHi >>> 0 !== PPC_BIT_HI || badgeLo >>> 0 !== this.lock[DC_NOTE_CHANNEL]! >>> 0) return null;
    Atomics.store(this.lock, DC_NOTE, DC_NOTE_NONE);
    if (kind === DC_NOTE_TRAP) return { trap: this.lock[DC_NOTE_ARG]! };
    return { reply: [this.lock[DC_NOTE_ARG]! >>> 0, this.lock[DC_NOTE_ARG_HI]! >>> 0] };
  }
}

interface Callee {
  init: DirectCallInit;
  lock: Int32Array;
  protectedFn: (ch: number) => void;
  /** Word index of the server's IPC buffer in its memory. */
  ipc: number;
  mem32: Uint32Array;
}

/**
 * Where message register i of a thread lives (word index of its low half): MR0..MR3 in x2..x5 of
 * its register block at word r, the rest in msg[] of its IPC buffer at word b (docs/wasm-abi.md).
 */
function mrWord(r: number, b: number, i: number): number {
  return i < 4 ? r + 2 * (2 + i) : b + 2 + 2 * i;
}

/** A view of the server's memory, made again when the memory has grown. */
function serverView(c: Callee): Uint32Array {
  const buffer = c.init.memory.buffer;
  if (c.mem32.buffer.byteLength !== buffer.byteLength) c.mem32 = new Uint32Array(buffer);
  return c.mem32;
}

/** The caller's side, in the caller's worker. */
export class DirectCaller {
  private readonly byCap = new Map<number, Callee>();

  /**
   * Instantiates each server's module on its memory. `preempt` is the caller's own preemption
   * check: a server running in a direct call is preempted as its caller is.
   */
  constructor(calls: readonly DirectCallInit[], preempt: () => number, fuel: number) {
    for (const c of calls) {
      const inst = new WebAssembly.Instance(new WebAssembly.Module(c.wasm), {
        capvisor: { memory: c.memory, preempt },
        sel4: {
          syscall: () => {
            throw new Error(
              `${c.server}: a system call in a direct protected call (the load-time analysis missed it)`,
            );
          },
        },
      });
      const ex = inst.exports;
      if (ex.capvisor_fuel instanceof WebAssembly.Global) ex.capvisor_fuel.value = fuel;
      this.byCap.set(c.cap, {
        init: c,
        lock: new Int32Array(c.lock),
        protectedFn: ex.capvisor_protected as (ch: number) => void,
        ipc: (ex.capvisor_ipc_buffer as () => number)() >>> 2,
        mem32: new Uint32Array(c.memory.buffer),
      });
    }
  }

  /** Whether a Call on cap slot `cap` may go directly (a cheap test before the real one). */
  has(cap: number): boolean {
    return this.byCap.has(cap);
  }

  /**
   * The caller's seL4_Call, made directly when it can be: `m32` is the caller's memory, `r` and
   * `b` the word indices of its register block and IPC buffer. Returns false when the call must
   * go through the kernel (the server is busy, the message carries capabilities, direct calls to
   * it are off, or it trapped in this call: see the top of this file).
   */
  call(m32: Uint32Array, r: number, b: number): boolean {
    if (m32[r + 1] !== 0) return false;
    const c = this.byCap.get(m32[r]!);
    if (c === undefined) return false;
    const infoLo = m32[r + 2]!;
    const len = infoLo & 0x7f;
    if (((infoLo >>> 7) & 3) !== 0) return false;
    if (Atomics.compareExchange(c.lock, DC_STATE, DC_FREE, DC_BUSY) !== DC_FREE) return false;
    let s32 = serverView(c);
    const sb = c.ipc;
    // The kernel's transfer: the info without the cap fields, then the message registers (the
    // first four from the caller's registers x2..x5, the rest from its IPC buffer).
    const n = Math.min(len, MAX_MRS);
    s32[sb] = (infoLo & ~CAP_BITS & ~0x7f) | n;
    s32[sb + 1] = m32[r + 3]!;
    for (let i = 0; i < n; i++) {
      const from = mrWord(r, b, i);
      s32[sb + 2 + 2 * i] = m32[from]!;
      s32[sb + 3 + 2 * i] = m32[from + 1]!;
    }
    try {
      c.protectedFn(c.init.channel);
    } catch (e) {
      if (!(e instanceof WebAssembly.RuntimeError || e instanceof RangeError)) {
        // The caller is being restarted (or the worker stops): the server is free again.
        this.free(c);
        throw e;
      }
      this.noteAndStop(c, DC_NOTE_TRAP, trapNumber(e), 0);
      return false;
    }
    // protected() may have grown the memory.
    s32 = serverView(c);
    const tagLo = s32[sb]!;
    const tagHi = s32[sb + 1]!;
    if (((tagLo >>> 7) & 3) !== 0) {
      // A reply with capabilities: the kernel must transfer them; the server's worker replies.
      this.noteAndStop(c, DC_NOTE_REPLY, tagLo, tagHi);
      return false;
    }
    const rn = Math.min(tagLo & 0x7f, MAX_MRS);
    // The reply as the kernel delivers it: no badge, the info, MRs in x2..x5 and the IPC buffer.
    m32[r] = 0;
    m32[r + 1] = 0;
    m32[r + 2] = (tagLo & ~CAP_BITS & ~0x7f) | rn;
    m32[r + 3] = tagHi;
    for (let i = 0; i < rn; i++) {
      const to = mrWord(r, b, i);
      m32[to] = s32[sb + 2 + 2 * i]!;
      m32[to + 1] = s32[sb + 3 + 2 * i]!;
    }
    Atomics.add(c.lock, DC_CALLS, 1);
    this.free(c);
    return true;
  }

  private free(c: Callee): void {
    Atomics.store(c.lock, DC_STATE, DC_FREE);
    Atomics.notify(c.lock, DC_STATE);
  }

  /** Leave the server's worker a note for this call, and turn direct calls to it off. */
  private noteAndStop(c: Callee, kind: number, arg: number, argHi: number): void {
    c.lock[DC_NOTE_ARG] = arg;
    c.lock[DC_NOTE_ARG_HI] = argHi;
    c.lock[DC_NOTE_CHANNEL] = c.init.channel;
    Atomics.store(c.lock, DC_NOTE, kind);
    Atomics.store(c.lock, DC_STATE, DC_OFF);
    Atomics.notify(c.lock, DC_STATE);
  }
}

/**
 * Sets up a server's registers for the ReplyRecv that sends a noted reply (see the top of this
 * file): x0 its input cap, x1 the info, x2..x5 MR0..MR3 from its IPC buffer, x6 its Reply cap.
 */
export function replyRegisters(m32: Uint32Array, r: number, b: number, info: [number, number]): void {
  m32[r] = INPUT_CAP;
  m32[r + 1] = 0;
  m32[r + 2] = info[0];
  m32[r + 3] = info[1];
  for (let i = 0; i < 4; i++) {
    m32[r + 4 + 2 * i] = m32[b + 2 + 2 * i]!;
    m32[r + 5 + 2 * i] = m32[b + 3 + 2 * i]!;
  }
  m32[r + 12] = REPLY_CAP;
  m32[r + 13] = 0;
}
