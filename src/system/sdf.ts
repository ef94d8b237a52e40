/**
 * Parser and validator for seL4 Microkit System Description Files (SDF, Microkit 2.x), plus the
 * capvisor extensions described in `sdf-types.ts`.
 *
 * It checks what Microkit's tool checks (tool/microkit/src/sdf.rs): unknown elements and
 * attributes, required attributes, numbers (decimal or `0x` hex, `_` allowed between digits),
 * ranges, duplicate names, maps against memory regions (existence, alignment, overlap), channel
 * ends, protected-call priorities, IRQ numbers and ids. It adds a few checks Microkit leaves to
 * later stages or does not make: a channel from a PD to itself, an acyclic pp call graph, a zero
 * budget or region size, maps reaching into the PD's stack. Unlike Microkit it does not stop at
 * the first problem: every error is collected, and `parseSdf` throws one `SdfError` listing them
 * all in document order, each as `file:line:column: <element>: what is wrong: what to do`.
 *
 * Not supported yet (reported as errors, never silently ignored): the domain scheduler
 * (`<domains>`, `domain=`), ARM SMC forwarding (`smc=`), x86 I/O ports and I/O APIC IRQs,
 * capability maps. Checks that need the program image or a file (setvar symbols exist, a
 * prefill file fits its region) belong to the loader.
 */
import { readFile } from "node:fs/promises";
import { Attrs, declared, hex, quoteList } from "./sdf-attrs.js";
import {
  applyLegacyPp,
  checkChannels,
  checkIrqNumbers,
  checkMapsAndSetvars,
  checkPhysOverlap,
  uniqueNames,
  warnUnmappedRegions,
} from "./sdf-checks.js";
import { Diagnostics, sortDiagnostics } from "./sdf-diagnostics.js";
import type {
  MapPerms,
  PageSize,
  SdfChannel,
  SdfChannelEnd,
  SdfDiagnostic,
  SdfIrq,
  SdfMap,
  SdfMemoryRegion,
  SdfOptions,
  SdfProgramImage,
  SdfProtectionDomain,
  SdfSetVar,
  SdfVcpu,
  SdfVirtualMachine,
  SystemDescription,
} from "./sdf-types.js";
import { locString, parseXml, type XElement } from "./sdf-xml.js";

export type * from "./sdf-types.js";

/** At most 63 PDs in one system (Microkit MAX_PDS). */
export const SDF_MAX_PDS = 63;
/**
 * Largest channel, IRQ, child PD and vCPU id. Microkit's tool (PD_MAX_ID) allows 0-61: a PD's
 * badge has 64 bits, bit 63 marks a protected call and bit 62 a fault, so an id of 62 would be
 * indistinguishable from a fault.
 */
export const SDF_MAX_ID = 61;
export const SDF_MAX_PRIORITY = 254;
export const SDF_DEFAULT_BUDGET_US = 1000;
export const SDF_DEFAULT_STACK_SIZE = 0x2000;
export const SDF_MIN_STACK_SIZE = 0x1000;
export const SDF_MAX_STACK_SIZE = 0x1000000;
export const SDF_PAGE_SIZES: readonly PageSize[] = [0x1000, 0x200000];
/**
 * Top of a PD's virtual address space (AArch64 without hypervisor mode: 2^47). The stack
 * occupies the highest `stack_size` bytes, so a PD's maps must end below it, as in Microkit.
 */
export const SDF_USER_TOP = 0x8000_0000_0000;

/** Thrown by `parseSdf` and `loadSdf` with every problem found in a description. */
export class SdfError extends Error {
  readonly diagnostics: readonly SdfDiagnostic[];
  constructor(diagnostics: SdfDiagnostic[]) {
    const n = diagnostics.length;
    super(
      `${n === 1 ? "1 error" : `${n} errors`} in system description:\n${diagnostics.map(formatDiagnostic).join("\n")}`,
    );
    this.name = "SdfError";
    this.diagnostics = diagnostics;
  }
}

