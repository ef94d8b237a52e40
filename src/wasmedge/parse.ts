/**
 * A structural parser of Wasm binaries (`capvisor parse`, and the loading phase of `run` and
 * `validate`), without validation: it walks every section, decodes what each one declares, and
 * rejects a malformed binary with WasmEdge's loading error (its message text and code) and the
 * byte offset where it went wrong. V8 would also reject such a binary, but its messages name the
 * first failure of its own decoder, which mixes malformedness and validity; WasmEdge separates
 * "loading failed" from "validation failed", and so does capvisor.
 *
 * Instructions inside function bodies are not decoded (that is the validator's job, done by V8);
 * constant expressions are, because their end can only be found by decoding them.
 */

/** WasmEdge's loading-phase error codes (its enum.inc), as far as this parser can raise them. */
export const LOAD_ERRORS = {
  IllegalPath: [0x100, "invalid path"],
  ReadError: [0x101, "read error"],
  UnexpectedEnd: [0x102, "unexpected end"],
  MalformedMagic: [0x103, "magic header not detected"],
  MalformedVersion: [0x104, "unknown binary version"],
  MalformedSection: [0x105, "malformed section id"],
  SectionSizeMismatch: [0x106, "section size mismatch"],
  LengthOutOfBounds: [0x107, "length out of bounds"],
  JunkSection: [0x108, "unexpected content after last section"],
  IncompatibleFuncCode: [0x109, "function and code section have inconsistent lengths"],
  IncompatibleDataCount: [0x10a, "data count and data section have inconsistent lengths"],
  MalformedImportKind: [0x10c, "malformed import kind"],
  MalformedExportKind: [0x10d, "malformed export kind"],
  ExpectedZeroByte: [0x10e, "zero byte expected"],
  InvalidMut: [0x10f, "malformed mutability"],
  TooManyLocals: [0x110, "too many locals"],
  MalformedValType: [0x111, "malformed value type"],
  MalformedElemType: [0x112, "malformed element type"],
  MalformedRefType: [0x113, "malformed reference type"],
  MalformedUTF8: [0x114, "malformed UTF-8 encoding"],
  IntegerTooLarge: [0x115, "integer too large"],
  IntegerTooLong: [0x116, "integer representation too long"],
  IllegalOpCode: [0x117, "illegal opcode"],
  IllegalGrammar: [0x119, "invalid wasm grammar"],
} as const satisfies Record<string, readonly [number, string]>;
export type LoadErrorName = keyof typeof LOAD_ERRORS;

/** A malformed binary: what (WasmEdge's message and code), where (byte offset, AST node). */
export class WasmParseError extends Error {
  override name = "WasmParseError";
  readonly code: number;
  constructor(
    readonly kind: LoadErrorName,
    readonly offset: number,
    readonly node: string,
  ) {
    super(`${LOAD_ERRORS[kind][1]} @+${offset} (${node})`);
    this.code = LOAD_ERRORS[kind][0];
  }
}

export type ValType = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref";
export interface FuncType {
  params: ValType[];
  results: ValType[];
}
export interface Limits {
  min: number;
  max?: number;
  shared?: boolean;
}
export type ImportDesc =
  | { kind: "func"; type: number }
  | { kind: "table"; ref: ValType; limits: Limits }
  | { kind: "memory"; limits: Limits }
  | { kind: "global"; type: ValType; mutable: boolean }
  | { kind: "tag"; type: number };
export type ExternKind = "func" | "table" | "memory" | "global" | "tag";

export interface ParsedModule {
  types: FuncType[];
  imports: { module: string; name: string; desc: ImportDesc }[];
  /** Type index of each function defined here (not imported). */
  functions: number[];
  tables: { ref: ValType; limits: Limits }[];
  memories: Limits[];
  tags: number[];
  globals: { type: ValType; mutable: boolean; init: string }[];
  exports: { name: string; kind: ExternKind; index: number }[];
  start?: number;
  elements: { mode: "active" | "passive" | "declarative"; table: number; offset: string; count: number }[];
  dataCount?: number;
  /** Body size in bytes of each defined function, and where it starts. */
  code: { size: number; offset: number; locals: number }[];
  data: { mode: "active" | "passive"; memory: number; offset: string; size: number }[];
  customs: { name: string; size: number }[];
  /** Function names from the `name` custom section, by function index. */
  functionNames: Map<number, string>;
  /** Sections in file order: id, name, content offset and size. */
  sections: { id: number; name: string; offset: number; size: number }[];
}

