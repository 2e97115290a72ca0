/*
 * libFuzzer target for the HTTP/1.1 head parser (lb_http).
 *
 * Input: byte 0 selects the mode, the rest is the message.
 *   bit 0      parse as a response (else a request)
 *   bits 1-3   method of the request a response answers (enum lb_http_method)
 *   bit 4      small limits (max_line 64, max_head 256, max_headers 8, max_body 100)
 *
 * Checks, besides ASan/UBSan: the result is a known code; the same input fed in pieces
 * (sizes from a PRNG seeded by the input) gives the same result and the same parsed
 * head; every offset lies inside the head; the flags are consistent with each other.
 * After a complete request with a chunked body, the rest is run through lb_chunked.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_chunked.h"
#include "lb_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_lb_http: invariant failed: %s (line %d)\n", #cond, \
                    __LINE__);                                                        \
            abort();                                                                  \
        }                                                                             \
    } while (0)

struct msg {
    struct lb_http_req req;
    struct lb_http_resp resp;
};

static int
parse(int is_resp, int method, const char *buf, size_t len, const struct lb_http_limits *lim,
      struct msg *m)
{
    if (is_resp) {
        return lb_http_parse_response(buf, len, lim, method, &m->resp);
    }
    return lb_http_parse_request(buf, len, lim, &m->req);
}

static void
check_head(const struct lb_http_head *h, int r, size_t len, uint32_t max_head)
{
    CHECK((size_t)r <= len);
    CHECK(h->head_len == r);
    CHECK((uint32_t)r <= max_head);
    CHECK(h->start_off < r);
    CHECK(h->version == LB_HTTP_10 || h->version == LB_HTTP_11);
    CHECK(h->nhdrs <= LB_HTTP_MAX_HEADERS);
    uint32_t prev_end = 0;
    for (int i = 0; i < h->nhdrs; i++) {
        const struct lb_http_hdr *x = &h->hdrs[i];
        uint32_t line_end = (uint32_t)x->name_off + x->line_len;
        CHECK(x->name_len > 0);
        CHECK(x->name_off > h->start_off);
        CHECK(x->name_off >= prev_end);
        CHECK(line_end <= (uint32_t)r - 2);
        CHECK(x->value_off >= x->name_off + x->name_len + 1);
        CHECK((uint32_t)x->value_off + x->value_len <= line_end - 2);
        CHECK(x->id < LB_HTTP_H__COUNT);
        prev_end = line_end;
    }
    for (int id = 0; id < LB_HTTP_H__COUNT; id++) {
        if (h->idx[id] >= 0) {
            CHECK(id != LB_HTTP_H_OTHER || h->hdrs[h->idx[id]].id == LB_HTTP_H_OTHER);
            CHECK(h->idx[id] < h->nhdrs);
            CHECK(h->hdrs[h->idx[id]].id == id);
            for (int j = 0; j < h->idx[id]; j++) {
                CHECK(h->hdrs[j].id != id);
            }
        }
    }
    /* framing */
    CHECK(!((h->flags & LB_HTTP_F_CHUNKED) && (h->flags & LB_HTTP_F_CONTENT_LENGTH)));
    CHECK(((h->flags & LB_HTTP_F_CHUNKED) != 0) == (h->idx[LB_HTTP_H_TRANSFER_ENCODING] >= 0));
    CHECK(((h->flags & LB_HTTP_F_CONTENT_LENGTH) != 0) == (h->idx[LB_HTTP_H_CONTENT_LENGTH] >= 0));
    if (h->body == LB_HTTP_BODY_CHUNKED) {
        CHECK(h->flags & LB_HTTP_F_CHUNKED);
    }
    if (h->body == LB_HTTP_BODY_LENGTH) {
        CHECK(h->flags & LB_HTTP_F_CONTENT_LENGTH);
        CHECK(h->content_length <= UINT64_C(0x7fffffffffffffff));
    }
    if (h->body == LB_HTTP_BODY_CLOSE) {
        CHECK(!(h->flags & LB_HTTP_F_KEEP_ALIVE));
    }
    if (h->flags & LB_HTTP_F_CHUNKED) {
        CHECK(h->version == LB_HTTP_11);
    }
    /* keep-alive follows version and Connection */
    if (h->flags & LB_HTTP_F_CONN_CLOSE) {
        CHECK(!(h->flags & LB_HTTP_F_KEEP_ALIVE));
    }
    if (h->version == LB_HTTP_10 && !(h->flags & LB_HTTP_F_CONN_KEEP_ALIVE)) {
        CHECK(!(h->flags & LB_HTTP_F_KEEP_ALIVE));
    }
    if (h->version == LB_HTTP_11 && !(h->flags & LB_HTTP_F_CONN_CLOSE)
        && h->body != LB_HTTP_BODY_CLOSE) {
        CHECK(h->flags & LB_HTTP_F_KEEP_ALIVE);
    }
    if (h->flags & LB_HTTP_F_UPGRADE) {
        CHECK(h->idx[LB_HTTP_H_UPGRADE] >= 0 && h->idx[LB_HTTP_H_CONNECTION] >= 0);
    }
}

