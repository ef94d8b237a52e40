/**
 * `capvisor run`, `validate` and `parse` as a user runs them: C applications built with clang-16
 * and wasi-libc, run by the real command; exact output, WasmEdge's messages and exit codes.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { cacheDir, ModuleCache, sha256 } from "../../src/wasmedge/cache.js";
import {
  parseCommand,
  parseDir,
  parseRunArgs,
  runCommand,
  UsageError,
  validateCommand,
} from "../../src/wasmedge/cli.js";
import { parseWasm, WasmParseError } from "../../src/wasmedge/parse.js";
import { formatFloat, formatValue, parseArg } from "../../src/wasmedge/report.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = join(ROOT, "dist/src/cli/main.js");
const BUILD = join(ROOT, "build/wasmedge-cli");
const CACHE = mkdtempSync(join(tmpdir(), "capvisor-cache-"));

const SOURCES: Record<string, { c: string; reactor?: boolean }> = {
  hello: {
    c: `#include <stdio.h>
int main(int argc, char **argv) {
  printf("hello from wasm\\n");
  for (int i = 0; i < argc; i++) printf("argv[%d]=%s\\n", i, argv[i]);
  return 0;
}`,
  },
  exit3: {
    c: `#include <stdio.h>
int main(void) { printf("leaving with 3\\n"); fprintf(stderr, "to stderr\\n"); return 3; }`,
  },
  spin: { c: "int main(void) { volatile unsigned x = 0; for (;;) x++; }" },
  trap: {
    c: `#include <stdio.h>\nint main(void) { printf("before\\n"); fflush(stdout); __builtin_trap(); }`,
  },
  reactor: {
    reactor: true,
    c: `#include <stdint.h>
static int32_t base;
__attribute__((constructor)) static void init(void) { base = 1000; }
__attribute__((export_name("add"))) int32_t add(int32_t a, int32_t b) { return a + b; }
__attribute__((export_name("add_base"))) int32_t add_base(int32_t a) { return a + base; }
__attribute__((export_name("wide"))) int64_t wide(int64_t a) { return a * 3; }
__attribute__((export_name("half"))) double half(double x) { return x / 2; }
__attribute__((export_name("third"))) float third(float x) { return x / 3; }`,
  },
};

/** A module that is well formed but invalid: `() -> i32` with an empty body. */
const INVALID = Uint8Array.from([
  0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7f, 3, 2, 1, 0, 0x0a, 4, 1, 2, 0, 0x0b,
]);

function app(name: string): string {
  return join(BUILD, `${name}.wasm`);
}

before(() => {
  mkdirSync(BUILD, { recursive: true });
  for (const [name, { c, reactor }] of Object.entries(SOURCES)) {
    const src = join(BUILD, `${name}.c`);
    // Rebuild only what changed: clang costs ~0.1 s per file.
    if (existsSync(app(name)) && existsSync(src) && readFileSync(src, "utf8") === c) continue;
    writeFileSync(src, c);
    // No --strip-debug: it also drops the name section, which `parse` shows next to each function.
    const flags = ["--target=wasm32-wasi", "-O2", "-o", app(name), src];
    if (reactor) flags.unshift("-mexec-model=reactor");
    // Under npm, PATH starts with node_modules/.bin, which holds binaryen's wasm-opt; clang runs
    // any wasm-opt it finds after linking at -O2, and wasm-opt drops the name section. Build the
    // same way whoever runs the tests: without it.
    const PATH = (process.env.PATH ?? "")
      .split(":")
      .filter((d) => !d.endsWith("node_modules/.bin"))
      .join(":");
    const r = spawnSync("clang-16", flags, { encoding: "utf8", env: { ...process.env, PATH } });
    assert.equal(r.status, 0, `clang-16 ${name}: ${r.stderr}`);
  }
  writeFileSync(app("invalid"), INVALID);
  writeFileSync(app("notwasm"), "#!/bin/sh\necho this is not wasm\n");
});

after(() => rmSync(CACHE, { recursive: true, force: true }));

function capvisor(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [MAIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, CAPVISOR_CACHE_DIR: CACHE, ...env },
    timeout: 20_000,
  });
}

/**
 * The same commands in this process (what main.ts calls), for the cases whose process wiring is
 * already covered by a spawned run: a process start costs about 0.5 s (Binaryen's load).
 */
async function inProcess(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io = {
    stdout: (s: string | Uint8Array) => {
      stdout += typeof s === "string" ? s : Buffer.from(s).toString("utf8");
    },
    stderr: (s: string) => {
      stderr += s;
    },
  };
  const [cmd, ...rest] = args;
  process.env.CAPVISOR_CACHE_DIR = CACHE;
  const status =
    cmd === "run"
      ? await runCommand(rest, io)
      : cmd === "validate"
        ? validateCommand(rest, io)
        : parseCommand(rest, io);
  return { status, stdout, stderr };
}

