#!/usr/bin/env node
import { readFileSync } from "node:fs";
/**
 * The `capvisor` command. Each command is a thin layer over the library API (src/index.ts).
 */
import type { VmmPD } from "../vmm/vmm-pd.js";
import { parseCommand, runCommand, validateCommand } from "../wasmedge/cli.js";
import type { RuntimePD } from "../wasmedge/runtime-pd.js";

const USAGE = `usage: capvisor <command> [options]

commands:
  up <system> [--cores N] [--for MS] [--realtime]
                              boot a Microkit system description: build it from Untyped with
                              syscalls, run its Wasm PDs, stream each PD's output prefixed with
                              its name and each VM's console; Ctrl-C (or --for MS) shuts it down
                              and shows each PD's state. --realtime (root): the kernel's thread
                              and PDs at priority 128 or more run under host SCHED_FIFO
  console <vm>                an interactive serial console to a VM of a running 'capvisor up';
                              Ctrl-] leaves
  boot [--cores N] [--ms T]   boot the built-in demo on the kernel alone and run it for T ms of
                              virtual time (default: 2 cores, 20 ms)
  run [options] app.wasm [function | args...]
                              run a WASI application as WasmEdge does: --dir guest:host (or
                              --dir host), --env K=V, --reactor (call a function, print its
                              results), --time-limit MS, --gas-limit N, --memory-page-limit N,
                              --enable-time-measuring, --enable-gas-measuring,
                              --enable-instruction-count, --enable-all-statistics
  verify <system> [--policy p.yaml]
                              compute the authority between the PDs of a system description from
                              the capabilities the loader gives them; print the flow matrix, or
                              check a policy (exit 0 all PROVED, 1 a COUNTEREXAMPLE, 2 bad input)
  validate app.wasm           validate a module (exit 0 when valid, else what and where)
  parse app.wasm              parse a module without validating it and list its sections
  version                     print the version
  help                        print this help`;

function fail(message: string): never {
  console.error(`capvisor: ${message}\n\n${USAGE}`);
  process.exit(2);
}

/** Parse `--name value` options into numbers, refusing anything unknown or malformed. */
function numberOptions(
  args: string[],
  allowed: Record<string, [min: number, max: number]>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const name = a.startsWith("--") ? a.slice(2).split("=")[0]! : "";
    const range = allowed[name];
    if (range === undefined) fail(`unknown option '${a}'`);
    const raw = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
    const v = Number(raw);
    if (raw === undefined || !Number.isInteger(v) || v < range[0] || v > range[1])
      fail(`--${name} needs an integer from ${range[0]} to ${range[1]} (got '${raw ?? ""}')`);
    out[name] = v;
  }
  return out;
}

async function boot(args: string[]): Promise<void> {
  const o = numberOptions(args, { cores: [1, 64], ms: [1, 60_000] });
  const cores = o.cores ?? 2;
  const ms = o.ms ?? 20;
  console.log(`capvisor: booting the seL4-model kernel (${cores} core(s)), running ${ms} ms of virtual time`);
  const t0 = performance.now();
  // Loaded here: `capvisor run` should not pay for the kernel demo's modules.
  const { runDemo } = await import("../system/demo.js");
  const r = runDemo({ cores, ms, onLine: (thread, line) => console.log(`[${thread}] ${line}`) });
  const wall = performance.now() - t0;
  console.log("\nthreads:");
  for (const t of r.threads)
    console.log(
      `  ${(t.name || "(unnamed)").padEnd(12)} ${t.state.padEnd(22)} core ${t.core}  priority ${t.priority}`,
    );
  const s = r.kernel.stats;
  console.log(
    `\nkernel: ${s.syscalls} syscalls (${s.fastpathCalls} fastpath calls), ${s.interrupts} device interrupts, ` +
      `${s.contextSwitches} context switches, ${s.faults} faults, ${r.kernel.objects.size} objects; ` +
      `${wall.toFixed(0)} ms wall time`,
  );
  if (r.calls !== 5 || r.ticks === 0) {
    console.error("capvisor: the default system did not complete its work");
    process.exit(1);
  }
}

