/*
 * Unit tests of the growable buffer: appends, printf, JSON string escaping, steal, and
 * reserve() refusing sizes that would wrap around.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bl/bl_buf.h"

static void
test_init_and_append(void **state)
{
    struct bl_buf b;

    (void)state;
    bl_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    assert_int_equal(bl_buf_append(&b, "hello", 5), 0);
    assert_int_equal(b.len, 5);
    assert_true(b.cap > b.len);
    assert_string_equal(b.data, "hello");       /* NUL-terminated */
    assert_int_equal(bl_buf_append_str(&b, ", world"), 0);
    assert_string_equal(b.data, "hello, world");
    assert_int_equal(bl_buf_append(&b, "ignored", 0), 0);
    assert_int_equal(b.len, 12);
    assert_string_equal(b.data, "hello, world");

    /* bytes, embedded NULs included, are kept as given */
    assert_int_equal(bl_buf_append(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 15);
    assert_memory_equal(b.data + 12, "a\0b", 4);

    bl_buf_deinit(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    bl_buf_deinit(&b);                  /* twice is harmless */
}

static void
test_growth(void **state)
{
    struct bl_buf b;
    char expect[10001];

    (void)state;
    bl_buf_init(&b);
    for (int i = 0; i < 10000; i++) {
        char c = (char)('a' + i % 26);

        expect[i] = c;
        assert_int_equal(bl_buf_append(&b, &c, 1), 0);
        assert_true(b.cap >= b.len + 1);
        assert_int_equal(b.data[b.len], '\0');
    }
    expect[10000] = '\0';
    assert_int_equal(b.len, 10000);
    assert_string_equal(b.data, expect);
    bl_buf_deinit(&b);
}

static void
test_reset_keeps_allocation(void **state)
{
    struct bl_buf b;
    char *data;
    size_t cap;

    (void)state;
    bl_buf_init(&b);
    bl_buf_reset(&b);                   /* on an empty buffer */
    assert_null(b.data);
    assert_int_equal(bl_buf_append_str(&b, "some text"), 0);
    data = b.data;
    cap = b.cap;
    bl_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "");
    assert_int_equal(bl_buf_append_str(&b, "new"), 0);
    assert_string_equal(b.data, "new");
    bl_buf_deinit(&b);
}

