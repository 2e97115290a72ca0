#include "lb_http.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/*
 * Design notes.
 * - One left-to-right pass per line with a 256-entry class table. The common runs are
 *   skipped 16 bytes at a time with SSE2 (letters/digits/'-' in tokens, plus '.' '/' in
 *   targets and '.' ':' in Host); field values, most of a head's bytes, are checked 16
 *   (SSE2) or 8 (SWAR) bytes at a time. Byte loops handle the rest and the buffer tail.
 * - Resumable line parsers: when a call runs out of bytes inside a line, the parser saves
 *   its place (grammar state + offset) and the next call continues from there, so every
 *   byte is examined a bounded number of times whatever the read pattern (O(n), never
 *   O(n^2) for a head fed one byte at a time).
 * - Every decision depends only on bytes already seen, in order, and limits are applied
 *   by bounding the bytes a line may use; so the result is the same however the input
 *   is split (the unit test checks byte-at-a-time feeding against all-at-once).
 */

/* Character classes. */
#define C_TCHAR  0x01u /* token (RFC 9110 5.6.2) */
#define C_VALUE  0x02u /* field-vchar, obs-text, SP, HTAB */
#define C_TARGET 0x04u /* origin-form: pchar, '/', '?' ('%' checked apart) */
#define C_HOST   0x08u /* uri-host[:port]: unreserved, sub-delims, ':', '[', ']', '%' */
#define C_HEX    0x10u
#define C_TPLAIN 0x20u /* C_TARGET minus '%' and '?' (the bytes that need a look) */

