/*
 * A passive server for test/system/direct-calls.test.ts. Its protected() needs no kernel, so its
 * callers call it directly (src/platform/direct-call.ts); by label:
 *   0  the sum of MR0..MRn-1 in MR0, then MR1..MRn-1 in reverse order (n up to 120)
 *   1  an integer division by zero (a trap inside the call; unsigned 7 / 0, which clang cannot fold)
 *   2  spins for ever (on the caller's scheduling context)
 *   3  replies with a capability (its own endpoint, slot 1) and MR0 = 77: a reply the kernel must
 *      transfer, so the server's thread sends it after all
 * notified() prints, which is fine: it is not reachable from protected().
 */
#include <microkit.h>

static volatile seL4_Word zero = 0;
static seL4_Word calls;

void init(void)
{
    microkit_dbg_puts("calc: ready\n");
}

microkit_msginfo protected(microkit_channel ch, microkit_msginfo msginfo)
{
    (void)ch;
    calls++;
    seL4_Word label = microkit_msginfo_get_label(msginfo);
    seL4_Word n = microkit_msginfo_get_count(msginfo);
    if (label == 1) {
        microkit_mr_set(0, 7 / zero);
        return microkit_msginfo_new(0, 1);
    }
    if (label == 3) {
        seL4_SetCap(0, 1);
        microkit_mr_set(0, 77);
        return seL4_MessageInfo_new(9, 0, 1, 1);
    }
    if (label == 2) {
        for (volatile seL4_Word i = 0;; i++) {
        }
    }
    seL4_Word sum = 0;
    seL4_Word mrs[120];
    for (seL4_Word i = 0; i < n; i++) {
        mrs[i] = microkit_mr_get(i);
        sum += mrs[i];
    }
    microkit_mr_set(0, sum);
    for (seL4_Word i = 1; i < n; i++) {
        microkit_mr_set(i, mrs[n - i]);
    }
    return microkit_msginfo_new(calls, n);
}

void notified(microkit_channel ch)
{
    microkit_dbg_puts("calc: notified on ");
    microkit_dbg_put32(ch);
    microkit_dbg_puts(", calls so far ");
    microkit_dbg_put32((seL4_Uint32)calls);
    microkit_dbg_puts("\n");
}
