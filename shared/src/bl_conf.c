#include "bl/bl_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl/bl_err.h"
#include "bl/bl_time.h"
#include "bl/bl_util.h"
#include "bl_conf_tree.h"

/*
 * Schema-driven loader. The YAML becomes a tree (bl_conf_tree.c); each section is a table
 * of { "key", setter, offsetof() } walked over the tree's mappings. Setters check type and
 * range and write the field; section checks run after a mapping's keys; cross-section
 * rules run last. The first error stops the load and is reported as
 * "file:line:column: key.path: message".
 */

#define CONF_MSG_MAX 1024
#define CONF_SHOWN_MAX 48       /* bytes of an offending value quoted in a message */

/* conf_key.flags */
#define CONF_REQUIRED 0x1       /* missing key is an error */
#define CONF_NULLABLE 0x2       /* null (~, null, empty) unsets the string */

struct conf_mark {
    char *path;
    const struct bl_conf_yn *at;    /* the value node */
};

struct conf_ctx {
    const char *name;               /* file name in messages */
    char *err;                      /* the first error, malloc'ed */
    char path[BL_CONF_TREE_PATH_MAX];
    struct conf_mark *marks;        /* every key set, with its value's position */
    size_t nmarks;
    size_t capmarks;
    struct bl_conf *conf;
};

struct conf_key;
typedef int (*conf_set_cb)(struct conf_ctx *c, const struct conf_key *k,
                           const struct bl_conf_yn *v, void *field, void *base);
/* Returns NULL when <s> is acceptable, else a message (static or in <buf>). */
typedef const char *(*conf_check_cb)(const char *s, char *buf, size_t size);

struct conf_key {
    const char *name;
    conf_set_cb set;
    size_t off;                     /* offsetof() the field in the section's struct */
    const void *aux;                /* enum names, sub-section, array description */
    double min;                     /* range of numbers, durations (ms), sizes (bytes) */
    double max;
    unsigned flags;                 /* CONF_REQUIRED, CONF_NULLABLE */
    conf_check_cb check;            /* extra check of string values */
};

struct conf_section {
    const struct conf_key *keys;
    size_t nkeys;
    void (*init)(void *base);       /* defaults of an array element */
    int (*check)(struct conf_ctx *c, const struct bl_conf_yn *map, void *base);
};

struct conf_array {
    const struct conf_section *sec;
    size_t elem_size;
    size_t count_off;               /* offsetof() the size_t count beside the array pointer */
    size_t max;
    int (*check_all)(struct conf_ctx *c, const struct bl_conf_yn *seq, void *arr, size_t n);
};

struct conf_enum {
    const char *name;
    int value;
};

_Static_assert(sizeof(enum bl_conf_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum bl_conf_balance) == sizeof(int), "enum size");
_Static_assert(sizeof(enum bl_conf_store_driver) == sizeof(int), "enum size");
_Static_assert(sizeof(enum bl_log_level) == sizeof(int), "enum size");

/* ---------------------------------------------------------------- messages and paths */

/*
 * Messages are one line (bl_conf.h), but some quote a value as is (a host, a name) and a
 * quoted YAML scalar may hold "\n" or other control bytes: show those as '?'.
 */
static void
one_line(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            *s = '?';
        }
    }
}

static int
conf_verr_at(struct conf_ctx *c, unsigned line, unsigned col, const char *path,
             const char *fmt, va_list ap)
{
    char msg[CONF_MSG_MAX];
    char full[CONF_MSG_MAX + BL_CONF_TREE_PATH_MAX + 256];

    if (c->err != NULL) {
        return BL_ECONF;        /* keep the first */
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (line > 0) {
        snprintf(full, sizeof(full), "%s:%u:%u: %s: %s", c->name, line, col,
                 path[0] ? path : "(top level)", msg);
    } else {
        snprintf(full, sizeof(full), "%s: %s", c->name, msg);
    }
    one_line(full);
    c->err = bl_xstrdup(full);
    return BL_ECONF;
}

static int
conf_err_at(struct conf_ctx *c, unsigned line, unsigned col, const char *path,
            const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
conf_err_at(struct conf_ctx *c, unsigned line, unsigned col, const char *path,
            const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = conf_verr_at(c, line, col, path, fmt, ap);
    va_end(ap);
    return rc;
}

/* An error at node <at>, about the key at the current path. */
static int
conf_err(struct conf_ctx *c, const struct bl_conf_yn *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
conf_err(struct conf_ctx *c, const struct bl_conf_yn *at, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = conf_verr_at(c, at ? at->line : 1, at ? at->col : 1, c->path, fmt, ap);
    va_end(ap);
    return rc;
}

/* Pushes ".key" (or "key" at the top); returns the old length for path_pop(). */
static size_t
path_push_key(struct conf_ctx *c, const char *key)
{
    size_t len = strlen(c->path);

    if (len > 0 && len + 1 < sizeof(c->path)) {
        c->path[len] = '.';
        c->path[len + 1] = '\0';
    }
    bl_conf_tree_sanitize(c->path, sizeof(c->path), key, 64);
    return len;
}

static size_t
path_push_index(struct conf_ctx *c, size_t i)
{
    size_t len = strlen(c->path);

    snprintf(c->path + len, sizeof(c->path) - len, "[%zu]", i);
    return len;
}

static void
path_pop(struct conf_ctx *c, size_t len)
{
    c->path[len] = '\0';
}

/* <v>'s text for a message: quoted, cut, non-printable bytes as '?'. */
static const char *
shown(const struct bl_conf_yn *v, char *buf, size_t size)
{
    buf[0] = '\0';
    if (v->type == BL_CONF_YN_MAP) {
        snprintf(buf, size, "a mapping");
    } else if (v->type == BL_CONF_YN_SEQ) {
        snprintf(buf, size, "a list");
    } else {
        snprintf(buf, size, "\"");
        bl_conf_tree_sanitize(buf, size, v->value, CONF_SHOWN_MAX);
        bl_conf_tree_sanitize(buf, size, "\"", 1);
    }
    return buf;
}

static void
mark_add(struct conf_ctx *c, const struct bl_conf_yn *at)
{
    if (c->nmarks == c->capmarks) {
        c->capmarks = c->capmarks ? c->capmarks * 2 : 64;
        c->marks = bl_xrealloc(c->marks, c->capmarks * sizeof(*c->marks));
    }
    c->marks[c->nmarks].path = bl_xstrdup(c->path);
    c->marks[c->nmarks].at = at;
    c->nmarks++;
}

/* The value node of the key at <path> if the file set it, else NULL. */
static const struct bl_conf_yn *
mark_find(const struct conf_ctx *c, const char *path)
{
    for (size_t i = 0; i < c->nmarks; i++) {
        if (strcmp(c->marks[i].path, path) == 0) {
            return c->marks[i].at;
        }
    }
    return NULL;
}

static void
conf_warn(struct conf_ctx *c, const struct bl_conf_yn *at, const char *path, const char *msg)
{
    char full[CONF_MSG_MAX];
    struct bl_conf *conf = c->conf;

    snprintf(full, sizeof(full), "%s:%u:%u: %s: %s", c->name, at ? at->line : 1,
             at ? at->col : 1, path, msg);
    one_line(full);
    conf->warnings = bl_xrealloc(conf->warnings,
                                 (conf->nwarnings + 1) * sizeof(*conf->warnings));
    conf->warnings[conf->nwarnings++] = bl_xstrdup(full);
}

/* Formats <ms> with the largest unit that divides it: "1500ms", "2s", "5m", "1h". */
static const char *
fmt_duration(uint64_t ms, char *buf, size_t size)
{
    if (ms != 0 && ms % 3600000 == 0) {
        snprintf(buf, size, "%lluh", (unsigned long long)(ms / 3600000));
    } else if (ms != 0 && ms % 60000 == 0) {
        snprintf(buf, size, "%llum", (unsigned long long)(ms / 60000));
    } else if (ms != 0 && ms % 1000 == 0) {
        snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
    } else {
        snprintf(buf, size, "%llums", (unsigned long long)ms);
    }
    return buf;
}

static const char *
fmt_size(uint64_t b, char *buf, size_t size)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    size_t u = 0;

    while (u + 1 < BL_ARRAY_SIZE(units) && b != 0 && b % 1024 == 0) {
        b /= 1024;
        u++;
    }
    snprintf(buf, size, "%llu%s", (unsigned long long)b, units[u]);
    return buf;
}

/* ---------------------------------------------------------------- scalar helpers */

static bool
is_null(const struct bl_conf_yn *v)
{
    if (v->type != BL_CONF_YN_SCALAR || !v->plain) {
        return false;
    }
    return v->len == 0 || strcmp(v->value, "~") == 0 || strcmp(v->value, "null") == 0 ||
           strcmp(v->value, "Null") == 0 || strcmp(v->value, "NULL") == 0;
}

static const char *
type_name(const struct bl_conf_yn *v)
{
    if (v->type == BL_CONF_YN_MAP) {
        return "a mapping";
    }
    if (v->type == BL_CONF_YN_SEQ) {
        return "a list";
    }
    return is_null(v) ? "null" : "a scalar";
}

/* A non-null scalar, or an error "expected <what>". */
static int
need_scalar(struct conf_ctx *c, const struct bl_conf_yn *v, const char *what)
{
    if (v->type != BL_CONF_YN_SCALAR || is_null(v)) {
        return conf_err(c, v, "expected %s, got %s", what, type_name(v));
    }
    return 0;
}

static bool
all_digits(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

/* Parses a decimal integer made only of digits; false when malformed or > UINT64_MAX. */
static bool
parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (!all_digits(s)) {
        return false;
    }
    for (; *s; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Plain decimal number: digits, optional fraction, optional exponent. */
static bool
parse_double(const char *s, double *out)
{
    const char *p = s;
    char *end;
    double d;

    if (*p < '0' || *p > '9') {
        return false;
    }
    while (*p >= '0' && *p <= '9') {
        p++;
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return false;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        if (*p < '0' || *p > '9') {
            return false;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (*p != '\0') {
        return false;
    }
    errno = 0;
    d = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(d)) {
        return false;
    }
    *out = d;
    return true;
}

/* ---------------------------------------------------------------- value checks */

static bool
is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
}

static const char *
check_name(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64) {
        return "must be 1 to 64 characters of A-Z a-z 0-9 _ . -";
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_name_char(s[i])) {
            return "must be 1 to 64 characters of A-Z a-z 0-9 _ . -";
        }
    }
    return NULL;
}

/*
 * Validates "HOST:PORT": HOST a numeric IPv4 address, a bracketed numeric IPv6 address
 * or "localhost"; PORT 1-65535 in decimal.
 */
static const char *
check_addr(const char *s, char *buf, size_t size)
{
    const char *colon;
    char host[64];
    size_t hlen;
    uint64_t port;
    unsigned char tmp[16];

    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL || close[1] != ':') {
            return "expected HOST:PORT, with an IPv6 host written as [::1]:PORT";
        }
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(host)) {
            return "expected HOST:PORT, with an IPv6 host written as [::1]:PORT";
        }
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET6, host, tmp) != 1) {
            snprintf(buf, size, "\"%.*s\" is not a numeric IPv6 address", (int)hlen, host);
            return buf;
        }
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return "expected HOST:PORT (e.g. 127.0.0.1:8080), the port is missing";
        }
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL) {
            return "expected HOST:PORT, with an IPv6 host written as [::1]:PORT";
        }
        if (hlen == 0 || hlen >= sizeof(host)) {
            return "expected HOST:PORT (e.g. 127.0.0.1:8080), the host is missing or too long";
        }
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (strcmp(host, "localhost") != 0 && inet_pton(AF_INET, host, tmp) != 1) {
            snprintf(buf, size,
                     "host \"%s\" is not a numeric IPv4 address, [IPv6] or localhost "
                     "(names are not resolved)", host);
            return buf;
        }
    }
    if (!parse_u64(colon + 1, &port) || port < 1 || port > 65535) {
        return "the port must be a number from 1 to 65535";
    }
    return NULL;
}

