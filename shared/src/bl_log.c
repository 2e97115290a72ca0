#include "bl/bl_log.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bl/bl_err.h"
#include "bl/bl_metrics.h"

/*
 * Design: a line is formatted into a private heap buffer without any lock (formatting
 * dominates the cost and must not serialize threads), then written with one write(2)
 * loop while holding g_write_lock, which is the only thing that makes lines atomic with
 * respect to each other (a pipe only guarantees that up to PIPE_BUF bytes).
 *
 * The component name is published as an immutable, already escaped string through an
 * atomic pointer; older names stay allocated (chained from the newest) so a thread still
 * formatting with the old pointer never reads freed memory.
 */

#define COMPONENT_MAX 64                /* raw bytes of the component kept */
#define MARK_LEN (sizeof(BL_LOG_TRUNC_MARK) - 1)
#define MSG_STACK 1024                  /* messages up to this size skip a malloc */

struct component {
    struct component *older;            /* previous names, kept alive (see above) */
    char json[];                        /* "\"blog-lb\"": quoted and escaped */
};

static pthread_mutex_t g_write_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_init_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_level = BL_LOG_INFO;
static atomic_int g_fd = 2;
static _Atomic(const char *) g_component = "\"blogscale\"";
static struct component *g_components;  /* every name ever set, newest first */

static const char *const level_names[] = { "debug", "info", "warn", "error" };

/* One string value that may be cut when the line is too long. */
struct piece {
    const char *s;                      /* valid UTF-8 */
    size_t n;                           /* bytes of s */
    size_t keep;                        /* bytes kept (n when not cut) */
    char *owned;                        /* sanitized copy to free, or NULL */
};

/* ---- UTF-8 ---------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at <s> (n bytes left), or 0 if there is none. */
static size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) {
            lo = 0xa0;                  /* no overlong forms */
        } else if (c == 0xed) {
            hi = 0x9f;                  /* no surrogates */
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) {
            lo = 0x90;                  /* no overlong forms */
        } else if (c == 0xf4) {
            hi = 0x8f;                  /* nothing above U+10FFFF */
        }
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}

size_t
bl_log_utf8_valid_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        size_t l;

        if (p[i] < 0x80) {
            i++;
            continue;
        }
        l = utf8_seq_len(p + i, n - i);
        if (l == 0) {
            break;
        }
        i += l;
    }
    return i;
}

int
bl_log_append_utf8(struct bl_buf *b, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t ok = bl_log_utf8_valid_len(s + i, n - i);

        if (ok > 0 && bl_buf_append(b, s + i, ok) < 0) {
            return -ENOMEM;
        }
        i += ok;
        if (i < n) {
            /* one replacement character per bad byte, then resynchronize */
            if (bl_buf_append(b, "\xef\xbf\xbd", 3) < 0) {
                return -ENOMEM;
            }
            i++;
        }
    }
    if (b->data == NULL) {
        return bl_buf_reserve(b, 0);    /* keep "always a string" for empty input */
    }
    return 0;
}

/* Appends <s> as a JSON string literal, sanitizing invalid UTF-8 first when needed. */
static int
append_json_text(struct bl_buf *b, const char *s, size_t n)
{
    struct bl_buf tmp;
    int rc;

    if (bl_log_utf8_valid_len(s, n) == n) {
        return bl_buf_append_json_str(b, s, n);
    }
    bl_buf_init(&tmp);
    rc = bl_log_append_utf8(&tmp, s, n);
    if (rc == 0) {
        rc = bl_buf_append_json_str(b, tmp.data, tmp.len);
    }
    bl_buf_deinit(&tmp);
    return rc;
}

/* Bytes bl_buf_append_json_str() writes for byte <c> (quotes excluded). */
static size_t
json_cost(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
        return 2;
    }
    return c < 0x20 ? 6 : 1;
}

static size_t
json_len(const char *s, size_t n)
{
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        len += json_cost((unsigned char)s[i]);
    }
    return len;
}

/* Longest prefix of valid UTF-8 <s> cut on a character boundary whose escaped form takes
 * at most <budget> bytes. */
static size_t
json_prefix_for(const char *s, size_t n, size_t budget)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, used = 0;

    while (i < n) {
        size_t l = 1, cost;

        if (p[i] >= 0xf0) {
            l = 4;
        } else if (p[i] >= 0xe0) {
            l = 3;
        } else if (p[i] >= 0xc0) {
            l = 2;
        }
        cost = l == 1 ? json_cost(p[i]) : l;
        if (i + l > n || used + cost > budget) {
            break;
        }
        used += cost;
        i += l;
    }
    return i;
}

/* ---- settings ------------------------------------------------------------------- */

