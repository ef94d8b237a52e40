/**
 * capvisor libmicrokit for AssemblyScript protection domains: seL4 Microkit's PD API with
 * libmicrokit's names (include/microkit.h), and its event loop (lib/microkit/microkit.c).
 *
 * A PD is an AssemblyScript file that exports `init()` and `notified(ch)`, and optionally
 * `protected` (a reserved word in TypeScript, so: `export { myHandler as protected }`) and
 * `fault`. scripts/build-as-pd.sh compiles it with an entry file that exports the ABI
 * (docs/wasm-abi.md) and a `capvisor_start` that calls `microkit_main` with those functions.
 *
 * Patched variables: microkit_name (NUL-terminated, at most 63 bytes), microkit_passive (one
 * byte), microkit_irqs, microkit_notifications, microkit_pps and microkit_ioports (u64 masks)
 * are static storage; the exported globals of those names hold their addresses, and the loader
 * (src/system/boot.ts) writes the values there before it calls capvisor_start. As in C,
 * `microkit_name` is therefore an address: `microkit_dbg_puts(microkit_name)` prints the name.
 *
 * Written for capvisor from the published libmicrokit interface; not a copy of its sources.
 */
import {
  IRQAckIRQ,
  seL4_Bool,
  seL4_Call,
  seL4_CPtr,
  seL4_DebugPutChar,
  seL4_GetMR,
  seL4_IRQHandler_Ack,
  seL4_MessageInfo_get_label,
  seL4_MessageInfo_get_length,
  seL4_MessageInfo_new,
  seL4_MessageInfo_t,
  seL4_NBSendRecv,
  seL4_NoError,
  seL4_Recv,
  seL4_ReplyRecv,
  seL4_Send,
  seL4_SetMR,
  seL4_Signal,
  seL4_TCB_Resume,
  seL4_TCB_Suspend,
  seL4_TCB_WriteRegisters_pc_sp,
  seL4_Word,
} from "./sel4";

export type microkit_channel = u32;
export type microkit_child = u32;
export type microkit_msginfo = seL4_MessageInfo_t;

/* libmicrokit's capability layout in each PD's CSpace. */
export const MONITOR_EP: seL4_CPtr = 5;
export const BASE_OUTPUT_NOTIFICATION_CAP: seL4_CPtr = 10;
export const BASE_ENDPOINT_CAP: seL4_CPtr = 74;
export const BASE_IRQ_CAP: seL4_CPtr = 138;
export const BASE_TCB_CAP: seL4_CPtr = 202;
export const MICROKIT_MAX_CHANNELS: u32 = 62;
export const MICROKIT_MAX_CHANNEL_ID: u32 = MICROKIT_MAX_CHANNELS - 1;
export const MICROKIT_PD_NAME_LENGTH: i32 = 64;

const INPUT_CAP: seL4_CPtr = 1;
const REPLY_CAP: seL4_CPtr = 4;
const PD_MASK: u64 = 0xff;
const CHANNEL_MASK: u64 = 0x3f;
const BADGE_FAULT_BIT: u64 = 62;
const BADGE_ENDPOINT_BIT: u64 = 63;

/* ---------------------------------------------------------------- patched variables */

// Static storage so the loader can patch it in place; each exported global is its address.
export const microkit_name: usize = memory.data(MICROKIT_PD_NAME_LENGTH);
export const microkit_passive: usize = memory.data(1);
export const microkit_irqs: usize = memory.data(8, 8);
export const microkit_notifications: usize = memory.data(8, 8);
export const microkit_pps: usize = memory.data(8, 8);
export const microkit_ioports: usize = memory.data(8, 8);

/* These next three variables are so a PD can combine a signal with the next Recv syscall. */
let microkit_have_signal: seL4_Bool = false;
let microkit_signal_cap: seL4_CPtr = 0;
let microkit_signal_msg: seL4_MessageInfo_t = 0;

// The badge a receive delivers: the syscall stores it at this address (C's `&badge`).
const BADGE: usize = memory.data(8, 8);

