/**
 * The domains the WasmEdge runtime adds to the authority analysis (authority.ts).
 *
 * After the loader, the runtime builds for each runtime PD a file-server PD, a network PD and two
 * doorbells (runtime-pd.ts, buildRuntimeKernelObjects); verify runs that same code, with no
 * program and no application file, so that what it analyses is what boots. The file server is a
 * domain `<pd>.fs` and the network PD a domain `<pd>.net`, each read from its thread exactly like
 * a PD (CSpace, VSpace, bound notification), as is each application thread (app-threads.ts:
 * `<pd>/<app>`, and `<pd>/job-N` for a VM's jobs), and the doorbells are `irq:N` domains: the runtime
 * PD's, and the network PD's, which signals the network PD's own notification. Their access to
 * the host (the file server's to the runtime's capvisor:dirs, the network PD's to the host
 * network under the network policy) is outside the kernel model: not analysed.
 */
import type { KObject, TCB, VSpace } from "../kernel/structures.js";
import { PAGE_BITS, TCB_VTABLE } from "../kernel/types.js";
import type { LoadedPD } from "../system/loader.js";
import type { SdfLocation, SdfMap, SystemDescription } from "../system/sdf-types.js";
import { SHM_BYTES, SHM_VADDR } from "../wasmedge/fileserver-pd.js";
import { NET_SHM_BYTES, NET_SHM_VADDR } from "../wasmedge/netserver-pd.js";
import {
  appThreadNames,
  isRuntimePD,
  type RuntimeKernelObjects,
  runtimeConfig,
} from "../wasmedge/runtime-pd.js";

/** A thread the analysis reads as a domain: a PD's, a runtime server's, or a virtual machine's vcpu. */
export interface DomainThread {
  name: string;
  tcb: TCB;
  /** The `<map>`s behind its mappings (display names of shared frames). */
  maps: readonly SdfMap[];
}

/** The domain of runtime PD `pd`'s file server (the name buildFileServerPD gives its thread). */
export const fileServerName = (pd: string): string => `${pd}.fs`;
/** The domain of runtime PD `pd`'s network PD (the name buildNetServerPD gives its thread). */
export const netServerName = (pd: string): string => `${pd}.net`;

/** Claims the names of every runtime PD's servers, for the check that domain names are unique. */
export function claimRuntimeDomains(
  sys: SystemDescription,
  claim: (name: string, what: string, loc: SdfLocation) => void,
): void {
  for (const pd of sys.allProtectionDomains)
    if (isRuntimePD(pd)) {
      claim(fileServerName(pd.name), `the file-server PD of runtime PD "${pd.name}"`, pd.loc);
      claim(netServerName(pd.name), `the network PD of runtime PD "${pd.name}"`, pd.loc);
      for (const name of appThreadNames(pd.name, runtimeConfig(sys, pd, { hostFiles: false })))
        claim(name, `an application thread of runtime PD "${pd.name}"`, pd.loc);
    }
}

/** The servers of runtime PD `l`, read as domains right after it: its file server, its network PD. */
export function runtimeServerThreads(runtimes: readonly RuntimeKernelObjects[], l: LoadedPD): DomainThread[] {
  return runtimes
    .filter((r) => r.rt === l)
    .flatMap((r) => [
      { name: fileServerName(l.pd.name), tcb: r.fileServer.tcb, maps: [] },
      { name: netServerName(l.pd.name), tcb: r.netServer.tcb, maps: [] },
      ...r.appThreads.map((t) => ({ name: t.name, tcb: t.tcb, maps: [] })),
    ]);
}

/**
 * Names the frames of the buffers a runtime PD shares with its servers (fileserver-pd.ts,
 * netserver-pd.ts), mapped at the same address in both, as read from each server's VSpace.
 */
export function labelRuntimeBuffers(
  runtimes: readonly RuntimeKernelObjects[],
  label: Map<KObject, string>,
): void {
  for (const r of runtimes)
    for (const [tcb, base, bytes, what] of [
      [r.fileServer.tcb, SHM_VADDR, SHM_BYTES, "file-server buffer"],
      [r.netServer.tcb, NET_SHM_VADDR, NET_SHM_BYTES, "network buffer"],
    ] as const) {
      const vs = tcb.ctes[TCB_VTABLE]!.cap.obj as VSpace;
      for (const m of vs.mappings.values())
        if (m.vaddr >= base && m.vaddr < base + bytes)
          label.set(m.frame, `page ${(m.vaddr - base) >> PAGE_BITS} of the ${what} of ${r.rt.pd.name}`);
    }
}
