/**
 * WasmEdge's command line as capvisor commands: `run`, `validate`, `parse`.
 *
 * The behaviour follows WasmEdge's driver (lib/driver/runtimeTool.cpp and friends): options come
 * before the module, everything after it is the guest's arguments (or, in reactor mode, the
 * function and its arguments); a module that cannot be loaded, validated or instantiated exits 1
 * after an `[error]` report of what and where; a run that traps, runs out of time or gas exits
 * 134 (WasmEdge returns 128 + SIGABRT when execution is aborted); otherwise the exit code is the
 * guest's own (proc_exit, 0 when `_start` returns). Reactor results go to stdout one per line;
 * logs, errors and statistics go to stderr.
 */
import { readFileSync, statSync } from "node:fs";
import { basename, extname, resolve } from "node:path";
import { defaultCache, type ModuleFacts, sha256 } from "./cache.js";
import { describeModule, functionTypes, type ParsedModule, parseWasm, WasmParseError } from "./parse.js";
import { errorHead, formatValue, logLine, offsetLine, parseArg, quoted } from "./report.js";
import type { Preopen, RunOptions, RunResult, StdinSource } from "./types.js";
import { limitMemory, MemoryLimitError } from "./wasi/module.js";

/** What a command writes and returns; the real process streams unless a test substitutes them. */
export interface CommandIO {
  stdout: (s: string | Uint8Array) => void;
  stderr: (s: string) => void;
  /** What the guest's fd 0 reads, as it arrives; none: fd 0 is at its end at once. */
  stdin?: StdinSource;
}

const processIO: CommandIO = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  // A getter: process.stdin is made only when a run asks for it. It is handed over as a stream,
  // pipe or terminal alike, and read only when the guest reads fd 0 (wasi/stdin.ts), so an
  // interactive application reads each line as it is typed or written, as under wasmedge.
  get stdin() {
    return process.stdin;
  },
};

/** WasmEdge's exit code when execution is aborted (trap, interrupted, out of gas): 128 + SIGABRT. */
export const EXIT_ABORTED = 134;

export const RUN_USAGE = `usage: capvisor run [--dir guest:host | --dir host]... [--env K=V]... [--reactor]
                    [--time-limit MS] [--gas-limit N] [--memory-page-limit N]
                    [--enable-time-measuring] [--enable-gas-measuring]
                    [--enable-instruction-count] [--enable-all-statistics]
                    app.wasm [function | args...]`;

export interface RunCommandOptions {
  file: string;
  args: string[];
  reactor: boolean;
  dirs: Preopen[];
  env: [string, string][];
  timeLimitMs?: number;
  gasLimit?: number;
  memoryPageLimit?: number;
  time: boolean;
  gas: boolean;
  instructions: boolean;
}

/** A command line that cannot be understood. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** `--dir guest:host[:readonly]`, or `--dir host` meaning the same path in the guest (as WasmEdge). */
export function parseDir(spec: string): Preopen {
  const i = spec.indexOf(":");
  if (i < 0) return { guest: spec, host: spec };
  let host = spec.slice(i + 1);
  let readOnly = false;
  if (host.endsWith(":readonly")) {
    host = host.slice(0, -":readonly".length);
    readOnly = true;
  }
  const guest = spec.slice(0, i) || "/";
  if (host === "") throw new UsageError(`--dir '${spec}' names no host directory`);
  return readOnly ? { guest, host, readOnly } : { guest, host };
}

const FLAGS = [
  "reactor",
  "enable-time-measuring",
  "enable-gas-measuring",
  "enable-instruction-count",
  "enable-all-statistics",
] as const;
const VALUED = ["dir", "env", "time-limit", "gas-limit", "memory-page-limit"] as const;

