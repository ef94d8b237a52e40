/**
 * libsel4 for generator threads (see machine.ts): the system call wrappers of libsel4's
 * arch/syscalls.h for AArch64 MCS, message info and message registers, with libsel4's names.
 * The invocation stubs of sel4_client.h are in libsel4-invocations.ts.
 *
 * Every call that enters the kernel is a generator: write `yield* seL4_Call(u, ep, info)`.
 * The first argument is the calling thread's UserThread (libsel4 finds it through TLS).
 *
 * Words. seL4_Word is 64 bits. Inputs are `Word = number | bigint`: a number must be a safe
 * integer (a negative one is taken as its 64-bit two's complement, as C's conversion does, so
 * -1 is ~0); values of 2^53 and above need a bigint. Outputs are numbers (exact below 2^53,
 * which covers every size, address, time, count and error seL4 returns); badges and message
 * registers also come as bigint through the `...Big` variants, and register contents
 * (TCB_ReadRegisters, VCPU_ReadRegs) are bigint.
 *
 * As in libsel4, the IPC buffer holds the message: seL4_SetMR / seL4_GetMR use it, and each
 * wrapper moves MR0..MR3 between it and x2..x5 around the syscall.
 */
import {
  CAP_ASID_CONTROL,
  CAP_BOOT_INFO_FRAME,
  CAP_DOMAIN,
  CAP_INIT_THREAD_ASID_POOL,
  CAP_INIT_THREAD_CNODE,
  CAP_INIT_THREAD_IPC_BUFFER,
  CAP_INIT_THREAD_SC,
  CAP_INIT_THREAD_TCB,
  CAP_INIT_THREAD_VSPACE,
  CAP_IRQ_CONTROL,
} from "../kernel/core/boot.js";
import type { TCB } from "../kernel/structures.js";
import {
  IPCBUF_CAPS,
  IPCBUF_MSG,
  IPCBUF_RECV_CNODE,
  IPCBUF_RECV_DEPTH,
  IPCBUF_RECV_INDEX,
  IPCBUF_USER_DATA,
  MSG_MAX_LENGTH,
  MSG_REGISTERS,
  REG_CAP,
  REG_MR0,
  REG_MSGINFO,
  REG_NBSR_DEST,
  REG_REPLY,
  REG_SYSCALL,
  RIGHT_GRANT,
  RIGHT_GRANT_REPLY,
  RIGHT_READ,
  RIGHT_WRITE,
  Syscall,
} from "../kernel/types.js";
import { type Request, SYSCALL, type ThreadContext } from "./machine.js";

export type Word = number | bigint;
/** A libsel4 call: a generator to `yield*` from a program. */
export type Sel4Gen<T> = Generator<Request, T, void>;

const TWO32 = 4294967296;

// ---- words ----

