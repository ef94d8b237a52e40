/**
 * Random system calls against a small but complete system. A root task (run on the Machine)
 * builds endpoints, notifications, reply objects, CNodes, an Untyped, frames, IRQ handlers and
 * threads on two cores, all sharing the root CNode, so that random capability pointers mostly
 * name real capabilities. Then the test drives the kernel the way hardware would: whichever
 * thread is current on a core executes a random instruction (a syscall with random registers,
 * message registers, extra caps and message info, or a fault), interrupts arrive, time passes.
 *
 * After every step: the kernel threw no host exception and its invariants hold; and a Call on a
 * kernel object that returned to its caller answered with a seL4 error code (0..10) as label.
 */
import {
  interruptEntry,
  ipiEntry,
  syscallEntry,
  userExceptionEntry,
  vmFaultEntry,
} from "../../src/kernel/api/syscall.js";
import { bootKernel } from "../../src/kernel/core/boot.js";
import { lookupCap } from "../../src/kernel/core/cspace.js";
import { msgInfoLabel } from "../../src/kernel/core/message.js";
import { checkInvariants } from "../../src/kernel/invariants.js";
import type { Kernel } from "../../src/kernel/state.js";
import { TCB } from "../../src/kernel/structures.js";
import {
  CapType,
  Invocation,
  IPC_BUFFER_WORDS,
  ObjectType,
  REG_PC,
  REG_X0,
  SeL4Error,
  Syscall,
  ThreadState,
} from "../../src/kernel/types.js";
import { Allocator, createThread } from "../../src/pd/alloc.js";
import {
  seL4_AllRights,
  seL4_CapInitThreadCNode,
  seL4_CapInitThreadTCB,
  seL4_CapIRQControl,
} from "../../src/pd/libsel4.js";
import {
  seL4_CNode_Mint,
  seL4_IRQControl_Get,
  seL4_IRQHandler_SetNotification,
  seL4_TCB_SetPriority,
} from "../../src/pd/libsel4-invocations.js";
import { Machine, type UserThread } from "../../src/pd/machine.js";

/** One random step: eight 32-bit numbers from which every choice is derived. */
export type Op = readonly [number, number, number, number, number, number, number, number];

export interface RunStats {
  ops: number;
  syscalls: number;
  kernelAnswers: number;
  interrupts: number;
  faults: number;
  /** Steps where every core was idle (only time passed), and supervisor steps. */
  idle: number;
  supervisor: number;
}

interface World {
  k: Kernel;
  /** Capability pointers that name something in the shared root CNode. */
  cptrs: number[];
  threads: TCB[];
  /** Worker TCB cptrs, for the supervisor (the root task at priority 1) to revive them. */
  workerTcbs: number[];
  supervisorStep: number;
  now: number;
}

/** Build the system with real syscalls from a root task; returns once the root task has finished. */
export function buildWorld(cores = 2): World {
  const k = bootKernel({ cores, rootCNodeBits: 10, memoryBytes: 16 * 1024 * 1024, irqLines: 16 });
  const m = new Machine(k);
  const idle = m.program(function* (u: UserThread) {
    for (;;) yield* u.compute(1_000_000);
  });
  let lastSlot = 0;
  let built = false;
  const workerTcbs: number[] = [];
  const root = k.rootThread;
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    const eps: number[] = [];
    for (let i = 0; i < 4; i++) eps.push(yield* a.alloc(u, ObjectType.Endpoint));
    const ntfns: number[] = [];
    for (let i = 0; i < 3; i++) ntfns.push(yield* a.alloc(u, ObjectType.Notification));
    for (let i = 0; i < 4; i++) yield* a.alloc(u, ObjectType.Reply);
    yield* a.alloc(u, ObjectType.CapTable, 4);
    yield* a.alloc(u, ObjectType.CapTable, 2);
    yield* a.alloc(u, ObjectType.Untyped, 16);
    yield* a.alloc(u, ObjectType.SmallPage);
    yield* a.alloc(u, ObjectType.SchedContext);
    // Badged copies, one with bit 63 set (Microkit's pp-call badge).
    yield* seL4_CNode_Mint(
      u,
      seL4_CapInitThreadCNode,
      a.slot(),
      64,
      seL4_CapInitThreadCNode,
      eps[0]!,
      64,
      seL4_AllRights,
      1n << 63n,
    );
    yield* seL4_CNode_Mint(
      u,
      seL4_CapInitThreadCNode,
      a.slot(),
      64,
      seL4_CapInitThreadCNode,
      ntfns[0]!,
      64,
      seL4_AllRights,
      5,
    );
    for (const line of [3, 4]) {
      const h = a.slot();
      yield* seL4_IRQControl_Get(u, seL4_CapIRQControl, line, seL4_CapInitThreadCNode, h, 64);
      yield* seL4_IRQHandler_SetNotification(u, h, ntfns[1]!);
    }
    for (let i = 0; i < 6; i++) {
      const h = yield* createThread(u, a, {
        entry: idle,
        priority: 100 + (i % 3),
        core: i % cores,
        budgetUs: 500 + 250 * i,
        periodUs: i % 2 === 0 ? 500 + 250 * i : 4000,
        faultEp: i % 2 === 0 ? eps[1]! : 0,
        name: `fuzz${i}`,
      });
      workerTcbs.push(h.tcb);
    }
    const p = yield* createThread(u, a, {
      entry: idle,
      passive: true,
      priority: 150,
      faultEp: eps[1]!,
      name: "passive",
    });
    workerTcbs.push(p.tcb);
    lastSlot = a.slot();
    // The root task stays as a supervisor below every worker; the driver then takes over.
    built = true;
    yield* seL4_TCB_SetPriority(u, seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 1);
    for (;;) yield* u.compute(1_000_000);
  });
  m.run({ until: () => built && root.priority === 1, maxSteps: 200_000 });
  if (root.priority !== 1) throw new Error("fuzz world: root task did not finish building");
  const cptrs: number[] = [];
  for (let i = 1; i < lastSlot; i++) cptrs.push(i);
  const threads: TCB[] = [];
  for (const o of k.objects) if (o.objType === ObjectType.TCB && o !== root) threads.push(o as TCB);
  let now = 0;
  for (let c = 0; c < cores; c++) now = Math.max(now, m.coreTime(c));
  return { k, cptrs, threads, workerTcbs, supervisorStep: 0, now: now + 1000 };
}

