/**
 * The VMM protection domain (issue 5, DESIGN.md decision 6): a PD declared like any other, that
 * contains a `<virtual_machine>` and is run by capvisor's own VMM.
 *
 *   <protection_domain name="vmm" priority="120" capvisor:runtime="vmm">
 *     <map mr="vm_ring" vaddr="0x2000000" perms="rw" />
 *     <virtual_machine name="linux" priority="60" budget="8000" period="10000"
 *         capvisor:image="../build/guest/image.json" capvisor:backend="v86"
 *         capvisor:ram="0x8000000" capvisor:channel="1" capvisor:ring="vm_ring">
 *       <vcpu id="0" />
 *     </virtual_machine>
 *   </protection_domain>
 *
 * - `capvisor:image`: the guest image's manifest (scripts/build-guest.sh), relative to the file.
 * - `capvisor:backend`: the VCPU backend; "v86" (the default) is the only one so far.
 * - `capvisor:ram`: guest memory in bytes (default 128 MiB, at least 96 MiB: v86 puts the
 *   initrd at 64 MiB).
 * - `capvisor:channel` and `capvisor:ring`, together: the cross-VM channel device
 *   (docs/vm-channel.md) is connected to this PD's end `channel` of a declared channel and to the
 *   memory region `ring`, which this PD must map read-write. Without them the guest has no device
 *   and reaches nothing outside its VM.
 *
 * What runs where. The VM's vcpu is a kernel thread of its own (loader.ts, LoadedVM: the VM's
 * priority and budget, a VCPU, no capabilities) whose code is the guest under the backend, in a
 * worker (vm-worker.ts): it runs only while the kernel has that thread on a core. The VMM PD's own
 * thread runs natively (like the runtime PD): it receives the vcpu's faults and the channel's
 * notifications on its endpoint. A doorbell fault means the device published requests: the VMM
 * notifies the channel and replies, which resumes the vcpu. A notification from the other end
 * kicks the worker, so a halted guest sees the answer at once. A guest panic (or a backend
 * failure) is a user exception of the vcpu: the VMM restarts the VM from its snapshot by starting
 * its thread again; nothing outside the VM notices.
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { MessageChannel, type MessagePort } from "node:worker_threads";
import type { TCB } from "../kernel/structures.js";
import { FaultType } from "../kernel/types.js";
import { startThread } from "../pd/alloc.js";
import {
  type Sel4Gen,
  seL4_GetMR,
  seL4_GetMRBig,
  seL4_MessageInfo_get_label,
  seL4_MessageInfo_new,
  seL4_Recv,
  seL4_ReplyRecv,
  seL4_Signal,
} from "../pd/libsel4.js";
import { seL4_IRQHandler_Ack } from "../pd/libsel4-invocations.js";
import type { ThreadContext } from "../pd/machine.js";
import type { PDProgram } from "../platform/wasm-platform.js";
import type { PDRuntime, RuntimeHooks } from "../system/boot.js";
import {
  BASE_OUTPUT_NOTIFICATION_CAP,
  BASE_VM_TCB_CAP,
  FAULT_BADGE,
  giveIrq,
  INPUT_CAP,
  LoadError,
  type LoadedSystem,
  type LoadedVM,
  REPLY_CAP,
} from "../system/loader.js";
import { describeFault } from "../system/monitor.js";
import type { SdfProtectionDomain, SystemDescription } from "../system/sdf-types.js";
import { type GuestImage, loadGuestImage } from "./snapshot.js";
import {
  BACKEND_FAILED,
  CONTROL_KICK,
  CONTROL_WORDS,
  DOORBELL_ADDR,
  GUEST_PANIC,
  type VmCommand,
  type VmMessage,
  type VmWorkerData,
} from "./vm-types.js";

const MIB = 1024 * 1024;
const MIN_RAM = 96 * MIB;
const DEFAULT_RAM = 128 * MIB;
const MIN_RING = 64 * 1024;

export interface VmmConfig {
  vm: string;
  image: GuestImage;
  memoryBytes: number;
  /** The cross-VM channel: this PD's channel id and the ring region's name. */
  channel: { id: number; ring: string } | null;
}

