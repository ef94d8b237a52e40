/*
 * ticker: a periodic task made from MCS scheduling alone. Its scheduling context gives it
 * `budget` every `period` (spinner.system); seL4_Yield gives up what is left of the current
 * budget, so the loop runs once per period. Each tick it notifies the responder (channel 0)
 * and the worker (channel 1), then stops after TICKS ticks.
 */
#include <microkit.h>

#define RESPONDER 0
#define WORKER 1
#define TICKS 10

void init(void)
{
    for (seL4_Uint32 tick = 1; tick <= TICKS; tick++) {
        seL4_Yield();
        microkit_dbg_puts("ticker: tick ");
        microkit_dbg_put32(tick);
        microkit_dbg_puts("\n");
        microkit_notify(RESPONDER);
        microkit_notify(WORKER);
    }
    microkit_dbg_puts("ticker: done\n");
}

void notified(microkit_channel ch)
{
    (void)ch;
}