/** `file:line:column: <element>: message` (without `<element>: ` when there is no element). */
export function formatDiagnostic(d: SdfDiagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.element ? `<${d.element}>: ` : ""}${d.message}`;
}

/** Reads and parses a description; `path` is used as written in every message. */
export async function loadSdf(path: string, options: SdfOptions = {}): Promise<SystemDescription> {
  let xml: string;
  try {
    xml = await readFile(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read system description ${path}: ${(e as Error).message}`);
  }
  return parseSdf(xml, path, options);
}

/** Parses and validates a description. Throws `SdfError` listing every problem. */
export function parseSdf(xml: string, fileName: string, options: SdfOptions = {}): SystemDescription {
  const parsed = parseXml(xml, fileName);
  if (!parsed.ok) throw new SdfError([parsed.diagnostic]);
  const v = new Validator(fileName, options);
  const sd = v.system(parsed.root);
  if (v.errors.length > 0) throw new SdfError(sortDiagnostics(v.errors));
  sd.warnings = sortDiagnostics(v.warnings);
  return sd;
}

interface Scheduling {
  priority: number;
  budget: number;
  period: number;
}

// ---------------------------------------------------------------------------------------------
// The validator: builds the typed description and records every problem.

class Validator extends Diagnostics {
  /** PDs carrying the pre-2.0 pp attribute. */
  private readonly legacyPp = new Set<SdfProtectionDomain>();

  constructor(
    readonly file: string,
    readonly options: SdfOptions,
  ) {
    super();
  }

  private checkText(el: XElement): void {
    if (el.text !== "") {
      const snippet = el.text.length > 30 ? `${el.text.slice(0, 30)}...` : el.text;
      this.error(
        el,
        `unexpected text "${snippet}": a description holds only elements, attributes and comments; remove the text or turn it into a <!-- comment -->`,
      );
    }
  }

  private unknownElement(el: XElement, parent: string, allowed: readonly string[]): void {
    this.error(
      el,
      `unknown element inside <${parent}> (allowed there: ${quoteList(allowed)}): remove it or fix its name`,
    );
  }

  system(root: XElement): SystemDescription {
    const sd: SystemDescription = {
      file: this.file,
      protectionDomains: [],
      allProtectionDomains: [],
      memoryRegions: [],
      channels: [],
      warnings: [],
      extensions: {},
    };
    if (root.name !== "system") {
      this.error(root, "the root element must be <system>: wrap the description in <system> ... </system>");
      return sd;
    }
    const attrs = new Attrs(this, root, [], (n) => n === "xmlns" || n.startsWith("xmlns:"));
    sd.extensions = attrs.extensions;
    this.checkText(root);

    const channelEls: XElement[] = [];
    const allowed = ["protection_domain", "memory_region", "channel"];
    for (const el of root.children) {
      switch (el.name) {
        case "protection_domain": {
          const pd = this.protectionDomain(el, undefined);
          if (pd) sd.protectionDomains.push(pd);
          break;
        }
        case "memory_region": {
          const mr = this.memoryRegion(el);
          if (mr) sd.memoryRegions.push(mr);
          break;
        }
        case "channel":
          channelEls.push(el);
          break;
        case "virtual_machine":
          this.error(
            el,
            "a virtual machine must be inside the protection domain that monitors it: move it there",
          );
          break;
        case "domains":
          this.error(el, "the domain scheduler is not supported by capvisor yet: remove <domains>");
          break;
        default:
          this.unknownElement(el, "system", allowed);
      }
    }

    const all: SdfProtectionDomain[] = [];
    const flatten = (pd: SdfProtectionDomain) => {
      all.push(pd);
      for (const c of pd.children) flatten(c);
    };
    for (const pd of sd.protectionDomains) flatten(pd);
    sd.allProtectionDomains = all;

    if (all.length === 0 && !this.errors.some((e) => e.element === "protection_domain"))
      this.error(root, "no protection domain: a system needs at least one <protection_domain>");
    if (all.length > SDF_MAX_PDS) {
      const extra = all[SDF_MAX_PDS]!;
      this.errorAt(
        extra.loc,
        "protection_domain",
        `too many protection domains: Microkit allows at most ${SDF_MAX_PDS} and this is number ${SDF_MAX_PDS + 1} (of ${all.length}): merge or remove some`,
      );
    }

    const pdByName = uniqueNames(this, all, "protection_domain", "protection domain");
    const mrByName = uniqueNames(this, sd.memoryRegions, "memory_region", "memory region");
    const vms = all.flatMap((pd) => (pd.virtualMachine ? [pd.virtualMachine] : []));
    uniqueNames(this, vms, "virtual_machine", "virtual machine");

    checkPhysOverlap(this, sd.memoryRegions);
    checkIrqNumbers(this, all);

    for (const el of channelEls) {
      const ch = this.channel(el, pdByName);
      if (ch) sd.channels.push(ch);
    }
    applyLegacyPp(sd.channels, pdByName, this.legacyPp);
    checkChannels(this, all, sd.channels, pdByName);

    checkMapsAndSetvars(this, all, mrByName, SDF_USER_TOP);
    warnUnmappedRegions(this, all, sd.memoryRegions);
    return sd;
  }

