/*
 * libFuzzer target for blog-node's request validation (node_json_parse_post, jansson plus
 * the DESIGN §4 rules), the hand-written renderers that answer with what it accepted
 * (node_json_render_post, node_json_render_error), and the header parsers of node_json
 * (media types, If-Match, If-None-Match). The input is a request body, as is; the header
 * parsers get it up to its first NUL. Seeds: tests/fuzz/corpus/node_json/.
 *
 * Checks, besides ASan/UBSan and LeakSanitizer:
 * - the result is 0, BL_EINVAL (with a known snake_case code and a non-empty message, and
 *   nothing allocated in the post) or -ENOMEM;
 * - an accepted post obeys the rules: title 1-300 and author 1-100 characters, body at most
 *   the limit in bytes, at most 20 tags of 1-50 characters, all valid UTF-8 without NUL,
 *   and each field equals what an independent jansson decode of the input holds;
 * - the limit only matters for the body: the same input under a 16-byte body limit gives
 *   the same answer, or invalid_field when the body is longer than 16 bytes;
 * - the rendered post and the rendered error are valid JSON (jansson, strict) holding the
 *   same strings: the renderers escape everything correctly;
 * - media type: lowercase type/subtype with one '/', and is_json_type() implies it is
 *   application/json; If-Match naming version 7 of the id implies If-None-Match matches
 *   that ETag (strong match implies weak match), and "*" matches both.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bl/bl_buf.h"
#include "bl/bl_err.h"
#include "node_json.h"
#include "node_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BODY_MAX (1024 * 1024)          /* the default limits.post_body */
#define SMALL_MAX 16
#define TEST_ID "0123456789abcdef01234567"

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_node_json: invariant failed: %s (line %d)\n", #cond, \
                    __LINE__);                                                          \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static const char *const codes[] = {
    "invalid_json", "invalid_body", "forbidden_field", "unknown_field", "missing_field",
    "invalid_field", "internal",
};

