#ifndef BL_TIME_H
#define BL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Clocks, RFC 3339 timestamps, and the duration/size parsers the config uses. */

uint64_t bl_time_mono_ns(void);     /* CLOCK_MONOTONIC */
uint64_t bl_time_mono_ms(void);
uint64_t bl_time_real_ms(void);     /* CLOCK_REALTIME, ms since the epoch */

#define BL_RFC3339_LEN 25           /* "2026-11-28T00:00:00.123Z" + NUL */
/* Upper bound of bl_time_rfc3339: 9999-12-31T23:59:59.999Z (later instants are clamped). */
#define BL_RFC3339_MAX_MS 253402300799999ull

/*
 * Formats <ms> since the epoch as RFC 3339 UTC with milliseconds, e.g.
 * "2026-11-28T00:00:00.123Z". Instants after year 9999 are clamped to BL_RFC3339_MAX_MS
 * so the output always has this fixed shape. Thread-safe (gmtime_r).
 */
void bl_time_rfc3339(uint64_t ms, char out[BL_RFC3339_LEN]);

/*
 * Parses a duration: a non-negative decimal integer immediately followed by one unit,
 * "ms", "s", "m" or "h" ("250ms", "1s", "5m", "2h"). A bare "0" is accepted (0 needs no
 * unit); any other number without a unit, fractions ("1.5s"), signs and spaces are
 * rejected. Returns 0, BL_EINVAL when malformed, or BL_ETOOBIG when the value does not fit
 * in 64 bits of milliseconds. <out_ms> is written only on success.
 */
int bl_time_parse_duration_ms(const char *s, uint64_t *out_ms);

/*
 * Parses a size: a non-negative decimal integer, optionally followed by one unit: "B",
 * binary "KiB", "MiB", "GiB", "TiB" (powers of 1024) or decimal "kB"/"KB", "MB", "GB",
 * "TB" (powers of 1000). A bare number is bytes ("512"). Units are case-sensitive, no
 * space before the unit. Returns 0, BL_EINVAL when malformed, or BL_ETOOBIG when the
 * value does not fit in 64 bits. <out_bytes> is written only on success.
 * (The config loader is stricter: it rejects bare numbers other than 0, see docs/CONFIG.md.)
 */
int bl_parse_size(const char *s, uint64_t *out_bytes);

#endif /* BL_TIME_H */
