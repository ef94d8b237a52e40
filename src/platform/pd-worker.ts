/**
 * A PD thread's worker: instantiates the PD's (instrumented) Wasm module and runs it whenever
 * the kernel makes its thread current on a core. The module reaches the kernel only through
 * its two imports (docs/wasm-abi.md): `sel4.syscall`, which hands the registers and IPC buffer
 * to the kernel and blocks until the thread runs again, and `capvisor.preempt`, where the
 * kernel's budgets and priorities take the core back.
 *
 * Shared memory regions (DESIGN.md decision 5) are copies kept coherent at kernel entry and exit:
 * before every request the worker writes its view of each writable region to the region's
 * backing; after every resume it reads every region back.
 */
import { workerData } from "node:worker_threads";
import {
  ARG,
  Channel,
  clockNs,
  K_EXIT,
  K_LOAD_ERROR,
  K_PREEMPT,
  K_READY,
  K_SYSCALL,
  K_TRAP,
  KIND,
  PREEMPT,
  R_RESTART,
  R_START,
  R_TERMINATE,
  REG_WORDS,
  RESPONSE,
  S_REQUEST,
  S_RESUMED,
  S_RUNNING,
  STATE,
  type WorkerInit,
} from "./channel.js";
import { trapNumber } from "./traps.js";

const init = workerData as WorkerInit;
const ch = new Channel(init.sab);
const ctl = ch.ctl;

/** Post a request and block until the kernel resumes this thread; returns the response. */
function request(kind: number, arg: number): number {
  flushShared();
  ctl[KIND] = kind;
  ctl[ARG] = arg;
  Atomics.store(ctl, STATE, S_REQUEST);
  Atomics.notify(ctl, STATE);
  for (;;) {
    const s = Atomics.load(ctl, STATE);
    if (s === S_RESUMED) break;
    Atomics.wait(ctl, STATE, s);
  }
  const response = ctl[RESPONSE]!;
  Atomics.store(ctl, STATE, S_RUNNING);
  if (response === R_TERMINATE) process.exit(0);
  loadShared();
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

const sharedViews = init.maps.map((m) => ({ ...m, bytes: new Uint8Array(m.backing) }));
function flushShared(): void {
  if (memory === null) return;
  views();
  for (const m of sharedViews) if (m.writable) m.bytes.set(mem8.subarray(m.vaddr, m.vaddr + m.size));
}
function loadShared(): void {
  if (memory === null) return;
  views();
  for (const m of sharedViews) mem8.set(m.bytes, m.vaddr);
}

function syscall(sysno: number): void {
  views();
  const r = regsAt >>> 2;
  const b = ipcAt >>> 2;
  for (;;) {
    ch.regs.set(mem32.subarray(r, r + 2 * REG_WORDS));
    ch.ipc.set(mem32.subarray(b, b + ch.ipc.length));
    const response = request(K_SYSCALL, sysno);
    if (response === R_RESTART) continue;
    if (response === R_START) throw new RestartProgram();
    views();
    mem32.set(ch.regs, r);
    mem32.set(ch.ipc, b);
    return;
  }
}

/** Thrown through the PD's stack when the kernel restarts the thread at its entry point. */
class RestartProgram extends Error {}

let nextCheck = 0;
function preempt(): number {
  // Read the clock only every few calls: each call already stands for `fuel` loop iterations.
  if (Atomics.load(ctl, PREEMPT) !== 0 || clockNs() >= ch.deadline[0]! || ++nextCheck > 1_000_000) {
    nextCheck = 0;
    Atomics.store(ctl, PREEMPT, 0);
    const response = request(K_PREEMPT, 0);
    if (response === R_START) throw new RestartProgram();
  }
  return init.fuel;
}

let instance: WebAssembly.Instance;
try {
  const mod = new WebAssembly.Module(init.wasm);
  instance = new WebAssembly.Instance(mod, {
    sel4: { syscall },
    capvisor: { preempt },
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
} catch (e) {
  ch.ctl[KIND] = K_LOAD_ERROR;
  process.stderr.write(`${init.name}: ${(e as Error).message}\n`);
  Atomics.store(ctl, STATE, S_REQUEST);
  Atomics.notify(ctl, STATE);
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
    response = request(K_TRAP, trapNumber(e));
  }
}
