/**
 * The network PD of a WasmEdge runtime PD (runtime-pd.ts): a kernel thread whose code is this
 * native libsel4 program (it runs in the main thread, WasmPlatform.native). It is the only code
 * that touches the host network for the runtime's applications: it owns one NetServer
 * (netserver.ts) per application session, so that one application can never name another's
 * sockets (each session numbers its handles from 1), and the network policy they are made with.
 * Its domain for `capvisor verify` is `<pd>.net`.
 *
 * Its CSpace (built by buildNetServerPD):
 *   slot INPUT_CAP (1)        its endpoint, receive only (Read);
 *   slot REPLY_CAP (4)        its Reply object, without Grant (its replies carry data, never caps);
 *   slot NETPD_READY (10)     the runtime PD's notification, Write only, badge NET_READY_BADGE;
 *   slot NETPD_IRQ (138)      the IRQHandler of its doorbell, a spare interrupt line bound to its
 *                             own notification (badge NET_IRQ_BADGE), which is bound to its TCB.
 * (Slots 10 and 138 are where Microkit puts a PD's channel 0 and irq 0.) The runtime PD holds one
 * badged (Write | GrantReply) copy of the endpoint, in slot RUNTIME_NET_EP, and nothing else of
 * it; both map the shared buffer (NET_SHM_PAGES frames at NET_SHM_VADDR). As for the file
 * server's buffer (fileserver-pd.ts, DESIGN.md decision 5) the bytes live in one host buffer both
 * native programs see, read and written only between a Call and its reply.
 *
 * The protocol. The runtime PD Calls (manual §4.2.4), one message at a time; the badge (manual
 * §4.2.1) says it is the runtime PD's cap:
 *   label NET_REQ_PART / NET_REQ  MR0 = bytes in the buffer, MR1 = session: a NetRequest
 *                                 (netops.ts) serialized with node:v8, in chunks as the file
 *                                 server's requests (NET_REQ_PART chunks answered NET_ACK).
 *   label NET_MORE                the next chunk of a long answer.
 *   label NET_COLLECT             the results of pending requests that have completed.
 *   label NET_CLOSE               MR1 = session: its application ended; close its sockets.
 * Replies: NET_DONE (MR0 = bytes of the last chunk of the answer) or NET_PART (more to fetch with
 *   NET_MORE); NET_PENDING (MR1 = token): the request completes later; NET_ACK; NET_FAIL (MR0 =
 *   bytes of a UTF-8 message: a malformed request, never a network error, which travels as a
 *   NetResponse with its errno).
 * The answer to NET_COLLECT is the serialized list of NetCompletions: token and NetResponse.
 *
 * Asynchronous operations. Most NetServer operations answer at once (EAGAIN when they would
 * block); a few complete on a host event: poll with a timeout, listen, getaddrinfo through the
 * resolver, a UDP bind, connect or first send (implicit bind). The network PD never waits for them
 * (it would stall every application of the runtime and its file traffic behind one socket): it
 * replies NET_PENDING with a fresh token at once. When the host event arrives (a main-thread
 * callback, outside any thread's code) the result is queued and the doorbell line raised, as a
 * device would (manual §9.3); the kernel signals the network PD's notification, and as it is
 * bound to its TCB the signal is delivered to its Recv on the endpoint (manual §5.3), told from a
 * Call by its badge. The network PD acknowledges the line first (an event from then on raises it
 * again), then signals the runtime PD's notification with NET_READY_BADGE (manual §5.1). The
 * runtime PD, woken in its seL4_Wait with that bit in the badge, Calls NET_COLLECT and resolves
 * the requests the tokens name. An event that completes before the acknowledgement is collected
 * by that NET_COLLECT; the worst case is one collect that finds nothing.
 */
