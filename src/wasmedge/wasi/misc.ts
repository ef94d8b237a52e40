/**
 * WASI args, environ, clocks, random, poll_oneoff, proc_* and sched_yield (sockets: sock.ts).
 */
import { randomFillSync } from "node:crypto";
import { CLOCK, E, EVENT, R, SUBSCRIPTION_CLOCK_ABSTIME } from "./constants.js";
import { type HostFn, WasiExit, type WasiHost } from "./host.js";
import { pollSockets } from "./sock.js";

const utf8 = new TextEncoder();

/** Writes a NUL-terminated string list the way args_get / environ_get lay it out. */
function putList(h: WasiHost, list: string[], ptrs: number, buf: number): number {
  const v = h.view();
  let off = buf;
  list.forEach((s, i) => {
    const bytes = utf8.encode(s);
    v.setUint32(ptrs + 4 * i, off, true);
    h.bytes(off, bytes.length + 1).set([...bytes, 0]);
    off += bytes.length + 1;
  });
  return E.SUCCESS;
}
function putSizes(h: WasiHost, list: string[], countPtr: number, sizePtr: number): number {
  const v = h.view();
  v.setUint32(countPtr, list.length, true);
  v.setUint32(
    sizePtr,
    list.reduce((s, x) => s + utf8.encode(x).length + 1, 0),
    true,
  );
  return E.SUCCESS;
}

/** The current time of a clock in ns, or null for an unknown clock id. */
export function clockNow(id: number): bigint | null {
  switch (id) {
    case CLOCK.REALTIME:
      return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    case CLOCK.MONOTONIC:
      return process.hrtime.bigint();
    case CLOCK.PROCESS_CPUTIME:
    case CLOCK.THREAD_CPUTIME: {
      // One guest runs on one thread here, so its thread and process CPU time are the same.
      const u = process.cpuUsage();
      return BigInt(u.user + u.system) * 1000n;
    }
    default:
      return null;
  }
}
/** Resolutions: hrtime counts ns; the others are microsecond-based. */
const CLOCK_RES = [1000n, 1n, 1000n, 1000n];