/* ---------------------------------------------------------------- debug output */

/** Output a single character on the debug console. */
export function microkit_dbg_putc(c: i32): void {
  seL4_DebugPutChar(<u8>c);
}

/** Write one code point as UTF-8: the console is byte-oriented, AssemblyScript strings UTF-16. */
function putCodePoint(cp: u32): void {
  if (cp < 0x80) {
    seL4_DebugPutChar(<u8>cp);
  } else if (cp < 0x800) {
    seL4_DebugPutChar(<u8>(0xc0 | (cp >> 6)));
    seL4_DebugPutChar(<u8>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    seL4_DebugPutChar(<u8>(0xe0 | (cp >> 12)));
    seL4_DebugPutChar(<u8>(0x80 | ((cp >> 6) & 0x3f)));
    seL4_DebugPutChar(<u8>(0x80 | (cp & 0x3f)));
  } else {
    seL4_DebugPutChar(<u8>(0xf0 | (cp >> 18)));
    seL4_DebugPutChar(<u8>(0x80 | ((cp >> 12) & 0x3f)));
    seL4_DebugPutChar(<u8>(0x80 | ((cp >> 6) & 0x3f)));
    seL4_DebugPutChar(<u8>(0x80 | (cp & 0x3f)));
  }
}

/**
 * Output a string to the debug console: an AssemblyScript `string`, or, as in C, the address
 * of a NUL-terminated byte string (such as `microkit_name`). Allocates nothing.
 */
export function microkit_dbg_puts<T>(s: T): void {
  if (isString<T>()) {
    const str = changetype<string>(s);
    for (let i = 0; i < str.length; i++) {
      const cp = <u32>str.codePointAt(i);
      putCodePoint(cp);
      if (cp >= 0x10000) i++;
    }
  } else if (isInteger<T>()) {
    let p = <usize>s;
    for (let c = load<u8>(p); c != 0; c = load<u8>(++p)) seL4_DebugPutChar(c);
  } else {
    ERROR("microkit_dbg_puts takes a string or the address of a NUL-terminated string");
  }
}

/** Output the decimal representation of an 8-bit integer to the debug console. */
export function microkit_dbg_put8(x: u8): void {
  microkit_dbg_put32(<u32>x);
}

/** Output the decimal representation of a 32-bit integer to the debug console. */
export function microkit_dbg_put32(x: u32): void {
  // At most 10 digits; found backwards, printed forwards, without allocating.
  let div: u32 = 1;
  while (x / div >= 10) div *= 10;
  do {
    seL4_DebugPutChar(<u8>(0x30 + (x / div) % 10));
    div /= 10;
  } while (div != 0);
}

/** Stop this PD with a fault its parent sees (a Wasm trap is a user exception). */
export function microkit_internal_crash(err: i32): void {
  unreachable();
}

function invalidChannel(what: string, ch: u32): void {
  microkit_dbg_puts(microkit_name);
  microkit_dbg_puts(what);
  microkit_dbg_put32(ch);
  microkit_dbg_puts("'\n");
}

function hasChannel(mask: usize, ch: microkit_channel): bool {
  return ch <= MICROKIT_MAX_CHANNEL_ID && (load<u64>(mask) & (<u64>1 << <u64>ch)) != 0;
}

/* ---------------------------------------------------------------- channels */

export function microkit_notify(ch: microkit_channel): void {
  if (!hasChannel(microkit_notifications, ch)) {
    invalidChannel(" microkit_notify: invalid channel given '", ch);
    return;
  }
  seL4_Signal(BASE_OUTPUT_NOTIFICATION_CAP + <u64>ch);
}

export function microkit_irq_ack(ch: microkit_channel): void {
  if (!hasChannel(microkit_irqs, ch)) {
    invalidChannel(" microkit_irq_ack: invalid channel given '", ch);
    return;
  }
  seL4_IRQHandler_Ack(BASE_IRQ_CAP + <u64>ch);
}

export function microkit_ppcall(ch: microkit_channel, msginfo: microkit_msginfo): microkit_msginfo {
  if (!hasChannel(microkit_pps, ch)) {
    invalidChannel(" microkit_ppcall: invalid channel given '", ch);
    return seL4_MessageInfo_new(0, 0, 0, 0);
  }
  return seL4_Call(BASE_ENDPOINT_CAP + <u64>ch, msginfo);
}

/** Deferred calls: remembered, then sent together with the next receive of the event loop. */
export function microkit_deferred_notify(ch: microkit_channel): void {
  if (!hasChannel(microkit_notifications, ch)) {
    invalidChannel(" microkit_deferred_notify: invalid channel given '", ch);
    return;
  }
  microkit_have_signal = true;
  microkit_signal_msg = seL4_MessageInfo_new(0, 0, 0, 0);
  microkit_signal_cap = BASE_OUTPUT_NOTIFICATION_CAP + <u64>ch;
}

export function microkit_deferred_irq_ack(ch: microkit_channel): void {
  if (!hasChannel(microkit_irqs, ch)) {
    invalidChannel(" microkit_deferred_irq_ack: invalid channel given '", ch);
    return;
  }
  microkit_have_signal = true;
  microkit_signal_msg = seL4_MessageInfo_new(IRQAckIRQ, 0, 0, 0);
  microkit_signal_cap = BASE_IRQ_CAP + <u64>ch;
}

/* ---------------------------------------------------------------- children */

/** Restart child `pd`; a Wasm PD has one entry point, so capvisor restarts it at capvisor_start. */
export function microkit_pd_restart(pd: microkit_child, entry_point: seL4_Word): void {
  const err = seL4_TCB_WriteRegisters_pc_sp(BASE_TCB_CAP + <u64>pd, true, 1, entry_point, 0);
  if (err != seL4_NoError) {
    microkit_dbg_puts("microkit_pd_restart: error writing TCB registers\n");
    microkit_internal_crash(err);
  }
}

export function microkit_pd_stop(pd: microkit_child): void {
  const err = seL4_TCB_Suspend(BASE_TCB_CAP + <u64>pd);
  if (err != seL4_NoError) {
    microkit_dbg_puts("microkit_pd_stop: error stopping TCB '");
    microkit_dbg_put32(pd);
    microkit_dbg_puts("'\n");
    microkit_internal_crash(err);
  }
}

export function microkit_pd_resume(pd: microkit_child): void {
  const err = seL4_TCB_Resume(BASE_TCB_CAP + <u64>pd);
  if (err != seL4_NoError) {
    microkit_dbg_puts("microkit_pd_resume: error resuming TCB '");
    microkit_dbg_put32(pd);
    microkit_dbg_puts("'\n");
    microkit_internal_crash(err);
  }
}

/* ---------------------------------------------------------------- messages */

export function microkit_msginfo_new(label: seL4_Word, count: u16): microkit_msginfo {
  return seL4_MessageInfo_new(label, 0, 0, <u64>count);
}

export function microkit_msginfo_get_label(msginfo: microkit_msginfo): seL4_Word {
  return seL4_MessageInfo_get_label(msginfo);
}

export function microkit_msginfo_get_count(msginfo: microkit_msginfo): seL4_Word {
  return seL4_MessageInfo_get_length(msginfo);
}

export function microkit_mr_set(mr: u8, value: seL4_Word): void {
  seL4_SetMR(<i32>mr, value);
}

export function microkit_mr_get(mr: u8): seL4_Word {
  return seL4_GetMR(<i32>mr);
}

/* ---------------------------------------------------------------- the event loop */

/*
 * fault() returns whether to reply and, in C, the reply's message info through a pointer; here
 * the handler stores it with microkit_fault_reply(msginfo).
 */
let faultReplyTag: microkit_msginfo = 0;

/** Set the message info fault() replies with when it returns true (C's `*reply_msginfo`). */
export function microkit_fault_reply(msginfo: microkit_msginfo): void {
  faultReplyTag = msginfo;
}

/** libmicrokit's weak defaults: a PD without the entry point reports it and crashes. */
export function microkit_missing_protected(ch: microkit_channel, msginfo: microkit_msginfo): microkit_msginfo {
  microkit_dbg_puts(microkit_name);
  microkit_dbg_puts(" is missing the 'protected' entry point\n");
  microkit_internal_crash(0);
  return seL4_MessageInfo_new(0, 0, 0, 0);
}

export function microkit_missing_fault(child: microkit_child, msginfo: microkit_msginfo): bool {
  microkit_dbg_puts(microkit_name);
  microkit_dbg_puts(" is missing the 'fault' entry point\n");
  microkit_internal_crash(0);
  return false;
}

function deferredFlush(): void {
  if (microkit_have_signal) {
    seL4_Send(microkit_signal_cap, microkit_signal_msg);
    microkit_have_signal = false;
  }
}

function handlerLoop(
  notified: (ch: microkit_channel) => void,
  protectedFn: (ch: microkit_channel, msginfo: microkit_msginfo) => microkit_msginfo,
  faultFn: (child: microkit_child, msginfo: microkit_msginfo) => bool,
): void {
  let haveReply = false;
  let replyTag: microkit_msginfo = seL4_MessageInfo_new(0, 0, 0, 0);

  // Acknowledge every IRQ once at start (libmicrokit does so because of seL4 issue 1536).
  let irqsToAck = load<u64>(microkit_irqs);
  let idx: u32 = 0;
  do {
    if ((irqsToAck & 1) != 0) microkit_irq_ack(idx);
    irqsToAck >>= 1;
    idx++;
  } while (irqsToAck != 0);

  for (;;) {
    let tag: seL4_MessageInfo_t;
    if (haveReply) {
      deferredFlush();
      tag = seL4_ReplyRecv(INPUT_CAP, replyTag, BADGE, REPLY_CAP);
    } else if (microkit_have_signal) {
      tag = seL4_NBSendRecv(microkit_signal_cap, microkit_signal_msg, INPUT_CAP, BADGE, REPLY_CAP);
      microkit_have_signal = false;
    } else {
      tag = seL4_Recv(INPUT_CAP, BADGE, REPLY_CAP);
    }
    let badge = load<u64>(BADGE);

    const isEndpoint = badge >> BADGE_ENDPOINT_BIT;
    const isFault = (badge >> BADGE_FAULT_BIT) & 1;

    haveReply = false;

    if (isFault != 0) {
      // As in C, a fault() that says "reply" without setting a tag replies with the last one.
      faultReplyTag = replyTag;
      if (faultFn(<microkit_child>(badge & PD_MASK), tag)) {
        replyTag = faultReplyTag;
        haveReply = true;
      }
    } else if (isEndpoint != 0) {
      haveReply = true;
      replyTag = protectedFn(<microkit_channel>(badge & CHANNEL_MASK), tag);
    } else {
      let ch: u32 = 0;
      do {
        if ((badge & 1) != 0) notified(ch);
        badge >>= 1;
        ch++;
      } while (badge != 0);
    }
  }
}

/**
 * libmicrokit's main, which capvisor_start runs: init(), then, for a passive PD, a signal to the
 * monitor deferred to the first receive (so the monitor can take its scheduling context away,
 * as in Microkit), then the event loop. Never returns.
 */
export function microkit_main(
  init: () => void,
  notified: (ch: microkit_channel) => void,
  protectedFn: (ch: microkit_channel, msginfo: microkit_msginfo) => microkit_msginfo,
  faultFn: (child: microkit_child, msginfo: microkit_msginfo) => bool,
): void {
  init();
  if (load<u8>(microkit_passive) != 0) {
    microkit_have_signal = true;
    microkit_signal_msg = seL4_MessageInfo_new(0, 0, 0, 0);
    microkit_signal_cap = MONITOR_EP;
  }
  handlerLoop(notified, protectedFn, faultFn);
}
