/* limits.rate_per_ip token buckets: burst, refill, independence, concurrency. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lb_ratelimit.h"

static void
test_off(void **state)
{
    (void)state;
    assert_null(lb_ratelimit_create(0));
    lb_ratelimit_destroy(NULL);
}

static void
test_burst_and_refill(void **state)
{
    struct lb_ratelimit *rl = lb_ratelimit_create(10);
    const char *ip = "192.0.2.1";
    int ok = 0;

    (void)state;
    assert_non_null(rl);
    for (int i = 0; i < 20; i++) {
        ok += lb_ratelimit_take(rl, ip, strlen(ip), 5000);
    }
    assert_int_equal(ok, 10);                              /* a burst of one second */
    assert_int_equal(lb_ratelimit_take(rl, ip, strlen(ip), 5050), 0);   /* 0.5 token */
    assert_int_equal(lb_ratelimit_take(rl, ip, strlen(ip), 5100), 1);   /* 1 token after 100 ms */
    assert_int_equal(lb_ratelimit_take(rl, ip, strlen(ip), 5100), 0);
    ok = 0;
    for (int i = 0; i < 20; i++) {
        ok += lb_ratelimit_take(rl, ip, strlen(ip), 60000);  /* long idle: full bucket only */
    }
    assert_int_equal(ok, 10);
    /* another client is not affected */
    assert_int_equal(lb_ratelimit_take(rl, "192.0.2.2", 9, 60000), 1);
    lb_ratelimit_destroy(rl);
}

struct worker {
    struct lb_ratelimit *rl;
    atomic_int *ok;
};

static void *
hammer(void *arg)
{
    struct worker *w = arg;

    for (int i = 0; i < 10000; i++) {
        if (lb_ratelimit_take(w->rl, "198.51.100.7", 12, 1000)) {
            atomic_fetch_add(w->ok, 1);
        }
    }
    return NULL;
}

static void
test_threads(void **state)
{
    struct lb_ratelimit *rl = lb_ratelimit_create(500);
    atomic_int ok = 0;
    struct worker w = { rl, &ok };
    pthread_t t[4];

    (void)state;
    for (int i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, hammer, &w);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    assert_int_equal(atomic_load(&ok), 500);    /* exactly the burst: no token lost or doubled */
    lb_ratelimit_destroy(rl);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_burst_and_refill),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
