/**
 * capvisor verify, isolation part (issue 6): verdicts and counterexample chains for every
 * example in examples/insecure/, the passing examples with their policies, the matrix of a clean
 * system, the command's exit codes, virtual machines, and the file-server PDs and doorbells the
 * WasmEdge runtime builds after the loader.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { CNodeObj } from "../../src/kernel/structures.js";
import { RIGHT_GRANT, TCB_CTABLE } from "../../src/kernel/types.js";
import { REPLY_CAP } from "../../src/system/loader.js";
import { loadSdf, parseSdf } from "../../src/system/sdf.js";
import {
  AnalysisError,
  type AuthorityGraph,
  analyseFile,
  analyseSystem,
  buildKernelState,
  type Edge,
  infoPath,
  kindsBetween,
} from "../../src/verify/authority.js";
import { formatMatrix } from "../../src/verify/command.js";
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
    ["app->crypto:write", "crypto->driver:signal", "driver->logger:signal"],
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

// --- Virtual machines: a VM is a domain of its own, reaching others only through its VMM ---

const path = (edges: Edge[] | null): string[] | null =>
  edges === null ? null : edges.map((e) => `${e.from}->${e.to}:${e.kind}`);

async function checkText(system: string, policy: string): Promise<PropertyResult[]> {
  const { graph } = await analyseFile(system);
  return checkPolicy(graph, parsePolicy(policy, "inline policy", graph.domains));
}

test("vm-isolated: linux reaches only its VMM, never hello, and no flow reaches linux but the VMM's", async () => {
  const { graph } = await analyseFile(join(ROOT, "examples/vm-isolated.system"));
  // irq:32 is the VMM's restart doorbell (src/vmm/vmm-pd.ts), a line whose handler it holds.
  assert.deepEqual(graph.domains, ["hello", "vmm", "linux", "irq:32", "monitor"]);
  assert.deepEqual(graph.vms, ["linux"]);
  assert.deepEqual(
    graph.edges.filter((e) => e.from === "linux").map((e) => `${e.to}:${e.kind}`),
    ["vmm:call"],
  );
  assert.deepEqual(
    graph.edges.filter((e) => e.to === "linux").map((e) => `${e.from}:${e.kind}`),
    ["vmm:control"],
  );
  // The guest's one way out is a fault message to its VMM, through the TCB's fault handler.
  const fault = graph.edges.find((e) => e.from === "linux")!;
  assert.match(
    fmt(fault.chain[0]!),
    /^linux: TCB fault handler: Endpoint .* badge 0x4000000000000000 to Endpoint of vmm \(fault message\)/,
  );
  assert.match(
    fmt(graph.edges.find((e) => e.to === "linux")!.chain[0]!),
    /^vmm: slot 266: TCB .* TCB of linux/,
  );
  assert.equal(infoPath(graph, "linux", "hello"), null);
  assert.equal(infoPath(graph, "hello", "linux"), null);
  assert.deepEqual(path(infoPath(graph, "linux", "vmm")), ["linux->vmm:call"]);
  const m = formatMatrix(graph).split("\n");
  assert.match(m[3]!, /^linux\s+\.\s+c\s+\\\s+\.\s+\.\s*$/);
});

test("vm-isolated: a policy isolating linux from hello is PROVED", async () => {
  const r = await checkText(
    join(ROOT, "examples/vm-isolated.system"),
    "flows:\n  linux -> vmm: [call]\n  vmm -> linux: [control]\n  vmm -> irq:32: [control]\n  irq:32 -> vmm: [signal]\nisolate:\n  - linux -> hello\n  - hello -> linux\n",
  );
  assert.ok(r.some((p) => p.property === "no information path linux => hello"));
  for (const p of r) assert.equal(p.verdict, "PROVED", p.property);
});

const DEFAULT_POLICY = `flows:
  linux -> vmm: [call]
  vmm -> linux: [control]
  vmm -> wasmedge: [read, write, signal]
  wasmedge -> vmm: [read, write, signal]
`;

test("default.system: examples/default.policy.yaml holds", async () => {
  const system = join(ROOT, "examples/default.system");
  const r = await check(system, join(ROOT, "examples/default.policy.yaml"));
  assert.ok(r.some((p) => p.property === "wasmedge -> wasmedge.fs only [read, write, call]"));
  assert.ok(r.some((p) => p.property === "wasmedge -> wasmedge.net only [read, write, call]"));
  assert.ok(r.some((p) => p.property === "wasmedge.net -> wasmedge only [read, write, signal]"));
  assert.ok(r.some((p) => p.property === "irq:254 -> wasmedge.net only [signal]"));
  assert.ok(r.some((p) => p.property === "irq:255 -> wasmedge only [signal]"));
  assert.ok(r.some((p) => p.property === "vmm -> irq:32 only [control]"));
  assert.ok(r.some((p) => p.property === "linux -> vmm only [call]"));
  // The pattern lines cover each of the sixteen threads of the VM's jobs, both ways.
  for (let j = 1; j <= 16; j++) {
    assert.ok(
      r.some((p) => p.property === `wasmedge -> wasmedge/job-${j} only [read, write, signal, control]`),
    );
    assert.ok(r.some((p) => p.property === `wasmedge/job-${j} -> wasmedge only [read, write]`));
  }
  assert.equal(r.length, 15 + 2 * 16);
  for (const p of r) assert.equal(p.verdict, "PROVED", p.property);
});

test("the file server holds least authority: its endpoint receive-only, its Reply cap without Grant", async () => {
  // With Grant on its Reply cap its caps could flow to its caller (verify found that, and the
  // file server was given less).
  assert.equal(await fileServerReplyGrants(join(ROOT, "examples/default.system")), false);
  assert.equal(await fileServerReplyGrants(WASMEDGE_PD), false);
});

test("default.system: forbidding linux => wasmedge gives the chain through the VMM's channel and ring", async () => {
  const r = await checkText(
    join(ROOT, "examples/default.system"),
    `${DEFAULT_POLICY}isolate:\n  - linux -> wasmedge\n`,
  );
  const iso = r.find((p) => p.property === "no information path linux => wasmedge")!;
  assert.equal(iso.verdict, "COUNTEREXAMPLE");
  assert.deepEqual(path(iso.counterexamples), ["linux->vmm:call", "vmm->wasmedge:write"]);
  const [fault, ring] = iso.counterexamples.map((e) => e.chain.map(fmt));
  assert.match(fault![0]!, /^linux: TCB fault handler: Endpoint .* to Endpoint of vmm \(fault message\)/);
  assert.match(fault![1]!, /^vmm: slot 1: Endpoint .* to Endpoint of vmm \(receive\)/);
  assert.match(ring![0]!, /^vmm: mapping at 0x4000000: Frame R\+W .* region "vm_ring" \(write\)/);
  assert.match(ring![1]!, /^wasmedge: mapping at 0x4000000: .* region "vm_ring" \(read\)/);
  // The channel's notification is the other way there: one edge per kind, each with its chain.
  const { graph } = await analyseFile(join(ROOT, "examples/default.system"));
  const signal = graph.edges.find((e) => e.from === "vmm" && e.to === "wasmedge" && e.kind === "signal")!;
  assert.match(fmt(signal.chain[0]!), /^vmm: slot 11: Notification W badge 0x2 to Notification of wasmedge/);
  // Without the VMM's own channel, the guest would reach nothing: the flows into it are the VMM's.
  assert.deepEqual(kindsBetween(graph, "linux", "wasmedge"), []);
  assert.deepEqual(kindsBetween(graph, "wasmedge", "linux"), []);
});

const VM_POLICY = join(INSECURE, "vm-policy.yaml");

test("insecure/vm-secure satisfies vm-policy.yaml, without the guest image it names", async () => {
  // The examples name a guest image that does not exist: verify only builds kernel state.
  assert.match(readFileSync(join(INSECURE, "vm-secure.system"), "utf8"), /no-such-guest\/image\.json/);
  assert.equal(existsSync(join(INSECURE, "no-such-guest/image.json")), false);
  const r = await check(join(INSECURE, "vm-secure.system"), VM_POLICY);
  assert.ok(r.some((p) => p.property === "linux -> vmm only [call]"));
  for (const p of r) assert.equal(p.verdict, "PROVED", p.property);
});

/** VM example -> a violation it must report (as EXPECTED) and the isolation it breaks, with its path. */
const EXPECTED_VM: Record<
  string,
  { from: string; to: string; kind: string; first: RegExp; isolation: string; path: string[] }
