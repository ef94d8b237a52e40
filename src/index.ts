/**
 * capvisor's library API. A program boots a kernel, drives it through the same entry points a
 * platform uses (syscalls, interrupts, faults, with time as an input), and inspects its state.
 */
export {
  interruptEntry,
  raiseInterrupt,
  syscallEntry,
  userExceptionEntry,
  vmFaultEntry,
} from "./kernel/api/syscall.js";
export * from "./kernel/core/boot.js";
export { checkInvariants } from "./kernel/invariants.js";
export { type BootInfo, DEFAULT_CONFIG, Kernel, type KernelConfig, KernelStats } from "./kernel/state.js";
export * from "./kernel/structures.js";
export * from "./kernel/types.js";
