/*
 * test/platform/timer-device.test.ts: a handler that accounts for every expiry of its timer,
 * coalesced or not, by reading the device's count register (include/capvisor/timer.h) after
 * each interrupt. Prints one line per interrupt: "interrupt N: count C (+D)".
 */
#include <capvisor/print.h>
#include <capvisor/timer.h>
#include <microkit.h>

#define TIMER 3

/* Where the timer's register page is mapped in this PD (setvar_vaddr="timer_regs"). */
seL4_Word timer_regs;

static seL4_Uint64 seen;
static unsigned interrupts;

void init(void)
{
    microkit_dbg_puts("counter ready\n");
}

void notified(microkit_channel ch)
{
    if (ch != TIMER) {
        microkit_dbg_puts("unexpected channel\n");
        return;
    }
    seL4_Uint64 count = capvisor_timer_count(timer_regs);
    if (interrupts == 0) {
        microkit_dbg_puts("period ");
        capvisor_put_dec(capvisor_timer_period_ns(timer_regs));
        microkit_dbg_puts(" ns\n");
    }
    interrupts++;
    microkit_dbg_puts("interrupt ");
    capvisor_put_dec(interrupts);
    microkit_dbg_puts(": count ");
    capvisor_put_dec(count);
    microkit_dbg_puts(" (+");
    capvisor_put_dec(count - seen);
    microkit_dbg_puts(")\n");
    seen = count;
    microkit_irq_ack(ch);
}
