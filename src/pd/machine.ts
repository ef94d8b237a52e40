/**
 * A deterministic platform for the kernel: cores with a virtual clock (nanoseconds) that run
 * user threads written as TypeScript generator functions, so that tests can be written the
 * way seL4's sel4test writes them (a root task that builds objects and threads, then checks
 * what happens), with every interleaving reproducible.
 *
 * The model
 * - A program is a generator function registered with `machine.program(fn)`, which returns a
 *   fake code address (its entry). A thread whose pc equals an entry when it runs starts that
 *   program afresh, with x0..x3 as arguments (as sel4utils_start_thread writes pc and args).
 *   Starting executes the entry instruction: pc becomes entry + 4.
 * - Every user action is a `yield` of a Request to the machine. Each action is one instruction
 *   at the thread's current pc, except `compute`, a stretch of instructions that only consumes
 *   time. A syscall enters the kernel (which sets pc to pc + 4 and rewinds it to the syscall on
 *   Restart); a memory access that succeeds advances pc by 4; a fault leaves pc on the faulting
 *   instruction. When the thread next runs: pc still on the instruction re-executes it (restart
 *   of a syscall, retry after a fault handler fixed things); pc just after it resumes the
 *   program; any other pc is a jump: to a program entry starts that program, elsewhere raises
 *   an instruction abort (there is no code there).
 * - Code is not in any VSpace (it is "ROM"); only explicit memory requests are checked against
 *   the thread's VSpace, through the TCB's VTable cap and `lookupMapping`.
 * - A program that returns raises a UserException fault with number EXIT_FAULT_NUMBER and the
 *   returned number (or 0) as code, so a fault handler sees the exit; without a handler the
 *   kernel makes the thread Inactive.
 * - Time: kernel entries on a core happen at that core's clock; a syscall costs syscallCostNs,
 *   other entries entryCostNs, a memory access memoryCostNs. The kernel runs under a big lock
 *   (as seL4 SMP does): entries never overlap in time. Cores interleave deterministically: the
 *   core whose next event or kernel entry is earliest goes next (lowest index on ties), so
 *   kernel entries happen in global time order and an IPI reaches a computing core at the time
 *   it was sent. Idle cores jump to their next event (timer deadline, interrupt, IPI).
 * - `run` stops when a predicate holds, at a time or step limit, or when the system is
 *   quiescent: every core idle with nothing that could wake a thread (see quiescent()).
 *
 * Like a real platform, the machine reads and writes only what hardware would: the current
 * thread's registers, the memory its VSpace maps, and the kernel's per-core outputs
 * (curThread, timerDeadline, ipiPending). Everything else goes through the kernel's entry points.
 */
import {
  interruptEntry,
  ipiEntry,
  raiseInterrupt,
  syscallEntry,
  userExceptionEntry,
  vmFaultEntry,
} from "../kernel/api/syscall.js";
import { lookupMapping } from "../kernel/object/vspace.js";
import type { Kernel } from "../kernel/state.js";
import { type Mapping, type TCB, VSpace } from "../kernel/structures.js";
import {
  CapType,
  INSTRUCTION_SIZE,
  IPC_BUFFER_WORDS,
  REG_PC,
  REG_SYSCALL,
  REG_X0,
  RIGHT_READ,
  RIGHT_WRITE,
  TCB_VTABLE,
  ThreadState,
} from "../kernel/types.js";

/** UserException number raised when a program returns ("EXIT" in ASCII); the code is the return value. */
export const EXIT_FAULT_NUMBER = 0x45584954;
/** Program entries: PROGRAM_BASE + i * PROGRAM_STRIDE, far apart so pcs never run into the next program. */
export const PROGRAM_BASE = 2 ** 40;
export const PROGRAM_STRIDE = 2 ** 32;

// AArch64 exception syndrome (ESR_EL1) values reported as the VMFault FSR, as seL4 reports ESR.
const ESR_EC_DATA_ABORT_LOWER = 0x24;
const ESR_EC_INSTRUCTION_ABORT_LOWER = 0x20;
const ESR_IL = 0x0200_0000;
const ESR_WNR = 0x40;
/** Fault status codes: translation fault and permission fault at a given table level. */
export const FSC_TRANSLATION = 0x04;
export const FSC_PERMISSION = 0x0c;

