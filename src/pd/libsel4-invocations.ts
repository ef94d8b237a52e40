/**
 * The invocation stubs of libsel4's generated sel4_client.h for AArch64 with CONFIG_KERNEL_MCS
 * (libsel4 include/interfaces/object-api.xml, arch_include/arm/.../object-api-arch.xml,
 * sel4_arch_include/aarch64/.../object-api-sel4-arch.xml, marshalled as
 * tools/syscall_stub_gen.py does):
 * - parameters of a capability type (seL4_CPtr, seL4_CNode, seL4_TCB, seL4_Untyped, ...) after
 *   the service cap become extra caps, in order; all others are packed into message words in
 *   order, each aligned to min(its size, 64 bits): seL4_Bool is 1 bit, seL4_Uint8 8, seL4_Uint16
 *   16, seL4_Word / seL4_Time / seL4_CapRights_t / seL4_ARM_VMAttributes a whole word;
 * - the tag is seL4_MessageInfo_new(label, 0, #extra caps, #words); the error is the reply's label;
 * - results come back from MR0.. (x2..x5, then the IPC buffer).
 * Word parameters accept number | bigint (see libsel4.ts). seL4_CNode_SaveCaller is not here:
 * libsel4 has no such invocation under MCS.
 */

import { Invocation, NUM_REGISTERS, type SeL4Error } from "../kernel/types.js";
import { invokeStub, type Sel4Gen, stubResult, stubResultBig, type Word, wordLo } from "./libsel4.js";
import type { ThreadContext } from "./machine.js";

type Err = Sel4Gen<SeL4Error>;

function* call(
  u: ThreadContext,
  service: Word,
  label: Invocation,
  caps: readonly Word[],
  words: readonly Word[],
): Err {
  return (yield* invokeStub(u, service, label, caps, words)) as SeL4Error;
}
function u8(w: Word): number {
  return wordLo(w) & 0xff;
}
function bit(b: boolean): number {
  return b ? 1 : 0;
}

// ---- Untyped ----

export function seL4_Untyped_Retype(
  u: ThreadContext,
  service: Word,
  type: Word,
  size_bits: Word,
  root: Word,
  node_index: Word,
  node_depth: Word,
  node_offset: Word,
  num_objects: Word,
): Err {
  return call(
    u,
    service,
    Invocation.UntypedRetype,
    [root],
    [type, size_bits, node_index, node_depth, node_offset, num_objects],
  );
}

// ---- TCB ----

/** seL4_UserContext as words in seL4's AArch64 order (REG_* indices); missing entries are 0. */
export type UserContext = ArrayLike<Word>;

export interface TCBReadRegistersResult {
  error: SeL4Error;
  /** NUM_REGISTERS words; those at index >= max(count, 4) are 0n (not read). */
  regs: bigint[];
}
export function* seL4_TCB_ReadRegisters(
  u: ThreadContext,
  service: Word,
  suspend_source: boolean,
  arch_flags: number,
  count: Word,
): Sel4Gen<TCBReadRegistersResult> {
  const error = yield* call(
    u,
    service,
    Invocation.TCBReadRegisters,
    [],
    [bit(suspend_source) | (u8(arch_flags) << 8), count],
  );
  const regs = new Array<bigint>(NUM_REGISTERS).fill(0n);
  if (error !== 0) return { error, regs };
  // The stub copies pc, sp, spsr, x0 from x2..x5 always, then GetMR(i) for 4 <= i < count.
  const n = Math.min(wordLo(count), NUM_REGISTERS);
  for (let i = 0; i < Math.max(n, 4); i++) regs[i] = stubResultBig(u, i);
  return { error, regs };
}
/**
 * MR0 = resume_target | arch_flags << 8, MR1 = count, MR2.. = regs; only the first `count`
 * registers are written (regs 0..1 always travel in x4, x5), the length is always 2 + 36.
 */
