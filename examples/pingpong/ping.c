/*
 * ping: calls pong over a protected-procedure (pp) channel ROUNDS times with a counter in MR0;
 * pong answers with the counter plus one. ping prints each answer, then notifies pong.
 *
 * System description: ping and pong share one channel, id 0 at both ends, with pp="true" on
 * ping's end (pong, the PD being called, must have the higher priority):
 *   <channel> <end pd="ping" id="0" pp="true" /> <end pd="pong" id="0" /> </channel>
 * Build: scripts/build-c-pd.sh build/ping.wasm examples/pingpong/ping.c
 */
#include <microkit.h>

#define PONG 0
#define ROUNDS 5

void init(void)
{
    seL4_Word counter = 0;
    microkit_dbg_puts(microkit_name);
    microkit_dbg_puts(": start\n");
    for (int i = 0; i < ROUNDS; i++) {
        microkit_mr_set(0, counter);
        microkit_msginfo reply = microkit_ppcall(PONG, microkit_msginfo_new(0, 1));
        if (microkit_msginfo_get_label(reply) != 0 || microkit_msginfo_get_count(reply) != 1) {
            microkit_dbg_puts("ping: unexpected reply\n");
            return;
        }
        counter = microkit_mr_get(0);
        microkit_dbg_puts("ping: pong answered ");
        microkit_dbg_put32((seL4_Uint32)counter);
        microkit_dbg_puts("\n");
    }
    microkit_dbg_puts("ping: done, counter = ");
    microkit_dbg_put32((seL4_Uint32)counter);
    microkit_dbg_puts("\n");
    microkit_notify(PONG);
}

void notified(microkit_channel ch)
{
    (void)ch;
}
