/**
 * `npm run bench:vm [-- --quick]`: capvisor's Linux VMs (issue 5), side by side with QEMU in one
 * run. The guest is build/guest/ (scripts/build-guest.sh: Debian's i386 686 kernel, a busybox
 * initramfs, the guest tool wasmedge-run and the WASI examples in /root/wasm/).
 *
 * 1. v86 cold boot (no snapshot): a fresh v86 machine, BIOS to the guest's ready line
 *    (GUEST_READY_LINE, printed by guest/init) and on to the shell prompt, timed from before the
 *    machine is created. The first machine of a process also compiles v86's Wasm core, which every
 *    VM worker pays once: shown on its own row.
 * 2. v86 snapshot start: bootFromSnapshot (read the saved machine, inflate, restore) and then a
 *    shell command answered, which is when a user has a working VM; the snapshot file's size.
 * 3. QEMU TCG (Debian's qemu-system-i386, installed by scripts/setup-vm.sh --bench) booting the
 *    same kernel, initrd and command line, timed to the same ready line and prompt.
 * 4. The whole system (examples/default.system through bootSystem, as `capvisor up` boots it), in
 *    a child process so that its memory figures start from a clean process: a loop of
 *    `wasmedge-run /root/wasm/hello.wasm` in the guest, each job crossing the channel device, the
 *    VMM, the ring and the WasmEdge runtime PD and coming back; the per-job time, against the same
 *    loop running the guest tool without a job (its process cost alone). Host RSS before and with
 *    the VM running (the VM's worker thread is in this process, so its memory is counted).
 *
 * Rows print a figure or "NOT RUN: <why>"; goal lines print the ratio and MET/MISSED. Nothing here
 * passes or fails on a time.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  bootFromSnapshot,
  ensureSnapshot,
  GUEST_PROMPT,
  GUEST_READY_LINE,
  type GuestImage,
  loadGuestImage,
} from "../src/vmm/snapshot.js";
import { createV86Backend, DEFAULT_GUEST_MEMORY } from "../src/vmm/v86-backend.js";
import { driveUntil, type VcpuBackend } from "../src/vmm/vcpu-backend.js";
import { median, printMachine, quick, ROOT, sleep } from "./common.js";

/** Boots of each kind (v86 cold, v86 snapshot, QEMU): several in full mode, one in quick mode. */
const BOOTS = quick ? 1 : 3;
const RESTORES = quick ? 1 : 5;
/** Jobs per timed loop in the guest. */
const JOBS = quick ? 5 : 40;
/** QEMU's guest RAM, as the issue states the comparison (v86 gets capvisor's default). */
const QEMU_RAM_MIB = 256;
const BOOT_TIMEOUT_MS = 240_000;
const SYSTEM_FILE = join(ROOT, "examples/default.system");
const MIB = 2 ** 20;

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
}

function fmtMiB(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}

const NAME_WIDTH = 58;

/** A row of boot times: the median, the range and the count. */
function timeRow(name: string, ms: number[]): number {
  const m = median(ms);
  const range = ms.length > 1 ? `  (min ${fmtMs(Math.min(...ms))}, max ${fmtMs(Math.max(...ms))})` : "";
  console.log(`  ${name.padEnd(NAME_WIDTH)} median ${fmtMs(m).padStart(9)}  n=${ms.length}${range}`);
  return m;
}

/** A field of each measurement, for timeRow. */
function pick<K extends string>(key: K): (item: Record<K, number>) => number {
  return (item) => item[key];
}

function infoRow(name: string, figure: string): void {
  console.log(`  ${name.padEnd(NAME_WIDTH)} ${figure}`);
}

function notRun(name: string, why: string): void {
  // One line: a multi-line reason (a script's stderr) is folded.
  console.log(`  ${name.padEnd(NAME_WIDTH)} NOT RUN: ${why.replace(/\s*\n\s*/g, " | ").slice(0, 400)}`);
}

