/**
 * Wasm traps as seL4 user exceptions (docs/wasm-abi.md, "Traps"): V8 reports a trap as a
 * WebAssembly.RuntimeError (or a RangeError for an exhausted call stack) whose message names it.
 */
export const TRAP_UNREACHABLE = 1;
export const TRAP_OUT_OF_BOUNDS = 2;
export const TRAP_STACK_OVERFLOW = 3;
export const TRAP_INTEGER = 4;
export const TRAP_CONVERSION = 5;
export const TRAP_INDIRECT_CALL = 6;
export const TRAP_OTHER = 7;

export const TRAP_NAMES: Record<number, string> = {
  [TRAP_UNREACHABLE]: "unreachable executed",
  [TRAP_OUT_OF_BOUNDS]: "out of bounds memory access",
  [TRAP_STACK_OVERFLOW]: "call stack exhausted",
  [TRAP_INTEGER]: "integer divide by zero or overflow",
  [TRAP_CONVERSION]: "invalid conversion to integer",
  [TRAP_INDIRECT_CALL]: "indirect call to a null or mismatched function",
  [TRAP_OTHER]: "trap",
};

export function trapNumber(e: unknown): number {
  if (e instanceof RangeError && /call stack/i.test(e.message)) return TRAP_STACK_OVERFLOW;
  const m = e instanceof Error ? e.message : String(e);
  if (/unreachable/i.test(m)) return TRAP_UNREACHABLE;
  if (/out of bounds/i.test(m)) return TRAP_OUT_OF_BOUNDS;
  if (/divide by zero|integer overflow|remainder by zero/i.test(m)) return TRAP_INTEGER;
  if (/unrepresentable|conversion/i.test(m)) return TRAP_CONVERSION;
  if (/indirect call|null function|signature mismatch|function signature/i.test(m)) return TRAP_INDIRECT_CALL;
  return TRAP_OTHER;
}
