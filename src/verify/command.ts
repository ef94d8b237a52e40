/**
 * `capvisor verify system.xml [--policy p.yaml] [--channel]`: the flow matrix, or each property of the
 * policy with its verdict; with --channel, first the SPIN checks of the cross-VM channel protocol.
 * Exit 0 when every property holds, 1 on a violation, 2 on bad input.
 */
import { readFileSync } from "node:fs";
import { LoadError } from "../system/loader.js";
import { SdfError } from "../system/sdf.js";
import { analyseFile, formatMatrix } from "./authority.js";
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
