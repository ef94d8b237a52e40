// The VCPU backend interface the VMM PD drives (DESIGN.md decision 6). It is backend-neutral:
// v86 (src/vmm/v86-backend.ts) is the first implementation, QEMU may follow. The kernel owns
// the guest's time: the VMM calls run(sliceMs) only while its thread holds a core, and between
// two calls the guest executes nothing, so the kernel's priorities and budgets hold for a VM as
// they do for a Wasm PD.

/** What a cold boot needs: a bzImage kernel, an optional initramfs and the kernel command line. */
export interface GuestBootSpec {
  readonly kernel: Uint8Array;
  readonly initrd?: Uint8Array;
  readonly cmdline: string;
  /** Guest RAM in bytes (default 128 MiB). */
  readonly memoryBytes?: number;
}

/**
 * Handlers for a range of I/O ports the VMM owns. Every access the guest makes inside the range
 * reaches the handler for its width; a width with no handler reads as all ones (what an x86 bus
 * returns for a port nobody decodes) and ignores writes.
 */
export interface PortHandlers {
  in8?(port: number): number;
  in16?(port: number): number;
  in32?(port: number): number;
  out8?(port: number, value: number): void;
  out16?(port: number, value: number): void;
  out32?(port: number, value: number): void;
}

/**
 * Why run() returned.
 * - `preempted`: the slice was used up while the guest still had work.
 * - `idle`: the guest executed HLT with interrupts enabled and nothing is pending: it waits for
 *   its next timer (in `wakeInMs`) or for input, so the VMM can give its core back.
 * - `dead`: HLT with interrupts disabled (after a poweroff or a panic): only a reset wakes it.
 */
export type RunStatus = "preempted" | "idle" | "dead";

export interface RunResult {
  readonly status: RunStatus;
  /** Host milliseconds spent inside run(). */
  readonly ranMs: number;
  /** Guest instructions retired during this run (wraps at 2^32 inside the backend; this is the delta). */
  readonly instructions: number;
  /** For `idle`: host milliseconds until the guest's next timer interrupt is due. */
  readonly wakeInMs: number;
}

export interface VcpuBackend {
  /** Backend name and version, e.g. "v86 0.5.462+g5f9a90f": part of any saved state's identity. */
  readonly version: string;
  /** Guest RAM in bytes. */
  readonly memoryBytes: number;
  /**
   * Run the guest for at most about sliceMs of host time and return. Synchronous: when it
   * returns the guest is stopped until the next call. Callers should return to the event loop
   * between slices now and then: v86 installs its JIT output asynchronously.
   */
  run(sliceMs: number): RunResult;
  /** Subscribe to bytes the guest writes to its first serial port; returns the unsubscribe. */
  onSerialOutput(listener: (byte: number) => void): () => void;
  /** Bytes for the guest's first serial port: delivered at the start of the next run(). */
  sendSerial(data: Uint8Array | string): void;
  /** Own ports base..base+count-1; kept across restoreState(). */
  registerPorts(base: number, count: number, handlers: PortHandlers): void;
  /** Assert / deassert an ISA interrupt line (0-15). Outside run() it takes effect at the next run(). */
  raiseIrq(line: number): void;
  lowerIrq(line: number): void;
  /** True while the guest sits in HLT waiting for an interrupt. */
  isHalted(): boolean;
  /** Guest instructions retired so far (mod 2^32). */
  instructionCount(): number;
  /** The whole machine: CPU, devices and RAM. */
  saveState(): Uint8Array;
  /** Replace the machine with a saved one (same backend version and memory size). */
  restoreState(state: Uint8Array): void;
  /** Free everything; the backend cannot be used afterwards. */
  stop(): Promise<void>;
}

export interface DriveOptions {
  /** Give up after this much host time (default 60 s). */
  readonly timeoutMs?: number;
  /** Length of each slice (default 20 ms). */
  readonly sliceMs?: number;
  /** Called about once a second with the host milliseconds elapsed so far. */
  readonly onTick?: (elapsedMs: number) => void;
}

/**
 * Run the guest in slices until done() holds, the way a VMM thread on its own core would: one
 * slice, then back to the event loop (so JIT output and host I/O are processed), and a real sleep
 * while the guest is idle. Resolves with the host milliseconds it took; rejects on timeout.
 */
export async function driveUntil(
  backend: VcpuBackend,
  done: () => boolean,
  options: DriveOptions = {},
): Promise<number> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const sliceMs = options.sliceMs ?? 20;
  const start = performance.now();
  let lastTick = start;
  while (!done()) {
    const now = performance.now();
    if (now - start > timeoutMs) throw new Error(`guest did not get there within ${timeoutMs} ms`);
    if (options.onTick && now - lastTick >= 1000) {
      lastTick = now;
      options.onTick(now - start);
    }
    const result = backend.run(sliceMs);
    if (done()) break;
    if (result.status === "preempted") await new Promise<void>((resolve) => setImmediate(resolve));
    else {
      // Idle or dead: sleep until the guest's next timer (at most one slice, so queued input is
      // seen soon) instead of spinning on a core the guest does not need.
      const sleepMs = Math.max(0, Math.min(result.wakeInMs, sliceMs));
      await new Promise<void>((resolve) => setTimeout(resolve, sleepMs));
    }
  }
  return performance.now() - start;
}
