/*
 * blog-ctld's pieces without a cluster: the scaling decision as a pure function over time
 * series (tolerance, stabilization windows, cooldown, clamping), the hook runner, the
 * scale_up answer parser and the state file.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bl/bl_err.h"
#include "ctl_ctld.h"
#include "ctl_hook.h"
#include "ctl_scale.h"

static struct ctl_scale_params
params(uint32_t min, uint32_t max, double target, double tol, uint64_t up, uint64_t down,
       uint64_t cool)
{
    struct ctl_scale_params p = { .min = min, .max = max, .target_rps_per_node = target,
                                  .tolerance = tol, .up_window_ms = up, .down_window_ms = down,
                                  .cooldown_ms = cool };
    return p;
}

/* desired = ceil(rate / target), clamped; windows and cooldown off. */
static void
test_raw_and_clamp(void **state)
{
    struct ctl_scale_params p = params(2, 6, 100, 0, 0, 0, 0);
    struct ctl_scale *s = malloc(sizeof(*s));
    struct ctl_scale_decision d;

    (void)state;
    ctl_scale_init(s, &p);
    ctl_scale_observe(s, 1000, 450, 2, &d);
    assert_int_equal(d.raw, 5);
    assert_int_equal(d.desired, 5);
    assert_int_equal(d.action, CTL_SCALE_UP);
    assert_string_equal(d.reason, "scale_up");
    ctl_scale_observe(s, 2000, 100000, 5, &d);
    assert_int_equal(d.desired, 6);                 /* max */
    ctl_scale_observe(s, 3000, 0, 6, &d);
    assert_int_equal(d.desired, 2);                 /* min */
    assert_int_equal(d.action, CTL_SCALE_DOWN);
    ctl_scale_observe(s, 4000, 0, 1, &d);           /* below min at zero load */
    assert_int_equal(d.desired, 2);
    assert_string_equal(d.reason, "below_min");
    ctl_scale_observe(s, 5000, -5, 2, &d);          /* negative rate counts as 0 */
    assert_int_equal(d.desired, 2);
    assert_int_equal(d.action, CTL_SCALE_NONE);
    ctl_scale_observe(s, 6000, 200, 2, &d);         /* exactly on target */
    assert_int_equal(d.desired, 2);
    assert_string_equal(d.reason, "within_tolerance");
    free(s);
}

/* No change while |rate / (current * target) - 1| <= tolerance. */
static void
test_tolerance(void **state)
{
    struct ctl_scale_params p = params(1, 10, 100, 0.1, 0, 0, 0);
    struct ctl_scale *s = malloc(sizeof(*s));
    struct ctl_scale_decision d;

    (void)state;
    ctl_scale_init(s, &p);
    ctl_scale_observe(s, 1000, 330, 3, &d);         /* ratio 1.1: inside */
    assert_int_equal(d.desired, 3);
    assert_string_equal(d.reason, "within_tolerance");
    ctl_scale_observe(s, 2000, 271, 3, &d);         /* ratio 0.903: inside */
    assert_int_equal(d.desired, 3);
    ctl_scale_observe(s, 3000, 340, 3, &d);         /* 1.133: outside -> ceil(3.4) = 4 */
    assert_int_equal(d.desired, 4);
    ctl_scale_observe(s, 4000, 260, 3, &d);         /* 0.867: outside -> 3 (ceil 2.6) */
    assert_int_equal(d.desired, 3);
    assert_int_equal(d.action, CTL_SCALE_NONE);
    ctl_scale_observe(s, 5000, 190, 3, &d);         /* 0.633 -> 2 */
    assert_int_equal(d.desired, 2);
    free(s);
}

/* Scale-up uses the minimum over up_window: a short spike does not scale up. */
static void
test_up_window(void **state)
{
    struct ctl_scale_params p = params(2, 10, 50, 0, 1000, 0, 0);
    struct ctl_scale *s = malloc(sizeof(*s));
    struct ctl_scale_decision d;

    (void)state;
    ctl_scale_init(s, &p);
    ctl_scale_observe(s, 0, 100, 2, &d);
    assert_int_equal(d.desired, 2);
    ctl_scale_observe(s, 500, 400, 2, &d);          /* raw 8, but 2 within the last 1 s */
    assert_int_equal(d.raw, 8);
    assert_int_equal(d.desired, 2);
    assert_string_equal(d.reason, "up_stabilizing");
    ctl_scale_observe(s, 1000, 300, 2, &d);         /* window holds 2 (t=0), 8, 6 */
    assert_int_equal(d.desired, 2);
    ctl_scale_observe(s, 1501, 350, 2, &d);         /* t=0 left: min(8, 6, 7) = 6 */
    assert_int_equal(d.desired, 6);
    assert_int_equal(d.action, CTL_SCALE_UP);
    free(s);
}

