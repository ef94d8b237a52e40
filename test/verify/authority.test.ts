/**
 * capvisor verify, isolation part (issue 6): verdicts and counterexample chains for every
 * example in examples/insecure/, the passing examples with their policies, the matrix of a clean
 * system, and the command's exit codes.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { analyseFile, type Edge, formatMatrix, kindsBetween } from "../../src/verify/authority.js";
import { checkPolicy, type PropertyResult, parsePolicy } from "../../src/verify/policy.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const INSECURE = join(ROOT, "examples/insecure");
const CLI = join(ROOT, "dist/src/cli/main.js");

async function check(system: string, policy: string): Promise<PropertyResult[]> {
  const { graph } = await analyseFile(system);
  return checkPolicy(graph, parsePolicy(readFileSync(policy, "utf8"), policy, graph.domains));
}

function violations(results: PropertyResult[]): Edge[] {
  return results
    .filter((r) => r.verdict === "COUNTEREXAMPLE" && r.property.includes(" only "))
    .flatMap((r) => r.counterexamples);
}

/** example -> a violation it must report: from, to, kind, and the first step of its chain. */
const EXPECTED: Record<string, { from: string; to: string; kind: string; first: RegExp }> = {
  "wrong-end-channel": {
    from: "app",
    to: "driver",
    kind: "signal",
    first: /^app: slot 10: Notification W badge 0x4 to Notification of driver/,
  },
  "key-writable-in-driver": {
    from: "driver",
    to: "crypto",
    kind: "write",
    first: /^driver: mapping at 0x300000: Frame R\+W .* page 0 of region "key"/,
  },
  "key-readable-in-logger": {
    from: "logger",
    to: "crypto",
    kind: "read",
    first: /^logger: mapping at 0x100000: Frame R badge .* region "key"/,
  },
  "pp-wrong-direction": {
    from: "app",
    to: "crypto",
    kind: "call",
    first: /^app: slot 74: Endpoint W\+GR badge 0x8000000000000000 to Endpoint of crypto/,
  },
  "app-parent-of-crypto": {
    from: "app",
    to: "crypto",
    kind: "control",
    first: /^app: slot 202: TCB .* to TCB of crypto \(control\)/,
  },
  "irq-to-app": {
    from: "irq:33",
    to: "app",
    kind: "signal",
    first: /^irq:33: kernel IRQ node, line 33: Notification W badge 0x20 to Notification of app/,
  },
  "forgotten-notify-false": {
    from: "logger",
    to: "driver",
    kind: "signal",
    first: /^logger: slot 10: Notification W badge 0x2 to Notification of driver/,
  },
  "buf-in-driver": {
    from: "driver",
    to: "app",
    kind: "write",
    first: /^driver: mapping at 0x200000: Frame R\+W .* region "buf"/,
  },
  "logger-child-of-app": {
    from: "logger",
    to: "app",
    kind: "call",
    first:
      /^logger: TCB fault handler: Endpoint .* badge 0x4000000000000001 to Endpoint of app \(fault message\)/,
  },
  "pp-into-driver": {
    from: "app",
    to: "logger",
    kind: "signal",
    first: /^app: slot 75: Endpoint W\+GR badge 0x8000000000000002 to Endpoint of driver \(call\)/,
  },
  "crypto-to-driver": {
    from: "crypto",
    to: "driver",
    kind: "signal",
    first: /^crypto: slot 11: Notification W badge 0x4 to Notification of driver/,
  },
};

const fmt = (s: Edge["chain"][number]): string =>
  `${s.pd}: ${s.where}: ${s.cap} ${s.rights} badge ${s.badge} to ${s.object} (${s.use})`;

test("the reference system satisfies the shared policy", async () => {
  const r = await check(join(INSECURE, "secure.system"), join(INSECURE, "policy.yaml"));
  assert.ok(r.length >= 6);
  for (const p of r) assert.equal(p.verdict, "PROVED", p.property);
});

for (const [name, want] of Object.entries(EXPECTED))
  test(`insecure/${name} is rejected with the right chain`, async () => {
    const r = await check(join(INSECURE, `${name}.system`), join(INSECURE, "policy.yaml"));
    const e = violations(r).find((x) => x.from === want.from && x.to === want.to && x.kind === want.kind);
    assert.ok(
      e,
      `${want.from} -> ${want.to}: ${want.kind} among ${violations(r)
        .map((x) => `${x.from}->${x.to}:${x.kind}`)
        .join(" ")}`,
    );
    assert.match(fmt(e.chain[0]!), want.first);
    // Every chain ends at the receiving domain (or is a single control step).
    const last = e.chain[e.chain.length - 1]!;
    assert.ok(last.pd === want.to || last.next === want.to, fmt(last));
  });

