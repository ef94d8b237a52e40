// fd_* and path_* round trips in the preopen /sandbox, printing each result.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/libc.h>

#define CHECK(what, expr) printf("%s: %s\n", what, (expr) ? "ok" : strerror(errno))
#define ERR(what, expr) do { errno = 0; int r_ = (expr); printf("%s: %d %s\n", what, r_, errno ? strerror(errno) : "-"); } while (0)

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
  // write, read back, seek, tell
  int fd = open("/sandbox/a.txt", O_CREAT | O_TRUNC | O_RDWR, 0644);
  CHECK("open a.txt", fd >= 0);
  printf("write=%zd\n", write(fd, "hello world", 11));
  printf("seek=%lld\n", (long long)lseek(fd, 6, SEEK_SET));
  char buf[64] = {0};
  printf("read=%zd [%s]\n", read(fd, buf, sizeof buf - 1), buf);
  printf("tell=%lld\n", (long long)lseek(fd, 0, SEEK_CUR));
  printf("end=%lld\n", (long long)lseek(fd, -5, SEEK_END));
  printf("pwrite=%zd\n", pwrite(fd, "WORLD", 5, 6));
  memset(buf, 0, sizeof buf);
  printf("pread=%zd [%s]\n", pread(fd, buf, 5, 6), buf);
  printf("pos after pread=%lld\n", (long long)lseek(fd, 0, SEEK_CUR));
  CHECK("ftruncate", ftruncate(fd, 5) == 0);
  struct stat st;
  CHECK("fstat", fstat(fd, &st) == 0);
  printf("size=%lld reg=%d\n", (long long)st.st_size, S_ISREG(st.st_mode));
  CHECK("fsync", fsync(fd) == 0);
  CHECK("fdatasync", fdatasync(fd) == 0);
  CHECK("posix_fallocate", posix_fallocate(fd, 0, 100) == 0);
  CHECK("posix_fadvise", posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL) == 0);
  fstat(fd, &st);
  printf("size after fallocate=%lld\n", (long long)st.st_size);
  CHECK("close", close(fd) == 0);
  ERR("close again", close(fd));
  ERR("read closed", (int)read(fd, buf, 1));

  // append mode
  fd = open("/sandbox/log", O_CREAT | O_WRONLY | O_APPEND, 0644);
  write(fd, "one\n", 4);
  lseek(fd, 0, SEEK_SET);
  write(fd, "two\n", 4);
  close(fd);
  FILE *f = fopen("/sandbox/log", "r");
  memset(buf, 0, sizeof buf);
  fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  printf("log=[%s]\n", buf);

  // errors
  ERR("open missing", open("/sandbox/missing", O_RDONLY));
  ERR("open excl", open("/sandbox/a.txt", O_CREAT | O_EXCL | O_WRONLY, 0644));
  ERR("open through file", open("/sandbox/a.txt/x", O_RDONLY));
  ERR("open dir O_DIRECTORY on file", open("/sandbox/a.txt", O_RDONLY | O_DIRECTORY));
  CHECK("mkdir d", mkdir("/sandbox/d", 0755) == 0);
  ERR("mkdir again", mkdir("/sandbox/d", 0755));
  ERR("open dir for write", open("/sandbox/d", O_WRONLY));
  fd = open("/sandbox/a.txt", O_RDONLY);
  ERR("write on read-only fd", (int)write(fd, "x", 1));
  close(fd);

  // directories
  close(open("/sandbox/d/f1", O_CREAT | O_WRONLY, 0644));
  close(open("/sandbox/d/f2", O_CREAT | O_WRONLY, 0644));
  CHECK("mkdir d/sub", mkdir("/sandbox/d/sub", 0755) == 0);
  DIR *dir = opendir("/sandbox/d");
  char *names[16];
  int n = 0;
  struct dirent *de;
  while ((de = readdir(dir)) && n < 16) names[n++] = strdup(de->d_name);
  closedir(dir);
  qsort(names, n, sizeof names[0], cmp);
  printf("listing:");
  for (int i = 0; i < n; i++) printf(" %s", names[i]);
  printf("\n");
  ERR("rmdir nonempty", rmdir("/sandbox/d"));
  ERR("unlink dir", unlink("/sandbox/d/sub"));
  ERR("rmdir file", rmdir("/sandbox/d/f1"));
  CHECK("rename", rename("/sandbox/d/f1", "/sandbox/d/sub/g") == 0);
  ERR("stat old name", stat("/sandbox/d/f1", &st));
  CHECK("stat new name", stat("/sandbox/d/sub/g", &st) == 0);
  CHECK("link", link("/sandbox/d/sub/g", "/sandbox/d/h") == 0);
  stat("/sandbox/d/h", &st);
  printf("nlink=%d\n", (int)st.st_nlink);
  CHECK("symlink", symlink("sub/g", "/sandbox/d/s") == 0);
  memset(buf, 0, sizeof buf);
  printf("readlink=%zd [%s]\n", readlink("/sandbox/d/s", buf, sizeof buf), buf);
  ERR("readlink on file", (int)readlink("/sandbox/d/h", buf, sizeof buf));
  lstat("/sandbox/d/s", &st);
  printf("lstat link=%d\n", S_ISLNK(st.st_mode));
  stat("/sandbox/d/s", &st);
  printf("stat follows=%d\n", S_ISREG(st.st_mode));
  struct timespec ts[2] = {{1000000000, 0}, {1234567890, 0}};
  CHECK("utimensat", utimensat(AT_FDCWD, "/sandbox/d/h", ts, 0) == 0);
  stat("/sandbox/d/h", &st);
  printf("mtime=%lld\n", (long long)st.st_mtim.tv_sec);
  CHECK("unlink", unlink("/sandbox/d/h") == 0 && unlink("/sandbox/d/s") == 0 && unlink("/sandbox/d/sub/g") == 0 &&
                      unlink("/sandbox/d/f2") == 0);
  CHECK("rmdir", rmdir("/sandbox/d/sub") == 0 && rmdir("/sandbox/d") == 0);
  // fd_renumber
  fd = open("/sandbox/a.txt", O_RDONLY);
  int fd2 = open("/sandbox/log", O_RDONLY);
  CHECK("fd_renumber", __wasilibc_fd_renumber(fd, fd2) == 0);
  memset(buf, 0, sizeof buf);
  read(fd2, buf, 5);
  printf("after renumber=[%s]\n", buf);
  ERR("old fd gone", (int)read(fd, buf, 1));
  return 0;
}
