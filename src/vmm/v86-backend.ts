// The v86 VCPU backend (DESIGN.md decision 6): an x86 PC emulated by v86 (npm, a Rust core
// compiled to Wasm with an x86-to-Wasm JIT) running a stock Debian i386 kernel in this thread.
//
// v86 normally schedules itself: its do_tick runs the CPU's main loop and re-arms with
// setImmediate/setTimeout. That would let the guest run whenever this thread's event loop is
// free, not when the kernel grants the VMM a core. So capvisor never starts v86's scheduler
// (autostart off, V86.run never called) and disables its re-arm hook; run(sliceMs) calls the
// CPU's main loop itself, which is the same call v86's do_tick makes. Between two run() calls
// no guest instruction executes and no device timer fires.
//
// Every untyped access to v86's internals is in this file, checked by machineOf() against the
// interfaces in v86-types.ts.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { V86, type V86Options } from "v86";
import type { V86Cpu, V86Machine } from "./v86-types.js";
import type { GuestBootSpec, PortHandlers, RunResult, VcpuBackend } from "./vcpu-backend.js";

export const DEFAULT_GUEST_MEMORY = 128 * 1024 * 1024;
/**
 * v86 loads the initrd at 64 MiB (its CPU init raises RAM to at least 64 MiB when an initrd is
 * given), so the initramfs and the kernel's unpacked copy need room above that.
 */
export const MIN_GUEST_MEMORY = 96 * 1024 * 1024;
/** Debian's seabios package: v86 (npm) ships no BIOS. */
export const DEFAULT_BIOS = "/usr/share/seabios/bios.bin";
export const DEFAULT_VGA_BIOS = "/usr/share/seabios/vgabios-stdvga.bin";
/** The guest talks over serial only; 2 MiB of VGA RAM is plenty for the VGA BIOS and keeps states small. */
const VGA_MEMORY = 2 * 1024 * 1024;
const EFLAGS_IF = 0x200;
/** v86 puts JIT modules in its function table after its own 1024 entries (WASM_TABLE_OFFSET). */
const JIT_TABLE_OFFSET = 1024;

/**
 * The guest's clock. v86 reads host time (performance.now) for its TSC and its device timers,
 * and its state holds absolute timestamps (the PIT's counter start times) and the TSC. On
 * restore its set_tsc derives the new TSC offset from the current one, so a machine restored a
 * second time, after a first restore from a state made in another process (whose
 * performance.now started elsewhere), gets its TSC moved by that difference: Linux's clock then
 * stands still until the TSC catches up (measured: a 14.5 s stall after the second restore of
 * a snapshot made 14.5 s into a cold boot). So every machine has its own clock, host time plus
 * an offset that restoreState sets so that the clock continues from the saved moment, which
 * keeps v86's TSC offset at zero and its timestamps in the past. v86 reads it through this
 * function: the Wasm core via its `microtick` import, the JS devices via v86's static
 * `microtick`. Both are only read while a backend method runs synchronously, which sets
 * `activeClockOffset` for its machine.
 */
let activeClockOffset = 0;
function guestClock(): number {
  return performance.now() + activeClockOffset;
}

/**
 * A backend state: "CVV86ST2" (8 bytes), the guest clock at saving as a little-endian f64 (ms),
 * then v86's own state.
 */
const STATE_MAGIC = "CVV86ST2";
const STATE_HEADER = 16;

export interface V86BackendOptions {
  readonly biosPath?: string;
  readonly vgaBiosPath?: string;
  /** v86's Wasm core; default: build/v86.wasm of the installed v86 package. */
  readonly wasmPath?: string;
  /**
   * How v86's JIT output becomes code. "sync" (default): compiled and installed at once, inside
   * the slice that generated it, so a VMM thread that never returns to its event loop (it
   * blocks in Atomics.wait between slices) still gets compiled code, and the compile time is
   * charged to the guest's own slice. "async": v86's own way, installed when the thread's
   * event loop next runs. Without compiled code the guest runs about 4 times slower
   * (`seq 1 30000 | md5sum`: 10 s against 2.3 s).
   */
  readonly jit?: "sync" | "async";
}

/** A saved machine to start from instead of a cold boot. */
export interface SavedMachine {
  readonly state: Uint8Array;
}

