/* Clocks, RFC 3339 formatting and the duration/size parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bl/bl_err.h"
#include "bl/bl_time.h"
#include "bl/bl_util.h"

static void
test_clocks(void **state)
{
    uint64_t a = bl_time_mono_ns();
    uint64_t b;
    uint64_t ms = bl_time_mono_ms();
    uint64_t real = bl_time_real_ms();
    struct timespec ts = { 0, 2 * 1000 * 1000 };

    nanosleep(&ts, NULL);
    b = bl_time_mono_ns();
    assert_true(b >= a + 2 * 1000 * 1000);
    assert_true(bl_time_mono_ms() >= ms + 2);
    /* After 2020-01-01 and before 2100-01-01: the clock is real ms, not s or us. */
    assert_true(real > 1577836800000ull);
    assert_true(real < 4102444800000ull);
    assert_true((uint64_t)time(NULL) * 1000 + 2000 >= real);
}

static void
check_rfc3339(uint64_t ms, const char *want)
{
    char out[BL_RFC3339_LEN];

    memset(out, 'x', sizeof(out));
    bl_time_rfc3339(ms, out);
    assert_string_equal(out, want);
    assert_int_equal(strlen(out), BL_RFC3339_LEN - 1);
}

static void
test_rfc3339(void **state)
{
    check_rfc3339(0, "1970-01-01T00:00:00.000Z");
    check_rfc3339(1, "1970-01-01T00:00:00.001Z");
    check_rfc3339(999, "1970-01-01T00:00:00.999Z");
    check_rfc3339(1000, "1970-01-01T00:00:01.000Z");
    /* 2000-02-29 (leap day of a century leap year) 12:34:56.789 */
    check_rfc3339(951827696789ull, "2000-02-29T12:34:56.789Z");
    /* 2026-11-28T00:00:00.123Z */
    check_rfc3339(1795824000123ull, "2026-11-28T00:00:00.123Z");
    /* last ms of 1999 */
    check_rfc3339(946684799999ull, "1999-12-31T23:59:59.999Z");
    /* 2038 (past 32-bit time_t) */
    check_rfc3339(2147483648000ull, "2038-01-19T03:14:08.000Z");
    /* the last representable instant, and clamping beyond it */
    check_rfc3339(BL_RFC3339_MAX_MS, "9999-12-31T23:59:59.999Z");
    check_rfc3339(BL_RFC3339_MAX_MS + 1, "9999-12-31T23:59:59.999Z");
    check_rfc3339(UINT64_MAX, "9999-12-31T23:59:59.999Z");
}

static void
test_duration_ok(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {
        { "0", 0 },
        { "0ms", 0 },
        { "0s", 0 },
        { "1ms", 1 },
        { "250ms", 250 },
        { "1s", 1000 },
        { "90s", 90000 },
        { "5m", 300000 },
        { "2h", 7200000 },
        { "007s", 7000 },
        { "18446744073709551615ms", UINT64_MAX },
        { "18446744073709551s", 18446744073709551000ull },
        { "5124095576030h", 5124095576030ull * 3600000ull },
    };

    for (size_t i = 0; i < BL_ARRAY_SIZE(ok); i++) {
        uint64_t v = 12345;

        if (bl_time_parse_duration_ms(ok[i].s, &v) != 0) {
            print_error("rejected %s\n", ok[i].s);
            fail();
        }
        assert_int_equal(v, ok[i].ms);
    }
}

static void
test_duration_bad(void **state)
{
    static const char *const bad[] = {
        "", "s", "ms", "5", "1000", "1.5s", "1,5s", ".5s", "-1s", "+1s", " 1s", "1s ", "1 s",
        "1S", "1sec", "1min", "1d", "1us", "1ns", "1hh", "1m1s", "0x10s", "1e3ms", "auto",
        "10msx",
    };
    static const char *const big[] = {
        "18446744073709551616ms", "18446744073709552s", "5124095576031h",
        "99999999999999999999999999h",
    };

    for (size_t i = 0; i < BL_ARRAY_SIZE(bad); i++) {
        uint64_t v = 777;

        if (bl_time_parse_duration_ms(bad[i], &v) != BL_EINVAL) {
            print_error("accepted or misclassified \"%s\"\n", bad[i]);
            fail();
        }
        assert_int_equal(v, 777);   /* untouched on failure */
    }
    for (size_t i = 0; i < BL_ARRAY_SIZE(big); i++) {
        uint64_t v = 777;

        if (bl_time_parse_duration_ms(big[i], &v) != BL_ETOOBIG) {
            print_error("\"%s\" should be too big\n", big[i]);
            fail();
        }
        assert_int_equal(v, 777);
    }
    /* An overflowing number with a bad unit is malformed, not too big. */
    assert_int_equal(bl_time_parse_duration_ms("99999999999999999999xs", &(uint64_t){ 0 }),
                     BL_EINVAL);
    assert_int_equal(bl_time_parse_duration_ms(NULL, &(uint64_t){ 0 }), BL_EINVAL);
}

static void
test_size_ok(void **state)
{
    static const struct {
        const char *s;
        uint64_t b;
    } ok[] = {
        { "0", 0 },
        { "512", 512 },
        { "512B", 512 },
        { "1KiB", 1024 },
        { "64KiB", 65536 },
        { "512MiB", 512ull << 20 },
        { "16GiB", 16ull << 30 },
        { "2TiB", 2ull << 40 },
        { "1kB", 1000 },
        { "1KB", 1000 },
        { "100MB", 100000000ull },
        { "3GB", 3000000000ull },
        { "4TB", 4000000000000ull },
        { "18446744073709551615", UINT64_MAX },
        { "16777215TiB", 16777215ull << 40 },
    };

    for (size_t i = 0; i < BL_ARRAY_SIZE(ok); i++) {
        uint64_t v = 12345;

        if (bl_parse_size(ok[i].s, &v) != 0) {
            print_error("rejected %s\n", ok[i].s);
            fail();
        }
        assert_int_equal(v, ok[i].b);
    }
}

static void
test_size_bad(void **state)
{
    static const char *const bad[] = {
        "", "B", "MiB", "1.5GiB", "-1", "+1", " 1KiB", "1 KiB", "1KiB ", "1kib", "1mb", "1Mb",
        "1K", "1M", "1G", "1Ki", "1KiBB", "1b", "0x100", "1e6", "lots",
    };
    static const char *const big[] = {
        "18446744073709551616", "16777216TiB", "18446744073709552KB",
        "99999999999999999999999GiB",
    };

    for (size_t i = 0; i < BL_ARRAY_SIZE(bad); i++) {
        uint64_t v = 777;

        if (bl_parse_size(bad[i], &v) != BL_EINVAL) {
            print_error("accepted or misclassified \"%s\"\n", bad[i]);
            fail();
        }
        assert_int_equal(v, 777);
    }
    for (size_t i = 0; i < BL_ARRAY_SIZE(big); i++) {
        uint64_t v = 777;

        if (bl_parse_size(big[i], &v) != BL_ETOOBIG) {
            print_error("\"%s\" should be too big\n", big[i]);
            fail();
        }
        assert_int_equal(v, 777);
    }
    assert_int_equal(bl_parse_size(NULL, &(uint64_t){ 0 }), BL_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_duration_ok),
        cmocka_unit_test(test_duration_bad),
        cmocka_unit_test(test_size_ok),
        cmocka_unit_test(test_size_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