  // -- protection domains ---------------------------------------------------------------------

  private scheduling(a: Attrs): Scheduling {
    const priority = a.num("priority", { min: 0, max: SDF_MAX_PRIORITY }) ?? 0;
    const budget = a.num("budget", { min: 1 }) ?? SDF_DEFAULT_BUDGET_US;
    let period = a.num("period") ?? budget;
    if (budget > period) {
      a.error(
        `budget (${budget}) must be less than, or equal to, period (${period}): raise period or lower budget`,
      );
      period = budget;
    }
    return { priority, budget, period };
  }

  private protectionDomain(
    el: XElement,
    parent: SdfProtectionDomain | undefined,
  ): SdfProtectionDomain | undefined {
    const allowedAttrs = [
      "name",
      "priority",
      "budget",
      "period",
      "passive",
      "stack_size",
      "cpu",
      "fpu",
      "pp",
      ...(parent ? ["id"] : []),
    ];
    const a = new Attrs(this, el, allowedAttrs, (n) => n === "smc" || n === "domain");
    if (a.has("smc")) this.error(el, "ARM SMC forwarding (smc) is not available in capvisor: remove smc");
    if (a.has("domain"))
      this.error(el, "the domain scheduler is not supported by capvisor yet: remove domain");
    const name = a.name("name", "my_pd");
    const id = parent ? a.requiredNum("id", "0", { min: 0, max: SDF_MAX_ID }) : undefined;
    const sched = this.scheduling(a);
    const passive = a.bool("passive", false);
    let stackSize =
      a.num("stack_size", { min: SDF_MIN_STACK_SIZE, max: SDF_MAX_STACK_SIZE, hex: true }) ??
      SDF_DEFAULT_STACK_SIZE;
    if (stackSize % 0x1000 !== 0) {
      this.error(
        el,
        `stack_size ${hex(stackSize)} is not a whole number of 4 KiB pages: use ${hex(Math.ceil(stackSize / 0x1000) * 0x1000)}`,
      );
      stackSize = SDF_DEFAULT_STACK_SIZE;
    }
    const cores = this.options.cores;
    const cpu = a.num("cpu", { min: 0, max: cores !== undefined ? cores - 1 : 255 }) ?? 0;
    const fpu = a.bool("fpu", true);
    const legacyPp = a.bool("pp", false);
    if (a.has("pp"))
      this.warn(
        el.loc,
        el.name,
        `pp on <protection_domain> is the pre-2.0 form: put pp="true" on the calling <end> of each channel instead`,
      );
    this.checkText(el);

    let programImage: SdfProgramImage | undefined;
    let virtualMachine: SdfVirtualMachine | undefined;
    const maps: SdfMap[] = [];
    const irqs: SdfIrq[] = [];
    const setvars: SdfSetVar[] = [];
    const children: SdfProtectionDomain[] = [];
    const childEls: XElement[] = [];
    const pdName = name ?? "?";
    const addSetvar = (sv: SdfSetVar, elName: string) => {
      const first = setvars.find((s) => s.symbol === sv.symbol);
      if (first)
        this.errorAt(
          sv.loc,
          elName,
          `setvar on symbol "${sv.symbol}" already exists (${locString(first.loc)}): each symbol is patched once, use another symbol`,
        );
      else setvars.push(sv);
    };

    const pd: SdfProtectionDomain = {
      name: pdName,
      ...sched,
      passive,
      stackSize,
      cpu,
      fpu,
      ...(id !== undefined ? { id } : {}),
      ...(parent ? { parent: parent.name } : {}),
      legacyPp,
      programImage: { path: "", extensions: {}, loc: el.loc },
      maps,
      irqs,
      setvars,
      children,
      extensions: a.extensions,
      loc: el.loc,
    };

    const allowed = ["program_image", "map", "irq", "setvar", "protection_domain", "virtual_machine"];
    for (const c of el.children) {
      switch (c.name) {
        case "program_image": {
          const ca = new Attrs(this, c, ["path", "path_for_symbols"]);
          this.noChildren(c);
          const path = ca.name("path", `${pdName}.wasm`);
          if (programImage) {
            this.error(
              c,
              `protection domain "${pdName}" already has a program image (${locString(programImage.loc)}): a PD runs exactly one, remove one`,
            );
          } else if (path !== undefined) {
            const pfs = ca.str("path_for_symbols");
            programImage = {
              path,
              ...(pfs !== undefined ? { pathForSymbols: pfs } : {}),
              extensions: ca.extensions,
              loc: c.loc,
            };
          } else {
            programImage = { path: "", extensions: ca.extensions, loc: c.loc };
          }
          break;
        }
        case "map": {
          const m = this.map(c, true);
          if (!m) break;
          maps.push(m);
          if (m.setvarVaddr !== undefined)
            addSetvar({ symbol: m.setvarVaddr, kind: "vaddr", vaddr: m.vaddr, loc: m.loc }, "map");
          if (m.setvarSize !== undefined)
            addSetvar({ symbol: m.setvarSize, kind: "size", mr: m.mr, loc: m.loc }, "map");
          break;
        }
        case "irq": {
          const irq = this.irq(c);
          if (irq) irqs.push(irq);
          break;
        }
        case "setvar": {
          const ca = new Attrs(this, c, ["symbol", "region_paddr"]);
          this.noChildren(c);
          const symbol = ca.name("symbol", "my_symbol");
          const region = ca.name("region_paddr", "my_region");
          if (symbol !== undefined && region !== undefined)
            addSetvar({ symbol, kind: "paddr", region, loc: c.loc, extensions: ca.extensions }, "setvar");
          break;
        }
        case "protection_domain":
          childEls.push(c);
          break;
        case "virtual_machine": {
          if (virtualMachine) {
            this.error(
              c,
              `protection domain "${pdName}" already has a virtual machine (${locString(virtualMachine.loc)}): a PD monitors at most one, move this one to another PD`,
            );
            break;
          }
          virtualMachine = this.virtualMachine(c);
          break;
        }
        default:
          this.unknownElement(c, "protection_domain", allowed);
      }
    }
    // A PD run by one of capvisor's runtimes (capvisor:runtime, such as the VMM) may have no image
    // of its own: the runtime's check says whether it needs one.
    if (programImage) pd.programImage = programImage;
    else if (pd.extensions.runtime === undefined)
      this.error(
        el,
        `protection domain "${pdName}" has no <program_image>: add <program_image path="${pdName}.wasm" />`,
      );
    if (virtualMachine) pd.virtualMachine = virtualMachine;

    // Children after the parent's own fields, so that they can name it.
    const byId = new Map<number, SdfProtectionDomain>();
    for (const c of childEls) {
      const child = this.protectionDomain(c, pd);
      if (!child) continue;
      children.push(child);
      if (child.id === undefined) continue;
      const first = byId.get(child.id);
      if (first) {
        this.error(
          c,
          `child id ${child.id} is already used by "${first.name}" (${locString(first.loc)}) in protection domain "${pdName}": child ids must be unique per parent, pick another`,
        );
        continue;
      }
      byId.set(child.id, child);
      const vcpu = virtualMachine?.vcpus.find((v) => v.id === child.id);
      if (vcpu)
        this.error(
          c,
          `child id ${child.id} clashes with vcpu id ${vcpu.id} of virtual machine "${virtualMachine!.name}" in protection domain "${pdName}": pick another id`,
        );
    }
    if (legacyPp) this.legacyPp.add(pd);
    return name === undefined ? undefined : pd;
  }