/* "redis://[[user]:password@]HOST[:PORT][/DB]" or "rediss://..." */
static const char *
check_redis_url(const char *s, char *buf, size_t size)
{
    static const char *const bad =
        "expected a redis://[:password@]HOST[:PORT][/DB] URL (or rediss:// for TLS)";
    const char *p;
    const char *at;
    const char *hostend;

    if (strncmp(s, "redis://", 8) == 0) {
        p = s + 8;
    } else if (strncmp(s, "rediss://", 9) == 0) {
        p = s + 9;
    } else {
        return bad;
    }
    for (const char *q = s; *q; q++) {
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) {
            return bad;
        }
    }
    at = strrchr(p, '@');
    if (at != NULL) {
        p = at + 1;
    }
    if (*p == '[') {
        hostend = strchr(p, ']');
        if (hostend == NULL || hostend == p + 1) {
            return bad;
        }
        hostend++;
    } else {
        hostend = p;
        while (*hostend && *hostend != ':' && *hostend != '/') {
            if (!is_name_char(*hostend)) {
                return bad;
            }
            hostend++;
        }
        if (hostend == p) {
            return "the host of the Redis URL is missing";
        }
    }
    p = hostend;
    if (*p == ':') {
        const char *slash = strchr(p, '/');
        size_t plen = slash ? (size_t)(slash - p - 1) : strlen(p + 1);
        char port[8];
        uint64_t v;

        if (plen == 0 || plen >= sizeof(port)) {
            return "the Redis port must be a number from 1 to 65535";
        }
        memcpy(port, p + 1, plen);
        port[plen] = '\0';
        if (!parse_u64(port, &v) || v < 1 || v > 65535) {
            return "the Redis port must be a number from 1 to 65535";
        }
        p += 1 + plen;
    }
    if (*p == '/') {
        uint64_t db;

        if (p[1] != '\0' && (!parse_u64(p + 1, &db) || db > 65535)) {
            return "the Redis database (after the last /) must be a number";
        }
    } else if (*p != '\0') {
        return bad;
    }
    return NULL;
}

static const char *
check_mongo_uri(const char *s, char *buf, size_t size)
{
    if ((strncmp(s, "mongodb://", 10) == 0 && s[10] != '\0') ||
        (strncmp(s, "mongodb+srv://", 14) == 0 && s[14] != '\0')) {
        return NULL;
    }
    return "expected a mongodb:// or mongodb+srv:// URI";
}

static const char *
check_url_path(const char *s, char *buf, size_t size)
{
    if (s[0] != '/') {
        return "must be a path starting with /";
    }
    for (; *s; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
            return "must be a path without spaces or control characters";
        }
    }
    return NULL;
}

/* type/subtype, both tokens of RFC 9110 tchar. */
static const char *
check_media_type(const char *s, char *buf, size_t size)
{
    static const char *const bad = "expected a media type like image/png";
    const char *slash = strchr(s, '/');

    if (slash == NULL || slash == s || slash[1] == '\0') {
        return bad;
    }
    for (const char *p = s; *p; p++) {
        if (p == slash) {
            continue;
        }
        if (!is_name_char(*p) && strchr("!#$%&'*+^`|~", *p) == NULL) {
            return bad;
        }
    }
    return NULL;
}

