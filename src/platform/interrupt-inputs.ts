/**
 * What raises interrupt lines besides the cores' own timers: device models in other threads
 * (interrupt sources, which set a line's bit and ring the platform's doorbell) and the periodic
 * timer devices (timer-device.ts). The kernel's thread (WasmPlatform's pump) takes them on every
 * round, and sleeps no further than the next device expiry.
 */
import { clockNs } from "./channel.js";
import type { InterruptSource } from "./programs.js";
import { type PeriodicTimer, type PeriodicTimerOptions, TimerDevice } from "./timer-device.js";

export class InterruptInputs {
  /** Pending lines raised through an interrupt source: a bitmap of 256 lines. */
  private readonly irqSab = new SharedArrayBuffer(32);
  private readonly irqBits = new Int32Array(this.irqSab);
  /** True once an interrupt source exists: the pump then never stops waiting for the bell. */
  private sources = false;
  private readonly devices: TimerDevice[] = [];

  constructor(
    /** How many interrupt lines the kernel has. */
    private readonly lineCount: number,
    /** Enter the kernel for a raised line. */
    private readonly take: (line: number) => void,
  ) {}

  /** An interrupt source that rings `bell` (see WasmPlatform.interruptSource). */
  source(bell: SharedArrayBuffer): InterruptSource {
    this.sources = true;
    return { irqs: this.irqSab, bell };
  }

  /** Arm a periodic timer device (see WasmPlatform.periodicTimer). */
  periodic(line: number, periodNs: number, opts: PeriodicTimerOptions): PeriodicTimer {
    if (!Number.isInteger(line) || line < 0 || line >= this.lineCount)
      throw new RangeError(`interrupt line ${line} does not exist (0..${this.lineCount - 1})`);
    const d = new TimerDevice(
      line,
      periodNs,
      opts.firstNs ?? clockNs() + periodNs,
      opts.count ?? Number.POSITIVE_INFINITY,
      opts.registers,
    );
    this.devices.push(d);
    return d;
  }

  /** Whether a line may still be raised: the pump must keep watching. */
  active(): boolean {
    return this.sources || this.devices.length > 0;
  }

  /** Take every line raised since the last look; true when there was one. */
  takeRaised(): boolean {
    let any = false;
    if (this.sources)
      for (let w = 0; w < this.irqBits.length; w++) {
        let bits = Atomics.exchange(this.irqBits, w, 0);
        while (bits !== 0) {
          const b = 31 - Math.clz32(bits);
          bits &= ~(1 << b);
          const line = w * 32 + b;
          if (line >= this.lineCount) continue;
          this.take(line);
          any = true;
        }
      }
    if (this.devices.length === 0) return any;
    const now = clockNs();
    for (const d of this.devices) {
      if (d.expire(now) === 0) continue;
      this.take(d.line);
      any = true;
    }
    for (let i = this.devices.length - 1; i >= 0; i--)
      if (!Number.isFinite(this.devices[i]!.nextNs())) this.devices.splice(i, 1);
    return any;
  }

  /** Milliseconds until the next timer device expiry (Infinity when none). */
  msToNextExpiry(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const d of this.devices) next = Math.min(next, d.nextNs());
    return Number.isFinite(next) ? Math.max(0, (next - clockNs()) / 1e6) : next;
  }
}