/* Scale-down uses the maximum over down_window: a short dip does not scale down. */
static void
test_down_window(void **state)
{
    struct ctl_scale_params p = params(2, 10, 50, 0, 0, 3000, 0);
    struct ctl_scale *s = malloc(sizeof(*s));
    struct ctl_scale_decision d;
    uint64_t t = 0;

    (void)state;
    ctl_scale_init(s, &p);
    ctl_scale_observe(s, t, 250, 5, &d);            /* raw 5 */
    assert_int_equal(d.desired, 5);
    for (t = 500; t <= 3000; t += 500) {
        ctl_scale_observe(s, t, 0, 5, &d);          /* raw 2, but 5 is within 3 s */
        assert_int_equal(d.desired, 5);
        assert_string_equal(d.reason, "down_stabilizing");
    }
    ctl_scale_observe(s, 3500, 0, 5, &d);           /* t=0 left the window */
    assert_int_equal(d.desired, 2);
    assert_int_equal(d.action, CTL_SCALE_DOWN);
    /* a dip back up inside the window holds the count at that level */
    ctl_scale_observe(s, 4000, 150, 2, &d);         /* raw 3: up (window 0) */
    assert_int_equal(d.desired, 3);
    ctl_scale_observe(s, 4500, 0, 3, &d);
    assert_int_equal(d.desired, 3);
    free(s);
}

static void
test_cooldown(void **state)
{
    struct ctl_scale_params p = params(1, 10, 100, 0, 0, 0, 1000);
    struct ctl_scale *s = malloc(sizeof(*s));
    struct ctl_scale_decision d;

    (void)state;
    ctl_scale_init(s, &p);
    ctl_scale_observe(s, 0, 300, 1, &d);
    assert_int_equal(d.action, CTL_SCALE_UP);       /* no event yet: no cooldown */
    ctl_scale_event(s, 100);
    ctl_scale_observe(s, 500, 600, 3, &d);
    assert_int_equal(d.desired, 6);
    assert_int_equal(d.action, CTL_SCALE_NONE);
    assert_string_equal(d.reason, "cooldown");
    ctl_scale_observe(s, 1099, 600, 3, &d);
    assert_int_equal(d.action, CTL_SCALE_NONE);
    ctl_scale_observe(s, 1100, 600, 3, &d);
    assert_int_equal(d.action, CTL_SCALE_UP);
    free(s);
}

/*
 * A load hovering around the threshold of 2 nodes (target 50/node, tolerance 0.1): rates
 * alternate 95..115 every 500 ms for 10 s with the test's windows (up 1 s, down 3 s,
 * cooldown 1 s). The count may settle, but must not flap: at most one change.
 */
static void
test_no_flap(void **state)
{
    struct ctl_scale_params p = params(2, 6, 50, 0.1, 1000, 3000, 1000);
    struct ctl_scale *s = malloc(sizeof(*s));
    struct ctl_scale_decision d;
    static const double rates[] = { 95, 105, 110, 98, 115, 92, 108, 101 };
    uint32_t current = 2;
    int changes = 0;

    (void)state;
    ctl_scale_init(s, &p);
    for (int i = 0; i <= 20; i++) {
        uint64_t t = (uint64_t)i * 500;

        ctl_scale_observe(s, t, rates[i % 8], current, &d);
        if (d.action != CTL_SCALE_NONE) {
            current = d.desired;
            ctl_scale_event(s, t);
            changes++;
        }
    }
    assert_true(changes <= 1);
    /* and a load that alternates across a wide band: the down window keeps the high count */
    ctl_scale_init(s, &p);
    current = 2;
    changes = 0;
    for (int i = 0; i <= 20; i++) {
        uint64_t t = (uint64_t)i * 500;

        ctl_scale_observe(s, t, (i / 2) % 2 ? 40 : 160, current, &d);
        if (d.action != CTL_SCALE_NONE) {
            current = d.desired;
            ctl_scale_event(s, t);
            changes++;
        }
    }
    assert_int_equal(changes, 1);                   /* up once, never down */
    assert_int_equal(current, 4);
    free(s);
}

