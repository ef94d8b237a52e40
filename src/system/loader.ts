/**
 * The system loader: builds a Microkit system from a validated description, the way Microkit's
 * tool and initialiser do, but with system calls only (DESIGN.md layers: "the loader uses
 * syscalls"). It runs as the root task, synchronously, at priority 255 so that nothing it
 * creates runs before it is done; then the root task becomes the monitor (monitor.ts).
 *
 * Per PD (libmicrokit's capability layout, include/microkit.h):
 *   slot 1 INPUT_CAP       the PD's endpoint if it can be called or has children, else its notification
 *   slot 4 REPLY_CAP       its Reply object
 *   slot 5 MONITOR_EP      the monitor's endpoint, badged with the PD's index
 *   10 + ch                notification to the other end of channel ch (badge 1 << their id)
 *   74 + ch                endpoint of the other end for pp calls (badge bit 63 | their id)
 *   138 + id               IRQHandler of the PD's irq `id` (notifies badge 1 << id)
 *   202 + id               TCB of child `id`
 *   266 + id               TCB of its virtual machine's vcpu `id` (a VMM PD)
 *   330 + id               the VCPU object of that vcpu
 * and its TCB's fault handler is the parent's endpoint (badge bit 62 | child id) or, for a
 * top-level PD, the monitor's (badge bit 62 | PD index).
 */
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
import { LARGE_PAGE_BITS, ObjectType, PAGE_BITS, SeL4Error } from "../kernel/types.js";
import { Allocator, mapPage, startThread } from "../pd/alloc.js";
import {
  type Sel4Gen,
  seL4_AllRights,
  seL4_ARM_Default_VMAttributes,
  seL4_CanGrantReply,
  seL4_CanRead,
  seL4_CanWrite,
  seL4_CapInitThreadASIDPool,
  seL4_CapInitThreadCNode,
  seL4_CapInitThreadTCB,
  seL4_CapIRQControl,
  seL4_DebugNameThread,
  type Word,
} from "../pd/libsel4.js";
import {
  seL4_ARM_ASIDPool_Assign,
  seL4_ARM_VCPU_SetTCB,
  seL4_CNode_Copy,
  seL4_CNode_Mint,
  seL4_IRQControl_Get,
  seL4_IRQHandler_SetNotification,
  seL4_SchedControl_ConfigureFlags,
  seL4_TCB_BindNotification,
  seL4_TCB_Configure,
  seL4_TCB_SetSchedParams,
} from "../pd/libsel4-invocations.js";
import type { ThreadContext } from "../pd/machine.js";
import type { SdfProtectionDomain, SystemDescription } from "./sdf-types.js";

export const INPUT_CAP = 1;
export const REPLY_CAP = 4;
export const MONITOR_EP = 5;
export const BASE_OUTPUT_NOTIFICATION_CAP = 10;
export const BASE_ENDPOINT_CAP = 74;
export const BASE_IRQ_CAP = 138;
export const BASE_TCB_CAP = 202;
export const BASE_VM_TCB_CAP = 266;
export const BASE_VCPU_CAP = 330;
/** PD CNodes have 512 slots; the guard makes a plain slot number a full 64-bit cptr. */
export const PD_CNODE_BITS = 9;
/** Where each PD's kernel IPC buffer frame is mapped (above the 4 GiB a wasm32 PD can address). */
export const PD_IPC_BUFFER_VADDR = 0x1_0000_0000;

export const PPC_BADGE = 1n << 63n;
export const FAULT_BADGE = 1n << 62n;

export class LoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LoadError";
  }
}

/** What the loader built for one PD. */
export interface LoadedPD {
  pd: SdfProtectionDomain;
  index: number;
  /** Its program's entry (where the loader or the monitor starts it). */
  entry: number;
  tcb: TCB;
  /** Root-CNode cptrs the monitor needs. */
  tcbCap: number;
  scCap: number;
  ntfnCap: number;
  /** Root-CNode cptrs of its CNode (guarded) and VSpace, for what is built after (runtime-pd.ts). */
  cnodeCap: number;
  vspaceCap: number;
}

/**
 * What the loader built for one `<virtual_machine>`: a thread per vcpu (only vcpu 0 so far) with
 * a VCPU object bound to it, the VM's own scheduling context, an empty CSpace (a guest holds no
 * capabilities: everything it reaches goes through its VMM) and a VSpace of its own. Its faults
 * go to the VMM PD's endpoint with badge bit 62 | vcpu id, as a child PD's do (Microkit).
 */
