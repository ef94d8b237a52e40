/**
 * An AssemblyScript WASI application (npm packages only: assemblyscript and
 * @assemblyscript/wasi-shim), for `capvisor run`:
 *
 *   capvisor run --dir /data:some/host/dir build/examples/wasi/as-cat.wasm /data/file.txt ...
 *
 * For each argument, an absolute guest path beneath a preopened directory, it prints the file's
 * contents followed by "-- <path>: <bytes> bytes, <lines> lines". A file that cannot be opened
 * gives "as-cat: <path>: errno <n>" on stderr (the WASI errno, e.g. 44 ENOENT, 63 EPERM for an
 * escape, 76 ENOTCAPABLE) and exit code 1 after the other files; no argument gives a usage line
 * and exit code 2.
 *
 * The shim provides console, process.argv/env/exit; files have no AssemblyScript API, so they are
 * reached through the WASI preview1 imports directly, as wasi-libc does: find the preopen whose
 * name prefixes the path (fd_prestat_get / fd_prestat_dir_name from fd 3 up), then path_open the
 * rest relative to it and fd_read until end of file.
 * Built by scripts/build-wasi-examples.sh.
 */

// The shim's own declarations of the WASI imports (module "wasi_snapshot_preview1").
import {
  errno,
  fd_close,
  fd_prestat_dir_name,
  fd_prestat_get,
  fd_read,
  lookupflags,
  path_open,
  prestat,
  rights,
} from "bindings/wasi_snapshot_preview1";

const ERRNO_BADF: u16 = 8;

/** A preopened directory: its fd and guest name, without a trailing "/". */
class Preopen {
  constructor(
    public fd: u32,
    public name: string,
  ) {}
}

/** The preopens, found as wasi-libc finds them: consecutive fds from 3 until EBADF. */
function preopens(): Preopen[] {
  const found: Preopen[] = [];
  // prestat: a u8 tag (0 = directory) then, at offset 4, the name's length (u32).
  const prestat = new ArrayBuffer(8);
  const p = changetype<usize>(prestat);
  for (let fd: u32 = 3; ; fd++) {
    const err = fd_prestat_get(fd, changetype<prestat>(p));
    if (err == ERRNO_BADF) break;
    if (err != 0 || load<u8>(p) != 0) continue;
    const len = load<u32>(p, 4);
    const buf = new ArrayBuffer(<i32>len);
    if (fd_prestat_dir_name(fd, changetype<usize>(buf), len) != 0) continue;
    let name = String.UTF8.decode(buf);
    while (name.length > 1 && name.endsWith("/")) name = name.slice(0, name.length - 1);
    found.push(new Preopen(fd, name));
  }
  return found;
}

/** Opens `path` for reading beneath the longest matching preopen: the fd, or -errno. */
function openFile(path: string, dirs: Preopen[]): i64 {
  let best: Preopen | null = null;
  let rest = "";
  for (let i = 0; i < dirs.length; i++) {
    const d = dirs[i];
    const name = d.name == "/" ? "" : d.name;
    if (path.startsWith(name + "/") && (best === null || d.name.length > best.name.length)) {
      best = d;
      rest = path.slice(name.length + 1);
    }
  }
  // No preopen covers it: the same answer wasi-libc gives for such a path.
  if (best === null) return -76;
  const utf8 = String.UTF8.encode(rest);
  const out = new ArrayBuffer(4);
  // Follow symlinks, as wasi-libc's open() does; the host still keeps them beneath the preopen.
  const err = path_open(
    best.fd,
    lookupflags.SYMLINK_FOLLOW,
    changetype<usize>(utf8),
    utf8.byteLength,
    0,
    rights.FD_READ,
    0,
    0,
    changetype<usize>(out),
  );
  if (err != 0) return -(<i64>err);
  return load<u32>(changetype<usize>(out));
}

/** The whole file, or null with the errno in `lastErrno`. */
let lastErrno: errno = 0;
function readAll(fd: u32): Uint8Array | null {
  let data = new Uint8Array(0);
  const chunk = new Uint8Array(4096);
  // One iovec: buffer pointer and length; then the count of bytes read.
  const iov = new ArrayBuffer(8);
  const nread = new ArrayBuffer(4);
  while (true) {
    store<u32>(changetype<usize>(iov), chunk.dataStart);
    store<u32>(changetype<usize>(iov), <u32>chunk.length, 4);
    const err = fd_read(fd, changetype<usize>(iov), 1, changetype<usize>(nread));
    if (err != 0) {
      lastErrno = err;
      return null;
    }
    const n = <i32>load<u32>(changetype<usize>(nread));
    if (n == 0) return data;
    const grown = new Uint8Array(data.length + n);
    grown.set(data);
    grown.set(chunk.subarray(0, n), data.length);
    data = grown;
  }
}

const args = process.argv;
if (args.length < 2) {
  process.stderr.write("usage: as-cat /preopen/path...\n");
  process.exit(2);
}
const dirs = preopens();
let status = 0;
for (let i = 1; i < args.length; i++) {
  const path = args[i];
  const fd = openFile(path, dirs);
  if (fd < 0) {
    process.stderr.write(`as-cat: ${path}: errno ${-fd}\n`);
    status = 1;
    continue;
  }
  const data = readAll(<u32>fd);
  fd_close(<u32>fd);
  if (data === null) {
    process.stderr.write(`as-cat: ${path}: errno ${lastErrno}\n`);
    status = 1;
    continue;
  }
  let lines = 0;
  for (let j = 0; j < data.length; j++) if (data[j] == 10) lines++;
  process.stdout.write(String.UTF8.decode(data.buffer));
  console.log(`-- ${path}: ${data.length} bytes, ${lines} lines`);
}
process.exit(status);
