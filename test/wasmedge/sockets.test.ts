/**
 * Sockets and concurrent applications: C guests using WasmEdge's socket extension directly
 * (test/wasmedge/corpus/echo_*.c, built with clang-16 and wasi-libc) run through runWasi, each in
 * its own worker thread, the server blocking in poll/accept/read while clients run beside it.
 * Also the network policy (loopback only), a refused connection, the time limit stopping a guest
 * blocked on a socket, and the request channel itself.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type NetOp, type NetReq, type NetRes, NetServer, SE } from "../../src/wasmedge/netserver.js";
import { runWasi } from "../../src/wasmedge/runner.js";
import { createChannelBuffer, serveChannel } from "../../src/wasmedge/service.js";
import type { RunOptions, RunResult } from "../../src/wasmedge/types.js";
import { E } from "../../src/wasmedge/wasi/constants.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SRC = join(ROOT, "test", "wasmedge", "corpus");
const OUT = join(ROOT, "build", "wasmedge-corpus");
const PROGRAMS = ["echo_server", "echo_client", "udp_echo_server", "udp_client"] as const;
const wasm: Record<string, Uint8Array> = {};

before(() => {
  fs.mkdirSync(OUT, { recursive: true });
  const header = Math.max(...["echo_sock.h", "udp_sock.h"].map((h) => fs.statSync(join(SRC, h)).mtimeMs));
  for (const name of PROGRAMS) {
    const src = join(SRC, `${name}.c`);
    const out = join(OUT, `${name}.wasm`);
    const fresh =
      fs.existsSync(out) && fs.statSync(out).mtimeMs >= Math.max(fs.statSync(src).mtimeMs, header);
    if (!fresh) execFileSync("clang-16", ["--target=wasm32-wasi", "-O2", "-Wall", "-Werror", src, "-o", out]);
    wasm[name] = fs.readFileSync(out);
  }
});

/** A run whose stdout is collected, and whose lines can be awaited while it still runs. */
function start(name: string, args: string[], extra: Partial<RunOptions> = {}) {
  let out = "";
  let err = "";
  const watchers: (() => void)[] = [];
  const done = runWasi(wasm[name]!, {
    args: [name, ...args],
    env: [],
    preopens: [],
    stdout: (b) => {
      out += Buffer.from(b).toString();
      for (const w of watchers.splice(0)) w();
    },
    stderr: (b) => {
      err += Buffer.from(b).toString();
    },
    ...extra,
  }).then((r) => ({ ...r, out, err }));
  /** Resolves with the first match of `re` in stdout (fails if the run ends first). */
  const waitFor = (re: RegExp): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const m = out.match(re);
        if (m) resolve(m);
        else watchers.push(check);
      };
      check();
      void done.then((r) => reject(new Error(`${name} ended (exit ${r.exitCode}) before ${re}: ${r.out}`)));
    });
  return { done, waitFor };
}

const serverHead = "setsockopt: 0, getsockopt type: 0 2\nlistening on 127.0.0.1 family 1 (errno 0)\n";

test("an echo server and two clients run at once, each app in its own thread", async () => {
  const t0 = performance.now();
  const server = start("echo_server", ["2"]);
  const port = Number((await server.waitFor(/port (\d+)\n/))[1]);
  assert.ok(port > 0 && port < 65536);
  // Both clients run concurrently with each other and with the server, which blocks in poll and read.
  const [a, b] = await Promise.all([
    start("echo_client", ["127.0.0.1", String(port), "hello, echo"]).done,
    start("echo_client", ["127.0.0.1", String(port), "a second, longer message"]).done,
  ]);
  const s = await server.done;
  for (const [c, msg] of [
    [a, "hello, echo"],
    [b, "a second, longer message"],
  ] as const) {
    assert.equal(c.trap, undefined);
    assert.equal(c.exitCode, 0);
    assert.equal(c.out, `peer 127.0.0.1:port type 4 (errno 0)\nsent ${msg.length} (errno 0)\necho: ${msg}\n`);
  }
  assert.equal(s.trap, undefined);
  assert.equal(s.exitCode, 0);
  const lens = [11, 24];
  const conns = s.out.match(/connection \d: echoed (\d+) bytes\n/g) ?? [];
  assert.deepEqual(
    conns.map((l) => Number(/echoed (\d+)/.exec(l)![1])).sort((x, y) => x - y),
    lens,
  );
  assert.equal(s.out, `${serverHead}port ${port}\n${conns.join("")}done\n`);
  assert.ok(performance.now() - t0 < 10_000);
});

