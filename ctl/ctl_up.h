#ifndef CTL_UP_H
#define CTL_UP_H

#include <stddef.h>

/*
 * The supervisor behind `blogctl up` (the command itself is ctl_cmd_up() in ctl_cmd.h):
 * start order redis -> nodes -> LB -> ctld, each waited for until ready, stop order the
 * reverse. These helpers are exported for tests.
 */

/*
 * Checks that a listener could bind <hostport> now. Returns 0 when it is free, -EADDRINUSE
 * when something listens there (with <why> naming the owner when /proc tells, e.g.
 * "blog-lb (pid 1234)", else ""), or another negative error (bad or foreign address) with
 * <why> explaining it.
 */
int ctl_up_check_addr(const char *hostport, char *why, size_t whylen);

/*
 * Names the process listening on TCP <port> (any local address) from /proc, as
 * "comm (pid N)" into <out>. Returns 0, or BL_ENOTFOUND (not ours to see, or nobody).
 */
int ctl_up_port_owner(unsigned port, char *out, size_t outlen);

/* Creates <path> and its parents (mode 0755). 0 or -errno. */
int ctl_up_mkdir_p(const char *path);

#endif /* CTL_UP_H */
