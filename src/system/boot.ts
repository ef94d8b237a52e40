/**
 * Boot a system from its description: parse and validate it, load and instrument every PD's
 * program, boot the kernel, build the system with the loader (syscalls from the root task),
 * start the monitor and the platform. `capvisor up` and the tests use this.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { bootKernel } from "../kernel/core/boot.js";
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
import { ThreadState } from "../kernel/types.js";
import type { Sel4Gen } from "../pd/libsel4.js";
import type { ThreadContext } from "../pd/machine.js";
import { runSync, SyncThread } from "../pd/syncthread.js";
import { instrumentPreemption } from "../pd/wasm/instrument.js";
import { leBytes, type SetVar, type SharedMapping } from "../platform/channel.js";
import { DC_CALLS } from "../platform/direct-call.js";
import {
  type PDProgram,
  type PlatformOptions,
  type RegisterPage,
  type ThreadStatus,
  WasmPlatform,
} from "../platform/wasm-platform.js";
import { planDirectCalls } from "./direct-calls.js";
import { buildSystem, LoadError, type LoadedSystem } from "./loader.js";
import { monitor } from "./monitor.js";
import { loadSdf } from "./sdf.js";
import type { SdfProtectionDomain, SystemDescription } from "./sdf-types.js";

/** What bootSystem gives a runtime so that its PDs' threads run on the platform. */
export interface RuntimeHooks {
  onLine: (pd: string, line: string) => void;
  onEvent: (pd: string, message: string) => void;
  /** A long step's progress (booting a guest the first time), as BootOptions.onStep. */
  onStep: (message: string) => void;
  /** Raise an interrupt line (WasmPlatform.raise). */
  raise: (line: number) => void;
  /** Register a worker program; returns the entry a TCB's pc must hold to run it (WasmPlatform.program). */
  program: (p: PDProgram) => number;
  /** Register a native thread's program (WasmPlatform.native). */
  native: (tcb: TCB, gen: Sel4Gen<void>) => void;
  /** A ThreadContext for a thread (a SyncThread). */
  context: (tcb: TCB) => ThreadContext;
  /** The shared bytes of a memory region of the description (what every mapping of it sees). */
  region: (name: string) => SharedArrayBuffer;
}

/**
 * A runtime that runs the PDs a description marks with `capvisor:runtime="<name>"`, such as the
 * WasmEdge runtime PD (src/wasmedge/runtime-pd.ts). The caller hands it in, so that system/ does
 * not import the layers below it (DESIGN.md, layers).
 */
export interface PDRuntime<R> {
  readonly name: string;
  /** Check the configuration of every PD of the description (throws LoadError), before loading. */
  check(sys: SystemDescription): void;
  /** After the loader, as the root task: build what its PDs need and start them. */
  build(
    u: ThreadContext,
    k: Kernel,
    sys: SystemDescription,
    loaded: LoadedSystem,
    hooks: RuntimeHooks,
  ): Sel4Gen<R[]>;
  /** The kernel threads it runs natively, for status(). */
  threads(r: R): TCB[];
  /** Threads of its own with worker programs whose workers load at boot, with the PDs'. */
  preload?(r: R): TCB[];
  /**
   * For a PD of this runtime that declares a `<virtual_machine>`: the program its VM's thread runs
   * (a worker of the runtime's own, PDProgram.worker). Called before the loader, once per such PD.
   */
  vmProgram?(
    sys: SystemDescription,
    pd: SdfProtectionDomain,
    region: (name: string) => SharedArrayBuffer,
  ): PDProgram;
}

export interface BootOptions<R = never> {
  /**
   * The runtimes for PDs marked `capvisor:runtime="<name>"` (the WasmEdge runtime PD, the VMM);
   * a PD naming a runtime not given here is a load error.
   */
  runtimes?: readonly PDRuntime<R>[];
  /** Cores (default: the host's, at most 8). */
  cores?: number;
  onLine?: (pd: string, line: string) => void;
  /** Faults and load problems, worded for the user. */
  onEvent?: (pd: string, message: string) => void;
  /** Called before each long step, for progress display. */
  onStep?: (message: string) => void;
  /**
   * Make protected calls to qualifying passive servers directly in the caller's worker
   * (system/direct-calls.ts; default true). False: every call goes through the kernel.
   */
  directCalls?: boolean;
  /** Platform settings for measurements (the benchmarks): fuel and the syscall probe. */
  platform?: Pick<PlatformOptions, "fuel" | "onSyscall" | "onInterrupt" | "hostPriorities">;
}

export interface BootedSystem<R = never> {
  description: SystemDescription;
  kernel: Kernel;
  platform: WasmPlatform;
  loaded: LoadedSystem;
  /** What each runtime built for its PDs (the WasmEdge runtime PDs, the VMMs), in runtime order. */
  runtimes: R[];
  /**
   * Each PD thread's name, kernel thread state, core and host thread (0 for the native threads,
   * which run in the kernel's thread).
   */
  status(): ThreadStatus[];
  /** Direct protected calls made so far, by server (system/direct-calls.ts). */
  directCalls(): Record<string, number>;
  /**
   * A memory region of the description, as a device's register page: give it to a device the
   * host program arms (WasmPlatform.periodicTimer's `registers`), and the PDs that map the region
   * see the device's registers. Throws a LoadError for a region the description does not have.
   */
  region(name: string): RegisterPage;
  stop(): Promise<void>;
}

