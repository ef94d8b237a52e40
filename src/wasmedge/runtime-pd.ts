/**
 * The WasmEdge runtime PD inside a system description (issue 4): a protection domain declared
 * like any other, whose configuration is its applications and preopens.
 *
 *   <protection_domain name="runtime" priority="50" capvisor:runtime="wasmedge"
 *       capvisor:apps="hello.wasm a b; cat.wasm /data/greeting.txt"
 *       capvisor:dirs="/data:./data,/ro:./ro:readonly"
 *       capvisor:env="GREETING=hi LANG=C">
 *     <program_image path="hello.wasm" />
 *   </protection_domain>
 *
 * - `capvisor:runtime="wasmedge"` makes the PD a runtime PD (the only runtime so far).
 * - `capvisor:apps`: applications separated by `;`, each a command line separated by spaces: the
 *   module (a path relative to the description) then its arguments. argv[0] is the module path as
 *   written, as the wasmedge CLI gives it. Applications start together when the PD first runs,
 *   each on an application thread of its own, a kernel thread (app-threads.ts), and are named by
 *   their module's base name without `.wasm` (`hello`, then `hello-2` for a second one).
 * - `capvisor:dirs`: preopens separated by `,`, each `guest:host` or `guest:host:readonly`
 *   (`--dir` of the CLI); `guest` is absolute, `host` a directory relative to the description.
 * - `capvisor:env`: `K=V` pairs separated by spaces, for every application.
 * - `<program_image>` names the first application's module (it is what Microkit's validator
 *   checks exists). Without `capvisor:apps` the PD runs that module alone, without arguments;
 *   with it, the first application must be that module.
 * - `capvisor:channel` and `capvisor:ring`, together: the PD also runs jobs a Linux guest sends
 *   over the cross-VM channel (docs/vm-channel.md, src/vmm/): its end `channel` of a declared
 *   channel to the VM's VMM PD, and the memory region `ring`, which it maps read-write. Such a PD
 *   may have no application of its own (no `<program_image>`). Jobs run with its dirs and env.
 * Besides that one channel and mapping, a runtime PD has no maps, irqs, channels, children or
 * virtual machine, and is not passive (its only authority is what the loader gives it, below).
 * Bad configuration is a LoadError `file:line:column: <protection_domain>: what is wrong; what
 * to do`.
 *
 * What the loader builds for a runtime PD (besides what every PD gets: slot 1 its notification,
 * slot 4 its Reply, slot 5 the monitor endpoint):
 *   slot RUNTIME_FS_EP   a badged endpoint cap (Write | GrantReply) to its file-server PD
 *                        (fileserver-pd.ts), the only way its applications reach files;
 *   slot RUNTIME_WAKE    the IRQHandler of a spare interrupt line bound to its notification
 *                        (badge WAKE_BADGE): the doorbell of its request queue (below);
 *   slot RUNTIME_NET_EP  a badged endpoint cap (Write | GrantReply) to its network PD
 *                        (netserver-pd.ts, `<pd>.net`), the only way its applications reach the
 *                        network; that PD signals this PD's notification with NET_READY_BADGE;
 *   slots APP_TCB_BASE + i and APP_NTFN_BASE + i
 *                        the TCB of its application thread i and Write on its notification
 *                        (app-threads.ts): to start it for its first application and to wake it.
 * All three PDs are native threads (WasmPlatform.native): their code runs in the main thread.
 *
 * The request queue. An application's file or socket request arrives asynchronously, in the app
 * channel's service callback (service.ts), but a syscall can only be made by the runtime PD's
 * thread when the kernel runs it. So the callback only queues the request and raises the wake
 * line (a device interrupt, as the platform's interrupt sources do); the kernel signals the
 * runtime PD's notification; the runtime PD's program, blocked in seL4_Wait on it, wakes,
 * acknowledges the line (so that a request queued later raises it again), and drains the queue:
 * for each request an seL4_Call to the file server or the network PD, whose reply resolves the
 * callback's promise. A socket operation that completes later (poll with a timeout, listen, ...)
 * is answered "pending" with a token instead: the runtime PD goes on with the queue, and when the
 * network PD signals NET_READY_BADGE it collects the finished results with one Call and resolves
 * their promises (the protocol is at the top of netserver-pd.ts). So one application waiting on a
 * socket never holds up the others or the file traffic. Application output is streamed line by
 * line as `<pd>/<app>` through the boot's onLine (`[runtime/hello]`).
 */
