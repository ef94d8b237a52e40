/*
 * test/platform/timer-device.test.ts: the handler of a periodic timer device. It owns the
 * device's interrupt as channel 3, acknowledges each one and prints how many it has handled.
 */
#include <capvisor/print.h>
#include <microkit.h>

#define TIMER 3

static unsigned handled;

void init(void)
{
    microkit_dbg_puts("ticker ready\n");
}

void notified(microkit_channel ch)
{
    if (ch != TIMER) {
        microkit_dbg_puts("unexpected channel\n");
        return;
    }
    handled++;
    microkit_irq_ack(ch);
    microkit_dbg_puts("tick ");
    capvisor_put_dec(handled);
    microkit_dbg_puts("\n");
}