test("connect: a non-loopback address is refused by policy (EACCES), a closed port with ECONNREFUSED", async () => {
  const far = await start("echo_client", ["10.1.2.3", "7", "x"]).done;
  assert.equal(far.exitCode, 3);
  assert.equal(far.out, `connect: errno ${E.ACCES}\n`);

  // A port that was free a moment ago: nothing listens there.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const closed = await start("echo_client", ["127.0.0.1", String(port), "x"]).done;
  assert.equal(closed.exitCode, 3);
  assert.equal(closed.out, `connect: errno ${SE.CONNREFUSED}\n`);
});

test("the time limit stops a guest blocked in poll on a socket", async () => {
  const t0 = performance.now();
  const r: RunResult & { out: string } = await start("echo_server", ["1"], { limits: { timeLimitMs: 300 } })
    .done;
  const ms = performance.now() - t0;
  assert.equal(r.exitCode, 1);
  assert.deepEqual(r.trap, { kind: "Interrupted", message: "interrupted" });
  assert.match(r.out, /^setsockopt.*\nlistening on 127\.0\.0\.1 .*\nport \d+\n$/);
  assert.ok(ms < 3000, `took ${ms} ms`);
});

test("NetServer: the allowed set is an option; bind and connect outside it fail with EACCES", async () => {
  const only2 = new NetServer({ allowed: ["127.0.0.2/32"] });
  const h = only2.call({ op: "open", family: 4, stream: true });
  assert.ok(!(h instanceof Promise) && h.ok);
  const handle = (h as { handle: number }).handle;
  assert.deepEqual(only2.call({ op: "bind", handle, address: "127.0.0.1", port: 0 }), {
    ok: false,
    errno: E.ACCES,
  });
  assert.deepEqual(only2.call({ op: "connect", handle, address: "127.0.0.1", port: 9 }), {
    ok: false,
    errno: E.ACCES,
  });
  assert.deepEqual(only2.call({ op: "bind", handle, address: "127.0.0.2", port: 0 }), { ok: true });
  assert.equal(only2.allows("::1"), false);
  const dflt = new NetServer();
  assert.equal(dflt.allows("127.8.9.10"), true);
  assert.equal(dflt.allows("::1"), true);
  assert.equal(dflt.allows("192.168.1.1"), false);
  assert.equal(dflt.allows("0.0.0.0"), false);
  only2.closeAll();
  dflt.closeAll();
});

test("the request channel carries large messages both ways while the main thread stays free", async () => {
  const sab = createChannelBuffer();
  let calls = 0;
  const server = serveChannel(sab, {
    echo: {
      handle: (async (r: { data: Uint8Array; delayMs: number }) => {
        calls++;
        await new Promise((res) => setTimeout(res, r.delayMs));
        return { data: r.data, sum: r.data.reduce((s, x) => s + x, 0) };
      }) as never,
    },
  });
  const code = `
    import { workerData, parentPort } from "node:worker_threads";
    const { ChannelClient } = await import(${JSON.stringify(new URL("../../src/wasmedge/service.js", import.meta.url).href)});
    const ch = new ChannelClient(workerData);
    const big = new Uint8Array(200000).map((_, i) => i & 0xff);
    const r = ch.request("echo", { data: big, delayMs: 50 });
    let bad = "";
    try { ch.request("nope", {}); } catch (e) { bad = e.message; }
    parentPort.postMessage({ len: r.data.length, same: r.data.every((x, i) => x === (i & 0xff)), sum: r.sum, bad });
  `;
  const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: sab });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const msg = await new Promise<{ len: number; same: boolean; sum: number; bad: string }>((res, rej) => {
    w.once("message", res);
    w.once("error", rej);
  });
  clearInterval(timer);
  server.close();
  await w.terminate();
  assert.equal(calls, 1);
  assert.equal(msg.len, 200000);
  assert.equal(msg.same, true);
  assert.equal(
    msg.sum,
    Array.from({ length: 200000 }, (_, i) => i & 0xff).reduce((s, x) => s + x, 0),
  );
  assert.match(msg.bad, /no service named nope/);
  // The main thread kept running its timers while the worker waited on the channel.
  assert.ok(ticks >= 3, `ticks ${ticks}`);
});

