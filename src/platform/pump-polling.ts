/**
 * How the kernel's thread (the pump in wasm-platform.ts) waits between the requests, interrupts
 * and timer deadlines it serves: when it sleeps in a futex wait on the doorbell, when it polls
 * instead, and for how long. Each figure was measured on this project's 2-core VM; the reasons
 * are with each one.
 */
import { availableParallelism } from "node:os";

/** How long the pump keeps the main thread before letting the event loop run (ms). */
export const PUMP_SLICE_MS = 4;

/**
 * How long before an idle core's timer deadline the pump stops sleeping and polls instead (ms).
 * A futex wait with a timeout wakes 60-100 µs late on Linux (timer slack and wake-up), and a
 * thread released late loses that much of its period: a 2 ms budget every 10 ms became 19.5%
 * instead of 20%. Polling the last stretch costs the main thread 0.2 ms per release.
 */
export const IDLE_POLL_MS = 0.2;

/**
 * How long the pump keeps polling the doorbell after it last served a request, before it sleeps
 * in a futex wait (ms): the halt-polling of KVM (halt_poll_ns) for the kernel's own thread. A
 * futex wake of a thread whose host CPU has gone idle costs 25-60 µs on this kind of VM (the
 * C futex ping-pong's slow mode), and every call through the kernel is two such wakes of the
 * main thread; requests that come in quick succession (IPC, interrupts) find it awake instead.
 * It polls only while a host CPU is left over for it (see pump), so it never takes a core from
 * a running PD.
 */
export const HALT_POLL_MS = 0.5;

/**
 * How long before a timer device's expiry the pump stops sleeping and polls instead (ms): a
 * futex wait with a timeout wakes tens of µs late. Shorter than IDLE_POLL_MS because a device
 * may tick every millisecond: bench:rt (1 ms ticks, --realtime, 10,000 ticks) measured p99 100 µs
 * from the tick to its handler with 0.05 ms here, and 2.2 ms with 0.2 ms, which kept the
 * kernel's SCHED_FIFO thread spinning a fifth of the time.
 */
export const DEVICE_POLL_MS = 0.05;

/** Host CPUs this process may use. */
export const HOST_CPUS = availableParallelism();

/**
 * Spin until the doorbell moves from `seen` or performance.now() reaches `until` (ms). The clock
 * is read once every 256 looks at the bell: in Node 20 each performance.now() allocates (it goes
 * through process.hrtime), and a loop that read it every time made the kernel's thread allocate
 * about 50 MB/s while it polled, so that a scavenge (0.3-1.5 ms, in the event loop between pump
 * slices) held up an interrupt every 100 ms or so.
 */
export function pollBell(bell: Int32Array, seen: number, until: number): void {
  for (;;) {
    for (let i = 0; i < 256; i++) if (Atomics.load(bell, 0) !== seen) return;
    if (performance.now() >= until) return;
  }
}
