/*
 * Unit tests for lb_chunked: a table of valid and invalid chunked bodies, the same
 * result for a split at every offset and for byte-at-a-time feeding, and random valid
 * bodies in random pieces.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_chunked.h"
#include "lb_http.h"

#define DONE 1
#define MORE 0

struct ck_row {
    const char *name;
    const char *raw;
    int result;         /* DONE, MORE or an LB_HTTP_E* code */
    size_t consumed;    /* DONE: bytes of the body; errors: offset of the bad byte */
    uint64_t total;     /* decoded bytes counted */
    uint64_t max_body;  /* 0 = none */
    uint32_t max_line;  /* 0 = default */
    uint32_t max_trailers;
};

#define ROW(n, r, res, cons, tot) { .name = n, .raw = r, .result = res, .consumed = cons, .total = tot }

static const struct ck_row rows[] = {
    ROW("last chunk only", "0\r\n\r\n", DONE, 5, 0),
    ROW("one chunk", "5\r\nhello\r\n0\r\n\r\n", DONE, 15, 5),
    ROW("next message after the body", "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", DONE, 15, 5),
    ROW("hex both cases", "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", DONE, 35, 20),
    ROW("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", DONE, 20, 5),
    ROW("extensions", "5;foo=bar\r\nhello\r\n0;x\r\n\r\n", DONE, 25, 5),
    ROW("extension after BWS", "5 \t;foo\r\nhello\r\n0\r\n\r\n", DONE, 21, 5),
    ROW("quoted extension", "5;a=\"b c\"\r\nhello\r\n0\r\n\r\n", DONE, 23, 5),
    ROW("trailers", "0\r\nX-T: 1\r\nY:2\r\n\r\n", DONE, 18, 0),
    ROW("data with CR LF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", DONE, 14, 4),
    ROW("big chunk size, incomplete", "7fffffffffffffff\r\n", MORE, 18, UINT64_C(0x7fffffffffffffff)),
    ROW("incomplete data", "5\r\nhel", MORE, 6, 5),
    ROW("incomplete after chunk", "5\r\nhello\r\n", MORE, 10, 5),
    ROW("incomplete trailer", "0\r\nX: 1\r\n", MORE, 9, 0),
    ROW("incomplete final CR", "0\r\n\r", MORE, 4, 0),
    ROW("invalid hex", "g\r\n", LB_HTTP_ECHUNK_SIZE, 0, 0),
    ROW("empty size", "\r\n", LB_HTTP_ECHUNK_SIZE, 0, 0),
    ROW("negative size", "-5\r\n", LB_HTTP_ECHUNK_SIZE, 0, 0),
    ROW("0x prefix", "0x5\r\n", LB_HTTP_ECHUNK_SIZE, 1, 0),
    ROW("space inside size", "5 5\r\n", LB_HTTP_ECHUNK_SIZE, 2, 0),
    ROW("BWS without extension", "5 \r\nhello\r\n0\r\n\r\n", LB_HTTP_ECHUNK_SIZE, 2, 0),
    ROW("size 2^63", "8000000000000000\r\n", LB_HTTP_ECHUNK_SIZE, 15, 0),
    ROW("size overflow 2^64", "10000000000000000\r\n", LB_HTTP_ECHUNK_SIZE, 16, 0),
    ROW("missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", LB_HTTP_ECHUNK_CRLF, 8, 5),
    ROW("LF only after data", "5\r\nhello\n0\r\n\r\n", LB_HTTP_ECHUNK_CRLF, 8, 5),
    ROW("CR only after data", "5\r\nhello\r0\r\n\r\n", LB_HTTP_ECHUNK_CRLF, 9, 5),
    ROW("data longer than size", "3\r\nhello\r\n0\r\n\r\n", LB_HTTP_ECHUNK_CRLF, 6, 3),
    ROW("bare LF after size", "5\nhello\r\n0\r\n\r\n", LB_HTTP_ECRLF, 1, 0),
    ROW("bare CR after size", "5\rhello\r\n0\r\n\r\n", LB_HTTP_ECRLF, 2, 0),
    ROW("bare LF in extension", "5;a\nhello\r\n0\r\n\r\n", LB_HTTP_ECRLF, 3, 0),
    ROW("control char in extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", LB_HTTP_ECHUNK_EXT, 3, 0),
    ROW("trailer obs-fold", "0\r\nX: 1\r\n 2\r\n\r\n", LB_HTTP_ETRAILER, 9, 0),
    ROW("trailer space before colon", "0\r\nX : 1\r\n\r\n", LB_HTTP_ETRAILER, 4, 0),
    ROW("trailer without colon", "0\r\nX\r\n\r\n", LB_HTTP_ETRAILER, 4, 0),
    ROW("trailer empty name", "0\r\n: 1\r\n\r\n", LB_HTTP_ETRAILER, 3, 0),
    ROW("trailer control char", "0\r\nX: a\x01\r\n\r\n", LB_HTTP_ETRAILER, 7, 0),
    ROW("trailer bare LF", "0\r\nX: 1\n\r\n", LB_HTTP_ECRLF, 7, 0),
    ROW("final bare LF", "0\r\n\n", LB_HTTP_ECRLF, 3, 0),
    ROW("final CR CR", "0\r\n\r\r", LB_HTTP_ECRLF, 4, 0),
    { .name = "chunk above max_body", .raw = "5\r\nhello\r\n0\r\n\r\n", .result = LB_HTTP_EBODY_TOO_LARGE,
      .consumed = 1, .total = 0, .max_body = 4 },
    { .name = "sum above max_body", .raw = "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", .result = LB_HTTP_EBODY_TOO_LARGE,
      .consumed = 9, .total = 3, .max_body = 5 },
    { .name = "sum at max_body", .raw = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", .result = DONE,
      .consumed = 20, .total = 5, .max_body = 5 },
    { .name = "size line too long", .raw = "5;aaaaaaaaaaaaaaaaaaaa\r\nhello\r\n0\r\n\r\n",
      .result = LB_HTTP_ECHUNK_EXT, .consumed = 16, .max_line = 16 },
    { .name = "size line at max_line", .raw = "5;aaaaaaaaaaa\r\nhello\r\n0\r\n\r\n",
      .result = DONE, .consumed = 27, .total = 5, .max_line = 15 },
    { .name = "many leading zeros too long", .raw = "00000000000000000000000000005\r\nhello\r\n0\r\n\r\n",
      .result = LB_HTTP_ECHUNK_EXT, .consumed = 16, .max_line = 16 },
    { .name = "trailers too large", .raw = "0\r\nX-Long: 123456\r\n\r\n", .result = LB_HTTP_ETRAILER_TOO_LARGE,
      .consumed = 11, .max_trailers = 8 },
    { .name = "trailers at the limit", .raw = "0\r\nX: 1\r\n\r\n", .result = DONE, .consumed = 11,
      .max_trailers = 8 },
};