#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_UNRESERVED(c) \
    (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~')
#define IS_SUBDELIM(c)                                                                \
    ((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' \
     || (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=')
#define IS_TCHAR(c)                                                                   \
    (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' \
     || (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-'             \
     || (c) == '.' || (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
#define IS_VALUE(c) ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f))
#define IS_TARGET(c) \
    (IS_UNRESERVED(c) || IS_SUBDELIM(c) || (c) == ':' || (c) == '@' || (c) == '/' \
     || (c) == '?' || (c) == '%')
#define IS_HOST(c) \
    (IS_UNRESERVED(c) || IS_SUBDELIM(c) || (c) == ':' || (c) == '[' || (c) == ']' || (c) == '%')
#define IS_HEX(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))

#define CLS(c)                                                                          \
    (uint8_t)((IS_TCHAR(c) ? C_TCHAR : 0u) | (IS_VALUE(c) ? C_VALUE : 0u)               \
              | (IS_TARGET(c) ? C_TARGET : 0u) | (IS_HOST(c) ? C_HOST : 0u)             \
              | (IS_HEX(c) ? C_HEX : 0u)                                                 \
              | (IS_TARGET(c) && (c) != '%' && (c) != '?' ? C_TPLAIN : 0u))
#define LOW(c) (uint8_t)(((c) >= 'A' && (c) <= 'Z') ? (c) + 32 : (c))

#define R4(f, b) f(b), f((b) + 1), f((b) + 2), f((b) + 3)
#define R16(f, b) R4(f, b), R4(f, (b) + 4), R4(f, (b) + 8), R4(f, (b) + 12)
#define R64(f, b) R16(f, b), R16(f, (b) + 16), R16(f, (b) + 32), R16(f, (b) + 48)
#define R256(f) R64(f, 0), R64(f, 64), R64(f, 128), R64(f, 192)

static const uint8_t cls[256] = { R256(CLS) };
static const uint8_t low[256] = { R256(LOW) };

/* parse_*_line() results besides 0 and negative errors */
#define NEED 1      /* ran out of bytes before the LF */
#define EMPTY 2     /* the line is an empty line (CRLF) */

enum { ST_START = 0, ST_FIELDS = 1, ST_DONE = 2, ST_ERR = 3 };

struct lim {
    uint32_t max_line;
    uint32_t max_head;
    uint32_t max_headers;
    uint64_t max_body;
};

void
lb_http_limits_default(struct lb_http_limits *lim)
{
    lim->max_line = LB_HTTP_DEFAULT_MAX_LINE;
    lim->max_head = LB_HTTP_DEFAULT_MAX_HEAD;
    lim->max_headers = LB_HTTP_DEFAULT_MAX_HEADERS;
    lim->max_body = LB_HTTP_DEFAULT_MAX_BODY;
}

static void
get_limits(const struct lb_http_limits *in, struct lim *l)
{
    l->max_line = LB_HTTP_DEFAULT_MAX_LINE;
    l->max_head = LB_HTTP_DEFAULT_MAX_HEAD;
    l->max_headers = LB_HTTP_DEFAULT_MAX_HEADERS;
    l->max_body = LB_HTTP_DEFAULT_MAX_BODY;
    if (in != NULL) {
        if (in->max_line != 0) {
            l->max_line = in->max_line;
        }
        if (in->max_head != 0) {
            l->max_head = in->max_head;
        }
        if (in->max_headers != 0) {
            l->max_headers = in->max_headers;
        }
        l->max_body = in->max_body;
    }
    if (l->max_head > LB_HTTP_MAX_HEAD_CAP) {
        l->max_head = LB_HTTP_MAX_HEAD_CAP;
    }
    if (l->max_headers > LB_HTTP_MAX_HEADERS) {
        l->max_headers = LB_HTTP_MAX_HEADERS;
    }
}

static void
head_init(struct lb_http_head *h)
{
    /* hdrs[] is left uninitialised on purpose: only [0, nhdrs) is ever read. */
    memset(h, 0, offsetof(struct lb_http_head, hdrs));
    for (int i = 0; i < LB_HTTP_H__COUNT; i++) {
        h->idx[i] = -1;
    }
}

void
lb_http_req_init(struct lb_http_req *req)
{
    head_init(&req->h);
    req->method = LB_HTTP_OTHER;
    req->method_off = req->method_len = 0;
    req->target_off = req->target_len = req->path_len = 0;
    req->query_off = req->query_len = 0;
}

void
lb_http_resp_init(struct lb_http_resp *resp)
{
    head_init(&resp->h);
    resp->status = 0;
    resp->reason_off = resp->reason_len = 0;
}

/*
 * 1 when the <n> bytes at <s> equal the literal <lit> ignoring case. <lit> holds only
 * lower-case letters, digits and '-'; <s> holds no control characters (names, tokens and
 * field values are validated first). Then OR-ing 0x20 is an exact case fold: the only
 * other bytes it maps onto a literal byte are CR (-> '-') and 0x10-0x19 (-> digits).
 */
static inline int
ieq(const unsigned char *s, const char *lit, size_t n)
{
    const uint64_t fold = 0x2020202020202020ull;

    while (n >= 8) {
        uint64_t a;
        uint64_t l;
        memcpy(&a, s, 8);
        memcpy(&l, lit, 8);
        if ((a | fold) != l) {
            return 0;
        }
        s += 8;
        lit += 8;
        n -= 8;
    }
    for (size_t i = 0; i < n; i++) {
        if ((s[i] | 0x20u) != (unsigned char)lit[i]) {
            return 0;
        }
    }
    return 1;
}

/*
 * SWAR: a mask with bit 7 of each byte of <w> set when that byte is < 0x20 (controls,
 * HTAB, CR, LF) or 0x7f; 0 when there is none. Borrows can flag bytes above a true one,
 * never below it, so the lowest flagged byte is always a true one.
 */
static inline uint64_t
special_mask(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t high = 0x8080808080808080ull;
    uint64_t lt = (w - ones * 0x20) & ~w & high;
    uint64_t x = w ^ (ones * 0x7f);
    uint64_t del = (x - ones) & ~x & high;
    return lt | del;
}

/* Which fast run skip_class() may use: bytes that are always in the class. */
#define RUN_TOKEN  0 /* ALPHA DIGIT '-' (token) */
#define RUN_TARGET 1 /* ALPHA DIGIT '-' '.' '/' (origin-form) */
#define RUN_HOST   2 /* ALPHA DIGIT '-' '.' ':' (host[:port]) */

/*
 * Returns the index of the first byte at or after <i> that is not in the fast run
 * <run>, looking 16 bytes at a time (SSE2); may stop earlier when fewer than 16 bytes
 * remain before <end>. Without SSE2 it returns <i>.
 */
static inline __attribute__((always_inline)) uint32_t
fast_run(const unsigned char *b, uint32_t i, uint32_t end, int run)
{
#if defined(__SSE2__)
    const __m128i fold = _mm_set1_epi8(0x20);
    const __m128i a_lo = _mm_set1_epi8('a' - 1);
    const __m128i a_hi = _mm_set1_epi8('z' + 1);
    /* two byte ranges besides letters: [r1_lo, r1_hi] and [r2_lo, r2_hi] */
    const __m128i r1_lo = _mm_set1_epi8('-' - 1);
    const __m128i r1_hi = _mm_set1_epi8(run == RUN_TOKEN ? '-' + 1 : run == RUN_TARGET ? '9' + 1 : '.' + 1);
    const __m128i r2_lo = _mm_set1_epi8('0' - 1);
    const __m128i r2_hi = _mm_set1_epi8(run == RUN_HOST ? ':' + 1 : '9' + 1);

    while (i + 16 <= end) {
        /* signed compares: bytes >= 0x80 are negative and fail every range */
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        __m128i l = _mm_or_si128(x, fold);
        __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(l, a_lo), _mm_cmplt_epi8(l, a_hi));
        __m128i r1 = _mm_and_si128(_mm_cmpgt_epi8(x, r1_lo), _mm_cmplt_epi8(x, r1_hi));
        __m128i r2 = _mm_and_si128(_mm_cmpgt_epi8(x, r2_lo), _mm_cmplt_epi8(x, r2_hi));
        __m128i ok = _mm_or_si128(_mm_or_si128(alpha, r1), r2);
        unsigned m = (unsigned)_mm_movemask_epi8(ok);
        if (m != 0xffffu) {
            return i + (uint32_t)__builtin_ctz(~m);
        }
        i += 16;
    }
#else
    (void)b;
    (void)end;
    (void)run;
#endif
    return i;
}

/* Advances <i> over bytes of class <c> in b[i..end); <run> is a fast subset of <c>. */
static inline __attribute__((always_inline)) uint32_t
skip_class(const unsigned char *b, uint32_t i, uint32_t end, uint8_t c, int run)
{
    for (;;) {
        i = fast_run(b, i, end, run);
        if (i + 16 > end) {
            break;
        }
        if (!(cls[b[i]] & c)) {
            return i;
        }
        i++;
    }
    while (i + 4 <= end && (cls[b[i]] & cls[b[i + 1]] & cls[b[i + 2]] & cls[b[i + 3]] & c)) {
        i += 4;
    }
    while (i < end && (cls[b[i]] & c)) {
        i++;
    }
    return i;
}

/*
 * Returns the index of the first byte at or after <i> that is < 0x20 (controls, HTAB,
 * CR, LF) or 0x7f, looking 16 (SSE2) or 8 (SWAR) bytes at a time; may stop earlier when
 * few bytes remain before <end>.
 */
static inline uint32_t
value_run(const unsigned char *b, uint32_t i, uint32_t end)
{
#if defined(__SSE2__)
    const __m128i c1f = _mm_set1_epi8(0x1f);
    const __m128i c7f = _mm_set1_epi8(0x7f);

    while (i + 16 <= end) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        __m128i lt = _mm_cmpeq_epi8(_mm_min_epu8(x, c1f), x); /* x <= 0x1f unsigned */
        __m128i del = _mm_cmpeq_epi8(x, c7f);
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(lt, del));
        if (m != 0) {
            return i + (uint32_t)__builtin_ctz(m);
        }
        i += 16;
    }
#endif
    while (i + 8 <= end) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        uint64_t m = special_mask(w);
        if (m != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* the lowest flagged byte is exact (false positives only sit above it) */
            i += (uint32_t)__builtin_ctzll(m) / 8;
#endif
            break;
        }
        i += 8;
    }
    return i;
}

