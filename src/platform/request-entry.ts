/**
 * A PD thread's request, as the kernel's entry points take it (WasmPlatform.handleRequest): the
 * platform copies what the worker posted on its channel (registers, IPC buffer, trap number)
 * into the thread's TCB and enters the kernel on the thread's core, as the hardware's exception
 * entry would.
 */
import {
  interruptEntry,
  ipiEntry,
  syscallEntry,
  userExceptionEntry,
  vmFaultEntry,
} from "../kernel/api/syscall.js";
import type { Kernel } from "../kernel/state.js";
import type { TCB } from "../kernel/structures.js";
import { REG_PC, REG_X0, ThreadState } from "../kernel/types.js";
import { EXIT_FAULT_NUMBER } from "../pd/machine.js";
import { ARG, clockNs, K_EXIT, K_PREEMPT, K_SYSCALL, K_TRAP, K_VMFAULT, KIND } from "./channel.js";
import type { PDThread, PlatformOptions } from "./programs.js";
import { TRAP_NAMES } from "./traps.js";

/**
 * After a trap or exit entry: the fault was not taken (the budget check rewound the entry, so the
 * thread is still runnable, Restart or already reactivated as Running) rather than delivered
 * (blocked on its fault handler) or stopped (Inactive, no handler).
 */
function rewound(t: TCB): boolean {
  return t.state === ThreadState.Running || t.state === ThreadState.Restart;
}

/**
 * Enter the kernel at host time `now` for the request thread `th` posted, `th` being the current
 * thread of its core. Sets th.phase: "waiting" once the request is in the kernel, "pending" when
 * it must wait until the thread runs again.
 */
export function requestEntry(k: Kernel, th: PDThread, now: number, opts: PlatformOptions): void {
  const t = th.tcb;
  const c = th.core;
  const kind = th.ch.ctl[KIND]!;
  const node = k.nodes[c]!;
  const wasm = th.program.worker === undefined || th.program.worker.fuelChecks === true;
  if (wasm && kind !== K_PREEMPT && now >= node.timerDeadline) {
    // The core's timer deadline passed before the Wasm thread reached this request (a syscall
    // between two preemption checks): on hardware the timer interrupt comes first, at its
    // deadline (see K_PREEMPT below). The request waits until the thread runs again, as one
    // that met a preemption does.
    interruptEntry(k, c, Math.max(node.curTime, node.timerDeadline), k.config.timerIrq);
    if (node.curThread !== t) {
      th.phase = "pending";
      return;
    }
  }
  th.phase = "waiting";
  th.lastKind = kind;
  th.pcBefore = t.getReg(REG_PC);
  switch (kind) {
    case K_SYSCALL:
      opts.onSyscall?.(th.program.name, th.ch.ctl[ARG]!, clockNs(), th.ch.resumedAt[0]!);
      t.regs.set(th.ch.regs, 2 * REG_X0);
      if (t.ipcBuffer !== null) t.ipcBuffer.set(th.ch.ipc);
      syscallEntry(k, c, now, th.ch.ctl[ARG]!);
      break;
    case K_PREEMPT: {
      // A Wasm thread stops at its first preemption check past the core's timer deadline,
      // one check (20,000 loop iterations, tens of µs) after it at most, so the timer
      // interrupt is taken at the deadline, as hardware takes it, and not at `now`: that
      // would charge the thread the hand-off to the main thread and any host scheduling
      // delay as an overrun of its budget. seL4 avoids overruns (it even programs the timer
      // early by its precision) because refill_budget_check turns one into a refill of its
      // own: with Microkit's two refills the sporadic server then splits the budget into
      // pieces a period apart, and every later overrun pushes the second piece back
      // (schedule_used on a full queue). That held a spinner with 2 ms every 10 ms to 12-14%
      // of its core. The time from the deadline to now goes to whichever thread runs next on
      // the core, as the latency of any dispatch does. Other threads (a VM's vcpu) may run
      // well past the deadline before they look, so they are charged until now.
      const at = wasm ? Math.max(node.curTime, node.timerDeadline) : now;
      if (now >= node.timerDeadline) interruptEntry(k, c, at, k.config.timerIrq);
      else ipiEntry(k, c, now);
      break;
    }
    case K_TRAP: {
      const n = th.ch.ctl[ARG]!;
      userExceptionEntry(k, c, now, n, 0);
      if (!rewound(t))
        opts.onEvent?.(th.program.name, `trapped: ${TRAP_NAMES[n] ?? "trap"} (user exception ${n})`);
      break;
    }
    case K_EXIT:
      userExceptionEntry(k, c, now, EXIT_FAULT_NUMBER, 0);
      break;
    case K_VMFAULT:
      // A data abort on a write: ARM's FSR with WnR (bit 6) set (seL4_VMFault_FSR).
      vmFaultEntry(k, c, now, th.ch.ctl[ARG]! >>> 0, 0x40, false);
      break;
  }
  // The budget check rewound the trap, exit or VM fault (seL4 re-executes the faulting instruction):
  // it stays pending and is raised again when the thread next runs, instead of the thread
  // being restarted at its entry with the fault lost.
  if ((kind === K_TRAP || kind === K_EXIT || kind === K_VMFAULT) && rewound(t)) th.phase = "pending";
}
