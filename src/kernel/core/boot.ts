/**
 * Boot (seL4 src/kernel/boot.c and arch boot): create the idle threads, the root task (its
 * TCB, CNode, VSpace, IPC buffer, scheduling context) and hand the root task every remaining
 * byte of memory as Untyped capabilities, plus the control caps (IRQControl, ASIDControl,
 * DomainSet, one SchedControl per core). Slot numbers follow seL4's seL4_RootCNodeCapSlots.
 *
 * Boot objects live in a reserved region below the untyped memory, as seL4's boot objects live
 * in memory the kernel never hands out.
 */

import { cteInsert } from "../object/cnode.js";
import { tableKey } from "../object/vspace.js";
import { type BootInfo, DEFAULT_CONFIG, IRQTable, Kernel, type KernelConfig } from "../state.js";
import {
  ASIDPool,
  Cap,
  CNodeObj,
  Frame,
  IRQState,
  ipcBufferView,
  type KObject,
  PageTable,
  SchedContext,
  type Slot,
  TCB,
  VSpace,
} from "../structures.js";
import {
  ALL_RIGHTS,
  CapType,
  HUGE_PAGE_BITS,
  LARGE_PAGE_BITS,
  MAX_PRIO,
  MAX_UNTYPED_BITS,
  MIN_REFILLS,
  MIN_UNTYPED_BITS,
  ObjectType,
  PAGE_BITS,
  PAGE_TABLE_BITS,
  REFILL_BYTES,
  SCHED_CONTEXT_HEADER_BYTES,
  TCB_BITS,
  TCB_CTABLE,
  TCB_IPC_BUFFER,
  TCB_VTABLE,
  ThreadState,
  WORD_BITS,
} from "../types.js";
import { refillNew } from "./sporadic.js";

/** seL4_RootCNodeCapSlots. */
export const CAP_INIT_THREAD_TCB = 1;
export const CAP_INIT_THREAD_CNODE = 2;
export const CAP_INIT_THREAD_VSPACE = 3;
export const CAP_IRQ_CONTROL = 4;
export const CAP_ASID_CONTROL = 5;
export const CAP_INIT_THREAD_ASID_POOL = 6;
export const CAP_IO_PORT_CONTROL = 7;
export const CAP_IO_SPACE = 8;
export const CAP_BOOT_INFO_FRAME = 9;
export const CAP_INIT_THREAD_IPC_BUFFER = 10;
export const CAP_DOMAIN = 11;
export const CAP_SMMU_SID_CONTROL = 12;
export const CAP_SMMU_CB_CONTROL = 13;
export const CAP_INIT_THREAD_SC = 14;
export const CAP_SMC = 15;
export const NUM_INITIAL_CAPS = 16;

/** Where the root task's IPC buffer is mapped (seL4 places it after the image; any page works). */
export const ROOT_IPC_BUFFER_VADDR = 0x10_0000;
/** Physical memory layout: boot objects below UNTYPED_BASE, untyped memory above. */
export const UNTYPED_BASE = 0x1000_0000;
const BOOT_REGION = 0x0100_0000;

/** Boot-time scheduling context size: room for MIN_REFILLS refills at least. */
const BOOT_SC_BITS = 8;

class BootAllocator {
  private next = BOOT_REGION;
  alloc(bits: number): number {
    const size = 2 ** bits;
    const p = Math.ceil(this.next / size) * size;
    this.next = p + size;
    return p;
  }
}

function register<T extends KObject>(k: Kernel, o: T): T {
  k.objects.add(o);
  return o;
}

/** Place a boot cap in a slot as an original capability with no parent (seL4 boot's provideCap). */
function provideCap(slot: Slot, cap: Cap): void {
  slot.cap = cap;
  slot.revocable = true;
  slot.firstBadged = false;
  slot.mdbPrev = null;
  slot.mdbNext = null;
}

function refillMaxFor(bits: number): number {
  return Math.floor((2 ** bits - SCHED_CONTEXT_HEADER_BYTES) / REFILL_BYTES);
}

function makeSchedContext(k: Kernel, a: BootAllocator, core: number, budget: number): SchedContext {
  const sc = register(k, new SchedContext(a.alloc(BOOT_SC_BITS), BOOT_SC_BITS, refillMaxFor(BOOT_SC_BITS)));
  sc.core = core;
  sc.configured = true;
  sc.period = budget;
  sc.budget = budget;
  refillNew(k, sc, MIN_REFILLS, budget, budget);
  return sc;
}

