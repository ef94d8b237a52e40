/**
 * Kernel data structures: capabilities, capability slots with their derivation-tree links,
 * and the kernel objects. This is capvisor's counterpart of seL4's include/object/structures.h;
 * the behaviour of each object lives in object/<type>.ts.
 *
 * 64-bit words that can carry arbitrary user data (badges, guards, message registers, register
 * contents) are kept as two unsigned 32-bit halves so that they are exact and the IPC path
 * allocates nothing. Quantities seL4 bounds well below 2^53 (sizes, addresses, labels, counts,
 * times) are plain numbers.
 */
import {
  CapType,
  EndpointState,
  IPC_BUFFER_WORDS,
  NotificationState,
  NUM_REGISTERS,
  ObjectType,
  TCB_CNODE_ENTRIES,
  ThreadState,
} from "./types.js";

/** Every object that Untyped_Retype creates. `paddr` and `sizeBits` place it in physical memory. */
export abstract class KObject {
  abstract readonly objType: ObjectType;
  /** False once the object's last capability was deleted and the object finalised. */
  live = true;
  constructor(
    readonly paddr: number,
    readonly sizeBits: number,
  ) {}
}

/**
 * A capability. One class with every field so V8 keeps cap accesses monomorphic; which fields
 * mean something depends on `type`. A cap object belongs to exactly one slot: copying a cap
 * makes a new Cap (see Cap.clone), so fields such as an Untyped's free index can be updated in
 * place as seL4 updates the cap word in the slot.
 */
export class Cap {
  type: CapType;
  /** The object for object caps; null for Null, Untyped, IRQControl, IRQHandler, Domain, SchedControl, ASIDControl. */
  obj: KObject | null;
  /** RIGHT_* bits (endpoint, notification, frame); for Reply caps bit RIGHT_GRANT is canGrant. */
  rights = 0;
  badgeLo = 0;
  badgeHi = 0;
  /** Untyped: base physical address; Frame: the frame's address (also obj.paddr). */
  paddr = 0;
  /** Untyped: block size; CNode: radix; Frame: frame size bits. */
  sizeBits = 0;
  /** Untyped: bytes used from the start (seL4 keeps this in 16-byte units; the value is the same). */
  freeIndex = 0;
  isDevice = false;
  /** CNode guard, up to 64 bits. */
  guardLo = 0;
  guardHi = 0;
  guardSize = 0;
  /** Frame/PageTable/VSpace: mapping. mappedAsid 0 = not mapped. */
  mappedAsid = 0;
  mappedVaddr = 0;
  /** IRQHandler: the interrupt line; SchedControl: the core; ASIDPool: the pool's ASID base. */
  irq = 0;
  /** Zombie: slots of the dying CNode/TCB still to be deleted (seL4 capZombieNumber). */
  zombieNumber = 0;
  /** Zombie: the CNode radix, or ZOMBIE_TYPE_TCB for a TCB (seL4 capZombieType). */
  zombieType = 0;

  constructor(type: CapType, obj: KObject | null) {
    this.type = type;
    this.obj = obj;
  }

  clone(): Cap {
    const c = new Cap(this.type, this.obj);
    c.rights = this.rights;
    c.badgeLo = this.badgeLo;
    c.badgeHi = this.badgeHi;
    c.paddr = this.paddr;
    c.sizeBits = this.sizeBits;
    c.freeIndex = this.freeIndex;
    c.isDevice = this.isDevice;
    c.guardLo = this.guardLo;
    c.guardHi = this.guardHi;
    c.guardSize = this.guardSize;
    c.mappedAsid = this.mappedAsid;
    c.mappedVaddr = this.mappedVaddr;
    c.irq = this.irq;
    c.zombieNumber = this.zombieNumber;
    c.zombieType = this.zombieType;
    return c;
  }

  get isNull(): boolean {
    return this.type === CapType.Null;
  }
  get hasBadge(): boolean {
    return (this.badgeLo | this.badgeHi) !== 0;
  }
}

/** The one null cap; never mutated. */
export const NULL_CAP: Cap = Object.freeze(new Cap(CapType.Null, null)) as Cap;

/**
 * A capability table entry (seL4 cte_t): the cap plus its node in the mapping database, the
 * doubly-linked list in derivation-tree preorder that seL4 uses (manual §3.1.2). A slot's
 * children are the entries immediately after it for which isMDBParentOf holds.
 */
export class Slot {
  cap: Cap = NULL_CAP;
  mdbPrev: Slot | null = null;
  mdbNext: Slot | null = null;
  revocable = false;
  firstBadged = false;
  constructor(
    /** The CNode or TCB that holds this slot. */
    readonly owner: CNodeObj | TCB,
    readonly index: number,
  ) {}
}