const SECTION_NAMES = [
  "custom",
  "type",
  "import",
  "function",
  "table",
  "memory",
  "global",
  "export",
  "start",
  "element",
  "code",
  "data",
  "datacount",
  "tag",
];
/** Where each section id may appear (the binary format's required order). */
const SECTION_ORDER: Record<number, number> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  13: 6,
  6: 7,
  7: 8,
  8: 9,
  9: 10,
  12: 11,
  10: 12,
  11: 13,
};
const VALTYPES: Record<number, ValType> = {
  127: "i32",
  126: "i64",
  125: "f32",
  124: "f64",
  123: "v128",
  112: "funcref",
  111: "externref",
};
const EXTERN_KINDS: ExternKind[] = ["func", "table", "memory", "global", "tag"];
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A cursor over the bytes with the LEB128 and vector decoders the format needs. */
class Reader {
  pos: number;
  node = "module";
  constructor(
    readonly b: Uint8Array,
    pos: number,
    public end: number,
  ) {
    this.pos = pos;
  }
  fail(kind: LoadErrorName, at = this.pos): never {
    throw new WasmParseError(kind, at, this.node);
  }
  byte(): number {
    if (this.pos >= this.end) this.fail("UnexpectedEnd");
    return this.b[this.pos++]!;
  }
  bytes(n: number): Uint8Array {
    if (n > this.end - this.pos) this.fail(this.end < this.b.length ? "LengthOutOfBounds" : "UnexpectedEnd");
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** Unsigned LEB128 of at most `bits` bits (u32: 5 bytes, the last with 4 unused bits zero). */
  u32(): number {
    const start = this.pos;
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      if (i === 4 && (b & 0x70) !== 0) this.fail(b & 0x80 ? "IntegerTooLong" : "IntegerTooLarge", start);
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    return this.fail("IntegerTooLong", start);
  }
  /** Signed LEB128 of at most `bits` bits, as a bigint (exact for i64). */
  sleb(bits: 32 | 64): bigint {
    const start = this.pos;
    const max = Math.ceil(bits / 7);
    let result = 0n;
    for (let i = 0; i < max; i++) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        if (i === max - 1) {
          // The unused bits of the last byte must all equal the sign bit.
          const used = bits - 7 * i;
          const rest = (b & 0x7f) >> (used - 1);
          if (rest !== 0 && rest !== 0x7f >> (used - 1)) this.fail("IntegerTooLarge", start);
        }
        const shift = BigInt(7 * (i + 1));
        if (b & 0x40 && 7 * (i + 1) < 128) result -= 1n << shift;
        return BigInt.asIntN(bits, result);
      }
    }
    return this.fail("IntegerTooLong", start);
  }
  name(): string {
    const len = this.u32();
    const at = this.pos;
    const raw = this.bytes(len);
    try {
      return utf8.decode(raw);
    } catch {
      return this.fail("MalformedUTF8", at);
    }
  }
  valType(): ValType {
    const at = this.pos;
    const t = VALTYPES[this.byte()];
    return t ?? this.fail("MalformedValType", at);
  }
  refType(): ValType {
    const at = this.pos;
    const t = this.byte();
    if (t === 0x70 || t === 0x6f) return VALTYPES[t]!;
    return this.fail("MalformedRefType", at);
  }
  limits(): Limits {
    const at = this.pos;
    const flag = this.byte();
    if (flag > 3) this.fail("IntegerTooLarge", at);
    const min = this.u32();
    const out: Limits = { min };
    if (flag & 1) out.max = this.u32();
    if (flag & 2) out.shared = true;
    return out;
  }
  vec<T>(item: (i: number) => T): T[] {
    const n = this.u32();
    // Each item takes at least one byte: a count beyond the section is malformed, not a loop.
    if (n > this.end - this.pos) this.fail("LengthOutOfBounds");
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item(i));
    return out;
  }
  /** A constant expression, decoded up to its `end`; returns it as text. */
  constExpr(): string {
    const parts: string[] = [];
    for (;;) {
      const at = this.pos;
      const op = this.byte();
      switch (op) {
        case 0x0b:
          return parts.join(" ");
        case 0x41:
          parts.push(`i32=${this.sleb(32)}`);
          break;
        case 0x42:
          parts.push(`i64=${this.sleb(64)}`);
          break;
        case 0x43:
          parts.push(`f32=${new DataView(this.bytes(4).slice().buffer).getFloat32(0, true)}`);
          break;
        case 0x44:
          parts.push(`f64=${new DataView(this.bytes(8).slice().buffer).getFloat64(0, true)}`);
          break;
        case 0x23:
          parts.push(`global.get ${this.u32()}`);
          break;
        case 0xd2:
          parts.push(`ref.func ${this.u32()}`);
          break;
        case 0xd0:
          parts.push(`ref.null ${this.refType()}`);
          break;
        case 0x6a:
        case 0x6b:
        case 0x6c:
          parts.push(["i32.add", "i32.sub", "i32.mul"][op - 0x6a]!);
          break;
        case 0x7c:
        case 0x7d:
        case 0x7e:
          parts.push(["i64.add", "i64.sub", "i64.mul"][op - 0x7c]!);
          break;
        case 0xfd:
          if (this.u32() !== 12) this.fail("IllegalOpCode", at);
          this.bytes(16);
          parts.push("v128.const");
          break;
        default:
          this.fail("IllegalOpCode", at);
      }
    }
  }
}