/* A load step: 2 -> 5 after the up window, back to 2 after the down window. */
static void
test_load_step(void **state)
{
    struct ctl_scale_params p = params(2, 6, 50, 0.1, 1000, 3000, 1000);
    struct ctl_scale *s = malloc(sizeof(*s));
    struct ctl_scale_decision d;
    uint32_t current = 2;
    uint64_t up_at = 0, down_at = 0;

    (void)state;
    ctl_scale_init(s, &p);
    for (uint64_t t = 0; t <= 12000; t += 500) {
        double rate = t >= 1000 && t < 5000 ? 240 : 10;

        ctl_scale_observe(s, t, rate, current, &d);
        if (d.action == CTL_SCALE_UP) {
            current = d.desired;
            up_at = t;
            ctl_scale_event(s, t);
        } else if (d.action == CTL_SCALE_DOWN) {
            current = d.desired;
            down_at = t;
            ctl_scale_event(s, t);
        }
    }
    assert_int_equal(up_at, 2000);                  /* 1 s of high load seen */
    assert_int_equal(down_at, 8000);                /* 3 s of low load after 5.0 s */
    assert_int_equal(current, 2);
    free(s);
}

static void
test_history_bounded(void **state)
{
    struct ctl_scale_params p = params(1, 100, 10, 0, 24ull * 3600 * 1000,
                                       24ull * 3600 * 1000, 0);
    struct ctl_scale *s = malloc(sizeof(*s));
    struct ctl_scale_decision d;

    (void)state;
    ctl_scale_init(s, &p);
    for (uint64_t i = 0; i < 3 * CTL_SCALE_HISTORY; i++) {
        ctl_scale_observe(s, i, (double)(i % 7) * 10, 3, &d);
        assert_true(s->n <= CTL_SCALE_HISTORY);
    }
    free(s);
}

static void
test_hook_run(void **state)
{
    struct ctl_hook_result r;
    const char *args[] = { "n9", "127.0.0.1:9209", NULL };
    const char *env[] = { "BLOGSCALE_CLUSTER=testc", NULL };
    int rc;

    (void)state;
    ctl_hook_result_init(&r);
    rc = ctl_hook_run("echo \"$BLOGSCALE_CLUSTER\"; echo warn >&2; printf '%s|' ", args, env,
                      5000, &r);
    assert_int_equal(rc, 0);
    assert_string_equal(r.out.data, "testc\nn9|127.0.0.1:9209|");
    assert_string_equal(r.err.data, "warn\n");
    assert_true(r.exited);
    assert_int_equal(r.code, 0);

    {
        const char *env2[] = { "HOME=/nowhere", NULL };

        setenv("HOME", "/home/x", 1);
        rc = ctl_hook_run("echo \"$HOME\"", NULL, env2, 5000, &r);  /* ours win, once */
        assert_int_equal(rc, 0);
        assert_string_equal(r.out.data, "/nowhere\n");
        rc = ctl_hook_run("env | grep -c '^HOME='", NULL, env2, 5000, &r);
        assert_string_equal(r.out.data, "1\n");
    }

    rc = ctl_hook_run("exit 3", NULL, NULL, 5000, &r);
    assert_int_equal(rc, -EIO);
    assert_int_equal(r.code, 3);

    /* timeout: the whole group is killed, within the grace period */
    rc = ctl_hook_run("sleep 30; echo never", NULL, NULL, 300, &r);
    assert_int_equal(rc, -ETIMEDOUT);
    assert_true(r.timed_out);
    assert_true(r.seconds < 5);
    assert_true(r.out.data == NULL || strstr(r.out.data, "never") == NULL);

    /* a background child holding stdout does not make the runner wait */
    rc = ctl_hook_run("(sleep 5 &) ; echo spawned", NULL, NULL, 3000, &r);
    assert_int_equal(rc, 0);
    assert_true(r.seconds < 2.5);
    assert_non_null(strstr(r.out.data, "spawned"));

    rc = ctl_hook_run("/nonexistent/hook-xyz", NULL, NULL, 3000, &r);
    assert_int_equal(rc, -EIO);
    assert_int_equal(r.code, 127);
    ctl_hook_result_deinit(&r);
}

