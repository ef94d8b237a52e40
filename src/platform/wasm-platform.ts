/**
 * The platform that runs Wasm PD threads for real: the kernel (a state machine) lives in the
 * main thread; every PD thread is a worker (pd-worker.ts) that runs only while the kernel has
 * that thread current on a core. Time is the host's monotonic clock in nanoseconds since boot.
 *
 * Per kernel entry the platform does what hardware and a kernel exit would: copy the thread's
 * registers x0..x8 and IPC buffer into the kernel's TCB, enter the kernel, then for every core
 * make the worker of the kernel's current thread run (copying its registers back) and make
 * any other worker stop at its next preemption check. Idle cores wait for their timer deadline
 * with a host timer; running workers check the deadline themselves at preemption checks.
 */
import { getPriority, setPriority } from "node:os";
import { setFlagsFromString } from "node:v8";
import {
  interruptEntry,
  ipiEntry,
  raiseInterrupt,
  syscallEntry,
  userExceptionEntry,
} from "../kernel/api/syscall.js";
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
import { INSTRUCTION_SIZE, REG_PC, REG_SYSCALL, REG_X0, ThreadState } from "../kernel/types.js";
import type { Sel4Gen } from "../pd/libsel4.js";
import { EXIT_FAULT_NUMBER } from "../pd/machine.js";
import { SyncThread } from "../pd/syncthread.js";
import {
  BELL_BYTES,
  BELL_EVENT_LOOP,
  Channel,
  clockNs,
  K_EXIT,
  K_LOAD_ERROR,
  K_READY,
  K_SYSCALL,
  K_TRAP,
  KIND,
  PREEMPT,
  R_CONTINUE,
  R_RESTART,
  R_START,
  R_TERMINATE,
  RESPONSE,
  S_REQUEST,
  S_RESUMED,
  STATE,
  TID,
} from "./channel.js";
import {
  applyHostPriority,
  type HostPriorities,
  hostThreadId,
  KERNEL_FIFO,
  setHostRealtime,
  UNSET,
} from "./host-priority.js";
import { InterruptInputs } from "./interrupt-inputs.js";
import {
  type InterruptSource,
  type PDProgram,
  type PDThread,
  type PlatformOptions,
  startThreadWorker,
} from "./programs.js";
import {
  DEVICE_POLL_MS,
  HALT_POLL_MS,
  HOST_CPUS,
  IDLE_POLL_MS,
  PUMP_SLICE_MS,
  pollBell,
} from "./pump-polling.js";
import { requestEntry } from "./request-entry.js";
import type { PeriodicTimer, PeriodicTimerOptions } from "./timer-device.js";

export { type InterruptSource, type PDProgram, type PlatformOptions, raiseFromSource } from "./programs.js";
export type { PeriodicTimer, PeriodicTimerOptions, RegisterPage } from "./timer-device.js";

/** The host nice value of the kernel's thread (the main thread), when the host allows it. */
const MAIN_NICE = -5;

/** Fake code addresses for program entry points, as in the Machine (see machine.ts). */
const ENTRY_BASE = 2 ** 41;
const ENTRY_STRIDE = 2 ** 32;

/** One PD thread as `status()` reports it. */
export interface ThreadStatus {
  name: string;
  /** The kernel's thread state (seL4 ThreadState name). */
  state: string;
  /** The core its scheduling context runs it on. */
  core: number;
  /** The host (Linux) thread id of its worker, 0 when unknown: to watch it with top -H or chrt -p. */
  hostThread: number;
}

