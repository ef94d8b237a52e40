/**
 * Structural deep clone and canonical hashing of a kernel object graph, for the bounded model
 * checker (bmc.ts). Both walk the graph iteratively (no recursion limit on long MDB chains).
 *
 * Clone: class instances keep their prototype and every own enumerable property (including
 * TS-private fields, which are ordinary properties); Map, Set, Array (holes kept), ArrayBuffer and typed-array views are copied with
 * identity preserved, so two views of one buffer (a Frame's bytes and a TCB's IPC buffer) stay
 * aliased in the copy. Frozen objects (the shared NULL_CAP) and functions are shared, not copied.
 *
 * Hash: a canonical serialisation in discovery order from the root (objects numbered as first
 * met, so the hash is independent of heap addresses), with chosen keys skipped (statistics and
 * per-syscall scratch state that does not influence later behaviour), fed to SHA-1 (collisions are not a concern for state deduplication at these sizes).
 */
import { createHash } from "node:crypto";

type AnyObj = Record<PropertyKey, unknown>;
type TypedArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array | Float32Array;

function isTyped(v: object): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/**
 * Per class, the own keys whose values can be objects: the keys that hold an object, null or
 * undefined in the first instance seen (a class field keeps its type: numbers stay numbers).
 * Plain objects (Object.prototype or none) have no fixed shape: all their keys are returned.
 */
const refKeyCache = new WeakMap<object, string[]>();
function refKeys(o: AnyObj): string[] {
  const proto = Object.getPrototypeOf(o) as object | null;
  if (proto === null || proto === Object.prototype) return Object.keys(o);
  let keys = refKeyCache.get(proto);
  if (keys === undefined) {
    keys = Object.keys(o).filter((key) => {
      const v = o[key];
      return v === null || v === undefined || typeof v === "object";
    });
    refKeyCache.set(proto, keys);
  }
  return keys;
}

/** A deep copy of `root` and everything reachable from it. */
export function deepClone<T>(root: T): T {
  const memo = new Map<object, object>();
  const work: [object, object][] = [];
  const get = (v: unknown): unknown => {
    if (v === null || (typeof v !== "object" && typeof v !== "function")) return v;
    if (typeof v === "function") return v;
    const o = v as object;
    const seen = memo.get(o);
    if (seen !== undefined) return seen;
    if (Object.isFrozen(o)) return o;
    let out: object;
    if (o instanceof ArrayBuffer) {
      out = o.slice(0);
      memo.set(o, out);
      return out;
    }
    if (isTyped(o)) {
      const buf = get(o.buffer) as ArrayBuffer;
      const Ctor = o.constructor as new (b: ArrayBuffer, off: number, len: number) => TypedArray;
      out = new Ctor(buf, o.byteOffset, o.length);
      memo.set(o, out);
      return out;
    }
    if (Array.isArray(o))
      out = o.slice(); // primitives and holes as they are; objects fixed below
    else if (o instanceof Map) out = new Map();
    else if (o instanceof Set) out = new Set();
    else out = Object.assign(Object.create(Object.getPrototypeOf(o)) as object, o); // object fields fixed below
    memo.set(o, out);
    work.push([o, out]);
    return out;
  };
  const result = get(root) as T;
  while (work.length > 0) {
    const [src, dst] = work.pop()!;
    if (Array.isArray(src)) {
      const d = dst as unknown[];
      for (let i = 0; i < src.length; i++) {
        const v = src[i];
        if (v !== null && typeof v === "object") d[i] = get(v);
      }
    } else if (src instanceof Map) {
      for (const [key, val] of src) (dst as Map<unknown, unknown>).set(get(key), get(val));
    } else if (src instanceof Set) {
      for (const val of src) (dst as Set<unknown>).add(get(val));
    } else {
      // Class fields are plain writable, enumerable data properties (TS `readonly` is not enforced),
      // copied by Object.assign; only the fields that can hold objects need fixing.
      const s = src as AnyObj;
      const d = dst as AnyObj;
      for (const key of refKeys(s)) {
        const v = s[key];
        if (v !== null && typeof v === "object") d[key] = get(v);
      }
    }
  }
  return result;
}

