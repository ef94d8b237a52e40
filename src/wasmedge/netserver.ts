/**
 * The network server: the only code that touches the host network on behalf of guests. It runs
 * in the main thread on node:net, with a request/response API of plain data like the file
 * server's (netops.ts). Inside a system it belongs to the network PD of a runtime PD
 * (netserver-pd.ts), reached only by kernel IPC; under `capvisor run`, which has no kernel, the
 * runner serves it straight from the app's request channel (service.ts, runner.ts).
 *
 * Every operation is non-blocking and answers at once (EAGAIN when it would block), except
 * `listen` (which waits for the bind to succeed or fail) and `poll`, which waits until one of the
 * given handles is ready or the timeout passes. A guest's blocking call is built in its worker from
 * a non-blocking attempt and polls in short slices, so a time limit still stops a blocked guest.
 *
 * Policy: only addresses in the allowed set (NetServerOptions.allowed; loopback by default: the
 * network policy of this machine and a sensible default for untrusted guests) may be bound to,
 * connected to or sent to; others fail with EACCES, as a firewall refusing the operation would.
 * Host names go to the host's resolver only when the set reaches beyond loopback; otherwise
 * only numeric addresses and "localhost" resolve, so a guest cannot probe the host's DNS.
 *
 * Datagram sockets live in netdgram.ts; the operations below dispatch to it for them.
 *
 * Handles are private to one NetServer (one per guest application), so an application can never
 * name another's sockets.
 */
import { lookup } from "node:dns/promises";
import { BlockList, createServer, isIP, type Server, type Socket, connect as tcpConnect } from "node:net";
import { UdpState } from "./netdgram.js";
import {
  type Family,
  LOOPBACK,
  type NetOp,
  type NetOps,
  type NetReq,
  type NetRequest,
  type NetRes,
  type NetResponse,
  type NetServerOptions,
  SE,
  SO,
  type SockAddr,
} from "./netops.js";
import { E } from "./wasi/constants.js";

// The API lives in netops.ts; importers of this module keep finding it here.
export * from "./netops.js";

class NetError extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}
const fail = (errno: number): never => {
  throw new NetError(errno);
};

/** Bytes buffered from a peer before the socket is paused (flow control towards the peer). */
const RECV_HIGH = 256 * 1024;
/** Bytes queued for sending beyond which send answers EAGAIN. */
const SEND_HIGH = 256 * 1024;

interface Sock {
  family: Family;
  bound?: { address: string; port: number };
  opts: Map<number, number>;
  server?: Server;
  /** Accepted connections not yet taken by accept. */
  backlog: Socket[];
  conn?: Socket;
  connecting: boolean;
  connected: boolean;
  /** Pending SO_ERROR. */
  error: number;
  recvBuf: Buffer[];
  recvBytes: number;
  eof: boolean;
  rdShut: boolean;
  wrShut: boolean;
  /** Set for a datagram socket, which uses none of the TCP fields above but `opts`. */
  udp?: UdpState;
}

const NODE_ERRNO: Record<string, number> = {
  ECONNREFUSED: SE.CONNREFUSED,
  ECONNRESET: SE.CONNRESET,
  ECONNABORTED: SE.CONNABORTED,
  EADDRINUSE: SE.ADDRINUSE,
  EADDRNOTAVAIL: SE.ADDRNOTAVAIL,
  EHOSTUNREACH: SE.HOSTUNREACH,
  ENETUNREACH: SE.NETUNREACH,
  ETIMEDOUT: SE.TIMEDOUT,
  EPIPE: E.PIPE,
  EACCES: E.ACCES,
  EPERM: E.PERM,
  EMSGSIZE: SE.MSGSIZE,
  EINVAL: E.INVAL,
};
function netErrno(e: unknown): number {
  const code =
    typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : "";
  return NODE_ERRNO[code] ?? E.IO;
}

export class NetServer {
  private readonly allowed = new BlockList();
  private readonly loopback = new BlockList();
  private readonly resolveNames: boolean;
  private readonly socks = new Map<number, Sock>();
  private nextHandle = 1;
  /** Pending polls: each re-checks readiness when any socket changes. */
  private readonly waiters = new Set<() => void>();

