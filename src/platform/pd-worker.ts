/**
 * A PD thread's worker: instantiates the PD's (instrumented) Wasm module and runs it whenever
 * the kernel makes its thread current on a core. The module reaches the kernel only through
 * its two imports (docs/wasm-abi.md): `sel4.syscall`, which hands the registers and IPC buffer
 * to the kernel and blocks until the thread runs again, and `capvisor.preempt`, where the
 * kernel's budgets and priorities take the core back.
 *
 * Shared memory regions (DESIGN.md decision 5) are copies kept coherent at kernel entry and exit:
 * before every request the worker publishes to the region's backing the bytes of each writable
 * region that it changed since it last read the region; after every resume it reads every region
 * back. Only changed bytes: writing the whole view would put back stale copies of bytes another PD
 * changed meanwhile (the queue's head and tail, each written by one side, would lose updates).
 * Both steps hold the region's lock, so a reader sees all of one kernel entry's changes or none.
 */
import { workerData } from "node:worker_threads";
import {
  clockNs,
  K_EXIT,
  K_PREEMPT,
  K_READY,
  K_SYSCALL,
  K_TRAP,
  lockRegion,
  R_RESTART,
  R_START,
  REG_WORDS,
  ThreadSide,
  unlockRegion,
  type WorkerInit,
} from "./channel.js";
import {
  DirectCaller,
  DirectCallTrap,
  DirectServer,
  replyRegisters,
  SYS_CALL,
  SYS_REPLY_RECV,
} from "./direct-call.js";
import { trapNumber } from "./traps.js";

const init = workerData as WorkerInit;
const side = new ThreadSide(init);
const { ch } = side;

/** Post a request and block until the kernel resumes this thread; returns the response. */
function request(kind: number, arg: number, pollMs = 0): number {
  flushShared();
  const response = side.request(kind, arg, pollMs);
  if (sharedViews.length > 0) {
    loadShared();
    // The thread's code goes on once its regions are read back (Channel.resumedAt).
    ch.resumedAt[0] = clockNs();
  }
  return response;
}

let memory: WebAssembly.Memory | null = null;
let mem32 = new Uint32Array(0);
let mem8 = new Uint8Array(0);
let regsAt = 0;
let ipcAt = 0;

function views(): void {
  const m = memory!;
  if (mem8.buffer !== m.buffer) {
    mem32 = new Uint32Array(m.buffer);
    mem8 = new Uint8Array(m.buffer);
  }
}

const sharedViews = init.maps.map((m) => {
  /** The region as this PD last read or wrote it: what differs from it in the view is its change. */
  const seen = new Uint8Array(m.size);
  return {
    ...m,
    bytes: new Uint8Array(m.backing),
    lockWord: new Int32Array(m.lock, 0, 1),
    seen,
    seenWords: new Uint32Array(seen.buffer, 0, m.size >>> 2),
  };
});

function flushShared(): void {
  if (memory === null) return;
  views();
  for (const m of sharedViews) {
    if (!m.writable) continue;
    // Regions are page aligned, so word views of the PD's memory line up with the region's.
    const base = m.vaddr >>> 2;
    const n = m.seenWords.length;
    lockRegion(m.lockWord);
    for (let i = 0; i < n; i++) {
      const v = mem32[base + i]!;
      if (v === m.seenWords[i]) continue;
      // Byte by byte within the word: another PD may own the word's other bytes.
      for (let b = 4 * i; b < 4 * i + 4; b++) {
        const x = mem8[m.vaddr + b]!;
        if (x !== m.seen[b]) {
          m.bytes[b] = x;
          m.seen[b] = x;
        }
      }
    }
    unlockRegion(m.lockWord);
  }
}
function loadShared(): void {
  if (memory === null) return;
  views();
  for (const m of sharedViews) {
    lockRegion(m.lockWord);
    m.seen.set(m.bytes);
    unlockRegion(m.lockWord);
    mem8.set(m.seen, m.vaddr);
  }
}

