/**
 * For tests that build their own C PDs and boot systems written on the fly: the toolchain and
 * the examples are set up before them, and the temporary files and booted systems go after.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import type { BootedSystem } from "../src/system/boot.js";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Set clang up and build the examples before the file's tests, then compile each of `builds`
 * ([output .wasm, source .c in `srcDir`, clang flags...]) into build/test/<name>; returns that
 * directory. Registers the after() hook that stops systems booted with `track` and removes files
 * written with `systemFile`.
 */
export function cPds(name: string, srcDir: string, builds: [string, string, ...string[]][]) {
  const out = join(ROOT, "build/test", name);
  const dirs: string[] = [];
  const booted: BootedSystem[] = [];
  before(() => {
    const run = (...args: string[]) => execFileSync("sh", args, { stdio: ["ignore", "inherit", "inherit"] });
    run(join(ROOT, "scripts/setup.sh"));
    run(join(ROOT, "scripts/build-examples.sh"));
    mkdirSync(out, { recursive: true });
    for (const [wasm, src, ...flags] of builds)
      run(join(ROOT, "scripts/build-c-pd.sh"), ...flags, join(out, wasm), join(ROOT, srcDir, src));
  });
  after(async () => {
    for (const s of booted) await s.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return {
    out,
    /** Stop this system after the tests. */
    track(sys: BootedSystem): BootedSystem {
      booted.push(sys);
      return sys;
    },
    /** Write a system description to a temporary file (removed after the tests); returns its path. */
    systemFile(xml: string): string {
      const dir = mkdtempSync(join(tmpdir(), `capvisor-${name}-`));
      dirs.push(dir);
      const file = join(dir, `${name}.system`);
      writeFileSync(file, xml);
      return file;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
