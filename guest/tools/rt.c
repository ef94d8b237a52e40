/*
 * The smallest runtime a freestanding static i386 Linux program needs: the `_start` entry and
 * the memory routines clang may call even under -ffreestanding (it lowers struct copies and
 * zeroing to memcpy/memset calls).
 *
 * At `_start` the kernel has left (i386 SysV ABI, "Process Initialization"): esp -> argc, then
 * argv[0..argc-1], NULL, envp..., NULL, auxv. Nothing is in registers, and ebp must be cleared
 * to mark the outermost frame.
 */
#include "sys.h"

int main(int argc, char **argv);

/* Called from _start with the initial stack pointer. */
__attribute__((noreturn, used)) void start_c(u32 *sp) {
  int argc = (int)sp[0];
  char **argv = (char **)(sp + 1);
  sys_exit_group(main(argc, argv));
}

/* The ABI wants esp 16-byte aligned at each call: align, then leave room so that after pushing
 * the one argument esp is aligned again when `call` pushes the return address. */
__asm__(".text\n"
        ".globl _start\n"
        ".type _start, @function\n"
        "_start:\n"
        "  xorl %ebp, %ebp\n"
        "  movl %esp, %eax\n"
        "  andl $-16, %esp\n"
        "  subl $12, %esp\n"
        "  pushl %eax\n"
        "  call start_c\n"
        "  hlt\n");

void *memcpy(void *dst, const void *src, usize n) {
  u8 *d = (u8 *)dst;
  const u8 *s = (const u8 *)src;
  while (n-- > 0) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, usize n) {
  u8 *d = (u8 *)dst;
  const u8 *s = (const u8 *)src;
  if (d < s) {
    while (n-- > 0) *d++ = *s++;
  } else {
    while (n-- > 0) d[n] = s[n];
  }
  return dst;
}

void *memset(void *dst, int c, usize n) {
  u8 *d = (u8 *)dst;
  while (n-- > 0) *d++ = (u8)c;
  return dst;
}
