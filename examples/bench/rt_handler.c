/*
 * bench:rt interrupt handler. For each timer interrupt it reads the timer's count register
 * (include/capvisor/timer.h), so that ticks coalesced into one interrupt are handled all the
 * same, then acknowledges: that IRQHandler_Ack is its first syscall after its Wait returns, and
 * bench:rt timestamps it. Reading the register takes no syscall. When the bench raises the
 * report line at the end, it prints what it handled.
 * capvisor-build-flags: --export=timer_regs
 */
#include <capvisor/print.h>
#include <capvisor/timer.h>
#include <microkit.h>

#define TIMER 0
#define REPORT 1

/* Where the timer's register page is mapped (setvar_vaddr="timer_regs"). */
seL4_Word timer_regs;

/* The timer's count at the last read: every tick up to it has been handled. */
static seL4_Uint64 ticks;
static seL4_Uint64 interrupts;

void init(void)
{
}

void notified(microkit_channel ch)
{
    if (ch == TIMER) {
        ticks = capvisor_timer_count(timer_regs);
        interrupts++;
        microkit_irq_ack(ch);
    } else if (ch == REPORT) {
        microkit_dbg_puts("handled ");
        capvisor_put_dec(ticks);
        microkit_dbg_puts(" ticks in ");
        capvisor_put_dec(interrupts);
        microkit_dbg_puts(" interrupts\n");
        microkit_irq_ack(ch);
    }
}
