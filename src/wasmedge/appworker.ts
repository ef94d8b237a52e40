/**
 * One guest application per worker thread. The main thread (runner.ts) prepares the module and
 * starts the services (file server, network server, stdio); the worker instantiates the module
 * with the WASI host and runs it. The host reaches the services only through the synchronous
 * request channel (service.ts), so a guest may block (accept, recv, poll_oneoff on sockets) in
 * its own thread without blocking the main thread or any other application, and any number of
 * applications run at once.
 *
 * Limits are enforced in the worker, next to the guest: the fuel checks call `capvisor.preempt`,
 * which counts gas and checks the time limit, and every host call and every wait slice checks the
 * deadline too. Trap reports use WasmEdge's error names (see TRAPS).
 *
 * Workers are kept in a small pool and reused for later applications (each application still gets
 * a fresh instance, memory and WASI state): starting a thread costs far more than a short app.
 * Each pooled worker keeps its request channel's buffer too: allocating a 128 KiB
 * SharedArrayBuffer costs about 40 us, a tenth of a hello-world's whole start. Reuse is safe
 * because a worker is returned to the pool only after its application finished, when no request
 * is in flight and the previous run's serving loop is closed (it checks `closed` before reading
 * the state again). A worker that was terminated (cancellation, a crash) is never reused, and
 * its buffer goes with it. Idle workers are unref'd so that they never keep the process alive.
 */
import { isMainThread, type MessagePort, parentPort, Worker, workerData } from "node:worker_threads";
import type { FsOp, FsReq, FsRes } from "./fileserver.js";
import type { NetOp, NetReq, NetRes } from "./netserver.js";
import {
  type AnyService,
  type BlockUntilMoved,
  ChannelClient,
  createChannelBuffer,
  ServiceClient,
  serveChannel,
} from "./service.js";
import type { Preopen, RunLimits, RunOptions, RunResult } from "./types.js";
import { Errno, type HostFn, WasiExit, WasiHost } from "./wasi/host.js";
import { type FuncSig, MemoryLimitError, ModuleFormatError } from "./wasi/module.js";
import type { NetClient } from "./wasi/sock.js";
import type { StdinReq, StdinRes } from "./wasi/stdin.js";

/** Checks between two preempt calls when metering (bounds how late a time limit is noticed). */
export const FUEL_CHUNK = 20_000;
/** The CLI's exit code for a trap, a limit or a load failure (EXIT_FAILURE). */
export const TRAP_EXIT_CODE = 1;