/** A 64-bit word (as halves) biased towards the values that reach deep into the kernel. */
function word(w: World, sel: number, r: number): [lo: number, hi: number] {
  switch (sel % 8) {
    case 0:
    case 1:
      return [w.cptrs[r % w.cptrs.length]!, 0];
    case 2:
      return [r % 64, 0];
    case 3:
      return [r >>> 0, 0];
    case 4:
      return [r >>> 0, (r * 2654435761) >>> 0];
    case 5:
      return [0, 0];
    case 6:
      return [r % 13, 0]; // object types, small sizes
    default:
      return [0xffffffff, 0xffffffff];
  }
}

function setWord(t: TCB, reg: number, v: [number, number]): void {
  t.regs[2 * reg] = v[0];
  t.regs[2 * reg + 1] = v[1];
}

/** Weighted towards calls that return, so that threads stay alive to make more of them. */
const VALID_SYSCALLS = [
  ...Array<Syscall>(6).fill(Syscall.Call),
  Syscall.NBSend,
  Syscall.NBSend,
  Syscall.NBRecv,
  Syscall.NBRecv,
  Syscall.NBWait,
  Syscall.Yield,
  Syscall.Send,
  Syscall.Recv,
  Syscall.Wait,
  Syscall.ReplyRecv,
  Syscall.NBSendRecv,
  Syscall.NBSendWait,
];

