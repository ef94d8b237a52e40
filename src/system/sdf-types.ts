/**
 * The typed form of a seL4 Microkit System Description File (SDF), as `parseSdf` in `sdf.ts`
 * produces it. Field names follow the XML attribute names in camelCase; numbers are plain
 * JavaScript numbers (every address and size must be below 2^53, far above any address capvisor
 * uses). Sizes and addresses are bytes, budgets and periods microseconds, as in Microkit.
 *
 * capvisor extensions. Any element may carry attributes named `capvisor:<name>`; the parser keeps
 * them, without the prefix, in that element's `extensions` record (for example
 * `<protection_domain name="net" capvisor:runtime="wasmedge">` gives
 * `extensions: { runtime: "wasmedge" }`). The parser checks only that the name after the prefix
 * is non-empty; the meaning and validation of each extension belongs to the layer that uses it.
 * The prefix may be declared with `xmlns:capvisor="..."` on `<system>` (any `xmlns` attributes
 * there are accepted and ignored) so that the file also stays valid namespaced XML, but it need
 * not be: Microkit's tool refuses unknown attributes, so a file using extensions is capvisor-only.
 */

/** Where an element starts in the description: its `<`, line and column counted from 1. */
export interface SdfLocation {
  file: string;
  line: number;
  column: number;
}

/** One problem found in a description. `toString()` gives `file:line:column: <element>: message`. */
export interface SdfDiagnostic extends SdfLocation {
  /** The element the problem is about, without angle brackets ("map", "end", ...). */
  element: string;
  message: string;
}

/** `capvisor:` attributes of one element, keyed by the name after the prefix. */
export type SdfExtensions = Record<string, string>;

/** Access rights of a mapping: any combination of r, w and x except write-only. */
export interface MapPerms {
  read: boolean;
  write: boolean;
  execute: boolean;
}

/** `<map mr= vaddr= perms= cached= setvar_vaddr= setvar_size= />` inside a PD or a virtual machine. */
export interface SdfMap {
  mr: string;
  vaddr: number;
  /** Default rw. */
  perms: MapPerms;
  /** Default true. */
  cached: boolean;
  /** Symbol in the program image to patch with `vaddr` (PD maps only). */
  setvarVaddr?: string;
  /** Symbol in the program image to patch with the region's size (PD maps only). */
  setvarSize?: string;
  extensions: SdfExtensions;
  loc: SdfLocation;
}

export type IrqTrigger = "level" | "edge";

/** `<irq irq= id= trigger= />`: interrupt `irq` delivered to its PD as channel `id`. */
export interface SdfIrq {
  irq: number;
  id: number;
  /** Default "level". */
  trigger: IrqTrigger;
  extensions: SdfExtensions;
  loc: SdfLocation;
}

/** A symbol in a PD's program image that the loader patches before the PD starts. */
export type SdfSetVar =
  /** From `<map setvar_vaddr=>`: the map's virtual address. */
  | { symbol: string; kind: "vaddr"; vaddr: number; loc: SdfLocation }
  /** From `<map setvar_size=>`: the size of the mapped region. */
  | { symbol: string; kind: "size"; mr: string; loc: SdfLocation }
  /** From `<setvar symbol= region_paddr=>`: the physical address of a memory region. */
  | { symbol: string; kind: "paddr"; region: string; loc: SdfLocation; extensions: SdfExtensions };

/** `<vcpu id= />` of a virtual machine. */
export interface SdfVcpu {
  id: number;
  extensions: SdfExtensions;
  loc: SdfLocation;
}

/** `<virtual_machine>` inside a PD, which is its monitor: the VM's faults go to the PD's `fault()`. */
export interface SdfVirtualMachine {
  name: string;
  /** 0-254, default 0. */
  priority: number;
  /** µs, default 1000. */
  budget: number;
  /** µs, default `budget`, never below it. */
  period: number;
  vcpus: SdfVcpu[];
  maps: SdfMap[];
  extensions: SdfExtensions;
  loc: SdfLocation;
}