/** The ESR an AArch64 core reports for an abort: `fsc | level`, WnR for writes. */
export function abortSyndrome(instructionFault: boolean, write: boolean, fsc: number, level: number): number {
  const ec = instructionFault ? ESR_EC_INSTRUCTION_ABORT_LOWER : ESR_EC_DATA_ABORT_LOWER;
  return (ec * 2 ** 26 + ESR_IL + (write && !instructionFault ? ESR_WNR : 0) + fsc + level) >>> 0;
}

export type Access = "read" | "write" | "execute";

/** What a program yields to the machine. Programs normally use UserThread's helpers and libsel4.ts. */
export type Request =
  /** Execute `svc #0`: the syscall number is in x7, arguments in registers and the IPC buffer. */
  | { readonly kind: "syscall" }
  /** Run ordinary instructions for `ns` nanoseconds of virtual time (preemptible). */
  | { readonly kind: "compute"; readonly ns: number }
  /** Execute an instruction that raises a user-level exception (seL4 UserException fault). */
  | { readonly kind: "exception"; readonly number: number; readonly code: number }
  /** Access `length` bytes at `vaddr` (write: `data`); checked against the thread's VSpace. */
  | {
      readonly kind: "memory";
      readonly access: Access;
      readonly vaddr: number;
      readonly length: number;
      readonly data: Uint8Array | null;
    };

/** The one syscall request (it carries nothing: the number is in x7). */
export const SYSCALL: Request = Object.freeze({ kind: "syscall" });

type Action = Request | { readonly kind: "exit"; readonly code: number } | { readonly kind: "prefetch" };

/**
 * A thread's code. It receives its UserThread and x0..x3 (as numbers: exact below 2^53) and
 * yields requests; returning a number makes it the exit fault's code.
 */
export type ThreadProgram = (
  u: UserThread,
  arg0: number,
  arg1: number,
  arg2: number,
  arg3: number,
) => Generator<Request, unknown, void>;

export type EntryKind = "syscall" | "exception" | "vmfault" | "interrupt" | "ipi";
export type StopReason = "until" | "idle" | "maxNs" | "maxSteps";
export interface RunResult {
  reason: StopReason;
  /** Virtual time of the last step (ns). */
  now: number;
  /** Steps taken by this run. */
  steps: number;
}

export interface MachineOptions {
  /** Time a syscall spends in the kernel (default 100 ns). */
  syscallCostNs?: number;
  /** Time other kernel entries (interrupts, faults, IPIs) spend in the kernel (default: syscallCostNs). */
  entryCostNs?: number;
  /** Time a memory access takes (default 1 ns). */
  memoryCostNs?: number;
  /**
   * Let interrupts that fall due while the kernel runs an entry be seen by its preemption points
   * (seL4 checks for pending interrupts during long operations). Default true.
   */
  kernelPreemption?: boolean;
  /** Called after every kernel entry (tests pass checkInvariants here). */
  afterEachEntry?: (k: Kernel, kind: EntryKind, core: number) => void;
  /** Called for every seL4_DebugPutChar byte, in addition to the machine's console buffers. */
  onPutChar?: (tcb: TCB, byte: number) => void;
}

export interface RunOptions {
  /** Stop as soon as this holds (checked before every step). */
  until?: () => boolean;
  /** Stop before virtual time passes now + maxNs. */
  maxNs?: number;
  /** Stop after this many steps (default 10 million, a guard against livelock). */
  maxSteps?: number;
}

const EMPTY = new Uint8Array(0);
const TWO32 = 4294967296;

/**
 * What libsel4 needs of a thread: its TCB's registers and the IPC buffer as it sees it. The
 * Machine's UserThread is one; the boot-time loader's synchronous root task is another.
 */
export interface ThreadContext {
  readonly tcb: TCB;
  readonly ipcBuffer: Uint32Array;
}

/**
 * The user-level side of one TCB: its program's generator and where it stands. Programs use
 * the helpers (compute, read, write, exception) with `yield*`; the machine owns the rest.
 */