static int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* 64 hex digits into 32 bytes; an error message or NULL. */
static const char *
parse_digest(const char *s, uint8_t out[BL_SHA256_LEN], char *buf, size_t size)
{
    size_t n = strlen(s);

    if (n != 2 * BL_SHA256_LEN) {
        snprintf(buf, size,
                 "expected a SHA-256 digest of 64 hex digits (printf %%s TOKEN | sha256sum), "
                 "got %zu characters", n);
        return buf;
    }
    for (size_t i = 0; i < BL_SHA256_LEN; i++) {
        int hi = hexval(s[2 * i]);
        int lo = hexval(s[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return "expected a SHA-256 digest of 64 hex digits, found a non-hex character";
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return NULL;
}

/* ---------------------------------------------------------------- setters */

static int
set_str(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v, void *field,
        void *base)
{
    char **dst = field;
    char buf[256];
    const char *msg;

    if ((k->flags & CONF_NULLABLE) && is_null(v)) {
        BL_FREE(*dst);
        return 0;
    }
    if (need_scalar(c, v, "a string") < 0) {
        return BL_ECONF;
    }
    if (v->len == 0) {
        return conf_err(c, v, "must not be empty");
    }
    if (k->check != NULL && (msg = k->check(v->value, buf, sizeof(buf))) != NULL) {
        char sh[96];

        return conf_err(c, v, "%s, got %s", msg, shown(v, sh, sizeof(sh)));
    }
    free(*dst);
    *dst = bl_xstrdup(v->value);
    return 0;
}

static int
set_bool(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v, void *field,
         void *base)
{
    bool *dst = field;
    char sh[96];

    if (v->type == BL_CONF_YN_SCALAR && v->plain) {
        if (strcasecmp(v->value, "true") == 0) {
            *dst = true;
            return 0;
        }
        if (strcasecmp(v->value, "false") == 0) {
            *dst = false;
            return 0;
        }
    }
    return conf_err(c, v, "expected true or false, got %s", shown(v, sh, sizeof(sh)));
}

static int
get_uint(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
         uint64_t *out)
{
    char sh[96];
    uint64_t n = 0;

    if (v->type != BL_CONF_YN_SCALAR || !v->plain || !parse_u64(v->value, &n) ||
        (double)n < k->min || (double)n > k->max) {
        return conf_err(c, v, "expected an integer from %llu to %llu, got %s",
                        (unsigned long long)k->min, (unsigned long long)k->max,
                        shown(v, sh, sizeof(sh)));
    }
    *out = n;
    return 0;
}

static int
set_u32(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v, void *field,
        void *base)
{
    uint64_t n = 0;

    if (get_uint(c, k, v, &n) < 0) {
        return BL_ECONF;
    }
    *(uint32_t *)field = (uint32_t)n;
    return 0;
}

/* N or "auto" (stored as 0). */
static int
set_u32_auto(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
             void *field, void *base)
{
    char sh[96];
    uint64_t n = 0;

    if (v->type == BL_CONF_YN_SCALAR && strcmp(v->value, "auto") == 0) {
        *(uint32_t *)field = 0;
        return 0;
    }
    if (v->type != BL_CONF_YN_SCALAR || !v->plain || !parse_u64(v->value, &n) ||
        (double)n < k->min || (double)n > k->max) {
        return conf_err(c, v, "expected auto or an integer from %llu to %llu, got %s",
                        (unsigned long long)k->min, (unsigned long long)k->max,
                        shown(v, sh, sizeof(sh)));
    }
    *(uint32_t *)field = (uint32_t)n;
    return 0;
}

static int
set_double(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
           void *field, void *base)
{
    char sh[96];
    double d;

    if (v->type != BL_CONF_YN_SCALAR || !v->plain || !parse_double(v->value, &d) ||
        d < k->min || d > k->max) {
        return conf_err(c, v, "expected a number from %g to %g, got %s", k->min, k->max,
                        shown(v, sh, sizeof(sh)));
    }
    *(double *)field = d;
    return 0;
}

static int
set_duration(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
             void *field, void *base)
{
    char sh[96];
    char lo[32];
    char hi[32];
    uint64_t ms = 0;
    int rc;

    if (v->type != BL_CONF_YN_SCALAR || is_null(v)) {
        return conf_err(c, v, "expected a duration like 500ms or 2s, got %s", type_name(v));
    }
    rc = bl_time_parse_duration_ms(v->value, &ms);
    if (rc == BL_ETOOBIG) {
        return conf_err(c, v, "duration %s is too large", shown(v, sh, sizeof(sh)));
    }
    if (rc < 0 && strchr(v->value, '.') != NULL) {
        return conf_err(c, v,
                        "expected a duration like 500ms or 2s (whole numbers only: write "
                        "1500ms, not 1.5s), got %s", shown(v, sh, sizeof(sh)));
    }
    if (rc < 0) {
        return conf_err(c, v,
                        "expected a duration like 500ms or 2s (a whole number and one of "
                        "ms, s, m, h), got %s", shown(v, sh, sizeof(sh)));
    }
    if ((double)ms < k->min || (double)ms > k->max) {
        return conf_err(c, v, "must be from %s to %s, got %s",
                        fmt_duration((uint64_t)k->min, lo, sizeof(lo)),
                        fmt_duration((uint64_t)k->max, hi, sizeof(hi)),
                        shown(v, sh, sizeof(sh)));
    }
    *(uint64_t *)field = ms;
    return 0;
}

static int
get_size(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
         uint64_t *out)
{
    char sh[96];
    char lo[32];
    char hi[32];
    uint64_t b = 0;
    int rc;

    if (v->type != BL_CONF_YN_SCALAR || is_null(v)) {
        return conf_err(c, v, "expected a size like 64MiB or 1GiB, got %s", type_name(v));
    }
    rc = bl_parse_size(v->value, &b);
    if (rc == BL_ETOOBIG) {
        return conf_err(c, v, "size %s is too large", shown(v, sh, sizeof(sh)));
    }
    if (rc < 0) {
        return conf_err(c, v,
                        "expected a size like 64MiB or 1GiB (a whole number and one of B, KiB, "
                        "MiB, GiB, TiB, kB, MB, GB, TB), got %s", shown(v, sh, sizeof(sh)));
    }
    if (all_digits(v->value) && b != 0) {
        return conf_err(c, v,
                        "a size needs a unit, e.g. %sB or %sKiB (only 0 may be written "
                        "bare), got %s", v->value, v->value, shown(v, sh, sizeof(sh)));
    }
    if ((double)b < k->min || (double)b > k->max) {
        return conf_err(c, v, "must be from %s to %s, got %s",
                        fmt_size((uint64_t)k->min, lo, sizeof(lo)),
                        fmt_size((uint64_t)k->max, hi, sizeof(hi)), shown(v, sh, sizeof(sh)));
    }
    *out = b;
    return 0;
}

static int
set_size64(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
           void *field, void *base)
{
    return get_size(c, k, v, (uint64_t *)field);
}

static int
set_size32(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
           void *field, void *base)
{
    uint64_t b = 0;

    if (get_size(c, k, v, &b) < 0) {
        return BL_ECONF;
    }
    *(uint32_t *)field = (uint32_t)b;
    return 0;
}

static int
set_enum(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
         void *field, void *base)
{
    const struct conf_enum *e = k->aux;
    char names[256] = "";
    char sh[96];

    if (v->type == BL_CONF_YN_SCALAR) {
        for (const struct conf_enum *p = e; p->name != NULL; p++) {
            if (strcmp(v->value, p->name) == 0) {
                *(int *)field = p->value;
                return 0;
            }
        }
    }
    for (const struct conf_enum *p = e; p->name != NULL; p++) {
        size_t len = strlen(names);

        snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "", p->name);
    }
    return conf_err(c, v, "expected one of %s, got %s", names, shown(v, sh, sizeof(sh)));
}

static int parse_map(struct conf_ctx *c, const struct conf_section *sec,
                     const struct bl_conf_yn *map, void *base);

/* A sub-section (aux: struct conf_section); null is an empty section. */
static int
set_section(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
            void *field, void *base)
{
    return parse_map(c, k->aux, v, field);
}

/* An array of sections (aux: struct conf_array); null is an empty list. */
static int
set_array(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
          void *field, void *base)
{
    const struct conf_array *a = k->aux;
    void **arr = field;
    size_t *count = (size_t *)(void *)((char *)base + a->count_off);

    if (is_null(v)) {
        return 0;
    }
    if (v->type != BL_CONF_YN_SEQ) {
        return conf_err(c, v, "expected a list, got %s", type_name(v));
    }
    if (v->nkids > a->max) {
        return conf_err(c, v, "at most %zu entries, got %zu", a->max, v->nkids);
    }
    if (*arr != NULL) {
        return conf_err(c, v, "given twice");  /* cannot happen: duplicate keys are caught */
    }
    *arr = bl_xcalloc(v->nkids ? v->nkids : 1, a->elem_size);
    *count = 0;
    for (size_t i = 0; i < v->nkids; i++) {
        void *elem = (char *)*arr + i * a->elem_size;
        size_t saved;
        int rc;

        (*count)++;
        if (a->sec->init != NULL) {
            a->sec->init(elem);
        }
        saved = path_push_index(c, i);
        if (v->kids[i]->type != BL_CONF_YN_MAP) {
            rc = conf_err(c, v->kids[i], "expected a mapping, got %s", type_name(v->kids[i]));
        } else {
            rc = parse_map(c, a->sec, v->kids[i], elem);
        }
        path_pop(c, saved);
        if (rc < 0) {
            return rc;
        }
    }
    if (a->check_all != NULL) {
        return a->check_all(c, v, *arr, *count);
    }
    return 0;
}

/* lb.admin.token_sha256 (base: struct bl_conf_admin); null means no token. */
static int
set_admin_token(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
                void *field, void *base)
{
    struct bl_conf_admin *admin = base;
    char buf[160];
    const char *msg;

    if (is_null(v)) {
        admin->has_token = false;
        return 0;
    }
    if (need_scalar(c, v, "a SHA-256 hex digest") < 0) {
        return BL_ECONF;
    }
    msg = parse_digest(v->value, admin->token_sha256, buf, sizeof(buf));
    if (msg != NULL) {
        return conf_err(c, v, "%s", msg);
    }
    admin->has_token = true;
    return 0;
}

/* cluster.write_tokens_sha256 (base: struct bl_conf_cluster): a list of digests. */
static int
set_write_tokens(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
                 void *field, void *base)
{
    struct bl_conf_cluster *cl = base;

    if (is_null(v)) {
        return 0;
    }
    if (v->type != BL_CONF_YN_SEQ) {
        return conf_err(c, v, "expected a list of SHA-256 hex digests, got %s", type_name(v));
    }
    if (v->nkids > (size_t)k->max) {
        return conf_err(c, v, "at most %.0f tokens, got %zu", k->max, v->nkids);
    }
    cl->write_tokens = bl_xcalloc(v->nkids ? v->nkids : 1, sizeof(*cl->write_tokens));
    cl->nwrite_tokens = 0;
    for (size_t i = 0; i < v->nkids; i++) {
        const struct bl_conf_yn *t = v->kids[i];
        size_t saved = path_push_index(c, i);
        char buf[160];
        const char *msg;
        int rc = 0;

        if (need_scalar(c, t, "a SHA-256 hex digest") < 0) {
            rc = BL_ECONF;
        } else if ((msg = parse_digest(t->value, cl->write_tokens[i], buf, sizeof(buf)))) {
            rc = conf_err(c, t, "%s", msg);
        }
        path_pop(c, saved);
        if (rc < 0) {
            return rc;
        }
        cl->nwrite_tokens++;
    }
    return 0;
}

/* node.assets.types (base: struct bl_conf_node): replaces the default list. */
static int
set_asset_types(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
                void *field, void *base)
{
    struct bl_conf_node *node = base;

    if (v->type != BL_CONF_YN_SEQ) {
        return conf_err(c, v, "expected a list of media types, got %s", type_name(v));
    }
    if (v->nkids > (size_t)k->max) {
        return conf_err(c, v, "at most %.0f media types, got %zu", k->max, v->nkids);
    }
    for (size_t i = 0; i < node->nasset_types; i++) {
        free(node->asset_types[i]);
    }
    BL_FREE(node->asset_types);
    node->nasset_types = 0;
    node->asset_types = bl_xcalloc(v->nkids ? v->nkids : 1, sizeof(char *));
    for (size_t i = 0; i < v->nkids; i++) {
        const struct bl_conf_yn *t = v->kids[i];
        size_t saved = path_push_index(c, i);
        char buf[64];
        char sh[96];
        const char *msg;
        int rc = 0;

        if (need_scalar(c, t, "a media type") < 0) {
            rc = BL_ECONF;
        } else if ((msg = check_media_type(t->value, buf, sizeof(buf))) != NULL) {
            rc = conf_err(c, t, "%s, got %s", msg, shown(t, sh, sizeof(sh)));
        } else {
            for (size_t j = 0; j < i; j++) {
                if (strcasecmp(node->asset_types[j], t->value) == 0) {
                    rc = conf_err(c, t, "media type %s listed twice", shown(t, sh, sizeof(sh)));
                    break;
                }
            }
        }
        path_pop(c, saved);
        if (rc < 0) {
            return rc;
        }
        node->asset_types[node->nasset_types++] = bl_xstrdup(t->value);
    }
    return 0;
}

/* lb.listeners[].tls (field: struct bl_conf_tls): present means enabled. */
static int
set_tls(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v, void *field,
        void *base)
{
    struct bl_conf_tls *tls = field;

    if (v->type != BL_CONF_YN_MAP) {
        return conf_err(c, v, "expected a mapping with cert and key, got %s", type_name(v));
    }
    tls->enabled = true;
    return parse_map(c, k->aux, v, field);
}

/* autoscale: (field: struct bl_conf_autoscale): present means enabled. */
static int
set_autoscale(struct conf_ctx *c, const struct conf_key *k, const struct bl_conf_yn *v,
              void *field, void *base)
{
    struct bl_conf_autoscale *as = field;

    as->enabled = true;
    return parse_map(c, k->aux, v, field);
}

/* ---------------------------------------------------------------- unknown-key help */

static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t row[65];

    if (la > 64 || lb > 64) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);

            best = BL_MIN(best, up + 1);
            best = BL_MIN(best, row[j - 1] + 1);
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int
unknown_key(struct conf_ctx *c, const struct conf_section *sec, const struct bl_conf_yn *key,
            size_t parent_len)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    size_t limit = strlen(key->value) >= 8 ? 3 : 2;
    char known[512] = "";

    const char *dot = strchr(key->value, '.');

    if (dot != NULL && dot != key->value) {
        /* "lb.workers: 4" written flat: say how to nest it. */
        for (size_t i = 0; i < sec->nkeys; i++) {
            if (strlen(sec->keys[i].name) == (size_t)(dot - key->value) &&
                strncmp(sec->keys[i].name, key->value, (size_t)(dot - key->value)) == 0) {
                return conf_err(c, key, "unknown key (dotted keys are not expanded: nest it "
                                "under %s:)", sec->keys[i].name);
            }
        }
    }
    for (size_t i = 0; i < sec->nkeys; i++) {
        size_t d = edit_distance(key->value, sec->keys[i].name);

        if (d < best_d) {
            best_d = d;
            best = sec->keys[i].name;
        }
    }
    if (best != NULL && best_d <= limit && best_d < strlen(best)) {
        char sugg[BL_CONF_TREE_PATH_MAX];

        snprintf(sugg, sizeof(sugg), "%.*s%s%s", (int)parent_len, c->path,
                 parent_len ? "." : "", best);
        return conf_err(c, key, "unknown key (did you mean %s?)", sugg);
    }
    for (size_t i = 0; i < sec->nkeys; i++) {
        size_t len = strlen(known);

        snprintf(known + len, sizeof(known) - len, "%s%s", i ? ", " : "", sec->keys[i].name);
    }
    return conf_err(c, key, "unknown key (known keys here: %s)", known);
}

