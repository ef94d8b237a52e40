/**
 * The file server: the only code that touches the host file system on behalf of guests.
 *
 * It serves the preopened directories through a request/response API of plain data
 * (`handle(req: FsRequest): FsResponse`), so that a later slice can run it in its own PD behind
 * kernel IPC without changing either side; the WASI host calls it synchronously (`call`, the typed
 * form of `handle`).
 *
 * Handles. A handle names a directory or an open file beneath one preopen. Directories are kept as
 * their component list below the preopen (every component checked to be a real directory, not a
 * symlink, when the handle was made); files keep the host fd.
 *
 * Path resolution (`resolve`), as WasmEdge's VINode::resolvePath and the WASI sandboxing rules do:
 * component by component with lstat, never by handing a guest path to the OS. The guest path is
 * relative to a base directory handle and can never leave it:
 * - an absolute path fails with EPERM (WasmEdge's answer; wasi-libc itself already answers
 *   ENOTCAPABLE for an absolute path outside every preopen before reaching the host);
 * - `..` above the base directory fails with EPERM;
 * - a symlink is expanded in place (its target resolved from the symlink's directory, under the
 *   same rules), so a link to an absolute path or one whose `..` climbs out fails with EPERM;
 * - the 8th nested symlink fails with ELOOP (WasmEdge's kMaxNestedLinks; Linux allows 40);
 * - ENOTCAPABLE is kept for what it means in WASI: an fd lacking a right (the WASI host checks
 *   rights before it calls the server).
 * Races: another host process could swap a checked directory for a symlink between our lstat and
 * the operation. Opens are checked after the fact (the opened fd's /proc/self/fd link must lie
 * under the preopen, else the fd is closed and EPERM returned); for the other operations the
 * parent directory's realpath is checked just before the call, which narrows the window to one
 * syscall. Node has no openat(2)/O_BENEATH to close it entirely; guests themselves cannot race
 * (they run single-threaded and reach the host only through this server).
 *
 * A read-only preopen refuses every mutation with EROFS (the WASI host already withholds the
 * rights, so a guest normally sees ENOTCAPABLE first). New symlinks with an absolute target are
 * refused with EPERM: such a link could never be followed inside the sandbox, and would be a trap
 * for host tools that follow it later.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { E, FST, FT, hostErrno, OFLAGS } from "./wasi/constants.js";

export interface FileStat {
  dev: bigint;
  ino: bigint;
  filetype: number;
  nlink: bigint;
  size: bigint;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}
export interface DirEntry {
  name: string;
  ino: bigint;
  filetype: number;
}

/** Each operation's request fields and successful response fields (plain data only). */
export interface FsOps {
  /** The handle of preopen number `preopen` (its root directory). */
  root: { req: { preopen: number }; res: { handle: number } };
  open: {
    req: { dir: number; path: string; follow: boolean; oflags: number; read: boolean; write: boolean };
    res: { handle: number; filetype: number };
  };
  close: { req: { handle: number }; res: Record<string, never> };
  read: { req: { handle: number; pos: bigint; len: number }; res: { data: Uint8Array } };
  /** `pos: null` appends at the current end of file. `end` is the position after the write. */
  write: {
    req: { handle: number; pos: bigint | null; data: Uint8Array; sync: boolean };
    res: { n: number; end: bigint };
  };
  fstat: { req: { handle: number }; res: { stat: FileStat } };
  ftruncate: { req: { handle: number; size: bigint }; res: Record<string, never> };
  futimes: { req: { handle: number; atim: bigint; mtim: bigint; flags: number }; res: Record<string, never> };
  fsync: { req: { handle: number; dataOnly: boolean }; res: Record<string, never> };
  fallocate: { req: { handle: number; offset: bigint; len: bigint }; res: Record<string, never> };
  readdir: { req: { handle: number }; res: { entries: DirEntry[] } };
  stat: { req: { dir: number; path: string; follow: boolean }; res: { stat: FileStat } };
  utimes: {
    req: { dir: number; path: string; follow: boolean; atim: bigint; mtim: bigint; flags: number };
    res: Record<string, never>;
  };
  mkdir: { req: { dir: number; path: string }; res: Record<string, never> };
  rmdir: { req: { dir: number; path: string }; res: Record<string, never> };
  unlink: { req: { dir: number; path: string }; res: Record<string, never> };
  rename: { req: { dir: number; path: string; toDir: number; toPath: string }; res: Record<string, never> };
  link: {
    req: { dir: number; path: string; follow: boolean; toDir: number; toPath: string };
    res: Record<string, never>;
  };
  symlink: { req: { target: string; dir: number; path: string }; res: Record<string, never> };
  readlink: { req: { dir: number; path: string }; res: { target: Uint8Array } };
}
export type FsOp = keyof FsOps;
export type FsReq<K extends FsOp> = { op: K } & FsOps[K]["req"];
export type FsRes<K extends FsOp> = ({ ok: true } & FsOps[K]["res"]) | { ok: false; errno: number };
/** Any request / any response: what crosses the IPC boundary. */
export type FsRequest = { [K in FsOp]: FsReq<K> }[FsOp];
export type FsResponse = { [K in FsOp]: FsRes<K> }[FsOp];

