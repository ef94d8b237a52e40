/**
 * The network PD of a WasmEdge runtime PD (src/wasmedge/netserver-pd.ts): a system description
 * whose runtime PD runs the C TCP echo server and client of test/wasmedge/corpus, so that every
 * socket call of both crosses the kernel (runtime PD queue, seL4_Call to the network PD, pending
 * answers collected after its doorbell). Then, in the kernel's own state, the capabilities of
 * both PDs; then, through RuntimePD.netSession (the same path as an application's sock_* calls),
 * that handle numbers are private to a session, that a socket waiting on the host holds up no
 * other session, and the network policy; last, what `capvisor verify` sees.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Cap, CNodeObj, TCB } from "../../src/kernel/structures.js";
import {
  CapType,
  RIGHT_GRANT,
  RIGHT_READ,
  RIGHT_WRITE,
  TCB_CTABLE,
  ThreadState,
} from "../../src/kernel/types.js";
import { type BootedSystem, bootSystem } from "../../src/system/boot.js";
import { INPUT_CAP, MONITOR_EP, REPLY_CAP } from "../../src/system/loader.js";
import { loadSdf } from "../../src/system/sdf.js";
import { analyseSystem, kindsBetween } from "../../src/verify/authority.js";
import { formatMatrix } from "../../src/verify/command.js";
import { APP_NTFN_BASE, APP_TCB_BASE } from "../../src/wasmedge/app-threads.js";
import type { NetResponse } from "../../src/wasmedge/netserver.js";
import { SE } from "../../src/wasmedge/netserver.js";
import { NET_READY_BADGE, NETPD_IRQ, NETPD_READY } from "../../src/wasmedge/netserver-pd.js";
import {
  RUNTIME_FS_EP,
  RUNTIME_NET_EP,
  RUNTIME_WAKE,
  type RuntimePD,
  wasmedgeRuntime,
} from "../../src/wasmedge/runtime-pd.js";
import { E } from "../../src/wasmedge/wasi/constants.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SRC = join(ROOT, "test", "wasmedge", "corpus");
// A folder of its own: sockets.test.ts builds the same sources into build/wasmedge-corpus, and
// test files run in parallel.
const OUT = join(ROOT, "build", "netserver-pd");
const MESSAGE = "through-the-network-PD";

let dir: string;
let system: string;
let sys: BootedSystem<RuntimePD>;
let rt: RuntimePD;
const lines: string[] = [];
const events: string[] = [];
/** The echo server's port, once it printed it. */
let serverPort: Promise<number>;
let relay: net.Server;
let relayed = 0;

/**
 * The client's connection goes through this host relay: the client's port is an argument fixed in
 * the description, while the server (started beside it) binds port 0 and prints the port it got.
 * The relay accepts at once, holds the bytes until that port is known, then passes them both ways,
 * half-closes included: for both applications it is the network, nothing more.
 */
function startRelay(): Promise<number> {
  relay = net.createServer({ allowHalfOpen: true }, (down) => {
    relayed++;
    void serverPort.then((port) => {
      const up = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
      down.pipe(up);
      up.pipe(down);
    });
  });
  return new Promise((resolve) =>
    relay.listen(0, "127.0.0.1", () => resolve((relay.address() as net.AddressInfo).port)),
  );
}

function build(name: string): string {
  const src = join(SRC, `${name}.c`);
  const out = join(OUT, `${name}.wasm`);
  const header = fs.statSync(join(SRC, "echo_sock.h")).mtimeMs;
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < Math.max(fs.statSync(src).mtimeMs, header)) {
    execFileSync("clang-16", ["--target=wasm32-wasi", "-O2", "-Wall", "-Werror", src, "-o", `${out}.tmp`]);
    fs.renameSync(`${out}.tmp`, out);
  }
  return out;
}

