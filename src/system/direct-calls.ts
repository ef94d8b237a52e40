/**
 * Which protected calls of a system are made directly (platform/direct-call.ts, DESIGN.md
 * decision 3): for every passive server whose protected() needs no kernel
 * (pd/wasm/direct-call.ts), its memory becomes one shared WebAssembly.Memory, and every Wasm PD
 * that may call it (a channel end with pp="true" facing it) gets an instance of it to call.
 *
 * A server qualifies when it is passive, is a Wasm PD of its own (not a runtime's), maps no
 * memory region (its region copies are kept coherent only at its own kernel entries, decision 5)
 * and its module passes the analysis. Everything else is called through the kernel as before.
 */

import { directCallBlocker } from "../pd/wasm/direct-call.js";
import { SHARED_MEMORY_MAX_PAGES, shareMemory } from "../pd/wasm/instrument.js";
import type { DirectCallInit, DirectServerInit } from "../platform/channel.js";
import { DC_BUSY, DC_BYTES, DC_STATE } from "../platform/direct-call.js";
import { BASE_ENDPOINT_CAP } from "./loader.js";
import type { SdfProtectionDomain, SystemDescription } from "./sdf-types.js";

export interface DirectCallPlan {
  /** A server's program bytes (memory imported) and its side, by PD. */
  servers: Map<SdfProtectionDomain, { wasm: Uint8Array; init: DirectServerInit }>;
  /** Each caller's direct calls, by PD. */
  callers: Map<SdfProtectionDomain, DirectCallInit[]>;
  /** Passive servers called through the kernel, and why (for the curious: `capvisor up -v`). */
  notDirect: Map<string, string>;
}

/**
 * Plans the direct calls of `sys`; `images` are the PDs' instrumented modules in
 * allProtectionDomains order (null for a runtime PD).
 */
export function planDirectCalls(
  sys: SystemDescription,
  images: readonly (Uint8Array | null)[],
): DirectCallPlan {
  const plan: DirectCallPlan = { servers: new Map(), callers: new Map(), notDirect: new Map() };
  const pds = sys.allProtectionDomains;
  const imageOf = (pd: SdfProtectionDomain) => images[pds.indexOf(pd)] ?? null;
  for (const pd of pds) {
    if (!pd.passive) continue;
    const image = imageOf(pd);
    if (image === null) continue;
    if (pd.maps.length > 0) {
      plan.notDirect.set(pd.name, "it maps memory regions");
      continue;
    }
    const blocker = directCallBlocker(image);
    if (blocker !== null) {
      plan.notDirect.set(pd.name, blocker);
      continue;
    }
    const callers: [SdfProtectionDomain, number, number][] = [];
    for (const ch of sys.channels)
      for (const [me, other] of [
        [ch.ends[0], ch.ends[1]],
        [ch.ends[1], ch.ends[0]],
      ] as const) {
        if (other.pd !== pd.name || !me.pp) continue;
        const caller = pds.find((p) => p.name === me.pd);
        if (caller !== undefined && imageOf(caller) !== null) callers.push([caller, me.id, other.id]);
      }
    if (callers.length === 0) continue;
    const own = shareMemory(image, true);
    const theirs = shareMemory(image, false).wasm;
    const memory = new WebAssembly.Memory({
      initial: own.initialPages,
      maximum: SHARED_MEMORY_MAX_PAGES,
      shared: true,
    });
    const lock = new SharedArrayBuffer(DC_BYTES);
    // The server holds it until it first waits in its event loop's receive.
    new Int32Array(lock)[DC_STATE] = DC_BUSY;
    plan.servers.set(pd, { wasm: own.wasm, init: { memory, lock } });
    for (const [caller, id, serverId] of callers) {
      const list = plan.callers.get(caller) ?? [];
      list.push({
        server: pd.name,
        cap: BASE_ENDPOINT_CAP + id,
        channel: serverId,
        wasm: theirs,
        memory,
        lock,
      });
      plan.callers.set(caller, list);
    }
  }
  return plan;
}
