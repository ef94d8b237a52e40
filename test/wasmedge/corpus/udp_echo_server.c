/*
 * A UDP echo server through WasmEdge's datagram calls: binds argv[1] ("127.0.0.1" or "::1") at
 * port 0, prints the port sock_getlocaladdr_v2 reports, then for each of argv[2] datagrams waits
 * with poll() (poll_oneoff on a datagram socket), takes it with sock_recv_from_v2 and sends it
 * back to its source with sock_send_to_v2. A datagram "quit" ends the loop early.
 */
#include <poll.h>
#include <stdlib.h>

#include "udp_sock.h"

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: udp_echo_server ip count\n"), 1;
  uint8_t st[128];
  int fam = we_addr_v2(st, argv[1]);
  if (!fam) return 1;
  uint32_t fd;
  int32_t e = we_sock_open_v2((uint32_t)fam, 1, &fd);
  if (e) return printf("open: errno %d\n", e), 2;
  int32_t type = 0;
  uint32_t size = sizeof type;
  e = we_sock_getsockopt(fd, 0, 1, &type, &size);
  printf("type %d (errno %d)\n", type, e);
  we_address_t a = {st, 128};
  e = we_sock_bind(fd, &a, 0);
  if (e) return printf("bind: errno %d\n", e), 2;
  uint8_t local[128];
  we_address_t la = {local, 128};
  uint32_t port = 0;
  e = we_sock_getlocaladdr_v2(fd, &la, &port);
  printf("bound ");
  we_print_addr(local);
  printf(" family %u (errno %d)\nport %u\n", local[0], e, port);
  fflush(stdout);
  for (int i = 0; i < atoi(argv[2]); i++) {
    struct pollfd p = {(int)fd, POLLIN, 0};
    if (poll(&p, 1, -1) != 1 || !(p.revents & POLLIN)) return printf("poll failed\n"), 3;
    char buf[2048];
    we_iovec_t in = {(uint8_t *)buf, sizeof buf};
    uint8_t from[128];
    we_address_t fa = {from, 128};
    uint16_t fport = 0, oflags = 0;
    uint32_t got = 0;
    e = we_sock_recv_from_v2(fd, &in, 1, &fa, 0, &fport, &got, &oflags);
    if (e) return printf("recv_from: errno %d\n", e), 3;
    printf("datagram %d: %u bytes from ", i, got);
    we_print_addr(from);
    printf(" (flags %u)\n", oflags);
    if (got == 4 && memcmp(buf, "quit", 4) == 0) break;
    we_ciovec_t out = {(const uint8_t *)buf, got};
    uint32_t sent = 0;
    e = we_sock_send_to_v2(fd, &out, 1, &fa, (int32_t)we_port(fport), 0, &sent);
    if (e || sent != got) return printf("send_to: errno %d sent %u\n", e, sent), 3;
  }
  close((int)fd);
  printf("done\n");
  return 0;
}
