// A reactor module (-mexec-model=reactor): exported functions for typed arguments, traps and limits.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int initialized;
__attribute__((constructor)) static void init(void) { initialized = 42; }

__attribute__((export_name("add"))) int32_t add(int32_t a, int32_t b) { return a + b; }
__attribute__((export_name("mul64"))) int64_t mul64(int64_t a, int64_t b) { return a * b; }
__attribute__((export_name("half"))) double half(double x) { return x / 2; }
__attribute__((export_name("was_initialized"))) int32_t was_initialized(void) { return initialized; }
__attribute__((export_name("divide"))) int32_t divide(int32_t a, int32_t b) { return a / b; }
__attribute__((export_name("boom"))) void boom(void) { __builtin_trap(); }
__attribute__((export_name("oob"))) int32_t oob(void) { return *(volatile int32_t *)0xfffffff0u; }
__attribute__((export_name("spin"))) int32_t spin(int32_t n) {
  volatile int32_t x = 0;
  for (int32_t i = 0; i < n || n < 0; i++) x += i;
  return x;
}
/** Grows memory page by page: returns how many pages it could add. */
__attribute__((export_name("grow"))) int32_t grow(int32_t pages) {
  int32_t got = 0;
  while (got < pages && __builtin_wasm_memory_grow(0, 1) != -1) got++;
  return got;
}
__attribute__((export_name("pages"))) int32_t pages(void) { return (int32_t)__builtin_wasm_memory_size(0); }
__attribute__((export_name("bye"))) void bye(int32_t code) {
  printf("bye %d\n", code);
  exit(code);
}