/** WasmEdge's spdlog line: `[date time.ms] [level] message`. */
const LOG = (level: string, msg: string): RegExp =>
  new RegExp(`^\\[\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] \\[${level}\\] ${msg}$`, "m");

describe("parse and validate", () => {
  test("parse lists a module's sections on stdout and exits 0", () => {
    const r = capvisor(["parse", app("reactor")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^reactor\.wasm: {2}file format wasm 0x1\n\nSection Details:\n/);
    assert.match(r.stdout, /^ - type\[\d+\] \(i32, i32\) -> i32$/m);
    assert.match(r.stdout, /^ - type\[\d+\] \(f64\) -> f64$/m);
    assert.match(r.stdout, /^ - func\[\d+\] <add> -> "add"$/m);
    assert.match(r.stdout, /^ - memory\[0\] -> "memory"$/m);
    assert.equal(r.stderr, "");
  });

  test("parse reports a file that is not Wasm: what, where, exit 1", () => {
    const r = capvisor(["parse", app("notwasm")]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, LOG("error", "loading failed: magic header not detected, Code: 0x103"));
    assert.match(r.stderr, LOG("error", " {4}Bytecode offset: 0x00000000"));
    assert.match(r.stderr, LOG("error", ` {4}File name: "${app("notwasm")}"`));
    assert.match(r.stderr, LOG("error", "Failed to parse WASM module\\."));
  });

  test("parse reports a truncated module with the offset where it ends", () => {
    const bytes = readFileSync(app("hello"));
    const cut = join(BUILD, "truncated.wasm");
    writeFileSync(cut, bytes.subarray(0, 200));
    const r = capvisor(["parse", cut]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /loading failed: (length out of bounds, Code: 0x107|unexpected end, Code: 0x102)/);
    const at = /Bytecode offset: 0x([0-9a-f]{8})/.exec(r.stderr);
    assert.ok(at && Number.parseInt(at[1]!, 16) <= 200, r.stderr);
  });

  test("parse does not validate; validate does, naming what and where", () => {
    const p = capvisor(["parse", app("invalid")]);
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stdout, /^ - type\[0\] \(\) -> i32$/m);
    const v = capvisor(["validate", app("invalid")]);
    assert.equal(v.status, 1);
    assert.match(v.stderr, LOG("error", "validation failed: type mismatch, Code: 0x202"));
    assert.match(v.stderr, /expected 1 elements on the stack for fallthru, found 0/);
    assert.match(v.stderr, LOG("error", " {4}In function: #0"));
    assert.match(v.stderr, LOG("error", " {4}Bytecode offset: 0x000000(1[0-9a-f])"));
    assert.match(v.stderr, LOG("error", " {4}At AST node: code segment"));
  });

  test("validate accepts a valid module, exit 0", () => {
    const r = capvisor(["validate", app("hello")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, LOG("info", "Validation succeeded\\."));
  });

  test("a missing file is an invalid path for every command, exit 1", async () => {
    const spawned = capvisor(["run", join(BUILD, "missing.wasm")]);
    assert.equal(spawned.status, 1);
    assert.match(spawned.stderr, LOG("error", "loading failed: invalid path, Code: 0x100"));
    for (const cmd of [["validate"], ["parse"], ["run", "--reactor"]]) {
      const r = await inProcess([...cmd, join(BUILD, "missing.wasm"), ...(cmd[1] ? ["f"] : [])]);
      assert.equal(r.status, 1, cmd.join(" "));
      assert.match(r.stderr, LOG("error", "loading failed: invalid path, Code: 0x100"));
      assert.match(r.stderr, LOG("error", ` {4}File name: "${join(BUILD, "missing.wasm")}"`));
    }
  });

  test("run refuses a module that is not Wasm or not valid, before running anything", () => {
    const a = capvisor(["run", app("notwasm")]);
    assert.equal(a.status, 1);
    assert.match(a.stderr, /loading failed: magic header not detected/);
    const b = capvisor(["run", app("invalid")]);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /validation failed: type mismatch/);
  });

  test("the parser rejects malformed binaries with WasmEdge's codes and exact offsets", () => {
    const bad = (bytes: number[], kind: string, offset: number): void => {
      assert.throws(
        () => parseWasm(Uint8Array.from(bytes)),
        (e: unknown) => e instanceof WasmParseError && e.kind === kind && e.offset === offset,
        `${kind} @${offset}`,
      );
    };
    const head = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
    bad([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0], "MalformedVersion", 4);
    bad([...head, 14, 0], "MalformedSection", 8);
    bad([...head, 1, 9, 1], "LengthOutOfBounds", 10);
    bad([...head, 1, 5, 1, 0x60, 0, 0, 0], "SectionSizeMismatch", 14);
    bad([...head, 1, 4, 1, 0x60, 1, 0x55], "MalformedValType", 13);
    bad([...head, 3, 2, 1, 0], "IncompatibleFuncCode", 12);
    bad([...head, 5, 3, 1, 0, 1, 1, 4, 1, 0x70, 0, 0], "JunkSection", 13);
    bad([...head, 7, 5, 1, 1, 0x61, 9, 0], "MalformedExportKind", 13);
    bad([...head, 0, 3, 2, 0xff, 0xfe], "MalformedUTF8", 11);
    bad([...head, 8, 6, 0x80, 0x80, 0x80, 0x80, 0x80, 0], "IntegerTooLong", 10);
  });
});

