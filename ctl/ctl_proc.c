#include "ctl_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bl/bl_time.h"
#include "bl/bl_util.h"

void
ctl_proc_init(struct ctl_proc *p, const char *name, FILE *out)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->pad = (int)strlen(p->name);
    p->out = out;
    p->fd = -1;
    bl_buf_init(&p->line);
}

void
ctl_proc_deinit(struct ctl_proc *p)
{
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    bl_buf_deinit(&p->line);
    for (size_t i = 0; i < CTL_PROC_TAIL; i++) {
        BL_FREE(p->tail[i]);
    }
    p->ntail = 0;
}

int
ctl_proc_start(struct ctl_proc *p, char *const argv[])
{
    int out[2] = { -1, -1 }, st[2] = { -1, -1 };
    pid_t parent = getpid(), pid;
    int child_err = 0, rc;
    ssize_t n;

    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(st, O_CLOEXEC) != 0) {
        rc = -errno;
        goto fail;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto fail;
    }
    if (pid == 0) {
        /* child: async-signal-safe calls only */
        struct sigaction sa;
        sigset_t none;
        int devnull, e;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGCHLD, &sa, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) {
            _exit(127);
        }
        devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0) {
            e = errno;
            (void)!write(st[1], &e, sizeof(e));
            _exit(127);
        }
        execv(argv[0], argv);
        e = errno;
        (void)!write(st[1], &e, sizeof(e));
        _exit(127);
    }
    close(out[1]);
    out[1] = -1;
    close(st[1]);
    st[1] = -1;
    do {
        n = read(st[0], &child_err, sizeof(child_err));
    } while (n < 0 && errno == EINTR);
    close(st[0]);
    st[0] = -1;
    if (n == (ssize_t)sizeof(child_err)) {
        int status;

        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        rc = -child_err;
        goto fail;
    }
    (void)fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    p->fd = out[0];
    p->pid = pid;
    p->running = true;
    p->status = 0;
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0) {
            close(out[i]);
        }
        if (st[i] >= 0) {
            close(st[i]);
        }
    }
    return rc;
}

static void
emit_line(struct ctl_proc *p, const char *s, size_t n)
{
    char *copy;

    if (n > 0 && s[n - 1] == '\r') {
        n--;
    }
    fprintf(p->out, "%-*s | %.*s\n", p->pad, p->name, (int)n, s);
    copy = bl_xmalloc(BL_MIN(n, (size_t)1024) + 1);
    memcpy(copy, s, BL_MIN(n, (size_t)1024));
    copy[BL_MIN(n, (size_t)1024)] = '\0';
    free(p->tail[p->tail_next]);
    p->tail[p->tail_next] = copy;
    p->tail_next = (p->tail_next + 1) % CTL_PROC_TAIL;
    if (p->ntail < CTL_PROC_TAIL) {
        p->ntail++;
    }
}

