/**
 * WASI path_* calls. Each checks the base fd's rights (ENOTCAPABLE), then hands the guest path,
 * unchanged, to the file server, which resolves it beneath the base directory (fileserver.ts says
 * how escapes are refused and with which errno).
 */
import { E, FT, LOOKUP_SYMLINK_FOLLOW, OFLAGS, R } from "./constants.js";
import { Errno, type FdEntry, type HostFn, validTimeFlags, type WasiHost } from "./host.js";

const READ_RIGHTS = R.FD_READ | R.FD_READDIR;
/** Rights that need the host file opened for writing (the same set uvwasi and wasi-libc use). */
const WRITE_RIGHTS = R.FD_DATASYNC | R.FD_WRITE | R.FD_ALLOCATE | R.FD_FILESTAT_SET_SIZE;

export function pathImports(h: WasiHost): Record<string, HostFn> {
  const n = (x: number | bigint) => Number(x);
  const b = (x: number | bigint) => BigInt.asUintN(64, BigInt(x));
  /** The directory fd `fd` holding `rights`: EBADF, ENOTCAPABLE, then ENOTDIR. */
  const dir = (fd: number | bigint, rights: bigint): FdEntry => {
    const e = h.fd(n(fd), rights);
    if (e.kind !== "dir") throw new Errno(E.NOTDIR);
    return e;
  };
  const done = () => E.SUCCESS;

  return {
    path_open: (fd, dirflags, p, len, oflags, base, inheriting, fdflags, out) => {
      const of = n(oflags);
      let need = R.PATH_OPEN;
      if (of & OFLAGS.CREAT) need |= R.PATH_CREATE_FILE;
      if (of & OFLAGS.TRUNC) need |= R.PATH_FILESTAT_SET_SIZE;
      const d = dir(fd, need);
      if (of & ~0xf) return E.INVAL;
      if (n(fdflags) & ~0x1f) return E.INVAL;
      // The new fd can hold only rights its directory may hand down (spec: ENOTCAPABLE otherwise).
      if ((b(base) & ~d.rightsInheriting) !== 0n || (b(inheriting) & ~d.rightsInheriting) !== 0n) {
        return E.NOTCAPABLE;
      }
      const path = h.str(n(p), n(len));
      const write = (b(base) & WRITE_RIGHTS) !== 0n;
      const read = (b(base) & READ_RIGHTS) !== 0n || !write;
      const r = h.ok(
        h.fs.call({
          op: "open",
          dir: d.handle,
          path,
          follow: (n(dirflags) & LOOKUP_SYMLINK_FOLLOW) !== 0,
          oflags: of,
          read,
          write,
        }),
      );
      const newFd = h.allocFd();
      h.fds.set(newFd, {
        kind: r.filetype === FT.DIRECTORY ? "dir" : "file",
        handle: r.handle,
        filetype: r.filetype,
        rightsBase: b(base),
        rightsInheriting: b(inheriting),
        fdflags: n(fdflags),
        pos: 0n,
      });
      h.view().setUint32(n(out), newFd, true);
      return E.SUCCESS;
    },
    path_create_directory: (fd, p, len) => {
      const d = dir(fd, R.PATH_CREATE_DIRECTORY);
      h.ok(h.fs.call({ op: "mkdir", dir: d.handle, path: h.str(n(p), n(len)) }));
      return done();
    },
    path_remove_directory: (fd, p, len) => {
      const d = dir(fd, R.PATH_REMOVE_DIRECTORY);
      h.ok(h.fs.call({ op: "rmdir", dir: d.handle, path: h.str(n(p), n(len)) }));
      return done();
    },
    path_unlink_file: (fd, p, len) => {
      const d = dir(fd, R.PATH_UNLINK_FILE);
      h.ok(h.fs.call({ op: "unlink", dir: d.handle, path: h.str(n(p), n(len)) }));
      return done();
    },
    path_filestat_get: (fd, flags, p, len, out) => {
      const d = dir(fd, R.PATH_FILESTAT_GET);
      const follow = (n(flags) & LOOKUP_SYMLINK_FOLLOW) !== 0;
      const r = h.ok(h.fs.call({ op: "stat", dir: d.handle, path: h.str(n(p), n(len)), follow }));
      h.writeStat(n(out), r.stat);
      return done();
    },
    path_filestat_set_times: (fd, flags, p, len, atim, mtim, fst) => {
      const d = dir(fd, R.PATH_FILESTAT_SET_TIMES);
      if (!validTimeFlags(n(fst))) return E.INVAL;
      const follow = (n(flags) & LOOKUP_SYMLINK_FOLLOW) !== 0;
      h.ok(
        h.fs.call({
          op: "utimes",
          dir: d.handle,
          path: h.str(n(p), n(len)),
          follow,
          atim: b(atim),
          mtim: b(mtim),
          flags: n(fst),
        }),
      );
      return done();
    },
    path_rename: (fd, p, len, toFd, toP, toLen) => {
      const from = dir(fd, R.PATH_RENAME_SOURCE);
      const to = dir(toFd, R.PATH_RENAME_TARGET);
      h.ok(
        h.fs.call({
          op: "rename",
          dir: from.handle,
          path: h.str(n(p), n(len)),
          toDir: to.handle,
          toPath: h.str(n(toP), n(toLen)),
        }),
      );
      return done();
    },
    path_link: (fd, flags, p, len, toFd, toP, toLen) => {
      const from = dir(fd, R.PATH_LINK_SOURCE);
      const to = dir(toFd, R.PATH_LINK_TARGET);
      h.ok(
        h.fs.call({
          op: "link",
          dir: from.handle,
          path: h.str(n(p), n(len)),
          follow: (n(flags) & LOOKUP_SYMLINK_FOLLOW) !== 0,
          toDir: to.handle,
          toPath: h.str(n(toP), n(toLen)),
        }),
      );
      return done();
    },
    path_symlink: (target, targetLen, fd, p, len) => {
      const d = dir(fd, R.PATH_SYMLINK);
      h.ok(
        h.fs.call({
          op: "symlink",
          target: h.str(n(target), n(targetLen)),
          dir: d.handle,
          path: h.str(n(p), n(len)),
        }),
      );
      return done();
    },
    path_readlink: (fd, p, len, buf, bufLen, out) => {
      const d = dir(fd, R.PATH_READLINK);
      const r = h.ok(h.fs.call({ op: "readlink", dir: d.handle, path: h.str(n(p), n(len)) }));
      // Like readlink(2): the target is cut to the buffer, without a NUL.
      const k = Math.min(r.target.length, n(bufLen));
      h.bytes(n(buf), k).set(r.target.subarray(0, k));
      h.view().setUint32(n(out), k, true);
      return done();
    },
  };
}
