// args_*, environ_*, proc_exit: prints its arguments and two variables, then exits with the
// code given as the last argument (through exit(), which ends in proc_exit).
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv) {
  printf("argc=%d\n", argc);
  for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
  int n = 0;
  for (char **e = environ; *e; e++) n++;
  printf("envc=%d\n", n);
  printf("FOO=%s\n", getenv("FOO") ? getenv("FOO") : "(null)");
  printf("EMPTY=[%s]\n", getenv("EMPTY") ? getenv("EMPTY") : "(null)");
  printf("MISSING=%s\n", getenv("MISSING") ? getenv("MISSING") : "(null)");
  fflush(stdout);
  fprintf(stderr, "to stderr\n");
  return argc > 1 ? atoi(argv[argc - 1]) : 0;
}