/** The configuration of VMM PD `pd`, checked; throws LoadError naming what is wrong. */
export function vmmConfig(sys: SystemDescription, pd: SdfProtectionDomain): VmmConfig {
  const vm = pd.virtualMachine;
  const at = (loc: { line: number; column: number }, el: string) =>
    `${sys.file}:${loc.line}:${loc.column}: <${el}>: PD "${pd.name}"`;
  const bad = (msg: string, where = at(pd.loc, "protection_domain")): never => {
    throw new LoadError(`${where}: ${msg}`);
  };
  if (vm === undefined) return bad('a VMM PD (capvisor:runtime="vmm") needs a <virtual_machine>; add one');
  const vmAt = at(vm.loc, "virtual_machine");
  if (pd.programImage.path !== "")
    bad(
      "the VMM is capvisor's own; remove the <program_image> of this PD",
      at(pd.programImage.loc, "program_image"),
    );
  if (pd.irqs.length > 0 || pd.children.length > 0) bad("a VMM PD takes no <irq> or child PD; remove them");
  if (pd.passive) bad('a VMM PD cannot be passive; remove passive="true"');
  for (const c of sys.channels)
    for (const e of c.ends)
      if (e.pd === pd.name && e.id === RESTART_CHANNEL)
        bad(
          `channel id ${RESTART_CHANNEL} of a VMM PD is its restart doorbell; give the channel another id`,
          at(c.loc, "channel"),
        );
  if (vm.vcpus.length !== 1)
    bad(`virtual machine "${vm.name}" must have exactly one <vcpu> (v86 emulates one CPU)`, vmAt);
  if (vm.maps.length > 0)
    bad(
      "the guest's memory is the backend's own: remove the <map> inside <virtual_machine> and set capvisor:ram",
      vmAt,
    );
  for (const key of Object.keys(pd.extensions))
    if (key !== "runtime")
      bad(`capvisor:${key} is not a setting of a VMM PD; the VM's settings go on its <virtual_machine>`);
  const ext = vm.extensions;
  for (const key of Object.keys(ext))
    if (!["image", "backend", "ram", "channel", "ring"].includes(key))
      bad(
        `capvisor:${key} is not a virtual machine setting; use capvisor:image, backend, ram, channel or ring`,
        vmAt,
      );
  const backend = ext.backend ?? "v86";
  if (backend !== "v86")
    bad(`capvisor:backend="${backend}" is not a backend capvisor has; write capvisor:backend="v86"`, vmAt);

  if (ext.image === undefined)
    bad(
      'capvisor:image is missing: name the guest image, e.g. capvisor:image="build/guest/image.json"',
      vmAt,
    );
  const manifest = resolve(dirname(sys.file), ext.image!);
  if (!existsSync(manifest))
    bad(`no guest image at ${manifest}: build it with "sh scripts/build-guest.sh" (npm start does)`, vmAt);
  let image: GuestImage;
  try {
    image = loadGuestImage(dirname(manifest));
  } catch (e) {
    return bad(`${(e as Error).message}; rebuild it with "sh scripts/build-guest.sh"`, vmAt);
  }
  for (const f of [image.kernel, image.initrd])
    if (!existsSync(f)) bad(`the guest image lacks ${f}; rebuild it with "sh scripts/build-guest.sh"`, vmAt);

  let memoryBytes = DEFAULT_RAM;
  if (ext.ram !== undefined) {
    const n = Number(ext.ram);
    if (!Number.isInteger(n) || n < MIN_RAM || n > 2048 * MIB || n % MIB !== 0)
      bad(
        `capvisor:ram="${ext.ram}" must be a whole number of MiB between 96 MiB and 2 GiB (e.g. 0x8000000)`,
        vmAt,
      );
    memoryBytes = n;
  }

  let channel: VmmConfig["channel"] = null;
  if ((ext.channel === undefined) !== (ext.ring === undefined))
    bad("capvisor:channel and capvisor:ring go together: name both the channel id and the ring region", vmAt);
  if (ext.channel !== undefined) {
    const id = Number(ext.channel);
    const declared = sys.channels.some((c) =>
      c.ends.some((e) => e.pd === pd.name && e.id === id && e.notify),
    );
    if (!Number.isInteger(id) || !declared)
      bad(
        `capvisor:channel="${ext.channel}": PD "${pd.name}" has no channel end with id ${ext.channel} that may notify; declare the <channel>`,
        vmAt,
      );
    const ring = ext.ring!;
    const mr = sys.memoryRegions.find((r) => r.name === ring);
    const map = pd.maps.find((m) => m.mr === ring);
    if (mr === undefined || map === undefined || !map.perms.write)
      bad(`capvisor:ring="${ring}": PD "${pd.name}" must map memory region "${ring}" with perms="rw"`, vmAt);
    if (mr!.size < MIN_RING)
      bad(`memory region "${ring}" is ${mr!.size} bytes; a ring needs at least 64 KiB (0x10000)`, vmAt);
    channel = { id, ring };
  }
  return { vm: vm.name, image, memoryBytes, channel };
}

