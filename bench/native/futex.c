/*
 * bench:ipc comparator: the floor for a cross-thread handoff on this machine. Two threads
 * ping-pong through one shared word with the Linux futex syscall (FUTEX_WAIT / FUTEX_WAKE);
 * a round trip is main -> peer -> main. Prints one line:
 *   futex n=<round trips> p50_ns=<median> p99_ns=<99th percentile> mean_ns=<mean>
 * Usage: futex <round trips> <warm-up round trips>
 * Built by bench/ipc.ts with gcc -O2 -pthread.
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static _Atomic int turn; /* 0: main's turn, 1: the peer's turn */
static long total;

static void futex_wait(_Atomic int *addr, int val)
{
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic int *addr)
{
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Wait until turn == want: sleep in the kernel, as a blocked seL4 thread would. */
static void wait_for(int want)
{
    int v;
    while ((v = atomic_load(&turn)) != want) {
        futex_wait(&turn, v);
    }
}

static void *peer(void *arg)
{
    (void)arg;
    for (long i = 0; i < total; i++) {
        wait_for(1);
        atomic_store(&turn, 0);
        futex_wake(&turn);
    }
    return NULL;
}

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

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long warm = argc > 2 ? atol(argv[2]) : 1000;
    if (n < 1 || warm < 0) {
        fprintf(stderr, "usage: futex <round trips> <warm-up round trips>\n");
        return 2;
    }
    total = n + warm;
    uint64_t *samples = malloc(sizeof(uint64_t) * (size_t)n);
    pthread_t t;
    if (samples == NULL || pthread_create(&t, NULL, peer, NULL) != 0) {
        perror("futex");
        return 1;
    }
    for (long i = 0; i < total; i++) {
        uint64_t t0 = now_ns();
        atomic_store(&turn, 1);
        futex_wake(&turn);
        wait_for(0);
        if (i >= warm) {
            samples[i - warm] = now_ns() - t0;
        }
    }
    pthread_join(t, NULL);
    double sum = 0;
    for (long i = 0; i < n; i++) {
        sum += (double)samples[i];
    }
    qsort(samples, (size_t)n, sizeof(uint64_t), cmp);
    printf("futex n=%ld p50_ns=%llu p99_ns=%llu mean_ns=%.0f\n", n, (unsigned long long)samples[n / 2],
           (unsigned long long)samples[(n * 99) / 100], sum / (double)n);
    return 0;
}
