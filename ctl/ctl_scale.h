#ifndef CTL_SCALE_H
#define CTL_SCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * blog-ctld's scaling decision as a pure function over a time series (no I/O, no clock):
 * the caller feeds one observation per interval (time, cluster request rate, current node
 * count) and gets the desired count. Semantics (Kubernetes HPA v2 behaviour; docs/CTL.md
 * "Autoscaling"):
 *
 *  1. raw = ceil(rate / target_rps_per_node), except that while the usage ratio
 *     rate / (current * target_rps_per_node) is within [1 - tolerance, 1 + tolerance]
 *     raw = current (no change inside the tolerance band). raw is clamped to [min, max].
 *  2. raw is recorded with its time. Stabilization: up = the minimum of the raws of the
 *     last up_window, down = the maximum of the raws of the last down_window (each window
 *     includes this observation; a window of 0 holds only it). desired = current, raised
 *     to up when current < up, lowered to down when current > down.
 *  3. desired is clamped to [min, max] (so a cluster below min scales up at any rate).
 *  4. A change is an action only when no scale event happened within the last cooldown
 *     (ctl_scale_event() records one); otherwise the reason is "cooldown".
 */

#define CTL_SCALE_HISTORY 4096      /* observations kept (older ones drop out first) */

struct ctl_scale_params {
    uint32_t min, max;
    double target_rps_per_node;     /* > 0 */
    double tolerance;               /* 0..1 */
    uint64_t up_window_ms;
    uint64_t down_window_ms;
    uint64_t cooldown_ms;
};

struct ctl_scale_obs {
    uint64_t t_ms;
    uint32_t raw;
};

struct ctl_scale {
    struct ctl_scale_params p;
    struct ctl_scale_obs hist[CTL_SCALE_HISTORY];
    size_t head, n;                 /* ring: oldest at head */
    bool have_event;
    uint64_t last_event_ms;
};

enum ctl_scale_dir {
    CTL_SCALE_NONE = 0,
    CTL_SCALE_UP = 1,
    CTL_SCALE_DOWN = -1,
};

struct ctl_scale_decision {
    uint32_t current;               /* as given */
    uint32_t raw;                   /* step 1 */
    uint32_t desired;               /* after stabilization and clamping */
    double rate;                    /* as given */
    double ratio;                   /* rate / (current * target); 0 when current is 0 */
    enum ctl_scale_dir action;      /* what to do now: NONE when desired == current or in
                                       cooldown */
    const char *reason;             /* static text: "scale_up", "scale_down", "steady",
                                       "within_tolerance", "up_stabilizing",
                                       "down_stabilizing", "cooldown", "below_min",
                                       "above_max" */
};

/* Sets up <s> with <p> (copied), no history, no event. */
void ctl_scale_init(struct ctl_scale *s, const struct ctl_scale_params *p);

/*
 * Records one observation at <now_ms> (non-decreasing between calls) with the cluster
 * request rate <rate> (requests/s, >= 0; NaN or negative count as 0) and <current> nodes,
 * and fills <d>. Never fails.
 */
void ctl_scale_observe(struct ctl_scale *s, uint64_t now_ms, double rate, uint32_t current,
                       struct ctl_scale_decision *d);

/* Records a scale event (successful or not) at <now_ms>: starts the cooldown. */
void ctl_scale_event(struct ctl_scale *s, uint64_t now_ms);

#endif /* CTL_SCALE_H */