/** A limit stopped the run: thrown through the guest's frames from preempt or a host call. */
export class LimitAbort extends Error {
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

export function trapOf(e: unknown): { kind: string; message: string } {
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

/** The result of a run its caller cancelled: "cancelled" on stderr, exit code 1. */
export function cancelledRun(out: Pick<RunOptions, "stderr">, totalNs: number): RunResult {
  out.stderr(new TextEncoder().encode("cancelled\n"));
  return { exitCode: TRAP_EXIT_CODE, stats: { totalNs, hostNs: 0 } };
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

/** What the main thread hands a worker for one application (structured-clone data). */
export interface AppJob {
  module: WebAssembly.Module;
  /** The request channel (service.ts) to the services: "fs", "net", "stdio". */
  sab: SharedArrayBuffer;
  args: string[];
  env: [string, string][];
  preopens: Pick<Preopen, "guest" | "readOnly">[];
  /** fd 0: the whole input, or "stream": read through the "stdin" service (wasi/stdin.ts). */
  stdin?: Uint8Array | "stream";
  limits: RunLimits;
  reactor?: { fn: string; args: (number | bigint)[] };
  /** Whether the module carries fuel checks (and statistics count gas). */
  metering: boolean;
  /**
   * The module carries fuel checks without metering (an application that is a kernel thread:
   * they are its preemption checks, app-thread.ts).
   */
  preemptible?: boolean;
  sigs: Map<string, FuncSig>;
}

/** What a kernel thread running an application adds (app-thread.ts). */
export interface KernelThreadHooks {
  /** How a service call sleeps: blocked in the kernel. */
  block: BlockUntilMoved;
  /** At each fuel check: enter the kernel if it wants the core back. */
  preempt(): void;
  /** Whether the run was cancelled (checked with the deadline). */
  cancelled(): boolean;
}

/** What the runtime PD gives an application thread's worker (app-thread.ts; CustomWorkerInit.data). */
export interface AppThreadData {
  /** Jobs arrive here (AppJob), results leave here (RunResult). */
  port: MessagePort;
  /** Int32 words shared with the main thread: [CANCEL, POSTED]. */
  control: SharedArrayBuffer;
  /** Its CSpace slot of its own notification (Read): what it waits on. */
  ntfnSlot: number;
}

/** control[CANCEL] != 0: the main thread cancelled the current job. */
export const CANCEL = 0;
/** control[POSTED]: bumped by the main thread after it posted a job (the worker may wait on it). */
export const POSTED = 1;
export const CONTROL_WORDS = 2;

/** The stdio service's request: bytes the guest wrote to fd 1 or 2. */
export interface StdioReq {
  fd: 1 | 2;
  data: Uint8Array;
}

/** Runs one application in this (worker) thread; totalNs is left for the main thread to fill. */
export function execute(job: AppJob, kernel?: KernelThreadHooks): RunResult {
  const ch = new ChannelClient(job.sab, kernel?.block);
  const checks = job.metering || job.preemptible === true;
  const limits = job.limits;
  let hostMs = 0;
  let gas = 0;
  let given = job.metering ? Math.min(FUEL_CHUNK, limits.gasLimit ?? FUEL_CHUNK) : 0;
  let deadlineAt = Number.POSITIVE_INFINITY;
  let fuelGlobal: WebAssembly.Global | null = null;

  const stats = () => {
    const s: RunResult["stats"] = { totalNs: 0, hostNs: Math.round(hostMs * 1e6) };
    if (job.metering) {
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
    if (kernel?.cancelled()) throw new LimitAbort("Interrupted", "cancelled");
    return deadlineAt;
  };
  /** preempt: account the gas the last chunk used, enforce the limits, hand out the next chunk. */
  const preempt = () => {
    kernel?.preempt();
    if (!job.metering) {
      if (kernel?.cancelled()) throw new LimitAbort("Interrupted", "cancelled");
      return FUEL_CHUNK;
    }
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

  const stdio = new ServiceClient<StdioReq, null>(ch, "stdio");
  const fsClient = new ServiceClient<FsReq<FsOp>, FsRes<FsOp>>(ch, "fs");
  const netClient = new ServiceClient<NetReq<NetOp>, NetRes<NetOp>>(ch, "net");
  const stdinClient = new ServiceClient<StdinReq, StdinRes>(ch, "stdin");
  let instance: WebAssembly.Instance;
  let host: WasiHost;
  try {
    host = new WasiHost(
      {
        args: job.args,
        env: job.env,
        preopens: job.preopens,
        stdout: (data) => stdio.call({ fd: 1, data }),
        stderr: (data) => stdio.call({ fd: 2, data }),
        deadline: checkDeadline,
        ...(job.stdin === "stream"
          ? { stdin: { call: (req: StdinReq) => stdinClient.call(req) } }
          : job.stdin
            ? { stdin: job.stdin }
            : {}),
      },
      { call: <K extends FsOp>(req: FsReq<K>) => fsClient.call(req) as FsRes<K> },
    );
    host.net = {
      call: <K extends NetOp>(req: NetReq<K>) => netClient.call(req) as NetRes<K>,
    } satisfies NetClient;
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
    if (checks) imports.capvisor = { preempt };
    instance = new WebAssembly.Instance(job.module, imports);
  } catch (e) {
    return failure(e);
  }

  const ex = instance.exports;
  if (checks && ex.capvisor_fuel instanceof WebAssembly.Global) {
    fuelGlobal = ex.capvisor_fuel;
    fuelGlobal.value = job.metering ? given : FUEL_CHUNK;
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
    if (!job.reactor) {
      call("_start", []);
      return { exitCode: 0, stats: stats() };
    }
    if (typeof ex._initialize === "function") call("_initialize", []);
    const { fn, args } = job.reactor;
    const sig = job.sigs.get(fn);
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
  }
}

// ---- the main thread's side: a pool of workers ----

const MARK = "capvisor-app-worker";
/** Idle workers kept for reuse; more are ended when their app finishes. */
const MAX_IDLE = 8;
/** A worker thread and the request channel buffer it is served through. */
interface AppThread {
  worker: Worker;
  sab: SharedArrayBuffer;
}
const idle: AppThread[] = [];

function takeThread(): AppThread {
  const t = idle.pop() ?? {
    worker: new Worker(new URL(import.meta.url), { workerData: MARK }),
    sab: createChannelBuffer(),
  };
  t.worker.ref();
  return t;
}
function releaseThread(t: AppThread): void {
  t.worker.unref();
  if (idle.length < MAX_IDLE) idle.push(t);
  else void t.worker.terminate();
}

/** The services a run's application reaches through its request channel, besides stdio. */
export interface RunServices {
  fs: AnyService;
  net: AnyService;
  stdin?: AnyService;
}

/** The stdio service: the guest's writes to fd 1 and 2, to the run's callbacks in order. */
export function stdioService(out: Pick<RunOptions, "stdout" | "stderr">): AnyService {
  return {
    handle: ((r: StdioReq) => {
      (r.fd === 1 ? out.stdout : out.stderr)(r.data);
      return null;
    }) as AnyService["handle"],
  };
}

/**
 * Runs `job` in a worker, serving its requests with `services` until it finishes; the job's
 * request channel is the worker's own (`sab` is filled in here). The output callbacks (`stdio`)
 * are called in this thread, in the order the guest wrote.
 */
export function runInWorker(
  spec: Omit<AppJob, "sab">,
  services: RunServices,
  out: Pick<RunOptions, "stdout" | "stderr"> & { signal?: AbortSignal },
): Promise<RunResult> {
  const thread = takeThread();
  const w = thread.worker;
  const job: AppJob = { ...spec, sab: thread.sab };
  const server = serveChannel(job.sab, { ...services, stdio: stdioService(out) });
  return new Promise<RunResult>((resolve) => {
    const finish = (r: RunResult, reusable: boolean) => {
      w.off("message", onMessage);
      w.off("error", onError);
      w.off("exit", onExit);
      out.signal?.removeEventListener("abort", onAbort);
      server.close();
      if (reusable) releaseThread(thread);
      resolve(r);
    };
    const onMessage = (r: RunResult) => finish(r, true);
    const onError = (e: Error) => {
      void w.terminate();
      finish({ exitCode: TRAP_EXIT_CODE, trap: trapOf(e), stats: { totalNs: 0, hostNs: 0 } }, false);
    };
    const onExit = (code: number) =>
      finish(
        {
          exitCode: TRAP_EXIT_CODE,
          trap: { kind: "HostError", message: `application thread exited (${code})` },
          stats: { totalNs: 0, hostNs: 0 },
        },
        false,
      );
    // Cancelling: the guest may be anywhere (a loop, a blocking host call), so its thread is
    // terminated rather than asked; the worker is not reused.
    const onAbort = () => {
      void w.terminate();
      finish(cancelledRun(out, 0), false);
    };
    w.on("message", onMessage);
    w.on("error", onError);
    w.on("exit", onExit);
    if (out.signal?.aborted) {
      onAbort();
      return;
    }
    out.signal?.addEventListener("abort", onAbort, { once: true });
    w.postMessage(job);
  });
}

// ---- the worker thread's side ----

if (!isMainThread && workerData === MARK && parentPort) {
  const port = parentPort;
  port.on("message", (job: AppJob) => {
    let r: RunResult;
    try {
      r = execute(job);
    } catch (e) {
      r = { exitCode: TRAP_EXIT_CODE, trap: trapOf(e), stats: { totalNs: 0, hostNs: 0 } };
    }
    port.postMessage(r);
  });
}
