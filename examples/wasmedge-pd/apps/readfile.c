/*
 * A WASI application for the runtime PD example (wasmedge-pd.system): prints a file from its
 * preopen /data, then tries to leave the preopen through ".." and reports how that failed.
 * Built by the test (clang-16 --target=wasm32-wasi) into build/examples/wasmedge-pd/readfile.wasm.
 *   readfile FILE ESCAPE
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: readfile FILE ESCAPE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (f == NULL) {
        printf("open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        printf("%s: %s", argv[1], line);
    }
    fclose(f);
    /* The file exists on the host, one directory above the preopen: it must stay out of reach. */
    FILE *g = fopen(argv[2], "r");
    if (g != NULL) {
        printf("escape %s: opened (sandbox broken)\n", argv[2]);
        return 1;
    }
    printf("escape %s: %s\n", argv[2], errno == EPERM ? "EPERM" : strerror(errno));
    return 0;
}