/** Low 32 bits of a 64-bit word. */
export function wordLo(w: Word): number {
  if (typeof w === "bigint") return Number(BigInt.asUintN(32, w));
  if (!Number.isSafeInteger(w)) throw new RangeError(`not a 64-bit word: ${w} (use a bigint above 2^53)`);
  return w >>> 0;
}
/** High 32 bits of a 64-bit word. */
export function wordHi(w: Word): number {
  if (typeof w === "bigint") return Number(BigInt.asUintN(32, w >> 32n));
  if (!Number.isSafeInteger(w)) throw new RangeError(`not a 64-bit word: ${w} (use a bigint above 2^53)`);
  return Math.floor(w / TWO32) >>> 0;
}
export function wordBig(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
/** A word as a number: exact below 2^53. */
export function wordNum(hi: number, lo: number): number {
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}

/** Register r of t := w. */
export function setRegWord(t: TCB, r: number, w: Word): void {
  t.regs[2 * r] = wordLo(w);
  t.regs[2 * r + 1] = wordHi(w);
}

// ---- capability rights (seL4_CapRights_new(grantReply, grant, read, write)) ----

export function seL4_CapRights_new(
  grantReply: boolean,
  grant: boolean,
  read: boolean,
  write: boolean,
): number {
  return (
    (grantReply ? RIGHT_GRANT_REPLY : 0) |
    (grant ? RIGHT_GRANT : 0) |
    (read ? RIGHT_READ : 0) |
    (write ? RIGHT_WRITE : 0)
  );
}
export const seL4_NoRights = 0;
export const seL4_CanWrite = RIGHT_WRITE;
export const seL4_CanRead = RIGHT_READ;
export const seL4_CanGrant = RIGHT_GRANT;
export const seL4_CanGrantReply = RIGHT_GRANT_REPLY;
export const seL4_ReadWrite = RIGHT_READ | RIGHT_WRITE;
export const seL4_AllRights = RIGHT_READ | RIGHT_WRITE | RIGHT_GRANT | RIGHT_GRANT_REPLY;

// ---- constants a root task uses ----

export const seL4_WordBits = 64;
export const seL4_CapNull = 0;
export const seL4_CapInitThreadTCB = CAP_INIT_THREAD_TCB;
export const seL4_CapInitThreadCNode = CAP_INIT_THREAD_CNODE;
export const seL4_CapInitThreadVSpace = CAP_INIT_THREAD_VSPACE;
export const seL4_CapIRQControl = CAP_IRQ_CONTROL;
export const seL4_CapASIDControl = CAP_ASID_CONTROL;
export const seL4_CapInitThreadASIDPool = CAP_INIT_THREAD_ASID_POOL;
export const seL4_CapBootInfoFrame = CAP_BOOT_INFO_FRAME;
export const seL4_CapInitThreadIPCBuffer = CAP_INIT_THREAD_IPC_BUFFER;
export const seL4_CapDomain = CAP_DOMAIN;
export const seL4_CapInitThreadSC = CAP_INIT_THREAD_SC;
/** seL4_ARM_VMAttributes. */
export const seL4_ARM_PageCacheable = 1;
export const seL4_ARM_ParityEnabled = 2;
export const seL4_ARM_Default_VMAttributes = 3;
export const seL4_ARM_ExecuteNever = 4;
/** seL4_SchedContextFlag. */
export const seL4_SchedContext_NoFlag = 0;
export const seL4_SchedContext_Sporadic = 1;

// ---- message info (label:52 | capsUnwrapped:3 | extraCaps:2 | length:7) ----

export interface seL4_MessageInfo {
  readonly label: number;
  readonly capsUnwrapped: number;
  readonly extraCaps: number;
  readonly length: number;
}

/** Fields are truncated to their widths, as the generated bitfield constructor does. */
export function seL4_MessageInfo_new(
  label: number,
  capsUnwrapped: number,
  extraCaps: number,
  length: number,
): seL4_MessageInfo {
  return {
    label: label % 2 ** 52,
    capsUnwrapped: capsUnwrapped & 7,
    extraCaps: extraCaps & 3,
    length: length & 0x7f,
  };
}
export function seL4_MessageInfo_get_label(i: seL4_MessageInfo): number {
  return i.label;
}
export function seL4_MessageInfo_get_length(i: seL4_MessageInfo): number {
  return i.length;
}
export function seL4_MessageInfo_get_extraCaps(i: seL4_MessageInfo): number {
  return i.extraCaps;
}
export function seL4_MessageInfo_get_capsUnwrapped(i: seL4_MessageInfo): number {
  return i.capsUnwrapped;
}
export function seL4_MessageInfo_set_label(i: seL4_MessageInfo, v: number): seL4_MessageInfo {
  return seL4_MessageInfo_new(v, i.capsUnwrapped, i.extraCaps, i.length);
}
export function seL4_MessageInfo_set_length(i: seL4_MessageInfo, v: number): seL4_MessageInfo {
  return seL4_MessageInfo_new(i.label, i.capsUnwrapped, i.extraCaps, v);
}
export function seL4_MessageInfo_set_extraCaps(i: seL4_MessageInfo, v: number): seL4_MessageInfo {
  return seL4_MessageInfo_new(i.label, i.capsUnwrapped, v, i.length);
}

/** x1 := info. */
export function setInfoReg(t: TCB, info: seL4_MessageInfo): void {
  const label = info.label;
  t.regs[2 * REG_MSGINFO] =
    ((label % 1048576) * 4096 +
      ((info.capsUnwrapped & 7) << 9) +
      ((info.extraCaps & 3) << 7) +
      (info.length & 0x7f)) >>>
    0;
  t.regs[2 * REG_MSGINFO + 1] = Math.floor(label / 1048576) >>> 0;
}
/** The message info in x1. */
export function readInfoReg(t: TCB): seL4_MessageInfo {
  const lo = t.regs[2 * REG_MSGINFO]!;
  const hi = t.regs[2 * REG_MSGINFO + 1]!;
  return {
    label: hi * 1048576 + (lo >>> 12),
    capsUnwrapped: (lo >>> 9) & 7,
    extraCaps: (lo >>> 7) & 3,
    length: lo & 0x7f,
  };
}

// ---- IPC buffer ----

function checkMR(i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= MSG_MAX_LENGTH) throw new RangeError(`no message register ${i}`);
}
export function seL4_SetMR(u: ThreadContext, i: number, w: Word): void {
  checkMR(i);
  const b = u.ipcBuffer;
  b[2 * (IPCBUF_MSG + i)] = wordLo(w);
  b[2 * (IPCBUF_MSG + i) + 1] = wordHi(w);
}
/** MR i as a number (exact below 2^53). */
export function seL4_GetMR(u: ThreadContext, i: number): number {
  checkMR(i);
  const b = u.ipcBuffer;
  return wordNum(b[2 * (IPCBUF_MSG + i) + 1]!, b[2 * (IPCBUF_MSG + i)]!);
}
export function seL4_GetMRBig(u: ThreadContext, i: number): bigint {
  checkMR(i);
  const b = u.ipcBuffer;
  return wordBig(b[2 * (IPCBUF_MSG + i) + 1]!, b[2 * (IPCBUF_MSG + i)]!);
}
/** Extra cap i of the next message (caps_or_badges[i]). */
export function seL4_SetCap(u: ThreadContext, i: number, cptr: Word): void {
  const b = u.ipcBuffer;
  b[2 * (IPCBUF_CAPS + i)] = wordLo(cptr);
  b[2 * (IPCBUF_CAPS + i) + 1] = wordHi(cptr);
}
export function seL4_GetCap(u: ThreadContext, i: number): number {
  const b = u.ipcBuffer;
  return wordNum(b[2 * (IPCBUF_CAPS + i) + 1]!, b[2 * (IPCBUF_CAPS + i)]!);
}
/** Badge of unwrapped cap i of the received message (caps_or_badges[i]). */
export function seL4_GetBadge(u: ThreadContext, i: number): number {
  return seL4_GetCap(u, i);
}
export function seL4_GetBadgeBig(u: ThreadContext, i: number): bigint {
  const b = u.ipcBuffer;
  return wordBig(b[2 * (IPCBUF_CAPS + i) + 1]!, b[2 * (IPCBUF_CAPS + i)]!);
}
/** Where received caps go: slot `index` (resolved to `depth` bits) in the CSpace of `root`. */
export function seL4_SetCapReceivePath(
  u: ThreadContext,
  receiveCNode: Word,
  receiveIndex: Word,
  receiveDepth: number,
): void {
  const b = u.ipcBuffer;
  b[2 * IPCBUF_RECV_CNODE] = wordLo(receiveCNode);
  b[2 * IPCBUF_RECV_CNODE + 1] = wordHi(receiveCNode);
  b[2 * IPCBUF_RECV_INDEX] = wordLo(receiveIndex);
  b[2 * IPCBUF_RECV_INDEX + 1] = wordHi(receiveIndex);
  b[2 * IPCBUF_RECV_DEPTH] = wordLo(receiveDepth);
  b[2 * IPCBUF_RECV_DEPTH + 1] = wordHi(receiveDepth);
}
export function seL4_SetUserData(u: ThreadContext, w: Word): void {
  const b = u.ipcBuffer;
  b[2 * IPCBUF_USER_DATA] = wordLo(w);
  b[2 * IPCBUF_USER_DATA + 1] = wordHi(w);
}
export function seL4_GetUserData(u: ThreadContext): number {
  const b = u.ipcBuffer;
  return wordNum(b[2 * IPCBUF_USER_DATA + 1]!, b[2 * IPCBUF_USER_DATA]!);
}

