/**
 * All kernel state in one place (DESIGN.md decision 1). seL4 keeps these as globals
 * (ksCurThread, ksReadyQueues, current_syscall_error, ...); we keep them in one Kernel object
 * so several kernels can coexist (tests, model checking) and the whole state can be checked
 * after every step. Per-core state mirrors seL4's SMP `NODE_STATE`.
 */
import {
  type Cap,
  type CNodeObj,
  type Fault,
  IRQState,
  type KObject,
  type LookupFault,
  type Notification,
  type SchedContext,
  type Slot,
  type TCB,
} from "./structures.js";
import { NUM_PRIORITIES, SeL4Error } from "./types.js";

/** seL4 scheduler action: resume the current thread, choose a new one, or switch to a given one. */
export const ACTION_RESUME = 0;
export const ACTION_CHOOSE = 1;
export const ACTION_SWITCH = 2;

export class CoreState {
  curThread!: TCB;
  idleThread!: TCB;
  schedulerAction = ACTION_RESUME;
  /** With ACTION_SWITCH: the thread to switch to (seL4 stores the pointer in the action). */
  switchTarget: TCB | null = null;
  /** Ready queues indexed by domain * 256 + priority. */
  readonly qHead: (TCB | null)[];
  readonly qTail: (TCB | null)[];
  /** Bitmap of non-empty priorities per domain: 8 words of 32 bits each. */
  readonly readyBitmap: Uint32Array;
  /** MCS release queue: threads whose head refill is not yet ready, ordered by release time. */
  releaseHead: TCB | null = null;
  /** Time (ns) of the last kernel entry on this core; time since then is charged at the next entry. */
  curTime = 0;
  /** Time consumed by the current thread since the last commit. */
  consumed = 0;
  curSC!: SchedContext;
  /** True when the timer must be reprogrammed before returning to user level. */
  reprogram = true;
  /** When the platform must next enter the kernel with a timer interrupt on this core. */
  timerDeadline = Number.POSITIVE_INFINITY;
  /**
   * capvisor, not seL4: the thread whose round-robin budget end `timerDeadline` leaves out,
   * because that end would change nothing while no other thread is ready at its priority (see
   * setNextInterrupt in core/thread.ts); null when the deadline includes the budget end.
   */
  ticklessFor: TCB | null = null;
  /** Another core changed this core's scheduling decision: the platform must call ipiEntry (seL4 IPI). */
  ipiPending = false;
  constructor(numDomains: number) {
    this.qHead = new Array(numDomains * NUM_PRIORITIES).fill(null);
    this.qTail = new Array(numDomains * NUM_PRIORITIES).fill(null);
    this.readyBitmap = new Uint32Array(numDomains * (NUM_PRIORITIES / 32));
  }
}

/** Details of the error the current syscall ends with (seL4 current_syscall_error). */
export class SyscallError {
  type: SeL4Error = SeL4Error.NoError;
  invalidArgumentNumber = 0;
  invalidCapNumber = 0;
  rangeErrorMin = 0;
  rangeErrorMax = 0;
  memoryLeft = 0;
  failedLookupWasSource = false;
}

export interface KernelConfig {
  /** Number of cores (seL4 CONFIG_MAX_NUM_NODES). */
  cores: number;
  /** Number of scheduling domains (CONFIG_NUM_DOMAINS). */
  domains: number;
  /** Domain schedule: [domain, length in ns] entries run round robin. */
  domainSchedule: ReadonlyArray<readonly [number, number]>;
  /** Root CNode radix (CONFIG_ROOT_CNODE_SIZE_BITS). */
  rootCNodeBits: number;
  /** Bytes of RAM handed to the root task as untyped memory. */
  memoryBytes: number;
  /** Device memory regions [paddr, sizeBits], given as device untypeds. */
  deviceRegions: ReadonlyArray<readonly [number, number]>;
  /** Number of interrupt lines. */
  irqLines: number;
  /** Kernel worst-case execution time in ns; MIN_BUDGET = 2 * this (seL4 MCS). */
  kernelWcetNs: number;
  /** Timer interrupt line per core (reserved, as seL4 reserves KERNEL_TIMER_IRQ). */
  timerIrq: number;
  /** Work units before a preemption point lets a pending interrupt in (CONFIG_MAX_NUM_WORK_UNITS_PER_PREEMPTION). */
  workUnitsPerPreemption: number;
  /** Default budget of the root task's scheduling context, ns. */
  rootBudgetNs: number;
}