export class WasmPlatform {
  readonly k: Kernel;
  /** Host time of kernel time 0; moved forward by `preload` so that loading takes no kernel time. */
  private t0 = clockNs();
  private readonly programs = new Map<number, PDProgram>();
  private readonly threads = new Map<TCB, PDThread>();
  private readonly running: (PDThread | null)[];
  private readonly timers: (ReturnType<typeof setTimeout> | null)[];
  /** The timer deadline each core's host timer was armed for. */
  private readonly armedFor: number[];
  private readonly lines = new Map<TCB, string>();
  private readonly fuel: number;
  /** Threads whose code is a TypeScript libsel4 program run synchronously (the monitor). */
  private readonly natives = new Map<
    TCB,
    { ctx: SyncThread; gen: Sel4Gen<void>; pcBefore: number; issued: boolean }
  >();
  private stopped = false;
  /**
   * The doorbell: every worker adds 1 and notifies after posting a request, so the main thread can
   * sleep in one Atomics.wait for all of them (see pump) instead of a promise per worker.
   */
  private readonly bellSab = new SharedArrayBuffer(BELL_BYTES);
  private readonly bell = new Int32Array(this.bellSab);
  /** Workers whose next request the pump waits for (running or loading). */
  private readonly watching = new Set<PDThread>();
  private pumpScheduled = false;
  /** Device models in other threads and periodic timer devices (interrupt-inputs.ts). */
  private readonly inputs: InterruptInputs;
  /** While true, no thread is dispatched (preload). */
  private preloading = false;
  private inEntry = false;
  /** True while a native thread's generator runs (stepNative); see raise. */
  private inNative = false;
  private readonly deferredLines: number[] = [];
  private timeBase = 0;
  private readonly hostPriorities: HostPriorities;

  constructor(
    k: Kernel,
    private readonly opts: PlatformOptions = {},
  ) {
    this.k = k;
    this.inputs = new InterruptInputs(k.irq.pending.length, (line) => this.takeLine(line));
    this.fuel = opts.fuel ?? 20_000;
    // PD code is compiled by TurboFan straight away. A PD's capvisor_start never returns, and V8
    // (Node 20) moves a running Wasm function from the baseline tier (Liftoff) to optimised code
    // only at its next call, so a long-running loop would stay in baseline code for good
    // (DESIGN.md: 1.25x native with --no-liftoff, 1.42x with default tiering).
    setFlagsFromString("--no-liftoff");
    this.hostPriorities = opts.hostPriorities ?? true;
    // The kernel's own thread (this one) runs before any PD's: it is what preempts them. Raising
    // a priority needs root (CAP_SYS_NICE); without it the main thread keeps nice 0.
    if (this.hostPriorities !== false)
      try {
        const self = hostThreadId();
        if (self !== 0 && getPriority(self) > MAIN_NICE) setPriority(self, MAIN_NICE);
        if (this.hostPriorities === "realtime") setHostRealtime(self, KERNEL_FIFO);
      } catch {
        // Not permitted.
      }
    this.running = k.nodes.map(() => null);
    this.timers = k.nodes.map(() => null);
    this.armedFor = k.nodes.map(() => Number.NaN);
    k.debugOut = (tcb, byte) => this.putChar(tcb, byte);
  }

  /** Register a program; returns the entry address a TCB's pc must hold to run it. */
  program(p: PDProgram): number {
    const entry = ENTRY_BASE + this.programs.size * ENTRY_STRIDE;
    this.programs.set(entry, p);
    return entry;
  }

  /**
   * Run `gen` as the code of thread `tcb` (which must have an IPC buffer): whenever the kernel
   * makes it current, its syscalls are executed at once, in the main thread, until it blocks.
   * The boot-time monitor (system/monitor.ts) is such a thread.
   */
  native(tcb: TCB, gen: Sel4Gen<void>): void {
    this.natives.set(tcb, { ctx: new SyncThread(tcb), gen, pcBefore: -1, issued: false });
  }

  /** Kernel time: ns since the platform was created, never behind what the kernel already saw. */
  now(): number {
    return Math.max(clockNs() - this.t0, this.timeBase);
  }
  /** Continue from a time the kernel already reached (the boot-time loader's clock). */
  setTimeBase(ns: number): void {
    this.timeBase = ns;
  }

  /** Start running whatever the kernel has made current. */
  start(): void {
    this.afterEntry();
  }

