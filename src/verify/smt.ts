/**
 * Push-button SMT proofs (Z3, bit-vector theory) of capvisor's bit-level kernel arithmetic, for
 * all inputs in the stated ranges. Each property is `pre => goal` over named bit-vector inputs;
 * the verdict is PROVED (pre && !goal is unsatisfiable), COUNTEREXAMPLE (with the concrete
 * inputs) or UNKNOWN. The models are in smt-model.ts, shared with the differential test.
 *
 * Run: `npm run verify:smt` (node dist/src/verify/smt.js).
 */
import type { BitVec, Bool, Context } from "z3-solver";
import {
  type Alg,
  KIND_SLOT,
  levelAgrees,
  mExtractBits,
  mKernelDecode,
  mResolveLevel,
  mRetype,
  mRightsDecode,
  mRightsNew,
  mSetMsgInfo,
  mUserDecode,
  specResolveLevel,
} from "./smt-model.js";

type B = BitVec<number, "main">;
type P = Bool<"main">;
type Z = Context<"main">;

export function z3Alg(Z3: Z): Alg<B, P> {
  return {
    c: (v, w) => Z3.BitVec.val(BigInt(v), w),
    add: (a, b) => a.add(b),
    sub: (a, b) => a.sub(b),
    mul: (a, b) => a.mul(b),
    udiv: (a, b) => a.udiv(b),
    urem: (a, b) => a.urem(b),
    and: (a, b) => a.and(b),
    or: (a, b) => a.or(b),
    shl: (a, b) => a.shl(b),
    lshr: (a, b) => a.lshr(b),
    zext: (a, to) => (a.size() === to ? a : a.zeroExt(to - a.size())),
    low: (a, w) => (a.size() === w ? a : a.extract(w - 1, 0)),
    eq: (a, b) => a.eq(b),
    ult: (a, b) => a.ult(b),
    ule: (a, b) => a.ule(b),
    slt: (a, b) => a.slt(b),
    sle: (a, b) => a.sle(b),
    ite: (c, a, b) => Z3.If(c, a, b) as B,
    bite: (c, a, b) => Z3.If(c, a, b) as P,
    all: (...p) => Z3.And(...p),
    some: (...p) => Z3.Or(...p),
    not: (p) => Z3.Not(p),
    implies: (a, b) => Z3.Implies(a, b),
    bool: (b) => Z3.Bool.val(b),
  };
}

/** A property over named inputs (name -> bit width), generic in the algebra. */
export interface Property {
  name: string;
  /** What is proved, in words. */
  claim: string;
  vars: Record<string, number>;
  pre<Bv, Pp>(A: Alg<Bv, Pp>, v: Record<string, Bv>): Pp;
  goal<Bv, Pp>(A: Alg<Bv, Pp>, v: Record<string, Bv>): Pp;
  /** The verdict this property is expected to have (the test asserts it). */
  expect: "PROVED" | "COUNTEREXAMPLE";
}

export interface Verdict {
  name: string;
  claim: string;
  verdict: "PROVED" | "COUNTEREXAMPLE" | "UNKNOWN";
  expect: Property["expect"];
  counterexample?: Record<string, bigint>;
  ms: number;
}

const in32 = <Bv, Pp>(A: Alg<Bv, Pp>, x: Bv, lo: number, hi: number) =>
  A.all(A.ule(A.c(lo, 32), x), A.ule(x, A.c(hi, 32)));
const cptr64 = <Bv, Pp>(A: Alg<Bv, Pp>, hi: Bv, lo: Bv): Bv =>
  A.or(A.shl(A.zext(hi, 64), A.c(32, 64)), A.zext(lo, 64));
/** guard < 2^guardSize (a well-formed CNode cap; seL4 masks the guard when it is set). */
const guardFits = <Bv, Pp>(A: Alg<Bv, Pp>, guard: Bv, g: Bv) =>
  A.some(A.eq(g, A.c(64, 32)), A.ult(guard, A.shl(A.c(1, 64), A.zext(g, 64))));