import { readFileSync } from "node:fs";
import { deserialize, serialize } from "node:v8";
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
import { SeL4Error } from "../kernel/types.js";
import { startThread } from "../pd/alloc.js";
import {
  type Sel4Gen,
  seL4_Call,
  seL4_GetMR,
  seL4_MessageInfo_get_label,
  seL4_MessageInfo_new,
  seL4_SetMR,
  seL4_Signal,
  seL4_Wait,
} from "../pd/libsel4.js";
import { seL4_IRQHandler_Ack } from "../pd/libsel4-invocations.js";
import type { ThreadContext } from "../pd/machine.js";
import { RingRegion } from "../platform/ring.js";
import type { PDRuntime, RuntimeHooks } from "../system/boot.js";
import {
  BASE_OUTPUT_NOTIFICATION_CAP,
  check,
  giveIrq,
  INPUT_CAP,
  LoadError,
  type LoadedPD,
  type LoadedSystem,
} from "../system/loader.js";
import type { SdfProtectionDomain, SystemDescription } from "../system/sdf-types.js";
import {
  APP_NTFN_BASE,
  APP_TCB_BASE,
  AppThreadPool,
  appThreadProgram,
  type BuiltAppThread,
  buildAppThreads,
  MAX_APP_THREADS,
} from "./app-threads.js";
import { defaultCache, ModuleCache } from "./cache.js";
import {
  type BuiltFileServer,
  buildFileServerPD,
  type FileServerStats,
  FS_CLOSE,
  FS_DONE,
  FS_MORE,
  FS_PART,
  FS_REQ,
  FS_REQ_PART,
  fileServerPD,
  SHM_BYTES,
} from "./fileserver-pd.js";
import type { NetOp, NetReq, NetRes } from "./netserver.js";
import {
  type BuiltNetServer,
  buildNetServerPD,
  NET_READY_BADGE,
  NET_SHM_BYTES,
  type NetCompletion,
  type NetServerStats,
  netCall,
  netClose,
  netCollect,
  netServerPD,
  newNetServerStats,
} from "./netserver-pd.js";
import { networkPolicy, runWasi } from "./runner.js";
import { type RuntimeConfig, runtimeConfigs } from "./runtime-config.js";
import type { AnyService } from "./service.js";
import type { RunResult } from "./types.js";
import { defaultRun, VmJobServer } from "./vm-jobs.js";

// The configuration lives in runtime-config.ts; importers of this module keep finding it here.
export * from "./runtime-config.js";

/** Its CSpace slots (above the loader's, where a PD without VM has nothing: BASE_VM_TCB_CAP). */
export const RUNTIME_FS_EP = 266;
export const RUNTIME_WAKE = 267;
export const RUNTIME_NET_EP = 268;
export const WAKE_BADGE = 1;

/** One request waiting for the runtime PD's thread, to its file server or its network PD. */
interface Queued {
  to: "fs" | "net";
  session: number;
  msg: Uint8Array;
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
}

/** A syscall the runtime PD's thread makes for one of its application threads. */
interface AppThreadOp {
  op: "start" | "signal";
  thread: number;
  /** For "start": the thread's program entry. */
  entry: number;
}

/**
 * What the applications' callbacks hand the runtime PD's thread (see the top of this file), and
 * what that thread keeps between wakes. Sessions are numbered from 0 for the applications, then
 * for the VM's jobs and the network sessions of RuntimePD.netSession.
 */