export class UserThread implements ThreadContext {
  /** Program index, or -1 before the thread ever started one. */
  program = -1;
  /** @internal the running generator (null when none or finished). */
  gen: Generator<Request, unknown, void> | null = null;
  /** @internal the action in progress, the pc it executes at, whether the kernel was entered for it. */
  action: Action | null = null;
  actionPc = 0;
  issued = false;
  /** @internal ns of compute left. */
  remaining = 0;
  /** Core the thread last ran on. */
  core = 0;
  /** Result of the last memory read. */
  lastRead: Uint8Array = EMPTY;
  /** False when the last memory access faulted and a handler skipped it (pc + 4). */
  lastAccessOk = true;
  /** Stand-in IPC buffer for threads the kernel gave none (libsel4 then only has the registers). */
  readonly localBuffer = new Uint32Array(2 * IPC_BUFFER_WORDS);

  constructor(
    readonly machine: Machine,
    readonly tcb: TCB,
  ) {}

  /** The IPC buffer as libsel4 sees it (2 halves per word), the kernel's view of the thread's frame. */
  get ipcBuffer(): Uint32Array {
    return this.tcb.ipcBuffer ?? this.localBuffer;
  }
  /** Virtual time on the core the thread runs on. */
  now(): number {
    return this.machine.coreTime(this.core);
  }

  *compute(ns: number): Generator<Request, void, void> {
    yield { kind: "compute", ns };
  }
  /** Raise a user exception (e.g. an undefined instruction); returns when a handler moved pc past it. */
  *exception(number: number, code: number): Generator<Request, void, void> {
    yield { kind: "exception", number, code };
  }
  /** Read bytes; null when the access faulted and the handler skipped the instruction. */
  *read(vaddr: number, length: number): Generator<Request, Uint8Array | null, void> {
    yield { kind: "memory", access: "read", vaddr, length, data: null };
    return this.lastAccessOk ? this.lastRead : null;
  }
  *write(vaddr: number, data: Uint8Array): Generator<Request, boolean, void> {
    yield { kind: "memory", access: "write", vaddr, length: data.length, data };
    return this.lastAccessOk;
  }
  /** Fetch an instruction at vaddr (checks execute permission). */
  *execute(vaddr: number): Generator<Request, boolean, void> {
    yield { kind: "memory", access: "execute", vaddr, length: INSTRUCTION_SIZE, data: null };
    return this.lastAccessOk;
  }
  *read32(vaddr: number): Generator<Request, number | null, void> {
    const b = yield* this.read(vaddr, 4);
    return b === null ? null : new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }
  *read64(vaddr: number): Generator<Request, bigint | null, void> {
    const b = yield* this.read(vaddr, 8);
    return b === null ? null : new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }
  *write32(vaddr: number, v: number): Generator<Request, boolean, void> {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return yield* this.write(vaddr, b);
  }
  *write64(vaddr: number, v: bigint): Generator<Request, boolean, void> {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
    return yield* this.write(vaddr, b);
  }

  /** @internal start program `index` at `entry` with x0..x3 as arguments. */
  start(index: number, fn: ThreadProgram, entry: number): void {
    const t = this.tcb;
    const a0 = t.getReg(REG_X0);
    const a1 = t.getReg(REG_X0 + 1);
    const a2 = t.getReg(REG_X0 + 2);
    const a3 = t.getReg(REG_X0 + 3);
    t.setReg(REG_PC, entry + INSTRUCTION_SIZE);
    this.program = index;
    this.lastAccessOk = true;
    this.gen = fn(this, a0, a1, a2, a3);
    this.advance();
  }

  /** @internal run the program to its next request (zero virtual time). */
  advance(): void {
    const g = this.gen;
    let next: Action;
    if (g === null) {
      next = { kind: "exit", code: 0 };
    } else {
      const r = g.next();
      if (r.done === true) {
        this.gen = null;
        next = { kind: "exit", code: typeof r.value === "number" ? r.value : 0 };
      } else {
        next = r.value;
        if (next.kind === "compute" && !(next.ns >= 0))
          throw new RangeError(`compute(${next.ns}): not a duration`);
        if (
          next.kind === "memory" &&
          !(Number.isSafeInteger(next.vaddr) && next.vaddr >= 0 && next.length >= 0)
        ) {
          throw new RangeError(`memory access at ${next.vaddr} of ${next.length} bytes`);
        }
      }
    }
    this.action = next;
    this.actionPc = this.tcb.getReg(REG_PC);
    this.issued = false;
    this.remaining = next.kind === "compute" ? next.ns : 0;
  }
}