before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  const server = build("echo_server");
  const client = build("echo_client");
  const port = await startRelay();
  dir = fs.mkdtempSync(join(tmpdir(), "capvisor-netpd-"));
  system = join(dir, "echo.system");
  fs.writeFileSync(
    system,
    `<system>
  <protection_domain name="runtime" priority="50" capvisor:runtime="wasmedge"
      capvisor:apps="${server} 2; ${client} 127.0.0.1 ${port} ${MESSAGE}">
    <program_image path="${server}" />
  </protection_domain>
</system>
`,
  );
  let gotPort: (p: number) => void = () => {};
  serverPort = new Promise((r) => {
    gotPort = r;
  });
  sys = await bootSystem(system, {
    runtimes: [wasmedgeRuntime],
    cores: 2,
    onLine: (pd, l) => {
      lines.push(`[${pd}] ${l}`);
      const m = /^port (\d+)$/.exec(l);
      if (pd === "runtime/echo_server" && m) gotPort(Number(m[1]));
    },
    onEvent: (pd, m) => events.push(`${pd}: ${m}`),
  });
  rt = sys.runtimes[0]!;
});

after(async () => {
  await sys?.stop();
  relay?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timeout: ${what()}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Connects from the host, sends `msg`, half-closes, and resolves with what comes back. */
function hostEcho(port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => c.end(msg));
    let got = "";
    c.on("data", (d) => {
      got += d.toString();
    });
    c.on("end", () => {
      c.destroy();
      resolve(got);
    });
    c.on("error", reject);
  });
}

/** The non-null caps of a thread's CSpace root, by slot. */
function cspace(t: TCB): Map<number, Cap> {
  const root = t.ctes[TCB_CTABLE]!.cap.obj as CNodeObj;
  const out = new Map<number, Cap>();
  for (const s of root.usedSlots()) if (!s.cap.isNull) out.set(s.index, s.cap);
  return out;
}

const badgeOf = (c: Cap): bigint => (BigInt(c.badgeHi >>> 0) << 32n) | BigInt(c.badgeLo >>> 0);

/** The response of a successful request (fails the test with the errno otherwise). */
function ok<R extends NetResponse>(r: R): Extract<R, { ok: true }> {
  assert.ok(r.ok, `errno ${"errno" in r ? r.errno : "?"}`);
  return r as Extract<R, { ok: true }>;
}

test("an echo server and client in a runtime PD: every socket call through the network PD", async () => {
  const port = await within(serverPort, 15_000, () => lines.join("\n"));
  // The server takes two connections: the client's (through the relay) and one from the host,
  // made once the client's is served, so that the server is waiting on the host for it (a
  // "pending" poll) rather than finding it already queued.
  await within(
    (async () => {
      while (!lines.some((l) => l.startsWith("[runtime/echo_server] connection ")))
        await new Promise((r) => setTimeout(r, 10));
    })(),
    15_000,
    () => lines.join("\n"),
  );
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await hostEcho(port, "from the host"), "from the host");
  const results = await within(rt.done, 20_000, () => lines.join("\n"));
  assert.deepEqual(
    results.map((r) => [r.exitCode, r.trap]),
    [
      [0, undefined],
      [0, undefined],
    ],
  );
  assert.deepEqual(events, []);
  assert.equal(relayed, 1);
  const of = (app: string) =>
    lines.filter((l) => l.startsWith(`[runtime/${app}] `)).map((l) => l.slice(app.length + 11));
  assert.deepEqual(of("echo_client"), [
    "peer 127.0.0.1:port type 4 (errno 0)",
    `sent ${MESSAGE.length} (errno 0)`,
    `echo: ${MESSAGE}`,
  ]);
  const server = of("echo_server");
  assert.deepEqual(server.slice(0, 3), [
    "setsockopt: 0, getsockopt type: 0 2",
    "listening on 127.0.0.1 family 1 (errno 0)",
    `port ${port}`,
  ]);
  // The two connections are served in the order they arrived.
  assert.deepEqual(
    server
      .slice(3, 5)
      .map((l) => l.replace(/^connection \d: /, ""))
      .sort(),
    [`echoed ${"from the host".length} bytes`, `echoed ${MESSAGE.length} bytes`],
  );
  assert.equal(server[5], "done");

  // Served by the network PD over IPC: both applications' operations, and those that waited on
  // the host (listen, poll, connect's completion...) were answered "pending" and collected after
  // its doorbell rang.
  const st = rt.netServer;
  for (const op of ["open", "bind", "listen", "accept", "connect", "send", "recv", "poll", "close"])
    assert.ok((st.ops[op] ?? 0) >= 1, `${op}: ${JSON.stringify(st.ops)}`);
  assert.equal(
    st.requests,
    Object.values(st.ops).reduce((a, b) => a + b, 0),
  );
  assert.ok(st.pending >= 2, `pending ${st.pending}`);
  assert.ok(st.doorbells >= 1, `doorbells ${st.doorbells}`);
  assert.equal(st.collected, st.pending);
  // Both sessions are closed once their applications have ended.
  for (let i = 0; i < 200 && st.sessions > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(st.sessions, 0);
  // The network PD is a kernel thread of its own, waiting for the next request.
  assert.equal(rt.netServerTcb.name, "runtime.net");
  assert.equal(rt.netServerTcb.state, ThreadState.BlockedOnReceive);
  assert.ok(sys.status().some((s) => s.name === "runtime.net"));
});