class RequestQueue {
  readonly queue: Queued[] = [];
  /** Sessions that ended; `fs`: whether the file server has state of it. */
  readonly closing: { session: number; fs: boolean; closed?: () => void }[] = [];
  /** Network requests answered "pending", by token. */
  readonly pendingNet = new Map<number, Queued>();
  /** Sessions that have sent the network PD a request (only those are closed there). */
  readonly netSessions = new Set<number>();
  /** Syscalls for the application threads (app-threads.ts, AppThreadOps). */
  readonly ops: AppThreadOp[] = [];
  constructor(
    readonly wake: () => void,
    public nextSession: number,
  ) {}

  /** A server as one session's application sees it: its requests queued for the thread. */
  service(to: Queued["to"], session: number): AnyService {
    return {
      handle: ((req: unknown) =>
        new Promise((resolve, reject) => {
          this.queue.push({ to, session, msg: serialize(req), resolve, reject });
          this.wake();
        })) as AnyService["handle"],
    };
  }

  kernelOp(op: AppThreadOp): void {
    // A signal already queued for the thread covers this one (the notification keeps one bit).
    if (op.op === "signal" && this.ops.some((o) => o.op === "signal" && o.thread === op.thread)) return;
    this.ops.push(op);
    this.wake();
  }

  close(session: number, fs: boolean, closed?: () => void): void {
    this.closing.push({ session, fs, ...(closed ? { closed } : {}) });
    this.wake();
  }
}

/** A session of the network PD, as an application's (RuntimePD.netSession). */
export interface NetSession {
  /** Sends `req` through the runtime PD's thread and the kernel; resolves with the response. */
  call<K extends NetOp>(req: NetReq<K>): Promise<NetRes<K>>;
  /** Ends the session: the network PD closes its sockets. Resolves once it has. */
  close(): Promise<void>;
}

/** A running runtime PD, for users of bootSystem (tests, status). */
export interface RuntimePD {
  name: string;
  config: RuntimeConfig;
  tcb: TCB;
  fileServerTcb: TCB;
  /** The file-server PD's counters. */
  fileServer: FileServerStats;
  netServerTcb: TCB;
  /** The network PD's counters. */
  netServer: NetServerStats;
  /** Its application threads (app-threads.ts): the configured applications', then the VM jobs'. */
  appThreads: { name: string; tcb: TCB }[];
  /** The threads whose workers load at boot (the configured applications'). */
  preload: TCB[];
  /**
   * A new session of the network PD, reached exactly as an application's sock_* calls reach it
   * (the runtime PD's queue, then IPC): for tests and tools that check what applications can do.
   */
  netSession(): NetSession;
  /** Each application's result, in configuration order, once all have finished. */
  done: Promise<RunResult[]>;
}

/** Splits a byte stream into lines for `emit`; `flush` emits an unfinished last line. */
function lineSplitter(emit: (line: string) => void): { write(b: Uint8Array): void; flush(): void } {
  const dec = new TextDecoder();
  let buf = "";
  return {
    write(b) {
      buf += dec.decode(b, { stream: true });
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        emit(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
      }
    },
    flush() {
      buf += dec.decode();
      if (buf !== "") emit(buf);
      buf = "";
    },
  };
}

/** `count` spare interrupt lines: from the top, above the per-core lines (< 32). */
function spareLines(sys: SystemDescription, count: number, irqLines: number): number[] {
  const used = new Set(sys.allProtectionDomains.flatMap((p) => p.irqs.map((i) => i.irq)));
  const out: number[] = [];
  for (let l = irqLines - 1; l >= 32 && out.length < count; l--) if (!used.has(l)) out.push(l);
  if (out.length < count) throw new LoadError("no spare interrupt line left for the runtime PDs' doorbells");
  return out;
}

