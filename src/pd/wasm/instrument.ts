/**
 * Load-time preemption instrumentation of Wasm PD code (docs/wasm-abi.md, "Preemption").
 *
 * `instrumentPreemption` adds to a module
 * - a mutable i32 global `fuel`, exported as `capvisor_fuel` so the runtime can set it, initialised
 *   to `initialFuel`;
 * - the import `capvisor.preempt: () -> i32` (reused if the module already imports it);
 * - at every function entry and every loop header, the check
 *   `fuel = fuel - fuelPerCheck; if (fuel < 0) fuel = capvisor.preempt()`.
 * A loop header is the start of a loop's body: every branch back to the loop goes through it, so
 * every iteration of every loop, and every call (hence every recursion), pays one check. Code
 * between two checks is straight-line, bounded by the size of one function body.
 *
 * Why the header and not the back-edges: a check on each `br`/`br_if`/`br_table` that targets a
 * loop saves one check per loop *entry*, but needs one copy per back-edge and turns `br_if` into
 * an `if` around a `br`, which gives V8 more code and blocks; V8 itself places its interrupt
 * (stack) check at loop headers, so the header is where it already expects one. Why a constant
 * decrement and not the loop's cost: the cost of the check is the load/sub/store/branch, the same
 * whatever the constant, and a per-loop weight would only make the fuel unit closer to
 * "instructions"; the kernel measures budgets in time anyway (it reads the clock in `preempt`),
 * so fuel only has to bound the time between two chances to preempt. `fuelPerCheck` exists for a
 * runtime that wants coarser units.
 *
 * The rewriting is done by Binaryen (npm `binaryen`, the WebAssembly project's own optimizer,
 * compiled to Wasm): the module is read into Binaryen IR, loops are found by walking each
 * function's expression tree from JavaScript through Binaryen's C API, the checks are added, and
 * the module is written back. Input and output are both validated by V8, the engine that will run
 * them, which also gives the precise error messages for malformed input.
 *
 * This is the one file allowed to reach into Binaryen's C API, which its .d.ts does not declare:
 * `RawBinaryen` below types exactly the functions used.
 */
import binaryen from "binaryen";

/** Default initial fuel: checks before the first `capvisor.preempt()` if the runtime never sets it. */
export const DEFAULT_INITIAL_FUEL = 100_000;
/** Name of the exported fuel global. */
export const FUEL_EXPORT = "capvisor_fuel";
/** Module and field of the preemption import. */
export const PREEMPT_MODULE = "capvisor";
export const PREEMPT_FIELD = "preempt";

export interface InstrumentOptions {
  /** Subtracted from `fuel` at each check (default 1, as docs/wasm-abi.md specifies). */
  fuelPerCheck?: number;
  /** Value of `fuel` at instantiation (default DEFAULT_INITIAL_FUEL). */
  initialFuel?: number;
  /**
   * Also check at the entry of functions that contain no loop and no call (default true, as the
   * ABI specifies). Such a function runs in time bounded by its size and cannot recurse, so
   * leaving its entry unchecked keeps every unbounded execution preemptible while making calls
   * to small helpers cheaper; the fuel then counts fewer events for the same work.
   */
  checkLeafFunctions?: boolean;
}

/** Malformed input, or input the instrumentation cannot handle, with what and where. */
export class WasmInstrumentError extends Error {
  override name = "WasmInstrumentError";
}

export type WasmValidation = { ok: true } | { ok: false; error: string };

/**
 * Validates a module with V8 (the engine that runs PDs). On failure the error says what is wrong
 * and where, e.g. `Compiling function #2 failed: expected 1 elements on the stack for fallthru,
 * found 0 @+63` (the `@+N` is the byte offset in the module).
 */
export function validateWasm(bytes: Uint8Array): WasmValidation {
  if (!(bytes instanceof Uint8Array)) return { ok: false, error: "not a Uint8Array" };
  if (bytes.length < 8) {
    return { ok: false, error: `too short for a Wasm module: ${bytes.length} bytes (a header is 8) @+0` };
  }
  if (WebAssembly.validate(bytes)) return { ok: true };
  try {
    new WebAssembly.Module(bytes);
  } catch (e) {
    return {
      ok: false,
      error: String(e instanceof Error ? e.message : e).replace(/^WebAssembly\.Module\(\): /, ""),
    };
  }
  // validate() and the constructor disagree only if V8 does; say so rather than guess.
  return { ok: false, error: "rejected by WebAssembly.validate (V8 gave no further detail)" };
}

