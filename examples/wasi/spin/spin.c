/*
 * A WASI application that never yields: it says so, then spins for ever without a system call.
 * The runtime PD runs it on an application thread of its own (src/wasmedge/app-threads.ts), so the
 * kernel preempts it at its fuel checks and holds it to its scheduling context's budget, as it does
 * `while (1) {}` in a Wasm PD; a Linux guest's `wasmedge-run /root/wasm/spin.wasm`, stopped with
 * SIGTERM, cancels it. Built into build/examples/wasi/ by scripts/build-wasi-examples.sh (and into
 * build/examples/wasmedge-pd/ by examples/wasmedge-pd/build.sh).
 */
#include <stdio.h>

int main(void)
{
    volatile unsigned long n = 0;
    printf("spinning\n");
    fflush(stdout);
    for (;;)
        n++;
}