/** The kernel objects capvisor builds for one runtime PD after the loader. */
export interface RuntimeKernelObjects {
  rt: LoadedPD;
  config: RuntimeConfig;
  /** Its file-server PD (`<pd>.fs`): thread, CNode, VSpace, endpoint, Reply, shared buffer. */
  fileServer: BuiltFileServer;
  /** The spare interrupt line of its doorbell (its IRQHandler is in slot RUNTIME_WAKE). */
  wakeLine: number;
  /** Its network PD (`<pd>.net`): thread, CNode, VSpace, endpoint, Reply, notification, buffer. */
  netServer: BuiltNetServer;
  /** The spare interrupt line of the network PD's doorbell. */
  netLine: number;
  /**
   * Its application threads (app-threads.ts): one per application of `capvisor:apps`, in order,
   * then VM_JOB_THREADS for the jobs of its cross-VM channel, when it has one.
   */
  appThreads: BuiltAppThread[];
}

/**
 * Application threads for the jobs of a cross-VM channel: as many as the channel device has slots
 * (docs/vm-channel.md), so every job a guest can have open runs at once.
 */
export const VM_JOB_THREADS = 16;

/** The names of runtime PD `pd`'s application threads, in slot order (see appThreads above). */
export function appThreadNames(pd: string, config: RuntimeConfig): string[] {
  const names = config.apps.map((a) => `${pd}/${a.name}`);
  if (config.vmChannel !== null) for (let i = 1; i <= VM_JOB_THREADS; i++) names.push(`${pd}/job-${i}`);
  return names;
}

/**
 * Builds the file-server PD, the network PD and the doorbell of every runtime PD (root task, after
 * buildSystem) and nothing else: no program is registered or run. bootSystem's build (buildRuntimePDs) and
 * `capvisor verify` (which reads the resulting kernel state) both start here, so the authority
 * that verify analyses is the one that boots.
 */
export function* buildRuntimeKernelObjects(
  u: ThreadContext,
  k: Kernel,
  sys: SystemDescription,
  loaded: LoadedSystem,
  configs: Map<SdfProtectionDomain, RuntimeConfig>,
): Sel4Gen<RuntimeKernelObjects[]> {
  const rts = loaded.pds.filter((p) => configs.has(p.pd));
  // The runtime PDs' doorbells first (the top lines), then their network PDs'.
  const lines = spareLines(sys, 2 * rts.length, k.config.irqLines);
  const out: RuntimeKernelObjects[] = [];
  for (const [n, rt] of rts.entries()) {
    const line = lines[n]!;
    const netLine = lines[rts.length + n]!;
    const fileServer = yield* buildFileServerPD(u, k, loaded, rt, RUNTIME_FS_EP, rt.index + 1);
    yield* giveIrq(u, loaded.alloc, rt.pd.name, line, rt.ntfnCap, WAKE_BADGE, rt.cnodeCap, RUNTIME_WAKE);
    const netServer = yield* buildNetServerPD(u, k, loaded, rt, RUNTIME_NET_EP, rt.index + 1, netLine);
    const config = configs.get(rt.pd)!;
    const names = appThreadNames(rt.pd.name, config);
    if (names.length > MAX_APP_THREADS)
      throw new LoadError(
        `${sys.file}:${rt.pd.loc.line}:${rt.pd.loc.column}: <protection_domain>: PD "${rt.pd.name}": ` +
          `${names.length} application threads, at most ${MAX_APP_THREADS} (applications` +
          `${config.vmChannel !== null ? `, plus ${VM_JOB_THREADS} for the VM's jobs` : ""}); split the applications over more runtime PDs`,
      );
    const appThreads = yield* buildAppThreads(u, k, loaded, rt, names);
    out.push({ rt, config, fileServer, wakeLine: line, netServer, netLine, appThreads });
  }
  return out;
}