test("pp-into-driver: the driver's caps flow back to app by reply grant (a three-step chain)", async () => {
  const r = await check(join(INSECURE, "pp-into-driver.system"), join(INSECURE, "policy.yaml"));
  const e = violations(r).find((x) => x.from === "app" && x.to === "logger" && x.kind === "signal")!;
  assert.deepEqual(
    e.chain.map((s) => s.use),
    ["call", "reply grant", "signal", "wait"],
  );
  assert.match(fmt(e.chain[1]!), /^driver: slot 4: Reply G badge 0x0 to Reply of driver/);
  assert.match(
    fmt(e.chain[2]!),
    /^app: \(acquired; driver's slot 11\): Notification W badge 0x1 to Notification of logger/,
  );
});

test("app-parent-of-crypto: control of crypto's TCB gives app crypto's caps", async () => {
  const { graph } = await analyseFile(join(INSECURE, "app-parent-of-crypto.system"));
  // crypto's fault handler is app: app can also read crypto's notification through control.
  const e = graph.edges.find((x) => x.from === "app" && x.to === "crypto" && x.kind === "control");
  assert.ok(e);
  assert.equal(e.chain.length, 1);
  assert.ok(kindsBetween(graph, "crypto", "app").includes("call"));
});

test("crypto-to-driver: a transitive information path app => logger through crypto and driver", async () => {
  const r = await check(join(INSECURE, "crypto-to-driver.system"), join(INSECURE, "policy.yaml"));
  const iso = r.find((p) => p.property === "no information path app => logger")!;
  assert.equal(iso.verdict, "COUNTEREXAMPLE");
  assert.deepEqual(
    iso.counterexamples.map((e) => `${e.from}->${e.to}:${e.kind}`),
    ["crypto->app:read", "crypto->driver:signal", "driver->logger:signal"],
  );
});

for (const ex of ["pingpong", "queue", "restart"])
  test(`examples/${ex} satisfies its policy`, async () => {
    const r = await check(
      join(ROOT, `examples/${ex}/${ex}.system`),
      join(ROOT, `examples/${ex}/policy.yaml`),
    );
    for (const p of r) assert.equal(p.verdict, "PROVED", p.property);
  });

test("the flow matrix of examples/queue", async () => {
  const { graph } = await analyseFile(join(ROOT, "examples/queue/queue.system"));
  assert.deepEqual(graph.domains, ["consumer", "producer", "monitor"]);
  assert.deepEqual(kindsBetween(graph, "producer", "consumer"), ["read", "write", "signal"]);
  assert.deepEqual(kindsBetween(graph, "consumer", "producer"), ["read", "write", "signal"]);
  assert.deepEqual(kindsBetween(graph, "producer", "monitor"), ["call"]);
  assert.deepEqual(kindsBetween(graph, "monitor", "producer"), []);
  const m = formatMatrix(graph).split("\n");
  assert.match(m[1]!, /^consumer\s+\\\s+rws\s+c\s*$/);
  assert.match(m[2]!, /^producer\s+rws\s+\\\s+c\s*$/);
});

test("restart: bystander is isolated; parent controls child", async () => {
  const { graph } = await analyseFile(join(ROOT, "examples/restart/restart.system"));
  for (const d of ["parent", "child"]) {
    assert.deepEqual(kindsBetween(graph, "bystander", d), []);
    assert.deepEqual(kindsBetween(graph, d, "bystander"), []);
  }
  assert.ok(kindsBetween(graph, "parent", "child").includes("control"));
});

test("capvisor verify: exit codes and messages", () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, "verify", ...args], { cwd: ROOT, encoding: "utf8" });
  const ok = run("examples/insecure/secure.system", "--policy", "examples/insecure/policy.yaml");
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /PROVED\s+no information path app => logger/);
  const bad = run("examples/insecure/irq-to-app.system", "--policy", "examples/insecure/policy.yaml");
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /COUNTEREXAMPLE irq:33 -> app only \[\]/);
  assert.match(bad.stdout, /app: slot 143: IRQHandler/);
  const matrix = run("examples/pingpong/pingpong.system");
  assert.equal(matrix.status, 0);
  assert.match(matrix.stdout, /from\\to/);
  const badPolicy = run("examples/pingpong/pingpong.system", "--policy", "examples/insecure/policy.yaml");
  assert.equal(badPolicy.status, 2);
  assert.match(badPolicy.stderr, /policy\.yaml:5:3: unknown domain 'app'/);
  const badXml = run("test/verify/nonexistent.system");
  assert.equal(badXml.status, 2);
});
