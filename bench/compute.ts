/**
 * `npm run bench:compute [-- --quick]`: one CPU-bound C program (bench/native/compute.h) run
 *   - natively (gcc -O2),
 *   - under bare V8 with node:wasi (clang-16 --target=wasm32-wasi -O2, wasi-libc),
 *   - as a capvisor PD (examples/bench/compute_pd.c, scripts/build-c-pd.sh, booted with
 *     bootSystem), timed between the printing syscalls around each run (a PD has no clock),
 *   - and the same PD module outside capvisor, with and without the preemption instrumentation,
 *     with stub imports: the instrumentation's own cost.
 * Every Wasm figure runs in a child Node process with the same V8 flags (--no-liftoff: DESIGN.md
 * notes default tiering is slower and noisy), so PD workers and bare V8 share them (V8 flags are
 * per process; workers inherit them). Each variant runs warm-up + several runs in one process;
 * the median of the runs after the warm-up is printed. Never passes or fails on a time.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { instrumentPreemption } from "../src/pd/wasm/instrument.js";
import { clockNs } from "../src/platform/channel.js";
import { bootSystem } from "../src/system/boot.js";
import { BUILD, buildExamples, gccBuild, median, printMachine, quick, ROOT, setupBench } from "./common.js";

const REPS = quick ? 4 : 300;
const RUNS = quick ? 3 : 6; // the first is the warm-up
const V8_FLAGS = ["--no-liftoff"];
const SYS_DEBUG_PUT_CHAR = -12;
const FUEL = 20_000;

interface RunResult {
  ns: number[];
  checksums: string[];
}

/** What a child prints on its last line. */
const RESULT = "RESULT ";

// ------------------------------------------------------------------ children (one variant each)

/** node:wasi on the wasm32-wasi build: the program times its own runs (CLOCK_MONOTONIC). */
async function childWasi(file: string): Promise<void> {
  // Imported here so the parent does not print node:wasi's experimental-feature warning.
  const { WASI } = await import("node:wasi");
  const wasi = new WASI({
    version: "preview1",
    args: ["compute", String(REPS), String(RUNS)],
    env: {},
    returnOnExit: true,
  });
  const mod = await WebAssembly.compile(readFileSync(file));
  const inst = await WebAssembly.instantiate(mod, wasi.getImportObject() as WebAssembly.Imports);
  // stdout goes to fd 1 of this process; the parent parses the "run" lines.
  wasi.start(inst);
}

/**
 * Times the runs of a PD that prints one line per run: run i lasts from the last print syscall
 * of line i-1 to the first print syscall of line i.
 */
class LineTimer {
  private last = 0;
  private needFirst = true;
  private start = 0;
  readonly ns: number[] = [];
  readonly lines: string[] = [];
  syscall(ns: number): void {
    if (this.needFirst) {
      if (this.ns.length < RUNS) this.ns.push(ns - this.start);
      this.needFirst = false;
    }
    this.last = ns;
  }
  line(text: string): void {
    this.lines.push(text);
    this.start = this.last;
    this.needFirst = true;
  }
  begin(ns: number): void {
    this.start = ns;
  }
}

/** The PD module with stub imports: DebugPutChar prints, any other syscall ends the program. */
function childBarePd(file: string, instrumented: boolean): RunResult {
  let bytes: Uint8Array = readFileSync(file);
  if (instrumented) bytes = instrumentPreemption(bytes);
  const timer = new LineTimer();
  class Stop extends Error {}
  let mem32 = new Uint32Array(0);
  let regs = 0;
  let text = "";
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    sel4: {
      syscall: (sysno: number) => {
        timer.syscall(clockNs());
        if (sysno !== SYS_DEBUG_PUT_CHAR) throw new Stop();
        const c = mem32[regs >>> 2]! & 0xff;
        if (c === 10) {
          timer.line(text);
          text = "";
        } else text += String.fromCharCode(c);
      },
    },
    capvisor: { preempt: () => FUEL },
  });
  const ex = inst.exports;
  mem32 = new Uint32Array((ex.memory as WebAssembly.Memory).buffer);
  regs = (ex.capvisor_regs as () => number)();
  const fuel = ex.capvisor_fuel;
  if (fuel instanceof WebAssembly.Global) fuel.value = FUEL;
  timer.begin(clockNs());
  try {
    (ex.capvisor_start as () => void)();
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
  }
  return { ns: timer.ns, checksums: timer.lines.map((l) => l.replace("checksum=", "")) };
}