interface ScheduledIrq {
  at: number;
  line: number;
  seq: number;
}

export class Machine {
  readonly syscallCostNs: number;
  readonly entryCostNs: number;
  readonly memoryCostNs: number;
  readonly kernelPreemption: boolean;
  afterEachEntry: ((k: Kernel, kind: EntryKind, core: number) => void) | null;
  /** Virtual time of the latest step (monotonic across all cores). */
  now = 0;
  /** Steps and kernel entries since the machine was made. */
  steps = 0;
  entries = 0;

  private readonly programs: ThreadProgram[] = [];
  private readonly threads = new Map<TCB, UserThread>();
  /** Per core: time up to which the core has executed. */
  private readonly time: number[];
  /** Per core: when the pending IPI was sent (-1: none seen). */
  private readonly ipiAt: number[];
  private readonly irqs: ScheduledIrq[] = [];
  private irqSeq = 0;
  /** End of the latest kernel entry: the big kernel lock is free from then on. */
  private kernelFreeAt = 0;
  private readonly raised: number[] = [];
  private out = "";
  private readonly outByThread = new Map<TCB, string>();

  constructor(
    readonly k: Kernel,
    opts: MachineOptions = {},
  ) {
    this.syscallCostNs = opts.syscallCostNs ?? 100;
    this.entryCostNs = opts.entryCostNs ?? this.syscallCostNs;
    this.memoryCostNs = opts.memoryCostNs ?? 1;
    this.kernelPreemption = opts.kernelPreemption ?? true;
    this.afterEachEntry = opts.afterEachEntry ?? null;
    const n = k.nodes.length;
    this.time = new Array<number>(n).fill(0);
    this.ipiAt = new Array<number>(n).fill(-1);
    const onPutChar = opts.onPutChar ?? null;
    k.debugOut = (tcb: TCB, byte: number): void => {
      const ch = String.fromCharCode(byte);
      this.out += ch;
      this.outByThread.set(tcb, (this.outByThread.get(tcb) ?? "") + ch);
      if (onPutChar !== null) onPutChar(tcb, byte);
    };
  }

  // ---- programs and threads ----

  /** Register a program; returns its entry address (write it to a thread's pc to start it). */
  program(fn: ThreadProgram): number {
    this.programs.push(fn);
    return PROGRAM_BASE + (this.programs.length - 1) * PROGRAM_STRIDE;
  }

  /** Make the root task run `fn` (with x0..x3 = args) from its next step on. Returns the entry. */
  runRoot(fn: ThreadProgram, args: readonly number[] = []): number {
    const entry = this.program(fn);
    const root = this.k.rootThread;
    for (let i = 0; i < 4; i++) root.setReg(REG_X0 + i, args[i] ?? 0);
    root.setReg(REG_PC, entry);
    return entry;
  }

  /** The UserThread of a TCB (made on first use). */
  thread(t: TCB): UserThread {
    let u = this.threads.get(t);
    if (u === undefined) {
      u = new UserThread(this, t);
      this.threads.set(t, u);
    }
    return u;
  }

  coreTime(core: number): number {
    return this.time[core]!;
  }

  /** Everything written with seL4_DebugPutChar, in order. */
  console(): string {
    return this.out;
  }
  /** What one thread wrote with seL4_DebugPutChar. */
  consoleOf(t: TCB): string {
    return this.outByThread.get(t) ?? "";
  }

  /** Raise external interrupt `line` at virtual time `ns` (on the core the line is routed to then). */
  raiseAt(ns: number, line: number): void {
    const irq: ScheduledIrq = { at: ns, line, seq: this.irqSeq++ };
    let i = this.irqs.length;
    while (i > 0 && this.irqs[i - 1]!.at > ns) i--;
    this.irqs.splice(i, 0, irq);
  }

  // ---- running ----

