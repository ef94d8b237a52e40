/**
 * Bit-vector models of capvisor's bit-level kernel arithmetic, written once against an abstract
 * algebra `Alg` and interpreted two ways: symbolically by Z3 (src/verify/smt.ts proves properties
 * for all inputs) and concretely on BigInts (`bigAlg`, used by the differential test to check
 * that the model computes exactly what the TypeScript code computes, so model and code cannot
 * drift apart unnoticed).
 *
 * Modelling JavaScript numbers. The kernel code works on JS numbers holding integers. A JS
 * bitwise operator first applies ToInt32/ToUint32 (reduction mod 2^32), and its shift count is
 * taken mod 32; `>>> 0` is the identity on the 32-bit pattern. So every value that flows through
 * `| & << >>>` is modelled as a 32-bit vector, `a >>> b` as lshr(a, b & 31), `a << b` as
 * shl(a, b & 31). Integer double arithmetic (`+ - *`, division and Math.floor/ceil by a power
 * of two) is modelled on 64-bit vectors, with an explicit exactness condition wherever a double
 * result could exceed 2^53 (extractBits) or a proof obligation that it cannot (Retype).
 * Small integers (shift counts, widths, depths) are 32-bit vectors compared signed, as JS
 * compares them; they never leave [-2^31, 2^31) in the ranges proved.
 */

/** An interpretation of fixed-width bit-vector terms B and booleans P. */
export interface Alg<B, P> {
  c(v: bigint | number, w: number): B;
  add(a: B, b: B): B;
  sub(a: B, b: B): B;
  mul(a: B, b: B): B;
  udiv(a: B, b: B): B;
  urem(a: B, b: B): B;
  and(a: B, b: B): B;
  or(a: B, b: B): B;
  /** SMT-LIB semantics: shifting by >= width gives 0. */
  shl(a: B, b: B): B;
  lshr(a: B, b: B): B;
  zext(a: B, to: number): B;
  /** The low `w` bits. */
  low(a: B, w: number): B;
  eq(a: B, b: B): P;
  ult(a: B, b: B): P;
  ule(a: B, b: B): P;
  slt(a: B, b: B): P;
  sle(a: B, b: B): P;
  ite(c: P, a: B, b: B): B;
  bite(c: P, a: P, b: P): P;
  all(...p: P[]): P;
  some(...p: P[]): P;
  not(p: P): P;
  implies(a: P, b: P): P;
  bool(b: boolean): P;
}

/** A concrete bit-vector: value in [0, 2^w). */
export interface BigBV {
  readonly v: bigint;
  readonly w: number;
}

function mk(v: bigint, w: number): BigBV {
  return { v: BigInt.asUintN(w, v), w };
}

/** The BigInt interpretation (SMT-LIB bit-vector semantics, evaluated). */
export const bigAlg: Alg<BigBV, boolean> = {
  c: (v, w) => mk(BigInt(v), w),
  add: (a, b) => mk(a.v + b.v, a.w),
  sub: (a, b) => mk(a.v - b.v, a.w),
  mul: (a, b) => mk(a.v * b.v, a.w),
  udiv: (a, b) => (b.v === 0n ? mk(-1n, a.w) : mk(a.v / b.v, a.w)),
  urem: (a, b) => (b.v === 0n ? a : mk(a.v % b.v, a.w)),
  and: (a, b) => mk(a.v & b.v, a.w),
  or: (a, b) => mk(a.v | b.v, a.w),
  shl: (a, b) => (b.v >= BigInt(a.w) ? mk(0n, a.w) : mk(a.v << b.v, a.w)),
  lshr: (a, b) => (b.v >= BigInt(a.w) ? mk(0n, a.w) : mk(a.v >> b.v, a.w)),
  zext: (a, to) => mk(a.v, to),
  low: (a, w) => mk(a.v, w),
  eq: (a, b) => a.v === b.v,
  ult: (a, b) => a.v < b.v,
  ule: (a, b) => a.v <= b.v,
  slt: (a, b) => BigInt.asIntN(a.w, a.v) < BigInt.asIntN(b.w, b.v),
  sle: (a, b) => BigInt.asIntN(a.w, a.v) <= BigInt.asIntN(b.w, b.v),
  ite: (c, a, b) => (c ? a : b),
  bite: (c, a, b) => (c ? a : b),
  all: (...p) => p.every((x) => x),
  some: (...p) => p.some((x) => x),
  not: (p) => !p,
  implies: (a, b) => !a || b,
  bool: (b) => b,
};

