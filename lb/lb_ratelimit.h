#ifndef LB_RATELIMIT_H
#define LB_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/*
 * limits.rate_per_ip: a token bucket per client IP (rate tokens per second, burst of one
 * second's worth), shared by all workers without a lock: each bucket is one 64-bit word
 * (milli-tokens << 32 | last refill in ms) updated with compare-and-swap. Buckets live in
 * a fixed table indexed by the IP's hash; two IPs that collide share a bucket (they are
 * limited together, never more loosely).
 */

struct lb_ratelimit;

/* NULL when <rate_per_s> is 0 (no limit). */
struct lb_ratelimit *lb_ratelimit_create(uint32_t rate_per_s);
void lb_ratelimit_destroy(struct lb_ratelimit *rl);    /* NULL is a no-op */

/* Takes one token for <ip> at <now_ms>. 1 allowed, 0 over the rate. Thread-safe. */
int lb_ratelimit_take(struct lb_ratelimit *rl, const char *ip, size_t len, uint64_t now_ms);

#endif /* LB_RATELIMIT_H */
