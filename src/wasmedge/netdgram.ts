/**
 * Datagram (UDP) sockets for the network server (netserver.ts), on node:dgram.
 *
 * What a guest observes follows Linux UDP, which WasmEdge passes through unchanged:
 * - datagram boundaries are kept: one receive takes one datagram; a buffer shorter than the
 *   datagram gets its head, the rest is dropped and the receive reports it as truncated
 *   (recvmsg's MSG_TRUNC, WasmEdge's __WASI_ROFLAGS_RECV_DATA_TRUNCATED);
 * - a socket that sends or connects before binding is bound implicitly to an ephemeral port
 *   (udp(7) autobind), so sock_getlocaladdr then tells the port;
 * - "connect" only records the default peer: send without an address goes there, and datagrams
 *   from any other source are dropped (udp(7): "datagrams from other sources are discarded");
 * - when the receive queue is full further datagrams are dropped, never blocking the sender.
 *
 * Policy is the same as TCP's: the caller checks bind and destination addresses against the
 * allowed set; this file also drops datagrams whose source the policy does not allow, as a
 * firewall would, so an implicitly wildcard-bound socket never hears from outside the set.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import type { Family, SockAddr } from "./netops.js";
import { E } from "./wasi/constants.js";

/** WASI errno values this file raises that constants.ts does not name. */
const DESTADDRREQ = 17;
const MSGSIZE = 35;

/** Largest UDP payloads (65535 minus the IPv4 + UDP headers; IPv6 has no header in its limit). */
const MAX_PAYLOAD = { 4: 65507, 6: 65527 } as const;
/** Bytes of queued datagrams beyond which arriving ones are dropped (the socket's rcvbuf). */
export const UDP_RECV_HIGH = 256 * 1024;
/** Bytes handed to node but not yet sent beyond which send answers EAGAIN. */
export const UDP_SEND_HIGH = 256 * 1024;

interface Datagram {
  data: Buffer;
  from: SockAddr;
}

export class UdpState {
  sock?: UdpSocket;
  /** A bind in flight (explicit or implicit); later operations wait for it. */
  binding?: Promise<void>;
  peer?: SockAddr;
  queue: Datagram[] = [];
  queuedBytes = 0;
  sendingBytes = 0;
  /** Pending asynchronous error (a failed send), reported once by the next call, as SO_ERROR. */
  error = 0;
  rdShut = false;
  wrShut = false;
  closed = false;

  constructor(
    readonly family: Family,
    /** Whether the policy lets a datagram from this source in. */
    private readonly admits: (address: string) => boolean,
    private readonly changed: () => void,
    private readonly errnoOf: (e: unknown) => number,
    /** Raises a WASI errno as the network server's failure response. */
    private readonly fail: (errno: number) => never,
  ) {}

  get bound(): boolean {
    return this.sock !== undefined || this.binding !== undefined;
  }

  /** Binds the node socket at address:port (port 0: the system picks one). */
  bind(address: string, port: number, reuseAddr: boolean): Promise<void> {
    // ipv6Only keeps an IPv6 socket to its family (no v4-mapped peers), as checkAddress expects;
    // libuv rejects the flag on an IPv4 socket (EINVAL), so it is given only there.
    const sock =
      this.family === 4
        ? createSocket({ type: "udp4", reuseAddr })
        : createSocket({ type: "udp6", reuseAddr, ipv6Only: true });
    this.binding = new Promise<void>((resolve, reject) => {
      const failed = (e: unknown) => {
        this.binding = undefined;
        sock.close();
        reject(e);
      };
      sock.once("error", failed);
      sock.bind({ address, port, exclusive: true }, () => {
        sock.off("error", failed);
        this.binding = undefined;
        if (this.closed) {
          sock.close();
          return;
        }
        this.sock = sock;
        sock.on("message", (msg, rinfo) => this.arrive(msg, rinfo.address, rinfo.port));
        sock.on("error", (e) => {
          this.error = this.errnoOf(e);
          this.changed();
        });
        resolve();
      });
    });
    return this.binding;
  }

  /** Binds implicitly before a send or connect (udp(7) autobind): loopback when talking to it. */
  async ensureBound(towardsLoopback: boolean): Promise<void> {
    if (this.binding) await this.binding;
    if (this.sock) return;
    const any = this.family === 4 ? "0.0.0.0" : "::";
    const lo = this.family === 4 ? "127.0.0.1" : "::1";
    await this.bind(towardsLoopback ? lo : any, 0, false);
  }

