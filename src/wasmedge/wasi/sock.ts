/**
 * Sockets: WASI preview1's sock_recv / sock_send / sock_shutdown / sock_accept and WasmEdge's
 * socket extension in module `wasi_snapshot_preview1` (sock_open, sock_bind, sock_listen,
 * sock_connect, sock_getlocaladdr, sock_getpeeraddr, sock_setsockopt, sock_getsockopt,
 * sock_getaddrinfo, and the `_v2` names), served by the network server (netserver.ts) through the
 * request channel (in a runtime PD, the channel leads on to its network PD, netserver-pd.ts).
 *
 * WasmEdge layouts (lib/host/wasi/wasifunc.cpp, thirdparty/wasi/api.hpp):
 * - address family: 1 = INET4, 2 = INET6; socket type: 0 = ANY, 1 = DGRAM, 2 = STREAM.
 * - `__wasi_address_t` is { buf: u32 pointer, buf_len: u32 }. A buffer of 4 or 16 bytes holds
 *   the raw IPv4 / IPv6 address; one of 128 bytes is WasiAddrStorage: family u16 at 0, address
 *   bytes from offset 2. The port is a separate argument (host order).
 * - V1 vs V2 differ in arity where they differ at all (WasmEdge picks by the import's signature):
 *   sock_accept (fd, ro_fd) vs (fd, fdflags, ro_fd); sock_getlocaladdr / sock_getpeeraddr
 *   (fd, addr, addr_type_out, port_out) with addr_type 4 or 6, vs (fd, addr128, port_out). A JS
 *   host function sees the arguments the import declares, so their count tells the forms apart.
 * - getaddrinfo fills a guest-allocated chain of `__wasi_addrinfo_t` (28 bytes: flags u16 @0,
 *   family u8 @2, socktype u8 @3, protocol u8 @4, addrlen u32 @8, addr ptr @12, canonname ptr @16,
 *   canonname_len @20, next ptr @24), each ai_addr a `__wasi_sockaddr_t` (family u8 @0,
 *   sa_data_len u32 @4, sa_data ptr @8) whose sa_data is laid out as in a native sockaddr: port
 *   (big endian) then the IPv4 address, or port, flowinfo, the IPv6 address and the scope id.
 *
 * - Datagrams: sock_send_to (fd, iovs, iovs_len, addr, port, siflags, so_len_out) in both forms
 *   (V1 takes a 4 / 16-byte address, V2 also the 128-byte one); sock_recv_from V1 is (fd, iovs,
 *   iovs_len, addr, riflags, ro_len_out, ro_flags_out) and writes the raw source address only;
 *   V2 adds port_out (a u16) before ro_len_out. WasmEdge stores that port straight from
 *   sin_port, i.e. in network byte order, and so does this file, so that guests written against
 *   WasmEdge read the same value. A datagram cut short by the buffer sets roflags bit 0
 *   (__WASI_ROFLAGS_RECV_DATA_TRUNCATED), and ro_len is the bytes stored, as recvmsg reports.
 *
 * A blocking call is a non-blocking attempt repeated after a poll of at most POLL_SLICE_MS, each
 * round checking the run's deadline, so that a time limit stops a guest blocked in accept or recv.
 */
import { isIPv4 } from "node:net";
import type { NetOp, NetReq, NetRes, SockAddr } from "../netserver.js";
import { E, FDFLAGS, FT, R } from "./constants.js";
import { Errno, type FdEntry, type HostFn, type WasiHost } from "./host.js";

/** The worker's typed view of the network server. */
export interface NetClient {
  call<K extends NetOp>(req: NetReq<K>): NetRes<K>;
}

const POLL_SLICE_MS = 100;
const INPROGRESS = 26;
const AFNOSUPPORT = 5;
const NOTSUP = 58;
/** __WASI_ROFLAGS_RECV_DATA_TRUNCATED. */
const ROFLAGS_TRUNCATED = 1;
const SOCKET_RIGHTS =
  R.FD_READ |
  R.FD_WRITE |
  R.FD_FDSTAT_SET_FLAGS |
  R.FD_FILESTAT_GET |
  R.POLL_FD_READWRITE |
  R.SOCK_SHUTDOWN |
  R.SOCK_ACCEPT;

