/**
 * Streaming stdin (wasi/stdin.ts): fd_read on fd 0 returns what has arrived and waits only when
 * nothing has, poll_oneoff reports stdin's readiness and byte count, and an application blocked
 * on stdin is still stopped by cancellation and by its time limit. The guest is
 * test/wasmedge/corpus/stdin.c; the input is fed piece by piece, each piece only after the
 * application has answered the previous one, so an implementation that waited for the whole
 * input would hang (and the test's timeout would fail it) instead of passing.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runWasi } from "../../src/wasmedge/runner.js";
import type { RunOptions, RunResult } from "../../src/wasmedge/types.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SRC = join(ROOT, "test", "wasmedge", "corpus", "stdin.c");
const WASM = join(ROOT, "build", "wasmedge-corpus", "stdin.wasm");
const MAIN = join(ROOT, "dist", "src", "cli", "main.js");
/** Every test is bounded: a run that waits for input it will never get fails here. */
const LIMIT = { timeout: 20_000 };

let cache = "";
before(() => {
  fs.mkdirSync(join(ROOT, "build", "wasmedge-corpus"), { recursive: true });
  if (!fs.existsSync(WASM) || fs.statSync(WASM).mtimeMs < fs.statSync(SRC).mtimeMs) {
    execFileSync("clang-16", ["--target=wasm32-wasi", "-O2", "-Wall", "-Werror", SRC, "-o", WASM]);
  }
  cache = fs.mkdtempSync(join(os.tmpdir(), "capvisor-stdin-"));
});
after(() => fs.rmSync(cache, { recursive: true, force: true }));

/** An input stream the test writes to piece by piece; counts how often it was pulled. */
class Feed implements AsyncIterable<Uint8Array> {
  private readonly queue: (Uint8Array | null)[] = [];
  private wake: (() => void) | null = null;
  pulls = 0;
  private firstPull!: () => void;
  /** Resolves when the reader first asks for input. */
  readonly pulled = new Promise<void>((resolve) => {
    this.firstPull = resolve;
  });
  write(s: string): void {
    this.queue.push(Buffer.from(s));
    this.wake?.();
  }
  end(): void {
    this.queue.push(null);
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      this.pulls++;
      this.firstPull();
      while (this.queue.length === 0) await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
      const chunk = this.queue.shift()!;
      if (chunk === null) return;
      yield chunk;
    }
  }
}

/** Collected output, with a way to wait until it says something. */
class Output {
  text = "";
  private waiters: (() => void)[] = [];
  readonly sink = (b: Uint8Array): void => {
    this.text += Buffer.from(b).toString();
    for (const w of this.waiters.splice(0)) w();
  };
  async until(fragment: string): Promise<void> {
    while (!this.text.includes(fragment)) await new Promise<void>((r) => this.waiters.push(r));
  }
}

function start(
  mode: string,
  stdin: RunOptions["stdin"],
  extra: Partial<RunOptions> & { signal?: AbortSignal } = {},
): { out: Output; err: Output; done: Promise<RunResult> } {
  const out = new Output();
  const err = new Output();
  const done = runWasi(fs.readFileSync(WASM), {
    args: ["stdin.wasm", mode],
    env: [],
    preopens: [],
    ...(stdin === undefined ? {} : { stdin }),
    stdout: out.sink,
    stderr: err.sink,
    ...extra,
  });
  return { out, err, done };
}

test("a whole-buffer stdin still works", LIMIT, async () => {
  const run = start("lines", new TextEncoder().encode("one\ntwo three\n"));
  const r = await run.done;
  assert.equal(r.exitCode, 0);
  assert.equal(run.out.text, "answer 1: one (3 bytes)\nanswer 2: two three (9 bytes)\neof after 2 lines\n");
});

test("no stdin: fd 0 is at its end at once", LIMIT, async () => {
  const run = start("lines", undefined);
  assert.equal((await run.done).exitCode, 0);
  assert.equal(run.out.text, "eof after 0 lines\n");
});