/**
 * The VMM PD's restart doorbell: an IRQHandler (slot VMM_RESTART_IRQ of its CSpace) of a spare
 * line bound to its notification with badge RESTART_BADGE, which VmmPD.restart() raises. Channel
 * id 61, the highest Microkit allows, is therefore not available to a VMM PD.
 */
export const VMM_RESTART_IRQ = 394;
/** A VM that faults more than this many times in this window is left stopped. */
const MAX_RESTARTS_IN_WINDOW = 3;
const RESTART_WINDOW_MS = 30_000;
export const RESTART_CHANNEL = 61;
const RESTART_BADGE = 1n << BigInt(RESTART_CHANNEL);

/** A running VMM PD and its VM. */
export interface VmmPD {
  pd: string;
  vm: string;
  tcb: TCB;
  vcpuTcb: TCB;
  /** Send bytes to the guest's serial console. */
  sendConsole(bytes: Uint8Array): void;
  /**
   * Restart the VM from its snapshot (a guest that hangs, or on a user's request): rings the
   * VMM PD's restart doorbell; the VMM restarts the vcpu's thread, as it does after a panic.
   */
  restart(): void;
  /** Every byte the guest writes to its console. Returns a function that stops listening. */
  onConsole(listener: (bytes: Uint8Array) => void): () => void;
  stats: {
    doorbells: number;
    kicks: number;
    restarts: number;
    lastReady: { restoredMs: number; fromSnapshot: boolean } | null;
  };
}

interface Pending {
  config: VmmConfig;
  port: MessagePort;
  control: SharedArrayBuffer;
}

/** Made by vmProgram, picked up by build: the worker's port and control words of each VMM PD. */
const pending = new WeakMap<SdfProtectionDomain, Pending>();

function vmProgram(
  sys: SystemDescription,
  pd: SdfProtectionDomain,
  region: (name: string) => SharedArrayBuffer,
): PDProgram {
  const config = vmmConfig(sys, pd);
  const { port1, port2 } = new MessageChannel();
  const control = new SharedArrayBuffer(4 * CONTROL_WORDS);
  pending.set(pd, { config, port: port1, control });
  const data: VmWorkerData = {
    vm: config.vm,
    image: config.image,
    memoryBytes: config.memoryBytes,
    snapshotDir: config.image.dir ?? dirname(config.image.kernel),
    ring: config.channel === null ? null : region(config.channel.ring),
    control,
    port: port2,
  };
  return {
    name: config.vm,
    wasm: new Uint8Array(0),
    maps: [],
    setvars: [],
    worker: { url: new URL("./vm-worker.js", import.meta.url), data, transfer: [port2] },
  };
}

