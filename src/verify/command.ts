/**
 * `capvisor verify system.xml [--policy p.yaml] [--channel]`: the flow matrix, or each property of the
 * policy with its verdict; with --channel, first the SPIN checks of the cross-VM channel protocol.
 * Exit 0 when every property holds, 1 on a violation, 2 on bad input.
 */
import { readFileSync } from "node:fs";
import { LoadError } from "../system/loader.js";
import { SdfError } from "../system/sdf.js";
import { type AuthorityGraph, analyseFile, type Kind, kindsBetween } from "./authority.js";
import { checkPolicy, formatResults, PolicyError, parsePolicy } from "./policy.js";
import { CHANNEL_CHECKS, checkChannelProtocol, formatSpinVerdict, SpinToolMissing } from "./spin.js";

export async function verifyCommand(args: string[], out: (s: string) => void = console.log): Promise<number> {
  const err = (s: string): number => {
    console.error(`capvisor verify: ${s}`);
    return 2;
  };
  let file: string | undefined;
  let policyFile: string | undefined;
  let channel = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--channel") channel = true;
    else if (a === "--policy") {
      policyFile = args[++i];
      if (policyFile === undefined) return err("--policy needs a file");
    } else if (a.startsWith("--policy=")) policyFile = a.slice("--policy=".length);
    else if (a.startsWith("--")) return err(`unknown option '${a}'`);
    else if (file === undefined) file = a;
    else return err(`unexpected argument '${a}'`);
  }
  if (channel) {
    const code = await channelCommand(out);
    if (code !== 0 || file === undefined) return code;
  }
  if (file === undefined) return err("usage: capvisor verify system.xml [--policy p.yaml] [--channel]");
  let analysed: Awaited<ReturnType<typeof analyseFile>>;
  try {
    analysed = await analyseFile(file);
  } catch (e) {
    if (e instanceof SdfError || e instanceof LoadError || e instanceof Error)
      return err((e as Error).message);
    throw e;
  }
  const { graph } = analysed;
  if (policyFile === undefined) {
    out(
      `authority between the domains of ${file} (from the loader's capability distribution, closed under grant and control):\n`,
    );
    out(formatMatrix(graph));
    if (graph.vms.length > 0)
      out(
        "\nVirtual machines are domains of their own; a guest holds no capabilities, so what it reaches is what its\n" +
          "VMM PD can reach (its fault messages are calls to the VMM). The VMM is capvisor's trusted code and is\n" +
          "assumed to pass on anything it can: flows through it are over-approximated.",
      );
    for (const fs of graph.fileServers)
      out(
        `\n${fs} is the file-server PD capvisor builds for runtime PD ${fs.slice(0, -3)}: the only code that touches the\n` +
          "host's files for its applications. Its row shows all its kernel authority; what it reads and writes on the\n" +
          "host (the runtime's capvisor:dirs) is outside the kernel model and not analysed.",
      );
    return 0;
  }
  let text: string;
  try {
    text = readFileSync(policyFile, "utf8");
  } catch (e) {
    return err(`cannot read policy ${policyFile}: ${(e as Error).message}`);
  }
  let results: ReturnType<typeof checkPolicy>;
  try {
    results = checkPolicy(graph, parsePolicy(text, policyFile, graph.domains));
  } catch (e) {
    if (e instanceof PolicyError) return err(e.message);
    throw e;
  }
  out(formatResults(results));
  const bad = results.filter((r) => r.verdict !== "PROVED").length;
  out(`\n${results.length} properties: ${results.length - bad} PROVED, ${bad} COUNTEREXAMPLE`);
  return bad === 0 ? 0 : 1;
}

/**
 * `--channel`: model-check the cross-VM channel protocol (docs/vm-channel.md) with SPIN; every
 * check of CHANNEL_CHECKS must be PROVED (exit 0), else exit 1; exit 2 when SPIN is missing.
 */
async function channelCommand(out: (s: string) => void): Promise<number> {
  out("the cross-VM channel protocol (docs/vm-channel.md), model-checked with SPIN:");
  let verdicts: Awaited<ReturnType<typeof checkChannelProtocol>>;
  try {
    verdicts = await checkChannelProtocol(CHANNEL_CHECKS);
  } catch (e) {
    if (e instanceof SpinToolMissing) {
      console.error(`capvisor verify: ${e.message}`);
      return 2;
    }
    throw e;
  }
  for (const v of verdicts) out(formatSpinVerdict(v));
  const bad = verdicts.filter((v) => v.verdict !== "PROVED").length;
  out(`\n${verdicts.length} channel properties: ${verdicts.length - bad} PROVED, ${bad} not proved\n`);
  return bad === 0 ? 0 : 1;
}

/** The flow matrix (what `capvisor verify` prints without a policy): rows are sources, columns targets, cells the kinds (abbreviated). */
export function formatMatrix(g: AuthorityGraph): string {
  const abbrev: Record<Kind, string> = {
    read: "r",
    write: "w",
    signal: "s",
    send: "S",
    call: "c",
    grant: "g",
    control: "C",
  };
  const always = (d: string): boolean => g.pds.includes(d) || g.fileServers.includes(d) || g.vms.includes(d);
  const cols = g.domains.filter((d) => g.edges.some((e) => e.to === d) || always(d));
  const rows = g.domains.filter((d) => g.edges.some((e) => e.from === d) || always(d));
  const cell = (a: string, b: string): string =>
    a === b
      ? "\\"
      : kindsBetween(g, a, b)
          .map((k) => abbrev[k])
          .join("") || ".";
  const w0 = Math.max(7, ...rows.map((r) => r.length));
  const ws = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r, c).length)));
  const lines = [`${"from\\to".padEnd(w0)}  ${cols.map((c, i) => c.padEnd(ws[i]!)).join("  ")}`];
  for (const r of rows)
    lines.push(`${r.padEnd(w0)}  ${cols.map((c, i) => cell(r, c).padEnd(ws[i]!)).join("  ")}`);
  lines.push(
    "",
    "r read (can read memory the other writes)  w write (can write memory the other reads)  s signal",
    "S send  c call (a reply comes back; fault messages count as calls)  g grant (caps can flow)",
    "C control (TCB/CNode/VSpace/SchedContext/VCPU of the other, or an IRQ handler)",
  );
  return lines.join("\n");
}
