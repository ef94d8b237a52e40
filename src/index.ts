/**
 * capvisor's library API. A program boots a kernel, drives it through the same entry points a
 * platform uses (syscalls, interrupts, faults, with time as an input), and inspects its state.
 */
export {
  interruptEntry,
  ipiEntry,
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
export {
  Allocator,
  createThread,
  mapPage,
  startThread,
  type ThreadHandle,
  type ThreadOptions,
} from "./pd/alloc.js";
export * from "./pd/libsel4.js";
export * from "./pd/libsel4-invocations.js";
export {
  EXIT_FAULT_NUMBER,
  Machine,
  type MachineOptions,
  type Request,
  type RunOptions,
  type RunResult,
  type ThreadProgram,
  UserThread,
} from "./pd/machine.js";
export {
  type InterruptSource,
  type PDProgram,
  type PeriodicTimer,
  type PeriodicTimerOptions,
  type PlatformOptions,
  type RegisterPage,
  raiseFromSource,
  type ThreadStatus,
  WasmPlatform,
} from "./platform/wasm-platform.js";
// Booting a system description and driving it, as `capvisor up` does.
export {
  type BootedSystem,
  type BootOptions,
  bootSystem,
  type PDRuntime,
  type RuntimeHooks,
} from "./system/boot.js";
export { type DemoOptions, type DemoResult, runDemo } from "./system/demo.js";