// ---- the syscall ABI ----

/** x2..x5 := MR0..MR3 from the IPC buffer (seL4_GetMR before the svc). */
function loadMRs(u: ThreadContext): void {
  const b = u.ipcBuffer;
  const r = u.tcb.regs;
  for (let i = 0; i < MSG_REGISTERS; i++) {
    r[2 * (REG_MR0 + i)] = b[2 * (IPCBUF_MSG + i)]!;
    r[2 * (REG_MR0 + i) + 1] = b[2 * (IPCBUF_MSG + i) + 1]!;
  }
}
/** MR0..MR3 := x2..x5 (seL4_SetMR after the svc). */
function storeMRs(u: ThreadContext): void {
  const b = u.ipcBuffer;
  const r = u.tcb.regs;
  for (let i = 0; i < MSG_REGISTERS; i++) {
    b[2 * (IPCBUF_MSG + i)] = r[2 * (REG_MR0 + i)]!;
    b[2 * (IPCBUF_MSG + i) + 1] = r[2 * (REG_MR0 + i) + 1]!;
  }
}
function setSysno(t: TCB, sysno: Syscall): void {
  setRegWord(t, REG_SYSCALL, sysno);
}

/** What a receive returns: the message info and the sender's badge (libsel4's `*sender`). */
export interface RecvResult {
  info: seL4_MessageInfo;
  /** The badge, exact below 2^53. */
  sender: number;
  senderBig: bigint;
}
function recvResult(t: TCB): RecvResult {
  const lo = t.regs[2 * REG_CAP]!;
  const hi = t.regs[2 * REG_CAP + 1]!;
  return { info: readInfoReg(t), sender: wordNum(hi, lo), senderBig: wordBig(hi, lo) };
}

