/*
 * bench:wasmedge, file requests: N times open, read and close a small file beneath the preopen
 * /data, timed by the program itself (clock_gettime, CLOCK_MONOTONIC); prints the mean time of
 * one request (each of open, read and close is one request to the file server).
 *   filereq N
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    char buf[64];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        int fd = open("/data/f.txt", O_RDONLY);
        if (fd < 0 || read(fd, buf, sizeof buf) <= 0 || close(fd) != 0) {
            perror("/data/f.txt");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    printf("ns per request: %.0f\n", ns / (3.0 * n));
    return 0;
}