/** The VMM PD's program: serve the vcpu's faults and the channel's notifications. */
function* vmmThread(
  u: ThreadContext,
  vmm: VmmPD,
  config: VmmConfig,
  control: Int32Array,
  vcpuId: number,
  entry: number,
  hooks: RuntimeHooks,
): Sel4Gen<void> {
  const channelBit = config.channel === null ? 0n : 1n << BigInt(config.channel.id);
  /** When the VM's recent faults came (ms), for the restart limit. */
  const recentFaults: number[] = [];
  let r = yield* seL4_Recv(u, INPUT_CAP, REPLY_CAP);
  for (;;) {
    const badge = r.senderBig;
    if ((badge & FAULT_BADGE) !== 0n && Number(badge & 0xffn) === vcpuId) {
      const label = seL4_MessageInfo_get_label(r.info);
      if (
        label === FaultType.VMFault &&
        seL4_GetMRBig(u, 1) === BigInt(DOORBELL_ADDR) &&
        config.channel !== null
      ) {
        vmm.stats.doorbells++;
        yield* seL4_Signal(u, BASE_OUTPUT_NOTIFICATION_CAP + config.channel.id);
        // Replying to a VM fault restarts the vcpu where it stopped (seL4 manual §6.2.3).
        r = yield* seL4_ReplyRecv(u, INPUT_CAP, seL4_MessageInfo_new(0, 0, 0, 0), REPLY_CAP);
        continue;
      }
      const what =
        label === FaultType.UserException && seL4_GetMR(u, 3) === GUEST_PANIC
          ? "the guest kernel panicked"
          : label === FaultType.UserException && seL4_GetMR(u, 3) === BACKEND_FAILED
            ? "the VCPU backend failed"
            : describeFault(u, label);
      // A VM that keeps failing right after its restart (a broken snapshot or backend) is left
      // stopped, blocked on its fault, rather than restarted in a loop.
      const now = Date.now();
      while (recentFaults.length > 0 && now - recentFaults[0]! > RESTART_WINDOW_MS) recentFaults.shift();
      recentFaults.push(now);
      if (recentFaults.length > MAX_RESTARTS_IN_WINDOW) {
        hooks.onEvent(
          config.vm,
          `${what}; it failed ${recentFaults.length} times in ${RESTART_WINDOW_MS / 1000} s, so it stays stopped (restart() tries again)`,
        );
      } else {
        vmm.stats.restarts++;
        hooks.onEvent(config.vm, `${what}; restarting the VM from its snapshot`);
        // Starting the thread at its entry again makes the worker restore the snapshot.
        yield* startThread(u, BASE_VM_TCB_CAP + vcpuId, entry);
      }
    } else if ((badge & RESTART_BADGE) !== 0n) {
      yield* seL4_IRQHandler_Ack(u, VMM_RESTART_IRQ);
      recentFaults.length = 0;
      vmm.stats.restarts++;
      hooks.onEvent(config.vm, "restarting the VM from its snapshot, as asked");
      yield* startThread(u, BASE_VM_TCB_CAP + vcpuId, entry);
    }
    if ((badge & channelBit) !== 0n && (badge & FAULT_BADGE) === 0n) {
      vmm.stats.kicks++;
      Atomics.add(control, CONTROL_KICK, 1);
      Atomics.notify(control, CONTROL_KICK);
    }
    r = yield* seL4_Recv(u, INPUT_CAP, REPLY_CAP);
  }
}

/**
 * The kernel objects the VMM runtime adds after the loader: each VMM PD's restart doorbell. Its
 * interrupt lines are spare ones from the bottom of the range above the per-core lines (the
 * WasmEdge runtime PDs take theirs from the top). capvisor verify builds them too. Returns each
 * VM's restart line.
 */