function goal(text: string, met: boolean | null, figure: string): void {
  console.log(`  ${text}: ${figure}: ${met === null ? "cannot tell" : met ? "MET" : "MISSED"}`);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Run a setup script; null when it succeeded, else what it said. */
function runScript(script: string, args: string[] = []): string | null {
  const r = spawnSync("sh", [join(ROOT, "scripts", script), ...args], { encoding: "utf8" });
  if (r.status === 0) return null;
  return (r.stderr || r.stdout || `scripts/${script} exited with ${r.status}`).trim();
}

// ------------------------------------------------------------------ 1. v86 cold boot

interface BootTimes {
  /** From nothing (machine creation or process start) to the ready line / the prompt, host ms. */
  readyMs: number;
  promptMs: number;
}

/** Index just past the ready line and the prompt after it in `out`, or -1. */
function promptIndex(out: string): number {
  const ready = out.indexOf(GUEST_READY_LINE);
  return ready < 0 ? -1 : out.indexOf(GUEST_PROMPT, ready + GUEST_READY_LINE.length);
}

/**
 * The guest's serial output collected as text, and driveUntil on it: the guest runs in slices with
 * the event loop in between, as a VMM thread that has its core to itself would (the kernel's
 * budgets are not involved here). A timeout says what the guest printed last.
 */
function serialText(backend: VcpuBackend): { until: (done: (out: string) => boolean) => Promise<void> } {
  let out = "";
  backend.onSerialOutput((byte) => {
    out += String.fromCharCode(byte);
  });
  const until = async (done: (out: string) => boolean): Promise<void> => {
    await driveUntil(backend, () => done(out), { timeoutMs: BOOT_TIMEOUT_MS }).catch((e: unknown) => {
      throw new Error(`${errorText(e)}; the guest printed: ${JSON.stringify(out.slice(-300))}`);
    });
  };
  return { until };
}

async function v86ColdBoot(image: GuestImage): Promise<BootTimes & { createMs: number }> {
  const start = performance.now();
  const backend = await createV86Backend({
    kernel: readFileSync(image.kernel),
    initrd: readFileSync(image.initrd),
    cmdline: image.cmdline,
    memoryBytes: DEFAULT_GUEST_MEMORY,
  });
  const createMs = performance.now() - start;
  const serial = serialText(backend);
  try {
    await serial.until((out) => out.includes(GUEST_READY_LINE));
    const readyMs = performance.now() - start;
    await serial.until((out) => promptIndex(out) >= 0);
    return { createMs, readyMs, promptMs: performance.now() - start };
  } finally {
    await backend.stop();
  }
}

// ------------------------------------------------------------------ 2. v86 snapshot start

/** A command whose answer ("cv-42") is not in its echo (the shell echoes "cv-$((6*7))"). */
const PROBE = "echo cv-$((6*7))\n";
const PROBE_ANSWER = "cv-42";

interface SnapshotStart {
  /** bootFromSnapshot: read, inflate, a new machine with the state restored. */
  restoreMs: number;
  /** ... and the guest's shell answering a command. */
  answeredMs: number;
}

async function v86SnapshotStart(image: GuestImage): Promise<SnapshotStart> {
  const start = performance.now();
  const booted = await bootFromSnapshot(image, { memoryBytes: DEFAULT_GUEST_MEMORY });
  const restoreMs = performance.now() - start;
  const serial = serialText(booted.backend);
  try {
    booted.backend.sendSerial(PROBE);
    await serial.until((out) => out.includes(PROBE_ANSWER));
    return { restoreMs, answeredMs: performance.now() - start };
  } finally {
    await booted.backend.stop();
  }
}

// ------------------------------------------------------------------ 3. QEMU TCG

/**
 * TCG explicitly: /dev/kvm here is a software PVM that hangs stock kernels (DESIGN.md). No network
 * card: the v86 machine has none either, and QEMU's default NIC brings an iPXE option ROM that the
 * BIOS runs at every boot.
 */
const QEMU_FLAGS = `-nographic -accel tcg -nic none -no-reboot -m ${QEMU_RAM_MIB}`;

function qemuArgs(image: GuestImage): string[] {
  return [
    ...QEMU_FLAGS.split(" "),
    "-kernel",
    image.kernel,
    "-initrd",
    image.initrd,
    "-append",
    image.cmdline,
  ];
}

/** One QEMU boot to the prompt; the QEMU process is killed (by its pid, our child) afterwards. */
function qemuBoot(image: GuestImage): Promise<BootTimes> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let child: ChildProcess;
    try {
      child = spawn("qemu-system-i386", qemuArgs(image), { stdio: ["pipe", "pipe", "pipe"] });
    } catch (e) {
      reject(e);
      return;
    }
    let out = "";
    let err = "";
    let readyMs = -1;
    let settled = false;
    const finish = (result: BootTimes | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(`no prompt within ${BOOT_TIMEOUT_MS} ms; printed ${JSON.stringify(out.slice(-300))}`),
        ),
      BOOT_TIMEOUT_MS,
    );
    child.stdout?.setEncoding("latin1");
    child.stdout?.on("data", (chunk: string) => {
      out += chunk;
      const now = performance.now();
      if (readyMs < 0 && out.includes(GUEST_READY_LINE)) readyMs = now - start;
      if (readyMs >= 0 && promptIndex(out) >= 0) finish({ readyMs, promptMs: now - start });
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      err += chunk;
    });
    child.on("error", (e) => finish(e));
    child.on("exit", (code, signal) =>
      finish(new Error(`qemu-system-i386 exited (${code ?? signal}) before the prompt: ${err.trim()}`)),
    );
  });
}

