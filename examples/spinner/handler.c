/*
 * handler: counts the notifications it gets from the ticker (channel 0), prints each one and
 * answers the ticker, which waits for the answer before its next tick. Run as "responder" (high priority, sharing a core with a spinner) and as
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
        microkit_notify(TICKER);
    }
}