export interface LoadedVM {
  /** The VMM PD (the PD the `<virtual_machine>` is declared in). */
  vmm: LoadedPD;
  name: string;
  vcpuId: number;
  tcb: TCB;
  tcbCap: number;
  /** Its program's entry: a VMM restarts the guest by starting the thread there again. */
  entry: number;
}

export interface LoadedSystem {
  pds: LoadedPD[];
  vms: LoadedVM[];
  /** PDs the monitor starts once every passive PD's init() is done (none without passive PDs). */
  deferred: LoadedPD[];
  monitorEp: number;
  monitorReply: number;
  /** The root task's allocator, for objects built after the PDs (runtime-pd.ts). */
  alloc: Allocator;
}

export function check(step: string, pd: string, err: SeL4Error): void {
  if (err !== SeL4Error.NoError)
    throw new LoadError(
      `building PD "${pd}": ${step} failed with seL4_${SeL4Error[err]}; the system may be too large for the kernel's memory`,
    );
}

/**
 * Deliver interrupt `line` to a PD (seL4 manual §9.3, Microkit's irq): an IRQHandler for the line,
 * bound to the PD's notification (`ntfnCap`, a root-CNode cptr) with `badge`, and placed in `slot`
 * of the PD's CNode so that it can acknowledge the line. Also used for the doorbells capvisor's
 * runtimes give their PDs (runtime-pd.ts, vmm-pd.ts).
 */
export function* giveIrq(
  u: ThreadContext,
  a: Allocator,
  pd: string,
  line: number,
  ntfnCap: number,
  badge: Word,
  cnodeCap: number,
  slot: number,
): Sel4Gen<void> {
  const handler = a.slot();
  check(
    `IRQControl_Get(${line})`,
    pd,
    yield* seL4_IRQControl_Get(u, seL4_CapIRQControl, line, seL4_CapInitThreadCNode, handler, 64),
  );
  const badged = a.slot();
  check(
    "badging the IRQ notification",
    pd,
    yield* seL4_CNode_Mint(
      u,
      seL4_CapInitThreadCNode,
      badged,
      64,
      seL4_CapInitThreadCNode,
      ntfnCap,
      64,
      seL4_CanWrite,
      badge,
    ),
  );
  check("IRQHandler_SetNotification", pd, yield* seL4_IRQHandler_SetNotification(u, handler, badged));
  check(
    `placing a capability in slot ${slot}`,
    pd,
    yield* seL4_CNode_Mint(u, cnodeCap, slot, 64, seL4_CapInitThreadCNode, handler, 64, seL4_AllRights, 0),
  );
}

/** seL4_CNode_CapData_new(guard, guardSize) on 64-bit: guard above bit 6, its size below. */
/**
 * Map `frame` (a cap in the root task's CNode) into `vspace` through a new copy of its cap: seL4
 * maps each frame cap once (manual §7.1.3), so every mapping of a shared frame needs its own copy.
 * `who` and `what` name the PD and the mapping in a failure.
 */
export function* mapFrameCopy(
  u: ThreadContext,
  a: Allocator,
  frame: number,
  vspace: number,
  vaddr: number,
  rights: number,
  attributes: number,
  who: string,
  what: string,
): Sel4Gen<void> {
  const copy = a.slot();
  check(
    "copying a frame cap",
    who,
    yield* seL4_CNode_Copy(
      u,
      seL4_CapInitThreadCNode,
      copy,
      64,
      seL4_CapInitThreadCNode,
      frame,
      64,
      seL4_AllRights,
    ),
  );
  check(`mapping ${what}`, who, yield* mapPage(u, a, copy, vaddr, rights, attributes, vspace));
}

export function cnodeCapData(guard: number, guardSize: number): number {
  return guard * 64 + guardSize;
}

interface PDObjects {
  ntfn: number;
  ep: number;
  reply: number;
  cnode: number;
  vspace: number;
  tcb: number;
  sc: number;
}

/**
 * The loader as a libsel4 program for the root task. `entryOf(pd)` gives the program entry
 * address to start each PD at (the platform registers the programs); `vmEntryOf(pd)` the one
 * of the VM declared in PD `pd` (its VMM), for descriptions with virtual machines.
 */
