/**
 * `npm run bench:kernel`: in-process kernel IPC rates.
 *
 * A root task builds, with real syscalls on the Machine, a passive server blocked in Recv on an
 * endpoint (Microkit's protected-procedure shape) and a waiter blocked on a notification. Then
 * the benchmark plays the hardware: it writes the running thread's registers and enters the
 * kernel directly, so the figures are the kernel's own cost per operation:
 *   - Call/ReplyRecv round trips per second (client -> passive server -> client, one MR each way),
 *   - Signal/Wait round trips per second (signal wakes a higher-priority waiter, which waits again),
 * and the same Call/ReplyRecv through the full user-level platform (generator threads on the
 * Machine), which is what TypeScript threads see. Also prints fastpath hits and the heap growth
 * per round trip (0 when the path allocates nothing). Prints numbers; never passes or fails.
 */
import os from "node:os";
import { interruptEntry, syscallEntry } from "../src/kernel/api/syscall.js";
import { bootKernel } from "../src/kernel/core/boot.js";
import { getMR, setMR, setMsgInfo } from "../src/kernel/core/message.js";
import type { Kernel } from "../src/kernel/state.js";
import type { TCB } from "../src/kernel/structures.js";
import { ObjectType, REG_CAP, REG_REPLY, Syscall } from "../src/kernel/types.js";
import { Allocator, createThread } from "../src/pd/alloc.js";
import {
  seL4_Call,
  seL4_CapInitThreadTCB,
  seL4_GetMR,
  seL4_MessageInfo_new,
  seL4_Recv,
  seL4_ReplyRecv,
  seL4_SetMR,
  seL4_Wait,
} from "../src/pd/libsel4.js";
import { seL4_SchedContext_Unbind, seL4_TCB_SetPriority } from "../src/pd/libsel4-invocations.js";
import { Machine, type UserThread } from "../src/pd/machine.js";

interface Setup {
  k: Kernel;
  m: Machine;
  server: TCB;
  waiter: TCB;
  ep: number;
  reply: number;
  ntfn: number;
}

function setup(): Setup {
  // A root budget far beyond the run, so the client's scheduling context never runs dry mid-loop.
  const k = bootKernel({ rootBudgetNs: 1e12 });
  const m = new Machine(k);
  const serverProg = m.program(function* (u: UserThread, ep: number, reply: number) {
    yield* seL4_Recv(u, ep, reply);
    for (;;) {
      seL4_SetMR(u, 0, seL4_GetMR(u, 0) + 1);
      yield* seL4_ReplyRecv(u, ep, seL4_MessageInfo_new(0, 0, 0, 1), reply);
    }
  });
  const waiterProg = m.program(function* (u: UserThread, ntfn: number) {
    for (;;) yield* seL4_Wait(u, ntfn);
  });
  let ready = false;
  const caps = { ep: 0, reply: 0, ntfn: 0, server: 0, waiter: 0 };
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    caps.ep = yield* a.alloc(u, ObjectType.Endpoint);
    caps.reply = yield* a.alloc(u, ObjectType.Reply);
    caps.ntfn = yield* a.alloc(u, ObjectType.Notification);
    const s = yield* createThread(u, a, {
      entry: serverProg,
      args: [caps.ep, caps.reply],
      priority: 254,
      name: "server",
    });
    const w = yield* createThread(u, a, {
      entry: waiterProg,
      args: [caps.ntfn],
      priority: 254,
      name: "waiter",
    });
    caps.server = s.tcb;
    caps.waiter = w.tcb;
    // Drop below both so that they run to their Recv and Wait, then make the server passive.
    yield* seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 253);
    yield* seL4_SchedContext_Unbind(u, s.sc);
    ready = true;
    for (;;) yield* u.compute(1_000_000);
  });
  m.run({ until: () => ready, maxSteps: 100_000 });
  if (!ready) throw new Error("bench setup did not complete");
  const server = k.rootCNode.slot(caps.server).cap.obj as TCB;
  const waiter = k.rootCNode.slot(caps.waiter).cap.obj as TCB;
  return { k, m, server, waiter, ep: caps.ep, reply: caps.reply, ntfn: caps.ntfn };
}

/** Virtual time: 100 ns per kernel entry; timer interrupts are delivered when due. */
let now = 10_000_000;
function tick(k: Kernel): number {
  now += 100;
  if (now >= k.nodes[0]!.timerDeadline) interruptEntry(k, 0, now, k.config.timerIrq);
  return now;
}

function callReplyRecv(s: Setup, n: number): void {
  const { k, server } = s;
  const root = k.rootThread;
  for (let i = 0; i < n; i++) {
    if (k.nodes[0]!.curThread !== root) throw new Error("the client is not running");
    root.regs[2 * REG_CAP] = s.ep;
    setMsgInfo(root, 0, 0, 0, 1);
    setMR(root, 0, i);
    syscallEntry(k, 0, tick(k), Syscall.Call);
    // The server now runs on the client's scheduling context.
    setMR(server, 0, getMR(server, 0) + 1);
    server.regs[2 * REG_CAP] = s.ep;
    server.regs[2 * REG_REPLY] = s.reply;
    setMsgInfo(server, 0, 0, 0, 1);
    syscallEntry(k, 0, tick(k), Syscall.ReplyRecv);
  }
  if (k.nodes[0]!.curThread !== root || getMR(root, 0) !== n)
    throw new Error("Call/ReplyRecv did not round-trip");
}

