/**
 * The file-server PD of a WasmEdge runtime PD (runtime-pd.ts): a kernel thread whose code is this
 * native libsel4 program (it runs in the main thread, WasmPlatform.native). It is the only code
 * that touches the host file system for the runtime's applications: it owns one FileServer
 * (src/wasmedge/fileserver.ts) per application session, over the preopens the system description
 * gives the runtime PD, and serves their requests over seL4 IPC on its endpoint.
 *
 * Its CSpace (built by buildFileServerPD): slot 1 its endpoint, slot 4 its Reply object, nothing
 * else. The runtime PD holds one badged (Write | GrantReply) copy of that endpoint and nothing
 * else of the file server.
 *
 * The protocol (one client, identified by the badge; every message is a Call answered by a reply):
 *   label FS_REQ_PART / FS_REQ   MR0 = bytes in the shared buffer, MR1 = session. A request is the
 *                                node:v8 serialization of an FsRequest; a request longer than the
 *                                shared buffer comes as FS_REQ_PART chunks (each answered FS_ACK)
 *                                and a last FS_REQ chunk.
 *   label FS_MORE                MR1 = session: the next chunk of a long response.
 *   label FS_CLOSE               MR1 = session: the application ended; close its host fds.
 * Replies: label FS_DONE (MR0 = bytes of the last response chunk in the shared buffer),
 *   FS_PART (a chunk, more to fetch with FS_MORE), FS_ACK, or FS_FAIL (MR0 = bytes of a UTF-8
 *   message in the shared buffer: a malformed request, never a file-system error, which travels
 *   as an FsResponse with its errno).
 * Larger payloads travel in a shared memory region (SHM_PAGES frames the loader maps into both
 * PDs' VSpaces at SHM_VADDR; the kernel enforces who may map it). As for every shared region
 * (DESIGN.md decision 5) the bytes themselves live in one host buffer both native programs see,
 * and are only read or written between a Call and its reply, when ownership is clear.
 */
import { deserialize, serialize } from "node:v8";
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
import { ObjectType, PAGE_BITS } from "../kernel/types.js";
import { startThread } from "../pd/alloc.js";
import {
  type Sel4Gen,
  seL4_AllRights,
  seL4_CanGrantReply,
  seL4_CanRead,
  seL4_CanWrite,
  seL4_CapInitThreadASIDPool,
  seL4_CapInitThreadCNode,
  seL4_GetMR,
  seL4_MessageInfo_get_label,
  seL4_MessageInfo_new,
  seL4_Recv,
  seL4_ReplyRecv,
  seL4_SetMR,
} from "../pd/libsel4.js";
import { seL4_ARM_ASIDPool_Assign, seL4_CNode_Mint } from "../pd/libsel4-invocations.js";
import type { ThreadContext } from "../pd/machine.js";
import {
  check,
  cnodeCapData,
  INPUT_CAP,
  type LoadedPD,
  type LoadedSystem,
  PD_CNODE_BITS,
  REPLY_CAP,
} from "../system/loader.js";
import { FileServer, type FsRequest } from "./fileserver.js";
import { configureRuntimeThread, shareBuffer } from "./runtime-thread.js";
import type { Preopen } from "./types.js";

export const FS_REQ = 1;
export const FS_REQ_PART = 2;
export const FS_MORE = 3;
export const FS_CLOSE = 4;
export const FS_DONE = 10;
export const FS_PART = 11;
export const FS_ACK = 12;
export const FS_FAIL = 13;

/** Pages of the shared buffer: 64 KiB, the size of the app channel's blocks (service.ts). */
export const SHM_PAGES = 16;
export const SHM_BYTES = SHM_PAGES << PAGE_BITS;
/** Where the shared buffer is mapped in both PDs (above what a wasm32 PD addresses). */
export const SHM_VADDR = 0x2_0000_0000;

/** What the file-server PD has served, for tests and status displays. */
export interface FileServerStats {
  /** IPC messages received (every Call, chunks included). */
  messages: number;
  /** Complete FsRequests handled. */
  requests: number;
  /** Of those, how many of each operation ("open", "read", ...). */
  ops: Record<string, number>;
}

export interface FileServerConfig {
  preopens: Preopen[];
  /** The only badge accepted (the runtime PD's endpoint cap). */
  clientBadge: number;
  shm: Uint8Array;
  stats: FileServerStats;
}