/** Parses `run`'s arguments; throws UsageError. */
export function parseRunArgs(argv: string[]): RunCommandOptions {
  const o: RunCommandOptions = {
    file: "",
    args: [],
    reactor: false,
    dirs: [],
    env: [],
    time: false,
    gas: false,
    instructions: false,
  };
  const integer = (name: string, raw: string, max: number): number => {
    const v = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(v) || v > max)
      throw new UsageError(`--${name} needs an integer from 0 to ${max} (got '${raw}')`);
    return v;
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("--")) break;
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if ((FLAGS as readonly string[]).includes(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      if (name === "reactor") o.reactor = true;
      else if (name === "enable-time-measuring") o.time = true;
      else if (name === "enable-gas-measuring") o.gas = true;
      else if (name === "enable-instruction-count") o.instructions = true;
      else o.time = o.gas = o.instructions = true;
      continue;
    }
    if (!(VALUED as readonly string[]).includes(name)) throw new UsageError(`unknown option '${a}'`);
    const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (name === "dir") o.dirs.push(parseDir(value));
    else if (name === "env") {
      const k = value.indexOf("=");
      o.env.push(k < 0 ? [value, ""] : [value.slice(0, k), value.slice(k + 1)]);
    } else if (name === "time-limit") o.timeLimitMs = integer(name, value, 2 ** 53 - 1);
    else if (name === "gas-limit") o.gasLimit = integer(name, value, 2 ** 53 - 1);
    else o.memoryPageLimit = integer(name, value, 65536);
  }
  const file = argv[i];
  if (file === undefined) throw new UsageError("no Wasm file given");
  o.file = file;
  o.args = argv.slice(i + 1);
  // WasmEdge: a gas limit turns cost measuring on, which also prints the gas used.
  if (o.gasLimit !== undefined) o.gas = true;
  return o;
}

// ---- loading and validation, shared by the three commands ----

type Loaded =
  | { ok: true; bytes: Uint8Array; module: ParsedModule; path: string; sha: string; facts: ModuleFacts }
  | { ok: false };

/**
 * Reads and structurally parses a module, reporting failures as WasmEdge's loader does. The parse
 * is kept in the module cache by the bytes' hash (cache.ts, ModuleFacts): hashing costs a fraction
 * of parsing, and a process that starts the same module again (the runtime PD) skips the parse.
 */
function load(file: string, io: CommandIO): Loaded {
  const path = resolve(file);
  let bytes: Uint8Array;
  try {
    if (!statSync(path).isFile()) throw new Error("not a file");
    bytes = readFileSync(path);
  } catch {
    io.stderr(logLine("error", errorHead("loading", "invalid path", 0x100)));
    io.stderr(logLine("error", `    File name: ${quoted(path)}`));
    return { ok: false };
  }
  const sha = sha256(bytes);
  const facts = defaultCache().facts(sha);
  try {
    facts.parsed ??= parseWasm(bytes);
    return { ok: true, bytes, module: facts.parsed, path, sha, facts };
  } catch (e) {
    if (!(e instanceof WasmParseError)) throw e;
    io.stderr(logLine("error", errorHead("loading", e.message.replace(/ @\+.*$/, ""), e.code)));
    io.stderr(logLine("error", offsetLine(e.offset)));
    io.stderr(logLine("error", `    At AST node: ${e.node}`));
    io.stderr(logLine("error", `    File name: ${quoted(path)}`));
    return { ok: false };
  }
}

/** V8's validation messages, sorted into WasmEdge's validation error codes where one fits. */
const V8_ERRORS: [RegExp, number, string][] = [
  [/elements on the stack|type error|expected type|type mismatch|got \w+\)/i, 0x202, "type mismatch"],
  [/invalid branch depth|label/i, 0x203, "unknown label"],
  [/invalid local index/i, 0x204, "unknown local"],
  [/signature index|invalid signature/i, 0x206, "unknown type"],
  [/function index/i, 0x207, "unknown function"],
  [/table index/i, 0x208, "unknown table"],
  [/memory index|memory instruction with no memory/i, 0x209, "unknown memory"],
  [/global index/i, 0x20a, "unknown global"],
  [/duplicate export/i, 0x210, "duplicate export name"],
  [/immutable global/i, 0x211, "global is immutable"],
  [/alignment/i, 0x201, "alignment must not be larger than natural"],
  [/start function/i, 0x219, "start function"],
];

/**
 * Validates with V8, the engine that runs the module; reports WasmEdge-style. Bytes that V8
 * validated once are not validated again (ModuleFacts.valid, keyed by their hash).
 */