#define IEQ(s, n, lit) ((n) == sizeof(lit) - 1 && ieq((s), (lit), sizeof(lit) - 1))

static uint8_t
hdr_id(const unsigned char *n, size_t len)
{
    switch (len) {
    case 2:
        return ieq(n, "te", 2) ? LB_HTTP_H_TE : LB_HTTP_H_OTHER;
    case 4:
        return ieq(n, "host", 4) ? LB_HTTP_H_HOST : LB_HTTP_H_OTHER;
    case 6:
        return ieq(n, "expect", 6) ? LB_HTTP_H_EXPECT : LB_HTTP_H_OTHER;
    case 7:
        if (ieq(n, "upgrade", 7)) {
            return LB_HTTP_H_UPGRADE;
        }
        return ieq(n, "trailer", 7) ? LB_HTTP_H_TRAILER : LB_HTTP_H_OTHER;
    case 9:
        return ieq(n, "forwarded", 9) ? LB_HTTP_H_FORWARDED : LB_HTTP_H_OTHER;
    case 10:
        if (ieq(n, "connection", 10)) {
            return LB_HTTP_H_CONNECTION;
        }
        return ieq(n, "keep-alive", 10) ? LB_HTTP_H_KEEP_ALIVE : LB_HTTP_H_OTHER;
    case 12:
        return ieq(n, "x-request-id", 12) ? LB_HTTP_H_X_REQUEST_ID : LB_HTTP_H_OTHER;
    case 14:
        return ieq(n, "content-length", 14) ? LB_HTTP_H_CONTENT_LENGTH : LB_HTTP_H_OTHER;
    case 15:
        return ieq(n, "x-forwarded-for", 15) ? LB_HTTP_H_X_FORWARDED_FOR : LB_HTTP_H_OTHER;
    case 16:
        return ieq(n, "proxy-connection", 16) ? LB_HTTP_H_PROXY_CONNECTION : LB_HTTP_H_OTHER;
    case 17:
        if (ieq(n, "transfer-encoding", 17)) {
            return LB_HTTP_H_TRANSFER_ENCODING;
        }
        return ieq(n, "x-forwarded-proto", 17) ? LB_HTTP_H_X_FORWARDED_PROTO : LB_HTTP_H_OTHER;
    default:
        return LB_HTTP_H_OTHER;
    }
}

/* LB_HTTP_HF_HOP for the hop-by-hop ids (RFC 9110 7.6.1), by enum lb_http_hid */
static const uint8_t hop_ids[LB_HTTP_H__COUNT] = {
    [LB_HTTP_H_CONNECTION] = LB_HTTP_HF_HOP,
    [LB_HTTP_H_KEEP_ALIVE] = LB_HTTP_HF_HOP,
    [LB_HTTP_H_PROXY_CONNECTION] = LB_HTTP_HF_HOP,
    [LB_HTTP_H_TE] = LB_HTTP_HF_HOP,
    [LB_HTTP_H_TRAILER] = LB_HTTP_HF_HOP,
    [LB_HTTP_H_TRANSFER_ENCODING] = LB_HTTP_HF_HOP,
    [LB_HTTP_H_UPGRADE] = LB_HTTP_HF_HOP,
};

static int
method_id(const unsigned char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0) {
            return LB_HTTP_GET;
        }
        return memcmp(m, "PUT", 3) == 0 ? LB_HTTP_PUT : LB_HTTP_OTHER;
    case 4:
        if (memcmp(m, "HEAD", 4) == 0) {
            return LB_HTTP_HEAD;
        }
        return memcmp(m, "POST", 4) == 0 ? LB_HTTP_POST : LB_HTTP_OTHER;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0) {
            return LB_HTTP_PATCH;
        }
        return memcmp(m, "TRACE", 5) == 0 ? LB_HTTP_TRACE : LB_HTTP_OTHER;
    case 6:
        return memcmp(m, "DELETE", 6) == 0 ? LB_HTTP_DELETE : LB_HTTP_OTHER;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0) {
            return LB_HTTP_OPTIONS;
        }
        return memcmp(m, "CONNECT", 7) == 0 ? LB_HTTP_CONNECT : LB_HTTP_OTHER;
    default:
        return LB_HTTP_OTHER;
    }
}

/*
 * Error for the byte at b[i] that ends a line early: "\r\n" -> <if_crlf>, bare CR or LF
 * -> LB_HTTP_ECRLF, CR as the last available byte -> NEED, anything else -> <other>.
 */
static int
eol_error(const unsigned char *b, uint32_t i, uint32_t end, int if_crlf, int other)
{
    if (b[i] == '\n') {
        return LB_HTTP_ECRLF;
    }
    if (b[i] == '\r') {
        if (i + 1 >= end) {
            return NEED;
        }
        return b[i + 1] == '\n' ? if_crlf : LB_HTTP_ECRLF;
    }
    return other;
}

/*
 * Checks "HTTP/1.0" or "HTTP/1.1" at b[i..i+8), possibly with fewer bytes available:
 * returns 0 (and *ver) when all 8 bytes match, NEED when the available ones fit the
 * pattern "HTTP/" DIGIT "." DIGIT, LB_HTTP_EVERSION_UNSUPP for another HTTP/d.d,
 * LB_HTTP_EVERSION otherwise.
 */
