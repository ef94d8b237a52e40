/*
 * bench:compute's CPU-bound kernel, shared by the native and WASI program (compute.c) and the
 * capvisor PD (examples/bench/compute_pd.c). Freestanding (no libc): a PD has none.
 *
 * Each repetition fills two 128x128 matrices from a linear congruential generator, multiplies
 * them (32-bit wrap-around arithmetic), and folds the product into a table-driven CRC-32.
 * Integer-only, so every target prints the same checksum.
 */
#pragma once
#include <stdint.h>

#define COMPUTE_N 128

static uint32_t compute_a[COMPUTE_N * COMPUTE_N];
static uint32_t compute_b[COMPUTE_N * COMPUTE_N];
static uint32_t compute_c[COMPUTE_N * COMPUTE_N];
static uint32_t compute_crc_table[256];

static uint32_t compute_run(uint32_t reps)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        compute_crc_table[i] = c;
    }
    uint32_t seed = 12345u;
    uint32_t crc = 0xFFFFFFFFu;
    for (uint32_t r = 0; r < reps; r++) {
        for (int i = 0; i < COMPUTE_N * COMPUTE_N; i++) {
            seed = seed * 1664525u + 1013904223u;
            compute_a[i] = seed >> 8;
            seed = seed * 1664525u + 1013904223u;
            compute_b[i] = seed >> 8;
        }
        for (int i = 0; i < COMPUTE_N; i++) {
            for (int j = 0; j < COMPUTE_N; j++) {
                uint32_t sum = 0;
                for (int k = 0; k < COMPUTE_N; k++) {
                    sum += compute_a[i * COMPUTE_N + k] * compute_b[k * COMPUTE_N + j];
                }
                compute_c[i * COMPUTE_N + j] = sum;
            }
        }
        for (int i = 0; i < COMPUTE_N * COMPUTE_N; i++) {
            uint32_t v = compute_c[i];
            for (int byte = 0; byte < 4; byte++) {
                crc = compute_crc_table[(crc ^ v) & 0xFF] ^ (crc >> 8);
                v >>= 8;
            }
        }
    }
    return ~crc;
}
