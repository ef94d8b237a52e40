// Streaming stdin. Modes (argv[1]):
//   lines     read a line, answer it, read the next, until the end of the input
//   poll      poll_oneoff on fd 0 directly: with nothing there (a 30 ms clock fires), after a
//             line arrives (FD_READ with nbytes), and at the end (nbytes 0, hangup)
//   pollwait  poll(2) on fd 0 with no timeout
//   nonblock  fd 0 made non-blocking: read answers EAGAIN while nothing is there
//   ignore    never touches fd 0
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static int lines(void) {
  char line[256];
  int n = 0;
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    n++;
    printf("answer %d: %s (%zu bytes)\n", n, line, strlen(line));
    fflush(stdout);
  }
  printf("eof after %d lines\n", n);
  return 0;
}

// One poll_oneoff: FD_READ on fd 0 and a relative monotonic clock; prints what fired.
static void poll_once(const char *label, __wasi_timestamp_t timeout_ns) {
  __wasi_subscription_t subs[2];
  memset(subs, 0, sizeof subs);
  subs[0].userdata = 10;
  subs[0].u.tag = __WASI_EVENTTYPE_FD_READ;
  subs[0].u.u.fd_read.file_descriptor = 0;
  subs[1].userdata = 20;
  subs[1].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[1].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
  subs[1].u.u.clock.timeout = timeout_ns;
  __wasi_event_t evs[2];
  __wasi_size_t n = 0;
  __wasi_errno_t err = __wasi_poll_oneoff(subs, evs, 2, &n);
  printf("%s: errno=%d events=%u", label, err, (unsigned)n);
  for (__wasi_size_t i = 0; i < n; i++) {
    if (evs[i].type == __WASI_EVENTTYPE_CLOCK) {
      printf(" [clock userdata=%llu]", (unsigned long long)evs[i].userdata);
    } else {
      printf(" [fd_read userdata=%llu nbytes=%llu hangup=%d]", (unsigned long long)evs[i].userdata,
             (unsigned long long)evs[i].fd_readwrite.nbytes,
             (evs[i].fd_readwrite.flags & __WASI_EVENTRWFLAGS_FD_READWRITE_HANGUP) != 0);
    }
  }
  printf("\n");
  fflush(stdout);
}

static int poll_mode(void) {
  char buf[64];
  poll_once("empty", 30000000ull);
  poll_once("arrived", 10000000000ull);
  ssize_t r = read(0, buf, sizeof buf);
  printf("read %zd: %.*s", r, (int)(r > 0 ? r : 0), buf);
  fflush(stdout);
  poll_once("ended", 10000000000ull);
  r = read(0, buf, sizeof buf);
  printf("read %zd\n", r);
  return 0;
}

static int pollwait(void) {
  struct pollfd p = {.fd = 0, .events = POLLIN};
  int r = poll(&p, 1, -1);
  printf("poll %d revents_in=%d\n", r, (p.revents & POLLIN) != 0);
  return 0;
}

static int nonblock(void) {
  char buf[16];
  if (fcntl(0, F_SETFL, O_NONBLOCK) != 0) return 2;
  ssize_t r = read(0, buf, sizeof buf);
  printf("read %zd eagain=%d\n", r, r < 0 && errno == EAGAIN);
  fflush(stdout);
  // Waits for the input with poll, then reads it without blocking.
  struct pollfd p = {.fd = 0, .events = POLLIN};
  poll(&p, 1, -1);
  r = read(0, buf, sizeof buf);
  printf("read %zd: %.*s\n", r, (int)(r > 0 ? r : 0), buf);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "lines";
  if (strcmp(mode, "poll") == 0) return poll_mode();
  if (strcmp(mode, "pollwait") == 0) return pollwait();
  if (strcmp(mode, "nonblock") == 0) return nonblock();
  if (strcmp(mode, "ignore") == 0) return puts("ignored") < 0;
  return lines();
}
