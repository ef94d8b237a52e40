/**
 * What sel4test's environment gives a test (its vka, vspace and sel4utils thread helpers), in
 * miniature, for root-task programs running on the Machine: a bump allocator of slots and
 * objects over the root task's untypeds (objects made with Untyped_Retype, as vka does), page
 * mapping that creates missing page tables (as sel4utils' vspace does), and thread creation.
 *
 * Failures of these helpers are failures of the test's set-up, not results: they throw
 * AllocError (as sel4test's ZF_LOGF aborts) naming the step and the seL4 error.
 */
import type { BootInfo } from "../kernel/state.js";
import {
  ENDPOINT_BITS,
  HUGE_PAGE_BITS,
  LARGE_PAGE_BITS,
  NOTIFICATION_BITS,
  ObjectType,
  PAGE_BITS,
  PAGE_TABLE_BITS,
  REG_PC,
  REG_SP,
  REG_X0,
  REPLY_BITS,
  SeL4Error,
  SLOT_BITS,
  TCB_BITS,
  VCPU_BITS,
  VSPACE_BITS,
} from "../kernel/types.js";
import {
  type Sel4Gen,
  seL4_ARM_Default_VMAttributes,
  seL4_CapInitThreadCNode,
  seL4_CapInitThreadTCB,
  seL4_CapInitThreadVSpace,
  seL4_DebugNameThread,
  seL4_ReadWrite,
  type Word,
} from "./libsel4.js";
import {
  seL4_ARM_Page_Map,
  seL4_ARM_PageTable_Map,
  seL4_SchedControl_ConfigureFlags,
  seL4_TCB_Configure,
  seL4_TCB_SetSchedParams,
  seL4_TCB_WriteRegisters,
  seL4_Untyped_Retype,
} from "./libsel4-invocations.js";
import type { ThreadContext } from "./machine.js";

export class AllocError extends Error {
  constructor(
    readonly step: string,
    readonly error: SeL4Error,
  ) {
    super(`${step} failed: ${SeL4Error[error] ?? error}`);
    this.name = "AllocError";
  }
}

/** Size in bits of an object of `type` (user-level vka_get_object_size; sizeBits for variable-sized types). */
export function objectSizeBits(type: ObjectType, sizeBits: number): number {
  switch (type) {
    case ObjectType.Untyped:
    case ObjectType.SchedContext:
      return sizeBits;
    case ObjectType.TCB:
      return TCB_BITS;
    case ObjectType.Endpoint:
      return ENDPOINT_BITS;
    case ObjectType.Notification:
      return NOTIFICATION_BITS;
    case ObjectType.Reply:
      return REPLY_BITS;
    case ObjectType.CapTable:
      return sizeBits + SLOT_BITS;
    case ObjectType.HugePage:
      return HUGE_PAGE_BITS;
    case ObjectType.LargePage:
      return LARGE_PAGE_BITS;
    case ObjectType.SmallPage:
      return PAGE_BITS;
    case ObjectType.VSpace:
      return VSPACE_BITS;
    case ObjectType.PageTable:
      return PAGE_TABLE_BITS;
    case ObjectType.VCPU:
      return VCPU_BITS;
  }
  return sizeBits;
}

/** Default scheduling-context size: room for a few refills (seL4_MinSchedContextBits is 7). */
export const DEFAULT_SC_BITS = 8;
/** Where the allocator hands out virtual addresses for mappings it makes in the root VSpace. */
export const ALLOC_VADDR_BASE = 0x4000_0000;

interface UntypedState {
  cptr: number;
  paddr: number;
  sizeBits: number;
  used: number;
}

export class Allocator {
  private nextSlot: number;
  private readonly endSlot: number;
  private readonly untypeds: UntypedState[] = [];
  private nextVaddr = ALLOC_VADDR_BASE;
  /** First SchedControl cap (one per core, in core order). */
  readonly schedControl: number;

  constructor(bootInfo: BootInfo) {
    this.nextSlot = bootInfo.empty.start;
    this.endSlot = bootInfo.empty.end;
    this.schedControl = bootInfo.schedControl.start;
    bootInfo.untypedList.forEach((ut, i) => {
      if (!ut.isDevice) {
        this.untypeds.push({
          cptr: bootInfo.untypeds.start + i,
          paddr: ut.paddr,
          sizeBits: ut.sizeBits,
          used: 0,
        });
      }
    });
  }

  /** An empty slot of the root CNode. */
  slot(): number {
    if (this.nextSlot >= this.endSlot) throw new AllocError("slot allocation", SeL4Error.NotEnoughMemory);
    return this.nextSlot++;
  }

  /** `pages` pages of unused virtual address space in the root VSpace. */
  vaddr(pages = 1): number {
    const v = this.nextVaddr;
    this.nextVaddr += pages * 2 ** PAGE_BITS;
    return v;
  }

  /** Create one object with Untyped_Retype into a fresh root-CNode slot; returns its cptr. */
  *alloc(u: ThreadContext, type: ObjectType, sizeBits = 0): Sel4Gen<number> {
    const bits = objectSizeBits(
      type,
      type === ObjectType.SchedContext && sizeBits === 0 ? DEFAULT_SC_BITS : sizeBits,
    );
    const size = 2 ** bits;
    // First fit, with the object aligned to its size as the kernel aligns it.
    const ut = this.untypeds.find((s) => Math.ceil(s.used / size) * size + size <= 2 ** s.sizeBits);
    if (ut === undefined)
      throw new AllocError(`no untyped for a ${ObjectType[type]} of ${bits} bits`, SeL4Error.NotEnoughMemory);
    const slot = this.slot();
    const userSize = type === ObjectType.SchedContext && sizeBits === 0 ? DEFAULT_SC_BITS : sizeBits;
    const err = yield* seL4_Untyped_Retype(
      u,
      ut.cptr,
      type,
      userSize,
      seL4_CapInitThreadCNode,
      0,
      0,
      slot,
      1,
    );
    if (err !== SeL4Error.NoError) throw new AllocError(`Untyped_Retype(${ObjectType[type]})`, err);
    ut.used = Math.ceil(ut.used / size) * size + size;
    return slot;
  }
}