export const DEFAULT_CONFIG: KernelConfig = {
  cores: 1,
  domains: 1,
  domainSchedule: [[0, 1_000_000]],
  rootCNodeBits: 12,
  memoryBytes: 256 * 1024 * 1024,
  deviceRegions: [],
  irqLines: 256,
  kernelWcetNs: 1_000,
  timerIrq: 0,
  workUnitsPerPreemption: 100,
  rootBudgetNs: 1_000_000_000,
};

/** Counters a user can read (and the benchmarks and tests rely on). */
export class KernelStats {
  syscalls = 0;
  fastpathCalls = 0;
  fastpathReplyRecvs = 0;
  interrupts = 0;
  /** Interrupts of the kernel's own timer: budget ends, releases, domain ends. */
  timerInterrupts = 0;
  preemptions = 0;
  faults = 0;
  contextSwitches = 0;
}

/** What the kernel hands the root task at boot (the parts of seL4_BootInfo we model). */
export interface BootInfo {
  /** First and one-past-last empty slot in the root CNode. */
  empty: { start: number; end: number };
  untypeds: { start: number; end: number };
  untypedList: { paddr: number; sizeBits: number; isDevice: boolean }[];
  /** SchedControl caps, one per core. */
  schedControl: { start: number; end: number };
  rootCNodeBits: number;
  numCores: number;
}

/** Per-interrupt-line state (seL4 intStateIRQTable plus the notification of its handler cap). */
export class IRQTable {
  readonly state: IRQState[];
  /** The IRQHandler cap slots of seL4's irq node: where SetNotification stores the notification cap. */
  readonly handlerSlots: Slot[];
  /** Lines raised while masked (not yet acked): they stay pending until Ack. */
  readonly pending: Uint8Array;
  readonly masked: Uint8Array;
  /** Which core a line is routed to. */
  readonly target: Uint8Array;
  constructor(lines: number, slots: Slot[]) {
    this.state = new Array(lines).fill(IRQState.Inactive);
    this.handlerSlots = slots;
    this.pending = new Uint8Array(lines);
    this.masked = new Uint8Array(lines);
    this.target = new Uint8Array(lines);
  }
}

export class Kernel {
  readonly config: KernelConfig;
  readonly nodes: CoreState[];
  /** Index of the core whose kernel entry is being handled (seL4 getCurrentCPUIndex). */
  cur = 0;
  // --- domain scheduling (global in seL4) ---
  curDomain = 0;
  domainScheduleIdx = 0;
  domainTime = 0;
  // --- per-syscall scratch state (seL4 globals) ---
  readonly syscallError = new SyscallError();
  lookupFault: LookupFault | null = null;
  /** Bits left unresolved by the last resolveAddressBits. */
  bitsRemaining = 0;
  currentFault: Fault | null = null;
  /** Slots of the extra caps of the message being sent (current_extra_caps). */
  readonly extraCaps: (Slot | null)[] = [null, null, null];
  workUnits = 0;
  /** Set when an interrupt arrived during a long operation: the operation yields at its next preemption point. */
  irqPending = false;
  irq!: IRQTable;
  /** Every live object (for invariants and inspection). */
  readonly objects = new Set<KObject>();
  readonly stats = new KernelStats();
  /** Console bytes written with seL4_DebugPutChar, per thread name. */
  debugOut: (tcb: TCB, byte: number) => void = () => {};
  bootInfo!: BootInfo;
  rootCNode!: CNodeObj;
  rootThread!: TCB;
  /** ASID table: pool per high ASID bits (seL4 armKSASIDTable). */
  readonly asidTable: (import("./structures.js").ASIDPool | null)[] = [];
  /** Cap identifying the notification-bound IRQ lines for quick delivery, by line. */
  irqNotification(line: number): Notification | null {
    const c: Cap = this.irq.handlerSlots[line]!.cap;
    return c.obj as Notification | null;
  }

  constructor(config: KernelConfig) {
    this.config = config;
    this.nodes = [];
    for (let i = 0; i < config.cores; i++) this.nodes.push(new CoreState(config.domains));
  }

  /** The core state of the current kernel entry (seL4 NODE_STATE). */
  get node(): CoreState {
    return this.nodes[this.cur]!;
  }
  get curThread(): TCB {
    return this.nodes[this.cur]!.curThread;
  }
}
