/**
 * Isolation policies and their check against an authority graph (authority.ts).
 *
 * Format (YAML):
 *
 *   flows:                      # every authority allowed between two domains; nothing else is
 *     ping -> pong: [call]
 *     irq:5 -> driver: [signal]
 *   isolate:                    # optional: no information path at all, even through other PDs
 *     - app -> crypto
 *
 * Domains are PD names, virtual machine names (`<virtual_machine name=>`: a VM is a domain of its
 * own, reaching others only through its VMM PD) and `irq:N`. A name with `*` is a pattern for every
 * domain it matches (`*` stands for any characters): `wasmedge -> wasmedge/*: [control]` covers
 * each application thread of runtime PD wasmedge; a pattern must match at least one domain, and in
 * `isolate` it asks for each pair it covers. Kinds are read, write, signal, send,
 * call, grant, control (`call` also allows `send`). Authority towards the monitor (the trusted
 * root task) is not checked.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import {
  type AuthorityGraph,
  type Edge,
  formatStep,
  infoPath,
  KINDS,
  type Kind,
  MONITOR,
} from "./authority.js";

export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PolicyError";
  }
}

export interface Flow {
  from: string;
  to: string;
  kinds: Kind[];
  line: number;
}

export interface Policy {
  file: string;
  flows: Flow[];
  isolate: { from: string; to: string; line: number }[];
}

export type Verdict = "PROVED" | "COUNTEREXAMPLE";

export interface PropertyResult {
  property: string;
  verdict: Verdict;
  /** For a counterexample: the offending edges (each with its chain of capabilities). */
  counterexamples: Edge[];
}

// Names are anything without blanks: the SDF parser does not restrict PD or VM names further.
const ARROW = /^\s*(\S+?)\s*->\s*(\S+)\s*$/;

/** Whether domain `d` is `name`, or matches it when `name` is a pattern (with `*`). */
export function matches(name: string, d: string): boolean {
  if (!name.includes("*")) return name === d;
  const re = new RegExp(
    `^${name
      .split("*")
      .map((x) => x.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
  return re.test(d);
}

/** Parse a policy. `domains` (when given) are the names a policy may use. */
export function parsePolicy(text: string, file: string, domains?: readonly string[]): Policy {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const at = (offset: number | undefined): string => {
    const p = lc.linePos(offset ?? 0);
    return `${file}:${p.line}:${p.col}`;
  };
  const lineOf = (offset: number | undefined): number => lc.linePos(offset ?? 0).line;
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new PolicyError(`${at(e.pos[0])}: ${e.message.split("\n")[0]}`);
  }
  const root = doc.contents;
  if (!isMap(root))
    throw new PolicyError(`${at(root?.range?.[0])}: a policy is a mapping with 'flows' (and 'isolate')`);
  const known = (name: string, offset: number | undefined): void => {
    if (domains !== undefined && name !== MONITOR && !domains.some((d) => matches(name, d)))
      throw new PolicyError(
        `${at(offset)}: unknown domain '${name}' (the system has: ${domains.join(", ")})`,
      );
  };
  const policy: Policy = { file, flows: [], isolate: [] };
  for (const item of root.items) {
    const key = isScalar(item.key) ? String(item.key.value) : "";
    const keyPos = isScalar(item.key) ? item.key.range?.[0] : undefined;
    if (key === "flows") {
      if (item.value === null || (isScalar(item.value) && item.value.value === null)) continue;
      if (!isMap(item.value))
        throw new PolicyError(`${at(keyPos)}: 'flows' must map 'from -> to' to a list of kinds`);
      for (const f of item.value.items) {
        const pos = isScalar(f.key) ? f.key.range?.[0] : undefined;
        const m = ARROW.exec(isScalar(f.key) ? String(f.key.value) : "");
        if (m === null) throw new PolicyError(`${at(pos)}: a flow is written 'from -> to: [kinds]'`);
        known(m[1]!, pos);
        known(m[2]!, pos);
        if (!isSeq(f.value))
          throw new PolicyError(`${at(pos)}: '${m[1]} -> ${m[2]}' needs a list of kinds, e.g. [call]`);
        const kinds: Kind[] = [];
        for (const k of f.value.items) {
          const v = isScalar(k) ? String(k.value) : "";
          if (!(KINDS as readonly string[]).includes(v))
            throw new PolicyError(
              `${at(isScalar(k) ? k.range?.[0] : pos)}: unknown kind '${v}' (kinds: ${KINDS.join(", ")})`,
            );
          kinds.push(v as Kind);
        }
        policy.flows.push({ from: m[1]!, to: m[2]!, kinds, line: lineOf(pos) });
      }
    } else if (key === "isolate") {
      if (!isSeq(item.value)) throw new PolicyError(`${at(keyPos)}: 'isolate' is a list of 'from -> to'`);
      for (const x of item.value.items) {
        const pos = isScalar(x) ? x.range?.[0] : undefined;
        const m = ARROW.exec(isScalar(x) ? String(x.value) : "");
        if (m === null) throw new PolicyError(`${at(pos)}: an isolation is written '- from -> to'`);
        known(m[1]!, pos);
        known(m[2]!, pos);
        policy.isolate.push({ from: m[1]!, to: m[2]!, line: lineOf(pos) });
      }
    } else {
      throw new PolicyError(`${at(keyPos)}: unknown key '${key}' (a policy has 'flows' and 'isolate')`);
    }
  }
  return policy;
}

/** Check every ordered pair of domains against the policy, and every isolation. */
export function checkPolicy(g: AuthorityGraph, p: Policy): PropertyResult[] {
  const results: PropertyResult[] = [];
  const allowed = (from: string, to: string): Set<Kind> => {
    const s = new Set<Kind>();
    for (const f of p.flows)
      if (matches(f.from, from) && matches(f.to, to))
        for (const k of f.kinds) {
          s.add(k);
          if (k === "call") s.add("send");
        }
    return s;
  };
  const domains = g.domains.filter((d) => d !== MONITOR);
  let silent = 0;
  for (const a of domains)
    for (const b of domains) {
      if (a === b) continue;
      const ok = allowed(a, b);
      const actual = g.edges.filter((e) => e.from === a && e.to === b);
      const bad = actual.filter((e) => !ok.has(e.kind));
      if (ok.size === 0 && actual.length === 0) {
        silent++;
        continue;
      }
      const list = [...ok].filter((k) => !(k === "send" && ok.has("call")));
      results.push({
        property: `${a} -> ${b} only [${list.join(", ")}]`,
        verdict: bad.length === 0 ? "PROVED" : "COUNTEREXAMPLE",
        counterexamples: bad,
      });
    }
  results.push({
    property: `no authority between the other ${silent} ordered pair(s) of domains`,
    verdict: "PROVED",
    counterexamples: [],
  });
  for (const iso of p.isolate)
    for (const from of g.domains.filter((d) => matches(iso.from, d)))
      for (const to of g.domains.filter((d) => matches(iso.to, d))) {
        if (from === to) continue;
        const path = infoPath(g, from, to);
        results.push({
          property: `no information path ${from} => ${to}`,
          verdict: path === null ? "PROVED" : "COUNTEREXAMPLE",
          counterexamples: path ?? [],
        });
      }
  return results;
}

export function formatResults(results: PropertyResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(`${r.verdict.padEnd(14)} ${r.property}`);
    for (const e of r.counterexamples) {
      out.push(`    ${e.from} -> ${e.to}: ${e.kind}, by:`);
      for (const s of e.chain) out.push(`      ${formatStep(s)}`);
    }
  }
  return out.join("\n");
}