export class CNodeObj extends KObject {
  readonly objType = ObjectType.CapTable;
  /** Slots are created on first use: a 2^radix CNode need not hold 2^radix objects. */
  private readonly slots: (Slot | undefined)[] = [];
  constructor(
    paddr: number,
    readonly radix: number,
  ) {
    super(paddr, radix + 5);
  }
  slot(i: number): Slot {
    let s = this.slots[i];
    if (s === undefined) {
      s = new Slot(this, i);
      this.slots[i] = s;
    }
    return s;
  }
  /** The slot if it was ever touched, else undefined (an untouched slot holds a null cap). */
  existingSlot(i: number): Slot | undefined {
    return this.slots[i];
  }
  /** Slots that were ever touched (for iteration in invariants and finalisation). */
  *usedSlots(): IterableIterator<Slot> {
    for (const s of this.slots) if (s !== undefined) yield s;
  }
}

export class Endpoint extends KObject {
  readonly objType = ObjectType.Endpoint;
  state: EndpointState = EndpointState.Idle;
  qHead: TCB | null = null;
  qTail: TCB | null = null;
}

export class Notification extends KObject {
  readonly objType = ObjectType.Notification;
  state: NotificationState = NotificationState.Idle;
  qHead: TCB | null = null;
  qTail: TCB | null = null;
  /** The notification word, OR of the signalled badges. */
  msgLo = 0;
  msgHi = 0;
  boundTCB: TCB | null = null;
  /** MCS: scheduling context lent to passive threads woken by this notification. */
  sc: SchedContext | null = null;
}

/** MCS Reply object (manual §6.2): records who waits for the reply, and the call stack. */
export class Reply extends KObject {
  readonly objType = ObjectType.Reply;
  /** The caller blocked on this reply, or the server that holds it during Recv. */
  tcb: TCB | null = null;
  /** Call-stack links: replyPrev is the reply below (or the SC at the bottom via scDonor). */
  prev: Reply | null = null;
  next: Reply | null = null;
  /** When this reply is the head of an SC's call stack: that SC (seL4 replyNext as call_stack). */
  sc: SchedContext | null = null;
}

/** One refill of a sporadic server: `amount` time units usable from time `time`. */
export interface Refill {
  time: number;
  amount: number;
}

export class SchedContext extends KObject {
  readonly objType = ObjectType.SchedContext;
  /** Time unit: nanoseconds. */
  period = 0;
  budget = 0;
  /** Circular buffer of refills, capacity refillMax (fixed by the object's size). */
  readonly refills: Float64Array;
  refillHead = 0;
  refillCount = 0;
  /** Capacity of `refills` (seL4 refill_absolute_max): fixed by the object's size. */
  readonly refillMax: number;
  /**
   * Configured number of refills (seL4 scRefillMax = extra_refills + MIN_REFILLS); the circular
   * buffer wraps at this index. 0 until the SC is first configured (seL4 sc_active is `> 0`).
   */
  maxRefills = 0;
  /** True when configured with seL4_SchedContext_Sporadic; otherwise round robin refills. */
  sporadic = false;
  core = 0;
  tcb: TCB | null = null;
  notification: Notification | null = null;
  /** Head of the call stack of replies whose callers this SC was donated by. */
  reply: Reply | null = null;
  /** The TCB that did YieldTo onto this SC. */
  yieldFrom: TCB | null = null;
  badgeLo = 0;
  badgeHi = 0;
  /** Time consumed since the last Consumed / YieldTo / timeout report. */
  consumed = 0;
  /** False until SchedControl_Configure; unconfigured SCs cannot run threads. */
  configured = false;
  constructor(paddr: number, sizeBits: number, refillMax: number) {
    super(paddr, sizeBits);
    this.refillMax = refillMax;
    this.refills = new Float64Array(2 * refillMax);
  }
}

/** A physical frame: 4 KiB, 2 MiB or 1 GiB. Memory is allocated on first touch. */
export class Frame extends KObject {
  readonly objType: ObjectType;
  readonly isDevice: boolean;
  private mem: Uint8Array | null = null;
  constructor(paddr: number, sizeBits: number, objType: ObjectType, isDevice: boolean) {
    super(paddr, sizeBits);
    this.objType = objType;
    this.isDevice = isDevice;
  }
  /** The frame's bytes; a PD layer may substitute a view of its own memory (DESIGN decision 5). */
  bytes(): Uint8Array {
    if (this.mem === null) this.mem = new Uint8Array(2 ** this.sizeBits);
    return this.mem;
  }
  backWith(mem: Uint8Array): void {
    if (mem.byteLength !== 2 ** this.sizeBits) throw new RangeError("frame backing has the wrong size");
    this.mem = mem;
  }
  get touched(): boolean {
    return this.mem !== null;
  }
}

/** A page table (one level of the AArch64 translation; we keep the levels' coverage only). */
export class PageTable extends KObject {
  readonly objType = ObjectType.PageTable;
  /** Set by PageTable_Map. */
  vspace: VSpace | null = null;
  /** Virtual base this table translates, and the level: 1 covers 1 GiB (maps 2 MiB/4 KiB), 2 covers 2 MiB. */
  vaddr = 0;
  level = 0;
}

/** The VSpace root (AArch64 top-level table). Mappings are keyed by page-aligned vaddr. */
export class VSpace extends KObject {
  readonly objType = ObjectType.VSpace;
  asid = 0;
  /** vaddr of the first byte of the mapping -> mapping */
  readonly mappings = new Map<number, Mapping>();
  /** Page tables mapped into this VSpace, keyed by level and the vaddr they cover. */
  readonly tables = new Map<string, PageTable>();
}

