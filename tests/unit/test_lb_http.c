/*
 * Unit tests for lb_http: a table of valid and invalid requests (every rejection rule of
 * docs/HTTP.md), byte-at-a-time feeding equal to all-at-once for every row, pipelining,
 * hop-by-hop marking, a response table, and an informational micro benchmark.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lb_http.h"

#define NEEDMORE 1 /* row expectation: parser returns 0 */

/* Flag shorthands */
#define CL  LB_HTTP_F_CONTENT_LENGTH
#define CH  LB_HTTP_F_CHUNKED
#define KA  LB_HTTP_F_KEEP_ALIVE
#define EC  LB_HTTP_F_EXPECT_CONTINUE
#define HO  LB_HTTP_F_HOST
#define UP  LB_HTTP_F_UPGRADE
#define CC  LB_HTTP_F_CONN_CLOSE
#define CK  LB_HTTP_F_CONN_KEEP_ALIVE

struct req_row {
    const char *name;
    const char *raw;
    size_t raw_len;      /* 0: strlen(raw) */
    int err;             /* 0 valid, NEEDMORE, or an LB_HTTP_E* code */
    int status;          /* expected status for errors */
    /* valid rows */
    int body_bytes;      /* bytes of raw after the head */
    int method;
    int version;
    int body;
    unsigned flags;
    uint64_t cl;
    const char *path;
    const char *query;   /* NULL: no '?' */
    int nhdrs;
    /* limits (0 = test default) */
    uint32_t max_line;
    uint32_t max_head;
    uint32_t max_headers;
    uint64_t max_body;
};

#define H11 "Host: a\r\n"

/* Valid row */
#define OK(n, r, m, v, b, f, c, p, q, nh) \
    { .name = n, .raw = r, .method = m, .version = v, .body = b, .flags = f, .cl = c, \
      .path = p, .query = q, .nhdrs = nh }
/* Invalid row */
#define BAD(n, r, e, s) { .name = n, .raw = r, .err = e, .status = s }

