/*
 * capvisor libmicrokit for wasm32: the PD's entry point and libmicrokit's event loop.
 *
 * capvisor_start (exported) runs the constructors, init(), then the loop: wait on INPUT_CAP
 * with REPLY_CAP; a badge with bit 63 set is a protected call on channel (badge & 0x3f), bit
 * 62 a fault of child (badge & 0xff), otherwise every set bit n is a notification on channel n.
 * A reply (to protected(), or to fault() when it returns true) goes out with the next receive
 * (ReplyRecv); a deferred signal (microkit_deferred_notify / _irq_ack) goes out with it too:
 * as a separate Send before a ReplyRecv, or in one NBSendRecv when there is no reply.
 *
 * Patched variables: the loader writes microkit_name (NUL-terminated PD name, at most 63
 * bytes), microkit_passive, microkit_irqs, microkit_notifications, microkit_pps and
 * microkit_ioports after instantiating the module and before calling capvisor_start, at the
 * addresses held by the exported Wasm globals of the same names (build-c-pd.sh exports them).
 * A passive PD (microkit_passive = 1) signals MONITOR_EP once, with its first receive after
 * init(), so the monitor can take its scheduling context away, as in Microkit.
 */
#include <microkit.h>
#include <sel4/sel4.h>

#define INPUT_CAP 1
#define REPLY_CAP 4

#define PD_MASK 0xff
#define CHANNEL_MASK 0x3f

#define BADGE_FAULT_BIT 62
#define BADGE_ENDPOINT_BIT 63

/* All globals are prefixed with microkit_ to avoid clashes with user defined globals. */
seL4_Bool microkit_passive;
char microkit_name[MICROKIT_PD_NAME_LENGTH];
seL4_Bool microkit_have_signal = seL4_False;
seL4_CPtr microkit_signal_cap;
seL4_MessageInfo_t microkit_signal_msg;

seL4_Word microkit_irqs;
seL4_Word microkit_notifications;
seL4_Word microkit_pps;
seL4_Word microkit_ioports;

/* Provided by wasm-ld: runs the C constructors (libmicrokit's run_init_funcs). */
extern void __wasm_call_ctors(void);

__attribute__((weak)) microkit_msginfo protected(microkit_channel ch, microkit_msginfo msginfo)
{
    (void)ch;
    (void)msginfo;
    microkit_dbg_puts(microkit_name);
    microkit_dbg_puts(" is missing the 'protected' entry point\n");
    microkit_internal_crash(0);
    return seL4_MessageInfo_new(0, 0, 0, 0);
}

__attribute__((weak)) seL4_Bool fault(microkit_child child, microkit_msginfo msginfo,
                                      microkit_msginfo *reply_msginfo)
{
    (void)child;
    (void)msginfo;
    (void)reply_msginfo;
    microkit_dbg_puts(microkit_name);
    microkit_dbg_puts(" is missing the 'fault' entry point\n");
    microkit_internal_crash(0);
    return seL4_False;
}

/* ---------------------------------------------------------------- debug output */

void microkit_dbg_putc(int c)
{
    seL4_DebugPutChar((char)c);
}

void microkit_dbg_puts(const char *s)
{
    while (*s) {
        microkit_dbg_putc(*s);
        s++;
    }
}

void microkit_dbg_put8(seL4_Uint8 x)
{
    char tmp[4];
    unsigned i = 3;
    tmp[3] = 0;
    do {
        seL4_Uint8 c = x % 10;
        tmp[--i] = (char)('0' + c);
        x /= 10;
    } while (x);
    microkit_dbg_puts(&tmp[i]);
}

void microkit_dbg_put32(seL4_Uint32 x)
{
    char tmp[11];
    unsigned i = 10;
    tmp[10] = 0;
    do {
        seL4_Uint8 c = x % 10;
        tmp[--i] = (char)('0' + c);
        x /= 10;
    } while (x);
    microkit_dbg_puts(&tmp[i]);
}