/** Blocks the thread for `ms` without spinning (the guest is synchronous anyway). */
function sleepMs(ms: number): void {
  if (ms <= 0) return;
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function miscImports(h: WasiHost): Record<string, HostFn> {
  const n = (x: number | bigint) => Number(x);
  const args = h.cfg.args;
  const env = h.cfg.env.map(([k, v]) => `${k}=${v}`);
  const nosys = () => E.NOSYS;

  return {
    args_get: (ptrs, buf) => putList(h, args, n(ptrs), n(buf)),
    args_sizes_get: (c, s) => putSizes(h, args, n(c), n(s)),
    environ_get: (ptrs, buf) => putList(h, env, n(ptrs), n(buf)),
    environ_sizes_get: (c, s) => putSizes(h, env, n(c), n(s)),
    clock_res_get: (id, out) => {
      const res = CLOCK_RES[n(id)];
      if (res === undefined) return E.INVAL;
      h.view().setBigUint64(n(out), res, true);
      return E.SUCCESS;
    },
    clock_time_get: (id, _precision, out) => {
      const t = clockNow(n(id));
      if (t === null) return E.INVAL;
      h.view().setBigUint64(n(out), t, true);
      return E.SUCCESS;
    },
    random_get: (buf, len) => {
      randomFillSync(h.bytes(n(buf), n(len)));
      return E.SUCCESS;
    },
    sched_yield: () => E.SUCCESS,
    proc_exit: (code) => {
      throw new WasiExit(n(code) >>> 0);
    },
    // Signals are not part of WASI's model any more; WasmEdge does not implement raise either.
    proc_raise: nosys,
    poll_oneoff: (inPtr, outPtr, count, neventsPtr) =>
      pollOneoff(h, n(inPtr), n(outPtr), n(count), n(neventsPtr)),
  };
}

interface Ev {
  userdata: bigint;
  error: number;
  type: number;
  nbytes: bigint;
  /** eventrwflags: FD_READWRITE_HANGUP. */
  flags?: number;
}
/** eventrwflags' one flag: the peer hung up (for stdin: the input ended). */
const FD_READWRITE_HANGUP = 1;
/** The longest wait between two socket polls while stdin is also subscribed. */
const MIXED_SLICE_MS = 50;

/**
 * poll_oneoff. Subscriptions are 48 bytes (userdata u64, tag u8 at 8, union at 16: clock = id u32,
 * timeout u64 at 24, precision u64 at 32, flags u16 at 40; fd_readwrite = fd u32); events are 32
 * bytes (userdata u64, error u16 at 8, type u8 at 10, nbytes u64 at 16, flags u16 at 24).
 * Files and stdout are always ready (a regular file never blocks), and so is stdin given as a
 * whole buffer; stdin as a stream is ready when bytes are buffered (nbytes says how many) or at its
 * end (with FD_READWRITE_HANGUP, as poll(2) reports POLLHUP); sockets are asked of the network
 * server. When no fd event is ready the call waits for stdin, a socket or the earliest clock, never
 * past the run's time limit (whose check then stops the run), and reports every ready fd and every
 * clock that has expired. Stdin alone is waited for in one request that the main thread answers
 * when bytes arrive; with sockets too, the wait is in slices of at most 50 ms, stdin being checked
 * after each (the network server's poll cannot also wait for stdin).
 */
function pollOneoff(h: WasiHost, inPtr: number, outPtr: number, count: number, neventsPtr: number): number {
  if (count === 0) return E.INVAL;
  const v = h.view();
  h.bytes(inPtr, 48 * count);
  h.bytes(outPtr, 32 * count);
  const ready: Ev[] = [];
  const clocks: { userdata: bigint; id: number; deadline: bigint }[] = [];
  const socks: { userdata: bigint; type: number; handle: number }[] = [];
  /** FD_READ subscriptions on a streaming stdin that was not ready yet. */
  const stdinWaits: bigint[] = [];
  for (let i = 0; i < count; i++) {
    const s = inPtr + 48 * i;
    const userdata = v.getBigUint64(s, true);
    const tag = v.getUint8(s + 8);
    if (tag === EVENT.CLOCK) {
      const id = v.getUint32(s + 16, true);
      const timeout = v.getBigUint64(s + 24, true);
      const abs = (v.getUint16(s + 40, true) & SUBSCRIPTION_CLOCK_ABSTIME) !== 0;
      const now = clockNow(id);
      if (now === null) ready.push({ userdata, error: E.INVAL, type: EVENT.CLOCK, nbytes: 0n });
      else clocks.push({ userdata, id, deadline: abs ? timeout : now + timeout });
    } else if (tag === EVENT.FD_READ || tag === EVENT.FD_WRITE) {
      const fd = v.getUint32(s + 16, true);
      const e = h.fds.get(fd);
      if (!e) ready.push({ userdata, error: E.BADF, type: tag, nbytes: 0n });
      else if ((e.rightsBase & R.POLL_FD_READWRITE) === 0n) {
        ready.push({ userdata, error: E.NOTCAPABLE, type: tag, nbytes: 0n });
      } else if (e.kind === "socket") {
        socks.push({ userdata, type: tag, handle: e.handle });
      } else {
        let nbytes = 0n;
        if (tag === EVENT.FD_READ) {
          if (e.kind === "stdin") {
            const src = h.cfg.stdin;
            if (src instanceof Uint8Array || src === undefined) {
              nbytes = BigInt(Math.max(0, (src?.length ?? 0) - h.stdinPos));
            } else {
              stdinWaits.push(userdata);
              continue;
            }
          } else if (e.kind === "file") {
            const size = h.statFd(e).size;
            nbytes = size > e.pos ? size - e.pos : 0n;
          }
        }
        ready.push({ userdata, error: E.SUCCESS, type: tag, nbytes });
      }
    } else {
      return E.INVAL;
    }
  }
  /** Adds the ready sockets' events; says whether there were any. */
  const socketsReady = (timeoutMs: number): boolean => {
    const reads = socks.filter((s) => s.type === EVENT.FD_READ).map((s) => s.handle);
    const writes = socks.filter((s) => s.type === EVENT.FD_WRITE).map((s) => s.handle);
    const r = pollSockets(h, reads, writes, timeoutMs);
    let any = false;
    for (const s of socks) {
      const list = s.type === EVENT.FD_READ ? r.readable : r.writable;
      if (list.includes(s.handle)) {
        ready.push({ userdata: s.userdata, error: E.SUCCESS, type: s.type, nbytes: 0n });
        any = true;
      }
    }
    return any;
  };
  /** Adds stdin's events when it is ready, waiting up to timeoutMs (< 0: no timeout); says whether it was. */
  const stdinReady = (timeoutMs: number): boolean => {
    if (stdinWaits.length === 0) return false;
    const r = h.pollStdin(timeoutMs);
    if (r === null || (r.nbytes === 0 && !r.eof && !r.failed)) return false;
    for (const userdata of stdinWaits.splice(0)) {
      ready.push({
        userdata,
        error: r.failed ? E.IO : E.SUCCESS,
        type: EVENT.FD_READ,
        nbytes: BigInt(r.nbytes),
        flags: r.eof ? FD_READWRITE_HANGUP : 0,
      });
    }
    return true;
  };
  if (socks.length > 0) socketsReady(0);
  stdinReady(0);
  if (ready.length === 0 && (clocks.length > 0 || socks.length > 0 || stdinWaits.length > 0)) {
    // Wait for the earliest clock, stdin or a socket, never past the time limit: the deadline
    // check at the top of each round stops the run once it has passed.
    for (;;) {
      const waits = clocks.map((c) => Number(c.deadline - (clockNow(c.id) ?? 0n)) / 1e6);
      const wait = Math.min(...waits);
      if (wait <= 0) break;
      const limit = h.cfg.deadline ? h.cfg.deadline() - performance.now() : Number.POSITIVE_INFINITY;
      const bound = Math.min(wait, Math.max(limit, 0) + 1);
      if (socks.length === 0 && stdinWaits.length > 0) {
        // One request; the main thread answers as soon as bytes arrive.
        if (stdinReady(bound === Number.POSITIVE_INFINITY ? -1 : Math.max(1, Math.ceil(bound)))) break;
      } else if (socks.length === 0) {
        sleepMs(Math.min(bound, 50));
      } else if (socketsReady(Math.min(bound, MIXED_SLICE_MS)) || stdinReady(0)) {
        stdinReady(0);
        break;
      }
    }
  }
  for (const c of clocks) {
    if ((clockNow(c.id) ?? 0n) >= c.deadline)
      ready.push({ userdata: c.userdata, error: 0, type: EVENT.CLOCK, nbytes: 0n });
  }
  const out = h.bytes(outPtr, 32 * ready.length);
  out.fill(0);
  ready.forEach((ev, i) => {
    const o = outPtr + 32 * i;
    v.setBigUint64(o, ev.userdata, true);
    v.setUint16(o + 8, ev.error, true);
    v.setUint8(o + 10, ev.type);
    v.setBigUint64(o + 16, ev.nbytes, true);
    v.setUint16(o + 24, ev.flags ?? 0, true);
  });
  v.setUint32(neventsPtr, ready.length, true);
  return E.SUCCESS;
}