/* ---------------------------------------------------------------- mapping walker */

static int
parse_map(struct conf_ctx *c, const struct conf_section *sec, const struct bl_conf_yn *map,
          void *base)
{
    int rc;

    if (is_null(map)) {
        map = NULL;     /* "section:" with nothing after it: all defaults */
    } else if (map->type != BL_CONF_YN_MAP) {
        return conf_err(c, map, "expected a mapping, got %s", type_name(map));
    }
    for (size_t i = 0; map != NULL && i + 1 < map->nkids; i += 2) {
        const struct bl_conf_yn *key = map->kids[i];
        const struct bl_conf_yn *val = map->kids[i + 1];
        const struct conf_key *k = NULL;
        size_t saved;

        if (key->type != BL_CONF_YN_SCALAR) {
            return conf_err(c, key, "keys must be plain strings, got %s", type_name(key));
        }
        for (size_t j = 0; j < i; j += 2) {
            const struct bl_conf_yn *prev = map->kids[j];

            if (strcmp(prev->value, key->value) == 0) {
                saved = path_push_key(c, key->value);
                rc = conf_err(c, key, "duplicate key (first given at %u:%u)", prev->line,
                              prev->col);
                path_pop(c, saved);
                return rc;
            }
        }
        for (size_t j = 0; j < sec->nkeys; j++) {
            if (strcmp(sec->keys[j].name, key->value) == 0) {
                k = &sec->keys[j];
                break;
            }
        }
        saved = path_push_key(c, key->value);
        if (k == NULL) {
            rc = unknown_key(c, sec, key, saved);
        } else {
            rc = k->set(c, k, val, (char *)base + k->off, base);
            if (rc == 0) {
                mark_add(c, val);
            }
        }
        path_pop(c, saved);
        if (rc < 0) {
            return rc;
        }
    }
    for (size_t j = 0; j < sec->nkeys; j++) {
        if ((sec->keys[j].flags & CONF_REQUIRED) &&
            bl_conf_tree_get(map, sec->keys[j].name) == NULL) {
            size_t saved = path_push_key(c, sec->keys[j].name);

            if (map != NULL) {
                rc = conf_err(c, map, "missing required key");
            } else {
                rc = conf_err(c, NULL, "missing required key");
            }
            path_pop(c, saved);
            return rc;
        }
    }
    if (sec->check != NULL) {
        return sec->check(c, map, base);
    }
    return 0;
}

/* ---------------------------------------------------------------- the schema */

#define KEY(n, setter, type, field, ...) \
    { .name = (n), .set = (setter), .off = offsetof(type, field), __VA_ARGS__ }
#define SECTION(keys_, ...) { .keys = (keys_), .nkeys = BL_ARRAY_SIZE(keys_), __VA_ARGS__ }

#define MS_S 1000.0
#define MS_M (60 * 1000.0)
#define MS_H (3600 * 1000.0)
#define KIB 1024.0
#define MIB (1024.0 * 1024)
#define GIB (1024.0 * 1024 * 1024)
#define TIB (1024.0 * 1024 * 1024 * 1024)

static const struct conf_enum mode_names[] = {
    { "http", BL_MODE_HTTP },
    { "tcp", BL_MODE_TCP },
    { NULL, 0 },
};

static const struct conf_enum tcp_balance_names[] = {
    { "maglev", BL_BALANCE_MAGLEV },
    { "leastconn", BL_BALANCE_LEASTCONN },
    { NULL, 0 },
};

static const struct conf_enum by_id_names[] = {
    { "maglev", BL_BALANCE_MAGLEV },
    { "p2c", BL_BALANCE_P2C },
    { NULL, 0 },
};