static void
test_parse_spawn(void **state)
{
    char name[65], addr[300];

    (void)state;
    assert_int_equal(ctl_hook_parse_spawn("auto-9201 127.0.0.1:9201\n", name, sizeof(name), addr,
                                          sizeof(addr)), 0);
    assert_string_equal(name, "auto-9201");
    assert_string_equal(addr, "127.0.0.1:9201");
    assert_int_equal(ctl_hook_parse_spawn("starting...\nn5  [::1]:9300\n\n", name, sizeof(name),
                                          addr, sizeof(addr)), 0);
    assert_string_equal(name, "n5");
    assert_string_equal(addr, "[::1]:9300");
    assert_int_equal(ctl_hook_parse_spawn("", name, sizeof(name), addr, sizeof(addr)), BL_EINVAL);
    assert_int_equal(ctl_hook_parse_spawn("n5\n", name, sizeof(name), addr, sizeof(addr)),
                     BL_EINVAL);
    assert_int_equal(ctl_hook_parse_spawn("n5 127.0.0.1:9201 extra\n", name, sizeof(name), addr,
                                          sizeof(addr)), BL_EINVAL);
    assert_int_equal(ctl_hook_parse_spawn("bad/name 127.0.0.1:1\n", name, sizeof(name), addr,
                                          sizeof(addr)), BL_EINVAL);
    assert_int_equal(ctl_hook_parse_spawn("n5 nohost\n", name, sizeof(name), addr, sizeof(addr)),
                     BL_EINVAL);
}

static void
test_state_file(void **state)
{
    char dir[] = "/tmp/test_ctl_scale.XXXXXX", path[200], err[600];
    struct ctld_state st, back;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ctld.json", dir);
    ctld_state_init(&st);
    ctld_state_init(&back);
    assert_int_equal(ctld_state_load(path, &back, err, sizeof(err)), 0);   /* missing: empty */
    assert_int_equal(back.n, 0);
    ctld_state_put(&st, "auto-9201", "127.0.0.1:9201", "starting", 1000);
    ctld_state_put(&st, "auto-9202", "127.0.0.1:9202", "active", 2000);
    ctld_state_put(&st, "auto-9201", "127.0.0.1:9201", "active", 3000);    /* update */
    assert_int_equal(st.n, 2);
    assert_int_equal(ctld_state_save(path, &st, "c1", err, sizeof(err)), 0);
    assert_int_equal(ctld_state_load(path, &back, err, sizeof(err)), 0);
    assert_int_equal(back.n, 2);
    assert_string_equal(ctld_state_find(&back, "auto-9201")->phase, "active");
    assert_int_equal(ctld_state_find(&back, "auto-9201")->since_ms, 1000);
    ctld_state_del(&back, "auto-9201");
    assert_null(ctld_state_find(&back, "auto-9201"));
    assert_int_equal(back.n, 1);
    {
        char tmp[220];

        snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
        assert_int_not_equal(access(tmp, F_OK), 0);                        /* renamed away */
    }
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"nodes\":[{\"name\":1}]}", f);
    fclose(f);
    assert_int_equal(ctld_state_load(path, &back, err, sizeof(err)), BL_EPARSE);
    f = fopen(path, "w");
    fputs("{not json", f);
    fclose(f);
    assert_int_equal(ctld_state_load(path, &back, err, sizeof(err)), BL_EPARSE);
    assert_non_null(strstr(err, path));
    unlink(path);
    rmdir(dir);
    ctld_state_deinit(&st);
    ctld_state_deinit(&back);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_and_clamp),  cmocka_unit_test(test_tolerance),
        cmocka_unit_test(test_up_window),      cmocka_unit_test(test_down_window),
        cmocka_unit_test(test_cooldown),       cmocka_unit_test(test_no_flap),
        cmocka_unit_test(test_load_step),      cmocka_unit_test(test_history_bounded),
        cmocka_unit_test(test_hook_run),       cmocka_unit_test(test_parse_spawn),
        cmocka_unit_test(test_state_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