function net(h: WasiHost): NetClient {
  if (!h.net) throw new Errno(E.NOSYS);
  return h.net;
}
function ok<K extends NetOp>(r: NetRes<K>): Extract<NetRes<K>, { ok: true }> {
  if (!r.ok) throw new Errno(r.errno);
  return r as Extract<NetRes<K>, { ok: true }>;
}
/**
 * The fd's entry when it is a socket holding `rights`: EBADF, then ENOTSOCK, then ENOTCAPABLE
 * (what an fd is comes before what it may do: the socket rights mean nothing on a file).
 */
function sockFd(h: WasiHost, fd: number, rights: bigint = 0n): FdEntry {
  const e = h.fd(fd, 0n);
  if (e.kind !== "socket") throw new Errno(E.NOTSOCK);
  return h.fd(fd, rights);
}
const nonblocking = (e: FdEntry) => (e.fdflags & FDFLAGS.NONBLOCK) !== 0;

/** Waits (at most one slice) until `handle` is ready; throws when the run's limit has passed. */
function waitReady(h: WasiHost, handle: number, write: boolean): void {
  const deadline = h.cfg.deadline ? h.cfg.deadline() : Number.POSITIVE_INFINITY;
  const ms = Math.max(1, Math.min(POLL_SLICE_MS, Math.ceil(deadline - performance.now())));
  net(h).call({ op: "poll", reads: write ? [] : [handle], writes: write ? [handle] : [], timeoutMs: ms });
}

/** Runs a non-blocking attempt, and for a blocking socket repeats it until it does not EAGAIN. */
function retry<K extends NetOp>(
  h: WasiHost,
  e: FdEntry,
  write: boolean,
  attempt: () => NetRes<K>,
): NetRes<K> {
  for (;;) {
    const r = attempt();
    if (r.ok || r.errno !== E.AGAIN || nonblocking(e)) return r;
    waitReady(h, e.handle, write);
  }
}

export function sockRead(h: WasiHost, e: FdEntry, len: number, peek = false): Uint8Array {
  if (e.filetype === FT.SOCKET_DGRAM) return recvDatagram(h, e, len, peek).data;
  return ok(retry(h, e, false, () => net(h).call({ op: "recv", handle: e.handle, len, peek }))).data;
}
export function sockWrite(h: WasiHost, e: FdEntry, data: Uint8Array): number {
  if (e.filetype === FT.SOCKET_DGRAM) return sendDatagram(h, e, data);
  return ok(retry(h, e, true, () => net(h).call({ op: "send", handle: e.handle, data }))).n;
}
/** One datagram (blocking unless the fd is non-blocking), cut to `len` bytes. */
function recvDatagram(h: WasiHost, e: FdEntry, len: number, peek: boolean) {
  return ok(retry(h, e, false, () => net(h).call({ op: "recvfrom", handle: e.handle, len, peek })));
}
function sendDatagram(h: WasiHost, e: FdEntry, data: Uint8Array, to?: SockAddr): number {
  return ok(
    retry(h, e, true, () => net(h).call({ op: "sendto", handle: e.handle, data, ...(to ? { to } : {}) })),
  ).n;
}

export function sockClose(h: WasiHost, e: FdEntry): void {
  h.net?.call({ op: "close", handle: e.handle });
}

/** For poll_oneoff: which of the subscribed socket handles are ready, waiting up to timeoutMs. */
export function pollSockets(
  h: WasiHost,
  reads: number[],
  writes: number[],
  timeoutMs: number,
): { readable: number[]; writable: number[] } {
  return ok(net(h).call({ op: "poll", reads, writes, timeoutMs: Math.max(0, Math.floor(timeoutMs)) }));
}

function newSocketFd(h: WasiHost, handle: number, fdflags: number, dgram = false): number {
  const fd = h.allocFd();
  h.fds.set(fd, {
    kind: "socket",
    handle,
    filetype: dgram ? FT.SOCKET_DGRAM : FT.SOCKET_STREAM,
    rightsBase: SOCKET_RIGHTS,
    rightsInheriting: SOCKET_RIGHTS,
    fdflags,
    pos: 0n,
  });
  return fd;
}

