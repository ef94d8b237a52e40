/**
 * One node:test test per applicable checklist row. A row that applies but has no registered test
 * fails here, so the suite cannot silently lose coverage.
 */
import { test } from "node:test";
import "./all.js";
import { CHECKLIST } from "./checklist.js";
import { registered } from "./rows.js";

for (const row of CHECKLIST) {
  if (row.na !== undefined) continue;
  const fn = registered.get(row.id);
  test(`${row.id}: ${row.intent}`, async () => {
    if (fn === undefined) throw new Error(`no test for applicable row ${row.id}`);
    await fn();
  });
}
