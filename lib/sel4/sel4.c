/*
 * capvisor libsel4 runtime for wasm32 protection domains (docs/wasm-abi.md).
 *
 * Defines the register block and the IPC buffer and exports the ABI functions the runtime
 * calls: capvisor_abi_version, capvisor_regs, capvisor_ipc_buffer. Also the few freestanding
 * string functions clang may call (memcpy, memmove, memset, memcmp), weak so a PD can bring
 * its own. Compiled with -ffreestanding -fno-builtin so these do not call themselves.
 *
 * With -DCAPVISOR_SEL4_MAIN it also defines capvisor_start for a plain seL4 program (no
 * libmicrokit): run the constructors, then `int main(void)`. If main returns, the thread
 * traps (unreachable): a user exception its fault handler sees, as a real thread returning
 * from its entry point would fault.
 */
#include <sel4/sel4.h>

/* x0..x8. Eight-byte aligned so the runtime can view it as a BigUint64Array. */
volatile seL4_Word __capvisor_regs[9] __attribute__((aligned(8)));

/* seL4_IPCBuffer is 1 KiB and aligned to its size. */
static seL4_IPCBuffer capvisor_ipc_buffer_storage;

seL4_IPCBuffer *__sel4_ipc_buffer = &capvisor_ipc_buffer_storage;

__attribute__((export_name("capvisor_abi_version"))) int capvisor_abi_version(void)
{
    return CAPVISOR_ABI_VERSION;
}

__attribute__((export_name("capvisor_regs"))) volatile seL4_Word *capvisor_regs(void)
{
    return __capvisor_regs;
}

__attribute__((export_name("capvisor_ipc_buffer"))) seL4_IPCBuffer *capvisor_ipc_buffer(void)
{
    return &capvisor_ipc_buffer_storage;
}

/* ---------------------------------------------------------------- freestanding string functions */

typedef __SIZE_TYPE__ capvisor_size_t;

__attribute__((weak)) void *memcpy(void *restrict dst, const void *restrict src, capvisor_size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

__attribute__((weak)) void *memmove(void *dst, const void *src, capvisor_size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--) {
            *d++ = *s++;
        }
    } else if (d > s) {
        d += n;
        s += n;
        while (n--) {
            *--d = *--s;
        }
    }
    return dst;
}

__attribute__((weak)) void *memset(void *dst, int c, capvisor_size_t n)
{
    unsigned char *d = dst;
    while (n--) {
        *d++ = (unsigned char)c;
    }
    return dst;
}

__attribute__((weak)) int memcmp(const void *a, const void *b, capvisor_size_t n)
{
    const unsigned char *x = a;
    const unsigned char *y = b;
    for (; n; n--, x++, y++) {
        if (*x != *y) {
            return *x - *y;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- entry point of a plain seL4 program */

#ifdef CAPVISOR_SEL4_MAIN
extern void __wasm_call_ctors(void);
int main(void);

__attribute__((export_name("capvisor_start"))) void capvisor_start(void)
{
    __wasm_call_ctors();
    (void)main();
    __builtin_trap();
}
#endif
