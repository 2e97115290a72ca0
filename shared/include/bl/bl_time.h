#ifndef BL_TIME_H
#define BL_TIME_H

#include <stddef.h>
#include <stdint.h>

uint64_t bl_time_mono_ns(void);     /* CLOCK_MONOTONIC */
uint64_t bl_time_mono_ms(void);
uint64_t bl_time_real_ms(void);     /* CLOCK_REALTIME, ms since the epoch */

#define BL_RFC3339_LEN 25           /* "2026-11-28T00:00:00.123Z" + NUL */
/* Formats <ms> since the epoch as RFC 3339 UTC with milliseconds. */
void bl_time_rfc3339(uint64_t ms, char out[BL_RFC3339_LEN]);

/* Parses "250ms", "1s", "5m", "2h" (a non-negative integer and a unit). 0 or BL_EINVAL. */
int bl_time_parse_duration_ms(const char *s, uint64_t *out_ms);
/* Parses "512", "64KiB", "512MiB", "16GiB" (also KB/MB/GB as powers of 1000). */
int bl_parse_size(const char *s, uint64_t *out_bytes);

#endif /* BL_TIME_H */