function levelPre<Bv, Pp>(A: Alg<Bv, Pp>, v: Record<string, Bv>, maxRadix: number, sfx = ""): Pp {
  const g = v[`g${sfx}`]!;
  const r = v[`r${sfx}`]!;
  return A.all(
    in32(A, g, 0, 64),
    in32(A, r, 0, maxRadix),
    A.ule(A.add(g, r), A.c(64, 32)),
    guardFits(A, cptr64(A, v[`gHi${sfx}`]!, v[`gLo${sfx}`]!), g),
  );
}
function level<Bv>(v: Record<string, Bv>, sfx = "") {
  return {
    radix: v[`r${sfx}`]!,
    guardSize: v[`g${sfx}`]!,
    guardLo: v[`gLo${sfx}`]!,
    guardHi: v[`gHi${sfx}`]!,
  };
}

function cspaceLevel(maxRadix: number, expect: Property["expect"]): Property {
  return {
    name: `cspace.resolve-one-level (radix 0..${maxRadix})`,
    claim:
      "resolveAddressBits, one CNode level: same outcome (slot offset and bits remaining, GuardMismatch or DepthMismatch with bitsLeft/bitsFound) as the declarative spec, for every 64-bit cptr, depth 1..64, guard size 0..64 and guard, radix with guard+radix <= 64",
    vars: { hi: 32, lo: 32, d: 32, g: 32, r: 32, gLo: 32, gHi: 32 },
    pre: (A, v) => A.all(in32(A, v.d!, 1, 64), levelPre(A, v, maxRadix)),
    goal: (A, v) => {
      const m = mResolveLevel(A, v.hi!, v.lo!, v.d!, level(v));
      const s = specResolveLevel(A, cptr64(A, v.hi!, v.lo!), v.d!, {
        radix: v.r!,
        guardSize: v.g!,
        guard: cptr64(A, v.gHi!, v.gLo!),
      });
      return levelAgrees(A, m, s);
    },
    expect,
  };
}

/** Not in PROPERTIES: Z3 does not settle it within 60 s (UNKNOWN); run with a longer timeout. */
export const cspaceTwoLevel: Property = {
  name: "cspace.resolve-two-levels (radix 0..53)",
  claim:
    "two CNode levels (the slot reached at level 1 holds the level-2 CNode cap): the outcome of the second iteration agrees with the spec applied to the bits left, and on success the top guard1+radix1+guard2+radix2 bits of the depth-d address are exactly guard1 . offset1 . guard2 . offset2",
  vars: { hi: 32, lo: 32, d: 32, g: 32, r: 32, gLo: 32, gHi: 32, g2: 32, r2: 32, gLo2: 32, gHi2: 32 },
  pre: (A, v) => A.all(in32(A, v.d!, 1, 64), levelPre(A, v, 53), levelPre(A, v, 53, "2")),
  goal: (A, v) => {
    const x = cptr64(A, v.hi!, v.lo!);
    const m1 = mResolveLevel(A, v.hi!, v.lo!, v.d!, level(v));
    const s1 = specResolveLevel(A, x, v.d!, {
      radix: v.r!,
      guardSize: v.g!,
      guard: cptr64(A, v.gHi!, v.gLo!),
    });
    const continues = A.all(A.eq(m1.kind, A.c(KIND_SLOT, 32)), A.not(A.eq(m1.remaining, A.c(0, 32))));
    const m2 = mResolveLevel(A, v.hi!, v.lo!, m1.remaining, level(v, "2"));
    const s2 = specResolveLevel(A, x, s1.remaining, {
      radix: v.r2!,
      guardSize: v.g2!,
      guard: cptr64(A, v.gHi2!, v.gLo2!),
    });
    // On success: (x mod 2^d) >> (d - l1 - l2) == g1 . o1 . g2 . o2 (128-bit arithmetic).
    const W = 128;
    const z = (b: typeof x) => A.zext(b, W);
    const p2 = (k: typeof x) => A.shl(A.c(1, W), A.zext(k, W));
    const l2 = A.add(v.g2!, v.r2!);
    const path = A.lshr(A.and(z(x), A.sub(p2(v.d!), A.c(1, W))), A.zext(m2.remaining, W));
    const concat = A.or(
      A.or(
        A.shl(z(cptr64(A, v.gHi!, v.gLo!)), A.zext(A.add(v.r!, l2), W)),
        A.shl(z(m1.offset), A.zext(l2, W)),
      ),
      A.or(A.shl(z(cptr64(A, v.gHi2!, v.gLo2!)), A.zext(v.r2!, W)), z(m2.offset)),
    );
    const ok2 = A.eq(m2.kind, A.c(KIND_SLOT, 32));
    return A.implies(
      continues,
      A.all(levelAgrees(A, m2, s2), A.implies(ok2, A.all(A.eq(path, concat), A.ult(z(m1.offset), p2(v.r!))))),
    );
  },
  expect: "PROVED",
};

