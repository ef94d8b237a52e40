/**
 * How the `run`, `validate` and `parse` commands speak: WasmEdge's log lines and value formats.
 *
 * WasmEdge logs through spdlog, one `[date time.ms] [level] message` line each; errors name the
 * phase and the error (`loading failed: magic header not detected, Code: 0x103`) followed by
 * indented detail lines (`    Bytecode offset: 0x00000000`, `    File name: "..."`). capvisor
 * writes the same lines to stderr, keeping stdout for the guest's own output and reactor results.
 */

export type Level = "info" | "warning" | "error";

function two(n: number): string {
  return String(n).padStart(2, "0");
}

/** spdlog's default time stamp: `[2024-05-01 12:00:00.123]`. */
export function stamp(d = new Date()): string {
  const ms = String(d.getMilliseconds()).padStart(3, "0");
  return `[${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${ms}]`;
}

export function logLine(level: Level, message: string): string {
  return `${stamp()} [${level}] ${message}\n`;
}

/** `phase failed: message, Code: 0x...` as WasmEdge formats an error code (three hex digits). */
export function errorHead(phase: string, message: string, code?: number): string {
  return `${phase} failed: ${message}${code === undefined ? "" : `, Code: 0x${code.toString(16).padStart(3, "0")}`}`;
}

export function offsetLine(offset: number): string {
  return `    Bytecode offset: 0x${offset.toString(16).padStart(8, "0")}`;
}

/** A path quoted as WasmEdge quotes file names (std::quoted: `"` and `\` escaped). */
export function quoted(path: string): string {
  return `"${path.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * Digits and exponent of the shortest decimal that reads back as `x` (as a float32 when `single`).
 * `toExponential()` without an argument already gives the shortest digits for a double; a float32
 * needs fewer, found by trying precisions until the value survives the round trip.
 */
function shortest(x: number, single: boolean): { digits: string; exp: number } {
  let s = x.toExponential();
  if (single) {
    for (let p = 1; p <= 9; p++) {
      const t = x.toExponential(p - 1);
      if (Math.fround(Number(t)) === x) {
        s = t;
        break;
      }
    }
  }
  const [mant, e] = s.split("e") as [string, string];
  return { digits: mant.replace(".", ""), exp: Number(e) };
}

/**
 * A float as the {fmt} library prints it with `{}` (what WasmEdge uses for reactor results): the
 * shortest round-trip digits, fixed notation for exponents -4..15, else `1.5e+20` with at least
 * two exponent digits; `nan`, `inf`, `-inf`.
 */
export function formatFloat(x: number, single: boolean): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const sign = x < 0 ? "-" : "";
  const { digits, exp } = shortest(Math.abs(x), single);
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const es = exp < 0 ? "-" : "+";
    return `${sign}${m}e${es}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${"0".repeat(exp + 1 - digits.length)}`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

/** A reactor result, one per line, as WasmEdge prints it: integers unsigned, floats as {fmt}. */
export function formatValue(type: string, v: number | bigint): string {
  switch (type) {
    case "i32":
      return String(BigInt.asUintN(32, BigInt(v)));
    case "i64":
      return String(BigInt.asUintN(64, BigInt(v)));
    case "f32":
      return formatFloat(Number(v), true);
    case "f64":
      return formatFloat(Number(v), false);
    default:
      return String(v);
  }
}

/**
 * A reactor argument read as WasmEdge reads it for a parameter of type `type` (std::stol /
 * std::stoll for integers, wrapped to the width; std::stof / std::stod for floats). Returns
 * undefined for text that is not a number.
 */
export function parseArg(type: string, text: string): number | bigint | undefined {
  const t = text.trim();
  if (type === "i32" || type === "i64") {
    const m = /^([+-]?)(0x[0-9a-f]+|\d+)/i.exec(t);
    if (m === null) return undefined;
    const n = BigInt(m[2]!) * (m[1] === "-" ? -1n : 1n);
    return type === "i32" ? Number(BigInt.asIntN(32, n)) : BigInt.asIntN(64, n);
  }
  if (type === "f32" || type === "f64") {
    const m = /^[+-]?(inf(inity)?|nan|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)/i.exec(t);
    if (m === null) return undefined;
    const s = m[0].toLowerCase();
    const v = s.includes("nan")
      ? Number.NaN
      : s.includes("inf")
        ? (s.startsWith("-") ? -1 : 1) * Infinity
        : Number(s);
    return type === "f32" ? Math.fround(v) : v;
  }
  return undefined;
}
