#include "lb_chunked.h"

#include "lb_http.h"

/*
 * A byte-at-a-time state machine over the framing; chunk data is skipped in one step.
 * Each state depends only on the bytes before it, so any split of the input gives the
 * same result.
 */

enum {
    S_SIZE = 0,      /* chunk-size hex digits */
    S_SIZE_WS,       /* BWS after the size, before ';' */
    S_EXT,           /* chunk extensions up to CR */
    S_SIZE_LF,       /* CR seen on the size line */
    S_DATA,          /* <remain> data bytes */
    S_DATA_CR,       /* CR after the data */
    S_DATA_LF,       /* LF after the data */
    S_TRAILER_START, /* start of a trailer line or the final CRLF */
    S_TRAILER_NAME,  /* field name up to ':' */
    S_TRAILER_VALUE, /* field value up to CR */
    S_TRAILER_LF,    /* CR seen at the end of a trailer line */
    S_END_LF,        /* CR of the final empty line seen */
    S_DONE,
    S_ERR
};

#define MAX_SIZE UINT64_C(0x7fffffffffffffff)

static inline int
hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static inline int
is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return 1;
    }
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return 1;
    default:
        return 0;
    }
}

/* field-vchar / obs-text / SP / HTAB */
static inline int
is_vchar_ws(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

void
lb_chunked_init(struct lb_chunked *c, uint64_t max_body)
{
    c->max_body = max_body;
    c->max_line = LB_CHUNKED_DEFAULT_MAX_LINE;
    c->max_trailers = LB_CHUNKED_DEFAULT_MAX_TRAILERS;
    c->total = 0;
    c->remain = 0;
    c->size = 0;
    c->line_len = 0;
    c->trailer_len = 0;
    c->state = S_SIZE;
    c->ndigits = 0;
}

int
lb_chunked_done(const struct lb_chunked *c)
{
    return c->state == S_DONE;
}

static int
fail(struct lb_chunked *c, int err, size_t i, size_t *consumed)
{
    c->state = S_ERR;
    c->size = (uint64_t)(-(int64_t)err);
    *consumed = i;
    return err;
}

int
lb_chunked_scan(struct lb_chunked *c, const char *buf, size_t len, size_t *consumed)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = 0;

    if (c->state == S_DONE) {
        *consumed = 0;
        return 1;
    }
    if (c->state == S_ERR) {
        *consumed = 0;
        return (int)-(int64_t)c->size;
    }
    while (i < len) {
        if (c->state == S_DATA) {
            size_t n = len - i;
            if ((uint64_t)n > c->remain) {
                n = (size_t)c->remain;
            }
            i += n;
            c->remain -= n;
            if (c->remain == 0) {
                c->state = S_DATA_CR;
            }
            continue;
        }
        unsigned char ch = b[i];
        if (c->state <= S_SIZE_LF) {
            if (++c->line_len > c->max_line) {
                return fail(c, LB_HTTP_ECHUNK_EXT, i, consumed);
            }
        } else if (c->state >= S_TRAILER_START) {
            if (++c->trailer_len > c->max_trailers) {
                return fail(c, LB_HTTP_ETRAILER_TOO_LARGE, i, consumed);
            }
        }
        switch (c->state) {
        case S_SIZE: {
            int d = hexval(ch);
            if (d >= 0) {
                if (c->size > (MAX_SIZE - (uint64_t)d) / 16) {
                    return fail(c, LB_HTTP_ECHUNK_SIZE, i, consumed);
                }
                c->size = c->size * 16 + (uint64_t)d;
                if (c->ndigits < 255) {
                    c->ndigits++;
                }
                break;
            }
            if (c->ndigits == 0) {
                return fail(c, LB_HTTP_ECHUNK_SIZE, i, consumed);
            }
            if (c->max_body != 0 && c->size > c->max_body - c->total) {
                return fail(c, LB_HTTP_EBODY_TOO_LARGE, i, consumed);
            }
            if (ch == '\r') {
                c->state = S_SIZE_LF;
            } else if (ch == ';') {
                c->state = S_EXT;
            } else if (ch == ' ' || ch == '\t') {
                c->state = S_SIZE_WS;
            } else if (ch == '\n') {
                return fail(c, LB_HTTP_ECRLF, i, consumed);
            } else {
                return fail(c, LB_HTTP_ECHUNK_SIZE, i, consumed);
            }
            break;
        }
        case S_SIZE_WS:
            if (ch == ';') {
                c->state = S_EXT;
            } else if (ch != ' ' && ch != '\t') {
                return fail(c, LB_HTTP_ECHUNK_SIZE, i, consumed);
            }
            break;
        case S_EXT:
            if (ch == '\r') {
                c->state = S_SIZE_LF;
            } else if (ch == '\n') {
                return fail(c, LB_HTTP_ECRLF, i, consumed);
            } else if (!is_vchar_ws(ch)) {
                return fail(c, LB_HTTP_ECHUNK_EXT, i, consumed);
            }
            break;
        case S_SIZE_LF:
            if (ch != '\n') {
                return fail(c, LB_HTTP_ECRLF, i, consumed);
            }
            if (c->size == 0) {
                c->state = S_TRAILER_START;
                c->trailer_len = 0;
            } else {
                c->total += c->size;
                c->remain = c->size;
                c->state = S_DATA;
            }
            break;
        case S_DATA_CR:
            if (ch != '\r') {
                return fail(c, LB_HTTP_ECHUNK_CRLF, i, consumed);
            }
            c->state = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (ch != '\n') {
                return fail(c, LB_HTTP_ECHUNK_CRLF, i, consumed);
            }
            c->state = S_SIZE;
            c->size = 0;
            c->ndigits = 0;
            c->line_len = 0;
            break;
        case S_TRAILER_START:
            if (ch == '\r') {
                c->state = S_END_LF;
            } else if (ch == '\n') {
                return fail(c, LB_HTTP_ECRLF, i, consumed);
            } else if (is_tchar(ch)) {
                c->state = S_TRAILER_NAME;
            } else {
                /* obs-fold (SP/HTAB first), empty name, invalid name character */
                return fail(c, LB_HTTP_ETRAILER, i, consumed);
            }
            break;
        case S_TRAILER_NAME:
            if (ch == ':') {
                c->state = S_TRAILER_VALUE;
            } else if (!is_tchar(ch)) {
                return fail(c, LB_HTTP_ETRAILER, i, consumed);
            }
            break;
        case S_TRAILER_VALUE:
            if (ch == '\r') {
                c->state = S_TRAILER_LF;
            } else if (ch == '\n') {
                return fail(c, LB_HTTP_ECRLF, i, consumed);
            } else if (!is_vchar_ws(ch)) {
                return fail(c, LB_HTTP_ETRAILER, i, consumed);
            }
            break;
        case S_TRAILER_LF:
            if (ch != '\n') {
                return fail(c, LB_HTTP_ECRLF, i, consumed);
            }
            c->state = S_TRAILER_START;
            break;
        case S_END_LF:
            if (ch != '\n') {
                return fail(c, LB_HTTP_ECRLF, i, consumed);
            }
            c->state = S_DONE;
            *consumed = i + 1;
            return 1;
        default:
            return fail(c, LB_HTTP_ECHUNK_SIZE, i, consumed);
        }
        i++;
    }
    *consumed = len;
    return 0;
}
