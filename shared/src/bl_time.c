#include "bl/bl_time.h"

#include <string.h>
#include <time.h>

#include "bl/bl_err.h"

static uint64_t
clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
bl_time_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t
bl_time_mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000ull;
}

uint64_t
bl_time_real_ms(void)
{
    return clock_ns(CLOCK_REALTIME) / 1000000ull;
}

/* Writes <v> as exactly <width> decimal digits (zero-padded) at <p>. */
static char *
put_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

void
bl_time_rfc3339(uint64_t ms, char out[BL_RFC3339_LEN])
{
    struct tm tm;
    time_t secs;
    char *p = out;

    if (ms > BL_RFC3339_MAX_MS) {
        ms = BL_RFC3339_MAX_MS;
    }
    secs = (time_t)(ms / 1000);
    if (gmtime_r(&secs, &tm) == NULL) {
        /* Cannot happen for years 1970..9999; keep the fixed shape anyway. */
        memcpy(out, "1970-01-01T00:00:00.000Z", BL_RFC3339_LEN);
        return;
    }
    p = put_digits(p, (unsigned)(tm.tm_year + 1900), 4);
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
    *p++ = '.';
    p = put_digits(p, (unsigned)(ms % 1000), 3);
    *p++ = 'Z';
    *p = '\0';
}

/*
 * Parses the leading decimal digits of <s> into <*v> and points <*end> after them.
 * Returns 0, BL_EINVAL when there is no digit, BL_ETOOBIG on 64-bit overflow.
 */
static int
parse_digits(const char *s, uint64_t *v, const char **end)
{
    uint64_t acc = 0;
    const char *p = s;

    if (*p < '0' || *p > '9') {
        return BL_EINVAL;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');

        if (acc > (UINT64_MAX - d) / 10) {
            /* Still consume the digits so a malformed tail is reported as malformed. */
            while (*p >= '0' && *p <= '9') {
                p++;
            }
            *end = p;
            return BL_ETOOBIG;
        }
        acc = acc * 10 + d;
    }
    *v = acc;
    *end = p;
    return 0;
}

struct unit {
    const char *name;
    uint64_t mult;
};

/* Looks <suffix> up in <units> (NULL-terminated) and scales <v>. */
static int
apply_unit(uint64_t v, const char *suffix, const struct unit *units, uint64_t *out)
{
    for (const struct unit *u = units; u->name != NULL; u++) {
        if (strcmp(suffix, u->name) == 0) {
            if (u->mult != 0 && v > UINT64_MAX / u->mult) {
                return BL_ETOOBIG;
            }
            *out = v * u->mult;
            return 0;
        }
    }
    return BL_EINVAL;
}

int
bl_time_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    static const struct unit units[] = {
        { "ms", 1 },
        { "s", 1000 },
        { "m", 60ull * 1000 },
        { "h", 3600ull * 1000 },
        { NULL, 0 },
    };
    const char *end;
    uint64_t v;
    int rc;

    if (s == NULL) {
        return BL_EINVAL;
    }
    rc = parse_digits(s, &v, &end);
    if (rc == BL_ETOOBIG) {
        /* Too many digits: too big if the rest is a valid unit, else malformed. */
        uint64_t dummy;

        return apply_unit(1, end, units, &dummy) == 0 ? BL_ETOOBIG : BL_EINVAL;
    }
    if (rc < 0) {
        return rc;
    }
    if (*end == '\0') {
        if (v != 0) {
            return BL_EINVAL;   /* a bare number is ambiguous: 5 what? */
        }
        *out_ms = 0;
        return 0;
    }
    return apply_unit(v, end, units, out_ms);
}

int
bl_parse_size(const char *s, uint64_t *out_bytes)
{
    static const struct unit units[] = {
        { "", 1 },
        { "B", 1 },
        { "KiB", 1ull << 10 },
        { "MiB", 1ull << 20 },
        { "GiB", 1ull << 30 },
        { "TiB", 1ull << 40 },
        { "kB", 1000ull },
        { "KB", 1000ull },
        { "MB", 1000ull * 1000 },
        { "GB", 1000ull * 1000 * 1000 },
        { "TB", 1000ull * 1000 * 1000 * 1000 },
        { NULL, 0 },
    };
    const char *end;
    uint64_t v;
    int rc;

    if (s == NULL) {
        return BL_EINVAL;
    }
    rc = parse_digits(s, &v, &end);
    if (rc == BL_ETOOBIG) {
        uint64_t dummy;

        return apply_unit(1, end, units, &dummy) == 0 ? BL_ETOOBIG : BL_EINVAL;
    }
    if (rc < 0) {
        return rc;
    }
    return apply_unit(v, end, units, out_bytes);
}
