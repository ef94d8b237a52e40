/**
 * SPIN model checking of the cross-VM channel's publish-and-wake protocol (docs/vm-channel.md,
 * "Publishing and waking"; the model is src/verify/spin/vm-channel.pml, which says what it
 * abstracts). Each check generates the verifier (`spin -a`), compiles it with gcc and runs it,
 * in a fresh temporary directory that is always removed:
 *  - safety: gcc -DSAFETY -DBFS (breadth first, so a counterexample is a shortest one), pan
 *    checks the model's assertions (every record arrives once, in order, whole) and invalid end
 *    states (a thread blocked for ever: deadlock);
 *  - progress: the model's LTL claim `<> all received` with acceptance cycles and weak fairness
 *    (pan -a -f).
 * The verdict is PROVED (the search was exhaustive and found no error), COUNTEREXAMPLE (with the
 * trail replayed by `spin -t -p -g`, cut down to the steps that touch the protocol) or
 * INCOMPLETE (pan stopped early: depth or memory bound). Every gcc and pan run is bounded by
 * -DMEMLIM=1024 (MiB) and a time limit.
 *
 * Run: `node dist/src/verify/spin.js [--mutants] [--copying]`.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export type SpinProperty = "safety" | "progress";

export interface SpinCheck {
  name: string;
  /** What is checked, in words. */
  claim: string;
  property: SpinProperty;
  /** -D options for spin's preprocessor (model size, mutant). */
  defines: readonly string[];
  /**
   * For the largest models: depth-first search with -DCOLLAPSE state compression instead of
   * breadth-first (which keeps every state uncompressed), so it fits in -DMEMLIM.
   */
  compact?: boolean;
  /** The verdict this check is expected to have (the test asserts it). */
  expect: "PROVED" | "COUNTEREXAMPLE";
}

export interface SpinVerdict {
  name: string;
  claim: string;
  property: SpinProperty;
  verdict: "PROVED" | "COUNTEREXAMPLE" | "INCOMPLETE";
  expect: SpinCheck["expect"];
  /** pan's "errors: N". */
  errors: number;
  statesStored: number;
  transitions: number;
  depthReached: number;
  /** pan's own search time. */
  panSeconds: number;
  /** Wall time including spin -a and gcc. */
  ms: number;
  /** For COUNTEREXAMPLE: pan's error ("invalid end state", "acceptance cycle", "assertion violated ..."). */
  error?: string;
  /** For COUNTEREXAMPLE: the key steps of the trail, one line each, then the final state. */
  trail?: string[];
  /** For INCOMPLETE: why the search stopped. */
  incomplete?: string;
}

/** spin or gcc is not installed. */
export class SpinToolMissing extends Error {}

const MODEL_FILE = "vm-channel.pml";
/** The model as the checks run it: ring of 4 units, records of 1 or 2 units, 7 each way. */
const SIZE = ["CAP=4", "MAXLEN=2", "N=7"] as const;
const SIZE_WORDS = "a ring of 4 units each way, 7 records each way of 1 or 2 units (ring and counters wrap)";

export const CHANNEL_CHECKS: readonly SpinCheck[] = [
  {
    name: "vm-channel.safety",
    claim: `every interleaving of the VMM thread, the runtime PD thread and the kernel's signal/wait, ${SIZE_WORDS}: each consumer takes exactly records 1..N, in order and whole, and both threads finish (no deadlock)`,
    property: "safety",
    defines: SIZE,
    expect: "PROVED",
  },
  {
    name: "vm-channel.progress",
    claim: `same model, LTL <>(all N received both ways) under weak fairness: every record sent is eventually received`,
    property: "progress",
    defines: SIZE,
    expect: "PROVED",
  },
];

const mutant = (id: string, what: string, property: SpinProperty): SpinCheck => ({
  name: `vm-channel.mutant.${id.toLowerCase().replaceAll("_", "-")}.${property}`,
  claim: `broken protocol (${what}): the ${property} check must fail`,
  property,
  defines: [...SIZE, `MUTANT_${id}`],
  expect: "COUNTEREXAMPLE",
});

