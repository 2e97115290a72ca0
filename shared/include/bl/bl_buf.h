#ifndef BL_BUF_H
#define BL_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A growable byte buffer, always NUL-terminated after <len> when <data> is not NULL.
 * Embedded in its owner: bl_buf_init()/bl_buf_deinit(). Appends return 0 or -ENOMEM;
 * on failure the buffer keeps its previous contents.
 */
struct bl_buf {
    char *data;                 /* NULL until the first append */
    size_t len;                 /* bytes used */
    size_t cap;                 /* bytes allocated */
};

void bl_buf_init(struct bl_buf *b);
void bl_buf_deinit(struct bl_buf *b);
void bl_buf_reset(struct bl_buf *b);        /* len = 0, keeps the allocation */
int bl_buf_reserve(struct bl_buf *b, size_t extra);
int bl_buf_append(struct bl_buf *b, const void *p, size_t n);
int bl_buf_append_str(struct bl_buf *b, const char *s);
int bl_buf_printf(struct bl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int bl_buf_vprintf(struct bl_buf *b, const char *fmt, va_list ap);
/* Appends <s> (n bytes) as a JSON string literal with quotes, escaping as RFC 8259 says. */
int bl_buf_append_json_str(struct bl_buf *b, const char *s, size_t n);
/* Hands the bytes to the caller (who frees them) and leaves <b> empty. */
char *bl_buf_steal(struct bl_buf *b, size_t *len);

#endif /* BL_BUF_H */
