/**
 * What makes a cached start cheap must not change what a start does: the facts kept by a module's
 * hash (its parse, its validation, its exported functions) belong to those bytes and no others,
 * and the pooled application threads with their reused request channels carry nothing from one
 * application to the next, a cancelled one included.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { defaultCache, ModuleCache, sha256 } from "../../src/wasmedge/cache.js";
import { type CommandIO, runCommand } from "../../src/wasmedge/cli.js";
import { runWasi } from "../../src/wasmedge/runner.js";
import type { RunOptions } from "../../src/wasmedge/types.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BUILD = join(ROOT, "build/wasmedge-cached-start");
const WORK = mkdtempSync(join(tmpdir(), "capvisor-cached-start-"));

const SOURCES: Record<string, { c: string; reactor?: boolean }> = {
  echo: {
    c: `#include <stdio.h>
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) printf("%s%s", i > 1 ? " " : "", argv[i]);
  printf("\\n");
  return 0;
}`,
  },
  // More than one 64 KiB channel block of output in one write: the request crosses in chunks.
  big: {
    c: `#include <stdio.h>
#include <string.h>
static char buf[150000];
int main(void) {
  for (int i = 0; i < (int)sizeof buf; i++) buf[i] = 'a' + i % 26;
  fwrite(buf, 1, sizeof buf, stdout);
  fflush(stdout);
  fprintf(stderr, "done\\n");
  return 0;
}`,
  },
  spin: { c: "int main(void) { volatile unsigned x = 0; for (;;) x++; }" },
  reactor: {
    reactor: true,
    c: `#include <stdint.h>
__attribute__((export_name("add"))) int32_t add(int32_t a, int32_t b) { return a + b; }
__attribute__((export_name("wide"))) int64_t wide(int64_t a, double b) { return a + (int64_t)b; }`,
  },
};

/** Well formed but invalid: a `() -> i32` function with an empty body. */
const INVALID = Uint8Array.from([
  0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7f, 3, 2, 1, 0, 0x0a, 4, 1, 2, 0, 0x0b,
]);

const app = (name: string): string => join(BUILD, `${name}.wasm`);

before(() => {
  mkdirSync(BUILD, { recursive: true });
  for (const [name, { c, reactor }] of Object.entries(SOURCES)) {
    const src = join(BUILD, `${name}.c`);
    if (existsSync(app(name)) && existsSync(src) && readFileSync(src, "utf8") === c) continue;
    writeFileSync(src, c);
    const flags = ["--target=wasm32-wasi", "-O2", "-o", app(name), src];
    if (reactor) flags.unshift("-mexec-model=reactor");
    const r = spawnSync("clang-16", flags, { encoding: "utf8" });
    assert.equal(r.status, 0, `clang-16 ${name}: ${r.stderr}`);
  }
  // runCommand's cache reads its directory at first use; nothing unmetered is written there.
  process.env.CAPVISOR_CACHE_DIR = join(WORK, "cache");
});