function signalWait(s: Setup, n: number): void {
  const { k, waiter } = s;
  const root = k.rootThread;
  for (let i = 0; i < n; i++) {
    if (k.nodes[0]!.curThread !== root)
      throw new Error(
        `the signaller is not running: ${k.nodes[0]!.curThread.name} is, at ${now} ns, iteration ${i}`,
      );
    root.regs[2 * REG_CAP] = s.ntfn;
    setMsgInfo(root, 0, 0, 0, 0);
    syscallEntry(k, 0, tick(k), Syscall.Send);
    // The waiter (priority 254 > 253) preempted the signaller; it waits again. When its round-robin
    // timeslice ends at that syscall, the kernel rewinds it (Restart) and the hardware re-executes it.
    do {
      waiter.regs[2 * REG_CAP] = s.ntfn;
      syscallEntry(k, 0, tick(k), Syscall.Wait);
    } while (k.nodes[0]!.curThread === waiter);
  }
  if (k.nodes[0]!.curThread !== root) throw new Error("Signal/Wait did not round-trip");
}

function rate(label: string, n: number, fn: (n: number) => void): number {
  fn(Math.min(n, 50_000)); // warm-up: V8 tiers the path up
  const samples: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    fn(n);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    samples.push(n / dt);
  }
  samples.sort((a, b) => a - b);
  const median = samples[2]!;
  console.log(
    `${label.padEnd(44)} ${(median / 1e6).toFixed(3).padStart(7)} M/s  (${(1e9 / median).toFixed(0)} ns each; ` +
      `min ${(samples[0]! / 1e6).toFixed(3)}, max ${(samples[4]! / 1e6).toFixed(3)} M/s over 5 runs of ${n})`,
  );
  return median;
}

function heapPerOp(n: number, fn: (n: number) => void): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return Number.NaN;
  fn(10_000);
  gc();
  const before = process.memoryUsage().heapUsed;
  fn(n);
  const after = process.memoryUsage().heapUsed;
  return (after - before) / n;
}

const quick = process.argv.includes("--quick");
const N = quick ? 20_000 : 1_000_000;
const cpu = os.cpus()[0]?.model ?? "unknown CPU";
console.log(
  `capvisor kernel benchmark — Node ${process.version}, ${os.cpus().length} x ${cpu}, ${os.platform()} ${os.arch()}`,
);
console.log(`(in-process, one core; each figure is the median of 5 runs${quick ? ", quick mode" : ""})\n`);

const s = setup();
const fp0 = s.k.stats.fastpathCalls;
const fr0 = s.k.stats.fastpathReplyRecvs;
rate("kernel Call/ReplyRecv round trips", N, (n) => callReplyRecv(s, n));
const calls = s.k.stats.fastpathCalls - fp0;
const replies = s.k.stats.fastpathReplyRecvs - fr0;
rate("kernel Signal/Wait round trips", N, (n) => signalWait(s, n));
const heapCall = heapPerOp(quick ? 20_000 : 200_000, (n) => callReplyRecv(s, n));
const heapSignal = heapPerOp(quick ? 20_000 : 200_000, (n) => signalWait(s, n));
console.log(`\nfastpath: ${calls} Calls and ${replies} ReplyRecvs took the fastpath`);
console.log(
  Number.isNaN(heapCall)
    ? "heap growth per round trip: run with node --expose-gc to measure"
    : `heap growth per round trip: Call/ReplyRecv ${heapCall.toFixed(2)} B, Signal/Wait ${heapSignal.toFixed(2)} B`,
);

// The same round trip through the user-level platform: generator threads on the Machine.
{
  const k = bootKernel();
  const m = new Machine(k);
  const M = quick ? 5_000 : 200_000;
  const serverProg = m.program(function* (u: UserThread, ep: number, reply: number) {
    yield* seL4_Recv(u, ep, reply);
    for (;;) {
      seL4_SetMR(u, 0, seL4_GetMR(u, 0) + 1);
      yield* seL4_ReplyRecv(u, ep, seL4_MessageInfo_new(0, 0, 0, 1), reply);
    }
  });
  let t0 = 0n;
  let t1 = 0n;
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const srv = yield* createThread(u, a, { entry: serverProg, args: [ep, reply], priority: 254 });
    yield* seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 253);
    yield* seL4_SchedContext_Unbind(u, srv.sc);
    t0 = process.hrtime.bigint();
    for (let i = 0; i < M; i++) {
      seL4_SetMR(u, 0, i);
      yield* seL4_Call(u, ep, seL4_MessageInfo_new(0, 0, 0, 1));
    }
    t1 = process.hrtime.bigint();
  });
  m.run({ maxSteps: 10 * M + 100_000 });
  const perSec = M / (Number(t1 - t0) / 1e9);
  console.log(
    `\nplatform Call/ReplyRecv (TypeScript threads)  ${(perSec / 1e6).toFixed(3).padStart(7)} M/s  (${(1e9 / perSec).toFixed(0)} ns each, ${M} round trips)`,
  );
}
