/*
 * bystander: an unrelated PD that does periodic work while the child crashes and restarts.
 * Its scheduling context gives it `budget` microseconds every `period` (restart.system);
 * seL4_Yield gives up the rest of the current budget, so each loop iteration starts one
 * period after the previous one: a periodic task built from MCS scheduling alone.
 */
#include <microkit.h>

#define ROUNDS 10

static seL4_Uint32 work[256];

void init(void)
{
    seL4_Uint32 sum = 0;
    for (seL4_Uint32 round = 1; round <= ROUNDS; round++) {
        for (seL4_Uint32 i = 0; i < 256; i++) {
            work[i] = work[i] * 7u + round + i;
            sum += work[i];
        }
        microkit_dbg_puts("bystander: round ");
        microkit_dbg_put32(round);
        microkit_dbg_puts(" sum ");
        microkit_dbg_put32(sum);
        microkit_dbg_puts("\n");
        seL4_Yield();
    }
    microkit_dbg_puts("bystander: done\n");
}

void notified(microkit_channel ch)
{
    (void)ch;
}
