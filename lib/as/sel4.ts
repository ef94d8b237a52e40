/**
 * capvisor libsel4 for AssemblyScript protection domains.
 *
 * The names and argument order are libsel4's (64-bit, MCS, AArch64 numbering), as in
 * include/sel4/sel4.h, so code reads like seL4 C code. How a syscall reaches the kernel is the
 * capvisor Wasm ABI (docs/wasm-abi.md): the nine AArch64 syscall registers x0..x8 live in a
 * register block in linear memory, exported by `capvisor_regs()`; libsel4 writes them, calls
 * the only import `sel4.syscall(sysno)`, and reads them back, exactly as the C library does.
 *
 * AssemblyScript differences from C, kept small:
 *  - seL4_Word, seL4_CPtr and seL4_MessageInfo_t are `u64` (a message info is its one word).
 *  - C's `seL4_Word *sender` is an address (`usize`, 0 for NULL) where the badge is stored, e.g.
 *    `const badge = memory.data(8); seL4_Recv(ep, badge, reply); load<u64>(badge)`.
 *
 * Written for capvisor from the published libsel4 interface; not a copy of libsel4's sources.
 */

export type seL4_Word = u64;
export type seL4_CPtr = u64;
export type seL4_Uint8 = u8;
export type seL4_Uint16 = u16;
export type seL4_Uint32 = u32;
export type seL4_Uint64 = u64;
export type seL4_Bool = bool;
export type seL4_Error = i32;
export type seL4_MessageInfo_t = u64;

/* ---------------------------------------------------------------- errors (sel4/errors.h) */

export const seL4_NoError: seL4_Error = 0;
export const seL4_InvalidArgument: seL4_Error = 1;
export const seL4_InvalidCapability: seL4_Error = 2;
export const seL4_IllegalOperation: seL4_Error = 3;
export const seL4_RangeError: seL4_Error = 4;
export const seL4_AlignmentError: seL4_Error = 5;
export const seL4_FailedLookup: seL4_Error = 6;
export const seL4_TruncatedMessage: seL4_Error = 7;
export const seL4_DeleteFirst: seL4_Error = 8;
export const seL4_RevokeFirst: seL4_Error = 9;
export const seL4_NotEnoughMemory: seL4_Error = 10;

export const seL4_MsgMaxLength: i32 = 120;
export const seL4_WordBits: u64 = 64;
export const seL4_CapNull: seL4_CPtr = 0;

/* ---------------------------------------------------------------- syscall numbers (MCS) */

export const seL4_SysCall: i32 = -1;
export const seL4_SysReplyRecv: i32 = -2;
export const seL4_SysNBSendRecv: i32 = -3;
export const seL4_SysNBSendWait: i32 = -4;
export const seL4_SysSend: i32 = -5;
export const seL4_SysNBSend: i32 = -6;
export const seL4_SysRecv: i32 = -7;
export const seL4_SysNBRecv: i32 = -8;
export const seL4_SysWait: i32 = -9;
export const seL4_SysNBWait: i32 = -10;
export const seL4_SysYield: i32 = -11;
export const seL4_SysDebugPutChar: i32 = -12;

/* Invocation labels the libraries here use (include/sel4/sel4.h, enum invocation_label). */
export const TCBWriteRegisters: u64 = 3;
export const TCBSuspend: u64 = 12;
export const TCBResume: u64 = 13;
export const IRQAckIRQ: u64 = 28;

/* Fault labels and the user-exception message layout (a Wasm trap, docs/wasm-abi.md "Traps"). */
export const seL4_Fault_CapFault: u64 = 1;
export const seL4_Fault_UnknownSyscall: u64 = 2;
export const seL4_Fault_UserException: u64 = 3;
export const seL4_Fault_Timeout: u64 = 5;
export const seL4_Fault_VMFault: u64 = 6;
export const seL4_UserException_Number: i32 = 3;

/* ---------------------------------------------------------------- the ABI's memory */

// Static storage: memory.data places it in the module's data, so it needs no allocator and its
// address is a constant. The IPC buffer is 1 KiB and aligned to its size, as in seL4.
const REGS: usize = memory.data(9 * 8, 8);
const IPC_BUFFER: usize = memory.data(1024, 1024);

// Offsets in the IPC buffer: tag, msg[120], userData, caps_or_badges[3], receive path.
const IPC_MSG: usize = 8;
const IPC_USER_DATA: usize = 8 + 120 * 8;
const IPC_CAPS_OR_BADGES: usize = IPC_USER_DATA + 8;

/** docs/wasm-abi.md: the ABI version this library speaks. */
export function capvisor_abi_version(): i32 {
  return 1;
}

/** docs/wasm-abi.md: the address of the register block x0..x8. */
export function capvisor_regs(): usize {
  return REGS;
}

/** docs/wasm-abi.md: the address of this thread's seL4_IPCBuffer. */
export function capvisor_ipc_buffer(): usize {
  return IPC_BUFFER;
}

// @ts-ignore: AssemblyScript decorator
@external("sel4", "syscall")
declare function capvisor_syscall(sysno: i32): void;

