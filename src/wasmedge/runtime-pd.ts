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
 *   each in its own app worker (src/wasmedge/appworker.ts), and are named by their module's base
 *   name without `.wasm` (`hello`, then `hello-2` for a second one).
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
 *                        (badge WAKE_BADGE): the doorbell of its request queue (below).
 * Both PDs are native threads (WasmPlatform.native): their code runs in the main thread.
 *
 * The request queue. An application's file request arrives asynchronously, in the app channel's
 * service callback (service.ts), but a syscall can only be made by the runtime PD's thread when
 * the kernel runs it. So the callback only queues the request and raises the wake line (a device
 * interrupt, as the platform's interrupt sources do); the kernel signals the runtime PD's
 * notification; the runtime PD's program, blocked in seL4_Wait on it, wakes, acknowledges the
 * line (so that a request queued later raises it again), and drains the queue: for each request
 * an seL4_Call to the file server, whose reply resolves the callback's promise. Application
 * output is streamed line by line as `<pd>/<app>` through the boot's onLine (`[runtime/hello]`).
 */
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { deserialize, serialize } from "node:v8";
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
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
  giveIrq,
  INPUT_CAP,
  LoadError,
  type LoadedPD,
  type LoadedSystem,
} from "../system/loader.js";
import type { SdfProtectionDomain, SystemDescription } from "../system/sdf-types.js";
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
import { runWasi } from "./runner.js";
import type { AnyService } from "./service.js";
import type { Preopen, RunResult } from "./types.js";
import { defaultRun, VmJobServer } from "./vm-jobs.js";

export const RUNTIME_FS_EP = 266;
export const RUNTIME_WAKE = 267;
export const WAKE_BADGE = 1;

export interface RuntimeApp {
  /** How its output is labelled (`<pd>/<name>`). */
  name: string;
  /** Absolute path of the module. */
  path: string;
  /** argv, argv[0] being the module path as written. */
  args: string[];
}

export interface RuntimeConfig {
  apps: RuntimeApp[];
  preopens: Preopen[];
  env: [string, string][];
  /** The cross-VM channel it serves jobs on: its channel id and the ring region. */
  vmChannel: { id: number; ring: string } | null;
}

const CONFIG_KEYS = ["apps", "dirs", "env"];

export interface RuntimeConfigOptions {
  /**
   * Check that the applications can be read and the preopened directories exist (default true).
   * `capvisor verify` turns it off: it builds only the runtime's kernel objects, which do not depend
   * on the host's files, so it can analyse a description whose applications are not built yet.
   */
  hostFiles?: boolean;
}

/** Whether `pd` is a WasmEdge runtime PD (`capvisor:runtime="wasmedge"`). */
export function isRuntimePD(pd: SdfProtectionDomain): boolean {
  return pd.extensions.runtime === "wasmedge";
}