// ------------------------------------------------------------------ 4. the whole system (child)

/** What the child process reports, as one JSON line. */
interface SystemFigures {
  error?: string;
  guestRamBytes?: number;
  rssBeforeBytes?: number;
  rssWithVmBytes?: number;
  rssAfterJobsBytes?: number;
  hwmBytes?: number;
  /** bootSystem called to the guest's shell answering (snapshot restore in the VM's worker). */
  upMs?: number;
  fromSnapshot?: boolean;
  firstJobMs?: number;
  jobs?: number;
  failedJobs?: number;
  /** Host-measured loops: the jobs, and the guest tool with no job. */
  jobsHostMs?: number;
  baselineHostMs?: number;
  /** The same loops timed by the guest's own clock (/proc/uptime, 10 ms steps). */
  jobsGuestMs?: number;
  baselineGuestMs?: number;
  doorbells?: number;
  kicks?: number;
}

function vmHwmBytes(): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** The guest's serial console as text, with waits that resolve the moment the text arrives. */
class ConsoleText {
  text = "";
  private waiters: { re: RegExp; from: number; resolve: (m: RegExpExecArray) => void }[] = [];

  push(bytes: Uint8Array): void {
    this.text += Buffer.from(bytes).toString("latin1");
    this.waiters = this.waiters.filter((w) => {
      const m = w.re.exec(this.text.slice(w.from));
      if (m !== null) w.resolve(m);
      return m === null;
    });
  }

  /** Wait for `re` in what arrives from now on. */
  wait(re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const from = this.text.length;
    return new Promise((resolve, reject) => {
      const tail = (): string => JSON.stringify(this.text.slice(-160));
      const why = (): Error => new Error(`no ${re} within ${timeoutMs} ms; the console ends with ${tail()}`);
      const timer = setTimeout(() => reject(why()), timeoutMs);
      const done = (m: RegExpExecArray): void => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push({ re, from, resolve: done });
    });
  }
}

/**
 * A loop of `count` runs of `command` in the guest shell, timed on the host (from typing the line
 * to its result line) and by the guest's own clock. Busybox's date has no %N, so the guest reads
 * /proc/uptime (centiseconds; the snapshot's uptime is well past 1 s, so the digits without the
 * dot never start with a 0 that ash would read as octal). The result line is built so that the
 * shell's echo of the typed line cannot match it. Returns host ms, guest ms and the runs that
 * exited non-zero.
 */
async function guestLoop(
  send: (line: string) => void,
  con: ConsoleText,
  command: string,
  count: number,
): Promise<{ hostMs: number; guestMs: number; failed: number }> {
  const line =
    `read a b </proc/uptime; f=0; i=0; while [ $i -lt ${count} ]; do ${command} || f=$((f+1)); i=$((i+1)); done; ` +
    `read c d </proc/uptime; echo "cv-""loop f=$f cs=$(( \${c%.*}\${c#*.} - \${a%.*}\${a#*.} ))"`;
  // A job takes 0.1-0.2 s on an idle machine: this is generous, yet a lost job is seen in a minute.
  const answer = con.wait(/cv-loop f=(\d+) cs=(-?\d+)/, 20_000 + count * 1000);
  const start = performance.now();
  send(`${line}\n`);
  const m = await answer.catch((e: unknown) => {
    throw new Error(`the loop of ${count} x "${command}" did not finish: ${errorText(e)}`);
  });
  const hostMs = performance.now() - start;
  return { hostMs, guestMs: Number(m[2]) * 10, failed: Number(m[1]) };
}

/**
 * The child's figures so far: written out as they are when something fails, so that a failure
 * in the jobs still reports the boot and memory figures.
 */
const childFigures: SystemFigures = {};
const childEvents: string[] = [];