  constructor(opts: NetServerOptions = {}) {
    for (const cidr of opts.allowed ?? LOOPBACK) {
      const [addr, bits] = cidr.split("/");
      const fam = isIP(addr ?? "");
      if (fam === 0) throw new Error(`not an address prefix: ${cidr}`);
      this.allowed.addSubnet(addr!, Number(bits ?? (fam === 4 ? 32 : 128)), fam === 4 ? "ipv4" : "ipv6");
    }
    this.loopback.addSubnet("127.0.0.0", 8, "ipv4");
    this.loopback.addAddress("::1", "ipv6");
    const beyondLoopback = (opts.allowed ?? LOOPBACK).some((c) => {
      const a = c.split("/")[0]!;
      return !this.loopback.check(a, isIP(a) === 4 ? "ipv4" : "ipv6");
    });
    this.resolveNames = opts.resolveNames ?? beyondLoopback;
  }

  /** Whether the policy lets guests use `address`. */
  allows(address: string): boolean {
    const fam = isIP(address);
    return fam !== 0 && this.allowed.check(address, fam === 4 ? "ipv4" : "ipv6");
  }

  /** The channel entry point. */
  handle(req: NetRequest): NetResponse | Promise<NetResponse> {
    return this.call(req as NetReq<NetOp>);
  }

  call<K extends NetOp>(req: NetReq<K>): NetRes<K> | Promise<NetRes<K>> {
    const wrapErr = (e: unknown): NetRes<K> => ({
      ok: false,
      errno: e instanceof NetError ? e.errno : netErrno(e),
    });
    try {
      const fn = this.ops[req.op] as (r: NetReq<K>) => NetOps[K]["res"] | Promise<NetOps[K]["res"]>;
      const r = fn(req);
      if (r instanceof Promise) return r.then((x): NetRes<K> => ({ ok: true, ...x }), wrapErr);
      return { ok: true, ...r };
    } catch (e) {
      return wrapErr(e);
    }
  }

  /** Closes every socket and server (end of a run). */
  closeAll(): void {
    for (const h of [...this.socks.keys()]) this.ops.close({ op: "close", handle: h });
    for (const w of [...this.waiters]) w();
  }

  private kick = () => {
    for (const w of [...this.waiters]) w();
  };

  private get(handle: number): Sock {
    return this.socks.get(handle) ?? fail(E.BADF);
  }
  private add(s: Sock): number {
    const h = this.nextHandle++;
    this.socks.set(h, s);
    return h;
  }
  private fresh(family: Family): Sock {
    return {
      family,
      opts: new Map(),
      backlog: [],
      connecting: false,
      connected: false,
      error: 0,
      recvBuf: [],
      recvBytes: 0,
      eof: false,
      rdShut: false,
      wrShut: false,
    };
  }
  private checkAddress(s: Sock, address: string): void {
    const fam = isIP(address);
    if (fam !== s.family) fail(fam === 0 ? E.INVAL : SE.AFNOSUPPORT);
    if (!this.allows(address)) fail(E.ACCES);
  }

  /** Wires a connected node socket into `s`: data is buffered until the guest receives it. */
  private attach(s: Sock, c: Socket): void {
    s.conn = c;
    c.on("data", (d: Buffer) => {
      if (s.rdShut) return;
      s.recvBuf.push(d);
      s.recvBytes += d.length;
      if (s.recvBytes > RECV_HIGH) c.pause();
      this.kick();
    });
    c.on("end", () => {
      s.eof = true;
      this.kick();
    });
    c.on("error", (e) => {
      s.error = netErrno(e);
      s.connecting = false;
      s.eof = true;
      this.kick();
    });
    c.on("drain", this.kick);
    c.on("close", this.kick);
  }

  private isLoopback(address: string): boolean {
    return this.loopback.check(address, isIP(address) === 4 ? "ipv4" : "ipv6");
  }
  private udp(s: Sock): UdpState {
    return s.udp ?? fail(E.INVAL);
  }

  private readable(s: Sock): boolean {
    if (s.udp) return s.udp.readable();
    if (s.server) return s.backlog.length > 0 || s.error !== 0;
    return s.recvBytes > 0 || s.eof || s.rdShut || s.error !== 0;
  }
  private writable(s: Sock): boolean {
    if (s.udp) return s.udp.writable();
    if (s.error !== 0) return true;
    if (!s.conn || s.connecting) return false;
    return s.wrShut || s.conn.writableLength < SEND_HIGH;
  }

