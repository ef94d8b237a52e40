/*
 * handler: counts the notifications it gets from the ticker (channel 0) and prints each one.
 * Two notifications that arrive before the handler runs merge into one (a notification is a
 * bit, not a queue), so a count that keeps up with the ticker's shows the handler ran between
 * every two ticks. Run as "responder" (high priority, sharing a core with a spinner) and as
 * "worker" (the same priority as a budget-limited spinner) in spinner.system.
 */
#include <microkit.h>

#define TICKER 0

static seL4_Uint32 ticks;

void init(void)
{
}

void notified(microkit_channel ch)
{
    if (ch == TICKER) {
        ticks++;
        microkit_dbg_puts(microkit_name);
        microkit_dbg_puts(": tick ");
        microkit_dbg_put32(ticks);
        microkit_dbg_puts("\n");
    }
}
