/*
 * WasmEdge's datagram calls (module wasi_snapshot_preview1), for the UDP test programs, beside
 * the stream calls of echo_sock.h. Socket type 1 = DGRAM. sock_send_to takes the port as an
 * argument in host order; sock_recv_from_v2 stores the source port as WasmEdge does, straight
 * from sin_port (network byte order), so it is read back with we_port(). roflags bit 0 marks a
 * datagram cut short by the buffer.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "echo_sock.h"

WE_IMPORT("sock_send_to")
int32_t we_sock_send_to(uint32_t fd, const we_ciovec_t *iovs, uint32_t n, we_address_t *addr, int32_t port,
                        uint32_t flags, uint32_t *sent);
WE_IMPORT("sock_send_to_v2")
int32_t we_sock_send_to_v2(uint32_t fd, const we_ciovec_t *iovs, uint32_t n, we_address_t *addr, int32_t port,
                           uint32_t flags, uint32_t *sent);
WE_IMPORT("sock_recv_from")
int32_t we_sock_recv_from(uint32_t fd, we_iovec_t *iovs, uint32_t n, we_address_t *addr, uint32_t flags,
                          uint32_t *got, uint16_t *oflags);
WE_IMPORT("sock_recv_from_v2")
int32_t we_sock_recv_from_v2(uint32_t fd, we_iovec_t *iovs, uint32_t n, we_address_t *addr, uint32_t flags,
                             uint16_t *port, uint32_t *got, uint16_t *oflags);

WE_IMPORT("sock_getlocaladdr")
int32_t we_sock_getlocaladdr(uint32_t fd, we_address_t *addr, uint32_t *addr_type, uint32_t *port);
WE_IMPORT("sock_getpeeraddr_v2") int32_t we_sock_getpeeraddr_v2(uint32_t fd, we_address_t *addr, uint32_t *port);

/* The port sock_recv_from_v2 stored (network byte order) in host order. */
static inline unsigned we_port(uint16_t stored) { return ntohs(stored); }

/* Fills a 128-byte V2 address from text ("127.0.0.1" or "::1"); returns the family (1 or 2), 0 if bad. */
static inline int we_addr_v2(uint8_t st[128], const char *text) {
  memset(st, 0, 128);
  if (inet_pton(AF_INET, text, st + 2) == 1) return st[0] = 1, 1;
  if (inet_pton(AF_INET6, text, st + 2) == 1) return st[0] = 2, 2;
  return 0;
}

/* Prints a V2 address as text. */
static inline void we_print_addr(const uint8_t st[128]) {
  char text[64];
  inet_ntop(st[0] == 1 ? AF_INET : AF_INET6, st + 2, text, sizeof text);
  printf("%s", text);
}
