/*
 * Freestanding i386 Linux helpers for capvisor's guest tools: raw system calls, port I/O and
 * the few libc routines the compiler may emit calls to. There is no i386 libc on the build host
 * and the guest's initramfs has none (busybox is static), so the tools carry their own.
 *
 * System calls use the i386 `int $0x80` convention: number in eax, arguments in ebx, ecx, edx,
 * esi, edi; the result comes back in eax, with -4095..-1 meaning -errno
 * (arch/x86/entry/syscalls/syscall_32.tbl gives the numbers).
 */
#ifndef CAPVISOR_GUEST_SYS_H
#define CAPVISOR_GUEST_SYS_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef unsigned int usize;

enum {
  SYS_exit = 1,
  SYS_read = 3,
  SYS_write = 4,
  SYS_open = 5,
  SYS_close = 6,
  SYS_ioperm = 101,
  SYS_iopl = 110,
  SYS_sched_yield = 158,
  SYS_nanosleep = 162,
  SYS_rt_sigreturn = 173,
  SYS_rt_sigaction = 174,
  SYS_rt_sigprocmask = 175,
  SYS_fstat64 = 197,
  SYS_exit_group = 252,
};

enum { E_INTR = 4, E_PERM = 1, E_NOSYS = 38 };

static inline long sys1(long n, long a) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a) : "memory");
  return r;
}

static inline long sys2(long n, long a, long b) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b) : "memory");
  return r;
}

static inline long sys3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c) : "memory");
  return r;
}

static inline long sys4(long n, long a, long b, long c, long d) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c), "S"(d) : "memory");
  return r;
}

static inline long sys0(long n) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(n) : "memory");
  return r;
}

__attribute__((noreturn)) static inline void sys_exit_group(int code) {
  for (;;) sys1(SYS_exit_group, code);
}

/* Port I/O: needs iopl(3) or an ioperm grant for the port, else the CPU raises #GP (SIGSEGV). */
static inline u32 inl(u16 port) {
  u32 v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

static inline u8 inb(u16 port) {
  u8 v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }

/* `rep outsl` / `rep insl`: the same 32-bit accesses as a loop of outl/inl, one after another
 * to one port, but one instruction for the emulator to decode instead of a loop of them. */
static inline void outsl(u16 port, const void *src, usize words) {
  __asm__ volatile("cld; rep outsl" : "+S"(src), "+c"(words) : "d"(port) : "memory");
}

static inline void insl(u16 port, void *dst, usize words) {
  __asm__ volatile("cld; rep insl" : "+D"(dst), "+c"(words) : "d"(port) : "memory");
}

/* Defined in rt.c. */
void *memcpy(void *dst, const void *src, usize n);
void *memset(void *dst, int c, usize n);

static inline usize str_len(const char *s) {
  usize n = 0;
  while (s[n] != 0) n++;
  return n;
}

/* write(2) everything or give up on the first error other than EINTR; returns 0 or -errno. */
static inline long write_all(int fd, const void *buf, usize n) {
  const u8 *p = (const u8 *)buf;
  while (n > 0) {
    long r = sys3(SYS_write, fd, (long)p, (long)n);
    if (r == -E_INTR) continue;
    if (r < 0) return r;
    p += r;
    n -= (usize)r;
  }
  return 0;
}

static inline void put_str(int fd, const char *s) { write_all(fd, s, str_len(s)); }

/* Decimal, for error messages. */
static inline void put_uint(int fd, u32 v) {
  char buf[12];
  int i = (int)sizeof buf;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  write_all(fd, buf + i, (usize)((int)sizeof buf - i));
}

#endif