  run(opts: RunOptions = {}): RunResult {
    const until = opts.until;
    const limit = opts.maxNs === undefined ? Number.POSITIVE_INFINITY : this.now + opts.maxNs;
    const maxSteps = opts.maxSteps ?? 10_000_000;
    let steps = 0;
    for (;;) {
      if (until?.()) return { reason: "until", now: this.now, steps };
      if (steps >= maxSteps) return { reason: "maxSteps", now: this.now, steps };
      let best = -1;
      let bestAt = Number.POSITIVE_INFINITY;
      for (let c = 0; c < this.time.length; c++) {
        const at = this.nextAt(c);
        if (at < bestAt) {
          bestAt = at;
          best = c;
        }
      }
      if (
        best < 0 ||
        (this.k.nodes[best]!.curThread === this.k.nodes[best]!.idleThread && this.quiescent())
      ) {
        return { reason: "idle", now: this.now, steps };
      }
      if (bestAt > limit) return { reason: "maxNs", now: this.now, steps };
      this.step(best, bestAt);
      steps++;
      this.steps++;
    }
  }

  /**
   * True when nothing can happen any more but timer ticks of idle cores: every core runs its
   * idle thread with no IPI pending, nothing in its ready or release queues, and no external
   * interrupt is scheduled. (seL4 keeps programming the timer for the idle thread's budget, so
   * an idle core always has a next deadline; those ticks change nothing.)
   */
  quiescent(): boolean {
    if (this.irqs.length > 0) return false;
    for (const node of this.k.nodes) {
      if (node.curThread !== node.idleThread || node.ipiPending || node.releaseHead !== null) return false;
      for (let i = 0; i < node.readyBitmap.length; i++) if (node.readyBitmap[i] !== 0) return false;
    }
    return true;
  }

  /** When core c next does something: an event, or an action of its current thread. */
  private nextAt(c: number): number {
    const node = this.k.nodes[c]!;
    const now = this.time[c]!;
    let at = this.eventAt(c);
    const t = node.curThread;
    if (t !== node.idleThread) {
      const u = this.thread(t);
      const a = u.action;
      const computing = a !== null && a.kind === "compute" && t.getReg(REG_PC) === u.actionPc;
      at = Math.min(at, computing ? now + u.remaining : now);
    }
    return Math.max(at, now);
  }

  /** Earliest pending event of core c: IPI, timer deadline, or a routed external interrupt. */
  private eventAt(c: number): number {
    const node = this.k.nodes[c]!;
    let at = node.timerDeadline;
    if (node.ipiPending) at = Math.min(at, this.ipiAt[c]! >= 0 ? this.ipiAt[c]! : this.time[c]!);
    for (const irq of this.irqs) {
      if (this.irqCore(irq.line) === c) {
        at = Math.min(at, irq.at);
        break;
      }
    }
    return at;
  }

  private irqCore(line: number): number {
    const target = this.k.irq.target[line] ?? 0;
    return target < this.time.length ? target : 0;
  }

  private step(c: number, at: number): void {
    const node = this.k.nodes[c]!;
    const t = node.curThread;
    const before = this.time[c]!;
    if (t !== node.idleThread) {
      // The current thread has been running since the core's clock: charge its compute.
      const u = this.thread(t);
      if (u.action !== null && u.action.kind === "compute" && t.getReg(REG_PC) === u.actionPc) {
        u.remaining = Math.max(0, u.remaining - (at - before));
      }
    }
    this.time[c] = at;
    this.now = Math.max(this.now, at);
    if (this.eventAt(c) <= at) this.deliverEvent(c, at);
    else if (t !== node.idleThread) this.runThread(c, this.thread(t));
  }

  /** Take the due event of core c: IPI first, then the timer, then external lines in time order. */
  private deliverEvent(c: number, at: number): void {
    const node = this.k.nodes[c]!;
    if (node.ipiPending && (this.ipiAt[c]! < 0 || this.ipiAt[c]! <= at)) {
      this.enter(c, "ipi", 0, 0, false);
      return;
    }
    if (node.timerDeadline <= at) {
      this.enter(c, "interrupt", this.k.config.timerIrq, 0, false);
      return;
    }
    for (let i = 0; i < this.irqs.length; i++) {
      const irq = this.irqs[i]!;
      if (irq.at > at) break;
      if (this.irqCore(irq.line) === c) {
        this.irqs.splice(i, 1);
        this.enter(c, "interrupt", irq.line, 0, false);
        return;
      }
    }
  }