/**
 * Parses `bytes` as a Wasm module (binary format version 1). Throws WasmParseError, with the
 * offset and the section being read, for a malformed binary.
 */
export function parseWasm(bytes: Uint8Array): ParsedModule {
  const r = new Reader(bytes, 0, bytes.length);
  const m: ParsedModule = {
    types: [],
    imports: [],
    functions: [],
    tables: [],
    memories: [],
    tags: [],
    globals: [],
    exports: [],
    elements: [],
    code: [],
    data: [],
    customs: [],
    functionNames: new Map(),
    sections: [],
  };
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d)
    r.fail("MalformedMagic", 0);
  r.pos = 4;
  if (bytes.length < 8) r.fail("UnexpectedEnd", bytes.length);
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) r.fail("MalformedVersion", 4);
  r.pos = 8;
  let last = 0;
  let functionCount: number | undefined;
  while (r.pos < bytes.length) {
    const idAt = r.pos;
    const id = r.byte();
    const name = SECTION_NAMES[id];
    if (name === undefined) r.fail("MalformedSection", idAt);
    r.node = `${name} section`;
    const size = r.u32();
    const start = r.pos;
    if (size > bytes.length - start) r.fail("LengthOutOfBounds", start);
    if (id !== 0) {
      const order = SECTION_ORDER[id]!;
      // A section out of order or repeated is "unexpected content" in WasmEdge's terms.
      if (order <= last) r.fail("JunkSection", idAt);
      last = order;
    }
    m.sections.push({ id, name: name!, offset: start, size });
    const s = new Reader(bytes, start, start + size);
    s.node = r.node;
    section(s, id, m);
    if (id === 3) functionCount = m.functions.length;
    if (s.pos !== s.end) s.fail("SectionSizeMismatch");
    r.pos = start + size;
  }
  r.node = "module";
  if ((functionCount ?? 0) !== m.code.length) r.fail("IncompatibleFuncCode", bytes.length);
  if (m.dataCount !== undefined && m.dataCount !== m.data.length)
    r.fail("IncompatibleDataCount", bytes.length);
  return m;
}

