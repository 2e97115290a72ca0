/*
 * blog-load: the fault tests' load generator as a command (tests/load/bl_load.h), for the
 * soak (tests/soak/soak.sh) and the network-namespace test. Not installed.
 *
 *   blog-load --url http://HOST:PORT --token TOKEN [--conns N] [--rate R] [--duration-ms MS]
 *             [--mix GET,PUT,POST,DELETE,LIST] [--seed-posts N] [--tag TAG]
 *             [--interval-s S] [--verify] [--timeout-ms MS]
 *
 * Prints one "interval" line per --interval-s (t, requests, failed, stale, p50/p99 ms),
 * then a "summary" line and, with --verify, a "verify" line. Exit 0 when no request failed
 * or was stale and the verification found nothing; 1 otherwise; 2 on bad usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl_load.h"

static void
usage(void)
{
    fprintf(stderr,
            "usage: blog-load --url http://HOST:PORT --token TOKEN [--conns N] [--rate R]\n"
            "                 [--duration-ms MS] [--mix GET,PUT,POST,DELETE,LIST]\n"
            "                 [--seed-posts N] [--tag TAG] [--interval-s S] [--verify]\n"
            "                 [--timeout-ms MS] [--seed N]\n");
}

static int
parse_int(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < 0 || v > 100000000) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },      { "token", required_argument, NULL, 't' },
        { "conns", required_argument, NULL, 'c' },    { "rate", required_argument, NULL, 'r' },
        { "duration-ms", required_argument, NULL, 'd' },
        { "mix", required_argument, NULL, 'm' },      { "seed-posts", required_argument, NULL, 'p' },
        { "tag", required_argument, NULL, 'g' },      { "interval-s", required_argument, NULL, 'i' },
        { "verify", no_argument, NULL, 'v' },         { "timeout-ms", required_argument, NULL, 'T' },
        { "seed", required_argument, NULL, 's' },     { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct bl_load_opts o = { .conns = 8, .rate = 200, .duration_ms = 10000, .seed_posts = 50 };
    struct bl_load_stats st;
    struct bl_load_check ck;
    struct bl_load *l;
    const char *err = NULL;
    int interval_s = 0, verify = 0, seed = 1, c, bad = 0;
    uint64_t t_start, t_prev;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u': o.url = optarg; break;
        case 't': o.token = optarg; break;
        case 'c': bad |= parse_int(optarg, &o.conns); break;
        case 'r': bad |= parse_int(optarg, &o.rate); break;
        case 'd': bad |= parse_int(optarg, &o.duration_ms); break;
        case 'p': bad |= parse_int(optarg, &o.seed_posts); break;
        case 'g': o.tag = optarg; break;
        case 'i': bad |= parse_int(optarg, &interval_s); break;
        case 'v': verify = 1; break;
        case 'T': bad |= parse_int(optarg, &o.timeout_ms); break;
        case 's': bad |= parse_int(optarg, &seed); break;
        case 'm':
            if (sscanf(optarg, "%d,%d,%d,%d,%d", &o.w_get, &o.w_put, &o.w_post, &o.w_delete,
                       &o.w_list) != 5) {
                bad = 1;
            }
            break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    if (bad || optind != argc || o.url == NULL || o.token == NULL) {
        usage();
        return 2;
    }
    o.seed = (uint32_t)seed;
    l = bl_load_create(&o, &err);
    if (l == NULL) {
        fprintf(stderr, "blog-load: %s\n", err);
        return 2;
    }
    if (bl_load_seed(l) != 0) {
        fprintf(stderr, "blog-load: seeding %d posts failed\n", o.seed_posts);
        bl_load_destroy(l);
        return 1;
    }
    t_start = t_prev = bl_load_mono_us();
    if (bl_load_start(l) != 0) {
        bl_load_destroy(l);
        return 1;
    }
    if (interval_s > 0) {
        uint64_t end = t_start + (uint64_t)o.duration_ms * 1000u;
        while (bl_load_mono_us() + (uint64_t)interval_s * 1000000u <= end + 500000u) {
            uint64_t t, p50, p99;
            long n;
            sleep((unsigned)interval_s);
            t = bl_load_mono_us();
            bl_load_stats(l, t_prev, t, &st);
            p50 = bl_load_pctl(l, 0x1f, t_prev, t, 50, &n);
            p99 = bl_load_pctl(l, 0x1f, t_prev, t, 99, NULL);
            printf("interval t=%.0fs requests=%ld failed=%ld stale=%ld p50_ms=%.2f p99_ms=%.2f "
                   "ok=%ld\n",
                   (double)(t - t_start) / 1e6, st.total, st.fail, st.stale, (double)p50 / 1000.0,
                   (double)p99 / 1000.0, n);
            fflush(stdout);
            t_prev = t;
        }
    }
    bl_load_wait(l);
    bl_load_stats(l, 0, 0, &st);
    printf("summary requests=%ld ok=%ld failed=%ld stale=%ld get_failed=%ld put_failed=%ld "
           "post_failed=%ld delete_failed=%ld list_failed=%ld delete_404=%ld p50_ms=%.2f "
           "p99_ms=%.2f lagged=%ld\n",
           st.total, st.ok, st.fail, st.stale, st.n[BL_LOAD_GET][BL_LOAD_FAIL],
           st.n[BL_LOAD_PUT][BL_LOAD_FAIL], st.n[BL_LOAD_POST][BL_LOAD_FAIL],
           st.n[BL_LOAD_DELETE][BL_LOAD_FAIL], st.n[BL_LOAD_LIST][BL_LOAD_FAIL], st.delete_404,
           (double)bl_load_pctl(l, 0x1f, 0, 0, 50, NULL) / 1000.0,
           (double)bl_load_pctl(l, 0x1f, 0, 0, 99, NULL) / 1000.0, st.lagged);
    bad = st.fail != 0 || st.stale != 0;
    if (bad) {
        bl_load_print_failures(l, 20);
    }
    if (verify) {
        int rc = bl_load_verify(l, NULL, &ck);
        printf("verify checked=%ld missing=%ld old_version=%ld resurrected=%ld read_errors=%ld "
               "listed=%ld acked_unlisted=%ld stored_unacked=%ld unknown_listed=%ld "
               "failed_posts=%ld%s%s\n",
               ck.checked, ck.missing, ck.old_version, ck.resurrected, ck.read_errors, ck.listed,
               ck.acked_unlisted, ck.stored_unacked, ck.unknown_listed, ck.failed_posts,
               ck.first_problem[0] ? " first_problem=" : "", ck.first_problem);
        bad |= rc != 0 || ck.missing || ck.old_version || ck.resurrected || ck.read_errors ||
               ck.acked_unlisted || ck.stored_unacked || ck.unknown_listed;
    }
    fflush(stdout);
    bl_load_destroy(l);
    return bad ? 1 : 0;
}
