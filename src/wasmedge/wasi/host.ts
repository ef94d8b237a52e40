/**
 * The WASI preview1 host: the state of one guest application (its fd table, arguments,
 * environment, stdio) and the `wasi_snapshot_preview1` import object.
 *
 * The fd_* calls live here, path_* in path.ts, clocks / poll / random / proc in misc.ts, sockets in
 * sock.ts. Files are reached only through the FileServer's request API, sockets only through the
 * network server's (`net`), both possibly across a thread boundary (appworker.ts). Every call checks, in the spec's
 * order: the fd exists (EBADF), the fd holds the rights the call needs (ENOTCAPABLE), then what the
 * object is (EISDIR, ENOTDIR, ESPIPE ...). A guest pointer outside linear memory gives EFAULT.
 *
 * Stdio (fds 0-2) are character devices without FD_SEEK/FD_TELL, like a terminal, so wasi-libc's
 * isatty() says yes and stdout is line buffered, as under WasmEdge on a terminal.
 */
import type { DirEntry, FileServer, FileStat } from "../fileserver.js";
import { E, FDFLAGS, FT, R, RIGHTS_DIR, RIGHTS_FILE, RIGHTS_MUTATING, WHENCE } from "./constants.js";
import { miscImports } from "./misc.js";
import { pathImports } from "./path.js";
import { type NetClient, sockClose, sockImports, sockRead, sockWrite } from "./sock.js";
import type { StdinClient, StdinRes } from "./stdin.js";

/** Thrown by proc_exit: unwinds the guest; the runner turns it into the exit code. */
export class WasiExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
  }
}

export interface FdEntry {
  kind: "stdin" | "stdout" | "stderr" | "file" | "dir" | "socket";
  /** FileServer handle (-1 for stdio), or the network server's handle for a socket. */
  handle: number;
  filetype: number;
  rightsBase: bigint;
  rightsInheriting: bigint;
  fdflags: number;
  /** File offset (the host keeps it: the server reads and writes at explicit positions). */
  pos: bigint;
  /** A preopen's guest path. */
  preopen?: string;
  /** fd_readdir's listing, taken when a listing starts (cookie 0) so cookies stay stable. */
  listing?: DirEntry[];
}

export interface WasiConfig {
  args: string[];
  env: [string, string][];
  preopens: { guest: string; readOnly?: boolean }[];
  /** fd 0: the whole input, or the stdin service reached through the request channel (stdin.ts). */
  stdin?: Uint8Array | StdinClient;
  stdout: (bytes: Uint8Array) => void;
  stderr: (bytes: Uint8Array) => void;
  /** Called by calls that may block (poll_oneoff): throws when the run must stop; returns the deadline (ms, performance.now()) or Infinity. */
  deadline?: () => number;
}

const STDIO_COMMON = R.FD_FDSTAT_SET_FLAGS | R.FD_FILESTAT_GET | R.POLL_FD_READWRITE;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

export type HostFn = (...args: (number | bigint)[]) => number | undefined;

export class WasiHost {
  memory: WebAssembly.Memory | null = null;
  readonly fds = new Map<number, FdEntry>();
  stdinPos = 0;
  /** The network server; without one the socket calls answer ENOSYS. */
  net: NetClient | null = null;

  constructor(
    readonly cfg: WasiConfig,
    readonly fs: Pick<FileServer, "call">,
  ) {
    const stdio = (kind: FdEntry["kind"], rw: bigint): FdEntry => ({
      kind,
      handle: -1,
      filetype: FT.CHARACTER_DEVICE,
      rightsBase: rw | STDIO_COMMON,
      rightsInheriting: 0n,
      fdflags: 0,
      pos: 0n,
    });
    this.fds.set(0, stdio("stdin", R.FD_READ));
    this.fds.set(1, stdio("stdout", R.FD_WRITE));
    this.fds.set(2, stdio("stderr", R.FD_WRITE));
    cfg.preopens.forEach((p, i) => {
      const r = fs.call({ op: "root", preopen: i });
      if (!r.ok) throw new Error(`preopen ${p.guest}: errno ${r.errno}`);
      const mask = p.readOnly ? ~RIGHTS_MUTATING : -1n;
      this.fds.set(3 + i, {
        kind: "dir",
        handle: r.handle,
        filetype: FT.DIRECTORY,
        rightsBase: RIGHTS_DIR & mask,
        rightsInheriting: (RIGHTS_DIR | RIGHTS_FILE) & mask,
        fdflags: 0,
        pos: 0n,
        preopen: p.guest,
      });
    });
  }