export function* seL4_TCB_WriteRegisters(
  u: ThreadContext,
  service: Word,
  resume_target: boolean,
  arch_flags: number,
  count: Word,
  regs: UserContext,
): Err {
  const n = Math.min(wordLo(count), NUM_REGISTERS);
  const words: Word[] = new Array<Word>(2 + NUM_REGISTERS).fill(0);
  words[0] = bit(resume_target) | (u8(arch_flags) << 8);
  words[1] = count;
  for (let i = 0; i < NUM_REGISTERS; i++) if (i < Math.max(n, 2)) words[2 + i] = regs[i] ?? 0;
  // Registers past `count` are not written to the IPC buffer by the real stub; keep what is there.
  const b = u.ipcBuffer;
  for (let i = Math.max(n, 2); i < NUM_REGISTERS; i++) {
    words[2 + i] = (BigInt(b[2 * (3 + i) + 1]!) << 32n) | BigInt(b[2 * (3 + i)]!);
  }
  return yield* call(u, service, Invocation.TCBWriteRegisters, [], words);
}
export function seL4_TCB_CopyRegisters(
  u: ThreadContext,
  service: Word,
  source: Word,
  suspend_source: boolean,
  resume_target: boolean,
  transfer_frame: boolean,
  transfer_integer: boolean,
  arch_flags: number,
): Err {
  const w =
    bit(suspend_source) |
    (bit(resume_target) << 1) |
    (bit(transfer_frame) << 2) |
    (bit(transfer_integer) << 3) |
    (u8(arch_flags) << 8);
  return call(u, service, Invocation.TCBCopyRegisters, [source], [w]);
}
/** MCS Configure: caps cspace_root, vspace_root, bufferFrame; words cspace_root_data, vspace_root_data, buffer. */
export function seL4_TCB_Configure(
  u: ThreadContext,
  service: Word,
  cspace_root: Word,
  cspace_root_data: Word,
  vspace_root: Word,
  vspace_root_data: Word,
  buffer: Word,
  bufferFrame: Word,
): Err {
  return call(
    u,
    service,
    Invocation.TCBConfigure,
    [cspace_root, vspace_root, bufferFrame],
    [cspace_root_data, vspace_root_data, buffer],
  );
}
export function seL4_TCB_SetPriority(u: ThreadContext, service: Word, authority: Word, priority: Word): Err {
  return call(u, service, Invocation.TCBSetPriority, [authority], [priority]);
}
export function seL4_TCB_SetMCPriority(u: ThreadContext, service: Word, authority: Word, mcp: Word): Err {
  return call(u, service, Invocation.TCBSetMCPriority, [authority], [mcp]);
}
/** MCS SetSchedParams: caps authority, sched_context, fault_ep; words mcp, priority. */
export function seL4_TCB_SetSchedParams(
  u: ThreadContext,
  service: Word,
  authority: Word,
  mcp: Word,
  priority: Word,
  sched_context: Word,
  fault_ep: Word,
): Err {
  return call(
    u,
    service,
    Invocation.TCBSetSchedParams,
    [authority, sched_context, fault_ep],
    [mcp, priority],
  );
}
export function seL4_TCB_SetTimeoutEndpoint(u: ThreadContext, service: Word, timeout_fault_ep: Word): Err {
  return call(u, service, Invocation.TCBSetTimeoutEndpoint, [timeout_fault_ep], []);
}
export function seL4_TCB_SetIPCBuffer(u: ThreadContext, service: Word, buffer: Word, bufferFrame: Word): Err {
  return call(u, service, Invocation.TCBSetIPCBuffer, [bufferFrame], [buffer]);
}
/** MCS SetSpace: caps fault_ep, cspace_root, vspace_root; words cspace_root_data, vspace_root_data. */
export function seL4_TCB_SetSpace(
  u: ThreadContext,
  service: Word,
  fault_ep: Word,
  cspace_root: Word,
  cspace_root_data: Word,
  vspace_root: Word,
  vspace_root_data: Word,
): Err {
  return call(
    u,
    service,
    Invocation.TCBSetSpace,
    [fault_ep, cspace_root, vspace_root],
    [cspace_root_data, vspace_root_data],
  );
}
export function seL4_TCB_Suspend(u: ThreadContext, service: Word): Err {
  return call(u, service, Invocation.TCBSuspend, [], []);
}
export function seL4_TCB_Resume(u: ThreadContext, service: Word): Err {
  return call(u, service, Invocation.TCBResume, [], []);
}
export function seL4_TCB_BindNotification(u: ThreadContext, service: Word, notification: Word): Err {
  return call(u, service, Invocation.TCBBindNotification, [notification], []);
}
export function seL4_TCB_UnbindNotification(u: ThreadContext, service: Word): Err {
  return call(u, service, Invocation.TCBUnbindNotification, [], []);
}
export function seL4_TCB_SetTLSBase(u: ThreadContext, service: Word, tls_base: Word): Err {
  return call(u, service, Invocation.TCBSetTLSBase, [], [tls_base]);
}
export interface TCBSetFlagsResult {
  error: SeL4Error;
  flags: number;
}
export function* seL4_TCB_SetFlags(
  u: ThreadContext,
  service: Word,
  clear: Word,
  set: Word,
): Sel4Gen<TCBSetFlagsResult> {
  const error = yield* call(u, service, Invocation.TCBSetFlags, [], [clear, set]);
  return { error, flags: error === 0 ? stubResult(u, 0) : 0 };
}

