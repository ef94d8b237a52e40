/**
 * The authority graph of a system description (issue 6, DESIGN.md decision 7).
 *
 * Method: boot a kernel, build the system with the real loader (`buildSystem`, syscalls from the
 * root task, run by `runSync`; no PD code runs), then read the capability distribution the kernel
 * holds: each PD's CSpace (its TCB's CTable cap, CNodes recursively), its VSpace mappings, its
 * TCB's fault and timeout handler caps, its bound notification, and the notification of every
 * IRQ handler. Nothing is taken from the XML but names for display.
 *
 * Closure (take-grant style, over-approximating what PDs can come to hold if they cooperate):
 * - grant: A holds an endpoint cap with Write+Grant that B can receive on: every cap A holds in
 *   its CSpace can flow to B;
 * - reply grant: A can call (Write + Grant or GrantReply) an endpoint B receives on, and B holds
 *   a Reply cap with Grant: every cap B holds can flow to A in the reply;
 *   (a Reply cap of another PD's object is not control: it only lets its holder receive or reply)
 * - control: A holds a TCB, CNode, VSpace or SchedContext cap of B's objects: A has
 *   everything B has (it can make B act for it, or take B's caps).
 * The fixpoint of these rules is computed exactly (finite facts). Edges between domains are then
 * read off the closed distribution; every edge carries the concrete chain of capabilities.
 *
 * Virtual machines (issue 5). Each `<virtual_machine>` is a domain of its own, named by the VM,
 * read from its vcpu thread exactly like a PD: the loader gives it an empty CSpace, a VSpace of its
 * own, a VCPU, a SchedContext, and the VMM PD's endpoint as its fault handler (badge bit 62 | vcpu
 * id), and it gives the VMM the VM's TCB and VCPU caps. So the same rules yield: VMM -> VM
 * control, VM -> VMM call (a fault is a message, and the VMM's reply resumes the guest), and
 * anything further only through what the VMM itself holds. What the guest does inside the VM
 * (v86) is not modelled: the VM is one domain. The VMM is capvisor's own trusted code; whatever
 * the VMM can reach counts as reachable by its guest, which over-approximates a VMM that forwards
 * only the channel device (docs/vm-channel.md). A VM's own `<map>`s are not built by the loader
 * (the VMM runtime rejects them), so a description with any is refused rather than under-reported.
 * (The VMM runtime builds no kernel object after the loader: vmm-pd.ts only registers programs.)
 *
 * Runtime PDs. After the loader, the WasmEdge runtime builds a file-server PD, a network PD and
 * doorbells for each runtime PD; verify runs that same code, and reads the servers as domains
 * `<pd>.fs` and `<pd>.net` (runtime-domains.ts). Their access to the host is not analysed.
 */
import { bootKernel } from "../kernel/core/boot.js";
import type { Kernel } from "../kernel/state.js";
import type { Cap, CNodeObj, KObject, Notification, VSpace } from "../kernel/structures.js";
import {
  CapType,
  RIGHT_GRANT,
  RIGHT_GRANT_REPLY,
  RIGHT_READ,
  RIGHT_WRITE,
  TCB_CTABLE,
  TCB_FAULT_HANDLER,
  TCB_IPC_BUFFER,
  TCB_TIMEOUT_HANDLER,
  TCB_VTABLE,
} from "../kernel/types.js";
import { runSync, SyncThread } from "../pd/syncthread.js";
import { buildSystem, INPUT_CAP, type LoadedSystem, REPLY_CAP } from "../system/loader.js";
import { loadSdf } from "../system/sdf.js";
import type { SdfLocation, SystemDescription } from "../system/sdf-types.js";
import { buildVmmKernelObjects } from "../vmm/vmm-pd.js";
import {
  buildRuntimeKernelObjects,
  type RuntimeKernelObjects,
  runtimeConfigs,
} from "../wasmedge/runtime-pd.js";
import {
  claimRuntimeDomains,
  type DomainThread,
  fileServerName,
  labelRuntimeBuffers,
  netServerName,
  runtimeServerThreads,
} from "./runtime-domains.js";