static int
check_version(const unsigned char *b, uint32_t i, uint32_t end, uint8_t *ver)
{
    static const char pat[] = "HTTP/1.1";
    uint32_t n = end - i < 8 ? end - i : 8;

    if (n == 8) {
        if (memcmp(b + i, "HTTP/1.1", 8) == 0) {
            *ver = LB_HTTP_11;
            return 0;
        }
        if (memcmp(b + i, "HTTP/1.0", 8) == 0) {
            *ver = LB_HTTP_10;
            return 0;
        }
    }

    for (uint32_t k = 0; k < n; k++) {
        unsigned char c = b[i + k];
        if (k == 5 || k == 7) {
            if (!IS_DIGIT(c)) {
                return LB_HTTP_EVERSION;
            }
        } else if (c != (unsigned char)pat[k]) {
            return LB_HTTP_EVERSION;
        }
    }
    if (n < 8) {
        return NEED;
    }
    if (b[i + 5] == '1' && (b[i + 7] == '1' || b[i + 7] == '0')) {
        *ver = (uint8_t)(b[i + 7] == '1' ? LB_HTTP_11 : LB_HTTP_10);
        return 0;
    }
    return LB_HTTP_EVERSION_UNSUPP;
}

/*
 * The line parsers below are resumable: when they run out of bytes they save where they
 * are (h->sub, h->scan, h->m1, h->m2) and return NEED; the next call jumps back to that
 * point. Long components (method, target, field value, reason) resume at the exact byte;
 * short fixed ones (version, status code, a '%' escape, a CR) are rechecked from their
 * start, which costs a constant.
 */
#define SAVE(st, at) do { h->sub = (uint8_t)(st); h->scan = (at); } while (0)

enum { RL_BEGIN = 0, RL_METHOD, RL_TARGET, RL_VERSION };

/* Request line at b[s..end). 0 + *next, NEED, EMPTY + *next, or an error. */
static int
parse_request_line(const unsigned char *b, uint32_t s, uint32_t end, struct lb_http_head *h,
                   struct lb_http_req *req, uint32_t *next)
{
    uint32_t i = h->scan;
    uint32_t t;
    uint32_t q;
    int r;

    switch (h->sub) {
    case RL_METHOD:
        goto method;
    case RL_TARGET:
        goto target;
    case RL_VERSION:
        goto version;
    default:
        break;
    }
    i = s;
    if (b[i] == '\r' || b[i] == '\n') {
        r = eol_error(b, i, end, EMPTY, 0);
        if (r == EMPTY) {
            *next = i + 2;
        } else if (r == NEED) {
            SAVE(RL_BEGIN, s);
        }
        return r;
    }
method:
    i = skip_class(b, i, end, C_TCHAR, RUN_TOKEN);
    if (i >= end) {
        SAVE(RL_METHOD, i);
        return NEED;
    }
    if (i == s) {
        return LB_HTTP_EMETHOD;
    }
    if (b[i] != ' ') {
        r = eol_error(b, i, end, LB_HTTP_ELINE, LB_HTTP_EMETHOD);
        if (r == NEED) {
            SAVE(RL_METHOD, i);
        }
        return r;
    }
    req->method = (uint8_t)method_id(b + s, i - s);
    if (req->method == LB_HTTP_CONNECT) {
        return LB_HTTP_ENOTIMPL;
    }
    req->method_off = (uint16_t)s;
    req->method_len = (uint16_t)(i - s);
    i++;
    h->m1 = (uint16_t)i; /* target start */
    h->m2 = 0;           /* first '?' */

target:
    t = h->m1;
    q = h->m2;
    for (;;) {
        i = skip_class(b, i, end, C_TPLAIN, RUN_TARGET);
        if (i >= end) {
            goto target_need;
        }
        if (b[i] == '?') {
            if (q == 0) {
                q = i;
            }
            i++;
        } else if (b[i] == '%') {
            if (i + 1 >= end) {
                goto target_need;
            }
            if (!(cls[b[i + 1]] & C_HEX)) {
                return LB_HTTP_ETARGET;
            }
            if (i + 2 >= end) {
                goto target_need;
            }
            if (!(cls[b[i + 2]] & C_HEX)) {
                return LB_HTTP_ETARGET;
            }
            i += 3;
        } else {
            break;
        }
    }
    if (b[i] != ' ') {
        r = eol_error(b, i, end, LB_HTTP_ELINE, LB_HTTP_ETARGET);
        if (r == NEED) {
            goto target_need;
        }
        return r;
    }
    if (i == t) {
        return LB_HTTP_ELINE;
    }
    if (b[t] != '/') {
        /* Only origin-form, and asterisk-form for OPTIONS; no absolute-form. */
        if (!(i - t == 1 && b[t] == '*' && req->method == LB_HTTP_OPTIONS)) {
            return LB_HTTP_ETARGET;
        }
    }
    req->target_off = (uint16_t)t;
    req->target_len = (uint16_t)(i - t);
    if (q != 0) {
        req->path_len = (uint16_t)(q - t);
        req->query_off = (uint16_t)(q + 1);
        req->query_len = (uint16_t)(i - q - 1);
    } else {
        req->path_len = req->target_len;
        req->query_off = req->query_len = 0;
    }
    h->m1 = (uint16_t)(i + 1); /* version start */

version:
    i = h->m1;
    r = check_version(b, i, end, &req->h.version);
    if (r == NEED) {
        SAVE(RL_VERSION, i);
    }
    if (r != 0) {
        return r;
    }
    i += 8;
    if (i >= end) {
        SAVE(RL_VERSION, h->m1);
        return NEED;
    }
    if (b[i] != '\r' && b[i] != '\n') {
        return LB_HTTP_EVERSION;
    }
    r = eol_error(b, i, end, 0, 0);
    if (r == NEED) {
        SAVE(RL_VERSION, h->m1);
    }
    if (r != 0) {
        return r;
    }
    *next = i + 2;
    return 0;

target_need:
    h->m2 = (uint16_t)q;
    SAVE(RL_TARGET, i);
    return NEED;
}

enum { SL_BEGIN = 0, SL_VERSION, SL_REASON };

/* Status line at b[s..end). 0 + *next, NEED, EMPTY + *next, or an error. */
static int
parse_status_line(const unsigned char *b, uint32_t s, uint32_t end, struct lb_http_head *h,
                  struct lb_http_resp *resp, uint32_t *next)
{
    uint32_t i = h->scan;
    unsigned status = 0;
    int r;

