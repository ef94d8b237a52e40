/*
 * bench:ipc client: calls the server over pp channel 0 forever, MR0 carrying a counter.
 * It never prints: the benchmark times its Call syscalls with the platform's syscall probe
 * (the interval between two Calls is one round trip) and stops the system when it has enough.
 * Build: scripts/build-c-pd.sh examples/bench/ipc_client.wasm examples/bench/ipc_client.c
 */
#include <microkit.h>

#define SERVER 0

/*
 * Before the first call, spin for a moment (tens of ms). Microkit does not order init()s across
 * PDs: a client on another core could call a passive server while the server still runs init()
 * on its own scheduling context; the server would take the call on that context, and the
 * monitor, turning the server passive, would then unbind it mid-call. Waiting lets the server
 * finish init() and become passive first, as in a real system where clients start later.
 */
#define START_SPINS 20000000u

void init(void)
{
    seL4_Word counter = 0;
    for (volatile unsigned i = 0; i < START_SPINS; i++) {
    }
    for (;;) {
        microkit_mr_set(0, counter);
        microkit_ppcall(SERVER, microkit_msginfo_new(0, 1));
        counter = microkit_mr_get(0);
    }
}

void notified(microkit_channel ch)
{
    (void)ch;
}