/**
 * Builds the kernel objects of every runtime PD (buildRuntimeKernelObjects), then registers the
 * three native programs of each. Returns the running runtime PDs.
 */
export function* buildRuntimePDs(
  u: ThreadContext,
  k: Kernel,
  sys: SystemDescription,
  loaded: LoadedSystem,
  configs: Map<SdfProtectionDomain, RuntimeConfig>,
  hooks: RuntimeHooks,
): Sel4Gen<RuntimePD[]> {
  const out: RuntimePD[] = [];
  for (const built of yield* buildRuntimeKernelObjects(u, k, sys, loaded, configs)) {
    const { rt, config, fileServer: fs, netServer: net } = built;
    const shm = { fs: new Uint8Array(SHM_BYTES), net: new Uint8Array(NET_SHM_BYTES) };
    const stats: FileServerStats = { messages: 0, requests: 0, ops: {} };
    hooks.native(
      fs.tcb,
      fileServerPD(hooks.context(fs.tcb), {
        preopens: config.preopens,
        clientBadge: rt.index + 1,
        shm: shm.fs,
        stats,
      }),
    );
    const netStats = newNetServerStats();
    hooks.native(
      net.tcb,
      netServerPD(hooks.context(net.tcb), {
        clientBadge: rt.index + 1,
        shm: shm.net,
        stats: netStats,
        policy: networkPolicy,
        ring: () => hooks.raise(built.netLine),
      }),
    );
    let finish: (r: RunResult[]) => void = () => {};
    const done = new Promise<RunResult[]>((r) => {
      finish = r;
    });
    const q = new RequestQueue(() => hooks.raise(built.wakeLine), config.apps.length);
    // Each application thread's worker program; the configured applications' threads are set at
    // their entry now (not resumed), so that their workers load with the system's PDs.
    const programs = built.appThreads.map((t) => appThreadProgram(t.name));
    const entries = programs.map((p) => hooks.program(p.program));
    for (const [i, t] of built.appThreads.entries())
      if (i < config.apps.length)
        check("setting its entry", t.name, yield* startThread(u, t.tcbCap, entries[i]!, [], false));
    const pool = new AppThreadPool(programs, {
      start: (i) => q.kernelOp({ op: "start", thread: i, entry: entries[i]! }),
      signal: (i) => q.kernelOp({ op: "signal", thread: i, entry: 0 }),
    });
    hooks.native(rt.tcb, runtimeProgram(hooks.context(rt.tcb), rt, config, shm, q, hooks, pool, finish));
    out.push({
      name: rt.pd.name,
      config,
      tcb: rt.tcb,
      fileServerTcb: fs.tcb,
      fileServer: stats,
      netServerTcb: net.tcb,
      netServer: netStats,
      appThreads: built.appThreads.map((t) => ({ name: t.name, tcb: t.tcb })),
      preload: built.appThreads.slice(0, config.apps.length).map((t) => t.tcb),
      netSession: () => {
        const session = q.nextSession++;
        const net = q.service("net", session);
        return {
          call: async <K extends NetOp>(req: NetReq<K>) => (await net.handle(req as never)) as NetRes<K>,
          close: () => new Promise((resolve) => q.close(session, false, resolve)),
        };
      },
      done,
    });
  }
  return out;
}