/** Split [base, base+bytes) into the largest naturally aligned power-of-two blocks. */
function untypedBlocks(base: number, bytes: number): { paddr: number; sizeBits: number }[] {
  const out: { paddr: number; sizeBits: number }[] = [];
  let p = base;
  const end = base + bytes;
  while (p < end) {
    let bits = MAX_UNTYPED_BITS;
    while (bits > MIN_UNTYPED_BITS && (p % 2 ** bits !== 0 || p + 2 ** bits > end)) bits--;
    if (p + 2 ** bits > end) break;
    out.push({ paddr: p, sizeBits: bits });
    p += 2 ** bits;
  }
  return out;
}

/** Boot a kernel: returns it with the root task as the current thread of core 0. */
export function bootKernel(overrides: Partial<KernelConfig> = {}): Kernel {
  const config: KernelConfig = { ...DEFAULT_CONFIG, ...overrides };
  if (config.cores < 1 || config.cores > 64) throw new RangeError("cores must be 1..64");
  if (config.domains < 1 || config.domains > 256) throw new RangeError("domains must be 1..256");
  if (config.rootCNodeBits < 5 || config.rootCNodeBits > 24)
    throw new RangeError("rootCNodeBits must be 5..24");
  const k = new Kernel(config);
  // The domain schedule starts at its first entry (seL4 boot: ksDomScheduleIdx = 0).
  const first = config.domainSchedule[0];
  if (first === undefined) throw new RangeError("domainSchedule needs at least one entry");
  k.domainScheduleIdx = 0;
  k.curDomain = first[0];
  k.domainTime = first[1];
  const a = new BootAllocator();

  // Interrupt table: handler slots live in a kernel-owned CNode, like seL4's intStateIRQNode.
  const irqNode = new CNodeObj(
    a.alloc(Math.max(1, Math.ceil(Math.log2(config.irqLines))) + 5),
    Math.max(1, Math.ceil(Math.log2(config.irqLines))),
  );
  const irqSlots: Slot[] = [];
  for (let i = 0; i < config.irqLines; i++) irqSlots.push(irqNode.slot(i));
  k.irq = new IRQTable(config.irqLines, irqSlots);
  // The kernel's timer line is taken at boot: IRQControl can never issue it (seL4 KERNEL_TIMER_IRQ).
  if (config.timerIrq >= 0 && config.timerIrq < config.irqLines)
    k.irq.state[config.timerIrq] = IRQState.Timer;

  // Idle thread and idle scheduling context per core.
  for (let c = 0; c < config.cores; c++) {
    const node = k.nodes[c]!;
    const idle = new TCB(a.alloc(TCB_BITS), TCB_BITS);
    idle.state = ThreadState.Idle;
    idle.core = c;
    idle.name = `idle.${c}`;
    const sc = makeSchedContext(k, a, c, config.rootBudgetNs);
    idle.sc = sc;
    sc.tcb = idle;
    node.idleThread = idle;
    node.curThread = idle;
    node.curSC = sc;
  }

  // Root task.
  const root = register(k, new TCB(a.alloc(TCB_BITS), TCB_BITS));
  root.name = "rootserver";
  root.priority = MAX_PRIO;
  root.mcp = MAX_PRIO;
  root.state = ThreadState.Running;
  const cnode = register(k, new CNodeObj(a.alloc(config.rootCNodeBits + 5), config.rootCNodeBits));
  const vspace = register(k, new VSpace(a.alloc(PAGE_BITS), PAGE_BITS));
  const pool = register(k, new ASIDPool(a.alloc(PAGE_BITS), 0));
  const ipcFrame = register(k, new Frame(a.alloc(PAGE_BITS), PAGE_BITS, ObjectType.SmallPage, false));
  const rootSC = makeSchedContext(k, a, 0, config.rootBudgetNs);
  register(k, rootSC);
  rootSC.tcb = root;
  root.sc = rootSC;
  k.rootThread = root;
  k.rootCNode = cnode;

  // ASID 1 in pool 0 for the root VSpace (ASID 0 is reserved, as in seL4).
  k.asidTable.length = 0;
  for (let i = 0; i < 2 ** 7; i++) k.asidTable.push(null);
  k.asidTable[0] = pool;
  pool.entries[1] = vspace;
  vspace.asid = 1;

  const capOf = (type: CapType, obj: KObject | null): Cap => new Cap(type, obj);
  const cnodeCap = capOf(CapType.CNode, cnode);
  cnodeCap.sizeBits = config.rootCNodeBits;
  // The guard makes a full 64-bit cptr resolve in one level (seL4 boot: guard size = wordBits - radix).
  cnodeCap.guardSize = WORD_BITS - config.rootCNodeBits;
  const tcbCap = capOf(CapType.Thread, root);
  const vspaceCap = capOf(CapType.VSpace, vspace);
  vspaceCap.mappedAsid = 1;
  const ipcCap = capOf(CapType.Frame, ipcFrame);
  ipcCap.rights = ALL_RIGHTS;
  ipcCap.paddr = ipcFrame.paddr;
  ipcCap.sizeBits = PAGE_BITS;
  ipcCap.mappedAsid = 1;
  ipcCap.mappedVaddr = ROOT_IPC_BUFFER_VADDR;
  const poolCap = capOf(CapType.ASIDPool, pool);
  poolCap.irq = 0;
  const scCap = capOf(CapType.SchedContext, rootSC);

  provideCap(cnode.slot(CAP_INIT_THREAD_TCB), tcbCap);
  provideCap(cnode.slot(CAP_INIT_THREAD_CNODE), cnodeCap);
  provideCap(cnode.slot(CAP_INIT_THREAD_VSPACE), vspaceCap);
  provideCap(cnode.slot(CAP_IRQ_CONTROL), capOf(CapType.IRQControl, null));
  provideCap(cnode.slot(CAP_ASID_CONTROL), capOf(CapType.ASIDControl, null));
  provideCap(cnode.slot(CAP_INIT_THREAD_ASID_POOL), poolCap);
  provideCap(cnode.slot(CAP_INIT_THREAD_IPC_BUFFER), ipcCap);
  provideCap(cnode.slot(CAP_DOMAIN), capOf(CapType.Domain, null));
  provideCap(cnode.slot(CAP_INIT_THREAD_SC), scCap);

  // The TCB's own slots hold copies derived from the root CNode's caps, as seL4's boot does with
  // cteInsert: they are children in the derivation tree, so deleting the original is not final.
  cteInsert(k, cnodeCap.clone(), cnode.slot(CAP_INIT_THREAD_CNODE), root.ctes[TCB_CTABLE]!);
  cteInsert(k, vspaceCap.clone(), cnode.slot(CAP_INIT_THREAD_VSPACE), root.ctes[TCB_VTABLE]!);
  cteInsert(k, ipcCap.clone(), cnode.slot(CAP_INIT_THREAD_IPC_BUFFER), root.ctes[TCB_IPC_BUFFER]!);
  // The page tables that translate the IPC buffer's address, as seL4's boot creates them.
  for (const [level, coverBits] of [
    [1, HUGE_PAGE_BITS],
    [2, LARGE_PAGE_BITS],
  ] as const) {
    const pt = register(k, new PageTable(a.alloc(PAGE_TABLE_BITS), PAGE_TABLE_BITS));
    const base = ROOT_IPC_BUFFER_VADDR - (ROOT_IPC_BUFFER_VADDR % 2 ** coverBits);
    pt.vspace = vspace;
    pt.vaddr = base;
    pt.level = level;
    vspace.tables.set(tableKey(level, base), pt);
  }
  root.ipcBuffer = ipcBufferView(ipcFrame, 0);
  root.ipcBufferVaddr = ROOT_IPC_BUFFER_VADDR;
  vspace.mappings.set(ROOT_IPC_BUFFER_VADDR, {
    frame: ipcFrame,
    vaddr: ROOT_IPC_BUFFER_VADDR,
    rights: ALL_RIGHTS,
    xn: true,
    slot: cnode.slot(CAP_INIT_THREAD_IPC_BUFFER),
  });

  // SchedControl caps, then untyped memory, in the free slots after the initial caps.
  let next = NUM_INITIAL_CAPS;
  const scStart = next;
  for (let c = 0; c < config.cores; c++) {
    const cap = capOf(CapType.SchedControl, null);
    cap.irq = c;
    provideCap(cnode.slot(next++), cap);
  }
  const scEnd = next;
  const blocks = [
    ...untypedBlocks(UNTYPED_BASE, config.memoryBytes).map((b) => ({ ...b, isDevice: false })),
    ...config.deviceRegions.map(([paddr, sizeBits]) => ({ paddr, sizeBits, isDevice: true })),
  ];
  const utStart = next;
  for (const b of blocks) {
    if (next >= 2 ** config.rootCNodeBits) break;
    const cap = capOf(CapType.Untyped, null);
    cap.paddr = b.paddr;
    cap.sizeBits = b.sizeBits;
    cap.isDevice = b.isDevice;
    provideCap(cnode.slot(next++), cap);
  }
  const bootInfo: BootInfo = {
    empty: { start: next, end: 2 ** config.rootCNodeBits },
    untypeds: { start: utStart, end: next },
    untypedList: blocks.slice(0, next - utStart),
    schedControl: { start: scStart, end: scEnd },
    rootCNodeBits: config.rootCNodeBits,
    numCores: config.cores,
  };
  k.bootInfo = bootInfo;

  const node0 = k.nodes[0]!;
  node0.curThread = root;
  node0.curSC = rootSC;
  return k;
}