/* Reads what is available on <p>'s pipe; at EOF flushes the partial line and closes it. */
static void
drain(struct ctl_proc *p)
{
    char buf[8192];

    while (p->fd >= 0) {
        ssize_t n = read(p->fd, buf, sizeof(buf));

        if (n > 0) {
            size_t start = 0;

            for (size_t i = 0; i < (size_t)n; i++) {
                if (buf[i] != '\n') {
                    continue;
                }
                if (p->line.len > 0) {
                    bl_buf_append(&p->line, buf + start, i - start);
                    emit_line(p, p->line.data, p->line.len);
                    bl_buf_reset(&p->line);
                } else {
                    emit_line(p, buf + start, i - start);
                }
                start = i + 1;
            }
            if (start < (size_t)n) {
                bl_buf_append(&p->line, buf + start, (size_t)n - start);
                if (p->line.len >= CTL_PROC_LINE_MAX) {
                    emit_line(p, p->line.data, p->line.len);
                    bl_buf_reset(&p->line);
                }
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        /* EOF or error */
        if (p->line.len > 0) {
            emit_line(p, p->line.data, p->line.len);
            bl_buf_reset(&p->line);
        }
        close(p->fd);
        p->fd = -1;
    }
    fflush(p->out);
}

bool
ctl_proc_alive(struct ctl_proc *p)
{
    int status;
    pid_t r;

    if (!p->running) {
        return false;
    }
    do {
        r = waitpid(p->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return true;
    }
    if (r == p->pid) {
        p->status = status;
    } else {
        p->status = 0;                  /* not our child any more (ECHILD): treat as gone */
    }
    p->running = false;
    /* the pipe may still hold its last words: read them now (non-blocking) */
    drain(p);
    return false;
}

int
ctl_proc_pump(struct ctl_proc *const *procs, size_t n, int wake_fd, int timeout_ms)
{
    struct pollfd pfds_small[16], *pfds = pfds_small;
    struct ctl_proc *owner_small[16], **owner = owner_small;
    size_t np = 0;
    int woke = 0, r;

    if (n + 1 > BL_ARRAY_SIZE(pfds_small)) {
        pfds = bl_xcalloc(n + 1, sizeof(*pfds));
        owner = bl_xcalloc(n + 1, sizeof(*owner));
    }
    for (size_t i = 0; i < n; i++) {
        if (procs[i] != NULL && procs[i]->fd >= 0) {
            pfds[np].fd = procs[i]->fd;
            pfds[np].events = POLLIN;
            pfds[np].revents = 0;
            owner[np] = procs[i];
            np++;
        }
    }
    if (wake_fd >= 0) {
        pfds[np].fd = wake_fd;
        pfds[np].events = POLLIN;
        pfds[np].revents = 0;
        owner[np] = NULL;
        np++;
    }
    r = poll(pfds, np, timeout_ms);
    if (r > 0) {
        for (size_t i = 0; i < np; i++) {
            if (pfds[i].revents == 0) {
                continue;
            }
            if (owner[i] == NULL) {
                woke = 1;
            } else {
                drain(owner[i]);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (procs[i] != NULL) {
            (void)ctl_proc_alive(procs[i]);
        }
    }
    if (pfds != pfds_small) {
        free(pfds);
        free(owner);
    }
    return woke;
}

void
ctl_proc_signal(struct ctl_proc *p, int sig)
{
    if (p->running) {
        (void)kill(p->pid, sig);
    }
}

bool
ctl_proc_stop(struct ctl_proc *p, struct ctl_proc *const *procs, size_t n, int timeout_ms)
{
    uint64_t deadline;

    if (!ctl_proc_alive(p)) {
        return true;
    }
    (void)kill(p->pid, SIGTERM);
    deadline = bl_time_mono_ms() + (uint64_t)timeout_ms;
    while (bl_time_mono_ms() < deadline) {
        struct ctl_proc *self[1] = { p };

        if (procs != NULL) {
            ctl_proc_pump(procs, n, -1, 50);
        } else {
            ctl_proc_pump(self, 1, -1, 50);
        }
        if (!ctl_proc_alive(p)) {
            return true;
        }
    }
    (void)kill(-p->pid, SIGKILL);
    (void)kill(p->pid, SIGKILL);
    while (ctl_proc_alive(p)) {
        struct ctl_proc *self[1] = { p };

        ctl_proc_pump(self, 1, -1, 50);
    }
    return false;
}

void
ctl_proc_describe(int status, char *out, size_t outlen)
{
    if (WIFEXITED(status)) {
        snprintf(out, outlen, "exited with code %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(out, outlen, "killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    } else {
        snprintf(out, outlen, "ended with wait status 0x%x", (unsigned)status);
    }
}

void
ctl_proc_tail(const struct ctl_proc *p, void (*fn)(const char *line, void *arg), void *arg)
{
    size_t start = (p->tail_next + CTL_PROC_TAIL - p->ntail) % CTL_PROC_TAIL;

    for (size_t i = 0; i < p->ntail; i++) {
        fn(p->tail[(start + i) % CTL_PROC_TAIL], arg);
    }
}
