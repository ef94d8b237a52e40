/** The 64-bit word helpers against BigInt, the obviously correct reference, for random words. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { extractBits, extractHi, extractLo, fromBigInt, toBigInt } from "../../src/kernel/core/word.js";

const word = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const field = fc
  .tuple(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 64 }))
  .filter(([s, w]) => s + w <= 64);

function ref(v: bigint, shift: number, width: number): bigint {
  return (v >> BigInt(shift)) & ((1n << BigInt(width)) - 1n);
}

test("extractBits matches BigInt for every field up to 53 bits", () => {
  fc.assert(
    fc.property(word, field, (v, [shift, width]) => {
      fc.pre(width <= 53);
      const [hi, lo] = fromBigInt(v);
      assert.equal(BigInt(extractBits(hi, lo, shift, width)), ref(v, shift, width));
    }),
    { numRuns: 20_000 },
  );
});

test("extractLo/extractHi give the two halves of any field up to 64 bits", () => {
  fc.assert(
    fc.property(word, field, (v, [shift, width]) => {
      const [hi, lo] = fromBigInt(v);
      const got = toBigInt(extractHi(hi, lo, shift, width), extractLo(hi, lo, shift, width));
      assert.equal(got, ref(v, shift, width));
    }),
    { numRuns: 20_000 },
  );
});