// ---- Binaryen's C API, as far as it is used here ----

type Ref = number;
type Getter = (e: Ref) => Ref;
interface RawBinaryen {
  _BinaryenExpressionGetId(e: Ref): number;
  _BinaryenExpressionGetType(e: Ref): number;
  _BinaryenBlockGetNumChildren(e: Ref): number;
  _BinaryenBlockGetChildAt(e: Ref, i: number): Ref;
  _BinaryenLoopGetBody(e: Ref): Ref;
  _BinaryenLoopSetBody(e: Ref, body: Ref): void;
  _BinaryenFunctionGetBody(f: Ref): Ref;
  _BinaryenFunctionSetBody(f: Ref, body: Ref): void;
  _BinaryenFunctionImportGetModule(f: Ref): Ref;
  [getter: string]: unknown;
}
const raw = binaryen as unknown as RawBinaryen;
const getId = raw._BinaryenExpressionGetId;
const getType = raw._BinaryenExpressionGetType;

function rawFn(name: string): (...args: number[]) => number {
  const f = raw[`_Binaryen${name}`];
  if (typeof f !== "function") throw new Error(`this version of binaryen lacks _Binaryen${name}`);
  return f as (...args: number[]) => number;
}
function exprId(kind: string): number {
  const id = (binaryen as unknown as Record<string, unknown>)[`${kind}Id`];
  return typeof id === "number" ? id : -1;
}

/**
 * How to reach the children of each expression kind. Fixed children: a list of getters. Variable
 * children (operand lists): [count, at]. Every kind a module valid for Node 20's V8 can contain is
 * listed (MVP, multi-value, bulk memory, reference types, SIMD, threads, tail calls, legacy
 * exception handling), with the GC ones Binaryen's C API can reach. A kind with children that the
 * C API cannot reach (table.fill, table.copy, table.init) is handled by `opaque` below.
 */
