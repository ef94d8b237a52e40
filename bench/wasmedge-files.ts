/**
 * bench:wasmedge, part 4: the cost of one file request from a WASI application (open, read or
 * close of a small file beneath a preopen), side by side in one run:
 * - `capvisor run` (runWasi): the application in a worker of the runner's pool, its file server
 *   in the same process, reached through the request channel (service.ts);
 * - a runtime PD of a booted system: the application on its application thread (a kernel thread,
 *   app-threads.ts), each request queued to the runtime PD, which makes an seL4_Call to its
 *   file-server PD, then signals the thread's notification.
 * The program (bench/native/filereq.c) times its own loop; the median over runs is printed.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootSystem } from "../src/system/boot.js";
import { runWasi } from "../src/wasmedge/runner.js";
import { type RuntimePD, wasmedgeRuntime } from "../src/wasmedge/runtime-pd.js";
import { BUILD, fmtNs, median, quick, ROOT } from "./common.js";

const REQUESTS = quick ? 300 : 2000;
const RUNS = quick ? 2 : 5;

function perRequest(out: string): number {
  const m = /ns per request: (\d+)/.exec(out);
  if (m === null) throw new Error(`filereq printed: ${out}`);
  return Number(m[1]);
}

/** Prints the two figures; returns them (ns per request), or null when the program cannot be built. */
export async function fileRequests(): Promise<{ inProcess: number; runtimePD: number } | null> {
  console.log(
    `\nfile requests (open, read, close of a small file; ${REQUESTS} of each per run, ${RUNS} runs):`,
  );
  mkdirSync(BUILD, { recursive: true });
  const wasm = join(BUILD, "filereq.wasm");
  const cc = spawnSync(
    "clang-16",
    ["--target=wasm32-wasi", "-O2", "-o", wasm, join(ROOT, "bench/native/filereq.c")],
    { encoding: "utf8" },
  );
  if (cc.status !== 0) {
    console.log(`  NOT RUN: clang-16 --target=wasm32-wasi failed: ${cc.stderr.trim()}`);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), "capvisor-filereq-"));
  try {
    mkdirSync(join(dir, "data"));
    writeFileSync(join(dir, "data", "f.txt"), "a small file\n");
    const bytes = readFileSync(wasm);

    const inProcess: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      let out = "";
      const r = await runWasi(bytes, {
        args: ["filereq.wasm", String(REQUESTS)],
        env: [],
        preopens: [{ guest: "/data", host: join(dir, "data") }],
        stdout: (b) => {
          out += new TextDecoder().decode(b);
        },
        stderr: (b) => {
          out += new TextDecoder().decode(b);
        },
      });
      if (r.exitCode !== 0)
        throw new Error(
          `filereq exited with ${r.exitCode}: ${out}${r.trap ? ` (${r.trap.kind}: ${r.trap.message})` : ""}`,
        );
      inProcess.push(perRequest(out));
    }

    const system = join(dir, "filereq.system");
    writeFileSync(
      system,
      `<system xmlns:capvisor="https://capvisor.dev/sdf">
  <protection_domain name="rt" priority="50" capvisor:runtime="wasmedge"
      capvisor:apps="${wasm} ${REQUESTS}" capvisor:dirs="/data:./data">
    <program_image path="${wasm}" />
  </protection_domain>
</system>`,
    );
    const runtimePD: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      let out = "";
      const sys = await bootSystem<RuntimePD>(system, {
        runtimes: [wasmedgeRuntime],
        cores: 2,
        onLine: (_pd, l) => {
          out += `${l}\n`;
        },
      });
      try {
        const [r] = await sys.runtimes[0]!.done;
        if (r!.exitCode !== 0)
          throw new Error(`filereq in the runtime PD exited with ${r!.exitCode}: ${out}`);
      } finally {
        await sys.stop();
      }
      runtimePD.push(perRequest(out));
    }
    const a = median(inProcess);
    const b = median(runtimePD);
    console.log(
      `  capvisor run (in-process file server)            median ${fmtNs(a).padStart(10)} per request`,
    );
    console.log(
      `  runtime PD (application thread, file-server PD)  median ${fmtNs(b).padStart(10)} per request  ${(b / a).toFixed(1)}x`,
    );
    return { inProcess: a, runtimePD: b };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
