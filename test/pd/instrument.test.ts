/**
 * Preemption instrumentation (src/pd/wasm/instrument.ts, docs/wasm-abi.md "Preemption"): modules
 * written in WAT (turned into binaries by Binaryen) or assembled byte by byte, run bare and
 * instrumented under V8 with a `capvisor.preempt` that counts its calls.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import binaryen from "binaryen";
import {
  DEFAULT_INITIAL_FUEL,
  FUEL_EXPORT,
  instrumentPreemption,
  instrumentPreemptionWithStats,
  validateWasm,
  WasmInstrumentError,
} from "../../src/pd/wasm/instrument.js";

const FEATURES =
  binaryen.Features.MVP |
  binaryen.Features.Multivalue |
  binaryen.Features.BulkMemory |
  binaryen.Features.BulkMemoryOpt |
  binaryen.Features.SIMD128 |
  binaryen.Features.ReferenceTypes |
  binaryen.Features.TailCall |
  binaryen.Features.ExceptionHandling |
  binaryen.Features.SignExt |
  binaryen.Features.MutableGlobals |
  binaryen.Features.NontrappingFPToInt;

/** WAT to a binary, with the name section. */
function wat(text: string): Uint8Array {
  const m = binaryen.parseText(text);
  try {
    m.setFeatures(FEATURES);
    assert.ok(m.validate(), "test module is valid");
    const debug = binaryen.getDebugInfo();
    binaryen.setDebugInfo(true);
    try {
      return m.emitBinary();
    } finally {
      binaryen.setDebugInfo(debug);
    }
  } finally {
    m.dispose();
  }
}

type Fn = (...args: number[]) => unknown;
interface Loaded {
  exports: Record<string, Fn>;
  fuel: WebAssembly.Global;
  preempts: () => number;
}

/**
 * Instantiates `bytes` with a preempt that returns `refill` and throws after `limit` calls.
 * `onPreempt` sees each call (after counting it).
 */
function load(
  bytes: Uint8Array,
  refill = 1000,
  limit = Number.POSITIVE_INFINITY,
  onPreempt?: () => void,
): Loaded {
  let calls = 0;
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    capvisor: {
      preempt: () => {
        calls++;
        onPreempt?.();
        if (calls >= limit) throw new Error(`stopped after ${calls} preemptions`);
        return refill;
      },
    },
  });
  return {
    exports: inst.exports as unknown as Record<string, Fn>,
    fuel: inst.exports[FUEL_EXPORT] as WebAssembly.Global,
    preempts: () => calls,
  };
}

function bare(bytes: Uint8Array): Record<string, Fn> {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as Record<string, Fn>;
}

// ---- a tiny assembler for modules Binaryen would rewrite before we see them ----

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body];
}
function vec(items: number[][]): number[] {
  return [...leb(items.length), ...items.flat()];
}
function str(s: string): number[] {
  return vec([...Buffer.from(s)].map((b) => [b]));
}
function module(...sections: number[][]): Uint8Array {
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...sections.flat()]);
}
const I32 = 0x7f;

// ---- while (1) {} ----

const SPIN = `(module
 (global $count (export "count") (mut i32) (i32.const 0))
 (func (export "spin")
  (loop $l (global.set $count (i32.add (global.get $count) (i32.const 1))) (br $l))))`;

test("while(1){} calls capvisor.preempt again and again, every fuel+1 iterations", () => {
  const out = instrumentPreemption(wat(SPIN), { initialFuel: 10 });
  const seen: number[] = [];
  let count: WebAssembly.Global | undefined;
  const pd = load(out, 1000, 5, () => seen.push(count!.value as number));
  count = pd.exports.count as unknown as WebAssembly.Global;
  assert.throws(() => pd.exports.spin!(), /stopped after 5 preemptions/);
  assert.equal(pd.preempts(), 5);
  // Entry check 10 -> 9, then one check per loop header; fuel reaches -1 at the 10th header, before
  // the 10th increment. After each preempt (fuel = 1000), 1001 more headers.
  assert.deepEqual(seen, [9, 1010, 2011, 3012, 4013]);
});

test("the fuel global is exported, starts at the default, and the runtime can set it", () => {
  const out = instrumentPreemption(wat(SPIN));
  const pd = load(out, 3, 4);
  assert.equal(pd.fuel.value, DEFAULT_INITIAL_FUEL);
  pd.fuel.value = 0;
  assert.throws(() => pd.exports.spin!(), /stopped after 4/);
  // preempt returned 3 three times; the fourth call threw.
  assert.equal(pd.preempts(), 4);
  assert.ok(WebAssembly.Module.exports(new WebAssembly.Module(out)).some((e) => e.name === FUEL_EXPORT));
});

