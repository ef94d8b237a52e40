/*
 * bench:ipc server: answers each protected call with MR0 + 1 (the smallest useful server).
 * Build: scripts/build-c-pd.sh examples/bench/ipc_server.wasm examples/bench/ipc_server.c
 */
#include <microkit.h>

void init(void)
{
}

microkit_msginfo protected(microkit_channel ch, microkit_msginfo msginfo)
{
    (void)ch;
    (void)msginfo;
    microkit_mr_set(0, microkit_mr_get(0) + 1);
    return microkit_msginfo_new(0, 1);
}

void notified(microkit_channel ch)
{
    (void)ch;
}
