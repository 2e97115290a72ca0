#include "ctl_hook.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bl/bl_err.h"
#include "bl/bl_net.h"
#include "bl/bl_time.h"
#include "bl/bl_util.h"

#define HOOK_KILL_GRACE_MS 2000

void
ctl_hook_result_init(struct ctl_hook_result *r)
{
    memset(r, 0, sizeof(*r));
    bl_buf_init(&r->out);
    bl_buf_init(&r->err);
}

void
ctl_hook_result_deinit(struct ctl_hook_result *r)
{
    bl_buf_deinit(&r->out);
    bl_buf_deinit(&r->err);
}

/* Reads what is available on <fd> into <b> (bounded). Returns false at EOF or error. */
static bool
drain(int fd, struct bl_buf *b)
{
    char tmp[4096];

    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));

        if (n > 0) {
            size_t room = b->len < CTL_HOOK_MAX_OUTPUT ? CTL_HOOK_MAX_OUTPUT - b->len : 0;

            if (room > 0) {
                bl_buf_append(b, tmp, BL_MIN((size_t)n, room));
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

/* The child: only async-signal-safe calls (ctld has other threads); argv and envp were
 * built before fork(). */
static void
child_exec(char *const *argv, char *const *envp, int outw, int errw)
{
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    sigset_t none;

    setpgid(0, 0);
    if (devnull >= 0) {
        dup2(devnull, 0);
    }
    dup2(outw, 1);
    dup2(errw, 2);
    for (int fd = 3; fd < 1024; fd++) {
        close(fd);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    execve("/bin/sh", argv, envp);
    _exit(127);
}

extern char **environ;

/* "sh -c 'CMD "$@"' blog-ctld-hook ARGS..." and environ + <env>, malloc'ed. */
static void
build_exec(const char *cmd, const char *const *args, const char *const *env,
           struct bl_buf *script, char ***argv_out, char ***envp_out)
{
    size_t nargs = 0, nenv = 0, nextra = 0, k = 0;
    char **argv, **envp;

    while (args != NULL && args[nargs] != NULL) {
        nargs++;
    }
    while (environ != NULL && environ[nenv] != NULL) {
        nenv++;
    }
    while (env != NULL && env[nextra] != NULL) {
        nextra++;
    }
    /* the command's own words, then our arguments as "$@" */
    bl_buf_printf(script, "%s%s", cmd, nargs > 0 ? " \"$@\"" : "");
    argv = bl_xcalloc(nargs + 5, sizeof(*argv));
    argv[0] = "sh";
    argv[1] = "-c";
    argv[2] = script->data;
    argv[3] = "blog-ctld-hook";
    for (size_t i = 0; i < nargs; i++) {
        argv[4 + i] = (char *)args[i];
    }
    envp = bl_xcalloc(nenv + nextra + 1, sizeof(*envp));
    for (size_t i = 0; i < nenv; i++) {
        const char *eq = strchr(environ[i], '=');
        bool overridden = false;

        for (size_t j = 0; eq != NULL && j < nextra; j++) {
            size_t klen = (size_t)(eq - environ[i]) + 1;

            overridden = overridden || strncmp(env[j], environ[i], klen) == 0;
        }
        if (!overridden) {
            envp[k++] = environ[i];
        }
    }
    for (size_t j = 0; j < nextra; j++) {
        envp[k++] = (char *)env[j];
    }
    *argv_out = argv;
    *envp_out = envp;
}

int
ctl_hook_run(const char *cmd, const char *const *args, const char *const *env,
             int timeout_ms, struct ctl_hook_result *r)
{
    return ctl_hook_run_tick(cmd, args, env, timeout_ms, NULL, NULL, r);
}

int
ctl_hook_run_tick(const char *cmd, const char *const *args, const char *const *env,
                  int timeout_ms, void (*tick)(void *), void *arg, struct ctl_hook_result *r)
{
    uint64_t next_tick = bl_time_mono_ms() + 100;
    int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
    struct bl_buf script;
    char **argv = NULL, **envp = NULL;
    uint64_t t0 = bl_time_mono_ms(), deadline, kill_at = 0;
    pid_t pid;
    bool out_open = true, err_open = true, reaped = false;
    int rc;

    bl_buf_init(&script);
    bl_buf_reset(&r->out);
    bl_buf_reset(&r->err);
    r->status = 0;
    r->exited = false;
    r->code = -1;
    r->timed_out = false;
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        rc = -errno;
        goto fail;
    }
    build_exec(cmd, args, env, &script, &argv, &envp);
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto fail;
    }
    if (pid == 0) {
        child_exec(argv, envp, outp[1], errp[1]);
    }
    setpgid(pid, pid);                  /* also in the parent: no race with kill(-pid) */
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;
    fcntl(outp[0], F_SETFL, O_NONBLOCK);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);
    deadline = t0 + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);

    while (!reaped) {
        struct pollfd pfd[2];
        nfds_t n = 0;
        int st;
        pid_t w;
        uint64_t now = bl_time_mono_ms();

        if (!r->timed_out && now >= deadline) {
            r->timed_out = true;
            kill(-pid, SIGTERM);
            kill_at = now + HOOK_KILL_GRACE_MS;
        }
        if (r->timed_out && kill_at != 0 && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_at = 0;
        }
        if (out_open) {
            pfd[n].fd = outp[0];
            pfd[n++].events = POLLIN;
        }
        if (err_open) {
            pfd[n].fd = errp[0];
            pfd[n++].events = POLLIN;
        }
        /* short polls: the child's exit is noticed by waitpid, not by EOF (a background
         * process it started may hold the pipes) */
        poll(pfd, n, 20);
        if (out_open) {
            out_open = drain(outp[0], &r->out);
        }
        if (err_open) {
            err_open = drain(errp[0], &r->err);
        }
        if (tick != NULL && bl_time_mono_ms() >= next_tick) {
            tick(arg);
            next_tick = bl_time_mono_ms() + 100;
        }
        w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            reaped = true;
            r->status = st;
            r->exited = WIFEXITED(st);
            r->code = r->exited ? WEXITSTATUS(st) : -1;
        } else if (w < 0 && errno != EINTR) {
            rc = -errno;
            goto fail;
        }
    }
    /* what the shell wrote just before exiting */
    if (out_open) {
        drain(outp[0], &r->out);
    }
    if (err_open) {
        drain(errp[0], &r->err);
    }
    close(outp[0]);
    close(errp[0]);
    /* a timed-out hook's leftovers get the same treatment as the hook */
    if (r->timed_out) {
        kill(-pid, SIGKILL);
    }
    r->seconds = (double)(bl_time_mono_ms() - t0) / 1000.0;
    free(argv);
    free(envp);
    bl_buf_deinit(&script);
    if (r->timed_out) {
        return -ETIMEDOUT;
    }
    return r->exited && r->code == 0 ? 0 : -EIO;

