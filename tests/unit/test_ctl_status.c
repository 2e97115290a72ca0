/* Unit tests of the Prometheus text helpers behind `blogctl status`, the redis URL parser
 * and the listener-address helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "ctl_cmd.h"

static const char *const scrape1 =
    "# HELP blog_node_requests_total HTTP requests\n"
    "# TYPE blog_node_requests_total counter\n"
    "blog_node_requests_total{route=\"post\",method=\"GET\",status=\"200\"} 10\n"
    "blog_node_requests_total{route=\"list\",method=\"GET\",status=\"200\"} 5\n"
    "blog_node_requests_total_other 1000\n"
    "blog_node_cache_coherent 1\n"
    "blog_node_request_duration_seconds_bucket{route=\"post\",le=\"0.001\"} 5\n"
    "blog_node_request_duration_seconds_bucket{route=\"post\",le=\"0.01\"} 10\n"
    "blog_node_request_duration_seconds_bucket{route=\"post\",le=\"+Inf\"} 10\n"
    "blog_node_request_duration_seconds_bucket{route=\"list\",le=\"0.001\"} 0\n"
    "blog_node_request_duration_seconds_bucket{route=\"list\",le=\"0.01\"} 0\n"
    "blog_node_request_duration_seconds_bucket{route=\"list\",le=\"+Inf\"} 0\n";

static const char *const scrape2 =
    "blog_node_requests_total{route=\"post\",method=\"GET\",status=\"200\"} 110\n"
    "blog_node_requests_total{route=\"list\",method=\"GET\",status=\"200\"} 5\n"
    "blog_node_request_duration_seconds_bucket{route=\"post\",le=\"0.001\"} 5\n"
    "blog_node_request_duration_seconds_bucket{route=\"post\",le=\"0.01\"} 10\n"
    "blog_node_request_duration_seconds_bucket{route=\"post\",le=\"+Inf\"} 10\n"
    "blog_node_request_duration_seconds_bucket{route=\"list\",le=\"0.001\"} 0\n"
    "blog_node_request_duration_seconds_bucket{route=\"list\",le=\"0.01\"} 100\n"
    "blog_node_request_duration_seconds_bucket{route=\"list\",le=\"+Inf\"} 100\n";

static void
test_prom_sum(void **state)
{
    double v = -1;

    (void)state;
    assert_true(ctl_prom_sum(scrape1, "blog_node_requests_total", &v));
    assert_true(v == 15.0);                 /* not the _other series */
    assert_true(ctl_prom_sum(scrape1, "blog_node_cache_coherent", &v));
    assert_true(v == 1.0);
    assert_false(ctl_prom_sum(scrape1, "blog_node_cache_hits_total", &v));
    assert_false(ctl_prom_sum(NULL, "x", &v));
    assert_false(ctl_prom_sum("garbage line\nblog_x{ 1\n", "blog_x", &v));
}

static void
test_prom_sum_label(void **state)
{
    const char *t = "blog_lb_node_up{node=\"n1\"} 1\n"
                    "blog_lb_node_up{node=\"n10\"} 0\n"
                    "blog_lb_node_up{pool=\"a\\\",node=\\\"n2\",node=\"n3\"} 1\n"
                    "blog_lb_node_inflight{node=\"n1\"} 4\n";
    double v = -1;

    (void)state;
    assert_true(ctl_prom_sum_label(t, "blog_lb_node_up", "node", "n1", &v));
    assert_true(v == 1.0);
    assert_true(ctl_prom_sum_label(t, "blog_lb_node_up", "node", "n10", &v));
    assert_true(v == 0.0);
    /* an escaped quote inside another label's value is not a label of its own */
    assert_false(ctl_prom_sum_label(t, "blog_lb_node_up", "node", "n2", &v));
    assert_true(ctl_prom_sum_label(t, "blog_lb_node_up", "node", "n3", &v));
    assert_false(ctl_prom_sum_label(t, "blog_lb_node_up", "node", "n4", &v));
    assert_false(ctl_prom_sum_label(NULL, "blog_lb_node_up", "node", "n1", &v));
}

static void
test_prom_quantile(void **state)
{
    double v = -1;

    (void)state;
    /* lifetime of scrape1: 10 obs, 5 <= 1ms, 5 in (1ms, 10ms]: p50 = 1 ms, p99 ~ 9.82 ms */
    assert_true(ctl_prom_quantile(NULL, scrape1, "blog_node_request_duration_seconds", 0.5, &v));
    assert_true(fabs(v - 0.001) < 1e-9);
    assert_true(ctl_prom_quantile(NULL, scrape1, "blog_node_request_duration_seconds", 0.99, &v));
    assert_true(fabs(v - (0.001 + 0.009 * (9.9 - 5) / 5)) < 1e-9);
    /* window between the scrapes: 100 new list obs in (1ms, 10ms] */
    assert_true(ctl_prom_quantile(scrape1, scrape2, "blog_node_request_duration_seconds", 0.5,
                                  &v));
    assert_true(fabs(v - (0.001 + 0.009 * 0.5)) < 1e-9);
    /* no observations in the window */
    assert_false(ctl_prom_quantile(scrape2, scrape2, "blog_node_request_duration_seconds", 0.99,
                                   &v));
    assert_false(ctl_prom_quantile(NULL, scrape1, "blog_lb_request_duration_seconds", 0.99, &v));
}

static void
test_redis_url(void **state)
{
    struct ctl_redis_url u;

    (void)state;
    assert_int_equal(ctl_redis_url_parse("redis://127.0.0.1:6390/0", &u), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_int_equal(ctl_redis_url_parse("redis://:s3cret@[::1]:7000/2", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.password, "s3cret");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 2);
    assert_int_equal(ctl_redis_url_parse("redis://localhost", &u), 0);
    assert_int_equal(u.port, 6379);
    assert_true(ctl_redis_url_parse("http://127.0.0.1:6379", &u) < 0);
    assert_true(ctl_redis_url_parse("redis://127.0.0.1:0", &u) < 0);
    assert_true(ctl_redis_url_parse("redis://127.0.0.1:6379/x", &u) < 0);
    assert_true(ctl_redis_url_parse("redis://", &u) < 0);
}

static void
test_addr_helpers(void **state)
{
    char out[300];

    (void)state;
    ctl_connect_addr("0.0.0.0:8080", out, sizeof(out));
    assert_string_equal(out, "127.0.0.1:8080");
    ctl_connect_addr("[::]:8080", out, sizeof(out));
    assert_string_equal(out, "[::1]:8080");
    ctl_connect_addr("10.1.2.3:80", out, sizeof(out));
    assert_string_equal(out, "10.1.2.3:80");
    assert_int_equal(ctl_edit_distance("stauts", "status"), 2);
    assert_int_equal(ctl_edit_distance("up", "up"), 0);
    assert_int_equal(ctl_edit_distance("", "ring"), 4);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prom_sum),
        cmocka_unit_test(test_prom_sum_label),
        cmocka_unit_test(test_prom_quantile),
        cmocka_unit_test(test_redis_url),
        cmocka_unit_test(test_addr_helpers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