/** Run one random step. Throws (host exception or InvariantError) when the kernel misbehaves. */
export function step(w: World, op: Op, stats: RunStats): void {
  const k = w.k;
  const [kind, a, b, c, d, e, f, g] = op;
  stats.ops++;
  w.now += (b % 64) * 1000;
  // Hardware first: due timers and reschedule IPIs on every core.
  for (let c2 = 0; c2 < k.nodes.length; c2++) {
    const n2 = k.nodes[c2]!;
    if (w.now >= n2.timerDeadline) interruptEntry(k, c2, w.now, k.config.timerIrq);
    if (n2.ipiPending) ipiEntry(k, c2, w.now);
  }
  // Prefer a core running a worker, then the supervisor; idle cores only let time pass.
  let core = -1;
  for (let pass = 0; pass < 2 && core < 0; pass++) {
    for (let i = 0; i < k.nodes.length; i++) {
      const c2 = (a + i) % k.nodes.length;
      const cur = k.nodes[c2]!.curThread;
      if (cur !== k.nodes[c2]!.idleThread && (pass === 1 || cur !== k.rootThread)) {
        core = c2;
        break;
      }
    }
  }
  if (core < 0) core = a % k.nodes.length;
  const node = k.nodes[core]!;
  const t = node.curThread;
  const sel = kind % 32;
  if (sel === 0) {
    stats.interrupts++;
    interruptEntry(k, core, w.now, c % (k.irq.state.length + 2));
  } else if (t === node.idleThread) {
    // Every core is idle: jump to the next timer deadline.
    stats.idle++;
    let next = Number.POSITIVE_INFINITY;
    for (const n2 of k.nodes) next = Math.min(next, n2.timerDeadline);
    w.now = Math.max(w.now, Number.isFinite(next) ? next : w.now + 1_000_000);
  } else if (t === k.rootThread) {
    // The supervisor revives workers: Resume an Inactive one, else Suspend a blocked one (which
    // cancels its IPC, manual §6.1.3) so that it can be resumed next.
    stats.supervisor++;
    const n = w.supervisorStep++;
    let target = -1;
    let label = Invocation.TCBResume;
    for (let pass = 0; pass < 2 && target < 0; pass++) {
      for (let i = 0; i < w.workerTcbs.length; i++) {
        const cptr = w.workerTcbs[(n + i) % w.workerTcbs.length]!;
        const obj = k.rootCNode.slot(cptr).cap.obj;
        if (!(obj instanceof TCB)) continue;
        const st = obj.state;
        if (pass === 0 && st === ThreadState.Inactive) target = cptr;
        else if (
          pass === 1 &&
          st >= ThreadState.BlockedOnReceive &&
          st <= ThreadState.BlockedOnNotification
        ) {
          target = cptr;
          label = Invocation.TCBSuspend;
        }
        if (target >= 0) break;
      }
    }
    if (target < 0) target = w.workerTcbs[n % w.workerTcbs.length]!;
    setWord(t, REG_X0, [target, 0]);
    setWord(t, REG_X0 + 1, [label * 4096, 0]);
    syscallEntry(k, core, w.now, Syscall.Call);
  } else if (sel === 1) {
    stats.faults++;
    userExceptionEntry(k, core, w.now, c, d);
  } else if (sel === 2) {
    stats.faults++;
    vmFaultEntry(k, core, w.now, c, d, (e & 1) === 1);
  } else {
    // A syscall with random registers, message info, message registers and extra caps.
    for (let r = 0; r <= 8; r++) setWord(t, REG_X0 + r, word(w, (c >>> (3 * r)) ^ r, d + r * 7919 + e));
    // The capability registers (x0, the reply cap x6, the NBSendRecv destination x8) mostly name
    // real caps: a random word fails lookup at once and only exercises the cap-fault path.
    for (const r of [0, 6, 8])
      if ((c >>> (r + 20)) % 16 !== 0) setWord(t, REG_X0 + r, [w.cptrs[(d >>> r) % w.cptrs.length]!, 0]);
    const label = f % 4 === 0 ? (f >>> 2) % 60 : (f >>> 2) % 53;
    const length = (g & 3) === 0 ? (g >>> 2) % 128 : (g >>> 2) % 8;
    const extra = (g >>> 10) % 4;
    t.regs[2 * (REG_X0 + 1)] = (((label % 1048576) * 4096 + ((g >>> 12) % 8) * 512 + extra * 128 + length) >>>
      0) as number;
    t.regs[2 * (REG_X0 + 1) + 1] = 0;
    const buf = t.ipcBuffer;
    if (buf !== null) {
      for (let i = 0; i < 16; i++) {
        const v = word(w, (e >>> i) ^ i, f + i * 104729);
        buf[2 * (1 + i)] = v[0];
        buf[2 * (1 + i) + 1] = v[1];
      }
      for (let i = 0; i < 3; i++) {
        const v = word(w, e >>> (2 * i), d + i);
        buf[2 * (122 + i)] = v[0];
        buf[2 * (122 + i) + 1] = v[1];
      }
      const depthSel = g % 5;
      buf[2 * (IPC_BUFFER_WORDS - 1)] = depthSel === 0 ? 0 : depthSel === 1 ? 64 : g % 70;
      buf[2 * (IPC_BUFFER_WORDS - 2)] = w.cptrs[g % w.cptrs.length]!;
    }
    let sysno: number;
    const sSel = e % 20;
    if (sSel < 17) sysno = VALID_SYSCALLS[d % VALID_SYSCALLS.length]!;
    else if (sSel < 19) sysno = -12 - (d % 6);
    else sysno = (d % 61) - 30;
    // For a Call on a kernel object (not IPC, not the caller itself), note that an answer is due.
    let expectAnswer = false;
    if (sysno === Syscall.Call) {
      const cap = lookupCap(k, t, t.regs[2 * REG_X0 + 1]!, t.regs[2 * REG_X0]!);
      expectAnswer =
        cap !== null &&
        cap.type !== CapType.Null &&
        cap.type !== CapType.Endpoint &&
        cap.type !== CapType.Notification &&
        cap.type !== CapType.Reply &&
        cap.obj !== t;
    }
    const pc = t.getReg(REG_PC);
    stats.syscalls++;
    syscallEntry(k, core, w.now, sysno);
    if (expectAnswer && t.state === ThreadState.Running && t.getReg(REG_PC) === pc + 4) {
      const answer = msgInfoLabel(t);
      if (answer > SeL4Error.NotEnoughMemory)
        throw new Error(`a Call on a kernel object answered with label ${answer}, not a seL4 error code`);
      stats.kernelAnswers++;
    }
  }
  checkInvariants(k);
}

/** Build a world and run the ops against it. */
export function runOps(ops: readonly Op[], stats: RunStats): void {
  const w = buildWorld();
  checkInvariants(w.k);
  for (const op of ops) step(w, op, stats);
}

export function newStats(): RunStats {
  return { ops: 0, syscalls: 0, kernelAnswers: 0, interrupts: 0, faults: 0, idle: 0, supervisor: 0 };
}
