/*
 * bench:ipc notification sender: signals channel 0 forever. The waiter has the higher priority,
 * so on the same core every signal runs the waiter before the sender continues.
 * Build: scripts/build-c-pd.sh examples/bench/ntfn_sender.wasm examples/bench/ntfn_sender.c
 */
#include <microkit.h>

#define WAITER 0

void init(void)
{
    for (;;) {
        microkit_notify(WAITER);
    }
}

void notified(microkit_channel ch)
{
    (void)ch;
}
