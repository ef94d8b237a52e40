/**
 * What tests that boot systems share: the repository's build scripts run before the file's
 * tests, and the systems they boot and the temporary files they write are cleaned up after.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run `sh <script> args...` from the repository, its output shown. */
export function runScript(script: string, ...args: string[]): void {
  execFileSync("sh", [join(ROOT, script), ...args], { stdio: ["ignore", "inherit", "inherit"] });
}

/**
 * Before the file's tests: scripts/setup.sh (clang and friends), then each of `scripts` (paths
 * from the repository's root). After them: stop every system given to `track`, remove every
 * folder made by `tempDir` or `systemFile`. `name` names the temporary folders.
 */
export function fixtures(name: string, scripts: string[] = [], build?: () => void) {
  const dirs: string[] = [];
  const booted: { stop(): Promise<void> }[] = [];
  before(() => {
    runScript("scripts/setup.sh");
    for (const s of scripts) runScript(s);
    build?.();
  });
  after(async () => {
    for (const s of booted) await s.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), `capvisor-${name}-`));
    dirs.push(dir);
    return dir;
  };
  return {
    /** Stop this system after the tests; returns it. */
    track<S extends { stop(): Promise<void> }>(sys: S): S {
      booted.push(sys);
      return sys;
    },
    /** A new temporary folder, removed after the tests. */
    tempDir,
    /** Write a system description to `file` in a new temporary folder; returns its path. */
    systemFile(xml: string, file = `${name}.system`): string {
      const path = join(tempDir(), file);
      writeFileSync(path, xml);
      return path;
    },
  };
}

/**
 * fixtures() for tests with C PDs of their own: also builds the examples, then compiles each of
 * `builds` ([output .wasm, source .c in `srcDir`, clang flags...]) into `out`, build/test/<name>.
 */
export function cPds(name: string, srcDir: string, builds: [string, string, ...string[]][]) {
  const out = join(ROOT, "build/test", name);
  const fx = fixtures(name, ["scripts/build-examples.sh"], () => {
    mkdirSync(out, { recursive: true });
    for (const [wasm, src, ...flags] of builds)
      runScript("scripts/build-c-pd.sh", ...flags, join(out, wasm), join(ROOT, srcDir, src));
  });
  return { ...fx, out };
}