test("the runtime PD reaches the network only by a badged endpoint cap; the network PD holds least authority", () => {
  const rtPd = sys.loaded.pds.find((p) => p.pd.name === "runtime")!;
  const caps = cspace(rt.tcb);
  // Nothing in the runtime PD's CSpace but the loader's caps, the runtime's three and its two
  // application threads' TCBs and notifications: no cap to any object of the network PD's but
  // its endpoint, and no host access of its own.
  assert.deepEqual(
    [...caps.entries()].map(([slot, c]) => [slot, CapType[c.type]]),
    [
      [INPUT_CAP, "Notification"],
      [REPLY_CAP, "Reply"],
      [MONITOR_EP, "Endpoint"],
      [RUNTIME_FS_EP, "Endpoint"],
      [RUNTIME_WAKE, "IRQHandler"],
      [RUNTIME_NET_EP, "Endpoint"],
      [APP_TCB_BASE, "Thread"],
      [APP_TCB_BASE + 1, "Thread"],
      [APP_NTFN_BASE, "Notification"],
      [APP_NTFN_BASE + 1, "Notification"],
    ],
  );
  const netCap = caps.get(RUNTIME_NET_EP)!;
  assert.equal(badgeOf(netCap), BigInt(rtPd.index + 1));
  assert.equal(netCap.rights & RIGHT_READ, 0, "the runtime PD cannot receive on the network PD's endpoint");
  assert.equal(netCap.rights & RIGHT_GRANT, 0, "the runtime PD cannot grant caps to the network PD");
  assert.notEqual(netCap.obj, caps.get(RUNTIME_FS_EP)!.obj);

  // The network PD: its endpoint (receive only), its Reply (no Grant), the runtime PD's
  // notification (signal only, with NET_READY_BADGE) and its doorbell's IRQHandler.
  const netCaps = cspace(rt.netServerTcb);
  assert.deepEqual(
    [...netCaps.entries()].map(([slot, c]) => [slot, CapType[c.type]]),
    [
      [INPUT_CAP, "Endpoint"],
      [REPLY_CAP, "Reply"],
      [NETPD_READY, "Notification"],
      [NETPD_IRQ, "IRQHandler"],
    ],
  );
  assert.equal(netCaps.get(INPUT_CAP)!.obj, netCap.obj);
  assert.equal(netCaps.get(INPUT_CAP)!.rights, RIGHT_READ);
  assert.equal(netCaps.get(REPLY_CAP)!.rights & RIGHT_GRANT, 0);
  const ready = netCaps.get(NETPD_READY)!;
  assert.equal(ready.obj, caps.get(INPUT_CAP)!.obj);
  assert.equal(ready.rights, RIGHT_WRITE);
  assert.equal(badgeOf(ready), NET_READY_BADGE);
  // Its own notification is bound to its thread, and it holds no cap to it.
  const own = rt.netServerTcb.boundNotification;
  assert.ok(own !== null);
  for (const c of netCaps.values()) assert.notEqual(c.obj, own);
  // No other PD reaches the network PD's endpoint.
  for (const p of sys.loaded.pds)
    if (p.pd.name !== "runtime")
      for (const c of cspace(p.tcb).values()) assert.notEqual(c.obj, netCap.obj, `${p.pd.name} reaches it`);
});