/** seL4_Send: send on an endpoint (blocking) or signal a notification. */
export function* seL4_Send(u: ThreadContext, dest: Word, info: seL4_MessageInfo): Sel4Gen<void> {
  const t = u.tcb;
  setRegWord(t, REG_CAP, dest);
  setInfoReg(t, info);
  loadMRs(u);
  setSysno(t, Syscall.Send);
  yield SYSCALL;
}
export function* seL4_NBSend(u: ThreadContext, dest: Word, info: seL4_MessageInfo): Sel4Gen<void> {
  const t = u.tcb;
  setRegWord(t, REG_CAP, dest);
  setInfoReg(t, info);
  loadMRs(u);
  setSysno(t, Syscall.NBSend);
  yield SYSCALL;
}
/** seL4_Signal (MCS): Send with an empty message, no message registers. */
export function* seL4_Signal(u: ThreadContext, dest: Word): Sel4Gen<void> {
  const t = u.tcb;
  setRegWord(t, REG_CAP, dest);
  setInfoReg(t, seL4_MessageInfo_new(0, 0, 0, 0));
  setSysno(t, Syscall.Send);
  yield SYSCALL;
}
export function* seL4_Call(u: ThreadContext, dest: Word, info: seL4_MessageInfo): Sel4Gen<seL4_MessageInfo> {
  const t = u.tcb;
  setRegWord(t, REG_CAP, dest);
  setInfoReg(t, info);
  loadMRs(u);
  setRegWord(t, REG_REPLY, 0);
  setSysno(t, Syscall.Call);
  yield SYSCALL;
  storeMRs(u);
  return readInfoReg(t);
}