export function* buildSystem(
  u: ThreadContext,
  k: Kernel,
  sys: SystemDescription,
  entryOf: (pd: SdfProtectionDomain, index: number) => number,
  vmEntryOf: (vmm: SdfProtectionDomain) => number = () => 0,
): Sel4Gen<LoadedSystem> {
  const a = new Allocator(k.bootInfo);
  const pds = sys.allProtectionDomains;
  const byName = new Map(pds.map((p, i) => [p.name, i]));
  const callee = new Set<string>();
  for (const ch of sys.channels)
    for (const [x, y] of [ch.ends, [ch.ends[1], ch.ends[0]] as const]) if (x.pp) callee.add(y.pd);

  const monitorEp = yield* a.alloc(u, ObjectType.Endpoint);
  const monitorReply = yield* a.alloc(u, ObjectType.Reply);

  // 1. Objects of every PD.
  const objs: PDObjects[] = [];
  for (const [i, pd] of pds.entries()) {
    const o: PDObjects = { ntfn: 0, ep: 0, reply: 0, cnode: 0, vspace: 0, tcb: 0, sc: 0 };
    o.ntfn = yield* a.alloc(u, ObjectType.Notification);
    if (callee.has(pd.name) || pd.children.length > 0 || pd.virtualMachine !== undefined)
      o.ep = yield* a.alloc(u, ObjectType.Endpoint);
    o.reply = yield* a.alloc(u, ObjectType.Reply);
    const rawCNode = yield* a.alloc(u, ObjectType.CapTable, PD_CNODE_BITS);
    // A guarded copy: 55 guard bits + 9 radix bits resolve a whole 64-bit cptr in one level.
    o.cnode = a.slot();
    check(
      "guarding its CNode",
      pd.name,
      yield* seL4_CNode_Mint(
        u,
        seL4_CapInitThreadCNode,
        o.cnode,
        64,
        seL4_CapInitThreadCNode,
        rawCNode,
        64,
        seL4_AllRights,
        cnodeCapData(0, 64 - PD_CNODE_BITS),
      ),
    );
    o.vspace = yield* a.alloc(u, ObjectType.VSpace);
    check(
      "ASIDPool_Assign",
      pd.name,
      yield* seL4_ARM_ASIDPool_Assign(u, seL4_CapInitThreadASIDPool, o.vspace),
    );
    o.tcb = yield* a.alloc(u, ObjectType.TCB);
    o.sc = yield* a.alloc(u, ObjectType.SchedContext);
    objs.push(o);
    void i;
  }

  /** Mint a cap from the root CNode into slot `slot` of PD i's CNode. */
  function* give(i: number, slot: number, src: number, rights: number, badge: Word): Sel4Gen<void> {
    const pd = pds[i]!;
    check(
      `placing a capability in slot ${slot}`,
      pd.name,
      yield* seL4_CNode_Mint(u, objs[i]!.cnode, slot, 64, seL4_CapInitThreadCNode, src, 64, rights, badge),
    );
  }

  // 2. Each PD's own capabilities.
  for (const [i, pd] of pds.entries()) {
    const o = objs[i]!;
    yield* give(i, INPUT_CAP, o.ep !== 0 ? o.ep : o.ntfn, seL4_AllRights, 0);
    // With an endpoint, the notification is bound to the TCB so that one Recv gets both (§5.3).
    if (o.ep !== 0)
      check("TCB_BindNotification", pd.name, yield* seL4_TCB_BindNotification(u, o.tcb, o.ntfn));
    yield* give(i, REPLY_CAP, o.reply, seL4_AllRights, 0);
    yield* give(i, MONITOR_EP, monitorEp, seL4_CanWrite | seL4_CanGrantReply, i + 1);
    for (const irq of pd.irqs)
      yield* giveIrq(u, a, pd.name, irq.irq, o.ntfn, 2 ** irq.id, o.cnode, BASE_IRQ_CAP + irq.id);
    for (const child of pd.children)
      yield* give(i, BASE_TCB_CAP + child.id!, objs[byName.get(child.name)!]!.tcb, seL4_AllRights, 0);
  }

  // 3. Channels: a notification cap each way (when the end may notify), an endpoint cap for pp.
  for (const ch of sys.channels) {
    for (const [from, to] of [ch.ends, [ch.ends[1], ch.ends[0]] as const]) {
      const fi = byName.get(from.pd)!;
      const ti = byName.get(to.pd)!;
      if (from.notify)
        yield* give(fi, BASE_OUTPUT_NOTIFICATION_CAP + from.id, objs[ti]!.ntfn, seL4_CanWrite, 2 ** to.id);
      if (from.pp)
        yield* give(
          fi,
          BASE_ENDPOINT_CAP + from.id,
          objs[ti]!.ep,
          seL4_CanWrite | seL4_CanGrantReply,
          PPC_BADGE | BigInt(to.id),
        );
    }
  }

  // 4. Memory regions: frames, mapped into every PD that maps them (the authority the kernel
  //    enforces; the bytes of a Wasm PD's view live in its worker, see platform/channel.ts).
  const regionFrames = new Map<string, number[]>();
  for (const mr of sys.memoryRegions) {
    const type = mr.pageSize === 0x1000 ? ObjectType.SmallPage : ObjectType.LargePage;
    const frames: number[] = [];
    for (let p = 0; p < mr.pageCount; p++) frames.push(yield* a.alloc(u, type));
    regionFrames.set(mr.name, frames);
  }
  for (const [i, pd] of pds.entries()) {
    const o = objs[i]!;
    for (const m of pd.maps) {
      const mr = sys.memoryRegions.find((r) => r.name === m.mr)!;
      const rights = (m.perms.read ? seL4_CanRead : 0) | (m.perms.write ? seL4_CanWrite : 0);
      const attr = seL4_ARM_Default_VMAttributes | (m.perms.execute ? 0 : 4);
      const step = mr.pageSize === 0x1000 ? 2 ** PAGE_BITS : 2 ** LARGE_PAGE_BITS;
      for (const [p, frame] of regionFrames.get(m.mr)!.entries()) {
        const vaddr = m.vaddr + p * step;
        yield* mapFrameCopy(
          u,
          a,
          frame,
          o.vspace,
          vaddr,
          rights,
          attr,
          pd.name,
          `"${m.mr}" at 0x${vaddr.toString(16)}`,
        );
      }
    }
    // The IPC buffer the kernel reads the PD's messages from.
    const ipc = yield* a.alloc(u, ObjectType.SmallPage);
    check(
      "mapping its IPC buffer",
      pd.name,
      yield* mapPage(
        u,
        a,
        ipc,
        PD_IPC_BUFFER_VADDR,
        seL4_CanRead | seL4_CanWrite,
        seL4_ARM_Default_VMAttributes,
        o.vspace,
      ),
    );
    check(
      "TCB_Configure",
      pd.name,
      yield* seL4_TCB_Configure(u, o.tcb, o.cnode, 0, o.vspace, 0, PD_IPC_BUFFER_VADDR, ipc),
    );
  }

  // 5. Scheduling and fault handlers, then start every PD.
  const loaded: LoadedPD[] = [];
  for (const [i, pd] of pds.entries()) {
    const o = objs[i]!;
    check(
      "SchedControl_ConfigureFlags",
      pd.name,
      yield* seL4_SchedControl_ConfigureFlags(
        u,
        a.schedControl + pd.cpu,
        o.sc,
        pd.budget,
        pd.period,
        0,
        i + 1,
        0,
      ),
    );
    const faultEp = a.slot();
    if (pd.parent !== undefined) {
      const pi = byName.get(pd.parent)!;
      check(
        "minting its fault endpoint",
        pd.name,
        yield* seL4_CNode_Mint(
          u,
          seL4_CapInitThreadCNode,
          faultEp,
          64,
          seL4_CapInitThreadCNode,
          objs[pi]!.ep,
          64,
          seL4_AllRights,
          FAULT_BADGE | BigInt(pd.id!),
        ),
      );
    } else {
      check(
        "minting its fault endpoint",
        pd.name,
        yield* seL4_CNode_Mint(
          u,
          seL4_CapInitThreadCNode,
          faultEp,
          64,
          seL4_CapInitThreadCNode,
          monitorEp,
          64,
          seL4_AllRights,
          FAULT_BADGE | BigInt(i + 1),
        ),
      );
    }
    check(
      "TCB_SetSchedParams",
      pd.name,
      yield* seL4_TCB_SetSchedParams(
        u,
        o.tcb,
        seL4_CapInitThreadTCB,
        pd.priority,
        pd.priority,
        o.sc,
        faultEp,
      ),
    );
    yield* seL4_DebugNameThread(u, o.tcb, pd.name);
    // The TCB object itself, for status displays (inspection only; the kernel is changed by syscalls).
    const tcb = k.rootCNode.slot(o.tcb).cap.obj as TCB;
    loaded.push({
      pd,
      index: i,
      entry: entryOf(pd, i),
      tcb,
      tcbCap: o.tcb,
      scCap: o.sc,
      ntfnCap: o.ntfn,
      cnodeCap: o.cnode,
      vspaceCap: o.vspace,
    });
  }
  const vms: LoadedVM[] = [];
  for (const l of loaded) {
    if (l.pd.virtualMachine === undefined) continue;
    vms.push(yield* buildVM(u, k, a, l, objs[l.index]!.ep, objs[l.index]!.cnode, vmEntryOf(l.pd)));
  }
  // Passive servers first: a client started now could call a server whose init() has not
  // ended, and the server's first receive would take that call on its own scheduling context,
  // just before the monitor takes that context away (it would be left without one mid-call; a
  // Microkit monitor has the same window). The monitor starts the others once every passive PD
  // has reported its init() done (monitor.ts). Microkit promises no order between PDs' init().
  const anyPassive = loaded.some((l) => l.pd.passive);
  const deferred: LoadedPD[] = [];
  for (const l of loaded) {
    if (anyPassive && !l.pd.passive) deferred.push(l);
    else check("starting it", l.pd.name, yield* startThread(u, l.tcbCap, l.entry));
  }
  for (const vm of vms)
    check("starting its virtual machine", vm.vmm.pd.name, yield* startThread(u, vm.tcbCap, vm.entry));
  return { pds: loaded, vms, deferred, monitorEp, monitorReply, alloc: a };
}