/** A failure carrying its WASI errno, thrown inside the server and turned into a response. */
class FsError extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}
const fail = (errno: number): never => {
  throw new FsError(errno);
};

interface Root {
  host: string;
  readOnly: boolean;
}
type Handle =
  | { kind: "dir"; root: number; rel: string[] }
  | { kind: "file"; root: number; rel: string[]; fd: number };
/** Where a path resolved to: the directory it lies in and its last component ("." = that directory). */
interface Resolved {
  root: number;
  parent: string[];
  name: string;
  /** The path ended in "/": it must name a directory. */
  mustBeDir: boolean;
}

const MAX_NESTED_LINKS = 8;

export class FileServer {
  private readonly roots: Root[];
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;

  /** `preopens` are host directories; each must exist (its realpath becomes the boundary). */
  constructor(preopens: { host: string; readOnly?: boolean }[]) {
    this.roots = preopens.map((p) => ({ host: fs.realpathSync(p.host), readOnly: p.readOnly ?? false }));
  }

  /** The IPC entry point: one request in, one response out. */
  handle(req: FsRequest): FsResponse {
    return this.call(req as FsReq<FsOp>);
  }

  /** Typed form of `handle`. */
  call<K extends FsOp>(req: FsReq<K>): FsRes<K> {
    try {
      const fn = this.ops[req.op] as (r: FsReq<K>) => FsOps[K]["res"];
      return { ok: true, ...fn(req) };
    } catch (e) {
      return { ok: false, errno: e instanceof FsError ? e.errno : hostErrno(e) };
    }
  }

  /** Closes every open host fd (end of a run). */
  closeAll(): void {
    for (const h of this.handles.values()) if (h.kind === "file") fs.closeSync(h.fd);
    this.handles.clear();
  }