// ---- CNode ----

export function seL4_CNode_Revoke(u: ThreadContext, service: Word, index: Word, depth: number): Err {
  return call(u, service, Invocation.CNodeRevoke, [], [index, u8(depth)]);
}
export function seL4_CNode_Delete(u: ThreadContext, service: Word, index: Word, depth: number): Err {
  return call(u, service, Invocation.CNodeDelete, [], [index, u8(depth)]);
}
export function seL4_CNode_CancelBadgedSends(
  u: ThreadContext,
  service: Word,
  index: Word,
  depth: number,
): Err {
  return call(u, service, Invocation.CNodeCancelBadgedSends, [], [index, u8(depth)]);
}
export function seL4_CNode_Copy(
  u: ThreadContext,
  service: Word,
  dest_index: Word,
  dest_depth: number,
  src_root: Word,
  src_index: Word,
  src_depth: number,
  rights: number,
): Err {
  return call(
    u,
    service,
    Invocation.CNodeCopy,
    [src_root],
    [dest_index, u8(dest_depth), src_index, u8(src_depth), rights],
  );
}
export function seL4_CNode_Mint(
  u: ThreadContext,
  service: Word,
  dest_index: Word,
  dest_depth: number,
  src_root: Word,
  src_index: Word,
  src_depth: number,
  rights: number,
  badge: Word,
): Err {
  return call(
    u,
    service,
    Invocation.CNodeMint,
    [src_root],
    [dest_index, u8(dest_depth), src_index, u8(src_depth), rights, badge],
  );
}
export function seL4_CNode_Move(
  u: ThreadContext,
  service: Word,
  dest_index: Word,
  dest_depth: number,
  src_root: Word,
  src_index: Word,
  src_depth: number,
): Err {
  return call(
    u,
    service,
    Invocation.CNodeMove,
    [src_root],
    [dest_index, u8(dest_depth), src_index, u8(src_depth)],
  );
}
export function seL4_CNode_Mutate(
  u: ThreadContext,
  service: Word,
  dest_index: Word,
  dest_depth: number,
  src_root: Word,
  src_index: Word,
  src_depth: number,
  badge: Word,
): Err {
  return call(
    u,
    service,
    Invocation.CNodeMutate,
    [src_root],
    [dest_index, u8(dest_depth), src_index, u8(src_depth), badge],
  );
}
export function seL4_CNode_Rotate(
  u: ThreadContext,
  service: Word,
  dest_index: Word,
  dest_depth: number,
  dest_badge: Word,
  pivot_root: Word,
  pivot_index: Word,
  pivot_depth: number,
  pivot_badge: Word,
  src_root: Word,
  src_index: Word,
  src_depth: number,
): Err {
  return call(
    u,
    service,
    Invocation.CNodeRotate,
    [pivot_root, src_root],
    [
      dest_index,
      u8(dest_depth),
      dest_badge,
      pivot_index,
      u8(pivot_depth),
      pivot_badge,
      src_index,
      u8(src_depth),
    ],
  );
}