/** `<program_image path= path_for_symbols= />`: exactly one per PD. Paths are as written. */
export interface SdfProgramImage {
  path: string;
  pathForSymbols?: string;
  extensions: SdfExtensions;
  loc: SdfLocation;
}

/** `<protection_domain>`, at the top level or nested inside its parent. */
export interface SdfProtectionDomain {
  name: string;
  /** 0-254, default 0. */
  priority: number;
  /** µs, default 1000. */
  budget: number;
  /** µs, default `budget`, never below it. */
  period: number;
  /** Default false: a passive PD runs on its caller's scheduling context. */
  passive: boolean;
  /** Bytes, 4 KiB to 16 MiB in whole 4 KiB pages, default 8 KiB. */
  stackSize: number;
  /** Core the PD runs on, default 0. */
  cpu: number;
  /** Default true. */
  fpu: boolean;
  /** Child PDs only: the id the parent names this child by (0-61, unique per parent). */
  id?: number;
  /** Child PDs only: the parent's name. */
  parent?: string;
  /**
   * True when the PD carries the pre-2.0 `pp="true"` attribute (other PDs on its channels may
   * call it). The parser has already turned it into `pp` on the callers' channel ends and
   * warned; this flag only records where it came from.
   */
  legacyPp: boolean;
  programImage: SdfProgramImage;
  maps: SdfMap[];
  irqs: SdfIrq[];
  /** Every symbol to patch, in document order (from maps and `<setvar>` elements). */
  setvars: SdfSetVar[];
  children: SdfProtectionDomain[];
  virtualMachine?: SdfVirtualMachine;
  extensions: SdfExtensions;
  loc: SdfLocation;
}

/** The two page sizes Microkit supports on AArch64 (and RISC-V and x86-64). */
export type PageSize = 0x1000 | 0x200000;

/** `<memory_region name= size= page_size= phys_addr= prefill_path= />`. */
export interface SdfMemoryRegion {
  name: string;
  /** Bytes, a positive multiple of `pageSize`. */
  size: number;
  /** Default 4 KiB. */
  pageSize: PageSize;
  /** `size / pageSize`. */
  pageCount: number;
  /** A fixed physical address (device memory), aligned to `pageSize`. */
  physAddr?: number;
  /** A file whose bytes fill the start of the region before the system starts. */
  prefillPath?: string;
  extensions: SdfExtensions;
  loc: SdfLocation;
}

/** `<end pd= id= pp= notify= />` of a channel. */
export interface SdfChannelEnd {
  pd: string;
  /** Channel id as this PD sees it, 0-61. */
  id: number;
  /** This end may make protected procedure calls to the other end. Default false. */
  pp: boolean;
  /** This end may notify the other end. Default true. */
  notify: boolean;
  /** `pp` was derived from the pre-2.0 `pp` attribute on the other end's PD. */
  ppFromLegacy: boolean;
  extensions: SdfExtensions;
  loc: SdfLocation;
}

/** `<channel>` with exactly two ends. */
export interface SdfChannel {
  ends: [SdfChannelEnd, SdfChannelEnd];
  extensions: SdfExtensions;
  loc: SdfLocation;
}

/** A whole, validated system description. */
export interface SystemDescription {
  file: string;
  /** Top-level PDs in document order; children are nested in `children`. */
  protectionDomains: SdfProtectionDomain[];
  /**
   * Every PD, flattened the way Microkit's tool does: each PD followed by its descendants,
   * depth first, in document order. The same objects as in `protectionDomains`.
   */
  allProtectionDomains: SdfProtectionDomain[];
  memoryRegions: SdfMemoryRegion[];
  channels: SdfChannel[];
  /** Things accepted but worth fixing (the pre-2.0 `pp` form, unused memory regions). */
  warnings: SdfDiagnostic[];
  /** `capvisor:` attributes of `<system>`. */
  extensions: SdfExtensions;
}

/** Options for `parseSdf`. */
export interface SdfOptions {
  /** When given, a PD's `cpu` must be below it. */
  cores?: number;
}
