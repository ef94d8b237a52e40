/**
 * The runtime PD's end of the cross-VM channel (docs/vm-channel.md): reads JOB_START / JOB_DATA /
 * JOB_CANCEL records from the request ring, assembles each job's module, runs the jobs
 * concurrently, and sends their output and exit codes back as OUT_STDOUT / OUT_STDERR / JOB_EXIT
 * records on the response ring.
 *
 * Everything in the request ring comes, through the VMM, from a guest: every record is checked
 * and a bad one fails only its own job (a stderr message, then JOB_EXIT 1). Output is queued here
 * when the response ring is full and flushed on the next pump (the VMM notifies the channel when
 * it has drained the ring and found `waiting` set); each job's records keep their order and its
 * JOB_EXIT is always its last record. A job whose output the VMM never takes is stopped once its
 * queue passes a bound, so the runtime PD's memory does not grow without limit.
 */
import {
  JOB_CANCEL,
  JOB_DATA,
  JOB_EXIT,
  JOB_START,
  OUT_STDERR,
  OUT_STDOUT,
  RingError,
  type RingRegion,
} from "../platform/ring.js";
import type { AppThreadRunner } from "./app-threads.js";
import { ModuleCache } from "./cache.js";
import { type RunExtras, runWasi } from "./runner.js";
import type { Preopen, RunLimits, RunOptions } from "./types.js";

/** Where a job's output goes. */
export interface JobIo {
  stdout(bytes: Uint8Array): void;
  stderr(bytes: Uint8Array): void;
}

/** Runs one job to completion and resolves with its exit code; `signal` cancels it. */
export type RunJob = (module: Uint8Array, args: string[], io: JobIo, signal: AbortSignal) => Promise<number>;

export interface VmJobServerOptions {
  run: RunJob;
  /** Notifies the channel (the Microkit notification to the VMM). */
  notify(): void;
  /** The largest module a job may announce (64 MiB, the device's staging cap). */
  maxModuleBytes?: number;
  /** The most arguments a job may have. */
  maxArgs?: number;
  /** Output bytes queued for one job before it is stopped because nobody takes them. */
  maxQueuedOutput?: number;
}

export interface VmJobServerStats {
  /** Jobs started (module complete, run called). */
  started: number;
  /** Jobs that sent their JOB_EXIT. */
  exited: number;
  /** Requests refused: bad JOB_START, JOB_DATA for an unknown job or beyond the module. */
  rejected: number;
  /** Records ignored: unknown types, duplicate JOB_START, data after a rejection. */
  ignored: number;
  /** Set when the request ring was found corrupt: the server reads it no more. */
  ringError: string | null;
}

export const DEFAULT_MAX_MODULE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_ARGS = 4096;
export const DEFAULT_MAX_QUEUED_OUTPUT = 64 * 1024 * 1024;
/** Ids of refused jobs remembered so that their in-flight JOB_DATA is dropped quietly. */
const MAX_RETIRED = 1024;

interface Assembling {
  args: string[];
  moduleBytes: number;
  chunks: Uint8Array[];
  got: number;
}

interface Running {
  abort: AbortController;
  /** Output bytes of this job still in the queue. */
  queued: number;
  /** Set when the job was stopped for an unread backlog: its later output is dropped. */
  overflowed: boolean;
}

interface Pending {
  type: number;
  job: number;
  payload: Uint8Array;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

function exitPayload(code: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, code | 0, true);
  return b;
}

/** Decodes JOB_START's payload, or says what is wrong with it. */
export function parseJobStart(
  p: Uint8Array,
  maxModuleBytes: number,
  maxArgs: number,
): { args: string[]; moduleBytes: number } | string {
  if (p.length < 8) return `JOB_START of ${p.length} bytes is shorter than its 8-byte header`;
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const argc = v.getUint32(0, true);
  const moduleBytes = v.getUint32(4, true);
  if (moduleBytes > maxModuleBytes)
    return `module of ${moduleBytes} bytes exceeds the limit of ${maxModuleBytes}`;
  // Each argument takes at least its NUL: more than the payload holds is a lie, not a job.
  if (argc > maxArgs || argc > p.length - 8) return `argument count ${argc} is out of range`;
  const args: string[] = [];
  let at = 8;
  for (let i = 0; i < argc; i++) {
    const nul = p.indexOf(0, at);
    if (nul < 0) return `argument ${i} is not NUL-terminated`;
    try {
      args.push(utf8Strict.decode(p.subarray(at, nul)));
    } catch {
      return `argument ${i} is not UTF-8`;
    }
    at = nul + 1;
  }
  if (at !== p.length) return `${p.length - at} bytes follow the last argument`;
  return { args, moduleBytes };
}

