import type { FuncSig } from "./wasi/module.js";

/**
 * The contract between the WASI host (wasi/, runner.ts) and its users (the `capvisor run`
 * command, the runtime PD): how one guest application is run and what comes back.
 */

/** A host directory an application may reach, under a guest path (`--dir guest:host`). */
export interface Preopen {
  guest: string;
  host: string;
  readOnly?: boolean;
}

/** WasmEdge's limits (`--time-limit` ms, `--gas-limit`, `--memory-page-limit`). */
export interface RunLimits {
  timeLimitMs?: number;
  gasLimit?: number;
  memoryPageLimit?: number;
}

/**
 * What fd 0 reads: the whole input at once, or a stream of chunks (process.stdin, any async
 * iterable) read as it arrives, so that an interactive application can read a line, answer it and
 * read the next (wasi/stdin.ts). Strings are taken as UTF-8.
 */
export type StdinSource = Uint8Array | AsyncIterable<Uint8Array | string>;

export interface RunOptions {
  /** argv, argv[0] being the program name as the guest sees it. */
  args: string[];
  env: [string, string][];
  preopens: Preopen[];
  /** fd 0's input; none: fd 0 is at its end at once. */
  stdin?: StdinSource;
  stdout: (bytes: Uint8Array) => void;
  stderr: (bytes: Uint8Array) => void;
  limits?: RunLimits;
  /** Reactor mode: call `_initialize` when exported, then this function with these arguments. */
  reactor?: { fn: string; args: (number | bigint)[] };
  /** Which statistics to gather (WasmEdge's --enable-*-measuring / --enable-all-statistics). */
  measure?: { time?: boolean; gas?: boolean; instructions?: boolean };
  /**
   * The same module, already prepared by the compiled-module cache (cache.ts): with the memory
   * limit applied (when `limits.memoryPageLimit` is set), instrumented (when `instrumented`) and
   * compiled. When given, runWasi instantiates `prepared.module` and neither rewrites nor compiles
   * `wasm` again: that is what makes a cached start cheap. An instrumented module was made with
   * instrumentPreemption's default options, so the runner sets its fuel through the exported
   * `capvisor_fuel` global after instantiation rather than through `initialFuel`. The CLI
   * instruments exactly when the run meters (a time or gas limit, or gas/instruction statistics).
   */
  prepared?: PreparedModule;
  /**
   * Where the application's file requests (plain-data FsRequests, fileserver.ts) go instead of a
   * FileServer over `preopens` in this thread: the runtime PD passes its file-server PD, reached
   * over kernel IPC (wasmedge/runtime-pd.ts). `preopens` then only tell the guest its directories;
   * the service owns the host paths and closes what the run left open.
   */
  fileService?: { handle(req: never): unknown };
}

/** A module prepared by the compiled-module cache (cache.ts). */
export interface PreparedModule {
  /** Compiled from the instrumented bytes. */
  module: WebAssembly.Module;
  /** SHA-256 (hex) of the original module bytes: the cache key. */
  sha256: string;
  /** Whether the module carries the fuel checks (`capvisor_fuel`, `capvisor.preempt`). */
  instrumented: boolean;
  /**
   * The exported functions' signatures, as wasi/module.ts exportedFunctions reads them from the
   * original bytes; when absent the runner reads them itself.
   */
  exports?: Map<string, FuncSig>;
}

export interface RunStats {
  /** Wall time of the run (instantiate to exit), ns. */
  totalNs: number;
  /** Time spent in host functions (WASI), ns. */
  hostNs: number;
  /** Gas used: fuel checks passed (the preemption instrumentation doubles as a gas meter). */
  gas?: number;
  /** Instructions counted (approximated by fuel checks: loop iterations and calls). */
  instructions?: number;
}

export interface RunResult {
  /** proc_exit's code, 0 when _start returned; for a trap or limit, WasmEdge's non-zero code. */
  exitCode: number;
  /** Set when the guest trapped or a limit stopped it. */
  trap?: { kind: string; message: string };
  /** Reactor mode: the function's results. */
  returns?: (number | bigint)[];
  stats: RunStats;
}