  private readonly ops: {
    [K in NetOp]: (r: NetReq<K>) => NetOps[K]["res"] | Promise<NetOps[K]["res"]>;
  } = {
    open: (r) => {
      if (r.family !== 4 && r.family !== 6) fail(SE.AFNOSUPPORT);
      const s = this.fresh(r.family);
      if (!r.stream) s.udp = new UdpState(r.family, (a) => this.allows(a), this.kick, netErrno, fail);
      return { handle: this.add(s) };
    },
    bind: (r) => {
      const s = this.get(r.handle);
      if (s.bound || s.conn || s.server) fail(E.INVAL);
      this.checkAddress(s, r.address);
      if (!Number.isInteger(r.port) || r.port < 0 || r.port > 65535) fail(E.INVAL);
      if (s.udp) {
        if (s.udp.bound) fail(E.INVAL);
        const reuse = (s.opts.get(SO.REUSEADDR) ?? 0) !== 0;
        return s.udp.bind(r.address, r.port, reuse).then(() => ({}));
      }
      s.bound = { address: r.address, port: r.port };
      return {};
    },
    listen: (r) => {
      const s = this.get(r.handle);
      if (s.conn || s.udp) fail(s.udp ? SE.NOTSUP : E.INVAL);
      if (s.server) return {};
      const at = s.bound ?? { address: s.family === 4 ? "127.0.0.1" : "::1", port: 0 };
      const server = createServer({ allowHalfOpen: true });
      const pending = new Map<Socket, Sock>();
      this.pendingAccept.set(s, pending);
      server.on("connection", (c) => {
        s.backlog.push(c);
        // Buffer from the start: the guest may accept late; data must not be lost meanwhile.
        const early = this.fresh(s.family);
        early.connected = true;
        this.attach(early, c);
        pending.set(c, early);
        this.kick();
      });
      return new Promise((resolve, reject) => {
        server.once("error", (e) => reject(new NetError(netErrno(e))));
        server.listen(
          { host: at.address, port: at.port, backlog: Math.max(1, r.backlog), exclusive: true },
          () => {
            s.server = server;
            server.removeAllListeners("error");
            server.on("error", (e) => {
              s.error = netErrno(e);
              this.kick();
            });
            resolve({});
          },
        );
      });
    },
    accept: (r) => {
      const s = this.get(r.handle);
      if (!s.server) fail(s.udp ? SE.NOTSUP : E.INVAL);
      const c = s.backlog.shift() ?? fail(E.AGAIN);
      const sock = this.pendingAccept.get(s)!.get(c)!;
      this.pendingAccept.get(s)!.delete(c);
      const peer: SockAddr = {
        family: s.family,
        address: c.remoteAddress ?? "",
        port: c.remotePort ?? 0,
      };
      return { handle: this.add(sock), peer };
    },
    connect: (r) => {
      const s = this.get(r.handle);
      if (s.server) fail(E.INVAL);
      if (s.udp) {
        // A UDP connect only sets the default peer (and the source filter); it may be repeated.
        this.checkAddress(s, r.address);
        if (!Number.isInteger(r.port) || r.port <= 0 || r.port > 65535) fail(E.INVAL);
        const u = s.udp;
        const peer: SockAddr = { family: s.family, address: r.address, port: r.port };
        return u.ensureBound(this.isLoopback(r.address)).then(() => {
          u.connectTo(peer);
          return {};
        });
      }
      if (s.connected) fail(SE.ISCONN);
      if (s.connecting) fail(SE.ALREADY);
      this.checkAddress(s, r.address);
      if (!Number.isInteger(r.port) || r.port <= 0 || r.port > 65535) fail(E.INVAL);
      s.connecting = true;
      const c = tcpConnect({
        host: r.address,
        port: r.port,
        allowHalfOpen: true,
        ...(s.bound ? { localAddress: s.bound.address, localPort: s.bound.port } : {}),
      });
      c.once("connect", () => {
        s.connecting = false;
        s.connected = true;
        this.kick();
      });
      this.attach(s, c);
      return {};
    },
    status: (r) => {
      const s = this.get(r.handle);
      if (s.udp) return { connected: s.udp.peer !== undefined, pending: false, error: 0 };
      const error = s.error;
      s.error = 0;
      return { connected: s.connected, pending: s.connecting, error };
    },
    recv: (r) => {
      const s = this.get(r.handle);
      if (s.udp) return { data: s.udp.receive(r.len, r.peek).data };
      const c = s.conn ?? fail(SE.NOTCONN);
      if (s.recvBytes === 0) {
        if (s.rdShut || s.eof) {
          if (s.error !== 0 && s.error !== E.PIPE) {
            const err = s.error;
            s.error = 0;
            fail(err);
          }
          return { data: new Uint8Array(0) };
        }
        fail(E.AGAIN);
      }
      const all = s.recvBuf.length === 1 ? s.recvBuf[0]! : Buffer.concat(s.recvBuf);
      const n = Math.min(r.len, all.length);
      const data = new Uint8Array(all.subarray(0, n));
      if (!r.peek) {
        const rest = all.subarray(n);
        s.recvBuf = rest.length > 0 ? [rest] : [];
        s.recvBytes = rest.length;
        if (s.recvBytes <= RECV_HIGH && c.isPaused()) c.resume();
      } else {
        s.recvBuf = [all];
      }
      return { data };
    },
    send: (r) => {
      const s = this.get(r.handle);
      if (s.udp) return this.ops.sendto({ op: "sendto", handle: r.handle, data: r.data });
      if (s.error !== 0) {
        const err = s.error;
        s.error = 0;
        fail(err);
      }
      if (!s.conn || s.connecting) fail(SE.NOTCONN);
      if (s.wrShut || s.conn!.writableEnded || s.conn!.destroyed) fail(E.PIPE);
      if (s.conn!.writableLength >= SEND_HIGH) fail(E.AGAIN);
      s.conn!.write(Buffer.from(r.data));
      return { n: r.data.length };
    },
    recvfrom: (r) => this.udp(this.get(r.handle)).receive(r.len, r.peek),
    sendto: (r) => {
      const s = this.get(r.handle);
      const u = this.udp(s);
      if (r.to) {
        this.checkAddress(s, r.to.address);
        if (!Number.isInteger(r.to.port) || r.to.port <= 0 || r.to.port > 65535) fail(E.INVAL);
      }
      const to = r.to;
      if (u.sock) return { n: u.send(r.data, to) };
      const dest = to ?? u.peer ?? fail(SE.DESTADDRREQ);
      return u.ensureBound(this.isLoopback(dest.address)).then(() => ({ n: u.send(r.data, to) }));
    },
    shutdown: (r) => {
      const s = this.get(r.handle);
      if (s.udp) {
        if (!s.udp.peer) fail(SE.NOTCONN);
        if (r.how & ~3 || r.how === 0) fail(E.INVAL);
        if (r.how & 1) s.udp.rdShut = true;
        if (r.how & 2) s.udp.wrShut = true;
        this.kick();
        return {};
      }
      if (!s.conn || s.connecting) fail(SE.NOTCONN);
      if (r.how & ~3 || r.how === 0) fail(E.INVAL);
      if (r.how & 1) {
        s.rdShut = true;
        s.recvBuf = [];
        s.recvBytes = 0;
        s.conn!.resume();
      }
      if (r.how & 2 && !s.wrShut) {
        s.wrShut = true;
        s.conn!.end();
      }
      this.kick();
      return {};
    },
    close: (r) => {
      const s = this.get(r.handle);
      this.socks.delete(r.handle);
      s.udp?.close();
      if (s.server) {
        s.server.close();
        for (const c of s.backlog) c.destroy();
        s.backlog = [];
      }
      // Queued data still goes out; then the connection is torn down.
      if (s.conn && !s.conn.destroyed) {
        if (s.wrShut) s.conn.destroySoon();
        else s.conn.end(() => s.conn?.destroy());
      }
      this.kick();
      return {};
    },
    localaddr: (r) => {
      const s = this.get(r.handle);
      if (s.udp) return s.udp.local();
      const a = s.server ? s.server.address() : s.conn?.address();
      if (a && typeof a === "object" && "port" in a && typeof a.port === "number" && "address" in a) {
        return { family: s.family, address: String(a.address), port: a.port };
      }
      if (s.bound) return { family: s.family, ...s.bound };
      return { family: s.family, address: s.family === 4 ? "0.0.0.0" : "::", port: 0 };
    },
    peeraddr: (r) => {
      const s = this.get(r.handle);
      if (s.udp) return s.udp.peer ?? fail(SE.NOTCONN);
      if (!s.conn || !s.connected || s.conn.remoteAddress === undefined) return fail(SE.NOTCONN);
      return { family: s.family, address: s.conn.remoteAddress, port: s.conn.remotePort ?? 0 };
    },
    setopt: (r) => {
      const s = this.get(r.handle);
      switch (r.name) {
        case SO.KEEPALIVE:
          s.conn?.setKeepAlive(r.value !== 0);
          break;
        case SO.REUSEADDR:
        case SO.SNDBUF:
        case SO.RCVBUF:
        case SO.LINGER:
        case SO.RCVTIMEO:
        case SO.SNDTIMEO:
        case SO.BROADCAST:
          // Recorded and reported back; node:net manages buffers and address reuse itself.
          break;
        default:
          fail(SE.NOPROTOOPT);
      }
      s.opts.set(r.name, r.value);
      return {};
    },
    getopt: (r) => {
      const s = this.get(r.handle);
      switch (r.name) {
        case SO.TYPE:
          return { value: s.udp ? 1 : 2 }; // SOCK_DGRAM / SOCK_STREAM in WasmEdge's numbering
        case SO.ERROR: {
          const u = s.udp ?? s;
          const v = u.error;
          u.error = 0;
          return { value: v };
        }
        case SO.ACCEPTCONN:
          return { value: s.server ? 1 : 0 };
        case SO.SNDBUF:
        case SO.RCVBUF:
          return { value: s.opts.get(r.name) ?? RECV_HIGH };
        default:
          return { value: s.opts.get(r.name) ?? 0 };
      }
    },
    getaddrinfo: (r) => {
      const port = r.service === "" ? 0 : /^\d+$/.test(r.service) ? Number(r.service) : -1;
      if (port < 0 || port > 65535) fail(E.INVAL);
      let cands: SockAddr[];
      if (r.node === "") {
        cands = r.passive
          ? [
              { family: 4, address: "0.0.0.0", port },
              { family: 6, address: "::", port },
            ]
          : [
              { family: 4, address: "127.0.0.1", port },
              { family: 6, address: "::1", port },
            ];
      } else if (r.node === "localhost") {
        cands = [
          { family: 4, address: "127.0.0.1", port },
          { family: 6, address: "::1", port },
        ];
      } else {
        const fam = isIP(r.node);
        if (fam === 0) {
          // Loopback-only policy: no resolver at all; names other than localhost are unknown.
          if (!this.resolveNames) fail(SE.AINONAME);
          return lookup(r.node, { all: true, family: r.family }).then(
            (found) => ({
              addrs: found.map(
                (a): SockAddr => ({ family: a.family === 6 ? 6 : 4, address: a.address, port }),
              ),
            }),
            () => fail(SE.AINONAME),
          );
        }
        cands = [{ family: fam as Family, address: r.node, port }];
      }
      return { addrs: cands.filter((a) => r.family === 0 || a.family === r.family) };
    },
    poll: (r) => {
      const check = () => {
        const readable = r.reads.filter((h) => {
          const s = this.socks.get(h);
          return !s || this.readable(s);
        });
        const writable = r.writes.filter((h) => {
          const s = this.socks.get(h);
          return !s || this.writable(s);
        });
        return readable.length + writable.length > 0 ? { readable, writable } : null;
      };
      const now = check();
      if (now || r.timeoutMs <= 0) return now ?? { readable: [], writable: [] };
      return new Promise((resolve) => {
        const done = (v: { readable: number[]; writable: number[] }) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(v);
        };
        const waiter = () => {
          const v = check();
          if (v) done(v);
        };
        const timer = setTimeout(() => done({ readable: [], writable: [] }), r.timeoutMs);
        this.waiters.add(waiter);
      });
    },
  };

  /** Per listening socket: its accepted node sockets' state, buffering before accept. */
  private readonly pendingAccept = new Map<Sock, Map<Socket, Sock>>();
}