export interface Mapping {
  frame: Frame;
  vaddr: number;
  /** RIGHT_READ / RIGHT_WRITE of the mapping; execute is allowed unless `xn`. */
  rights: number;
  xn: boolean;
  /** The cap (slot) that created the mapping: unmapped when that cap is deleted. */
  slot: Slot;
}

export class ASIDPool extends KObject {
  readonly objType = ObjectType.SmallPage; // an ASID pool is carved from a 4 KiB untyped
  readonly entries: (VSpace | null)[] = new Array(512).fill(null);
  constructor(
    paddr: number,
    readonly asidBase: number,
  ) {
    super(paddr, 12);
  }
}

export class VCPU extends KObject {
  readonly objType = ObjectType.VCPU;
  tcb: TCB | null = null;
  /** Virtual GIC list registers (pending virtual IRQs) and system registers, by number. */
  readonly regs = new Map<number, number>();
  readonly lrs: number[] = [];
  readonly vppiMasked = new Set<number>();
}

/** A pending fault (seL4 seL4_Fault_t): type plus the words its message needs. */
export interface Fault {
  type: number;
  /** Fault-specific words, laid out as the fault message (see api/faults.ts). */
  words: number[];
}

/** Lookup fault details recorded by CSpace lookup (seL4 lookup_fault_t). */
export interface LookupFault {
  type: number;
  bitsLeft: number;
  /** GuardMismatch: guard found (two halves); DepthMismatch: bits found in bitsFound. */
  guardFoundLo: number;
  guardFoundHi: number;
  bitsFound: number;
}

export class TCB extends KObject {
  readonly objType = ObjectType.TCB;
  state: ThreadState = ThreadState.Inactive;
  /** Registers in seL4_UserContext order, each as lo/hi halves. */
  readonly regs = new Uint32Array(2 * NUM_REGISTERS);
  /** The IPC buffer, or null when the thread has none or its frame is gone. */
  ipcBuffer: Uint32Array | null = null;
  ipcBufferVaddr = 0;
  /** TCB cnode: CTable, VTable, IPCBuffer frame, fault handler, timeout handler (MCS). */
  readonly ctes: Slot[];
  priority = 0;
  mcp = 0;
  domain = 0;
  /** Core the thread runs on (follows its scheduling context under MCS). */
  core = 0;
  flags = 0;
  tlsBase = 0;
  // --- scheduling ---
  sc: SchedContext | null = null;
  yieldTo: SchedContext | null = null;
  inReadyQueue = false;
  inReleaseQueue = false;
  schedNext: TCB | null = null;
  schedPrev: TCB | null = null;
  // --- IPC ---
  epNext: TCB | null = null;
  epPrev: TCB | null = null;
  /** Object the thread is blocked on (endpoint or notification), and the blocking details. */
  blockingObject: Endpoint | Notification | null = null;
  blockingBadgeLo = 0;
  blockingBadgeHi = 0;
  blockingCanGrant = false;
  blockingCanGrantReply = false;
  blockingIsCall = false;
  /** MCS: the reply object this thread is blocked on (caller) or will receive with (server). */
  reply: Reply | null = null;
  boundNotification: Notification | null = null;
  /** A pending fault to deliver, and the last lookup failure (for fault messages). */
  fault: Fault | null = null;
  lookupFault: LookupFault | null = null;
  vcpu: VCPU | null = null;
  /** Debug name (seL4_DebugNameThread). */
  name = "";
  /** pc of the instruction that entered the kernel; a restarted syscall resumes here (seL4 FaultIP). */
  faultIP = 0;

  constructor(paddr: number, sizeBits: number) {
    super(paddr, sizeBits);
    const ctes: Slot[] = [];
    for (let i = 0; i < TCB_CNODE_ENTRIES; i++) ctes.push(new Slot(this, i));
    this.ctes = ctes;
  }

  getReg(r: number): number {
    return this.regs[2 * r]! + this.regs[2 * r + 1]! * 4294967296;
  }
  /** Set a register from a number in [0, 2^53); use setRegHalves for full 64-bit values. */
  setReg(r: number, v: number): void {
    this.regs[2 * r] = v >>> 0;
    this.regs[2 * r + 1] = Math.floor(v / 4294967296) >>> 0;
  }
  setRegHalves(r: number, lo: number, hi: number): void {
    this.regs[2 * r] = lo;
    this.regs[2 * r + 1] = hi;
  }
}

/** Interrupt line states (seL4 irq_state_t). */
export enum IRQState {
  Inactive = 0,
  Signal = 1,
  Timer = 2,
  Reserved = 3,
}

/** Helper to allocate the IPC buffer view of a frame at a byte offset. */
export function ipcBufferView(frame: Frame, offset: number): Uint32Array {
  const b = frame.bytes();
  return new Uint32Array(b.buffer, b.byteOffset + offset, 2 * IPC_BUFFER_WORDS);
}
