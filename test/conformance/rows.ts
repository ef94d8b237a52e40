/**
 * Registry of conformance tests: each group file registers one test per checklist row with
 * `conformance(id, fn)`. The node:test entry (conformance.test.ts) and the table printer
 * (report.ts) both run what is registered here, so the table shows exactly what the tests do.
 */
import { CHECKLIST } from "./checklist.js";

export type ConformanceFn = () => void | Promise<void>;

export const registered = new Map<string, ConformanceFn>();

export function conformance(id: string, fn: ConformanceFn): void {
  if (!CHECKLIST.some((r) => r.id === id)) throw new Error(`conformance test ${id} is not a checklist row`);
  if (registered.has(id)) throw new Error(`conformance test ${id} registered twice`);
  registered.set(id, fn);
}