fail:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0) {
            close(outp[i]);
        }
        if (errp[i] >= 0) {
            close(errp[i]);
        }
    }
    r->seconds = (double)(bl_time_mono_ms() - t0) / 1000.0;
    free(argv);
    free(envp);
    bl_buf_deinit(&script);
    return rc;
}

bool
ctl_valid_node_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

int
ctl_hook_parse_spawn(const char *out, char *name, size_t namelen, char *addr, size_t addrlen)
{
    const char *end = out + strlen(out), *line, *p;
    char buf[512], n1[128], a1[300], extra[8];
    struct sockaddr_storage ss;
    socklen_t sl;

    /* the last non-empty line */
    while (end > out && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '
                         || end[-1] == '\t')) {
        end--;
    }
    line = end;
    while (line > out && line[-1] != '\n') {
        line--;
    }
    if (end == line || (size_t)(end - line) >= sizeof(buf)) {
        return BL_EINVAL;
    }
    memcpy(buf, line, (size_t)(end - line));
    buf[end - line] = '\0';
    p = buf;
    if (sscanf(p, "%127s %299s %7s", n1, a1, extra) != 2) {
        return BL_EINVAL;
    }
    if (!ctl_valid_node_name(n1) || bl_net_parse_addr(a1, &ss, &sl) != 0) {
        return BL_EINVAL;
    }
    if (strlen(n1) >= namelen || strlen(a1) >= addrlen) {
        return BL_EINVAL;
    }
    snprintf(name, namelen, "%s", n1);
    snprintf(addr, addrlen, "%s", a1);
    return 0;
}
