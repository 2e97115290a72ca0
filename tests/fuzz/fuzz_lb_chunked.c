/*
 * libFuzzer target for the chunked body scanner (lb_chunked).
 *
 * Input: byte 0 selects the limits (bits 0-1: max_body none / 16 / 4096 / 2^40;
 * bit 2: small max_line 16 and max_trailers 32), the rest is the body.
 * Checks, besides ASan/UBSan: the result is 1, 0 or a known error; consumed <= len and
 * == len when the result is 0; total respects max_body; the same bytes fed in pieces
 * (sizes from a PRNG seeded by the input) give the same result, consumed count and
 * total; a finished or failed scanner stays so. Any violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_chunked.h"
#include "lb_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_lb_chunked: invariant failed: %s (line %d)\n", #cond, \
                    __LINE__);                                                           \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static void
setup(struct lb_chunked *c, int mode)
{
    static const uint64_t max_body[4] = { 0, 16, 4096, UINT64_C(1) << 40 };

    lb_chunked_init(c, max_body[mode & 3]);
    if (mode & 4) {
        c->max_line = 16;
        c->max_trailers = 32;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lb_chunked whole;
    struct lb_chunked inc;

    if (size < 1) {
        return 0;
    }
    int mode = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    setup(&whole, mode);
    size_t used = 0;
    int r = lb_chunked_scan(&whole, buf, len, &used);
    CHECK(r == 0 || r == 1 || (r < 0 && strcmp(lb_http_strerror(r), "unknown error") != 0));
    CHECK(used <= len);
    if (r == 0) {
        CHECK(used == len);
    }
    if (r == 1) {
        CHECK(used >= 5); /* at least "0\r\n\r\n" */
        CHECK(buf[used - 1] == '\n' && buf[used - 2] == '\r');
        CHECK(lb_chunked_done(&whole));
    }
    if (whole.max_body != 0) {
        CHECK(whole.total <= whole.max_body);
    }
    /* sticky after the end or an error */
    if (r != 0) {
        size_t again = 99;
        CHECK(lb_chunked_scan(&whole, buf, len, &again) == r);
        CHECK(again == 0);
    }

    /* the same bytes in pieces */
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size && i < 64; i++) {
        seed = (seed ^ data[i]) * 16777619u;
    }
    setup(&inc, mode);
    size_t off = 0;
    size_t iused = 0;
    int ri = 0;
    while (off < len) {
        seed = seed * 1103515245u + 12345u;
        size_t step = (seed >> 16) % 3 == 0 ? 1 : 1 + (seed >> 16) % 50;
        if (step > len - off) {
            step = len - off;
        }
        size_t n = 0;
        ri = lb_chunked_scan(&inc, buf + off, step, &n);
        CHECK(n <= step);
        iused += n;
        off += step;
        if (ri != 0) {
            break;
        }
        CHECK(n == step);
    }
    if (len == 0) {
        size_t n = 0;
        ri = lb_chunked_scan(&inc, buf, 0, &n);
        CHECK(n == 0);
    }
    if (ri != r || iused != used || inc.total != whole.total) {
        fprintf(stderr, "fuzz_lb_chunked: whole %d/%zu/%llu, pieces %d/%zu/%llu\n", r, used,
                (unsigned long long)whole.total, ri, iused, (unsigned long long)inc.total);
        abort();
    }
    return 0;
}