static const struct conf_enum other_names[] = {
    { "p2c", BL_BALANCE_P2C },
    { "roundrobin", BL_BALANCE_ROUNDROBIN },
    { NULL, 0 },
};

static const struct conf_enum driver_names[] = {
    { "lmdb", BL_STORE_LMDB },
    { "mongodb", BL_STORE_MONGODB },
    { NULL, 0 },
};

static const struct conf_enum level_names[] = {
    { "debug", BL_LOG_DEBUG },
    { "info", BL_LOG_INFO },
    { "warn", BL_LOG_WARN },
    { "error", BL_LOG_ERROR },
    { NULL, 0 },
};

/* cluster: */
static const struct conf_key cluster_keys[] = {
    KEY("name", set_str, struct bl_conf_cluster, name, .check = check_name),
    KEY("redis", set_str, struct bl_conf_cluster, redis, .flags = CONF_NULLABLE,
        .check = check_redis_url),
    KEY("redis_managed", set_bool, struct bl_conf_cluster, redis_managed),
    KEY("write_tokens_sha256", set_write_tokens, struct bl_conf_cluster, write_tokens,
        .max = 1024),
    KEY("allow_anonymous_writes", set_bool, struct bl_conf_cluster, allow_anonymous_writes),
};
static const struct conf_section cluster_section = SECTION(cluster_keys);

/* lb.listeners[].tls.sni[] */
static const struct conf_key cert_keys[] = {
    KEY("cert", set_str, struct bl_conf_cert, cert, .flags = CONF_REQUIRED),
    KEY("key", set_str, struct bl_conf_cert, key, .flags = CONF_REQUIRED),
};
static const struct conf_section cert_section = SECTION(cert_keys);
static const struct conf_array sni_array = {
    .sec = &cert_section,
    .elem_size = sizeof(struct bl_conf_cert),
    .count_off = offsetof(struct bl_conf_tls, nsni),
    .max = 256,
};

/* lb.listeners[].tls */
static const struct conf_key tls_keys[] = {
    KEY("cert", set_str, struct bl_conf_tls, cert, .flags = CONF_REQUIRED),
    KEY("key", set_str, struct bl_conf_tls, key, .flags = CONF_REQUIRED),
    KEY("sni", set_array, struct bl_conf_tls, sni, .aux = &sni_array),
    KEY("ciphers", set_str, struct bl_conf_tls, ciphers, .flags = CONF_NULLABLE),
    KEY("ciphersuites", set_str, struct bl_conf_tls, ciphersuites, .flags = CONF_NULLABLE),
};
static const struct conf_section tls_section = SECTION(tls_keys);

/* lb.listeners[] */
static void
listener_init(void *base)
{
    struct bl_conf_listener *l = base;

    l->mode = BL_MODE_HTTP;
    l->balance = BL_BALANCE_MAGLEV;
}

static int
listener_check(struct conf_ctx *c, const struct bl_conf_yn *map, void *base)
{
    struct bl_conf_listener *l = base;
    const struct bl_conf_yn *bal = bl_conf_tree_get(map, "balance");

    if (bal != NULL && l->mode == BL_MODE_HTTP) {
        size_t saved = path_push_key(c, "balance");
        int rc = conf_err(c, bal,
                          "applies to mode tcp only (http listeners use lb.balance)");

        path_pop(c, saved);
        return rc;
    }
    return 0;
}

static int
listeners_check_all(struct conf_ctx *c, const struct bl_conf_yn *seq, void *arr, size_t n)
{
    struct bl_conf_listener *l = arr;

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(l[i].bind, l[j].bind) == 0) {
                const struct bl_conf_yn *at = bl_conf_tree_get(seq->kids[i], "bind");
                size_t saved = path_push_index(c, i);
                size_t saved2 = path_push_key(c, "bind");
                int rc = conf_err(c, at, "%s is already the bind of lb.listeners[%zu]",
                                  l[i].bind, j);

                path_pop(c, saved2);
                path_pop(c, saved);
                return rc;
            }
        }
    }
    return 0;
}

static const struct conf_key listener_keys[] = {
    KEY("bind", set_str, struct bl_conf_listener, bind, .flags = CONF_REQUIRED,
        .check = check_addr),
    KEY("mode", set_enum, struct bl_conf_listener, mode, .aux = mode_names),
    KEY("balance", set_enum, struct bl_conf_listener, balance, .aux = tcp_balance_names),
    KEY("tls", set_tls, struct bl_conf_listener, tls, .aux = &tls_section),
};
static const struct conf_section listener_section =
    SECTION(listener_keys, .init = listener_init, .check = listener_check);
static const struct conf_array listeners_array = {
    .sec = &listener_section,
    .elem_size = sizeof(struct bl_conf_listener),
    .count_off = offsetof(struct bl_conf_lb, nlisteners),
    .max = BL_CONF_MAX_LISTENERS,
    .check_all = listeners_check_all,
};

/* lb.admin */
static const struct conf_key admin_keys[] = {
    KEY("bind", set_str, struct bl_conf_admin, bind, .check = check_addr),
    KEY("token_sha256", set_admin_token, struct bl_conf_admin, token_sha256),
    KEY("metrics_public", set_bool, struct bl_conf_admin, metrics_public),
};
static const struct conf_section admin_section = SECTION(admin_keys);

/* lb.health */
static const struct conf_key health_keys[] = {
    KEY("path", set_str, struct bl_conf_health, path, .check = check_url_path),
    KEY("interval", set_duration, struct bl_conf_health, interval_ms, .min = 10,
        .max = MS_H),
    KEY("timeout", set_duration, struct bl_conf_health, timeout_ms, .min = 1, .max = MS_H),
    KEY("rise", set_u32, struct bl_conf_health, rise, .min = 1, .max = 100),
    KEY("fall", set_u32, struct bl_conf_health, fall, .min = 1, .max = 100),
};
static const struct conf_section health_section = SECTION(health_keys);

/* lb.balance */
static int
balance_check(struct conf_ctx *c, const struct bl_conf_yn *map, void *base)
{
    struct bl_conf_balance_opts *b = base;

    if (b->bounded_load != 0 && b->bounded_load <= 1.0) {
        size_t saved = path_push_key(c, "bounded_load");
        int rc = conf_err(c, bl_conf_tree_get(map, "bounded_load"),
                          "must be 0 (off) or greater than 1.0, got %g", b->bounded_load);

        path_pop(c, saved);
        return rc;
    }
    return 0;
}

static const struct conf_key balance_keys[] = {
    KEY("by_id", set_enum, struct bl_conf_balance_opts, by_id, .aux = by_id_names),
    KEY("other", set_enum, struct bl_conf_balance_opts, other, .aux = other_names),
    KEY("bounded_load", set_double, struct bl_conf_balance_opts, bounded_load, .min = 0,
        .max = 100),
    KEY("retries", set_u32, struct bl_conf_balance_opts, retries, .min = 0, .max = 10),
    KEY("retry_budget", set_double, struct bl_conf_balance_opts, retry_budget, .min = 0,
        .max = 1),
};
static const struct conf_section balance_section = SECTION(balance_keys, .check = balance_check);

/* lb.limits */
static const struct conf_key lb_limits_keys[] = {
    KEY("max_client_conns", set_u32, struct bl_conf_lb_limits, max_client_conns, .min = 1,
        .max = 10000000),
    KEY("node_max_conns", set_u32, struct bl_conf_lb_limits, node_max_conns, .min = 1,
        .max = 1000000),
    KEY("queue_size", set_u32, struct bl_conf_lb_limits, queue_size, .min = 0,
        .max = 1000000),
    KEY("queue_timeout", set_duration, struct bl_conf_lb_limits, queue_timeout_ms, .min = 0,
        .max = MS_H),
    KEY("header_timeout", set_duration, struct bl_conf_lb_limits, header_timeout_ms,
        .min = 1, .max = MS_H),
    KEY("body_timeout", set_duration, struct bl_conf_lb_limits, body_timeout_ms, .min = 1,
        .max = MS_H),
    KEY("connect_timeout", set_duration, struct bl_conf_lb_limits, connect_timeout_ms,
        .min = 1, .max = MS_H),
    KEY("response_timeout", set_duration, struct bl_conf_lb_limits, response_timeout_ms,
        .min = 1, .max = 24 * MS_H),
    KEY("idle_timeout", set_duration, struct bl_conf_lb_limits, idle_timeout_ms, .min = 1,
        .max = 24 * MS_H),
    KEY("rate_per_ip", set_u32, struct bl_conf_lb_limits, rate_per_ip, .min = 0,
        .max = 100000000),
    KEY("max_header_bytes", set_size32, struct bl_conf_lb_limits, max_header_bytes,
        .min = 1 * KIB, .max = 1 * MIB),
    KEY("max_headers", set_u32, struct bl_conf_lb_limits, max_headers, .min = 1,
        .max = 10000),
    KEY("max_body", set_size64, struct bl_conf_lb_limits, max_body, .min = 0, .max = 1 * TIB),
};
static const struct conf_section lb_limits_section = SECTION(lb_limits_keys);