static void
row_init(const struct ck_row *row, struct lb_chunked *c)
{
    lb_chunked_init(c, row->max_body);
    if (row->max_line) {
        c->max_line = row->max_line;
    }
    if (row->max_trailers) {
        c->max_trailers = row->max_trailers;
    }
}

/* Scans <len> bytes from an exact-size heap copy; returns the result, adds to *used. */
static int
scan_copy(struct lb_chunked *c, const char *p, size_t len, size_t *used)
{
    char *b = malloc(len ? len : 1);
    size_t n = 12345;
    assert_non_null(b);
    memcpy(b, p, len);
    int r = lb_chunked_scan(c, b, len, &n);
    free(b);
    if (n > len) {
        fail_msg("consumed %zu of %zu", n, len);
    }
    if (r == 0 && n != len) {
        fail_msg("result 0 but consumed %zu of %zu", n, len);
    }
    *used += n;
    return r;
}

static void
check(const struct ck_row *row, const char *how, int r, size_t used, const struct lb_chunked *c)
{
    if (r != row->result) {
        fail_msg("%s (%s): result %d (%s), want %d (%s)", row->name, how, r,
                 r < 0 ? lb_http_strerror(r) : "", row->result,
                 row->result < 0 ? lb_http_strerror(row->result) : "");
    }
    if (r == MORE) {
        if (used != strlen(row->raw)) {
            fail_msg("%s (%s): consumed %zu, want all", row->name, how, used);
        }
    } else if (used != row->consumed) {
        fail_msg("%s (%s): consumed %zu, want %zu", row->name, how, used, row->consumed);
    }
    if (c->total != row->total) {
        fail_msg("%s (%s): total %llu, want %llu", row->name, how, (unsigned long long)c->total,
                 (unsigned long long)row->total);
    }
    if ((r == DONE) != lb_chunked_done(c)) {
        fail_msg("%s (%s): lb_chunked_done() disagrees", row->name, how);
    }
}