/**
 * Untyped_Retype's placement, one property per fact. Z3 proves each of them in 0-15 s, but not
 * their conjunction within 60 s (UNKNOWN): split, the queries stay small.
 */
const RETYPE_PRE =
  "for every untyped (size 4..47 bits, aligned base with base + size <= 2^52), free index <= size, object size 0..47 bits and 1..256 objects that pass the NotEnoughMemory check, and objects i < j < n";
type RetypeFact = <Bv, Pp>(
  A: Alg<Bv, Pp>,
  v: Record<string, Bv>,
  r: ReturnType<typeof mRetype<Bv, Pp>>,
  obj: (k: Bv) => Bv,
) => Pp;
const retypeFacts: [string, string, RetypeFact][] = [
  [
    "aligned",
    "the first object is aligned to its size",
    (A, _v, r) => A.eq(A.and(r.base, A.sub(r.objBytes, A.c(1, 64))), A.c(0, 64)),
  ],
  [
    "above-watermark",
    "the first object starts at or above the old watermark",
    (A, v, r) => A.ule(A.add(v.paddr!, v.fi!), r.base),
  ],
  [
    "disjoint",
    "object i ends before object j starts",
    (A, v, r, obj) => A.ule(A.add(obj(v.i!), r.objBytes), obj(v.j!)),
  ],
  ["inside-start", "every object starts inside the untyped", (A, v, _r, obj) => A.ule(v.paddr!, obj(v.i!))],
  [
    "inside-end",
    "every object ends inside the untyped",
    (A, v, r, obj) => A.ule(A.add(obj(v.j!), r.objBytes), A.add(v.paddr!, A.shl(A.c(1, 64), v.s!))),
  ],
  [
    "new-watermark",
    "the new watermark is the end of the last object",
    (A, v, r, obj) => A.eq(A.add(v.paddr!, r.newFreeIndex), obj(v.n!)),
  ],
  ["watermark-grows", "the watermark never moves back", (A, v, r) => A.ule(v.fi!, r.newFreeIndex)],
  [
    "watermark-within",
    "the new watermark is within the untyped",
    (A, v, r) => A.ule(r.newFreeIndex, A.shl(A.c(1, 64), v.s!)),
  ],
  [
    "exact",
    "every double computed is below 2^53 (exact)",
    (A, v, _r, obj) => A.ult(obj(v.n!), A.c(1n << 53n, 64)),
  ],
];
const retype: Property[] = retypeFacts.map(([name, fact, goal]) => ({
  name: `untyped.retype-placement: ${name}`,
  claim: `Untyped_Retype, ${RETYPE_PRE}: ${fact}`,
  vars: { paddr: 64, s: 64, fi: 64, o: 64, n: 64, i: 64, j: 64 },
  pre: (A, v) => {
    const c = (x: number | bigint) => A.c(x, 64);
    const size = A.shl(c(1), v.s!);
    const r = mRetype(A, v.paddr!, v.s!, v.fi!, v.o!, v.n!);
    return A.all(
      A.ule(c(4), v.s!),
      A.ule(v.s!, c(47)),
      A.eq(A.and(v.paddr!, A.sub(size, c(1))), c(0)),
      A.ule(v.paddr!, c(1n << 52n)),
      A.ule(A.add(v.paddr!, size), c(1n << 52n)),
      A.ule(v.fi!, size),
      A.ule(v.o!, c(47)),
      A.ule(c(1), v.n!),
      A.ule(v.n!, c(256)),
      r.fitsP,
      A.ult(v.i!, v.j!),
      A.ult(v.j!, v.n!),
    );
  },
  goal: (A, v) => {
    const r = mRetype(A, v.paddr!, v.s!, v.fi!, v.o!, v.n!);
    return goal(A, v, r, (k) => A.add(r.base, A.shl(k, v.o!)));
  },
  expect: "PROVED",
}));

