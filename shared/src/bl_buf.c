#include "bl/bl_buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
bl_buf_init(struct bl_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
bl_buf_deinit(struct bl_buf *b)
{
    free(b->data);
    bl_buf_init(b);
}

void
bl_buf_reset(struct bl_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

int
bl_buf_reserve(struct bl_buf *b, size_t extra)
{
    size_t need;
    size_t cap = b->cap ? b->cap : 64;
    char *p;

    if (extra > SIZE_MAX - 1 - b->len) {
        return -ENOMEM;                 /* len + extra + NUL would wrap */
    }
    need = b->len + extra + 1;          /* + NUL */
    if (need <= b->cap) {
        return 0;
    }
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;                 /* doubling would wrap to 0 and loop forever */
            break;
        }
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return -ENOMEM;
    }
    p[b->len] = '\0';                   /* the first allocation must be a string too */
    b->data = p;
    b->cap = cap;
    return 0;
}

int
bl_buf_append(struct bl_buf *b, const void *p, size_t n)
{
    if (bl_buf_reserve(b, n) < 0) {
        return -ENOMEM;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
bl_buf_append_str(struct bl_buf *b, const char *s)
{
    return bl_buf_append(b, s, strlen(s));
}

int
bl_buf_vprintf(struct bl_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return -EINVAL;
    }
    if (bl_buf_reserve(b, (size_t)n) < 0) {
        return -ENOMEM;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int
bl_buf_printf(struct bl_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = bl_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int
bl_buf_append_json_str(struct bl_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;

    /* worst case every byte becomes \u00XX */
    if (bl_buf_reserve(b, n + 2) < 0) {
        return -ENOMEM;
    }
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen = 0;

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        switch (c) {
        case '"': esc[0] = '\\'; esc[1] = '"'; elen = 2; break;
        case '\\': esc[0] = '\\'; esc[1] = '\\'; elen = 2; break;
        case '\n': esc[0] = '\\'; esc[1] = 'n'; elen = 2; break;
        case '\r': esc[0] = '\\'; esc[1] = 'r'; elen = 2; break;
        case '\t': esc[0] = '\\'; esc[1] = 't'; elen = 2; break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
            break;
        }
        if (bl_buf_append(b, s + start, i - start) < 0 || bl_buf_append(b, esc, elen) < 0) {
            return -ENOMEM;
        }
        start = i + 1;
    }
    if (bl_buf_append(b, s + start, n - start) < 0 || bl_buf_append(b, "\"", 1) < 0) {
        return -ENOMEM;
    }
    return 0;
}

char *
bl_buf_steal(struct bl_buf *b, size_t *len)
{
    char *p = b->data;

    if (len != NULL) {
        *len = b->len;
    }
    bl_buf_init(b);
    return p;
}