    switch (h->sub) {
    case SL_VERSION:
        goto version;
    case SL_REASON:
        goto reason;
    default:
        break;
    }
    i = s;
    if (b[i] == '\r' || b[i] == '\n') {
        r = eol_error(b, i, end, EMPTY, 0);
        if (r == EMPTY) {
            *next = i + 2;
        } else if (r == NEED) {
            SAVE(SL_BEGIN, s);
        }
        return r;
    }
version:
    /* version, SP and status code are rechecked from the line start: 12 bytes */
    i = s;
    r = check_version(b, i, end, &resp->h.version);
    if (r != 0) {
        goto version_out;
    }
    i += 8;
    if (i >= end) {
        r = NEED;
        goto version_out;
    }
    if (b[i] != ' ') {
        r = eol_error(b, i, end, LB_HTTP_ELINE, LB_HTTP_EVERSION);
        goto version_out;
    }
    i++;
    for (int k = 0; k < 3; k++, i++) {
        if (i >= end) {
            r = NEED;
            goto version_out;
        }
        if (!IS_DIGIT(b[i])) {
            r = eol_error(b, i, end, LB_HTTP_ESTATUS, LB_HTTP_ESTATUS);
            goto version_out;
        }
        status = status * 10 + (unsigned)(b[i] - '0');
    }
    if (status < 100 || status > 599) {
        return LB_HTTP_ESTATUS;
    }
    resp->status = (uint16_t)status;
    if (i >= end) {
        r = NEED;
        goto version_out;
    }
    if (b[i] == ' ') {
        i++;
    } else if (b[i] != '\r' && b[i] != '\n') {
        return LB_HTTP_ESTATUS;
    }
    /* "HTTP/1.1 200\r\n": reason phrase and its SP omitted (accepted). */
    resp->reason_off = (uint16_t)i;

reason:
    while (i < end && (cls[b[i]] & C_VALUE)) {
        i++;
    }
    if (i >= end) {
        SAVE(SL_REASON, i);
        return NEED;
    }
    r = eol_error(b, i, end, 0, LB_HTTP_ESTATUS);
    if (r == NEED) {
        SAVE(SL_REASON, i);
    }
    if (r != 0) {
        return r;
    }
    resp->reason_len = (uint16_t)(i - resp->reason_off);
    *next = i + 2;
    return 0;

version_out:
    if (r == NEED) {
        SAVE(SL_VERSION, s);
    }
    return r;
}


enum { FL_BEGIN = 0, FL_NAME, FL_OWS, FL_VALUE };

/*
 * Field line at b[s..end), parsed into h->hdrs[h->nhdrs] (id and flags are left to the
 * caller). Returns 0 (*next after the CRLF), EMPTY (the empty line that ends the head,
 * *next after it), NEED, or an error.
 */
static int
parse_field_line(const unsigned char *b, uint32_t s, uint32_t end, struct lb_http_head *h,
                 uint32_t max_headers, uint32_t *next)
{
    /* Work in locals: stores through <hdr> may alias <b> and would force reloads. */
    struct lb_http_hdr *hdr = &h->hdrs[h->nhdrs < LB_HTTP_MAX_HEADERS ? h->nhdrs : 0];
    uint32_t i;
    uint32_t name_len = 0;
    uint32_t vs = 0;
    uint32_t ve;
    unsigned char c;
    int r;

    if (h->sub != FL_BEGIN) {
        i = h->scan;
        name_len = hdr->name_len;
        vs = hdr->value_off;
        if (h->sub == FL_NAME) {
            goto name;
        }
        if (h->sub == FL_OWS) {
            goto ows;
        }
        goto value;
    }
    i = s;
    c = b[i];
    if (c == '\r' || c == '\n') {
        r = eol_error(b, i, end, EMPTY, 0);
        if (r == EMPTY) {
            *next = i + 2;
        } else if (r == NEED) {
            SAVE(FL_BEGIN, s);
        }
        return r;
    }
    if (c == ' ' || c == '\t') {
        return LB_HTTP_EOBSFOLD;
    }
    if (h->nhdrs >= max_headers) {
        return LB_HTTP_ETOO_MANY_HEADERS;
    }
name:
    i = skip_class(b, i, end, C_TCHAR, RUN_TOKEN);
    if (i >= end) {
        SAVE(FL_NAME, i);
        return NEED;
    }
    c = b[i];
    if (c != ':') {
        if (i == s) {
            return LB_HTTP_EHNAME;
        }
        if (c == ' ' || c == '\t') {
            return LB_HTTP_EHCOLON; /* "Name :" */
        }
        if (c == '\r' || c == '\n') {
            /* a line without a colon */
            r = eol_error(b, i, end, LB_HTTP_EHCOLON, LB_HTTP_EHCOLON);
            if (r == NEED) {
                SAVE(FL_NAME, i);
            }
            return r;
        }
        return LB_HTTP_EHNAME;
    }
    if (i == s) {
        return LB_HTTP_EHNAME;
    }
    name_len = i - s;
    i++;
ows:
    if (i < end && b[i] == ' ') {
        i++;
    }
    while (i < end && (b[i] == ' ' || b[i] == '\t')) {
        i++;
    }
    if (i >= end) {
        hdr->name_len = (uint16_t)name_len;
        SAVE(FL_OWS, i);
        return NEED;
    }
    vs = i;
value:
    for (;;) {
        i = value_run(b, i, end);
        while (i < end && b[i] >= 0x20 && b[i] != 0x7f) {
            i++;
        }
        if (i < end && b[i] == '\t') {
            i++;
            continue;
        }
        break;
    }
    if (i >= end || b[i] != '\r' || i + 1 >= end || b[i + 1] != '\n') {
        r = i >= end ? NEED : eol_error(b, i, end, 0, LB_HTTP_EHVALUE);
        if (r == NEED) {
            hdr->name_len = (uint16_t)name_len;
            hdr->value_off = (uint16_t)vs;
            SAVE(FL_VALUE, i);
        }
        return r;
    }
    ve = i;
    if (b[ve - 1] == ' ' || b[ve - 1] == '\t') {
        while (ve > vs && (b[ve - 1] == ' ' || b[ve - 1] == '\t')) {
            ve--;
        }
    }
    hdr->name_off = (uint16_t)s;
    hdr->name_len = (uint16_t)name_len;
    hdr->value_off = (uint16_t)vs;
    hdr->value_len = (uint16_t)(ve - vs);
    hdr->line_len = (uint16_t)(i + 2 - s);
    *next = i + 2;
    return 0;
}