const requireHere = createRequire(import.meta.url);
const v86PackageDir = dirname(requireHere.resolve("v86/package.json"));

/** The backend version saved states are tied to: v86's package version and capvisor's state format. */
export function v86BackendVersion(): string {
  return `v86 ${v86Version()} ${STATE_MAGIC}`;
}

/** The installed v86 package's version, e.g. "0.5.462+g5f9a90f". */
export function v86Version(): string {
  const pkg: unknown = JSON.parse(readFileSync(join(v86PackageDir, "package.json"), "utf8"));
  if (typeof pkg === "object" && pkg !== null && "version" in pkg && typeof pkg.version === "string") {
    return pkg.version;
  }
  throw new Error("v86: package.json has no version");
}

// One compiled v86 core per path and process: compiling the 2 MB module costs more than
// instantiating it, and every VM (and every restore into a fresh machine) needs an instance.
const compiledCores = new Map<string, Promise<WebAssembly.Module>>();
function compiledCore(wasmPath: string): Promise<WebAssembly.Module> {
  let core = compiledCores.get(wasmPath);
  if (!core) {
    core = WebAssembly.compile(readFileSync(wasmPath));
    compiledCores.set(wasmPath, core);
  }
  return core;
}

function arrayBufferOf(bytes: Uint8Array): ArrayBuffer {
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

function checkStateHeader(state: Uint8Array): void {
  if (
    state.byteLength < STATE_HEADER + 16 ||
    new TextDecoder().decode(state.subarray(0, 8)) !== STATE_MAGIC
  ) {
    throw new Error(`not a ${v86BackendVersion()} state`);
  }
}

/**
 * Memory size recorded in a backend state. v86's part starts with four i32 words (magic, format
 * version, total length, info length), then a JSON info block whose `state[0]` is the RAM size.
 */
export function v86StateMemoryBytes(backendState: Uint8Array): number {
  checkStateHeader(backendState);
  const state = backendState.subarray(STATE_HEADER);
  const header = new DataView(state.buffer, state.byteOffset, 16);
  const infoLength = header.getInt32(12, true);
  if (infoLength <= 0 || 16 + infoLength > state.byteLength) throw new Error("v86 state: bad info block");
  const info: unknown = JSON.parse(new TextDecoder().decode(state.subarray(16, 16 + infoLength)));
  if (typeof info === "object" && info !== null && "state" in info && Array.isArray(info.state)) {
    const size: unknown = info.state[0];
    if (typeof size === "number" && size > 0) return size;
  }
  throw new Error("v86 state: no memory size (compressed or foreign state?)");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
function hasFunctions(value: unknown, names: readonly string[]): value is Record<string, unknown> {
  return isObject(value) && names.every((name) => typeof value[name] === "function");
}

/** Find and check v86's internal machine object under the public V86 instance. */
function machineOf(emulator: V86): V86Machine {
  const missing = (what: string): never => {
    throw new Error(
      `v86 ${v86Version()}: ${what} not found; capvisor's v86 backend needs it (see v86-types.ts)`,
    );
  };
  const machine: unknown = (emulator as unknown as Record<string, unknown>).v86;
  if (!hasFunctions(machine, ["yield", "save_state", "restore_state"])) return missing("emulator.v86");
  const cpu = machine.cpu;
  if (!hasFunctions(cpu, ["main_loop", "device_raise_irq", "device_lower_irq"])) return missing("v86.cpu");
  for (const field of ["in_hlt", "flags", "instruction_counter"]) {
    const view = cpu[field];
    if (!isObject(view) || typeof view[0] !== "number") return missing(`cpu.${field}`);
  }
  if (!hasFunctions(cpu.io, ["register_read", "register_write"])) return missing("cpu.io");
  if (!hasFunctions(cpu, ["codegen_finalize", "codegen_finalize_finished"]))
    return missing("v86.cpu JIT hooks");
  if (!(cpu.wasm_memory instanceof WebAssembly.Memory)) return missing("cpu.wasm_memory");
  if (!isObject(cpu.jit_imports)) return missing("cpu.jit_imports");
  if (!isObject(cpu.wm) || !hasFunctions(cpu.wm.wasm_table, ["set"])) return missing("cpu.wm.wasm_table");
  const machineClass: unknown = machine.constructor;
  if (typeof machineClass !== "function" || !("microtick" in machineClass)) return missing("v86 microtick");
  if (typeof machineClass.microtick !== "function") return missing("v86 microtick");
  // Checked field by field above; the interface names exactly those fields.
  return machine as unknown as V86Machine;
}

interface PortRange {
  readonly base: number;
  readonly count: number;
  readonly handlers: PortHandlers;
}

type IrqChange = { readonly line: number; readonly raise: boolean };

interface JitModule {
  readonly tableIndex: number;
  readonly physAddr: number;
  readonly stateFlags: number;
  readonly code: Uint8Array;
}

class V86Backend implements VcpuBackend {
  readonly version: string;
  readonly memoryBytes: number;
  private emulator: V86 | undefined;
  private machine: V86Machine;
  private cpu: V86Cpu;
  private readonly serialListeners = new Set<(byte: number) => void>();
  private pendingSerial: number[] = [];
  private pendingIrqs: IrqChange[] = [];
  private readonly portRanges: PortRange[] = [];
  private running = false;
  /** JIT modules generated during the current main-loop call, installed when it returns. */
  private jitOutput: JitModule[] = [];
  /** This guest's clock minus host time (ms): see guestClock. */
  private clockOffset = 0;

  constructor(emulator: V86, memoryBytes: number, jit: "sync" | "async") {
    this.emulator = emulator;
    this.version = v86BackendVersion();
    this.memoryBytes = memoryBytes;
    this.machine = machineOf(emulator);
    this.cpu = this.machine.cpu;
    // v86's CPU calls its stop_idling hook when an interrupt ends a HLT; the hook (and v86.run)
    // schedule do_tick through this method. A no-op here keeps v86 from ever running itself.
    this.machine.yield = () => {};
    // v86's JS devices read the time through this static (shared by every machine in the thread).
    (this.machine.constructor as unknown as { microtick: () => number }).microtick = guestClock;
    if (jit === "sync") {
      // v86 hands each generated module to codegen_finalize while its JIT state is locked, so
      // it cannot be installed from inside that call (codegen_finalize_finished would find the
      // lock taken). Keep a copy (the JIT reuses its output buffer) and install it as soon as
      // the main loop returns, within the same slice: installJitOutput().
      this.cpu.codegen_finalize = (tableIndex, physAddr, stateFlags, ptr, len) => {
        const code = new Uint8Array(this.cpu.wasm_memory.buffer, ptr >>> 0, len >>> 0).slice();
        this.jitOutput.push({ tableIndex, physAddr, stateFlags, code });
      };
    }
    emulator.add_listener("serial0-output-byte", (byte: number) => {
      for (const listener of this.serialListeners) listener(byte);
    });
  }

  /** Run fn with v86 reading this machine's clock. */
  private withClock<T>(fn: () => T): T {
    const outer = activeClockOffset;
    activeClockOffset = this.clockOffset;
    try {
      return fn();
    } finally {
      activeClockOffset = outer;
    }
  }

  private live(): V86 {
    if (!this.emulator) throw new Error("v86 backend: used after stop()");
    return this.emulator;
  }

  run(sliceMs: number): RunResult {
    return this.withClock(() => this.runSlice(sliceMs));
  }

  private runSlice(sliceMs: number): RunResult {
    const emulator = this.live();
    if (this.running) throw new Error("v86 backend: run() re-entered from a port handler");
    this.running = true;
    const start = performance.now();
    const counter = this.cpu.instruction_counter;
    const before = counter[0] >>> 0;
    let wakeInMs = 0;
    try {
      // Input and interrupts that arrived while the guest was stopped are delivered now, at the
      // start of its slice: an interrupt pushes a frame on the guest's stack, which is guest
      // execution and must not happen while the kernel has not scheduled the VM.
      if (this.pendingSerial.length > 0) {
        const bytes = Uint8Array.from(this.pendingSerial);
        this.pendingSerial = [];
        emulator.serial_send_bytes(0, bytes);
      }
      if (this.pendingIrqs.length > 0) {
        const changes = this.pendingIrqs;
        this.pendingIrqs = [];
        for (const change of changes) this.applyIrq(change);
      }
      for (;;) {
        const sleepMs = this.cpu.main_loop();
        if (this.jitOutput.length > 0) this.installJitOutput();
        if (this.cpu.in_hlt[0] !== 0) {
          wakeInMs = sleepMs;
          break;
        }
        if (performance.now() - start >= sliceMs) break;
      }
    } finally {
      this.running = false;
    }
    const halted = this.cpu.in_hlt[0] !== 0;
    const status = !halted ? "preempted" : (this.cpu.flags[0] & EFLAGS_IF) !== 0 ? "idle" : "dead";
    return {
      status,
      ranMs: performance.now() - start,
      instructions: ((counter[0] >>> 0) - before) >>> 0,
      wakeInMs: halted ? wakeInMs : 0,
    };
  }

  /** Compile and install the JIT's output synchronously (v86's own path awaits a Promise). */
  private installJitOutput(): void {
    const modules = this.jitOutput;
    this.jitOutput = [];
    const cpu = this.cpu;
    for (const { tableIndex, physAddr, stateFlags, code } of modules) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(code), { e: cpu.jit_imports });
      cpu.wm.wasm_table.set(tableIndex + JIT_TABLE_OFFSET, instance.exports.f);
      cpu.codegen_finalize_finished(tableIndex, physAddr, stateFlags);
    }
  }

  onSerialOutput(listener: (byte: number) => void): () => void {
    // A fresh wrapper per subscription, so subscribing the same function twice delivers twice
    // and each unsubscribe removes one.
    const entry = (byte: number): void => listener(byte);
    this.serialListeners.add(entry);
    return () => {
      this.serialListeners.delete(entry);
    };
  }

  sendSerial(data: Uint8Array | string): void {
    this.live();
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    for (const byte of bytes) this.pendingSerial.push(byte);
  }

  registerPorts(base: number, count: number, handlers: PortHandlers): void {
    this.live();
    if (
      !Number.isInteger(base) ||
      !Number.isInteger(count) ||
      base < 0 ||
      count < 1 ||
      base + count > 0x10000
    ) {
      throw new RangeError(`v86 backend: bad port range ${base}+${count}`);
    }
    const range = { base, count, handlers };
    this.portRanges.push(range);
    this.installPorts(range);
  }

  private installPorts({ base, count, handlers }: PortRange): void {
    const io = this.cpu.io;
    // A device object for v86's port table; it only uses it as `this` for the handlers.
    const device = { name: `capvisor-vmm@${base.toString(16)}` };
    for (let port = base; port < base + count; port++) {
      // Every width gets a function: v86 keeps a previous handler for a width passed as
      // undefined, and the range belongs to the VMM now. Missing widths act like an
      // undecoded port: reads return all ones, writes vanish.
      io.register_read(
        port,
        device,
        () => (handlers.in8 ? handlers.in8(port) & 0xff : 0xff),
        () => (handlers.in16 ? handlers.in16(port) & 0xffff : 0xffff),
        () => (handlers.in32 ? handlers.in32(port) | 0 : -1),
      );
      io.register_write(
        port,
        device,
        (value) => handlers.out8?.(port, value & 0xff),
        (value) => handlers.out16?.(port, value & 0xffff),
        (value) => handlers.out32?.(port, value >>> 0),
      );
    }
  }

  raiseIrq(line: number): void {
    this.changeIrq({ line, raise: true });
  }

  lowerIrq(line: number): void {
    this.changeIrq({ line, raise: false });
  }

  private changeIrq(change: IrqChange): void {
    this.live();
    if (!Number.isInteger(change.line) || change.line < 0 || change.line > 15) {
      throw new RangeError(`v86 backend: IRQ line ${change.line} is not an ISA line (0-15)`);
    }
    // From a port handler (inside run) the device acts at once, as v86's own devices do; from
    // outside, the change waits for the guest's next slice.
    if (this.running) this.applyIrq(change);
    else this.pendingIrqs.push(change);
  }

  private applyIrq(change: IrqChange): void {
    if (change.raise) this.cpu.device_raise_irq(change.line);
    else this.cpu.device_lower_irq(change.line);
  }

  isHalted(): boolean {
    this.live();
    return this.cpu.in_hlt[0] !== 0;
  }

  instructionCount(): number {
    this.live();
    return this.cpu.instruction_counter[0] >>> 0;
  }

  saveState(): Uint8Array {
    this.live();
    if (this.running) throw new Error("v86 backend: saveState() inside run()");
    return this.withClock(() => {
      const v86State = new Uint8Array(this.machine.save_state());
      const state = new Uint8Array(STATE_HEADER + v86State.byteLength);
      state.set(new TextEncoder().encode(STATE_MAGIC), 0);
      new DataView(state.buffer).setFloat64(8, guestClock(), true);
      state.set(v86State, STATE_HEADER);
      return state;
    });
  }

  restoreState(state: Uint8Array): void {
    this.live();
    if (this.running) throw new Error("v86 backend: restoreState() inside run()");
    const size = v86StateMemoryBytes(state);
    if (size !== this.memoryBytes) {
      throw new Error(`v86 backend: state has ${size} bytes of RAM, this machine ${this.memoryBytes}`);
    }
    // The guest's clock continues from the moment it was saved.
    const savedAt = new DataView(state.buffer, state.byteOffset + 8, 8).getFloat64(0, true);
    this.clockOffset = savedAt - performance.now();
    this.withClock(() => this.machine.restore_state(arrayBufferOf(state.subarray(STATE_HEADER))));
    this.pendingSerial = [];
    this.pendingIrqs = [];
    // The VMM's devices are not part of v86's state: put them back on the port table.
    for (const range of this.portRanges) this.installPorts(range);
  }

  async stop(): Promise<void> {
    const emulator = this.emulator;
    if (!emulator) return;
    this.emulator = undefined;
    this.serialListeners.clear();
    this.pendingSerial = [];
    this.pendingIrqs = [];
    await emulator.destroy();
  }
}