import { deserialize, serialize } from "node:v8";
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
import { ObjectType, PAGE_BITS } from "../kernel/types.js";
import { startThread } from "../pd/alloc.js";
import {
  type Sel4Gen,
  seL4_AllRights,
  seL4_Call,
  seL4_CanGrantReply,
  seL4_CanRead,
  seL4_CanWrite,
  seL4_CapInitThreadASIDPool,
  seL4_CapInitThreadCNode,
  seL4_GetMR,
  type seL4_MessageInfo,
  seL4_MessageInfo_get_label,
  seL4_MessageInfo_new,
  seL4_Recv,
  seL4_ReplyRecv,
  seL4_SetMR,
  seL4_Signal,
  type Word,
} from "../pd/libsel4.js";
import {
  seL4_ARM_ASIDPool_Assign,
  seL4_CNode_Mint,
  seL4_IRQHandler_Ack,
  seL4_TCB_BindNotification,
} from "../pd/libsel4-invocations.js";
import type { ThreadContext } from "../pd/machine.js";
import {
  BASE_IRQ_CAP,
  BASE_OUTPUT_NOTIFICATION_CAP,
  check,
  cnodeCapData,
  giveIrq,
  INPUT_CAP,
  type LoadedPD,
  type LoadedSystem,
  PD_CNODE_BITS,
  REPLY_CAP,
} from "../system/loader.js";
import { isNetOp, type NetRequest, type NetResponse, NetServer, type NetServerOptions } from "./netserver.js";
import { configureRuntimeThread, shareBuffer } from "./runtime-thread.js";

export const NET_REQ = 1;
export const NET_REQ_PART = 2;
export const NET_MORE = 3;
export const NET_CLOSE = 4;
export const NET_COLLECT = 5;
export const NET_DONE = 10;
export const NET_PART = 11;
export const NET_ACK = 12;
export const NET_FAIL = 13;
export const NET_PENDING = 14;

/** Its CSpace: the runtime PD's notification (Microkit's channel 0 slot) and its doorbell (irq 0). */
export const NETPD_READY = BASE_OUTPUT_NOTIFICATION_CAP;
export const NETPD_IRQ = BASE_IRQ_CAP;
/**
 * The badge of its doorbell's signal. Its endpoint's only badge is the runtime PD's index + 1,
 * a small number, so a receive with this badge is the doorbell, never a Call.
 */
export const NET_IRQ_BADGE = 1n << 62n;
/**
 * The bit it signals on the runtime PD's notification. The runtime PD's doorbell uses bit 0 and
 * its cross-VM channel, if any, bit `channel id` (Microkit ids are 0..62): 62 is the one least
 * likely to be shared, and a shared bit costs the runtime PD only a NET_COLLECT that finds nothing.
 */
export const NET_READY_BADGE = 1n << 62n;

/** Pages of the shared buffer (64 KiB, as the file server's). */
export const NET_SHM_PAGES = 16;
export const NET_SHM_BYTES = NET_SHM_PAGES << PAGE_BITS;
/** Where it is mapped in both PDs: 1 MiB above the file server's buffer (fileserver-pd.ts SHM_VADDR). */
export const NET_SHM_VADDR = 0x2_0010_0000;

/** A pending request's outcome: its response, or why the server failed it. */
export type NetCompletion = { token: number; res: NetResponse } | { token: number; err: string };

/** What the network PD has served, for tests and status displays. */
export interface NetServerStats {
  /** IPC messages received (every Call, chunks included). */
  messages: number;
  /** Complete NetRequests handled. */
  requests: number;
  /** Of those, how many of each operation ("open", "poll", ...). */
  ops: Record<string, number>;
  /** Requests answered NET_PENDING (completed on a host event). */
  pending: number;
  /** Completions handed to the runtime PD by NET_COLLECT. */
  collected: number;
  /** Doorbell signals taken. */
  doorbells: number;
  /** Sessions with a NetServer now. */
  sessions: number;
}

export function newNetServerStats(): NetServerStats {
  return { messages: 0, requests: 0, ops: {}, pending: 0, collected: 0, doorbells: 0, sessions: 0 };
}