const FIXED: Record<string, string[]> = {
  If: ["IfGetCondition", "IfGetIfTrue", "IfGetIfFalse"],
  Break: ["BreakGetCondition", "BreakGetValue"],
  Switch: ["SwitchGetCondition", "SwitchGetValue"],
  CallIndirect: ["CallIndirectGetTarget"],
  LocalSet: ["LocalSetGetValue"],
  GlobalSet: ["GlobalSetGetValue"],
  Load: ["LoadGetPtr"],
  Store: ["StoreGetPtr", "StoreGetValue"],
  AtomicRMW: ["AtomicRMWGetPtr", "AtomicRMWGetValue"],
  AtomicCmpxchg: ["AtomicCmpxchgGetPtr", "AtomicCmpxchgGetExpected", "AtomicCmpxchgGetReplacement"],
  AtomicWait: ["AtomicWaitGetPtr", "AtomicWaitGetExpected", "AtomicWaitGetTimeout"],
  AtomicNotify: ["AtomicNotifyGetPtr", "AtomicNotifyGetNotifyCount"],
  SIMDExtract: ["SIMDExtractGetVec"],
  SIMDReplace: ["SIMDReplaceGetVec", "SIMDReplaceGetValue"],
  SIMDShuffle: ["SIMDShuffleGetLeft", "SIMDShuffleGetRight"],
  SIMDTernary: ["SIMDTernaryGetA", "SIMDTernaryGetB", "SIMDTernaryGetC"],
  SIMDShift: ["SIMDShiftGetVec", "SIMDShiftGetShift"],
  SIMDLoad: ["SIMDLoadGetPtr"],
  SIMDLoadStoreLane: ["SIMDLoadStoreLaneGetPtr", "SIMDLoadStoreLaneGetVec"],
  MemoryInit: ["MemoryInitGetDest", "MemoryInitGetOffset", "MemoryInitGetSize"],
  MemoryCopy: ["MemoryCopyGetDest", "MemoryCopyGetSource", "MemoryCopyGetSize"],
  MemoryFill: ["MemoryFillGetDest", "MemoryFillGetValue", "MemoryFillGetSize"],
  Unary: ["UnaryGetValue"],
  Binary: ["BinaryGetLeft", "BinaryGetRight"],
  Select: ["SelectGetIfTrue", "SelectGetIfFalse", "SelectGetCondition"],
  Drop: ["DropGetValue"],
  Return: ["ReturnGetValue"],
  MemoryGrow: ["MemoryGrowGetDelta"],
  RefIsNull: ["RefIsNullGetValue"],
  RefEq: ["RefEqGetLeft", "RefEqGetRight"],
  TableGet: ["TableGetGetIndex"],
  TableSet: ["TableSetGetIndex", "TableSetGetValue"],
  TableGrow: ["TableGrowGetValue", "TableGrowGetDelta"],
  Try: ["TryGetBody"],
  TupleExtract: ["TupleExtractGetTuple"],
  RefI31: ["RefI31GetValue"],
  I31Get: ["I31GetGetI31"],
  CallRef: ["CallRefGetTarget"],
  RefTest: ["RefTestGetRef"],
  RefCast: ["RefCastGetRef"],
  BrOn: ["BrOnGetRef"],
  StructGet: ["StructGetGetRef"],
  StructSet: ["StructSetGetRef", "StructSetGetValue"],
  ArrayNew: ["ArrayNewGetInit", "ArrayNewGetSize"],
  ArrayNewData: ["ArrayNewDataGetOffset", "ArrayNewDataGetSize"],
  ArrayNewElem: ["ArrayNewElemGetOffset", "ArrayNewElemGetSize"],
  ArrayGet: ["ArrayGetGetRef", "ArrayGetGetIndex"],
  ArraySet: ["ArraySetGetRef", "ArraySetGetIndex", "ArraySetGetValue"],
  ArrayLen: ["ArrayLenGetRef"],
  ArrayCopy: [
    "ArrayCopyGetDestRef",
    "ArrayCopyGetDestIndex",
    "ArrayCopyGetSrcRef",
    "ArrayCopyGetSrcIndex",
    "ArrayCopyGetLength",
  ],
  ArrayFill: ["ArrayFillGetRef", "ArrayFillGetIndex", "ArrayFillGetValue", "ArrayFillGetSize"],
  ArrayInitData: [
    "ArrayInitDataGetRef",
    "ArrayInitDataGetIndex",
    "ArrayInitDataGetOffset",
    "ArrayInitDataGetSize",
  ],
  ArrayInitElem: [
    "ArrayInitElemGetRef",
    "ArrayInitElemGetIndex",
    "ArrayInitElemGetOffset",
    "ArrayInitElemGetSize",
  ],
  RefAs: ["RefAsGetValue"],
};
const LISTS: Record<string, [string, string]> = {
  Block: ["BlockGetNumChildren", "BlockGetChildAt"],
  Call: ["CallGetNumOperands", "CallGetOperandAt"],
  CallIndirect: ["CallIndirectGetNumOperands", "CallIndirectGetOperandAt"],
  CallRef: ["CallRefGetNumOperands", "CallRefGetOperandAt"],
  Try: ["TryGetNumCatchBodies", "TryGetCatchBodyAt"],
  Throw: ["ThrowGetNumOperands", "ThrowGetOperandAt"],
  TupleMake: ["TupleMakeGetNumOperands", "TupleMakeGetOperandAt"],
  StructNew: ["StructNewGetNumOperands", "StructNewGetOperandAt"],
  ArrayNewFixed: ["ArrayNewFixedGetNumValues", "ArrayNewFixedGetValueAt"],
};
/** Kinds without children. */
const LEAVES = [
  "Nop",
  "LocalGet",
  "GlobalGet",
  "Const",
  "MemorySize",
  "Unreachable",
  "Pop",
  "RefNull",
  "RefFunc",
  "AtomicFence",
  "Pause",
  "DataDrop",
  "ElemDrop",
  "TableSize",
  "Rethrow",
  "StringConst",
];
/** Kinds that transfer control to another function. */
const CALLS = ["Call", "CallIndirect", "CallRef"];