  private noChildren(el: XElement): void {
    this.checkText(el);
    for (const c of el.children) this.error(c, `<${el.name}> takes no child elements: remove this one`);
  }

  private map(el: XElement, inPd: boolean): SdfMap | undefined {
    const a = new Attrs(this, el, [
      "mr",
      "vaddr",
      "perms",
      "cached",
      ...(inPd ? ["setvar_vaddr", "setvar_size"] : []),
    ]);
    this.noChildren(el);
    const mr = a.name("mr", "my_region");
    const vaddr = a.requiredNum("vaddr", "0x2000000", { hex: true });
    const perms = this.perms(el, a.str("perms"));
    const cached = a.bool("cached", true);
    if (mr === undefined || vaddr === undefined || perms === undefined) return undefined;
    const m: SdfMap = { mr, vaddr, perms, cached, extensions: a.extensions, loc: el.loc };
    const sv = a.str("setvar_vaddr");
    if (sv !== undefined) m.setvarVaddr = sv;
    const ss = a.str("setvar_size");
    if (ss !== undefined) m.setvarSize = ss;
    return m;
  }

  private perms(el: XElement, text: string | undefined): MapPerms | undefined {
    if (text === undefined) return { read: true, write: true, execute: false };
    if (!/^[rwx]+$/.test(text)) {
      this.error(el, `perms "${text}" must be a combination of r, w and x, such as "r", "rw", "rx" or "rwx"`);
      return undefined;
    }
    const p = { read: text.includes("r"), write: text.includes("w"), execute: text.includes("x") };
    if (p.write && !p.read && !p.execute) {
      this.error(el, `perms "${text}" is write-only, which seL4 does not allow: use "rw"`);
      return undefined;
    }
    return p;
  }