/** The file-server PD's program (see the protocol at the top of this file). */
export function* fileServerPD(u: ThreadContext, cfg: FileServerConfig): Sel4Gen<void> {
  const sessions = new Map<number, FileServer>();
  const parts: Uint8Array[] = [];
  let pending: Uint8Array | null = null;
  let sent = 0;
  const shm = cfg.shm;

  /** Put the next chunk of `pending` in the shared buffer: the reply's label and length. */
  const nextChunk = (): [number, number] => {
    const out = pending!;
    const n = Math.min(SHM_BYTES, out.length - sent);
    shm.set(out.subarray(sent, sent + n));
    sent += n;
    if (sent < out.length) return [FS_PART, n];
    pending = null;
    return [FS_DONE, n];
  };
  const failure = (msg: string): [number, number] => {
    const b = new TextEncoder().encode(msg).subarray(0, SHM_BYTES);
    shm.set(b);
    return [FS_FAIL, b.length];
  };

  let r = yield* seL4_Recv(u, INPUT_CAP, REPLY_CAP);
  for (;;) {
    cfg.stats.messages++;
    const label = seL4_MessageInfo_get_label(r.info);
    const len = Math.min(seL4_GetMR(u, 0), SHM_BYTES);
    const session = seL4_GetMR(u, 1);
    let answer: [number, number];
    if (r.sender !== cfg.clientBadge) answer = failure(`unknown client badge ${r.sender}`);
    else if (label === FS_REQ_PART) {
      parts.push(shm.slice(0, len));
      answer = [FS_ACK, 0];
    } else if (label === FS_REQ) {
      parts.push(shm.slice(0, len));
      const msg = Buffer.concat(parts);
      parts.length = 0;
      let fs = sessions.get(session);
      try {
        if (fs === undefined) {
          fs = new FileServer(cfg.preopens);
          sessions.set(session, fs);
        }
        const req = deserialize(msg) as FsRequest;
        const res = fs.handle(req);
        cfg.stats.requests++;
        cfg.stats.ops[req.op] = (cfg.stats.ops[req.op] ?? 0) + 1;
        pending = serialize(res);
        sent = 0;
        answer = nextChunk();
      } catch (e) {
        answer = failure(e instanceof Error ? e.message : String(e));
      }
    } else if (label === FS_MORE && pending !== null) answer = nextChunk();
    else if (label === FS_CLOSE) {
      sessions.get(session)?.closeAll();
      sessions.delete(session);
      answer = [FS_ACK, 0];
    } else answer = failure(`unexpected message label ${label}`);
    seL4_SetMR(u, 0, answer[1]);
    r = yield* seL4_ReplyRecv(u, INPUT_CAP, seL4_MessageInfo_new(answer[0], 0, 0, 1), REPLY_CAP);
  }
}

/** What buildFileServerPD made: the thread, and the slot of the runtime PD's endpoint cap. */
export interface BuiltFileServer {
  tcb: TCB;
  tcbCap: number;
}

/**
 * Builds the file-server PD of runtime PD `rt` with syscalls from the root task (after
 * buildSystem, with its allocator): endpoint, Reply, CNode, VSpace, IPC buffer, scheduling
 * context (the runtime's budget and period, one priority above it, on its core), the shared
 * buffer mapped into both VSpaces, and the badged endpoint cap in the runtime PD's slot `fsSlot`.
 * The thread is started at entry 0, which no Wasm program owns: its code is fileServerPD,
 * registered with WasmPlatform.native.
 */
export function* buildFileServerPD(
  u: ThreadContext,
  k: Kernel,
  loaded: LoadedSystem,
  rt: LoadedPD,
  fsSlot: number,
  badge: number,
): Sel4Gen<BuiltFileServer> {
  const a = loaded.alloc;
  const name = `${rt.pd.name}.fs`;
  const ep = yield* a.alloc(u, ObjectType.Endpoint);
  const reply = yield* a.alloc(u, ObjectType.Reply);
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
  const give = function* (dstCNode: number, slot: number, src: number, rights: number, b: number) {
    check(
      `placing a capability in slot ${slot}`,
      name,
      yield* seL4_CNode_Mint(u, dstCNode, slot, 64, seL4_CapInitThreadCNode, src, 64, rights, b),
    );
  };
  // Least authority: the file server only receives on its endpoint and replies with data, never
  // with capabilities (a Reply cap with Grant would let its caps flow to its client: capvisor
  // verify reported exactly that).
  yield* give(cnode, INPUT_CAP, ep, seL4_CanRead, 0);
  yield* give(cnode, REPLY_CAP, reply, seL4_CanRead | seL4_CanWrite, 0);
  yield* give(rt.cnodeCap, fsSlot, ep, seL4_CanWrite | seL4_CanGrantReply, badge);

  // The shared buffer: the same frames, mapped into both VSpaces.
  yield* shareBuffer(u, a, rt, { vspace, name }, SHM_VADDR, SHM_PAGES, "the file-server buffer");
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