function msgPre<Bv, Pp>(A: Alg<Bv, Pp>, v: Record<string, Bv>): Pp {
  return A.all(
    A.ult(v.label!, A.c(1n << 52n, 64)),
    A.ule(v.cu!, A.c(7, 32)),
    A.ule(v.ec!, A.c(3, 32)),
    A.ule(v.len!, A.c(127, 32)),
  );
}
const msgVars = { label: 64, cu: 32, ec: 32, len: 32 };

const msgKernel: Property = {
  name: "msginfo.kernel-round-trip",
  claim:
    "msgInfoLabel/Length/ExtraCaps/CapsUnwrapped(setMsgInfo(label, capsUnwrapped, extraCaps, length)) returns the inputs, for label < 2^52, capsUnwrapped < 8, extraCaps < 4, length < 128; and the word is seL4's layout label<<12 | capsUnwrapped<<9 | extraCaps<<7 | length",
  vars: msgVars,
  pre: msgPre,
  goal: (A, v) => {
    const w = mSetMsgInfo(A, v.label!, v.cu!, v.ec!, v.len!);
    const d = mKernelDecode(A, w.hi, w.lo);
    const z = (x: Bv) => A.zext(x, 64);
    type Bv = (typeof v)[string];
    const layout = A.or(
      A.or(A.shl(v.label!, A.c(12, 64)), A.shl(z(v.cu!), A.c(9, 64))),
      A.or(A.shl(z(v.ec!), A.c(7, 64)), z(v.len!)),
    );
    return A.all(
      A.eq(cptr64(A, w.hi, w.lo), layout),
      d.labelExact,
      A.eq(d.label, v.label!),
      A.eq(d.length, v.len!),
      A.eq(d.extraCaps, v.ec!),
      A.eq(d.capsUnwrapped, v.cu!),
    );
  },
  expect: "PROVED",
};

const msgUser: Property = {
  name: "msginfo.libsel4-round-trip",
  claim:
    "libsel4 readInfoReg(setInfoReg(info)) == info for in-range fields, and the kernel's decoders read the same fields from the word libsel4 wrote (the two sides agree)",
  vars: msgVars,
  pre: msgPre,
  goal: (A, v) => {
    const w = mSetMsgInfo(A, v.label!, v.cu!, v.ec!, v.len!);
    const u = mUserDecode(A, w.hi, w.lo);
    const k = mKernelDecode(A, w.hi, w.lo);
    return A.all(
      A.eq(u.label, v.label!),
      A.eq(u.length, v.len!),
      A.eq(u.extraCaps, v.ec!),
      A.eq(u.capsUnwrapped, v.cu!),
      k.labelExact,
      A.eq(k.label, u.label),
    );
  },
  expect: "PROVED",
};

const labelAnyWord: Property = {
  name: "msginfo.label-exact-any-word",
  claim:
    "for every 64-bit message-info word, msgInfoLabel's double arithmetic is exact and equals word >> 12",
  vars: { hi: 32, lo: 32 },
  pre: (A) => A.bool(true),
  goal: (A, v) => {
    const l = mExtractBits(A, v.hi!, v.lo!, A.c(12, 32), A.c(52, 32));
    return A.all(l.exact, A.eq(l.v, A.lshr(cptr64(A, v.hi!, v.lo!), A.c(12, 64))));
  },
  expect: "PROVED",
};

