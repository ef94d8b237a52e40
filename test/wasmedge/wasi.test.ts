/**
 * The WASI preview1 host, the file server and runWasi: a corpus of C programs
 * (test/wasmedge/corpus/*.c) built with clang-16 and wasi-libc, each printing results asserted
 * here exactly, plus escape attempts from the preopen that must fail and leave the host unchanged.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { FileServer } from "../../src/wasmedge/fileserver.js";
import { runWasi } from "../../src/wasmedge/runner.js";
import type { RunOptions, RunResult } from "../../src/wasmedge/types.js";
import { E, OFLAGS } from "../../src/wasmedge/wasi/constants.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SRC = join(ROOT, "test", "wasmedge", "corpus");
const OUT = join(ROOT, "build", "wasmedge-corpus");
const COMMANDS = ["args_env", "files", "escape", "clocks"] as const;

let tmp = "";

before(() => {
  fs.mkdirSync(OUT, { recursive: true });
  for (const name of [...COMMANDS, "reactor"]) {
    const src = join(SRC, `${name}.c`);
    const out = join(OUT, `${name}.wasm`);
    if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(src).mtimeMs) continue;
    const model = name === "reactor" ? ["-mexec-model=reactor"] : [];
    execFileSync("clang-16", ["--target=wasm32-wasi", "-O2", "-Wall", "-Werror", ...model, src, "-o", out]);
  }
  tmp = fs.mkdtempSync(join(os.tmpdir(), "capvisor-wasi-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A fresh host directory: `outside.txt` next to `sandbox/`, which holds files and hostile links. */
function fixture(): { dir: string; sandbox: string } {
  const dir = fs.mkdtempSync(join(tmp, "case-"));
  const sb = join(dir, "sandbox");
  fs.mkdirSync(join(sb, "sub"), { recursive: true });
  fs.writeFileSync(join(dir, "outside.txt"), "secret");
  fs.writeFileSync(join(sb, "inside.txt"), "inside");
  fs.symlinkSync(join(dir, "outside.txt"), join(sb, "link_out_abs"));
  fs.symlinkSync("../outside.txt", join(sb, "link_out_rel"));
  fs.symlinkSync("inside.txt", join(sb, "link_in"));
  fs.symlinkSync("..", join(sb, "link_dir_out"));
  fs.symlinkSync("..", join(sb, "sub", "link_up"));
  let prev = "inside.txt";
  for (let i = 1; i <= 8; i++) {
    fs.symlinkSync(prev, join(sb, `chain${i}`));
    prev = `chain${i}`;
  }
  fs.symlinkSync("loop_b", join(sb, "loop_a"));
  fs.symlinkSync("loop_a", join(sb, "loop_b"));
  return { dir, sandbox: sb };
}

async function run(
  name: string,
  extra: Partial<RunOptions> = {},
  sandbox?: string,
): Promise<RunResult & { out: string; err: string }> {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const r = await runWasi(fs.readFileSync(join(OUT, `${name}.wasm`)), {
    args: [name],
    env: [],
    preopens: sandbox ? [{ guest: "/sandbox", host: sandbox }] : [],
    stdout: (b) => out.push(b),
    stderr: (b) => err.push(b),
    ...extra,
  });
  return { ...r, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() };
}

test("args, environ, stdout/stderr and the exit code", async () => {
  const r = await run("args_env", {
    args: ["prog", "a", "b c", "7"],
    env: [
      ["FOO", "bar"],
      ["EMPTY", ""],
    ],
  });
  assert.equal(
    r.out,
    "argc=4\nargv[0]=prog\nargv[1]=a\nargv[2]=b c\nargv[3]=7\nenvc=2\nFOO=bar\nEMPTY=[]\nMISSING=(null)\n",
  );
  assert.equal(r.err, "to stderr\n");
  assert.equal(r.exitCode, 7);
  assert.equal(r.trap, undefined);
  assert.equal((await run("args_env", { args: ["p", "0"] })).exitCode, 0);
});