/** The PD on capvisor: boot the system, time runs with the syscall probe, stop at the last line. */
async function childPd(system: string): Promise<RunResult> {
  const timer = new LineTimer();
  const events: string[] = [];
  const sys = await bootSystem(system, {
    cores: 2,
    onLine: (pd, line) => {
      if (pd === "compute") timer.line(line);
    },
    onEvent: (pd, m) => events.push(`${pd}: ${m}`),
    platform: {
      fuel: FUEL,
      onSyscall: (pd, _sysno, ns) => {
        if (pd === "compute") timer.syscall(ns);
      },
    },
  });
  // The PD starts right after boot; its first run is the warm-up, so its start need not be exact.
  timer.begin(clockNs());
  while (timer.lines.length < RUNS && events.length === 0) await new Promise((r) => setTimeout(r, 5));
  await sys.stop();
  if (events.length > 0) throw new Error(events.join("; "));
  return { ns: timer.ns, checksums: timer.lines.map((l) => l.replace("checksum=", "")) };
}

async function child(kind: string, file: string): Promise<void> {
  let r: RunResult;
  if (kind === "wasi") {
    await childWasi(file);
    process.exit(0);
  } else if (kind === "bare") r = childBarePd(file, false);
  else if (kind === "bare-instrumented") r = childBarePd(file, true);
  else if (kind === "pd") r = await childPd(file);
  else throw new Error(`unknown child kind ${kind}`);
  console.log(`${RESULT}${JSON.stringify(r)}`);
  process.exit(0);
}

// ------------------------------------------------------------------ the parent

/** Parse "run i checksum=x ns=y" lines (native and WASI) or a RESULT line (the PD variants). */
function parse(stdout: string): RunResult {
  const res = stdout.split("\n").find((l) => l.startsWith(RESULT));
  if (res !== undefined) return JSON.parse(res.slice(RESULT.length)) as RunResult;
  const out: RunResult = { ns: [], checksums: [] };
  for (const m of stdout.matchAll(/^run \d+ checksum=([0-9a-f]+) ns=(\d+)$/gm)) {
    out.checksums.push(m[1]!);
    out.ns.push(Number(m[2]));
  }
  return out;
}

function runVariant(cmd: string, args: string[]): RunResult | { error: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 1 << 24, timeout: 600_000 });
  if (r.error !== undefined) return { error: `${cmd} could not run: ${r.error.message}` };
  if (r.status !== 0)
    return { error: `exited with ${r.status}: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}` };
  const p = parse(r.stdout);
  if (p.ns.length < RUNS)
    return { error: `printed ${p.ns.length} of ${RUNS} runs: ${r.stdout.slice(0, 300)}` };
  return p;
}

function buildWasm(): { wasi: string | Error; pd: string | Error; system: string } {
  const wasi = join(BUILD, "compute-wasi.wasm");
  const pd = join(BUILD, "compute_pd.wasm");
  const system = join(BUILD, "compute.system");
  const clang = spawnSync(
    "clang-16",
    ["--target=wasm32-wasi", "-O2", join(ROOT, "bench/native/compute.c"), "-o", wasi],
    { encoding: "utf8" },
  );
  const pdBuild = spawnSync(
    "sh",
    [
      join(ROOT, "scripts/build-c-pd.sh"),
      `-DREPS=${REPS}`,
      `-DRUNS=${RUNS}`,
      pd,
      join(ROOT, "examples/bench/compute_pd.c"),
    ],
    { encoding: "utf8" },
  );
  writeFileSync(
    system,
    `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by bench/compute.ts: one PD running the compute kernel (REPS=${REPS}, RUNS=${RUNS}). -->
<system>
    <protection_domain name="compute" priority="100" budget="1000" period="1000">
        <program_image path="compute_pd.wasm" />
    </protection_domain>
</system>
`,
  );
  return {
    wasi:
      clang.status === 0 ? wasi : new Error(`clang-16 --target=wasm32-wasi failed: ${clang.stderr.trim()}`),
    pd: pdBuild.status === 0 ? pd : new Error(`build-c-pd.sh failed: ${pdBuild.stderr.trim()}`),
    system,
  };
}