describe("run", () => {
  test("a command module: stdout, argv (argv[0] is the file name), exit 0", () => {
    const r = capvisor(["run", app("hello"), "one", "--two"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "hello from wasm\nargv[0]=hello.wasm\nargv[1]=one\nargv[2]=--two\n");
    assert.equal(r.stderr, "");
  });

  test("the guest's exit code is the command's; its stderr goes to stderr", () => {
    const r = capvisor(["run", app("exit3")]);
    assert.equal(r.status, 3);
    assert.equal(r.stdout, "leaving with 3\n");
    assert.equal(r.stderr, "to stderr\n");
  });

  test("a trap is reported with its kind and exits 134 (128 + SIGABRT, as WasmEdge)", () => {
    const r = capvisor(["run", app("trap")]);
    assert.equal(r.status, 134);
    assert.equal(r.stdout, "before\n");
    assert.match(r.stderr, LOG("error", "execution failed: unreachable, Code: 0x40a"));
    assert.match(r.stderr, LOG("error", ' {4}When executing function name: "_start"'));
  });

  test("reactor mode: _initialize first, typed arguments, results one per line", () => {
    const run = (...a: string[]) => capvisor(["run", "--reactor", app("reactor"), ...a]);
    const add = run("add", "2", "40");
    assert.equal(add.status, 0, add.stderr);
    assert.equal(add.stdout, "42\n");
    // i32 results print unsigned, as WasmEdge prints them.
    assert.equal(run("add", "-10", "1").stdout, "4294967287\n");
    // _initialize ran the constructor that sets base = 1000.
    assert.equal(run("add_base", "1").stdout, "1001\n");
    assert.equal(
      run("wide", "3074457345618258602").stdout,
      `${(3074457345618258602n * 3n) & ((1n << 64n) - 1n)}\n`,
    );
    assert.equal(run("half", "3").stdout, "1.5\n");
    assert.equal(run("half", "1e17").stdout, "5e+16\n");
    assert.equal(run("third", "1").stdout, "0.33333334\n");
  });

  test("reactor mode errors: no function, unknown function, wrong arity", async () => {
    const none = capvisor(["run", "--reactor", app("reactor")]);
    assert.equal(none.status, 1);
    assert.equal(none.stderr, "A function name is required when reactor mode is enabled.\n");
    const unknown = await inProcess(["run", "--reactor", app("reactor"), "sub", "1"]);
    assert.equal(unknown.status, 134);
    assert.match(
      unknown.stderr,
      LOG("error", "wasmedge runtime failed: wasm function not found, Code: 0x005"),
    );
    assert.match(unknown.stderr, LOG("error", ' {4}When executing function name: "sub"'));
    const arity = await inProcess(["run", "--reactor", app("reactor"), "add", "1"]);
    assert.equal(arity.status, 134);
    assert.match(arity.stderr, LOG("error", "execution failed: function signature mismatch, Code: 0x403"));
  });

  test("--time-limit stops an infinite loop: interrupted, exit 134", () => {
    const t0 = Date.now();
    const r = capvisor(["run", "--time-limit", "200", app("spin")]);
    assert.equal(r.status, 134, r.stderr);
    assert.ok(Date.now() - t0 < 10_000);
    assert.match(r.stderr, LOG("error", "execution failed: execution interrupted, Code: 0x007"));
  });

  test("--gas-limit stops an infinite loop: cost limit exceeded, gas printed, exit 134", () => {
    const r = capvisor(["run", "--gas-limit", "50000", app("spin")]);
    assert.equal(r.status, 134, r.stderr);
    assert.match(r.stderr, LOG("error", "Cost exceeded limit\\. Force terminate the execution\\."));
    assert.match(r.stderr, LOG("error", "execution failed: cost limit exceeded, Code: 0x003"));
    const gas = /Gas costs: (\d+)/.exec(r.stderr);
    assert.ok(gas && Number(gas[1]) >= 50_000 && Number(gas[1]) <= 51_000, r.stderr);
  });

  test("statistics are printed when asked, and only then", async () => {
    const all = capvisor(["run", "--enable-all-statistics", app("hello")]);
    assert.equal(all.status, 0, all.stderr);
    assert.equal(all.stdout, "hello from wasm\nargv[0]=hello.wasm\n");
    const lines = all.stderr.split("\n").filter(Boolean);
    const expected = [
      "====================  Statistics  ====================",
      " Total execution time: \\d+ ns",
      " Wasm instructions execution time: \\d+ ns",
      " Host functions execution time: \\d+ ns",
      " Executed wasm instructions count: [1-9]\\d*",
      " Gas costs: [1-9]\\d*",
      " Instructions per second: \\d+",
      "=======================   End   ======================",
    ];
    assert.equal(lines.length, expected.length, all.stderr);
    expected.forEach((e, i) => {
      assert.match(lines[i]!, LOG("info", e));
    });
    const time = await inProcess(["run", "--enable-time-measuring", app("hello")]);
    assert.match(time.stderr, /Total execution time/);
    assert.doesNotMatch(time.stderr, /Gas costs|instructions count/);
    assert.equal((await inProcess(["run", app("hello")])).stderr, "");
  });

  test("bad options exit 1 with what is wrong", async () => {
    const a = capvisor(["run", "--time-limit", "soon", app("hello")]);
    assert.equal(a.status, 1);
    assert.match(a.stderr, /--time-limit needs an integer from 0 to \d+ \(got 'soon'\)/);
    const b = await inProcess(["run", "--frobnicate", app("hello")]);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /unknown option '--frobnicate'/);
    const c = await inProcess(["run"]);
    assert.equal(c.status, 1);
    assert.match(c.stderr, /no Wasm file given/);
  });
});