/* libsel4's debug asserts land here; weak so a PD with its own libc can override it. */
__attribute__((weak)) void __assert_fail(const char *str, const char *file, int line, const char *function)
{
    microkit_dbg_puts(microkit_name);
    microkit_dbg_puts("|assert failed: ");
    microkit_dbg_puts(str);
    microkit_dbg_puts(" ");
    microkit_dbg_puts(file);
    microkit_dbg_puts(":");
    microkit_dbg_put32((seL4_Uint32)line);
    microkit_dbg_puts(" ");
    microkit_dbg_puts(function);
    microkit_dbg_puts("\n");
    microkit_internal_crash(0);
}

/* ---------------------------------------------------------------- the event loop */

static void deferred_flush(void)
{
    if (microkit_have_signal) {
        seL4_Send(microkit_signal_cap, microkit_signal_msg);
        microkit_have_signal = seL4_False;
    }
}

static void handler_loop(void)
{
    seL4_Bool have_reply = seL4_False;
    seL4_MessageInfo_t reply_tag = seL4_MessageInfo_new(0, 0, 0, 0);

    /* Acknowledge every IRQ once at start (libmicrokit does so because of seL4 issue 1536). */
    {
        seL4_Word irqs_to_ack = microkit_irqs;
        unsigned int idx = 0;
        do {
            if (irqs_to_ack & 1) {
                microkit_irq_ack(idx);
            }
            irqs_to_ack >>= 1;
            idx++;
        } while (irqs_to_ack != 0);
    }

    for (;;) {
        seL4_Word badge;
        seL4_MessageInfo_t tag;

        if (have_reply) {
            deferred_flush();
            tag = seL4_ReplyRecv(INPUT_CAP, reply_tag, &badge, REPLY_CAP);
        } else if (microkit_have_signal) {
            tag = seL4_NBSendRecv(microkit_signal_cap, microkit_signal_msg, INPUT_CAP, &badge, REPLY_CAP);
            microkit_have_signal = seL4_False;
        } else {
            tag = seL4_Recv(INPUT_CAP, &badge, REPLY_CAP);
        }

        seL4_Uint64 is_endpoint = badge >> BADGE_ENDPOINT_BIT;
        seL4_Uint64 is_fault = (badge >> BADGE_FAULT_BIT) & 1;

        have_reply = seL4_False;

        if (is_fault) {
            seL4_Bool reply_to_fault = fault((microkit_child)(badge & PD_MASK), tag, &reply_tag);
            if (reply_to_fault) {
                have_reply = seL4_True;
            }
        } else if (is_endpoint) {
            have_reply = seL4_True;
            reply_tag = protected((microkit_channel)(badge & CHANNEL_MASK), tag);
        } else {
            unsigned int idx = 0;
            do {
                if (badge & 1) {
                    notified(idx);
                }
                badge >>= 1;
                idx++;
            } while (badge != 0);
        }
    }
}

__attribute__((noinline, export_name("capvisor_defer"))) void microkit_internal_defer(seL4_CPtr cap, seL4_MessageInfo_t msg)
{
    microkit_have_signal = seL4_True;
    microkit_signal_msg = msg;
    microkit_signal_cap = cap;
}

/*
 * The direct protected call (docs/wasm-abi.md, "Direct protected calls"): the runtime has put the
 * caller's message info in the IPC buffer's tag and its message registers in msg[], as the
 * kernel's transfer and libsel4's receive would; the reply goes back the same way. Called only
 * while this PD is blocked in its event loop's receive, never by the PD's own thread.
 */
__attribute__((export_name("capvisor_protected"))) void capvisor_protected(unsigned int ch)
{
    __sel4_ipc_buffer->tag = protected((microkit_channel)ch, __sel4_ipc_buffer->tag);
}

/* The thread's entry point (docs/wasm-abi.md): libmicrokit's main. */
__attribute__((export_name("capvisor_start"))) void capvisor_start(void)
{
    __wasm_call_ctors();
    init();

    /*
     * A passive PD, its initialisation done, signals the monitor, which moves its scheduling
     * context away. The signal is deferred so it goes out with the first receive.
     */
    if (microkit_passive) {
        microkit_have_signal = seL4_True;
        microkit_signal_msg = seL4_MessageInfo_new(0, 0, 0, 0);
        microkit_signal_cap = MONITOR_EP;
    }

    handler_loop();
}
