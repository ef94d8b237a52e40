/*
 * WasmEdge's socket extension, declared directly (module wasi_snapshot_preview1), for the echo
 * test programs. Address family 1 = INET4, 2 = INET6; socket type 2 = STREAM. An address is
 * { buf, buf_len }: 4 or 16 raw bytes (V1 names), or 128 bytes with the family as a little-endian
 * u16 at 0 and the address from byte 2 (the _v2 names). Every call returns a WASI errno.
 */
#include <stdint.h>

#define WE_IMPORT(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(name)))

typedef struct {
  uint8_t *buf;
  uint32_t buf_len;
} we_address_t;

typedef struct {
  const uint8_t *buf;
  uint32_t buf_len;
} we_ciovec_t;

typedef struct {
  uint8_t *buf;
  uint32_t buf_len;
} we_iovec_t;

WE_IMPORT("sock_open") int32_t we_sock_open(uint32_t family, uint32_t type, uint32_t *fd);
WE_IMPORT("sock_open_v2") int32_t we_sock_open_v2(uint32_t family, uint32_t type, uint32_t *fd);
WE_IMPORT("sock_bind") int32_t we_sock_bind(uint32_t fd, we_address_t *addr, uint32_t port);
WE_IMPORT("sock_listen") int32_t we_sock_listen(uint32_t fd, int32_t backlog);
WE_IMPORT("sock_accept") int32_t we_sock_accept(uint32_t fd, uint32_t fdflags, uint32_t *out);
WE_IMPORT("sock_connect_v2") int32_t we_sock_connect_v2(uint32_t fd, we_address_t *addr, uint32_t port);
WE_IMPORT("sock_getlocaladdr_v2") int32_t we_sock_getlocaladdr_v2(uint32_t fd, we_address_t *addr, uint32_t *port);
WE_IMPORT("sock_getpeeraddr")
int32_t we_sock_getpeeraddr(uint32_t fd, we_address_t *addr, uint32_t *addr_type, uint32_t *port);
WE_IMPORT("sock_send")
int32_t we_sock_send(uint32_t fd, const we_ciovec_t *iovs, uint32_t n, uint32_t flags, uint32_t *sent);
WE_IMPORT("sock_recv")
int32_t we_sock_recv(uint32_t fd, we_iovec_t *iovs, uint32_t n, uint32_t flags, uint32_t *got, uint16_t *oflags);
WE_IMPORT("sock_shutdown") int32_t we_sock_shutdown(uint32_t fd, uint32_t how);
WE_IMPORT("sock_setsockopt")
int32_t we_sock_setsockopt(uint32_t fd, uint32_t level, uint32_t name, const int32_t *value, uint32_t size);
WE_IMPORT("sock_getsockopt")
int32_t we_sock_getsockopt(uint32_t fd, uint32_t level, uint32_t name, int32_t *value, uint32_t *size);
