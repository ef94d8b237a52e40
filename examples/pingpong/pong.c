/*
 * pong: answers each protected call from ping with MR0 + 1, and reports ping's notification.
 * See ping.c for the channel (id 0 at both ends, pp on ping's end).
 * Build: scripts/build-c-pd.sh build/pong.wasm examples/pingpong/pong.c
 */
#include <microkit.h>

#define PING 0

void init(void)
{
    microkit_dbg_puts("pong: ready\n");
}

microkit_msginfo protected(microkit_channel ch, microkit_msginfo msginfo)
{
    if (ch != PING || microkit_msginfo_get_count(msginfo) != 1) {
        return microkit_msginfo_new(1, 0);
    }
    microkit_mr_set(0, microkit_mr_get(0) + 1);
    return microkit_msginfo_new(0, 1);
}

void notified(microkit_channel ch)
{
    if (ch == PING) {
        microkit_dbg_puts("pong: notified by ping\n");
    }
}
