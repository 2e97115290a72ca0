#include "node_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "bl/bl_err.h"
#include "bl/bl_time.h"

uint64_t
node_json_request_limit(uint64_t post_body)
{
    /*
     * The body field may need escaping (a quote or newline doubles), and title, author and
     * tags add up to ~16 KiB even fully \u-escaped: a quarter more plus 64 KiB covers any
     * realistic post while still bounding what we buffer.
     */
    return post_body + post_body / 4 + 64 * 1024;
}

long
node_json_utf8_chars(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + n;
    long count = 0;

    while (p < end) {
        unsigned c = *p;
        uint32_t cp;
        size_t need;

        if (c == 0) {
            return -1;
        }
        if (c < 0x80) {
            p++;
            count++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return -1;              /* continuation byte, 0xc0/0xc1 overlong lead, > 0xf4 */
        }
        if ((size_t)(end - p) < need + 1) {
            return -1;
        }
        for (size_t i = 1; i <= need; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return -1;
            }
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return -1;              /* overlong, out of range, surrogate */
        }
        p += need + 1;
        count++;
    }
    return count;
}

static void
set_err(struct node_json_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(struct node_json_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;

    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

/* Copies a field name for a message: at most 64 bytes, cut on a UTF-8 boundary. */
static void
field_name(const char *key, char out[80])
{
    size_t n = strlen(key);

    if (n > 64) {
        n = 64;
        while (n > 0 && ((unsigned char)key[n] & 0xc0) == 0x80) {
            n--;
        }
        memcpy(out, key, n);
        memcpy(out + n, "...", 4);
        return;
    }
    memcpy(out, key, n + 1);
}

/* Checks the string field <name> = <v>: chars in [min, max], or bytes <= max_bytes. */
static int
check_string(json_t *v, const char *name, long min_chars, long max_chars, uint64_t max_bytes,
             struct node_json_error *err)
{
    const char *s;
    size_t n;
    long chars;

    if (!json_is_string(v)) {
        set_err(err, "invalid_field", "field \"%s\" must be a string", name);
        return BL_EINVAL;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    chars = node_json_utf8_chars(s, n);
    if (chars < 0) {
        set_err(err, "invalid_field", "field \"%s\" must be valid UTF-8 without NUL", name);
        return BL_EINVAL;
    }
    if (max_bytes > 0 && n > max_bytes) {
        set_err(err, "invalid_field", "field \"%s\" is longer than %" PRIu64 " bytes", name,
                max_bytes);
        return BL_EINVAL;
    }
    if (chars < min_chars || (max_chars > 0 && chars > max_chars)) {
        set_err(err, "invalid_field", "field \"%s\" must be %ld to %ld characters long", name,
                min_chars, max_chars);
        return BL_EINVAL;
    }
    return 0;
}

/*
 * Replaces with '?' every byte of <s> that is not part of a valid UTF-8 sequence. jansson's
 * error text quotes the bytes of the bad token ("... near '<bytes>'"), cut anywhere, and the
 * message goes into a JSON answer, which must be valid UTF-8.
 */
static void
scrub_utf8(char *s)
{
    unsigned char *p = (unsigned char *)s;

    while (*p != '\0') {
        size_t n = *p < 0x80 ? 1 : *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;

        if (strnlen((const char *)p, n) == n && node_json_utf8_chars((const char *)p, n) == 1) {
            p += n;
        } else {
            *p++ = '?';
        }
    }
}

static char *
dup_string(json_t *v)
{
    size_t n = json_string_length(v);
    char *s = malloc(n + 1);

    if (s != NULL) {
        memcpy(s, json_string_value(v), n);
        s[n] = '\0';
    }
    return s;
}

int
node_json_parse_post(const char *buf, size_t len, uint64_t post_body_max,
                     struct node_post *out, struct node_json_error *err)
{
    json_error_t jerr;
    json_t *root;
    json_t *title = NULL, *body = NULL, *author = NULL, *tags = NULL;
    const char *key;
    json_t *value;
    char name[80];
    int rc = BL_EINVAL;

    /*
     * Strict decoding: no JSON_DECODE_ANY (only an object or array at the top), no
     * JSON_DISABLE_EOF_CHECK (nothing after the value), no JSON_ALLOW_NUL (\u0000 is an
     * error), duplicate keys are errors; jansson itself rejects invalid UTF-8, lone
     * surrogate escapes and numbers that overflow.
     */
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        scrub_utf8(jerr.text);
        set_err(err, "invalid_json", "invalid JSON at line %d, column %d: %s", jerr.line,
                jerr.column, jerr.text);
        return BL_EINVAL;
    }
    if (!json_is_object(root)) {
        set_err(err, "invalid_body", "the body must be one JSON object");
        goto fail;
    }
    json_object_foreach(root, key, value) {
        if (key[0] == '$') {
            field_name(key, name);
            set_err(err, "forbidden_field", "field \"%s\": keys starting with '$' are not allowed",
                    name);
            goto fail;
        }
        if (strcmp(key, "title") == 0) {
            title = value;
        } else if (strcmp(key, "body") == 0) {
            body = value;
        } else if (strcmp(key, "author") == 0) {
            author = value;
        } else if (strcmp(key, "tags") == 0) {
            tags = value;
        } else {
            field_name(key, name);
            set_err(err, "unknown_field", "unknown field \"%s\"", name);
            goto fail;
        }
    }
    if (title == NULL || body == NULL || author == NULL) {
        set_err(err, "missing_field", "missing field \"%s\"",
                title == NULL ? "title" : body == NULL ? "body" : "author");
        goto fail;
    }
    if (check_string(title, "title", 1, NODE_TITLE_MAX, 0, err) != 0 ||
        check_string(body, "body", 0, 0, post_body_max, err) != 0 ||
        check_string(author, "author", 1, NODE_AUTHOR_MAX, 0, err) != 0) {
        goto fail;
    }
    if (tags != NULL) {
        size_t i;
        json_t *t;

        if (!json_is_array(tags)) {
            set_err(err, "invalid_field", "field \"tags\" must be an array of strings");
            goto fail;
        }
        if (json_array_size(tags) > NODE_MAX_TAGS) {
            set_err(err, "invalid_field", "field \"tags\" holds more than %d tags",
                    NODE_MAX_TAGS);
            goto fail;
        }
        json_array_foreach(tags, i, t) {
            snprintf(name, sizeof(name), "tags[%zu]", i);
            if (check_string(t, name, 1, NODE_TAG_MAX, 0, err) != 0) {
                goto fail;
            }
        }
    }

    rc = -ENOMEM;
    out->title = dup_string(title);
    out->body = dup_string(body);
    out->author = dup_string(author);
    out->ntags = 0;
    out->tags = NULL;
    if (out->title == NULL || out->body == NULL || out->author == NULL) {
        goto fail_free;
    }
    if (tags != NULL && json_array_size(tags) > 0) {
        size_t i;
        json_t *t;

        out->tags = calloc(json_array_size(tags), sizeof(char *));
        if (out->tags == NULL) {
            goto fail_free;
        }
        json_array_foreach(tags, i, t) {
            out->tags[i] = dup_string(t);
            if (out->tags[i] == NULL) {
                goto fail_free;
            }
            out->ntags = i + 1;
        }
    }
    json_decref(root);
    return 0;

fail_free:
    set_err(err, "internal", "out of memory");
    for (size_t i = 0; i < out->ntags; i++) {
        free(out->tags[i]);
    }
    free(out->tags);
    free(out->title);
    free(out->body);
    free(out->author);
    out->tags = NULL;
    out->ntags = 0;
    out->title = out->body = out->author = NULL;
fail:
    json_decref(root);
    return rc;
}

/*
 * RFC 3339 UTC with milliseconds, written by hand: gmtime_r() takes glibc's timezone lock
 * and printf parses its format on every call, which showed in GET profiles.
 * Days to civil date after Howard Hinnant's algorithm.
 */
static char *
put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

static size_t
format_time(uint64_t ms, char out[BL_RFC3339_LEN])
{
    uint64_t secs = ms / 1000;
    uint64_t days = secs / 86400;
    unsigned sod = (unsigned)(secs % 86400);
    unsigned msec = (unsigned)(ms % 1000);
    int64_t z = (int64_t)days + 719468;
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    char *p = out;

    y += m <= 2;
    if (y > 9999) {
        bl_time_rfc3339(ms, out);       /* out of the 4-digit range: the shared formatter */
        return strlen(out);
    }
    p = put2(p, (unsigned)(y / 100));
    p = put2(p, (unsigned)(y % 100));
    *p++ = '-';
    p = put2(p, m);
    *p++ = '-';
    p = put2(p, d);
    *p++ = 'T';
    p = put2(p, sod / 3600);
    *p++ = ':';
    p = put2(p, sod / 60 % 60);
    *p++ = ':';
    p = put2(p, sod % 60);
    *p++ = '.';
    *p++ = (char)('0' + msec / 100);
    p = put2(p, msec % 100);
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - out);
}

static int
append_time(struct bl_buf *b, const char *key, size_t keylen, uint64_t ms)
{
    char ts[BL_RFC3339_LEN];
    size_t n = format_time(ms, ts);
    int rc = 0;

    rc |= bl_buf_append(b, key, keylen);
    rc |= bl_buf_append(b, ts, n);
    rc |= bl_buf_append(b, "\"", 1);
    return rc;
}

static int
append_u64(struct bl_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return bl_buf_append(b, tmp + i, sizeof(tmp) - i);
}

#define APPEND_LIT(b, s) bl_buf_append((b), (s), sizeof(s) - 1)

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* True when one of the 8 bytes of <x> is < 0x20, '"' or '\\' (may not be exact about which). */
static inline bool
needs_escape8(uint64_t x)
{
    uint64_t lt20 = (x - ONES * 0x20) & ~x;
    uint64_t q = x ^ (ONES * '"');
    uint64_t bs = x ^ (ONES * '\\');

    return (((lt20) | ((q - ONES) & ~q) | ((bs - ONES) & ~bs)) & HIGHS) != 0;
}

int
node_json_append_str(struct bl_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, start = 0;

    if (bl_buf_reserve(b, n + 2) != 0) {
        return -ENOMEM;
    }
    b->data[b->len++] = '"';
    while (i < n) {
        unsigned char c;
        char esc[6];
        size_t elen;

        if (i + 8 <= n) {
            uint64_t x;

            memcpy(&x, s + i, 8);
            if (!needs_escape8(x)) {
                i += 8;
                continue;
            }
        }
        c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        switch (c) {
        case '"':
            esc[0] = '\\';
            esc[1] = '"';
            elen = 2;
            break;
        case '\\':
            esc[0] = '\\';
            esc[1] = '\\';
            elen = 2;
            break;
        case '\n':
            esc[0] = '\\';
            esc[1] = 'n';
            elen = 2;
            break;
        case '\r':
            esc[0] = '\\';
            esc[1] = 'r';
            elen = 2;
            break;
        case '\t':
            esc[0] = '\\';
            esc[1] = 't';
            elen = 2;
            break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
            break;
        }
        if (bl_buf_append(b, s + start, i - start) != 0 || bl_buf_append(b, esc, elen) != 0) {
            return -ENOMEM;
        }
        start = ++i;
    }
    if (bl_buf_append(b, s + start, n - start) != 0 || bl_buf_append(b, "\"", 1) != 0) {
        return -ENOMEM;
    }
    return 0;
}

int
node_json_render_post(struct bl_buf *b, const struct node_post *p)
{
    int rc = 0;

    rc |= APPEND_LIT(b, "{\"id\":\"");
    rc |= bl_buf_append(b, p->id, strnlen(p->id, NODE_ID_LEN));
    rc |= APPEND_LIT(b, "\",\"title\":");
    rc |= node_json_append_str(b, p->title, strlen(p->title));
    rc |= APPEND_LIT(b, ",\"body\":");
    rc |= node_json_append_str(b, p->body, strlen(p->body));
    rc |= APPEND_LIT(b, ",\"author\":");
    rc |= node_json_append_str(b, p->author, strlen(p->author));
    rc |= APPEND_LIT(b, ",\"tags\":[");
    for (size_t i = 0; i < p->ntags; i++) {
        if (i > 0) {
            rc |= APPEND_LIT(b, ",");
        }
        rc |= node_json_append_str(b, p->tags[i], strlen(p->tags[i]));
    }
    rc |= APPEND_LIT(b, "]");
    rc |= append_time(b, ",\"created_at\":\"", sizeof(",\"created_at\":\"") - 1, p->created_ms);
    rc |= append_time(b, ",\"updated_at\":\"", sizeof(",\"updated_at\":\"") - 1, p->updated_ms);
    rc |= APPEND_LIT(b, ",\"version\":");
    rc |= append_u64(b, p->version);
    rc |= APPEND_LIT(b, "}");
    return rc == 0 ? 0 : -ENOMEM;
}

int
node_json_render_list(struct bl_buf *b, const struct node_post_list *l)
{
    int rc = 0;

    rc |= bl_buf_append_str(b, "{\"posts\":[");
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        if (i > 0) {
            rc |= bl_buf_append(b, ",", 1);
        }
        rc |= node_json_render_post(b, &l->posts[i]);
    }
    if (l->more && l->n > 0) {
        rc |= bl_buf_printf(b, "],\"next_cursor\":\"%s\"}", l->posts[l->n - 1].id);
    } else {
        rc |= bl_buf_append_str(b, "],\"next_cursor\":null}");
    }
    return rc == 0 ? 0 : -ENOMEM;
}

