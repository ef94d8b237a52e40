/**
 * The compiled-module cache: what lets a second start of the same application skip work.
 *
 * Starting a guest costs, in order: reading the file, the preemption instrumentation (Binaryen
 * reads, rewrites and writes the whole module: by far the most expensive step, tens of ms even for
 * a hello-world built with wasi-libc), V8's compilation, instantiation. The cache keeps
 * - on disk, under `cacheDir()`, the instrumented bytes, named by the SHA-256 of the original
 *   module, so a later process skips the instrumentation;
 * - in memory, the compiled `WebAssembly.Module`, so a later start in the same process (the
 *   runtime PD running many apps) skips compilation too;
 * - in memory, what the CLI learnt of the original bytes (ModuleFacts: the structural parse, that
 *   V8 validated them, the exported functions' signatures), so a later start skips re-parsing and
 *   re-validating too. These are pure functions of the bytes, so the SHA-256 is a sound key; on a
 *   hello-world they cost more than instantiating it (about 0.1 ms each, bench:wasmedge).
 *
 * Why not V8's compiled code on disk: Node 20 gives no way to get it. `v8.serialize` of a
 * `WebAssembly.Module` writes 2 bytes (a reference to a transfer slot, not the code) and
 * `v8.deserialize` of them throws "Unable to deserialize cloned data"; structured clone
 * (`structuredClone`, `postMessage`) shares the compiled module only between threads of one
 * process; V8's own code cache for Wasm (`WasmStreaming::SetCompiledModuleBytes`) is only reached
 * by embedders, and `node:module`'s compile cache covers JavaScript only. V8 does compile lazily
 * (Liftoff per function on first call), which keeps compiling a cached module's bytes cheap.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { FuncType, ParsedModule } from "./parse.js";
import type { PreparedModule } from "./types.js";
import { exportedFunctions, type FuncSig } from "./wasi/module.js";

/**
 * instrument.ts's FUEL_EXPORT (docs/wasm-abi.md, "Preemption"), repeated here because importing
 * instrument.ts loads Binaryen (about 250 ms): a cache hit must not pay for it.
 */
const FUEL_EXPORT = "capvisor_fuel";

/**
 * Names the format of cached files: bump it whenever the instrumentation changes what it writes,
 * so that files made by an older capvisor are ignored rather than trusted.
 */
export const CACHE_FORMAT = "i1";

/** CAPVISOR_CACHE_DIR, else $XDG_CACHE_HOME/capvisor, else ~/.cache/capvisor. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CAPVISOR_CACHE_DIR) return env.CAPVISOR_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "capvisor");
  return join(homedir(), ".cache", "capvisor");
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Where a module came from, and what each step cost (ms). */
export interface PrepareResult {
  prepared: PreparedModule;
  /** "memory": compiled module reused; "disk": instrumented bytes read back; "miss": neither. */
  hit: "memory" | "disk" | "miss";
  instrumentMs: number;
  compileMs: number;
  /** The instrumented file, when the disk cache is in use. */
  path?: string;
}

/** What to make of the bytes before compiling them. */
export interface PrepareOptions {
  /** Add the fuel checks (default true). Only instrumented modules are kept on disk. */
  instrument?: boolean;
  /** A cheap rewrite applied first (e.g. the memory page limit); `name` goes into the key. */
  transform?: { name: string; apply: (bytes: Uint8Array) => Uint8Array };
  /** sha256(bytes), when the caller has it already (hashing is most of a memory hit's cost). */
  sha256?: string;
}

/**
 * What is known of a module's original bytes, kept by their hash. Only successes are kept: a
 * module that fails to parse or validate is examined again on every start, so its report stays
 * complete (and nothing about it is trusted).
 */
export interface ModuleFacts {
  /** The structural parse (parse.ts), for the CLI's mode and reactor checks. */
  parsed?: ParsedModule;
  /** Each function's type by function index (imports first), from `parsed`. */
  funcTypes?: (FuncType | undefined)[];
  /** True once V8 has validated the bytes. */
  valid?: true;
  /** The exported functions' signatures (the runner converts reactor arguments with them). */
  exports?: Map<string, FuncSig>;
}

export interface CacheOptions {
  /** Directory of the disk cache; `null` turns the disk cache off. Default: cacheDir(). */
  dir?: string | null;
}

/** A compiled module must come from instrumented bytes: anything else could not be preempted. */
function isInstrumented(m: WebAssembly.Module): boolean {
  return WebAssembly.Module.exports(m).some((e) => e.name === FUEL_EXPORT && e.kind === "global");
}

