/*
 * consumer: drains the shared queue (queue.h) whenever the producer notifies it, checks that
 * item n is the producer's n-th item (so none is lost, repeated or out of order), and notifies
 * the producer back so that it can refill the queue. After the last item it prints the count,
 * the number of mismatches and the same order-sensitive checksum the producer prints.
 *
 * capvisor-build-flags: --export=queue
 */
#include "queue.h"

#define PRODUCER 0

/* Where the region is mapped in this PD: patched by the loader (setvar_vaddr="queue"). */
seL4_Word queue;

static seL4_Uint32 received;
static seL4_Uint32 errors;
static seL4_Uint32 sum;

void init(void)
{
    microkit_dbg_puts("consumer: queue at ");
    put_hex((seL4_Uint32)queue);
    microkit_dbg_puts("\n");
}

void notified(microkit_channel ch)
{
    if (ch != PRODUCER) {
        return;
    }
    volatile struct queue *q = (volatile struct queue *)queue;
    seL4_Uint32 before = received;
    while (q->tail != q->head) {
        seL4_Uint32 item = q->slot[q->tail % QUEUE_SLOTS];
        if (item != queue_item(received)) {
            errors++;
        }
        sum = queue_checksum(sum, item);
        received++;
        q->tail = q->tail + 1;
    }
    if (received == before) {
        return;
    }
    /* Room again: tell the producer (this syscall also publishes the new tail). */
    microkit_notify(PRODUCER);
    if (received == QUEUE_ITEMS) {
        microkit_dbg_puts("consumer: received ");
        microkit_dbg_put32(received);
        microkit_dbg_puts(" items, ");
        microkit_dbg_put32(errors);
        microkit_dbg_puts(" out of order or lost, checksum ");
        put_hex(sum);
        microkit_dbg_puts("\n");
    }
}