static void
test_table(void **state)
{
    (void)state;
    size_t n = sizeof(rows) / sizeof(rows[0]);

    for (size_t i = 0; i < n; i++) {
        const struct ck_row *row = &rows[i];
        struct lb_chunked c;
        size_t used = 0;

        row_init(row, &c);
        int r = scan_copy(&c, row->raw, strlen(row->raw), &used);
        check(row, "whole", r, used, &c);
        /* sticky: a further call gives the same result and consumes nothing */
        if (r != MORE) {
            size_t again = 0;
            int r2 = scan_copy(&c, "0\r\n\r\n", 5, &again);
            if (r2 != r || again != 0) {
                fail_msg("%s: not sticky (%d, %zu)", row->name, r2, again);
            }
        }
    }
    print_message("chunked table: %zu rows\n", n);
    assert_true(n >= 20);
}

static void
test_split_everywhere(void **state)
{
    (void)state;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct ck_row *row = &rows[i];
        size_t len = strlen(row->raw);

        /* two pieces, split at every offset */
        for (size_t k = 0; k <= len; k++) {
            struct lb_chunked c;
            size_t used = 0;
            char how[32];

            snprintf(how, sizeof(how), "split at %zu", k);
            row_init(row, &c);
            int r = scan_copy(&c, row->raw, k, &used);
            if (r == MORE) {
                r = scan_copy(&c, row->raw + k, len - k, &used);
            }
            check(row, how, r, used, &c);
        }
        /* one byte at a time */
        struct lb_chunked c;
        size_t used = 0;
        int r = MORE;
        row_init(row, &c);
        for (size_t k = 0; k < len && r == MORE; k++) {
            r = scan_copy(&c, row->raw + k, 1, &used);
        }
        check(row, "byte at a time", r, used, &c);
    }
}

/* Random valid bodies (random sizes, extensions, trailers) fed in random pieces. */
static void
test_random_bodies(void **state)
{
    (void)state;
    unsigned seed = 42;
    size_t cap = 1 << 16;
    char *body = malloc(cap);
    assert_non_null(body);

#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 8) & 0xffffff)
    for (int round = 0; round < 300; round++) {
        size_t len = 0;
        uint64_t total = 0;
        int nchunks = (int)(RND() % 6);
        for (int k = 0; k < nchunks; k++) {
            unsigned sz = 1 + RND() % 3000;
            len += (size_t)sprintf(body + len, RND() % 2 ? "%x" : "%X", sz);
            if (RND() % 3 == 0) {
                len += (size_t)sprintf(body + len, " ;ext=%u;q=\"a b\"", RND() % 100);
            }
            len += (size_t)sprintf(body + len, "\r\n");
            for (unsigned j = 0; j < sz; j++) {
                body[len++] = (char)(RND() & 0xff); /* data may hold anything, CR/LF too */
            }
            len += (size_t)sprintf(body + len, "\r\n");
            total += sz;
        }
        len += (size_t)sprintf(body + len, "0\r\n");
        if (RND() % 2) {
            len += (size_t)sprintf(body + len, "X-Sum: %llu\r\nX-B:\t v \r\n", (unsigned long long)total);
        }
        len += (size_t)sprintf(body + len, "\r\n");
        size_t body_len = len;
        len += (size_t)sprintf(body + len, "GET / HTTP/1.1\r\n"); /* next message */

        struct lb_chunked c;
        size_t used = 0;
        int r = MORE;
        size_t off = 0;
        lb_chunked_init(&c, 0);
        while (off < len && r == MORE) {
            size_t piece = 1 + RND() % 700;
            if (piece > len - off) {
                piece = len - off;
            }
            size_t before = used;
            r = scan_copy(&c, body + off, piece, &used);
            off += used - before;
            if (r == MORE && used - before != piece) {
                fail_msg("round %d: partial consume without end", round);
            }
        }
        if (r != DONE || used != body_len || c.total != total) {
            fail_msg("round %d: result %d used %zu/%zu total %llu/%llu", round, r, used, body_len,
                     (unsigned long long)c.total, (unsigned long long)total);
        }
    }
#undef RND
    free(body);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_random_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