  private readonly ops: { [K in FsOp]: (r: FsReq<K>) => FsOps[K]["res"] } = {
    root: (r) => {
      if (!this.roots[r.preopen]) fail(E.BADF);
      return { handle: this.add({ kind: "dir", root: r.preopen, rel: [] }) };
    },
    open: (r) => this.open(r),
    close: (r) => {
      const h = this.get(r.handle);
      this.handles.delete(r.handle);
      if (h.kind === "file") fs.closeSync(h.fd);
      return {};
    },
    read: (r) => {
      const fd = this.fileFd(r.handle);
      const buf = Buffer.alloc(r.len);
      const n = fs.readSync(fd, buf, 0, r.len, r.pos);
      return { data: new Uint8Array(buf.buffer, buf.byteOffset, n) };
    },
    write: (r) => {
      const h = this.get(r.handle);
      if (h.kind !== "file") return fail(E.ISDIR);
      if (this.roots[h.root]!.readOnly) fail(E.ROFS);
      const at = r.pos ?? fs.fstatSync(h.fd, { bigint: true }).size;
      const n = fs.writeSync(h.fd, r.data, 0, r.data.length, Number(at));
      if (r.sync) fs.fdatasyncSync(h.fd);
      return { n, end: at + BigInt(n) };
    },
    fstat: (r) => {
      const h = this.get(r.handle);
      return { stat: toStat(h.kind === "file" ? fs.fstatSync(h.fd, { bigint: true }) : this.lstatHandle(h)) };
    },
    ftruncate: (r) => {
      const fd = this.writableFd(r.handle);
      fs.ftruncateSync(fd, Number(r.size));
      return {};
    },
    futimes: (r) => {
      const h = this.get(r.handle);
      if (this.roots[h.root]!.readOnly) fail(E.ROFS);
      const cur = h.kind === "file" ? fs.fstatSync(h.fd, { bigint: true }) : this.lstatHandle(h);
      const [a, m] = times(cur, r.atim, r.mtim, r.flags);
      if (h.kind === "file") fs.futimesSync(h.fd, a, m);
      else fs.utimesSync(this.hostPath(h.root, h.rel), a, m);
      return {};
    },
    fsync: (r) => {
      const h = this.get(r.handle);
      if (h.kind === "file") {
        if (r.dataOnly) fs.fdatasyncSync(h.fd);
        else fs.fsyncSync(h.fd);
      } else {
        const fd = fs.openSync(
          this.hostPath(h.root, h.rel),
          fs.constants.O_RDONLY | fs.constants.O_DIRECTORY,
        );
        try {
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
      }
      return {};
    },
    fallocate: (r) => {
      // Node has no fallocate(2): extending the file with ftruncate gives the same observable result
      // (the range reads as zeros and the size covers it); existing data is never touched.
      const fd = this.writableFd(r.handle);
      const size = fs.fstatSync(fd, { bigint: true }).size;
      if (r.offset + r.len > size) fs.ftruncateSync(fd, Number(r.offset + r.len));
      return {};
    },
    readdir: (r) => {
      const h = this.get(r.handle);
      if (h.kind !== "dir") return fail(E.NOTDIR);
      const dir = this.hostPath(h.root, h.rel);
      const self = fs.lstatSync(dir, { bigint: true });
      const up = h.rel.length > 0 ? fs.lstatSync(path.dirname(dir), { bigint: true }) : self;
      const entries: DirEntry[] = [
        { name: ".", ino: self.ino, filetype: FT.DIRECTORY },
        { name: "..", ino: up.ino, filetype: FT.DIRECTORY },
      ];
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
        let ino = 0n;
        try {
          ino = fs.lstatSync(path.join(dir, d.name), { bigint: true }).ino;
        } catch {
          // Removed between readdir and lstat: keep the entry with ino 0, as a racing getdents would.
        }
        entries.push({ name: d.name, ino, filetype: direntType(d) });
      }
      return { entries };
    },
    stat: (r) => {
      const res = this.resolve(this.dirHandle(r.dir), r.path, r.follow);
      const st = fs.lstatSync(this.target(res), { bigint: true });
      if (res.mustBeDir && !st.isDirectory()) fail(E.NOTDIR);
      return { stat: toStat(st) };
    },
    utimes: (r) => {
      const res = this.resolve(this.dirHandle(r.dir), r.path, r.follow);
      this.mutable(res.root);
      const p = this.target(res);
      const [a, m] = times(fs.lstatSync(p, { bigint: true }), r.atim, r.mtim, r.flags);
      // After resolve, `p` has no symlink left unless follow was off: lutimes never follows.
      fs.lutimesSync(p, a, m);
      return {};
    },
    mkdir: (r) => {
      const res = this.resolveMut(r.dir, r.path);
      if (res.name === ".") fail(E.EXIST);
      fs.mkdirSync(this.target(res));
      return {};
    },
    rmdir: (r) => {
      const res = this.resolveMut(r.dir, r.path);
      if (res.name === ".") fail(E.INVAL);
      fs.rmdirSync(this.target(res));
      return {};
    },
    unlink: (r) => {
      const res = this.resolveMut(r.dir, r.path);
      if (res.name === ".") fail(E.ISDIR);
      const p = this.target(res);
      const st = fs.lstatSync(p);
      if (st.isDirectory()) fail(E.ISDIR);
      if (res.mustBeDir) fail(E.NOTDIR);
      fs.unlinkSync(p);
      return {};
    },
    rename: (r) => {
      const from = this.resolveMut(r.dir, r.path);
      const to = this.resolveMut(r.toDir, r.toPath);
      if (from.name === "." || to.name === ".") fail(E.INVAL);
      if (from.root !== to.root) fail(E.XDEV);
      fs.renameSync(this.target(from), this.target(to));
      return {};
    },
    link: (r) => {
      const from = this.resolve(this.dirHandle(r.dir), r.path, r.follow);
      const to = this.resolveMut(r.toDir, r.toPath);
      this.mutable(from.root);
      if (from.name === ".") fail(E.PERM);
      if (to.name === ".") fail(E.EXIST);
      if (from.root !== to.root) fail(E.XDEV);
      fs.linkSync(this.target(from), this.target(to));
      return {};
    },
    symlink: (r) => {
      if (r.target.startsWith("/")) fail(E.PERM);
      if (r.target === "") fail(E.NOENT);
      const res = this.resolveMut(r.dir, r.path);
      if (res.name === ".") fail(E.EXIST);
      fs.symlinkSync(r.target, this.target(res));
      return {};
    },
    readlink: (r) => {
      const res = this.resolve(this.dirHandle(r.dir), r.path, false);
      const p = this.target(res);
      if (!fs.lstatSync(p).isSymbolicLink()) fail(E.INVAL);
      return { target: new Uint8Array(fs.readlinkSync(p, { encoding: "buffer" })) };
    },
  };

