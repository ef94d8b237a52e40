/**
 * Host scheduling of the platform's threads. The kernel decides which thread each core runs, but
 * every PD thread, the kernel's own thread and every interrupt source is a host thread that Linux
 * schedules among everything else on the machine; these functions give each one a host priority
 * that follows its seL4 priority, so that the host does not undo the kernel's decisions.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { fileURLToPath } from "node:url";

/**
 * The calling thread's host thread id (Linux: /proc/thread-self names it), or 0 where there is no
 * such thing.
 */
export function hostThreadId(): number {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/")[2]);
    return Number.isInteger(tid) && tid > 0 ? tid : 0;
  } catch {
    return 0;
  }
}

/**
 * The host nice value of a thread at seL4 priority `prio` (0-255): the kernel decides which
 * thread a core runs, but each thread is a host thread that Linux schedules among everything
 * else, and a low-priority PD that spins (until its next preemption check) would otherwise
 * compete on equal terms with the threads that must run now: the kernel's and a high-priority
 * handler's. Priorities from 128 up get nice 0; below, nice rises to 19 at priority 0.
 */
export function hostNice(prio: number): number {
  return prio >= 128 ? 0 : Math.min(19, Math.round(((128 - prio) * 19) / 128));
}

/**
 * How host threads are prioritised: `true` (the default) by nice value (hostNice); `false` not at
 * all; `"realtime"` as `true`, but the kernel's thread, interrupt sources and every thread at seL4
 * priority 128 or more run under SCHED_FIFO (hostRealtime), so that a wake-up is not left waiting
 * behind the host's time-sharing slice (about 1.5 ms on 2 cores). Realtime needs root; a thread at
 * FIFO priority keeps its host core until it blocks or the kernel preempts it, which is what seL4
 * priorities say but is not what a shared host expects, hence opt-in (`capvisor up --realtime`).
 */
export type HostPriorities = boolean | "realtime";

/** SCHED_FIFO priority of the kernel's thread in realtime mode: above every PD thread's. */
export const KERNEL_FIFO = 90;
/** SCHED_FIFO priority of interrupt sources (device models, the emulated timer): the hardware. */
export const SOURCE_FIFO = 95;

/**
 * The SCHED_FIFO priority (1-80) of a thread at seL4 priority `prio` in realtime mode, or 0 for a
 * thread that stays time-shared (below 128, with hostNice's nice value): a low-priority PD that
 * spins must not hold a host core against everything else on the machine.
 */
export function hostRealtime(prio: number): number {
  return prio >= 128 ? 1 + Math.floor(((prio - 128) * 79) / 127) : 0;
}

/**
 * Put host thread `tid` under SCHED_FIFO at `fifo` (or back to SCHED_OTHER for 0). Node has no
 * binding for sched_setscheduler(2), so this runs util-linux's chrt (Debian's essential set).
 * Returns false where the host refuses (not root, no chrt): the thread keeps what it had.
 */
export function setHostRealtime(tid: number, fifo: number): boolean {
  if (tid === 0) return false;
  // --reset-on-fork: threads this one creates afterwards (PD workers from the kernel's thread, V8's
  // and libuv's helpers) start time-shared instead of inheriting its FIFO priority, which would
  // let two spinning PD workers created by the kernel's thread hold both cores against it.
  const args = fifo > 0 ? ["-f", "-R", "-p", String(fifo), String(tid)] : ["-o", "-p", "0", String(tid)];
  const r = spawnSync("chrt", args, { stdio: "ignore", timeout: 5000 });
  return r.status === 0;
}

/**
 * The host scheduler slice of a time-shared PD thread below seL4 priority 128 (ns; the least
 * Linux allows). Linux's EEVDF scheduler (6.6+) does not let a waking thread preempt one it has
 * just picked until that one's slice is used up, whatever the waker's nice value: with the
 * default slice (1.4 ms here) a spinning low-priority PD, picked again after every interrupt
 * its core took, held off the kernel's thread for up to its slice. A short slice keeps the
 * nice value's share and lets the threads that must run now in sooner. bench:rt, time-shared,
 * 10,000 ticks, alternated: 15-69 ticks coalesced (median 23) with it, 33-191 (median 88)
 * without.
 */
export const LOW_PRIORITY_SLICE_NS = 100_000;

/** The helper that sets a slice (src/platform/host/sched-slice.c, built by scripts/build-host.sh). */
const SCHED_SLICE = fileURLToPath(new URL("../../../build/host/sched-slice", import.meta.url));

/**
 * Give host thread `tid` SCHED_OTHER at `nice` with a scheduler slice of `sliceNs`. Returns false
 * where that cannot be done (no helper built, a kernel without custom slices, not permitted):
 * the thread keeps the host's default slice.
 */
export function setHostSlice(tid: number, nice: number, sliceNs: number): boolean {
  if (tid === 0 || !existsSync(SCHED_SLICE)) return false;
  const r = spawnSync(SCHED_SLICE, [String(tid), String(nice), String(sliceNs)], {
    stdio: "ignore",
    timeout: 5000,
  });
  return r.status === 0;
}

/** What a host thread was last given, to avoid asking the host again for the same thing. */
export interface HostSetting {
  nice: number;
  fifo: number;
  /** Its scheduler slice (ns), 0 for the host's default. */
  slice: number;
}

/** Nothing given yet. */
export const UNSET: HostSetting = { nice: Number.NaN, fifo: Number.NaN, slice: Number.NaN };

/**
 * Give host thread `tid` the host priority of seL4 priority `prio` under `mode`, when it differs
 * from `had`; returns what it has now. Best effort: where the host refuses, the thread keeps its
 * setting and the kernel's decisions still hold, only with host scheduling delays.
 */
export function applyHostPriority(
  tid: number,
  prio: number,
  mode: HostPriorities,
  had: HostSetting,
): HostSetting {
  if (mode === false || tid === 0) return had;
  const fifo = mode === "realtime" ? hostRealtime(prio) : 0;
  const nice = hostNice(prio);
  const slice = fifo === 0 && prio < 128 ? LOW_PRIORITY_SLICE_NS : 0;
  if (had.fifo !== fifo && (fifo > 0 || had.fifo > 0)) setHostRealtime(tid, fifo);
  // The slice helper sets the nice value with it; where it cannot, setPriority still does.
  const sliced = slice > 0 && (had.slice !== slice || had.nice !== nice) && setHostSlice(tid, nice, slice);
  if (had.nice !== nice && !sliced)
    try {
      setPriority(tid, nice);
    } catch {
      // Not permitted (or not Linux).
    }
  return { nice, fifo, slice: sliced || had.slice === slice ? slice : 0 };
}