// ---- IRQs ----

export function seL4_IRQControl_Get(
  u: ThreadContext,
  service: Word,
  irq: Word,
  root: Word,
  index: Word,
  depth: number,
): Err {
  return call(u, service, Invocation.IRQIssueIRQHandler, [root], [irq, index, u8(depth)]);
}
/** ARM IRQControl GetTrigger: trigger 0 = level, 1 = edge. */
export function seL4_IRQControl_GetTrigger(
  u: ThreadContext,
  service: Word,
  irq: Word,
  trigger: Word,
  root: Word,
  index: Word,
  depth: number,
): Err {
  return call(u, service, Invocation.ARMIRQIssueIRQHandlerTrigger, [root], [irq, trigger, index, u8(depth)]);
}
export function seL4_IRQHandler_Ack(u: ThreadContext, service: Word): Err {
  return call(u, service, Invocation.IRQAckIRQ, [], []);
}
export function seL4_IRQHandler_SetNotification(u: ThreadContext, service: Word, notification: Word): Err {
  return call(u, service, Invocation.IRQSetIRQHandler, [notification], []);
}
export function seL4_IRQHandler_Clear(u: ThreadContext, service: Word): Err {
  return call(u, service, Invocation.IRQClearIRQHandler, [], []);
}

// ---- domains ----

export function seL4_DomainSet_Set(u: ThreadContext, service: Word, domain: number, thread: Word): Err {
  return call(u, service, Invocation.DomainSetSet, [thread], [u8(domain)]);
}

// ---- scheduling contexts (MCS) ----

/** budget and period in µs, as seL4 takes them. */
export function seL4_SchedControl_ConfigureFlags(
  u: ThreadContext,
  service: Word,
  schedcontext: Word,
  budget: Word,
  period: Word,
  extra_refills: Word,
  badge: Word,
  flags: Word,
): Err {
  return call(
    u,
    service,
    Invocation.SchedControlConfigureFlags,
    [schedcontext],
    [budget, period, extra_refills, badge, flags],
  );
}
/** libsel4's seL4_SchedControl_Configure: ConfigureFlags with seL4_SchedContext_NoFlag. */
export function seL4_SchedControl_Configure(
  u: ThreadContext,
  service: Word,
  schedcontext: Word,
  budget: Word,
  period: Word,
  extra_refills: Word,
  badge: Word,
): Err {
  return seL4_SchedControl_ConfigureFlags(u, service, schedcontext, budget, period, extra_refills, badge, 0);
}
export function seL4_SchedContext_Bind(u: ThreadContext, service: Word, cap: Word): Err {
  return call(u, service, Invocation.SchedContextBind, [cap], []);
}
export function seL4_SchedContext_Unbind(u: ThreadContext, service: Word): Err {
  return call(u, service, Invocation.SchedContextUnbind, [], []);
}
export function seL4_SchedContext_UnbindObject(u: ThreadContext, service: Word, cap: Word): Err {
  return call(u, service, Invocation.SchedContextUnbindObject, [cap], []);
}
export interface SchedContextConsumedResult {
  error: SeL4Error;
  /** Time consumed, in µs as seL4 reports it. */
  consumed: number;
}
export function* seL4_SchedContext_Consumed(
  u: ThreadContext,
  service: Word,
): Sel4Gen<SchedContextConsumedResult> {
  const error = yield* call(u, service, Invocation.SchedContextConsumed, [], []);
  return { error, consumed: error === 0 ? stubResult(u, 0) : 0 };
}
export function* seL4_SchedContext_YieldTo(
  u: ThreadContext,
  service: Word,
): Sel4Gen<SchedContextConsumedResult> {
  const error = yield* call(u, service, Invocation.SchedContextYieldTo, [], []);
  return { error, consumed: error === 0 ? stubResult(u, 0) : 0 };
}