// Register accessors: the immediate offset makes each one a single load or store.
// @ts-ignore: AssemblyScript decorator
@inline function setX(i: i32, v: u64): void {
  store<u64>(REGS + ((<usize>i) << 3), v);
}
// @ts-ignore: AssemblyScript decorator
@inline function getX(i: i32): u64 {
  return load<u64>(REGS + ((<usize>i) << 3));
}

/* ---------------------------------------------------------------- message info (shared_types.bf) */

/** label:52 | capsUnwrapped:3 | extraCaps:2 | length:7 */
export function seL4_MessageInfo_new(label: u64, capsUnwrapped: u64, extraCaps: u64, length: u64): seL4_MessageInfo_t {
  return ((label & 0xfffffffffffff) << 12) | ((capsUnwrapped & 0x7) << 9) | ((extraCaps & 0x3) << 7) | (length & 0x7f);
}
export function seL4_MessageInfo_get_label(m: seL4_MessageInfo_t): u64 {
  return (m >> 12) & 0xfffffffffffff;
}
export function seL4_MessageInfo_get_capsUnwrapped(m: seL4_MessageInfo_t): u64 {
  return (m >> 9) & 0x7;
}
export function seL4_MessageInfo_get_extraCaps(m: seL4_MessageInfo_t): u64 {
  return (m >> 7) & 0x3;
}
export function seL4_MessageInfo_get_length(m: seL4_MessageInfo_t): u64 {
  return m & 0x7f;
}
export function seL4_MessageInfo_set_label(m: seL4_MessageInfo_t, v: u64): seL4_MessageInfo_t {
  return (m & ~(<u64>0xfffffffffffff << 12)) | ((v & 0xfffffffffffff) << 12);
}
export function seL4_MessageInfo_set_length(m: seL4_MessageInfo_t, v: u64): seL4_MessageInfo_t {
  return (m & ~(<u64>0x7f)) | (v & 0x7f);
}

/* ---------------------------------------------------------------- IPC buffer (sel4/functions.h) */

export function seL4_GetIPCBuffer(): usize {
  return IPC_BUFFER;
}
export function seL4_GetMR(i: i32): seL4_Word {
  return load<u64>(IPC_BUFFER + IPC_MSG + ((<usize>i) << 3));
}
export function seL4_SetMR(i: i32, mr: seL4_Word): void {
  store<u64>(IPC_BUFFER + IPC_MSG + ((<usize>i) << 3), mr);
}
export function seL4_GetUserData(): seL4_Word {
  return load<u64>(IPC_BUFFER + IPC_USER_DATA);
}
export function seL4_SetUserData(data: seL4_Word): void {
  store<u64>(IPC_BUFFER + IPC_USER_DATA, data);
}
export function seL4_GetBadge(i: i32): seL4_Word {
  return load<u64>(IPC_BUFFER + IPC_CAPS_OR_BADGES + ((<usize>i) << 3));
}
export function seL4_GetCap(i: i32): seL4_CPtr {
  return load<u64>(IPC_BUFFER + IPC_CAPS_OR_BADGES + ((<usize>i) << 3));
}
export function seL4_SetCap(i: i32, cptr: seL4_CPtr): void {
  store<u64>(IPC_BUFFER + IPC_CAPS_OR_BADGES + ((<usize>i) << 3), cptr);
}

/* ---------------------------------------------------------------- syscalls (arch/syscalls.h, MCS) */

// What each helper writes before the syscall and reads after is what the AArch64 libsel4's
// inline assembly passes in and out (and what lib/sel4's C helpers do); x7 gets the number too.

function sendRegs(sys: i32, dest: seL4_CPtr, info: seL4_MessageInfo_t): void {
  setX(0, dest);
  setX(1, info);
  setX(2, seL4_GetMR(0));
  setX(3, seL4_GetMR(1));
  setX(4, seL4_GetMR(2));
  setX(5, seL4_GetMR(3));
  setX(7, <u64>sys);
  capvisor_syscall(sys);
}

/** After a receive: the first four message registers come back in x2..x5. */
function recvResult(sender: usize): seL4_MessageInfo_t {
  seL4_SetMR(0, getX(2));
  seL4_SetMR(1, getX(3));
  seL4_SetMR(2, getX(4));
  seL4_SetMR(3, getX(5));
  if (sender != 0) store<u64>(sender, getX(0));
  return getX(1);
}

function recvCommon(sys: i32, src: seL4_CPtr, sender: usize, reply: seL4_CPtr): seL4_MessageInfo_t {
  setX(0, src);
  setX(6, reply);
  setX(7, <u64>sys);
  capvisor_syscall(sys);
  return recvResult(sender);
}

export function seL4_Send(dest: seL4_CPtr, msgInfo: seL4_MessageInfo_t): void {
  sendRegs(seL4_SysSend, dest, msgInfo);
}

export function seL4_NBSend(dest: seL4_CPtr, msgInfo: seL4_MessageInfo_t): void {
  sendRegs(seL4_SysNBSend, dest, msgInfo);
}

