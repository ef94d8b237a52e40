/*
 * parent: the fault handler of its child PD (child id 0 in restart.system). When the child
 * faults, libmicrokit calls fault() with the kernel's fault message: the label is the fault
 * type (3 = seL4 UserException, which is what a Wasm trap is on capvisor) and message register
 * 3 holds the exception number, here the trap kind (docs/wasm-abi.md, "Traps"). The parent
 * prints both, restarts the child at its entry point, and is told over channel 1 when the
 * restarted child has come up.
 */
#include <microkit.h>

#define CHILD_PD 0
#define CHILD_CHANNEL 1

/* seL4 UserException fault message (AArch64): FaultIP, SP, SPSR, Number, Code. */
#define USER_EXCEPTION_NUMBER_MR 3

static seL4_Uint32 restarts;

void init(void)
{
    microkit_dbg_puts("parent: ready\n");
}

seL4_Bool fault(microkit_child child, microkit_msginfo msginfo, microkit_msginfo *reply_msginfo)
{
    (void)reply_msginfo;
    microkit_dbg_puts("parent: child ");
    microkit_dbg_put32(child);
    microkit_dbg_puts(" faulted: label ");
    microkit_dbg_put32((seL4_Uint32)microkit_msginfo_get_label(msginfo));
    if (microkit_msginfo_get_label(msginfo) == seL4_Fault_UserException) {
        microkit_dbg_puts(" (user exception), trap number ");
        microkit_dbg_put32((seL4_Uint32)microkit_mr_get(USER_EXCEPTION_NUMBER_MR));
    }
    microkit_dbg_puts("\n");
    if (child != CHILD_PD || ++restarts > 3) {
        microkit_dbg_puts("parent: leaving it stopped\n");
        return seL4_False;
    }
    microkit_dbg_puts("parent: restarting child ");
    microkit_dbg_put32(child);
    microkit_dbg_puts("\n");
    /* On capvisor any entry point restarts the child at capvisor_start (microkit.h). */
    microkit_pd_restart(child, 0);
    /* No reply: the restart has already made the child runnable again. */
    return seL4_False;
}

void notified(microkit_channel ch)
{
    if (ch == CHILD_CHANNEL) {
        microkit_dbg_puts("parent: child is back after ");
        microkit_dbg_put32(restarts);
        microkit_dbg_puts(" restart(s)\n");
    }
}
