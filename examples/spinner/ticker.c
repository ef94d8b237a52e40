/*
 * ticker: a periodic task made from MCS scheduling alone. Its scheduling context gives it
 * `budget` every `period` (spinner.system); seL4_Yield gives up what is left of the current
 * budget, so it ticks at most once per period. Each tick it notifies the responder (channel 0)
 * and the worker (channel 1), and ticks again only when both have answered: a handler that
 * never got the core (because a spinner kept it) would stop the ticker for good, so TICKS
 * ticks prove that both handlers ran every time, however loaded the host is.
 */
#include <microkit.h>

#define RESPONDER 0
#define WORKER 1
#define TICKS 10

static seL4_Uint32 tick;
static seL4_Uint32 acked;

static void next_tick(void)
{
    seL4_Yield();
    tick++;
    acked = 0;
    microkit_dbg_puts("ticker: tick ");
    microkit_dbg_put32(tick);
    microkit_dbg_puts("\n");
    microkit_notify(RESPONDER);
    microkit_notify(WORKER);
}

void init(void)
{
    next_tick();
}

void notified(microkit_channel ch)
{
    if (ch == RESPONDER || ch == WORKER) acked |= 1u << ch;
    if (acked != 3) return;
    if (tick == TICKS) {
        microkit_dbg_puts("ticker: done\n");
        return;
    }
    next_tick();
}