function* recvLike(u: ThreadContext, sysno: Syscall, src: Word, reply: Word): Sel4Gen<RecvResult> {
  const t = u.tcb;
  setRegWord(t, REG_CAP, src);
  setRegWord(t, REG_REPLY, reply);
  setSysno(t, sysno);
  yield SYSCALL;
  storeMRs(u);
  return recvResult(t);
}
/** seL4_Recv (MCS): receive on an endpoint with a Reply object, or wait on a notification. */
export function seL4_Recv(u: ThreadContext, src: Word, reply: Word): Sel4Gen<RecvResult> {
  return recvLike(u, Syscall.Recv, src, reply);
}
export function seL4_NBRecv(u: ThreadContext, src: Word, reply: Word): Sel4Gen<RecvResult> {
  return recvLike(u, Syscall.NBRecv, src, reply);
}
/** seL4_Wait (MCS): receive without a reply object (notifications, or endpoints for Send-only protocols). */
export function seL4_Wait(u: ThreadContext, src: Word): Sel4Gen<RecvResult> {
  return recvLike(u, Syscall.Wait, src, 0);
}
export function seL4_NBWait(u: ThreadContext, src: Word): Sel4Gen<RecvResult> {
  return recvLike(u, Syscall.NBWait, src, 0);
}
/** seL4_Poll (MCS): NBWait. */
export function seL4_Poll(u: ThreadContext, src: Word): Sel4Gen<RecvResult> {
  return recvLike(u, Syscall.NBWait, src, 0);
}

/**
 * The send-then-receive syscalls share one register layout: x0 the receive source, x1 the message
 * info, MR0..3 in x2..x5, x6 the reply cap (or NBSendWait's destination), x8 NBSendRecv's destination.
 */
function* sendThenReceive(
  u: ThreadContext,
  sysno: Syscall,
  src: Word,
  info: seL4_MessageInfo,
  x6: Word,
  x8: Word | null,
): Sel4Gen<RecvResult> {
  const t = u.tcb;
  setRegWord(t, REG_CAP, src);
  setInfoReg(t, info);
  loadMRs(u);
  setRegWord(t, REG_REPLY, x6);
  if (x8 !== null) setRegWord(t, REG_NBSR_DEST, x8);
  setSysno(t, sysno);
  yield SYSCALL;
  storeMRs(u);
  return recvResult(t);
}

/** seL4_ReplyRecv (MCS): reply through `reply`, then receive on `src` with the same reply object. */
export function seL4_ReplyRecv(
  u: ThreadContext,
  src: Word,
  info: seL4_MessageInfo,
  reply: Word,
): Sel4Gen<RecvResult> {
  return sendThenReceive(u, Syscall.ReplyRecv, src, info, reply, null);
}
/** seL4_NBSendRecv: NBSend to `dest` (x8), then Recv on `src` (x0) with `reply` (x6). */
export function seL4_NBSendRecv(
  u: ThreadContext,
  dest: Word,
  info: seL4_MessageInfo,
  src: Word,
  reply: Word,
): Sel4Gen<RecvResult> {
  return sendThenReceive(u, Syscall.NBSendRecv, src, info, reply, dest);
}
/** seL4_NBSendWait: NBSend to `dest` (passed in x6), then Wait on `src`; x8 is 0 as libsel4 passes it. */
export function seL4_NBSendWait(
  u: ThreadContext,
  dest: Word,
  info: seL4_MessageInfo,
  src: Word,
): Sel4Gen<RecvResult> {
  return sendThenReceive(u, Syscall.NBSendWait, src, info, dest, 0);
}
export function* seL4_Yield(u: ThreadContext): Sel4Gen<void> {
  setSysno(u.tcb, Syscall.Yield);
  yield SYSCALL;
}

// ---- debug syscalls ----

