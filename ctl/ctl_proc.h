#ifndef CTL_PROC_H
#define CTL_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "bl/bl_buf.h"

/*
 * Child processes of `blogctl up`: started with stdout and stderr on one pipe, every line
 * they print re-printed on <out> as "name  | line", the last CTL_PROC_TAIL lines kept for
 * the obituary, reaped by PID and stopped with SIGTERM then SIGKILL. Each child runs in its
 * own process group (a terminal's Ctrl-C reaches only blogctl, which then stops children in
 * order) and gets SIGTERM if blogctl itself dies (PR_SET_PDEATHSIG).
 */

#define CTL_PROC_TAIL 10
#define CTL_PROC_NAME_MAX 32
#define CTL_PROC_LINE_MAX 16384

struct ctl_proc {
    char name[CTL_PROC_NAME_MAX];   /* log prefix, e.g. "n1" */
    int pad;                        /* prefix width (names are padded to it) */
    FILE *out;                      /* where lines go (stderr) */
    pid_t pid;                      /* 0 before start */
    int fd;                         /* read end of the output pipe, -1 when closed */
    bool running;                   /* started and not yet reaped */
    int status;                     /* wait status once reaped */
    struct bl_buf line;             /* partial line */
    char *tail[CTL_PROC_TAIL];      /* ring of the last lines */
    size_t ntail;                   /* lines stored (<= CTL_PROC_TAIL) */
    size_t tail_next;               /* ring write position */
};

/* Sets up <p> (not started). <name> is truncated to CTL_PROC_NAME_MAX - 1 bytes. */
void ctl_proc_init(struct ctl_proc *p, const char *name, FILE *out);

/* Closes the pipe and frees the tail. The process must have been reaped (or never run). */
void ctl_proc_deinit(struct ctl_proc *p);

/*
 * Starts argv[0] (a path; no PATH search) with <argv>, stdin on /dev/null. Returns 0 when
 * the program was executed, or a negative errno (e.g. -ENOENT, -EACCES) when it could not
 * be (the exec error is reported synchronously, never as a child exit).
 */
int ctl_proc_start(struct ctl_proc *p, char *const argv[]);

/*
 * Waits up to <timeout_ms> (-1 = forever) for output of any of the <n> processes or for
 * <wake_fd> (-1 = none) to become readable, prints what arrived and reaps children that
 * exited (after draining their output). Returns 1 when <wake_fd> is readable, 0 otherwise.
 */
int ctl_proc_pump(struct ctl_proc *const *procs, size_t n, int wake_fd, int timeout_ms);

/* Reaps <p> if it exited. True while it runs. */
bool ctl_proc_alive(struct ctl_proc *p);

/*
 * Stops <p>: SIGTERM, up to <timeout_ms> for it to exit while its output (and that of the
 * other <n> <procs>, which may include <p>) keeps flowing, then SIGKILL to its process
 * group and a final wait. Returns true when it exited within the timeout (no SIGKILL).
 * A process that is not running is left alone (returns true).
 */
bool ctl_proc_stop(struct ctl_proc *p, struct ctl_proc *const *procs, size_t n,
                   int timeout_ms);

/* Sends <sig> to <p> when it runs. */
void ctl_proc_signal(struct ctl_proc *p, int sig);

/* Describes a wait status: "exited with code 3", "killed by signal 9 (Killed)". */
void ctl_proc_describe(int status, char *out, size_t outlen);

/* Calls <fn> on each kept line, oldest first. */
void ctl_proc_tail(const struct ctl_proc *p, void (*fn)(const char *line, void *arg),
                   void *arg);

#endif /* CTL_PROC_H */
