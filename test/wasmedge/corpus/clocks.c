// Clocks, poll_oneoff, random_get, sched_yield, proc_raise and sock_* on non-sockets.
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <wasi/api.h>

__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise"))) int raw_proc_raise(int sig);

static int64_t ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int main(void) {
  int64_t m1 = ns(CLOCK_MONOTONIC), m2 = ns(CLOCK_MONOTONIC);
  printf("monotonic non-decreasing: %d\n", m2 >= m1);
  printf("realtime after 2020: %d\n", ns(CLOCK_REALTIME) > 1577836800LL * 1000000000);
  printf("cputime positive: %d\n", ns(CLOCK_PROCESS_CPUTIME_ID) > 0 && ns(CLOCK_THREAD_CPUTIME_ID) > 0);
  struct timespec r;
  printf("getres monotonic: %d %ld\n", clock_getres(CLOCK_MONOTONIC, &r), r.tv_nsec);
  __wasi_timestamp_t t;
  printf("bad clock: %d\n", __wasi_clock_time_get(9, 0, &t));
  printf("bad clock res: %d\n", __wasi_clock_res_get(9, &t));
  int64_t s0 = ns(CLOCK_MONOTONIC);
  struct timespec d = {0, 30 * 1000000};
  nanosleep(&d, NULL);
  int64_t slept = ns(CLOCK_MONOTONIC) - s0;
  printf("slept >= 30ms: %d, < 1s: %d\n", slept >= 30000000, slept < 1000000000);
  // poll: stdout is writable at once, and a clock subscription does not fire first
  __wasi_subscription_t sub[2];
  memset(sub, 0, sizeof sub);
  sub[0].userdata = 11;
  sub[0].u.tag = __WASI_EVENTTYPE_FD_WRITE;
  sub[0].u.u.fd_write.file_descriptor = 1;
  sub[1].userdata = 22;
  sub[1].u.tag = __WASI_EVENTTYPE_CLOCK;
  sub[1].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
  sub[1].u.u.clock.timeout = 5000000000ULL;
  __wasi_event_t ev[2];
  __wasi_size_t nev = 0;
  __wasi_errno_t e = __wasi_poll_oneoff(sub, ev, 2, &nev);
  printf("poll fd: %d n=%lu userdata=%llu type=%d error=%d\n", e, nev, (unsigned long long)ev[0].userdata,
         ev[0].type, ev[0].error);
  sub[0].u.u.fd_write.file_descriptor = 55;
  e = __wasi_poll_oneoff(sub, ev, 1, &nev);
  printf("poll bad fd: %d n=%lu error=%d\n", e, nev, ev[0].error);
  printf("poll none: %d\n", __wasi_poll_oneoff(sub, ev, 0, &nev));
  unsigned char a[32], b[32];
  printf("random: %d %d\n", __wasi_random_get(a, sizeof a), __wasi_random_get(b, sizeof b));
  printf("random differs: %d\n", memcmp(a, b, sizeof a) != 0);
  printf("sched_yield: %d\n", sched_yield());
  printf("proc_raise: %d\n", raw_proc_raise(2));
  __wasi_size_t n;
  __wasi_fd_t nfd;
  printf("sock_accept stdout: %d\n", __wasi_sock_accept(1, 0, &nfd));
  printf("sock_shutdown bad fd: %d\n", __wasi_sock_shutdown(99, __WASI_SDFLAGS_WR));
  __wasi_ciovec_t iov = {(const uint8_t *)"x", 1};
  printf("sock_send stdout: %d\n", __wasi_sock_send(1, &iov, 1, 0, &n));
  // stdio fdstat: a character device without seek rights (a terminal)
  __wasi_fdstat_t fs;
  (void)__wasi_fd_fdstat_get(1, &fs);
  printf("stdout filetype=%d seek=%d\n", fs.fs_filetype, (fs.fs_rights_base & __WASI_RIGHTS_FD_SEEK) != 0);
  return 0;
}
