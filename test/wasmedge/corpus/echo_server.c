/*
 * A TCP echo server on 127.0.0.1 through WasmEdge's socket calls: binds port 0 (V1 address),
 * prints the port it got, then for each of argv[1] connections waits with poll() (poll_oneoff on
 * a socket), accepts, echoes everything with read() / sock_send until the peer shuts down its
 * side, and reports the byte count.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "echo_sock.h"

int main(int argc, char **argv) {
  int conns = argc > 1 ? atoi(argv[1]) : 1;
  uint32_t fd;
  int32_t e = we_sock_open(1, 2, &fd);
  if (e) return printf("open: errno %d\n", e), 2;
  int32_t one = 1;
  e = we_sock_setsockopt(fd, 0, 0, &one, sizeof one);
  int32_t type = 0;
  uint32_t size = sizeof type;
  int32_t e2 = we_sock_getsockopt(fd, 0, 1, &type, &size);
  printf("setsockopt: %d, getsockopt type: %d %d\n", e, e2, type);
  uint8_t ip[4] = {127, 0, 0, 1};
  we_address_t a = {ip, 4};
  e = we_sock_bind(fd, &a, 0);
  if (e) return printf("bind: errno %d\n", e), 2;
  e = we_sock_listen(fd, 4);
  if (e) return printf("listen: errno %d\n", e), 2;
  uint8_t st[128];
  we_address_t la = {st, sizeof st};
  uint32_t port = 0;
  e = we_sock_getlocaladdr_v2(fd, &la, &port);
  printf("listening on %u.%u.%u.%u family %u (errno %d)\n", st[2], st[3], st[4], st[5], st[0] | st[1] << 8, e);
  printf("port %u\n", port);
  for (int i = 0; i < conns; i++) {
    struct pollfd p = {.fd = (int)fd, .events = POLLIN};
    int r = poll(&p, 1, 5000);
    if (r != 1 || !(p.revents & POLLIN)) return printf("poll: %d revents %d\n", r, p.revents), 3;
    uint32_t c;
    e = we_sock_accept(fd, 0, &c);
    if (e) return printf("accept: errno %d\n", e), 3;
    char buf[7]; /* small on purpose: messages cross in several reads */
    long total = 0;
    for (;;) {
      ssize_t k = read((int)c, buf, sizeof buf);
      if (k < 0) return perror("read"), 4;
      if (k == 0) break;
      for (ssize_t off = 0; off < k;) {
        we_ciovec_t iov = {(const uint8_t *)buf + off, (uint32_t)(k - off)};
        uint32_t sent = 0;
        e = we_sock_send(c, &iov, 1, 0, &sent);
        if (e) return printf("send: errno %d\n", e), 4;
        off += sent;
      }
      total += k;
    }
    printf("connection %d: echoed %ld bytes\n", i, total);
    close((int)c);
  }
  close((int)fd);
  printf("done\n");
  return 0;
}
