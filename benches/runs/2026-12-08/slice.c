/* Runs a command with the scheduler slice (sched_attr.sched_runtime, in
 * ns) set on itself first; the command inherits it across exec.
 *   gcc -O2 slice.c -o slice && ./slice 100000 COMMAND [ARGS...]
 * Used to try the short slice on both tools before it was built into
 * ironpoll (interleaved-slice-outside.txt). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <stdint.h>
struct attr { uint32_t size, policy; uint64_t flags; int32_t nice; uint32_t prio; uint64_t runtime, deadline, period; uint32_t umin, umax; };
int main(int argc, char **argv) {
  struct attr a; memset(&a, 0, sizeof a); a.size = sizeof a; a.policy = 0; a.runtime = strtoull(argv[1],0,10);
  if (syscall(SYS_sched_setattr, 0, &a, 0)) { perror("sched_setattr"); return 1; }
  execvp(argv[2], argv+2); perror("exec"); return 1;
}
