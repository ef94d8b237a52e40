/*
 * A WASI hello-world in C (clang-16 --target=wasm32-wasi, wasi-libc), for `capvisor run`:
 *   capvisor run [--env GREETING=...] [--env EXIT_CODE=N] build/examples/wasi/hello.wasm [args...]
 * Prints the greeting (default "hello, world"), then each argument on its own line, and exits
 * with EXIT_CODE (default 0) through exit(), i.e. WASI proc_exit.
 * Built by scripts/build-wasi-examples.sh.
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *greeting = getenv("GREETING");
    printf("%s\n", greeting != NULL ? greeting : "hello, world");
    for (int i = 1; i < argc; i++) {
        printf("arg %d: %s\n", i, argv[i]);
    }
    const char *code = getenv("EXIT_CODE");
    /* stdout is flushed by exit(), as a native program's would be. */
    exit(code != NULL ? atoi(code) : 0);
}
