/*
 * wasmedge-run: run a WebAssembly module that lives in this Linux guest on capvisor's WasmEdge
 * runtime PD, through the VMM's port-I/O channel device (docs/vm-channel.md, "The guest device").
 *
 *   wasmedge-run file.wasm [args...]
 *
 * The job's argv is `file.wasm args...` (argv[0] as given here). Its stdout and stderr are
 * copied to this process's fd 1 and 2 as they arrive, and this process exits with the job's
 * exit code. Errors of the tool itself (no device, all slots busy, unreadable file, not root,
 * a broken response stream) exit 2 after one line on stderr.
 *
 * Every exit path CLOSEs the slot this process took, including SIGINT/SIGTERM/SIGHUP/SIGQUIT/
 * SIGPIPE (the handler closes it, then exits 128+signal as a shell would report); closing a slot
 * whose job still runs makes the VMM cancel the job. Only SIGKILL can leave a slot taken.
 *
 * Several copies may run at once: OPEN is one `in` instruction, atomic on the one vCPU, so each
 * process gets its own slot without any driver or lock in the guest.
 */
#include "sys.h"

/* Ports of the device (docs/vm-channel.md). */
#define PORT_ID 0x2000
#define PORT_OPEN 0x2004
#define PORT_VERSION 0x2008
#define PORT_CTRL(s) ((u16)(0x2040 + 16 * (s)))
#define PORT_DATA(s) ((u16)(0x2044 + 16 * (s)))
#define PORT_AVAIL(s) ((u16)(0x2048 + 16 * (s)))
#define PORT_STATE(s) ((u16)(0x204c + 16 * (s)))

#define DEVICE_ID 0x48435643u /* "CVCH" little-endian */
#define DEVICE_VERSION 1u
#define OPEN_NONE 0xffffffffu
#define CTRL_SUBMIT 1u
#define CTRL_CLOSE 2u
#define STATE_FREE 0u
#define STATE_FINISHED 3u
#define KIND_STDOUT 1
#define KIND_STDERR 2
#define KIND_EXIT 3
/* The VMM caps a staged job at 64 MiB; refuse before staging rather than have it cut. */
#define STAGE_LIMIT (64u << 20)

#define EXIT_TOOL 2
#define SPIN_POLLS 1000 /* empty AVAIL polls answered with sched_yield before sleeping 1 ms */

/* Signals the tool catches to close its slot first (i386 numbering). */
#define SIGHUP 1
#define SIGINT 2
#define SIGQUIT 3
#define SIGPIPE 13
#define SIGTERM 15
#define SA_RESTORER 0x04000000u
#define SIG_BLOCK 0
#define SIG_SETMASK 2

/* The kernel's struct sigaction for rt_sigaction on i386 (not libc's): handler, flags,
 * restorer, then the mask whose size is the syscall's last argument (8 bytes). */
struct kernel_sigaction {
  void (*handler)(int);
  u32 flags;
  void (*restorer)(void);
  u32 mask[2];
};

/* The slot this process holds, or -1: read by the signal handler. */
static volatile int held_slot = -1;

static u8 buffer[64 * 1024];

static void close_slot(void) {
  int s = held_slot;
  if (s >= 0) {
    outl(PORT_CTRL(s), CTRL_CLOSE);
    held_slot = -1;
  }
}

static void block_signals(u32 *saved);

/* With the caught signals held back: a handler running between reading held_slot and the CLOSE
 * would CLOSE the slot a second time, after another process may have OPENed it again. */
__attribute__((noreturn)) static void finish(int code) {
  u32 saved[2];
  block_signals(saved);
  close_slot();
  sys_exit_group(code);
}

__attribute__((noreturn)) static void fail(const char *what, const char *detail) {
  put_str(2, "wasmedge-run: ");
  put_str(2, what);
  if (detail != 0) put_str(2, detail);
  put_str(2, "\n");
  finish(EXIT_TOOL);
}

static void on_signal(int sig) {
  close_slot();
  sys_exit_group(128 + sig);
}

/* The handler never returns, but the kernel needs a restorer when SA_RESTORER is set (it is
 * the return address of the handler's frame); this one performs rt_sigreturn. */
__asm__(".text\n"
        ".type signal_restorer, @function\n"
        "signal_restorer:\n"
        "  movl $173, %eax\n"
        "  int $0x80\n"
        "  hlt\n");
void signal_restorer(void);