function reportChild(error?: unknown): void {
  if (error !== undefined && childFigures.error === undefined) {
    const events = childEvents.length > 0 ? `; events: ${childEvents.slice(-5).join(" / ")}` : "";
    childFigures.error = `${errorText(error)}${events}`;
  }
  // The platform's workers may still run: exit once the line is out, without waiting for them.
  process.stdout.write(`${JSON.stringify(childFigures)}\n`, () => process.exit(0));
}

async function systemChild(): Promise<void> {
  const figures = childFigures;
  const events = childEvents;
  const { bootSystem } = await import("../src/system/boot.js");
  const { wasmedgeRuntime } = await import("../src/wasmedge/runtime-pd.js");
  const { vmmConfig, vmmRuntime } = await import("../src/vmm/vmm-pd.js");
  type Runtime = import("../src/wasmedge/runtime-pd.js").RuntimePD | import("../src/vmm/vmm-pd.js").VmmPD;
  // The modules (Binaryen among them) are loaded before the first figure: they are not the VM's.
  figures.rssBeforeBytes = process.memoryUsage().rss;
  const start = performance.now();
  const sys = await bootSystem<Runtime>(SYSTEM_FILE, {
    runtimes: [wasmedgeRuntime, vmmRuntime],
    cores: 2,
    onEvent: (pd, msg) => events.push(`[${pd}] ${msg}`),
  });
  try {
    const vmm = sys.runtimes.find((r): r is import("../src/vmm/vmm-pd.js").VmmPD => "vcpuTcb" in r);
    if (vmm === undefined) throw new Error(`${SYSTEM_FILE} has no VM`);
    const pd = sys.description.allProtectionDomains.find((p) => p.name === vmm.pd);
    if (pd !== undefined) figures.guestRamBytes = vmmConfig(sys.description, pd).memoryBytes;
    const con = new ConsoleText();
    vmm.onConsole((bytes) => con.push(bytes));
    const send = (line: string): void => vmm.sendConsole(new TextEncoder().encode(line));
    // The worker makes the snapshot first if there is none (a cold boot): allow for it.
    for (const t0 = performance.now(); vmm.stats.lastReady === null; await sleep(10))
      if (performance.now() - t0 > BOOT_TIMEOUT_MS) throw new Error("the VM did not report ready");
    const probe = con.wait(new RegExp(PROBE_ANSWER), 60_000);
    send(PROBE);
    await probe;
    figures.upMs = performance.now() - start;
    figures.fromSnapshot = vmm.stats.lastReady?.fromSnapshot;
    figures.rssWithVmBytes = process.memoryUsage().rss;

    // The first job: the runtime PD compiles hello.wasm (later jobs find it in its cache). Its
    // output proves the round trip is real, not just a loop that ran.
    const first = con.wait(/cv-rc=(\d+)/, 60_000);
    const t0 = performance.now();
    send(`wasmedge-run /root/wasm/hello.wasm one; echo "cv-""rc=$?"\n`);
    const rc = await first;
    figures.firstJobMs = performance.now() - t0;
    if (rc[1] !== "0" || !/hello, world\r?\narg 1: one/.test(con.text))
      throw new Error(
        `the first job failed (exit ${rc[1]}); console: ${JSON.stringify(con.text.slice(-400))}`,
      );

    const jobs = await guestLoop(send, con, "wasmedge-run /root/wasm/hello.wasm >/dev/null", JOBS);
    // The same process without a job: wasmedge-run with no arguments prints its usage and exits 2
    // before touching the device, so the command is negated to count as a success.
    const baseline = await guestLoop(send, con, "! wasmedge-run 2>/dev/null", JOBS);
    Object.assign(figures, {
      jobs: JOBS,
      failedJobs: jobs.failed,
      jobsHostMs: jobs.hostMs,
      jobsGuestMs: jobs.guestMs,
      baselineHostMs: baseline.hostMs,
      baselineGuestMs: baseline.guestMs,
      rssAfterJobsBytes: process.memoryUsage().rss,
      hwmBytes: vmHwmBytes(),
      doorbells: vmm.stats.doorbells,
      kicks: vmm.stats.kicks,
    } satisfies SystemFigures);
  } finally {
    await sys.stop();
  }
}

