/**
 * Bounded model checking of the kernel (issue 6): every syscall sequence up to a depth from a
 * small initial state keeps the kernel invariants and the abstract authority model; and the
 * checker can fail: deliberately broken variants (a step that raises a cap's rights, a step that
 * forges a cap) are reported as COUNTEREXAMPLEs with their syscall trace.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type CNodeObj, Frame } from "../../src/kernel/structures.js";
import { CapType, TCB_CTABLE, TCB_IPC_BUFFER } from "../../src/kernel/types.js";
import {
  ALPHABET,
  applyAction,
  type BmcState,
  buildWorld,
  HASH_SKIP,
  RIGHTS,
  runBmc,
  SLOTS,
  workerSlot,
  workers,
} from "../../src/verify/bmc.js";
import { canonicalHash, deepClone } from "../../src/verify/bmc-clone.js";

/** Depth the test explores (45-75 s on a 2-core machine); `npm run verify:deep` goes one deeper. */
const DEPTH = 4;
/** Measured: 95,761 distinct states (182,592 transitions) at depth 4; the floor leaves room for kernel fixes. */
const STATE_FLOOR = 90_000;

test(`bounded model check: every syscall sequence up to depth ${DEPTH} keeps invariants and authority`, () => {
  const r = runBmc({ depth: DEPTH });
  console.log(`  ${r.summary}`);
  assert.equal(r.verdict, "BOUNDED", r.summary);
  assert.equal(r.depthReached, DEPTH);
  assert.ok(r.states > STATE_FLOOR, `only ${r.states} states explored (floor ${STATE_FLOOR})`);
  assert.match(r.summary, new RegExp(`^BOUNDED\\(${DEPTH}\\): \\d+ states explored`));
});

test("bmc: a step that raises a cap's rights is a COUNTEREXAMPLE with its trace", () => {
  // Broken kernel (injected here only): after a TCB invocation, A's ep1 cap gains Grant.
  const hook = (s: BmcState, act: { kind: string }): void => {
    if (act.kind !== "tcb") return;
    const a = workers(s)[0]!;
    const slot = workerSlot(a, SLOTS.EP1)!;
    slot.cap.rights |= RIGHTS.GRANT;
  };
  const r = runBmc({ depth: 3, afterStep: hook });
  assert.equal(r.verdict, "COUNTEREXAMPLE", r.summary);
  assert.ok(r.trace !== undefined && r.trace.length >= 1);
  const last = r.trace.at(-1)!;
  assert.match(last, /^[AB]: TCB_(Suspend|Resume)\(other\)$/);
  for (const step of r.trace)
    assert.ok(
      ALPHABET.some((a) => step.endsWith(`: ${a.name}`)),
      `trace step "${step}" is not an alphabet action`,
    );
  assert.match(r.violation ?? "", /thread A slot 2 holds Endpoint .* rights=7 .*was Endpoint .* rights=3/);
  assert.match(r.summary, /^COUNTEREXAMPLE at depth \d+: .*\n {2}trace: /);
});

test("bmc: a cap forged into a CSpace is a COUNTEREXAMPLE naming the step", () => {
  // Broken kernel: after a Yield, B's slot 12 receives a copy of the Untyped cap that only A holds.
  const hook = (s: BmcState, act: { name: string }): void => {
    if (act.name !== "Yield") return;
    const [a, b] = workers(s);
    const ut = workerSlot(a!, 5)!.cap;
    const dest = (b!.ctes[TCB_CTABLE]!.cap.obj as CNodeObj).slot(12);
    if (ut.type === CapType.Untyped && dest.cap.type === CapType.Null) dest.cap = ut.clone();
  };
  const r = runBmc({ depth: 1, afterStep: hook });
  assert.equal(r.verdict, "COUNTEREXAMPLE", r.summary);
  assert.deepEqual(r.trace, ["B: Yield"]);
  const deeper = runBmc({ depth: 2, afterStep: hook });
  assert.equal(deeper.verdict, "COUNTEREXAMPLE", deeper.summary);
  assert.equal(deeper.trace?.at(-1)?.endsWith(": Yield"), true);
  assert.match(r.violation ?? "", /thread B slot 12 holds Untyped/);
});

test("bmc: the state clone is exact and independent of the original", () => {
  const { state } = buildWorld();
  const h0 = canonicalHash(state, HASH_SKIP);
  const copy = deepClone(state);
  assert.equal(canonicalHash(copy, HASH_SKIP), h0);
  assert.notEqual(copy.k, state.k);
  // Aliasing is kept: a worker's IPC buffer is still a view of its frame's bytes.
  const [a] = workers(copy);
  const frame = a!.ctes[TCB_IPC_BUFFER]!.cap.obj;
  assert.ok(frame instanceof Frame);
  assert.equal(a!.ipcBuffer!.buffer, frame.bytes().buffer);
  // Running steps on the copy leaves the original as it was, and the same steps give the same state.
  const again = deepClone(state);
  for (const name of ["Recv(ep0, reply)", "Send(ep0, +ntfn cap)", "Untyped_Retype(Endpoint -> 12)", "tick"]) {
    const act = ALPHABET.find((x) => x.name === name)!;
    applyAction(copy, act);
    applyAction(again, act);
  }
  assert.equal(canonicalHash(state, HASH_SKIP), h0);
  assert.notEqual(canonicalHash(copy, HASH_SKIP), h0);
  assert.equal(canonicalHash(copy, HASH_SKIP), canonicalHash(again, HASH_SKIP));
});

test("bmc: a short run with no hook is BOUNDED and deterministic", () => {
  const a = runBmc({ depth: 2 });
  const b = runBmc({ depth: 2 });
  assert.equal(a.verdict, "BOUNDED");
  assert.equal(a.states, b.states);
  assert.equal(a.transitions, b.transitions);
});