export class VmJobServer {
  readonly stats: VmJobServerStats = { started: 0, exited: 0, rejected: 0, ignored: 0, ringError: null };
  private readonly assembling = new Map<number, Assembling>();
  private readonly running = new Map<number, Running>();
  /** Refused or finished-early jobs whose JOB_DATA may still be in flight. */
  private readonly retired = new Set<number>();
  /** Response records waiting for ring space, in the order they were produced. */
  private readonly queue: Pending[] = [];
  private queueHead = 0;
  private readonly maxModuleBytes: number;
  private readonly maxArgs: number;
  private readonly maxQueuedOutput: number;
  private closed = false;

  constructor(
    private readonly region: RingRegion,
    private readonly opts: VmJobServerOptions,
  ) {
    this.maxModuleBytes = opts.maxModuleBytes ?? DEFAULT_MAX_MODULE_BYTES;
    this.maxArgs = opts.maxArgs ?? DEFAULT_MAX_ARGS;
    this.maxQueuedOutput = opts.maxQueuedOutput ?? DEFAULT_MAX_QUEUED_OUTPUT;
  }

  /** Jobs being assembled or running. */
  get active(): number {
    return this.assembling.size + this.running.size;
  }

  /** Response records waiting for ring space. */
  get queuedRecords(): number {
    return this.queue.length - this.queueHead;
  }

  /**
   * Handles a wake: consumes every request record, tells the VMM if it waited for request
   * space, and flushes queued output. Notifies the channel once if anything needs the VMM.
   */
  pump(): void {
    let notify = this.drainRequests();
    if (this.flush()) notify = true;
    if (notify) this.opts.notify();
  }

  /** Stops every job (their JOB_EXIT records are still queued as they end). */
  close(): void {
    this.closed = true;
    for (const r of this.running.values()) r.abort.abort();
    this.assembling.clear();
  }

  private drainRequests(): boolean {
    if (this.stats.ringError !== null) return false;
    const ring = this.region.request;
    try {
      for (let r = ring.read(); r !== null; r = ring.read()) this.handle(r.type, r.job, r.payload);
    } catch (e) {
      if (!(e instanceof RingError)) throw e;
      this.stats.ringError = e.message;
      // No more module bytes can arrive: the jobs being assembled can never start.
      for (const job of [...this.assembling.keys()])
        this.refuse(job, `the request ring is corrupt (${e.message})`);
      return false;
    }
    return ring.consumerDone();
  }

  private handle(type: number, job: number, payload: Uint8Array): void {
    switch (type) {
      case JOB_START: {
        if (job === 0 || this.assembling.has(job) || this.running.has(job) || this.retired.has(job)) {
          // The id is in use or was used: answering would mix into another job's stream.
          this.stats.ignored++;
          return;
        }
        const start = parseJobStart(payload, this.maxModuleBytes, this.maxArgs);
        if (typeof start === "string") {
          this.refuse(job, `bad JOB_START: ${start}`);
          return;
        }
        this.assembling.set(job, { ...start, chunks: [], got: 0 });
        if (start.moduleBytes === 0) this.launch(job);
        return;
      }
      case JOB_DATA: {
        const a = this.assembling.get(job);
        if (!a) {
          if (this.retired.has(job) || this.running.has(job)) {
            this.stats.ignored++;
            return;
          }
          if (job !== 0) this.refuse(job, "JOB_DATA for a job that was never started");
          else this.stats.ignored++;
          return;
        }
        if (a.got + payload.length > a.moduleBytes) {
          this.assembling.delete(job);
          this.refuse(job, `JOB_DATA goes past the announced ${a.moduleBytes} module bytes`);
          return;
        }
        a.chunks.push(payload);
        a.got += payload.length;
        if (a.got === a.moduleBytes) this.launch(job);
        return;
      }
      case JOB_CANCEL: {
        if (this.assembling.delete(job)) {
          this.retire(job);
          this.enqueue(OUT_STDERR, job, utf8.encode("cancelled\n"));
          this.enqueue(JOB_EXIT, job, exitPayload(1));
          this.stats.exited++;
          return;
        }
        const r = this.running.get(job);
        // The run resolves after the abort and its JOB_EXIT follows; a job already exited needs nothing.
        if (r) r.abort.abort();
        else this.stats.ignored++;
        return;
      }
      default:
        this.stats.ignored++;
    }
  }

  /** Answers a request that cannot become a job: a stderr message and JOB_EXIT 1. */
  private refuse(job: number, why: string): void {
    this.stats.rejected++;
    this.assembling.delete(job);
    this.retire(job);
    this.enqueue(OUT_STDERR, job, utf8.encode(`capvisor: job ${job} refused: ${why}\n`));
    this.enqueue(JOB_EXIT, job, exitPayload(1));
    this.stats.exited++;
  }

  private retire(job: number): void {
    this.retired.add(job);
    if (this.retired.size > MAX_RETIRED) {
      const oldest = this.retired.values().next().value;
      if (oldest !== undefined) this.retired.delete(oldest);
    }
  }