/* lb: */
static const struct conf_key lb_keys[] = {
    KEY("listeners", set_array, struct bl_conf_lb, listeners, .aux = &listeners_array),
    KEY("admin", set_section, struct bl_conf_lb, admin, .aux = &admin_section),
    KEY("workers", set_u32_auto, struct bl_conf_lb, workers, .min = 1, .max = 1024),
    KEY("health", set_section, struct bl_conf_lb, health, .aux = &health_section),
    KEY("balance", set_section, struct bl_conf_lb, balance, .aux = &balance_section),
    KEY("limits", set_section, struct bl_conf_lb, limits, .aux = &lb_limits_section),
    KEY("access_log", set_bool, struct bl_conf_lb, access_log),
    KEY("shutdown_timeout", set_duration, struct bl_conf_lb, shutdown_timeout_ms, .min = 0,
        .max = MS_H),
};
static const struct conf_section lb_section = SECTION(lb_keys);

/* node.store */
static int
store_check(struct conf_ctx *c, const struct bl_conf_yn *map, void *base)
{
    struct bl_conf_store *s = base;
    const struct bl_conf_yn *drv = bl_conf_tree_get(map, "driver");

    if (s->driver == BL_STORE_MONGODB && s->uri == NULL) {
        size_t saved = path_push_key(c, "driver");
        int rc = conf_err(c, drv, "driver mongodb needs node.store.uri (a mongodb:// URI)");

        path_pop(c, saved);
        return rc;
    }
    if (s->driver == BL_STORE_LMDB && s->path == NULL) {
        size_t saved = path_push_key(c, "path");
        int rc = conf_err(c, bl_conf_tree_get(map, "path") ? bl_conf_tree_get(map, "path") : map,
                          "driver lmdb needs a directory path");

        path_pop(c, saved);
        return rc;
    }
    return 0;
}

static const struct conf_key store_keys[] = {
    KEY("driver", set_enum, struct bl_conf_store, driver, .aux = driver_names),
    KEY("path", set_str, struct bl_conf_store, path, .flags = CONF_NULLABLE),
    KEY("map_size", set_size64, struct bl_conf_store, map_size, .min = 1 * MIB,
        .max = 64 * TIB),
    KEY("uri", set_str, struct bl_conf_store, uri, .flags = CONF_NULLABLE,
        .check = check_mongo_uri),
    KEY("database", set_str, struct bl_conf_store, database, .check = check_name),
    KEY("write_concern", set_str, struct bl_conf_store, write_concern),
    KEY("read_preference", set_str, struct bl_conf_store, read_preference),
    KEY("server_selection_timeout", set_duration, struct bl_conf_store,
        server_selection_timeout_ms, .min = 1, .max = MS_H),
    KEY("socket_timeout", set_duration, struct bl_conf_store, socket_timeout_ms, .min = 1,
        .max = MS_H),
};
static const struct conf_section store_section = SECTION(store_keys, .check = store_check);

/* node.cache */
static const struct conf_key cache_keys[] = {
    KEY("enabled", set_bool, struct bl_conf_cache, enabled),
    KEY("size", set_size64, struct bl_conf_cache, size, .min = 4 * KIB, .max = 4 * TIB),
    KEY("ttl", set_duration, struct bl_conf_cache, ttl_ms, .min = 1, .max = 7 * 24 * MS_H),
    KEY("negative_ttl", set_duration, struct bl_conf_cache, negative_ttl_ms, .min = 0,
        .max = MS_H),
};
static const struct conf_section cache_section = SECTION(cache_keys);

/* node.limits */
static const struct conf_key node_limits_keys[] = {
    KEY("post_body", set_size64, struct bl_conf_node_limits, post_body, .min = 1,
        .max = 1 * GIB),
    KEY("asset", set_size64, struct bl_conf_node_limits, asset, .min = 1, .max = 4 * GIB),
};
static const struct conf_section node_limits_section = SECTION(node_limits_keys);

/* node.assets (its keys live directly in struct bl_conf_node) */
static const struct conf_key assets_keys[] = {
    KEY("types", set_asset_types, struct bl_conf_node, asset_types, .max = 256),
};
static const struct conf_section assets_section = SECTION(assets_keys);

/* node: */
static const struct conf_key node_keys[] = {
    KEY("threads", set_u32_auto, struct bl_conf_node, threads, .min = 1, .max = 1024),
    KEY("store", set_section, struct bl_conf_node, store, .aux = &store_section),
    KEY("cache", set_section, struct bl_conf_node, cache, .aux = &cache_section),
    KEY("limits", set_section, struct bl_conf_node, limits, .aux = &node_limits_section),
    { .name = "assets", .set = set_section, .off = 0, .aux = &assets_section },
    KEY("shutdown_timeout", set_duration, struct bl_conf_node, shutdown_timeout_ms, .min = 0,
        .max = MS_H),
};
static const struct conf_section node_section = SECTION(node_keys);

/* nodes[] */
static void
node_entry_init(void *base)
{
    struct bl_conf_node_entry *e = base;

    e->weight = BL_CONF_DEFAULT_NODE_WEIGHT;
}

static int
nodes_check_all(struct conf_ctx *c, const struct bl_conf_yn *seq, void *arr, size_t n)
{
    struct bl_conf_node_entry *e = arr;

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            const char *what = NULL;
            const char *key = NULL;

            if (strcmp(e[i].name, e[j].name) == 0) {
                what = "node name";
                key = "name";
            } else if (strcmp(e[i].addr, e[j].addr) == 0) {
                what = "node address";
                key = "addr";
            }
            if (what != NULL) {
                size_t saved = path_push_index(c, i);
                size_t saved2 = path_push_key(c, key);
                int rc = conf_err(c, bl_conf_tree_get(seq->kids[i], key),
                                  "duplicate %s %s (also nodes[%zu], line %u)", what,
                                  key[0] == 'n' ? e[i].name : e[i].addr, j,
                                  bl_conf_tree_get(seq->kids[j], key)->line);

                path_pop(c, saved2);
                path_pop(c, saved);
                return rc;
            }
        }
    }
    return 0;
}

static const struct conf_key node_entry_keys[] = {
    KEY("name", set_str, struct bl_conf_node_entry, name, .flags = CONF_REQUIRED,
        .check = check_name),
    KEY("addr", set_str, struct bl_conf_node_entry, addr, .flags = CONF_REQUIRED,
        .check = check_addr),
    KEY("weight", set_u32, struct bl_conf_node_entry, weight, .min = 1, .max = 1000),
};
static const struct conf_section node_entry_section =
    SECTION(node_entry_keys, .init = node_entry_init);
static const struct conf_array nodes_array = {
    .sec = &node_entry_section,
    .elem_size = sizeof(struct bl_conf_node_entry),
    .count_off = offsetof(struct bl_conf, nnodes),
    .max = BL_CONF_MAX_NODES,
    .check_all = nodes_check_all,
};

/* autoscale: */
static int
autoscale_check(struct conf_ctx *c, const struct bl_conf_yn *map, void *base)
{
    struct bl_conf_autoscale *as = base;

    if (as->min > as->max) {
        const struct bl_conf_yn *at = bl_conf_tree_get(map, "max");
        const char *key = "max";
        size_t saved;
        int rc;

        if (at == NULL) {
            at = bl_conf_tree_get(map, "min");
            key = "min";
        }
        saved = path_push_key(c, key);
        rc = conf_err(c, at, "autoscale.min (%u) must not exceed autoscale.max (%u)", as->min,
                      as->max);
        path_pop(c, saved);
        return rc;
    }
    return 0;
}

static const struct conf_key autoscale_keys[] = {
    KEY("interval", set_duration, struct bl_conf_autoscale, interval_ms, .min = 100,
        .max = MS_H),
    KEY("min", set_u32, struct bl_conf_autoscale, min, .min = 1, .max = BL_CONF_MAX_NODES),
    KEY("max", set_u32, struct bl_conf_autoscale, max, .min = 1, .max = BL_CONF_MAX_NODES),
    KEY("target_rps_per_node", set_double, struct bl_conf_autoscale, target_rps_per_node,
        .min = 1, .max = 1e9),
    KEY("tolerance", set_double, struct bl_conf_autoscale, tolerance, .min = 0, .max = 1),
    KEY("up_window", set_duration, struct bl_conf_autoscale, up_window_ms, .min = 0,
        .max = 24 * MS_H),
    KEY("down_window", set_duration, struct bl_conf_autoscale, down_window_ms, .min = 0,
        .max = 24 * MS_H),
    KEY("cooldown", set_duration, struct bl_conf_autoscale, cooldown_ms, .min = 0,
        .max = 24 * MS_H),
    KEY("scale_up", set_str, struct bl_conf_autoscale, scale_up, .flags = CONF_NULLABLE),
    KEY("scale_down", set_str, struct bl_conf_autoscale, scale_down, .flags = CONF_NULLABLE),
    KEY("hook_timeout", set_duration, struct bl_conf_autoscale, hook_timeout_ms, .min = 1,
        .max = MS_H),
    KEY("bind", set_str, struct bl_conf_autoscale, bind, .flags = CONF_NULLABLE,
        .check = check_addr),
    KEY("state_file", set_str, struct bl_conf_autoscale, state_file, .flags = CONF_NULLABLE),
};
static const struct conf_section autoscale_section =
    SECTION(autoscale_keys, .check = autoscale_check);