// ---------------------------------------------------------------------------------------------
// JS 32-bit operators and src/kernel/core/word.ts
// ---------------------------------------------------------------------------------------------

/** JS `a >>> b` on 32-bit patterns. */
export function jsUshr<B, P>(A: Alg<B, P>, a: B, b: B): B {
  return A.lshr(a, A.and(b, A.c(31, 32)));
}
/** JS `a << b` on 32-bit patterns. */
export function jsShl<B, P>(A: Alg<B, P>, a: B, b: B): B {
  return A.shl(a, A.and(b, A.c(31, 32)));
}
/** JS `(1 << w) - 1` reduced by the following `&` (ToInt32 of the double difference = mod 2^32). */
function jsMask<B, P>(A: Alg<B, P>, w: B): B {
  return A.sub(jsShl(A, A.c(1, 32), w), A.c(1, 32));
}

/** word.ts mask32(v, width). */
export function mMask32<B, P>(A: Alg<B, P>, v: B, width: B): B {
  return A.ite(A.sle(A.c(32, 32), width), v, A.and(v, jsMask(A, width)));
}

/** `a <= b` etc. on JS small integers. */
const ge = <B, P>(A: Alg<B, P>, a: B, n: number) => A.sle(A.c(n, 32), a);
const le = <B, P>(A: Alg<B, P>, a: B, n: number) => A.sle(a, A.c(n, 32));

/** word.ts extractLo(hi, lo, shift, width): a 32-bit result. */
export function mExtractLo<B, P>(A: Alg<B, P>, hi: B, lo: B, shift: B, width: B): B {
  const k32 = A.c(32, 32);
  const v = A.ite(
    ge(A, shift, 32),
    jsUshr(A, hi, A.sub(shift, k32)),
    A.ite(
      A.eq(shift, A.c(0, 32)),
      lo,
      A.or(jsUshr(A, lo, shift), jsShl(A, hi, A.sub(k32, shift))), // (... | ...) >>> 0
    ),
  );
  const r = A.ite(ge(A, width, 32), v, A.and(v, jsMask(A, width)));
  return A.ite(le(A, width, 0), A.c(0, 32), r);
}

/** word.ts extractHi(hi, lo, shift, width): a 32-bit result. */
export function mExtractHi<B, P>(A: Alg<B, P>, hi: B, _lo: B, shift: B, width: B): B {
  const v = A.ite(ge(A, shift, 32), A.c(0, 32), jsUshr(A, hi, shift));
  const w = A.sub(width, A.c(32, 32));
  const r = A.ite(ge(A, w, 32), v, A.and(v, jsMask(A, w)));
  return A.ite(le(A, width, 32), A.c(0, 32), r);
}

/**
 * Whether a non-negative integer below 2^64 is exactly representable as a double: below 2^53,
 * or below 2^(53+k) with its low k bits clear.
 */
export function representable<B, P>(A: Alg<B, P>, x: B): P {
  const terms: P[] = [];
  for (let k = 0; k <= 11; k++) {
    const small = k + 53 >= 64 ? A.bool(true) : A.ult(x, A.c(1n << BigInt(53 + k), 64));
    terms.push(A.all(small, A.eq(A.and(x, A.c((1n << BigInt(k)) - 1n, 64)), A.c(0, 64))));
  }
  return A.some(...terms);
}

/**
 * word.ts extractBits(hi, lo, shift, width): the exact integer value the code computes (64-bit)
 * and whether the double addition in the straddling case is exact (else JS rounds it).
 */
