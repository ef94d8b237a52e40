/*
 * The smallest Microkit protection domain: print a greeting from init().
 * Build: scripts/build-c-pd.sh build/hello.wasm examples/hello/hello.c
 */
#include <microkit.h>

void init(void)
{
    microkit_dbg_puts("hello, world\n");
}

void notified(microkit_channel ch)
{
    (void)ch;
}
