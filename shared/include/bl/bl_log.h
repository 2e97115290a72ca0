#ifndef BL_LOG_H
#define BL_LOG_H

#include <stdbool.h>
#include <stdint.h>

/*
 * JSON-lines logger on stderr. One line per call, written with a single write(2) under a
 * mutex, so lines from several threads never interleave:
 *   {"ts":"2026-11-28T00:00:00.123Z","level":"info","component":"blog-lb","msg":"...",<fields>}
 * Debug lines are compiled out unless BL_DEBUG is defined. Thread-safe.
 */

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

/* One extra key of a log line. <key> must be a plain identifier (it is not escaped). */
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

/* Sets the "component" of every line (e.g. "blog-node"); the string is copied. */
void bl_log_init(const char *component);
void bl_log_set_level(enum bl_log_level level);
enum bl_log_level bl_log_get_level(void);
/* Parses "debug", "info", "warn" or "error" (case-insensitive). Returns 0 or BL_EINVAL. */
int bl_log_level_parse(const char *s, enum bl_log_level *out);
/* Redirects output to <fd> (tests); default 2. */
void bl_log_set_fd(int fd);

bool bl_log_enabled(enum bl_log_level level);

/* Writes one line. Prefer the macros below, which skip formatting when the level is off. */
void bl_log_write(enum bl_log_level level, const struct bl_log_field *fields, int nfields,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

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