export function mExtractBits<B, P>(A: Alg<B, P>, hi: B, lo: B, shift: B, width: B): { v: B; exact: P } {
  const z = (x: B) => A.zext(x, 64);
  const inHigh = z(mMask32(A, jsUshr(A, hi, A.sub(shift, A.c(32, 32))), width));
  const lowBits = A.sub(A.c(32, 32), shift);
  const lowPart = jsUshr(A, lo, shift);
  const inLow = z(mMask32(A, lowPart, width));
  // lowPart + mask32(hi, width - lowBits) * POW2[lowBits]: product exact (power-of-two scaling
  // of a 32-bit integer), sum exact iff representable.
  const sum = A.add(
    z(lowPart),
    A.mul(z(mMask32(A, hi, A.sub(width, lowBits))), A.shl(A.c(1, 64), z(lowBits))),
  );
  const straddle = A.not(A.sle(width, lowBits));
  const isSum = A.all(A.not(le(A, width, 0)), A.not(ge(A, shift, 32)), straddle);
  const v = A.ite(
    le(A, width, 0),
    A.c(0, 64),
    A.ite(ge(A, shift, 32), inHigh, A.ite(A.sle(width, lowBits), inLow, sum)),
  );
  return { v, exact: A.implies(isSum, representable(A, sum)) };
}

// ---------------------------------------------------------------------------------------------
// CSpace decoding: resolveAddressBits (src/kernel/core/cspace.ts), one CNode level
// ---------------------------------------------------------------------------------------------

export const KIND_GUARD = 0;
export const KIND_DEPTH = 1;
export const KIND_SLOT = 2;

/** The outcome of one level: a failure with its fault fields, or a slot offset and the bits left. */
export interface LevelResult<B, P> {
  kind: B; // KIND_*, 32-bit
  bitsLeft: B; // lookup fault bitsLeft (32-bit)
  levelBits: B; // DepthMismatch bitsFound (32-bit)
  offset: B; // slot offset (64-bit)
  exact: P; // the offset is the exact integer (JS did not round)
  remaining: B; // bits left to resolve after this level (32-bit)
}

/** The CNode cap's fields and the address, as 32-bit JS-number patterns. */
export interface CNodeLevel<B> {
  radix: B;
  guardSize: B;
  guardLo: B;
  guardHi: B;
}

/** Exactly what one iteration of resolveAddressBits computes. */
export function mResolveLevel<B, P>(A: Alg<B, P>, hi: B, lo: B, n: B, cap: CNodeLevel<B>): LevelResult<B, P> {
  const c = (v: number) => A.c(v, 32);
  const g = cap.guardSize;
  const r = cap.radix;
  const levelBits = A.add(r, g);
  const shift = A.sub(n, g);
  const gLo = mExtractLo(A, hi, lo, shift, g);
  const gHi = mExtractHi(A, hi, lo, shift, g);
  const guardTooBig = A.slt(n, g);
  const mismatch = A.all(A.slt(c(0), g), A.not(A.all(A.eq(gLo, cap.guardLo), A.eq(gHi, cap.guardHi))));
  const depth = A.slt(n, levelBits);
  const off = mExtractBits(A, hi, lo, A.sub(n, levelBits), r);
  const guardFail = A.some(guardTooBig, mismatch);
  return {
    kind: A.ite(guardFail, c(KIND_GUARD), A.ite(depth, c(KIND_DEPTH), c(KIND_SLOT))),
    bitsLeft: n,
    levelBits,
    offset: off.v,
    exact: off.exact,
    remaining: A.sub(n, levelBits),
  };
}

/**
 * The declarative specification (seL4 manual §2.3.1): of the word's low `d` bits, read from the
 * top, the first guardSize bits must equal the guard and the next radix bits are the slot
 * index. Written in unbounded-style arithmetic on 128-bit vectors (mod and div by powers of two,
 * so 2^64 is a value), independent of the two-halves representation.
 */