function section(s: Reader, id: number, m: ParsedModule): void {
  switch (id) {
    case 0: {
      const name = s.name();
      m.customs.push({ name, size: s.end - s.pos });
      if (name === "name") readNames(s.b.subarray(s.pos, s.end), m.functionNames);
      s.pos = s.end;
      return;
    }
    case 1:
      m.types = s.vec(() => {
        const at = s.pos;
        if (s.byte() !== 0x60) s.fail("IllegalGrammar", at);
        return { params: s.vec(() => s.valType()), results: s.vec(() => s.valType()) };
      });
      return;
    case 2:
      m.imports = s.vec(() => {
        const module = s.name();
        const name = s.name();
        const at = s.pos;
        const kind = s.byte();
        let desc: ImportDesc;
        if (kind === 0) desc = { kind: "func", type: s.u32() };
        else if (kind === 1) desc = { kind: "table", ref: s.refType(), limits: s.limits() };
        else if (kind === 2) desc = { kind: "memory", limits: s.limits() };
        else if (kind === 3) desc = { kind: "global", ...globalType(s) };
        else if (kind === 4) desc = { kind: "tag", type: tagType(s) };
        else return s.fail("MalformedImportKind", at);
        return { module, name, desc };
      });
      return;
    case 3:
      m.functions = s.vec(() => s.u32());
      return;
    case 4:
      m.tables = s.vec(() => ({ ref: s.refType(), limits: s.limits() }));
      return;
    case 5:
      m.memories = s.vec(() => s.limits());
      return;
    case 13:
      m.tags = s.vec(() => tagType(s));
      return;
    case 6:
      m.globals = s.vec(() => ({ ...globalType(s), init: s.constExpr() }));
      return;
    case 7:
      m.exports = s.vec(() => {
        const name = s.name();
        const at = s.pos;
        const kind = EXTERN_KINDS[s.byte()];
        if (kind === undefined) s.fail("MalformedExportKind", at);
        return { name, kind: kind!, index: s.u32() };
      });
      return;
    case 8:
      m.start = s.u32();
      return;
    case 9:
      m.elements = s.vec(() => element(s));
      return;
    case 10:
      m.code = s.vec(() => {
        const size = s.u32();
        const offset = s.pos;
        if (size > s.end - offset) s.fail("LengthOutOfBounds");
        const body = new Reader(s.b, offset, offset + size);
        body.node = "code segment";
        let locals = 0;
        const groups = body.u32();
        for (let g = 0; g < groups; g++) {
          const at = body.pos;
          locals += body.u32();
          if (locals > 0xffffffff) body.fail("TooManyLocals", at);
          body.valType();
        }
        s.pos = offset + size;
        return { size, offset, locals };
      });
      return;
    case 11:
      m.data = s.vec(() => {
        const at = s.pos;
        const flag = s.u32();
        if (flag > 2) s.fail("IntegerTooLarge", at);
        const memory = flag === 2 ? s.u32() : 0;
        const offset = flag === 1 ? "" : s.constExpr();
        const size = s.u32();
        s.bytes(size);
        return { mode: flag === 1 ? "passive" : "active", memory, offset, size };
      });
      return;
    case 12:
      m.dataCount = s.u32();
      return;
  }
}

function globalType(s: Reader): { type: ValType; mutable: boolean } {
  const type = s.valType();
  const at = s.pos;
  const mut = s.byte();
  if (mut > 1) s.fail("InvalidMut", at);
  return { type, mutable: mut === 1 };
}

function tagType(s: Reader): number {
  const at = s.pos;
  if (s.byte() !== 0) s.fail("ExpectedZeroByte", at);
  return s.u32();
}

function element(s: Reader): ParsedModule["elements"][number] {
  const at = s.pos;
  const flag = s.u32();
  if (flag > 7) s.fail("IntegerTooLarge", at);
  const mode = flag & 1 ? (flag & 2 ? "declarative" : "passive") : "active";
  const table = flag === 2 || flag === 6 ? s.u32() : 0;
  const offset = mode === "active" ? s.constExpr() : "";
  if (flag & 4) {
    if (flag !== 4) s.refType();
    return { mode, table, offset, count: s.vec(() => s.constExpr()).length };
  }
  if (flag !== 0) {
    const kindAt = s.pos;
    if (s.byte() !== 0) s.fail("MalformedElemType", kindAt);
  }
  return { mode, table, offset, count: s.vec(() => s.u32()).length };
}

/** Function names (subsection 1) of a `name` section; a damaged name section is ignored, as engines do. */
function readNames(b: Uint8Array, out: Map<number, string>): void {
  try {
    const r = new Reader(b, 0, b.length);
    while (r.pos < r.end) {
      const id = r.byte();
      const size = r.u32();
      const end = r.pos + size;
      if (id === 1) {
        const sub = new Reader(b, r.pos, end);
        sub.vec(() => out.set(sub.u32(), sub.name()));
      }
      r.pos = end;
    }
  } catch {
    // names are debugging help only
  }
}