/** Read and instrument a PD's program image (a path relative to the description's folder). */
function loadProgram(sys: SystemDescription, pd: SdfProtectionDomain): Uint8Array {
  const path = resolve(dirname(sys.file), pd.programImage.path);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const where = `${sys.file}:${pd.programImage.loc.line}:${pd.programImage.loc.column}`;
    throw new LoadError(
      `${where}: <program_image>: cannot read "${pd.programImage.path}" for PD "${pd.name}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); build it first`,
    );
  }
  try {
    return instrumentPreemption(bytes);
  } catch (e) {
    throw new LoadError(`PD "${pd.name}": ${path} is not a valid Wasm module: ${(e as Error).message}`);
  }
}

/**
 * libmicrokit's variables (include/microkit.h): the PD's name, whether it is passive, and the
 * masks of the channels it may notify, call and ack IRQs on. Optional: a plain seL4 program
 * has none of them.
 */
function microkitVars(sys: SystemDescription, pd: SdfProtectionDomain): SetVar[] {
  let notifications = 0n;
  let pps = 0n;
  for (const ch of sys.channels)
    for (const end of ch.ends)
      if (end.pd === pd.name) {
        if (end.notify) notifications |= 1n << BigInt(end.id);
        if (end.pp) pps |= 1n << BigInt(end.id);
      }
  let irqs = 0n;
  for (const irq of pd.irqs) irqs |= 1n << BigInt(irq.id);
  const name = new TextEncoder().encode(pd.name).subarray(0, 63);
  const nameBytes = new Uint8Array(name.length + 1);
  nameBytes.set(name);
  return [
    { symbol: "microkit_name", bytes: nameBytes, optional: true },
    { symbol: "microkit_passive", bytes: new Uint8Array([pd.passive ? 1 : 0]), optional: true },
    { symbol: "microkit_notifications", bytes: leBytes(notifications, 8), optional: true },
    { symbol: "microkit_pps", bytes: leBytes(pps, 8), optional: true },
    { symbol: "microkit_irqs", bytes: leBytes(irqs, 8), optional: true },
  ];
}

