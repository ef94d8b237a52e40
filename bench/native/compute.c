/*
 * bench:compute, native and WASI build: runs compute_run(reps) `runs` times and prints, per run,
 * its checksum and its wall time from CLOCK_MONOTONIC:
 *   run <i> checksum=<hex> ns=<nanoseconds>
 * Usage: compute <reps> <runs>
 * Built by bench/compute.ts: gcc -O2 (native) and clang-16 --target=wasm32-wasi -O2 (node:wasi).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "compute.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long reps = argc > 1 ? atol(argv[1]) : 40;
    long runs = argc > 2 ? atol(argv[2]) : 5;
    if (reps < 1 || runs < 1) {
        fprintf(stderr, "usage: compute <reps> <runs>\n");
        return 2;
    }
    for (long i = 0; i < runs; i++) {
        uint64_t t0 = now_ns();
        uint32_t sum = compute_run((uint32_t)reps);
        uint64_t t1 = now_ns();
        printf("run %ld checksum=%08x ns=%llu\n", i, sum, (unsigned long long)(t1 - t0));
        fflush(stdout);
    }
    return 0;
}