static int
call_vprintf(struct bl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
call_vprintf(struct bl_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = bl_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

static void
test_printf(void **state)
{
    struct bl_buf b;
    char big[5000];

    (void)state;
    bl_buf_init(&b);
    assert_int_equal(bl_buf_printf(&b, "%d-%s-%.2f", 42, "x", 1.5), 0);
    assert_string_equal(b.data, "42-x-1.50");
    assert_int_equal(b.len, 9);
    assert_int_equal(bl_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 9);
    assert_int_equal(call_vprintf(&b, "|%05u|", 7u), 0);
    assert_string_equal(b.data, "42-x-1.50|00007|");

    /* longer than the current capacity: one growth, whole output */
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(bl_buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 16 + 2 + sizeof(big) - 1);
    assert_int_equal(b.data[16], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    bl_buf_deinit(&b);

    /* printf as the first operation gives a string */
    bl_buf_init(&b);
    assert_int_equal(bl_buf_printf(&b, "%s", ""), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    bl_buf_deinit(&b);
}

/* Escapes <n> bytes of <s> into a fresh buffer and compares with <expect>. */
static void
check_json(const char *s, size_t n, const char *expect)
{
    struct bl_buf b;

    bl_buf_init(&b);
    assert_int_equal(bl_buf_append_json_str(&b, s, n), 0);
    assert_string_equal(b.data, expect);
    assert_int_equal(b.len, strlen(expect));
    bl_buf_deinit(&b);
}

static void
test_json_escaping(void **state)
{
    struct bl_buf b;

    (void)state;
    check_json("", 0, "\"\"");
    check_json("plain text", 10, "\"plain text\"");
    check_json("q\"b\\s/", 6, "\"q\\\"b\\\\s/\"");
    check_json("\n\r\t", 3, "\"\\n\\r\\t\"");
    check_json("\x01\x08\x0c\x1f", 4, "\"\\u0001\\u0008\\u000c\\u001f\"");
    check_json("a\0b", 3, "\"a\\u0000b\"");                    /* n, not strlen */
    check_json("\x7f", 1, "\"\x7f\"");                          /* DEL needs no escape */
    check_json("\xc3\xa9\xe2\x82\xac", 5, "\"\xc3\xa9\xe2\x82\xac\"");  /* UTF-8 kept */
    check_json("only part", 4, "\"only\"");

    /* every byte escaped (worst case: 6 output bytes per input byte) */
    {
        char in[300], expect[300 * 6 + 3];
        char *p = expect;

        *p++ = '"';
        for (int i = 0; i < 300; i++) {
            in[i] = '\x02';
            memcpy(p, "\\u0002", 6);
            p += 6;
        }
        *p++ = '"';
        *p = '\0';
        check_json(in, sizeof(in), expect);
    }

    /* appends after what is there */
    bl_buf_init(&b);
    assert_int_equal(bl_buf_append_str(&b, "{\"k\":"), 0);
    assert_int_equal(bl_buf_append_json_str(&b, "v\"", 2), 0);
    assert_int_equal(bl_buf_append_str(&b, "}"), 0);
    assert_string_equal(b.data, "{\"k\":\"v\\\"\"}");
    bl_buf_deinit(&b);
}

static void
test_steal(void **state)
{
    struct bl_buf b;
    size_t len = 99;
    char *p;

    (void)state;
    bl_buf_init(&b);
    p = bl_buf_steal(&b, &len);         /* nothing to steal */
    assert_null(p);
    assert_int_equal(len, 0);

    assert_int_equal(bl_buf_append_str(&b, "mine now"), 0);
    p = bl_buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 8);
    assert_string_equal(p, "mine now");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    /* the buffer is usable again and independent of the stolen bytes */
    assert_int_equal(bl_buf_append_str(&b, "other"), 0);
    assert_string_equal(p, "mine now");
    assert_string_equal(b.data, "other");
    free(p);

    p = bl_buf_steal(&b, NULL);         /* len is optional */
    assert_string_equal(p, "other");
    free(p);
    bl_buf_deinit(&b);
}

static void
test_reserve(void **state)
{
    struct bl_buf b;
    char *data;

    (void)state;
    bl_buf_init(&b);
    assert_int_equal(bl_buf_reserve(&b, 0), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");    /* a first allocation by reserve is a string */
    assert_int_equal(bl_buf_reserve(&b, 1000), 0);
    assert_true(b.cap >= 1001);
    data = b.data;
    /* reserved room is used without reallocating */
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(bl_buf_append(&b, "x", 1), 0);
    }
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.len, 1000);
    bl_buf_deinit(&b);
}

static void
test_reserve_overflow(void **state)
{
    struct bl_buf b;
    size_t cap;
    char *data;

    (void)state;
    bl_buf_init(&b);
    assert_int_equal(bl_buf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_null(b.data);
    assert_int_equal(bl_buf_append_str(&b, "keep me"), 0);
    cap = b.cap;
    data = b.data;

    /* len + extra + 1 would wrap around: refused, the contents untouched */
    assert_int_equal(bl_buf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_int_equal(bl_buf_reserve(&b, SIZE_MAX - b.len), -ENOMEM);
    assert_int_equal(bl_buf_append(&b, "x", SIZE_MAX), -ENOMEM);
    assert_int_equal(bl_buf_append(&b, "x", SIZE_MAX - 3), -ENOMEM);
    assert_int_equal(b.len, 7);
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.data, data);
    assert_string_equal(b.data, "keep me");

    /* still fully usable */
    assert_int_equal(bl_buf_append_str(&b, "!"), 0);
    assert_string_equal(b.data, "keep me!");
    bl_buf_deinit(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_append),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_reset_keeps_allocation),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_reserve_overflow),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