void
bl_log_init(const char *component)
{
    struct component *c;
    struct bl_buf b;
    size_t n;

    if (component == NULL) {
        component = "blogscale";
    }
    n = strlen(component);
    if (n > COMPONENT_MAX) {
        n = COMPONENT_MAX;
    }
    bl_buf_init(&b);
    if (append_json_text(&b, component, n) < 0) {
        bl_buf_deinit(&b);
        return;                         /* OOM at startup: keep the previous name */
    }
    c = malloc(sizeof(*c) + b.len + 1);
    if (c == NULL) {
        bl_buf_deinit(&b);
        return;
    }
    memcpy(c->json, b.data, b.len + 1);
    bl_buf_deinit(&b);

    pthread_mutex_lock(&g_init_lock);
    c->older = g_components;
    g_components = c;
    atomic_store_explicit(&g_component, c->json, memory_order_release);
    pthread_mutex_unlock(&g_init_lock);
}

void
bl_log_set_level(enum bl_log_level level)
{
    int l = (int)level;

    if (l < BL_LOG_DEBUG) {
        l = BL_LOG_DEBUG;
    } else if (l > BL_LOG_ERROR) {
        l = BL_LOG_ERROR;
    }
    atomic_store_explicit(&g_level, l, memory_order_relaxed);
}

enum bl_log_level
bl_log_get_level(void)
{
    return (enum bl_log_level)atomic_load_explicit(&g_level, memory_order_relaxed);
}

int
bl_log_level_parse(const char *s, enum bl_log_level *out)
{
    static const struct {
        const char *name;
        enum bl_log_level level;
    } names[] = {
        { "debug", BL_LOG_DEBUG }, { "info", BL_LOG_INFO }, { "warn", BL_LOG_WARN },
        { "warning", BL_LOG_WARN }, { "error", BL_LOG_ERROR },
    };

    if (s == NULL) {
        return BL_EINVAL;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return BL_EINVAL;
}

const char *
bl_log_level_name(enum bl_log_level level)
{
    int l = (int)level;

    if (l < BL_LOG_DEBUG) {
        l = BL_LOG_DEBUG;
    } else if (l > BL_LOG_ERROR) {
        l = BL_LOG_ERROR;
    }
    return level_names[l];
}

void
bl_log_set_fd(int fd)
{
    atomic_store_explicit(&g_fd, fd, memory_order_relaxed);
}

bool
bl_log_enabled(enum bl_log_level level)
{
    return (int)level >= atomic_load_explicit(&g_level, memory_order_relaxed);
}

/* ---- formatting ----------------------------------------------------------------- */

/* Writes <v> as exactly <width> zero-padded digits at <p>. */
static char *
put_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/*
 * Writes "2026-11-28T00:00:00.123Z" and a NUL (25 bytes) to <out>. The part up to the
 * seconds is cached per thread, so gmtime_r() runs once a second per thread. Years past
 * 9999 are clamped to keep the fixed shape.
 */
static void
format_ts(char out[40])
{
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char cached[20];   /* "2026-11-28T00:00:00" */
    struct timespec ts;
    char *p;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;

        if (ts.tv_sec < 0 || ts.tv_sec > (time_t)253402300799 ||     /* 9999-12-31 */
            gmtime_r(&ts.tv_sec, &tm) == NULL) {
            memset(&tm, 0, sizeof(tm));
            tm.tm_mday = 1;
            tm.tm_year = ts.tv_sec < 0 ? 70 : 9999 - 1900;
        }
        p = put_digits(cached, (unsigned)(tm.tm_year + 1900), 4);
        *p++ = '-';
        p = put_digits(p, (unsigned)(tm.tm_mon + 1), 2);
        *p++ = '-';
        p = put_digits(p, (unsigned)tm.tm_mday, 2);
        *p++ = 'T';
        p = put_digits(p, (unsigned)tm.tm_hour, 2);
        *p++ = ':';
        p = put_digits(p, (unsigned)tm.tm_min, 2);
        *p++ = ':';
        p = put_digits(p, (unsigned)tm.tm_sec, 2);
        *p = '\0';
        cached_sec = ts.tv_sec;
    }
    memcpy(out, cached, 19);
    p = out + 19;
    *p++ = '.';
    p = put_digits(p, (unsigned)(ts.tv_nsec / 1000000) % 1000u, 3);
    *p++ = 'Z';
    *p = '\0';
}

static int
append_piece(struct bl_buf *b, const struct piece *p)
{
    if (p->keep >= p->n) {
        return bl_buf_append_json_str(b, p->s, p->n);
    }
    if (bl_buf_append_json_str(b, p->s, p->keep) < 0) {
        return -ENOMEM;
    }
    b->len--;                           /* reopen the string: drop the closing quote */
    if (bl_buf_append(b, BL_LOG_TRUNC_MARK "\"", MARK_LEN + 1) < 0) {
        return -ENOMEM;
    }
    return 0;
}