interface KindTable {
  fixed: (Getter[] | undefined)[];
  lists: ([(e: Ref) => number, (e: Ref, i: number) => Ref] | undefined)[];
  leaf: boolean[];
  call: boolean[];
  loop: number;
}
let kindTable: KindTable | undefined;
function kinds(): KindTable {
  if (kindTable) return kindTable;
  const t: KindTable = { fixed: [], lists: [], leaf: [], call: [], loop: exprId("Loop") };
  for (const [k, gs] of Object.entries(FIXED)) {
    const id = exprId(k);
    if (id >= 0) t.fixed[id] = gs.map((g) => rawFn(g) as Getter);
  }
  for (const [k, [n, at]] of Object.entries(LISTS)) {
    const id = exprId(k);
    if (id >= 0) t.lists[id] = [rawFn(n), rawFn(at)];
  }
  for (const k of LEAVES) {
    const id = exprId(k);
    if (id >= 0) t.leaf[id] = true;
  }
  for (const k of CALLS) t.call[exprId(k)] = true;
  kindTable = t;
  return t;
}

/** Kind name of an expression id, for error messages. */
function kindName(id: number): string {
  for (const [k, v] of Object.entries(binaryen as unknown as Record<string, unknown>)) {
    if (v === id && k.endsWith("Id") && k !== "InvalidId") return k.slice(0, -2);
  }
  return `#${id}`;
}

interface Walk {
  loops: Ref[];
  calls: boolean;
}

/**
 * Collects the loops of one function body and whether it calls anything. Iterative (bodies can
 * be deeply nested). A kind whose children the C API cannot reach is printed by Binaryen and
 * searched: a loop inside it cannot be instrumented, which is an error rather than a silent gap.
 */
function walk(body: Ref, fnName: () => string, out: Walk): void {
  const t = kinds();
  const stack: Ref[] = [body];
  while (stack.length > 0) {
    const e = stack.pop()!;
    if (e === 0) continue;
    const id = getId(e);
    if (t.leaf[id]) continue;
    if (id === t.loop) {
      out.loops.push(e);
      stack.push(raw._BinaryenLoopGetBody(e));
      continue;
    }
    if (t.call[id]) out.calls = true;
    const fixed = t.fixed[id];
    const list = t.lists[id];
    if (fixed) for (const g of fixed) stack.push(g(e));
    if (list) {
      const n = list[0](e);
      for (let i = 0; i < n; i++) stack.push(list[1](e, i));
    }
    if (!fixed && !list) opaque(e, id, fnName, out);
  }
}

function opaque(e: Ref, id: number, fnName: () => string, out: Walk): void {
  const text = binaryen.emitText(e);
  if (/\(loop\b/.test(text)) {
    throw new WasmInstrumentError(
      `function ${fnName()}: a loop nested inside ${kindName(id)} cannot be instrumented (Binaryen's API does not reach its operands)`,
    );
  }
  if (/\((return_)?call/.test(text)) out.calls = true;
}

/**
 * Features the output may use: what V8 can run (Node 20 and later), never the GC family, whose
 * type-section encoding V8 11 rejects. Input is validated by V8 first, so this only bounds what
 * Binaryen accepts and how it writes.
 */
const FEATURES =
  binaryen.Features.MVP |
  binaryen.Features.Atomics |
  binaryen.Features.MutableGlobals |
  binaryen.Features.NontrappingFPToInt |
  binaryen.Features.SIMD128 |
  binaryen.Features.BulkMemory |
  binaryen.Features.SignExt |
  binaryen.Features.ExceptionHandling |
  binaryen.Features.TailCall |
  binaryen.Features.ReferenceTypes |
  binaryen.Features.Multivalue |
  binaryen.Features.RelaxedSIMD |
  binaryen.Features.ExtendedConst |
  binaryen.Features.Memory64 |
  binaryen.Features.MultiMemory |
  binaryen.Features.BulkMemoryOpt |
  binaryen.Features.CallIndirectOverlong;

function checkInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min || v > 0x7fffffff) {
    throw new RangeError(`${name} must be an integer in [${min}, 2^31-1], got ${v}`);
  }
  return v;
}

function uniqueName(taken: (n: string) => boolean, base: string): string {
  let name = base;
  for (let i = 1; taken(name); i++) name = `${base}${i}`;
  return name;
}

/** Statistics of the last instrumentation, for tests and benchmarks. */
export interface InstrumentStats {
  functions: number;
  entryChecks: number;
  loopChecks: number;
}
export let lastInstrumentStats: InstrumentStats = { functions: 0, entryChecks: 0, loopChecks: 0 };

/**
 * Returns `wasm` with preemption checks (see the top of this file). Throws WasmInstrumentError for
 * malformed input (the message says what and where) or for a module that already defines
 * `capvisor_fuel` or imports `capvisor.preempt` with another type.
 */
