/*
 * bench:ipc notification waiter (and bench:rt interrupt handler): notified() does the least a
 * handler does. For an IRQ channel it acknowledges the interrupt, and that IRQHandler_Ack is
 * the handler's first syscall after its Wait returns: bench:rt timestamps it. For a channel
 * from another PD there is nothing to do: the next syscall is the event loop's Recv.
 * Build: scripts/build-c-pd.sh examples/bench/ntfn_waiter.wasm examples/bench/ntfn_waiter.c
 */
#include <microkit.h>

void init(void)
{
}

void notified(microkit_channel ch)
{
    if (microkit_irqs & (1ULL << ch)) {
        microkit_irq_ack(ch);
    }
}