static void catch_signals(void) {
  static const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM};
  struct kernel_sigaction act;
  act.handler = on_signal;
  act.flags = SA_RESTORER;
  act.restorer = signal_restorer;
  /* While one handler runs, hold the others back: it is already closing and exiting. */
  act.mask[0] = 0;
  act.mask[1] = 0;
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) act.mask[0] |= 1u << (sigs[i] - 1);
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sys4(SYS_rt_sigaction, sigs[i], (long)&act, 0, 8);
}

/* Block or restore the caught signals around OPEN, so that no signal lands between taking a
 * slot and recording it in held_slot (the handler would not know to close it). */
static void block_signals(u32 *saved) {
  u32 set[2] = {(1u << (SIGHUP - 1)) | (1u << (SIGINT - 1)) | (1u << (SIGQUIT - 1)) |
                    (1u << (SIGPIPE - 1)) | (1u << (SIGTERM - 1)),
                0};
  sys4(SYS_rt_sigprocmask, SIG_BLOCK, (long)set, (long)saved, 8);
}

static void restore_signals(const u32 *saved) { sys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)saved, 0, 8); }

static const char *errno_text(long err) {
  switch (err) {
  case 2: return ": No such file or directory";
  case 13: return ": Permission denied";
  case 21: return ": Is a directory";
  case 5: return ": Input/output error";
  default: return ": cannot read it";
  }
}

__attribute__((noreturn)) static void fail_file(const char *name, const char *why) {
  put_str(2, "wasmedge-run: ");
  put_str(2, name);
  put_str(2, why);
  put_str(2, "\n");
  finish(EXIT_TOOL);
}

/* Stage bytes into the slot: whole words with out32 (little-endian, the same bytes in order
 * on this little-endian CPU), the tail with out8. The staged request is a byte stream, so a
 * call may end on any byte and the next continue from there. */
static void stage(int s, const void *src, usize n) {
  const u8 *p = (const u8 *)src;
  usize words = n / 4;
  if (words > 0) outsl(PORT_DATA(s), p, words);
  for (usize i = words * 4; i < n; i++) outb(PORT_DATA(s), p[i]);
}

static void stage_u32(int s, u32 v) { outl(PORT_DATA(s), v); }

/* Parser of the slot's response stream: records `u8 kind, u32 len (LE), len bytes`. Payloads
 * are copied out as they arrive, so a long-running job's output streams; the stream is read
 * in whatever pieces AVAIL offers, and a record may span several of them. */
struct response {
  u8 header[5];
  u32 header_have;
  u32 kind;
  u32 left; /* payload bytes of the current record not yet seen */
  u8 code[4];
  u32 code_have;
  int out_ok[3]; /* fd 1/2 still writable: after EPIPE or the like, drop that stream */
  int done;
  i32 exit_code;
};

static void emit(struct response *r, int fd, const u8 *p, usize n) {
  if (!r->out_ok[fd]) return;
  if (write_all(fd, p, n) < 0) r->out_ok[fd] = 0;
}

static void take(struct response *r, const u8 *p, usize n) {
  while (n > 0 && !r->done) {
    if (r->header_have < 5) {
      r->header[r->header_have++] = *p++;
      n--;
      if (r->header_have == 5) {
        r->kind = r->header[0];
        r->left = (u32)r->header[1] | ((u32)r->header[2] << 8) | ((u32)r->header[3] << 16) |
                  ((u32)r->header[4] << 24);
        if (r->kind != KIND_STDOUT && r->kind != KIND_STDERR && r->kind != KIND_EXIT) {
          put_str(2, "wasmedge-run: protocol error: response record of unknown kind ");
          put_uint(2, r->kind);
          put_str(2, "\n");
          finish(EXIT_TOOL);
        }
        if (r->kind == KIND_EXIT && r->left != 4) fail("protocol error: exit record of length other than 4", 0);
        r->code_have = 0;
      }
      continue;
    }
    usize chunk = n < r->left ? n : r->left;
    if (r->kind == KIND_EXIT) {
      for (usize i = 0; i < chunk; i++) r->code[r->code_have++] = p[i];
    } else {
      emit(r, (int)r->kind, p, chunk);
    }
    p += chunk;
    n -= chunk;
    r->left -= chunk;
    if (r->left == 0) {
      if (r->kind == KIND_EXIT) {
        r->exit_code = (i32)((u32)r->code[0] | ((u32)r->code[1] << 8) | ((u32)r->code[2] << 16) |
                             ((u32)r->code[3] << 24));
        r->done = 1;
      }
      r->header_have = 0;
    }
  }
}

/* Sleep 1 ms: an idle wait (a job computing without output) must not hold the guest's CPU. */
static void nap(void) {
  struct {
    long sec;
    long nsec;
  } ts = {0, 1000000};
  sys2(SYS_nanosleep, (long)&ts, 0);
}