export function instrumentPreemption(wasm: Uint8Array, opts: InstrumentOptions = {}): Uint8Array {
  const perCheck = checkInt("fuelPerCheck", opts.fuelPerCheck ?? 1, 1);
  const initial = checkInt("initialFuel", opts.initialFuel ?? DEFAULT_INITIAL_FUEL, 0);
  const checkLeaves = opts.checkLeafFunctions ?? true;
  const v = validateWasm(wasm);
  if (!v.ok) throw new WasmInstrumentError(`invalid Wasm module: ${v.error}`);

  let m: binaryen.Module;
  try {
    // The JS build's readBinary takes the features as a second argument (its .d.ts omits it, and
    // declares a readBinaryWithFeatures that the JS build does not define).
    m = (binaryen.readBinary as (data: Uint8Array, features: number) => binaryen.Module)(wasm, FEATURES);
  } catch (e) {
    throw new WasmInstrumentError(`Binaryen cannot read this module: ${e instanceof Error ? e.message : e}`);
  }
  try {
    m.setFeatures(FEATURES);
    return rewrite(m, perCheck, initial, checkLeaves);
  } finally {
    m.dispose();
  }
}

function rewrite(m: binaryen.Module, perCheck: number, initial: number, checkLeaves: boolean): Uint8Array {
  const i32 = binaryen.i32;
  if (m.getExport(FUEL_EXPORT) !== 0) {
    throw new WasmInstrumentError(`the module already exports "${FUEL_EXPORT}" (instrumented twice?)`);
  }

  // The preemption import: reuse the module's own if it has one.
  let preempt: string | undefined;
  const nf = m.getNumFunctions();
  for (let i = 0; i < nf; i++) {
    const info = binaryen.getFunctionInfo(m.getFunctionByIndex(i));
    if (info.module === PREEMPT_MODULE && info.base === PREEMPT_FIELD) {
      if (info.params !== binaryen.none || info.results !== i32) {
        throw new WasmInstrumentError(
          `the module imports ${PREEMPT_MODULE}.${PREEMPT_FIELD} with a type other than () -> i32`,
        );
      }
      preempt = info.name;
    }
  }
  if (preempt === undefined) {
    preempt = uniqueName((n) => m.getFunction(n) !== 0, "capvisor$preempt");
    m.addFunctionImport(preempt, PREEMPT_MODULE, PREEMPT_FIELD, binaryen.none, i32);
  }
  const fuel = uniqueName((n) => m.getGlobal(n) !== 0, "capvisor$fuel");
  m.addGlobal(fuel, i32, true, m.i32.const(initial));
  m.addGlobalExport(fuel, FUEL_EXPORT);

  // fuel = fuel - k; if (fuel < 0) fuel = preempt()   (fresh nodes at each site: IR is a tree)
  const check = (): Ref[] => [
    m.global.set(fuel, m.i32.sub(m.global.get(fuel, i32), m.i32.const(perCheck))),
    m.if(m.i32.lt_s(m.global.get(fuel, i32), m.i32.const(0)), m.global.set(fuel, m.call(preempt!, [], i32))),
  ];
  const prefixed = (body: Ref): Ref => m.block(null, [...check(), body], getType(body));

  const stats: InstrumentStats = { functions: 0, entryChecks: 0, loopChecks: 0 };
  const w: Walk = { loops: [], calls: false };
  for (let i = 0; i < nf; i++) {
    const f = m.getFunctionByIndex(i);
    if (raw._BinaryenFunctionImportGetModule(f) !== 0) continue; // imported: no body
    const body = raw._BinaryenFunctionGetBody(f);
    stats.functions++;
    w.loops.length = 0;
    w.calls = false;
    walk(body, () => binaryen.getFunctionInfo(f).name, w);
    for (const loop of w.loops) raw._BinaryenLoopSetBody(loop, prefixed(raw._BinaryenLoopGetBody(loop)));
    stats.loopChecks += w.loops.length;
    if (checkLeaves || w.calls || w.loops.length > 0) {
      raw._BinaryenFunctionSetBody(f, prefixed(body));
      stats.entryChecks++;
    }
  }

  const out = m.emitBinary();
  const v = validateWasm(out);
  if (!v.ok) throw new WasmInstrumentError(`internal error: the instrumented module is invalid: ${v.error}`);
  lastInstrumentStats = stats;
  return out;
}