  /** Sets the default peer; datagrams already queued from other sources are dropped. */
  connectTo(peer: SockAddr): void {
    this.peer = peer;
    this.queue = this.queue.filter((d) => this.fromPeer(d.from.address, d.from.port));
    this.queuedBytes = this.queue.reduce((n, d) => n + d.data.length, 0);
  }
  private fromPeer(address: string, port: number): boolean {
    return !this.peer || (this.peer.port === port && sameAddress(this.peer.address, address));
  }

  private arrive(msg: Buffer, address: string, port: number): void {
    if (this.rdShut || !this.admits(address)) return;
    if (!this.fromPeer(address, port)) return;
    if (this.queuedBytes + msg.length > UDP_RECV_HIGH) return;
    this.queue.push({ data: msg, from: { family: this.family, address, port } });
    this.queuedBytes += msg.length;
    this.changed();
  }

  /** Takes (or with peek, looks at) the next datagram, cut to `len` bytes. */
  receive(len: number, peek: boolean): { data: Uint8Array; truncated: boolean; from: SockAddr } {
    this.raisePending();
    const d = this.queue[0];
    if (!d) {
      if (this.rdShut) return { data: new Uint8Array(0), truncated: false, from: this.anyAddr() };
      this.fail(E.AGAIN);
    }
    if (!peek) {
      this.queue.shift();
      this.queuedBytes -= d.data.length;
    }
    const n = Math.min(len, d.data.length);
    return { data: new Uint8Array(d.data.subarray(0, n)), truncated: n < d.data.length, from: d.from };
  }

  /** Sends one datagram to `to` (or the connected peer); the caller has checked the policy. */
  send(data: Uint8Array, to: SockAddr | undefined): number {
    this.raisePending();
    if (this.wrShut) this.fail(E.PIPE);
    const dest = to ?? this.peer;
    if (!dest) this.fail(DESTADDRREQ);
    if (data.length > MAX_PAYLOAD[this.family]) this.fail(MSGSIZE);
    if (this.sendingBytes >= UDP_SEND_HIGH) this.fail(E.AGAIN);
    const sock = this.sock ?? this.fail(E.INVAL);
    this.sendingBytes += data.length;
    sock.send(data, dest.port, dest.address, (e: Error | null) => {
      this.sendingBytes -= data.length;
      if (e) this.error = this.errnoOf(e);
      if (this.closed && this.sendingBytes === 0) sock.close();
      this.changed();
    });
    return data.length;
  }

  readable(): boolean {
    return this.queue.length > 0 || this.error !== 0 || this.rdShut;
  }
  writable(): boolean {
    return this.error !== 0 || this.sendingBytes < UDP_SEND_HIGH;
  }

  local(): SockAddr {
    const a = this.sock?.address();
    if (a) return { family: this.family, address: a.address, port: a.port };
    return this.anyAddr();
  }

  close(): void {
    this.closed = true;
    // A datagram the guest has sent must still leave, as sendto(2) has handed it to the kernel
    // before returning; node sends asynchronously (it may still be resolving the address), and
    // closing the handle drops what is not out yet. So the handle closes once its sends are done.
    // Closing it releases the port at once (uv_close on a UDP handle closes its fd).
    if (this.sendingBytes === 0) this.sock?.close();
    this.sock?.removeAllListeners("message");
    this.sock = undefined;
    this.queue = [];
    this.queuedBytes = 0;
  }

  private anyAddr(): SockAddr {
    return { family: this.family, address: this.family === 4 ? "0.0.0.0" : "::", port: 0 };
  }
  private raisePending(): void {
    if (this.error !== 0) {
      const e = this.error;
      this.error = 0;
      this.fail(e);
    }
  }
}

/** Compares two textual addresses of one family (IPv6 may be written compressed or not). */
function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  if (!a.includes(":") || !b.includes(":")) return false;
  return expand6(a) === expand6(b);
}
function expand6(a: string): string {
  const [head, tail] = a.includes("::") ? a.split("::") : [a, undefined];
  const hs = head ? head.split(":") : [];
  const ts = tail ? tail.split(":") : [];
  return [...hs, ...Array<string>(8 - hs.length - ts.length).fill("0"), ...ts]
    .map((x) => Number.parseInt(x, 16).toString(16))
    .join(":");
}