/* log: (its keys live directly in struct bl_conf) */
static const struct conf_key log_keys[] = {
    KEY("level", set_enum, struct bl_conf, log_level, .aux = level_names),
};
static const struct conf_section log_section = SECTION(log_keys);

/* the top level */
static const struct conf_key top_keys[] = {
    KEY("cluster", set_section, struct bl_conf, cluster, .aux = &cluster_section),
    KEY("lb", set_section, struct bl_conf, lb, .aux = &lb_section),
    KEY("node", set_section, struct bl_conf, node, .aux = &node_section),
    KEY("nodes", set_array, struct bl_conf, nodes, .aux = &nodes_array),
    KEY("autoscale", set_autoscale, struct bl_conf, autoscale, .aux = &autoscale_section),
    { .name = "log", .set = set_section, .off = 0, .aux = &log_section },
};
static const struct conf_section top_section = SECTION(top_keys);

/* ---------------------------------------------------------------- defaults, checks */

static void
conf_defaults(struct bl_conf *conf)
{
    static const char *const types[] = BL_CONF_DEFAULT_ASSET_TYPES;

    conf->cluster.name = bl_xstrdup(BL_CONF_DEFAULT_CLUSTER_NAME);

    conf->lb.admin.bind = bl_xstrdup(BL_CONF_DEFAULT_ADMIN_BIND);
    conf->lb.workers = BL_CONF_DEFAULT_WORKERS;
    conf->lb.health.path = bl_xstrdup(BL_CONF_DEFAULT_HEALTH_PATH);
    conf->lb.health.interval_ms = BL_CONF_DEFAULT_HEALTH_INTERVAL_MS;
    conf->lb.health.timeout_ms = BL_CONF_DEFAULT_HEALTH_TIMEOUT_MS;
    conf->lb.health.rise = BL_CONF_DEFAULT_HEALTH_RISE;
    conf->lb.health.fall = BL_CONF_DEFAULT_HEALTH_FALL;
    conf->lb.balance.by_id = BL_BALANCE_MAGLEV;
    conf->lb.balance.other = BL_BALANCE_P2C;
    conf->lb.balance.bounded_load = BL_CONF_DEFAULT_BOUNDED_LOAD;
    conf->lb.balance.retries = BL_CONF_DEFAULT_RETRIES;
    conf->lb.balance.retry_budget = BL_CONF_DEFAULT_RETRY_BUDGET;
    conf->lb.limits.max_client_conns = BL_CONF_DEFAULT_MAX_CLIENT_CONNS;
    conf->lb.limits.node_max_conns = BL_CONF_DEFAULT_NODE_MAX_CONNS;
    conf->lb.limits.queue_size = BL_CONF_DEFAULT_QUEUE_SIZE;
    conf->lb.limits.queue_timeout_ms = BL_CONF_DEFAULT_QUEUE_TIMEOUT_MS;
    conf->lb.limits.header_timeout_ms = BL_CONF_DEFAULT_HEADER_TIMEOUT_MS;
    conf->lb.limits.body_timeout_ms = BL_CONF_DEFAULT_BODY_TIMEOUT_MS;
    conf->lb.limits.connect_timeout_ms = BL_CONF_DEFAULT_CONNECT_TIMEOUT_MS;
    conf->lb.limits.response_timeout_ms = BL_CONF_DEFAULT_RESPONSE_TIMEOUT_MS;
    conf->lb.limits.idle_timeout_ms = BL_CONF_DEFAULT_IDLE_TIMEOUT_MS;
    conf->lb.limits.rate_per_ip = 0;
    conf->lb.limits.max_header_bytes = BL_CONF_DEFAULT_MAX_HEADER_BYTES;
    conf->lb.limits.max_headers = BL_CONF_DEFAULT_MAX_HEADERS;
    conf->lb.limits.max_body = BL_CONF_DEFAULT_MAX_BODY;
    conf->lb.access_log = true;
    conf->lb.shutdown_timeout_ms = BL_CONF_DEFAULT_SHUTDOWN_TIMEOUT_MS;

    conf->node.threads = BL_CONF_DEFAULT_THREADS;
    conf->node.store.driver = BL_STORE_LMDB;
    conf->node.store.path = bl_xstrdup(BL_CONF_DEFAULT_STORE_PATH);
    conf->node.store.map_size = BL_CONF_DEFAULT_MAP_SIZE;
    conf->node.store.database = bl_xstrdup(BL_CONF_DEFAULT_MONGO_DATABASE);
    conf->node.store.write_concern = bl_xstrdup(BL_CONF_DEFAULT_WRITE_CONCERN);
    conf->node.store.read_preference = bl_xstrdup(BL_CONF_DEFAULT_READ_PREFERENCE);
    conf->node.store.server_selection_timeout_ms = BL_CONF_DEFAULT_SERVER_SELECTION_TIMEOUT_MS;
    conf->node.store.socket_timeout_ms = BL_CONF_DEFAULT_SOCKET_TIMEOUT_MS;
    conf->node.cache.enabled = true;
    conf->node.cache.size = BL_CONF_DEFAULT_CACHE_SIZE;
    conf->node.cache.ttl_ms = BL_CONF_DEFAULT_CACHE_TTL_MS;
    conf->node.cache.negative_ttl_ms = BL_CONF_DEFAULT_NEGATIVE_TTL_MS;
    conf->node.limits.post_body = BL_CONF_DEFAULT_POST_BODY;
    conf->node.limits.asset = BL_CONF_DEFAULT_ASSET;
    conf->node.asset_types = bl_xcalloc(BL_ARRAY_SIZE(types), sizeof(char *));
    for (size_t i = 0; i < BL_ARRAY_SIZE(types); i++) {
        conf->node.asset_types[i] = bl_xstrdup(types[i]);
    }
    conf->node.nasset_types = BL_ARRAY_SIZE(types);
    conf->node.shutdown_timeout_ms = BL_CONF_DEFAULT_SHUTDOWN_TIMEOUT_MS;

    conf->autoscale.enabled = false;
    conf->autoscale.interval_ms = BL_CONF_DEFAULT_AUTOSCALE_INTERVAL_MS;
    conf->autoscale.min = BL_CONF_DEFAULT_AUTOSCALE_MIN;
    conf->autoscale.max = BL_CONF_DEFAULT_AUTOSCALE_MAX;
    conf->autoscale.target_rps_per_node = BL_CONF_DEFAULT_TARGET_RPS_PER_NODE;
    conf->autoscale.tolerance = BL_CONF_DEFAULT_TOLERANCE;
    conf->autoscale.up_window_ms = BL_CONF_DEFAULT_UP_WINDOW_MS;
    conf->autoscale.down_window_ms = BL_CONF_DEFAULT_DOWN_WINDOW_MS;
    conf->autoscale.cooldown_ms = BL_CONF_DEFAULT_COOLDOWN_MS;
    conf->autoscale.hook_timeout_ms = BL_CONF_DEFAULT_HOOK_TIMEOUT_MS;

    conf->log_level = BL_CONF_DEFAULT_LOG_LEVEL;
}

/* The value node at <path>, else the nearest enclosing key that the file set, else NULL. */
static const struct bl_conf_yn *
mark_near(const struct conf_ctx *c, const char *path)
{
    char buf[BL_CONF_TREE_PATH_MAX];

    snprintf(buf, sizeof(buf), "%s", path);
    for (;;) {
        const struct bl_conf_yn *at = mark_find(c, buf);
        char *dot;

        if (at != NULL) {
            return at;
        }
        dot = strrchr(buf, '.');
        if (dot == NULL) {
            return NULL;
        }
        *dot = '\0';
    }
}

