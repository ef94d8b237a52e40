/*
 * sched-slice TID NICE SLICE_NS: give host thread TID the time-sharing policy (SCHED_OTHER) at
 * nice NICE with a scheduler slice of SLICE_NS (Linux 6.6+ EEVDF; the kernel keeps it within
 * 0.1-100 ms). Node has no binding for sched_setattr(2) and util-linux's chrt (2.38) cannot set
 * a SCHED_OTHER slice, so host-priority.ts runs this, built by scripts/build-host.sh.
 * Exits 0 on success, 1 with a message when the host refuses, 2 on bad arguments.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's struct sched_attr (include/uapi/linux/sched/types.h), up to the utilisation clamps. */
struct attr {
    uint32_t size;
    uint32_t policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime;
    uint64_t deadline;
    uint64_t period;
    uint32_t util_min;
    uint32_t util_max;
};

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s TID NICE SLICE_NS\n", argv[0]);
        return 2;
    }
    char *end;
    long tid = strtol(argv[1], &end, 10);
    if (*end != '\0' || tid <= 0) {
        fprintf(stderr, "sched-slice: bad thread id '%s'\n", argv[1]);
        return 2;
    }
    long nice = strtol(argv[2], &end, 10);
    if (*end != '\0' || nice < -20 || nice > 19) {
        fprintf(stderr, "sched-slice: bad nice value '%s'\n", argv[2]);
        return 2;
    }
    unsigned long long slice = strtoull(argv[3], &end, 10);
    if (*end != '\0' || slice == 0) {
        fprintf(stderr, "sched-slice: bad slice '%s'\n", argv[3]);
        return 2;
    }
    struct attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.policy = 0; /* SCHED_OTHER */
    a.nice = (int32_t)nice;
    a.runtime = slice;
    if (syscall(SYS_sched_setattr, (pid_t)tid, &a, 0) != 0) {
        fprintf(stderr, "sched-slice: sched_setattr(%ld): %s\n", tid, strerror(errno));
        return 1;
    }
    return 0;
}