export { fileServerName, netServerName } from "./runtime-domains.js";

/** Kinds of authority between two domains. `A -> B: k` reads "A can k B". */
export const KINDS = ["read", "write", "signal", "send", "call", "grant", "control"] as const;
export type Kind = (typeof KINDS)[number];

/** The trusted root task (loader, then monitor): a receiver only, never an intermediary. */
export const MONITOR = "monitor";
/** Target of control edges from caps to kernel services (Untyped, IRQControl, ...). */
const KERNEL = "kernel";

/** A description the analysis cannot vouch for (a name clash, a VM mapping it cannot see). */
export class AnalysisError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AnalysisError";
  }
}

/** One capability in a chain: `pd` holds at `where` a `cap` with `rights` to `object`; it leads to `next`. */
export interface Step {
  pd: string;
  where: string;
  cap: string;
  rights: string;
  badge: string;
  object: string;
  next: string;
  /** How the step is used: "signal", "call", "grant", "reply grant", "control", "write", "receive", ... */
  use: string;
}

export interface Edge {
  from: string;
  to: string;
  kind: Kind;
  /** Concrete chain of capabilities, from the first acquisition to the receiving end. */
  chain: Step[];
}

export interface AuthorityGraph {
  /**
   * PDs in description order (each runtime PD followed by its file server and its network PD),
   * then virtual machines, then `irq:N` pseudo-domains, then the monitor.
   */
  domains: string[];
  pds: string[];
  /** The file-server PDs of the runtime PDs (`<pd>.fs`), built by the runtime after the loader. */
  fileServers: string[];
  /** The network PDs of the runtime PDs (`<pd>.net`), built by the runtime after the loader. */
  netServers: string[];
  /** Virtual machines (each a domain named by its `<virtual_machine name=>`), in description order. */
  vms: string[];
  /** One edge per (from, to, kind): the one with the shortest chain. */
  edges: Edge[];
  kernel: Kernel;
  loaded: LoadedSystem;
}

/** A capability (or mapping, or kernel-held link) a domain can use, and how it came to hold it. */
interface Fact {
  type: CapType;
  obj: KObject;
  rights: number;
  badge: bigint;
  /** Where the original holder holds it. */
  origin: { pd: string; where: string };
  /** Can it be moved by IPC (a CSpace cap)? Mappings, TCB slots and bindings cannot. */
  transferable: boolean;
  /** A fault/timeout handler cap: used by the kernel on a fault, not by the PD. */
  fault: boolean;
  /** Steps through which the holder acquired it (empty for its own caps). */
  via: Step[];
}

export function rightsString(r: number): string {
  const s = [
    r & RIGHT_READ ? "R" : "",
    r & RIGHT_WRITE ? "W" : "",
    r & RIGHT_GRANT ? "G" : "",
    r & RIGHT_GRANT_REPLY ? "GR" : "",
  ].filter((x) => x !== "");
  return s.length === 0 ? "-" : s.join("+");
}

const CAP_NAMES: Record<number, string> = {
  [CapType.Frame]: "Frame",
  [CapType.Thread]: "TCB",
};

function capName(t: CapType): string {
  return CAP_NAMES[t] ?? CapType[t];
}

function badgeOf(c: Cap): bigint {
  return (BigInt(c.badgeHi >>> 0) << 32n) | BigInt(c.badgeLo >>> 0);
}

/**
 * Build the system with the loader on a fresh kernel, then the kernel objects of the runtime PDs
 * (as bootSystem does, from the same code), without running any PD.
 */