/** Variants that break one rule of the doc each; every one must give a counterexample. */
export const CHANNEL_MUTANTS: readonly SpinCheck[] = [
  mutant("NO_RECHECK", "producer sets waiting and sleeps without reading tail again", "safety"),
  mutant("NO_RECHECK", "producer sets waiting and sleeps without reading tail again", "progress"),
  mutant("NO_WAITING", "consumer never looks at waiting", "safety"),
  mutant("ONE_PER_WAKE", "consumer takes one record per wake, counting notifications", "safety"),
  mutant("HEAD_FIRST", "producer stores head before the record's bytes", "safety"),
];

/**
 * The same protocol when an end is a Wasm PD, whose view of a shared region is a copy kept
 * coherent only at kernel entry and exit (DESIGN.md decision 5, src/platform/pd-worker.ts).
 * As documented, its "read tail again" reads the copy it already had: a lost wake-up
 * (COUNTEREXAMPLE). Signalling the channel between setting waiting and re-reading tail (a kernel
 * entry and exit) repairs it, and is still correct with shared memory (the last two checks).
 */
export const COPYING_CHECKS: readonly SpinCheck[] = [
  {
    name: "vm-channel.copying-pd.safety",
    claim: `ends that see the region as decision-5 copies (published at kernel entry, read back at exit), protocol as documented, ${SIZE_WORDS}: deadlock expected`,
    property: "safety",
    defines: [...SIZE, "COPY_COHERENT"],
    expect: "COUNTEREXAMPLE",
  },
  {
    name: "vm-channel.copying-pd.signal-before-recheck.safety",
    claim:
      "copying ends, producer signals the channel after setting waiting and before reading tail again: no loss, duplication or deadlock",
    property: "safety",
    defines: [...SIZE, "COPY_COHERENT", "SIGNAL_BEFORE_RECHECK"],
    expect: "PROVED",
  },
  {
    name: "vm-channel.copying-pd.signal-before-recheck.preempted.safety",
    claim:
      "copying ends with that fix, also preempted (publish and read back) at any loop head any number of times: no loss, duplication or deadlock",
    property: "safety",
    defines: [...SIZE, "COPY_COHERENT", "SIGNAL_BEFORE_RECHECK", "PREEMPT_SYNC"],
    compact: true,
    expect: "PROVED",
  },
  {
    name: "vm-channel.copying-pd.signal-before-recheck.progress",
    claim: "copying ends with that fix: every record sent is eventually received (weak fairness)",
    property: "progress",
    defines: [...SIZE, "COPY_COHERENT", "SIGNAL_BEFORE_RECHECK"],
    expect: "PROVED",
  },
  {
    name: "vm-channel.signal-before-recheck.safety",
    claim: "shared memory, producer signals before reading tail again: no loss, duplication or deadlock",
    property: "safety",
    defines: [...SIZE, "SIGNAL_BEFORE_RECHECK"],
    expect: "PROVED",
  },
  {
    name: "vm-channel.signal-before-recheck.progress",
    claim:
      "shared memory, producer signals before reading tail again: every record sent is eventually received",
    property: "progress",
    defines: [...SIZE, "SIGNAL_BEFORE_RECHECK"],
    expect: "PROVED",
  },
];

