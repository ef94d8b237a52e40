/**
 * What the runner needs from a module's binary that V8 does not expose: the signatures of exported
 * functions (reactor mode converts its command-line arguments by them; Node 20 has no type
 * reflection) and the memory limits (rewritten to enforce --memory-page-limit, so that memory.grow
 * past the limit returns -1 as under WasmEdge). Only the sections involved are decoded; V8
 * validates the whole module afterwards.
 */

export type ValType = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref" | "other";
export interface FuncSig {
  params: ValType[];
  results: ValType[];
}

const VALTYPES: Record<number, ValType> = {
  127: "i32",
  126: "i64",
  125: "f32",
  124: "f64",
  123: "v128",
  112: "funcref",
  111: "externref",
};

export class ModuleFormatError extends Error {
  override name = "ModuleFormatError";
}

class Reader {
  constructor(
    readonly b: Uint8Array,
    public p: number,
  ) {}
  byte(): number {
    if (this.p >= this.b.length) throw new ModuleFormatError(`unexpected end @+${this.p}`);
    return this.b[this.p++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const x = this.byte();
      result += (x & 0x7f) * 2 ** shift;
      if ((x & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new ModuleFormatError(`LEB128 too long @+${this.p}`);
    }
  }
  name(): string {
    const len = this.u32();
    const s = new TextDecoder().decode(this.b.subarray(this.p, this.p + len));
    this.p += len;
    return s;
  }
  /** Skips table/memory limits and returns them. */
  limits(): { flags: number; min: number; max: number | null } {
    const flags = this.byte();
    const min = this.u32();
    const max = flags & 1 ? this.u32() : null;
    return { flags, min, max };
  }
}

interface Section {
  id: number;
  /** Offset of the section id byte, of its content, and the end. */
  start: number;
  body: number;
  end: number;
}

function sections(b: Uint8Array): Section[] {
  if (b.length < 8 || b[0] !== 0 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d) {
    throw new ModuleFormatError("magic header not detected @+0");
  }
  const out: Section[] = [];
  const r = new Reader(b, 8);
  while (r.p < b.length) {
    const start = r.p;
    const id = r.byte();
    const size = r.u32();
    const body = r.p;
    if (body + size > b.length) throw new ModuleFormatError(`section ${id} runs past the end @+${start}`);
    out.push({ id, start, body, end: body + size });
    r.p = body + size;
  }
  return out;
}

/** Exported functions' signatures, by export name. */
export function exportedFunctions(b: Uint8Array): Map<string, FuncSig> {
  const types: (FuncSig | null)[] = [];
  const funcTypes: number[] = [];
  const out = new Map<string, FuncSig>();
  for (const s of sections(b)) {
    const r = new Reader(b, s.body);
    if (s.id === 1) {
      for (let n = r.u32(); n > 0; n--) {
        if (r.byte() !== 0x60) {
          types.push(null); // a GC type (struct/array/rec): not a function signature we convert
          break;
        }
        const vec = () => Array.from({ length: r.u32() }, () => VALTYPES[r.byte()] ?? "other");
        const params = vec();
        types.push({ params, results: vec() });
      }
    } else if (s.id === 2) {
      for (let n = r.u32(); n > 0; n--) {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 0) funcTypes.push(r.u32());
        else if (kind === 1) {
          r.byte();
          r.limits();
        } else if (kind === 2) r.limits();
        else if (kind === 3) r.p += 2;
        else if (kind === 4) {
          r.byte();
          r.u32();
        }
      }
    } else if (s.id === 3) {
      for (let n = r.u32(); n > 0; n--) funcTypes.push(r.u32());
    } else if (s.id === 7) {
      for (let n = r.u32(); n > 0; n--) {
        const name = r.name();
        const kind = r.byte();
        const idx = r.u32();
        const sig = kind === 0 ? types[funcTypes[idx] ?? -1] : undefined;
        if (sig) out.set(name, sig);
      }
    }
  }
  return out;
}

/** The module asks for more memory at instantiation than the limit allows. */
export class MemoryLimitError extends Error {
  override name = "MemoryLimitError";
}

/**
 * `b` with every defined memory's maximum lowered to `pages` (added when absent). Throws
 * MemoryLimitError when a memory's minimum (defined or imported) already exceeds it.
 */
export function limitMemory(b: Uint8Array, pages: number): Uint8Array {
  for (const s of sections(b)) {
    if (s.id === 2) checkImportedMemories(b, s, pages);
    if (s.id !== 5) continue;
    const r = new Reader(b, s.body);
    const count = r.u32();
    const body: number[] = [...leb(count)];
    for (let i = 0; i < count; i++) {
      const lim = r.limits();
      if (lim.flags & 4) throw new ModuleFormatError("memory64 is not supported");
      if (lim.min > pages) {
        throw new MemoryLimitError(`memory needs ${lim.min} pages, the limit is ${pages}`);
      }
      const max = lim.max === null ? pages : Math.min(lim.max, pages);
      body.push(lim.flags | 1, ...leb(lim.min), ...leb(max));
    }
    const content = Uint8Array.from(body);
    const head = Uint8Array.from([5, ...leb(content.length)]);
    const out = new Uint8Array(s.start + head.length + content.length + (b.length - s.end));
    out.set(b.subarray(0, s.start), 0);
    out.set(head, s.start);
    out.set(content, s.start + head.length);
    out.set(b.subarray(s.end), s.start + head.length + content.length);
    return out;
  }
  return b;
}

function checkImportedMemories(b: Uint8Array, s: Section, pages: number): void {
  const r = new Reader(b, s.body);
  for (let n = r.u32(); n > 0; n--) {
    r.name();
    r.name();
    const kind = r.byte();
    if (kind === 0) r.u32();
    else if (kind === 1) {
      r.byte();
      r.limits();
    } else if (kind === 2) {
      const lim = r.limits();
      if (lim.min > pages) throw new MemoryLimitError(`memory needs ${lim.min} pages, the limit is ${pages}`);
    } else if (kind === 3) r.p += 2;
    else if (kind === 4) {
      r.byte();
      r.u32();
    }
  }
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let x = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) x |= 0x80;
    out.push(x);
  } while (n > 0);
  return out;
}
