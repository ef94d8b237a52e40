/**
 * Helpers shared by bench/ipc.ts, bench/rt.ts and bench/compute.ts: the machine line every
 * benchmark prints first, percentiles, the comparators' toolchain (scripts/setup-bench.sh),
 * native builds into the git-ignored build/bench/, and the example PDs (scripts/build-examples.sh).
 * Nothing here judges a figure: the benchmarks print numbers and never fail on a time.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Native comparators and generated systems go here (build/ is git-ignored). */
export const BUILD = join(ROOT, "build/bench");

export const quick = process.argv.includes("--quick");

/** The machine, Node and V8 versions, and the mode: the first lines of every benchmark. */
export function printMachine(title: string): void {
  const cpus = os.cpus();
  console.log(title);
  console.log(
    `machine: ${cpus[0]?.model.trim() ?? "unknown CPU"}, ${cpus.length} core(s), ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
  );
  console.log(
    `node ${process.version} (V8 ${process.versions.v8}), ${os.type()} ${os.release()}; mode: ${quick ? "quick (--quick: fewer samples, figures are indicative only)" : "full"}`,
  );
}

/** The q-quantile (0..1) of ascending-sorted values (nearest rank). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function sortNumbers(values: number[]): Float64Array {
  return Float64Array.from(values).sort();
}

export function median(values: number[]): number {
  return quantile(sortNumbers(values), 0.5);
}

/** Nanoseconds as a short human figure: "850 ns", "12.3 µs", "4.56 ms". */
export function fmtNs(ns: number): string {
  if (!Number.isFinite(ns)) return "n/a";
  if (ns < 1000) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)} µs`;
  return `${(ns / 1e6).toFixed(2)} ms`;
}

/**
 * Make sure gcc and cyclictest are there (scripts/setup-bench.sh is quiet and idempotent).
 * Returns null when they are, or why not, for the benchmark to print next to the comparator.
 */
export function setupBench(): string | null {
  const r = spawnSync("sh", [join(ROOT, "scripts/setup-bench.sh")], { encoding: "utf8" });
  if (r.status === 0) return null;
  return (r.stderr || r.stdout || `scripts/setup-bench.sh exited with ${r.status}`).trim();
}

/** Build the example PDs, the benchmark ones included (clang-16; quiet when up to date). */
export function buildExamples(): void {
  execFileSync("sh", [join(ROOT, "scripts/build-examples.sh")], { stdio: ["ignore", "ignore", "inherit"] });
}

/**
 * Compile bench/native/<name>.c with gcc -O2 into build/bench/<name>. Returns the binary's
 * path, or an Error saying why it could not be built.
 */
export function gccBuild(name: string, extra: string[] = []): string | Error {
  mkdirSync(BUILD, { recursive: true });
  const out = join(BUILD, name);
  const r = spawnSync("gcc", ["-O2", "-Wall", join(ROOT, "bench/native", `${name}.c`), "-o", out, ...extra], {
    encoding: "utf8",
  });
  if (r.error !== undefined) return new Error(`gcc could not run: ${r.error.message}`);
  if (r.status !== 0) return new Error(`gcc failed: ${r.stderr.trim()}`);
  return out;
}

/** `name=value` fields of a comparator's one-line output. */
export function fields(line: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of line.trim().split(/\s+/)) {
    const eq = part.indexOf("=");
    if (eq > 0) m.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return m;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function mean(values: number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return values.length === 0 ? Number.NaN : s / values.length;
}