/*
 * Fast path for the common complete field line at b[s..end): a name of ALPHA, DIGIT and
 * '-' (checked 16 bytes at a time), ':', at most one SP, a value without HTAB or trailing
 * whitespace, CRLF. Fills <hdr> and *next and returns 0, or returns 1 without touching
 * anything when the line is anything else (incomplete, other token characters, OWS runs,
 * errors): parse_field_line() then parses it from its start, so both paths give the same
 * result by construction (the split-feeding tests and the fuzz target compare them).
 */
static inline __attribute__((always_inline)) int
field_fast(const unsigned char *b, uint32_t s, uint32_t end, struct lb_http_hdr *hdr,
           uint32_t *next)
{
    uint32_t i = fast_run(b, s, end, RUN_TOKEN);
    uint32_t vs;
    uint32_t ve;

    /* fast_run() stops at the first byte outside the run, or (fewer than 16 bytes left)
     * at a byte it did not look at: either way b[s..i) are run bytes */
    if (i == s || i + 2 >= end || b[i] != ':') {
        return 1;
    }
    vs = i + 1 + (b[i + 1] == ' ');
    ve = value_run(b, vs, end);
    /* value_run() stops at the first byte < 0x20 or 0x7f, or near the end at a byte it
     * did not look at: a CR there ends the line only when LF follows */
    if (ve + 1 >= end || b[ve] != '\r' || b[ve + 1] != '\n') {
        return 1;
    }
    if (ve > vs && (b[vs] == ' ' || b[ve - 1] == ' ')) {
        return 1;   /* more OWS: the general path trims it */
    }
    hdr->name_off = (uint16_t)s;
    hdr->name_len = (uint16_t)(i - s);
    hdr->value_off = (uint16_t)vs;
    hdr->value_len = (uint16_t)(ve - vs);
    hdr->line_len = (uint16_t)(ve + 2 - s);
    *next = ve + 2;
    return 0;
}

/* Content-Length value: 1*DIGIT below 2^63. */
static int
parse_content_length(const unsigned char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;

    if (n == 0) {
        return LB_HTTP_ECL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!IS_DIGIT(v[i])) {
            return LB_HTTP_ECL;
        }
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_C(0x7fffffffffffffff) - d) / 10) {
            return LB_HTTP_ECL;
        }
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* Per-line checks that need only this field: duplicates, syntax of Host/Content-Length. */
static int
check_field(const unsigned char *b, struct lb_http_head *h, struct lb_http_hdr *hdr, int is_req)
{
    const unsigned char *v = b + hdr->value_off;

    switch (hdr->id) {
    case LB_HTTP_H_HOST:
        if (!is_req) {
            return 0;
        }
        if (h->idx[LB_HTTP_H_HOST] >= 0) {
            return LB_HTTP_EHOST_DUP;
        }
        if (hdr->value_len == 0) {
            return LB_HTTP_EHOST;
        }
        if (skip_class(v, 0, hdr->value_len, C_HOST, RUN_HOST) != hdr->value_len) {
            return LB_HTTP_EHOST;
        }
        h->flags |= LB_HTTP_F_HOST;
        return 0;
    case LB_HTTP_H_CONTENT_LENGTH:
        if (h->idx[LB_HTTP_H_CONTENT_LENGTH] >= 0) {
            return LB_HTTP_ECL_DUP;
        }
        if (parse_content_length(v, hdr->value_len, &h->content_length) != 0) {
            return LB_HTTP_ECL;
        }
        h->flags |= LB_HTTP_F_CONTENT_LENGTH;
        return 0;
    default:
        return 0;
    }
}

/*
 * Iterates the elements of a comma-separated list value: on each call sets *ts and *tl to
 * the next element (OWS trimmed) and returns 1, or returns 0 at the end. Elements may
 * be empty (tl == 0). Returns -1 when an element is not a single token.
 */
static int
list_next(const unsigned char *v, uint32_t n, uint32_t *pos, uint32_t *ts, uint32_t *tl)
{
    uint32_t i = *pos;

    if (i > n) {
        return 0;
    }
    while (i < n && (v[i] == ' ' || v[i] == '\t')) {
        i++;
    }
    *ts = i;
    while (i < n && (cls[v[i]] & C_TCHAR)) {
        i++;
    }
    *tl = i - *ts;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) {
        i++;
    }
    if (i < n && v[i] != ',') {
        return -1;
    }
    *pos = i + 1; /* past the comma, or n + 1 at the end */
    return 1;
}

/* Transfer-Encoding fields: exactly one "chunked", last; other codings are 501. */
static int
check_te(const unsigned char *b, struct lb_http_head *h)
{
    int nchunked = 0;
    int last_chunked = 0;
    int nother = 0;

    for (int k = h->idx[LB_HTTP_H_TRANSFER_ENCODING]; k < h->nhdrs; k++) {
        const struct lb_http_hdr *hdr = &h->hdrs[k];
        if (hdr->id != LB_HTTP_H_TRANSFER_ENCODING) {
            continue;
        }
        const unsigned char *v = b + hdr->value_off;
        uint32_t pos = 0;
        uint32_t ts;
        uint32_t tl;
        int r;
        while ((r = list_next(v, hdr->value_len, &pos, &ts, &tl)) == 1) {
            if (tl == 0) {
                return LB_HTTP_ETE; /* empty element, "chunked," or an empty field */
            }
            if (IEQ(v + ts, tl, "chunked")) {
                nchunked++;
                last_chunked = 1;
            } else {
                nother++;
                last_chunked = 0;
            }
        }
        if (r < 0) {
            return LB_HTTP_ETE; /* parameters or junk */
        }
    }
    if (nchunked != 1 || !last_chunked) {
        return LB_HTTP_ETE;
    }
    if (nother != 0) {
        return LB_HTTP_ETE_UNSUPP;
    }
    return 0;
}

