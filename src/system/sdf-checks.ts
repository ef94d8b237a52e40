/**
 * The checks that look across elements once each has been read on its own: unique names,
 * physical overlap of memory regions, maps against their regions, setvar regions, regions no one
 * maps, IRQ numbers, the pre-2.0 pp form, channel and IRQ ids, protected-call priorities and
 * cycles. Each takes the `Diagnostics` to record problems in and never stops at the first one.
 */
import { declared, hex } from "./sdf-attrs.js";
import type { Diagnostics } from "./sdf-diagnostics.js";
import type {
  SdfChannel,
  SdfChannelEnd,
  SdfIrq,
  SdfLocation,
  SdfMap,
  SdfMemoryRegion,
  SdfProtectionDomain,
} from "./sdf-types.js";
import { locString } from "./sdf-xml.js";

/** The maps of one PD or VM, and the address they must end below. */
type MapContext = {
  kind: "protection domain" | "virtual machine";
  name: string;
  maps: SdfMap[];
  maxEnd: number;
};

/** Index by name, reporting every repeat of a name against its first use. */
export function uniqueNames<T extends { name: string; loc: SdfLocation }>(
  d: Diagnostics,
  items: T[],
  element: string,
  what: string,
): Map<string, T> {
  const byName = new Map<string, T>();
  for (const it of items) {
    const first = byName.get(it.name);
    if (first)
      d.errorAt(
        it.loc,
        element,
        `${what} name "${it.name}" is already used at ${locString(first.loc)}: names must be unique, rename one`,
      );
    else byName.set(it.name, it);
  }
  return byName;
}

// -- memory regions and maps --------------------------------------------------------------------

export function checkPhysOverlap(d: Diagnostics, mrs: SdfMemoryRegion[]): void {
  const placed: SdfMemoryRegion[] = [];
  for (const mr of mrs) {
    if (mr.physAddr === undefined) continue;
    const start = mr.physAddr;
    const end = start + mr.size;
    const other = placed.find((o) => start < o.physAddr! + o.size && o.physAddr! < end);
    if (other)
      d.errorAt(
        mr.loc,
        "memory_region",
        `memory region "${mr.name}" physical address range [${hex(start)}..${hex(end)}) overlaps memory region "${other.name}" [${hex(other.physAddr!)}..${hex(other.physAddr! + other.size)}) (${locString(other.loc)}): move one of them`,
      );
    placed.push(mr);
  }
}

/**
 * Maps and setvars against the memory regions. `userTop` is the top of a PD's address space
 * (`SDF_USER_TOP`, passed in so that this file does not import `sdf.ts`).
 */
export function checkMapsAndSetvars(
  d: Diagnostics,
  pds: SdfProtectionDomain[],
  mrByName: Map<string, SdfMemoryRegion>,
  userTop: number,
): void {
  for (const pd of pds) {
    checkMaps(d, mrByName, {
      kind: "protection domain",
      name: pd.name,
      maps: pd.maps,
      maxEnd: userTop - pd.stackSize,
    });
    if (pd.virtualMachine) {
      const vm = pd.virtualMachine;
      checkMaps(d, mrByName, {
        kind: "virtual machine",
        name: vm.name,
        maps: vm.maps,
        maxEnd: userTop,
      });
    }
    for (const sv of pd.setvars) {
      if (sv.kind === "paddr" && !mrByName.has(sv.region))
        d.errorAt(sv.loc, "setvar", `memory region "${sv.region}" does not exist (${declared(mrByName)})`);
    }
  }
}

function checkMaps(d: Diagnostics, mrs: Map<string, SdfMemoryRegion>, ctx: MapContext): void {
  const placed: { m: SdfMap; start: number; end: number }[] = [];
  for (const m of ctx.maps) {
    const mr = mrs.get(m.mr);
    if (!mr) {
      d.errorAt(m.loc, "map", `memory region "${m.mr}" does not exist (${declared(mrs)})`);
      continue;
    }
    if (m.vaddr % mr.pageSize !== 0) {
      d.errorAt(
        m.loc,
        "map",
        `vaddr ${hex(m.vaddr)} is not aligned to the page size ${hex(mr.pageSize)} of memory region "${mr.name}": use a multiple of ${hex(mr.pageSize)}`,
      );
      continue;
    }
    const start = m.vaddr;
    const end = start + mr.size;
    if (end > ctx.maxEnd) {
      const what =
        ctx.kind === "protection domain"
          ? `the bottom of the stack of protection domain "${ctx.name}"`
          : "the top of the address space";
      d.errorAt(
        m.loc,
        "map",
        `"${mr.name}" at [${hex(start)}..${hex(end)}) ends above ${hex(ctx.maxEnd)}, ${what}: map it lower`,
      );
      continue;
    }
    const other = placed.find((p) => start < p.end && p.start < end);
    if (other) {
      d.errorAt(
        m.loc,
        "map",
        `"${m.mr}" at [${hex(start)}..${hex(end)}) overlaps "${other.m.mr}" at [${hex(other.start)}..${hex(other.end)}) (${locString(other.m.loc)}) in ${ctx.kind} "${ctx.name}": move one of them`,
      );
      continue;
    }
    placed.push({ m, start, end });
  }
}

