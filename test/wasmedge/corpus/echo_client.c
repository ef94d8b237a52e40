/*
 * A TCP echo client through WasmEdge's socket calls: connects to argv[1]:argv[2] (V2 address),
 * prints its peer (V1 getpeeraddr), sends argv[3], shuts down its sending side, and prints what
 * comes back, received with sock_recv. Exit code 3 when connect fails (its errno is printed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echo_sock.h"

int main(int argc, char **argv) {
  if (argc < 4) return fprintf(stderr, "usage: echo_client ip port message\n"), 1;
  uint8_t st[128] = {1, 0};
  unsigned q[4];
  if (sscanf(argv[1], "%u.%u.%u.%u", &q[0], &q[1], &q[2], &q[3]) != 4) return 1;
  for (int i = 0; i < 4; i++) st[2 + i] = (uint8_t)q[i];
  uint32_t fd;
  int32_t e = we_sock_open_v2(1, 2, &fd);
  if (e) return printf("open: errno %d\n", e), 2;
  we_address_t a = {st, sizeof st};
  e = we_sock_connect_v2(fd, &a, (uint32_t)atoi(argv[2]));
  if (e) return printf("connect: errno %d\n", e), 3;
  uint8_t pip[4];
  we_address_t pa = {pip, 4};
  uint32_t ptype = 0, pport = 0;
  e = we_sock_getpeeraddr(fd, &pa, &ptype, &pport);
  printf("peer %u.%u.%u.%u:%s type %u (errno %d)\n", pip[0], pip[1], pip[2], pip[3],
         (int)pport == atoi(argv[2]) ? "port" : "wrong port", ptype, e);
  const char *msg = argv[3];
  we_ciovec_t out = {(const uint8_t *)msg, (uint32_t)strlen(msg)};
  uint32_t sent = 0;
  e = we_sock_send(fd, &out, 1, 0, &sent);
  printf("sent %u (errno %d)\n", sent, e);
  e = we_sock_shutdown(fd, 2);
  if (e) return printf("shutdown: errno %d\n", e), 4;
  char buf[256];
  size_t got = 0;
  for (;;) {
    /* Two iovecs: the host must scatter one receive across them. */
    we_iovec_t in[2] = {{(uint8_t *)buf + got, 3}, {(uint8_t *)buf + got + 3, (uint32_t)(sizeof buf - 1 - got - 3)}};
    uint32_t n = 0;
    uint16_t oflags = 0;
    e = we_sock_recv(fd, in, 2, 0, &n, &oflags);
    if (e) return printf("recv: errno %d\n", e), 4;
    if (n == 0) break;
    got += n;
  }
  buf[got] = 0;
  printf("echo: %s\n", buf);
  close((int)fd);
  return 0;
}