#define MAX_CONN_OPTIONS 16

/* Connection fields: close / keep-alive / upgrade, other options mark fields hop-by-hop. */
static int
check_connection(const unsigned char *b, struct lb_http_head *h, int *upgrade)
{
    int nopt = 0;

    for (int k = h->idx[LB_HTTP_H_CONNECTION]; k < h->nhdrs; k++) {
        const struct lb_http_hdr *hdr = &h->hdrs[k];
        if (hdr->id != LB_HTTP_H_CONNECTION) {
            continue;
        }
        const unsigned char *v = b + hdr->value_off;
        uint32_t pos = 0;
        uint32_t ts;
        uint32_t tl;
        int r;
        /* the usual values, without the list machinery */
        if (IEQ(v, hdr->value_len, "keep-alive")) {
            h->flags |= LB_HTTP_F_CONN_KEEP_ALIVE;
            continue;
        }
        if (IEQ(v, hdr->value_len, "close")) {
            h->flags |= LB_HTTP_F_CONN_CLOSE;
            continue;
        }
        while ((r = list_next(v, hdr->value_len, &pos, &ts, &tl)) == 1) {
            if (tl == 0) {
                continue; /* empty list elements are allowed (RFC 9110 5.6.1) */
            }
            if (IEQ(v + ts, tl, "close")) {
                h->flags |= LB_HTTP_F_CONN_CLOSE;
            } else if (IEQ(v + ts, tl, "keep-alive")) {
                h->flags |= LB_HTTP_F_CONN_KEEP_ALIVE;
            } else if (IEQ(v + ts, tl, "upgrade")) {
                *upgrade = 1;
            } else {
                if (++nopt > MAX_CONN_OPTIONS) {
                    return LB_HTTP_ECONNECTION;
                }
                for (int j = 0; j < h->nhdrs; j++) {
                    struct lb_http_hdr *o = &h->hdrs[j];
                    if (o->id == LB_HTTP_H_OTHER && o->name_len == tl
                        && lb_http_hdr_name_eq((const char *)b, o, (const char *)v + ts, tl)) {
                        o->flags |= LB_HTTP_HF_HOP;
                    }
                }
            }
        }
        if (r < 0) {
            return LB_HTTP_ECONNECTION;
        }
    }
    return 0;
}

/* Message-level rules once the whole head is in. */
static int
finish_head(const unsigned char *b, struct lb_http_head *h, const struct lim *l, int is_req,
            int no_body)
{
    int upgrade = 0;
    int r;

    if (h->idx[LB_HTTP_H_TRANSFER_ENCODING] >= 0) {
        if (h->flags & LB_HTTP_F_CONTENT_LENGTH) {
            return LB_HTTP_ECL_TE;
        }
        if (h->version == LB_HTTP_10) {
            return LB_HTTP_ETE_HTTP10;
        }
        r = check_te(b, h);
        if (r != 0) {
            return r;
        }
        h->flags |= LB_HTTP_F_CHUNKED;
    }
    if (h->idx[LB_HTTP_H_CONNECTION] >= 0) {
        r = check_connection(b, h, &upgrade);
        if (r != 0) {
            return r;
        }
    }
    if (upgrade && h->idx[LB_HTTP_H_UPGRADE] >= 0) {
        h->flags |= LB_HTTP_F_UPGRADE;
    }
    if (h->version == LB_HTTP_11) {
        if (!(h->flags & LB_HTTP_F_CONN_CLOSE)) {
            h->flags |= LB_HTTP_F_KEEP_ALIVE;
        }
    } else if ((h->flags & (LB_HTTP_F_CONN_CLOSE | LB_HTTP_F_CONN_KEEP_ALIVE))
               == LB_HTTP_F_CONN_KEEP_ALIVE) {
        h->flags |= LB_HTTP_F_KEEP_ALIVE;
    }

    if (no_body) {
        h->body = LB_HTTP_BODY_NONE;
    } else if (h->flags & LB_HTTP_F_CHUNKED) {
        h->body = LB_HTTP_BODY_CHUNKED;
    } else if (h->flags & LB_HTTP_F_CONTENT_LENGTH) {
        h->body = LB_HTTP_BODY_LENGTH;
    } else if (is_req) {
        h->body = LB_HTTP_BODY_NONE;
    } else {
        h->body = LB_HTTP_BODY_CLOSE;
        h->flags &= (uint16_t)~LB_HTTP_F_KEEP_ALIVE;
    }

    if (!is_req) {
        return 0;
    }
    if (h->version == LB_HTTP_11 && !(h->flags & LB_HTTP_F_HOST)) {
        return LB_HTTP_EHOST_MISSING;
    }
    for (int k = h->idx[LB_HTTP_H_EXPECT]; k >= 0 && k < h->nhdrs; k++) {
        const struct lb_http_hdr *hdr = &h->hdrs[k];
        if (hdr->id != LB_HTTP_H_EXPECT) {
            continue;
        }
        if (!IEQ(b + hdr->value_off, hdr->value_len, "100-continue")) {
            return LB_HTTP_EEXPECT;
        }
        /* RFC 9110 10.1.1: ignore 100-continue from an HTTP/1.0 client. */
        if (h->version == LB_HTTP_11) {
            h->flags |= LB_HTTP_F_EXPECT_CONTINUE;
        }
    }
    if (l->max_body != 0 && (h->flags & LB_HTTP_F_CONTENT_LENGTH)
        && h->content_length > l->max_body) {
        return LB_HTTP_EBODY_TOO_LARGE;
    }
    return 0;
}