test("fuelPerCheck is subtracted at each check", () => {
  const out = instrumentPreemption(wat(SPIN), { initialFuel: 100, fuelPerCheck: 10 });
  const seen: number[] = [];
  let count: WebAssembly.Global | undefined;
  const pd = load(out, 1000, 3, () => seen.push(count!.value as number));
  count = pd.exports.count as unknown as WebAssembly.Global;
  assert.throws(() => pd.exports.spin!());
  // 100 -> 90 at entry, then 9 headers to 0 and the 10th to -10: 9 increments done.
  // After preempt (1000): 101 headers reach -10 again.
  assert.deepEqual(seen, [9, 110, 211]);
  assert.throws(() => instrumentPreemption(wat(SPIN), { fuelPerCheck: 0 }), RangeError);
  assert.throws(() => instrumentPreemption(wat(SPIN), { initialFuel: 2 ** 31 }), RangeError);
});

test("preempt returning 0 still lets the loop make progress (one iteration per call)", () => {
  const out = instrumentPreemption(wat(SPIN), { initialFuel: 0 });
  const seen: number[] = [];
  let count: WebAssembly.Global | undefined;
  const pd = load(out, 0, 4, () => seen.push(count!.value as number));
  count = pd.exports.count as unknown as WebAssembly.Global;
  assert.throws(() => pd.exports.spin!());
  assert.deepEqual(seen, [0, 0, 1, 2]);
});

// ---- nested loops and exact accounting ----

const NESTED = `(module
 (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $j i32) (local $s i32)
  (loop $outer
   (local.set $j (i32.const 0))
   (loop $inner
    (local.set $s (i32.add (local.get $s) (i32.mul (local.get $i) (local.get $j))))
    (br_if $inner (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $n))))
   (br_if $outer (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $s))
 (func (export "forever") (local $i i32)
  (loop $outer
   (local.set $i (i32.const 0))
   (loop $inner (br_if $inner (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 7))))
   (br $outer))))`;

test("nested loops: same result, one check per header execution plus one per call", () => {
  const src = wat(NESTED);
  const { wasm, stats } = instrumentPreemptionWithStats(src, { initialFuel: 1_000_000 });
  assert.deepEqual(stats, { functions: 2, entryChecks: 2, loopChecks: 4 });
  const pd = load(wasm);
  assert.equal(pd.exports.sum!(100), bare(src).sum!(100));
  assert.equal(pd.exports.sum!(100), 24502500);
  // Per call: 1 entry + 100 outer headers + 100 * 100 inner headers.
  assert.equal(pd.fuel.value, 1_000_000 - 2 * (1 + 100 + 10_000));
  assert.equal(pd.preempts(), 0);
});

test("nested loops where only the outer one is infinite are preempted", () => {
  const pd = load(instrumentPreemption(wat(NESTED), { initialFuel: 50 }), 100, 10);
  assert.throws(() => pd.exports.forever!(), /stopped after 10/);
});

test("results are unchanged when preemption happens in the middle of the computation", () => {
  const src = wat(NESTED);
  const pd = load(instrumentPreemption(src, { initialFuel: 3 }), 7);
  for (const n of [0, 1, 2, 13, 77]) assert.equal(pd.exports.sum!(n), bare(src).sum!(n), `sum(${n})`);
  // 1 + 7 + ... checks per call, about 6,200 in all: one preemption per 8.
  assert.ok(pd.preempts() > 700, `${pd.preempts()}`);
});

// ---- recursion ----

const RECURSION = `(module
 (func $fib (export "fib") (param i32) (result i32)
  (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
   (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1))) (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
 (func $ping (export "ping") (param i32) (result i32) (return_call $pong (i32.add (local.get 0) (i32.const 1))))
 (func $pong (param i32) (result i32) (return_call $ping (local.get 0))))`;

test("recursion without loops: results unchanged, function entries consume fuel", () => {
  const src = wat(RECURSION);
  const pd = load(instrumentPreemption(src, { initialFuel: 10 }), 100);
  assert.equal(pd.exports.fib!(20), 6765);
  assert.equal(bare(src).fib!(20), 6765);
  // fib(20) makes 21891 calls: about one preemption per 101 of them.
  assert.ok(pd.preempts() >= 21891 / 101 - 1 && pd.preempts() <= 21891 / 101 + 1, `${pd.preempts()}`);
});