test("fd_* and path_* round trips and their errno values", async () => {
  const { sandbox } = fixture();
  const r = await run("files", {}, sandbox);
  assert.equal(r.err, "");
  assert.equal(
    r.out,
    [
      "open a.txt: ok",
      "write=11",
      "seek=6",
      "read=5 [world]",
      "tell=11",
      "end=6",
      "pwrite=5",
      "pread=5 [WORLD]",
      "pos after pread=6",
      "ftruncate: ok",
      "fstat: ok",
      "size=5 reg=1",
      "fsync: ok",
      "fdatasync: ok",
      "posix_fallocate: ok",
      "posix_fadvise: ok",
      "size after fallocate=100",
      "close: ok",
      "close again: -1 Bad file descriptor",
      "read closed: -1 Bad file descriptor",
      "log=[one\ntwo\n]",
      "open missing: -1 No such file or directory",
      "open excl: -1 File exists",
      "open through file: -1 Not a directory",
      "open dir O_DIRECTORY on file: -1 Not a directory",
      "mkdir d: ok",
      "mkdir again: -1 File exists",
      "open dir for write: -1 Is a directory",
      // wasi-libc turns the host's ENOTCAPABLE (no FD_WRITE right) into EBADF, as POSIX says.
      "write on read-only fd: -1 Bad file descriptor",
      "mkdir d/sub: ok",
      "listing: . .. f1 f2 sub",
      "rmdir nonempty: -1 Directory not empty",
      "unlink dir: -1 Is a directory",
      "rmdir file: -1 Not a directory",
      "rename: ok",
      "stat old name: -1 No such file or directory",
      "stat new name: ok",
      "link: ok",
      "nlink=2",
      "symlink: ok",
      "readlink=5 [sub/g]",
      "readlink on file: -1 Invalid argument",
      "lstat link=1",
      "stat follows=1",
      "utimensat: ok",
      "mtime=1234567890",
      "unlink: ok",
      "rmdir: ok",
      "fd_renumber: ok",
      "after renumber=[hello]",
      "old fd gone: -1 Bad file descriptor",
      "",
    ].join("\n"),
  );
  assert.equal(r.exitCode, 0);
  // The guest's writes really reached the host directory, and only there.
  assert.equal(fs.readFileSync(join(sandbox, "log"), "utf8"), "one\ntwo\n");
  assert.equal(fs.statSync(join(sandbox, "a.txt")).size, 100);
  assert.equal(fs.existsSync(join(sandbox, "d")), false);
});

test("escape attempts from the preopen fail (EPERM, ELOOP, ENOTCAPABLE) and change nothing", async () => {
  const { dir, sandbox } = fixture();
  const before = fs.readdirSync(dir).sort();
  const r = await run("escape", {}, sandbox);
  assert.equal(
    r.out,
    [
      "open inside.txt: 0",
      "open ../outside.txt: 63",
      "open sub/../../outside.txt: 63",
      "open sub/../inside.txt: 0",
      "open /etc/passwd: 63",
      "open /: 63",
      "open ..: 63",
      "open .: 0",
      "open : 44",
      "open link_out_abs: 63",
      "open link_out_rel: 63",
      "open link_out_rel (nofollow): 32",
      "open link_in: 0",
      "open chain7: 0",
      "open chain8: 32",
      "open loop_a: 32",
      "open link_dir_out/outside.txt: 63",
      // sub/link_up is "..": back to the sandbox root, which has no outside.txt.
      "open sub/link_up/outside.txt: 44",
      "open sub/link_up/link_dir_out/outside.txt: 63",
      "stat link_out_abs: 63",
      "stat link_dir_out/outside.txt: 63",
      "mkdir ../x: 63",
      "mkdir link_dir_out/x: 63",
      "unlink ../outside.txt: 63",
      "symlink abs: 63",
      "rename out: 63",
      "path_open on file fd: 76",
      "write without FD_WRITE: 76",
      "bad fd: 8",
      "libc open /etc/passwd: -1 Capabilities insufficient",
      "libc open /sandbox/../outside.txt: -1 Operation not permitted",
      "",
    ].join("\n"),
  );
  assert.deepEqual(fs.readdirSync(dir).sort(), before);
  assert.equal(fs.readFileSync(join(dir, "outside.txt"), "utf8"), "secret");
  assert.equal(fs.existsSync(join(sandbox, "newlink")), false);
  assert.equal(fs.existsSync(join(sandbox, "inside.txt")), true);
});

test("clocks, poll_oneoff, random_get, sched_yield, proc_raise, sock_*", async () => {
  const r = await run("clocks");
  assert.equal(
    r.out,
    [
      "monotonic non-decreasing: 1",
      "realtime after 2020: 1",
      "cputime positive: 1",
      "getres monotonic: 0 1",
      "bad clock: 28",
      "bad clock res: 28",
      "slept >= 30ms: 1, < 1s: 1",
      "poll fd: 0 n=1 userdata=11 type=2 error=0",
      "poll bad fd: 0 n=1 error=8",
      "poll none: 28",
      "random: 0 0",
      "random differs: 1",
      "sched_yield: 0",
      "proc_raise: 52",
      "sock_accept stdout: 57",
      "sock_shutdown bad fd: 8",
      "sock_send stdout: 57",
      "stdout filetype=2 seek=0",
      "",
    ].join("\n"),
  );
  assert.ok(r.stats.hostNs >= 30e6, "the sleep is host time");
});

test("reactor mode: _initialize, typed arguments and results", async () => {
  const call = (fn: string, args: (number | bigint)[], extra: Partial<RunOptions> = {}) =>
    run("reactor", { reactor: { fn, args }, ...extra });
  assert.deepEqual((await call("add", [2, 40])).returns, [42]);
  assert.deepEqual((await call("add", [0xffffffff, 1])).returns, [0]);
  assert.deepEqual((await call("mul64", [3n, 1n << 40n])).returns, [3n << 40n]);
  assert.deepEqual((await call("mul64", [3, 5])).returns, [15n]);
  assert.deepEqual((await call("half", [5])).returns, [2.5]);
  assert.deepEqual((await call("was_initialized", [])).returns, [42]);
  const bye = await call("bye", [3]);
  assert.equal(bye.exitCode, 3);
  assert.equal(bye.out, "bye 3\n");
  assert.deepEqual((await call("nope", [])).trap, {
    kind: "FuncNotFound",
    message: "function not found: nope",
  });
  assert.equal((await call("add", [1])).trap?.kind, "FuncSigMismatch");
});

