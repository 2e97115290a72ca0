#ifndef BL_LOG_H
#define BL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bl/bl_buf.h"

/*
 * JSON-lines logger on stderr. One line per call, written with a single write(2) under a
 * mutex, so lines from several threads never interleave:
 *   {"ts":"2026-11-28T00:00:00.123Z","level":"info","component":"blog-lb","msg":"...",<fields>}
 * Debug lines are compiled out unless BL_DEBUG is defined. Thread-safe.
 *
 * Every line is valid JSON (RFC 8259), whatever the caller passes:
 * - strings (component, msg, field keys and string values) are JSON-escaped; bytes that are
 *   not part of well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 *   U+10FFFF, no truncated sequences) are replaced, one per byte, by U+FFFD, written as the
 *   raw UTF-8 bytes EF BF BD. The rest of the text is kept as is.
 * - doubles that are NaN or infinite are written as null.
 * - "ts" is the wall clock in RFC 3339 UTC with milliseconds.
 * - a line longer than BL_LOG_LINE_MAX bytes (newline included) is not dropped: its longest
 *   string values are cut on a character boundary and end with "…(truncated)" (U+2026, the
 *   UTF-8 ellipsis) until the line fits.
 * Output errors are ignored (logging never fails its caller); EINTR and partial writes are
 * retried, EAGAIN on a non-blocking fd waits with poll(2). errno is preserved.
 */

#define BL_LOG_LINE_MAX 65536          /* bytes per line, newline included */
#define BL_LOG_TRUNC_MARK "\xe2\x80\xa6(truncated)"

enum bl_log_level {
    BL_LOG_DEBUG = 0,
    BL_LOG_INFO = 1,
    BL_LOG_WARN = 2,
    BL_LOG_ERROR = 3,
};

enum bl_log_ftype {
    BL_LOG_F_STR,
    BL_LOG_F_INT,
    BL_LOG_F_UINT,
    BL_LOG_F_DOUBLE,
    BL_LOG_F_BOOL,
};

/* One extra key of a log line. <key> should be a plain identifier; it is escaped anyway,
 * so the line stays valid JSON. A field with a NULL key is skipped. */
struct bl_log_field {
    const char *key;
    enum bl_log_ftype type;
    union {
        const char *s;          /* BL_LOG_F_STR; NULL is written as null */
        long long i;            /* BL_LOG_F_INT */
        unsigned long long u;   /* BL_LOG_F_UINT */
        double d;               /* BL_LOG_F_DOUBLE */
        bool b;                 /* BL_LOG_F_BOOL */
    } v;
};

#define BL_LOG_STR(k, val)    { .key = (k), .type = BL_LOG_F_STR, .v.s = (val) }
#define BL_LOG_INT(k, val)    { .key = (k), .type = BL_LOG_F_INT, .v.i = (val) }
#define BL_LOG_UINT(k, val)   { .key = (k), .type = BL_LOG_F_UINT, .v.u = (val) }
#define BL_LOG_DOUBLE(k, val) { .key = (k), .type = BL_LOG_F_DOUBLE, .v.d = (val) }
#define BL_LOG_BOOL(k, val)   { .key = (k), .type = BL_LOG_F_BOOL, .v.b = (val) }

/*
 * Sets the "component" of every line (e.g. "blog-node"); the string is copied (at most
 * 64 bytes are kept). NULL restores the default "blogscale". Safe to call while other
 * threads log (they see the old or the new name).
 */
void bl_log_init(const char *component);
/* Lines below <level> are skipped. Default BL_LOG_INFO. Out-of-range values are clamped. */
void bl_log_set_level(enum bl_log_level level);
enum bl_log_level bl_log_get_level(void);
/*
 * Parses "debug", "info", "warn" (or "warning") or "error" (case-insensitive) into <out>.
 * Returns 0, or BL_EINVAL (and leaves <out> alone) for anything else, NULL included.
 */
int bl_log_level_parse(const char *s, enum bl_log_level *out);
/* The lower-case name of <level> ("debug" .. "error"). */
const char *bl_log_level_name(enum bl_log_level level);
/* Redirects output to <fd> (tests); default 2. The fd is not owned (never closed). */
void bl_log_set_fd(int fd);

/* True when lines of <level> are written: one relaxed atomic load. */
bool bl_log_enabled(enum bl_log_level level);

/*
 * Writes one line with <nfields> extra fields (fields may be NULL when nfields is 0).
 * Prefer the macros below, which skip formatting when the level is off. Never fails.
 */
void bl_log_write(enum bl_log_level level, const struct bl_log_field *fields, int nfields,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Same with a va_list. */
void bl_log_vwrite(enum bl_log_level level, const struct bl_log_field *fields, int nfields,
                   const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/*
 * Appends the n bytes of <s> to <b> with every byte that is not part of well-formed UTF-8
 * replaced by U+FFFD (EF BF BD), as the log lines do (the metrics registry uses it for
 * label values and help texts). Returns 0 or -ENOMEM.
 */
int bl_log_append_utf8(struct bl_buf *b, const char *s, size_t n);
/* Length of the longest prefix of <s> (n bytes) that is well-formed UTF-8. */
size_t bl_log_utf8_valid_len(const char *s, size_t n);

#define bl_log(level, ...)                                                  \
    do {                                                                    \
        if (bl_log_enabled(level))                                          \
            bl_log_write((level), NULL, 0, __VA_ARGS__);                    \
    } while (0)

/* bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){BL_LOG_STR("node", n)}), 1, "fmt", ...) */
#define bl_logf(level, fields, nfields, ...)                                \
    do {                                                                    \
        if (bl_log_enabled(level))                                          \
            bl_log_write((level), (fields), (nfields), __VA_ARGS__);        \
    } while (0)

#ifdef BL_DEBUG
#define bl_debug(...) bl_log(BL_LOG_DEBUG, __VA_ARGS__)
#else
#define bl_debug(...) do { } while (0)
#endif

#endif /* BL_LOG_H */
