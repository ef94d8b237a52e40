/**
 * Streaming stdin (fd 0), as a guest sees it under `wasmedge`: fd_read returns what has arrived
 * (at least one byte) and blocks only when nothing has; it returns 0 bytes at the end of the
 * input; poll_oneoff reports FD_READ with the number of bytes buffered.
 *
 * Two halves, on either side of the request channel (service.ts):
 * - StdinService, in the main thread, owns the source (an async iterable of chunks, such as
 *   process.stdin) and buffers what arrives. It starts reading on the guest's first stdin request,
 *   so an application that never touches fd 0 never consumes the caller's input, and it reads
 *   ahead at most READ_AHEAD bytes, leaving the rest to the source's own back-pressure.
 * - The WASI host, in the app worker, asks it with `read` and `poll` requests that carry a
 *   timeout: the main thread answers when data or the end arrive, or when the timeout passes. The
 *   worker sleeps in Atomics.wait inside ChannelClient meanwhile, so a guest blocked on stdin
 *   costs no CPU, and its time limit bounds every wait (the host passes what is left of it).
 */
import type { StdinSource } from "../types.js";

/** What the WASI host asks: up to `max` bytes, or how many are buffered. timeoutMs < 0: no timeout. */
export type StdinReq = { op: "read"; max: number; timeoutMs: number } | { op: "poll"; timeoutMs: number };

export interface StdinRes {
  /** The bytes taken (empty for `poll`, and for a `read` that timed out or met the end). */
  data: Uint8Array;
  /** Bytes still buffered after this request. */
  nbytes: number;
  /** The source has ended and nothing is buffered: fd_read returns 0 from now on. */
  eof: boolean;
  /** The source failed (its error ends the input; fd_read answers EIO once the buffer is drained). */
  failed: boolean;
}

/** The worker side: a synchronous call through the request channel. */
export interface StdinClient {
  call(req: StdinReq): StdinRes;
}

/** Bytes buffered ahead of the guest before the service stops pulling from the source. */
const READ_AHEAD = 64 * 1024;

const utf8 = new TextEncoder();

/** The main thread's stdin service for one run over a streaming source. */
export class StdinService {
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  private failed = false;
  private pulling = false;
  private closed = false;
  private iterator: AsyncIterator<Uint8Array | string> | null = null;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly source: AsyncIterable<Uint8Array | string>) {}

  async handle(req: StdinReq): Promise<StdinRes> {
    this.pump();
    if (!this.ready() && req.timeoutMs !== 0) await this.waitReady(req.timeoutMs);
    const data = req.op === "read" ? this.take(req.max) : new Uint8Array(0);
    // Taking made room: read further ahead.
    this.pump();
    return {
      data,
      nbytes: this.buffered,
      eof: this.ended && this.buffered === 0 && !this.failed,
      failed: this.failed && this.buffered === 0,
    };
  }

  /**
   * Ends the service when the run ends: wakes a pending request (its worker is gone) and returns
   * the source's iterator, which for a Node stream destroys it, so that an unfinished pipe or
   * terminal does not keep the process alive.
   */
  close(): void {
    this.closed = true;
    for (const wake of [...this.waiters]) wake();
    const it = this.iterator;
    this.iterator = null;
    if (it?.return) void Promise.resolve(it.return()).catch(() => undefined);
  }

  private ready(): boolean {
    return this.buffered > 0 || this.ended || this.closed;
  }

  /** Keeps one pull from the source in flight while the buffer has room. */
  private pump(): void {
    if (this.pulling || this.ended || this.closed || this.buffered >= READ_AHEAD) return;
    this.pulling = true;
    this.iterator ??= this.source[Symbol.asyncIterator]();
    this.iterator.next().then(
      (r) => {
        this.pulling = false;
        if (this.closed) return;
        if (r.done) this.ended = true;
        else {
          const chunk = typeof r.value === "string" ? utf8.encode(r.value) : r.value;
          if (chunk.length > 0) {
            // A copy: a stream may reuse or pool its chunk's memory.
            this.chunks.push(chunk.slice());
            this.buffered += chunk.length;
          }
        }
        this.wakeAll();
        this.pump();
      },
      () => {
        this.pulling = false;
        this.ended = true;
        this.failed = true;
        this.wakeAll();
      },
    );
  }

  private wakeAll(): void {
    if (!this.ready()) return;
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves when data or the end has arrived, the service closed, or `timeoutMs` passed (< 0: never). */
  private waitReady(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = () => {
        this.waiters.delete(wake);
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      this.waiters.add(wake);
      if (timeoutMs > 0) timer = setTimeout(wake, timeoutMs);
    });
  }

  /** Takes up to `max` buffered bytes, in arrival order. */
  private take(max: number): Uint8Array {
    const n = Math.min(max, this.buffered);
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const head = this.chunks[0]!;
      const k = Math.min(head.length, n - off);
      out.set(head.subarray(0, k), off);
      off += k;
      if (k === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}

/** Whether a RunOptions.stdin is a stream rather than the whole input at once. */
export function isStdinStream(s: StdinSource | undefined): s is AsyncIterable<Uint8Array | string> {
  return s !== undefined && !(s instanceof Uint8Array);
}