test("an interactive program answers each line before the next is written", LIMIT, async () => {
  const feed = new Feed();
  const run = start("lines", feed);
  feed.write("first\n");
  await run.out.until("answer 1:");
  assert.equal(run.out.text, "answer 1: first (5 bytes)\n");
  // Two lines in one piece, then a line split across two pieces.
  feed.write("second\nthird\n");
  await run.out.until("answer 3:");
  feed.write("fou");
  feed.write("rth\n");
  await run.out.until("answer 4:");
  feed.end();
  const r = await run.done;
  assert.equal(r.exitCode, 0);
  assert.equal(
    run.out.text,
    "answer 1: first (5 bytes)\nanswer 2: second (6 bytes)\nanswer 3: third (5 bytes)\n" +
      "answer 4: fourth (6 bytes)\neof after 4 lines\n",
  );
});

test("an application that never reads fd 0 never consumes the input", LIMIT, async () => {
  const feed = new Feed();
  const run = start("ignore", feed);
  assert.equal((await run.done).exitCode, 0);
  assert.equal(run.out.text, "ignored\n");
  assert.equal(feed.pulls, 0);
});

test("poll_oneoff: not ready when empty, FD_READ with nbytes, hangup at the end", LIMIT, async () => {
  const feed = new Feed();
  const run = start("poll", feed);
  // Nothing written: only the 30 ms clock fires.
  await run.out.until("empty:");
  feed.write("hello\n");
  await run.out.until("read ");
  feed.end();
  const r = await run.done;
  assert.equal(r.exitCode, 0);
  assert.equal(
    run.out.text,
    "empty: errno=0 events=1 [clock userdata=20]\n" +
      "arrived: errno=0 events=1 [fd_read userdata=10 nbytes=6 hangup=0]\n" +
      "read 6: hello\n" +
      "ended: errno=0 events=1 [fd_read userdata=10 nbytes=0 hangup=1]\n" +
      "read 0\n",
  );
});

test("poll(2) with no timeout waits for stdin", LIMIT, async () => {
  const feed = new Feed();
  const run = start("pollwait", feed);
  await feed.pulled;
  feed.write("x");
  const r = await run.done;
  assert.equal(r.exitCode, 0);
  assert.equal(run.out.text, "poll 1 revents_in=1\n");
});

test("a non-blocking fd 0 answers EAGAIN instead of waiting", LIMIT, async () => {
  const feed = new Feed();
  const run = start("nonblock", feed);
  await run.out.until("eagain=");
  feed.write("late");
  const r = await run.done;
  assert.equal(r.exitCode, 0);
  assert.equal(run.out.text, "read -1 eagain=1\nread 4: late\n");
});

test("cancelling stops an application blocked reading stdin", LIMIT, async () => {
  const feed = new Feed();
  const ac = new AbortController();
  const run = start("lines", feed, { signal: ac.signal });
  feed.write("only\n");
  await run.out.until("answer 1:");
  // The guest is now waiting for its next line, which never comes.
  ac.abort();
  const r = await run.done;
  assert.equal(r.exitCode, 1);
  assert.equal(run.err.text, "cancelled\n");
  assert.equal(run.out.text, "answer 1: only (4 bytes)\n");
});

for (const mode of ["lines", "pollwait"]) {
  test(`the time limit stops an application blocked on stdin (${mode})`, LIMIT, async () => {
    const feed = new Feed();
    const run = start(mode, feed, { limits: { timeLimitMs: 200 } });
    const r = await run.done;
    assert.equal(r.exitCode, 1);
    assert.equal(r.trap?.kind, "Interrupted");
    assert.equal(run.out.text, "");
  });
}

test("capvisor run reads its stdin as it arrives (driven line by line)", LIMIT, async () => {
  const child = spawn(process.execPath, [MAIN, "run", WASM], {
    env: { ...process.env, CAPVISOR_CACHE_DIR: cache },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const out = new Output();
  let err = "";
  child.stdout.on("data", out.sink);
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  try {
    child.stdin.write("hello there\n");
    await out.until("answer 1:");
    assert.equal(out.text, "answer 1: hello there (11 bytes)\n");
    child.stdin.write("again\n");
    await out.until("answer 2:");
    child.stdin.end();
    assert.equal(await exited, 0, err);
    assert.equal(
      out.text,
      "answer 1: hello there (11 bytes)\nanswer 2: again (5 bytes)\neof after 2 lines\n",
    );
  } finally {
    child.kill();
  }
});