static bool
known_code(const char *code)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (strcmp(code, codes[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool
post_is_empty(const struct node_post *p)
{
    return p->title == NULL && p->body == NULL && p->author == NULL && p->tags == NULL
           && p->ntags == 0;
}

/* <s> is a valid field value of <min>..<max> characters (max 0: no bound). */
static void
check_chars(const char *s, long min, long max)
{
    long n;

    CHECK(s != NULL);
    n = node_json_utf8_chars(s, strlen(s));
    CHECK(n >= min);
    CHECK(max == 0 || n <= max);
}

/* <v> is a JSON string with exactly the bytes of <s>. */
static void
check_same(json_t *v, const char *s)
{
    CHECK(json_is_string(v));
    CHECK(json_string_length(v) == strlen(s));
    CHECK(memcmp(json_string_value(v), s, strlen(s)) == 0);
}

/* The fields of <obj> (a decoded request or rendered post) are those of <p>. */
static void
check_fields(json_t *obj, const struct node_post *p, bool tags_required)
{
    json_t *tags;

    CHECK(json_is_object(obj));
    check_same(json_object_get(obj, "title"), p->title);
    check_same(json_object_get(obj, "body"), p->body);
    check_same(json_object_get(obj, "author"), p->author);
    tags = json_object_get(obj, "tags");
    if (tags == NULL) {
        CHECK(!tags_required && p->ntags == 0);
        return;
    }
    CHECK(json_is_array(tags) && json_array_size(tags) == p->ntags);
    for (size_t i = 0; i < p->ntags; i++) {
        check_same(json_array_get(tags, i), p->tags[i]);
    }
}

static void
check_accepted(const struct node_post *p, const uint8_t *data, size_t size)
{
    json_t *ref;
    struct bl_buf b;
    struct node_post r = *p;
    json_t *out;

    check_chars(p->title, 1, NODE_TITLE_MAX);
    check_chars(p->author, 1, NODE_AUTHOR_MAX);
    check_chars(p->body, 0, 0);
    CHECK(strlen(p->body) <= BODY_MAX);
    CHECK(p->ntags <= NODE_MAX_TAGS);
    CHECK(p->ntags == 0 || p->tags != NULL);
    for (size_t i = 0; i < p->ntags; i++) {
        check_chars(p->tags[i], 1, NODE_TAG_MAX);
    }

    /* an independent decode holds the same strings */
    ref = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    CHECK(ref != NULL);
    check_fields(ref, p, false);
    json_decref(ref);

    /* the rendered post is strict JSON with the same strings */
    memcpy(r.id, TEST_ID, sizeof(r.id));
    r.created_ms = 1764288000123ull;
    r.updated_ms = 1764288000456ull;
    r.version = 7;
    bl_buf_init(&b);
    CHECK(node_json_render_post(&b, &r) == 0);
    out = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
    if (out == NULL) {
        fprintf(stderr, "fuzz_node_json: rendered post is not JSON: %.*s\n", (int)b.len,
                b.data);
    }
    CHECK(out != NULL);
    check_fields(out, p, true);
    CHECK(json_integer_value(json_object_get(out, "version")) == 7);
    json_decref(out);
    bl_buf_deinit(&b);
}

static void
check_error(const struct node_json_error *err)
{
    struct bl_buf b;
    json_t *out;
    json_t *e;

    CHECK(err->code != NULL && known_code(err->code));
    CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL);
    CHECK(err->message[0] != '\0');

    bl_buf_init(&b);
    CHECK(node_json_render_error(&b, err->code, err->message) == 0);
    out = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
    if (out == NULL) {
        fprintf(stderr, "fuzz_node_json: rendered error is not JSON: %.*s\n", (int)b.len,
                b.data);
    }
    CHECK(out != NULL);
    e = json_object_get(out, "error");
    CHECK(json_is_object(e));
    check_same(json_object_get(e, "code"), err->code);
    check_same(json_object_get(e, "message"), err->message);
    json_decref(out);
    bl_buf_deinit(&b);
}

static void
check_headers(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    char mt[64];
    uint64_t versions[8];
    size_t n = 99;
    bool any = false;
    bool has7 = false;
    int rc;

    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';

    if (node_json_media_type(s, mt, sizeof(mt)) == 0) {
        size_t len = strlen(mt);
        const char *slash = strchr(mt, '/');

        CHECK(len > 0 && len < sizeof(mt));
        CHECK(slash != NULL && slash != mt && slash[1] != '\0' && strchr(slash + 1, '/') == NULL);
        for (size_t i = 0; i < len; i++) {
            CHECK(!(mt[i] >= 'A' && mt[i] <= 'Z'));
        }
    }
    if (node_json_is_json_type(s)) {
        CHECK(node_json_media_type(s, mt, sizeof(mt)) == 0);
        CHECK(strcmp(mt, "application/json") == 0);
    }

    rc = node_json_if_match(s, TEST_ID, versions, 8, &n, &any);
    CHECK(rc == 0 || rc == BL_EINVAL);
    if (rc == 0) {
        CHECK(n <= 8);
        for (size_t i = 0; i < n; i++) {
            has7 |= versions[i] == 7;
        }
        if (any || has7) {
            CHECK(node_json_none_match(s, "\"" TEST_ID "-7\""));
        }
    }
    /* weak comparison: W/ on our side changes nothing */
    CHECK(node_json_none_match(s, "\"" TEST_ID "-7\"")
          == node_json_none_match(s, "W/\"" TEST_ID "-7\""));
    free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct node_post p;
    struct node_post q;
    struct node_json_error err;
    struct node_json_error err2;
    int r;
    int r2;

    memset(&p, 0, sizeof(p));
    memset(&err, 0, sizeof(err));
    r = node_json_parse_post((const char *)data, size, BODY_MAX, &p, &err);
    CHECK(r == 0 || r == BL_EINVAL || r == -ENOMEM);
    if (r == 0) {
        check_accepted(&p, data, size);
    } else {
        CHECK(post_is_empty(&p));
        check_error(&err);
    }

    memset(&q, 0, sizeof(q));
    memset(&err2, 0, sizeof(err2));
    r2 = node_json_parse_post((const char *)data, size, SMALL_MAX, &q, &err2);
    if (r == 0 && strlen(p.body) <= SMALL_MAX) {
        CHECK(r2 == 0);
        CHECK(strcmp(p.title, q.title) == 0 && strcmp(p.body, q.body) == 0);
        CHECK(strcmp(p.author, q.author) == 0 && p.ntags == q.ntags);
    } else if (r == 0) {
        CHECK(r2 == BL_EINVAL && strcmp(err2.code, "invalid_field") == 0);
        CHECK(strstr(err2.message, "\"body\"") != NULL);
    } else if (r == BL_EINVAL) {
        CHECK(r2 == BL_EINVAL && strcmp(err.code, err2.code) == 0);
    }
    node_post_deinit(&q);
    node_post_deinit(&p);

    check_headers(data, size);
    return 0;
}