static const struct req_row req_rows[] = {
    /* ---- valid ---- */
    OK("minimal 1.1", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 1),
    OK("typical GET with query",
       "GET /posts/42?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n"
       "Accept: */*\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/posts/42", "x=1&y=2", 3),
    OK("1.0 without Host", "GET / HTTP/1.0\r\n\r\n",
       LB_HTTP_GET, 10, LB_HTTP_BODY_NONE, 0, 0, "/", NULL, 0),
    OK("1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
       LB_HTTP_GET, 10, LB_HTTP_BODY_NONE, KA | CK, 0, "/", NULL, 1),
    OK("1.1 close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | CC, 0, "/", NULL, 2),
    OK("1.0 keep-alive and close", "GET / HTTP/1.0\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
       LB_HTTP_GET, 10, LB_HTTP_BODY_NONE, CC | CK, 0, "/", NULL, 1),
    OK("Connection empty elements", "GET / HTTP/1.1\r\nHost: a\r\nConnection: , close ,\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | CC, 0, "/", NULL, 2),
    { .name = "POST with body", .raw = "POST /posts HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
      .body_bytes = 5, .method = LB_HTTP_POST, .version = 11, .body = LB_HTTP_BODY_LENGTH,
      .flags = HO | KA | CL, .cl = 5, .path = "/posts", .nhdrs = 2 },
    OK("PUT chunked", "PUT /posts/1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
       LB_HTTP_PUT, 11, LB_HTTP_BODY_CHUNKED, HO | KA | CH, 0, "/posts/1", NULL, 2),
    OK("TE case and OWS", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \t CHUNKED \t\r\n\r\n",
       LB_HTTP_POST, 11, LB_HTTP_BODY_CHUNKED, HO | KA | CH, 0, "/", NULL, 2),
    OK("Expect 100-continue",
       "POST /assets HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-Continue\r\n\r\n",
       LB_HTTP_POST, 11, LB_HTTP_BODY_LENGTH, HO | KA | CL | EC, 10, "/assets", NULL, 3),
    OK("Expect ignored on 1.0",
       "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
       LB_HTTP_POST, 10, LB_HTTP_BODY_LENGTH, CL, 3, "/", NULL, 2),
    OK("leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 1),
    OK("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_OPTIONS, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "*", NULL, 1),
    OK("unknown method token", "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_OTHER, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/x", NULL, 1),
    OK("lower-case method is another token", "get /x HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_OTHER, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/x", NULL, 1),
    OK("HEAD", "HEAD /assets/ab HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_HEAD, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/assets/ab", NULL, 1),
    OK("DELETE", "DELETE /posts/9 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\n\r\n",
       LB_HTTP_DELETE, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/posts/9", NULL, 2),
    OK("PATCH", "PATCH /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
       LB_HTTP_PATCH, 11, LB_HTTP_BODY_LENGTH, HO | KA | CL, 0, "/p", NULL, 2),
    OK("TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_TRACE, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 1),
    OK("empty header value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-E2:   \r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 3),
    OK("HTAB and obs-text in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\tb \xe9\xff\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 2),
    OK("percent-encoded target", "GET /a%20b%2F HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/a%20b%2F", NULL, 1),
    OK("target with sub-delims", "GET /a:b@c!$&'()*+,;=-._~/ HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/a:b@c!$&'()*+,;=-._~/", NULL, 1),
    OK("CL leading zeros", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
       LB_HTTP_POST, 11, LB_HTTP_BODY_LENGTH, HO | KA | CL, 7, "/", NULL, 2),
    OK("CL with OWS", "POST / HTTP/1.1\r\nHost: a\r\ncontent-length:  12 \t\r\n\r\n",
       LB_HTTP_POST, 11, LB_HTTP_BODY_LENGTH, HO | KA | CL, 12, "/", NULL, 2),
    OK("upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA | UP, 0, "/ws", NULL, 3),
    OK("Upgrade without Connection option", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 2),
    OK("Host IPv6 and port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 1),
    OK("every tchar in a name", "GET / HTTP/1.1\r\nHost: a\r\nX-!#$%&'*+-.^_`|~09az: v\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 2),
    OK("no OWS after colon", "GET / HTTP/1.1\r\nHost:a\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 1),
    OK("several query marks", "GET /p?a?b HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/p", "a?b", 1),
    OK("empty query", "GET /p? HTTP/1.1\r\nHost: a\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/p", "", 1),
    OK("several X-Forwarded-For", "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n"
       "X-Forwarded-For: 2.2.2.2\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 3),
    OK("long value (SWAR path)", "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0 (X11; Linux "
       "x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n\r\n",
       LB_HTTP_GET, 11, LB_HTTP_BODY_NONE, HO | KA, 0, "/", NULL, 2),
    { .name = "headers at the count limit", .raw = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n",
      .method = LB_HTTP_GET, .version = 11, .body = LB_HTTP_BODY_NONE, .flags = HO | KA,
      .path = "/", .nhdrs = 3, .max_headers = 3 },
    { .name = "CL at max_body", .raw = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n",
      .method = LB_HTTP_POST, .version = 11, .body = LB_HTTP_BODY_LENGTH, .flags = HO | KA | CL,
      .cl = 10, .path = "/", .nhdrs = 2, .max_body = 10 },
    { .name = "request line at max_line", .raw = "GET /abcdefgh HTTP/1.1\r\nHost: a\r\n\r\n",
      .method = LB_HTTP_GET, .version = 11, .body = LB_HTTP_BODY_NONE, .flags = HO | KA,
      .path = "/abcdefgh", .nhdrs = 1, .max_line = 24 },
    { .name = "head at max_head", .raw = "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      .method = LB_HTTP_GET, .version = 11, .body = LB_HTTP_BODY_NONE, .flags = HO | KA,
      .path = "/", .nhdrs = 1, .max_head = 27 },
    { .name = "head followed by a next request", .raw = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /",
      .body_bytes = 5, .method = LB_HTTP_GET, .version = 11, .body = LB_HTTP_BODY_NONE,
      .flags = HO | KA, .path = "/", .nhdrs = 1 },

    /* ---- incomplete ---- */
    BAD("incomplete: no empty line", "GET / HTTP/1.1\r\nHost: a\r\n", NEEDMORE, 0),
    BAD("incomplete: CR of the empty line", "GET / HTTP/1.1\r\nHost: a\r\n\r", NEEDMORE, 0),
    BAD("incomplete: request line", "GET /index.ht", NEEDMORE, 0),
    BAD("incomplete: version prefix", "GET / HTTP/1", NEEDMORE, 0),
    BAD("incomplete: empty input", "", NEEDMORE, 0),

    /* ---- framing: Content-Length / Transfer-Encoding ---- */
    BAD("CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        LB_HTTP_ECL_TE, 400),
    BAD("TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        LB_HTTP_ECL_TE, 400),
    BAD("two equal CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        LB_HTTP_ECL_DUP, 400),
    BAD("two different CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        LB_HTTP_ECL_DUP, 400),
    BAD("CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", LB_HTTP_ECL, 400),
    BAD("CL plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", LB_HTTP_ECL, 400),
    BAD("CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", LB_HTTP_ECL, 400),
    BAD("CL inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", LB_HTTP_ECL, 400),
    BAD("CL not digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", LB_HTTP_ECL, 400),
    BAD("CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", LB_HTTP_ECL, 400),
    BAD("CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", LB_HTTP_ECL, 400),
    BAD("CL 2^63", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n",
        LB_HTTP_ECL, 400),
    BAD("CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        LB_HTTP_ECL, 400),
    BAD("CL above max_body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10485761\r\n\r\n",
        LB_HTTP_EBODY_TOO_LARGE, 413),
    BAD("TE gzip alone", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", LB_HTTP_ETE, 400),
    BAD("TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", LB_HTTP_ETE, 400),
    BAD("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        LB_HTTP_ETE_UNSUPP, 501),
    BAD("TE gzip then chunked fields",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        LB_HTTP_ETE_UNSUPP, 501),
    BAD("TE chunked, gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        LB_HTTP_ETE, 400),
    BAD("TE chunked, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        LB_HTTP_ETE, 400),
    BAD("TE chunked twice in two fields",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        LB_HTTP_ETE, 400),
    BAD("TE with parameter", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
        LB_HTTP_ETE, 400),
    BAD("TE trailing comma", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n",
        LB_HTTP_ETE, 400),
    BAD("TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", LB_HTTP_ETE, 400),
    BAD("TE near-miss chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
        LB_HTTP_ETE, 400),
    BAD("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", LB_HTTP_ETE_HTTP10, 400),

    /* ---- line syntax ---- */
    BAD("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", LB_HTTP_EOBSFOLD, 400),
    BAD("obs-fold with HTAB", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", LB_HTTP_EOBSFOLD, 400),
    BAD("whitespace before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", LB_HTTP_EOBSFOLD, 400),
    BAD("bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", LB_HTTP_ECRLF, 400),
    BAD("bare LF after field", "GET / HTTP/1.1\r\nHost: a\n\r\n", LB_HTTP_ECRLF, 400),
    BAD("bare LF empty line", "GET / HTTP/1.1\r\nHost: a\r\n\n", LB_HTTP_ECRLF, 400),
    BAD("bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", LB_HTTP_ECRLF, 400),
    BAD("bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", LB_HTTP_ECRLF, 400),
    BAD("CR CR LF", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", LB_HTTP_ECRLF, 400),
    BAD("bare CR in target", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ECRLF, 400),
    BAD("bare CR empty line", "GET / HTTP/1.1\r\nHost: a\r\n\rX", LB_HTTP_ECRLF, 400),
    BAD("bare LF leading line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ECRLF, 400),
    BAD("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", LB_HTTP_EHCOLON, 400),
    BAD("tab before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", LB_HTTP_EHCOLON, 400),
    BAD("field without colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n", LB_HTTP_EHCOLON, 400),
    BAD("control char in name", "GET / HTTP/1.1\r\nHost: a\r\nX\x01" "A: b\r\n\r\n", LB_HTTP_EHNAME, 400),
    BAD("non-token char in name", "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", LB_HTTP_EHNAME, 400),
    BAD("non-ASCII in name", "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: b\r\n\r\n", LB_HTTP_EHNAME, 400),
    BAD("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", LB_HTTP_EHNAME, 400),
    BAD("control char in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01" "c\r\n\r\n", LB_HTTP_EHVALUE, 400),
    BAD("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f" "c\r\n\r\n", LB_HTTP_EHVALUE, 400),
    BAD("ESC in long value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 0123456789abcdef\x1b" "0123456789\r\n\r\n",
        LB_HTTP_EHVALUE, 400),
    { .name = "NUL in value", .raw = "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", .raw_len = 37,
      .err = LB_HTTP_EHVALUE, .status = 400 },

    /* ---- request line ---- */
    BAD("invalid method char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_EMETHOD, 400),
    BAD("leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_EMETHOD, 400),
    BAD("tab after method", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_EMETHOD, 400),
    BAD("method only", "GET\r\n\r\n", LB_HTTP_ELINE, 400),
    BAD("CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", LB_HTTP_ENOTIMPL, 501),
    BAD("empty target (two spaces)", "GET  HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ELINE, 400),
    BAD("no version", "GET /\r\n\r\n", LB_HTTP_ELINE, 400),
    BAD("absolute-form", "GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("authority-form", "GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("asterisk for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("target char <", "GET /a<b HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("target quote", "GET /a\"b HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("target fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("target backslash", "GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("target non-ASCII", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("target control", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("target tab", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("bad percent (1 digit)", "GET /a%2 HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("bad percent (non-hex)", "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_ETARGET, 400),
    BAD("space inside target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", LB_HTTP_EVERSION, 400),
    BAD("version 2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", LB_HTTP_EVERSION_UNSUPP, 505),
    BAD("version 1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", LB_HTTP_EVERSION_UNSUPP, 505),
    BAD("version 0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", LB_HTTP_EVERSION_UNSUPP, 505),
    BAD("version lower-case", "GET / http/1.1\r\nHost: a\r\n\r\n", LB_HTTP_EVERSION, 400),
    BAD("version short", "GET / HTTP/1\r\nHost: a\r\n\r\n", LB_HTTP_EVERSION, 400),
    BAD("version 1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", LB_HTTP_EVERSION, 400),
    BAD("version trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", LB_HTTP_EVERSION, 400),
    BAD("version garbage", "GET / FOO\r\nHost: a\r\n\r\n", LB_HTTP_EVERSION, 400),

    /* ---- Host ---- */
    BAD("missing Host on 1.1", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", LB_HTTP_EHOST_MISSING, 400),
    BAD("two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", LB_HTTP_EHOST_DUP, 400),
    BAD("two Host, different case", "GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", LB_HTTP_EHOST_DUP, 400),
    BAD("empty Host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", LB_HTTP_EHOST, 400),
    BAD("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", LB_HTTP_EHOST, 400),
    BAD("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", LB_HTTP_EHOST, 400),
    BAD("Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", LB_HTTP_EHOST, 400),

    /* ---- other fields ---- */
    BAD("Expect other", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n",
        LB_HTTP_EEXPECT, 417),
    BAD("Connection with parameter", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close;x\r\n\r\n",
        LB_HTTP_ECONNECTION, 400),
    BAD("Connection with 17 options", "GET / HTTP/1.1\r\nHost: a\r\nConnection: a,b,c,d,e,f,g,h,i,j,"
        "k,l,m,n,o,p,q\r\n\r\n", LB_HTTP_ECONNECTION, 400),

    /* ---- limits ---- */
    { .name = "request line above max_line", .raw = "GET /abcdefghi HTTP/1.1\r\nHost: a\r\n\r\n",
      .err = LB_HTTP_ELINE_TOO_LONG, .status = 414, .max_line = 24 },
    { .name = "long line without LF", .raw = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      .err = LB_HTTP_ELINE_TOO_LONG, .status = 414, .max_line = 32 },
    { .name = "garbage line above max_line", .raw = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x01",
      .err = LB_HTTP_ELINE_TOO_LONG, .status = 414, .max_line = 32 },
    { .name = "head above max_head", .raw = "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      .err = LB_HTTP_EHEAD_TOO_LARGE, .status = 431, .max_head = 26 },
    { .name = "endless field", .raw = "GET / HTTP/1.1\r\nHost: a\r\nX-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      .err = LB_HTTP_EHEAD_TOO_LARGE, .status = 431, .max_head = 40 },
    { .name = "endless leading empty lines", .raw = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n",
      .err = LB_HTTP_EHEAD_TOO_LARGE, .status = 431, .max_head = 16 },
    { .name = "too many fields", .raw = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
      .err = LB_HTTP_ETOO_MANY_HEADERS, .status = 431, .max_headers = 3 },
    { .name = "CL above configured max_body", .raw = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n",
      .err = LB_HTTP_EBODY_TOO_LARGE, .status = 413, .max_body = 10 },
};

static size_t
row_len(const struct req_row *r)
{
    return r->raw_len ? r->raw_len : strlen(r->raw);
}

static void
row_limits(const struct req_row *r, struct lb_http_limits *lim)
{
    lb_http_limits_default(lim);
    if (r->max_line) {
        lim->max_line = r->max_line;
    }
    if (r->max_head) {
        lim->max_head = r->max_head;
    }
    if (r->max_headers) {
        lim->max_headers = r->max_headers;
    }
    if (r->max_body) {
        lim->max_body = r->max_body;
    }
}

/* Parses <len> bytes of <raw> from an exact-size heap copy (so ASan sees over-reads). */
static int
parse_copy(const char *raw, size_t len, const struct lb_http_limits *lim, struct lb_http_req *req)
{
    char *b = malloc(len ? len : 1);
    assert_non_null(b);
    memcpy(b, raw, len);
    int r = lb_http_parse_request(b, len, lim, req);
    free(b);
    return r;
}

static int
span_eq(const char *raw, uint16_t off, uint16_t len, const char *want)
{
    return strlen(want) == len && memcmp(raw + off, want, len) == 0;
}

static void
check_invariants(const char *name, const struct lb_http_req *req, size_t len, int r)
{
    const struct lb_http_head *h = &req->h;

    if (r <= 0) {
        return;
    }
    if ((size_t)r > len || h->head_len != r) {
        fail_msg("%s: head length %d of %zu", name, r, len);
    }
    if (req->target_off + req->target_len > r || req->method_off + req->method_len > r) {
        fail_msg("%s: request line spans outside the head", name);
    }
    for (int i = 0; i < h->nhdrs; i++) {
        const struct lb_http_hdr *x = &h->hdrs[i];
        if (x->name_off + x->line_len > r || x->value_off + x->value_len > x->name_off + x->line_len
            || x->value_off < x->name_off + x->name_len + 1 || x->name_len == 0) {
            fail_msg("%s: field %d spans are inconsistent", name, i);
        }
        if (i + 1 < h->nhdrs && h->hdrs[i + 1].name_off != x->name_off + x->line_len) {
            fail_msg("%s: field %d is not followed by field %d", name, i, i + 1);
        }
    }
    for (int id = 1; id < LB_HTTP_H__COUNT; id++) {
        if (h->idx[id] >= 0 && (h->idx[id] >= h->nhdrs || h->hdrs[h->idx[id]].id != id)) {
            fail_msg("%s: idx[%d] is wrong", name, id);
        }
    }
}

static void
check_row(const struct req_row *row, const struct lb_http_req *req, const char *raw, size_t len,
          int r)
{
    if (row->err == NEEDMORE) {
        if (r != 0) {
            fail_msg("%s: got %d (%s), want 0 (need more)", row->name, r, lb_http_strerror(r));
        }
        return;
    }
    if (row->err != 0) {
        if (r != row->err) {
            fail_msg("%s: got %d (%s), want %d (%s)", row->name, r, r < 0 ? lb_http_strerror(r) : "ok",
                     row->err, lb_http_strerror(row->err));
        }
        if (lb_http_error_status(r) != row->status) {
            fail_msg("%s: status %d, want %d", row->name, lb_http_error_status(r), row->status);
        }
        return;
    }
    if (r != (int)(len - (size_t)row->body_bytes)) {
        fail_msg("%s: got %d (%s), want head length %zu", row->name, r,
                 r < 0 ? lb_http_strerror(r) : "", len - (size_t)row->body_bytes);
    }
    check_invariants(row->name, req, len, r);
    if (req->method != row->method || req->h.version != row->version || req->h.body != row->body) {
        fail_msg("%s: method %d version %d body %d, want %d %d %d", row->name, req->method,
                 req->h.version, req->h.body, row->method, row->version, row->body);
    }
    if (req->h.flags != row->flags) {
        fail_msg("%s: flags 0x%x, want 0x%x", row->name, req->h.flags, row->flags);
    }
    if ((row->flags & CL) && req->h.content_length != row->cl) {
        fail_msg("%s: content length %llu, want %llu", row->name,
                 (unsigned long long)req->h.content_length, (unsigned long long)row->cl);
    }
    if (!span_eq(raw, req->target_off, req->path_len, row->path)) {
        fail_msg("%s: path '%.*s', want '%s'", row->name, req->path_len, raw + req->target_off,
                 row->path);
    }
    if (row->query != NULL) {
        if (req->query_off == 0 || !span_eq(raw, req->query_off, req->query_len, row->query)) {
            fail_msg("%s: query mismatch", row->name);
        }
    } else if (req->query_off != 0 || req->target_len != req->path_len) {
        fail_msg("%s: unexpected query", row->name);
    }
    if (req->h.nhdrs != row->nhdrs) {
        fail_msg("%s: %d fields, want %d", row->name, req->h.nhdrs, row->nhdrs);
    }
    if (req->method != LB_HTTP_OTHER
        && !span_eq(raw, req->method_off, req->method_len, lb_http_method_name(req->method))) {
        fail_msg("%s: method span", row->name);
    }
}

static void
test_request_table(void **state)
{
    (void)state;
    size_t valid = 0;
    size_t invalid = 0;

    for (size_t i = 0; i < sizeof(req_rows) / sizeof(req_rows[0]); i++) {
        const struct req_row *row = &req_rows[i];
        struct lb_http_limits lim;
        struct lb_http_req req;
        size_t len = row_len(row);

        row_limits(row, &lim);
        lb_http_req_init(&req);
        int r = parse_copy(row->raw, len, &lim, &req);
        check_row(row, &req, row->raw, len, r);
        /* a second call returns the same result (sticky) */
        int r2 = parse_copy(row->raw, len, &lim, &req);
        if (r2 != r) {
            fail_msg("%s: second call %d != %d", row->name, r2, r);
        }
        if (row->err == 0) {
            valid++;
        } else {
            invalid++;
        }
    }
    print_message("request table: %zu valid, %zu invalid/incomplete rows\n", valid, invalid);
    assert_true(valid + invalid >= 60);
}

/* Compares the parsed facts of two requests (only the meaningful part of hdrs[]). */
static void
assert_req_equal(const char *name, const struct lb_http_req *a, const struct lb_http_req *b)
{
    if (a->h.head_len != b->h.head_len || a->h.start_off != b->h.start_off
        || a->h.version != b->h.version || a->h.body != b->h.body || a->h.flags != b->h.flags
        || a->h.content_length != b->h.content_length || a->h.nhdrs != b->h.nhdrs
        || memcmp(a->h.idx, b->h.idx, sizeof(a->h.idx)) != 0 || a->method != b->method
        || a->method_off != b->method_off || a->method_len != b->method_len
        || a->target_off != b->target_off || a->target_len != b->target_len
        || a->path_len != b->path_len || a->query_off != b->query_off
        || a->query_len != b->query_len) {
        fail_msg("%s: split parse differs from whole parse", name);
    }
    for (int i = 0; i < a->h.nhdrs; i++) {
        if (memcmp(&a->h.hdrs[i], &b->h.hdrs[i], sizeof(a->h.hdrs[i])) != 0) {
            fail_msg("%s: field %d differs in split parse", name, i);
        }
    }
}

static void
test_byte_at_a_time(void **state)
{
    (void)state;

    for (size_t i = 0; i < sizeof(req_rows) / sizeof(req_rows[0]); i++) {
        const struct req_row *row = &req_rows[i];
        struct lb_http_limits lim;
        struct lb_http_req whole;
        struct lb_http_req inc;
        size_t len = row_len(row);
        int r = 0;
        size_t k;

        row_limits(row, &lim);
        lb_http_req_init(&whole);
        int rw = parse_copy(row->raw, len, &lim, &whole);
        lb_http_req_init(&inc);
        for (k = 0; k <= len; k++) {
            r = parse_copy(row->raw, k, &lim, &inc);
            if (r != 0) {
                break;
            }
        }
        if (r != rw) {
            fail_msg("%s: byte-at-a-time gives %d (%s) at %zu bytes, whole gives %d (%s)",
                     row->name, r, r < 0 ? lb_http_strerror(r) : "", k, rw,
                     rw < 0 ? lb_http_strerror(rw) : "");
        }
        if (rw > 0) {
            /* the head is complete exactly when its last byte arrives */
            if (k != (size_t)rw) {
                fail_msg("%s: complete at %zu bytes, head is %d", row->name, k, rw);
            }
            assert_req_equal(row->name, &whole, &inc);
        }
    }
}

static void
test_random_splits(void **state)
{
    (void)state;
    unsigned seed = 12345;

    /* Feed in random-sized pieces, with the buffer moving between calls. */
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof(req_rows) / sizeof(req_rows[0]); i++) {
            const struct req_row *row = &req_rows[i];
            struct lb_http_limits lim;
            struct lb_http_req whole;
            struct lb_http_req inc;
            size_t len = row_len(row);
            size_t k = 0;
            int r = 0;

            row_limits(row, &lim);
            lb_http_req_init(&whole);
            int rw = parse_copy(row->raw, len, &lim, &whole);
            lb_http_req_init(&inc);
            while (k < len) {
                seed = seed * 1103515245u + 12345u;
                k += 1 + (seed >> 16) % 7;
                if (k > len) {
                    k = len;
                }
                r = parse_copy(row->raw, k, &lim, &inc);
                if (r != 0) {
                    break;
                }
            }
            if (len == 0) {
                r = parse_copy(row->raw, 0, &lim, &inc);
            }
            if (r != rw) {
                fail_msg("%s: random split gives %d, whole gives %d", row->name, r, rw);
            }
            if (rw > 0) {
                assert_req_equal(row->name, &whole, &inc);
            }
        }
    }
}

static void
test_pipelined(void **state)
{
    (void)state;
    const char *raw = "POST /posts HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
                      "GET /posts/7 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                      "\r\nHEAD /assets/x HTTP/1.0\r\n\r\n";
    size_t len = strlen(raw);
    struct lb_http_req req;
    size_t off = 0;

    lb_http_req_init(&req);
    int n = lb_http_parse_request(raw, len, NULL, &req);
    assert_true(n > 0);
    assert_int_equal(req.method, LB_HTTP_POST);
    assert_int_equal(req.h.body, LB_HTTP_BODY_LENGTH);
    assert_int_equal(req.h.content_length, 4);
    assert_memory_equal(raw + n, "body", 4);
    off = (size_t)n + 4;

    lb_http_req_init(&req);
    n = lb_http_parse_request(raw + off, len - off, NULL, &req);
    assert_true(n > 0);
    assert_int_equal(req.method, LB_HTTP_GET);
    assert_true(span_eq(raw + off, req.target_off, req.path_len, "/posts/7"));
    assert_false(req.h.flags & LB_HTTP_F_KEEP_ALIVE);
    off += (size_t)n;

    /* the third request has a stray CRLF before it (allowed) */
    lb_http_req_init(&req);
    n = lb_http_parse_request(raw + off, len - off, NULL, &req);
    assert_int_equal(n, (int)(len - off));
    assert_int_equal(req.method, LB_HTTP_HEAD);
    assert_int_equal(req.h.start_off, 2);
    assert_int_equal(req.h.version, LB_HTTP_10);

    /* byte at a time over the whole pipeline, advancing through each message */
    off = 0;
    int msgs = 0;
    lb_http_req_init(&req);
    for (size_t k = 1; k <= len && msgs < 3; k++) {
        n = lb_http_parse_request(raw + off, k - off, NULL, &req);
        assert_true(n >= 0);
        if (n > 0) {
            off += (size_t)n + (req.h.body == LB_HTTP_BODY_LENGTH ? req.h.content_length : 0);
            k = off;
            msgs++;
            lb_http_req_init(&req);
        }
    }
    assert_int_equal(msgs, 3);
    assert_int_equal(off, len);
}

static void
test_hop_by_hop_and_idx(void **state)
{
    (void)state;
    const char *raw = "GET /posts HTTP/1.1\r\n"
                      "Host: h\r\n"                            /* 0 */
                      "Connection: keep-alive, X-Foo, host\r\n"  /* 1 */
                      "x-foo: 1\r\n"                           /* 2 */
                      "Keep-Alive: timeout=5\r\n"              /* 3 */
                      "X-Request-Id: abc\r\n"                  /* 4 */
                      "X-Forwarded-For: 10.0.0.1\r\n"          /* 5 */
                      "TE: trailers\r\n"                       /* 6 */
                      "X-Bar: 2\r\n"                           /* 7 */
                      "Proxy-Connection: close\r\n"            /* 8 */
                      "X-FOO: 3\r\n"                           /* 9 */
                      "\r\n";
    struct lb_http_req req;

    lb_http_req_init(&req);
    int n = lb_http_parse_request(raw, strlen(raw), NULL, &req);
    assert_int_equal(n, (int)strlen(raw));
    assert_int_equal(req.h.nhdrs, 10);
    const uint8_t hop[10] = { 0, 1, 1, 1, 0, 0, 1, 0, 1, 1 };
    for (int i = 0; i < 10; i++) {
        if (!!(req.h.hdrs[i].flags & LB_HTTP_HF_HOP) != hop[i]) {
            fail_msg("field %d: hop flag %d, want %d", i, req.h.hdrs[i].flags, hop[i]);
        }
    }
    assert_int_equal(req.h.idx[LB_HTTP_H_HOST], 0);
    assert_int_equal(req.h.idx[LB_HTTP_H_CONNECTION], 1);
    assert_int_equal(req.h.idx[LB_HTTP_H_KEEP_ALIVE], 3);
    assert_int_equal(req.h.idx[LB_HTTP_H_X_REQUEST_ID], 4);
    assert_int_equal(req.h.idx[LB_HTTP_H_X_FORWARDED_FOR], 5);
    assert_int_equal(req.h.idx[LB_HTTP_H_TE], 6);
    assert_int_equal(req.h.idx[LB_HTTP_H_PROXY_CONNECTION], 8);
    assert_int_equal(req.h.idx[LB_HTTP_H_CONTENT_LENGTH], -1);
    assert_int_equal(req.h.idx[LB_HTTP_H_TRANSFER_ENCODING], -1);
    assert_int_equal(req.h.idx[LB_HTTP_H_EXPECT], -1);
    assert_true(req.h.flags & LB_HTTP_F_KEEP_ALIVE);
    const struct lb_http_hdr *x = &req.h.hdrs[4];
    assert_true(span_eq(raw, x->value_off, x->value_len, "abc"));
    assert_int_equal(x->line_len, strlen("X-Request-Id: abc\r\n"));
    assert_int_equal(lb_http_find_hdr(raw, &req.h, 0, "X-BAR", 5), 7);
    assert_int_equal(lb_http_find_hdr(raw, &req.h, 3, "x-foo", 5), 9);
    assert_int_equal(lb_http_find_hdr(raw, &req.h, 0, "nope", 4), -1);
}

static void
test_resume_is_linear(void **state)
{
    (void)state;
    /* A 60 KiB head (one huge field) fed one byte at a time must stay cheap. */
    size_t big = 60000;
    char *raw = malloc(big + 64);
    assert_non_null(raw);
    size_t len = (size_t)sprintf(raw, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(raw + len, 'x', big);
    len += big;
    memcpy(raw + len, "\r\n\r\n", 4);
    len += 4;
    struct lb_http_limits lim;
    lb_http_limits_default(&lim);
    lim.max_head = 65535;

    struct lb_http_req req;
    struct timespec t0;
    struct timespec t1;
    int r = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lb_http_req_init(&req);
    for (size_t k = 1; k <= len; k++) {
        r = lb_http_parse_request(raw, k, &lim, &req);
        if (r != 0) {
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(r, (int)len);
    assert_int_equal(req.h.hdrs[1].value_len, big);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("info: %zu-byte head fed byte by byte: %.2f ms\n", len, ms);

    /* the same head one byte over the limit */
    lim.max_head = (uint32_t)len - 1;
    lb_http_req_init(&req);
    assert_int_equal(lb_http_parse_request(raw, len, &lim, &req), LB_HTTP_EHEAD_TOO_LARGE);
    free(raw);
}

/* ---------------------------------------------------------------- responses */

struct resp_row {
    const char *name;
    const char *raw;
    int req_method;
    int err;
    int body_bytes;
    int status;
    int version;
    int body;
    unsigned flags;
    uint64_t cl;
    const char *reason;
};

#define ROK(n, r, m, st, v, b, f, c, rs) \
    { .name = n, .raw = r, .req_method = m, .status = st, .version = v, .body = b, .flags = f, \
      .cl = c, .reason = rs }
#define RBAD(n, r, e) { .name = n, .raw = r, .req_method = LB_HTTP_GET, .err = e }

static const struct resp_row resp_rows[] = {
    ROK("200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", LB_HTTP_GET,
        200, 11, LB_HTTP_BODY_LENGTH, CL | KA, 5, "OK"),
    ROK("200 chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", LB_HTTP_GET,
        200, 11, LB_HTTP_BODY_CHUNKED, CH | KA, 0, "OK"),
    ROK("close-delimited", "HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n", LB_HTTP_GET,
        200, 11, LB_HTTP_BODY_CLOSE, 0, 0, "OK"),
    ROK("204", "HTTP/1.1 204 No Content\r\n\r\n", LB_HTTP_DELETE,
        204, 11, LB_HTTP_BODY_NONE, KA, 0, "No Content"),
    ROK("304 with length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", LB_HTTP_GET,
        304, 11, LB_HTTP_BODY_NONE, CL | KA, 100, "Not Modified"),
    ROK("HEAD response with length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", LB_HTTP_HEAD,
        200, 11, LB_HTTP_BODY_NONE, CL | KA, 100, "OK"),
    ROK("HEAD response chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", LB_HTTP_HEAD,
        200, 11, LB_HTTP_BODY_NONE, CH | KA, 0, "OK"),
    ROK("100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", LB_HTTP_POST,
        100, 11, LB_HTTP_BODY_NONE, KA, 0, "Continue"),
    ROK("101 upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        LB_HTTP_GET, 101, 11, LB_HTTP_BODY_NONE, KA | UP, 0, "Switching Protocols"),
    ROK("1.0 with length", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", LB_HTTP_GET,
        200, 10, LB_HTTP_BODY_LENGTH, CL, 2, "OK"),
    ROK("1.0 keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n",
        LB_HTTP_GET, 200, 10, LB_HTTP_BODY_LENGTH, CL | KA | CK, 2, "OK"),
    ROK("1.0 keep-alive close-delimited", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
        LB_HTTP_GET, 200, 10, LB_HTTP_BODY_CLOSE, CK, 0, "OK"),
    ROK("Connection close", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        LB_HTTP_GET, 503, 11, LB_HTTP_BODY_LENGTH, CL | CC, 0, "Service Unavailable"),
    ROK("no reason phrase", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", LB_HTTP_GET,
        200, 11, LB_HTTP_BODY_LENGTH, CL | KA, 0, ""),
    ROK("empty reason phrase", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", LB_HTTP_GET,
        404, 11, LB_HTTP_BODY_LENGTH, CL | KA, 0, ""),
    ROK("leading CRLF", "\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\nLocation: /posts/1\r\n\r\n",
        LB_HTTP_POST, 201, 11, LB_HTTP_BODY_LENGTH, CL | KA, 3, "Created"),
    ROK("599", "HTTP/1.1 599 Whatever it is\r\nContent-Length: 0\r\n\r\n", LB_HTTP_GET,
        599, 11, LB_HTTP_BODY_LENGTH, CL | KA, 0, "Whatever it is"),
    RBAD("status 2 digits", "HTTP/1.1 20 OK\r\n\r\n", LB_HTTP_ESTATUS),
    RBAD("status 4 digits", "HTTP/1.1 2000 OK\r\n\r\n", LB_HTTP_ESTATUS),
    RBAD("status 600", "HTTP/1.1 600 X\r\n\r\n", LB_HTTP_ESTATUS),
    RBAD("status 099", "HTTP/1.1 099 X\r\n\r\n", LB_HTTP_ESTATUS),
    RBAD("no space after version", "HTTP/1.1200 OK\r\n\r\n", LB_HTTP_EVERSION),
    RBAD("version 2", "HTTP/2.0 200 OK\r\n\r\n", LB_HTTP_EVERSION_UNSUPP),
    RBAD("garbage", "hello\r\n\r\n", LB_HTTP_EVERSION),
    RBAD("CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         LB_HTTP_ECL_TE),
    RBAD("two CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", LB_HTTP_ECL_DUP),
    RBAD("bad CL", "HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n", LB_HTTP_ECL),
    RBAD("TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", LB_HTTP_ETE),
    RBAD("TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", LB_HTTP_ETE_HTTP10),
    RBAD("obs-fold", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n", LB_HTTP_EOBSFOLD),
    RBAD("bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", LB_HTTP_ECRLF),
    RBAD("control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", LB_HTTP_ESTATUS),
    RBAD("space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", LB_HTTP_EHCOLON),
    { .name = "incomplete", .raw = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", .err = NEEDMORE },
};

static void
test_response_table(void **state)
{
    (void)state;
    size_t n = sizeof(resp_rows) / sizeof(resp_rows[0]);

    for (size_t i = 0; i < n; i++) {
        const struct resp_row *row = &resp_rows[i];
        size_t len = strlen(row->raw);
        struct lb_http_resp whole;
        struct lb_http_resp inc;
        char *b = malloc(len + 1);
        assert_non_null(b);
        memcpy(b, row->raw, len);

        lb_http_resp_init(&whole);
        int r = lb_http_parse_response(b, len, NULL, row->req_method, &whole);
        /* byte at a time gives the same answer */
        lb_http_resp_init(&inc);
        int ri = 0;
        for (size_t k = 0; k <= len; k++) {
            ri = lb_http_parse_response(b, k, NULL, row->req_method, &inc);
            if (ri != 0) {
                break;
            }
        }
        if (ri != r) {
            fail_msg("%s: byte-at-a-time %d, whole %d", row->name, ri, r);
        }
        if (row->err == NEEDMORE) {
            if (r != 0) {
                fail_msg("%s: got %d, want 0", row->name, r);
            }
        } else if (row->err != 0) {
            if (r != row->err) {
                fail_msg("%s: got %d (%s), want %s", row->name, r, r < 0 ? lb_http_strerror(r) : "ok",
                         lb_http_strerror(row->err));
            }
        } else {
            if (r != (int)len - row->body_bytes) {
                fail_msg("%s: got %d (%s), want %zu", row->name, r, r < 0 ? lb_http_strerror(r) : "",
                         len);
            }
            if (whole.status != row->status || whole.h.version != row->version
                || whole.h.body != row->body || whole.h.flags != row->flags) {
                fail_msg("%s: status %d version %d body %d flags 0x%x, want %d %d %d 0x%x", row->name,
                         whole.status, whole.h.version, whole.h.body, whole.h.flags, row->status,
                         row->version, row->body, row->flags);
            }
            if ((row->flags & CL) && whole.h.content_length != row->cl) {
                fail_msg("%s: content length", row->name);
            }
            if (!span_eq(b, whole.reason_off, whole.reason_len, row->reason)) {
                fail_msg("%s: reason '%.*s'", row->name, whole.reason_len, b + whole.reason_off);
            }
            if (inc.status != whole.status || inc.h.flags != whole.h.flags
                || inc.h.nhdrs != whole.h.nhdrs || inc.reason_len != whole.reason_len) {
                fail_msg("%s: byte-at-a-time parse differs", row->name);
            }
        }
        free(b);
    }
    print_message("response table: %zu rows\n", n);
    assert_true(n >= 20);
}

static void
test_response_limits(void **state)
{
    (void)state;
    struct lb_http_limits lim;
    struct lb_http_resp resp;
    const char *raw = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n";

    lb_http_limits_default(&lim);
    lim.max_headers = 3;
    lb_http_resp_init(&resp);
    assert_int_equal(lb_http_parse_response(raw, strlen(raw), &lim, LB_HTTP_GET, &resp),
                     LB_HTTP_ETOO_MANY_HEADERS);
    lim.max_headers = 4;
    lim.max_head = 20;
    lb_http_resp_init(&resp);
    assert_int_equal(lb_http_parse_response(raw, strlen(raw), &lim, LB_HTTP_GET, &resp),
                     LB_HTTP_EHEAD_TOO_LARGE);
    /* responses ignore max_body */
    lim.max_head = 0;
    lim.max_body = 1;
    const char *big = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
    lb_http_resp_init(&resp);
    assert_int_equal(lb_http_parse_response(big, strlen(big), &lim, LB_HTTP_GET, &resp),
                     (int)strlen(big));
    assert_int_equal(resp.h.content_length, 1000000);
}

static void
test_error_table(void **state)
{
    (void)state;
    assert_int_equal(lb_http_error_status(LB_HTTP_ECL_TE), 400);
    assert_int_equal(lb_http_error_status(LB_HTTP_EBODY_TOO_LARGE), 413);
    assert_int_equal(lb_http_error_status(LB_HTTP_ELINE_TOO_LONG), 414);
    assert_int_equal(lb_http_error_status(LB_HTTP_EHEAD_TOO_LARGE), 431);
    assert_int_equal(lb_http_error_status(LB_HTTP_ETE_UNSUPP), 501);
    assert_int_equal(lb_http_error_status(LB_HTTP_EVERSION_UNSUPP), 505);
    assert_int_equal(lb_http_error_status(-1), 400);
    assert_string_equal(lb_http_strerror(LB_HTTP_EOBSFOLD), "obsolete line folding");
    assert_string_equal(lb_http_strerror(12345), "unknown error");
    assert_string_equal(lb_http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(lb_http_method_name(LB_HTTP_DELETE), "DELETE");
}

static void
test_bench(void **state)
{
    (void)state;
    const char *raw = "GET /posts/6551f0c2a1b2c3d4e5f60718 HTTP/1.1\r\n"
                      "Host: blog.example.com\r\n"
                      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\n"
                      "Accept: application/json\r\n"
                      "Accept-Encoding: gzip, deflate\r\n"
                      "Connection: keep-alive\r\n"
                      "\r\n";
    size_t len = strlen(raw);
    struct lb_http_req req;
    struct timespec t0;
    struct timespec t1;
    int iters = 200000;
    long sum = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < iters; i++) {
        lb_http_req_init(&req);
        sum += lb_http_parse_request(raw, len, NULL, &req);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(sum, (long)len * iters);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / iters;
    print_message("info: %zu-byte GET head: %.0f ns per parse (incl. init)\n", len, ns);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_random_splits),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_hop_by_hop_and_idx),
        cmocka_unit_test(test_resume_is_linear),
        cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_response_limits),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
