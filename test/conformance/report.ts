/**
 * `npm run conformance`: runs every registered conformance test and prints the checklist as a
 * table with pass / fail / n/a (with the reason). Exit code 1 if any applicable row fails.
 */
import "./all.js";
import { CHECKLIST } from "./checklist.js";
import { registered } from "./rows.js";

const results: { id: string; result: string; note: string }[] = [];
let pass = 0;
let failed = 0;
let na = 0;
for (const row of CHECKLIST) {
  if (row.na !== undefined) {
    na++;
    results.push({ id: row.id, result: "n/a", note: row.na });
    continue;
  }
  const fn = registered.get(row.id);
  if (fn === undefined) {
    failed++;
    results.push({ id: row.id, result: "FAIL", note: "no test registered" });
    continue;
  }
  try {
    await fn();
    pass++;
    results.push({ id: row.id, result: "pass", note: row.intent });
  } catch (e) {
    failed++;
    const msg = e instanceof Error ? e.message.split("\n")[0]! : String(e);
    results.push({ id: row.id, result: "FAIL", note: msg });
  }
}
const w = Math.max(...results.map((r) => r.id.length));
console.log(`| ${"test".padEnd(w)} | result | note |`);
console.log(`|${"-".repeat(w + 2)}|--------|------|`);
for (const r of results) console.log(`| ${r.id.padEnd(w)} | ${r.result.padEnd(6)} | ${r.note} |`);
console.log(`\n${pass} passed, ${failed} failed, ${na} not applicable (of ${CHECKLIST.length} rows)`);
process.exitCode = failed > 0 ? 1 : 0;
