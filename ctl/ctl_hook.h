#ifndef CTL_HOOK_H
#define CTL_HOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "bl/bl_buf.h"

/*
 * blog-ctld's hook runner: runs an operator command through `/bin/sh -c` with extra
 * positional arguments ("$1", "$2" after the command's own words) and extra environment
 * variables, in its own process group, stdin on /dev/null, stdout and stderr captured (at
 * most CTL_HOOK_MAX_OUTPUT bytes each). On timeout the whole process group gets SIGTERM,
 * then SIGKILL 2 s later. Processes the hook leaves running in the background (e.g. the
 * node it started) are not waited for, even if they keep the pipes open.
 */

#define CTL_HOOK_MAX_OUTPUT (64 * 1024)

struct ctl_hook_result {
    int status;                 /* wait status (valid when exited or signaled) */
    bool exited;                /* exited normally */
    int code;                   /* exit code when exited */
    bool timed_out;             /* killed after the timeout */
    struct bl_buf out;          /* stdout, NUL-terminated */
    struct bl_buf err;          /* stderr, NUL-terminated */
    double seconds;             /* run time */
};

void ctl_hook_result_init(struct ctl_hook_result *r);
void ctl_hook_result_deinit(struct ctl_hook_result *r);

/*
 * Runs <cmd> with the NULL-terminated <args> as "$1".. (NULL: none) and the
 * NULL-terminated "NAME=value" list <env> added to the environment (NULL: none), for at
 * most <timeout_ms>. Returns 0 when the command ran to completion with exit code 0,
 * -ETIMEDOUT on timeout, -EIO when it exited non-zero or by a signal, or a negative
 * errno when it could not be started. <r> is filled in every case.
 */
int ctl_hook_run(const char *cmd, const char *const *args, const char *const *env,
                 int timeout_ms, struct ctl_hook_result *r);

/*
 * Same, calling <tick>(<arg>) about every 100 ms while the command runs (blog-ctld renews
 * its leadership lease there); <tick> may be NULL.
 */
int ctl_hook_run_tick(const char *cmd, const char *const *args, const char *const *env,
                      int timeout_ms, void (*tick)(void *), void *arg,
                      struct ctl_hook_result *r);

/*
 * Parses the scale_up hook's answer: the last non-empty line of <out> must be
 * "NAME HOST:PORT" (NAME 1-64 of [A-Za-z0-9_.-], HOST:PORT parseable by bl_net). Returns 0
 * with <name>/<addr> filled, or BL_EINVAL.
 */
int ctl_hook_parse_spawn(const char *out, char *name, size_t namelen, char *addr,
                         size_t addrlen);

/* True when <s> is a valid node name: 1-64 of [A-Za-z0-9_.-]. */
bool ctl_valid_node_name(const char *s);

#endif /* CTL_HOOK_H */
