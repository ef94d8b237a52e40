/*
 * bench:compute as a capvisor PD: init() runs the same kernel as bench/native/compute.c RUNS
 * times and prints each checksum. The PD cannot read a clock (its only import is the syscall),
 * so bench/compute.ts times each run between the printing syscalls around it.
 * Build: scripts/build-c-pd.sh -DREPS=40 -DRUNS=6 out.wasm examples/bench/compute_pd.c
 */
#include <microkit.h>

#include "../../bench/native/compute.h"

#ifndef REPS
#define REPS 2
#endif
#ifndef RUNS
#define RUNS 2
#endif

static void put_hex(seL4_Uint32 x)
{
    for (int shift = 28; shift >= 0; shift -= 4) {
        microkit_dbg_putc("0123456789abcdef"[(x >> shift) & 0xF]);
    }
}

void init(void)
{
    for (int i = 0; i < RUNS; i++) {
        seL4_Uint32 sum = compute_run(REPS);
        microkit_dbg_puts("checksum=");
        put_hex(sum);
        microkit_dbg_puts("\n");
    }
}

void notified(microkit_channel ch)
{
    (void)ch;
}
