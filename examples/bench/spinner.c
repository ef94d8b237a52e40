/*
 * bench:rt load: a low-priority PD that spins in init() and never makes a syscall. Only the
 * load-time preemption instrumentation lets the kernel take its core back.
 * Build: scripts/build-c-pd.sh examples/bench/spinner.wasm examples/bench/spinner.c
 */
#include <microkit.h>

void init(void)
{
    volatile unsigned counter = 0;
    while (1) {
        counter++;
    }
}

void notified(microkit_channel ch)
{
    (void)ch;
}