export function specResolveLevel<B, P>(
  A: Alg<B, P>,
  cptr: B, // 64-bit
  d: B,
  cap: { radix: B; guardSize: B; guard: B /* 64-bit */ },
): LevelResult<B, P> {
  const W = 128;
  const X = A.zext(cptr, W);
  const p2 = (k: B) => A.shl(A.c(1, W), A.zext(k, W));
  const g = cap.guardSize;
  const r = cap.radix;
  const level = A.add(g, r);
  const below = (k: B) => A.sub(p2(k), A.c(1, W)); // 2^k - 1
  const top = A.and(X, below(d)); // x mod 2^d
  const guardField = A.lshr(top, A.zext(A.sub(d, g), W)); // div 2^(d-g)
  const guardOk = A.all(A.ule(g, d), A.eq(guardField, A.zext(cap.guard, W)));
  const fitsLevel = A.ule(level, d);
  const offset = A.lshr(A.and(X, below(A.sub(d, g))), A.zext(A.sub(d, level), W));
  return {
    kind: A.ite(
      A.not(guardOk),
      A.c(KIND_GUARD, 32),
      A.ite(fitsLevel, A.c(KIND_SLOT, 32), A.c(KIND_DEPTH, 32)),
    ),
    bitsLeft: d,
    levelBits: level,
    offset: A.low(offset, 64),
    exact: A.bool(true),
    remaining: A.sub(d, level),
  };
}

/** Implementation and specification agree on everything the outcome reports. */
export function levelAgrees<B, P>(A: Alg<B, P>, m: LevelResult<B, P>, s: LevelResult<B, P>): P {
  const isK = (x: LevelResult<B, P>, k: number) => A.eq(x.kind, A.c(k, 32));
  return A.all(
    A.eq(m.kind, s.kind),
    A.eq(m.bitsLeft, s.bitsLeft),
    A.implies(isK(s, KIND_DEPTH), A.eq(m.levelBits, s.levelBits)),
    A.implies(isK(s, KIND_SLOT), A.all(m.exact, A.eq(m.offset, s.offset), A.eq(m.remaining, s.remaining))),
  );
}

// ---------------------------------------------------------------------------------------------
// Untyped_Retype placement (src/kernel/object/untyped.ts), on 64-bit integers
// ---------------------------------------------------------------------------------------------

export interface RetypeResult<B> {
  /** alignedFreeRef: alignUp(paddr + freeIndex, objectSize). */
  base: B;
  objBytes: B;
  /** The cap's new freeIndex. */
  newFreeIndex: B;
  /** The NotEnoughMemory check passed. */
  fits: B; // 1 or 0 (1-bit)
}

/**
 * decodeUntypedInvocation's memory check and alignment, and invokeUntypedRetype's watermark:
 *   untypedFreeBytes = 2 ** sizeBits - freeIndex
 *   fails if Math.floor(untypedFreeBytes / 2 ** objectSize) < nodeWindow
 *   alignedFreeRef = Math.ceil((paddr + freeIndex) / 2 ** objectSize) * 2 ** objectSize
 *   freeIndex' = alignedFreeRef + nodeWindow * 2 ** objectSize - paddr; object i at alignedFreeRef + i * objBytes
 * Division by a power of two is exact in doubles and Math.floor/ceil of it is exact integer
 * division; every value is shown below 2^53 (so integer double arithmetic is exact).
 */
export function mRetype<B, P>(
  A: Alg<B, P>,
  paddr: B,
  sizeBits: B,
  freeIndex: B,
  objectSize: B,
  nodeWindow: B,
): RetypeResult<B> & { fitsP: P } {
  const p2 = (k: B) => A.shl(A.c(1, 64), k);
  const untypedFreeBytes = A.sub(p2(sizeBits), freeIndex);
  // x / 2^k then floor is x >> k; x mod 2^k is x & (2^k - 1) (non-negative integers).
  const fitsP = A.not(A.ult(A.lshr(untypedFreeBytes, objectSize), nodeWindow));
  const freeRef = A.add(paddr, freeIndex);
  const a = p2(objectSize);
  const q = A.lshr(freeRef, objectSize);
  const ceil = A.ite(A.eq(A.and(freeRef, A.sub(a, A.c(1, 64))), A.c(0, 64)), q, A.add(q, A.c(1, 64)));
  const base = A.shl(ceil, objectSize); // ceil * 2^objectSize
  const objBytes = a;
  // nodeWindow * 2^objectSize (exact: < 2^8 * 2^47) as a shift.
  const newFreeIndex = A.sub(A.add(base, A.shl(nodeWindow, objectSize)), paddr);
  return { base, objBytes, newFreeIndex, fits: A.ite(fitsP, A.c(1, 1), A.c(0, 1)), fitsP };
}