  private runThread(c: number, u: UserThread): void {
    const t = u.tcb;
    if (t.state !== ThreadState.Running) {
      throw new Error(
        `machine: core ${c} runs thread "${t.name}" in state ${ThreadState[t.state]} (kernel left a non-running curThread)`,
      );
    }
    u.core = c;
    const pc = t.getReg(REG_PC);
    const prog = this.programAt(pc);
    const a = u.action;
    if (prog >= 0) {
      u.start(prog, this.programs[prog]!, pc);
    } else if (a !== null && pc === u.actionPc) {
      if (a.kind === "compute") {
        if (u.remaining > 0) return;
        u.advance();
      } else {
        // Still on the instruction: a restarted syscall or a retried faulting instruction.
        u.issued = false;
      }
    } else if (a !== null && u.issued && a.kind !== "compute" && pc === u.actionPc + INSTRUCTION_SIZE) {
      if (a.kind === "memory") u.lastAccessOk = false;
      u.advance();
    } else {
      // A jump to where no program is: the instruction fetch faults.
      u.action = { kind: "prefetch" };
      u.actionPc = pc;
      u.issued = false;
    }
    this.perform(c, u);
  }

  private programAt(pc: number): number {
    if (pc < PROGRAM_BASE) return -1;
    const off = pc - PROGRAM_BASE;
    if (off % PROGRAM_STRIDE !== 0) return -1;
    const i = off / PROGRAM_STRIDE;
    return i < this.programs.length ? i : -1;
  }

  private perform(c: number, u: UserThread): void {
    const a = u.action!;
    switch (a.kind) {
      case "compute":
        return;
      case "syscall":
        u.issued = true;
        this.enter(c, "syscall", syscallNumber(u.tcb), 0, false);
        return;
      case "exception":
        u.issued = true;
        this.enter(c, "exception", a.number, a.code, false);
        return;
      case "exit":
        u.issued = true;
        this.enter(c, "exception", EXIT_FAULT_NUMBER, a.code, false);
        return;
      case "prefetch":
        u.issued = true;
        this.enter(c, "vmfault", u.actionPc, abortSyndrome(true, false, FSC_TRANSLATION, 3), true);
        return;
      case "memory":
        this.access(c, u, a.access, a.vaddr, a.length, a.data);
        return;
    }
    throw new TypeError(`machine: thread "${u.tcb.name}" yielded an unknown request ${JSON.stringify(a)}`);
  }

  /** Check every page of the access, then perform it, or raise the VM fault of the first bad byte. */
  private access(
    c: number,
    u: UserThread,
    kind: Access,
    vaddr: number,
    length: number,
    data: Uint8Array | null,
  ) {
    const t = u.tcb;
    const vtable = t.ctes[TCB_VTABLE]!.cap;
    const vs = vtable.type === CapType.VSpace && vtable.obj instanceof VSpace ? vtable.obj : null;
    const write = kind === "write";
    const instr = kind === "execute";
    for (let off = 0; off < Math.max(length, 1); ) {
      const va = vaddr + off;
      const m = vs === null ? null : lookupMapping(vs, va);
      let fsc = -1;
      if (m === null) fsc = FSC_TRANSLATION;
      else if (!allowed(m, kind)) fsc = FSC_PERMISSION;
      if (fsc >= 0) {
        u.issued = true;
        this.enter(c, "vmfault", va, abortSyndrome(instr, write, fsc, vs === null ? 0 : 3), instr);
        return;
      }
      off += 2 ** m!.frame.sizeBits - (va - m!.vaddr);
    }
    const out = kind === "read" ? new Uint8Array(length) : EMPTY;
    for (let off = 0; off < length; ) {
      const va = vaddr + off;
      const m = lookupMapping(vs!, va)!;
      const bytes = m.frame.bytes();
      const base = va - m.vaddr;
      const n = Math.min(length - off, bytes.length - base);
      if (kind === "read") out.set(bytes.subarray(base, base + n), off);
      else if (write && data !== null) bytes.set(data.subarray(off, off + n), base);
      off += n;
    }
    u.lastRead = out;
    u.lastAccessOk = true;
    t.setReg(REG_PC, u.actionPc + INSTRUCTION_SIZE);
    this.time[c] = this.time[c]! + this.memoryCostNs;
    u.advance();
  }

