#include "lb_ratelimit.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "bl/bl_hash.h"

#define SLOTS (1u << 16)

struct lb_ratelimit {
    uint64_t rate;                      /* milli-tokens added per ms (= tokens per s) */
    uint64_t burst;                     /* bucket size in milli-tokens */
    _Atomic uint64_t slot[SLOTS];
};

struct lb_ratelimit *
lb_ratelimit_create(uint32_t rate_per_s)
{
    struct lb_ratelimit *rl;

    if (rate_per_s == 0) {
        return NULL;
    }
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL) {
        return NULL;
    }
    rl->rate = rate_per_s;
    rl->burst = (uint64_t)rate_per_s * 1000;
    if (rl->burst > UINT32_MAX) {
        rl->burst = UINT32_MAX;
    }
    return rl;
}

void
lb_ratelimit_destroy(struct lb_ratelimit *rl)
{
    free(rl);
}

int
lb_ratelimit_take(struct lb_ratelimit *rl, const char *ip, size_t len, uint64_t now_ms)
{
    _Atomic uint64_t *s = &rl->slot[bl_hash64(ip, len) & (SLOTS - 1)];
    uint64_t old = atomic_load_explicit(s, memory_order_relaxed), nw, tokens;
    uint32_t now = (uint32_t)now_ms;

    do {
        if (old == 0) {
            tokens = rl->burst;
        } else {
            uint32_t elapsed = now - (uint32_t)old;
            tokens = (old >> 32) + (uint64_t)elapsed * rl->rate;
            if (tokens > rl->burst) {
                tokens = rl->burst;
            }
        }
        if (tokens < 1000) {
            return 0;
        }
        nw = ((tokens - 1000) << 32) | now;
        if (nw == 0) {
            nw = 1;
        }
    } while (!atomic_compare_exchange_weak_explicit(s, &old, nw, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 1;
}