/** Awaits a NetServer answer, whether it came at once or as a promise. */
async function call<K extends NetOp>(srv: NetServer, req: NetReq<K>): Promise<NetRes<K>> {
  return await srv.call(req);
}

for (const ip of ["127.0.0.1", "::1"]) {
  test(`UDP (${ip}): echo server and client guests, truncation, connected UDP, poll, policy`, async () => {
    const fam = ip.includes(":") ? 2 : 1;
    // A lost datagram would leave a guest blocked in recv: the limit turns that into a failure.
    const guard = { limits: { timeLimitMs: 20_000 } };
    const server = start("udp_echo_server", [ip, "10"], guard);
    const port = Number((await server.waitFor(/port (\d+)\n/))[1]);
    assert.ok(port > 0 && port < 65536);
    const c = await start("udp_client", [ip, String(port)], guard).done;
    const s = await server.done;
    assert.equal(c.trap, undefined);
    assert.equal(c.exitCode, 0);
    assert.equal(
      c.out,
      [
        "before send: local port 0 (errno 0)",
        "send_to: errno 0",
        "echo: 'hello, udp' 10 bytes, flags 0 (errno 0)",
        `after send: local port chosen, type ${fam === 1 ? 4 : 6} (errno 0)`,
        // 10 bytes into a 4-byte buffer: 4 stored, roflags RECV_DATA_TRUNCATED, the rest gone.
        "short buffer: '0123' 4 bytes, flags 1 (errno 0)",
        "following: 'next' 4 bytes, flags 0 (errno 0)",
        "connect: errno 0",
        `peer ${ip} port (errno 0)`,
        "send: 18 (errno 0)",
        "recv: 'connected datagram' (errno 0)",
        `nonblocking recv: errno ${E.AGAIN}`,
        // The V1 send_to takes a 4-byte address: for an IPv6 socket that is the wrong family.
        `send_to 10.1.2.3: errno ${fam === 1 ? E.ACCES : SE.AFNOSUPPORT}`,
        `connect 10.1.2.3: errno ${fam === 1 ? E.ACCES : SE.AFNOSUPPORT}`,
        "quit: errno 0",
        "",
      ].join("\n"),
    );
    assert.equal(s.exitCode, 0);
    const from = (n: number, i: number) => `datagram ${i}: ${n} bytes from ${ip} (flags 0)`;
    assert.equal(
      s.out,
      [
        "type 1 (errno 0)",
        `bound ${ip} family ${fam} (errno 0)`,
        `port ${port}`,
        from(10, 0),
        from(10, 1),
        from(4, 2),
        from(18, 3),
        from(4, 4),
        "done",
        "",
      ].join("\n"),
    );
  });
}