/** Small integer ids for constructors and strings, stable for the life of the process. */
const ctorIds = new Map<unknown, number>();
function ctorId(c: unknown): number {
  let id = ctorIds.get(c);
  if (id === undefined) {
    id = ctorIds.size;
    ctorIds.set(c, id);
  }
  return id;
}
const hashKeyCache = new WeakMap<object, { skip: ReadonlySet<string>; keys: string[] }>();
/** Own keys of a class instance minus `skip`, cached per class (class instances share a shape). */
function hashKeys(o: object, skip: ReadonlySet<string>): string[] {
  const proto = Object.getPrototypeOf(o) as object | null;
  if (proto === null || proto === Object.prototype) return Object.keys(o).filter((key) => !skip.has(key));
  const c = hashKeyCache.get(proto);
  if (c !== undefined && c.skip === skip) return c.keys;
  const keys = Object.keys(o).filter((key) => !skip.has(key));
  hashKeyCache.set(proto, { skip, keys });
  return keys;
}

const T_NUM = 0;
const T_REF = 1;
const T_NULL = 2;
const T_UNDEF = 3;
const T_TRUE = 4;
const T_FALSE = 5;
const T_STR = 6;
const T_OTHER = 7;
const T_OBJ = 8;
const T_LEN = 9;
const T_KEY = 10;
const T_BYTES = 11;

/**
 * SHA-1 (hex) of a canonical serialisation of everything reachable from `root`, skipping
 * properties whose names are in `skip` (on any object) and functions. The serialisation is a
 * stream of (tag, number) pairs: each object in discovery order opens with its class, then its
 * fields in the class's key order (plain objects also give their key names); references are
 * discovery numbers; strings and raw bytes go to the hash inline.
 */
export function canonicalHash(root: object, skip: ReadonlySet<string>): string {
  const ids = new Map<object, number>();
  const queue: object[] = [];
  const h = createHash("sha1");
  const buf = new Float64Array(8192);
  let n = 0;
  const flush = (): void => {
    if (n > 0) h.update(new Uint8Array(buf.buffer, 0, n * 8));
    n = 0;
  };
  const emit = (tag: number, v: number): void => {
    if (n + 2 > buf.length) flush();
    buf[n++] = tag;
    buf[n++] = v;
  };
  const str = (tag: number, v: string): void => {
    emit(tag, v.length);
    flush();
    h.update(v);
  };
  const val = (v: unknown): void => {
    if (v === null) emit(T_NULL, 0);
    else if (typeof v === "number") emit(T_NUM, v);
    else if (typeof v === "boolean") emit(v ? T_TRUE : T_FALSE, 0);
    else if (typeof v === "string") str(T_STR, v);
    else if (v === undefined) emit(T_UNDEF, 0);
    else if (typeof v === "object") {
      const o = v as object;
      let id = ids.get(o);
      if (id === undefined) {
        id = ids.size;
        ids.set(o, id);
        queue.push(o);
      }
      emit(T_REF, id);
    } else if (typeof v === "bigint") str(T_OTHER, `${v}`);
    else emit(T_OTHER, 0);
  };
  val(root);
  for (let qi = 0; qi < queue.length; qi++) {
    const o = queue[qi]!;
    emit(T_OBJ, ctorId(o.constructor));
    if (o instanceof ArrayBuffer) {
      emit(T_BYTES, o.byteLength);
      flush();
      h.update(new Uint8Array(o));
    } else if (isTyped(o)) {
      emit(T_BYTES, o.byteLength);
      flush();
      h.update(new Uint8Array(o.buffer, o.byteOffset, o.byteLength));
    } else if (Array.isArray(o)) {
      // Length, then the entries that are not null/undefined/holes (sparse tables stay cheap).
      emit(T_LEN, o.length);
      for (let i = 0; i < o.length; i++) {
        const v = o[i];
        if (v !== null && v !== undefined) {
          emit(T_KEY, i);
          val(v);
        }
      }
    } else if (o instanceof Map) {
      emit(T_LEN, o.size);
      for (const [key, v] of o) {
        val(key);
        val(v);
      }
    } else if (o instanceof Set) {
      emit(T_LEN, o.size);
      for (const v of o) val(v);
    } else {
      const plain = Object.getPrototypeOf(o) === Object.prototype;
      const rec = o as AnyObj;
      for (const key of hashKeys(o, skip)) {
        if (plain) str(T_KEY, key);
        const v = rec[key];
        if (typeof v === "function") continue;
        val(v);
      }
    }
  }
  flush();
  return h.digest("hex");
}
