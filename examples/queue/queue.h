/*
 * The queue shared by producer.c and consumer.c: a single-producer single-consumer ring buffer
 * in a Microkit memory_region. Each PD learns where the region is mapped in its own address
 * space from a setvar_vaddr (the two PDs map it at different addresses).
 *
 * head and tail are free-running counters (slot = counter % QUEUE_SLOTS), each written by one
 * side only: head by the producer, tail by the consumer. That matters on capvisor, where each
 * PD works on its own copy of the region and publishes the bytes it changed at its next kernel
 * entry (README, "Wasm protection domains"): two writers of the same word would race.
 */
#pragma once

#include <microkit.h>

#define QUEUE_SLOTS 64u
#define QUEUE_ITEMS 1000u
#define QUEUE_BATCH 16u

struct queue {
    seL4_Uint32 slot[QUEUE_SLOTS];
    seL4_Uint32 head; /* items ever produced: written by the producer only */
    seL4_Uint32 tail; /* items ever consumed: written by the consumer only */
};

/* Item number i: a bijection of i (2654435761 is odd), so a lost, repeated or reordered item
 * changes what the consumer sees at that position. */
static inline seL4_Uint32 queue_item(seL4_Uint32 i)
{
    return (i + 1u) * 2654435761u;
}

/* An order-sensitive checksum: both ends compute it over the items in the order they saw them. */
static inline seL4_Uint32 queue_checksum(seL4_Uint32 sum, seL4_Uint32 item)
{
    return sum * 31u + item;
}

static inline void put_hex(seL4_Uint32 x)
{
    static const char digits[] = "0123456789abcdef";
    microkit_dbg_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        microkit_dbg_putc(digits[(x >> shift) & 0xf]);
    }
}
