/**
 * The default system until system descriptions arrive (issue 3): a root task, written against
 * libsel4, that builds from Untyped memory, with system calls only,
 *   - "server": a passive server (no scheduling context of its own) answering protected calls,
 *   - "client": calls the server and prints the answers,
 *   - "ticker": handles a periodic device interrupt through a notification and IRQHandler_Ack,
 *   - "spinner": a low-priority thread that computes whenever nothing else runs,
 * then lets the system run for a while. Each thread prints with seL4_DebugPutChar; the caller
 * decides how to show the lines.
 */
import { bootKernel } from "../kernel/core/boot.js";
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
import { ObjectType, ThreadState } from "../kernel/types.js";
import { Allocator, createThread } from "../pd/alloc.js";
import {
  seL4_Call,
  seL4_CapInitThreadCNode,
  seL4_CapInitThreadTCB,
  seL4_CapIRQControl,
  seL4_DebugPutString,
  seL4_GetMR,
  seL4_MessageInfo_new,
  seL4_Recv,
  seL4_ReplyRecv,
  seL4_SetMR,
  seL4_Wait,
} from "../pd/libsel4.js";
import {
  seL4_IRQControl_Get,
  seL4_IRQHandler_Ack,
  seL4_IRQHandler_SetNotification,
  seL4_SchedContext_Unbind,
  seL4_TCB_SetPriority,
} from "../pd/libsel4-invocations.js";
import { Machine, type UserThread } from "../pd/machine.js";

export interface DemoOptions {
  cores?: number;
  /** Virtual time to run, in milliseconds (default 20). */
  ms?: number;
  /** Called with each complete line a thread prints. */
  onLine?: (thread: string, line: string) => void;
}

export interface DemoResult {
  kernel: Kernel;
  machine: Machine;
  /** Each thread's name and final state. */
  threads: { name: string; state: string; core: number; priority: number }[];
  ticks: number;
  calls: number;
}

/** The device interrupt line the ticker handles; raised every millisecond. */
const DEVICE_IRQ = 5;

export function runDemo(opts: DemoOptions = {}): DemoResult {
  const cores = opts.cores ?? 2;
  const ms = opts.ms ?? 20;
  const k = bootKernel({ cores });
  const partial = new Map<TCB, string>();
  const m = new Machine(k, {
    onPutChar: (tcb, byte) => {
      if (byte !== 10) {
        partial.set(tcb, (partial.get(tcb) ?? "") + String.fromCharCode(byte));
        return;
      }
      opts.onLine?.(tcb.name || "?", partial.get(tcb) ?? "");
      partial.set(tcb, "");
    },
  });
  let ticks = 0;
  let calls = 0;

  const server = m.program(function* (u: UserThread, ep: number, reply: number) {
    yield* seL4_DebugPutString(u, "passive server ready\n");
    yield* seL4_Recv(u, ep, reply);
    for (;;) {
      const x = seL4_GetMR(u, 0);
      seL4_SetMR(u, 0, x * x);
      yield* seL4_ReplyRecv(u, ep, seL4_MessageInfo_new(0, 0, 0, 1), reply);
    }
  });
  const client = m.program(function* (u: UserThread, ep: number) {
    for (let i = 1; i <= 5; i++) {
      seL4_SetMR(u, 0, i);
      yield* seL4_Call(u, ep, seL4_MessageInfo_new(0, 0, 0, 1));
      calls++;
      yield* seL4_DebugPutString(u, `square(${i}) = ${seL4_GetMR(u, 0)} (answered by the passive server)\n`);
      yield* u.compute(2_000_000);
    }
    return 0;
  });
  const ticker = m.program(function* (u: UserThread, ntfn: number, handler: number) {
    for (;;) {
      yield* seL4_Wait(u, ntfn);
      ticks++;
      if (ticks % 5 === 0) yield* seL4_DebugPutString(u, `${ticks} device interrupts handled\n`);
      yield* seL4_IRQHandler_Ack(u, handler);
    }
  });
  const spinner = m.program(function* (u: UserThread) {
    for (;;) yield* u.compute(1_000_000);
  });

  m.runRoot(function* (u: UserThread) {
    yield* seL4_DebugPutString(u, `booting on ${cores} core(s): building the system from Untyped memory\n`);
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const ntfn = yield* a.alloc(u, ObjectType.Notification);
    const handler = a.slot();
    yield* seL4_IRQControl_Get(u, seL4_CapIRQControl, DEVICE_IRQ, seL4_CapInitThreadCNode, handler, 64);
    yield* seL4_IRQHandler_SetNotification(u, handler, ntfn);
    const srv = yield* createThread(u, a, {
      entry: server,
      args: [ep, reply],
      priority: 200,
      name: "server",
    });
    yield* createThread(u, a, { entry: ticker, args: [ntfn, handler], priority: 250, name: "ticker" });
    yield* createThread(u, a, {
      entry: client,
      args: [ep],
      priority: 100,
      core: cores > 1 ? 1 : 0,
      name: "client",
    });
    yield* createThread(u, a, { entry: spinner, priority: 1, name: "spinner" });
    // Let the server reach its Recv, then take its scheduling context: it becomes passive.
    yield* seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 150);
    yield* seL4_SchedContext_Unbind(u, srv.sc);
    yield* seL4_DebugPutString(u, "system built; root task exits\n");
    return 0;
  });
  for (let t = 1; t <= ms; t++) m.raiseAt(t * 1_000_000, DEVICE_IRQ);
  m.run({ maxNs: ms * 1_000_000 });

  const threads: DemoResult["threads"] = [];
  for (const o of k.objects)
    if (o.objType === ObjectType.TCB) {
      const t = o as TCB;
      threads.push({ name: t.name, state: ThreadState[t.state], core: t.core, priority: t.priority });
    }
  return { kernel: k, machine: m, threads, ticks, calls };
}