export async function bootSystem<R = never>(
  path: string,
  opts: BootOptions<R> = {},
): Promise<BootedSystem<R>> {
  const step = opts.onStep ?? (() => {});
  step(`reading ${path}`);
  const sys = await loadSdf(path, { cores: opts.cores ?? 2 });
  const cores = opts.cores ?? 2;
  for (const pd of sys.allProtectionDomains)
    if (pd.cpu >= cores)
      throw new LoadError(`PD "${pd.name}" asks for cpu ${pd.cpu}, but the system has ${cores} core(s)`);

  const runtimes = opts.runtimes ?? [];
  const isRuntimePD = (pd: SdfProtectionDomain) => pd.extensions.runtime !== undefined;
  const runtimeOf = (pd: SdfProtectionDomain) => runtimes.find((r) => r.name === pd.extensions.runtime);
  for (const pd of sys.allProtectionDomains) {
    if (isRuntimePD(pd) && runtimeOf(pd) === undefined)
      throw new LoadError(
        `${sys.file}:${pd.loc.line}:${pd.loc.column}: <protection_domain>: PD "${pd.name}": capvisor:runtime="${pd.extensions.runtime}" is not a runtime capvisor has here${runtimes.length === 0 ? "" : `; the runtimes are ${runtimes.map((r) => `"${r.name}"`).join(", ")}`}`,
      );
    const vm = pd.virtualMachine;
    if (vm !== undefined && runtimeOf(pd)?.vmProgram === undefined)
      throw new LoadError(
        `${sys.file}:${vm.loc.line}:${vm.loc.column}: <virtual_machine>: "${vm.name}" needs capvisor's VMM as its PD: add capvisor:runtime="vmm" to PD "${pd.name}"`,
      );
  }
  for (const r of runtimes) r.check(sys);
  const imageCount = sys.allProtectionDomains.filter((pd) => !isRuntimePD(pd)).length;
  if (imageCount > 0) step(`loading and instrumenting ${imageCount} program image(s)`);
  // A runtime PD's program_image is its first application, run by the runtime, not a PD program.
  const images = sys.allProtectionDomains.map((pd) => (isRuntimePD(pd) ? null : loadProgram(sys, pd)));

  const direct =
    opts.directCalls === false
      ? { servers: new Map(), callers: new Map(), notDirect: new Map() }
      : planDirectCalls(sys, images);

  // One shared backing per memory region; every PD that maps it sees it at its own vaddr.
  const backing = new Map<string, SharedArrayBuffer>();
  const locks = new Map<string, SharedArrayBuffer>();
  for (const mr of sys.memoryRegions) {
    locks.set(mr.name, new SharedArrayBuffer(4));
    const b = new SharedArrayBuffer(mr.size);
    if (mr.prefillPath !== undefined)
      new Uint8Array(b).set(readFileSync(resolve(dirname(sys.file), mr.prefillPath)).subarray(0, mr.size));
    backing.set(mr.name, b);
  }

  step(`booting the kernel on ${cores} core(s) and building the system`);
  const k = bootKernel({ cores, memoryBytes: 512 * 1024 * 1024 });
  const platform = new WasmPlatform(k, {
    ...opts.platform,
    ...(opts.onLine !== undefined ? { onLine: opts.onLine } : {}),
    ...(opts.onEvent !== undefined ? { onEvent: opts.onEvent } : {}),
  });
  const entries = sys.allProtectionDomains.map((pd, i) => {
    // Entry 0 belongs to no program: a runtime PD's thread runs natively (runtime-pd.ts).
    if (images[i] === null) return 0;
    const maps: SharedMapping[] = pd.maps.map((m) => {
      const mr = sys.memoryRegions.find((r) => r.name === m.mr)!;
      if (m.vaddr + mr.size > 2 ** 32)
        throw new LoadError(
          `${sys.file}:${m.loc.line}:${m.loc.column}: <map>: a Wasm PD addresses 4 GiB; "${m.mr}" at 0x${m.vaddr.toString(16)} does not fit`,
        );
      return {
        backing: backing.get(m.mr)!,
        lock: locks.get(m.mr)!,
        vaddr: m.vaddr,
        size: mr.size,
        writable: m.perms.write,
      };
    });
    const setvars: SetVar[] = pd.setvars.map((v) => {
      if (v.kind === "vaddr") return { symbol: v.symbol, bytes: leBytes(v.vaddr, 4), optional: false };
      const mr = sys.memoryRegions.find((r) => r.name === (v.kind === "size" ? v.mr : v.region))!;
      return {
        symbol: v.symbol,
        bytes: leBytes(v.kind === "size" ? mr.size : (mr.physAddr ?? 0), 4),
        optional: false,
      };
    });
    setvars.push(...microkitVars(sys, pd));
    const server = direct.servers.get(pd);
    const calls = direct.callers.get(pd);
    const program: PDProgram = {
      name: pd.name,
      wasm: server?.wasm ?? images[i]!,
      maps,
      setvars,
      ...(server ? { direct: server.init } : {}),
      ...(calls ? { directCalls: calls } : {}),
    };
    return platform.program(program);
  });
  const root = new SyncThread(k.rootThread);
  const region = (name: string): SharedArrayBuffer => {
    const b = backing.get(name);
    if (b === undefined) throw new LoadError(`there is no memory region "${name}"`);
    return b;
  };
  const vmEntries = new Map<SdfProtectionDomain, number>();
  for (const pd of sys.allProtectionDomains)
    if (pd.virtualMachine !== undefined)
      vmEntries.set(pd, platform.program(runtimeOf(pd)!.vmProgram!(sys, pd, region)));
  const loaded = runSync(
    k,
    root,
    buildSystem(
      root,
      k,
      sys,
      (_pd, i) => entries[i]!,
      (pd) => vmEntries.get(pd)!,
    ),
    () => platform.now(),
  );
  const hooks: RuntimeHooks = {
    onLine: (pd, line) => opts.onLine?.(pd, line),
    onEvent: (pd, msg) => opts.onEvent?.(pd, msg),
    onStep: (msg) => step(msg),
    raise: (line) => platform.raise(line),
    program: (p) => platform.program(p),
    native: (tcb, gen) => platform.native(tcb, gen),
    context: (tcb) => new SyncThread(tcb),
    region,
  };
  const built: { runtime: PDRuntime<R>; r: R }[] = [];
  for (const runtime of runtimes)
    for (const r of runSync(k, root, runtime.build(root, k, sys, loaded, hooks), () => platform.now()))
      built.push({ runtime, r });
  platform.native(
    k.rootThread,
    monitor(root, loaded, (pd, msg) => opts.onEvent?.(pd, msg)),
  );
  step("starting");
  await platform.preload([
    ...loaded.pds.map((p) => p.tcb),
    ...loaded.vms.map((v) => v.tcb),
    ...built.flatMap(({ runtime, r }) => runtime.preload?.(r) ?? []),
  ]);
  platform.start();
  return {
    description: sys,
    kernel: k,
    platform,
    loaded,
    runtimes: built.map((b) => b.r),
    // Native threads (runtime PDs and their file servers, VMMs) have no worker: read their TCBs.
    status: () => [
      ...platform.status(),
      ...built.flatMap(({ runtime, r }) =>
        runtime
          .threads(r)
          .map((t) => ({ name: t.name, state: ThreadState[t.state]!, core: t.core, hostThread: 0 })),
      ),
    ],
    directCalls: () =>
      Object.fromEntries(
        [...direct.servers].map(([pd, s]) => [pd.name, Atomics.load(new Int32Array(s.init.lock), DC_CALLS)]),
      ),
    region: (name) => ({ backing: region(name), lock: locks.get(name)! }),
    stop: () => platform.stop(),
  };
}
