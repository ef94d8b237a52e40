/**
 * The synchronous request channel between a guest application's worker thread and the services
 * in the main thread (file server, network server, stdio), shaped like platform/channel.ts: one
 * SharedArrayBuffer holding a few control words (the state word doubles as the doorbell), a
 * request block written only by the worker and a response block written only by the main thread.
 *
 * The worker side is synchronous (the WASI host runs inside a guest's call into an import and
 * cannot await): it writes a request, rings, and blocks in Atomics.wait. The main side is
 * asynchronous: it sleeps in Atomics.waitAsync, so one main thread serves any number of workers,
 * and a handler may take its time (a socket poll) without blocking anything else.
 *
 * Messages are structured-clone encoded (node:v8 serialize), so requests and responses are plain
 * data: numbers, bigints, strings, Uint8Arrays, arrays and objects. A message larger than a block
 * crosses in chunks: the receiver acknowledges each chunk but the last (states ACK / NEXT).
 *
 * One request is in flight per channel at a time, which is what a single-threaded guest needs.
 */
import { deserialize, serialize } from "node:v8";

/** Control word indices. */
const STATE = 0;
/** Bytes of this chunk. */
const LEN = 1;
/** Bytes of the whole message. */
const TOTAL = 2;
const CTL_WORDS = 4;

/** STATE values. The worker writes REQUEST and NEXT; the main thread writes ACK and RESPONSE. */
/** (0: idle, nothing asked yet.) A request chunk is in the request block. */
const S_REQUEST = 1;
/** The main thread took a request chunk and wants the next one. */
const S_ACK = 2;
/** A response chunk is in the response block. */
const S_RESPONSE = 3;
/** The worker took a response chunk and wants the next one. */
const S_NEXT = 4;

/** Bytes per block: large enough for typical reads and writes in one round trip. */
export const BLOCK_BYTES = 64 * 1024;

/** A service in the main thread: one plain-data request in, one response out. */
export interface Service<Req, Res> {
  handle(req: Req): Res | Promise<Res>;
}

/** What crosses the channel: the service's name and its request; the answer or a host failure. */
interface Envelope {
  s: string;
  r: unknown;
}
type Answer = { ok: unknown } | { err: string };

function views(sab: SharedArrayBuffer): { ctl: Int32Array; req: Uint8Array; res: Uint8Array } {
  return {
    ctl: new Int32Array(sab, 0, CTL_WORDS),
    req: new Uint8Array(sab, CTL_WORDS * 4, BLOCK_BYTES),
    res: new Uint8Array(sab, CTL_WORDS * 4 + BLOCK_BYTES, BLOCK_BYTES),
  };
}

export function createChannelBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(CTL_WORDS * 4 + 2 * BLOCK_BYTES);
}

/**
 * How a worker sleeps until the main thread moves the state word (index 0 of `ctl`) away from
 * `state`. By default a plain Atomics.wait; an application that is a kernel thread (app-thread.ts)
 * blocks in the kernel instead, so its core goes to other threads while it waits.
 */
export type BlockUntilMoved = (ctl: Int32Array, state: number) => void;

const waitUntilMoved: BlockUntilMoved = (ctl, state) => {
  while (Atomics.load(ctl, STATE) === state) Atomics.wait(ctl, STATE, state);
};

/** The worker's end: synchronous calls. */
export class ChannelClient {
  private readonly ctl: Int32Array;
  private readonly req: Uint8Array;
  private readonly res: Uint8Array;
  constructor(
    sab: SharedArrayBuffer,
    private readonly block: BlockUntilMoved = waitUntilMoved,
  ) {
    ({ ctl: this.ctl, req: this.req, res: this.res } = views(sab));
  }