  private irq(el: XElement): SdfIrq | undefined {
    const a = new Attrs(this, el, ["irq", "id", "trigger"], (n) => n === "pin" || n === "setvar_id");
    if (a.has("pin") || a.has("setvar_id"))
      this.error(
        el,
        "x86 I/O APIC interrupts (pin) and setvar_id are not supported by capvisor yet: remove them",
      );
    this.noChildren(el);
    const irq = a.requiredNum("irq", "33");
    const id = a.requiredNum("id", "0", { min: 0, max: SDF_MAX_ID });
    const t = a.str("trigger") ?? "level";
    if (t !== "level" && t !== "edge") {
      this.error(el, `trigger "${t}" must be "level" or "edge"`);
      return undefined;
    }
    if (irq === undefined || id === undefined) return undefined;
    return { irq, id, trigger: t, extensions: a.extensions, loc: el.loc };
  }

  private virtualMachine(el: XElement): SdfVirtualMachine | undefined {
    const a = new Attrs(this, el, ["name", "priority", "budget", "period"]);
    this.checkText(el);
    const name = a.name("name", "my_vm");
    const sched = this.scheduling(a);
    const vcpus: SdfVcpu[] = [];
    const maps: SdfMap[] = [];
    for (const c of el.children) {
      if (c.name === "vcpu") {
        const ca = new Attrs(this, c, ["id"]);
        this.noChildren(c);
        const id = ca.requiredNum("id", "0", { min: 0, max: SDF_MAX_ID });
        if (id === undefined) continue;
        const first = vcpus.find((v) => v.id === id);
        if (first)
          this.error(
            c,
            `duplicate vcpu id ${id} in virtual machine "${name ?? "?"}" (first at ${locString(first.loc)}): give each vcpu its own id`,
          );
        else vcpus.push({ id, extensions: ca.extensions, loc: c.loc });
      } else if (c.name === "map") {
        const m = this.map(c, false);
        if (m) maps.push(m);
      } else {
        this.unknownElement(c, "virtual_machine", ["vcpu", "map"]);
      }
    }
    if (vcpus.length === 0 && name !== undefined)
      this.error(el, `virtual machine "${name}" has no <vcpu>: add <vcpu id="0" />`);
    if (name === undefined) return undefined;
    return { name, ...sched, vcpus, maps, extensions: a.extensions, loc: el.loc };
  }