export function buildKernelState(sys: SystemDescription): {
  kernel: Kernel;
  loaded: LoadedSystem;
  runtimes: RuntimeKernelObjects[];
} {
  let cores = 2;
  for (const pd of sys.allProtectionDomains) cores = Math.max(cores, pd.cpu + 1);
  const k = bootKernel({ cores, memoryBytes: 512 * 1024 * 1024 });
  const root = new SyncThread(k.rootThread);
  // Program entries are never run: any address will do.
  const loaded = runSync(
    k,
    root,
    buildSystem(root, k, sys, (_pd, i) => 0x1000 * (i + 1)),
    () => 0,
  );
  // The runtime's configuration is checked as bootSystem checks it (a LoadError), but not the
  // host's files: the kernel objects do not depend on them.
  const configs = runtimeConfigs(sys, { hostFiles: false });
  const runtimes = runSync(k, root, buildRuntimeKernelObjects(root, k, sys, loaded, configs), () => 0);
  // Then the VMM's (its restart doorbells), in the order bootSystem runs the runtimes.
  runSync(k, root, buildVmmKernelObjects(root, sys, loaded), () => 0);
  return { kernel: k, loaded, runtimes };
}

export async function analyseFile(path: string): Promise<{ sys: SystemDescription; graph: AuthorityGraph }> {
  const sys = await loadSdf(path, { cores: 64 });
  return { sys, graph: analyseSystem(sys) };
}

/**
 * Domain names must be unique: the analysis keys everything by name, so a VM called like a PD
 * (which the SDF parser does not forbid: it checks VM names among VMs only) would merge the two.
 */
function checkDomainNames(sys: SystemDescription): void {
  const at = (loc: SdfLocation): string => `${loc.file}:${loc.line}:${loc.column}`;
  const seen = new Map<string, string>();
  const claim = (name: string, what: string, loc: SdfLocation): void => {
    if (name === MONITOR || name === KERNEL || name.startsWith("irq:"))
      throw new AnalysisError(
        `${at(loc)}: ${what} "${name}": verify reserves this name for ${name.startsWith("irq:") ? "interrupt lines" : `the ${name}`}; rename it`,
      );
    const first = seen.get(name);
    if (first !== undefined)
      throw new AnalysisError(
        `${at(loc)}: ${what} "${name}" has the name of ${first}: verify names domains by these names; rename one`,
      );
    seen.set(name, `${what} at ${at(loc)}`);
  };
  // Runtime servers first, so that a PD named like one is the one reported (it is the one to rename).
  claimRuntimeDomains(sys, claim);
  for (const pd of sys.allProtectionDomains) claim(pd.name, "protection domain", pd.loc);
  for (const pd of sys.allProtectionDomains) {
    const vm = pd.virtualMachine;
    if (vm === undefined) continue;
    claim(vm.name, "virtual machine", vm.loc);
    if (vm.maps.length > 0)
      throw new AnalysisError(
        `${at(vm.maps[0]!.loc)}: virtual machine "${vm.name}" maps memory region "${vm.maps[0]!.mr}", which the loader does not map into the guest: verify cannot account for it; remove the <map> (the guest's memory is the VMM's capvisor:ram)`,
      );
  }
}