/** All function types by function index (imports first), for reactor calls and the listing. */
export function functionTypes(m: ParsedModule): (FuncType | undefined)[] {
  const out: (FuncType | undefined)[] = [];
  for (const i of m.imports) if (i.desc.kind === "func") out.push(m.types[i.desc.type]);
  for (const t of m.functions) out.push(m.types[t]);
  return out;
}

/** The listing `capvisor parse` prints: one block per section, as WasmEdge's parse tool does. */
export function describeModule(m: ParsedModule, fileName: string): string {
  const L: string[] = [`${fileName}:  file format wasm 0x1`, "", "Section Details:", ""];
  const fname = (i: number): string => {
    const n = m.functionNames.get(i);
    return n === undefined ? "" : ` <${n}>`;
  };
  const lim = (l: Limits): string => `initial=${l.min}${l.max === undefined ? "" : ` max=${l.max}`}`;
  if (m.types.length) {
    L.push(`Type[${m.types.length}]:`);
    m.types.forEach((t, i) => {
      L.push(` - type[${i}] (${t.params.join(", ")}) -> ${t.results.length ? t.results.join(", ") : "nil"}`);
    });
  }
  const counts = { func: 0, table: 0, memory: 0, global: 0, tag: 0 };
  if (m.imports.length) {
    L.push(`Import[${m.imports.length}]:`);
    for (const imp of m.imports) {
      const d = imp.desc;
      const i = counts[d.kind]++;
      const from = ` <- ${imp.module}.${imp.name}`;
      if (d.kind === "func") L.push(` - func[${i}] sig=${d.type}${fname(i)}${from}`);
      else if (d.kind === "memory") L.push(` - memory[${i}] pages: ${lim(d.limits)}${from}`);
      else if (d.kind === "table") L.push(` - table[${i}] type=${d.ref} ${lim(d.limits)}${from}`);
      else if (d.kind === "global") L.push(` - global[${i}] ${d.type} mutable=${d.mutable ? 1 : 0}${from}`);
      else L.push(` - tag[${i}] sig=${d.type}${from}`);
    }
  }
  const list = <T>(title: string, xs: T[], line: (x: T, i: number) => string): void => {
    if (!xs.length) return;
    L.push(`${title}[${xs.length}]:`);
    xs.forEach((x, i) => {
      L.push(line(x, i));
    });
  };
  list("Function", m.functions, (t, i) => ` - func[${i + counts.func}] sig=${t}${fname(i + counts.func)}`);
  list("Table", m.tables, (t, i) => ` - table[${i + counts.table}] type=${t.ref} ${lim(t.limits)}`);
  list("Memory", m.memories, (l, i) => ` - memory[${i + counts.memory}] pages: ${lim(l)}`);
  list("Tag", m.tags, (t, i) => ` - tag[${i + counts.tag}] sig=${t}`);
  list(
    "Global",
    m.globals,
    (g, i) =>
      ` - global[${i + counts.global}] ${g.type} mutable=${g.mutable ? 1 : 0}${g.init ? ` - init ${g.init}` : ""}`,
  );
  list(
    "Export",
    m.exports,
    (e) => ` - ${e.kind}[${e.index}]${e.kind === "func" ? fname(e.index) : ""} -> "${e.name}"`,
  );
  if (m.start !== undefined) L.push("Start:", ` - func[${m.start}]${fname(m.start)}`);
  list("Element", m.elements, (e, i) =>
    e.mode === "active"
      ? ` - segment[${i}] table=${e.table} count=${e.count}${e.offset ? ` - init ${e.offset}` : ""}`
      : ` - segment[${i}] ${e.mode} count=${e.count}`,
  );
  if (m.dataCount !== undefined) L.push(`DataCount section: ${m.dataCount}`);
  list("Code", m.code, (c, i) => ` - func[${i + counts.func}] size=${c.size}${fname(i + counts.func)}`);
  list("Data", m.data, (d, i) =>
    d.mode === "active"
      ? ` - segment[${i}] memory=${d.memory} size=${d.size}${d.offset ? ` - init ${d.offset}` : ""}`
      : ` - segment[${i}] passive size=${d.size}`,
  );
  for (const c of m.customs) L.push("Custom:", ` - name: "${c.name}"`);
  return `${L.join("\n")}\n`;
}