/** Sends one serialized request of `session` to the file server and returns its answer. */
function* fsCall(u: ThreadContext, shm: Uint8Array, session: number, msg: Uint8Array): Sel4Gen<unknown> {
  let off = 0;
  let info: ReturnType<typeof seL4_MessageInfo_new>;
  for (;;) {
    const n = Math.min(SHM_BYTES, msg.length - off);
    shm.set(msg.subarray(off, off + n));
    off += n;
    seL4_SetMR(u, 0, n);
    seL4_SetMR(u, 1, session);
    info = yield* seL4_Call(
      u,
      RUNTIME_FS_EP,
      seL4_MessageInfo_new(off < msg.length ? FS_REQ_PART : FS_REQ, 0, 0, 2),
    );
    if (off >= msg.length) break;
  }
  const chunks: Uint8Array[] = [];
  for (;;) {
    const label = seL4_MessageInfo_get_label(info);
    const n = Math.min(seL4_GetMR(u, 0), SHM_BYTES);
    if (label !== FS_DONE && label !== FS_PART)
      throw new Error(`file server: ${new TextDecoder().decode(shm.subarray(0, n))}`);
    chunks.push(shm.slice(0, n));
    if (label === FS_DONE) break;
    seL4_SetMR(u, 1, session);
    info = yield* seL4_Call(u, RUNTIME_FS_EP, seL4_MessageInfo_new(FS_MORE, 0, 0, 2));
  }
  return deserialize(Buffer.concat(chunks));
}