export function analyseSystem(sys: SystemDescription): AuthorityGraph {
  checkDomainNames(sys);
  const { kernel: k, loaded, runtimes } = buildKernelState(sys);
  const pds = loaded.pds.map((l) => l.pd.name);
  const vms = loaded.vms.map((v) => v.name);
  const fileServers = runtimes.map((r) => fileServerName(r.rt.pd.name));
  const netServers = runtimes.map((r) => netServerName(r.rt.pd.name));
  // Each runtime PD is followed by its servers.
  const threads: DomainThread[] = [
    ...loaded.pds.flatMap((l) => [
      { name: l.pd.name, tcb: l.tcb, maps: l.pd.maps },
      ...runtimeServerThreads(runtimes, l),
    ]),
    ...loaded.vms.map((v) => ({ name: v.name, tcb: v.tcb, maps: [] })),
  ];
  const domainsWithThreads = threads.map((t) => t.name);

  // --- Names and owners of objects (display; `owner` decides control edges) ---
  const label = new Map<KObject, string>();
  const owner = new Map<KObject, string>();
  const own = (o: KObject | null | undefined, pd: string, what: string): void => {
    if (o === null || o === undefined) return;
    owner.set(o, pd);
    if (!label.has(o)) label.set(o, `${what} of ${pd}`);
  };
  for (const l of threads) {
    const t = l.tcb;
    const n = l.name;
    own(t, n, "TCB");
    own(t.ctes[TCB_CTABLE]!.cap.obj, n, "CNode");
    own(t.ctes[TCB_VTABLE]!.cap.obj, n, "VSpace");
    own(t.ctes[TCB_IPC_BUFFER]!.cap.obj, n, "IPC buffer");
    own(t.sc, n, "SchedContext");
    // A VM's vcpu: its VCPU cap (held by the VMM) reads and writes the guest's CPU state.
    own(t.vcpu, n, "VCPU");
    const cn = t.ctes[TCB_CTABLE]!.cap.obj as CNodeObj;
    const input = cn.existingSlot(INPUT_CAP)?.cap.obj;
    if (input) label.set(input, `${capName(cn.slot(INPUT_CAP).cap.type)} of ${n}`);
    own(cn.existingSlot(REPLY_CAP)?.cap.obj, n, "Reply");
    if (t.boundNotification) label.set(t.boundNotification, `Notification of ${n}`);
    // Shared frames: name them by region and page, from the PD's <map>s.
    const vs = t.ctes[TCB_VTABLE]!.cap.obj as VSpace;
    for (const m of vs.mappings.values()) {
      if (label.has(m.frame)) continue;
      const sm = l.maps.find((x) => {
        const mr = sys.memoryRegions.find((r) => r.name === x.mr);
        return mr !== undefined && m.vaddr >= x.vaddr && m.vaddr < x.vaddr + mr.size;
      });
      if (sm !== undefined) {
        const mr = sys.memoryRegions.find((r) => r.name === sm.mr)!;
        label.set(m.frame, `page ${(m.vaddr - sm.vaddr) / mr.pageSize} of region "${sm.mr}"`);
      }
    }
  }
  // A runtime PD shares a buffer with each of its servers.
  labelRuntimeBuffers(runtimes, label);
  const monitorEp = k.rootCNode.slot(loaded.monitorEp).cap.obj!;
  label.set(monitorEp, "Endpoint of monitor");
  let anon = 0;
  const name = (o: KObject): string => {
    let s = label.get(o);
    if (s === undefined) {
      s = `object #${++anon} @0x${o.paddr.toString(16)}`;
      label.set(o, s);
    }
    return s;
  };

  // --- Direct facts of every PD ---
  const facts = new Map<string, Map<string, Fact>>();
  const keyOf = (f: Fact): string =>
    `${f.type}|${name(f.obj)}|${f.obj.paddr}|${f.rights}|${f.badge}|${f.fault ? 1 : 0}`;
  const add = (pd: string, f: Fact): boolean => {
    let m = facts.get(pd);
    if (m === undefined) {
      m = new Map();
      facts.set(pd, m);
    }
    const key = keyOf(f);
    if (m.has(key)) return false;
    m.set(key, f);
    return true;
  };
  const capFact = (pd: string, where: string, c: Cap, transferable: boolean, fault = false): Fact | null =>
    c.isNull || c.obj === null
      ? null
      : {
          type: c.type,
          obj: c.obj,
          rights: c.rights,
          badge: badgeOf(c),
          origin: { pd, where },
          transferable,
          fault,
          via: [],
        };
  /** A mapping or kernel-held link: usable by its holder, never moved by IPC. */
  const linkFact = (
    pd: string,
    where: string,
    type: CapType,
    obj: KObject,
    rights: number,
    badge = 0n,
  ): Fact => ({
    type,
    obj,
    rights,
    badge,
    origin: { pd, where },
    transferable: false,
    fault: false,
    via: [],
  });
  /** Caps without an object (IRQHandler, Untyped, controls): kept apart, they only give control edges. */
  const objectless: { pd: string; where: string; cap: Cap }[] = [];

  for (const l of threads) {
    const pd = l.name;
    const t = l.tcb;
    facts.set(pd, new Map());
    const seen = new Set<CNodeObj>();
    const walk = (cn: CNodeObj, prefix: string): void => {
      if (seen.has(cn)) return;
      seen.add(cn);
      for (const s of cn.usedSlots()) {
        const c = s.cap;
        if (c.isNull) continue;
        const where = `slot ${prefix}${s.index}`;
        if (c.obj === null) {
          objectless.push({ pd, where, cap: c });
          continue;
        }
        add(pd, capFact(pd, where, c, true)!);
        if (c.type === CapType.CNode) walk(c.obj as CNodeObj, `${prefix}${s.index}/`);
      }
    };
    const root = t.ctes[TCB_CTABLE]!.cap;
    if (root.type === CapType.CNode) walk(root.obj as CNodeObj, "");
    const vs = t.ctes[TCB_VTABLE]!.cap.obj as VSpace | null;
    if (vs !== null)
      for (const m of vs.mappings.values())
        add(pd, linkFact(pd, `mapping at 0x${m.vaddr.toString(16)}`, CapType.Frame, m.frame, m.rights));
    for (const [slot, what] of [
      [TCB_FAULT_HANDLER, "TCB fault handler"],
      [TCB_TIMEOUT_HANDLER, "TCB timeout handler"],
    ] as const) {
      const f = capFact(pd, what, t.ctes[slot]!.cap, false, true);
      if (f !== null) add(pd, f);
    }
    if (t.boundNotification !== null)
      add(
        pd,
        linkFact(pd, "bound notification of its TCB", CapType.Notification, t.boundNotification, RIGHT_READ),
      );
  }
  // The monitor receives on its endpoint (it holds far more, but is trusted: see MONITOR).
  facts.set(MONITOR, new Map());
  add(MONITOR, linkFact(MONITOR, "root CNode", CapType.Endpoint, monitorEp, RIGHT_READ));

  const step = (pd: string, f: Fact, next: string, use: string): Step => ({
    pd,
    where: f.via.length === 0 ? f.origin.where : `(acquired; ${f.origin.pd}'s ${f.origin.where})`,
    cap: capName(f.type),
    rights: rightsString(f.rights),
    badge: `0x${f.badge.toString(16)}`,
    object: name(f.obj),
    next,
    use,
  });
  const receivers = (obj: KObject, type: CapType): { pd: string; f: Fact }[] => {
    const out: { pd: string; f: Fact }[] = [];
    for (const [pd, m] of facts)
      for (const f of m.values())
        if (f.obj === obj && f.type === type && (f.rights & RIGHT_READ) !== 0 && !f.fault) {
          out.push({ pd, f });
          break;
        }
    return out;
  };
  const canCall = (f: Fact): boolean =>
    f.type === CapType.Endpoint &&
    (f.rights & RIGHT_WRITE) !== 0 &&
    (f.rights & (RIGHT_GRANT | RIGHT_GRANT_REPLY)) !== 0;

  // --- Closure: grant, reply grant, control, to a fixpoint ---
  const isControl = (f: Fact): string | undefined => {
    if (
      f.type === CapType.Thread ||
      f.type === CapType.CNode ||
      f.type === CapType.VSpace ||
      f.type === CapType.SchedContext ||
      f.type === CapType.VCPU
    ) {
      const o = owner.get(f.obj);
      return o;
    }
    return undefined;
  };
  const transfer = (from: string, to: string, pre: Step[], onlyTransferable: boolean): boolean => {
    let changed = false;
    for (const g of [...facts.get(from)!.values()]) {
      if (onlyTransferable && !g.transferable) continue;
      if (from === to) continue;
      if (add(to, { ...g, via: [...g.via, ...pre] })) changed = true;
    }
    return changed;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const a of domainsWithThreads) {
      for (const f of [...facts.get(a)!.values()]) {
        if (f.fault) continue;
        if (f.type === CapType.Endpoint && (f.rights & RIGHT_WRITE) !== 0) {
          for (const { pd: b, f: r } of receivers(f.obj, CapType.Endpoint)) {
            if (b === a || b === MONITOR) continue;
            if ((f.rights & RIGHT_GRANT) !== 0)
              changed =
                transfer(
                  a,
                  b,
                  [...f.via, step(a, f, b, "grant"), ...r.via, step(b, r, b, "receive")],
                  true,
                ) || changed;
            if (canCall(f)) {
              const rep = [...facts.get(b)!.values()].find(
                (x) => x.type === CapType.Reply && (x.rights & RIGHT_GRANT) !== 0,
              );
              if (rep !== undefined)
                changed =
                  transfer(
                    b,
                    a,
                    // r.via: how B came to receive on it (it may be an acquired cap).
                    [...f.via, step(a, f, b, "call"), ...r.via, ...rep.via, step(b, rep, a, "reply grant")],
                    true,
                  ) || changed;
            }
          }
        }
        const o = isControl(f);
        if (o !== undefined && o !== a)
          changed = transfer(o, a, [...f.via, step(a, f, o, "control")], false) || changed;
      }
    }
  }

  // --- Edges ---
  const edges = new Map<string, Edge>();
  const edge = (from: string, to: string, kind: Kind, chain: Step[]): void => {
    if (from === to) return;
    const key = `${from}|${to}|${kind}`;
    const old = edges.get(key);
    if (old === undefined || chain.length < old.chain.length) edges.set(key, { from, to, kind, chain });
  };
  const recvStep = (b: string, r: Fact, use: string): Step => ({ ...step(b, r, b, use), next: "-" });
  for (const a of domainsWithThreads) {
    for (const f of facts.get(a)!.values()) {
      if (f.type === CapType.Endpoint && (f.rights & RIGHT_WRITE) !== 0)
        for (const { pd: b, f: r } of receivers(f.obj, CapType.Endpoint)) {
          const use = f.fault ? "fault message" : canCall(f) ? "call" : "send";
          const chain = [...f.via, step(a, f, b, use), ...r.via, recvStep(b, r, "receive")];
          edge(a, b, f.fault || canCall(f) ? "call" : "send", chain);
          if (!f.fault && (f.rights & RIGHT_GRANT) !== 0) edge(a, b, "grant", chain);
          if (!f.fault && canCall(f) && b !== MONITOR) {
            const rep = [...facts.get(b)!.values()].find(
              (x) => x.type === CapType.Reply && (x.rights & RIGHT_GRANT) !== 0,
            );
            if (rep !== undefined)
              edge(b, a, "grant", [
                ...f.via,
                step(a, f, b, "call"),
                ...r.via,
                ...rep.via,
                step(b, rep, a, "reply grant"),
              ]);
          }
        }
      if (f.type === CapType.Notification && (f.rights & RIGHT_WRITE) !== 0)
        for (const { pd: b, f: r } of receivers(f.obj, CapType.Notification))
          edge(a, b, "signal", [...f.via, step(a, f, b, "signal"), ...r.via, recvStep(b, r, "wait")]);
      if (f.type === CapType.Frame)
        for (const [b, m] of facts) {
          if (b === a) continue;
          for (const g of m.values()) {
            if (g.obj !== f.obj || g.type !== CapType.Frame) continue;
            if ((f.rights & RIGHT_WRITE) !== 0 && (g.rights & (RIGHT_READ | RIGHT_WRITE)) !== 0)
              edge(a, b, "write", [...f.via, step(a, f, b, "write"), ...g.via, recvStep(b, g, "read")]);
            if ((f.rights & RIGHT_READ) !== 0 && (g.rights & RIGHT_WRITE) !== 0)
              edge(a, b, "read", [...f.via, step(a, f, b, "read"), ...g.via, recvStep(b, g, "write")]);
          }
        }
      const o = isControl(f);
      if (o !== undefined && o !== a) edge(a, o, "control", [...f.via, step(a, f, o, "control")]);
    }
  }
  for (const { pd, where, cap } of objectless) {
    const to = cap.type === CapType.IRQHandler ? `irq:${cap.irq}` : KERNEL;
    edge(pd, to, "control", [
      { pd, where, cap: capName(cap.type), rights: "-", badge: "0x0", object: to, next: to, use: "control" },
    ]);
  }
  // Interrupts: the kernel signals the notification of each IRQ handler.
  const irqDomains: string[] = [];
  for (let line = 0; line < k.irq.handlerSlots.length; line++) {
    const c = k.irq.handlerSlots[line]!.cap;
    if (c.isNull || c.obj === null) continue;
    const d = `irq:${line}`;
    irqDomains.push(d);
    const where = `kernel IRQ node, line ${line}`;
    const f = linkFact(d, where, CapType.Notification, c.obj as Notification, c.rights, badgeOf(c));
    for (const { pd: b, f: r } of receivers(c.obj, CapType.Notification))
      edge(d, b, "signal", [step(d, f, b, "signal"), ...r.via, recvStep(b, r, "wait")]);
  }
  for (const e of edges.values())
    if (e.to.startsWith("irq:") && !irqDomains.includes(e.to)) irqDomains.push(e.to);

  const order = [...domainsWithThreads, ...irqDomains, MONITOR];
  const sorted = [...edges.values()].sort(
    (x, y) =>
      order.indexOf(x.from) - order.indexOf(y.from) ||
      order.indexOf(x.to) - order.indexOf(y.to) ||
      KINDS.indexOf(x.kind) - KINDS.indexOf(y.kind),
  );
  return { domains: order, pds, fileServers, netServers, vms, edges: sorted, kernel: k, loaded };
}