async function main(): Promise<void> {
  printMachine("bench:compute — one CPU-bound C program: native, bare V8 (node:wasi), capvisor PD");
  const setupError = setupBench();
  buildExamples();
  const self = join(ROOT, "dist/bench/compute.js");
  console.log(
    `program: bench/native/compute.h (128x128 integer matrix product + CRC-32) x ${REPS} per run; ` +
      `${RUNS} runs per variant, the first a warm-up; Wasm variants: node ${V8_FLAGS.join(" ")}\n`,
  );
  const built = buildWasm();
  const rows: { name: string; r: RunResult | { error: string } }[] = [];
  const variant = (name: string, f: () => RunResult | { error: string }): void => {
    process.stdout.write(`  measuring ${name} ...\n`);
    rows.push({ name, r: f() });
  };
  const node = (flags: string[], kind: string, file: string | Error) => (): RunResult | { error: string } =>
    file instanceof Error
      ? { error: file.message }
      : runVariant(process.execPath, [
          ...flags,
          "--no-warnings",
          self,
          `--child=${kind}`,
          file,
          ...(quick ? ["--quick"] : []),
        ]);

  variant("native (gcc -O2)", () => {
    if (setupError !== null) return { error: `gcc not available: ${setupError}` };
    const bin = gccBuild("compute");
    return bin instanceof Error ? { error: bin.message } : runVariant(bin, [String(REPS), String(RUNS)]);
  });
  variant(`bare V8, node:wasi (${V8_FLAGS.join(" ")})`, node(V8_FLAGS, "wasi", built.wasi));
  variant("bare V8, node:wasi (default tiering)", node([], "wasi", built.wasi));
  variant(
    "capvisor PD (instrumented, bootSystem)",
    node(V8_FLAGS, "pd", built.pd instanceof Error ? built.pd : built.system),
  );
  variant("PD module, bare V8 stubs, not instrumented", node(V8_FLAGS, "bare", built.pd));
  variant("PD module, bare V8 stubs, instrumented", node(V8_FLAGS, "bare-instrumented", built.pd));

  console.log("");
  const med = (r: RunResult | { error: string }): number | null =>
    "error" in r ? null : median(r.ns.slice(1));
  const base = med(rows[1]!.r);
  const nativeMs = med(rows[0]!.r);
  const w = Math.max(...rows.map((x) => x.name.length));
  console.log(
    `${"variant".padEnd(w)}  ${"median".padStart(10)}  ${"vs native".padStart(9)}  ${"vs bare V8".padStart(10)}  checksum`,
  );
  const sums = new Set<string>();
  for (const { name, r } of rows) {
    if ("error" in r) {
      console.log(
        `${name.padEnd(w)}  ${"-".padStart(10)}  ${"-".padStart(9)}  ${"-".padStart(10)}  NOT RUN: ${r.error}`,
      );
      continue;
    }
    const m = median(r.ns.slice(1));
    for (const c of r.checksums) sums.add(c);
    const rel = (b: number | null): string => (b === null ? "?" : `${(m / b).toFixed(2)}x`);
    console.log(
      `${name.padEnd(w)}  ${`${(m / 1e6).toFixed(1)} ms`.padStart(10)}  ${rel(nativeMs).padStart(9)}  ${rel(base).padStart(10)}  ${[...new Set(r.checksums)].join(",")}`,
    );
  }
  console.log(
    sums.size === 1
      ? "checksums: all variants agree"
      : `checksums DIFFER across variants: ${[...sums].join(", ")}`,
  );

  const pd = med(rows[3]!.r);
  const bare = med(rows[4]!.r);
  const instr = med(rows[5]!.r);
  console.log("\ngoals of issue 3 (reported, not asserted):");
  if (pd === null || base === null)
    console.log("  PD within 10% of bare V8: cannot tell (a figure is missing)");
  else {
    const over = (pd / base - 1) * 100;
    console.log(
      `  PD within 10% of bare V8: ${over >= 0 ? "+" : ""}${over.toFixed(1)}%: ${over <= 10 ? "MET" : "MISSED"}`,
    );
    if (over > 10 && bare !== null && instr !== null) {
      const instrCost = (instr / bare - 1) * 100;
      const rest = (pd / instr - 1) * 100;
      console.log(
        [
          `  where the time goes: the preemption instrumentation costs ${instrCost.toFixed(1)}% on its own (same module,`,
          `  same harness, with vs without); the PD runtime adds ${rest.toFixed(1)}% over the instrumented module run bare`,
          "  (at every budget expiry, 1 ms here, the worker stops in preempt() and blocks in Atomics.wait until",
          "  the kernel in the main thread has taken the timer interrupt and resumed it; on a loaded host each",
          "  such round trip costs tens to hundreds of µs; profile with node --cpu-prof on the --child=pd run).",
          "  Fix for that part: let a worker whose thread stays current (nothing else runnable on its core at",
          "  its priority) renew its budget without the main-thread round trip, or take ticks in the worker.",
          "  The instrumentation decrements a global at every loop header and function entry: in this kernel's",
          "  innermost loop that is a load, a subtract, a compare and a store per iteration. What would fix it:",
          "  instrument only outer loops whose bodies are not provably bounded, keep fuel in a local spilled",
          "  only at calls, or count down by the loop's trip count once per outer iteration.",
        ].join("\n"),
      );
    }
  }
  if (bare !== null && instr !== null)
    console.log(
      `  instrumentation cost: ${((instr / bare - 1) * 100).toFixed(1)}% (instrumented vs not, same module, bare V8 stubs)`,
    );
}

const childArg = process.argv.find((a) => a.startsWith("--child="));
if (childArg !== undefined) {
  const file = process.argv[process.argv.indexOf(childArg) + 1]!;
  await child(childArg.slice("--child=".length), file);
} else await main();