describe("compiled-module cache", () => {
  test("a metered run stores the instrumented module under the SHA-256 of the bytes; a bad cached file is rebuilt", () => {
    const dir = mkdtempSync(join(tmpdir(), "capvisor-cache-"));
    // Gas measuring needs the fuel checks, hence the instrumentation that the cache keeps.
    const run = (name: string) =>
      capvisor(["run", "--enable-gas-measuring", app(name)], { CAPVISOR_CACHE_DIR: dir });
    try {
      const hello = readFileSync(app("hello"));
      assert.equal(capvisor(["run", app("hello")], { CAPVISOR_CACHE_DIR: dir }).status, 0);
      assert.deepEqual(readdirSync(dir), [], "an unmetered run is not instrumented, so nothing is stored");
      const first = run("hello");
      assert.equal(first.status, 0, first.stderr);
      const file = join(dir, `${sha256(hello)}.i1.wasm`);
      assert.deepEqual(readdirSync(dir), [`${sha256(hello)}.i1.wasm`]);
      assert.ok(
        WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(file))).some(
          (e) => e.name === "capvisor_fuel",
        ),
      );
      assert.equal(run("hello").status, 0);
      // A cached file that is not instrumented is never trusted: rebuilt from the module.
      writeFileSync(file, readFileSync(app("hello")));
      const third = run("hello");
      assert.equal(third.status, 0, third.stderr);
      assert.match(third.stdout, /^hello from wasm\n/);
      assert.ok(
        WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(file))).some(
          (e) => e.name === "capvisor_fuel",
        ),
      );
      // Nor is a damaged one.
      writeFileSync(file, "garbage");
      const fourth = run("hello");
      assert.equal(fourth.status, 0, fourth.stderr);
      assert.ok(readFileSync(file).length > 1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("in one process: miss, then memory hit; a new cache on the same directory: disk hit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capvisor-cache-"));
    try {
      const bytes = readFileSync(app("reactor"));
      const c = new ModuleCache({ dir });
      const a = await c.prepare(bytes);
      assert.equal(a.hit, "miss");
      assert.ok(WebAssembly.Module.exports(a.prepared.module).some((e) => e.name === "capvisor_fuel"));
      assert.equal((await c.prepare(bytes)).hit, "memory");
      assert.equal((await new ModuleCache({ dir }).prepare(bytes)).hit, "disk");
      // A disk hit really is the stored file, not a fresh instrumentation: plant the reactor's
      // instrumented code under hello's key, and hello "becomes" the reactor.
      const hello = readFileSync(app("hello"));
      writeFileSync(
        join(dir, `${sha256(hello)}.i1.wasm`),
        readFileSync(join(dir, `${sha256(bytes)}.i1.wasm`)),
      );
      const planted = await new ModuleCache({ dir }).prepare(hello);
      assert.equal(planted.hit, "disk");
      assert.ok(WebAssembly.Module.exports(planted.prepared.module).some((e) => e.name === "add"));
      rmSync(join(dir, `${sha256(hello)}.i1.wasm`));
      assert.equal((await new ModuleCache({ dir: null }).prepare(bytes)).hit, "miss");
      const plain = await c.prepare(bytes, { instrument: false });
      assert.equal(plain.hit, "miss");
      assert.equal(plain.prepared.instrumented, false);
      assert.ok(!WebAssembly.Module.exports(plain.prepared.module).some((e) => e.name === "capvisor_fuel"));
      assert.equal(readdirSync(dir).length, 1, "only instrumented modules go to disk");
      const limited = await c.prepare(bytes, { transform: { name: "m5", apply: (b) => b } });
      assert.equal(limited.hit, "miss", "a transform is part of the key");
      assert.ok(existsSync(join(dir, `${sha256(bytes)}.m5.i1.wasm`)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the cache directory: CAPVISOR_CACHE_DIR, else XDG_CACHE_HOME/capvisor, else ~/.cache/capvisor", () => {
    assert.equal(cacheDir({ CAPVISOR_CACHE_DIR: "/x", XDG_CACHE_HOME: "/y" }), "/x");
    assert.equal(cacheDir({ XDG_CACHE_HOME: "/y" }), "/y/capvisor");
    assert.match(cacheDir({}), /\/\.cache\/capvisor$/);
  });
});