> = {
  "vm-ring-in-app": {
    from: "vmm",
    to: "app",
    kind: "write",
    first: /^vmm: mapping at 0x4000000: Frame R\+W .* region "vm_ring" \(write\)/,
    isolation: "linux => app",
    path: ["linux->vmm:call", "vmm->app:write"],
  },
  "vm-channel-to-crypto": {
    from: "vmm",
    to: "crypto",
    kind: "signal",
    first: /^vmm: slot 12: Notification W badge 0x2 to Notification of crypto \(signal\)/,
    isolation: "linux => crypto",
    path: ["linux->vmm:call", "vmm->crypto:signal"],
  },
  "vmm-child-of-app": {
    from: "app",
    to: "linux",
    kind: "control",
    first: /^app: slot 203: TCB .* to TCB of vmm \(control\)/,
    isolation: "app => linux",
    path: ["app->linux:control"],
  },
};

for (const [name, want] of Object.entries(EXPECTED_VM))
  test(`insecure/${name} is rejected with the right chain and path`, async () => {
    const r = await check(join(INSECURE, `${name}.system`), VM_POLICY);
    const e = violations(r).find((x) => x.from === want.from && x.to === want.to && x.kind === want.kind);
    assert.ok(
      e,
      violations(r)
        .map((x) => `${x.from}->${x.to}:${x.kind}`)
        .join(" "),
    );
    assert.match(fmt(e.chain[0]!), want.first);
    const last = e.chain[e.chain.length - 1]!;
    assert.ok(last.pd === want.to || last.next === want.to, fmt(last));
    const iso = r.find((p) => p.property === `no information path ${want.isolation}`)!;
    assert.equal(iso.verdict, "COUNTEREXAMPLE");
    assert.deepEqual(path(iso.counterexamples), want.path);
  });