// ---------------------------------------------------------------------------------------------
// Message info (src/kernel/core/message.ts, src/pd/libsel4.ts) and rights
// ---------------------------------------------------------------------------------------------

/**
 * setMsgInfo / libsel4 setInfoReg (the same formula), with label < 2^52 an integer:
 *   lo = ((label % 2^20) * 4096 + ((cu & 7) << 9) + ((ec & 3) << 7) + (len & 0x7f)) >>> 0
 *   hi = Math.floor(label / 2^20) >>> 0
 * The double sum is exact (< 2^32); `>>> 0` of a value in [0, 2^32) is itself.
 */
export function mSetMsgInfo<B, P>(A: Alg<B, P>, label: B, cu: B, ec: B, len: B): { hi: B; lo: B } {
  const c = (v: number) => A.c(v, 32);
  const L = A.zext(label, 64);
  const z = (x: B) => A.zext(x, 64);
  const sum = A.add(
    A.add(
      A.add(A.mul(A.urem(L, A.c(1048576, 64)), A.c(4096, 64)), z(jsShl(A, A.and(cu, c(7)), c(9)))),
      z(jsShl(A, A.and(ec, c(3)), c(7))),
    ),
    z(A.and(len, c(0x7f))),
  );
  return { lo: A.low(sum, 32), hi: A.low(A.udiv(L, A.c(1048576, 64)), 32) };
}

/** Kernel decoders: msgInfoLabel (extractBits(hi, lo, 12, 52)), Length, ExtraCaps, CapsUnwrapped. */
export function mKernelDecode<B, P>(A: Alg<B, P>, hi: B, lo: B) {
  const c = (v: number) => A.c(v, 32);
  const label = mExtractBits(A, hi, lo, c(12), c(52));
  return {
    label: label.v,
    labelExact: label.exact,
    length: A.and(lo, c(0x7f)),
    extraCaps: A.and(jsUshr(A, lo, c(7)), c(3)),
    capsUnwrapped: A.and(jsUshr(A, lo, c(9)), c(7)),
  };
}

/** libsel4 readInfoReg: label = hi * 1048576 + (lo >>> 12) (exact: < 2^52). */
export function mUserDecode<B, P>(A: Alg<B, P>, hi: B, lo: B) {
  const c = (v: number) => A.c(v, 32);
  return {
    label: A.add(A.mul(A.zext(hi, 64), A.c(1048576, 64)), A.zext(jsUshr(A, lo, c(12)), 64)),
    length: A.and(lo, c(0x7f)),
    extraCaps: A.and(jsUshr(A, lo, c(7)), c(3)),
    capsUnwrapped: A.and(jsUshr(A, lo, c(9)), c(7)),
  };
}

/** seL4_CapRights_new(grantReply, grant, read, write) with RIGHT_* = 8, 4, 2, 1 (32-bit). */
export function mRightsNew<B, P>(A: Alg<B, P>, gr: P, g: P, r: P, w: P): B {
  const c = (v: number) => A.c(v, 32);
  const bit = (p: P, v: number) => A.ite(p, c(v), c(0));
  return A.or(A.or(bit(gr, 8), bit(g, 4)), A.or(bit(r, 2), bit(w, 1)));
}
/** cnode.ts rightsFromWord (lo & ALL_RIGHTS) then the kernel's `(rights & RIGHT_X) !== 0` tests. */
export function mRightsDecode<B, P>(A: Alg<B, P>, lo: B) {
  const c = (v: number) => A.c(v, 32);
  const rights = A.and(lo, c(15));
  const has = (v: number) => A.not(A.eq(A.and(rights, c(v)), c(0)));
  return { rights, grantReply: has(8), grant: has(4), read: has(2), write: has(1) };
}
