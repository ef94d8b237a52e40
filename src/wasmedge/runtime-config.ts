/**
 * The configuration of a WasmEdge runtime PD: its `capvisor:` attributes (documented at the top
 * of runtime-pd.ts), read from the system description and checked, with a LoadError
 * `file:line:column: <protection_domain>: what is wrong; what to do` for anything wrong.
 */
import { accessSync, constants, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { LoadError } from "../system/loader.js";
import type { SdfProtectionDomain, SystemDescription } from "../system/sdf-types.js";
import type { Preopen } from "./types.js";

export interface RuntimeApp {
  /** How its output is labelled (`<pd>/<name>`). */
  name: string;
  /** Absolute path of the module. */
  path: string;
  /** argv, argv[0] being the module path as written. */
  args: string[];
}

export interface RuntimeConfig {
  apps: RuntimeApp[];
  preopens: Preopen[];
  env: [string, string][];
  /** The cross-VM channel it serves jobs on: its channel id and the ring region. */
  vmChannel: { id: number; ring: string } | null;
}

const CONFIG_KEYS = ["apps", "dirs", "env"];

export interface RuntimeConfigOptions {
  /**
   * Check that the applications can be read and the preopened directories exist (default true).
   * `capvisor verify` turns it off: it builds only the runtime's kernel objects, which do not depend
   * on the host's files, so it can analyse a description whose applications are not built yet.
   */
  hostFiles?: boolean;
}

/** Whether `pd` is a WasmEdge runtime PD (`capvisor:runtime="wasmedge"`). */
export function isRuntimePD(pd: SdfProtectionDomain): boolean {
  return pd.extensions.runtime === "wasmedge";
}

/** The runtime configuration of `pd`, checked; throws LoadError for anything wrong. */
export function runtimeConfig(
  sys: SystemDescription,
  pd: SdfProtectionDomain,
  opts: RuntimeConfigOptions = {},
): RuntimeConfig {
  const hostFiles = opts.hostFiles ?? true;
  const where = `${sys.file}:${pd.loc.line}:${pd.loc.column}: <protection_domain>: PD "${pd.name}"`;
  const bad = (msg: string): never => {
    throw new LoadError(`${where}: ${msg}`);
  };
  const ext = pd.extensions;
  if (ext.runtime !== "wasmedge")
    bad(`capvisor:runtime="${ext.runtime}" is not a runtime capvisor has; write capvisor:runtime="wasmedge"`);
  if (pd.irqs.length > 0 || pd.children.length > 0 || pd.virtualMachine !== undefined)
    bad("a runtime PD takes no <irq>, child PD or <virtual_machine>; remove them");
  // Its one channel and one mapping are the cross-VM channel (docs/vm-channel.md), if any.
  let vmChannel: RuntimeConfig["vmChannel"] = null;
  if ((ext.channel === undefined) !== (ext.ring === undefined))
    bad("capvisor:channel and capvisor:ring go together: name both the channel id and the ring region");
  if (ext.channel !== undefined) {
    const id = Number(ext.channel);
    if (
      !Number.isInteger(id) ||
      !sys.channels.some((c) => c.ends.some((e) => e.pd === pd.name && e.id === id && e.notify))
    )
      bad(
        `capvisor:channel="${ext.channel}": this PD has no channel end with id ${ext.channel} that may notify; declare the <channel>`,
      );
    const mr = sys.memoryRegions.find((r) => r.name === ext.ring);
    const map = pd.maps.find((m) => m.mr === ext.ring);
    if (mr === undefined || map === undefined || !map.perms.write)
      bad(`capvisor:ring="${ext.ring}": this PD must map memory region "${ext.ring}" with perms="rw"`);
    if (mr!.size < 0x10000)
      bad(`memory region "${ext.ring}" is ${mr!.size} bytes; a ring needs at least 64 KiB (0x10000)`);
    vmChannel = { id, ring: ext.ring! };
  }
  if (pd.maps.some((m) => m.mr !== vmChannel?.ring))
    bad("a runtime PD maps no memory region but its capvisor:ring; remove the other <map>s");
  if (sys.channels.some((c) => c.ends.some((e) => e.pd === pd.name && e.id !== vmChannel?.id)))
    bad("a runtime PD's only channel is its capvisor:channel; remove the other <channel>s naming it");
  if (pd.passive) bad('a runtime PD cannot be passive; remove passive="true"');
  const base = dirname(sys.file);

  const preopens: Preopen[] = [];
  for (const spec of (ext.dirs ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    const parts = spec.split(":");
    const ro = parts.length === 3 && parts[2] === "readonly";
    if (!(parts.length === 2 || ro) || !parts[0]!.startsWith("/") || parts[1] === "")
      bad(
        `capvisor:dirs entry "${spec}" is not guest:host or guest:host:readonly with an absolute guest path`,
      );
    const host = resolve(base, parts[1]!);
    let isDir = !hostFiles;
    try {
      if (hostFiles) isDir = statSync(host).isDirectory();
    } catch {
      // Reported below, with what to do.
    }
    if (!isDir) bad(`capvisor:dirs: "${parts[1]}" (${host}) is not a directory; create it or fix the path`);
    preopens.push({ guest: parts[0]!, host, ...(ro ? { readOnly: true } : {}) });
  }

  const env: [string, string][] = [];
  for (const kv of (ext.env ?? "").split(/\s+/).filter((s) => s !== "")) {
    const eq = kv.indexOf("=");
    if (eq <= 0) bad(`capvisor:env entry "${kv}" is not K=V`);
    env.push([kv.slice(0, eq), kv.slice(eq + 1)]);
  }

  // A runtime PD that serves a VM may start with no application of its own.
  if (pd.programImage.path === "" && ext.apps === undefined && vmChannel !== null)
    return { apps: [], preopens, env, vmChannel };
  if (pd.programImage.path === "")
    bad(
      "a runtime PD needs a <program_image> (its first application) or capvisor:channel and capvisor:ring (it serves a VM)",
    );
  const lines =
    ext.apps === undefined
      ? [[pd.programImage.path]]
      : ext.apps
          .split(";")
          .map((a) =>
            a
              .trim()
              .split(/\s+/)
              .filter((s) => s !== ""),
          )
          .filter((a) => a.length > 0);
  if (lines.length === 0) bad('capvisor:apps lists no application; write capvisor:apps="app.wasm [args...]"');
  if (resolve(base, lines[0]![0]!) !== resolve(base, pd.programImage.path))
    bad(
      `<program_image path="${pd.programImage.path}"> must name the first application of capvisor:apps ("${lines[0]![0]}")`,
    );
  const apps: RuntimeApp[] = [];
  const names = new Map<string, number>();
  for (const argv of lines) {
    const path = resolve(base, argv[0]!);
    try {
      if (hostFiles) accessSync(path, constants.R_OK);
    } catch (e) {
      bad(
        `cannot read application "${argv[0]}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); build it first`,
      );
    }
    const stem = basename(path).replace(/\.wasm$/, "");
    const n = (names.get(stem) ?? 0) + 1;
    names.set(stem, n);
    apps.push({ name: n === 1 ? stem : `${stem}-${n}`, path, args: argv });
  }
  return { apps, preopens, env, vmChannel };
}

/** Checks the `capvisor:` attributes of every PD: runtime configuration only on runtime PDs. */
export function runtimeConfigs(
  sys: SystemDescription,
  opts: RuntimeConfigOptions = {},
): Map<SdfProtectionDomain, RuntimeConfig> {
  const out = new Map<SdfProtectionDomain, RuntimeConfig>();
  for (const pd of sys.allProtectionDomains) {
    if (isRuntimePD(pd)) out.set(pd, runtimeConfig(sys, pd, opts));
    else if (pd.extensions.runtime === undefined)
      for (const key of CONFIG_KEYS)
        if (pd.extensions[key] !== undefined)
          throw new LoadError(
            `${sys.file}:${pd.loc.line}:${pd.loc.column}: <protection_domain>: PD "${pd.name}": capvisor:${key} configures a runtime PD; add capvisor:runtime="wasmedge" or remove it`,
          );
  }
  return out;
}
