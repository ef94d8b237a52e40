/**
 * Exact arithmetic on 64-bit words held as two unsigned 32-bit halves. seL4_Word is 64 bits;
 * JavaScript numbers are exact only to 2^53, and BigInt allocates, so the kernel's bit-level
 * work (CSpace decoding, badges, guards) goes through these helpers.
 */

const TWO32 = 4294967296;

/** The low `width` bits of a 32-bit value, for width 0..32, as an unsigned number. */
function mask32(v: number, width: number): number {
  return width >= 32 ? v >>> 0 : (v & ((1 << width) - 1)) >>> 0;
}

/** 2^n for n in 0..32, so the hot path multiplies by a constant rather than calling pow. */
const POW2: readonly number[] = Array.from({ length: 33 }, (_, i) => 2 ** i);

/**
 * Bits [shift, shift + width) of the word (hi:lo), as a number. Requires width <= 53 and
 * shift + width <= 64. On the CSpace-lookup hot path: integer operations only.
 */
export function extractBits(hi: number, lo: number, shift: number, width: number): number {
  if (width <= 0) return 0;
  // Entirely in the high half (then width <= 32, since shift + width <= 64).
  if (shift >= 32) return mask32(hi >>> (shift - 32), width);
  const lowBits = 32 - shift;
  const lowPart = lo >>> shift;
  if (width <= lowBits) return mask32(lowPart, width);
  return lowPart + mask32(hi, width - lowBits) * POW2[lowBits]!;
}

/** Low half of the bits [shift, shift + width) of (hi:lo), for widths up to 64. */
export function extractLo(hi: number, lo: number, shift: number, width: number): number {
  if (width <= 0) return 0;
  let v: number;
  if (shift >= 32) v = hi >>> (shift - 32);
  else if (shift === 0) v = lo >>> 0;
  else v = ((lo >>> shift) | (hi << (32 - shift))) >>> 0;
  return width >= 32 ? v : (v & ((1 << width) - 1)) >>> 0;
}

/** High half of the bits [shift, shift + width) of (hi:lo), for widths up to 64. */
export function extractHi(hi: number, _lo: number, shift: number, width: number): number {
  if (width <= 32) return 0;
  const v = shift >= 32 ? 0 : hi >>> shift;
  const w = width - 32;
  return w >= 32 ? v : (v & ((1 << w) - 1)) >>> 0;
}

/** Split a number in [0, 2^53) into halves. */
export function lo32(v: number): number {
  return v >>> 0;
}
export function hi32(v: number): number {
  return Math.floor(v / TWO32) >>> 0;
}
/** Join halves into a number; exact when hi < 2^21. */
export function join(hi: number, lo: number): number {
  return hi * TWO32 + lo;
}
/** Join halves into a bigint (cold paths and user-facing APIs only). */
export function toBigInt(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
export function fromBigInt(v: bigint): [hi: number, lo: number] {
  const m = BigInt.asUintN(64, v);
  return [Number(m >> 32n), Number(m & 0xffffffffn)];
}