/** The thread, VCPU and scheduling context of the VM declared in `vmm` (see LoadedVM). */
function* buildVM(
  u: ThreadContext,
  k: Kernel,
  a: Allocator,
  vmm: LoadedPD,
  vmmEp: number,
  vmmCNode: number,
  entry: number,
): Sel4Gen<LoadedVM> {
  const vm = vmm.pd.virtualMachine!;
  const who = `${vmm.pd.name}/${vm.name}`;
  const vcpuId = vm.vcpus[0]!.id;
  const tcbCap = yield* a.alloc(u, ObjectType.TCB);
  const sc = yield* a.alloc(u, ObjectType.SchedContext);
  const vcpu = yield* a.alloc(u, ObjectType.VCPU);
  const cnode = yield* a.alloc(u, ObjectType.CapTable, 1);
  const vspace = yield* a.alloc(u, ObjectType.VSpace);
  check("ASIDPool_Assign", who, yield* seL4_ARM_ASIDPool_Assign(u, seL4_CapInitThreadASIDPool, vspace));
  check("TCB_Configure", who, yield* seL4_TCB_Configure(u, tcbCap, cnode, 0, vspace, 0, 0, 0));
  check("VCPU_SetTCB", who, yield* seL4_ARM_VCPU_SetTCB(u, vcpu, tcbCap));
  check(
    "SchedControl_ConfigureFlags",
    who,
    yield* seL4_SchedControl_ConfigureFlags(
      u,
      a.schedControl + vmm.pd.cpu,
      sc,
      vm.budget,
      vm.period,
      0,
      0,
      0,
    ),
  );
  const faultEp = a.slot();
  check(
    "minting its fault endpoint",
    who,
    yield* seL4_CNode_Mint(
      u,
      seL4_CapInitThreadCNode,
      faultEp,
      64,
      seL4_CapInitThreadCNode,
      vmmEp,
      64,
      seL4_AllRights,
      FAULT_BADGE | BigInt(vcpuId),
    ),
  );
  check(
    "TCB_SetSchedParams",
    who,
    yield* seL4_TCB_SetSchedParams(u, tcbCap, seL4_CapInitThreadTCB, vm.priority, vm.priority, sc, faultEp),
  );
  yield* seL4_DebugNameThread(u, tcbCap, vm.name);
  // The VMM's authority over its guest (Microkit's layout): the vcpu's TCB and VCPU.
  for (const [slot, src] of [
    [BASE_VM_TCB_CAP + vcpuId, tcbCap],
    [BASE_VCPU_CAP + vcpuId, vcpu],
  ] as const)
    check(
      `placing a capability in slot ${slot}`,
      vmm.pd.name,
      yield* seL4_CNode_Mint(u, vmmCNode, slot, 64, seL4_CapInitThreadCNode, src, 64, seL4_AllRights, 0),
    );
  const tcb = k.rootCNode.slot(tcbCap).cap.obj as TCB;
  return { vmm, name: vm.name, vcpuId, tcb, tcbCap, entry };
}