/** Reads a guest `__wasi_address_t` (see the top of this file). */
function readAddr(h: WasiHost, ptr: number): { family: 4 | 6; address: string } {
  const v = h.view();
  const buf = v.getUint32(ptr, true);
  const len = v.getUint32(ptr + 4, true);
  const b = h.bytes(buf, len);
  let family: 4 | 6;
  let raw: Uint8Array;
  if (len === 4 || len === 16) {
    family = len === 4 ? 4 : 6;
    raw = b;
  } else if (len === 128) {
    const f = v.getUint16(buf, true);
    if (f !== 1 && f !== 2) throw new Errno(AFNOSUPPORT);
    family = f === 1 ? 4 : 6;
    raw = b.subarray(2, family === 4 ? 6 : 18);
  } else throw new Errno(E.INVAL);
  return { family, address: ipString(family, raw) };
}

function ipString(family: 4 | 6, raw: Uint8Array): string {
  if (family === 4) return Array.from(raw.subarray(0, 4)).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((raw[i]! << 8) | raw[i + 1]!).toString(16));
  // node:net accepts the uncompressed form; compress nothing (BlockList and connect parse it).
  return groups.join(":");
}

function ipBytes(a: SockAddr): Uint8Array {
  if (a.family === 4 || isIPv4(a.address)) return Uint8Array.from(a.address.split(".").map(Number));
  const out = new Uint8Array(16);
  const [head, tail] = a.address.includes("::") ? a.address.split("::") : [a.address, undefined];
  const hs = head ? head.split(":") : [];
  const ts = tail ? tail.split(":") : [];
  const words = [...hs, ...Array(8 - hs.length - ts.length).fill("0"), ...ts].map((x) =>
    Number.parseInt(x, 16),
  );
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** Copies `data` across the guest's iovecs in order. */
function scatter(bufs: Uint8Array[], data: Uint8Array): void {
  let off = 0;
  for (const b of bufs) {
    if (off >= data.length) break;
    const k = Math.min(b.length, data.length - off);
    b.set(data.subarray(off, off + k));
    off += k;
  }
}

/**
 * Writes a datagram's source into a guest `__wasi_address_t`: a 128-byte buffer (V2 only) gets
 * the family and the address, a 4 / 16-byte one the raw address when it fits (WasmEdge copies
 * nothing otherwise; V1 writes raw bytes whatever the size).
 */
function writeSourceAddr(h: WasiHost, ptr: number, a: SockAddr, v2: boolean): void {
  const v = h.view();
  const buf = v.getUint32(ptr, true);
  const len = v.getUint32(ptr + 4, true);
  const ip = ipBytes(a);
  const b = h.bytes(buf, len);
  if (v2 && len === 128) {
    b.fill(0);
    v.setUint16(buf, a.family === 4 ? 1 : 2, true);
    b.set(ip, 2);
  } else if (len >= ip.length) b.set(ip);
}

/** Writes an address into a guest `__wasi_address_t` buffer: V1 (4 / 16 raw bytes) or V2 (128). */
function writeAddr(h: WasiHost, ptr: number, a: SockAddr, v2: boolean): void {
  const v = h.view();
  const buf = v.getUint32(ptr, true);
  const len = v.getUint32(ptr + 4, true);
  const ip = ipBytes(a);
  if (v2) {
    if (len !== 128) throw new Errno(E.INVAL);
    h.bytes(buf, 128).fill(0);
    v.setUint16(buf, a.family === 4 ? 1 : 2, true);
    h.bytes(buf + 2, ip.length).set(ip);
  } else {
    if (len !== 4 && len !== 16) throw new Errno(E.INVAL);
    if (len < ip.length) throw new Errno(E.INVAL);
    h.bytes(buf, len).fill(0);
    h.bytes(buf, ip.length).set(ip);
  }
}

/** Connects, and for a blocking socket waits for the outcome (EINPROGRESS when non-blocking). */
function connect(h: WasiHost, e: FdEntry, address: string, port: number): number {
  ok(net(h).call({ op: "connect", handle: e.handle, address, port }));
  if (nonblocking(e)) return INPROGRESS;
  for (;;) {
    const s = ok(net(h).call({ op: "status", handle: e.handle }));
    if (s.error !== 0) return s.error;
    if (!s.pending) return E.SUCCESS;
    waitReady(h, e.handle, true);
  }
}

export function sockImports(h: WasiHost): Record<string, HostFn> {
  const n = (x: number | bigint) => Number(x);
  const v = () => h.view();

  const open: HostFn = (af, type, out) => {
    const fam = n(af) === 1 ? 4 : n(af) === 2 ? 6 : 0;
    if (fam === 0) return AFNOSUPPORT;
    if (n(type) > 2) return E.INVAL;
    h.bytes(n(out), 4);
    const dgram = n(type) === 1;
    const r = ok(net(h).call({ op: "open", family: fam, stream: !dgram }));
    v().setUint32(n(out), newSocketFd(h, r.handle, 0, dgram), true);
    return E.SUCCESS;
  };
  const bind: HostFn = (fd, addr, port) => {
    const e = sockFd(h, n(fd));
    const a = readAddr(h, n(addr));
    ok(net(h).call({ op: "bind", handle: e.handle, address: a.address, port: n(port) & 0xffff }));
    return E.SUCCESS;
  };
  const listen: HostFn = (fd, backlog) => {
    const e = sockFd(h, n(fd));
    ok(net(h).call({ op: "listen", handle: e.handle, backlog: n(backlog) }));
    return E.SUCCESS;
  };
  const accept: HostFn = (...a) => {
    // V1: (fd, ro_fd); preview1 / V2: (fd, fdflags, ro_fd).
    const [fd, flags, out] = a.length === 2 ? [a[0]!, 0, a[1]!] : [a[0]!, a[1]!, a[2]!];
    const e = sockFd(h, n(fd), R.SOCK_ACCEPT);
    if (n(flags) & ~FDFLAGS.NONBLOCK) return E.INVAL;
    h.bytes(n(out), 4);
    const r = ok(retry(h, e, false, () => net(h).call({ op: "accept", handle: e.handle })));
    v().setUint32(n(out), newSocketFd(h, r.handle, n(flags)), true);
    return E.SUCCESS;
  };
  const conn: HostFn = (fd, addr, port) => {
    const e = sockFd(h, n(fd));
    const a = readAddr(h, n(addr));
    return connect(h, e, a.address, n(port) & 0xffff);
  };
  const recv: HostFn = (fd, iovs, cnt, flags, outLen, outFlags) => {
    const e = sockFd(h, n(fd), R.FD_READ);
    if (n(flags) & ~3) return E.INVAL;
    const bufs = h.iovs(n(iovs), n(cnt));
    h.bytes(n(outLen), 4);
    h.bytes(n(outFlags), 2);
    const want = bufs.reduce((s, b) => s + b.length, 0);
    const peek = (n(flags) & 1) !== 0;
    if (e.filetype === FT.SOCKET_DGRAM) {
      const d = recvDatagram(h, e, want, peek);
      scatter(bufs, d.data);
      v().setUint32(n(outLen), d.data.length, true);
      v().setUint16(n(outFlags), d.truncated ? ROFLAGS_TRUNCATED : 0, true);
      return E.SUCCESS;
    }
    const waitAll = (n(flags) & 2) !== 0 && !peek;
    let total = 0;
    let bi = 0;
    let bo = 0;
    do {
      const data = sockRead(h, e, want - total, peek);
      if (data.length === 0) break;
      for (let off = 0; off < data.length; ) {
        const b = bufs[bi]!;
        const k = Math.min(b.length - bo, data.length - off);
        b.set(data.subarray(off, off + k), bo);
        off += k;
        bo += k;
        if (bo === b.length) {
          bi++;
          bo = 0;
        }
      }
      total += data.length;
    } while (waitAll && total < want);
    v().setUint32(n(outLen), total, true);
    v().setUint16(n(outFlags), 0, true);
    return E.SUCCESS;
  };
  const send: HostFn = (fd, iovs, cnt, flags, out) => {
    const e = sockFd(h, n(fd), R.FD_WRITE);
    if (n(flags) !== 0) return E.INVAL;
    const bufs = h.iovs(n(iovs), n(cnt));
    h.bytes(n(out), 4);
    const data = new Uint8Array(bufs.reduce((s, b) => s + b.length, 0));
    let off = 0;
    for (const b of bufs) {
      data.set(b, off);
      off += b.length;
    }
    // An empty datagram is a datagram; an empty stream write sends nothing.
    const dgram = e.filetype === FT.SOCKET_DGRAM;
    v().setUint32(n(out), data.length === 0 && !dgram ? 0 : sockWrite(h, e, data), true);
    return E.SUCCESS;
  };
  const recvFrom: HostFn = (...a) => {
    // V1: (fd, iovs, cnt, addr, flags, ro_len, ro_flags); V2 adds port_out before ro_len.
    const v2 = a.length === 8;
    const [fd, iovs, cnt, addr, flags] = a.map(n) as [number, number, number, number, number];
    const [portOut, outLen, outFlags] = v2 ? [n(a[5]!), n(a[6]!), n(a[7]!)] : [-1, n(a[5]!), n(a[6]!)];
    const e = sockFd(h, fd, R.FD_READ);
    if (flags & ~3) return E.INVAL;
    if (e.filetype !== FT.SOCKET_DGRAM) return NOTSUP;
    const bufs = h.iovs(iovs, cnt);
    h.bytes(outLen, 4);
    h.bytes(outFlags, 2);
    if (v2) h.bytes(portOut, 2);
    const addrLen = v().getUint32(addr + 4, true);
    if (addrLen !== 4 && addrLen !== 16 && addrLen !== 128) return E.INVAL;
    const want = bufs.reduce((s, b) => s + b.length, 0);
    const d = recvDatagram(h, e, want, (flags & 1) !== 0);
    scatter(bufs, d.data);
    writeSourceAddr(h, addr, d.from, v2);
    if (v2) {
      // Network byte order, as WasmEdge copies sin_port (see the top of this file).
      h.bytes(portOut, 2).set([d.from.port >> 8, d.from.port & 0xff]);
    }
    v().setUint32(outLen, d.data.length, true);
    v().setUint16(outFlags, d.truncated ? ROFLAGS_TRUNCATED : 0, true);
    return E.SUCCESS;
  };
  const sendTo: HostFn = (fd, iovs, cnt, addr, port, flags, out) => {
    const e = sockFd(h, n(fd), R.FD_WRITE);
    if (n(flags) !== 0) return E.INVAL;
    if (e.filetype !== FT.SOCKET_DGRAM) return NOTSUP;
    const bufs = h.iovs(n(iovs), n(cnt));
    h.bytes(n(out), 4);
    const to = readAddr(h, n(addr));
    const data = new Uint8Array(bufs.reduce((s, b) => s + b.length, 0));
    let off = 0;
    for (const b of bufs) {
      data.set(b, off);
      off += b.length;
    }
    const sent = sendDatagram(h, e, data, { family: to.family, address: to.address, port: n(port) & 0xffff });
    v().setUint32(n(out), sent, true);
    return E.SUCCESS;
  };
  const addrOf =
    (op: "localaddr" | "peeraddr"): HostFn =>
    (...a) => {
      // V1: (fd, addr, addr_type_out, port_out); V2: (fd, addr128, port_out).
      const v2 = a.length === 3;
      const e = sockFd(h, n(a[0]!));
      const portPtr = n(v2 ? a[2]! : a[3]!);
      h.bytes(portPtr, 4);
      const r = ok(net(h).call({ op, handle: e.handle }));
      writeAddr(h, n(a[1]!), r, v2);
      if (!v2) v().setUint32(n(a[2]!), r.family, true);
      v().setUint32(portPtr, r.port, true);
      return E.SUCCESS;
    };

  return {
    sock_open: open,
    sock_open_v2: open,
    sock_bind: bind,
    sock_bind_v2: bind,
    sock_listen: listen,
    sock_listen_v2: listen,
    sock_accept: accept,
    sock_accept_v2: accept,
    sock_connect: conn,
    sock_connect_v2: conn,
    sock_recv: recv,
    sock_recv_v2: recv,
    sock_send: send,
    sock_send_v2: send,
    sock_recv_from: recvFrom,
    sock_recv_from_v2: recvFrom,
    sock_send_to: sendTo,
    sock_send_to_v2: sendTo,
    sock_shutdown: (fd, how) => {
      const e = sockFd(h, n(fd), R.SOCK_SHUTDOWN);
      ok(net(h).call({ op: "shutdown", handle: e.handle, how: n(how) }));
      return E.SUCCESS;
    },
    sock_getlocaladdr: addrOf("localaddr"),
    sock_getlocaladdr_v2: addrOf("localaddr"),
    sock_getpeeraddr: addrOf("peeraddr"),
    sock_getpeeraddr_v2: addrOf("peeraddr"),
    sock_setsockopt: (fd, level, name, flag, size) => {
      const e = sockFd(h, n(fd));
      if (n(level) !== 0) return E.INVAL;
      if (n(size) < 4) return E.INVAL;
      const value = v().getInt32(n(flag), true);
      ok(net(h).call({ op: "setopt", handle: e.handle, name: n(name), value }));
      return E.SUCCESS;
    },
    sock_getsockopt: (fd, level, name, flag, sizePtr) => {
      const e = sockFd(h, n(fd));
      if (n(level) !== 0) return E.INVAL;
      if (v().getUint32(n(sizePtr), true) < 4) return E.INVAL;
      h.bytes(n(flag), 4);
      const r = ok(net(h).call({ op: "getopt", handle: e.handle, name: n(name) }));
      v().setInt32(n(flag), r.value, true);
      v().setUint32(n(sizePtr), 4, true);
      return E.SUCCESS;
    },
    sock_getaddrinfo: (node, nodeLen, service, serviceLen, hints, res, maxLen, resLen) =>
      getaddrinfo(
        h,
        [n(node), n(nodeLen)],
        [n(service), n(serviceLen)],
        n(hints),
        n(res),
        n(maxLen),
        n(resLen),
      ),
  };
}

function getaddrinfo(
  h: WasiHost,
  [nodePtr, nodeLen]: [number, number],
  [svcPtr, svcLen]: [number, number],
  hints: number,
  res: number,
  maxLen: number,
  resLen: number,
): number {
  const v = h.view();
  const node = h.str(nodePtr, nodeLen);
  const service = h.str(svcPtr, svcLen);
  // WasmEdge's EAI_* errno extensions: 84 AINONAME (nothing to resolve), 82 AIMEMORY.
  if (node === "" && service === "") return 84;
  if (maxLen < 1) return 82;
  const flags = v.getUint16(hints, true);
  const fam = v.getUint8(hints + 2);
  const socktype = v.getUint8(hints + 3);
  if (fam > 2) return AFNOSUPPORT;
  h.bytes(resLen, 4);
  const r = ok(
    net(h).call({
      op: "getaddrinfo",
      node,
      service,
      family: fam === 1 ? 4 : fam === 2 ? 6 : 0,
      passive: (flags & 1) !== 0,
    }),
  );
  // Walk the guest's pre-linked chain of addrinfo structs, filling one per address.
  let ai = v.getUint32(res, true);
  let count = 0;
  for (const a of r.addrs.slice(0, maxLen)) {
    h.bytes(ai, 28);
    v.setUint8(ai + 2, a.family === 4 ? 1 : 2);
    v.setUint8(ai + 3, socktype === 0 ? 2 : socktype);
    v.setUint8(ai + 4, socktype === 1 ? 2 : 1); // WasmEdge's IPPROTO_UDP = 2, IPPROTO_TCP = 1
    v.setUint32(ai + 8, a.family === 4 ? 16 : 28, true);
    const sa = v.getUint32(ai + 12, true);
    h.bytes(sa, 12);
    v.setUint8(sa, a.family === 4 ? 1 : 2);
    const dataLen = v.getUint32(sa + 4, true);
    const data = h.bytes(v.getUint32(sa + 8, true), dataLen);
    const need = a.family === 4 ? 6 : 22;
    if (dataLen < need) return E.INVAL;
    data.fill(0);
    data[0] = a.port >> 8;
    data[1] = a.port & 0xff;
    data.set(ipBytes(a), a.family === 4 ? 2 : 6);
    count++;
    ai = v.getUint32(ai + 24, true);
    if (ai === 0) break;
  }
  v.setUint32(resLen, count, true);
  return E.SUCCESS;
}