static void
check_req(const struct lb_http_req *q, int r, size_t len, const struct lb_http_limits *lim,
          const char *buf)
{
    const struct lb_http_head *h = &q->h;

    check_head(h, r, len, lim->max_head);
    CHECK(q->method != LB_HTTP_CONNECT);
    CHECK(q->method_len > 0 && q->method_off == h->start_off);
    CHECK(q->target_off == q->method_off + q->method_len + 1);
    CHECK(q->target_len > 0 && q->path_len <= q->target_len);
    CHECK((uint32_t)q->target_off + q->target_len + 11 <= (uint32_t)r);
    CHECK((uint32_t)q->target_off + q->target_len + 11 <= lim->max_line + h->start_off);
    CHECK(buf[q->target_off] == '/' || (q->target_len == 1 && buf[q->target_off] == '*'
                                        && q->method == LB_HTTP_OPTIONS));
    if (q->query_off != 0) {
        CHECK(buf[q->query_off - 1] == '?');
        CHECK(q->query_off == q->target_off + q->path_len + 1);
        CHECK(q->query_off + q->query_len == q->target_off + q->target_len);
    } else {
        CHECK(q->path_len == q->target_len);
    }
    CHECK(h->body != LB_HTTP_BODY_CLOSE);
    if (h->version == LB_HTTP_11) {
        CHECK(h->flags & LB_HTTP_F_HOST);
    } else {
        CHECK(!(h->flags & LB_HTTP_F_EXPECT_CONTINUE));
    }
    if (h->flags & LB_HTTP_F_HOST) {
        CHECK(h->idx[LB_HTTP_H_HOST] >= 0 && h->hdrs[h->idx[LB_HTTP_H_HOST]].value_len > 0);
    }
    if (lim->max_body != 0 && (h->flags & LB_HTTP_F_CONTENT_LENGTH)) {
        CHECK(h->content_length <= lim->max_body);
    }
    if (h->flags & LB_HTTP_F_EXPECT_CONTINUE) {
        CHECK(h->idx[LB_HTTP_H_EXPECT] >= 0);
    }
}

static void
check_resp(const struct lb_http_resp *p, int r, size_t len, const struct lb_http_limits *lim,
           int method)
{
    const struct lb_http_head *h = &p->h;

    check_head(h, r, len, lim->max_head);
    CHECK(p->status >= 100 && p->status <= 599);
    CHECK((uint32_t)p->reason_off + p->reason_len <= (uint32_t)r);
    if (method == LB_HTTP_HEAD || p->status < 200 || p->status == 204 || p->status == 304) {
        CHECK(h->body == LB_HTTP_BODY_NONE);
    } else {
        CHECK(h->body != LB_HTTP_BODY_NONE);
    }
}

