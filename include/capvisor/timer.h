/*
 * capvisor's periodic timer device (src/platform/timer-device.ts): the layout of its register
 * page. The host program that arms the device names a memory region of the system description
 * as the page (WasmPlatform.periodicTimer's `registers`, BootedSystem.region); a PD maps that
 * region (read-only is enough) and learns where with setvar_vaddr.
 *
 * The device does not queue its interrupts: a tick that comes while the previous one is still
 * pending coalesces with it, as seL4 keeps one pending bit per interrupt line. A handler that
 * must account for every tick reads COUNT after each notification: the expiries since its
 * last read are its ticks, however many interrupts they took.
 */
#ifndef CAPVISOR_TIMER_H
#define CAPVISOR_TIMER_H

#include <sel4/sel4.h>

/* Expiries so far (u64, little-endian), written before the line is raised for them. */
#define CAPVISOR_TIMER_COUNT 0x0
/* Nanoseconds between expiries (u64). */
#define CAPVISOR_TIMER_PERIOD 0x8

static inline seL4_Uint64 capvisor_timer_read64(seL4_Word regs, seL4_Word offset)
{
    volatile const seL4_Uint32 *w = (volatile const seL4_Uint32 *)(regs + offset);
    return (seL4_Uint64)w[0] | ((seL4_Uint64)w[1] << 32);
}

/* The device's expiry count: a PD's copy of the page is refreshed each time it leaves the kernel. */
static inline seL4_Uint64 capvisor_timer_count(seL4_Word regs)
{
    return capvisor_timer_read64(regs, CAPVISOR_TIMER_COUNT);
}

static inline seL4_Uint64 capvisor_timer_period_ns(seL4_Word regs)
{
    return capvisor_timer_read64(regs, CAPVISOR_TIMER_PERIOD);
}

#endif