test("NetServer UDP: policy (EACCES), datagram boundaries, EAGAIN, connected filter, close frees the port", async () => {
  const srv = new NetServer();
  const open = async () => {
    const r = await call(srv, { op: "open", family: 4, stream: false });
    assert.ok(r.ok);
    return r.handle;
  };
  const a = await open();
  const b = await open();
  assert.deepEqual(await call(srv, { op: "bind", handle: a, address: "10.0.0.1", port: 0 }), {
    ok: false,
    errno: E.ACCES,
  });
  assert.deepEqual(await call(srv, { op: "bind", handle: a, address: "127.0.0.1", port: 0 }), { ok: true });
  const la = await call(srv, { op: "localaddr", handle: a });
  assert.ok(la.ok && la.port > 0);
  const to = { family: 4 as const, address: "127.0.0.1", port: la.ok ? la.port : 0 };
  const far = { family: 4 as const, address: "192.0.2.1", port: 9 };
  assert.deepEqual(await call(srv, { op: "sendto", handle: b, data: new Uint8Array(1), to: far }), {
    ok: false,
    errno: E.ACCES,
  });
  assert.deepEqual(await call(srv, { op: "recvfrom", handle: a, len: 10, peek: false }), {
    ok: false,
    errno: E.AGAIN,
  });
  assert.deepEqual(await call(srv, { op: "sendto", handle: b, data: new Uint8Array(0) }), {
    ok: false,
    errno: SE.DESTADDRREQ,
  });
  for (const m of ["first", "second!"]) {
    const r = await call(srv, { op: "sendto", handle: b, data: Buffer.from(m), to });
    assert.deepEqual(r, { ok: true, n: m.length });
  }
  const polled = await call(srv, { op: "poll", reads: [a], writes: [], timeoutMs: 5000 });
  assert.deepEqual(polled, { ok: true, readable: [a], writable: [] });
  // Wait until both have arrived (loopback delivery is asynchronous to the send callback).
  const lb = await call(srv, { op: "localaddr", handle: b });
  assert.ok(lb.ok);
  const peek = await call(srv, { op: "recvfrom", handle: a, len: 100, peek: true });
  assert.ok(peek.ok);
  assert.equal(Buffer.from(peek.data).toString(), "first");
  assert.deepEqual(peek.from, { family: 4, address: "127.0.0.1", port: lb.port });
  const one = await call(srv, { op: "recvfrom", handle: a, len: 100, peek: false });
  assert.ok(one.ok && Buffer.from(one.data).toString() === "first" && !one.truncated);
  await call(srv, { op: "poll", reads: [a], writes: [], timeoutMs: 5000 });
  const two = await call(srv, { op: "recvfrom", handle: a, len: 3, peek: false });
  assert.ok(two.ok && Buffer.from(two.data).toString() === "sec" && two.truncated);
  // Connected to b: a third socket's datagram is dropped, b's arrives.
  assert.deepEqual(await call(srv, { op: "connect", handle: a, address: "127.0.0.1", port: lb.port }), {
    ok: true,
  });
  const c = await open();
  await call(srv, { op: "sendto", handle: c, data: Buffer.from("stranger"), to });
  await call(srv, { op: "sendto", handle: b, data: Buffer.from("friend"), to });
  await call(srv, { op: "poll", reads: [a], writes: [], timeoutMs: 5000 });
  const got = await call(srv, { op: "recvfrom", handle: a, len: 100, peek: false });
  assert.ok(got.ok);
  assert.equal(Buffer.from(got.data).toString(), "friend");
  // Closing frees the port: a fresh socket binds it again.
  assert.deepEqual(await call(srv, { op: "close", handle: a }), { ok: true });
  const d = await open();
  assert.deepEqual(await call(srv, { op: "bind", handle: d, address: "127.0.0.1", port: to.port }), {
    ok: true,
  });
  const e2 = await open();
  assert.deepEqual(await call(srv, { op: "bind", handle: e2, address: "127.0.0.1", port: to.port }), {
    ok: false,
    errno: SE.ADDRINUSE,
  });
  srv.closeAll();
});

test("getaddrinfo: numeric and localhost always; other names only when the policy reaches beyond loopback", async () => {
  const lo = new NetServer();
  const req = (node: string) => ({
    op: "getaddrinfo" as const,
    node,
    service: "53",
    family: 0 as const,
    passive: false,
  });
  assert.deepEqual(await call(lo, req("127.0.0.5")), {
    ok: true,
    addrs: [{ family: 4, address: "127.0.0.5", port: 53 }],
  });
  const local = await call(lo, req("localhost"));
  assert.ok(local.ok);
  assert.deepEqual(
    local.addrs.map((x) => x.address),
    ["127.0.0.1", "::1"],
  );
  assert.deepEqual(await call(lo, req("localhost.localdomain.invalid")), { ok: false, errno: SE.AINONAME });
  // A name the host's resolver knows without the network: this machine's own host name, from
  // /etc/hosts (node:dns lookup uses getaddrinfo, which reads it first). Unresolved under the
  // loopback-only policy, resolved once the policy reaches further.
  const hostname = (await import("node:os")).hostname();
  assert.deepEqual(await call(lo, req(hostname)), { ok: false, errno: SE.AINONAME });
  const open = new NetServer({ allowed: ["0.0.0.0/0", "::/0"] });
  const hosts = fs.existsSync("/etc/hosts") ? fs.readFileSync("/etc/hosts", "utf8") : "";
  if (new RegExp(`\\s${hostname.replace(/[.]/g, "\\.")}(\\s|$)`, "m").test(hosts)) {
    const r = await call(open, req(hostname));
    assert.ok(r.ok, JSON.stringify(r));
    assert.ok(r.addrs.length > 0 && r.addrs.every((x) => net.isIP(x.address) === x.family));
  }
  lo.closeAll();
  open.closeAll();
});