/** The runtime configuration of `pd`, checked; throws LoadError for anything wrong. */
export function runtimeConfig(
  sys: SystemDescription,
  pd: SdfProtectionDomain,
  opts: RuntimeConfigOptions = {},
): RuntimeConfig {
  const hostFiles = opts.hostFiles ?? true;
  const where = `${sys.file}:${pd.loc.line}:${pd.loc.column}: <protection_domain>: PD "${pd.name}"`;
  const bad = (msg: string): never => {
    throw new LoadError(`${where}: ${msg}`);
  };
  const ext = pd.extensions;
  if (ext.runtime !== "wasmedge")
    bad(`capvisor:runtime="${ext.runtime}" is not a runtime capvisor has; write capvisor:runtime="wasmedge"`);
  if (pd.irqs.length > 0 || pd.children.length > 0 || pd.virtualMachine !== undefined)
    bad("a runtime PD takes no <irq>, child PD or <virtual_machine>; remove them");
  // Its one channel and one mapping are the cross-VM channel (docs/vm-channel.md), if any.
  let vmChannel: RuntimeConfig["vmChannel"] = null;
  if ((ext.channel === undefined) !== (ext.ring === undefined))
    bad("capvisor:channel and capvisor:ring go together: name both the channel id and the ring region");
  if (ext.channel !== undefined) {
    const id = Number(ext.channel);
    if (
      !Number.isInteger(id) ||
      !sys.channels.some((c) => c.ends.some((e) => e.pd === pd.name && e.id === id && e.notify))
    )
      bad(
        `capvisor:channel="${ext.channel}": this PD has no channel end with id ${ext.channel} that may notify; declare the <channel>`,
      );
    const mr = sys.memoryRegions.find((r) => r.name === ext.ring);
    const map = pd.maps.find((m) => m.mr === ext.ring);
    if (mr === undefined || map === undefined || !map.perms.write)
      bad(`capvisor:ring="${ext.ring}": this PD must map memory region "${ext.ring}" with perms="rw"`);
    if (mr!.size < 0x10000)
      bad(`memory region "${ext.ring}" is ${mr!.size} bytes; a ring needs at least 64 KiB (0x10000)`);
    vmChannel = { id, ring: ext.ring! };
  }
  if (pd.maps.some((m) => m.mr !== vmChannel?.ring))
    bad("a runtime PD maps no memory region but its capvisor:ring; remove the other <map>s");
  if (sys.channels.some((c) => c.ends.some((e) => e.pd === pd.name && e.id !== vmChannel?.id)))
    bad("a runtime PD's only channel is its capvisor:channel; remove the other <channel>s naming it");
  if (pd.passive) bad('a runtime PD cannot be passive; remove passive="true"');
  const base = dirname(sys.file);

  const preopens: Preopen[] = [];
  for (const spec of (ext.dirs ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    const parts = spec.split(":");
    const ro = parts.length === 3 && parts[2] === "readonly";
    if (!(parts.length === 2 || ro) || !parts[0]!.startsWith("/") || parts[1] === "")
      bad(
        `capvisor:dirs entry "${spec}" is not guest:host or guest:host:readonly with an absolute guest path`,
      );
    const host = resolve(base, parts[1]!);
    let isDir = !hostFiles;
    try {
      if (hostFiles) isDir = statSync(host).isDirectory();
    } catch {
      // Reported below, with what to do.
    }
    if (!isDir) bad(`capvisor:dirs: "${parts[1]}" (${host}) is not a directory; create it or fix the path`);
    preopens.push({ guest: parts[0]!, host, ...(ro ? { readOnly: true } : {}) });
  }

  const env: [string, string][] = [];
  for (const kv of (ext.env ?? "").split(/\s+/).filter((s) => s !== "")) {
    const eq = kv.indexOf("=");
    if (eq <= 0) bad(`capvisor:env entry "${kv}" is not K=V`);
    env.push([kv.slice(0, eq), kv.slice(eq + 1)]);
  }

  // A runtime PD that serves a VM may start with no application of its own.
  if (pd.programImage.path === "" && ext.apps === undefined && vmChannel !== null)
    return { apps: [], preopens, env, vmChannel };
  if (pd.programImage.path === "")
    bad(
      "a runtime PD needs a <program_image> (its first application) or capvisor:channel and capvisor:ring (it serves a VM)",
    );
  const lines =
    ext.apps === undefined
      ? [[pd.programImage.path]]
      : ext.apps
          .split(";")
          .map((a) =>
            a
              .trim()
              .split(/\s+/)
              .filter((s) => s !== ""),
          )
          .filter((a) => a.length > 0);
  if (lines.length === 0) bad('capvisor:apps lists no application; write capvisor:apps="app.wasm [args...]"');
  if (resolve(base, lines[0]![0]!) !== resolve(base, pd.programImage.path))
    bad(
      `<program_image path="${pd.programImage.path}"> must name the first application of capvisor:apps ("${lines[0]![0]}")`,
    );
  const apps: RuntimeApp[] = [];
  const names = new Map<string, number>();
  for (const argv of lines) {
    const path = resolve(base, argv[0]!);
    try {
      if (hostFiles) accessSync(path, constants.R_OK);
    } catch (e) {
      bad(
        `cannot read application "${argv[0]}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); build it first`,
      );
    }
    const stem = basename(path).replace(/\.wasm$/, "");
    const n = (names.get(stem) ?? 0) + 1;
    names.set(stem, n);
    apps.push({ name: n === 1 ? stem : `${stem}-${n}`, path, args: argv });
  }
  return { apps, preopens, env, vmChannel };
}

/** Checks the `capvisor:` attributes of every PD: runtime configuration only on runtime PDs. */
export function runtimeConfigs(
  sys: SystemDescription,
  opts: RuntimeConfigOptions = {},
): Map<SdfProtectionDomain, RuntimeConfig> {
  const out = new Map<SdfProtectionDomain, RuntimeConfig>();
  for (const pd of sys.allProtectionDomains) {
    if (isRuntimePD(pd)) out.set(pd, runtimeConfig(sys, pd, opts));
    else if (pd.extensions.runtime === undefined)
      for (const key of CONFIG_KEYS)
        if (pd.extensions[key] !== undefined)
          throw new LoadError(
            `${sys.file}:${pd.loc.line}:${pd.loc.column}: <protection_domain>: PD "${pd.name}": capvisor:${key} configures a runtime PD; add capvisor:runtime="wasmedge" or remove it`,
          );
  }
  return out;
}

/** One file request waiting for the runtime PD's thread. */
interface Queued {
  session: number;
  msg: Uint8Array;
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
}

/** A running runtime PD, for users of bootSystem (tests, status). */
export interface RuntimePD {
  name: string;
  config: RuntimeConfig;
  tcb: TCB;
  fileServerTcb: TCB;
  /** The file-server PD's counters. */
  fileServer: FileServerStats;
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

/** A spare interrupt line for each runtime PD: from the top, above the per-core lines (< 32). */
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
}

/**
 * Builds the file-server PD and the doorbell of every runtime PD (root task, after buildSystem)
 * and nothing else: no program is registered or run. bootSystem's build (buildRuntimePDs) and
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
  const lines = spareLines(sys, rts.length, k.config.irqLines);
  const out: RuntimeKernelObjects[] = [];
  for (const [n, rt] of rts.entries()) {
    const line = lines[n]!;
    const fileServer = yield* buildFileServerPD(u, k, loaded, rt, RUNTIME_FS_EP, rt.index + 1);
    yield* giveIrq(u, loaded.alloc, rt.pd.name, line, rt.ntfnCap, WAKE_BADGE, rt.cnodeCap, RUNTIME_WAKE);
    out.push({ rt, config: configs.get(rt.pd)!, fileServer, wakeLine: line });
  }
  return out;
}

/**
 * Builds the kernel objects of every runtime PD (buildRuntimeKernelObjects), then registers both
 * native programs of each. Returns the running runtime PDs.
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
  for (const { rt, config, fileServer: fs, wakeLine } of yield* buildRuntimeKernelObjects(
    u,
    k,
    sys,
    loaded,
    configs,
  )) {
    const shm = new Uint8Array(SHM_BYTES);
    const stats: FileServerStats = { messages: 0, requests: 0, ops: {} };
    hooks.native(
      fs.tcb,
      fileServerPD(hooks.context(fs.tcb), {
        preopens: config.preopens,
        clientBadge: rt.index + 1,
        shm,
        stats,
      }),
    );
    let finish: (r: RunResult[]) => void = () => {};
    const done = new Promise<RunResult[]>((r) => {
      finish = r;
    });
    hooks.native(rt.tcb, runtimeProgram(hooks.context(rt.tcb), rt, config, shm, wakeLine, hooks, finish));
    out.push({ name: rt.pd.name, config, tcb: rt.tcb, fileServerTcb: fs.tcb, fileServer: stats, done });
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
  shm: Uint8Array,
  wakeLine: number,
  hooks: RuntimeHooks,
  finish: (r: RunResult[]) => void,
): Sel4Gen<void> {
  const queue: Queued[] = [];
  const closing: number[] = [];
  const wake = () => hooks.raise(wakeLine);
  // The applications start when the kernel first runs this thread.
  /** The file server as one application's session sees it: requests queued for this thread. */
  const fileServiceFor = (session: number): AnyService => ({
    handle: ((req: unknown) =>
      new Promise((resolve, reject) => {
        queue.push({ session, msg: serialize(req), resolve, reject });
        wake();
      })) as AnyService["handle"],
  });
  const runs = config.apps.map(async (app, session) => {
    const label = `${rt.pd.name}/${app.name}`;
    const out = lineSplitter((l) => hooks.onLine(label, l));
    const err = lineSplitter((l) => hooks.onLine(label, l));
    const fileService = fileServiceFor(session);
    let r: RunResult;
    try {
      r = await runWasi(readFileSync(app.path), {
        args: app.args,
        env: config.env,
        preopens: config.preopens,
        stdout: (b) => out.write(b),
        stderr: (b) => err.write(b),
        fileService,
      });
    } finally {
      out.flush();
      err.flush();
      closing.push(session);
      wake();
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
    let nextSession = config.apps.length;
    let jobs = 0;
    vmJobs = new VmJobServer(new RingRegion(hooks.region(config.vmChannel.ring)), {
      notify: () => {
        notifyVm = true;
        wake();
      },
      run: async (module, args, io, signal) => {
        const session = nextSession++;
        const n = ++jobs;
        hooks.onLine(rt.pd.name, `job ${n} from the VM: ${args.join(" ")} (${module.length} bytes)`);
        const run = defaultRun({
          env: config.env,
          preopens: config.preopens,
          fileService: fileServiceFor(session),
        });
        try {
          const code = await run(module, args, io, signal);
          hooks.onLine(rt.pd.name, `job ${n} exited with code ${code}`);
          return code;
        } finally {
          closing.push(session);
          wake();
        }
      },
    });
  }

  for (;;) {
    yield* seL4_Wait(u, INPUT_CAP);
    // Acknowledge before draining: a request queued from now on raises the line again.
    yield* seL4_IRQHandler_Ack(u, RUNTIME_WAKE);
    vmJobs?.pump();
    if (notifyVm) {
      notifyVm = false;
      yield* seL4_Signal(u, BASE_OUTPUT_NOTIFICATION_CAP + config.vmChannel!.id);
    }
    while (queue.length > 0 || closing.length > 0) {
      const q = queue.shift();
      if (q !== undefined) {
        try {
          q.resolve(yield* fsCall(u, shm, q.session, q.msg));
        } catch (e) {
          q.reject(e instanceof Error ? e : new Error(String(e)));
        }
        continue;
      }
      seL4_SetMR(u, 1, closing.shift()!);
      yield* seL4_Call(u, RUNTIME_FS_EP, seL4_MessageInfo_new(FS_CLOSE, 0, 0, 2));
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
  threads: (r) => [r.tcb, r.fileServerTcb],
};
