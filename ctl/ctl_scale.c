#include "ctl_scale.h"

#include <math.h>
#include <string.h>

void
ctl_scale_init(struct ctl_scale *s, const struct ctl_scale_params *p)
{
    memset(s, 0, sizeof(*s));
    s->p = *p;
    if (s->p.max < s->p.min) {
        s->p.max = s->p.min;
    }
    if (!(s->p.target_rps_per_node > 0)) {
        s->p.target_rps_per_node = 1;
    }
}

static uint32_t
clamp(const struct ctl_scale *s, uint64_t v)
{
    if (v < s->p.min) {
        return s->p.min;
    }
    if (v > s->p.max) {
        return s->p.max;
    }
    return (uint32_t)v;
}

static void
push(struct ctl_scale *s, uint64_t t, uint32_t raw)
{
    size_t at;

    if (s->n == CTL_SCALE_HISTORY) {
        s->head = (s->head + 1) % CTL_SCALE_HISTORY;
        s->n--;
    }
    at = (s->head + s->n) % CTL_SCALE_HISTORY;
    s->hist[at].t_ms = t;
    s->hist[at].raw = raw;
    s->n++;
}

/* Drops observations older than the longer window. */
static void
expire(struct ctl_scale *s, uint64_t now)
{
    uint64_t keep = s->p.up_window_ms > s->p.down_window_ms ? s->p.up_window_ms
                                                            : s->p.down_window_ms;

    while (s->n > 1 && now - s->hist[s->head].t_ms > keep) {
        s->head = (s->head + 1) % CTL_SCALE_HISTORY;
        s->n--;
    }
}

void
ctl_scale_observe(struct ctl_scale *s, uint64_t now_ms, double rate, uint32_t current,
                  struct ctl_scale_decision *d)
{
    double target = s->p.target_rps_per_node;
    uint64_t want;
    uint32_t raw, up, down, desired;
    bool tolerated = false;

    if (!(rate > 0) || isinf(rate)) {
        rate = isinf(rate) && rate > 0 ? 1e15 : 0;
    }
    memset(d, 0, sizeof(*d));
    d->current = current;
    d->rate = rate;
    d->ratio = current > 0 ? rate / ((double)current * target) : 0;
    /* + 1e-9: in doubles 330.0 / 300 - 1 is above 0.1 */
    if (current > 0 && fabs(d->ratio - 1.0) <= s->p.tolerance + 1e-9) {
        want = current;
        tolerated = true;
    } else {
        double c = ceil(rate / target);

        want = c > 1e9 ? 1000000000ull : (uint64_t)c;
    }
    raw = clamp(s, want);
    push(s, now_ms, raw);
    expire(s, now_ms);

    /* up: min over the up window; down: max over the down window (both include now) */
    up = raw;
    down = raw;
    for (size_t i = 0; i < s->n; i++) {
        const struct ctl_scale_obs *o = &s->hist[(s->head + i) % CTL_SCALE_HISTORY];
        uint64_t age = now_ms - o->t_ms;

        if (age <= s->p.up_window_ms && o->raw < up) {
            up = o->raw;
        }
        if (age <= s->p.down_window_ms && o->raw > down) {
            down = o->raw;
        }
    }
    desired = current;
    if (desired < up) {
        desired = up;
    }
    if (desired > down) {
        desired = down;
    }
    desired = clamp(s, desired);
    d->raw = raw;
    d->desired = desired;

    if (desired == current) {
        d->action = CTL_SCALE_NONE;
        if (tolerated) {
            d->reason = "within_tolerance";
        } else if (raw > current) {
            d->reason = "up_stabilizing";
        } else if (raw < current) {
            d->reason = "down_stabilizing";
        } else {
            d->reason = "steady";
        }
        return;
    }
    if (s->have_event && now_ms - s->last_event_ms < s->p.cooldown_ms) {
        d->action = CTL_SCALE_NONE;
        d->reason = "cooldown";
        return;
    }
    d->action = desired > current ? CTL_SCALE_UP : CTL_SCALE_DOWN;
    if (current < s->p.min) {
        d->reason = "below_min";
    } else if (current > s->p.max) {
        d->reason = "above_max";
    } else {
        d->reason = desired > current ? "scale_up" : "scale_down";
    }
}

void
ctl_scale_event(struct ctl_scale *s, uint64_t now_ms)
{
    s->have_event = true;
    s->last_event_ms = now_ms;
}