/** The .pml file: next to this module in src/, or src/verify/spin/ from dist/src/verify/. */
export function channelModelPath(): string {
  for (const rel of [`./spin/${MODEL_FILE}`, `../../../src/verify/spin/${MODEL_FILE}`]) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error(`cannot find ${MODEL_FILE} (expected in src/verify/spin/)`);
}

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === "ENOENT") {
        reject(new SpinToolMissing(`${cmd} not found: install spin and gcc with sh scripts/setup.sh`));
        return;
      }
      // pan exits non-zero when it finds an error: its output is the answer, not a failure.
      if (err && cmd !== "./pan") {
        reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stderr}${stdout}`.trim()));
        return;
      }
      if (err?.killed) {
        reject(new Error(`${cmd} ${args.join(" ")} killed after ${timeoutMs} ms`));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}

/** pan's summary numbers; counts may be printed as 1.5e+07. */
export function parsePan(out: string): {
  errors: number;
  statesStored: number;
  transitions: number;
  depthReached: number;
  panSeconds: number;
  error?: string;
  incomplete?: string;
} {
  const num = (re: RegExp): number => {
    const m = re.exec(out);
    if (m === null) throw new Error(`pan output has no ${re.source}:\n${out.slice(0, 2000)}`);
    return Number(m[1]);
  };
  const r: ReturnType<typeof parsePan> = {
    errors: num(/errors: (\d+)/),
    statesStored: num(/([\d.e+]+) states, stored/),
    transitions: num(/([\d.e+]+) transitions \(= /),
    depthReached: num(/depth reached (\d+)/),
    panSeconds: num(/elapsed time ([\d.e+]+) seconds/),
  };
  const e = /^pan:\d+: (.*?)(?: \(at depth \d+\))?$/m.exec(out);
  if (e !== null) r.error = e[1]!;
  // A search cut short proves nothing: pan says so in one of these ways.
  const cut = [
    /error: max search depth too small/,
    /search not completed/i,
    /pan: reached -DMEMLIM bound/,
    /pan: out of memory/,
  ].find((re) => re.test(out));
  if (cut !== undefined) r.incomplete = cut.exec(out)![0];
  return r;
}

const PID_NAMES = ["init", "VMM", "runtime"] as const;
const RING_NAMES = ["req", "resp"] as const;

/**
 * The trail (`spin -t -p -g` output) cut down to the steps that read or write the protocol's
 * shared words or make a system call, with in/out/other replaced by the ring and end they stand
 * for in that process (pid 1 runs End(0), the VMM: out = req, in = resp), then the final state.
 */
export function renderTrail(text: string, modelSource: string, maxSteps = 40): string[] {
  const srcLines = modelSource.split("\n");
  // Lines of `inline wait`: a thread whose last position is there is blocked in seL4_Wait.
  const waitFrom = srcLines.findIndex((l) => l.startsWith("inline wait(")) + 1;
  const waitTo = waitFrom + srcLines.slice(waitFrom).findIndex((l) => l.startsWith("}")) + 1;
  const steps: string[] = [];
  const values = new Map<string, string>();
  let pending: { pid: number; stmt: string; step: string } | null = null;
  const flush = () => {
    if (pending === null) return;
    const line = describe(pending.pid, pending.stmt, values);
    if (line !== null) steps.push(`${pending.step.padStart(4)} ${PID_NAMES[pending.pid] ?? "?"}: ${line}`);
    pending = null;
  };
  const lines = text.split("\n");
  let i = 0;
  for (; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith("#processes:")) break;
    const step = /^\s*(\d+):\s+proc\s+(\d+) \([^)]*\) \S+:\d+ \(state \d+\)\s+\[(.*)\]\s*$/.exec(l);
    const val = /^\t\t(\w+\[\d+\]|\w+) = (-?\d+)$/.exec(l);
    if (step !== null) {
      flush();
      pending = { step: step[1]!, pid: Number(step[2]), stmt: step[3]! };
    } else if (val !== null) values.set(val[1]!, val[2]!);
    else if (l.includes("START OF CYCLE")) {
      flush();
      steps.push("     ---- the rest repeats for ever (acceptance cycle) ----");
    } else if (/^spin: .*(Error|failed assertion)/.test(l)) {
      flush();
      steps.push(`     ${l}`);
    }
  }
  flush();
  const out: string[] = [];
  if (steps.length > maxSteps) out.push(`     (${steps.length - maxSteps} earlier key steps left out)`);
  out.push(...steps.slice(-maxSteps));
  // Final state: the globals, then where each thread stands.
  const finals = new Map<string, string>();
  for (; i < lines.length; i++) {
    const l = lines[i]!;
    const val = /^\t\t(\w+)\[(\d+)\] = (-?\d+)$/.exec(l);
    if (val !== null) {
      const arr = finals.get(val[1]!);
      finals.set(val[1]!, arr === undefined ? val[3]! : `${arr},${val[3]}`);
      continue;
    }
    const at = /^\s*\d+:\s+proc\s+(\d+) \([^)]*\) \S+:(\d+) \(state \d+\)(.*)$/.exec(l);
    if (at !== null && at[1] !== "0") {
      const n = Number(at[2]);
      const where = at[3]!.includes("valid end state")
        ? "finished"
        : waitFrom > 0 && n >= waitFrom && n <= waitTo
          ? "blocked in seL4_Wait"
          : `at line ${n}: ${(srcLines[n - 1] ?? "").trim()}`;
      out.push(`     final: ${PID_NAMES[Number(at[1])] ?? "?"} ${where}`);
    }
  }
  const shown = ["head", "tail", "waiting", "ntfn", "rx"]
    .filter((k) => finals.has(k))
    .map((k) => `${k}=[${finals.get(k)}]`);
  if (shown.length > 0) out.push(`     final: ${shown.join(" ")} (index 0 = req ring / VMM end)`);
  return out;
}

/**
 * One trail statement in words, or null for steps that do not matter to the protocol. With
 * COPY_COHERENT the statements name the end's copies (vhead[((me*2)+in)] ...): they are read as
 * the word they copy and marked "[copy]"; the kernel's publish/read-back assignments are left out.
 */
function describe(pid: number, stmt: string, values: Map<string, string>): string | null {
  if (pid === 0) return null;
  const copyRe = /v(head|tail|waiting)\[\(\(me\*2\)\+(\w+)\)\]/g;
  const copying = copyRe.test(stmt) || stmt.startsWith("vdata[");
  if (
    /^(head|tail|waiting|data)\[\w+\] = v/.test(stmt) ||
    /^s?v\w+\[\(\(me\*2\)\+i\)\] = /.test(stmt) ||
    /^vdata\[.*\] = data\[/.test(stmt)
  )
    return null;
  stmt = stmt.replace(copyRe, "$1[$2]").replace(/^vdata\[/, "data[");
  const me = pid - 1;
  const out = RING_NAMES[me]!;
  const inn = RING_NAMES[1 - me]!;
  const other = PID_NAMES[2 - me]!;
  const v = (name: string, ring: number) =>
    values.get(copying ? `v${name}[${me * 2 + ring}]` : `${name}[${ring}]`) ?? "?";
  const said = sayShared(stmt, me, out, inn, v);
  if (said !== null) return copying ? `${said} [copy]` : said;
  if (stmt.startsWith("rx[in] = ")) return `took record ${values.get(`rx[${1 - me}]`) ?? "?"} of ${inn}`;
  if (stmt === "ntfn[other] = 1") return `seL4_Signal -> ${other}`;
  if (stmt === "((ntfn[me]==1))") return "seL4_Wait returns (bit was set)";
  return null;
}

function sayShared(
  stmt: string,
  me: number,
  out: string,
  inn: string,
  v: (name: string, ring: number) => string,
): string | null {
  if (stmt === "((head[in]==tail[in]))") return `sees ${inn} ring empty`;
  if (stmt === "((head[in]!=tail[in]))") return `sees a record in ${inn} ring`;
  if (stmt.startsWith("tail[in] = ")) return `consumed: tail[${inn}] = ${v("tail", 1 - me)}`;
  if (stmt === "((waiting[in]==1))") return `sees waiting[${inn}] == 1`;
  if (stmt === "((waiting[in]==0))") return `sees waiting[${inn}] == 0`;
  if (stmt.startsWith("waiting[in] = 0")) return `waiting[${inn}] = 0`;
  if (stmt.startsWith("waiting[out] = 1")) return `too full: waiting[${out}] = 1`;
  if (stmt.includes("tail[out]") && stmt.endsWith("<n))")) return `sees too little space in ${out} ring`;
  if (stmt.startsWith("data[") && stmt.endsWith("= next"))
    return `writes a unit of its next record into ${out}`;
  if (stmt.startsWith("head[out] = ")) return `published: head[${out}] = ${v("head", me)}`;
  return null;
}

const TMP_PREFIX = "capvisor-spin-";

/**
 * Remove the temporary directories of runs whose process is gone (killed before its finally
 * ran). Directories are named capvisor-spin-<pid>-XXXXXX, so a live run's are left alone.
 */
function sweepStaleDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    const m = new RegExp(`^${TMP_PREFIX}(\\d+)-`).exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue; // alive (or not ours to signal): leave it
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") continue;
    }
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

interface RunOptions {
  /** Per spin/gcc/pan run (default 120 s). */
  timeoutMs?: number;
  /** pan -m: the depth bound; a search that reaches it is INCOMPLETE (default 20000). */
  maxDepth?: number;
}

async function checkOne(check: SpinCheck, modelPath: string, opts: RunOptions): Promise<SpinVerdict> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const m = `-m${opts.maxDepth ?? 20_000}`;
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), `${TMP_PREFIX}${process.pid}-`));
  try {
    const source = readFileSync(modelPath, "utf8");
    writeFileSync(join(dir, MODEL_FILE), source);
    const d = check.defines.map((x) => `-D${x}`);
    await run("spin", ["-a", ...d, MODEL_FILE], dir, timeoutMs);
    const safety = check.property === "safety";
    const cflags = [
      ...(safety ? ["-DSAFETY", "-DNOCLAIM"] : []),
      ...(check.compact ? ["-DCOLLAPSE"] : safety ? ["-DBFS"] : []),
    ];
    await run("gcc", ["-O2", "-DMEMLIM=1024", ...cflags, "-o", "pan", "pan.c"], dir, timeoutMs);
    // -n: no unreached-code listing; -m: depth bound well above the model's (~900 with a claim).
    const panArgs = safety ? ["-n", m] : ["-n", m, "-a", "-f"];
    const { stdout } = await run("./pan", panArgs, dir, timeoutMs);
    const p = parsePan(stdout);
    const base = {
      name: check.name,
      claim: check.claim,
      property: check.property,
      expect: check.expect,
      errors: p.errors,
      statesStored: p.statesStored,
      transitions: p.transitions,
      depthReached: p.depthReached,
      panSeconds: p.panSeconds,
    };
    if (p.errors > 0) {
      const t = await run("spin", ["-t", "-p", "-g", ...d, MODEL_FILE], dir, timeoutMs);
      return {
        ...base,
        verdict: "COUNTEREXAMPLE",
        error: p.error ?? "error",
        trail: renderTrail(t.stdout, source),
        ms: performance.now() - t0,
      };
    }
    if (p.incomplete !== undefined)
      return { ...base, verdict: "INCOMPLETE", incomplete: p.incomplete, ms: performance.now() - t0 };
    return { ...base, verdict: "PROVED", ms: performance.now() - t0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Run the checks (by default the real protocol's two), at most two at a time (gcc and pan are
 * single-threaded). Rejects with SpinToolMissing when spin or gcc is not installed.
 */
export async function checkChannelProtocol(
  checks: readonly SpinCheck[] = CHANNEL_CHECKS,
  opts: RunOptions & { parallel?: number; onVerdict?: (v: SpinVerdict) => void } = {},
): Promise<SpinVerdict[]> {
  const modelPath = channelModelPath();
  sweepStaleDirs();
  const results: SpinVerdict[] = new Array(checks.length);
  let next = 0;
  const worker = async () => {
    while (next < checks.length) {
      const k = next++;
      results[k] = await checkOne(checks[k]!, modelPath, opts);
      opts.onVerdict?.(results[k]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.parallel ?? 2, checks.length) }, worker));
  return results;
}

export function formatSpinVerdict(v: SpinVerdict): string {
  const verdict = v.verdict === "INCOMPLETE" ? `INCOMPLETE (${v.incomplete})` : v.verdict;
  const stats = `${v.statesStored} states stored, depth ${v.depthReached}, pan ${v.panSeconds.toFixed(2)} s, ${(v.ms / 1000).toFixed(2)} s in all`;
  const head = `${verdict.padEnd(14)} ${v.name} (${stats})`;
  if (v.verdict !== "COUNTEREXAMPLE") return head;
  return [`${head}\n  ${v.error}:`, ...(v.trail ?? [])].join("\n");
}

/** CLI: `node dist/src/verify/spin.js [--mutants] [--copying]`; exit 0 when every verdict is the expected one. */
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const checks = [
    ...CHANNEL_CHECKS,
    ...(process.argv.includes("--mutants") ? CHANNEL_MUTANTS : []),
    ...(process.argv.includes("--copying") ? COPYING_CHECKS : []),
  ];
  try {
    const verdicts = await checkChannelProtocol(checks, {
      onVerdict: (v) => console.log(formatSpinVerdict(v)),
    });
    const unexpected = verdicts.filter((v) => v.verdict !== v.expect);
    console.log(
      `\n${verdicts.length} checks: ${verdicts.length - unexpected.length} as expected${unexpected.length > 0 ? `, NOT as expected: ${unexpected.map((v) => v.name).join(", ")}` : ""}`,
    );
    process.exitCode = unexpected.length === 0 ? 0 : 1;
  } catch (e) {
    if (!(e instanceof SpinToolMissing)) throw e;
    console.error(`capvisor verify: ${e.message}`);
    process.exitCode = 2;
  }
}