test("handle numbers are private to a session: one application cannot reach another's sockets", async () => {
  const a = rt.netSession();
  const b = rt.netSession();
  try {
    const ha = ok(await a.call({ op: "open", family: 4, stream: true })).handle;
    ok(await a.call({ op: "bind", handle: ha, address: "127.0.0.1", port: 0 }));
    ok(await a.call({ op: "listen", handle: ha, backlog: 1 }));
    const port = ok(await a.call({ op: "localaddr", handle: ha })).port;
    assert.ok(port > 0);
    // B has no socket yet: A's handle number names nothing for it.
    assert.deepEqual(await b.call({ op: "localaddr", handle: ha }), { ok: false, errno: E.BADF });
    assert.deepEqual(await b.call({ op: "close", handle: ha }), { ok: false, errno: E.BADF });
    // B's first socket gets the same number, and is B's own.
    const hb = ok(await b.call({ op: "open", family: 4, stream: true })).handle;
    assert.equal(hb, ha);
    assert.equal(ok(await b.call({ op: "localaddr", handle: hb })).port, 0);
    ok(await b.call({ op: "close", handle: hb }));
    // A's listener is untouched by B's close: the host can still connect to it, and A accepts.
    const c = net.connect({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => c.once("connect", resolve).once("error", reject));
    const polled = ok(await a.call({ op: "poll", reads: [ha], writes: [], timeoutMs: 5000 }));
    assert.deepEqual(polled.readable, [ha]);
    ok(await a.call({ op: "accept", handle: ha }));
    c.destroy();
  } finally {
    await a.close();
    await b.close();
  }
});

test("a socket waiting on the host holds up no other session; the doorbell completes it", async () => {
  const a = rt.netSession();
  const b = rt.netSession();
  try {
    const h = ok(await a.call({ op: "open", family: 4, stream: true })).handle;
    ok(await a.call({ op: "listen", handle: h, backlog: 1 }));
    const port = ok(await a.call({ op: "localaddr", handle: h })).port;
    const before = { pending: rt.netServer.pending, doorbells: rt.netServer.doorbells };
    // A waits up to 10 s for a connection.
    let settled = false;
    const waiting = a.call({ op: "poll", reads: [h], writes: [], timeoutMs: 10_000 }).finally(() => {
      settled = true;
    });
    // Meanwhile B is served at once, many times over.
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) {
      const hb = ok(await b.call({ op: "open", family: 6, stream: false })).handle;
      ok(await b.call({ op: "close", handle: hb }));
    }
    assert.ok(performance.now() - t0 < 5000);
    assert.equal(settled, false, "A's poll cannot have completed: nobody connected");
    assert.equal(rt.netServer.pending, before.pending + 1);
    // The host event (a connection) completes A's poll long before its timeout.
    const t1 = performance.now();
    const c = net.connect({ host: "127.0.0.1", port });
    c.on("error", () => {});
    assert.deepEqual(ok(await waiting).readable, [h]);
    assert.ok(performance.now() - t1 < 5000);
    assert.ok(rt.netServer.doorbells > before.doorbells);
    c.destroy();
  } finally {
    await a.close();
    await b.close();
  }
});

