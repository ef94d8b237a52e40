/**
 * The WASI example applications (examples/wasi/, README "The WasmEdge-compatible runtime"), built
 * by scripts/build-wasi-examples.sh (a C hello with clang-16 and wasi-libc, an AssemblyScript
 * file reader with npm packages only) and run as a user runs them: `capvisor run` in a child
 * process. Exact stdout, stderr and exit codes, including files read through `--dir` and escape
 * attempts that the file sandbox must refuse with WasmEdge's EPERM.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = join(ROOT, "dist/src/cli/main.js");
const HELLO = join(ROOT, "build/examples/wasi/hello.wasm");
const CAT = join(ROOT, "build/examples/wasi/as-cat.wasm");
const TMP = mkdtempSync(join(tmpdir(), "capvisor-wasi-examples-"));
const DATA = join(TMP, "data");

/** WASI errno values the AS app prints (the WASI preview1 spec's numbering). */
const EPERM = 63;
const ENOENT = 44;
const ENOTCAPABLE = 76;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function capvisor(...args: string[]): Run {
  const r = spawnSync(process.execPath, [MAIN, "run", ...args], {
    encoding: "utf8",
    // A private cache: metered runs write instrumented modules there.
    env: { ...process.env, CAPVISOR_CACHE_DIR: join(TMP, "cache") },
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  const b = spawnSync("sh", [join(ROOT, "scripts/build-wasi-examples.sh")], { encoding: "utf8" });
  assert.equal(b.status, 0, `build-wasi-examples.sh failed:\n${b.stdout}\n${b.stderr}`);
  mkdirSync(join(DATA, "sub"), { recursive: true });
  writeFileSync(join(DATA, "a.txt"), "alpha\nbeta\n");
  writeFileSync(join(DATA, "sub", "b.txt"), "gamma");
  // Outside the preopen: what every escape attempt below aims at.
  writeFileSync(join(TMP, "secret.txt"), "top secret\n");
  symlinkSync("../secret.txt", join(DATA, "up-link"));
  symlinkSync(join(TMP, "secret.txt"), join(DATA, "abs-link"));
  symlinkSync("sub/b.txt", join(DATA, "in-link"));
});

after(() => rmSync(TMP, { recursive: true, force: true }));

test("C hello: prints hello, world and exits 0", () => {
  assert.deepEqual(capvisor(HELLO), { status: 0, stdout: "hello, world\n", stderr: "" });
});

test("C hello: arguments, --env, and the guest's exit code through proc_exit", () => {
  const r = capvisor("--env", "GREETING=bonjour", "--env=EXIT_CODE=7", HELLO, "one", "two words", "--three");
  assert.deepEqual(r, {
    status: 7,
    stdout: "bonjour\narg 1: one\narg 2: two words\narg 3: --three\n",
    stderr: "",
  });
});

test("C hello: statistics go to stderr after the run, stdout unchanged", () => {
  const r = capvisor("--enable-all-statistics", HELLO);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "hello, world\n");
  for (const line of [
    /\[info\] =+ {2}Statistics {2}=+\n/,
    /\[info\] {2}?Total execution time: \d+ ns\n/,
    /\[info\] {2}?Executed wasm instructions count: [1-9]\d* *\n/,
    /\[info\] {2}?Gas costs: [1-9]\d*\n/,
  ])
    assert.match(r.stderr, line);
});

test("AssemblyScript app: reads files beneath a --dir preopen", () => {
  const r = capvisor("--dir", `/data:${DATA}`, CAT, "/data/a.txt", "/data/sub/b.txt", "/data/in-link");
  assert.deepEqual(r, {
    status: 0,
    stdout:
      "alpha\nbeta\n-- /data/a.txt: 11 bytes, 2 lines\n" +
      "gamma-- /data/sub/b.txt: 5 bytes, 0 lines\n" +
      "gamma-- /data/in-link: 5 bytes, 0 lines\n",
    stderr: "",
  });
});

test("AssemblyScript app: a read-only preopen and the `--dir host` form read the same", () => {
  const ro = capvisor("--dir", `/ro:${DATA}:readonly`, CAT, "/ro/a.txt");
  assert.deepEqual(ro, { status: 0, stdout: "alpha\nbeta\n-- /ro/a.txt: 11 bytes, 2 lines\n", stderr: "" });
  const same = capvisor("--dir", DATA, CAT, `${DATA}/a.txt`);
  assert.deepEqual(same, {
    status: 0,
    stdout: `alpha\nbeta\n-- ${DATA}/a.txt: 11 bytes, 2 lines\n`,
    stderr: "",
  });
});

test("AssemblyScript app: `..`, symlinks out and paths outside every preopen cannot escape", () => {
  const r = capvisor(
    "--dir",
    `/data:${DATA}`,
    CAT,
    "/data/../secret.txt",
    "/data/sub/../../secret.txt",
    "/data/up-link",
    "/data/abs-link",
    "/data/missing.txt",
    `${TMP}/secret.txt`,
    "/data/a.txt",
  );
  assert.equal(r.status, 1);
  // The readable file is still read after the refusals: the app goes on and exits 1 at the end.
  assert.equal(r.stdout, "alpha\nbeta\n-- /data/a.txt: 11 bytes, 2 lines\n");
  assert.equal(
    r.stderr,
    [
      `as-cat: /data/../secret.txt: errno ${EPERM}`,
      `as-cat: /data/sub/../../secret.txt: errno ${EPERM}`,
      `as-cat: /data/up-link: errno ${EPERM}`,
      `as-cat: /data/abs-link: errno ${EPERM}`,
      `as-cat: /data/missing.txt: errno ${ENOENT}`,
      `as-cat: ${TMP}/secret.txt: errno ${ENOTCAPABLE}`,
      "",
    ].join("\n"),
  );
  assert.doesNotMatch(r.stdout, /top secret/);
});

test("AssemblyScript app: without a preopen nothing can be opened; without arguments, usage and 2", () => {
  assert.deepEqual(capvisor(CAT, "/data/a.txt"), {
    status: 1,
    stdout: "",
    stderr: `as-cat: /data/a.txt: errno ${ENOTCAPABLE}\n`,
  });
  assert.deepEqual(capvisor(CAT), { status: 2, stdout: "", stderr: "usage: as-cat /preopen/path...\n" });
});