/** Kinds from `from` to `to`. */
export function kindsBetween(g: AuthorityGraph, from: string, to: string): Kind[] {
  return g.edges.filter((e) => e.from === from && e.to === to).map((e) => e.kind);
}

/**
 * Information can pass from a to b along an edge: a -> b for write, signal, send, call, grant,
 * control; b -> a for read, call (the reply), control. The monitor is never an intermediary.
 */
export function infoPath(g: AuthorityGraph, from: string, to: string): Edge[] | null {
  const out = new Map<string, { to: string; e: Edge }[]>();
  const link = (x: string, y: string, e: Edge): void => {
    if (!out.has(x)) out.set(x, []);
    out.get(x)!.push({ to: y, e });
  };
  // Forward links first, so that among equally short paths the one that reads in the direction
  // of the flow ("linux calls vmm" rather than "vmm controls linux") is reported.
  for (const e of g.edges) if (e.kind !== "read") link(e.from, e.to, e);
  for (const e of g.edges)
    if (e.kind === "read" || e.kind === "call" || e.kind === "control") link(e.to, e.from, e);
  const prev = new Map<string, { from: string; e: Edge }>();
  const queue = [from];
  const seen = new Set([from]);
  while (queue.length > 0) {
    const x = queue.shift()!;
    if (x === to) break;
    if (x === MONITOR && x !== from) continue;
    for (const { to: y, e } of out.get(x) ?? []) {
      if (seen.has(y)) continue;
      seen.add(y);
      prev.set(y, { from: x, e });
      queue.push(y);
    }
  }
  if (!seen.has(to) || from === to) return null;
  const path: Edge[] = [];
  for (let x = to; x !== from; ) {
    const p = prev.get(x)!;
    path.unshift(p.e);
    x = p.from;
  }
  return path;
}

export function formatStep(s: Step): string {
  const next = s.next === "-" || s.next === s.pd ? "" : ` -> ${s.next}`;
  return `${s.pd}: ${s.where}: ${s.cap} ${s.rights} badge ${s.badge} to ${s.object} (${s.use})${next}`;
}