function validate(loaded: Extract<Loaded, { ok: true }>, io: CommandIO): boolean {
  if (loaded.facts.valid) return true;
  if (WebAssembly.validate(loaded.bytes)) {
    loaded.facts.valid = true;
    return true;
  }
  let msg = "rejected by V8";
  try {
    new WebAssembly.Module(loaded.bytes);
  } catch (e) {
    msg = String(e instanceof Error ? e.message : e).replace(/^WebAssembly\.Module\(\): /, "");
  }
  const at = /@\+(\d+)\s*$/.exec(msg);
  const fn = /^Compiling function #(\d+)(?::"([^"]*)")? failed: /.exec(msg);
  const detail = msg.replace(/ @\+\d+\s*$/, "").replace(/^Compiling function #\d+(:"[^"]*")? failed: /, "");
  const known = V8_ERRORS.find(([re]) => re.test(detail));
  io.stderr(logLine("error", errorHead("validation", known ? known[2] : detail, known?.[1])));
  if (known) io.stderr(logLine("error", `    ${detail}`));
  if (fn) {
    const index = Number(fn[1]);
    const name = fn[2] ?? loaded.module.functionNames.get(index);
    io.stderr(logLine("error", `    In function: #${index}${name ? ` ${quoted(name)}` : ""}`));
  }
  if (at) io.stderr(logLine("error", offsetLine(Number(at[1]))));
  io.stderr(logLine("error", `    At AST node: ${fn ? "code segment" : "module"}`));
  io.stderr(logLine("error", `    File name: ${quoted(loaded.path)}`));
  return false;
}

// ---- the commands ----

/** `capvisor validate app.wasm`: exit 0 and "Validation succeeded." when valid, else 1. */
export function validateCommand(argv: string[], io: CommandIO = processIO): number {
  const file = singleFile("validate", argv, io);
  if (file === undefined) return 1;
  const loaded = load(file, io);
  if (!loaded.ok || !validate(loaded, io)) return 1;
  io.stderr(logLine("info", "Validation succeeded."));
  return 0;
}

/** `capvisor parse app.wasm`: the module's sections on stdout, without validating it. */
export function parseCommand(argv: string[], io: CommandIO = processIO): number {
  const file = singleFile("parse", argv, io);
  if (file === undefined) return 1;
  const loaded = load(file, io);
  if (!loaded.ok) {
    io.stderr(logLine("error", "Failed to parse WASM module."));
    return 1;
  }
  io.stdout(describeModule(loaded.module, basename(loaded.path)));
  return 0;
}

function singleFile(cmd: string, argv: string[], io: CommandIO): string | undefined {
  const files = argv.filter((a) => a !== "--");
  if (files.length === 1 && !files[0]!.startsWith("--")) return files[0];
  io.stderr(
    `capvisor ${cmd}: ${files.length === 0 ? "no Wasm file given" : `expected one Wasm file, got '${argv.join(" ")}'`}\nusage: capvisor ${cmd} app.wasm\n`,
  );
  return undefined;
}

/** The runner (src/wasmedge/runner.ts) as this command calls it. */
export type RunWasi = (wasm: Uint8Array, opts: RunOptions) => RunResult | Promise<RunResult>;

async function loadRunner(): Promise<RunWasi> {
  // Resolved at run time, so the CLI builds while the runner is written alongside it.
  const spec = "./runner.js";
  const mod = (await import(spec)) as { runWasi?: RunWasi };
  if (typeof mod.runWasi !== "function") throw new Error("src/wasmedge/runner.ts exports no runWasi");
  return mod.runWasi;
}

/**
 * How a run that stopped early is reported: the runner names the failure with WasmEdge's error
 * names (its ErrCode enum); the phase decides the exit code. Failures before the guest runs
 * (instantiation) exit 1 like WasmEdge's load/validate/instantiate failures; failures while it
 * runs (traps, time and gas limits) exit 134, WasmEdge's 128 + SIGABRT for aborted execution.
 */
const FAILURES: Record<string, [phase: string, code: number | undefined, message: string | undefined]> = {
  Interrupted: ["execution", 0x007, "execution interrupted"],
  CostLimitExceeded: ["execution", 0x003, "cost limit exceeded"],
  FuncNotFound: ["wasmedge runtime", 0x005, "wasm function not found"],
  FuncSigMismatch: ["execution", 0x403, "function signature mismatch"],
  DivideByZero: ["execution", 0x404, "integer divide by zero"],
  IntegerOverflow: ["execution", 0x405, "integer overflow"],
  InvalidConvToInt: ["execution", 0x406, "invalid conversion to integer"],
  TableOutOfBounds: ["execution", 0x407, "out of bounds table access"],
  MemoryOutOfBounds: ["execution", 0x408, "out of bounds memory access"],
  Unreachable: ["execution", 0x40a, "unreachable"],
  UninitializedElement: ["execution", 0x40b, "uninitialized element"],
  UndefinedElement: ["execution", 0x40c, "undefined element"],
  IndirectCallTypeMismatch: ["execution", 0x40d, "indirect call type mismatch"],
  HostFuncError: ["execution", 0x40e, "host function failed"],
  HostError: ["execution", 0x40e, "host function failed"],
  CallStackExhausted: ["execution", undefined, "call stack exhausted"],
  Trap: ["execution", undefined, undefined],
  ValidationFailed: ["validation", undefined, undefined],
  UnknownImport: ["instantiation", 0x302, "unknown import"],
  IncompatibleImportType: ["instantiation", 0x301, "incompatible import type"],
  MemoryLimitExceeded: ["instantiation", undefined, undefined],
};

/** The report lines and exit code for a run that stopped early. */
function failureReport(
  trap: { kind: string; message: string },
  fn: string,
): { lines: string[]; exit: number } {
  const [phase, code, message] = FAILURES[trap.kind] ?? ["execution", undefined, undefined];
  const lines: string[] = [];
  if (trap.kind === "CostLimitExceeded") lines.push("Cost exceeded limit. Force terminate the execution.");
  lines.push(errorHead(phase, message ?? trap.message, code));
  // The runner's own words, when they say more than WasmEdge's fixed text.
  if (message !== undefined && trap.message && trap.message !== message) lines.push(`    ${trap.message}`);
  const running = phase === "execution" || phase === "wasmedge runtime";
  if (running) lines.push(`    When executing function name: ${quoted(fn)}`);
  return { lines, exit: running ? EXIT_ABORTED : 1 };
}

/** `capvisor run ...`: returns the exit code. */
export async function runCommand(
  argv: string[],
  io: CommandIO = processIO,
  runner?: RunWasi,
): Promise<number> {
  let o: RunCommandOptions;
  try {
    o = parseRunArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr(`capvisor run: ${e.message}\n${RUN_USAGE}\n`);
    return 1;
  }
  const loaded = load(o.file, io);
  if (!loaded.ok || !validate(loaded, io)) return 1;

  // As WasmEdge 0.14: without a `_start () -> ()` the module runs in reactor mode anyway, and a
  // `_start` of another type becomes the function to call.
  loaded.facts.funcTypes ??= functionTypes(loaded.module);
  const types = loaded.facts.funcTypes;
  const start = loaded.module.exports.find((e) => e.kind === "func" && e.name === "_start");
  const startType = start && types[start.index];
  const validStart =
    startType !== undefined && startType.params.length === 0 && startType.results.length === 0;
  if (start && !validStart) o.args.unshift("_start");
  if (!validStart) o.reactor = true;

  let reactor: RunOptions["reactor"];
  let resultTypes: string[] = [];
  if (o.reactor) {
    const fn = o.args[0];
    if (fn === undefined) {
      io.stderr("A function name is required when reactor mode is enabled.\n");
      return 1;
    }
    const exp = loaded.module.exports.find((e) => e.kind === "func" && e.name === fn);
    const type = exp && types[exp.index];
    const fail = (what: string, code: number): number => {
      io.stderr(
        logLine(
          "error",
          errorHead(what === "wasm function not found" ? "wasmedge runtime" : "execution", what, code),
        ),
      );
      io.stderr(logLine("error", `    When executing function name: ${quoted(fn)}`));
      return EXIT_ABORTED;
    };
    if (type === undefined) return fail("wasm function not found", 0x005);
    const given = o.args.slice(1);
    // WasmEdge passes what it is given; a count that differs from the type fails the call.
    if (given.length !== type.params.length) return fail("function signature mismatch", 0x403);
    const values: (number | bigint)[] = [];
    for (let i = 0; i < given.length; i++) {
      const v = parseArg(type.params[i]!, given[i]!);
      if (v === undefined) {
        io.stderr(`capvisor run: argument ${i + 1} of ${fn} must be ${type.params[i]} (got '${given[i]}')\n`);
        return 1;
      }
      values.push(v);
    }
    reactor = { fn, args: values };
    resultTypes = type.results;
  }

  // Instrument exactly when the run meters, as the runner does: an unmetered run keeps V8's
  // code as fast as bare V8's.
  const metering = (o.timeLimitMs ?? 0) > 0 || o.gasLimit !== undefined || o.gas || o.instructions;
  const pages = o.memoryPageLimit;
  let prepared: RunOptions["prepared"];
  try {
    prepared = (
      await defaultCache().prepare(loaded.bytes, {
        sha256: loaded.sha,
        instrument: metering,
        ...(pages === undefined
          ? {}
          : { transform: { name: `m${pages}`, apply: (b) => limitMemory(b, pages) } }),
      })
    ).prepared;
  } catch (e) {
    if (e instanceof MemoryLimitError) {
      io.stderr(logLine("error", errorHead("instantiation", e.message)));
      io.stderr(logLine("error", `    File name: ${quoted(loaded.path)}`));
      return 1;
    }
    // Valid for V8 but not for Binaryen (a feature it lacks): report it as WasmEdge reports a load failure.
    io.stderr(logLine("error", errorHead("loading", e instanceof Error ? e.message : String(e))));
    io.stderr(logLine("error", `    File name: ${quoted(loaded.path)}`));
    return 1;
  }

  const measure = { time: o.time, gas: o.gas, instructions: o.instructions };
  const limits: NonNullable<RunOptions["limits"]> = {};
  if (o.timeLimitMs !== undefined && o.timeLimitMs > 0) limits.timeLimitMs = o.timeLimitMs;
  if (o.gasLimit !== undefined) limits.gasLimit = o.gasLimit;
  if (o.memoryPageLimit !== undefined) limits.memoryPageLimit = o.memoryPageLimit;
  const opts: RunOptions = {
    // argv[0] is the file's name with a .wasm extension, as WasmEdge gives it.
    args: [`${basename(loaded.path, extname(loaded.path))}.wasm`, ...(o.reactor ? [] : o.args)],
    env: o.env,
    preopens: o.dirs,
    stdout: (b) => io.stdout(b),
    stderr: (b) => io.stderr(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8")),
    limits,
    measure,
    prepared,
  };
  if (reactor) opts.reactor = reactor;
  const stdin = io.stdin;
  if (stdin !== undefined) opts.stdin = stdin;

  const run = runner ?? (await loadRunner());
  const r = await run(loaded.bytes, opts);

  let exit = reactor ? 0 : r.exitCode;
  if (r.trap) {
    const f = failureReport(r.trap, reactor ? reactor.fn : "_start");
    for (const l of f.lines) io.stderr(logLine("error", l));
    exit = f.exit;
  } else if (reactor && r.returns) {
    io.stdout(r.returns.map((v, i) => `${formatValue(resultTypes[i] ?? "", v)}\n`).join(""));
  }
  printStats(r, measure, io);
  return exit;
}

/** WasmEdge's statistics block (include/common/statistics.h, dumpToLog), to stderr. */
function printStats(
  r: RunResult,
  m: { time: boolean; gas: boolean; instructions: boolean },
  io: CommandIO,
): void {
  if (!m.time && !m.gas && !m.instructions) return;
  const s = r.stats;
  const line = (t: string): void => io.stderr(logLine("info", t));
  line("====================  Statistics  ====================");
  const wasmNs = Math.max(0, s.totalNs - s.hostNs);
  if (m.time) {
    line(` Total execution time: ${Math.round(s.totalNs)} ns`);
    line(` Wasm instructions execution time: ${Math.round(wasmNs)} ns`);
    line(` Host functions execution time: ${Math.round(s.hostNs)} ns`);
  }
  const count = s.instructions ?? s.gas ?? 0;
  if (m.instructions) line(` Executed wasm instructions count: ${count}`);
  if (m.gas) line(` Gas costs: ${s.gas ?? 0}`);
  if (m.instructions && m.time)
    line(` Instructions per second: ${wasmNs > 0 ? Math.floor(count / (wasmNs / 1e9)) : 0}`);
  line("=======================   End   ======================");
}
