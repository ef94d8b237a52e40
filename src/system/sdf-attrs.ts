/**
 * Reading one SDF element's attributes: Microkit's number syntax, ranges, required and boolean
 * attributes, unknown-attribute errors and `capvisor:` extensions, plus the small formatting
 * helpers the messages share.
 */
import type { Diagnostics } from "./sdf-diagnostics.js";
import type { SdfExtensions } from "./sdf-types.js";
import type { XElement } from "./sdf-xml.js";

/** Attributes with this prefix are capvisor extensions, kept in `extensions` instead of rejected. */
const EXT_PREFIX = "capvisor:";

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

export function quoteList(names: Iterable<string>): string {
  return [...names].join(", ");
}

/** The names a reference could have used, for "does not exist" messages. */
export function declared(byName: Map<string, unknown>, what = "regions"): string {
  return byName.size === 0
    ? `no ${what === "regions" ? "memory regions" : what} are declared`
    : `declared ${what}: ${quoteList(byName.keys())}`;
}

/** Microkit's number syntax: decimal, or hex after a lowercase `0x`; `_` may appear anywhere. */
function parseNumber(text: string): bigint | undefined {
  const s = text.replaceAll("_", "");
  if (/^0x[0-9a-fA-F]+$/.test(s)) return BigInt(s);
  if (/^[0-9]+$/.test(s)) return BigInt(s);
  return undefined;
}

const U64_MAX = (1n << 64n) - 1n;

export interface NumSpec {
  min?: number;
  max?: number;
  /** Show the range in hex. */
  hex?: boolean;
}

/** One element's attributes, read with checks; every problem goes to the diagnostics. */
export class Attrs {
  readonly extensions: SdfExtensions = {};
  constructor(
    private readonly v: Diagnostics,
    readonly el: XElement,
    allowed: readonly string[],
    extra: (name: string) => boolean = () => false,
  ) {
    for (const name of el.attrs.keys()) {
      if (name.startsWith(EXT_PREFIX)) {
        const key = name.slice(EXT_PREFIX.length);
        if (key === "")
          v.error(el, `attribute "${name}" has no name after the prefix: write capvisor:<name>="..."`);
        else this.extensions[key] = el.attrs.get(name)!;
      } else if (!allowed.includes(name) && !extra(name)) {
        const list = allowed.length > 0 ? `allowed: ${quoteList(allowed)}` : "it takes no attributes";
        v.error(el, `unknown attribute "${name}" (${list}): remove it or fix its name`);
      }
    }
  }

  error(message: string): void {
    this.v.error(this.el, message);
  }

  has(name: string): boolean {
    return this.el.attrs.has(name);
  }

  str(name: string): string | undefined {
    return this.el.attrs.get(name);
  }

  required(name: string, example: string): string | undefined {
    const value = this.el.attrs.get(name);
    if (value === undefined)
      this.v.error(this.el, `missing required attribute "${name}": add ${name}="${example}"`);
    return value;
  }

  /** A name-like attribute: required and non-empty. */
  name(name: string, example: string): string | undefined {
    const value = this.required(name, example);
    if (value !== undefined && value.trim() === "") {
      this.v.error(this.el, `${name} is empty: give it a value such as ${name}="${example}"`);
      return undefined;
    }
    return value;
  }

  num(name: string, spec: NumSpec = {}): number | undefined {
    const text = this.el.attrs.get(name);
    if (text === undefined) return undefined;
    const big = parseNumber(text);
    if (big === undefined) {
      this.v.error(
        this.el,
        `${name} "${text}" is not a number: write it in decimal (4096) or hexadecimal with 0x (0x1000)`,
      );
      return undefined;
    }
    const show = (n: number) => (spec.hex ? hex(n) : String(n));
    const shown = spec.hex ? `0x${big.toString(16)}` : big.toString();
    if (big > U64_MAX) {
      this.v.error(this.el, `${name} ${shown} does not fit in 64 bits`);
      return undefined;
    }
    const tooBig = big > BigInt(Number.MAX_SAFE_INTEGER);
    if (
      (spec.min !== undefined && big < BigInt(spec.min)) ||
      (spec.max !== undefined && (tooBig || big > BigInt(spec.max)))
    ) {
      const range =
        spec.max === undefined
          ? `at least ${show(spec.min!)}`
          : `between ${show(spec.min ?? 0)} and ${show(spec.max)}`;
      this.v.error(this.el, `${name} ${shown} is out of range: it must be ${range}`);
      return undefined;
    }
    if (tooBig) {
      this.v.error(this.el, `${name} ${shown} is too large for capvisor (limit 2^53 - 1)`);
      return undefined;
    }
    return Number(big);
  }

  requiredNum(name: string, example: string, spec: NumSpec = {}): number | undefined {
    if (this.required(name, example) === undefined) return undefined;
    return this.num(name, spec);
  }

  bool(name: string, dflt: boolean): boolean {
    const text = this.el.attrs.get(name);
    if (text === undefined) return dflt;
    if (text === "true") return true;
    if (text === "false") return false;
    this.v.error(this.el, `${name} "${text}" must be "true" or "false"`);
    return dflt;
  }
}
