/*
 * The caller of calc.c (test/system/direct-calls.test.ts): sums 6 and then 30 message registers
 * (so that registers beyond the first four travel in the IPC buffer), notifies calc, then makes
 * the call whose label MODE gives (-DMODE=1: it traps in calc; -DMODE=2: it spins there; -DMODE=3:
 * calc replies with a capability), and after it sums 6 registers once more.
 */
#include <microkit.h>

#define CALC 0

#ifndef MODE
#define MODE 1
#endif

static void sum(seL4_Word n)
{
    for (seL4_Word i = 0; i < n; i++) {
        microkit_mr_set(i, i + 1);
    }
    microkit_msginfo r = microkit_ppcall(CALC, microkit_msginfo_new(0, n));
    microkit_dbg_puts("client: label ");
    microkit_dbg_put32((seL4_Uint32)microkit_msginfo_get_label(r));
    microkit_dbg_puts(" count ");
    microkit_dbg_put32((seL4_Uint32)microkit_msginfo_get_count(r));
    microkit_dbg_puts(" sum ");
    microkit_dbg_put32((seL4_Uint32)microkit_mr_get(0));
    microkit_dbg_puts(" then");
    for (seL4_Word i = 1; i < microkit_msginfo_get_count(r) && i < 6; i++) {
        microkit_dbg_puts(" ");
        microkit_dbg_put32((seL4_Uint32)microkit_mr_get(i));
    }
    microkit_dbg_puts(" last ");
    microkit_dbg_put32((seL4_Uint32)microkit_mr_get(n - 1));
    microkit_dbg_puts("\n");
}

void init(void)
{
    sum(6);
    sum(30);
#if MODE != 2
    /* A notification makes calc run notified() on its own thread; a call right after it may find
     * calc busy and go through the kernel. The spinning call must be direct: no notification. */
    microkit_notify(CALC);
#endif
    microkit_dbg_puts("client: calling with label ");
    microkit_dbg_put32(MODE);
    microkit_dbg_puts("\n");
    microkit_msginfo r = microkit_ppcall(CALC, microkit_msginfo_new(MODE, 0));
    microkit_dbg_puts("client: the call returned label ");
    microkit_dbg_put32((seL4_Uint32)microkit_msginfo_get_label(r));
    microkit_dbg_puts(" extra caps ");
    microkit_dbg_put32((seL4_Uint32)seL4_MessageInfo_get_extraCaps(r));
    microkit_dbg_puts(" count ");
    microkit_dbg_put32((seL4_Uint32)microkit_msginfo_get_count(r));
    microkit_dbg_puts(" MR0 ");
    microkit_dbg_put32((seL4_Uint32)microkit_mr_get(0));
    microkit_dbg_puts("\n");
    sum(6);
}

void notified(microkit_channel ch)
{
    (void)ch;
}