// ---- AArch64 virtual memory ----

export function seL4_ARM_Page_Map(
  u: ThreadContext,
  service: Word,
  vspace: Word,
  vaddr: Word,
  rights: number,
  attr: Word,
): Err {
  return call(u, service, Invocation.ARMPageMap, [vspace], [vaddr, rights, attr]);
}
export function seL4_ARM_Page_Unmap(u: ThreadContext, service: Word): Err {
  return call(u, service, Invocation.ARMPageUnmap, [], []);
}
export interface PageGetAddressResult {
  error: SeL4Error;
  paddr: number;
}
export function* seL4_ARM_Page_GetAddress(u: ThreadContext, service: Word): Sel4Gen<PageGetAddressResult> {
  const error = yield* call(u, service, Invocation.ARMPageGetAddress, [], []);
  return { error, paddr: error === 0 ? stubResult(u, 0) : 0 };
}
export function seL4_ARM_PageTable_Map(
  u: ThreadContext,
  service: Word,
  vspace: Word,
  vaddr: Word,
  attr: Word,
): Err {
  return call(u, service, Invocation.ARMPageTableMap, [vspace], [vaddr, attr]);
}
export function seL4_ARM_PageTable_Unmap(u: ThreadContext, service: Word): Err {
  return call(u, service, Invocation.ARMPageTableUnmap, [], []);
}
export function seL4_ARM_ASIDControl_MakePool(
  u: ThreadContext,
  service: Word,
  untyped: Word,
  root: Word,
  index: Word,
  depth: number,
): Err {
  return call(u, service, Invocation.ARMASIDControlMakePool, [untyped, root], [index, u8(depth)]);
}
export function seL4_ARM_ASIDPool_Assign(u: ThreadContext, service: Word, vspace: Word): Err {
  return call(u, service, Invocation.ARMASIDPoolAssign, [vspace], []);
}

// ---- AArch64 VCPU ----

export function seL4_ARM_VCPU_SetTCB(u: ThreadContext, service: Word, tcb: Word): Err {
  return call(u, service, Invocation.ARMVCPUSetTCB, [tcb], []);
}
/** One word: virq:16 at bit 0, priority:8 at 16, group:8 at 24, index:8 at 32. */
export function seL4_ARM_VCPU_InjectIRQ(
  u: ThreadContext,
  service: Word,
  virq: number,
  priority: number,
  group: number,
  index: number,
): Err {
  const lo = ((virq & 0xffff) | ((priority & 0xff) << 16) | ((group & 0xff) << 24)) >>> 0;
  const w = (BigInt(index & 0xff) << 32n) | BigInt(lo);
  return call(u, service, Invocation.ARMVCPUInjectIRQ, [], [w]);
}
export interface VCPUReadRegsResult {
  error: SeL4Error;
  value: bigint;
}
export function* seL4_ARM_VCPU_ReadRegs(
  u: ThreadContext,
  service: Word,
  field: Word,
): Sel4Gen<VCPUReadRegsResult> {
  const error = yield* call(u, service, Invocation.ARMVCPUReadReg, [], [field]);
  return { error, value: error === 0 ? stubResultBig(u, 0) : 0n };
}
export function seL4_ARM_VCPU_WriteRegs(u: ThreadContext, service: Word, field: Word, value: Word): Err {
  return call(u, service, Invocation.ARMVCPUWriteReg, [], [field, value]);
}
export function seL4_ARM_VCPU_AckVPPI(u: ThreadContext, service: Word, irq: Word): Err {
  return call(u, service, Invocation.ARMVCPUAckVPPI, [], [irq]);
}
