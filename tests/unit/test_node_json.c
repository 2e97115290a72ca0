/* Unit tests of node_json.c: post validation table, UTF-8 counting, media types, ETags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bl/bl_buf.h"
#include "bl/bl_err.h"
#include "bl/bl_time.h"

#include "node_json.h"
#include "node_store.h"

#define BODY_MAX 1000                   /* limits.post_body used by the table */

struct row {
    const char *name;
    const char *json;                   /* NULL: built by build_row() */
    size_t len;                         /* 0: strlen(json) */
    const char *code;                   /* NULL: must be accepted */
    const char *in_message;             /* substring of the message, or NULL */
};

static const struct row rows[] = {
    /* accepted */
    {"minimal", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"}", 0, NULL, NULL},
    {"empty body", "{\"title\":\"t\",\"body\":\"\",\"author\":\"a\"}", 0, NULL, NULL},
    {"tags", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[\"x\",\"y\"]}", 0, NULL, NULL},
    {"empty tags", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[]}", 0, NULL, NULL},
    {"whitespace", " \n{ \"title\" : \"t\" ,\"body\":\"b\",\"author\":\"a\" }\n ", 0, NULL, NULL},
    {"escaped pair", "{\"title\":\"\\ud83d\\ude00\",\"body\":\"b\",\"author\":\"a\"}", 0, NULL, NULL},
    {"raw 4-byte", "{\"title\":\"\xf0\x9f\x98\x80\",\"body\":\"b\",\"author\":\"a\"}", 0, NULL, NULL},
    {"key order free", "{\"author\":\"a\",\"body\":\"b\",\"title\":\"t\"}", 0, NULL, NULL},
    /* not JSON / not one object */
    {"empty", "", 0, "invalid_json", NULL},
    {"truncated", "{\"title\":\"t\",\"body\":", 0, "invalid_json", NULL},
    {"array top", "[{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"}]", 0, "invalid_body", NULL},
    {"string top", "\"x\"", 0, "invalid_json", NULL},
    {"number top", "42", 0, "invalid_json", NULL},
    {"null top", "null", 0, "invalid_json", NULL},
    {"two objects", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"}{}", 0, "invalid_json", NULL},
    {"trailing garbage", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"} x", 0, "invalid_json", NULL},
    {"trailing comma", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",}", 0, "invalid_json", NULL},
    {"single quotes", "{'title':'t'}", 0, "invalid_json", NULL},
    {"comment", "{/*c*/\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"duplicate key", "{\"title\":\"t\",\"title\":\"u\",\"body\":\"b\",\"author\":\"a\"}", 0,
     "invalid_json", "duplicate"},
    {"invalid utf-8 byte", "{\"title\":\"\xff\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"lone continuation", "{\"title\":\"\x80\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"overlong slash", "{\"title\":\"\xc0\xaf\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"overlong 3-byte", "{\"title\":\"\xe0\x80\xaf\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"utf-8 surrogate", "{\"title\":\"\xed\xa0\x80\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"above U+10FFFF", "{\"title\":\"\xf4\x90\x80\x80\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"truncated sequence", "{\"title\":\"\xe2\x82\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"lone surrogate escape", "{\"title\":\"\\ud800\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"NUL escape", "{\"title\":\"a\\u0000b\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"raw NUL", "{\"title\":\"a\0b\",\"body\":\"b\",\"author\":\"a\"}", 42, "invalid_json", NULL},
    {"raw control char", "{\"title\":\"a\tb\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json", NULL},
    {"huge integer", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[123456789012345678901234567890]}", 0,
     "invalid_json", NULL},
    {"huge real", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[1e99999]}", 0, "invalid_json", NULL},
    /* keys */
    {"unknown field", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"extra\":1}", 0, "unknown_field", "extra"},
    {"id not writable", "{\"id\":\"x\",\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"}", 0, "unknown_field", "\"id\""},
    {"version not writable", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"version\":3}", 0, "unknown_field", "version"},
    {"dollar key", "{\"$set\":{},\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"}", 0, "forbidden_field", "$set"},
    {"dollar key alone", "{\"$where\":\"1\"}", 0, "forbidden_field", "$where"},
    {"case matters", "{\"Title\":\"t\",\"body\":\"b\",\"author\":\"a\"}", 0, "unknown_field", "Title"},
    {"empty object", "{}", 0, "missing_field", "title"},
    {"missing body", "{\"title\":\"t\",\"author\":\"a\"}", 0, "missing_field", "body"},
    {"missing author", "{\"title\":\"t\",\"body\":\"b\"}", 0, "missing_field", "author"},
    /* types */
    {"title number", "{\"title\":1,\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_field", "title"},
    {"title null", "{\"title\":null,\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_field", "title"},
    {"body object", "{\"title\":\"t\",\"body\":{\"x\":\"y\"},\"author\":\"a\"}", 0, "invalid_field", "body"},
    {"author array", "{\"title\":\"t\",\"body\":\"b\",\"author\":[\"a\"]}", 0, "invalid_field", "author"},
    {"author bool", "{\"title\":\"t\",\"body\":\"b\",\"author\":true}", 0, "invalid_field", "author"},
    {"tags string", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":\"x\"}", 0, "invalid_field", "tags"},
    {"tags null", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":null}", 0, "invalid_field", "tags"},
    {"tag number", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[\"x\",1]}", 0, "invalid_field", "tags[1]"},
    {"nested object tag", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[{\"a\":{\"b\":[]}}]}", 0,
     "invalid_field", "tags[0]"},
    {"nested array tag", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[[\"x\"]]}", 0, "invalid_field", "tags[0]"},
    /* lengths (built) */
    {"title empty", "{\"title\":\"\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_field", "title"},
    {"author empty", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"\"}", 0, "invalid_field", "author"},
    {"tag empty", "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[\"\"]}", 0, "invalid_field", "tags[0]"},
    {"title 300 2-byte", NULL, 0, NULL, NULL},
    {"title 301 2-byte", NULL, 0, "invalid_field", "title"},
    {"title 299+emoji", NULL, 0, NULL, NULL},
    {"title 300+emoji", NULL, 0, "invalid_field", "title"},
    {"author 100", NULL, 0, NULL, NULL},
    {"author 101", NULL, 0, "invalid_field", "author"},
    {"tag 50 3-byte", NULL, 0, NULL, NULL},
    {"tag 51", NULL, 0, "invalid_field", "tags[0]"},
    {"20 tags", NULL, 0, NULL, NULL},
    {"21 tags", NULL, 0, "invalid_field", "tags"},
    {"body at limit", NULL, 0, NULL, NULL},
    {"body over limit", NULL, 0, "invalid_field", "body"},
    {"deep nesting", NULL, 0, "invalid_json", NULL},
};

static void
repeat(struct bl_buf *b, const char *s, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(bl_buf_append_str(b, s), 0);
    }
}

/* Builds the rows whose text is too long to write inline. */
static void
build_row(const char *name, struct bl_buf *b)
{
    const char *tail = "\",\"body\":\"b\",\"author\":\"a\"}";

    if (strncmp(name, "title ", 6) == 0) {
        bl_buf_append_str(b, "{\"title\":\"");
        if (strcmp(name, "title 300 2-byte") == 0) {
            repeat(b, "\xc3\xa9", 300);
        } else if (strcmp(name, "title 301 2-byte") == 0) {
            repeat(b, "\xc3\xa9", 301);
        } else if (strcmp(name, "title 299+emoji") == 0) {
            repeat(b, "x", 299);
            repeat(b, "\xf0\x9f\x98\x80", 1);
        } else {
            repeat(b, "x", 300);
            repeat(b, "\xf0\x9f\x98\x80", 1);
        }
        bl_buf_append_str(b, tail);
    } else if (strncmp(name, "author ", 7) == 0) {
        bl_buf_append_str(b, "{\"title\":\"t\",\"body\":\"b\",\"author\":\"");
        repeat(b, "\xe2\x82\xac", strcmp(name, "author 100") == 0 ? 100 : 101);
        bl_buf_append_str(b, "\"}");
    } else if (strncmp(name, "tag ", 4) == 0) {
        bl_buf_append_str(b, "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[\"");
        if (strcmp(name, "tag 50 3-byte") == 0) {
            repeat(b, "\xe2\x82\xac", 50);
        } else {
            repeat(b, "y", 51);
        }
        bl_buf_append_str(b, "\"]}");
    } else if (strstr(name, "tags") != NULL) {
        int n = strcmp(name, "20 tags") == 0 ? 20 : 21;

        bl_buf_append_str(b, "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[");
        for (int i = 0; i < n; i++) {
            bl_buf_printf(b, "%s\"t%d\"", i ? "," : "", i);
        }
        bl_buf_append_str(b, "]}");
    } else if (strncmp(name, "body ", 5) == 0) {
        bl_buf_append_str(b, "{\"title\":\"t\",\"author\":\"a\",\"body\":\"");
        /* 500 two-byte chars = 1000 bytes: the limit counts bytes */
        repeat(b, "\xc3\xa9", 500);
        if (strcmp(name, "body over limit") == 0) {
            repeat(b, "z", 1);
        }
        bl_buf_append_str(b, "\"}");
    } else if (strcmp(name, "deep nesting") == 0) {
        repeat(b, "[", 5000);
        repeat(b, "]", 5000);
    } else {
        fail_msg("no builder for %s", name);
    }
}

static void
test_table(void **state)
{
    assert_true(sizeof(rows) / sizeof(rows[0]) >= 40);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        struct bl_buf b;
        const char *json;
        size_t len;
        struct node_post p;
        struct node_json_error err;
        int rc;

        bl_buf_init(&b);
        if (r->json == NULL) {
            build_row(r->name, &b);
            json = b.data;
            len = b.len;
        } else {
            json = r->json;
            len = r->len ? r->len : strlen(r->json);
        }
        memset(&p, 0, sizeof(p));
        memset(&err, 0, sizeof(err));
        rc = node_json_parse_post(json, len, BODY_MAX, &p, &err);
        if (r->code == NULL) {
            if (rc != 0) {
                fail_msg("row '%s': rejected with %s: %s", r->name, err.code, err.message);
            }
            assert_non_null(p.title);
            assert_non_null(p.body);
            assert_non_null(p.author);
            node_post_deinit(&p);
        } else {
            if (rc != BL_EINVAL) {
                fail_msg("row '%s': expected %s, got rc %d", r->name, r->code, rc);
            }
            if (strcmp(err.code, r->code) != 0) {
                fail_msg("row '%s': expected %s, got %s (%s)", r->name, r->code, err.code,
                         err.message);
            }
            if (r->in_message != NULL && strstr(err.message, r->in_message) == NULL) {
                fail_msg("row '%s': message '%s' lacks '%s'", r->name, err.message,
                         r->in_message);
            }
            assert_null(p.title);
        }
        bl_buf_deinit(&b);
    }
}

static void
test_parse_values(void **state)
{
    const char *j = "{\"title\":\"T\\u00e9\",\"body\":\"line\\nnext\",\"author\":\"A\","
                    "\"tags\":[\"x\",\"\xe2\x82\xac\"]}";
    struct node_post p;
    struct node_json_error err;

    memset(&p, 0, sizeof(p));
    assert_int_equal(node_json_parse_post(j, strlen(j), BODY_MAX, &p, &err), 0);
    assert_string_equal(p.title, "T\xc3\xa9");
    assert_string_equal(p.body, "line\nnext");
    assert_string_equal(p.author, "A");
    assert_int_equal(p.ntags, 2);
    assert_string_equal(p.tags[0], "x");
    assert_string_equal(p.tags[1], "\xe2\x82\xac");
    node_post_deinit(&p);
}

static void
test_utf8_chars(void **state)
{
    assert_int_equal(node_json_utf8_chars("", 0), 0);
    assert_int_equal(node_json_utf8_chars("abc", 3), 3);
    assert_int_equal(node_json_utf8_chars("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9), 3);
    assert_int_equal(node_json_utf8_chars("a\0b", 3), -1);
    assert_int_equal(node_json_utf8_chars("\xc0\xaf", 2), -1);          /* overlong */
    assert_int_equal(node_json_utf8_chars("\xe0\x80\xaf", 3), -1);      /* overlong */
    assert_int_equal(node_json_utf8_chars("\xf0\x80\x80\xaf", 4), -1);  /* overlong */
    assert_int_equal(node_json_utf8_chars("\xed\xa0\x80", 3), -1);      /* surrogate */
    assert_int_equal(node_json_utf8_chars("\xf4\x90\x80\x80", 4), -1);  /* > U+10FFFF */
    assert_int_equal(node_json_utf8_chars("\xe2\x82", 2), -1);          /* truncated */
    assert_int_equal(node_json_utf8_chars("\x80", 1), -1);
    assert_int_equal(node_json_utf8_chars("\xf4\x8f\xbf\xbf", 4), 1);   /* U+10FFFF */
}

static void
test_media_types(void **state)
{
    char mt[64];

    assert_true(node_json_is_json_type("application/json"));
    assert_true(node_json_is_json_type("Application/JSON"));
    assert_true(node_json_is_json_type("application/json; charset=utf-8"));
    assert_true(node_json_is_json_type("application/json;charset=UTF-8"));
    assert_true(node_json_is_json_type("application/json; charset=\"utf-8\""));
    assert_false(node_json_is_json_type(NULL));
    assert_false(node_json_is_json_type(""));
    assert_false(node_json_is_json_type("text/plain"));
    assert_false(node_json_is_json_type("application/jsonx"));
    assert_false(node_json_is_json_type("application/json; charset=latin1"));
    assert_false(node_json_is_json_type("application/json; foo=bar"));
    assert_false(node_json_is_json_type("application/x-www-form-urlencoded"));
    assert_false(node_json_is_json_type("multipart/form-data; boundary=x"));

    assert_int_equal(node_json_media_type("Image/PNG; q=1", mt, sizeof(mt)), 0);
    assert_string_equal(mt, "image/png");
    assert_int_equal(node_json_media_type("image/png", mt, sizeof(mt)), 0);
    assert_int_not_equal(node_json_media_type("image", mt, sizeof(mt)), 0);
    assert_int_not_equal(node_json_media_type("/png", mt, sizeof(mt)), 0);
    assert_int_not_equal(node_json_media_type("image/png x", mt, sizeof(mt)), 0);
    assert_int_not_equal(node_json_media_type(NULL, mt, sizeof(mt)), 0);
}

static void
test_none_match(void **state)
{
    const char *etag = "\"0123456789abcdef01234567-3\"";

    assert_true(node_json_none_match("*", etag));
    assert_true(node_json_none_match("\"0123456789abcdef01234567-3\"", etag));
    assert_true(node_json_none_match("W/\"0123456789abcdef01234567-3\"", etag));   /* weak cmp */
    assert_true(node_json_none_match("\"a\", \"0123456789abcdef01234567-3\"", etag));
    assert_true(node_json_none_match(" ,\"x\" ,, W/\"0123456789abcdef01234567-3\" ", etag));
    assert_false(node_json_none_match("\"0123456789abcdef01234567-2\"", etag));
    assert_false(node_json_none_match("0123456789abcdef01234567-3", etag));         /* unquoted */
    assert_false(node_json_none_match("", etag));
    assert_false(node_json_none_match(NULL, etag));
}

static void
test_if_match(void **state)
{
    const char *id = "0123456789abcdef01234567";
    uint64_t v[4];
    size_t n;
    bool any;

    assert_int_equal(node_json_if_match("*", id, v, 4, &n, &any), 0);
    assert_true(any);
    assert_int_equal(n, 0);
    assert_int_equal(node_json_if_match("\"0123456789abcdef01234567-7\"", id, v, 4, &n, &any), 0);
    assert_false(any);
    assert_int_equal(n, 1);
    assert_int_equal(v[0], 7);
    /* strong comparison: weak tags never match */
    assert_int_equal(node_json_if_match("W/\"0123456789abcdef01234567-7\"", id, v, 4, &n, &any), 0);
    assert_int_equal(n, 0);
    /* other ids and foreign tags are skipped */
    assert_int_equal(node_json_if_match("\"ffffffffffffffffffffffff-7\", \"xyz\", "
                                        "\"0123456789abcdef01234567-9\"", id, v, 4, &n, &any), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0], 9);
    assert_int_equal(node_json_if_match("\"0123456789abcdef01234567-0\"", id, v, 4, &n, &any), 0);
    assert_int_equal(n, 0);
    assert_int_equal(node_json_if_match("\"0123456789abcdef01234567-99999999999999999999999\"",
                                        id, v, 4, &n, &any), 0);
    assert_int_equal(n, 0);
    assert_int_equal(node_json_if_match("\"0123456789abcdef01234567-1\", \"0123456789abcdef01234567-2\"",
                                        id, v, 4, &n, &any), 0);
    assert_int_equal(n, 2);
    assert_int_equal(node_json_if_match("\"unterminated", id, v, 4, &n, &any), BL_EINVAL);
    assert_int_equal(node_json_if_match("nope", id, v, 4, &n, &any), BL_EINVAL);
}

static void
test_render(void **state)
{
    char *tags[] = {"a\"b", "c"};
    struct node_post p = {
        .id = "0123456789abcdef01234567",
        .title = "T\n",
        .body = "",
        .author = "\xc3\xa9",
        .tags = tags,
        .ntags = 2,
        .created_ms = 1764288000123ull,
        .updated_ms = 1764288001000ull,
        .version = 12,
    };
    struct node_post_list l = {.posts = &p, .n = 1, .more = true};
    struct bl_buf b;
    char etag[NODE_ETAG_MAX];

    bl_buf_init(&b);
    assert_int_equal(node_json_render_post(&b, &p), 0);
    assert_string_equal(b.data,
                        "{\"id\":\"0123456789abcdef01234567\",\"title\":\"T\\n\",\"body\":\"\","
                        "\"author\":\"\xc3\xa9\",\"tags\":[\"a\\\"b\",\"c\"],"
                        "\"created_at\":\"2025-11-28T00:00:00.123Z\","
                        "\"updated_at\":\"2025-11-28T00:00:01.000Z\",\"version\":12}");
    bl_buf_reset(&b);
    assert_int_equal(node_json_render_list(&b, &l), 0);
    assert_non_null(strstr(b.data, "],\"next_cursor\":\"0123456789abcdef01234567\"}"));
    assert_int_equal(strncmp(b.data, "{\"posts\":[{\"id\":", 16), 0);
    bl_buf_reset(&b);
    l.more = false;
    assert_int_equal(node_json_render_list(&b, &l), 0);
    assert_non_null(strstr(b.data, "],\"next_cursor\":null}"));
    bl_buf_reset(&b);
    l.n = 0;
    assert_int_equal(node_json_render_list(&b, &l), 0);
    assert_string_equal(b.data, "{\"posts\":[],\"next_cursor\":null}");
    bl_buf_reset(&b);
    assert_int_equal(node_json_render_error(&b, "not_found", "no \"such\" post"), 0);
    assert_string_equal(b.data,
                        "{\"error\":{\"code\":\"not_found\",\"message\":\"no \\\"such\\\" post\"}}");
    bl_buf_deinit(&b);
    node_json_post_etag(p.id, 12, etag);
    assert_string_equal(etag, "\"0123456789abcdef01234567-12\"");
}

/* The hand-written time formatter agrees with bl_time_rfc3339() across the calendar. */
static void
test_render_times(void **state)
{
    uint64_t samples[] = {0, 1, 999, 86399999, 951782400000ull /* 2000-02-29 */,
                          4107542399999ull /* 2100-02-28T23:59:59.999 */, 4107542400000ull,
                          253402300799999ull /* 9999-12-31T23:59:59.999 */};
    uint64_t x = 88172645463325252ull;

    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]) + 2000; i++) {
        uint64_t ms;
        char want[BL_RFC3339_LEN], got[BL_RFC3339_LEN + 40];
        struct node_post p = {.id = "0123456789abcdef01234567", .title = "t", .body = "",
                              .author = "a", .version = 1};
        struct bl_buf b;
        const char *q;

        if (i < sizeof(samples) / sizeof(samples[0])) {
            ms = samples[i];
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ms = x % 253402300800000ull;
        }
        p.created_ms = p.updated_ms = ms;
        bl_time_rfc3339(ms, want);
        bl_buf_init(&b);
        assert_int_equal(node_json_render_post(&b, &p), 0);
        q = strstr(b.data, "\"created_at\":\"");
        assert_non_null(q);
        memcpy(got, q + 14, strlen(want));
        got[strlen(want)] = '\0';
        if (strcmp(got, want) != 0) {
            fail_msg("%llu: got %s want %s", (unsigned long long)ms, got, want);
        }
        bl_buf_deinit(&b);
    }
}

/* The 8-bytes-at-a-time escaper writes exactly what bl_buf_append_json_str() writes. */
static void
test_append_str(void **state)
{
    const char alphabet[] = "ab \"\\\n\r\t\x01\x1f\x7f\xc3\xa9/<>";
    uint64_t x = 0x9e3779b97f4a7c15ull;

    for (int round = 0; round < 3000; round++) {
        char s[80];
        size_t n;
        struct bl_buf a, b;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        n = (size_t)(x % sizeof(s));
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* mostly plain runs, sometimes a special byte */
            s[i] = (x % 7 == 0) ? alphabet[(x >> 8) % (sizeof(alphabet) - 1)] : (char)('a' + x % 26);
        }
        bl_buf_init(&a);
        bl_buf_init(&b);
        assert_int_equal(node_json_append_str(&a, s, n), 0);
        assert_int_equal(bl_buf_append_json_str(&b, s, n), 0);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        bl_buf_deinit(&a);
        bl_buf_deinit(&b);
    }
}

static void
test_request_limit(void **state)
{
    assert_true(node_json_request_limit(1 << 20) > (1 << 20));
    assert_true(node_json_request_limit(1 << 20) < 2 * (1 << 20));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_utf8_chars),
        cmocka_unit_test(test_media_types),
        cmocka_unit_test(test_none_match),
        cmocka_unit_test(test_if_match),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_render_times),
        cmocka_unit_test(test_append_str),
        cmocka_unit_test(test_request_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
