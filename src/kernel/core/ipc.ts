/**
 * The IPC part of seL4's src/kernel/thread.c (doIPCTransfer, doReplyTransfer, doNormalTransfer,
 * doFaultTransfer, transferCaps, doNBRecvFailedTransfer) and lookupExtraCaps / copyMRs /
 * getReceiveSlots from src/object/tcb.c and cnode.c, MCS configuration. Manual §4.2 (message
 * transfer, cap transfer and unwrapping) and §6.2 (fault and reply messages).
 */
import { capFault, handleFaultReply, setMRsFault, timeoutFault } from "../api/faults.js";
import { cteInsert } from "../object/cnode.js";
import { deriveCap } from "../object/objecttype.js";
import { replyRemove } from "../object/reply.js";
import type { Kernel } from "../state.js";
import type { Endpoint, Reply, Slot, TCB } from "../structures.js";
import {
  CapType,
  Exception,
  FaultType,
  IPCBUF_CAPS,
  IPCBUF_MSG,
  IPCBUF_RECV_CNODE,
  IPCBUF_RECV_DEPTH,
  IPCBUF_RECV_INDEX,
  MSG_MAX_EXTRA_CAPS,
  MSG_MAX_LENGTH,
  MSG_REGISTERS,
  REG_BADGE,
  REG_MR0,
  REG_MSGINFO,
  ThreadState,
  WORD_BITS,
} from "../types.js";
import { lookupCap, lookupSlot, lookupTargetSlot } from "./cspace.js";
import { handleTimeout, validTimeoutHandler } from "./faulthandler.js";
import { copyMsgInfoLabel, extraCapCptrHi, extraCapCptrLo, msgInfoExtraCaps, setMsgInfo } from "./message.js";
import { refillReady, refillSufficient, refillUnblockCheck, scSporadic } from "./sporadic.js";
import { isRunnable, possibleSwitchTo, postpone, setThreadState } from "./thread.js";

/**
 * seL4 lookupExtraCaps: resolve the cptrs of the extra caps (IPC buffer caps_or_badges) in the
 * sender's CSpace into k.extraCaps, null after the last. A failed lookup sets k.currentFault to a
 * cap fault (send phase) and returns Exception.LookupFault. Without an IPC buffer no caps are sent.
 */
export function lookupExtraCaps(k: Kernel, t: TCB): Exception {
  const caps = k.extraCaps;
  if (t.ipcBuffer === null) {
    caps[0] = null;
    return Exception.None;
  }
  const n = msgInfoExtraCaps(t);
  let i = 0;
  for (; i < n; i++) {
    const lo = extraCapCptrLo(t, i);
    const hi = extraCapCptrHi(t, i);
    const slot = lookupSlot(k, t, hi, lo);
    if (slot === null) {
      k.currentFault = capFault(lo, hi, false);
      return Exception.LookupFault;
    }
    caps[i] = slot;
  }
  if (i < MSG_MAX_EXTRA_CAPS) caps[i] = null;
  return Exception.None;
}

/** Message length from the message info, clamped to seL4_MsgMaxLength (seL4 messageInfoFromWord). */
function msgLength(t: TCB): number {
  const len = t.regs[2 * REG_MSGINFO]! & 0x7f;
  return Math.min(len, MSG_MAX_LENGTH);
}

/**
 * seL4 copyMRs: MR0..MR3 travel in registers; the rest only when both threads have an IPC
 * buffer. Returns the number of MRs transferred.
 */
export function copyMRs(sender: TCB, receiver: TCB, n: number): number {
  const sr = sender.regs;
  const rr = receiver.regs;
  let i = 0;
  for (; i < n && i < MSG_REGISTERS; i++) {
    const r = 2 * (REG_MR0 + i);
    rr[r] = sr[r]!;
    rr[r + 1] = sr[r + 1]!;
  }
  const sb = sender.ipcBuffer;
  const rb = receiver.ipcBuffer;
  if (sb === null || rb === null) return i;
  for (; i < n; i++) {
    const w = 2 * (IPCBUF_MSG + i);
    rb[w] = sb[w]!;
    rb[w + 1] = sb[w + 1]!;
  }
  return i;
}

/**
 * seL4 getReceiveSlots: the empty slot named by the receiver's receiveCNode / receiveIndex /
 * receiveDepth IPC-buffer words, or null (no slot means no caps are received).
 */
function getReceiveSlots(k: Kernel, receiver: TCB, rb: Uint32Array): Slot | null {
  const cnode = lookupCap(k, receiver, rb[2 * IPCBUF_RECV_CNODE + 1]!, rb[2 * IPCBUF_RECV_CNODE]!);
  if (cnode === null) return null;
  // A depth word above 2^32 is out of range as a whole: pass a depth lookupTargetSlot refuses.
  const depthHi = rb[2 * IPCBUF_RECV_DEPTH + 1]!;
  const depth = depthHi !== 0 ? WORD_BITS + 1 : rb[2 * IPCBUF_RECV_DEPTH]!;
  const slot = lookupTargetSlot(k, cnode, rb[2 * IPCBUF_RECV_INDEX + 1]!, rb[2 * IPCBUF_RECV_INDEX]!, depth);
  if (slot === null) return null;
  if (slot.cap.type !== CapType.Null) return null;
  return slot;
}

