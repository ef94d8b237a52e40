/**
 * WASI preview1 constants (witx `wasi_snapshot_preview1`): errno values, rights bits, file types
 * and flag words, with the numbers the spec assigns. Kept in one place so the host, the file
 * server and the tests agree on them.
 */

/** errno: the spec's numbering (0 = success). Only the ones this host returns are named. */
export const E = {
  SUCCESS: 0,
  TOOBIG: 1,
  ACCES: 2,
  AGAIN: 6,
  BADF: 8,
  BUSY: 10,
  EXIST: 20,
  FAULT: 21,
  FBIG: 22,
  ILSEQ: 25,
  INVAL: 28,
  IO: 29,
  ISDIR: 31,
  LOOP: 32,
  MFILE: 33,
  MLINK: 34,
  NAMETOOLONG: 37,
  NODEV: 43,
  NOENT: 44,
  NOMEM: 48,
  NOSPC: 51,
  NOSYS: 52,
  NOTDIR: 54,
  NOTEMPTY: 55,
  NOTSOCK: 57,
  NOTSUP: 58,
  NXIO: 60,
  OVERFLOW: 61,
  PERM: 63,
  PIPE: 64,
  RANGE: 68,
  ROFS: 69,
  SPIPE: 70,
  TXTBSY: 74,
  XDEV: 75,
  NOTCAPABLE: 76,
} as const;

/** Node's error codes (from the host OS) to WASI errno. Anything else becomes EIO. */
const HOST_ERRNO: Record<string, number> = {
  E2BIG: E.TOOBIG,
  EACCES: E.ACCES,
  EAGAIN: E.AGAIN,
  EBADF: E.BADF,
  EBUSY: E.BUSY,
  EEXIST: E.EXIST,
  EFBIG: E.FBIG,
  EINVAL: E.INVAL,
  EIO: E.IO,
  EISDIR: E.ISDIR,
  ELOOP: E.LOOP,
  EMFILE: E.MFILE,
  EMLINK: E.MLINK,
  ENAMETOOLONG: E.NAMETOOLONG,
  ENODEV: E.NODEV,
  ENOENT: E.NOENT,
  ENOMEM: E.NOMEM,
  ENOSPC: E.NOSPC,
  ENOSYS: E.NOSYS,
  ENOTDIR: E.NOTDIR,
  ENOTEMPTY: E.NOTEMPTY,
  ENOTSUP: E.NOTSUP,
  EOPNOTSUPP: E.NOTSUP,
  ENXIO: E.NXIO,
  EOVERFLOW: E.OVERFLOW,
  EPERM: E.PERM,
  EPIPE: E.PIPE,
  EROFS: E.ROFS,
  ESPIPE: E.SPIPE,
  ETXTBSY: E.TXTBSY,
  EXDEV: E.XDEV,
};

/** The WASI errno for an exception thrown by node:fs. */
export function hostErrno(e: unknown): number {
  const code =
    typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : "";
  return HOST_ERRNO[code] ?? E.IO;
}

/** Rights bits (witx `rights`). */
export const R = {
  FD_DATASYNC: 1n << 0n,
  FD_READ: 1n << 1n,
  FD_SEEK: 1n << 2n,
  FD_FDSTAT_SET_FLAGS: 1n << 3n,
  FD_SYNC: 1n << 4n,
  FD_TELL: 1n << 5n,
  FD_WRITE: 1n << 6n,
  FD_ADVISE: 1n << 7n,
  FD_ALLOCATE: 1n << 8n,
  PATH_CREATE_DIRECTORY: 1n << 9n,
  PATH_CREATE_FILE: 1n << 10n,
  PATH_LINK_SOURCE: 1n << 11n,
  PATH_LINK_TARGET: 1n << 12n,
  PATH_OPEN: 1n << 13n,
  FD_READDIR: 1n << 14n,
  PATH_READLINK: 1n << 15n,
  PATH_RENAME_SOURCE: 1n << 16n,
  PATH_RENAME_TARGET: 1n << 17n,
  PATH_FILESTAT_GET: 1n << 18n,
  PATH_FILESTAT_SET_SIZE: 1n << 19n,
  PATH_FILESTAT_SET_TIMES: 1n << 20n,
  FD_FILESTAT_GET: 1n << 21n,
  FD_FILESTAT_SET_SIZE: 1n << 22n,
  FD_FILESTAT_SET_TIMES: 1n << 23n,
  PATH_SYMLINK: 1n << 24n,
  PATH_REMOVE_DIRECTORY: 1n << 25n,
  PATH_UNLINK_FILE: 1n << 26n,
  POLL_FD_READWRITE: 1n << 27n,
  SOCK_SHUTDOWN: 1n << 28n,
  SOCK_ACCEPT: 1n << 29n,
} as const;