test("vmm-child-of-app: control is transitive, app takes the VM's TCB from the VMM it controls", async () => {
  const { graph } = await analyseFile(join(INSECURE, "vmm-child-of-app.system"));
  const e = graph.edges.find((x) => x.from === "app" && x.to === "linux" && x.kind === "control")!;
  assert.deepEqual(e.chain.map(fmt), [
    "app: slot 203: TCB - badge 0x0 to TCB of vmm (control)",
    "app: (acquired; vmm's slot 266): TCB - badge 0x0 to TCB of linux (control)",
  ]);
});

const vmSystem = (
  vmName: string,
  vmBody = '<vcpu id="0" />',
): string => `<system xmlns:capvisor="https://capvisor.dev/sdf">
  <memory_region name="mem" size="0x1000" />
  <protection_domain name="hello" priority="100"><program_image path="hello.wasm" /></protection_domain>
  <protection_domain name="vmm" priority="150" capvisor:runtime="vmm">
    <virtual_machine name="${vmName}" priority="50" capvisor:image="none.json">${vmBody}</virtual_machine>
  </protection_domain>
</system>`;

test("a VM named like a PD, or like a reserved domain, is refused", () => {
  assert.throws(
    () => analyseSystem(parseSdf(vmSystem("hello"), "clash.system")),
    (e: unknown) =>
      e instanceof AnalysisError &&
      /^clash\.system:5:5: virtual machine "hello" has the name of protection domain at clash\.system:3:3/.test(
        e.message,
      ),
  );
  assert.throws(() => analyseSystem(parseSdf(vmSystem("monitor"), "m.system")), /reserves this name/);
  assert.throws(() => analyseSystem(parseSdf(vmSystem("irq:3"), "i.system")), /reserves this name/);
});

