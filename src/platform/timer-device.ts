/**
 * A periodic timer device: the board's timer peripheral that a driver programs to interrupt
 * every `period` ns on one interrupt line, the source of a Microkit system's periodic work (a
 * control loop, a tick). It is part of the platform, as the hardware is: the kernel's thread
 * (the pump in wasm-platform.ts) keeps its next expiry among the deadlines it sleeps to, and
 * raises the line at that time itself. A device model in a thread of its own (interruptSource)
 * would add that thread's wake-up to every interrupt's latency: two host wake-ups before the
 * kernel runs instead of one.
 *
 * Like a hardware timer, it does not queue: when the kernel takes the line later than the next
 * expiry (the host did not run the kernel's thread in time), the expiries in between are counted
 * in `ticks` but raise the line once. seL4 keeps one pending bit per line (seL4 manual 5.6,
 * "Interrupts"), so a tick raised while the previous one is still pending coalesces with it.
 * A handler that must account for every tick reads the device's count register, as drivers of
 * real timers read a counter rather than count interrupts: given a memory region as its
 * register page (`registers`), the device keeps there, little-endian (include/capvisor/timer.h):
 *   0x0  COUNT   u64  expiries so far, written before the line is raised for them;
 *   0x8  PERIOD  u64  nanoseconds between expiries.
 * A PD maps the region (read-only is enough) and reads it after each notification: the
 * expiries since its last read are its ticks, however many interrupts they took.
 */
import { lockRegion, type SharedMapping, unlockRegion } from "./channel.js";

/** A memory region used as a device's register page: its backing and its lock (SharedMapping). */
export type RegisterPage = Pick<SharedMapping, "backing" | "lock">;

/** Byte offsets in a periodic timer's register page. */
export const TIMER_COUNT = 0x0;
export const TIMER_PERIOD = 0x8;
/** The register page's size: a region given as one must hold at least this. */
export const TIMER_REGISTERS_BYTES = 0x10;

/** What a program that armed the device can see and do (WasmPlatform.periodicTimer). */
export interface PeriodicTimer {
  readonly line: number;
  /** Nanoseconds between expiries. */
  readonly periodNs: number;
  /** The host clock (clockNs) of the first expiry. */
  readonly firstNs: number;
  /** Expiries so far (each at firstNs + i * periodNs), whether or not each raised the line. */
  readonly ticks: number;
  /** Stop the device: no further expiry raises the line. */
  stop(): void;
}

/** How to arm a periodic timer (WasmPlatform.periodicTimer). */
export interface PeriodicTimerOptions {
  /** The host clock (clockNs) of the first expiry; default one period from now. */
  firstNs?: number;
  /** Expiries after which the device stops by itself; default: until stopped. */
  count?: number;
  /** A memory region to keep the device's registers in (BootedSystem.region). */
  registers?: RegisterPage;
}

export class TimerDevice implements PeriodicTimer {
  ticks = 0;
  stopped = false;
  private readonly words: Uint32Array | null = null;
  private readonly lock: Int32Array | null = null;
  constructor(
    readonly line: number,
    readonly periodNs: number,
    readonly firstNs: number,
    /** Expiries after which the device stops by itself (Infinity: until stopped). */
    readonly count: number,
    registers?: RegisterPage,
  ) {
    if (!(periodNs > 0)) throw new RangeError(`timer period must be positive, not ${periodNs} ns`);
    if (registers === undefined) return;
    if (registers.backing.byteLength < TIMER_REGISTERS_BYTES)
      throw new RangeError(
        `a timer's register page needs ${TIMER_REGISTERS_BYTES} bytes; the region has ${registers.backing.byteLength}`,
      );
    this.words = new Uint32Array(registers.backing, 0, TIMER_REGISTERS_BYTES / 4);
    this.lock = new Int32Array(registers.lock, 0, 1);
    this.write(TIMER_PERIOD, periodNs);
    this.write(TIMER_COUNT, 0);
  }

  /**
   * Write a u64 register under the region's lock, the one PDs read their copies under
   * (pd-worker.ts): a PD sees both halves of one write or neither. The kernel's thread holds
   * it for two stores; a PD holds it for one copy of the region.
   */
  private write(offset: number, value: number): void {
    const words = this.words!;
    const lock = this.lock!;
    lockRegion(lock);
    words[offset / 4] = value >>> 0;
    words[offset / 4 + 1] = Math.floor(value / 2 ** 32);
    unlockRegion(lock);
  }

  /** The host clock time of the next expiry (Infinity once stopped). */
  nextNs(): number {
    return this.stopped || this.ticks >= this.count
      ? Number.POSITIVE_INFINITY
      : this.firstNs + this.ticks * this.periodNs;
  }

  /** Account the expiries due by host time `nowNs`; returns how many (0: nothing to raise). */
  expire(nowNs: number): number {
    const next = this.nextNs();
    if (nowNs < next) return 0;
    const due = Math.min(Math.floor((nowNs - next) / this.periodNs) + 1, this.count - this.ticks);
    this.ticks += due;
    if (this.words !== null) this.write(TIMER_COUNT, this.ticks);
    return due;
  }

  stop(): void {
    this.stopped = true;
  }
}
