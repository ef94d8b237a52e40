/**
 * Which passive servers may be called directly (DESIGN.md decision 3, docs/wasm-abi.md "Direct
 * protected calls"): a Microkit server whose `protected()` can run to completion without the
 * kernel. Its callers then run it in their own worker, on their own scheduling context, as a
 * protected call on seL4 MCS runs the passive server on the caller's (seL4 manual §6.1.5,
 * scheduling context donation), without four thread hand-offs through the kernel's thread.
 *
 * The module must export `capvisor_protected` (libmicrokit's, lib/microkit/microkit.c), and no
 * code reachable from it may
 * - make a system call (reach the `sel4.syscall` import: microkit_notify, microkit_dbg_puts, a
 *   nested microkit_ppcall, ...): the kernel would see the server run;
 * - defer a signal (reach libmicrokit's `capvisor_defer`): it goes out with the server's next
 *   receive, a system call of the server's;
 * - call through a function pointer or reference: what it reaches is then unknown.
 * Everything else a protected() does is plain computation on its own memory and its IPC buffer.
 */
import { callGraph } from "./instrument.js";

/** Why `wasm` (an instrumented PD module) cannot be called directly; null when it can. */
export function directCallBlocker(wasm: Uint8Array): string | null {
  const g = callGraph(wasm);
  const start = g.exports.get("capvisor_protected");
  if (start === undefined) return "it does not export capvisor_protected (not a libmicrokit C PD)";
  const defer = g.exports.get("capvisor_defer");
  const seen = new Set<string>([start]);
  const todo = [start];
  while (todo.length > 0) {
    const f = todo.pop()!;
    const imported = g.imports.get(f);
    if (imported !== undefined) {
      if (imported === "capvisor.preempt") continue;
      return `protected() may reach ${imported} (through ${f}): it makes system calls`;
    }
    if (f === defer) return "protected() may defer a signal (microkit_deferred_notify or _irq_ack)";
    if (g.indirect.has(f)) return `protected() calls through a function pointer (in ${f})`;
    for (const c of g.calls.get(f) ?? [])
      if (!seen.has(c)) {
        seen.add(c);
        todo.push(c);
      }
  }
  return null;
}