/** The runtime PD's program (see the top of this file). */
function* runtimeProgram(
  u: ThreadContext,
  rt: LoadedPD,
  config: RuntimeConfig,
  shm: { fs: Uint8Array; net: Uint8Array },
  q: RequestQueue,
  hooks: RuntimeHooks,
  pool: AppThreadPool,
  finish: (r: RunResult[]) => void,
): Sel4Gen<void> {
  // Modules are instrumented once (the fuel checks are their preemption checks) and kept on disk.
  const cache = defaultCache();
  // The applications start when the kernel first runs this thread.
  const runs = config.apps.map(async (app, session) => {
    const label = `${rt.pd.name}/${app.name}`;
    const out = lineSplitter((l) => hooks.onLine(label, l));
    const err = lineSplitter((l) => hooks.onLine(label, l));
    let r: RunResult;
    try {
      const bytes = readFileSync(app.path);
      const prepared = await cache.preparedOrNothing(bytes);
      r = await runWasi(bytes, {
        ...(prepared !== undefined ? { prepared } : {}),
        appThread: pool.runner([session]),
        args: app.args,
        env: config.env,
        preopens: config.preopens,
        stdout: (b) => out.write(b),
        stderr: (b) => err.write(b),
        fileService: q.service("fs", session),
        netService: q.service("net", session),
      });
    } finally {
      out.flush();
      err.flush();
      q.close(session, true);
    }
    if (r.trap !== undefined) hooks.onEvent(label, `trapped: ${r.trap.kind}: ${r.trap.message}`);
    else if (r.exitCode !== 0) hooks.onEvent(label, `exited with code ${r.exitCode}`);
    return r;
  });
  Promise.all(runs).then(finish, (e: unknown) =>
    hooks.onEvent(rt.pd.name, `runtime failure: ${e instanceof Error ? e.message : String(e)}`),
  );

  // Jobs from a VM (docs/vm-channel.md). The server runs in this PD: it reads and writes the
  // ring region, and its notify() only asks this thread to signal the channel, since a syscall
  // can only be made when the kernel runs the thread (the output of a job arrives at any time).
  let vmJobs: VmJobServer | null = null;
  let notifyVm = false;
  if (config.vmChannel !== null) {
    let jobs = 0;
    const jobThreads = pool.runner(Array.from({ length: VM_JOB_THREADS }, (_, i) => config.apps.length + i));
    const jobCache = new ModuleCache({ dir: null });
    vmJobs = new VmJobServer(new RingRegion(hooks.region(config.vmChannel.ring)), {
      notify: () => {
        notifyVm = true;
        q.wake();
      },
      run: async (module, args, io, signal) => {
        const session = q.nextSession++;
        const n = ++jobs;
        hooks.onLine(rt.pd.name, `job ${n} from the VM: ${args.join(" ")} (${module.length} bytes)`);
        const run = defaultRun({
          appThread: jobThreads,
          cache: jobCache,
          env: config.env,
          preopens: config.preopens,
          fileService: q.service("fs", session),
          netService: q.service("net", session),
        });
        try {
          const code = await run(module, args, io, signal);
          hooks.onLine(rt.pd.name, `job ${n} exited with code ${code}`);
          return code;
        } finally {
          q.close(session, true);
        }
      },
    });
  }

  for (;;) {
    const woken = yield* seL4_Wait(u, INPUT_CAP);
    // Acknowledge before draining: a request queued from now on raises the line again.
    yield* seL4_IRQHandler_Ack(u, RUNTIME_WAKE);
    vmJobs?.pump();
    if (notifyVm) {
      notifyVm = false;
      yield* seL4_Signal(u, BASE_OUTPUT_NOTIFICATION_CAP + config.vmChannel!.id);
    }
    // Socket operations that completed on a host event (netserver-pd.ts).
    if ((woken.senderBig & NET_READY_BADGE) !== 0n) {
      let completed: NetCompletion[] = [];
      try {
        completed = yield* netCollect(u, RUNTIME_NET_EP, shm.net);
      } catch (e) {
        hooks.onEvent(
          rt.pd.name,
          `collecting from its network PD: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
      for (const c of completed) {
        const r = q.pendingNet.get(c.token);
        // Gone: its session ended meanwhile.
        if (r === undefined) continue;
        q.pendingNet.delete(c.token);
        if ("res" in c) r.resolve(c.res);
        else r.reject(new Error(`network PD: ${c.err}`));
      }
    }
    while (q.queue.length > 0 || q.closing.length > 0 || q.ops.length > 0) {
      const op = q.ops.shift();
      if (op !== undefined) {
        if (op.op === "signal") yield* seL4_Signal(u, APP_NTFN_BASE + op.thread);
        else {
          const err = yield* startThread(u, APP_TCB_BASE + op.thread, op.entry);
          if (err !== SeL4Error.NoError)
            hooks.onEvent(
              rt.pd.name,
              `starting application thread ${op.thread}: seL4 error ${SeL4Error[err]}`,
            );
        }
        continue;
      }
      const r = q.queue.shift();
      if (r !== undefined) {
        try {
          if (r.to === "fs") r.resolve(yield* fsCall(u, shm.fs, r.session, r.msg));
          else {
            q.netSessions.add(r.session);
            const a = yield* netCall(u, RUNTIME_NET_EP, shm.net, r.session, r.msg);
            if ("token" in a) q.pendingNet.set(a.token, r);
            else r.resolve(a.res);
          }
        } catch (e) {
          r.reject(e instanceof Error ? e : new Error(String(e)));
        }
        continue;
      }
      const c = q.closing.shift()!;
      if (c.fs) {
        seL4_SetMR(u, 1, c.session);
        yield* seL4_Call(u, RUNTIME_FS_EP, seL4_MessageInfo_new(FS_CLOSE, 0, 0, 2));
      }
      if (q.netSessions.delete(c.session)) {
        yield* netClose(u, RUNTIME_NET_EP, c.session);
        // A request still waiting when its session ends is answered: nothing will complete it.
        for (const [token, p] of q.pendingNet)
          if (p.session === c.session) {
            q.pendingNet.delete(token);
            p.reject(new Error(`network session ${c.session} ended with this request pending`));
          }
      }
      c.closed?.();
    }
  }
}

/**
 * The WasmEdge runtime as bootSystem takes it (system/boot.ts, PDRuntime): the CLI and tests hand
 * it in, so that system/ does not import this layer (DESIGN.md, layers).
 */
export const wasmedgeRuntime: PDRuntime<RuntimePD> = {
  name: "wasmedge",
  check: (sys) => {
    runtimeConfigs(sys);
  },
  build: (u, k, sys, loaded, hooks) => buildRuntimePDs(u, k, sys, loaded, runtimeConfigs(sys), hooks),
  threads: (r) => [r.tcb, r.fileServerTcb, r.netServerTcb],
  preload: (r) => r.preload,
};