  /**
   * Instantiate the workers of `tcbs` (threads whose pc is a program's entry) and wait until all
   * are loaded, with the kernel's clock stopped meanwhile. Loading is boot work: a thread the
   * kernel made current while its worker was still compiling would otherwise be charged that time
   * at its first kernel entry, which puts a PD with a small budget (2 ms every 10 ms) hundreds of
   * milliseconds into refill debt before it has run an instruction.
   */
  async preload(tcbs: TCB[]): Promise<void> {
    const p0 = clockNs();
    this.preloading = true;
    const ths = tcbs.map((t) => this.threadFor(t)).filter((th) => th !== null);
    while (!this.stopped && ths.some((th) => th.phase === "loading"))
      await new Promise((r) => setTimeout(r, 1));
    this.preloading = false;
    this.t0 += clockNs() - p0;
  }

  /** An external interrupt on `line` (routed to core 0). */
  raise(line: number): void {
    if (this.stopped) return;
    if (this.inEntry) {
      raiseInterrupt(this.k, line);
      return;
    }
    // From a native thread's own code (a runtime PD's callback that asks to be woken): it is
    // running, between two syscalls; the interrupt is taken once its step has returned.
    if (this.inNative) {
      this.deferredLines.push(line);
      return;
    }
    this.enter(() => interruptEntry(this.k, 0, this.now(), line));
  }

  /** Take the interrupts raised while a native thread's code was running. */
  private raiseDeferred(): void {
    for (let line = this.deferredLines.shift(); line !== undefined; line = this.deferredLines.shift()) {
      this.inKernel(() => interruptEntry(this.k, 0, this.now(), line));
    }
  }

  /**
   * A device model in another thread raises interrupts through this, without the event loop:
   * `raiseFromSource(source, line)` sets the line's bit and rings the platform's doorbell, and
   * the pump enters the kernel at once. Lines 0..255.
   */
  interruptSource(): InterruptSource {
    const source = this.inputs.source(this.bellSab);
    this.schedulePump();
    return source;
  }

  /**
   * Arm a periodic timer device on `line` (timer-device.ts): it raises the line every `periodNs`
   * from host time `firstNs` (clockNs; default one period from now), `count` times or until
   * stopped. The kernel's own thread raises it at each expiry, as it takes its cores' timer
   * interrupts: no other host thread is in the way. With `registers` (a memory region,
   * BootedSystem.region), PDs that map it can read the device's expiry count.
   */
  periodicTimer(line: number, periodNs: number, opts: PeriodicTimerOptions = {}): PeriodicTimer {
    const timer = this.inputs.periodic(line, periodNs, opts);
    this.schedulePump();
    return timer;
  }