/** Signal is a Send of an empty message (used on notifications). */
export function seL4_Signal(dest: seL4_CPtr): void {
  setX(0, dest);
  setX(1, seL4_MessageInfo_new(0, 0, 0, 0));
  setX(7, <u64>seL4_SysSend);
  capvisor_syscall(seL4_SysSend);
}

export function seL4_Recv(src: seL4_CPtr, sender: usize, reply: seL4_CPtr): seL4_MessageInfo_t {
  return recvCommon(seL4_SysRecv, src, sender, reply);
}

export function seL4_NBRecv(src: seL4_CPtr, sender: usize, reply: seL4_CPtr): seL4_MessageInfo_t {
  return recvCommon(seL4_SysNBRecv, src, sender, reply);
}

export function seL4_Wait(src: seL4_CPtr, sender: usize): seL4_MessageInfo_t {
  return recvCommon(seL4_SysWait, src, sender, 0);
}

export function seL4_NBWait(src: seL4_CPtr, sender: usize): seL4_MessageInfo_t {
  return recvCommon(seL4_SysNBWait, src, sender, 0);
}

/** Poll is NBWait under MCS. */
export function seL4_Poll(src: seL4_CPtr, sender: usize): seL4_MessageInfo_t {
  return seL4_NBWait(src, sender);
}

export function seL4_Call(dest: seL4_CPtr, msgInfo: seL4_MessageInfo_t): seL4_MessageInfo_t {
  setX(6, 0);
  sendRegs(seL4_SysCall, dest, msgInfo);
  return recvResult(0);
}

export function seL4_ReplyRecv(
  src: seL4_CPtr,
  msgInfo: seL4_MessageInfo_t,
  sender: usize,
  reply: seL4_CPtr,
): seL4_MessageInfo_t {
  setX(6, reply);
  sendRegs(seL4_SysReplyRecv, src, msgInfo);
  return recvResult(sender);
}

/** NBSendRecv: the send destination travels in x8, the receive source in x0, the reply in x6. */
export function seL4_NBSendRecv(
  dest: seL4_CPtr,
  msgInfo: seL4_MessageInfo_t,
  src: seL4_CPtr,
  sender: usize,
  reply: seL4_CPtr,
): seL4_MessageInfo_t {
  setX(6, reply);
  setX(8, dest);
  sendRegs(seL4_SysNBSendRecv, src, msgInfo);
  return recvResult(sender);
}

/** NBSendWait: as on AArch64, the send destination travels in x6 (a Wait has no reply), x8 is 0. */
export function seL4_NBSendWait(
  dest: seL4_CPtr,
  msgInfo: seL4_MessageInfo_t,
  src: seL4_CPtr,
  sender: usize,
): seL4_MessageInfo_t {
  setX(6, dest);
  setX(8, 0);
  sendRegs(seL4_SysNBSendWait, src, msgInfo);
  return recvResult(sender);
}

export function seL4_Yield(): void {
  setX(7, <u64>seL4_SysYield);
  capvisor_syscall(seL4_SysYield);
}

/** The character travels in x0; the kernel prints its low byte. */
export function seL4_DebugPutChar(c: u8): void {
  setX(0, <u64>c);
  setX(1, 0);
  setX(6, 0);
  setX(7, <u64>seL4_SysDebugPutChar);
  capvisor_syscall(seL4_SysDebugPutChar);
}

/* ---------------------------------------------------------------- invocations libmicrokit uses */

/**
 * One invocation, as libsel4's generated stubs do it: MR0..MR3 travel in registers, the result
 * is the reply's label. On error, the registers the kernel returned are left in MR0..MR3.
 */
function invoke(service: seL4_CPtr, label: u64, length: u64, mr0: u64, mr1: u64, mr2: u64, mr3: u64): seL4_Error {
  seL4_SetMR(0, mr0);
  seL4_SetMR(1, mr1);
  seL4_SetMR(2, mr2);
  seL4_SetMR(3, mr3);
  const tag = seL4_Call(service, seL4_MessageInfo_new(label, 0, 0, length));
  return <seL4_Error>seL4_MessageInfo_get_label(tag);
}

export function seL4_IRQHandler_Ack(service: seL4_CPtr): seL4_Error {
  return invoke(service, IRQAckIRQ, 0, 0, 0, 0, 0);
}

export function seL4_TCB_Suspend(service: seL4_CPtr): seL4_Error {
  return invoke(service, TCBSuspend, 0, 0, 0, 0, 0);
}

export function seL4_TCB_Resume(service: seL4_CPtr): seL4_Error {
  return invoke(service, TCBResume, 0, 0, 0, 0, 0);
}

/**
 * Write the first `count` (at most 2 here: pc, sp) registers of a TCB. The message always says
 * 38 words (flags, count, 36 registers), as include/sel4/invocations.h sends it.
 */
export function seL4_TCB_WriteRegisters_pc_sp(
  service: seL4_CPtr,
  resumeTarget: bool,
  count: u64,
  pc: u64,
  sp: u64,
): seL4_Error {
  for (let i = 4; i < 38; i++) seL4_SetMR(i, 0);
  return invoke(service, TCBWriteRegisters, 38, resumeTarget ? 1 : 0, count, pc, sp);
}