export class ModuleCache {
  readonly dir: string | null;
  private readonly compiled = new Map<string, WebAssembly.Module>();
  private readonly known = new Map<string, ModuleFacts>();

  constructor(opts: CacheOptions = {}) {
    this.dir = opts.dir === undefined ? cacheDir() : opts.dir;
  }

  /** The file of an instrumented variant; `variant` is "" or a transform's name. */
  pathFor(sha: string, variant = ""): string | undefined {
    return this.dir === null
      ? undefined
      : join(this.dir, `${sha}${variant && `.${variant}`}.${CACHE_FORMAT}.wasm`);
  }

  /**
   * The facts kept for the module whose original bytes hash to `sha`: a record the caller fills
   * in as it learns them (created empty on first use, kept as long as the compiled modules).
   */
  facts(sha: string): ModuleFacts {
    let f = this.known.get(sha);
    if (f === undefined) {
      f = {};
      this.known.set(sha, f);
    }
    return f;
  }

  /**
   * The instrumented, compiled form of `bytes`. Throws what `instrumentPreemption` throws
   * (WasmInstrumentError) for a module that is invalid; validate first for WasmEdge's messages.
   */
  async prepare(bytes: Uint8Array, opts: PrepareOptions = {}): Promise<PrepareResult> {
    const sha = opts.sha256 ?? sha256(bytes);
    const facts = this.facts(sha);
    const instrumented = opts.instrument ?? true;
    const variant = opts.transform?.name ?? "";
    const key = `${sha}/${variant}/${instrumented}`;
    const path = instrumented ? this.pathFor(sha, variant) : undefined;
    const result = (
      module: WebAssembly.Module,
      hit: PrepareResult["hit"],
      instrumentMs: number,
      compileMs: number,
    ) => {
      // Read from the original bytes (once they compiled: invalid bytes throw what the step
      // that failed throws): neither the memory limit nor the fuel checks change an exported
      // function.
      facts.exports ??= exportedFunctions(bytes);
      return {
        prepared: { module, sha256: sha, instrumented, exports: facts.exports },
        hit,
        instrumentMs,
        compileMs,
        path,
      };
    };
    const memo = this.compiled.get(key);
    if (memo !== undefined) return result(memo, "memory", 0, 0);

    if (path !== undefined) {
      const cached = readOrNull(path);
      if (cached !== null) {
        const t0 = performance.now();
        const module = compileOrNull(cached);
        const compileMs = performance.now() - t0;
        // A damaged or foreign file is not an error: it is rebuilt below and overwritten.
        // (Only instrumented variants are on disk, so the check applies to every file read.)
        if (module !== null && isInstrumented(module)) {
          this.compiled.set(key, module);
          return result(module, "disk", 0, compileMs);
        }
      }
    }

    const t0 = performance.now();
    let out = opts.transform ? opts.transform.apply(bytes) : bytes;
    if (instrumented) {
      const { instrumentPreemption } = await import("../pd/wasm/instrument.js");
      out = instrumentPreemption(out);
    }
    const t1 = performance.now();
    const module = new WebAssembly.Module(out);
    const t2 = performance.now();
    this.compiled.set(key, module);
    if (path !== undefined) store(path, out);
    return result(module, "miss", t1 - t0, t2 - t1);
  }

  /**
   * `prepare`'s module, or undefined when the bytes do not make one: the runner (runWasi) then
   * reports what is wrong, as `capvisor run` does.
   */
  async preparedOrNothing(bytes: Uint8Array, opts: PrepareOptions = {}): Promise<PreparedModule | undefined> {
    try {
      return (await this.prepare(bytes, opts)).prepared;
    } catch {
      return undefined;
    }
  }

  /** Forgets the compiled modules and facts held in memory (the disk cache stays). */
  clearMemory(): void {
    this.compiled.clear();
    this.known.clear();
  }
}

function readOrNull(path: string): Uint8Array | null {
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

function compileOrNull(bytes: Uint8Array): WebAssembly.Module | null {
  try {
    return new WebAssembly.Module(bytes);
  } catch {
    return null;
  }
}

/**
 * Writes through a temporary file and a rename, so that a concurrent start never reads a half
 * written module. A cache that cannot be written (read-only home, full disk) only costs speed.
 */
function store(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch {
    // best effort, see above
  }
}

let shared: ModuleCache | undefined;
/** The process-wide cache (disk cache in cacheDir() as the environment says at first use). */
export function defaultCache(): ModuleCache {
  shared ??= new ModuleCache();
  return shared;
}
