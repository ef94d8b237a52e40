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
 * "Interrupts"), so a tick raised while the previous one is still pending is lost too.
 */

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

export class TimerDevice implements PeriodicTimer {
  ticks = 0;
  stopped = false;
  constructor(
    readonly line: number,
    readonly periodNs: number,
    readonly firstNs: number,
    /** Expiries after which the device stops by itself (Infinity: until stopped). */
    readonly count: number,
  ) {
    if (!(periodNs > 0)) throw new RangeError(`timer period must be positive, not ${periodNs} ns`);
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
    return due;
  }

  stop(): void {
    this.stopped = true;
  }
}
