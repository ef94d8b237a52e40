/*
 * Number printing for PDs on top of microkit_dbg_puts (libmicrokit prints strings only).
 */
#ifndef CAPVISOR_PRINT_H
#define CAPVISOR_PRINT_H

#include <microkit.h>

/* Print v in decimal on the PD's console. */
static inline void capvisor_put_dec(seL4_Uint64 v)
{
    char buf[24];
    int i = 23;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    microkit_dbg_puts(&buf[i]);
}

#endif
