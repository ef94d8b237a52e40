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
 * every iteration of every loop, and every call (hence every recursion, tail calls included),
 * pays one check. Code between two checks is straight-line, bounded by the size of one function.
 * (A Binaryen loop with no label has no branch to it, runs its body once, and gets no check.)
 *
 * Cost for V8 (numbers from `npm run bench:instrument`). The hot path is one global load, a
 * subtract, a store and a compare-and-branch. At loop headers the call to `preempt` is moved out
 * of the loop (see `loopCheck`): a call anywhere inside a loop body, even on a branch never taken,
 * makes V8's register allocator spill the loop's live values on every iteration, which cost 5.5x
 * on a matrix multiply against 1.4x with the call outside (the decrement alone costs 1.3x there).
 * Why the header and not the back-edges: a check on each `br`/`br_if`/`br_table` that targets a
 * loop saves one check per loop *entry* but needs one copy per back-edge and turns `br_if` into an
 * `if` around a `br`; V8 itself puts its interrupt (stack) check at loop headers. Why a constant
 * decrement and not the loop's cost: the check costs the same whatever the constant, and fuel
 * only has to bound the time between two chances to preempt (the kernel measures budgets in time,
 * in `preempt`); `fuelPerCheck` is there for a runtime that wants coarser units. The option
 * `checkLeafFunctions: false` drops the entry check of functions without loops or calls, which
 * stays safe (such a function runs in bounded time and cannot recurse) and makes calls to small
 * helpers cheaper, but departs from the ABI text, so it is not the default.
 *
 * The rewriting is done by Binaryen (npm `binaryen`, the WebAssembly project's own optimizer,
 * compiled to Wasm): the module is read into Binaryen IR, loops are found by walking each
 * function's expression tree from JavaScript through Binaryen's C API, the checks are added, and
 * the module is written back. Input and output are both validated by V8, the engine that will run
 * them, which also gives the precise error messages for malformed input.
 *
 * This is the one file allowed to reach into Binaryen's C API, which its .d.ts does not declare:
 * `RawBinaryen` below types exactly the functions used. For that reason it also holds the two
 * other rewrites and analyses that need it, for direct protected calls (direct-call.ts): the call
 * graph and the shared-memory form of a module (at the end of the file).
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
   * to small helpers cheaper; fuel then counts fewer events for the same work.
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
  _BinaryenBlockGetName(e: Ref): Ref;
  _BinaryenTryGetName(e: Ref): Ref;
  /** binaryen.js's wrapper classes (they convert names to and from C strings). */
  Block: { getName(e: Ref): string | null };
  Try: { getName(e: Ref): string | null };
  Call: { getTarget(e: Ref): string };
  Loop: {
    getName(e: Ref): string | null;
    setName(e: Ref, name: string): void;
    getBody(e: Ref): Ref;
    setBody(e: Ref, body: Ref): void;
  };
  _BinaryenFunctionGetBody(f: Ref): Ref;
  _BinaryenFunctionSetBody(f: Ref, body: Ref): void;
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
  block: number;
  try: number;
  directCall: number;
}
let kindTable: KindTable | undefined;
function kinds(): KindTable {
  if (kindTable) return kindTable;
  const t: KindTable = {
    fixed: [],
    lists: [],
    leaf: [],
    call: [],
    loop: exprId("Loop"),
    block: exprId("Block"),
    try: exprId("Try"),
    directCall: exprId("Call"),
  };
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

interface Walk {
  loops: Ref[];
  calls: boolean;
  /** When present: the names of the functions called directly (callGraph). */
  callees?: string[];
  /** Set when the body calls through a table or a reference (callGraph). */
  indirect?: boolean;
  /** Blocks and trys that have a label (loops are in `loops`). */
  labelled: Ref[];
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
    if (t.call[id]) {
      out.calls = true;
      if (out.callees !== undefined) {
        if (id === t.directCall) out.callees.push(raw.Call.getTarget(e));
        else out.indirect = true;
      }
    } else if (
      (id === t.block && raw._BinaryenBlockGetName(e) !== 0) ||
      (id === t.try && raw._BinaryenTryGetName(e) !== 0)
    ) {
      out.labelled.push(e);
    }
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
    const kind = /^\s*\(([\w.]+)/.exec(text)?.[1] ?? `expression kind #${id}`;
    throw new WasmInstrumentError(
      `function ${fnName()}: a loop nested inside the operands of ${kind} cannot be instrumented (Binaryen's API does not reach them)`,
    );
  }
  if (/\((return_)?call/.test(text)) {
    out.calls = true;
    // Which function it calls is not reachable through the API: count it as unknown.
    out.indirect = true;
  }
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

/** What the instrumentation did. */
export interface InstrumentStats {
  /** Functions with a body. */
  functions: number;
  entryChecks: number;
  loopChecks: number;
}

/**
 * Returns `wasm` with preemption checks (see the top of this file). Throws WasmInstrumentError for
 * malformed input (the message says what and where) or for a module that already exports
 * `capvisor_fuel` or imports `capvisor.preempt` with another type; RangeError for bad options.
 */
export function instrumentPreemption(wasm: Uint8Array, opts: InstrumentOptions = {}): Uint8Array {
  return instrumentPreemptionWithStats(wasm, opts).wasm;
}

/** `instrumentPreemption`, also saying how many checks it added. */
export function instrumentPreemptionWithStats(
  wasm: Uint8Array,
  opts: InstrumentOptions = {},
): { wasm: Uint8Array; stats: InstrumentStats } {
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
  } catch (e) {
    if (e instanceof WasmInstrumentError || e instanceof RangeError) throw e;
    throw new WasmInstrumentError(`Binaryen failed on this module: ${e instanceof Error ? e.message : e}`);
  } finally {
    m.dispose();
  }
}

function rewrite(
  m: binaryen.Module,
  perCheck: number,
  initial: number,
  checkLeaves: boolean,
): { wasm: Uint8Array; stats: InstrumentStats } {
  const i32 = binaryen.i32;
  if (m.getExport(FUEL_EXPORT) !== 0) {
    throw new WasmInstrumentError(`the module already exports "${FUEL_EXPORT}" (instrumented twice?)`);
  }

  // The preemption import: reuse the module's own if it has one.
  let preempt: string | undefined;
  const nf = m.getNumFunctions();
  for (let i = 0; i < nf; i++) {
    const f = m.getFunctionByIndex(i);
    if (raw._BinaryenFunctionGetBody(f) !== 0) continue; // defined here, not imported
    const info = binaryen.getFunctionInfo(f);
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

  const auto = binaryen.auto;
  const dec = (): Ref => m.global.set(fuel, m.i32.sub(m.global.get(fuel, i32), m.i32.const(perCheck)));
  const low = (): Ref => m.i32.lt_s(m.global.get(fuel, i32), m.i32.const(0));
  // Function entry: fuel = fuel - k; if (fuel < 0) fuel = preempt()   (fresh nodes: IR is a tree)
  const entry = (body: Ref): Ref =>
    m.block(null, [dec(), m.if(low(), m.global.set(fuel, m.call(preempt!, [], i32))), body], getType(body));

  // Loop header. The same check, but with the call moved out of the loop, because a call inside
  // a loop body, even on a path never taken, makes V8's register allocator spill the loop's
  // values around it on every iteration (x5.5 on a matrix multiply; out of the loop: x1.4, the
  // cost of the decrement alone being x1.3). The original loop node (kept, so its parent is
  // untouched) is renamed $o and becomes the re-entry point; its body is
  //   block $x { block $p { br $x (loop $L { fuel -= k; br_if $p (fuel < 0); BODY }) }
  //              fuel = preempt() + k; br $o }
  // BODY's branches to $L still go to the inner loop's header; `br_if $p` leaves the loop only to
  // call preempt and come back through the same header, which subtracts k again: hence the + k,
  // so that after the check fuel is exactly preempt()'s value, as the ABI says (i32 arithmetic
  // wraps, so this holds for any value). When the loop has no value, `br $x` follows the loop
  // instead; when it never falls through (type unreachable), there is no $x and no `br $x`.
  // New labels are `${prefix}o<n>` etc., with a prefix no label of the function starts with, so
  // that they never shadow one of its own.
  let label = 0;
  let prefix = "capvisor$";
  const loopCheck = (loop: Ref, name: string): void => {
    const type = getType(loop);
    const n = label++;
    const o = `${prefix}o${n}`;
    const x = `${prefix}x${n}`;
    const p = `${prefix}p${n}`;
    const body = raw.Loop.getBody(loop);
    const inner = m.loop(name, m.block(null, [dec(), m.br(p, low()), body], getType(body)));
    const refill = m.global.set(fuel, m.i32.add(m.call(preempt!, [], i32), m.i32.const(perCheck)));
    let outer: Ref;
    if (type === binaryen.unreachable) {
      outer = m.block(null, [m.block(p, [inner], auto), refill, m.br(o)], auto);
    } else if (type === binaryen.none) {
      outer = m.block(x, [m.block(p, [inner, m.br(x)], auto), refill, m.br(o)], auto);
    } else {
      outer = m.block(x, [m.block(p, [m.br(x, 0, inner)], auto), refill, m.br(o)], type);
    }
    raw.Loop.setName(loop, o);
    raw.Loop.setBody(loop, outer);
  };

  const stats: InstrumentStats = { functions: 0, entryChecks: 0, loopChecks: 0 };
  const w: Walk = { loops: [], calls: false, labelled: [] };
  for (let i = 0; i < nf; i++) {
    const f = m.getFunctionByIndex(i);
    const body = raw._BinaryenFunctionGetBody(f);
    if (body === 0) continue; // imported
    stats.functions++;
    w.loops.length = 0;
    w.labelled.length = 0;
    w.calls = false;
    walk(body, () => binaryen.getFunctionInfo(f).name, w);
    // Loops without a label have no branch to them: their body runs once and needs no check.
    const loops: [Ref, string][] = [];
    for (const loop of w.loops) {
      const name = raw.Loop.getName(loop);
      if (name) loops.push([loop, name]);
    }
    if (loops.length > 0) {
      const labels = loops.map(([, name]) => name);
      for (const e of w.labelled)
        labels.push((getId(e) === kinds().try ? raw.Try : raw.Block).getName(e) ?? "");
      prefix = "capvisor$";
      for (let k = 1; labels.some((l) => l.startsWith(prefix)); k++) prefix = `capvisor${k}$`;
      label = 0;
      for (const [loop, name] of loops) loopCheck(loop, name);
    }
    stats.loopChecks += loops.length;
    if (checkLeaves || w.calls || loops.length > 0) {
      raw._BinaryenFunctionSetBody(f, entry(body));
      stats.entryChecks++;
    }
  }

  // Binaryen writes the name section (function and local names, which V8 shows in stack traces and
  // fault reports) only with debug info on; the setting is global to Binaryen, so restore it.
  const debugInfo = binaryen.getDebugInfo();
  binaryen.setDebugInfo(true);
  let out: Uint8Array;
  try {
    out = m.emitBinary();
  } finally {
    binaryen.setDebugInfo(debugInfo);
  }
  const v = validateWasm(out);
  if (!v.ok) throw new WasmInstrumentError(`internal error: the instrumented module is invalid: ${v.error}`);
  return { wasm: out, stats };
}

// ---------------------------------------------------------------- for direct protected calls

/** A module's direct calls, for the analysis of src/pd/wasm/direct-call.ts. */
export interface CallGraph {
  /** Each defined function's direct callees (function names). */
  calls: Map<string, string[]>;
  /** Defined functions that call through a table or a reference (callees unknown). */
  indirect: Set<string>;
  /** Imported functions: name to `module.field`. */
  imports: Map<string, string>;
  /** Exported functions: export name to function name. */
  exports: Map<string, string>;
}

function readModule(wasm: Uint8Array): binaryen.Module {
  const v = validateWasm(wasm);
  if (!v.ok) throw new WasmInstrumentError(`invalid Wasm module: ${v.error}`);
  const m = (binaryen.readBinary as (data: Uint8Array, features: number) => binaryen.Module)(wasm, FEATURES);
  m.setFeatures(FEATURES);
  return m;
}

/** The call graph of a module (direct calls by name; indirect ones flagged). */
export function callGraph(wasm: Uint8Array): CallGraph {
  const m = readModule(wasm);
  try {
    const g: CallGraph = { calls: new Map(), indirect: new Set(), imports: new Map(), exports: new Map() };
    for (let i = 0; i < m.getNumFunctions(); i++) {
      const f = m.getFunctionByIndex(i);
      const info = binaryen.getFunctionInfo(f);
      const body = raw._BinaryenFunctionGetBody(f);
      if (body === 0) {
        g.imports.set(info.name, `${info.module}.${info.base}`);
        continue;
      }
      const w: Walk = { loops: [], calls: false, labelled: [], callees: [], indirect: false };
      walk(body, () => info.name, w);
      g.calls.set(info.name, w.callees!);
      if (w.indirect) g.indirect.add(info.name);
    }
    for (let i = 0; i < m.getNumExports(); i++) {
      const e = binaryen.getExportInfo(m.getExportByIndex(i));
      if (e.kind === binaryen.ExternalFunction) g.exports.set(e.name, e.value);
    }
    return g;
  } finally {
    m.dispose();
  }
}

/** Module and field of the shared memory a rewritten module imports (shareMemory). */
export const SHARED_MEMORY_MODULE = "capvisor";
export const SHARED_MEMORY_FIELD = "memory";
/** Its maximum (pages): a shared memory must declare one; 4 GiB, all that wasm32 addresses. */
export const SHARED_MEMORY_MAX_PAGES = 65536;

/**
 * The module with its memory imported as a shared memory (`capvisor.memory`), so that several
 * instances, in several threads, work on one memory: a PD's own instance and the instances its
 * callers use for direct protected calls. `keepData: false` drops the active data segments: an
 * instance created after the PD has started must not write its initial data over the PD's state.
 * Returns the bytes and the memory's initial size in pages.
 */
export function shareMemory(wasm: Uint8Array, keepData: boolean): { wasm: Uint8Array; initialPages: number } {
  const m = readModule(wasm);
  try {
    const info = m.getMemoryInfo();
    if (info.module !== "" || info.is64)
      throw new WasmInstrumentError("the module imports its memory, or it is 64-bit");
    // binaryen.js has these two; its .d.ts does not declare them.
    const segs = m as unknown as {
      getNumDataSegments(): number;
      getDataSegmentInfo(s: binaryen.DataSegmentRef): { offset: number; data: ArrayBuffer; passive: boolean };
    };
    const segments: binaryen.MemorySegment[] = [];
    if (keepData)
      for (let i = 0; i < segs.getNumDataSegments(); i++) {
        const seg = segs.getDataSegmentInfo(m.getDataSegmentByIndex(i));
        segments.push({
          offset: m.i32.const(seg.offset),
          data: new Uint8Array(seg.data),
          passive: seg.passive,
        });
      }
    // Binaryen names a memory read from a binary without a name section by its index.
    const name = "0";
    for (let i = m.getNumExports() - 1; i >= 0; i--) {
      const e = binaryen.getExportInfo(m.getExportByIndex(i));
      if (e.kind === binaryen.ExternalMemory) m.removeExport(e.name);
    }
    m.setMemory(info.initial, SHARED_MEMORY_MAX_PAGES, "memory", segments, true, false, name);
    m.addMemoryImport(name, SHARED_MEMORY_MODULE, SHARED_MEMORY_FIELD, true);
    const out = m.emitBinary();
    const v = validateWasm(out);
    if (!v.ok)
      throw new WasmInstrumentError(`internal error: the shared-memory module is invalid: ${v.error}`);
    return { wasm: out, initialPages: info.initial };
  } finally {
    m.dispose();
  }
}
