/**
 * Runs one WASI application, as `wasmedge [--reactor] app.wasm ...` does: instantiates it with
 * the WASI preview1 host, runs `_start` (command mode) or `_initialize` then the named function
 * (reactor mode), and reports the exit code, a trap, the results and statistics (types.ts).
 *
 * Limits, as WasmEdge's options:
 * - memoryPageLimit: every memory's maximum is lowered to the limit before compilation, so
 *   memory.grow past it returns -1; a module whose initial memory exceeds it is refused.
 * - timeLimitMs and gasLimit: the module is instrumented with fuel checks (pd/wasm/instrument.ts);
 *   when its fuel runs out it calls `capvisor.preempt`, which adds up the gas used, checks the
 *   elapsed time and the gas, and aborts the run by throwing. Host calls check the deadline too,
 *   and poll_oneoff sleeps in slices, so a sleeping guest is stopped as well.
 * Without limits and gas measurement the module runs uninstrumented (the fast path).
 *
 * Trap reports use WasmEdge's error names and messages (kind "MemoryOutOfBounds", message "out of
 * bounds memory access", ...); a trap or limit gives exit code 1, as the wasmedge CLI's
 * EXIT_FAILURE.
 */
import { FileServer } from "./fileserver.js";
import type { RunOptions, RunResult } from "./types.js";
import { Errno, type HostFn, WasiExit, WasiHost } from "./wasi/host.js";
import {
  exportedFunctions,
  type FuncSig,
  limitMemory,
  MemoryLimitError,
  ModuleFormatError,
} from "./wasi/module.js";

/** Checks between two preempt calls when metering (bounds how late a time limit is noticed). */
const FUEL_CHUNK = 20_000;
/** The CLI's exit code for a trap, a limit or a load failure (EXIT_FAILURE). */
export const TRAP_EXIT_CODE = 1;

/** A limit stopped the run: thrown through the guest's frames from preempt or a host call. */
class LimitAbort extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

/** V8's trap messages to WasmEdge's error names and messages. */
const TRAPS: [RegExp, string, string][] = [
  [/unreachable/, "Unreachable", "unreachable"],
  [/memory access out of bounds|out of bounds memory/, "MemoryOutOfBounds", "out of bounds memory access"],
  [/divide by zero|remainder by zero/, "DivideByZero", "integer divide by zero"],
  [/float unrepresentable|invalid conversion/, "InvalidConvToInt", "invalid conversion to integer"],
  [/integer overflow/, "IntegerOverflow", "integer overflow"],
  [/table index is out of bounds|element segment out of bounds/, "UndefinedElement", "undefined element"],
  [
    /null function or function signature mismatch|signature mismatch/,
    "IndirectCallTypeMismatch",
    "indirect call type mismatch",
  ],
  [/Maximum call stack size exceeded/, "CallStackExhausted", "call stack exhausted"],
];

function trapOf(e: unknown): { kind: string; message: string } {
  if (e instanceof LimitAbort) return { kind: e.kind, message: e.message };
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof WebAssembly.RuntimeError || e instanceof RangeError) {
    for (const [re, kind, message] of TRAPS) if (re.test(msg)) return { kind, message };
    return { kind: "Trap", message: msg };
  }
  if (e instanceof WebAssembly.CompileError || e instanceof ModuleFormatError) {
    return { kind: "ValidationFailed", message: msg.replace(/^WebAssembly\.\w+\(\): /, "") };
  }
  if (e instanceof WebAssembly.LinkError) {
    return { kind: "UnknownImport", message: msg.replace(/^WebAssembly\.\w+\(\): /, "") };
  }
  if (e instanceof MemoryLimitError) return { kind: "MemoryLimitExceeded", message: msg };
  return { kind: "HostError", message: msg };
}

/** Converts a reactor argument to what V8 expects for a parameter of type `t`. */
function convertArg(v: number | bigint, t: string): number | bigint {
  switch (t) {
    case "i32":
      return Number(BigInt.asIntN(32, BigInt(typeof v === "number" ? Math.trunc(v) : v)));
    case "i64":
      return BigInt.asIntN(64, typeof v === "bigint" ? v : BigInt(Math.trunc(v)));
    case "f32":
    case "f64":
      return Number(v);
    default:
      throw new LimitAbort("FuncSigMismatch", `cannot pass an argument of type ${t}`);
  }
}