  // -- memory regions -------------------------------------------------------------------------

  private memoryRegion(el: XElement): SdfMemoryRegion | undefined {
    const a = new Attrs(this, el, ["name", "size", "page_size", "phys_addr", "prefill_path"]);
    this.noChildren(el);
    const name = a.name("name", "my_region");
    const size = a.requiredNum("size", "0x1000", { min: 1, hex: true });
    const ps = a.num("page_size", { hex: true }) ?? 0x1000;
    const physAddr = a.num("phys_addr", { hex: true });
    const prefillPath = a.str("prefill_path");
    let pageSize: PageSize = 0x1000;
    if (ps === 0x1000 || ps === 0x200000) pageSize = ps;
    else {
      this.error(el, `page_size ${hex(ps)} is not supported: use 0x1000 (4 KiB) or 0x200000 (2 MiB)`);
      return undefined;
    }
    let ok = name !== undefined && size !== undefined;
    if (size !== undefined && size % pageSize !== 0) {
      this.error(
        el,
        `size ${hex(size)} is not a multiple of the page size ${hex(pageSize)}: use ${hex(Math.ceil(size / pageSize) * pageSize)}`,
      );
      ok = false;
    }
    if (physAddr !== undefined && physAddr % pageSize !== 0) {
      this.error(el, `phys_addr ${hex(physAddr)} is not aligned to the page size ${hex(pageSize)}`);
      ok = false;
    }
    if (!ok) return undefined;
    return {
      name: name!,
      size: size!,
      pageSize,
      pageCount: size! / pageSize,
      ...(physAddr !== undefined ? { physAddr } : {}),
      ...(prefillPath !== undefined ? { prefillPath } : {}),
      extensions: a.extensions,
      loc: el.loc,
    };
  }

  // -- IRQs and channels ----------------------------------------------------------------------

  private channel(el: XElement, pds: Map<string, SdfProtectionDomain>): SdfChannel | undefined {
    const a = new Attrs(this, el, []);
    this.checkText(el);
    const ends: SdfChannelEnd[] = [];
    let endCount = 0;
    let bad = false;
    for (const c of el.children) {
      if (c.name !== "end") {
        this.unknownElement(c, "channel", ["end"]);
        continue;
      }
      endCount++;
      const end = this.channelEnd(c, pds);
      if (end) ends.push(end);
      else bad = true;
    }
    if (endCount !== 2) {
      this.error(
        el,
        `a channel has exactly two <end> elements, this one has ${endCount}: ${endCount < 2 ? "add" : "remove"} ${Math.abs(2 - endCount) === 1 ? "one" : Math.abs(2 - endCount)}`,
      );
      return undefined;
    }
    if (bad) return undefined;
    const [e0, e1] = ends as [SdfChannelEnd, SdfChannelEnd];
    if (e0.pd === e1.pd) {
      this.errorAt(
        e1.loc,
        "end",
        `channel connects protection domain "${e0.pd}" to itself: both ends must name different PDs`,
      );
      return undefined;
    }
    if (e0.pp && e1.pp) {
      this.error(
        el,
        `both ends have pp="true", but a protected call goes one way: keep pp only on the end that calls`,
      );
      return undefined;
    }
    return { ends: [e0, e1], extensions: a.extensions, loc: el.loc };
  }

  private channelEnd(el: XElement, pds: Map<string, SdfProtectionDomain>): SdfChannelEnd | undefined {
    const a = new Attrs(this, el, ["pd", "id", "pp", "notify"]);
    this.noChildren(el);
    const pd = a.name("pd", "my_pd");
    const id = a.requiredNum("id", "0", { min: 0, max: SDF_MAX_ID });
    const pp = a.bool("pp", false);
    const notify = a.bool("notify", true);
    if (pd !== undefined && !pds.has(pd)) {
      this.error(el, `protection domain "${pd}" does not exist (${declared(pds, "protection domains")})`);
      return undefined;
    }
    if (pd === undefined || id === undefined) return undefined;
    return { pd, id, pp, notify, ppFromLegacy: false, extensions: a.extensions, loc: el.loc };
  }
}