describe("command line details", () => {
  test("--dir takes guest:host, host alone (same path in the guest), and :readonly", () => {
    assert.deepEqual(parseDir("/data:/srv/data"), { guest: "/data", host: "/srv/data" });
    assert.deepEqual(parseDir("."), { guest: ".", host: "." });
    assert.deepEqual(parseDir(":/srv"), { guest: "/", host: "/srv" });
    assert.deepEqual(parseDir("/d:/srv:readonly"), { guest: "/d", host: "/srv", readOnly: true });
    assert.throws(() => parseDir("/d:"), UsageError);
  });

  test("options stop at the module: what follows belongs to the guest", () => {
    const o = parseRunArgs([
      "--dir",
      ".",
      "--env=A=1",
      "--env",
      "B",
      "--gas-limit=9",
      "app.wasm",
      "--reactor",
      "x",
    ]);
    assert.equal(o.file, "app.wasm");
    assert.deepEqual(o.args, ["--reactor", "x"]);
    assert.equal(o.reactor, false);
    assert.deepEqual(o.env, [
      ["A", "1"],
      ["B", ""],
    ]);
    assert.equal(o.gasLimit, 9);
    assert.equal(o.gas, true, "a gas limit measures gas, as in WasmEdge");
    assert.deepEqual(parseRunArgs(["--", "--odd.wasm"]).file, "--odd.wasm");
    assert.throws(() => parseRunArgs(["--memory-page-limit", "65537", "a.wasm"]), UsageError);
  });

  test("values print as WasmEdge prints them ({fmt}'s shortest form)", () => {
    assert.equal(formatValue("i32", -1), "4294967295");
    assert.equal(formatValue("i64", -1n), "18446744073709551615");
    assert.equal(formatFloat(2, false), "2");
    assert.equal(formatFloat(0.1, false), "0.1");
    assert.equal(formatFloat(1e16, false), "1e+16");
    assert.equal(formatFloat(123456789012345.6, false), "123456789012345.6");
    assert.equal(formatFloat(0.0001, false), "0.0001");
    assert.equal(formatFloat(0.00001, false), "1e-05");
    assert.equal(formatFloat(Math.fround(0.1), true), "0.1");
    assert.equal(formatFloat(Number.NaN, false), "nan");
    assert.equal(formatFloat(-Infinity, true), "-inf");
  });

  test("arguments are read by the parameter's type", () => {
    assert.equal(parseArg("i32", "4294967295"), -1);
    assert.equal(parseArg("i32", "-7"), -7);
    assert.equal(parseArg("i64", "-1"), -1n);
    assert.equal(parseArg("f32", "0.1"), Math.fround(0.1));
    assert.equal(parseArg("f64", "2.5e3"), 2500);
    assert.equal(parseArg("i32", "abc"), undefined);
  });
});
