/**
 * `capvisor console <vm>`: an interactive serial console to a VM of a system that `capvisor up`
 * is running. `up` serves each VM's console on a Unix socket (one per VM name, in a directory of
 * the user's own); `console` connects to it and joins it to the terminal, raw, until Ctrl-]
 * (as telnet does) or until the system stops.
 */
import { mkdirSync, rmSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where the console of VM `vm` is served. */
export function consoleSocket(vm: string): string {
  const dir = process.env.XDG_RUNTIME_DIR ?? join(tmpdir(), `capvisor-${process.getuid?.() ?? 0}`);
  return join(dir, "capvisor", `console-${vm}.sock`);
}

export interface ConsoleTarget {
  vm: string;
  sendConsole(bytes: Uint8Array): void;
  onConsole(listener: (bytes: Uint8Array) => void): () => void;
}

/** Serve a VM's console for `capvisor console`; returns a function that stops serving. */
export function serveConsole(target: ConsoleTarget, onError: (message: string) => void): () => void {
  const path = consoleSocket(target.vm);
  mkdirSync(join(path, ".."), { recursive: true, mode: 0o700 });
  // A socket file left by a system that was killed: nothing listens there any more.
  rmSync(path, { force: true });
  const server: Server = createServer((sock) => {
    const stop = target.onConsole((bytes) => sock.write(bytes));
    sock.on("data", (d: Buffer) => target.sendConsole(new Uint8Array(d)));
    sock.on("close", stop);
    sock.on("error", stop);
  });
  server.on("error", (e) => onError(`cannot serve the console of ${target.vm} at ${path}: ${e.message}`));
  server.listen(path);
  server.unref();
  return () => {
    server.close();
    rmSync(path, { force: true });
  };
}

/** Ctrl-] */
const DETACH = 0x1d;

/** Join the terminal to VM `vm`'s console. Resolves with the exit code. */
export function attachConsole(vm: string): Promise<number> {
  const path = consoleSocket(vm);
  return new Promise((resolvePromise) => {
    const sock = connect(path);
    const stdin = process.stdin;
    const restore = (): void => {
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
    };
    sock.on("connect", () => {
      process.stderr.write(`capvisor: connected to ${vm}'s console; Ctrl-] to leave\r\n`);
      if (stdin.isTTY) stdin.setRawMode(true);
      stdin.on("data", (d: Buffer) => {
        const at = d.indexOf(DETACH);
        if (at >= 0) {
          if (at > 0) sock.write(d.subarray(0, at));
          sock.end();
          return;
        }
        sock.write(d);
      });
      // Not a terminal (a script): end of input ends the session once the guest has answered.
      stdin.on("end", () => setTimeout(() => sock.end(), 500));
    });
    sock.on("data", (d: Buffer) => process.stdout.write(d));
    sock.on("close", () => {
      restore();
      resolvePromise(0);
    });
    sock.on("error", (e: NodeJS.ErrnoException) => {
      restore();
      const why =
        e.code === "ENOENT" || e.code === "ECONNREFUSED"
          ? `no running system has a VM named "${vm}"; start one with "capvisor up <system.xml>"`
          : e.message;
      process.stderr.write(`capvisor: console ${vm}: ${why}\n`);
      resolvePromise(1);
    });
  });
}
