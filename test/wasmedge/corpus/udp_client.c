/*
 * A UDP client through WasmEdge's datagram calls, against udp_echo_server at argv[1]:argv[2]:
 * 1. unbound sock_send_to (V1, raw address) then sock_recv_from (V1): the echo comes back, and
 *    sock_getlocaladdr shows the port the implicit bind chose;
 * 2. a 10-byte datagram received into 4 bytes: 4 bytes and the truncated flag, and the next
 *    receive gets the next datagram, not the rest;
 * 3. a second socket "connected" with sock_connect_v2: sock_send / sock_recv without addresses,
 *    sock_getpeeraddr names the server; a non-blocking receive with nothing queued gives EAGAIN;
 * 4. the policy: sock_send_to and sock_connect towards 10.1.2.3 are refused (errno printed).
 * Then it sends "quit". Every line names the errno the call returned.
 */
#include <fcntl.h>
#include <stdlib.h>

#include "udp_sock.h"

static uint32_t open_dgram(int fam) {
  uint32_t fd = 0;
  int32_t e = we_sock_open((uint32_t)fam, 1, &fd);
  if (e) printf("open: errno %d\n", e), exit(2);
  return fd;
}

static int32_t send_v1(uint32_t fd, const uint8_t *ip, uint32_t iplen, int port, const char *msg) {
  we_address_t a = {(uint8_t *)ip, iplen};
  we_ciovec_t out = {(const uint8_t *)msg, (uint32_t)strlen(msg)};
  uint32_t sent = 0;
  return we_sock_send_to(fd, &out, 1, &a, port, 0, &sent);
}

static void recv_v1(uint32_t fd, uint32_t room, const char *what) {
  char buf[256] = {0};
  /* Two iovecs: one datagram must be scattered across them. */
  we_iovec_t in[2] = {{(uint8_t *)buf, room < 3 ? room : 3}, {(uint8_t *)buf + 3, room < 3 ? 0 : room - 3}};
  uint8_t from[16] = {0};
  we_address_t fa = {from, 16};
  uint32_t got = 0;
  uint16_t oflags = 0;
  int32_t e = we_sock_recv_from(fd, in, 2, &fa, 0, &got, &oflags);
  printf("%s: '%.*s' %u bytes, flags %u (errno %d)\n", what, (int)got, buf, got, oflags, e);
}

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: udp_client ip port\n"), 1;
  uint8_t st[128];
  int fam = we_addr_v2(st, argv[1]);
  int port = atoi(argv[2]);
  const uint8_t *ip = st + 2;
  uint32_t iplen = fam == 1 ? 4 : 16;

  uint32_t fd = open_dgram(fam);
  uint8_t local[16];
  we_address_t la = {local, iplen};
  uint32_t ltype = 0, lport = 1;
  int32_t e = we_sock_getlocaladdr(fd, &la, &ltype, &lport);
  printf("before send: local port %u (errno %d)\n", lport, e);
  printf("send_to: errno %d\n", send_v1(fd, ip, iplen, port, "hello, udp"));
  recv_v1(fd, 200, "echo");
  e = we_sock_getlocaladdr(fd, &la, &ltype, &lport);
  printf("after send: local port %s, type %u (errno %d)\n", lport > 0 ? "chosen" : "zero", ltype, e);

  send_v1(fd, ip, iplen, port, "0123456789");
  send_v1(fd, ip, iplen, port, "next");
  recv_v1(fd, 4, "short buffer");
  recv_v1(fd, 200, "following");

  uint32_t cfd = open_dgram(fam);
  we_address_t sa = {st, 128};
  e = we_sock_connect_v2(cfd, &sa, (uint32_t)port);
  printf("connect: errno %d\n", e);
  uint8_t peer[128];
  we_address_t pa = {peer, 128};
  uint32_t pport = 0;
  e = we_sock_getpeeraddr_v2(cfd, &pa, &pport);
  printf("peer ");
  we_print_addr(peer);
  printf(" %s (errno %d)\n", (int)pport == port ? "port" : "wrong port", e);
  const char *msg = "connected datagram";
  we_ciovec_t out = {(const uint8_t *)msg, (uint32_t)strlen(msg)};
  uint32_t sent = 0;
  e = we_sock_send(cfd, &out, 1, 0, &sent);
  printf("send: %u (errno %d)\n", sent, e);
  char buf[64] = {0};
  we_iovec_t in = {(uint8_t *)buf, sizeof buf};
  uint32_t got = 0;
  uint16_t oflags = 0;
  e = we_sock_recv(cfd, &in, 1, 0, &got, &oflags);
  printf("recv: '%.*s' (errno %d)\n", (int)got, buf, e);
  if (fcntl((int)cfd, F_SETFL, O_NONBLOCK) != 0) printf("fcntl failed\n");
  e = we_sock_recv(cfd, &in, 1, 0, &got, &oflags);
  printf("nonblocking recv: errno %d\n", e);

  const uint8_t far[4] = {10, 1, 2, 3};
  printf("send_to 10.1.2.3: errno %d\n", send_v1(fd, far, 4, 7, "x"));
  uint8_t farst[128] = {1, 0, 10, 1, 2, 3};
  we_address_t fa = {farst, 128};
  printf("connect 10.1.2.3: errno %d\n", we_sock_connect_v2(cfd, &fa, 7));

  printf("quit: errno %d\n", send_v1(fd, ip, iplen, port, "quit"));
  close((int)cfd);
  close((int)fd);
  return 0;
}