test("traps are reported with WasmEdge's names and exit code 1", async () => {
  const trap = async (fn: string, args: number[] = []) => {
    const r = await run("reactor", { reactor: { fn, args } });
    assert.equal(r.exitCode, 1);
    return r.trap;
  };
  assert.deepEqual(await trap("divide", [1, 0]), { kind: "DivideByZero", message: "integer divide by zero" });
  assert.deepEqual(await trap("boom"), { kind: "Unreachable", message: "unreachable" });
  assert.deepEqual(await trap("oob"), { kind: "MemoryOutOfBounds", message: "out of bounds memory access" });
  const bad = await runWasi(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1]), {
    args: [],
    env: [],
    preopens: [],
    stdout: () => {},
    stderr: () => {},
  });
  assert.equal(bad.exitCode, 1);
  assert.equal(bad.trap?.kind, "ValidationFailed");
});

test("limits: time, gas, memory pages; gas measuring", async () => {
  const spin = (args: number[], extra: Partial<RunOptions>) =>
    run("reactor", { reactor: { fn: "spin", args }, ...extra });
  const t = performance.now();
  const timed = await spin([-1], { limits: { timeLimitMs: 50 } });
  assert.deepEqual(timed.trap, { kind: "Interrupted", message: "interrupted" });
  assert.ok(performance.now() - t < 2000);
  const gassed = await spin([-1], { limits: { gasLimit: 1000 } });
  assert.deepEqual(gassed.trap, { kind: "CostLimitExceeded", message: "cost limit exceeded" });
  assert.equal(gassed.stats.gas, 1001);
  const measured = await spin([1000], { measure: { gas: true } });
  assert.deepEqual(measured.returns, [499500]);
  assert.ok(measured.stats.gas! > 100 && measured.stats.gas! < 2000, `gas ${measured.stats.gas}`);
  const enough = await spin([1000], { limits: { gasLimit: measured.stats.gas! } });
  assert.deepEqual(enough.returns, [499500]);
  // The module starts with 2 pages: with a limit of 10, memory.grow succeeds 8 times, then fails.
  const grown = await run("reactor", {
    reactor: { fn: "grow", args: [100] },
    limits: { memoryPageLimit: 10 },
  });
  assert.deepEqual(grown.returns, [8]);
  const refused = await run("reactor", {
    reactor: { fn: "pages", args: [] },
    limits: { memoryPageLimit: 1 },
  });
  assert.equal(refused.exitCode, 1);
  assert.equal(refused.trap?.kind, "MemoryLimitExceeded");
});

test("file server: plain-data requests, escapes refused, read-only preopens", () => {
  const { dir, sandbox } = fixture();
  const server = new FileServer([{ host: sandbox }, { host: sandbox, readOnly: true }]);
  const root = server.handle({ op: "root", preopen: 0 });
  assert.ok(root.ok && "handle" in root);
  const rw = root.handle;
  const opened = server.call({
    op: "open",
    dir: rw,
    path: "new.txt",
    follow: true,
    oflags: OFLAGS.CREAT,
    read: true,
    write: true,
  });
  assert.ok(opened.ok);
  assert.deepEqual(
    server.call({
      op: "write",
      handle: opened.handle,
      pos: 0n,
      data: new Uint8Array([104, 105]),
      sync: false,
    }),
    {
      ok: true,
      n: 2,
      end: 2n,
    },
  );
  assert.equal(fs.readFileSync(join(sandbox, "new.txt"), "utf8"), "hi");
  for (const path of ["../outside.txt", "/etc/passwd", "link_out_abs", "link_dir_out/outside.txt"]) {
    assert.deepEqual(
      server.call({ op: "stat", dir: rw, path, follow: true }),
      { ok: false, errno: E.PERM },
      path,
    );
  }
  assert.deepEqual(server.call({ op: "stat", dir: rw, path: "chain8", follow: true }), {
    ok: false,
    errno: E.LOOP,
  });
  const ro = server.call({ op: "root", preopen: 1 });
  assert.ok(ro.ok);
  assert.deepEqual(server.call({ op: "mkdir", dir: ro.handle, path: "x" }), { ok: false, errno: E.ROFS });
  assert.deepEqual(server.call({ op: "unlink", dir: ro.handle, path: "inside.txt" }), {
    ok: false,
    errno: E.ROFS,
  });
  assert.deepEqual(
    server.call({
      op: "open",
      dir: ro.handle,
      path: "inside.txt",
      follow: true,
      oflags: 0,
      read: true,
      write: true,
    }),
    { ok: false, errno: E.ROFS },
  );
  assert.deepEqual(server.call({ op: "close", handle: 999 }), { ok: false, errno: E.BADF });
  server.closeAll();
  assert.equal(fs.readFileSync(join(dir, "outside.txt"), "utf8"), "secret");
});