/** A region no PD or VM maps is allowed, but probably a mistake: a warning. */
export function warnUnmappedRegions(
  d: Diagnostics,
  pds: SdfProtectionDomain[],
  memoryRegions: SdfMemoryRegion[],
): void {
  const used = new Set(
    pds.flatMap((pd) => [...pd.maps, ...(pd.virtualMachine?.maps ?? [])].map((m) => m.mr)),
  );
  for (const mr of memoryRegions) {
    if (!used.has(mr.name))
      d.warn(mr.loc, "memory_region", `memory region "${mr.name}" is not mapped by any protection domain`);
  }
}

// -- IRQs and channels --------------------------------------------------------------------------

export function checkIrqNumbers(d: Diagnostics, pds: SdfProtectionDomain[]): void {
  const seen = new Map<number, { pd: SdfProtectionDomain; irq: SdfIrq }>();
  for (const pd of pds) {
    for (const irq of pd.irqs) {
      const first = seen.get(irq.irq);
      if (first)
        d.errorAt(
          irq.loc,
          "irq",
          `IRQ ${irq.irq} is already used by protection domain "${first.pd.name}" (${locString(first.irq.loc)}): an interrupt goes to one PD only`,
        );
      else seen.set(irq.irq, { pd, irq });
    }
  }
}

/** The pre-2.0 form: `pp="true"` on a PD lets the other end of each of its channels call it. */
export function applyLegacyPp(
  channels: SdfChannel[],
  pds: Map<string, SdfProtectionDomain>,
  legacyPp: ReadonlySet<SdfProtectionDomain>,
): void {
  if (legacyPp.size === 0) return;
  for (const ch of channels) {
    const [e0, e1] = ch.ends;
    if (e0.pp || e1.pp) continue;
    const p0 = pds.get(e0.pd)!;
    const p1 = pds.get(e1.pd)!;
    const callee0 = legacyPp.has(p0);
    const callee1 = legacyPp.has(p1);
    let caller: SdfChannelEnd | undefined;
    if (callee0 && callee1) caller = p0.priority < p1.priority ? e0 : e1;
    else if (callee1) caller = e0;
    else if (callee0) caller = e1;
    if (caller) {
      caller.pp = true;
      caller.ppFromLegacy = true;
    }
  }
}

export function checkChannels(
  d: Diagnostics,
  pds: SdfProtectionDomain[],
  channels: SdfChannel[],
  byName: Map<string, SdfProtectionDomain>,
): void {
  // Ids: a PD's IRQ ids and channel ids share one space.
  const ids = new Map<SdfProtectionDomain, Map<number, { element: string; loc: SdfLocation }>>();
  const idsOf = (pd: SdfProtectionDomain) => {
    let m = ids.get(pd);
    if (!m) {
      m = new Map();
      ids.set(pd, m);
    }
    return m;
  };
  const claim = (pd: SdfProtectionDomain, id: number, element: string, loc: SdfLocation) => {
    const m = idsOf(pd);
    const first = m.get(id);
    if (first) {
      d.errorAt(
        loc,
        element,
        `id ${id} of protection domain "${pd.name}" is already used by the <${first.element}> at ${locString(first.loc)}: channel and IRQ ids must be unique per PD, pick another`,
      );
      return;
    }
    m.set(id, { element, loc });
  };
  for (const pd of pds) for (const irq of pd.irqs) claim(pd, irq.id, "irq", irq.loc);

  const calls = new Map<string, { callee: string; end: SdfChannelEnd }[]>();
  for (const ch of channels) {
    for (const e of ch.ends) claim(byName.get(e.pd)!, e.id, "end", e.loc);
    const [e0, e1] = ch.ends;
    for (const [caller, callee] of [
      [e0, e1],
      [e1, e0],
    ] as const) {
      if (!caller.pp) continue;
      const from = byName.get(caller.pd)!;
      const to = byName.get(callee.pd)!;
      if (from.priority >= to.priority) {
        const origin = caller.ppFromLegacy ? ` (from pp="true" on protection domain "${to.name}")` : "";
        d.errorAt(
          caller.loc,
          "end",
          `pp="true"${origin} lets "${from.name}" (priority ${from.priority}) call "${to.name}" (priority ${to.priority}), but protected calls must go to a PD of strictly higher priority: raise "${to.name}" above ${from.priority} or drop pp`,
        );
      }
      const list = calls.get(from.name) ?? [];
      calls.set(from.name, list);
      list.push({ callee: to.name, end: caller });
    }
  }
  checkCallCycles(d, calls);
}

/** The pp call graph must be acyclic (strict priorities imply it; checked on its own anyway). */
function checkCallCycles(d: Diagnostics, calls: Map<string, { callee: string; end: SdfChannelEnd }[]>): void {
  const state = new Map<string, "active" | "done">();
  const path: string[] = [];
  const visit = (pd: string) => {
    state.set(pd, "active");
    path.push(pd);
    for (const { callee, end } of calls.get(pd) ?? []) {
      const s = state.get(callee);
      if (s === "active") {
        const cycle = [...path.slice(path.indexOf(callee)), callee].join(" -> ");
        d.errorAt(
          end.loc,
          "end",
          `protected calls form a cycle ${cycle}: the pp call graph must be acyclic, remove pp from one of these ends`,
        );
      } else if (s === undefined) visit(callee);
    }
    path.pop();
    state.set(pd, "done");
  };
  for (const pd of calls.keys()) if (!state.has(pd)) visit(pd);
}