/* Copy the response stream out until the exit record. */
static i32 await_job(int s) {
  struct response r;
  memset(&r, 0, sizeof r);
  r.out_ok[1] = 1;
  r.out_ok[2] = 1;
  u32 empty = 0;
  while (!r.done) {
    u32 avail = inl(PORT_AVAIL(s));
    if (avail == 0) {
      /* Nothing to take. If the slot is no longer ours (freed under us, e.g. the VMM was reset)
       * or finished with its exit record already taken, no more bytes will ever come. */
      u32 state = inl(PORT_STATE(s));
      if (state == STATE_FREE) fail("the channel device dropped this job (slot freed)", 0);
      if (state == STATE_FINISHED && inl(PORT_AVAIL(s)) == 0)
        fail("protocol error: job finished without an exit record", 0);
      if (++empty < SPIN_POLLS) {
        sys0(SYS_sched_yield);
      } else {
        nap();
      }
      continue;
    }
    empty = 0;
    usize n = avail < sizeof buffer ? avail : sizeof buffer;
    /* in32 only while at least 4 bytes are there: what in32 returns with fewer is not fixed. */
    usize words = n / 4;
    if (words > 0) insl(PORT_DATA(s), buffer, words);
    for (usize i = words * 4; i < n; i++) buffer[i] = inb(PORT_DATA(s));
    take(&r, buffer, n);
  }
  return r.exit_code;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    put_str(2, "usage: wasmedge-run file.wasm [args...]\n");
    return EXIT_TOOL;
  }
  const char *file = argv[1];

  /* iopl(3) lets this process use in/out on any port; kernels built without
   * CONFIG_X86_IOPL_IOPERM answer ENOSYS, and ioperm on just the device's ports does the same. */
  long r = sys1(SYS_iopl, 3);
  if (r == -E_NOSYS) r = sys3(SYS_ioperm, 0x2000, 0x100, 1);
  if (r < 0) fail("cannot reach the channel device's ports: iopl(3) failed (run as root)", 0);

  if (inl(PORT_ID) != DEVICE_ID)
    fail("no capvisor channel device (this VM has no channel to a WasmEdge PD)", 0);
  if (inl(PORT_VERSION) != DEVICE_VERSION) fail("unsupported capvisor channel device version", 0);

  /* The module is checked before a slot is taken: most failures need no slot at all. */
  long fd = sys2(SYS_open, (long)file, 0 /* O_RDONLY */);
  if (fd < 0) fail_file(file, errno_text(-fd));
  /* struct stat64 of i386 (arch/x86/include/uapi/asm/stat.h): st_mode at 16, st_size at 44. */
  u32 st[32];
  r = sys2(SYS_fstat64, fd, (long)st);
  if (r < 0) fail_file(file, errno_text(-r));
  if ((st[4] & 0170000u) != 0100000u) fail_file(file, ": not a regular file");
  u64 size = (u64)st[11] | ((u64)st[12] << 32);
  u64 request = 4 + size;
  for (int i = 1; i < argc; i++) request += str_len(argv[i]) + 1;
  if (request > STAGE_LIMIT) fail_file(file, ": too large for the channel (64 MiB per job)");

  catch_signals();
  u32 saved[2];
  block_signals(saved);
  u32 slot = inl(PORT_OPEN);
  if (slot != OPEN_NONE && slot < 16) held_slot = (int)slot;
  restore_signals(saved);
  if (slot == OPEN_NONE) fail("all 16 channel slots are busy (too many jobs at once); try again later", 0);
  if (slot >= 16) fail("protocol error: OPEN returned an impossible slot", 0);
  int s = (int)slot;

  /* The request: u32 argc, argc NUL-terminated strings, then the module to the end. */
  stage_u32(s, (u32)(argc - 1));
  for (int i = 1; i < argc; i++) stage(s, argv[i], str_len(argv[i]) + 1);
  for (;;) {
    long got = sys3(SYS_read, fd, (long)buffer, sizeof buffer);
    if (got == -E_INTR) continue;
    if (got < 0) fail_file(file, errno_text(-got));
    if (got == 0) break;
    stage(s, buffer, (usize)got);
  }
  /* Should the file change while it is read, the request is still well formed (the module is
   * "to the end") and the runtime validates whatever arrived. */
  sys1(SYS_close, fd);

  outl(PORT_CTRL(s), CTRL_SUBMIT);
  i32 code = await_job(s);
  finish(code & 0xff);
}
