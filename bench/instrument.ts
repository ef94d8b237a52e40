/**
 * `npm run bench:instrument`: the cost of preemption instrumentation (src/pd/wasm/instrument.ts).
 *
 * 1. Run time. CPU-bound kernels written in WAT (turned into binaries by Binaryen), each run bare
 *    and instrumented in this one process: warm-up runs first (so V8 has tiered up to TurboFan),
 *    then the median of several timed runs, alternating variants so drift hits all of them alike.
 *    The instrumented runs use the runtime's real shape: `capvisor.preempt` is a JS import that
 *    returns the fuel again (100,000), so preemption calls are included.
 *    Variants: "spec" checks at every function entry and loop header (docs/wasm-abi.md);
 *    "round-trip" is the module read and written back by Binaryen with no checks (what the
 *    re-encoding alone does: V8's code for it can differ, either way, by a few percent);
 *    "no-leaf" skips the entry check of functions without loops or calls.
 * 2. Load time. Milliseconds to instrument a generated ~1 MB module (and the time to load
 *    Binaryen itself, paid once per process).
 * A C kernel compiled with clang is run too when `clang-16` or `clang` is on the PATH.
 * Prints numbers; never passes or fails.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const tImport = performance.now();
const { default: binaryen } = await import("binaryen");
const importMs = performance.now() - tImport;
const tImport2 = performance.now();
const { instrumentPreemption, instrumentPreemptionWithStats } = await import("../src/pd/wasm/instrument.js");
const importMs2 = performance.now() - tImport2;

const quick = process.argv.includes("--quick");
const RUNS = quick ? 3 : 7;
const WARMUP = quick ? 1 : 3;

function wat2wasm(text: string): Uint8Array {
  const m = binaryen.parseText(text);
  try {
    m.setFeatures(
      binaryen.Features.MVP |
        binaryen.Features.SIMD128 |
        binaryen.Features.BulkMemory |
        binaryen.Features.BulkMemoryOpt,
    );
    if (!m.validate()) throw new Error("benchmark module invalid");
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

/** Read and written back by Binaryen without checks: what re-encoding alone does to the code. */
function roundTrip(wasm: Uint8Array): Uint8Array {
  const m = binaryen.readBinary(wasm);
  try {
    m.setFeatures(binaryen.Features.All & ~binaryen.Features.GC);
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

// ---- kernels ----

/** FNV-1a-like checksum of a 64 KiB buffer, `reps` times: one tight loop with a load per byte. */
const CHECKSUM = `(module
 (memory (export "memory") 1)
 (func $fill (param i32)
  (loop $l (i32.store8 (local.get 0) (i32.mul (local.get 0) (i32.const 31)))
   (br_if $l (i32.lt_u (local.tee 0 (i32.add (local.get 0) (i32.const 1))) (i32.const 65536)))))
 (func (export "run") (param $reps i32) (result i32)
  (local $h i32) (local $i i32)
  (call $fill (i32.const 0))
  (local.set $h (i32.const 0x811c9dc5))
  (loop $rep
   (local.set $i (i32.const 0))
   (loop $byte
    (local.set $h (i32.mul (i32.xor (local.get $h) (i32.load8_u (local.get $i))) (i32.const 0x01000193)))
    (br_if $byte (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 65536))))
   (br_if $rep (local.tee $reps (i32.sub (local.get $reps) (i32.const 1)))))
  (local.get $h)))`;

/** n x n f64 matrix multiply, three nested loops (n = 96). */
const MATMUL = `(module
 (memory 3)
 (func (export "run") (param $reps i32) (result i32)
  (local $i i32) (local $j i32) (local $k i32) (local $s f64) (local $n i32) (local $acc f64)
  (local.set $n (i32.const 96))
  (local.set $i (i32.const 0))
  (loop $init
   (f64.store (i32.shl (local.get $i) (i32.const 3)) (f64.convert_i32_u (i32.rem_u (local.get $i) (i32.const 7))))
   (br_if $init (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 9216))))
  (loop $rep
   (local.set $i (i32.const 0))
   (loop $li
    (local.set $j (i32.const 0))
    (loop $lj
     (local.set $s (f64.const 0))
     (local.set $k (i32.const 0))
     (loop $lk
      (local.set $s (f64.add (local.get $s)
        (f64.mul
         (f64.load (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $k)) (i32.const 3)))
         (f64.load (i32.shl (i32.add (i32.mul (local.get $k) (local.get $n)) (local.get $j)) (i32.const 3))))))
      (br_if $lk (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $n))))
     (f64.store offset=73728 (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 3)) (local.get $s))
     (local.set $acc (f64.add (local.get $acc) (local.get $s)))
     (br_if $lj (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $n))))
    (br_if $li (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
   (br_if $rep (local.tee $reps (i32.sub (local.get $reps) (i32.const 1)))))
  (i32.trunc_f64_u (f64.div (local.get $acc) (f64.const 1000)))))`;

/** Recursive Fibonacci: all calls, no loops (function-entry checks only). */
const FIB = `(module
 (func $fib (param i32) (result i32)
  (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
   (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1))) (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
 (func (export "run") (param $n i32) (result i32) (call $fib (local.get $n))))`;

/** A loop calling a small leaf helper (xorshift step) each iteration. */
const HELPER = `(module
 (func $step (param i32) (result i32)
  (local.set 0 (i32.xor (local.get 0) (i32.shl (local.get 0) (i32.const 13))))
  (local.set 0 (i32.xor (local.get 0) (i32.shr_u (local.get 0) (i32.const 17))))
  (i32.xor (local.get 0) (i32.shl (local.get 0) (i32.const 5))))
 (func (export "run") (param $n i32) (result i32) (local $x i32) (local.set $x (i32.const 1))
  (loop $l (local.set $x (call $step (local.get $x)))
   (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
  (local.get $x)))`;

/** SIMD: sum of a 64 KiB buffer as i32x4 lanes, `reps` times. */
const SIMD = `(module
 (memory 1)
 (func (export "run") (param $reps i32) (result i32)
  (local $i i32) (local $v v128)
  (loop $rep
   (local.set $i (i32.const 0))
   (loop $l
    (local.set $v (i32x4.add (local.get $v) (v128.load (local.get $i))))
    (v128.store (local.get $i) (i32x4.add (v128.load (local.get $i)) (i32x4.splat (local.get $reps))))
    (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 16))) (i32.const 65536))))
   (br_if $rep (local.tee $reps (i32.sub (local.get $reps) (i32.const 1)))))
  (i32.add (i32x4.extract_lane 0 (local.get $v)) (i32x4.extract_lane 3 (local.get $v)))))`;

interface Kernel {
  name: string;
  wasm: Uint8Array;
  arg: number;
  /** Has a leaf function (no loops, no calls), so the "no-leaf" variant differs from "spec". */
  leaf?: boolean;
}

// ---- running ----

type Run = (arg: number) => number;
let preemptCalls = 0;
function load(wasm: Uint8Array): Run {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(wasm), {
    capvisor: {
      preempt: () => {
        preemptCalls++;
        return 100_000;
      },
    },
  });
  return inst.exports.run as Run;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function bench(k: Kernel): void {
  const { wasm, stats: spec } = instrumentPreemptionWithStats(k.wasm);
  const variants: [string, Uint8Array][] = [
    ["bare", k.wasm],
    ["spec", wasm],
    ["round-trip", roundTrip(k.wasm)],
  ];
  if (k.leaf) variants.push(["no-leaf", instrumentPreemption(k.wasm, { checkLeafFunctions: false })]);
  const runs = variants.map(([name, w]) => ({ name, run: load(w), ms: [] as number[], result: 0, calls: 0 }));
  for (let i = 0; i < WARMUP; i++) for (const r of runs) r.run(k.arg);
  for (let i = 0; i < RUNS; i++) {
    for (const r of runs) {
      const c0 = preemptCalls;
      const t = performance.now();
      r.result = r.run(k.arg);
      r.ms.push(performance.now() - t);
      r.calls = preemptCalls - c0;
    }
  }
  const base = median(runs[0]!.ms);
  const cells = runs.map((r) => {
    const m = median(r.ms);
    const ratio = r.name === "bare" ? "" : ` x${(m / base).toFixed(3)}`;
    return `${r.name} ${m.toFixed(1)} ms${ratio}`;
  });
  const same = runs.every((r) => r.result === runs[0]!.result) ? "results equal" : "RESULTS DIFFER";
  const calls = runs[1]!.calls;
  console.log(
    `  ${k.name.padEnd(10)} ${cells.join(" | ")}  (${same}; spec: ${spec.loopChecks} loop + ${spec.entryChecks} entry checks, ${calls} preempt calls/run)`,
  );
}

// ---- load-time cost on a ~1 MB module ----

function bigModule(targetBytes: number): Uint8Array {
  // Many distinct functions in the shape compilers emit: nested loops, calls, locals, memory.
  const fns: string[] = [];
  const body = (
    i: number,
  ) => `(func $f${i} (param $a i32) (param $b i32) (result i32) (local $i i32) (local $s i32)
  (local.set $i (local.get $a))
  (block $out (loop $l
    (br_if $out (i32.ge_u (local.get $i) (local.get $b)))
    (local.set $s (i32.add (local.get $s) (i32.load offset=${i % 4096} (i32.and (local.get $i) (i32.const 0xfff0)))))
    (if (i32.and (local.get $i) (i32.const ${(i % 31) + 1}))
      (then (local.set $s (i32.xor (local.get $s) (call $f${i > 0 ? i - 1 : 0} (local.get $i) (i32.const ${i % 7})))))
      (else (local.set $s (i32.rotl (local.get $s) (i32.const ${i % 13})))))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $l)))
  (local.get $s))`;
  // ~170 bytes of binary per function: size the count from a probe.
  const probe = wat2wasm(`(module (memory 1) ${Array.from({ length: 200 }, (_, i) => body(i)).join("\n")})`);
  const n = Math.ceil((targetBytes / probe.length) * 200);
  for (let i = 0; i < n; i++) fns.push(body(i));
  return wat2wasm(`(module (memory 1) ${fns.join("\n")} (export "f0" (func $f0)))`);
}

function loadTime(): void {
  const big = bigModule(1 << 20);
  const times: number[] = [];
  const t0 = performance.now();
  let { wasm: out, stats: s } = instrumentPreemptionWithStats(big);
  const coldMs = performance.now() - t0;
  for (let i = 0; i < (quick ? 2 : 5); i++) {
    const t = performance.now();
    ({ wasm: out, stats: s } = instrumentPreemptionWithStats(big));
    times.push(performance.now() - t);
  }
  const t1 = performance.now();
  WebAssembly.validate(big);
  const validateMs = performance.now() - t1;
  console.log(
    `  ${(big.length / 1024).toFixed(0)} KiB, ${s.functions} functions, ${s.loopChecks} loops: ` +
      `instrument ${median(times).toFixed(0)} ms median (first call ${coldMs.toFixed(0)} ms), ` +
      `output ${(out.length / 1024).toFixed(0)} KiB (+${(((out.length - big.length) / big.length) * 100).toFixed(1)}%); ` +
      `V8 validate alone ${validateMs.toFixed(1)} ms`,
  );
  console.log(
    `  loading Binaryen (once per process): ${importMs.toFixed(0)} ms (instrument.ts after it: ${importMs2.toFixed(0)} ms)`,
  );
}

// ---- an optional C kernel ----

function cKernel(): Kernel | string {
  const which = (c: string) => {
    try {
      return execFileSync("which", [c], { encoding: "utf8" }).trim();
    } catch {
      return "";
    }
  };
  const clang = which("clang-16") || which("clang");
  if (!clang) return "skipped: no clang-16 or clang on the PATH";
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "capvisor-bench-"));
  const src = path.join(dir, "k.c");
  const out = path.join(dir, "k.wasm");
  // Sieve of Eratosthenes and a CRC32 over its result: branchy loops over memory.
  fs.writeFileSync(
    src,
    `static unsigned char sieve[1 << 20];
unsigned run(unsigned reps) {
  unsigned crc = 0xffffffffu, count = 0;
  while (reps--) {
    for (unsigned i = 0; i < sizeof sieve; i++) sieve[i] = 1;
    for (unsigned i = 2; i * i < sizeof sieve; i++)
      if (sieve[i]) for (unsigned j = i * i; j < sizeof sieve; j += i) sieve[j] = 0;
    for (unsigned i = 0; i < sizeof sieve; i++) {
      count += sieve[i];
      crc ^= sieve[i];
      for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
  }
  return ~crc + count;
}
`,
  );
  try {
    execFileSync(clang, [
      "--target=wasm32",
      "-nostdlib",
      "-O2",
      "-mbulk-memory",
      "-Wl,--no-entry",
      "-Wl,--export=run",
      "-o",
      out,
      src,
    ]);
  } catch (e) {
    return `skipped: ${clang} failed: ${e instanceof Error ? e.message.split("\n")[0] : e}`;
  }
  return { name: "c-sieve", wasm: new Uint8Array(fs.readFileSync(out)), arg: 3 };
}

// ---- main ----

console.log(
  `capvisor bench:instrument (node ${process.version}, ${os.cpus().length} cpus, median of ${RUNS})`,
);
console.log("run time, bare vs instrumented (ratio = instrumented / bare):");
const kernels: Kernel[] = [
  { name: "checksum", wasm: wat2wasm(CHECKSUM), arg: quick ? 200 : 1000 },
  { name: "matmul", wasm: wat2wasm(MATMUL), arg: quick ? 10 : 60 },
  { name: "simd", wasm: wat2wasm(SIMD), arg: quick ? 1000 : 6000 },
  { name: "fib", wasm: wat2wasm(FIB), arg: quick ? 27 : 31 },
  { name: "helper", wasm: wat2wasm(HELPER), arg: quick ? 10_000_000 : 50_000_000, leaf: true },
];
const c = cKernel();
if (typeof c === "string") console.log(`  c-sieve    ${c}`);
else kernels.push(c);
for (const k of kernels) bench(k);
console.log("load time:");
loadTime();