after(() => rmSync(WORK, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: CommandIO = {
    stdout: (s) => {
      stdout += typeof s === "string" ? s : Buffer.from(s).toString("utf8");
    },
    stderr: (s) => {
      stderr += s;
    },
  };
  const status = await runCommand(args, io);
  return { status, stdout, stderr };
}

describe("facts kept by a module's hash", () => {
  test("a second start of the same bytes reuses them; new bytes under the same path are examined afresh", async () => {
    const file = join(WORK, "app.wasm");
    copyFileSync(app("echo"), file);
    const first = await run([file, "one", "two"]);
    assert.deepEqual(first, { status: 0, stdout: "one two\n", stderr: "" });
    const facts = defaultCache().facts(sha256(readFileSync(file)));
    assert.ok(facts.parsed, "the parse is kept");
    assert.equal(facts.valid, true, "the validation is kept");
    assert.ok(facts.exports?.has("_start"), "the export signatures are kept");
    const again = await run([file, "three"]);
    assert.deepEqual(again, { status: 0, stdout: "three\n", stderr: "" });

    // The same path, other bytes: an invalid module is refused as if never seen...
    writeFileSync(file, INVALID);
    const invalid = await run([file]);
    assert.equal(invalid.status, 1);
    assert.match(invalid.stderr, /validation failed/);
    assert.equal(invalid.stdout, "");
    assert.notEqual(defaultCache().facts(sha256(INVALID)).valid, true, "a failure is not kept");
    // ...and a reactor there has its own functions and types, not the command's.
    copyFileSync(app("reactor"), file);
    assert.deepEqual(await run(["--reactor", file, "add", "40", "2"]), {
      status: 0,
      stdout: "42\n",
      stderr: "",
    });
    assert.deepEqual(await run(["--reactor", file, "wide", "5", "2.5"]), {
      status: 0,
      stdout: "7\n",
      stderr: "",
    });
    const missing = await run(["--reactor", file, "main"]);
    assert.equal(missing.status, 134);
    assert.match(missing.stderr, /wasm function not found/);
  });

  test("prepare hands out the exported functions' signatures, read from the original bytes", async () => {
    const bytes = readFileSync(app("reactor"));
    const cache = new ModuleCache({ dir: null });
    const { prepared } = await cache.prepare(bytes, { instrument: false });
    assert.deepEqual(prepared.exports?.get("add"), { params: ["i32", "i32"], results: ["i32"] });
    assert.deepEqual(prepared.exports?.get("wide"), { params: ["i64", "f64"], results: ["i64"] });
    // The memory limit rewrites the bytes; the exports stay those of the module as given.
    const limited = await cache.prepare(bytes, {
      instrument: false,
      transform: { name: "same", apply: (b) => b },
    });
    assert.deepEqual(limited.prepared.exports, prepared.exports);
  });
});

describe("pooled application threads", () => {
  test("apps in a row on reused threads and channels: each sees only its own arguments and output", async () => {
    const cache = new ModuleCache({ dir: null });
    const echo = readFileSync(app("echo"));
    const big = readFileSync(app("big"));
    const spin = readFileSync(app("spin"));
    const prep = async (b: Uint8Array) => (await cache.prepare(b, { instrument: false })).prepared;
    const [pEcho, pBig, pSpin] = [await prep(echo), await prep(big), await prep(spin)];
    const start = async (
      bytes: Uint8Array,
      args: string[],
      extra: Partial<RunOptions & { signal: AbortSignal }> = {},
    ) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const r = await runWasi(bytes, {
        args: ["app.wasm", ...args],
        env: [],
        preopens: [],
        stdout: (b) => out.push(Buffer.from(b)),
        stderr: (b) => err.push(Buffer.from(b)),
        ...extra,
      });
      return { r, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
    };
    const expectedBig = Array.from({ length: 150000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
    for (let i = 0; i < 6; i++) {
      const e = await start(echo, [`run-${i}`], { prepared: pEcho });
      assert.equal(e.r.exitCode, 0);
      assert.equal(e.stdout, `run-${i}\n`);
      const b = await start(big, [], { prepared: pBig });
      assert.equal(b.r.exitCode, 0);
      assert.equal(b.stdout.length, 150000);
      assert.equal(b.stdout, expectedBig);
      assert.equal(b.stderr, "done\n");
    }
    // A runaway app, unmetered: only terminating its thread stops it. Later apps still run.
    const ac = new AbortController();
    const spinning = start(spin, [], { prepared: pSpin, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const cancelled = await spinning;
    assert.equal(cancelled.r.exitCode, 1);
    assert.equal(cancelled.stderr, "cancelled\n");
    // Several at once: each its own thread and channel, pooled or new.
    const many = await Promise.all(
      Array.from({ length: 4 }, (_, i) => start(echo, ["after", String(i)], { prepared: pEcho })),
    );
    many.forEach((m, i) => {
      assert.equal(m.r.exitCode, 0);
      assert.equal(m.stdout, `after ${i}\n`);
    });
  });
});