/**
 * seL4 transferCaps: move the extra caps in k.extraCaps to the receiver. A cap to the endpoint the
 * message travels through is unwrapped: its badge goes to caps_or_badges[i] and bit i of
 * capsUnwrapped is set. Other caps are derived into the one receive slot; at most one cap is
 * transferred. The first error stops the transfer without telling the receiver (manual §4.2.2).
 * Returns (capsUnwrapped << 2) | extraCaps.
 */
export function transferCaps(k: Kernel, ep: Endpoint | null, receiver: TCB): number {
  const caps = k.extraCaps;
  const rb = receiver.ipcBuffer;
  if (caps[0] === null || rb === null) return 0;
  let destSlot = getReceiveSlots(k, receiver, rb);
  let unwrapped = 0;
  let i = 0;
  for (; i < MSG_MAX_EXTRA_CAPS; i++) {
    const slot = caps[i];
    if (slot === null || slot === undefined) break;
    const cap = slot.cap;
    if (cap.type === CapType.Endpoint && ep !== null && cap.obj === ep) {
      rb[2 * (IPCBUF_CAPS + i)] = cap.badgeLo;
      rb[2 * (IPCBUF_CAPS + i) + 1] = cap.badgeHi;
      unwrapped |= 1 << i;
    } else {
      if (destSlot === null) break;
      const derived = deriveCap(k, slot, cap);
      if (derived === null || derived.type === CapType.Null) break;
      cteInsert(k, derived, slot, destSlot);
      destSlot = null;
    }
  }
  return (unwrapped << 2) | i;
}

/**
 * seL4 doNormalTransfer: MRs, then caps when the sender may grant; the receiver gets the
 * sender's label, the transferred length and cap counts in its message info (x1), the badge in x0.
 */
export function doNormalTransfer(
  k: Kernel,
  sender: TCB,
  ep: Endpoint | null,
  badgeLo: number,
  badgeHi: number,
  canGrant: boolean,
  receiver: TCB,
): void {
  if (canGrant) {
    if (lookupExtraCaps(k, sender) !== Exception.None) k.extraCaps[0] = null;
  } else {
    k.extraCaps[0] = null;
  }
  const transferred = copyMRs(sender, receiver, msgLength(sender));
  const capInfo = transferCaps(k, ep, receiver);
  copyMsgInfoLabel(sender, receiver, capInfo >>> 2, capInfo & 3, transferred);
  receiver.regs[2 * REG_BADGE] = badgeLo >>> 0;
  receiver.regs[2 * REG_BADGE + 1] = badgeHi >>> 0;
}

/** seL4 doFaultTransfer: the fault message, label = fault type (manual §6.2). */
export function doFaultTransfer(
  k: Kernel,
  badgeLo: number,
  badgeHi: number,
  sender: TCB,
  receiver: TCB,
): void {
  const sent = setMRsFault(k, sender, receiver);
  setMsgInfo(receiver, sender.fault === null ? FaultType.Null : sender.fault.type, 0, 0, sent);
  receiver.regs[2 * REG_BADGE] = badgeLo >>> 0;
  receiver.regs[2 * REG_BADGE + 1] = badgeHi >>> 0;
}

/** seL4 doIPCTransfer: a normal message, or the sender's pending fault. */
export function doIPCTransfer(
  k: Kernel,
  sender: TCB,
  ep: Endpoint | null,
  badgeLo: number,
  badgeHi: number,
  grant: boolean,
  receiver: TCB,
): void {
  if (sender.fault === null) doNormalTransfer(k, sender, ep, badgeLo, badgeHi, grant, receiver);
  else doFaultTransfer(k, badgeLo, badgeHi, sender, receiver);
}

/** seL4 doNBRecvFailedTransfer: nothing was received; badge 0 tells the receiver so. */
export function doNBRecvFailedTransfer(t: TCB): void {
  t.regs[2 * REG_BADGE] = 0;
  t.regs[2 * REG_BADGE + 1] = 0;
}

/**
 * seL4 doReplyTransfer (MCS): reply through a Reply object. The caller leaves the call stack
 * (getting its SC back if it was donated), then receives the reply message, or, if it had faulted,
 * the fault reply decides whether it restarts (manual §6.2). A caller whose SC has no budget left
 * gets a timeout fault when it has a timeout handler, else waits for its next refill.
 */
export function doReplyTransfer(k: Kernel, sender: TCB, reply: Reply, grant: boolean): void {
  const receiver = reply.tcb;
  if (receiver === null || receiver.state !== ThreadState.BlockedOnReply) return;
  replyRemove(k, reply, receiver);

  const rsc = receiver.sc;
  if (rsc !== null && scSporadic(rsc) && rsc !== k.nodes[rsc.core]!.curSC) refillUnblockCheck(k, rsc);

  const fault = receiver.fault;
  const faultType = fault === null ? FaultType.Null : fault.type;
  if (fault === null) {
    doIPCTransfer(k, sender, null, 0, 0, grant, receiver);
    setThreadState(k, receiver, ThreadState.Running);
  } else {
    const restart = handleFaultReply(k, receiver, sender);
    receiver.fault = null;
    setThreadState(k, receiver, restart ? ThreadState.Restart : ThreadState.Inactive);
  }

  const sc = receiver.sc;
  if (sc !== null && isRunnable(receiver)) {
    if (refillReady(k, sc) && refillSufficient(k, sc, 0)) {
      possibleSwitchTo(k, receiver);
    } else if (validTimeoutHandler(receiver) && faultType !== FaultType.Timeout) {
      k.currentFault = timeoutFault(sc.badgeLo, sc.badgeHi, 0);
      handleTimeout(k, receiver);
    } else {
      postpone(k, sc);
    }
  }
}