static int
append_field_value(struct bl_buf *b, const struct bl_log_field *f, const struct piece *p)
{
    char num[40];

    switch (f->type) {
    case BL_LOG_F_STR:
        if (f->v.s == NULL) {
            return bl_buf_append(b, "null", 4);
        }
        return append_piece(b, p);
    case BL_LOG_F_INT:
        return bl_buf_append(b, num, (size_t)snprintf(num, sizeof(num), "%lld", f->v.i));
    case BL_LOG_F_UINT:
        return bl_buf_append(b, num, (size_t)snprintf(num, sizeof(num), "%llu", f->v.u));
    case BL_LOG_F_DOUBLE:
        if (!isfinite(f->v.d)) {
            return bl_buf_append(b, "null", 4);     /* NaN, +Inf, -Inf */
        }
        bl_metrics_format_double(f->v.d, num);    /* same digits as /metrics */
        return bl_buf_append_str(b, num);
    case BL_LOG_F_BOOL:
        return f->v.b ? bl_buf_append(b, "true", 4) : bl_buf_append(b, "false", 5);
    }
    return bl_buf_append(b, "null", 4);
}

/*
 * Builds the whole line into <b> (reset first): pieces[0] is the message, pieces[1 + i]
 * the string value of fields[i]. Fields from <nfields> on are left out.
 */
static int
build_line(struct bl_buf *b, const char *ts, const char *level, const char *component,
           const struct piece *pieces, const struct bl_log_field *fields, int nfields)
{
    bl_buf_reset(b);
    /* plain appends: this runs for every line, and printf would format twice */
    if (bl_buf_append(b, "{\"ts\":\"", 7) < 0 || bl_buf_append_str(b, ts) < 0 ||
        bl_buf_append(b, "\",\"level\":\"", 11) < 0 || bl_buf_append_str(b, level) < 0 ||
        bl_buf_append(b, "\",\"component\":", 14) < 0 || bl_buf_append_str(b, component) < 0 ||
        bl_buf_append(b, ",\"msg\":", 7) < 0 || append_piece(b, &pieces[0]) < 0) {
        return -ENOMEM;
    }
    for (int i = 0; i < nfields; i++) {
        const struct bl_log_field *f = &fields[i];

        if (f->key == NULL) {
            continue;
        }
        if (bl_buf_append(b, ",", 1) < 0 || append_json_text(b, f->key, strlen(f->key)) < 0 ||
            bl_buf_append(b, ":", 1) < 0 || append_field_value(b, f, &pieces[1 + i]) < 0) {
            return -ENOMEM;
        }
    }
    return bl_buf_append(b, "}\n", 2);
}

/* Escaped size of what <p> currently keeps. */
static size_t
piece_json_len(const struct piece *p)
{
    return json_len(p->s, p->keep < p->n ? p->keep : p->n);
}

/*
 * Cuts string values until the line fits in BL_LOG_LINE_MAX: each round shortens the
 * longest remaining value by the excess (plus the marker). When every value is empty and
 * the line is still too long (absurdly long keys), the fields are dropped.
 */
