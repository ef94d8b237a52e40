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
 *
 * Threads: the module is prepared (limited, instrumented, compiled) here, in the calling thread;
 * it then runs in a worker thread of its own (appworker.ts), whose WASI host reaches this run's
 * file server, network server and stdio callbacks through a request channel (service.ts). So a
 * guest that blocks blocks only its own thread, and any number of runs proceed at once.
 *
 * Where file and socket requests go: by default to a FileServer and a NetServer made here, in
 * this thread, for this run: that is `capvisor run`, which has no kernel and no system
 * description, so there is no PD to route them to (and a kernel of its own would add a hop per
 * request and prove nothing: the host services would still run in this same thread). A runtime PD
 * passes `fileService` and `netService` instead: its file-server and network PDs, reached over
 * kernel IPC (runtime-pd.ts, netserver-pd.ts).
 */
import type { AppThreadRunner } from "./app-threads.js";
import { cancelledRun, FUEL_CHUNK, runInWorker, TRAP_EXIT_CODE, trapOf } from "./appworker.js";
import { FileServer } from "./fileserver.js";
import { NetServer, type NetServerOptions } from "./netserver.js";
import type { AnyService } from "./service.js";
import type { RunOptions, RunResult } from "./types.js";
import { exportedFunctions, type FuncSig, limitMemory } from "./wasi/module.js";
import { isStdinStream, StdinService } from "./wasi/stdin.js";

export { TRAP_EXIT_CODE } from "./appworker.js";

/**
 * The network policy of every run: which addresses guests may bind and connect to (loopback
 * unless changed). It is read when an application's NetServer is made (its first socket call):
 * by runWasi for `capvisor run`, by the network PD of a runtime PD (netserver-pd.ts) for each
 * session.
 */
export const networkPolicy: NetServerOptions = {};

/** What runWasi takes besides RunOptions. */
export interface RunExtras {
  /**
   * Cancels the run: its worker is terminated and the run resolves with exit code 1 after
   * "cancelled" on stderr (what the cross-VM channel's JOB_CANCEL needs, vm-jobs.ts).
   */
  signal?: AbortSignal;
  /**
   * Where the application's socket requests (plain-data NetRequests, netops.ts) go instead of a
   * NetServer in this thread: the runtime PD passes its network PD. The service owns the sockets,
   * and closes what the run left open when the runtime PD ends the session.
   */
  netService?: AnyService;
  /**
   * Run on this application thread, a kernel thread of a runtime PD (app-threads.ts), instead of
   * a worker of the pool: the module then always carries the fuel checks, which are its
   * preemption checks (and meter too when limits or gas statistics ask for it).
   */
  appThread?: AppThreadRunner;
}

export async function runWasi(wasm: Uint8Array, opts: RunOptions & RunExtras): Promise<RunResult> {
  const t0 = performance.now();
  const limits = opts.limits ?? {};
  const metering =
    limits.gasLimit !== undefined ||
    limits.timeLimitMs !== undefined ||
    (opts.measure?.gas ?? false) ||
    (opts.measure?.instructions ?? false);
  const totalNs = () => Math.round((performance.now() - t0) * 1e6);
  const failure = (e: unknown): RunResult => ({
    exitCode: TRAP_EXIT_CODE,
    trap: trapOf(e),
    stats: { totalNs: totalNs(), hostNs: 0, ...(metering ? { gas: 0, instructions: 0 } : {}) },
  });

  let module: WebAssembly.Module;
  let sigs: Map<string, FuncSig>;
  let fs: FileServer | null;
  try {
    let bytes = wasm;
    const prepared = opts.prepared;
    sigs = prepared?.exports ?? exportedFunctions(bytes);
    const checks = metering || opts.appThread !== undefined;
    if (prepared !== undefined && (prepared.instrumented || !checks)) {
      // The cache (cache.ts) already applied the memory limit and, for a metered run, the fuel
      // checks: nothing to rewrite or compile. The fuel is set after instantiation.
      module = prepared.module;
    } else {
      if (limits.memoryPageLimit !== undefined) bytes = limitMemory(bytes, limits.memoryPageLimit);
      if (checks) {
        // Loaded only when needed: Binaryen costs about 0.3 s to load.
        const { instrumentPreemption } = await import("../pd/wasm/instrument.js");
        const initialFuel = Math.min(FUEL_CHUNK, limits.gasLimit ?? FUEL_CHUNK);
        bytes = instrumentPreemption(bytes, { initialFuel, fuelPerCheck: 1 });
      }
      module = await WebAssembly.compile(bytes);
    }
    fs = opts.fileService !== undefined ? null : new FileServer(opts.preopens);
  } catch (e) {
    return failure(e);
  }
  if (opts.signal?.aborted) {
    fs?.closeAll();
    return cancelledRun(opts, totalNs());
  }
  // Made on the first socket call: most applications never open one.
  const sockets: { server: NetServer | null } = { server: null };
  const netService: AnyService = opts.netService ?? {
    handle: ((req: Parameters<NetServer["handle"]>[0]) => {
      sockets.server ??= new NetServer(networkPolicy);
      return sockets.server.handle(req);
    }) as AnyService["handle"],
  };
  // A streaming stdin is served from this thread as it arrives; a buffer travels with the job.
  const stdin = isStdinStream(opts.stdin) ? new StdinService(opts.stdin) : null;
  const stdinService: AnyService | null = stdin && {
    handle: ((req: Parameters<StdinService["handle"]>[0]) => stdin.handle(req)) as AnyService["handle"],
  };
  try {
    const run = opts.appThread?.run ?? runInWorker;
    const r = await run(
      {
        module,
        args: opts.args,
        env: opts.env,
        preopens: opts.preopens.map((p) => ({ guest: p.guest, ...(p.readOnly ? { readOnly: true } : {}) })),
        ...(stdin
          ? { stdin: "stream" as const }
          : opts.stdin instanceof Uint8Array
            ? { stdin: opts.stdin }
            : {}),
        limits,
        ...(opts.reactor ? { reactor: opts.reactor } : {}),
        metering,
        sigs,
      },
      { fs: fs ?? opts.fileService!, net: netService, ...(stdinService ? { stdin: stdinService } : {}) },
      opts,
    );
    r.stats.totalNs = totalNs();
    return r;
  } finally {
    fs?.closeAll();
    sockets.server?.closeAll();
    // Wakes a read the cancelled guest left pending and lets go of the source.
    stdin?.close();
  }
}