  /** Sends `req` to service `service` and blocks until it answers; a service failure throws. */
  request(service: string, req: unknown): unknown {
    const msg = serialize({ s: service, r: req } satisfies Envelope);
    let off = 0;
    do {
      const n = Math.min(BLOCK_BYTES, msg.length - off);
      this.req.set(msg.subarray(off, off + n));
      off += n;
      this.ctl[LEN] = n;
      this.ctl[TOTAL] = msg.length;
      this.ring(S_REQUEST);
    } while (off < msg.length);
    // The state is RESPONSE now: gather the answer's chunks.
    const total = this.ctl[TOTAL]!;
    const out = Buffer.allocUnsafe(total);
    let got = 0;
    for (;;) {
      const n = this.ctl[LEN]!;
      out.set(this.res.subarray(0, n), got);
      got += n;
      if (got >= total) break;
      this.ring(S_NEXT);
    }
    const answer = deserialize(out) as Answer;
    if ("err" in answer) throw new Error(`service ${service}: ${answer.err}`);
    return answer.ok;
  }

  /** Publishes `state`, wakes the main thread and sleeps until it moves the state on. */
  private ring(state: number): void {
    Atomics.store(this.ctl, STATE, state);
    Atomics.notify(this.ctl, STATE);
    this.block(this.ctl, state);
  }
}

/** A typed view of one service through a channel (the worker side of `Service<Req, Res>`). */
export class ServiceClient<Req, Res> {
  constructor(
    private readonly ch: ChannelClient,
    private readonly name: string,
  ) {}
  call(req: Req): Res {
    return this.ch.request(this.name, req) as Res;
  }
}

/** Any service, as the dispatcher sees it (requests arrive untyped off the wire). */
export type AnyService = Service<never, unknown>;

/**
 * The main thread's end: answers requests on `sab` with `services` until `close()`. Handlers
 * run one at a time per channel, in arrival order.
 */
export function serveChannel(
  sab: SharedArrayBuffer,
  services: Record<string, AnyService>,
  /** Called after each move of the state the worker waits for (a kernel thread's wake-up). */
  onMoved?: () => void,
): { close(): void } {
  const { ctl, req, res } = views(sab);
  let closed = false;
  const parts: Uint8Array[] = [];
  let got = 0;
  let out: Buffer | null = null;
  let sent = 0;

  const answerChunk = () => {
    const n = Math.min(BLOCK_BYTES, out!.length - sent);
    res.set(out!.subarray(sent, sent + n));
    ctl[LEN] = n;
    ctl[TOTAL] = out!.length;
    sent += n;
    if (sent >= out!.length) out = null;
    Atomics.store(ctl, STATE, S_RESPONSE);
    Atomics.notify(ctl, STATE);
    onMoved?.();
  };

  const dispatch = async (msg: Buffer): Promise<Answer> => {
    try {
      const env = deserialize(msg) as Envelope;
      const svc = services[env.s];
      if (!svc) return { err: `no service named ${env.s}` };
      return { ok: await (svc.handle as (r: unknown) => unknown)(env.r) };
    } catch (e) {
      return { err: e instanceof Error ? e.message : String(e) };
    }
  };

  const loop = async () => {
    while (!closed) {
      const s = Atomics.load(ctl, STATE);
      if (s === S_REQUEST) {
        const n = ctl[LEN]!;
        parts.push(req.slice(0, n));
        got += n;
        if (got < ctl[TOTAL]!) {
          Atomics.store(ctl, STATE, S_ACK);
          Atomics.notify(ctl, STATE);
          onMoved?.();
          continue;
        }
        const msg = Buffer.concat(parts);
        parts.length = 0;
        got = 0;
        out = serialize(await dispatch(msg));
        sent = 0;
        if (closed) return;
        answerChunk();
        continue;
      }
      if (s === S_NEXT && out) {
        answerChunk();
        continue;
      }
      const w = Atomics.waitAsync(ctl, STATE, s);
      if (w.async) await w.value;
    }
  };
  void loop();
  return {
    close() {
      closed = true;
      // Wakes the loop's waitAsync so that it sees `closed` and ends.
      Atomics.notify(ctl, STATE);
    },
  };
}