test("infinite mutual tail recursion (no loop, no stack growth) is preempted", () => {
  const pd = load(instrumentPreemption(wat(RECURSION), { initialFuel: 10 }), 1000, 20);
  assert.throws(() => pd.exports.ping!(0), /stopped after 20/);
});

// ---- features ----

test("multi-value: a loop with parameters and two results (hand-assembled)", () => {
  // (func (param $n i32) (result i32 i32) (local $a i32) (local $b i32)
  //   i32.const 0  i32.const 0
  //   loop (param i32 i32) (result i32 i32)       ;; (i, sum) -> (i + 1, sum + i)
  //     local.set $b  local.set $a
  //     local.get $a i32.const 1 i32.add   local.get $b local.get $a i32.add
  //     local.get $a i32.const 1 i32.add  local.get $n  i32.lt_u  br_if 0
  //   end)
  const body = [
    ...vec([[2, I32]]),
    ...[0x41, 0, 0x41, 0, 0x03, 1],
    ...[0x21, 2, 0x21, 1],
    ...[0x20, 1, 0x41, 1, 0x6a, 0x20, 2, 0x20, 1, 0x6a],
    ...[0x20, 1, 0x41, 1, 0x6a, 0x20, 0, 0x49, 0x0d, 0],
    ...[0x0b, 0x0b],
  ];
  const src = module(
    section(
      1,
      vec([
        [0x60, 1, I32, 2, I32, I32],
        [0x60, 2, I32, I32, 2, I32, I32],
      ]),
    ),
    section(3, vec([[0]])),
    section(7, vec([[...str("f"), 0, 0]])),
    section(10, vec([[...leb(body.length), ...body]])),
  );
  assert.deepEqual(validateWasm(src), { ok: true });
  const pd = load(instrumentPreemption(src, { initialFuel: 5 }), 5);
  assert.deepEqual(pd.exports.f!(100), [100, 4950]);
  assert.deepEqual(pd.exports.f!(100), bare(src).f!(100));
  assert.ok(pd.preempts() >= 30);
});

test("multi-value results through a loop written in WAT", () => {
  const src = wat(`(module
   (func (export "divmod") (param $a i32) (param $b i32) (result i32 i32) (local $q i32)
    (block $done (loop $l
      (br_if $done (i32.lt_u (local.get $a) (local.get $b)))
      (local.set $a (i32.sub (local.get $a) (local.get $b)))
      (local.set $q (i32.add (local.get $q) (i32.const 1)))
      (br $l)))
    (tuple.make 2 (local.get $q) (local.get $a))))`);
  const pd = load(instrumentPreemption(src, { initialFuel: 2 }), 2);
  assert.deepEqual(pd.exports.divmod!(1000, 7), [142, 6]);
  assert.ok(pd.preempts() > 10);
});

test("bulk memory, SIMD and a loop with a value keep their results", () => {
  const src = wat(`(module
   (memory (export "memory") 1)
   (data $d "\\01\\02\\03\\04\\05\\06\\07\\08\\09\\0a\\0b\\0c\\0d\\0e\\0f\\10")
   (func (export "run") (param $n i32) (result i32) (local $i i32) (local $v v128)
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 4096))
    (loop $l
     (memory.init $d (i32.shl (local.get $i) (i32.const 4)) (i32.const 0) (i32.const 16))
     (memory.copy (i32.add (i32.const 2048) (i32.shl (local.get $i) (i32.const 4))) (i32.shl (local.get $i) (i32.const 4)) (i32.const 16))
     (local.set $v (i32x4.add (local.get $v) (v128.load offset=2048 (i32.shl (local.get $i) (i32.const 4)))))
     (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (data.drop $d)
    (i32.add (i32.add (i32x4.extract_lane 0 (local.get $v)) (i32x4.extract_lane 3 (local.get $v)))
      (loop $w (result i32) (br_if $w (i32.eqz (local.tee $i (i32.sub (local.get $i) (i32.const 1))))) (i32.const 5)))))`);
  const expected = bare(src).run!(64);
  const pd = load(instrumentPreemption(src, { initialFuel: 4 }), 4);
  assert.equal(pd.exports.run!(64), expected);
  assert.ok(pd.preempts() > 10);
});