/**
 * Map `frame` at `vaddr`, creating page tables while the kernel reports a missing one
 * (FailedLookup), as sel4utils' vspace does. Returns the final error.
 */
export function* mapPage(
  u: ThreadContext,
  a: Allocator,
  frame: Word,
  vaddr: Word,
  rights: number = seL4_ReadWrite,
  attr: Word = seL4_ARM_Default_VMAttributes,
  vspace: Word = seL4_CapInitThreadVSpace,
): Sel4Gen<SeL4Error> {
  for (let level = 0; level < 4; level++) {
    const err = yield* seL4_ARM_Page_Map(u, frame, vspace, vaddr, rights, attr);
    if (err !== SeL4Error.FailedLookup) return err;
    const pt = yield* a.alloc(u, ObjectType.PageTable);
    const e2 = yield* seL4_ARM_PageTable_Map(u, pt, vspace, vaddr, attr);
    if (e2 !== SeL4Error.NoError) return e2;
  }
  return yield* seL4_ARM_Page_Map(u, frame, vspace, vaddr, rights, attr);
}

/**
 * Start (or restart) a thread at a program entry with up to four arguments in x0..x3, through
 * TCB_WriteRegisters (as sel4utils_start_thread). Writes pc, sp, spsr and x0..x3.
 */
export function* startThread(
  u: ThreadContext,
  tcb: Word,
  entry: number,
  args: readonly Word[] = [],
  resume = true,
  sp: Word = 0,
): Sel4Gen<SeL4Error> {
  const regs: Word[] = [];
  regs[REG_PC] = entry;
  regs[REG_SP] = sp;
  for (let i = 0; i < 4; i++) regs[REG_X0 + i] = args[i] ?? 0;
  return yield* seL4_TCB_WriteRegisters(u, tcb, resume, 0, REG_X0 + 4, regs);
}

export interface ThreadOptions {
  /** Program entry (machine.program). */
  entry: number;
  args?: readonly Word[];
  /** Default 100; the root task runs at 255. */
  priority?: number;
  /** Default: priority. */
  mcp?: number;
  /** Scheduling context: budget and period in µs as seL4 takes them (default 1000 each), on `core` (default 0). */
  budgetUs?: number;
  periodUs?: number;
  extraRefills?: number;
  scBadge?: Word;
  scFlags?: number;
  core?: number;
  /** A passive thread gets no scheduling context. */
  passive?: boolean;
  /** Fault endpoint cptr in the root CNode (0: none). */
  faultEp?: Word;
  /** Give the thread a mapped IPC buffer (default true). */
  ipcBuffer?: boolean;
  /** Start it (default true). */
  resume?: boolean;
  name?: string;
}

export interface ThreadHandle {
  tcb: number;
  /** 0 for a passive thread. */
  sc: number;
  /** 0 when the thread has no IPC buffer. */
  ipcBufferFrame: number;
  ipcBufferVaddr: number;
}

function check(step: string, err: SeL4Error): void {
  if (err !== SeL4Error.NoError) throw new AllocError(step, err);
}

/**
 * Make a thread in the root task's CSpace and VSpace: TCB, IPC buffer, scheduling context,
 * priority, fault endpoint, then start it at `entry` (sel4utils_configure_thread + start).
 */
export function* createThread(u: ThreadContext, a: Allocator, o: ThreadOptions): Sel4Gen<ThreadHandle> {
  const tcb = yield* a.alloc(u, ObjectType.TCB);
  let frame = 0;
  let vaddr = 0;
  if (o.ipcBuffer ?? true) {
    frame = yield* a.alloc(u, ObjectType.SmallPage);
    vaddr = a.vaddr(1);
    check("map IPC buffer", yield* mapPage(u, a, frame, vaddr));
  }
  check(
    "TCB_Configure",
    yield* seL4_TCB_Configure(u, tcb, seL4_CapInitThreadCNode, 0, seL4_CapInitThreadVSpace, 0, vaddr, frame),
  );
  let sc = 0;
  if (!(o.passive ?? false)) {
    sc = yield* a.alloc(u, ObjectType.SchedContext);
    const budget = o.budgetUs ?? 1000;
    check(
      "SchedControl_ConfigureFlags",
      yield* seL4_SchedControl_ConfigureFlags(
        u,
        a.schedControl + (o.core ?? 0),
        sc,
        budget,
        o.periodUs ?? budget,
        o.extraRefills ?? 0,
        o.scBadge ?? 0,
        o.scFlags ?? 0,
      ),
    );
  }
  const prio = o.priority ?? 100;
  check(
    "TCB_SetSchedParams",
    yield* seL4_TCB_SetSchedParams(u, tcb, seL4_CapInitThreadTCB, o.mcp ?? prio, prio, sc, o.faultEp ?? 0),
  );
  if (o.name !== undefined) yield* seL4_DebugNameThread(u, tcb, o.name);
  check("TCB_WriteRegisters", yield* startThread(u, tcb, o.entry, o.args ?? [], o.resume ?? true));
  return { tcb, sc, ipcBufferFrame: frame, ipcBufferVaddr: vaddr };
}