function syscall(sysno: number): void {
  views();
  const r = regsAt >>> 2;
  const b = ipcAt >>> 2;
  // A protected call this PD may make directly (direct-call.ts); a kernel entry all the same.
  if (sysno === SYS_CALL && caller !== null && caller.has(mem32[r]!)) {
    if (sharedViews.length > 0) flushShared();
    const done = caller.call(mem32, r, b);
    if (done) {
      if (sharedViews.length > 0) loadShared();
      return;
    }
    views();
  }
  for (;;) {
    ch.regs.set(mem32.subarray(r, r + 2 * REG_WORDS));
    ch.ipc.set(mem32.subarray(b, b + ch.ipc.length));
    // A server of direct calls lets its callers in while it waits in its event loop's receive.
    const released = server?.release(sysno, mem32[r]!) === true;
    const response = request(K_SYSCALL, sysno);
    if (released) server!.retake();
    if (response === R_RESTART) continue;
    if (response === R_START) throw new RestartProgram();
    views();
    const note = released ? server!.note(ch.regs[0]!, ch.regs[1]!) : null;
    if (note !== null && "reply" in note) {
      // The reply of a direct call that carries capabilities, sent now on this thread's behalf
      // with the receive the event loop was making (ReplyRecv). The message just received (the
      // same call, made again through the kernel) is not copied in: the IPC buffer still holds
      // the reply protected() wrote, its message registers and its caps' slots.
      replyRegisters(mem32, r, b, note.reply);
      sysno = SYS_REPLY_RECV;
      continue;
    }
    mem32.set(ch.regs, r);
    mem32.set(ch.ipc, b);
    if (note !== null) throw new DirectCallTrap(note.trap);
    return;
  }
}

/** Thrown through the PD's stack when the kernel restarts the thread at its entry point. */
class RestartProgram extends Error {}

/**
 * The instrumented code calls this once per `fuel` checks (loop headers and function entries,
 * src/pd/wasm/instrument.ts): for `while (1) {}` every 20,000 iterations (its request reaches the
 * kernel 15-30 µs after its deadline when the host is quiet, hand-off included).
 * Each call reads the clock (about 30 ns, nothing next to the work in between): the thread comes
 * in when the kernel wants the core back (PREEMPT) or when its core's timer deadline (budget end
 * or next release) has passed. The platform takes that timer interrupt at the deadline itself,
 * which is fair only because this check comes so soon after it.
 */
function preempt(): number {
  const poll = side.preemptDue();
  if (poll !== null && request(K_PREEMPT, 0, poll) === R_START) throw new RestartProgram();
  return init.fuel;
}

let instance: WebAssembly.Instance;
/** The direct-call sides of this PD (direct-call.ts): as a server, and as a caller. */
const server = init.direct === undefined ? null : new DirectServer(init.direct);
let caller: DirectCaller | null = null;
try {
  const mod = new WebAssembly.Module(init.wasm);
  instance = new WebAssembly.Instance(mod, {
    sel4: { syscall },
    capvisor: init.direct === undefined ? { preempt } : { preempt, memory: init.direct.memory },
  });
  const ex = instance.exports;
  memory = ex.memory as WebAssembly.Memory;
  regsAt = (ex.capvisor_regs as () => number)();
  ipcAt = (ex.capvisor_ipc_buffer as () => number)();
  // The memory must cover every mapped region.
  const need = Math.max(0, ...init.maps.map((m) => m.vaddr + m.size));
  if (need > memory.buffer.byteLength) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
  views();
  for (const sv of init.setvars) {
    const g = ex[sv.symbol];
    if (!(g instanceof WebAssembly.Global)) {
      if (sv.optional) continue;
      throw new Error(
        `setvar "${sv.symbol}": the module does not export that symbol (link with -Wl,--export=${sv.symbol})`,
      );
    }
    mem8.set(sv.bytes, g.value as number);
  }
  const fuel = ex.capvisor_fuel;
  if (fuel instanceof WebAssembly.Global) fuel.value = init.fuel;
  if (init.directCalls !== undefined && init.directCalls.length > 0)
    caller = new DirectCaller(init.directCalls, preempt, init.fuel);
} catch (e) {
  process.stderr.write(`${init.name}: ${(e as Error).message}\n`);
  side.loadFailed();
  process.exit(1);
}

// Wait to be started, then run the program; a trap is a user exception of this thread.
let response = request(K_READY, 0);
for (;;) {
  if (response !== R_START) {
    response = request(K_EXIT, 0);
    continue;
  }
  try {
    (instance.exports.capvisor_start as () => void)();
    response = request(K_EXIT, 0);
  } catch (e) {
    if (e instanceof RestartProgram) {
      response = R_START;
      continue;
    }
    response = request(K_TRAP, e instanceof DirectCallTrap ? e.trap : trapNumber(e));
  }
}