  private open(r: FsReq<"open">): FsOps["open"]["res"] {
    const base = this.dirHandle(r.dir);
    const res = this.resolve(base, r.path, r.follow);
    const root = this.roots[res.root]!;
    const rel = res.name === "." ? res.parent : [...res.parent, res.name];
    const p = this.hostPath(res.root, rel);
    const mutating = r.write || (r.oflags & (OFLAGS.CREAT | OFLAGS.TRUNC)) !== 0;
    const st = lstatOrNull(p);
    if (st?.isDirectory()) {
      if ((r.oflags & (OFLAGS.CREAT | OFLAGS.EXCL)) === (OFLAGS.CREAT | OFLAGS.EXCL)) fail(E.EXIST);
      if (r.write || r.oflags & OFLAGS.TRUNC) fail(E.ISDIR);
      this.checkBeneath(res.root, p);
      return { handle: this.add({ kind: "dir", root: res.root, rel }), filetype: FT.DIRECTORY };
    }
    if ((r.oflags & OFLAGS.DIRECTORY || res.mustBeDir) && st && !st.isSymbolicLink()) fail(E.NOTDIR);
    if (!st && r.oflags & OFLAGS.DIRECTORY) fail(E.NOENT);
    if (mutating && root.readOnly) fail(E.ROFS);
    const c = fs.constants;
    let flags = c.O_NOFOLLOW | c.O_NONBLOCK | (r.write ? (r.read ? c.O_RDWR : c.O_WRONLY) : c.O_RDONLY);
    if (r.oflags & OFLAGS.CREAT) flags |= c.O_CREAT;
    if (r.oflags & OFLAGS.EXCL) flags |= c.O_EXCL;
    if (r.oflags & OFLAGS.TRUNC) flags |= c.O_TRUNC;
    this.checkBeneath(res.root, path.dirname(p));
    const fd = fs.openSync(p, flags, 0o666);
    try {
      // The race check: what the kernel actually opened must lie beneath the preopen.
      const real = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (!beneath(root.host, real)) fail(E.PERM);
      const fst = fs.fstatSync(fd, { bigint: true });
      if (fst.isDirectory()) {
        fs.closeSync(fd);
        return { handle: this.add({ kind: "dir", root: res.root, rel }), filetype: FT.DIRECTORY };
      }
      return { handle: this.add({ kind: "file", root: res.root, rel, fd }), filetype: fileType(fst) };
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /**
   * Resolves `p` beneath the directory `base` (see the top of this file). A missing last component
   * is not an error here: the operation decides. `follow` says whether a symlink in the last
   * component is followed (it always is in the others, and when the path ends in "/").
   */
  private resolve(base: Handle & { kind: "dir" }, p: string, follow: boolean): Resolved {
    if (p === "") fail(E.NOENT);
    if (p.includes("\0")) fail(E.INVAL);
    const floor = base.rel.length;
    const stack = [...base.rel];
    let rest = p;
    let links = 0;
    for (;;) {
      if (rest.startsWith("/")) fail(E.PERM);
      const parts = rest.split("/");
      let expanded = false;
      for (let i = 0; i < parts.length && !expanded; i++) {
        const part = parts[i]!;
        const remaining = parts.slice(i + 1);
        const last = remaining.every((x) => x === "");
        const trailing = last && remaining.length > 0;
        if (part === "") {
          if (last) return { root: base.root, parent: stack, name: ".", mustBeDir: true };
          continue;
        }
        if (part === "." || part === "..") {
          if (part === "..") {
            if (stack.length <= floor) fail(E.PERM);
            stack.pop();
          }
          if (last) return { root: base.root, parent: stack, name: ".", mustBeDir: trailing };
          continue;
        }
        if (last && !follow && !trailing)
          return { root: base.root, parent: stack, name: part, mustBeDir: false };
        const st = lstatOrNull(this.hostPath(base.root, [...stack, part]));
        if (!st) {
          if (last) return { root: base.root, parent: stack, name: part, mustBeDir: trailing };
          fail(E.NOENT);
        } else if (st.isSymbolicLink()) {
          if (++links >= MAX_NESTED_LINKS) fail(E.LOOP);
          const target = fs.readlinkSync(this.hostPath(base.root, [...stack, part]));
          rest = remaining.length > 0 ? `${target}/${remaining.join("/")}` : target;
          if (rest === "") fail(E.NOENT);
          expanded = true;
        } else {
          if (last) return { root: base.root, parent: stack, name: part, mustBeDir: trailing };
          if (!st.isDirectory()) fail(E.NOTDIR);
          stack.push(part);
        }
      }
      if (!expanded) return { root: base.root, parent: stack, name: ".", mustBeDir: false };
    }
  }

  /** Resolution for an operation that creates or removes the last component (never followed). */
  private resolveMut(dir: number, p: string): Resolved {
    const res = this.resolve(this.dirHandle(dir), p, false);
    this.mutable(res.root);
    this.checkBeneath(res.root, this.hostPath(res.root, res.parent));
    return res;
  }

  private mutable(root: number): void {
    if (this.roots[root]!.readOnly) fail(E.ROFS);
  }

  /** Narrows the swap-a-directory-for-a-symlink race: `dir` must really be beneath the preopen. */
  private checkBeneath(root: number, dir: string): void {
    let real: string;
    try {
      real = fs.realpathSync(dir);
    } catch (e) {
      throw new FsError(hostErrno(e));
    }
    if (!beneath(this.roots[root]!.host, real)) fail(E.PERM);
  }

  private target(res: Resolved): string {
    return this.hostPath(res.root, res.name === "." ? res.parent : [...res.parent, res.name]);
  }
  private hostPath(root: number, rel: string[]): string {
    return rel.length === 0 ? this.roots[root]!.host : `${this.roots[root]!.host}/${rel.join("/")}`;
  }
  private add(h: Handle): number {
    const n = this.nextHandle++;
    this.handles.set(n, h);
    return n;
  }
  private get(n: number): Handle {
    return this.handles.get(n) ?? fail(E.BADF);
  }
  private dirHandle(n: number): Handle & { kind: "dir" } {
    const h = this.get(n);
    if (h.kind !== "dir") fail(E.NOTDIR);
    return h as Handle & { kind: "dir" };
  }
  private fileFd(n: number): number {
    const h = this.get(n);
    if (h.kind !== "file") return fail(E.ISDIR);
    return h.fd;
  }
  private writableFd(n: number): number {
    const h = this.get(n);
    if (h.kind !== "file") return fail(E.ISDIR);
    this.mutable(h.root);
    return h.fd;
  }
  private lstatHandle(h: Handle): fs.BigIntStats {
    return fs.lstatSync(this.hostPath(h.root, h.rel), { bigint: true });
  }
}

function beneath(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith("/") ? root : `${root}/`);
}

function lstatOrNull(p: string): fs.BigIntStats | null {
  try {
    return fs.lstatSync(p, { bigint: true });
  } catch (e) {
    const errno = hostErrno(e);
    if (errno === E.NOENT) return null;
    throw new FsError(errno);
  }
}

function fileType(st: fs.BigIntStats | fs.Dirent): number {
  if (st.isFile()) return FT.REGULAR_FILE;
  if (st.isDirectory()) return FT.DIRECTORY;
  if (st.isSymbolicLink()) return FT.SYMBOLIC_LINK;
  if (st.isCharacterDevice()) return FT.CHARACTER_DEVICE;
  if (st.isBlockDevice()) return FT.BLOCK_DEVICE;
  if (st.isSocket()) return FT.SOCKET_STREAM;
  return FT.UNKNOWN;
}
const direntType = (d: fs.Dirent): number => fileType(d);

function toStat(st: fs.BigIntStats): FileStat {
  return {
    dev: st.dev,
    ino: st.ino,
    filetype: fileType(st),
    nlink: st.nlink,
    size: st.size,
    atim: st.atimeNs,
    mtim: st.mtimeNs,
    ctim: st.ctimeNs,
  };
}

/**
 * The access and modification times to set, in seconds (what node:fs takes; sub-microsecond
 * precision is lost). A time neither given nor "now" keeps its current value.
 */
function times(cur: fs.BigIntStats, atim: bigint, mtim: bigint, flags: number): [number, number] {
  const now = Date.now() / 1000;
  const sec = (ns: bigint) => Number(ns) / 1e9;
  const a = flags & FST.ATIM_NOW ? now : flags & FST.ATIM ? sec(atim) : sec(cur.atimeNs);
  const m = flags & FST.MTIM_NOW ? now : flags & FST.MTIM ? sec(mtim) : sec(cur.mtimeNs);
  return [a, m];
}
