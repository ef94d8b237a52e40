/*
 * producer: puts QUEUE_ITEMS items into the shared queue (queue.h) and notifies the consumer
 * after every QUEUE_BATCH items and when it stops. When the queue is full it stops and waits:
 * the consumer notifies back when it has made room (flow control), and notified() continues
 * where the producer left off.
 *
 * capvisor-build-flags: --export=queue
 */
#include "queue.h"

#define CONSUMER 0

/* Where the region is mapped in this PD: patched by the loader (setvar_vaddr="queue"). */
seL4_Word queue;

static seL4_Uint32 sent;
static seL4_Uint32 sum;
static seL4_Uint32 waits;

static void produce(void)
{
    volatile struct queue *q = (volatile struct queue *)queue;
    seL4_Uint32 unannounced = 0;
    /* q->tail is the consumer's tail as of this PD's last kernel exit: a safe underestimate. */
    while (sent < QUEUE_ITEMS && q->head - q->tail < QUEUE_SLOTS) {
        seL4_Uint32 item = queue_item(sent);
        q->slot[q->head % QUEUE_SLOTS] = item;
        q->head = q->head + 1;
        sum = queue_checksum(sum, item);
        sent++;
        /* The notification is also the syscall that publishes the new items and head. */
        if (++unannounced == QUEUE_BATCH) {
            microkit_notify(CONSUMER);
            unannounced = 0;
        }
    }
    if (unannounced != 0) {
        microkit_notify(CONSUMER);
    }
    if (sent == QUEUE_ITEMS) {
        microkit_dbg_puts("producer: sent ");
        microkit_dbg_put32(sent);
        microkit_dbg_puts(" items, checksum ");
        put_hex(sum);
        microkit_dbg_puts(", waited for room ");
        microkit_dbg_put32(waits);
        microkit_dbg_puts(" times\n");
        sent++; /* report once */
    } else if (sent < QUEUE_ITEMS) {
        /* Full: wait for the consumer's notification (notified() below). */
        waits++;
    }
}

void init(void)
{
    microkit_dbg_puts("producer: queue at ");
    put_hex((seL4_Uint32)queue);
    microkit_dbg_puts("\n");
    produce();
}

void notified(microkit_channel ch)
{
    if (ch == CONSUMER) {
        produce();
    }
}
