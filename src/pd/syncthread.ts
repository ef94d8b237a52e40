/**
 * Run a libsel4 program synchronously as the root task: each syscall it yields enters the
 * kernel at once. The system loader uses this at boot, when the root task is the only thread
 * that runs (priority 255, every thread it creates is below it), so no scheduling interleaving
 * is lost; if the root task ever stops being the current thread, that assumption broke and the
 * driver says so instead of continuing wrongly.
 */
import { syscallEntry } from "../kernel/api/syscall.js";
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
import { IPC_BUFFER_WORDS, REG_PC, REG_SYSCALL } from "../kernel/types.js";
import type { Sel4Gen } from "./libsel4.js";
import type { ThreadContext } from "./machine.js";

export class SyncThread implements ThreadContext {
  readonly ipcBuffer: Uint32Array;
  constructor(readonly tcb: TCB) {
    this.ipcBuffer = tcb.ipcBuffer ?? new Uint32Array(2 * IPC_BUFFER_WORDS);
  }
}

/** Execute `gen` on the kernel's root thread (core 0) with `now()` as the time of each entry. */
export function runSync<T>(k: Kernel, ctx: SyncThread, gen: Sel4Gen<T>, now: () => number): T {
  const t = ctx.tcb;
  let r = gen.next();
  while (r.done !== true) {
    if (r.value.kind !== "syscall")
      throw new Error(`the boot-time root task can only make syscalls, not '${r.value.kind}'`);
    // x7 holds the (negative) syscall number as a 64-bit word: its low half as int32 is the number.
    const sysno = t.regs[2 * REG_SYSCALL]! | 0;
    for (;;) {
      const pc = t.getReg(REG_PC);
      syscallEntry(k, t.core, now(), sysno);
      if (k.nodes[t.core]!.curThread !== t)
        throw new Error(`the root task lost the CPU to "${k.nodes[t.core]!.curThread.name}" while loading`);
      // A syscall the kernel rewound (seL4 Restart) is executed again, as hardware would.
      if (t.getReg(REG_PC) !== pc) break;
    }
    r = gen.next();
  }
  return r.value;
}