  private launch(job: number): void {
    const a = this.assembling.get(job)!;
    this.assembling.delete(job);
    const module = new Uint8Array(a.moduleBytes);
    let at = 0;
    for (const c of a.chunks) {
      module.set(c, at);
      at += c.length;
    }
    const state: Running = { abort: new AbortController(), queued: 0, overflowed: false };
    this.running.set(job, state);
    this.stats.started++;
    const output = (type: number) => (bytes: Uint8Array) => {
      if (state.overflowed || bytes.length === 0) return;
      if (state.queued + bytes.length > this.maxQueuedOutput) {
        state.overflowed = true;
        this.enqueue(
          OUT_STDERR,
          job,
          utf8.encode("capvisor: the job's output is not being read; job stopped\n"),
        );
        state.abort.abort();
        this.flushAndNotify();
        return;
      }
      // Copied: the caller may reuse its buffer once this returns.
      const copy = bytes.slice();
      const max = this.region.response.maxPayload;
      for (let i = 0; i < copy.length; i += max) this.enqueue(type, job, copy.subarray(i, i + max));
      this.flushAndNotify();
    };
    const io: JobIo = { stdout: output(OUT_STDOUT), stderr: output(OUT_STDERR) };
    const finish = (code: number) => {
      this.running.delete(job);
      this.retire(job);
      this.enqueue(JOB_EXIT, job, exitPayload(code));
      this.stats.exited++;
      this.flushAndNotify();
    };
    if (this.closed) state.abort.abort();
    let p: Promise<number>;
    try {
      p = this.opts.run(module, a.args, io, state.abort.signal);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(finish, (e: unknown) => {
      io.stderr(utf8.encode(`capvisor: ${e instanceof Error ? e.message : String(e)}\n`));
      finish(1);
    });
  }

  private enqueue(type: number, job: number, payload: Uint8Array): void {
    this.queue.push({ type, job, payload });
    const r = this.running.get(job);
    if (r) r.queued += payload.length;
  }

  private flushAndNotify(): void {
    if (this.flush()) this.opts.notify();
  }

  /** Writes queued records while the ring has room; true when at least one was published. */
  private flush(): boolean {
    const ring = this.region.response;
    let published = false;
    while (this.queueHead < this.queue.length) {
      const rec = this.queue[this.queueHead]!;
      if (!ring.tryWrite(rec.type, rec.job, rec.payload)) break;
      published = true;
      this.queueHead++;
      const r = this.running.get(rec.job);
      if (r) r.queued -= rec.payload.length;
    }
    // Compact now and then rather than shifting on every record.
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    return published;
  }
}

/** The settings the runtime PD runs guest jobs with. */
export interface GuestRunSettings {
  env: [string, string][];
  preopens: Preopen[];
  limits?: RunLimits;
  /** The file-server PD's service, as RunOptions.fileService. */
  fileService?: RunOptions["fileService"];
  /** The network PD's service, as runWasi's netService (runner.ts). */
  netService?: RunExtras["netService"];
  /**
   * Where each job runs: on the runtime PD's application threads (app-threads.ts). Without it,
   * in a worker of the process's pool.
   */
  appThread?: AppThreadRunner;
  /** The compiled modules kept by hash (default: one cache per defaultRun). */
  cache?: ModuleCache;
}

/**
 * A RunJob that runs the module with the WASI host (runner.ts). Exit codes follow
 * docs/vm-channel.md: the app's own code, 1 for a module that does not validate or instantiate,
 * and 1 after a message on stderr for a trap or a limit (never WasmEdge's 128+).
 */
export function defaultRun(settings: GuestRunSettings): RunJob {
  // Guests send the same modules again and again: compile each once (by its hash, in memory).
  const cache = settings.cache ?? new ModuleCache({ dir: null });
  return async (module, args, io, signal) => {
    // On an application thread the fuel checks are its preemption checks.
    const prepared = await cache.preparedOrNothing(module, { instrument: settings.appThread !== undefined });
    const r = await runWasi(module, {
      ...(prepared !== undefined ? { prepared } : {}),
      args,
      env: settings.env,
      preopens: settings.preopens,
      stdout: (b) => io.stdout(b),
      stderr: (b) => io.stderr(b),
      signal,
      ...(settings.appThread ? { appThread: settings.appThread } : {}),
      ...(settings.limits ? { limits: settings.limits } : {}),
      ...(settings.fileService ? { fileService: settings.fileService } : {}),
      ...(settings.netService ? { netService: settings.netService } : {}),
    });
    if (r.trap) {
      io.stderr(utf8.encode(`[error] ${r.trap.kind}: ${r.trap.message}\n`));
      return 1;
    }
    return r.exitCode;
  };
}
