// The parts of v86's internals capvisor relies on. v86.d.ts types only the public V86 class;
// these interfaces describe what the release build (libv86.mjs 0.5.462) keeps under its
// Closure-compiled names, checked at run time by src/vmm/v86-backend.ts before first use, so a
// v86 upgrade that renames one fails loudly at creation instead of misbehaving later.

/** `emulator.v86.cpu.io`: the I/O port table (v86 src/io.js). */
export interface V86PortTable {
  /** Handlers for reads of one port; v86 calls them as `fn.call(device, port)`. */
  register_read(
    port: number,
    device: object,
    read8: (port: number) => number,
    read16: (port: number) => number,
    read32: (port: number) => number,
  ): void;
  /** Handlers for writes of one port; v86 calls them as `fn.call(device, value)`. */
  register_write(
    port: number,
    device: object,
    write8: (value: number) => void,
    write16: (value: number) => void,
    write32: (value: number) => void,
  ): void;
}

/**
 * A view of one of the CPU's fields in v86's Wasm memory. v86 makes these Proxies that build a
 * fresh typed array on every access (the memory may grow), so only indexing is available.
 */
export interface V86WasmField {
  readonly [index: number]: number;
}

/** A WebAssembly.Table (capvisor's WebAssembly declarations leave out set). */
export interface V86FunctionTable {
  set(index: number, value: unknown): void;
}

/** `emulator.v86.cpu`: the JS side of v86's CPU (v86 src/cpu.js), views into the Wasm state. */
export interface V86Cpu {
  /**
   * The Rust main loop (v86 src/rust/cpu/cpu.rs `main_loop`): executes batches of about 100k
   * instructions until 1 ms of host time has passed or the CPU halts, running the timers and
   * delivering interrupts between batches. Returns 0 if it stopped on time, otherwise (halted)
   * the host milliseconds until the next device timer is due.
   */
  main_loop(): number;
  /** Byte 0: the CPU executed HLT and waits for an interrupt. */
  readonly in_hlt: V86WasmField;
  /** Word 0: EFLAGS (bit 9 is IF). */
  readonly flags: V86WasmField;
  /** Word 0: instructions retired (mod 2^32). */
  readonly instruction_counter: V86WasmField;
  readonly io: V86PortTable;
  /** v86's Wasm memory (guest RAM and the JIT's output buffer live in it). */
  readonly wasm_memory: WebAssembly.Memory;
  /** The imports a JIT-generated module is instantiated with (as its module "e"). */
  readonly jit_imports: Record<string, WebAssembly.ImportValue>;
  /** The core's exports and its function table; JIT modules go in at index + 1024. */
  readonly wm: { readonly wasm_table: V86FunctionTable };
  /**
   * Called by the Rust JIT with a freshly generated module (bytes at ptr..ptr+len in
   * wasm_memory). v86 compiles it asynchronously and then calls codegen_finalize_finished;
   * capvisor replaces it on the instance with the synchronous path v86's cpu.js also has
   * (behind its SYNC_COMPILATION switch).
   */
  codegen_finalize: (
    tableIndex: number,
    physAddr: number,
    stateFlags: number,
    ptr: number,
    len: number,
  ) => void;
  /** Rust: install a compiled module's entry points. */
  codegen_finalize_finished(tableIndex: number, physAddr: number, stateFlags: number): void;
  /** Assert / deassert an ISA IRQ line at the PIC (and I/O APIC with ACPI) and deliver it if possible. */
  device_raise_irq(line: number): void;
  device_lower_irq(line: number): void;
}

/** `emulator.v86`: v86's own scheduler object (v86 src/main.js), which owns the CPU. */
export interface V86Machine {
  readonly cpu: V86Cpu;
  /**
   * v86's scheduler hook: setImmediate / setTimeout to its next do_tick. capvisor replaces it on
   * the instance with a no-op so that nothing but the VMM's run() ever executes the guest.
   */
  yield: (delayMs: number, tick: number) => void;
  /** Synchronous whole-machine snapshot (the public V86.save_state wraps this in a Promise). */
  save_state(): ArrayBuffer;
  /** Synchronous restore (the public V86.restore_state wraps this in a Promise). */
  restore_state(state: ArrayBuffer): void;
}