const rights: Property = {
  name: "rights.round-trip",
  claim:
    "rightsFromWord(seL4_CapRights_new(grantReply, grant, read, write)) tests back each right, and the word is seL4's layout (write bit 0, read 1, grant 2, grantReply 3)",
  vars: { gr: 1, g: 1, r: 1, w: 1 },
  pre: (A) => A.bool(true),
  goal: (A, v) => {
    const t = (x: (typeof v)[string]) => A.eq(x!, A.c(1, 1));
    const word = mRightsNew(A, t(v.gr), t(v.g), t(v.r), t(v.w));
    const d = mRightsDecode(A, word);
    const z = (x: (typeof v)[string], s: number) => A.shl(A.zext(x!, 32), A.c(s, 32));
    const iff = (a: ReturnType<typeof t>, b: ReturnType<typeof t>) => A.all(A.implies(a, b), A.implies(b, a));
    return A.all(
      A.eq(word, A.or(A.or(z(v.gr, 3), z(v.g, 2)), A.or(z(v.r, 1), z(v.w, 0)))),
      A.eq(d.rights, word),
      iff(d.grantReply, t(v.gr)),
      iff(d.grant, t(v.g)),
      iff(d.read, t(v.r)),
      iff(d.write, t(v.w)),
    );
  },
  expect: "PROVED",
};

export const PROPERTIES: readonly Property[] = [
  cspaceLevel(63, "COUNTEREXAMPLE"),
  cspaceLevel(53, "PROVED"),
  ...retype,
  msgKernel,
  msgUser,
  labelAnyWord,
  rights,
];

/** Prove one property with a fresh solver. */
export async function prove(Z3: Z, p: Property, timeoutMs = 60_000): Promise<Verdict> {
  const t0 = performance.now();
  const A = z3Alg(Z3);
  const vars: Record<string, B> = {};
  for (const [n, w] of Object.entries(p.vars)) vars[n] = Z3.BitVec.const(n, w);
  const s = new Z3.Solver();
  s.set("timeout", timeoutMs);
  s.add(p.pre(A, vars));
  s.add(Z3.Not(p.goal(A, vars)));
  const r = await s.check();
  const base = { name: p.name, claim: p.claim, expect: p.expect };
  if (r === "unsat") return { ...base, verdict: "PROVED", ms: performance.now() - t0 };
  if (r === "sat") {
    const m = s.model();
    const cex: Record<string, bigint> = {};
    for (const [n, x] of Object.entries(vars))
      cex[n] = BigInt(m.eval(x, true).toString().replace(/^#x/, "0x"));
    return { ...base, verdict: "COUNTEREXAMPLE", counterexample: cex, ms: performance.now() - t0 };
  }
  return { ...base, verdict: "UNKNOWN", ms: performance.now() - t0 };
}

/** Run every property; z3's worker threads are terminated before returning. */
export async function proveAll(
  props: readonly Property[] = PROPERTIES,
  onVerdict?: (v: Verdict) => void,
): Promise<Verdict[]> {
  const { init } = await import("z3-solver");
  const api = await init();
  try {
    const Z3 = api.Context("main");
    const out: Verdict[] = [];
    for (const p of props) {
      const v = await prove(Z3, p);
      onVerdict?.(v);
      out.push(v);
    }
    return out;
  } finally {
    api.em.PThread.terminateAllThreads();
  }
}

export function formatVerdict(v: Verdict): string {
  const cex = v.counterexample
    ? ` ${Object.entries(v.counterexample)
        .map(([k, x]) => `${k}=${x}`)
        .join(" ")}`
    : "";
  return `${v.verdict.padEnd(14)} ${v.name} (${(v.ms / 1000).toFixed(2)} s)${cex}`;
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const verdicts = await proveAll(PROPERTIES, (v) => console.log(formatVerdict(v)));
  process.exitCode = verdicts.every((v) => v.verdict === v.expect) ? 0 : 1;
}
