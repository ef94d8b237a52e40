/*
 * bench:ipc comparator: two processes ping-pong one byte over a pair of Linux pipes; a round
 * trip is parent -> child -> parent. Prints one line:
 *   pipe n=<round trips> p50_ns=<median> p99_ns=<99th percentile> mean_ns=<mean>
 * Usage: pipe <round trips> <warm-up round trips>
 * Built by bench/ipc.ts with gcc -O2.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void xfer(int fd, char *c, int writing)
{
    ssize_t r = writing ? write(fd, c, 1) : read(fd, c, 1);
    if (r != 1) {
        perror("pipe");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long warm = argc > 2 ? atol(argv[2]) : 1000;
    if (n < 1 || warm < 0) {
        fprintf(stderr, "usage: pipe <round trips> <warm-up round trips>\n");
        return 2;
    }
    long total = n + warm;
    int there[2], back[2];
    if (pipe(there) != 0 || pipe(back) != 0) {
        perror("pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    char c = 'x';
    if (pid == 0) {
        for (long i = 0; i < total; i++) {
            xfer(there[0], &c, 0);
            xfer(back[1], &c, 1);
        }
        _exit(0);
    }
    uint64_t *samples = malloc(sizeof(uint64_t) * (size_t)n);
    if (samples == NULL) {
        return 1;
    }
    for (long i = 0; i < total; i++) {
        uint64_t t0 = now_ns();
        xfer(there[1], &c, 1);
        xfer(back[0], &c, 0);
        if (i >= warm) {
            samples[i - warm] = now_ns() - t0;
        }
    }
    waitpid(pid, NULL, 0);
    double sum = 0;
    for (long i = 0; i < n; i++) {
        sum += (double)samples[i];
    }
    qsort(samples, (size_t)n, sizeof(uint64_t), cmp);
    printf("pipe n=%ld p50_ns=%llu p99_ns=%llu mean_ns=%.0f\n", n, (unsigned long long)samples[n / 2],
           (unsigned long long)samples[(n * 99) / 100], sum / (double)n);
    return 0;
}