export interface NetServerPDConfig {
  /** The only badge accepted (the runtime PD's endpoint cap). */
  clientBadge: number;
  shm: Uint8Array;
  stats: NetServerStats;
  /** The network policy each session's NetServer is made with (read when the session starts). */
  policy: NetServerOptions;
  /** Raises its doorbell line (called from a host event's callback). */
  ring: () => void;
}

/** The network PD's program (see the protocol at the top of this file). */
export function* netServerPD(u: ThreadContext, cfg: NetServerPDConfig): Sel4Gen<void> {
  const sessions = new Map<number, NetServer>();
  const completed: NetCompletion[] = [];
  let nextToken = 1;
  const parts: Uint8Array[] = [];
  let out: Uint8Array | null = null;
  let sent = 0;
  const { shm, stats } = cfg;

  /** Put the next chunk of `out` in the shared buffer: the reply's label and length. */
  const nextChunk = (): [number, number] => {
    const o = out!;
    const n = Math.min(NET_SHM_BYTES, o.length - sent);
    shm.set(o.subarray(sent, sent + n));
    sent += n;
    if (sent < o.length) return [NET_PART, n];
    out = null;
    return [NET_DONE, n];
  };
  const answer = (bytes: Uint8Array): [number, number] => {
    out = bytes;
    sent = 0;
    return nextChunk();
  };
  const failure = (msg: string): [number, number] => {
    const b = new TextEncoder().encode(msg).subarray(0, NET_SHM_BYTES);
    shm.set(b);
    return [NET_FAIL, b.length];
  };
  /** Serve one complete request: [label, length, token]. */
  const request = (session: number, msg: Uint8Array): [number, number, number] => {
    const req = deserialize(msg) as NetRequest;
    if (typeof req !== "object" || req === null || !isNetOp(req.op))
      return [...failure(`not a network request: ${JSON.stringify((req as { op?: unknown })?.op)}`), 0];
    let server = sessions.get(session);
    if (server === undefined) {
      server = new NetServer(cfg.policy);
      sessions.set(session, server);
      stats.sessions = sessions.size;
    }
    stats.requests++;
    stats.ops[req.op] = (stats.ops[req.op] ?? 0) + 1;
    const res = server.handle(req);
    if (!(res instanceof Promise)) return [...answer(serialize(res)), 0];
    // Completes on a host event: answered by token, collected after the doorbell.
    const token = nextToken++;
    stats.pending++;
    const complete = (c: NetCompletion) => {
      completed.push(c);
      cfg.ring();
    };
    res.then(
      (r) => complete({ token, res: r }),
      (e: unknown) => complete({ token, err: e instanceof Error ? e.message : String(e) }),
    );
    return [NET_PENDING, 0, token];
  };

  let r = yield* seL4_Recv(u, INPUT_CAP, REPLY_CAP);
  for (;;) {
    if (r.senderBig === NET_IRQ_BADGE) {
      // The doorbell: acknowledge it, then tell the runtime PD (no reply: nobody called).
      stats.doorbells++;
      yield* seL4_IRQHandler_Ack(u, NETPD_IRQ);
      if (completed.length > 0) yield* seL4_Signal(u, NETPD_READY);
      r = yield* seL4_Recv(u, INPUT_CAP, REPLY_CAP);
      continue;
    }
    stats.messages++;
    const label = seL4_MessageInfo_get_label(r.info);
    const len = Math.min(seL4_GetMR(u, 0), NET_SHM_BYTES);
    const session = seL4_GetMR(u, 1);
    let reply: [number, number, number];
    if (r.sender !== cfg.clientBadge) reply = [...failure(`unknown client badge ${r.senderBig}`), 0];
    else if (label === NET_REQ_PART) {
      parts.push(shm.slice(0, len));
      reply = [NET_ACK, 0, 0];
    } else if (label === NET_REQ) {
      parts.push(shm.slice(0, len));
      const msg = Buffer.concat(parts);
      parts.length = 0;
      try {
        reply = request(session, msg);
      } catch (e) {
        reply = [...failure(e instanceof Error ? e.message : String(e)), 0];
      }
    } else if (label === NET_MORE && out !== null) reply = [...nextChunk(), 0];
    else if (label === NET_COLLECT) {
      stats.collected += completed.length;
      reply = [...answer(serialize(completed.splice(0))), 0];
    } else if (label === NET_CLOSE) {
      sessions.get(session)?.closeAll();
      sessions.delete(session);
      stats.sessions = sessions.size;
      reply = [NET_ACK, 0, 0];
    } else reply = [...failure(`unexpected message label ${label}`), 0];
    seL4_SetMR(u, 0, reply[1]);
    seL4_SetMR(u, 1, reply[2]);
    r = yield* seL4_ReplyRecv(u, INPUT_CAP, seL4_MessageInfo_new(reply[0], 0, 0, 2), REPLY_CAP);
  }
}

