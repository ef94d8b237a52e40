/**
 * `capvisor verify system.xml [--policy p.yaml]`: the flow matrix, or each property of the
 * policy with its verdict. Exit 0 when every property holds, 1 on a violation, 2 on bad input.
 */
import { readFileSync } from "node:fs";
import { LoadError } from "../system/loader.js";
import { SdfError } from "../system/sdf.js";
import { analyseFile, formatMatrix } from "./authority.js";
import { checkPolicy, formatResults, PolicyError, parsePolicy } from "./policy.js";

export async function verifyCommand(args: string[], out: (s: string) => void = console.log): Promise<number> {
  const err = (s: string): number => {
    console.error(`capvisor verify: ${s}`);
    return 2;
  };
  let file: string | undefined;
  let policyFile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--policy") {
      policyFile = args[++i];
      if (policyFile === undefined) return err("--policy needs a file");
    } else if (a.startsWith("--policy=")) policyFile = a.slice("--policy=".length);
    else if (a.startsWith("--")) return err(`unknown option '${a}'`);
    else if (file === undefined) file = a;
    else return err(`unexpected argument '${a}'`);
  }
  if (file === undefined) return err("usage: capvisor verify system.xml [--policy p.yaml]");
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