static int
fail(struct lb_http_head *h, int err)
{
    h->stage = ST_ERR;
    h->scan = (uint32_t)-err;
    return err;
}

static int
parse_head(const unsigned char *b, size_t len, const struct lb_http_limits *limits,
           struct lb_http_head *h, struct lb_http_req *req, struct lb_http_resp *resp,
           int req_method)
{
    struct lim l;
    uint32_t avail;
    int r;

    if (h->stage == ST_DONE) {
        return h->head_len;
    }
    if (h->stage == ST_ERR) {
        return -(int)h->scan;
    }
    get_limits(limits, &l);
    avail = len < l.max_head ? (uint32_t)len : l.max_head;

    for (;;) {
        uint32_t pos = h->pos;
        uint32_t bound = avail;
        uint32_t next = 0;

        if (pos >= avail) {
            break;
        }
        if (h->stage == ST_START && bound - pos > l.max_line) {
            bound = pos + l.max_line;
        }
        if (h->scan > bound) {
            break; /* the caller passed fewer bytes than before: nothing to do */
        }
        if (h->stage == ST_START) {
            r = req != NULL ? parse_request_line(b, pos, bound, h, req, &next)
                            : parse_status_line(b, pos, bound, h, resp, &next);
            if (r == 0) {
                h->start_off = (uint16_t)pos;
                h->stage = ST_FIELDS;
            }
        } else {
            if (h->sub == FL_BEGIN && h->nhdrs < l.max_headers &&
                field_fast(b, pos, bound, &h->hdrs[h->nhdrs], &next) == 0) {
                r = 0;
            } else {
                r = parse_field_line(b, pos, bound, h, l.max_headers, &next);
            }
            if (r == 0) {
                struct lb_http_hdr *hdr = &h->hdrs[h->nhdrs];
                hdr->id = hdr_id(b + hdr->name_off, hdr->name_len);
                hdr->flags = hop_ids[hdr->id];
                r = check_field(b, h, hdr, req != NULL);
                if (r != 0) {
                    return fail(h, r);
                }
                if (h->idx[hdr->id] < 0) {
                    h->idx[hdr->id] = (int16_t)h->nhdrs;
                }
                h->nhdrs++;
            } else if (r == EMPTY) {
                int no_body;
                if (req != NULL) {
                    no_body = 0;
                } else {
                    no_body = req_method == LB_HTTP_HEAD || resp->status < 200
                              || resp->status == 204 || resp->status == 304;
                }
                r = finish_head(b, h, &l, req != NULL, no_body);
                if (r != 0) {
                    return fail(h, r);
                }
                h->head_len = (uint16_t)next;
                h->pos = h->scan = next;
                h->sub = 0;
                h->stage = ST_DONE;
                return (int)next;
            }
        }
        if (r == NEED) {
            break; /* the parser saved where to resume */
        }
        if (r < 0) {
            return fail(h, r);
        }
        /* a parsed line, or a skipped empty line before the start line */
        h->pos = h->scan = next;
        h->sub = 0;
    }

    /* Out of bytes inside a line: is a limit already exceeded? */
    if (h->stage == ST_START && avail >= h->pos && avail - h->pos >= l.max_line) {
        return fail(h, LB_HTTP_ELINE_TOO_LONG);
    }
    if (len >= l.max_head) {
        return fail(h, LB_HTTP_EHEAD_TOO_LARGE);
    }
    return 0;
}

int
lb_http_parse_request(const char *buf, size_t len, const struct lb_http_limits *lim,
                      struct lb_http_req *req)
{
    return parse_head((const unsigned char *)buf, len, lim, &req->h, req, NULL, LB_HTTP_OTHER);
}

int
lb_http_parse_response(const char *buf, size_t len, const struct lb_http_limits *lim,
                       int req_method, struct lb_http_resp *resp)
{
    return parse_head((const unsigned char *)buf, len, lim, &resp->h, NULL, resp, req_method);
}

int
lb_http_error_status(int err)
{
    switch (err) {
#define LB_HTTP_ERR_STATUS(name, value, status, text) \
    case name:                                        \
        return status;
        LB_HTTP_ERR_MAP(LB_HTTP_ERR_STATUS)
#undef LB_HTTP_ERR_STATUS
    default:
        return 400;
    }
}

const char *
lb_http_strerror(int err)
{
    switch (err) {
#define LB_HTTP_ERR_TEXT(name, value, status, text) \
    case name:                                      \
        return text;
        LB_HTTP_ERR_MAP(LB_HTTP_ERR_TEXT)
#undef LB_HTTP_ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *
lb_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

const char *
lb_http_method_name(int method)
{
    switch (method) {
    case LB_HTTP_GET: return "GET";
    case LB_HTTP_HEAD: return "HEAD";
    case LB_HTTP_POST: return "POST";
    case LB_HTTP_PUT: return "PUT";
    case LB_HTTP_DELETE: return "DELETE";
    case LB_HTTP_OPTIONS: return "OPTIONS";
    case LB_HTTP_PATCH: return "PATCH";
    case LB_HTTP_TRACE: return "TRACE";
    case LB_HTTP_CONNECT: return "CONNECT";
    default: return "OTHER";
    }
}

int
lb_http_hdr_name_eq(const char *buf, const struct lb_http_hdr *h, const char *name,
                    size_t name_len)
{
    const unsigned char *a = (const unsigned char *)buf + h->name_off;
    const unsigned char *n = (const unsigned char *)name;

    if (h->name_len != name_len) {
        return 0;
    }
    for (size_t i = 0; i < name_len; i++) {
        if (low[a[i]] != low[n[i]]) {
            return 0;
        }
    }
    return 1;
}

int
lb_http_find_hdr(const char *buf, const struct lb_http_head *h, int from, const char *name,
                 size_t name_len)
{
    for (int i = from < 0 ? 0 : from; i < h->nhdrs; i++) {
        if (lb_http_hdr_name_eq(buf, &h->hdrs[i], name, name_len)) {
            return i;
        }
    }
    return -1;
}