  /** The PD threads and their kernel states. */
  status(): ThreadStatus[] {
    const out: ThreadStatus[] = [];
    for (const th of this.threads.values())
      out.push({
        name: th.program.name,
        state: th.phase === "dead" ? "Faulted (could not load)" : ThreadState[th.tcb.state]!,
        core: th.tcb.core,
        hostThread: th.ch.ctl[TID]!,
      });
    return out;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) if (t !== null) clearTimeout(t);
    await Promise.all(
      [...this.threads.values()].map(async (th) => {
        th.ch.ctl[RESPONSE] = R_TERMINATE;
        Atomics.store(th.ch.ctl, STATE, S_RESUMED);
        Atomics.notify(th.ch.ctl, STATE);
        await th.worker.terminate();
      }),
    );
  }

  private putChar(tcb: TCB, byte: number): void {
    if (byte === 10) {
      this.opts.onLine?.(tcb.name || "?", this.lines.get(tcb) ?? "");
      this.lines.set(tcb, "");
    } else this.lines.set(tcb, (this.lines.get(tcb) ?? "") + String.fromCharCode(byte));
  }

  private enter(fn: () => void): void {
    this.inKernel(fn);
    this.afterEntry();
  }

  /** Run a kernel entry: interrupts raised meanwhile (raise) are marked pending, not entered. */
  private inKernel(fn: () => void): void {
    this.inEntry = true;
    try {
      fn();
    } finally {
      this.inEntry = false;
    }
  }

  /** After any kernel entry: deliver IPIs and make every core run the kernel's current thread. */
  private afterEntry(): void {
    if (this.stopped || this.preloading) return;
    for (let guard = 0; guard < 64; guard++) {
      let again = false;
      for (let c = 0; c < this.k.nodes.length; c++) {
        const node = this.k.nodes[c]!;
        if (!node.ipiPending) continue;
        const r = this.running[c];
        if (r !== null && r.phase === "running") Atomics.store(r.ch.ctl, PREEMPT, 1);
        else {
          ipiEntry(this.k, c, this.now());
          again = true;
        }
      }
      for (let c = 0; c < this.k.nodes.length; c++) if (this.dispatch(c)) again = true;
      if (!again) return;
    }
    // Still work to do (native threads making many syscalls in a row, e.g. a runtime PD and its
    // file server): continue after the event loop has had its turn instead of dropping it.
    setImmediate(() => this.afterEntry());
  }

  /** Make core c run the kernel's current thread. Returns true when it entered the kernel. */
  private dispatch(c: number): boolean {
    const node = this.k.nodes[c]!;
    const want = node.curThread;
    const cur = this.running[c] ?? null;
    if (cur !== null && cur.tcb === want && cur.phase === "running") {
      cur.ch.deadline[0] = this.t0 + node.timerDeadline;
      return false;
    }
    if (cur !== null && cur.phase === "running") {
      // The kernel chose another thread: this one stops at its next preemption check, and its
      // request then waits until it runs again (onRequest). The chosen thread starts now, as a
      // core switches at the interrupt, not after that check: the old thread's worker is a host
      // thread that the host may not even be running (a low-priority spinner among busier ones),
      // and waiting for it made a handler's start depend on the host's scheduling of a spinner.
      Atomics.store(cur.ch.ctl, PREEMPT, 1);
    }
    this.running[c] = null;
    const nat = this.natives.get(want);
    if (nat !== undefined) return this.stepNative(want, nat, c);
    if (want === node.idleThread) {
      this.armTimer(c);
      return false;
    }
    const th = this.threadFor(want);
    if (th === null || th.phase === "loading" || th.phase === "running" || th.phase === "dead") return false;
    th.core = c;
    if (th.phase === "pending") {
      // It was preempted just as it made a request: the request happens now.
      this.handleRequest(th);
      return true;
    }
    this.resume(th, c);
    return false;
  }

  /** Step a native thread until its next syscall blocks it (or it finishes). */
  private stepNative(
    t: TCB,
    nat: { ctx: SyncThread; gen: Sel4Gen<void>; pcBefore: number; issued: boolean },
    c: number,
  ): boolean {
    // A syscall the kernel rewound (Restart) is issued again; otherwise the program continues.
    if (!(nat.issued && t.getReg(REG_PC) === nat.pcBefore)) {
      this.inNative = true;
      let r: ReturnType<Sel4Gen<void>["next"]>;
      try {
        r = nat.gen.next();
      } finally {
        this.inNative = false;
      }
      this.raiseDeferred();
      if (r.done === true) {
        this.natives.delete(t);
        this.inKernel(() => userExceptionEntry(this.k, c, this.now(), EXIT_FAULT_NUMBER, 0));
        return true;
      }
      if (r.value.kind !== "syscall") throw new Error("a native thread can only make syscalls");
    }
    nat.issued = true;
    nat.pcBefore = t.getReg(REG_PC);
    this.inKernel(() => syscallEntry(this.k, c, this.now(), t.regs[2 * REG_SYSCALL]! | 0));
    return true;
  }

  private threadFor(t: TCB): PDThread | null {
    const known = this.threads.get(t);
    if (known !== undefined) return known;
    const pc = t.getReg(REG_PC);
    const program = this.programs.get(pc);
    if (program === undefined) return null;
    const ch = Channel.create();
    const worker = startThreadWorker(program, ch, this.bellSab, this.fuel);
    worker.unref();
    const th: PDThread = {
      tcb: t,
      program,
      entry: pc,
      ch,
      worker,
      phase: "loading",
      started: false,
      core: t.core,
      lastKind: 0,
      pcBefore: pc,
      host: UNSET,
    };
    this.threads.set(t, th);
    worker.on("error", (e) => {
      this.opts.onEvent?.(program.name, `worker error: ${e.message}`);
      program.worker?.onError?.(e);
    });
    this.watch(th);
    return th;
  }

  private resume(th: PDThread, c: number): void {
    const t = th.tcb;
    const pc = t.getReg(REG_PC);
    let response: number;
    if (!th.started || th.lastKind === K_TRAP || th.lastKind === K_EXIT) response = R_START;
    else if (pc === th.pcBefore) response = th.lastKind === K_SYSCALL ? R_RESTART : R_CONTINUE;
    else if (pc === th.pcBefore + INSTRUCTION_SIZE) response = R_CONTINUE;
    else response = R_START;
    if (response === R_START) {
      // The program starts at its entry: the pc moves past it, as the Machine does.
      th.started = true;
      t.setReg(REG_PC, th.entry + INSTRUCTION_SIZE);
    }
    th.ch.regs.set(t.regs.subarray(2 * REG_X0, 2 * REG_X0 + th.ch.regs.length));
    if (t.ipcBuffer !== null) th.ch.ipc.set(t.ipcBuffer);
    th.ch.deadline[0] = this.t0 + this.k.nodes[c]!.timerDeadline;
    th.phase = "running";
    th.core = c;
    this.running[c] = th;
    this.hostPriority(th);
    Atomics.store(th.ch.ctl, PREEMPT, 0);
    th.ch.ctl[RESPONSE] = response;
    Atomics.store(th.ch.ctl, STATE, S_RESUMED);
    Atomics.notify(th.ch.ctl, STATE);
    this.watch(th);
  }

  /**
   * Give the thread's host thread the host priority of its seL4 priority (host-priority.ts), when
   * it changed: at load, and again if the priority changes (seL4_TCB_SetPriority).
   */
  private hostPriority(th: PDThread): void {
    th.host = applyHostPriority(th.ch.ctl[TID]!, th.tcb.priority, this.hostPriorities, th.host);
  }

  /** Wait for the worker's next request: the pump picks it up. */
  private watch(th: PDThread): void {
    if (this.stopped) return;
    this.watching.add(th);
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.stopped) return;
    this.pumpScheduled = true;
    setImmediate(() => this.pump());
  }

  /**
   * The kernel's side of every handoff. It serves requests as they come, sleeping in
   * Atomics.wait on the doorbell between them (a futex wake, a few µs), and fires the timers of
   * idle cores on time. Every few milliseconds it returns to the event loop, so host timers,
   * signals and I/O still run; it stops when no worker is running and no core has a deadline.
   */
  private pump(): void {
    this.pumpScheduled = false;
    const sliceEnd = performance.now() + PUMP_SLICE_MS;
    let lastServed = Number.NEGATIVE_INFINITY;
    for (;;) {
      if (this.stopped) return;
      // A worker waits for a host service that the event loop serves: let it run now.
      if (Atomics.exchange(this.bell, BELL_EVENT_LOOP, 0) !== 0) break;
      const seen = Atomics.load(this.bell, 0);
      let served = false;
      for (const th of this.watching) {
        if (Atomics.load(th.ch.ctl, STATE) !== S_REQUEST) continue;
        this.watching.delete(th);
        this.onRequest(th);
        served = true;
      }
      if (this.fireIdleTimers()) served = true;
      if (this.inputs.takeRaised()) served = true;
      const t = performance.now();
      if (served) {
        lastServed = t;
        continue;
      }
      const left = sliceEnd - t;
      if (left <= 0) break;
      const next = this.msToIdleDeadline();
      const device = this.inputs.msToNextExpiry();
      if (this.watching.size === 0 && !Number.isFinite(next) && !this.inputs.active()) return;
      // Sleep until the last stretch before the next deadline, then poll to it (IDLE_POLL_MS).
      const sleep = Math.min(left, next - IDLE_POLL_MS, device - DEVICE_POLL_MS);
      if (sleep <= 0) {
        pollBell(this.bell, seen, t + Math.min(left, next, device));
        continue;
      }
      if (t - lastServed < HALT_POLL_MS && this.runningWorkers() < HOST_CPUS) {
        pollBell(this.bell, seen, Math.min(lastServed + HALT_POLL_MS, t + sleep));
        continue;
      }
      Atomics.wait(this.bell, 0, seen, sleep);
    }
    this.schedulePump();
  }

  /**
   * How many workers are running PD code now (each one busies a host CPU). Not just the cores'
   * current workers: a worker the kernel switched away from runs on until its next preemption
   * check (dispatch), and a low-priority spinner that the host is slow to run may take hundreds
   * of µs to get there. Counting only the cores' slots, the kernel's thread halt-polled through
   * that time at every bench:rt tick (a fifth of a host CPU), and its own wake-ups then came
   * late more often: Linux gives less wake-up preference to a thread that uses its share.
   */
  private runningWorkers(): number {
    let n = 0;
    for (const th of this.threads.values()) if (th.phase === "running") n++;
    return n;
  }

  /** A device raised `line`: tell the probe whether it coalesced with a pending one, and take it. */
  private takeLine(line: number): void {
    const coalesced = this.k.irq.masked[line] !== 0 && this.k.irq.pending[line] !== 0;
    this.opts.onInterrupt?.(line, clockNs(), coalesced);
    this.raise(line);
  }

  /** Enter the kernel for idle cores whose timer deadline has passed. */
  private fireIdleTimers(): boolean {
    if (this.preloading) return false;
    let fired = false;
    for (let c = 0; c < this.k.nodes.length; c++) {
      const node = this.k.nodes[c]!;
      if (node.curThread !== node.idleThread || this.running[c] !== null) continue;
      if (this.now() < node.timerDeadline) continue;
      this.enter(() => interruptEntry(this.k, c, this.now(), this.k.config.timerIrq));
      fired = true;
    }
    return fired;
  }

  /** Milliseconds until the earliest idle core's timer deadline (Infinity when none). */
  private msToIdleDeadline(): number {
    let next = Number.POSITIVE_INFINITY;
    for (let c = 0; c < this.k.nodes.length; c++) {
      const node = this.k.nodes[c]!;
      if (node.curThread === node.idleThread) next = Math.min(next, node.timerDeadline);
    }
    return Number.isFinite(next) ? Math.max(0, (next - this.now()) / 1e6) : next;
  }

  private onRequest(th: PDThread): void {
    const kind = th.ch.ctl[KIND]!;
    if (kind === K_READY) {
      th.phase = "waiting";
      // Boot work (preload stops the kernel's clock): in realtime mode this spawns chrt.
      this.hostPriority(th);
      this.afterEntry();
      return;
    }
    if (kind === K_LOAD_ERROR) {
      th.phase = "dead";
      this.opts.onEvent?.(th.program.name, "could not be loaded (see the message above); it stays stopped");
      return;
    }
    th.phase = "pending";
    const c = th.core;
    if (this.running[c] === th) this.running[c] = null;
    if (this.k.nodes[c]!.curThread !== th.tcb) {
      // The kernel already switched this core away: the request waits until the thread runs again.
      this.afterEntry();
      return;
    }
    this.handleRequest(th);
    this.afterEntry();
  }

  /** Enter the kernel for the thread's pending request (it is the current thread of th.core). */
  private handleRequest(th: PDThread): void {
    this.inKernel(() => requestEntry(this.k, th, this.now(), this.opts));
  }

  private armTimer(c: number): void {
    const deadline = this.k.nodes[c]!.timerDeadline;
    const old = this.timers[c];
    // Keep a timer already armed for this deadline: every kernel entry on any core re-arms the
    // idle cores, and re-creating the timer each time (at least 1 ms in Node) would postpone it
    // for as long as another core enters the kernel more often than once a millisecond.
    if (old !== null && old !== undefined && this.armedFor[c] === deadline) return;
    if (old !== null && old !== undefined) clearTimeout(old);
    this.timers[c] = null;
    this.armedFor[c] = deadline;
    if (!Number.isFinite(deadline) || this.stopped) return;
    const ms = Math.max(0, (deadline - this.now()) / 1e6);
    const timer = setTimeout(() => {
      this.timers[c] = null;
      if (this.k.nodes[c]!.curThread !== this.k.nodes[c]!.idleThread) return;
      this.enter(() => interruptEntry(this.k, c, this.now(), this.k.config.timerIrq));
    }, ms);
    timer.unref();
    this.timers[c] = timer;
  }
}
