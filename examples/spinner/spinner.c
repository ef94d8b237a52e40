/*
 * spinner: `while (1) {}` in init(), never making a syscall. On capvisor the loop still gives
 * the core back: the loader instruments every loop header with a fuel check that enters the
 * runtime (docs/wasm-abi.md, "Preemption"), where the kernel's priorities and budgets apply.
 * The counter is volatile so the compiler must keep the loop (an empty infinite loop without
 * side effects may be deleted in C).
 */
#include <microkit.h>

static volatile seL4_Uint64 spins;

void init(void)
{
    microkit_dbg_puts(microkit_name);
    microkit_dbg_puts(": spinning\n");
    while (1) {
        spins++;
    }
}

void notified(microkit_channel ch)
{
    (void)ch;
}
