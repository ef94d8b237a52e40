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
import { SaxesParser } from "saxes";
import type {
  MapPerms,
  PageSize,
  SdfChannel,
  SdfChannelEnd,
  SdfDiagnostic,
  SdfExtensions,
  SdfIrq,
  SdfLocation,
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

const EXT_PREFIX = "capvisor:";

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
  const root = parseXml(xml, fileName);
  const v = new Validator(fileName, options);
  const sd = v.system(root);
  if (v.errors.length > 0) throw new SdfError(sortDiagnostics(v.errors));
  sd.warnings = sortDiagnostics(v.warnings);
  return sd;
}

// ---------------------------------------------------------------------------------------------
// XML to a small element tree with positions.

interface XElement {
  name: string;
  attrs: Map<string, string>;
  children: XElement[];
  /** Non-whitespace text directly inside the element, if any. */
  text: string;
  loc: SdfLocation;
}

function parseXml(xml: string, file: string): XElement {
  const lineStarts = [0];
  for (let i = 0; i < xml.length; i++) if (xml.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const locAt = (offset: number): SdfLocation => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { file, line: lo + 1, column: offset - lineStarts[lo]! + 1 };
  };

  const parser = new SaxesParser({ position: true });
  const stack: XElement[] = [];
  let root: XElement | undefined;
  let xmlError: SdfDiagnostic | undefined;
  let lastClosed: XElement | undefined;

  parser.on("error", (e) => {
    if (xmlError) return; // later errors are usually consequences of the first
    const raw = e.message.replace(/^\d+:\d+: /, "").replace(/\.$/, "");
    const top = stack[stack.length - 1];
    let where: SdfLocation = { file, line: parser.line, column: Math.max(parser.column, 1) };
    let hint = "fix the XML at this position";
    const unclosed = /^unclosed tag: (.*)$/.exec(raw);
    if (unclosed && top) {
      where = top.loc;
      hint = `close it with </${top.name}> or make it empty with <${top.name} ... />`;
    } else if (raw.startsWith("unexpected close tag") && lastClosed) {
      const close = /^<\/([^\s>]*)/.exec(xml.slice(xml.lastIndexOf("</", parser.position - 1)))?.[1] ?? "";
      hint = `</${close}> does not match the open <${lastClosed.name}> (${locString(lastClosed.loc)}): close <${lastClosed.name}> first`;
    }
    xmlError = {
      ...where,
      element: unclosed && top ? top.name : "",
      message: `not well-formed XML: ${raw}: ${hint}`,
    };
  });
  parser.on("opentagstart", (tag) => {
    const start = xml.lastIndexOf(`<${tag.name}`, parser.position - 1);
    const el: XElement = {
      name: tag.name,
      attrs: new Map(),
      children: [],
      text: "",
      loc: locAt(start < 0 ? parser.position : start),
    };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else root ??= el;
    stack.push(el);
  });
  parser.on("opentag", (tag) => {
    const el = stack[stack.length - 1]!;
    for (const [k, value] of Object.entries(tag.attributes)) el.attrs.set(k, value as string);
    if (tag.isSelfClosing) stack.pop();
  });
  parser.on("closetag", (tag) => {
    if (!tag.isSelfClosing) lastClosed = stack.pop();
  });
  const onText = (t: string) => {
    const top = stack[stack.length - 1];
    if (top && t.trim() !== "") top.text += t.trim();
  };
  parser.on("text", onText);
  parser.on("cdata", onText);

  try {
    parser.write(xml).close();
  } catch (e) {
    // saxes throws only without an error handler; keep this as a safety net
    xmlError ??= {
      file,
      line: 1,
      column: 1,
      element: "",
      message: `not well-formed XML: ${(e as Error).message}`,
    };
  }
  if (xmlError) throw new SdfError([xmlError]);
  if (!root) {
    throw new SdfError([
      {
        file,
        line: 1,
        column: 1,
        element: "",
        message: "no root element: a description is one <system> element",
      },
    ]);
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// Helpers.

function locString(l: SdfLocation): string {
  return `${l.file}:${l.line}:${l.column}`;
}

function sortDiagnostics(ds: SdfDiagnostic[]): SdfDiagnostic[] {
  return ds
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.line - b.d.line || a.d.column - b.d.column || a.i - b.i)
    .map((x) => x.d);
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function quoteList(names: Iterable<string>): string {
  return [...names].join(", ");
}

/** Microkit's number syntax: decimal, or hex after a lowercase `0x`; `_` may appear anywhere. */
function parseNumber(text: string): bigint | undefined {
  const s = text.replaceAll("_", "");
  if (/^0x[0-9a-fA-F]+$/.test(s)) return BigInt(s);
  if (/^[0-9]+$/.test(s)) return BigInt(s);
  return undefined;
}

const U64_MAX = (1n << 64n) - 1n;

interface NumSpec {
  min?: number;
  max?: number;
  /** Show the range in hex. */
  hex?: boolean;
}

/** One element's attributes, read with checks; every problem goes to the validator. */
class Attrs {
  readonly extensions: SdfExtensions = {};
  constructor(
    private readonly v: Validator,
    readonly el: XElement,
    allowed: readonly string[],
    extra: (name: string) => boolean = () => false,
  ) {
    for (const name of el.attrs.keys()) {
      if (name.startsWith(EXT_PREFIX)) {
        const key = name.slice(EXT_PREFIX.length);
        if (key === "")
          v.error(el, `attribute "${name}" has no name after the prefix: write capvisor:<name>="..."`);
        else this.extensions[key] = el.attrs.get(name)!;
      } else if (!allowed.includes(name) && !extra(name)) {
        const list = allowed.length > 0 ? `allowed: ${quoteList(allowed)}` : "it takes no attributes";
        v.error(el, `unknown attribute "${name}" (${list}): remove it or fix its name`);
      }
    }
  }

  error(message: string): void {
    this.v.error(this.el, message);
  }

  has(name: string): boolean {
    return this.el.attrs.has(name);
  }

  str(name: string): string | undefined {
    return this.el.attrs.get(name);
  }

  required(name: string, example: string): string | undefined {
    const value = this.el.attrs.get(name);
    if (value === undefined)
      this.v.error(this.el, `missing required attribute "${name}": add ${name}="${example}"`);
    return value;
  }

  /** A name-like attribute: required and non-empty. */
  name(name: string, example: string): string | undefined {
    const value = this.required(name, example);
    if (value !== undefined && value.trim() === "") {
      this.v.error(this.el, `${name} is empty: give it a value such as ${name}="${example}"`);
      return undefined;
    }
    return value;
  }

  num(name: string, spec: NumSpec = {}): number | undefined {
    const text = this.el.attrs.get(name);
    if (text === undefined) return undefined;
    const big = parseNumber(text);
    if (big === undefined) {
      this.v.error(
        this.el,
        `${name} "${text}" is not a number: write it in decimal (4096) or hexadecimal with 0x (0x1000)`,
      );
      return undefined;
    }
    const show = (n: number) => (spec.hex ? hex(n) : String(n));
    const shown = spec.hex ? `0x${big.toString(16)}` : big.toString();
    if (big > U64_MAX) {
      this.v.error(this.el, `${name} ${shown} does not fit in 64 bits`);
      return undefined;
    }
    const tooBig = big > BigInt(Number.MAX_SAFE_INTEGER);
    if (
      (spec.min !== undefined && big < BigInt(spec.min)) ||
      (spec.max !== undefined && (tooBig || big > BigInt(spec.max)))
    ) {
      const range =
        spec.max === undefined
          ? `at least ${show(spec.min!)}`
          : `between ${show(spec.min ?? 0)} and ${show(spec.max)}`;
      this.v.error(this.el, `${name} ${shown} is out of range: it must be ${range}`);
      return undefined;
    }
    if (tooBig) {
      this.v.error(this.el, `${name} ${shown} is too large for capvisor (limit 2^53 - 1)`);
      return undefined;
    }
    return Number(big);
  }

  requiredNum(name: string, example: string, spec: NumSpec = {}): number | undefined {
    if (this.required(name, example) === undefined) return undefined;
    return this.num(name, spec);
  }

  bool(name: string, dflt: boolean): boolean {
    const text = this.el.attrs.get(name);
    if (text === undefined) return dflt;
    if (text === "true") return true;
    if (text === "false") return false;
    this.v.error(this.el, `${name} "${text}" must be "true" or "false"`);
    return dflt;
  }
}

interface Scheduling {
  priority: number;
  budget: number;
  period: number;
}

type Context = {
  kind: "protection domain" | "virtual machine";
  name: string;
  maps: SdfMap[];
  maxEnd: number;
};

// ---------------------------------------------------------------------------------------------
// The validator: builds the typed description and records every problem.

class Validator {
  readonly errors: SdfDiagnostic[] = [];
  readonly warnings: SdfDiagnostic[] = [];
  /** PDs carrying the pre-2.0 pp attribute. */
  private readonly legacyPp = new Set<SdfProtectionDomain>();

  constructor(
    readonly file: string,
    readonly options: SdfOptions,
  ) {}

  error(el: XElement | { loc: SdfLocation; name: string }, message: string): void {
    this.errors.push({ ...el.loc, element: el.name, message });
  }

  errorAt(loc: SdfLocation, element: string, message: string): void {
    this.errors.push({ ...loc, element, message });
  }

  warn(loc: SdfLocation, element: string, message: string): void {
    this.warnings.push({ ...loc, element, message });
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

    const pdByName = this.uniqueNames(all, "protection_domain", "protection domain");
    const mrByName = this.uniqueNames(sd.memoryRegions, "memory_region", "memory region");
    const vms = all.flatMap((pd) => (pd.virtualMachine ? [pd.virtualMachine] : []));
    this.uniqueNames(vms, "virtual_machine", "virtual machine");

    this.checkPhysOverlap(sd.memoryRegions);
    this.checkIrqNumbers(all);

    for (const el of channelEls) {
      const ch = this.channel(el, pdByName);
      if (ch) sd.channels.push(ch);
    }
    this.applyLegacyPp(sd.channels, pdByName);
    this.checkChannels(all, sd.channels, pdByName);

    // Maps and setvars against the memory regions.
    for (const pd of all) {
      this.checkMaps(mrByName, {
        kind: "protection domain",
        name: pd.name,
        maps: pd.maps,
        maxEnd: SDF_USER_TOP - pd.stackSize,
      });
      if (pd.virtualMachine) {
        const vm = pd.virtualMachine;
        this.checkMaps(mrByName, {
          kind: "virtual machine",
          name: vm.name,
          maps: vm.maps,
          maxEnd: SDF_USER_TOP,
        });
      }
      for (const sv of pd.setvars) {
        if (sv.kind === "paddr" && !mrByName.has(sv.region))
          this.errorAt(
            sv.loc,
            "setvar",
            `memory region "${sv.region}" does not exist (${declared(mrByName)})`,
          );
      }
    }

    const used = new Set(
      all.flatMap((pd) => [...pd.maps, ...(pd.virtualMachine?.maps ?? [])].map((m) => m.mr)),
    );
    for (const mr of sd.memoryRegions) {
      if (!used.has(mr.name))
        this.warn(
          mr.loc,
          "memory_region",
          `memory region "${mr.name}" is not mapped by any protection domain`,
        );
    }
    return sd;
  }

  private uniqueNames<T extends { name: string; loc: SdfLocation }>(
    items: T[],
    element: string,
    what: string,
  ): Map<string, T> {
    const byName = new Map<string, T>();
    for (const it of items) {
      const first = byName.get(it.name);
      if (first)
        this.errorAt(
          it.loc,
          element,
          `${what} name "${it.name}" is already used at ${locString(first.loc)}: names must be unique, rename one`,
        );
      else byName.set(it.name, it);
    }
    return byName;
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
    if (programImage) pd.programImage = programImage;
    else
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

  private checkPhysOverlap(mrs: SdfMemoryRegion[]): void {
    const placed: SdfMemoryRegion[] = [];
    for (const mr of mrs) {
      if (mr.physAddr === undefined) continue;
      const start = mr.physAddr;
      const end = start + mr.size;
      const other = placed.find((o) => start < o.physAddr! + o.size && o.physAddr! < end);
      if (other)
        this.errorAt(
          mr.loc,
          "memory_region",
          `memory region "${mr.name}" physical address range [${hex(start)}..${hex(end)}) overlaps memory region "${other.name}" [${hex(other.physAddr!)}..${hex(other.physAddr! + other.size)}) (${locString(other.loc)}): move one of them`,
        );
      placed.push(mr);
    }
  }

  private checkMaps(mrs: Map<string, SdfMemoryRegion>, ctx: Context): void {
    const placed: { m: SdfMap; start: number; end: number }[] = [];
    for (const m of ctx.maps) {
      const mr = mrs.get(m.mr);
      if (!mr) {
        this.errorAt(m.loc, "map", `memory region "${m.mr}" does not exist (${declared(mrs)})`);
        continue;
      }
      if (m.vaddr % mr.pageSize !== 0) {
        this.errorAt(
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
        this.errorAt(
          m.loc,
          "map",
          `"${mr.name}" at [${hex(start)}..${hex(end)}) ends above ${hex(ctx.maxEnd)}, ${what}: map it lower`,
        );
        continue;
      }
      const other = placed.find((p) => start < p.end && p.start < end);
      if (other) {
        this.errorAt(
          m.loc,
          "map",
          `"${m.mr}" at [${hex(start)}..${hex(end)}) overlaps "${other.m.mr}" at [${hex(other.start)}..${hex(other.end)}) (${locString(other.m.loc)}) in ${ctx.kind} "${ctx.name}": move one of them`,
        );
        continue;
      }
      placed.push({ m, start, end });
    }
  }

  // -- IRQs and channels ----------------------------------------------------------------------

  private checkIrqNumbers(pds: SdfProtectionDomain[]): void {
    const seen = new Map<number, { pd: SdfProtectionDomain; irq: SdfIrq }>();
    for (const pd of pds) {
      for (const irq of pd.irqs) {
        const first = seen.get(irq.irq);
        if (first)
          this.errorAt(
            irq.loc,
            "irq",
            `IRQ ${irq.irq} is already used by protection domain "${first.pd.name}" (${locString(first.irq.loc)}): an interrupt goes to one PD only`,
          );
        else seen.set(irq.irq, { pd, irq });
      }
    }
  }

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

  /** The pre-2.0 form: `pp="true"` on a PD lets the other end of each of its channels call it. */
  private applyLegacyPp(channels: SdfChannel[], pds: Map<string, SdfProtectionDomain>): void {
    if (this.legacyPp.size === 0) return;
    for (const ch of channels) {
      const [e0, e1] = ch.ends;
      if (e0.pp || e1.pp) continue;
      const p0 = pds.get(e0.pd)!;
      const p1 = pds.get(e1.pd)!;
      const callee0 = this.legacyPp.has(p0);
      const callee1 = this.legacyPp.has(p1);
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

  private checkChannels(
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
        this.errorAt(
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
          this.errorAt(
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
    this.checkCallCycles(calls);
  }

  /** The pp call graph must be acyclic (strict priorities imply it; checked on its own anyway). */
  private checkCallCycles(calls: Map<string, { callee: string; end: SdfChannelEnd }[]>): void {
    const state = new Map<string, "active" | "done">();
    const path: string[] = [];
    const visit = (pd: string) => {
      state.set(pd, "active");
      path.push(pd);
      for (const { callee, end } of calls.get(pd) ?? []) {
        const s = state.get(callee);
        if (s === "active") {
          const cycle = [...path.slice(path.indexOf(callee)), callee].join(" -> ");
          this.errorAt(
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
}

function declared(byName: Map<string, unknown>, what = "regions"): string {
  return byName.size === 0
    ? `no ${what === "regions" ? "memory regions" : what} are declared`
    : `declared ${what}: ${quoteList(byName.keys())}`;
}