test("the network policy holds through the network PD: loopback only, no resolver", async () => {
  const s = rt.netSession();
  try {
    const h = ok(await s.call({ op: "open", family: 4, stream: true })).handle;
    assert.deepEqual(await s.call({ op: "connect", handle: h, address: "10.1.2.3", port: 80 }), {
      ok: false,
      errno: E.ACCES,
    });
    assert.deepEqual(await s.call({ op: "bind", handle: h, address: "192.0.2.1", port: 0 }), {
      ok: false,
      errno: E.ACCES,
    });
    assert.deepEqual(
      await s.call({ op: "getaddrinfo", node: "example.com", service: "80", family: 0, passive: false }),
      {
        ok: false,
        errno: SE.AINONAME,
      },
    );
    const lo = ok(
      await s.call({ op: "getaddrinfo", node: "localhost", service: "7", family: 4, passive: false }),
    );
    assert.deepEqual(lo.addrs, [{ family: 4, address: "127.0.0.1", port: 7 }]);
    // A UDP datagram cut short by the receive buffer is reported truncated, as without the PD.
    const u = ok(await s.call({ op: "open", family: 4, stream: false })).handle;
    ok(await s.call({ op: "bind", handle: u, address: "127.0.0.1", port: 0 }));
    const to = ok(await s.call({ op: "localaddr", handle: u }));
    ok(await s.call({ op: "sendto", handle: u, data: new TextEncoder().encode("0123456789"), to }));
    ok(await s.call({ op: "poll", reads: [u], writes: [], timeoutMs: 5000 }));
    const got = ok(await s.call({ op: "recvfrom", handle: u, len: 4, peek: false }));
    assert.equal(new TextDecoder().decode(got.data), "0123");
    assert.equal(got.truncated, true);
    assert.deepEqual(await s.call({ op: "recvfrom", handle: u, len: 4, peek: false }), {
      ok: false,
      errno: E.AGAIN,
    });
  } finally {
    await s.close();
  }
});

test("a malformed request fails with a message naming it, and breaks nothing else", async () => {
  const bad = rt.netSession();
  const good = rt.netSession();
  try {
    await assert.rejects(
      bad.call({ op: "frobnicate" } as never),
      /^Error: network PD: not a network request: "frobnicate"$/,
    );
    // The same session and the others go on being served.
    ok(await bad.call({ op: "open", family: 4, stream: true }));
    ok(await good.call({ op: "open", family: 6, stream: true }));
  } finally {
    await bad.close();
    await good.close();
  }
});

test("capvisor verify: the network PD is a domain `runtime.net`, reached only by the runtime PD", async () => {
  const graph = analyseSystem(await loadSdf(system, { cores: 64 }));
  assert.deepEqual(graph.domains, [
    "runtime",
    "runtime.fs",
    "runtime.net",
    "runtime/echo_server",
    "runtime/echo_client",
    "irq:254",
    "irq:255",
    "monitor",
  ]);
  assert.deepEqual(graph.netServers, ["runtime.net"]);
  assert.deepEqual(kindsBetween(graph, "runtime", "runtime.net"), ["read", "write", "call"]);
  assert.deepEqual(kindsBetween(graph, "runtime.net", "runtime"), ["read", "write", "signal"]);
  assert.deepEqual(kindsBetween(graph, "runtime.net", "irq:254"), ["control"]);
  assert.deepEqual(kindsBetween(graph, "irq:254", "runtime.net"), ["signal"]);
  // Nothing else: no grant either way, no authority between the two servers.
  assert.equal(graph.edges.filter((e) => e.from === "runtime.net" || e.to === "runtime.net").length, 8);
  assert.deepEqual(kindsBetween(graph, "runtime.fs", "runtime.net"), []);
  assert.deepEqual(kindsBetween(graph, "runtime.net", "runtime.fs"), []);
  const m = formatMatrix(graph).split("\n");
  assert.match(
    m[0]!,
    /^from\\to\s+runtime\s+runtime\.fs\s+runtime\.net\s+runtime\/echo_server\s+runtime\/echo_client\s+irq:254\s+irq:255\s+monitor\s*$/,
  );
  assert.match(m[3]!, /^runtime\.net\s+rws\s+\.\s+\\\s+\.\s+\.\s+C\s+\.\s+\.\s*$/);
});