test("reference types: tables, call_indirect through a second table, table.fill", () => {
  const src = wat(`(module
   (type $un (func (param i32) (result i32)))
   (table $t0 1 funcref)
   (table $t1 4 funcref)
   (table $ext 2 externref)
   (elem declare func $inc $dbl)
   (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
   (func $dbl (param i32) (result i32) (i32.shl (local.get 0) (i32.const 1)))
   (func (export "run") (param $n i32) (param $x externref) (result i32) (local $acc i32)
    (table.fill $t1 (i32.const 0) (ref.func $inc) (i32.const 4))
    (table.set $t1 (i32.const 3) (ref.func $dbl))
    (table.set $ext (i32.const 1) (local.get $x))
    (drop (table.grow $t1 (ref.null func) (i32.const 1)))
    (loop $l
     (local.set $acc (call_indirect $t1 (type $un) (local.get $acc) (i32.and (local.get $n) (i32.const 3))))
     (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (i32.add (local.get $acc)
     (i32.add (table.size $t1) (ref.is_null (table.get $ext (i32.const 1)))))))`);
  const run = (exports: Record<string, Fn>) => (exports.run as (n: number, x: unknown) => number)(50, null);
  const expected = run(bare(src));
  const pd = load(instrumentPreemption(src, { initialFuel: 3 }), 3);
  assert.equal(run(pd.exports), expected);
  assert.ok(pd.preempts() > 5);
});

test("legacy exception handling: a loop inside a catch", () => {
  const src = wat(`(module
   (tag $e (param i32))
   (func $thrower (param i32) (throw $e (local.get 0)))
   (func (export "run") (param $n i32) (result i32) (local $s i32) (local $k i32)
    (try (do (call $thrower (local.get $n)))
     (catch $e
      (local.set $k (pop i32))
      (loop $l
       (local.set $s (i32.add (local.get $s) (local.get $k)))
       (br_if $l (local.tee $k (i32.sub (local.get $k) (i32.const 1)))))))
    (local.get $s)))`);
  const pd = load(instrumentPreemption(src, { initialFuel: 3 }), 3);
  assert.equal(pd.exports.run!(100), 5050);
  assert.ok(pd.preempts() > 10);
});

test("a loop inside table.fill's operands (unreachable through Binaryen's API) is refused clearly", () => {
  const src = wat(`(module
   (table $t 4 funcref)
   (func $f (export "f")
    (table.fill $t (loop $l (result i32) (br_if $l (i32.const 0)) (i32.const 0)) (ref.null func) (i32.const 1))))`);
  assert.throws(
    () => instrumentPreemption(src),
    (e: unknown) =>
      e instanceof WasmInstrumentError &&
      /function \$?f: a loop nested inside the operands of table\.fill/.test(e.message),
  );
});

test("a module without loops, one without functions, and one that is empty", () => {
  const src = wat(`(module (func (export "k") (result i32) (i32.const 42)))`);
  const pd = load(instrumentPreemption(src, { initialFuel: 0 }), 9);
  assert.equal(pd.exports.k!(), 42);
  assert.equal(pd.preempts(), 1); // the entry check: 0 - 1 < 0
  assert.equal(pd.fuel.value, 9);
  const memOnly = instrumentPreemption(wat(`(module (memory (export "memory") 1))`));
  assert.deepEqual(
    WebAssembly.Module.exports(new WebAssembly.Module(memOnly)).map((e) => e.name),
    ["memory", FUEL_EXPORT],
  );
  const empty = instrumentPreemption(module());
  assert.deepEqual(validateWasm(empty), { ok: true });
});

test("checkLeafFunctions: false leaves entries of loop-free, call-free functions unchecked", () => {
  const src = wat(`(module
   (func $leaf (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))
   (func $caller (export "run") (param i32) (result i32) (call $leaf (local.get 0))))`);
  const spec = instrumentPreemptionWithStats(src).stats;
  const lean = instrumentPreemptionWithStats(src, { checkLeafFunctions: false });
  assert.equal(spec.entryChecks, 2);
  assert.equal(lean.stats.entryChecks, 1);
  const pd = load(lean.wasm);
  assert.equal(pd.exports.run!(5), 15);
  assert.equal(pd.fuel.value, DEFAULT_INITIAL_FUEL - 1);
});

// ---- imports, exports, names ----

