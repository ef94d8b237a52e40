// Escape attempts from the preopen (fd 3, guest "/sandbox"): raw path_open so that the host, not
// wasi-libc, decides; each line prints the WASI errno (0 = opened).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

static void try_open(const char *path, int follow) {
  __wasi_fd_t fd = 0;
  __wasi_errno_t e = __wasi_path_open(3, follow ? __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW : 0, path, 0,
                                      __WASI_RIGHTS_FD_READ, 0, 0, &fd);
  printf("open %s%s: %d\n", path, follow ? "" : " (nofollow)", e);
  if (e == 0) (void)__wasi_fd_close(fd);
}

static void try_stat(const char *path) {
  __wasi_filestat_t st;
  __wasi_errno_t e = __wasi_path_filestat_get(3, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, path, &st);
  printf("stat %s: %d\n", path, e);
}

int main(void) {
  try_open("inside.txt", 1);
  try_open("../outside.txt", 1);
  try_open("sub/../../outside.txt", 1);
  try_open("sub/../inside.txt", 1);
  try_open("/etc/passwd", 1);
  try_open("/", 1);
  try_open("..", 1);
  try_open(".", 1);
  try_open("", 1);
  try_open("link_out_abs", 1);
  try_open("link_out_rel", 1);
  try_open("link_out_rel", 0);
  try_open("link_in", 1);
  try_open("chain7", 1);
  try_open("chain8", 1);
  try_open("loop_a", 1);
  try_open("link_dir_out/outside.txt", 1);
  try_open("sub/link_up/outside.txt", 1);
  try_open("sub/link_up/link_dir_out/outside.txt", 1);
  try_stat("link_out_abs");
  try_stat("link_dir_out/outside.txt");
  // path_create_directory, path_unlink_file etc. through an escaping parent
  printf("mkdir ../x: %d\n", __wasi_path_create_directory(3, "../x"));
  printf("mkdir link_dir_out/x: %d\n", __wasi_path_create_directory(3, "link_dir_out/x"));
  printf("unlink ../outside.txt: %d\n", __wasi_path_unlink_file(3, "../outside.txt"));
  printf("symlink abs: %d\n", __wasi_path_symlink("/etc/passwd", 3, "newlink"));
  printf("rename out: %d\n", __wasi_path_rename(3, "inside.txt", 3, "../stolen.txt"));
  // rights: a file fd has no path rights; rights beyond the directory's inheriting set
  __wasi_fd_t fd;
  (void)__wasi_path_open(3, 0, "inside.txt", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd);
  printf("path_open on file fd: %d\n", __wasi_path_open(fd, 0, "x", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd));
  __wasi_ciovec_t iov = {(const uint8_t *)"x", 1};
  __wasi_size_t nw;
  printf("write without FD_WRITE: %d\n", __wasi_fd_write(fd, &iov, 1, &nw));
  printf("bad fd: %d\n", __wasi_fd_close(77));
  // wasi-libc's own answer for an absolute path under no preopen, and for `..` from the preopen
  errno = 0;
  printf("libc open /etc/passwd: %d %s\n", open("/etc/passwd", O_RDONLY), strerror(errno));
  errno = 0;
  printf("libc open /sandbox/../outside.txt: %d %s\n", open("/sandbox/../outside.txt", O_RDONLY), strerror(errno));
  return 0;
}