test("a VM with a <map> of its own is refused: the loader does not build it, verify cannot see it", () => {
  const sys = parseSdf(
    vmSystem("linux", '<vcpu id="0" /><map mr="mem" vaddr="0x100000" perms="rw" />'),
    "map.system",
  );
  assert.throws(() => analyseSystem(sys), /virtual machine "linux" maps memory region "mem"/);
});

test("capvisor verify on a VM system: the matrix and a note on the VMM's trust", () => {
  const run = spawnSync(process.execPath, [CLI, "verify", "examples/vm-isolated.system"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^linux\s+\.\s+c\s+\\/m);
  assert.match(run.stdout, /VMM is capvisor's trusted code/);
  const bad = spawnSync(
    process.execPath,
    [
      CLI,
      "verify",
      "examples/insecure/vm-channel-to-crypto.system",
      "--policy",
      "examples/insecure/vm-policy.yaml",
    ],
    { cwd: ROOT, encoding: "utf8" },
  );
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /COUNTEREXAMPLE no information path linux => crypto/);
});

// --- Runtime PDs: the file server and doorbell the WasmEdge runtime builds after the loader ---

const WASMEDGE_PD = join(ROOT, "examples/wasmedge-pd/wasmedge-pd.system");

/**
 * Whether the file server's Reply cap (slot REPLY_CAP of its CNode) has Grant: then, by the reply
 * grant rule, every cap of the file server can flow to its caller. Read from the kernel state the
 * runtime builds, not from the analysis, so that the tests below can check the analysis either way.
 */
async function fileServerReplyGrants(system: string): Promise<boolean> {
  const { runtimes } = buildKernelState(await loadSdf(system, { cores: 64 }));
  assert.equal(runtimes.length, 1);
  const cnode = runtimes[0]!.fileServer.tcb.ctes[TCB_CTABLE]!.cap.obj as CNodeObj;
  return (cnode.slot(REPLY_CAP).cap.rights & RIGHT_GRANT) !== 0;
}

/** Edges into or out of `d` that neither involve `via` nor use any capability `via` holds. */
function edgesAvoiding(g: AuthorityGraph, via: string): AuthorityGraph {
  return {
    ...g,
    edges: g.edges.filter((e) => e.from !== via && e.to !== via && !e.chain.some((s) => s.pd === via)),
  };
}

test("wasmedge-pd: the file server and the doorbell line are domains, with the runtime PD's caps to them", async () => {
  // The applications need not be built: verify builds kernel objects only.
  const { graph } = await analyseFile(WASMEDGE_PD);
  assert.deepEqual(graph.domains, [
    "hello",
    "runtime",
    "runtime.fs",
    "runtime.net",
    "runtime/hello",
    "runtime/readfile",
    "irq:254",
    "irq:255",
    "monitor",
  ]);
  assert.deepEqual(graph.pds, ["hello", "runtime"]);
  assert.deepEqual(graph.fileServers, ["runtime.fs"]);
  assert.deepEqual(graph.netServers, ["runtime.net"]);
  const one = (from: string, to: string, kind: string): string[] => {
    const e = graph.edges.find((x) => x.from === from && x.to === to && x.kind === kind);
    assert.ok(e, `${from} -> ${to}: ${kind}`);
    return e.chain.map(fmt);
  };
  // The runtime PD calls its file server on the badged endpoint in slot RUNTIME_FS_EP (266); the
  // badge is the runtime PD's index + 1.
  const call = one("runtime", "runtime.fs", "call");
  assert.equal(call.length, 2);
  assert.equal(call[0], "runtime: slot 266: Endpoint W+GR badge 0x2 to Endpoint of runtime.fs (call)");
  assert.match(
    call[1]!,
    /^runtime\.fs: slot 1: Endpoint (R|R\+W\+G\+GR) badge 0x0 to Endpoint of runtime\.fs \(receive\)$/,
  );
  // The shared buffer, mapped read-write into both.
  assert.match(
    one("runtime", "runtime.fs", "write")[0]!,
    /^runtime: mapping at 0x200000000: Frame R\+W badge 0x0 to page 0 of the file-server buffer of runtime \(write\)/,
  );
  assert.match(
    one("runtime.fs", "runtime", "write")[0]!,
    /^runtime\.fs: mapping at 0x200000000: Frame R\+W .* file-server buffer of runtime \(write\)/,
  );
  // The doorbell: its IRQHandler in slot RUNTIME_WAKE (267); the kernel signals the runtime PD's
  // notification with badge WAKE_BADGE.
  assert.deepEqual(one("runtime", "irq:255", "control"), [
    "runtime: slot 267: IRQHandler - badge 0x0 to irq:255 (control)",
  ]);
  assert.match(
    one("irq:255", "runtime", "signal")[0]!,
    /^irq:255: kernel IRQ node, line 255: Notification W badge 0x1 to Notification of runtime \(signal\)/,
  );
  // The file server holds no control over anything, and no fault handler of its own.
  assert.equal(graph.edges.filter((e) => e.from === "runtime.fs" && e.kind === "control").length, 0);
  const m = formatMatrix(graph).split("\n");
  assert.match(
    m[0]!,
    /^from\\to\s+hello\s+runtime\s+runtime\.fs\s+runtime\.net\s+runtime\/hello\s+runtime\/readfile\s+irq:254\s+irq:255\s+monitor\s*$/,
  );
  assert.match(m[1]!, /^hello\s+\\\s+\.\s+\.\s+\.\s+\.\s+\.\s+\.\s+\.\s+c\s*$/);
  // An application thread reaches only its runtime PD, through the page of its request channel.
  assert.match(m[5]!, /^runtime\/hello\s+\.\s+rw\s+\.\s+\.\s+\\\s+\.\s+\.\s+\.\s+\.\s*$/);
});

test("wasmedge-pd: only the runtime PD reaches its file server, and hello is isolated from it", async () => {
  const { graph } = await analyseFile(WASMEDGE_PD);
  assert.deepEqual(kindsBetween(graph, "hello", "runtime.fs"), []);
  assert.deepEqual(kindsBetween(graph, "runtime.fs", "hello"), []);
  assert.equal(infoPath(graph, "hello", "runtime.fs"), null);
  assert.equal(infoPath(graph, "runtime.fs", "hello"), null);
  // Every authority over the file server is the runtime PD's, or goes through caps it holds.
  for (const e of graph.edges.filter((x) => x.to === "runtime.fs"))
    assert.ok(e.from === "runtime" || e.chain.some((s) => s.pd === "runtime"), `${e.from}: ${e.kind}`);
  assert.equal(infoPath(edgesAvoiding(graph, "runtime"), "irq:255", "runtime.fs"), null);
  assert.deepEqual(
    graph.edges.filter((e) => e.from === "runtime.fs" && e.to !== "monitor").map((e) => `${e.to}:${e.kind}`),
    ["runtime:read", "runtime:write"],
  );
});

test("wasmedge-pd: the network PD is a domain, called by the runtime PD, signalling it, woken by its own line", async () => {
  const { graph } = await analyseFile(WASMEDGE_PD);
  const one = (from: string, to: string, kind: string): string[] => {
    const e = graph.edges.find((x) => x.from === from && x.to === to && x.kind === kind);
    assert.ok(e, `${from} -> ${to}: ${kind}`);
    return e.chain.map(fmt);
  };
  // The runtime PD calls it on the badged endpoint in slot RUNTIME_NET_EP (268).
  assert.deepEqual(one("runtime", "runtime.net", "call"), [
    "runtime: slot 268: Endpoint W+GR badge 0x2 to Endpoint of runtime.net (call)",
    "runtime.net: slot 1: Endpoint R badge 0x0 to Endpoint of runtime.net (receive)",
  ]);
  // A buffer of their own, at NET_SHM_VADDR in both.
  assert.match(
    one("runtime", "runtime.net", "write")[0]!,
    /^runtime: mapping at 0x200100000: Frame R\+W badge 0x0 to page 0 of the network buffer of runtime \(write\)/,
  );
  // It signals the runtime PD's notification (slot 10, Write only, badge bit 62) ...
  assert.deepEqual(one("runtime.net", "runtime", "signal"), [
    "runtime.net: slot 10: Notification W badge 0x4000000000000000 to Notification of runtime (signal)",
    "runtime: slot 1: Notification R+W badge 0x0 to Notification of runtime (wait)",
  ]);
  // ... and its doorbell (slot 138) signals its own notification, bound to its TCB.
  assert.deepEqual(one("runtime.net", "irq:254", "control"), [
    "runtime.net: slot 138: IRQHandler - badge 0x0 to irq:254 (control)",
  ]);
  assert.deepEqual(one("irq:254", "runtime.net", "signal"), [
    "irq:254: kernel IRQ node, line 254: Notification W badge 0x4000000000000000 to Notification of runtime.net (signal)",
    "runtime.net: bound notification of its TCB: Notification R badge 0x0 to Notification of runtime.net (wait)",
  ]);
  // Nothing more: no control over any PD, no grant, nothing towards hello or the file server.
  assert.deepEqual(
    graph.edges.filter((e) => e.from === "runtime.net").map((e) => `${e.to}:${e.kind}`),
    ["runtime:read", "runtime:write", "runtime:signal", "irq:254:control"],
  );
  for (const e of graph.edges.filter((x) => x.to === "runtime.net"))
    assert.ok(e.from === "runtime" || e.from === "irq:254", `${e.from}: ${e.kind}`);
  for (const d of ["hello", "runtime.fs"]) {
    assert.equal(infoPath(edgesAvoiding(graph, "runtime"), d, "runtime.net"), null);
    assert.equal(infoPath(edgesAvoiding(graph, "runtime"), "runtime.net", d), null);
  }
  assert.equal(infoPath(graph, "hello", "runtime.net"), null);
});

test("a PD named like a runtime PD's network PD is refused", () => {
  const sys = parseSdf(
    `<system xmlns:capvisor="https://capvisor.dev/sdf">
  <protection_domain name="rt" priority="50" capvisor:runtime="wasmedge"><program_image path="a.wasm" /></protection_domain>
  <protection_domain name="rt.net" priority="100"><program_image path="b.wasm" /></protection_domain>
</system>`,
    "net-clash.system",
  );
  assert.throws(
    () => analyseSystem(sys),
    (e: unknown) =>
      e instanceof AnalysisError &&
      /^net-clash\.system:3:3: protection domain "rt\.net" has the name of the network PD of runtime PD "rt"/.test(
        e.message,
      ),
  );
});

test("wasmedge-pd: a policy isolating the file server from every other PD is PROVED", async () => {
  const r = await checkText(
    WASMEDGE_PD,
    `flows:
  runtime -> runtime.fs: [read, write, call]
  runtime.fs -> runtime: [read, write]
  runtime -> irq:255: [control]
  irq:255 -> runtime: [signal]
  runtime -> runtime.net: [read, write, call]
  runtime.net -> runtime: [read, write, signal]
  runtime.net -> irq:254: [control]
  irq:254 -> runtime.net: [signal]
  runtime -> runtime/*: [read, write, signal, control]
  runtime/* -> runtime: [read, write]
isolate:
  - hello -> runtime/*
  - runtime/* -> hello
  - hello -> runtime.fs
  - runtime.fs -> hello
  - irq:255 -> hello
  - hello -> runtime.net
  - runtime.net -> hello
  - irq:254 -> hello
`,
  );
  assert.ok(r.some((p) => p.property === "no information path hello => runtime.fs"));
  assert.ok(r.some((p) => p.property === "no information path runtime.fs => hello"));
  assert.ok(r.some((p) => p.property === "no information path runtime.net => hello"));
  // A pattern stands for each domain it matches.
  assert.ok(r.some((p) => p.property === "no information path hello => runtime/readfile"));
  assert.ok(r.some((p) => p.property === "runtime -> runtime/hello only [read, write, signal, control]"));
  for (const p of r) assert.equal(p.verdict, "PROVED", p.property);
});

test("default.system: the Linux VM reaches wasmedge.fs only through vmm and the WasmEdge PD", async () => {
  const { graph } = await analyseFile(join(ROOT, "examples/default.system"));
  assert.deepEqual(graph.domains, [
    "wasmedge",
    "wasmedge.fs",
    "wasmedge.net",
    ...Array.from({ length: 16 }, (_, i) => `wasmedge/job-${i + 1}`),
    "vmm",
    "linux",
    "irq:32",
    "irq:254",
    "irq:255",
    "monitor",
  ]);
  const p = path(infoPath(graph, "linux", "wasmedge.fs"))!;
  assert.equal(p[0], "linux->vmm:call");
  assert.deepEqual(p, ["linux->vmm:call", "vmm->wasmedge:write", "wasmedge->wasmedge.fs:write"]);
  // Take away the WasmEdge PD (as a domain and as a holder of caps in any chain): no path is left,
  // either way.
  const without = edgesAvoiding(graph, "wasmedge");
  assert.equal(infoPath(without, "linux", "wasmedge.fs"), null);
  assert.equal(infoPath(without, "wasmedge.fs", "linux"), null);
  assert.equal(infoPath(without, "vmm", "wasmedge.fs"), null);
  assert.deepEqual(kindsBetween(graph, "linux", "wasmedge.fs"), []);
  // The same for its network PD: the guest reaches it only through the WasmEdge PD's caps.
  assert.deepEqual(path(infoPath(graph, "linux", "wasmedge.net")), [
    "linux->vmm:call",
    "vmm->wasmedge:write",
    "wasmedge->wasmedge.net:write",
  ]);
  assert.equal(infoPath(without, "linux", "wasmedge.net"), null);
  assert.equal(infoPath(without, "wasmedge.net", "linux"), null);
  assert.deepEqual(kindsBetween(graph, "linux", "wasmedge.net"), []);
});

test("capvisor verify on a runtime PD system: the matrix and a note on the file server's host access", () => {
  const run = spawnSync(process.execPath, [CLI, "verify", "examples/wasmedge-pd/wasmedge-pd.system"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^runtime\.fs\s+\.\s+r?w?/m);
  assert.match(run.stdout, /runtime\.fs is the file-server PD capvisor builds for runtime PD runtime/);
  assert.match(run.stdout, /outside the kernel model/);
});

test("a PD named like a runtime PD's file server is refused", () => {
  const sys = parseSdf(
    `<system xmlns:capvisor="https://capvisor.dev/sdf">
  <protection_domain name="rt" priority="50" capvisor:runtime="wasmedge"><program_image path="a.wasm" /></protection_domain>
  <protection_domain name="rt.fs" priority="100"><program_image path="b.wasm" /></protection_domain>
</system>`,
    "fs-clash.system",
  );
  assert.throws(
    () => analyseSystem(sys),
    (e: unknown) =>
      e instanceof AnalysisError &&
      /^fs-clash\.system:3:3: protection domain "rt\.fs" has the name of the file-server PD of runtime PD "rt"/.test(
        e.message,
      ),
  );
});