test("imports and exports are preserved; capvisor.preempt and capvisor_fuel are added", () => {
  const src = wat(`(module
   (import "sel4" "syscall" (func $sys (param i32)))
   (import "env" "g" (global $g i32))
   (memory (export "memory") 1)
   (global $c (export "counter") (mut i32) (i32.const 0))
   (func (export "capvisor_start") (call $sys (i32.const -11)))
   (func (export "capvisor_abi_version") (result i32) (i32.add (global.get $g) (i32.const 1))))`);
  const out = instrumentPreemption(src);
  const before = new WebAssembly.Module(src);
  const after = new WebAssembly.Module(out);
  const key = (d: { name: string; kind: string; module?: string }) => `${d.module ?? ""}.${d.name}:${d.kind}`;
  assert.deepEqual(
    WebAssembly.Module.imports(after).map(key).sort(),
    [...WebAssembly.Module.imports(before).map(key), "capvisor.preempt:function"].sort(),
  );
  assert.deepEqual(
    WebAssembly.Module.exports(after).map(key).sort(),
    [...WebAssembly.Module.exports(before).map(key), `.${FUEL_EXPORT}:global`].sort(),
  );
  const calls: number[] = [];
  const inst = new WebAssembly.Instance(after, {
    sel4: { syscall: (n: number) => void calls.push(n) },
    env: { g: 41 },
    capvisor: { preempt: () => 1 },
  });
  (inst.exports.capvisor_start as () => void)();
  assert.deepEqual(calls, [-11]);
  assert.equal((inst.exports.capvisor_abi_version as () => number)(), 42);
});

test("an existing capvisor.preempt import is reused; a wrong one or a second pass is refused", () => {
  const src = wat(`(module
   (import "capvisor" "preempt" (func $mine (result i32)))
   (func (export "spin") (loop $l (br $l))))`);
  const out = instrumentPreemption(src, { initialFuel: 1 });
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(out));
  assert.equal(imports.length, 1);
  const pd = load(out, 10, 3);
  assert.throws(() => pd.exports.spin!(), /stopped after 3/);

  assert.throws(
    () => instrumentPreemption(out),
    (e: unknown) => e instanceof WasmInstrumentError && /already exports "capvisor_fuel"/.test(e.message),
  );
  const wrong = wat(`(module (import "capvisor" "preempt" (func (param i32))))`);
  assert.throws(
    () => instrumentPreemption(wrong),
    (e: unknown) => e instanceof WasmInstrumentError && /type other than \(\) -> i32/.test(e.message),
  );
});

test("function names survive (stack traces and fault reports keep them)", () => {
  const src = wat(`(module (func $my_named_function (export "boom") (unreachable)))`);
  const out = instrumentPreemption(src);
  assert.equal(WebAssembly.Module.customSections(new WebAssembly.Module(out), "name").length, 1);
  const pd = load(out);
  assert.throws(
    () => pd.exports.boom!(),
    (e: unknown) => e instanceof WebAssembly.RuntimeError && /my_named_function/.test(String(e.stack)),
  );
});

// ---- malformed input ----

test("malformed modules give an error that says what and where", () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array([1, 2, 3]), /too short.*3 bytes/],
    [new Uint8Array([0x00, 0x61, 0x73, 0x6e, 1, 0, 0, 0]), /magic word.*@\+0/],
    [new Uint8Array([0x00, 0x61, 0x73, 0x6d, 2, 0, 0, 0]), /version.*@\+4/],
    // A type section that claims 5 bytes but has 3.
    [module([0x01, 0x05, 0x01, 0x60, 0x00]), /section.*Type.*extends past end.*@\+8/],
    // () -> i32 whose body leaves nothing on the stack.
    [
      module(section(1, vec([[0x60, 0, 1, I32]])), section(3, vec([[0]])), section(10, vec([[2, 0, 0x0b]]))),
      /function #0.*failed.*expected 1 elements on the stack for fallthru, found 0 @\+\d+/,
    ],
  ];
  for (const [bytes, re] of cases) {
    const v = validateWasm(bytes);
    assert.equal(v.ok, false);
    if (!v.ok) assert.match(v.error, re);
    assert.throws(
      () => instrumentPreemption(bytes),
      (e: unknown) =>
        e instanceof WasmInstrumentError && /^invalid Wasm module: /.test(e.message) && re.test(e.message),
    );
  }
  assert.deepEqual(validateWasm(wat(SPIN)), { ok: true });
});

test("instrumented output validates and is deterministic", () => {
  const src = wat(NESTED);
  const a = instrumentPreemption(src);
  const b = instrumentPreemption(src);
  assert.deepEqual(validateWasm(a), { ok: true });
  assert.deepEqual(a, b);
});