  // ---- guest memory ----
  view(): DataView {
    return new DataView(this.memory!.buffer);
  }
  bytes(ptr: number, len: number): Uint8Array {
    const buf = this.memory!.buffer;
    if (ptr < 0 || len < 0 || ptr + len > buf.byteLength) throw new RangeError("guest pointer out of bounds");
    return new Uint8Array(buf, ptr, len);
  }
  /** A guest string; throws Errno(ILSEQ) when it is not UTF-8. */
  str(ptr: number, len: number): string {
    try {
      return utf8Strict.decode(this.bytes(ptr, len));
    } catch (e) {
      if (e instanceof RangeError) throw e;
      throw new Errno(E.ILSEQ);
    }
  }
  /** The guest's iovec array as views on linear memory. */
  iovs(ptr: number, count: number): Uint8Array[] {
    const v = this.view();
    const out: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      out.push(this.bytes(v.getUint32(ptr + 8 * i, true), v.getUint32(ptr + 8 * i + 4, true)));
    }
    return out;
  }
  writeStat(ptr: number, st: FileStat): void {
    const v = this.view();
    this.bytes(ptr, 64).fill(0);
    v.setBigUint64(ptr, st.dev, true);
    v.setBigUint64(ptr + 8, st.ino, true);
    v.setUint8(ptr + 16, st.filetype);
    v.setBigUint64(ptr + 24, st.nlink, true);
    v.setBigUint64(ptr + 32, st.size, true);
    v.setBigUint64(ptr + 40, st.atim, true);
    v.setBigUint64(ptr + 48, st.mtim, true);
    v.setBigUint64(ptr + 56, st.ctim, true);
  }

  /** The fd's entry when it exists and holds `rights`; else throws EBADF / ENOTCAPABLE. */
  fd(fd: number, rights: bigint): FdEntry {
    const e = this.fds.get(fd);
    if (!e) throw new Errno(E.BADF);
    if ((e.rightsBase & rights) !== rights) throw new Errno(E.NOTCAPABLE);
    return e;
  }
  /** Lowest free fd number (POSIX's rule, which wasi-libc's tests expect). */
  allocFd(): number {
    let n = 3;
    while (this.fds.has(n)) n++;
    return n;
  }
  /** Unwraps a FileServer response, throwing its errno. */
  ok<T extends { ok: boolean }>(r: T): Extract<T, { ok: true }> {
    if (!r.ok) throw new Errno((r as unknown as { errno: number }).errno);
    return r as Extract<T, { ok: true }>;
  }

  /** Reads up to `len` bytes for fd entry `e` at `pos` (null: the fd's offset, advancing it). */
  private readAt(e: FdEntry, len: number, pos: bigint | null): Uint8Array {
    if (e.kind === "stdin") return this.readStdin(e, len);
    if (e.kind === "dir") throw new Errno(E.ISDIR);
    if (e.kind === "socket") return sockRead(this, e, len);
    const data = this.ok(this.fs.call({ op: "read", handle: e.handle, pos: pos ?? e.pos, len })).data;
    if (pos === null) e.pos += BigInt(data.length);
    return data;
  }

  /**
   * fd_read on stdin. A stream returns what has arrived, at least one byte, waiting only when
   * nothing has (read(2) on a pipe or terminal); 0 bytes means the end. A non-blocking fd 0
   * (FDFLAGS.NONBLOCK) answers EAGAIN instead of waiting. Each wait lasts at most what is left
   * of the run's time limit, after which the deadline check stops the run.
   */
  private readStdin(e: FdEntry, len: number): Uint8Array {
    const src = this.cfg.stdin;
    if (src === undefined || src instanceof Uint8Array) {
      const out = (src ?? new Uint8Array(0)).subarray(this.stdinPos, this.stdinPos + len);
      this.stdinPos += out.length;
      return out;
    }
    if (len === 0) return new Uint8Array(0);
    const nonblocking = (e.fdflags & FDFLAGS.NONBLOCK) !== 0;
    for (;;) {
      const r = src.call({ op: "read", max: len, timeoutMs: nonblocking ? 0 : this.waitBudgetMs() });
      if (r.data.length > 0 || r.eof) return r.data;
      if (r.failed) throw new Errno(E.IO);
      if (nonblocking) throw new Errno(E.AGAIN);
      // The wait ended at the time limit: this throws when it has passed.
      this.cfg.deadline?.();
    }
  }

  /**
   * For poll_oneoff: how much stdin holds, waiting up to `timeoutMs` (< 0: no timeout) for
   * something to arrive; null when stdin is a fixed buffer (always ready).
   */
  pollStdin(timeoutMs: number): Pick<StdinRes, "nbytes" | "eof" | "failed"> | null {
    const src = this.cfg.stdin;
    if (src === undefined || src instanceof Uint8Array) return null;
    return src.call({ op: "poll", timeoutMs });
  }

  /** How long a blocking call may wait: up to the time limit (ms, at least 1), or -1 without one. */
  waitBudgetMs(): number {
    const deadline = this.cfg.deadline ? this.cfg.deadline() : Number.POSITIVE_INFINITY;
    if (deadline === Number.POSITIVE_INFINITY) return -1;
    return Math.max(1, Math.ceil(deadline - performance.now()) + 1);
  }

  private writeAt(e: FdEntry, data: Uint8Array, pos: bigint | null): number {
    if (e.kind === "stdout" || e.kind === "stderr") {
      (e.kind === "stdout" ? this.cfg.stdout : this.cfg.stderr)(data.slice());
      return data.length;
    }
    if (e.kind === "dir") throw new Errno(E.ISDIR);
    if (e.kind === "socket") return sockWrite(this, e, data);
    const append = pos === null && (e.fdflags & FDFLAGS.APPEND) !== 0;
    const sync = (e.fdflags & (FDFLAGS.SYNC | FDFLAGS.DSYNC)) !== 0;
    const r = this.ok(
      this.fs.call({
        op: "write",
        handle: e.handle,
        pos: append ? null : (pos ?? e.pos),
        data: data.slice(),
        sync,
      }),
    );
    if (pos === null) e.pos = r.end;
    return r.n;
  }

  private doRead(fd: number, iovs: number, n: number, out: number, pos: bigint | null): number {
    const e = this.fd(fd, pos === null ? R.FD_READ : R.FD_READ | R.FD_SEEK);
    if (pos !== null && e.kind !== "file") throw new Errno(e.kind === "dir" ? E.ISDIR : E.SPIPE);
    const bufs = this.iovs(iovs, n);
    const total = bufs.reduce((s, b) => s + b.length, 0);
    const data = this.readAt(e, total, pos);
    let off = 0;
    for (const b of this.iovs(iovs, n)) {
      const k = Math.min(b.length, data.length - off);
      b.set(data.subarray(off, off + k));
      off += k;
      if (off >= data.length) break;
    }
    this.view().setUint32(out, data.length, true);
    return E.SUCCESS;
  }

  private doWrite(fd: number, iovs: number, n: number, out: number, pos: bigint | null): number {
    const e = this.fd(fd, pos === null ? R.FD_WRITE : R.FD_WRITE | R.FD_SEEK);
    if (pos !== null && e.kind !== "file") throw new Errno(e.kind === "dir" ? E.ISDIR : E.SPIPE);
    const bufs = this.iovs(iovs, n);
    const total = bufs.reduce((s, b) => s + b.length, 0);
    const data = new Uint8Array(total);
    let off = 0;
    for (const b of bufs) {
      data.set(b, off);
      off += b.length;
    }
    const written = total === 0 ? 0 : this.writeAt(e, data, pos);
    this.view().setUint32(out, written, true);
    return E.SUCCESS;
  }

  private fdFns(): Record<string, HostFn> {
    const n = (x: number | bigint) => Number(x);
    const b = (x: number | bigint) => BigInt.asUintN(64, BigInt(x));
    return {
      fd_read: (fd, iovs, cnt, out) => this.doRead(n(fd), n(iovs), n(cnt), n(out), null),
      fd_pread: (fd, iovs, cnt, off, out) => this.doRead(n(fd), n(iovs), n(cnt), n(out), b(off)),
      fd_write: (fd, iovs, cnt, out) => this.doWrite(n(fd), n(iovs), n(cnt), n(out), null),
      fd_pwrite: (fd, iovs, cnt, off, out) => this.doWrite(n(fd), n(iovs), n(cnt), n(out), b(off)),
      fd_seek: (fd, off, whence, out) => {
        const offset = BigInt.asIntN(64, BigInt(off));
        const tellOnly = n(whence) === WHENCE.CUR && offset === 0n;
        const e = this.fd(n(fd), tellOnly ? R.FD_TELL : R.FD_SEEK);
        if (e.kind !== "file" && e.kind !== "dir") return E.SPIPE;
        let base: bigint;
        if (n(whence) === WHENCE.SET) base = 0n;
        else if (n(whence) === WHENCE.CUR) base = e.pos;
        else if (n(whence) === WHENCE.END) base = this.statFd(e).size;
        else return E.INVAL;
        const next = base + offset;
        if (next < 0n) return E.INVAL;
        e.pos = next;
        this.view().setBigUint64(n(out), next, true);
        return E.SUCCESS;
      },
      fd_tell: (fd, out) => {
        const e = this.fd(n(fd), R.FD_TELL);
        if (e.kind !== "file" && e.kind !== "dir") return E.SPIPE;
        this.view().setBigUint64(n(out), e.pos, true);
        return E.SUCCESS;
      },
      fd_close: (fd) => {
        this.closeEntry(this.fd(n(fd), 0n));
        this.fds.delete(n(fd));
        return E.SUCCESS;
      },
      fd_renumber: (from, to) => {
        const e = this.fd(n(from), 0n);
        const t = this.fd(n(to), 0n);
        if (n(from) === n(to)) return E.SUCCESS;
        this.closeEntry(t);
        this.fds.set(n(to), e);
        this.fds.delete(n(from));
        return E.SUCCESS;
      },
      fd_fdstat_get: (fd, out) => {
        const e = this.fd(n(fd), 0n);
        const v = this.view();
        this.bytes(n(out), 24).fill(0);
        v.setUint8(n(out), e.filetype);
        v.setUint16(n(out) + 2, e.fdflags, true);
        v.setBigUint64(n(out) + 8, e.rightsBase, true);
        v.setBigUint64(n(out) + 16, e.rightsInheriting, true);
        return E.SUCCESS;
      },
      fd_fdstat_set_flags: (fd, flags) => {
        const e = this.fd(n(fd), R.FD_FDSTAT_SET_FLAGS);
        if (n(flags) & ~0x1f) return E.INVAL;
        e.fdflags = n(flags);
        return E.SUCCESS;
      },
      fd_fdstat_set_rights: (fd, base, inheriting) => {
        const e = this.fd(n(fd), 0n);
        // Rights can only be dropped, never gained (spec: "can only remove rights").
        if ((b(base) & ~e.rightsBase) !== 0n || (b(inheriting) & ~e.rightsInheriting) !== 0n)
          return E.NOTCAPABLE;
        e.rightsBase = b(base);
        e.rightsInheriting = b(inheriting);
        return E.SUCCESS;
      },
      fd_filestat_get: (fd, out) => {
        const e = this.fd(n(fd), R.FD_FILESTAT_GET);
        this.writeStat(n(out), this.statFd(e));
        return E.SUCCESS;
      },
      fd_filestat_set_size: (fd, size) => {
        const e = this.fd(n(fd), R.FD_FILESTAT_SET_SIZE);
        if (e.kind === "dir") return E.ISDIR;
        if (e.kind !== "file") return E.INVAL;
        if (b(size) > BigInt(Number.MAX_SAFE_INTEGER)) return E.FBIG;
        this.ok(this.fs.call({ op: "ftruncate", handle: e.handle, size: b(size) }));
        return E.SUCCESS;
      },
      fd_filestat_set_times: (fd, atim, mtim, flags) => {
        const e = this.fd(n(fd), R.FD_FILESTAT_SET_TIMES);
        if (!validTimeFlags(n(flags))) return E.INVAL;
        if (e.handle < 0 || e.kind === "socket") return E.SUCCESS; // nothing on disk to touch
        this.ok(
          this.fs.call({ op: "futimes", handle: e.handle, atim: b(atim), mtim: b(mtim), flags: n(flags) }),
        );
        return E.SUCCESS;
      },
      fd_sync: (fd) => this.sync(n(fd), R.FD_SYNC, false),
      fd_datasync: (fd) => this.sync(n(fd), R.FD_DATASYNC, true),
      fd_advise: (fd, _off, _len, advice) => {
        const e = this.fd(n(fd), R.FD_ADVISE);
        if (n(advice) > 5) return E.INVAL;
        // Advice is a hint: nothing to do, but only regular files and directories take it.
        return e.kind === "file" || e.kind === "dir" ? E.SUCCESS : E.SPIPE;
      },
      fd_allocate: (fd, off, len) => {
        const e = this.fd(n(fd), R.FD_ALLOCATE);
        if (e.kind === "dir") return E.ISDIR;
        if (e.kind !== "file") return E.SPIPE;
        if (b(off) + b(len) > BigInt(Number.MAX_SAFE_INTEGER)) return E.FBIG;
        this.ok(this.fs.call({ op: "fallocate", handle: e.handle, offset: b(off), len: b(len) }));
        return E.SUCCESS;
      },
      fd_readdir: (fd, buf, bufLen, cookie, out) => this.readdir(n(fd), n(buf), n(bufLen), b(cookie), n(out)),
      fd_prestat_get: (fd, out) => {
        const e = this.fd(n(fd), 0n);
        if (e.preopen === undefined) return E.BADF;
        const v = this.view();
        v.setUint32(n(out), 0, true); // tag 0: preopentype dir
        v.setUint32(n(out) + 4, utf8.encode(e.preopen).length, true);
        return E.SUCCESS;
      },
      fd_prestat_dir_name: (fd, ptr, len) => {
        const e = this.fd(n(fd), 0n);
        if (e.preopen === undefined) return E.BADF;
        const name = utf8.encode(e.preopen);
        if (n(len) < name.length) return E.NAMETOOLONG;
        this.bytes(n(ptr), name.length).set(name);
        return E.SUCCESS;
      },
    };
  }

  /** Releases what an fd entry holds in its server. */
  private closeEntry(e: FdEntry): void {
    if (e.kind === "socket") sockClose(this, e);
    else if (e.handle >= 0) this.fs.call({ op: "close", handle: e.handle });
  }

  statFd(e: FdEntry): FileStat {
    if (e.handle < 0 || e.kind === "socket") {
      return { dev: 0n, ino: 0n, filetype: e.filetype, nlink: 1n, size: 0n, atim: 0n, mtim: 0n, ctim: 0n };
    }
    return this.ok(this.fs.call({ op: "fstat", handle: e.handle })).stat;
  }

  private sync(fd: number, right: bigint, dataOnly: boolean): number {
    const e = this.fd(fd, right);
    // A terminal or a socket cannot be synced (fsync(2) says EINVAL).
    if (e.handle < 0 || e.kind === "socket") return E.INVAL;
    this.ok(this.fs.call({ op: "fsync", handle: e.handle, dataOnly }));
    return E.SUCCESS;
  }

  /**
   * fd_readdir: dirents (d_next u64, d_ino u64, d_namlen u32, d_type u8, name) from `cookie` on,
   * the last one cut short when the buffer ends (the guest retries with a bigger buffer); a
   * cookie is the index of the next entry.
   */
  private readdir(fd: number, buf: number, bufLen: number, cookie: bigint, out: number): number {
    const e = this.fd(fd, R.FD_READDIR);
    if (e.kind !== "dir") return E.NOTDIR;
    if (cookie === 0n || !e.listing)
      e.listing = this.ok(this.fs.call({ op: "readdir", handle: e.handle })).entries;
    const dst = this.bytes(buf, bufLen);
    let used = 0;
    const hdr = new DataView(new ArrayBuffer(24));
    for (let i = Number(cookie); i < e.listing.length && used < bufLen; i++) {
      const ent = e.listing[i]!;
      const name = utf8.encode(ent.name);
      hdr.setBigUint64(0, BigInt(i + 1), true);
      hdr.setBigUint64(8, ent.ino, true);
      hdr.setUint32(16, name.length, true);
      hdr.setUint32(20, ent.filetype, true);
      const whole = new Uint8Array(24 + name.length);
      whole.set(new Uint8Array(hdr.buffer), 0);
      whole.set(name, 24);
      const k = Math.min(whole.length, bufLen - used);
      dst.set(whole.subarray(0, k), used);
      used += k;
    }
    this.view().setUint32(out, used, true);
    return E.SUCCESS;
  }

  /** The `wasi_snapshot_preview1` import object; `wrap` surrounds every call (errors, timing). */
  imports(wrap: (name: string, fn: HostFn) => HostFn): Record<string, HostFn> {
    const all: Record<string, HostFn> = {
      ...this.fdFns(),
      ...pathImports(this),
      ...miscImports(this),
      ...sockImports(this),
    };
    const out: Record<string, HostFn> = {};
    for (const [name, fn] of Object.entries(all)) out[name] = wrap(name, guard(fn));
    return out;
  }
}

/** A WASI errno thrown inside a host call and returned to the guest. */
export class Errno extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/** Converts thrown Errno and out-of-bounds guest pointers into errno results. */
function guard(fn: HostFn): HostFn {
  return (...args) => {
    try {
      return fn(...args);
    } catch (e) {
      if (e instanceof Errno) return e.errno;
      if (e instanceof RangeError && /out of bounds|Offset is outside/i.test(e.message)) return E.FAULT;
      throw e;
    }
  };
}

export function validTimeFlags(flags: number): boolean {
  if (flags & ~0xf) return false;
  if (flags & 1 && flags & 2) return false; // ATIM and ATIM_NOW together
  if (flags & 4 && flags & 8) return false; // MTIM and MTIM_NOW together
  return true;
}
