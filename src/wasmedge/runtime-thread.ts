/**
 * The last steps of every thread the WasmEdge runtime builds for a runtime PD after the loader
 * (its file-server PD, its network PD, its application threads), as Microkit's tool does for a
 * PD: an IPC buffer mapped in the thread's VSpace, TCB_Configure with its CSpace and VSpace, a
 * scheduling context with the runtime PD's budget and period on the runtime PD's core, its
 * priority, and its name. Also how such a thread and its runtime PD share a frame.
 */
import { ObjectType, PAGE_BITS } from "../kernel/types.js";
import { type Allocator, mapPage } from "../pd/alloc.js";
import {
  type Sel4Gen,
  seL4_ARM_Default_VMAttributes,
  seL4_ARM_ExecuteNever,
  seL4_CanRead,
  seL4_CanWrite,
  seL4_CapInitThreadTCB,
  seL4_DebugNameThread,
} from "../pd/libsel4.js";
import {
  seL4_SchedControl_ConfigureFlags,
  seL4_TCB_Configure,
  seL4_TCB_SetSchedParams,
} from "../pd/libsel4-invocations.js";
import type { ThreadContext } from "../pd/machine.js";
import { check, type LoadedPD, mapFrameCopy, PD_IPC_BUFFER_VADDR } from "../system/loader.js";

/**
 * Map `frame` (a cap in the root task's CNode) read-write into each VSpace of `at` (loader.ts,
 * mapFrameCopy).
 */
export function* shareFrame(
  u: ThreadContext,
  a: Allocator,
  frame: number,
  what: string,
  attributes: number,
  at: readonly (readonly [vspace: number, vaddr: number, who: string])[],
): Sel4Gen<void> {
  for (const [vspace, vaddr, who] of at)
    yield* mapFrameCopy(u, a, frame, vspace, vaddr, seL4_CanRead | seL4_CanWrite, attributes, who, what);
}

/**
 * A buffer shared by a runtime thread and its runtime PD (the file server's, the network PD's):
 * `pages` new frames, mapped read-write and not executable at `vaddr` in both VSpaces.
 */
export function* shareBuffer(
  u: ThreadContext,
  a: Allocator,
  rt: LoadedPD,
  thread: { vspace: number; name: string },
  vaddr: number,
  pages: number,
  what: string,
): Sel4Gen<void> {
  for (let p = 0; p < pages; p++) {
    const frame = yield* a.alloc(u, ObjectType.SmallPage);
    const at = vaddr + p * (1 << PAGE_BITS);
    yield* shareFrame(u, a, frame, what, seL4_ARM_Default_VMAttributes | seL4_ARM_ExecuteNever, [
      [thread.vspace, at, thread.name],
      [rt.vspaceCap, at, rt.pd.name],
    ]);
  }
}

/** The root task's caps (slots of its CNode) of the thread's objects. */
export interface RuntimeThreadCaps {
  tcb: number;
  sc: number;
  cnode: number;
  vspace: number;
}

/** Configure thread `caps.tcb` of runtime PD `rt` (see the top of this file); it is not started. */
export function* configureRuntimeThread(
  u: ThreadContext,
  a: Allocator,
  rt: LoadedPD,
  name: string,
  caps: RuntimeThreadCaps,
  priority: number,
): Sel4Gen<void> {
  const ipc = yield* a.alloc(u, ObjectType.SmallPage);
  check(
    "mapping its IPC buffer",
    name,
    yield* mapPage(
      u,
      a,
      ipc,
      PD_IPC_BUFFER_VADDR,
      seL4_CanRead | seL4_CanWrite,
      seL4_ARM_Default_VMAttributes,
      caps.vspace,
    ),
  );
  check(
    "TCB_Configure",
    name,
    yield* seL4_TCB_Configure(u, caps.tcb, caps.cnode, 0, caps.vspace, 0, PD_IPC_BUFFER_VADDR, ipc),
  );
  check(
    "SchedControl_ConfigureFlags",
    name,
    yield* seL4_SchedControl_ConfigureFlags(
      u,
      a.schedControl + rt.pd.cpu,
      caps.sc,
      rt.pd.budget,
      rt.pd.period,
      0,
      0,
      0,
    ),
  );
  check(
    "TCB_SetSchedParams",
    name,
    yield* seL4_TCB_SetSchedParams(u, caps.tcb, seL4_CapInitThreadTCB, priority, priority, caps.sc, 0),
  );
  yield* seL4_DebugNameThread(u, caps.tcb, name);
}
