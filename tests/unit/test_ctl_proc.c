/* Unit tests of blogctl's child processes (ctl_proc): output prefixing, the tail kept for
 * the obituary, exit descriptions, exec failures reported synchronously, and stopping with
 * SIGTERM then SIGKILL. The children are /bin/sh one-liners. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bl/bl_time.h"
#include "ctl_proc.h"

static char *
slurp(FILE *f)
{
    long n;
    char *s;

    fflush(f);
    n = ftell(f);
    s = calloc(1, (size_t)n + 1);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    return s;
}

static void
collect(const char *line, void *arg)
{
    char *acc = arg;

    strcat(acc, line);
    strcat(acc, ";");
}

/* Pumps until <p> is reaped and its pipe closed, at most <ms>. */
static void
run_out(struct ctl_proc *p, int ms)
{
    uint64_t end = bl_time_mono_ms() + (uint64_t)ms;
    struct ctl_proc *v[1] = { p };

    while ((p->running || p->fd >= 0) && bl_time_mono_ms() < end) {
        ctl_proc_pump(v, 1, -1, 50);
    }
}

static void
test_output_and_exit(void **state)
{
    FILE *out = tmpfile();
    struct ctl_proc p;
    char *argv[] = { "/bin/sh", "-c",
                     "echo one; echo two >&2; printf 'no newline'; exit 3", NULL };
    char *text, tail[256] = "", how[128];

    (void)state;
    ctl_proc_init(&p, "n1", out);
    p.pad = 5;
    assert_int_equal(ctl_proc_start(&p, argv), 0);
    assert_true(p.pid > 0);
    run_out(&p, 5000);
    assert_false(ctl_proc_alive(&p));
    assert_true(WIFEXITED(p.status));
    assert_int_equal(WEXITSTATUS(p.status), 3);
    text = slurp(out);
    assert_string_equal(text, "n1    | one\nn1    | two\nn1    | no newline\n");
    free(text);
    ctl_proc_tail(&p, collect, tail);
    assert_string_equal(tail, "one;two;no newline;");
    ctl_proc_describe(p.status, how, sizeof(how));
    assert_string_equal(how, "exited with code 3");
    ctl_proc_deinit(&p);
    fclose(out);
}

static void
test_tail_keeps_last_lines(void **state)
{
    FILE *out = tmpfile();
    struct ctl_proc p;
    char *argv[] = { "/bin/sh", "-c", "i=1; while [ $i -le 25 ]; do echo l$i; i=$((i+1)); done",
                     NULL };
    char tail[512] = "";

    (void)state;
    ctl_proc_init(&p, "x", out);
    assert_int_equal(ctl_proc_start(&p, argv), 0);
    run_out(&p, 5000);
    ctl_proc_tail(&p, collect, tail);
    assert_string_equal(tail, "l16;l17;l18;l19;l20;l21;l22;l23;l24;l25;");
    ctl_proc_deinit(&p);
    fclose(out);
}

static void
test_exec_failure(void **state)
{
    FILE *out = tmpfile();
    struct ctl_proc p;
    char *argv[] = { "/nonexistent/blog-node", NULL };

    (void)state;
    ctl_proc_init(&p, "n1", out);
    assert_int_equal(ctl_proc_start(&p, argv), -ENOENT);
    assert_false(p.running);
    ctl_proc_deinit(&p);
    fclose(out);
}

/* Processes of group <pgid> that are not zombies (reparented zombies may linger). */
static int
live_in_group(pid_t pgid)
{
    int live = 0;

    for (int tries = 0; tries < 40; tries++) {
        FILE *ls = popen("ps -e -o pgid=,stat=", "r");
        char line[128];

        live = 0;
        assert_non_null(ls);
        while (fgets(line, sizeof(line), ls) != NULL) {
            long g;
            char st[16];

            if (sscanf(line, "%ld %15s", &g, st) == 2 && g == (long)pgid && st[0] != 'Z') {
                live++;
            }
        }
        pclose(ls);
        if (live == 0) {
            break;
        }
        usleep(50 * 1000);
    }
    return live;
}

static void
test_stop(void **state)
{
    FILE *out = tmpfile();
    struct ctl_proc a, b;
    struct ctl_proc *all[2] = { &a, &b };
    char *polite[] = { "/bin/sh", "-c", "trap 'echo bye; exit 0' TERM; echo ready; "
                       "while :; do sleep 0.05; done", NULL };
    char *stubborn[] = { "/bin/sh", "-c", "trap '' TERM; echo ready; "
                         "while :; do sleep 0.05; done", NULL };
    char how[128], tail[256] = "";
    uint64_t t0;

    (void)state;
    ctl_proc_init(&a, "a", out);
    ctl_proc_init(&b, "b", out);
    assert_int_equal(ctl_proc_start(&a, polite), 0);
    assert_int_equal(ctl_proc_start(&b, stubborn), 0);
    /* wait until both installed their traps */
    t0 = bl_time_mono_ms();
    while ((a.ntail == 0 || b.ntail == 0) && bl_time_mono_ms() - t0 < 5000) {
        ctl_proc_pump(all, 2, -1, 50);
    }
    assert_true(ctl_proc_alive(&a));
    assert_true(ctl_proc_stop(&a, all, 2, 3000));
    assert_false(a.running);
    ctl_proc_describe(a.status, how, sizeof(how));
    assert_string_equal(how, "exited with code 0");
    run_out(&a, 1000);
    ctl_proc_tail(&a, collect, tail);
    assert_string_equal(tail, "ready;bye;");
    /* ignores SIGTERM: killed after the timeout */
    t0 = bl_time_mono_ms();
    assert_false(ctl_proc_stop(&b, all, 2, 300));
    assert_true(bl_time_mono_ms() - t0 >= 300);
    assert_false(b.running);
    assert_true(WIFSIGNALED(b.status));
    assert_int_equal(WTERMSIG(b.status), SIGKILL);
    ctl_proc_describe(b.status, how, sizeof(how));
    assert_non_null(strstr(how, "killed by signal 9"));
    /* the process group is gone too: nothing of ours left running */
    assert_int_equal(live_in_group(b.pid), 0);
    /* stopping a stopped process is a no-op */
    assert_true(ctl_proc_stop(&a, NULL, 0, 100));
    ctl_proc_deinit(&a);
    ctl_proc_deinit(&b);
    fclose(out);
}

static void
test_wake_fd(void **state)
{
    int pfd[2];
    struct ctl_proc *none[1] = { NULL };

    (void)state;
    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(ctl_proc_pump(none, 0, pfd[0], 10), 0);
    assert_int_equal(write(pfd[1], "x", 1), 1);
    assert_int_equal(ctl_proc_pump(none, 0, pfd[0], 1000), 1);
    close(pfd[0]);
    close(pfd[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_and_exit),
        cmocka_unit_test(test_tail_keeps_last_lines),
        cmocka_unit_test(test_exec_failure),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_wake_fd),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
