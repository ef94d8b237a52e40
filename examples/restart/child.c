/*
 * child: a PD that crashes on its first run. Its init() writes through a bad pointer (past the
 * end of its linear memory), which traps; the trap is a fault that the kernel sends to the
 * parent's fault(). The parent restarts it; memory is kept across a restart (as on seL4,
 * where restarting sets the pc but does not reload the image), so the second run knows it is
 * the second and behaves.
 */
#include <microkit.h>

#define PARENT 0

static seL4_Uint32 runs;

void init(void)
{
    runs++;
    microkit_dbg_puts("child: run ");
    microkit_dbg_put32(runs);
    microkit_dbg_puts("\n");
    if (runs == 1) {
        microkit_dbg_puts("child: writing through a bad pointer\n");
        *(volatile seL4_Uint32 *)0xfffffff0u = 1;
        microkit_dbg_puts("child: not reached\n");
    }
    microkit_dbg_puts("child: running normally\n");
    microkit_notify(PARENT);
}

void notified(microkit_channel ch)
{
    (void)ch;
}