export function* buildVmmKernelObjects(
  u: ThreadContext,
  sys: SystemDescription,
  loaded: LoadedSystem,
): Sel4Gen<Map<LoadedVM, number>> {
  const out = new Map<LoadedVM, number>();
  const used = new Set(sys.allProtectionDomains.flatMap((pd) => pd.irqs.map((i) => i.irq)));
  let nextLine = 32;
  for (const vm of loaded.vms) {
    if (vm.vmm.pd.extensions.runtime !== "vmm") continue;
    while (used.has(nextLine)) nextLine++;
    const line = nextLine++;
    yield* giveIrq(
      u,
      loaded.alloc,
      vm.vmm.pd.name,
      line,
      vm.vmm.ntfnCap,
      RESTART_BADGE,
      vm.vmm.cnodeCap,
      VMM_RESTART_IRQ,
    );
    out.set(vm, line);
  }
  return out;
}

function* buildVmms(
  u: ThreadContext,
  sys: SystemDescription,
  loaded: LoadedSystem,
  hooks: RuntimeHooks,
): Sel4Gen<VmmPD[]> {
  const out: VmmPD[] = [];
  const lines = yield* buildVmmKernelObjects(u, sys, loaded);
  for (const vm of loaded.vms) {
    const restartLine = lines.get(vm);
    if (restartLine === undefined) continue;
    const p = pending.get(vm.vmm.pd);
    if (p === undefined)
      throw new LoadError(`PD "${vm.vmm.pd.name}": its VM has no program (internal error)`);
    const listeners = new Set<(bytes: Uint8Array) => void>();
    let line = "";
    const vmm: VmmPD = {
      pd: vm.vmm.pd.name,
      vm: vm.name,
      tcb: vm.vmm.tcb,
      vcpuTcb: vm.tcb,
      sendConsole: (bytes) => p.port.postMessage({ type: "input", bytes } satisfies VmCommand),
      restart: () => hooks.raise(restartLine),
      onConsole: (l) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      stats: { doorbells: 0, kicks: 0, restarts: 0, lastReady: null },
    };
    p.port.on("message", (m: VmMessage) => {
      if (m.type === "console") {
        for (const l of listeners) l(m.bytes);
        // Lines for `capvisor up`: the guest's CR LF line ends, without the CRs.
        line += Buffer.from(m.bytes).toString("latin1");
        let nl = line.indexOf("\n");
        while (nl >= 0) {
          hooks.onLine(vm.name, line.slice(0, nl).replace(/\r/g, ""));
          line = line.slice(nl + 1);
          nl = line.indexOf("\n");
        }
      } else if (m.type === "progress") hooks.onStep(`${vm.name}: ${m.message}`);
      else if (m.type === "error") hooks.onEvent(vm.name, m.message);
      else vmm.stats.lastReady = { restoredMs: m.restoredMs, fromSnapshot: m.fromSnapshot };
    });
    p.port.unref();
    hooks.native(
      vm.vmm.tcb,
      vmmThread(
        hooks.context(vm.vmm.tcb),
        vmm,
        p.config,
        new Int32Array(p.control),
        vm.vcpuId,
        vm.entry,
        hooks,
      ),
    );
    out.push(vmm);
  }
  void sys;
  return out;
}

/** capvisor's VMM as bootSystem takes it (system/boot.ts, PDRuntime). */
export const vmmRuntime: PDRuntime<VmmPD> = {
  name: "vmm",
  check: (sys) => {
    for (const pd of sys.allProtectionDomains) if (pd.extensions.runtime === "vmm") vmmConfig(sys, pd);
  },
  vmProgram,
  build: (u, _k, sys, loaded, hooks) => buildVmms(u, sys, loaded, hooks),
  threads: (v) => [v.tcb],
};