/** Every right the spec defines. */
export const RIGHTS_ALL = (1n << 30n) - 1n;

/** Rights that make sense on a regular file. */
export const RIGHTS_FILE =
  R.FD_DATASYNC |
  R.FD_READ |
  R.FD_SEEK |
  R.FD_FDSTAT_SET_FLAGS |
  R.FD_SYNC |
  R.FD_TELL |
  R.FD_WRITE |
  R.FD_ADVISE |
  R.FD_ALLOCATE |
  R.FD_FILESTAT_GET |
  R.FD_FILESTAT_SET_SIZE |
  R.FD_FILESTAT_SET_TIMES |
  R.POLL_FD_READWRITE;

/** Rights that make sense on a directory. */
export const RIGHTS_DIR =
  R.FD_FDSTAT_SET_FLAGS |
  R.FD_SYNC |
  R.FD_ADVISE |
  R.PATH_CREATE_DIRECTORY |
  R.PATH_CREATE_FILE |
  R.PATH_LINK_SOURCE |
  R.PATH_LINK_TARGET |
  R.PATH_OPEN |
  R.FD_READDIR |
  R.PATH_READLINK |
  R.PATH_RENAME_SOURCE |
  R.PATH_RENAME_TARGET |
  R.PATH_FILESTAT_GET |
  R.PATH_FILESTAT_SET_SIZE |
  R.PATH_FILESTAT_SET_TIMES |
  R.FD_FILESTAT_GET |
  R.FD_FILESTAT_SET_TIMES |
  R.PATH_SYMLINK |
  R.PATH_REMOVE_DIRECTORY |
  R.PATH_UNLINK_FILE |
  R.POLL_FD_READWRITE;

/** Rights that modify the file system: a read-only preopen never hands these out. */
export const RIGHTS_MUTATING =
  R.FD_DATASYNC |
  R.FD_WRITE |
  R.FD_ALLOCATE |
  R.PATH_CREATE_DIRECTORY |
  R.PATH_CREATE_FILE |
  R.PATH_LINK_SOURCE |
  R.PATH_LINK_TARGET |
  R.PATH_RENAME_SOURCE |
  R.PATH_RENAME_TARGET |
  R.PATH_FILESTAT_SET_SIZE |
  R.PATH_FILESTAT_SET_TIMES |
  R.FD_FILESTAT_SET_SIZE |
  R.FD_FILESTAT_SET_TIMES |
  R.PATH_SYMLINK |
  R.PATH_REMOVE_DIRECTORY |
  R.PATH_UNLINK_FILE;

/** filetype */
export const FT = {
  UNKNOWN: 0,
  BLOCK_DEVICE: 1,
  CHARACTER_DEVICE: 2,
  DIRECTORY: 3,
  REGULAR_FILE: 4,
  SOCKET_DGRAM: 5,
  SOCKET_STREAM: 6,
  SYMBOLIC_LINK: 7,
} as const;

/** fdflags */
export const FDFLAGS = { APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const;
/** oflags */
export const OFLAGS = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const;
/** lookupflags */
export const LOOKUP_SYMLINK_FOLLOW = 1;
/** fstflags */
export const FST = { ATIM: 1, ATIM_NOW: 2, MTIM: 4, MTIM_NOW: 8 } as const;
/** whence */
export const WHENCE = { SET: 0, CUR: 1, END: 2 } as const;
/** clockid */
export const CLOCK = { REALTIME: 0, MONOTONIC: 1, PROCESS_CPUTIME: 2, THREAD_CPUTIME: 3 } as const;
/** eventtype */
export const EVENT = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const;
/** subclockflags */
export const SUBSCRIPTION_CLOCK_ABSTIME = 1;