/* Rules that span sections; run once every key is in. */
static int
conf_check_cross(struct conf_ctx *c, const struct bl_conf_yn *root)
{
    struct bl_conf *conf = c->conf;
    const struct bl_conf_yn *at;

    if (conf->cluster.redis_managed && conf->cluster.redis == NULL) {
        at = mark_near(c, "cluster.redis_managed");
        return conf_err_at(c, at ? at->line : 1, at ? at->col : 1, "cluster.redis_managed",
                           "needs cluster.redis (the URL blogctl up starts Redis on)");
    }
    if (conf->node.cache.enabled && conf->cluster.redis == NULL &&
        (conf->nnodes > 1 || (conf->autoscale.enabled && conf->autoscale.max > 1))) {
        char why[96];

        at = mark_near(c, "node.cache.enabled");
        if (at == NULL) {
            at = mark_find(c, conf->nnodes > 1 ? "nodes" : "autoscale");
        }
        if (conf->nnodes > 1) {
            snprintf(why, sizeof(why), "%zu nodes", conf->nnodes);
        } else {
            snprintf(why, sizeof(why), "autoscale up to %u nodes", conf->autoscale.max);
        }
        return conf_err_at(c, at ? at->line : 1, at ? at->col : 1, "node.cache.enabled",
                           "a cluster of %s with the node cache on needs cluster.redis: "
                           "cache coherence between nodes uses Redis pub/sub invalidation; "
                           "set cluster.redis or node.cache.enabled: false", why);
    }
    for (size_t i = 0; i < conf->lb.nlisteners; i++) {
        if (strcmp(conf->lb.listeners[i].bind, conf->lb.admin.bind) == 0) {
            at = mark_near(c, "lb.admin.bind");
            return conf_err_at(c, at ? at->line : 1, at ? at->col : 1, "lb.admin.bind",
                               "%s is also the bind of lb.listeners[%zu]",
                               conf->lb.admin.bind, i);
        }
    }
    for (size_t i = 0; i < conf->nnodes; i++) {
        const char *addr = conf->nodes[i].addr;
        const char *clash = strcmp(addr, conf->lb.admin.bind) == 0 ? "lb.admin.bind" : NULL;
        char path[64];

        for (size_t j = 0; clash == NULL && j < conf->lb.nlisteners; j++) {
            if (strcmp(addr, conf->lb.listeners[j].bind) == 0) {
                clash = "a bind of lb.listeners";
            }
        }
        if (clash != NULL) {
            snprintf(path, sizeof(path), "nodes[%zu].addr", i);
            at = mark_near(c, path);
            return conf_err_at(c, at ? at->line : 1, at ? at->col : 1, path,
                               "%s is also %s", addr, clash);
        }
    }
    if (conf->cluster.nwrite_tokens == 0 && !conf->cluster.allow_anonymous_writes) {
        at = mark_near(c, "cluster.write_tokens_sha256");
        conf_warn(c, at ? at : root, "cluster.write_tokens_sha256",
                  "no write token and allow_anonymous_writes is false: blog-node will "
                  "refuse to start until one is configured");
    }
    return 0;
}

/* ---------------------------------------------------------------- public API */

struct bl_conf *
bl_conf_load_buffer(const char *yaml, size_t len, const char *name, char **err)
{
    struct conf_ctx c;
    struct bl_conf *conf = NULL;
    struct bl_conf_yn *root = NULL;
    struct bl_conf_tree_err terr;
    int rc;

    memset(&c, 0, sizeof(c));
    c.name = name ? name : "<config>";
    if (err != NULL) {
        *err = NULL;
    }
    if (len > BL_CONF_MAX_FILE_SIZE) {
        conf_err_at(&c, 0, 0, "", "file too large (%zu bytes; a cluster file is at most "
                    "1 MiB)", len);
        goto fail;
    }
    if (bl_conf_tree_parse(yaml, len, &root, &terr) < 0) {
        conf_err_at(&c, terr.line, terr.col, terr.path, "%s", terr.msg);
        goto fail;
    }
    if (root == NULL || is_null(root)) {
        conf_err_at(&c, root ? root->line : 1, root ? root->col : 1, "",
                    "the file is empty; expected a mapping with cluster, lb, node, nodes, "
                    "autoscale, log");
        goto fail;
    }
    conf = bl_xcalloc(1, sizeof(*conf));
    conf->file = bl_xstrdup(c.name);
    c.conf = conf;
    conf_defaults(conf);
    if (root->type != BL_CONF_YN_MAP) {
        conf_err(&c, root, "expected a mapping with cluster, lb, node, nodes, autoscale, log; "
                 "got %s", type_name(root));
        goto fail;
    }
    rc = parse_map(&c, &top_section, root, conf);
    if (rc == 0) {
        rc = conf_check_cross(&c, root);
    }
    if (rc < 0) {
        goto fail;
    }
    for (size_t i = 0; i < c.nmarks; i++) {
        free(c.marks[i].path);
    }
    free(c.marks);
    bl_conf_tree_free(root);
    return conf;

fail:
    for (size_t i = 0; i < c.nmarks; i++) {
        free(c.marks[i].path);
    }
    free(c.marks);
    bl_conf_tree_free(root);
    bl_conf_destroy(conf);
    if (c.err == NULL) {
        c.err = bl_xstrdup("invalid configuration");
    }
    if (err != NULL) {
        *err = c.err;
    } else {
        free(c.err);
    }
    return NULL;
}

struct bl_conf *
bl_conf_load(const char *path, char **err)
{
    struct bl_conf *conf;
    char *buf = NULL;
    size_t len = 0;
    char msg[512];
    int fd;

    if (err != NULL) {
        *err = NULL;
    }
    if (path == NULL) {
        path = bl_conf_default_path();
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, sizeof(msg), "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    /* Read up to one byte past the limit, so "too large" needs no fstat (pipes, /proc). */
    buf = bl_xmalloc(BL_CONF_MAX_FILE_SIZE + 1);
    while (len < BL_CONF_MAX_FILE_SIZE + 1) {
        ssize_t n = read(fd, buf + len, BL_CONF_MAX_FILE_SIZE + 1 - len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            snprintf(msg, sizeof(msg), "%s: cannot read: %s", path, strerror(errno));
            close(fd);
            goto fail;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    if (len > BL_CONF_MAX_FILE_SIZE) {
        snprintf(msg, sizeof(msg), "%s: file too large (more than 1 MiB; a cluster file is "
                 "at most 1 MiB)", path);
        goto fail;
    }
    conf = bl_conf_load_buffer(buf, len, path, err);
    free(buf);
    return conf;

fail:
    free(buf);
    if (err != NULL) {
        *err = bl_xstrdup(msg);
    }
    return NULL;
}

void
bl_conf_destroy(struct bl_conf *conf)
{
    if (conf == NULL) {
        return;
    }
    free(conf->file);
    free(conf->cluster.name);
    free(conf->cluster.redis);
    free(conf->cluster.write_tokens);
    for (size_t i = 0; i < conf->lb.nlisteners; i++) {
        struct bl_conf_listener *l = &conf->lb.listeners[i];

        free(l->bind);
        free(l->tls.cert);
        free(l->tls.key);
        for (size_t j = 0; j < l->tls.nsni; j++) {
            free(l->tls.sni[j].cert);
            free(l->tls.sni[j].key);
        }
        free(l->tls.sni);
        free(l->tls.ciphers);
        free(l->tls.ciphersuites);
    }
    free(conf->lb.listeners);
    free(conf->lb.admin.bind);
    free(conf->lb.health.path);
    free(conf->node.store.path);
    free(conf->node.store.uri);
    free(conf->node.store.database);
    free(conf->node.store.write_concern);
    free(conf->node.store.read_preference);
    for (size_t i = 0; i < conf->node.nasset_types; i++) {
        free(conf->node.asset_types[i]);
    }
    free(conf->node.asset_types);
    for (size_t i = 0; i < conf->nnodes; i++) {
        free(conf->nodes[i].name);
        free(conf->nodes[i].addr);
    }
    free(conf->nodes);
    free(conf->autoscale.scale_up);
    free(conf->autoscale.scale_down);
    free(conf->autoscale.bind);
    free(conf->autoscale.state_file);
    for (size_t i = 0; i < conf->nwarnings; i++) {
        free(conf->warnings[i]);
    }
    free(conf->warnings);
    free(conf);
}

const char *
bl_conf_default_path(void)
{
    const char *env = getenv(BL_CONF_ENV);

    return env != NULL && env[0] != '\0' ? env : BL_CONF_DEFAULT_PATH;
}

const struct bl_conf_node_entry *
bl_conf_find_node(const struct bl_conf *conf, const char *name)
{
    if (conf == NULL || name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < conf->nnodes; i++) {
        if (strcmp(conf->nodes[i].name, name) == 0) {
            return &conf->nodes[i];
        }
    }
    return NULL;
}

uint32_t
bl_conf_auto_threads(uint32_t configured)
{
    long n;

    if (configured != 0) {
        return configured;
    }
    n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) {
        return 1;
    }
    return n > 1024 ? 1024 : (uint32_t)n;
}