static int
same_head(const struct lb_http_head *a, const struct lb_http_head *b)
{
    if (a->head_len != b->head_len || a->start_off != b->start_off || a->version != b->version
        || a->body != b->body || a->flags != b->flags || a->content_length != b->content_length
        || a->nhdrs != b->nhdrs || memcmp(a->idx, b->idx, sizeof(a->idx)) != 0) {
        return 0;
    }
    for (int i = 0; i < a->nhdrs; i++) {
        if (memcmp(&a->hdrs[i], &b->hdrs[i], sizeof(a->hdrs[i])) != 0) {
            return 0;
        }
    }
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lb_http_limits lim;
    static struct msg whole;
    static struct msg inc;

    if (size < 1) {
        return 0;
    }
    int mode = data[0];
    int is_resp = mode & 1;
    int method = (mode >> 1) & 7; /* LB_HTTP_OTHER .. LB_HTTP_OPTIONS */
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    lb_http_limits_default(&lim);
    if (mode & 0x10) {
        lim.max_line = 64;
        lim.max_head = 256;
        lim.max_headers = 8;
        lim.max_body = 100;
    }

    lb_http_req_init(&whole.req);
    lb_http_resp_init(&whole.resp);
    int r = parse(is_resp, method, buf, len, &lim, &whole);
    if (r < 0) {
        CHECK(strcmp(lb_http_strerror(r), "unknown error") != 0);
        int st = lb_http_error_status(r);
        CHECK(st >= 400 && st <= 505);
    } else if (r > 0) {
        if (is_resp) {
            check_resp(&whole.resp, r, len, &lim, method);
        } else {
            check_req(&whole.req, r, len, &lim, buf);
        }
    }
    /* sticky */
    CHECK(parse(is_resp, method, buf, len, &lim, &whole) == r);

    /* the same bytes in pieces */
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size && i < 64; i++) {
        seed = (seed ^ data[i]) * 16777619u;
    }
    lb_http_req_init(&inc.req);
    lb_http_resp_init(&inc.resp);
    size_t k = 0;
    int ri = 0;
    for (;;) {
        seed = seed * 1103515245u + 12345u;
        size_t step = (seed >> 16) % 4 == 0 ? 1 : (seed >> 16) % 97;
        k = k + step > len ? len : k + step;
        ri = parse(is_resp, method, buf, k, &lim, &inc);
        if (ri != 0 || k == len) {
            break;
        }
    }
    if (ri != r) {
        fprintf(stderr, "fuzz_lb_http: whole %d, in pieces %d (stopped at %zu of %zu)\n", r, ri,
                k, len);
        abort();
    }
    if (r > 0) {
        CHECK((size_t)r <= k);
        if (is_resp) {
            CHECK(same_head(&whole.resp.h, &inc.resp.h));
            CHECK(whole.resp.status == inc.resp.status);
            CHECK(whole.resp.reason_off == inc.resp.reason_off);
            CHECK(whole.resp.reason_len == inc.resp.reason_len);
        } else {
            CHECK(same_head(&whole.req.h, &inc.req.h));
            CHECK(whole.req.method == inc.req.method);
            CHECK(whole.req.target_off == inc.req.target_off);
            CHECK(whole.req.target_len == inc.req.target_len);
            CHECK(whole.req.path_len == inc.req.path_len);
            CHECK(whole.req.query_off == inc.req.query_off);
            CHECK(whole.req.query_len == inc.req.query_len);
        }
    }

    /* a chunked request body after the head */
    if (r > 0 && !is_resp && whole.req.h.body == LB_HTTP_BODY_CHUNKED) {
        struct lb_chunked ck;
        size_t used = 0;
        lb_chunked_init(&ck, lim.max_body);
        int cr = lb_chunked_scan(&ck, buf + r, len - (size_t)r, &used);
        CHECK(used <= len - (size_t)r);
        CHECK(cr == 0 || cr == 1 || cr < 0);
        if (lim.max_body != 0) {
            CHECK(ck.total <= lim.max_body);
        }
    }
    return 0;
}