function showStatus(rows: { name: string; state: string; core: number }[]): void {
  for (const r of rows) console.error(`  ${r.name.padEnd(16)} ${r.state.padEnd(24)} core ${r.core}`);
}

async function up(args: string[]): Promise<void> {
  const file = args[0];
  if (file === undefined || file.startsWith("--")) fail("up needs a system description file");
  const realtime = args.includes("--realtime");
  const o = numberOptions(
    args.slice(1).filter((a) => a !== "--realtime"),
    { cores: [1, 64], for: [1, 86_400_000] },
  );
  // Loaded here, not at the top: the system loader brings Binaryen (about 0.3 s to load).
  const { bootSystem } = await import("../system/boot.js");
  const { wasmedgeRuntime } = await import("../wasmedge/runtime-pd.js");
  const { vmmRuntime } = await import("../vmm/vmm-pd.js");
  const { serveConsole } = await import("./console.js");
  let sys: Awaited<ReturnType<typeof bootSystem<RuntimePD | VmmPD>>>;
  try {
    sys = await bootSystem<RuntimePD | VmmPD>(file, {
      runtimes: [wasmedgeRuntime, vmmRuntime],
      cores: o.cores ?? 2,
      ...(realtime ? { platform: { hostPriorities: "realtime" as const } } : {}),
      onStep: (m) => console.error(`capvisor: ${m}`),
      onLine: (pd, line) => console.log(`[${pd}] ${line}`),
      onEvent: (pd, msg) => console.error(`[${pd}] !! ${msg}`),
    });
  } catch (e) {
    console.error(`capvisor: ${(e as Error).message}`);
    process.exit(1);
  }
  const closers: (() => void)[] = [];
  for (const r of sys.runtimes)
    if ("vcpuTcb" in r) {
      closers.push(serveConsole(r, (m) => console.error(`capvisor: ${m}`)));
      console.error(`capvisor: VM ${r.vm} is up; its console: capvisor console ${r.vm}`);
    }
  console.error(
    `capvisor: ${sys.loaded.pds.length} PD(s)${sys.loaded.vms.length > 0 ? ` and ${sys.loaded.vms.length} VM(s)` : ""} running; Ctrl-C to stop`,
  );
  const keepAlive = setInterval(() => {}, 1 << 30);
  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(keepAlive);
    for (const c of closers) c();
    console.error(`\ncapvisor: ${why}; PD states:`);
    showStatus(sys.status());
    await sys.stop();
    const s = sys.kernel.stats;
    console.error(
      `capvisor: kernel: ${s.syscalls} syscalls, ${s.interrupts} interrupts, ${s.faults} faults, ${s.contextSwitches} context switches`,
    );
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("interrupted"));
  process.on("SIGTERM", () => void stop("terminated"));
  if (o.for !== undefined) setTimeout(() => void stop(`ran for ${o.for} ms`), o.for);
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** Exits once stdout and stderr have taken everything written (a guest may leave handles open). */
function exitFlushed(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write("", done);
  process.stderr.write("", done);
}

const [cmd, ...rest] = process.argv.slice(2);
switch (cmd) {
  case "boot":
    await boot(rest);
    break;
  case "up":
    await up(rest);
    break;
  case "run":
    exitFlushed(await runCommand(rest));
    break;
  case "console": {
    if (rest.length !== 1 || rest[0]!.startsWith("-")) fail("console needs the name of a VM");
    const { attachConsole } = await import("./console.js");
    exitFlushed(await attachConsole(rest[0]!));
    break;
  }
  case "verify": {
    const { verifyCommand } = await import("../verify/command.js");
    exitFlushed(await verifyCommand(rest));
    break;
  }
  case "validate":
    exitFlushed(validateCommand(rest));
    break;
  case "parse":
    exitFlushed(parseCommand(rest));
    break;
  case "version":
  case "--version":
    console.log(`capvisor ${version()}`);
    break;
  case "help":
  case "--help":
  case "-h":
  case undefined:
    console.log(USAGE);
    break;
  default:
    fail(`unknown command '${cmd}'`);
}