/**
 * Create a v86 machine, either cold (BIOS, then the kernel and initrd given as a bzImage boot)
 * or from a saved state. Resolves once v86 has loaded; the guest has not executed an
 * instruction yet: it runs only inside run().
 */
export async function createV86Backend(
  source: GuestBootSpec | SavedMachine,
  options: V86BackendOptions = {},
): Promise<VcpuBackend> {
  const fromState = "state" in source;
  const memoryBytes = fromState
    ? v86StateMemoryBytes(source.state)
    : (source.memoryBytes ?? DEFAULT_GUEST_MEMORY);
  if (!fromState && source.initrd && memoryBytes < MIN_GUEST_MEMORY) {
    throw new RangeError(
      `v86 backend: ${memoryBytes} bytes of RAM; an initrd needs at least ${MIN_GUEST_MEMORY}`,
    );
  }
  const wasmPath = options.wasmPath ?? join(v86PackageDir, "build", "v86.wasm");
  const core = await compiledCore(wasmPath);
  const file = (path: string) => ({ buffer: arrayBufferOf(readFileSync(path)) });
  const config: V86Options = {
    wasm_path: wasmPath,
    // wasm_fn supersedes wasm_path: the core compiled once per process, its clock replaced.
    wasm_fn: async (imports) => {
      const env = imports.env;
      if (!env || typeof env.microtick !== "function") throw new Error("v86: no microtick import");
      env.microtick = guestClock;
      return (await WebAssembly.instantiate(core, imports)).exports;
    },
    memory_size: memoryBytes,
    vga_memory_size: VGA_MEMORY,
    bios: file(options.biosPath ?? DEFAULT_BIOS),
    vga_bios: file(options.vgaBiosPath ?? DEFAULT_VGA_BIOS),
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  };
  if (!fromState) {
    config.bzimage = { buffer: arrayBufferOf(source.kernel) };
    if (source.initrd) config.initrd = { buffer: arrayBufferOf(source.initrd) };
    config.cmdline = source.cmdline;
  }
  const emulator = new V86(config);
  await new Promise<void>((resolve) => emulator.add_listener("emulator-loaded", () => resolve()));
  const backend = new V86Backend(emulator, memoryBytes, options.jit ?? "sync");
  if (fromState) backend.restoreState(source.state);
  return backend;
}
