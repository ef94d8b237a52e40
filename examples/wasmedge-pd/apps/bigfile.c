/*
 * A WASI application that moves more than the runtime PD's 64 KiB file-server buffer in one
 * request: one write(2) of N bytes into a new file, one read(2) of it back, then a comparison.
 * Exercises the chunked requests and responses of src/system/fileserver-pd.ts.
 *   bigfile PATH N
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bigfile PATH N\n");
        return 2;
    }
    size_t n = (size_t)atol(argv[2]);
    unsigned char *out = malloc(n), *in = malloc(n);
    for (size_t i = 0; i < n; i++) {
        out[i] = (unsigned char)(i * 7 + i / 251);
    }
    int fd = open(argv[1], O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0) {
        printf("open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    ssize_t w = write(fd, out, n);
    ssize_t r = pread(fd, in, n, 0);
    close(fd);
    printf("wrote %zd, read %zd, %s\n", w, r, r == (ssize_t)n && memcmp(in, out, n) == 0 ? "equal" : "DIFFERENT");
    return 0;
}