export function* seL4_DebugPutChar(u: ThreadContext, c: number | string): Sel4Gen<void> {
  const t = u.tcb;
  setRegWord(t, REG_CAP, typeof c === "string" ? c.charCodeAt(0) & 0xff : c & 0xff);
  setSysno(t, Syscall.DebugPutChar);
  yield SYSCALL;
}
/** Each byte of the string's UTF-8 encoding through seL4_DebugPutChar. */
export function* seL4_DebugPutString(u: ThreadContext, s: string): Sel4Gen<void> {
  for (const byte of new TextEncoder().encode(s)) yield* seL4_DebugPutChar(u, byte);
}
/** seL4_DebugNameThread: the name goes NUL-terminated into the IPC buffer's message words. */
export function* seL4_DebugNameThread(u: ThreadContext, tcb: Word, name: string): Sel4Gen<void> {
  const t = u.tcb;
  const b = u.ipcBuffer;
  const bytes = new Uint8Array(b.buffer, b.byteOffset + 8 * IPCBUF_MSG, 8 * MSG_MAX_LENGTH);
  const enc = new TextEncoder().encode(name).subarray(0, bytes.length - 1);
  bytes.set(enc);
  bytes[enc.length] = 0;
  setRegWord(t, REG_CAP, tcb);
  setSysno(t, Syscall.DebugNameThread);
  yield SYSCALL;
}

// ---- the invocation stub machinery (sel4_client.h conventions), shared with libsel4-invocations.ts ----

/**
 * What every generated stub does: extra caps with seL4_SetCap, words 0..3 in x2..x5 (0 past the
 * length, as seL4_CallWithMRs passes them) and the rest with seL4_SetMR, tag =
 * seL4_MessageInfo_new(label, 0, caps, words), then seL4_CallWithMRs. Returns the error (the
 * reply's label); on error MR0..MR3 are copied into the IPC buffer so seL4_GetMR reads the
 * error's details. Results stay in x2..x5 and the IPC buffer: read them with stubResult.
 */
export function* invokeStub(
  u: ThreadContext,
  service: Word,
  label: number,
  caps: readonly Word[],
  words: readonly Word[],
): Sel4Gen<number> {
  const t = u.tcb;
  const b = u.ipcBuffer;
  for (let i = 0; i < caps.length; i++) seL4_SetCap(u, i, caps[i]!);
  const r = t.regs;
  for (let i = 0; i < MSG_REGISTERS; i++) {
    const w = i < words.length ? words[i]! : 0;
    r[2 * (REG_MR0 + i)] = wordLo(w);
    r[2 * (REG_MR0 + i) + 1] = wordHi(w);
  }
  for (let i = MSG_REGISTERS; i < words.length; i++) {
    b[2 * (IPCBUF_MSG + i)] = wordLo(words[i]!);
    b[2 * (IPCBUF_MSG + i) + 1] = wordHi(words[i]!);
  }
  setRegWord(t, REG_CAP, service);
  setInfoReg(t, seL4_MessageInfo_new(label, 0, caps.length, words.length));
  setRegWord(t, REG_REPLY, 0);
  setSysno(t, Syscall.Call);
  yield SYSCALL;
  const error = readInfoReg(t).label;
  if (error !== 0) storeMRs(u);
  return error;
}

/** Result word i of a stub's reply: x2..x5 for i < 4, else the IPC buffer (seL4_GetMR). */
export function stubResultLo(u: ThreadContext, i: number): number {
  return i < MSG_REGISTERS ? u.tcb.regs[2 * (REG_MR0 + i)]! : u.ipcBuffer[2 * (IPCBUF_MSG + i)]!;
}
export function stubResultHi(u: ThreadContext, i: number): number {
  return i < MSG_REGISTERS ? u.tcb.regs[2 * (REG_MR0 + i) + 1]! : u.ipcBuffer[2 * (IPCBUF_MSG + i) + 1]!;
}
export function stubResult(u: ThreadContext, i: number): number {
  return wordNum(stubResultHi(u, i), stubResultLo(u, i));
}
export function stubResultBig(u: ThreadContext, i: number): bigint {
  return wordBig(stubResultHi(u, i), stubResultLo(u, i));
}
