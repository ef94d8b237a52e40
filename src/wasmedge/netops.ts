/**
 * The network server's request/response API (netserver.ts serves it, wasi/sock.ts calls it
 * through the request channel): plain data only, so that it can cross kernel IPC to the network
 * PD of a runtime PD (netserver-pd.ts) as well as the app channel of `capvisor run`; plus the
 * socket errno and option numbering both sides share.
 */
/** Socket errno values (WASI preview1 numbering) that constants.ts does not name. */
export const SE = {
  ADDRINUSE: 3,
  ADDRNOTAVAIL: 4,
  AFNOSUPPORT: 5,
  ALREADY: 7,
  CONNABORTED: 13,
  DESTADDRREQ: 17,
  CONNREFUSED: 14,
  CONNRESET: 15,
  HOSTUNREACH: 23,
  INPROGRESS: 26,
  ISCONN: 30,
  MSGSIZE: 35,
  NETUNREACH: 40,
  NOPROTOOPT: 50,
  NOTCONN: 53,
  NOTSUP: 58,
  PROTONOSUPPORT: 66,
  TIMEDOUT: 73,
  /** WasmEdge's getaddrinfo errno extensions (EAI_*): unknown name, out of memory. */
  AINONAME: 84,
  AIMEMORY: 82,
} as const;

/** Socket options (WasmEdge's __wasi_sock_opt_so_t numbering, level SOL_SOCKET). */
export const SO = {
  REUSEADDR: 0,
  TYPE: 1,
  ERROR: 2,
  BROADCAST: 4,
  SNDBUF: 5,
  RCVBUF: 6,
  KEEPALIVE: 7,
  LINGER: 9,
  RCVTIMEO: 11,
  SNDTIMEO: 12,
  ACCEPTCONN: 13,
} as const;

export type Family = 4 | 6;
export interface SockAddr {
  family: Family;
  address: string;
  port: number;
}

export interface NetOps {
  /** A new socket: TCP when `stream`, else UDP. */
  open: { req: { family: Family; stream: boolean }; res: { handle: number } };
  bind: { req: { handle: number; address: string; port: number }; res: Record<string, never> };
  listen: { req: { handle: number; backlog: number }; res: Record<string, never> };
  /** EAGAIN when no connection is waiting. */
  accept: { req: { handle: number }; res: { handle: number; peer: SockAddr } };
  /** Starts connecting; the outcome is read with `status` once the handle polls writable. */
  connect: { req: { handle: number; address: string; port: number }; res: Record<string, never> };
  /** Whether a connect finished, and its error (SO_ERROR; reading it clears it, as POSIX). */
  status: { req: { handle: number }; res: { connected: boolean; pending: boolean; error: number } };
  /** EAGAIN when nothing is buffered; an empty `data` means end of stream. */
  recv: { req: { handle: number; len: number; peek: boolean }; res: { data: Uint8Array } };
  /** EAGAIN when the send buffer is full. */
  send: { req: { handle: number; data: Uint8Array }; res: { n: number } };
  /** UDP: takes one datagram, cut to `len` (`truncated` then); EAGAIN when none is queued. */
  recvfrom: {
    req: { handle: number; len: number; peek: boolean };
    res: { data: Uint8Array; truncated: boolean; from: SockAddr };
  };
  /** UDP: sends one datagram to `to`, or to the connected peer when `to` is absent. */
  sendto: { req: { handle: number; data: Uint8Array; to?: SockAddr }; res: { n: number } };
  /** how: 1 = RD, 2 = WR, 3 = both (WASI sdflags). */
  shutdown: { req: { handle: number; how: number }; res: Record<string, never> };
  close: { req: { handle: number }; res: Record<string, never> };
  localaddr: { req: { handle: number }; res: SockAddr };
  peeraddr: { req: { handle: number }; res: SockAddr };
  setopt: { req: { handle: number; name: number; value: number }; res: Record<string, never> };
  getopt: { req: { handle: number; name: number }; res: { value: number } };
  /** Numeric addresses and "localhost"; other names only when the policy reaches beyond loopback. */
  getaddrinfo: {
    req: { node: string; service: string; family: 0 | Family; passive: boolean };
    res: { addrs: SockAddr[] };
  };
  /** Waits up to timeoutMs for one of the handles to be readable / writable. */
  poll: {
    req: { reads: number[]; writes: number[]; timeoutMs: number };
    res: { readable: number[]; writable: number[] };
  };
}
export type NetOp = keyof NetOps;
/** Every operation, for checking a request that arrives off the wire (the typing keeps it complete). */
const NET_OP_SET: Record<NetOp, true> = {
  open: true,
  bind: true,
  listen: true,
  accept: true,
  connect: true,
  status: true,
  recv: true,
  send: true,
  recvfrom: true,
  sendto: true,
  shutdown: true,
  close: true,
  localaddr: true,
  peeraddr: true,
  setopt: true,
  getopt: true,
  getaddrinfo: true,
  poll: true,
};
/** Whether `op` names an operation of the API. */
export function isNetOp(op: unknown): op is NetOp {
  return typeof op === "string" && Object.hasOwn(NET_OP_SET, op);
}
export type NetReq<K extends NetOp> = { op: K } & NetOps[K]["req"];
export type NetRes<K extends NetOp> = ({ ok: true } & NetOps[K]["res"]) | { ok: false; errno: number };
export type NetRequest = { [K in NetOp]: NetReq<K> }[NetOp];
export type NetResponse = { [K in NetOp]: NetRes<K> }[NetOp];

export interface NetServerOptions {
  /** Address prefixes ("127.0.0.0/8", "::1/128") that may be bound to and connected to. */
  allowed?: string[];
  /** Whether host names go to the host's resolver; by default when `allowed` is not loopback only. */
  resolveNames?: boolean;
}
export const LOOPBACK = ["127.0.0.0/8", "::1/128"];