static int
fit_line(struct bl_buf *b, const char *ts, const char *level, const char *component,
         struct piece *pieces, int npieces, const struct bl_log_field *fields, int nfields)
{
    for (int round = 0; b->len > BL_LOG_LINE_MAX; round++) {
        size_t over = b->len - BL_LOG_LINE_MAX;
        size_t best_len = 0, budget, cut;
        int best = -1;

        for (int i = 0; i < npieces; i++) {
            size_t l;

            if (i > 0 && (fields[i - 1].type != BL_LOG_F_STR || fields[i - 1].v.s == NULL ||
                          fields[i - 1].key == NULL)) {
                continue;
            }
            l = piece_json_len(&pieces[i]);
            if (l > best_len) {
                best_len = l;
                best = i;
            }
        }
        if (best < 0 || round > npieces + 2) {
            /* nothing left to cut: keep the message only */
            if (nfields == 0) {
                return 0;               /* cannot happen: the prefix is a few hundred bytes */
            }
            nfields = 0;
            npieces = 1;
            round = -1;
            if (build_line(b, ts, level, component, pieces, fields, 0) < 0) {
                return -ENOMEM;
            }
            continue;
        }
        cut = over + (pieces[best].keep < pieces[best].n ? 0 : MARK_LEN);
        budget = best_len > cut ? best_len - cut : 0;
        pieces[best].keep = json_prefix_for(pieces[best].s, pieces[best].keep < pieces[best].n
                                            ? pieces[best].keep : pieces[best].n, budget);
        if (build_line(b, ts, level, component, pieces, fields, nfields) < 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

static void
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };

                (void)poll(&pfd, 1, -1);
                continue;
            }
            return;                     /* EBADF, EPIPE, ENOSPC...: nothing better to do */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void
emit(const char *line, size_t len)
{
    int fd = atomic_load_explicit(&g_fd, memory_order_relaxed);

    pthread_mutex_lock(&g_write_lock);
    write_all(fd, line, len);
    pthread_mutex_unlock(&g_write_lock);
}

static void
init_piece(struct piece *p, const char *s, size_t n)
{
    p->s = s;
    p->n = n;
    p->keep = n;
    p->owned = NULL;
    if (bl_log_utf8_valid_len(s, n) != n) {
        struct bl_buf tmp;

        bl_buf_init(&tmp);
        if (bl_log_append_utf8(&tmp, s, n) == 0) {
            p->owned = bl_buf_steal(&tmp, &p->n);
            p->s = p->owned;
            p->keep = p->n;
        } else {
            bl_buf_deinit(&tmp);
            p->n = p->keep = bl_log_utf8_valid_len(s, n);  /* OOM: keep the valid part */
        }
    }
}

void
bl_log_vwrite(enum bl_log_level level, const struct bl_log_field *fields, int nfields,
              const char *fmt, va_list ap)
{
    int saved_errno = errno;
    const char *component;
    const char *lname;
    char ts[40];
    char msg_stack[MSG_STACK];
    char *msg = msg_stack;
    char *msg_heap = NULL;
    struct piece pieces_stack[9];
    struct piece *pieces = pieces_stack;
    int npieces;
    struct bl_buf line;
    int len;

    if (!bl_log_enabled(level)) {
        return;
    }
    if (fields == NULL || nfields < 0) {
        nfields = 0;
    }
    lname = bl_log_level_name(level);
    component = atomic_load_explicit(&g_component, memory_order_acquire);
    format_ts(ts);
    bl_buf_init(&line);

    /* the message, cut at BL_LOG_LINE_MAX bytes (such a line is truncated anyway) */
    if (fmt == NULL) {
        fmt = "";
    }
    {
        va_list ap2;

        va_copy(ap2, ap);
        len = vsnprintf(msg_stack, sizeof(msg_stack), fmt, ap2);
        va_end(ap2);
    }
    if (len < 0) {
        len = 0;
        msg_stack[0] = '\0';
    } else if ((size_t)len >= sizeof(msg_stack)) {
        size_t cap = (size_t)len < BL_LOG_LINE_MAX ? (size_t)len + 1 : BL_LOG_LINE_MAX + 1;

        msg_heap = malloc(cap);
        if (msg_heap != NULL) {
            len = vsnprintf(msg_heap, cap, fmt, ap);
            msg = msg_heap;
            if (len < 0) {
                len = 0;
                msg_heap[0] = '\0';
            }
            if ((size_t)len >= cap) {
                len = (int)cap - 1;
            }
        } else {
            len = (int)sizeof(msg_stack) - 1;
        }
    }

    npieces = 1 + nfields;
    if ((size_t)npieces > sizeof(pieces_stack) / sizeof(pieces_stack[0])) {
        pieces = calloc((size_t)npieces, sizeof(*pieces));
        if (pieces == NULL) {
            goto oom;
        }
    }
    init_piece(&pieces[0], msg, (size_t)len);
    for (int i = 0; i < nfields; i++) {
        if (fields[i].type == BL_LOG_F_STR && fields[i].v.s != NULL) {
            init_piece(&pieces[1 + i], fields[i].v.s, strlen(fields[i].v.s));
        } else {
            init_piece(&pieces[1 + i], "", 0);
        }
    }

    /* one allocation for the usual line instead of a few doublings from 64 bytes */
    (void)bl_buf_reserve(&line, 192 + (size_t)len + 48 * (size_t)nfields);
    if (build_line(&line, ts, lname, component, pieces, fields, nfields) < 0 ||
        fit_line(&line, ts, lname, component, pieces, npieces, fields, nfields) < 0) {
        goto oom;
    }
    emit(line.data, line.len);
    goto out;

oom:
    {
        char fallback[512];
        int n = snprintf(fallback, sizeof(fallback),
                         "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":%s,"
                         "\"msg\":\"(log line lost: out of memory)\"}\n", ts, lname, component);

        if (n > 0 && (size_t)n < sizeof(fallback)) {
            emit(fallback, (size_t)n);
        }
    }
out:
    if (pieces != NULL) {
        for (int i = 0; i < npieces; i++) {
            free(pieces[i].owned);
        }
    }
    if (pieces != pieces_stack) {
        free(pieces);
    }
    free(msg_heap);
    bl_buf_deinit(&line);
    errno = saved_errno;
}

void
bl_log_write(enum bl_log_level level, const struct bl_log_field *fields, int nfields,
             const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    bl_log_vwrite(level, fields, nfields, fmt, ap);
    va_end(ap);
}