  /** One kernel entry on core c at its clock (or when the big lock frees up). */
  private enter(c: number, kind: EntryKind, arg0: number, arg1: number, flag: boolean): void {
    const k = this.k;
    const at = Math.max(this.time[c]!, this.kernelFreeAt);
    const cost = kind === "syscall" ? this.syscallCostNs : this.entryCostNs;
    if (this.kernelPreemption) this.markDuring(c, at, at + cost);
    switch (kind) {
      case "syscall":
        syscallEntry(k, c, at, arg0);
        break;
      case "exception":
        userExceptionEntry(k, c, at, arg0, arg1);
        break;
      case "vmfault":
        vmFaultEntry(k, c, at, arg0, arg1, flag);
        break;
      case "interrupt":
        interruptEntry(k, c, at, arg0);
        break;
      case "ipi":
        this.ipiAt[c] = -1;
        ipiEntry(k, c, at);
        break;
    }
    if (this.raised.length > 0) this.unmarkDuring(c, at, at + cost);
    this.time[c] = at + cost;
    this.kernelFreeAt = at + cost;
    this.now = Math.max(this.now, at);
    for (let d = 0; d < this.ipiAt.length; d++) {
      if (!k.nodes[d]!.ipiPending) this.ipiAt[d] = -1;
      else if (this.ipiAt[d]! < 0) this.ipiAt[d] = at;
    }
    this.entries++;
    if (this.afterEachEntry !== null) this.afterEachEntry(k, kind, c);
  }

  /**
   * Interrupts of core c that fall due while the kernel runs [from, to] are pending in the
   * interrupt controller: mark them so the kernel's preemption points see them.
   */
  private markDuring(c: number, from: number, to: number): void {
    const k = this.k;
    const node = k.nodes[c]!;
    const timer = k.config.timerIrq;
    if (node.timerDeadline > from && node.timerDeadline <= to && k.irq.pending[timer] === 0) {
      raiseInterrupt(k, timer);
      this.raised.push(timer);
    }
    for (const irq of this.irqs) {
      if (irq.at > to) break;
      if (irq.at > from && this.irqCore(irq.line) === c && k.irq.pending[irq.line] === 0) {
        raiseInterrupt(k, irq.line);
        this.raised.push(irq.line);
      }
    }
  }

  /** After the entry: lines the kernel took are consumed; the others are delivered at their time. */
  private unmarkDuring(c: number, from: number, to: number): void {
    const k = this.k;
    const timer = k.config.timerIrq;
    for (const line of this.raised) {
      if (k.irq.pending[line] !== 0) {
        k.irq.pending[line] = 0;
        continue;
      }
      if (line === timer) continue;
      const i = this.irqs.findIndex(
        (q) => q.line === line && q.at > from && q.at <= to && this.irqCore(q.line) === c,
      );
      if (i >= 0) this.irqs.splice(i, 1);
    }
    this.raised.length = 0;
    let any = false;
    for (let i = 0; i < k.irq.pending.length; i++) {
      if (k.irq.pending[i] !== 0 && k.irq.masked[i] === 0) any = true;
    }
    k.irqPending = any;
  }
}

function allowed(m: Mapping, kind: Access): boolean {
  if (kind === "read") return (m.rights & RIGHT_READ) !== 0;
  if (kind === "write") return (m.rights & RIGHT_WRITE) !== 0;
  return !m.xn;
}

/** x7 as the signed syscall number AArch64 seL4 reads. */
function syscallNumber(t: TCB): number {
  const lo = t.regs[2 * REG_SYSCALL]!;
  const hi = t.regs[2 * REG_SYSCALL + 1]!;
  if (hi === 0xffffffff && lo >= 0x80000000) return lo | 0;
  return hi * TWO32 + lo;
}