int
node_json_render_error(struct bl_buf *b, const char *code, const char *message)
{
    int rc = 0;

    rc |= bl_buf_append_str(b, "{\"error\":{\"code\":");
    rc |= node_json_append_str(b, code, strlen(code));
    rc |= bl_buf_append_str(b, ",\"message\":");
    rc |= node_json_append_str(b, message, strlen(message));
    rc |= bl_buf_append_str(b, "}}");
    return rc == 0 ? 0 : -ENOMEM;
}

void
node_json_post_etag(const char *id, uint64_t version, char out[NODE_ETAG_MAX])
{
    snprintf(out, NODE_ETAG_MAX, "\"%s-%" PRIu64 "\"", id, version);
}

static const char *
skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

static bool
is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int
node_json_media_type(const char *ct, char *out, size_t outlen)
{
    const char *p;
    size_t n = 0;
    bool slash = false;

    if (ct == NULL) {
        return BL_EINVAL;
    }
    p = skip_ows(ct);
    while (is_token_char(*p) || (*p == '/' && !slash)) {
        if (*p == '/') {
            slash = true;
        }
        if (n + 1 >= outlen) {
            return BL_EINVAL;
        }
        out[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
        p++;
    }
    out[n] = '\0';
    p = skip_ows(p);
    if (!slash || out[0] == '/' || out[n - 1] == '/' || (*p != '\0' && *p != ';')) {
        return BL_EINVAL;
    }
    return 0;
}

bool
node_json_is_json_type(const char *ct)
{
    char mt[64];
    const char *p;

    if (node_json_media_type(ct, mt, sizeof(mt)) != 0 || strcmp(mt, "application/json") != 0) {
        return false;
    }
    p = strchr(ct, ';');
    while (p != NULL) {
        const char *name, *val;
        size_t nlen, vlen;

        p = skip_ows(p + 1);
        if (*p == '\0') {
            return true;                /* a trailing ";" is harmless */
        }
        name = p;
        while (is_token_char(*p)) {
            p++;
        }
        nlen = (size_t)(p - name);
        if (*p != '=') {
            return false;
        }
        val = ++p;
        if (*p == '"') {
            val = ++p;
            while (*p != '\0' && *p != '"') {
                p++;
            }
            if (*p != '"') {
                return false;
            }
            vlen = (size_t)(p - val);
            p++;
        } else {
            while (is_token_char(*p)) {
                p++;
            }
            vlen = (size_t)(p - val);
        }
        if (nlen != 7 || strncasecmp(name, "charset", 7) != 0 || vlen != 5 ||
            strncasecmp(val, "utf-8", 5) != 0) {
            return false;
        }
        p = skip_ows(p);
        if (*p != '\0' && *p != ';') {
            return false;
        }
        p = *p == ';' ? p : NULL;
    }
    return true;
}

/*
 * One element of an entity-tag list: "*" or [W/]"<etagc*>". Skips empty elements (RFC
 * 9110 5.6.1). Returns 1 with the element, 0 at the end, BL_EINVAL when malformed.
 */
struct etag_elem {
    bool star;
    bool weak;
    const char *opaque;                 /* between the quotes */
    size_t len;
};

static int
next_etag(const char **pp, struct etag_elem *e)
{
    const char *p = *pp;

    for (;;) {
        p = skip_ows(p);
        if (*p == ',') {
            p++;
            continue;
        }
        break;
    }
    if (*p == '\0') {
        *pp = p;
        return 0;
    }
    e->star = false;
    e->weak = false;
    if (*p == '*') {
        e->star = true;
        p++;
    } else {
        if (p[0] == 'W' && p[1] == '/') {
            e->weak = true;
            p += 2;
        }
        if (*p != '"') {
            return BL_EINVAL;
        }
        e->opaque = ++p;
        /* etagc = "!" / %x23-7E / obs-text: anything visible but DQUOTE */
        while (*p != '"') {
            if ((unsigned char)*p < 0x21 || *p == 0x7f) {
                return BL_EINVAL;
            }
            p++;
        }
        e->len = (size_t)(p - e->opaque);
        p++;
    }
    p = skip_ows(p);
    if (*p != ',' && *p != '\0') {
        return BL_EINVAL;
    }
    *pp = p;
    return 1;
}

bool
node_json_none_match(const char *header, const char *etag)
{
    const char *p = header;
    const char *want;
    size_t wlen;
    struct etag_elem e;
    int rc;

    if (header == NULL) {
        return false;
    }
    if (etag[0] == 'W' && etag[1] == '/') {
        etag += 2;
    }
    want = etag + 1;                    /* skip the opening quote */
    wlen = strlen(want);
    if (wlen == 0) {
        return false;
    }
    wlen--;                             /* and the closing one */
    while ((rc = next_etag(&p, &e)) == 1) {
        if (e.star) {
            return true;
        }
        if (e.len == wlen && memcmp(e.opaque, want, wlen) == 0) {
            return true;
        }
    }
    return false;
}

int
node_json_if_match(const char *header, const char *id, uint64_t *versions, size_t max,
                   size_t *n, bool *any)
{
    const char *p = header;
    size_t idlen = strlen(id);
    struct etag_elem e;
    int rc;

    *n = 0;
    *any = false;
    while ((rc = next_etag(&p, &e)) == 1) {
        uint64_t v = 0;
        size_t i;

        if (e.star) {
            *any = true;
            continue;
        }
        if (e.weak || e.len < idlen + 2 || memcmp(e.opaque, id, idlen) != 0 ||
            e.opaque[idlen] != '-') {
            continue;
        }
        for (i = idlen + 1; i < e.len; i++) {
            if (e.opaque[i] < '0' || e.opaque[i] > '9' || v > (UINT64_MAX - 9) / 10) {
                break;
            }
            v = v * 10 + (uint64_t)(e.opaque[i] - '0');
        }
        if (i != e.len || v == 0 || e.opaque[idlen + 1] == '0') {
            continue;                   /* not one of our tags: cannot match */
        }
        if (*n < max) {
            versions[(*n)++] = v;
        }
    }
    if (rc < 0) {
        *n = 0;
        *any = false;
        return BL_EINVAL;
    }
    return 0;
}