// ---- the runtime PD's side (it runs these in its own thread) ----

/** Reads a reply of the network PD that carries serialized data, fetching its further chunks. */
function* readAnswer(
  u: ThreadContext,
  slot: Word,
  shm: Uint8Array,
  first: seL4_MessageInfo,
): Sel4Gen<unknown> {
  const chunks: Uint8Array[] = [];
  let info = first;
  for (;;) {
    const label = seL4_MessageInfo_get_label(info);
    const n = Math.min(seL4_GetMR(u, 0), NET_SHM_BYTES);
    if (label !== NET_DONE && label !== NET_PART)
      throw new Error(`network PD: ${new TextDecoder().decode(shm.subarray(0, n))}`);
    chunks.push(shm.slice(0, n));
    if (label === NET_DONE) break;
    info = yield* seL4_Call(u, slot, seL4_MessageInfo_new(NET_MORE, 0, 0, 2));
  }
  return deserialize(Buffer.concat(chunks));
}

/**
 * Sends one serialized NetRequest of `session` to the network PD behind endpoint cap `slot`:
 * its response, or the token of a request that completes later.
 */
export function* netCall(
  u: ThreadContext,
  slot: Word,
  shm: Uint8Array,
  session: number,
  msg: Uint8Array,
): Sel4Gen<{ res: NetResponse } | { token: number }> {
  let off = 0;
  let info: seL4_MessageInfo;
  for (;;) {
    const n = Math.min(NET_SHM_BYTES, msg.length - off);
    shm.set(msg.subarray(off, off + n));
    off += n;
    seL4_SetMR(u, 0, n);
    seL4_SetMR(u, 1, session);
    info = yield* seL4_Call(
      u,
      slot,
      seL4_MessageInfo_new(off < msg.length ? NET_REQ_PART : NET_REQ, 0, 0, 2),
    );
    if (off >= msg.length) break;
    if (seL4_MessageInfo_get_label(info) !== NET_ACK)
      return { res: (yield* readAnswer(u, slot, shm, info)) as NetResponse };
  }
  if (seL4_MessageInfo_get_label(info) === NET_PENDING) return { token: seL4_GetMR(u, 1) };
  return { res: (yield* readAnswer(u, slot, shm, info)) as NetResponse };
}

/** Takes the completions of pending requests from the network PD. */
export function* netCollect(u: ThreadContext, slot: Word, shm: Uint8Array): Sel4Gen<NetCompletion[]> {
  const info = yield* seL4_Call(u, slot, seL4_MessageInfo_new(NET_COLLECT, 0, 0, 0));
  return (yield* readAnswer(u, slot, shm, info)) as NetCompletion[];
}

/** Ends `session`: the network PD closes its sockets. */
export function* netClose(u: ThreadContext, slot: Word, session: number): Sel4Gen<void> {
  seL4_SetMR(u, 1, session);
  yield* seL4_Call(u, slot, seL4_MessageInfo_new(NET_CLOSE, 0, 0, 2));
}

// ---- built by the root task ----

/** What buildNetServerPD made: the thread, and the root-CNode cptr of its TCB. */
export interface BuiltNetServer {
  tcb: TCB;
  tcbCap: number;
}