export async function runWasi(wasm: Uint8Array, opts: RunOptions): Promise<RunResult> {
  const t0 = performance.now();
  let hostMs = 0;
  let gas = 0;
  let given = 0;
  const limits = opts.limits ?? {};
  const metering =
    limits.gasLimit !== undefined ||
    limits.timeLimitMs !== undefined ||
    (opts.measure?.gas ?? false) ||
    (opts.measure?.instructions ?? false);
  // As WasmEdge's --time-limit, the limit covers execution, not loading: set when the run starts.
  let deadlineAt = Number.POSITIVE_INFINITY;
  let fuelGlobal: WebAssembly.Global | null = null;
  let fs: FileServer | null = null;

  const stats = () => {
    const s: RunResult["stats"] = {
      totalNs: Math.round((performance.now() - t0) * 1e6),
      hostNs: Math.round(hostMs * 1e6),
    };
    if (metering) {
      // Fuel handed out minus what is left is what the checks consumed.
      const used = gas + Math.max(0, given - Number(fuelGlobal?.value ?? given));
      s.gas = used;
      s.instructions = used;
    }
    return s;
  };
  const failure = (e: unknown): RunResult => ({ exitCode: TRAP_EXIT_CODE, trap: trapOf(e), stats: stats() });
  const checkDeadline = () => {
    if (performance.now() > deadlineAt) throw new LimitAbort("Interrupted", "interrupted");
    return deadlineAt;
  };
  /** preempt: account the gas the last chunk used, enforce the limits, hand out the next chunk. */
  const preempt = () => {
    const left = Number(fuelGlobal?.value ?? 0);
    gas += given - left;
    // What is left has been counted: stats() must not count this chunk again if the run stops here.
    given = left;
    if (limits.gasLimit !== undefined && gas > limits.gasLimit) {
      throw new LimitAbort("CostLimitExceeded", "cost limit exceeded");
    }
    checkDeadline();
    given = limits.gasLimit !== undefined ? Math.min(FUEL_CHUNK, limits.gasLimit - gas) : FUEL_CHUNK;
    return given;
  };

  let instance: WebAssembly.Instance;
  let host: WasiHost;
  let sigs: Map<string, FuncSig>;
  try {
    let bytes = wasm;
    sigs = exportedFunctions(bytes);
    if (metering) given = limits.gasLimit !== undefined ? Math.min(FUEL_CHUNK, limits.gasLimit) : FUEL_CHUNK;
    let module: WebAssembly.Module;
    const prepared = opts.prepared;
    if (prepared !== undefined && (prepared.instrumented || !metering)) {
      // The cache (cache.ts) already applied the memory limit and, for a metered run, the fuel
      // checks: nothing to rewrite or compile. The fuel is set after instantiation.
      module = prepared.module;
    } else {
      if (limits.memoryPageLimit !== undefined) bytes = limitMemory(bytes, limits.memoryPageLimit);
      if (metering) {
        // Loaded only when needed: Binaryen costs about 0.3 s to load.
        const { instrumentPreemption } = await import("../pd/wasm/instrument.js");
        bytes = instrumentPreemption(bytes, { initialFuel: given, fuelPerCheck: 1 });
      }
      module = await WebAssembly.compile(bytes);
    }
    fs = new FileServer(opts.preopens);
    const cfg = {
      args: opts.args,
      env: opts.env,
      preopens: opts.preopens,
      stdout: opts.stdout,
      stderr: opts.stderr,
      deadline: checkDeadline,
      ...(opts.stdin ? { stdin: opts.stdin } : {}),
    };
    host = new WasiHost(cfg, fs);
    const wrap =
      (_name: string, fn: HostFn): HostFn =>
      (...args) => {
        const t = performance.now();
        try {
          if (t > deadlineAt) checkDeadline();
          return fn(...args);
        } finally {
          hostMs += performance.now() - t;
        }
      };
    const imports: WebAssembly.Imports = { wasi_snapshot_preview1: host.imports(wrap) };
    if (metering) imports.capvisor = { preempt };
    instance = await WebAssembly.instantiate(module, imports);
  } catch (e) {
    fs?.closeAll();
    return failure(e);
  }

  const ex = instance.exports;
  if (metering && ex.capvisor_fuel instanceof WebAssembly.Global) {
    fuelGlobal = ex.capvisor_fuel;
    fuelGlobal.value = given;
  }
  const mem = Object.values(ex).find((x): x is WebAssembly.Memory => x instanceof WebAssembly.Memory);
  if (mem) host.memory = mem;
  const call = (name: string, args: (number | bigint)[]): unknown => {
    const f = ex[name];
    if (typeof f !== "function") throw new LimitAbort("FuncNotFound", `function not found: ${name}`);
    return (f as (...a: (number | bigint)[]) => unknown)(...args);
  };

  if (limits.timeLimitMs !== undefined) deadlineAt = performance.now() + limits.timeLimitMs;
  try {
    if (!opts.reactor) {
      call("_start", []);
      return { exitCode: 0, stats: stats() };
    }
    if (typeof ex._initialize === "function") call("_initialize", []);
    const { fn, args } = opts.reactor;
    const sig = sigs.get(fn);
    if (typeof ex[fn] !== "function" || !sig)
      throw new LimitAbort("FuncNotFound", `function not found: ${fn}`);
    if (sig.params.length !== args.length) {
      throw new LimitAbort(
        "FuncSigMismatch",
        `function signature mismatch: ${fn} takes ${sig.params.length} arguments, got ${args.length}`,
      );
    }
    const r = call(
      fn,
      args.map((a, i) => convertArg(a, sig.params[i]!)),
    );
    const results = sig.results.length === 0 ? [] : sig.results.length === 1 ? [r] : (r as unknown[]);
    return {
      exitCode: 0,
      returns: results.map((x) => (typeof x === "bigint" ? x : Number(x))),
      stats: stats(),
    };
  } catch (e) {
    if (e instanceof WasiExit) return { exitCode: e.code, stats: stats() };
    if (e instanceof Errno) return failure(new Error(`host errno ${e.errno}`));
    return failure(e);
  } finally {
    fs.closeAll();
  }
}
