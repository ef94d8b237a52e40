/*
 * traps: one program, several PDs (traps.system); each PD's name says which Wasm trap it
 * raises in init(). Every trap is a user exception of that PD's thread (docs/wasm-abi.md,
 * "Traps"); these PDs have no parent, so the fault goes to the monitor, which reports it and
 * leaves the PD stopped. The other PDs, and the survivor, are not affected.
 */
#include <microkit.h>

static int name_is(const char *s)
{
    const char *n = microkit_name;
    while (*s != 0 && *n == *s) {
        s++;
        n++;
    }
    return *s == 0 && *n == 0;
}

/* Opaque to the compiler: operands it cannot see (1 / x would become x == 1, which does not
 * trap), and a call it cannot turn into a loop. */
static volatile seL4_Uint32 numerator = 100;
static volatile seL4_Uint32 zero;
static seL4_Uint32 recurse(seL4_Uint32 depth);
static seL4_Uint32 (*volatile recurse_ptr)(seL4_Uint32) = recurse;

static seL4_Uint32 recurse(seL4_Uint32 depth)
{
    return recurse_ptr(depth + 1) + 1;
}

void init(void)
{
    microkit_dbg_puts(microkit_name);
    microkit_dbg_puts(": about to trap\n");
    if (name_is("unreachable")) {
        __builtin_trap();
    } else if (name_is("out_of_bounds")) {
        *(volatile seL4_Uint32 *)0xfffffff0u = 1;
    } else if (name_is("stack_overflow")) {
        microkit_dbg_put32(recurse(0));
    } else if (name_is("divide_by_zero")) {
        microkit_dbg_put32(numerator / zero);
    }
    microkit_dbg_puts(microkit_name);
    microkit_dbg_puts(": did not trap\n");
}

void notified(microkit_channel ch)
{
    (void)ch;
}