/**
 * Builds the network PD of runtime PD `rt` with syscalls from the root task (after buildSystem,
 * with its allocator), as buildFileServerPD builds the file server: endpoint, Reply, notification
 * (bound to its TCB), CNode, VSpace, IPC buffer, scheduling context (the runtime's budget and
 * period, one priority above it, on its core), the shared buffer mapped into both VSpaces, its
 * doorbell on interrupt line `line`, the cap to signal the runtime PD, and the badged endpoint cap
 * in the runtime PD's slot `netSlot`. The thread starts at entry 0, which no Wasm program owns:
 * its code is netServerPD, registered with WasmPlatform.native.
 */
export function* buildNetServerPD(
  u: ThreadContext,
  k: Kernel,
  loaded: LoadedSystem,
  rt: LoadedPD,
  netSlot: number,
  badge: number,
  line: number,
): Sel4Gen<BuiltNetServer> {
  const a = loaded.alloc;
  const name = `${rt.pd.name}.net`;
  const ep = yield* a.alloc(u, ObjectType.Endpoint);
  const reply = yield* a.alloc(u, ObjectType.Reply);
  const ntfn = yield* a.alloc(u, ObjectType.Notification);
  const rawCNode = yield* a.alloc(u, ObjectType.CapTable, PD_CNODE_BITS);
  const cnode = a.slot();
  check(
    "guarding its CNode",
    name,
    yield* seL4_CNode_Mint(
      u,
      seL4_CapInitThreadCNode,
      cnode,
      64,
      seL4_CapInitThreadCNode,
      rawCNode,
      64,
      seL4_AllRights,
      cnodeCapData(0, 64 - PD_CNODE_BITS),
    ),
  );
  const vspace = yield* a.alloc(u, ObjectType.VSpace);
  check("ASIDPool_Assign", name, yield* seL4_ARM_ASIDPool_Assign(u, seL4_CapInitThreadASIDPool, vspace));
  const tcb = yield* a.alloc(u, ObjectType.TCB);
  const sc = yield* a.alloc(u, ObjectType.SchedContext);
  const give = function* (dstCNode: number, slot: number, src: number, rights: number, b: Word) {
    check(
      `placing a capability in slot ${slot}`,
      name,
      yield* seL4_CNode_Mint(u, dstCNode, slot, 64, seL4_CapInitThreadCNode, src, 64, rights, b),
    );
  };
  // Least authority, as the file server: receive on its endpoint, reply with data only (no Grant
  // on the Reply cap, else its caps could flow to its caller), and signal the runtime PD.
  yield* give(cnode, INPUT_CAP, ep, seL4_CanRead, 0);
  yield* give(cnode, REPLY_CAP, reply, seL4_CanRead | seL4_CanWrite, 0);
  yield* give(cnode, NETPD_READY, rt.ntfnCap, seL4_CanWrite, NET_READY_BADGE);
  yield* give(rt.cnodeCap, netSlot, ep, seL4_CanWrite | seL4_CanGrantReply, badge);
  // Its doorbell signals its own notification, which it never names: bound to its TCB, the
  // signal reaches it in its Recv on the endpoint (manual §5.3).
  yield* giveIrq(u, a, name, line, ntfn, NET_IRQ_BADGE, cnode, NETPD_IRQ);
  check("TCB_BindNotification", name, yield* seL4_TCB_BindNotification(u, tcb, ntfn));

  // The shared buffer: the same frames, mapped into both VSpaces.
  yield* shareBuffer(u, a, rt, { vspace, name }, NET_SHM_VADDR, NET_SHM_PAGES, "the network buffer");
  yield* configureRuntimeThread(
    u,
    a,
    rt,
    name,
    { tcb, sc, cnode, vspace },
    Math.min(254, rt.pd.priority + 1),
  );
  check("starting it", name, yield* startThread(u, tcb, 0));
  return { tcb: k.rootCNode.slot(tcb).cap.obj as TCB, tcbCap: tcb };
}