function isFigures(value: unknown): value is SystemFigures {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Run systemChild in a fresh node process and read its JSON line. */
function runSystemChild(): SystemFigures {
  const args = [join(ROOT, "dist/bench/vm.js"), "--system-child", ...(quick ? ["--quick"] : [])];
  const r = spawnSync(process.execPath, args, {
    encoding: "utf8",
    timeout: BOOT_TIMEOUT_MS + 120_000 + JOBS * 20_000,
    maxBuffer: 64 * MIB,
  });
  const line = r.stdout
    ?.split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  if (line !== undefined) {
    const parsed: unknown = JSON.parse(line);
    if (isFigures(parsed)) return parsed;
  }
  const why = r.error?.message ?? `exit ${r.status ?? r.signal}`;
  const lines = (r.stderr ?? "").split("\n").filter((l) => l.trim().length > 0);
  const at = lines.findIndex((l) => /^\w*Error\b/.test(l));
  const said = at >= 0 ? lines.slice(at, at + 3) : lines.slice(-3);
  return { error: `the system's process failed (${why}): ${said.map((l) => l.trim()).join(" ")}` };
}

function printSystem(f: SystemFigures): void {
  console.log(`\nthe whole system: ${SYSTEM_FILE} (bootSystem, 2 cores; in a child process)`);
  const why = f.error ?? "no figure (the system's process reported none)";
  const upRow = "bootSystem to the guest answering a command";
  if (f.upMs === undefined) notRun(upRow, why);
  else infoRow(upRow, `${fmtMs(f.upMs)}  (${f.fromSnapshot ? "from the snapshot" : "cold"})`);
  const jobRow = `channel round trip per job (${JOBS} x wasmedge-run hello.wasm)`;
  if (f.jobsHostMs === undefined || f.baselineHostMs === undefined || f.jobs === undefined) {
    if (f.firstJobMs !== undefined)
      infoRow("first job (the runtime PD compiles hello.wasm)", fmtMs(f.firstJobMs));
    notRun(
      jobRow,
      f.upMs === undefined ? "the system did not come up (the reason is on the row above)" : why,
    );
  } else {
    const jobs = f.jobs;
    const guest = (ms: number | undefined): string =>
      ms === undefined || !Number.isFinite(ms) ? "guest clock: n/a" : `guest clock ${fmtMs(ms / jobs)}`;
    const perJob = f.jobsHostMs / jobs;
    const perBase = f.baselineHostMs / jobs;
    infoRow("first job (the runtime PD compiles hello.wasm)", fmtMs(f.firstJobMs ?? Number.NaN));
    infoRow(jobRow, `${fmtMs(perJob)}  (${guest(f.jobsGuestMs)})`);
    infoRow(
      "  the guest tool alone, no job (wasmedge-run, usage)",
      `${fmtMs(perBase)}  (${guest(f.baselineGuestMs)})`,
    );
    infoRow("  channel, VMM, ring and WasmEdge PD: the difference", fmtMs(perJob - perBase));
    console.log(
      `  jobs: ${jobs} run, ${f.failedJobs} failed; doorbells ${f.doorbells}, kicks ${f.kicks} (over the whole run)`,
    );
  }
  if (f.guestRamBytes !== undefined) infoRow("guest RAM (capvisor:ram)", fmtMiB(f.guestRamBytes));
  const memRow = "host RSS growth with the VM running";
  if (f.rssBeforeBytes === undefined || f.rssWithVmBytes === undefined) {
    notRun(
      memRow,
      f.upMs === undefined ? "the system did not come up (the reason is on the first row)" : why,
    );
    return;
  }
  infoRow(
    memRow,
    `${fmtMiB(f.rssWithVmBytes - f.rssBeforeBytes)}  (RSS ${fmtMiB(f.rssBeforeBytes)} before bootSystem, ${fmtMiB(f.rssWithVmBytes)} with the VM up)`,
  );
  if (f.rssAfterJobsBytes !== undefined)
    infoRow(
      "  after the jobs / peak (VmHWM)",
      `${fmtMiB(f.rssAfterJobsBytes)} / ${f.hwmBytes === undefined ? "n/a" : fmtMiB(f.hwmBytes)}`,
    );
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  printMachine("bench:vm: Linux VMs under capvisor's v86 backend, against QEMU TCG");
  const imageProblem = runScript("setup-vm.sh") ?? runScript("build-guest.sh");
  const qemuProblem = runScript("setup-vm.sh", ["--bench"]);
  let image: GuestImage | null = null;
  let imageWhy = imageProblem ?? "";
  if (imageProblem === null) {
    try {
      image = loadGuestImage();
    } catch (e) {
      imageWhy = errorText(e);
    }
  }
  if (image !== null) {
    const json: unknown = JSON.parse(readFileSync(join(image.dir ?? "", "image.json"), "utf8"));
    const kernel =
      typeof json === "object" && json !== null && "kernelVersion" in json ? String(json.kernelVersion) : "?";
    console.log(
      `guest: Linux ${kernel}, initrd ${fmtMiB(statSync(image.initrd).size)}, cmdline "${image.cmdline}"; ` +
        `v86 RAM ${fmtMiB(DEFAULT_GUEST_MEMORY)}, QEMU RAM ${QEMU_RAM_MIB} MiB`,
    );
  }
  console.log(`runs: ${BOOTS} boot(s) of each kind, ${RESTORES} snapshot start(s), ${JOBS} jobs per loop\n`);

  console.log("v86 (capvisor's VCPU backend, in this process):");
  const coldRow = "v86 cold boot to the shell prompt (no snapshot)";
  let coldMs = Number.NaN;
  if (image === null) {
    notRun(coldRow, imageWhy);
  } else {
    try {
      const boots: (BootTimes & { createMs: number })[] = [];
      for (let i = 0; i < BOOTS; i++) boots.push(await v86ColdBoot(image));
      infoRow("first v86 machine of a process (compiles v86's Wasm core)", fmtMs(boots[0]!.createMs));
      timeRow("v86 cold boot to the ready line", boots.map(pick("readyMs")));
      coldMs = timeRow(coldRow, boots.map(pick("promptMs")));
    } catch (e) {
      notRun(coldRow, errorText(e));
    }
  }

  const snapRow = "v86 snapshot start (restore, a command answered)";
  let snapMs = Number.NaN;
  if (image === null) {
    notRun(snapRow, imageWhy);
  } else {
    try {
      // Made once (a cold boot, not timed) when the image has no snapshot yet; the VMM uses the
      // same file (same image, v86 version and RAM size).
      const snap = await ensureSnapshot(image, { memoryBytes: DEFAULT_GUEST_MEMORY });
      const starts: SnapshotStart[] = [];
      for (let i = 0; i < RESTORES; i++) starts.push(await v86SnapshotStart(image));
      timeRow("  of which bootFromSnapshot (read, inflate, restore)", starts.map(pick("restoreMs")));
      snapMs = timeRow(snapRow, starts.map(pick("answeredMs")));
      infoRow("snapshot file", `${fmtMiB(statSync(snap.path).size)}  (${snap.path})`);
    } catch (e) {
      notRun(snapRow, errorText(e));
    }
  }

  console.log(
    `\nQEMU TCG (qemu-system-i386 ${QEMU_FLAGS} -kernel vmlinuz -initrd initrd.img -append <cmdline>):`,
  );
  const qemuRow = "QEMU TCG boot to the shell prompt";
  let qemuMs = Number.NaN;
  if (image === null) notRun(qemuRow, imageWhy);
  else if (qemuProblem !== null) notRun(qemuRow, `scripts/setup-vm.sh --bench: ${qemuProblem}`);
  else if (!existsSync("/usr/bin/qemu-system-i386")) notRun(qemuRow, "qemu-system-i386 is not installed");
  else {
    try {
      const boots: BootTimes[] = [];
      for (let i = 0; i < BOOTS; i++) boots.push(await qemuBoot(image));
      timeRow("QEMU TCG boot to the ready line", boots.map(pick("readyMs")));
      qemuMs = timeRow(qemuRow, boots.map(pick("promptMs")));
    } catch (e) {
      notRun(qemuRow, errorText(e));
    }
  }

  printSystem(image === null ? { error: imageWhy } : runSystemChild());

  console.log("\ngoals:");
  goal(
    "snapshot start under 1 s",
    Number.isNaN(snapMs) ? null : snapMs < 1000,
    Number.isNaN(snapMs) ? "not measured" : `${fmtMs(snapMs)} (${(snapMs / 1000).toFixed(2)}x of 1 s)`,
  );
  const ratio = coldMs / qemuMs;
  goal(
    "cold boot within 3x of QEMU TCG",
    Number.isNaN(ratio) ? null : ratio <= 3,
    Number.isNaN(ratio)
      ? "not measured"
      : `${ratio.toFixed(2)}x (v86 ${fmtMs(coldMs)}, QEMU ${fmtMs(qemuMs)})`,
  );
}

if (process.argv.includes("--system-child")) {
  // A failure inside the platform (a PD's thread, a worker) surfaces as an uncaught exception.
  process.on("uncaughtException", (e) => reportChild(e));
  process.on("unhandledRejection", (e) => reportChild(e));
  systemChild().then(
    () => reportChild(),
    (e: unknown) => reportChild(e),
  );
} else {
  await main();
}
