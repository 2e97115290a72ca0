/* blogctl posts seed N [--api URL] [--token TOKEN] */
#include "ctl_cmd.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl/bl_buf.h"
#include "bl/bl_err.h"
#include "bl/bl_time.h"
#include "bl/bl_util.h"
#include "ctl_http.h"

#define SEED_MAX 10000000ul
#define SEED_TIMEOUT_MS 10000

static const char *const seed_adjectives[] = {
    "Practical", "Scaling", "Understanding", "Debugging", "Measuring", "Designing",
    "Operating", "Hardening", "Profiling", "Simplifying", "Caching", "Routing",
};
static const char *const seed_topics[] = {
    "consistent hashing", "Maglev tables", "cache invalidation", "Redis pub/sub",
    "LMDB transactions", "HTTP keep-alive", "tail latency", "load shedding",
    "health checks", "bounded load", "autoscaling hooks", "TLS termination",
    "connection pools", "ObjectIds", "slowloris defenses", "power of two choices",
};
static const char *const seed_authors[] = {
    "Ada Lovelace", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Ken Thompson",
    "Radia Perlman", "Leslie Lamport", "Frances Allen", "Dennis Ritchie", "Margaret Hamilton",
    "Donald Knuth", "Sophie Wilson",
};
static const char *const seed_tags[] = {
    "performance", "networking", "databases", "caching", "operations", "c",
    "distributed-systems", "http", "linux", "testing", "design", "observability",
};
static const char *const seed_sentences[] = {
    "The load balancer hashes the post id onto a Maglev table, so every request for one "
    "post lands on the same node.",
    "That node keeps the rendered JSON in its hot cache, which turns most reads into a "
    "memory copy.",
    "After a write the owner publishes an invalidation, and every other node drops its copy "
    "within a millisecond or two.",
    "A miss records the key's invalidation sequence before it reads the store, so a slow "
    "read can never put stale bytes back.",
    "Health checks ask each node for /readyz every second; two failures in a row take it "
    "out of the table's rotation.",
    "Bounded load keeps a hot post from melting its owner: past the cap, requests spill to "
    "the next preference.",
    "Keep-alive connections between the balancer and the nodes save a handshake on every "
    "request.",
    "Tail latency is where a cluster shows its manners; the median hides almost everything.",
    "Idempotent requests that fail before any byte reached the client are retried once, "
    "within a retry budget.",
    "When a node joins, only the ids it now owns move; everything else stays where it was.",
    "Measure first: a flame graph beats a hunch, and a histogram beats an average.",
    "A slowloris client gets the header timeout, not a worker thread of its own.",
    "LMDB readers never block the writer, which is why one directory can serve three "
    "processes.",
    "ObjectIds sort by creation time, so the newest-first list is a reverse walk of one "
    "index.",
    "Every response names the node that served it, which makes debugging routing a matter "
    "of reading headers.",
    "Scaling up is a hook that starts a node, a readiness check, and one admin call per "
    "balancer.",
};


static uint64_t
rnd(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

#define PICK(arr, s) (arr[rnd(s) % BL_ARRAY_SIZE(arr)])

static void
seed_post(struct bl_buf *b, uint64_t *s, unsigned long i)
{
    char title[200];
    struct bl_buf body;
    size_t ntags = 1 + rnd(s) % 3;
    const char *tags[3];

    snprintf(title, sizeof(title), "%s %s, part %lu", PICK(seed_adjectives, s),
             PICK(seed_topics, s), i + 1);
    bl_buf_init(&body);
    while (body.len < 1000) {
        bl_buf_append_str(&body, PICK(seed_sentences, s));
        bl_buf_append_str(&body, body.len < 1000 ? " " : "");
    }
    bl_buf_reset(b);
    bl_buf_append_str(b, "{\"title\":");
    bl_buf_append_json_str(b, title, strlen(title));
    bl_buf_append_str(b, ",\"author\":");
    {
        const char *author = PICK(seed_authors, s);

        bl_buf_append_json_str(b, author, strlen(author));
    }
    bl_buf_append_str(b, ",\"body\":");
    bl_buf_append_json_str(b, body.data, body.len);
    bl_buf_append_str(b, ",\"tags\":[");
    for (size_t t = 0; t < ntags; t++) {
        const char *tag;
        bool dup;

        do {
            tag = PICK(seed_tags, s);
            dup = false;
            for (size_t k = 0; k < t; k++) {
                dup = dup || strcmp(tags[k], tag) == 0;
            }
        } while (dup);
        tags[t] = tag;
        if (t > 0) {
            bl_buf_append_str(b, ",");
        }
        bl_buf_append_json_str(b, tag, strlen(tag));
    }
    bl_buf_append_str(b, "]}");
    bl_buf_deinit(&body);
}

static void
progress(unsigned long done, unsigned long total, uint64_t t0)
{
    double el = (double)(bl_time_mono_ms() - t0) / 1000.0;
    int width = 30, fill = total ? (int)((double)done * width / (double)total) : width;

    fprintf(stderr, "\r[%.*s%*s] %lu/%lu  %.0f posts/s ", fill,
            "##############################", width - fill, "", done, total,
            el > 0 ? (double)done / el : 0.0);
    fflush(stderr);
}

int
ctl_seed(const char *api, const char *token, unsigned long n, bool show_progress,
         struct ctl_seed_result *res)
{
    struct ctl_http_url url;
    struct ctl_http_client client;
    struct ctl_http_resp resp;
    struct bl_buf body, auth, path;
    uint64_t t0, last = 0, s;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    if (ctl_http_url_parse(api, &url, res->error, sizeof(res->error)) != 0) {
        return BL_EINVAL;
    }
    bl_buf_init(&path);
    bl_buf_printf(&path, "%s%sposts", url.path,
                  url.path[strlen(url.path) - 1] == '/' ? "" : "/");
    bl_buf_init(&auth);
    bl_buf_init(&body);
    if (token != NULL) {
        bl_buf_printf(&auth, "Authorization: Bearer %s", token);
    }
    ctl_http_client_init(&client, url.hostport, SEED_TIMEOUT_MS);
    ctl_http_resp_init(&resp);
    s = bl_time_real_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    t0 = bl_time_mono_ms();
    for (unsigned long i = 0; i < n; i++) {
        const char *hdrs[3] = { "Content-Type: application/json", NULL, NULL };
        int r;

        if (auth.data != NULL) {
            hdrs[1] = auth.data;
        }
        seed_post(&body, &s, i);
        r = ctl_http_request(&client, "POST", path.data, hdrs, body.data, body.len, &resp);
        if (r != 0) {
            snprintf(res->error, sizeof(res->error), "%s", client.error);
            rc = r;
            break;
        }
        if (resp.status != 201) {
            snprintf(res->error, sizeof(res->error), "POST %s%s answered %d: %.*s",
                     api, path.data, resp.status, (int)BL_MIN(resp.body.len, (size_t)400),
                     resp.body.data != NULL ? resp.body.data : "");
            res->status = resp.status;
            rc = BL_EUNAVAIL;
            break;
        }
        res->created++;
        if (show_progress && bl_time_mono_ms() - last >= 100) {
            last = bl_time_mono_ms();
            progress(res->created, n, t0);
        }
    }
    res->seconds = (double)(bl_time_mono_ms() - t0) / 1000.0;
    if (show_progress) {
        progress(res->created, n, t0);
        fputc('\n', stderr);
    }
    ctl_http_resp_deinit(&resp);
    ctl_http_client_deinit(&client);
    bl_buf_deinit(&body);
    bl_buf_deinit(&auth);
    bl_buf_deinit(&path);
    return rc;
}

int
ctl_cmd_posts(struct ctl_ctx *ctx)
{
    const char *api = NULL, *token = NULL, *nstr = NULL;
    char api_buf[400], err[512];
    struct ctl_http_url url;
    struct ctl_seed_result res;
    unsigned long n;
    char *end;
    bool failed;
    double rate;

    if (ctl_wants_help(ctx)) {
        return ctl_usage("posts", true);
    }
    if (ctx->argc < 1 || strcmp(ctx->argv[0], "seed") != 0) {
        static const char *const subs[] = { "seed" };

        if (ctx->argc >= 1) {
            return ctl_unknown_sub("posts", ctx->argv[0], subs, 1);
        }
        return ctl_usage("posts", false);
    }
    for (int i = 1; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];

        if ((strcmp(a, "--api") == 0 || strcmp(a, "--token") == 0) && i + 1 < ctx->argc) {
            if (a[2] == 'a') {
                api = ctx->argv[++i];
            } else {
                token = ctx->argv[++i];
            }
        } else if (strncmp(a, "--api=", 6) == 0) {
            api = a + 6;
        } else if (strncmp(a, "--token=", 8) == 0) {
            token = a + 8;
        } else if (a[0] == '-' && a[1] != '\0') {
            ctl_err("posts seed: unknown option '%s'", a);
            return ctl_usage("posts", false);
        } else if (nstr == NULL) {
            nstr = a;
        } else {
            ctl_err("posts seed: unexpected argument '%s'", a);
            return ctl_usage("posts", false);
        }
    }
    if (nstr == NULL) {
        ctl_err("posts seed: how many posts? e.g. blogctl posts seed 100");
        return ctl_usage("posts", false);
    }
    errno = 0;
    n = strtoul(nstr, &end, 10);
    if (*nstr == '-' || end == nstr || *end != '\0' || errno != 0 || n == 0 || n > SEED_MAX) {
        ctl_err("posts seed: N must be a whole number from 1 to %lu, not '%s'", SEED_MAX, nstr);
        return CTL_EXIT_USAGE;
    }
    if (token == NULL) {
        token = getenv("BLOGSCALE_TOKEN");
    }
    if (api == NULL) {
        struct bl_conf *conf = ctl_load_conf(ctx);

        if (conf == NULL) {
            ctl_err("posts seed: no config to find the API in; pass --api http://HOST:PORT");
            return CTL_EXIT_FAIL;
        }
        if (!ctl_api_url(conf, api_buf, sizeof(api_buf))) {
            ctl_err("%s has no http listener; pass --api http://HOST:PORT", conf->file);
            bl_conf_destroy(conf);
            return CTL_EXIT_FAIL;
        }
        if (token == NULL && !conf->cluster.allow_anonymous_writes) {
            ctl_err("posts seed: writes need a token: pass --token TOKEN or set "
                    "BLOGSCALE_TOKEN%s", ctl_conf_accepts_token(conf, CTL_DEMO_TOKEN)
                        ? " (this file accepts the demo token: --token " CTL_DEMO_TOKEN ")"
                        : "");
            bl_conf_destroy(conf);
            return CTL_EXIT_USAGE;
        }
        bl_conf_destroy(conf);
        api = api_buf;
    }
    if (ctl_http_url_parse(api, &url, err, sizeof(err)) != 0) {
        ctl_err("posts seed: --api %s", err);
        return CTL_EXIT_USAGE;
    }
    failed = ctl_seed(api, token, n, isatty(2) && !ctx->json, &res) != 0;
    rate = res.seconds > 0 ? (double)res.created / res.seconds : 0.0;
    if (ctx->json) {
        ctl_json_print(json_pack("{s:b,s:s,s:I,s:I,s:f,s:f,s:s?}", "ok", !failed, "api", api,
                                 "requested", (json_int_t)n, "created", (json_int_t)res.created,
                                 "seconds", res.seconds, "posts_per_second", rate, "error",
                                 failed ? res.error : NULL));
    } else {
        printf("seeded %lu of %lu posts through %s in %.2f s (%.0f posts/s)\n", res.created, n,
               api, res.seconds, rate);
    }
    if (failed) {
        ctl_err("posts seed: stopped at the first failure: %s", res.error);
        if (res.status == 401) {
            ctl_err("the API refused the token: pass the write token whose SHA-256 is in "
                    "cluster.write_tokens_sha256 (--token or BLOGSCALE_TOKEN)");
        }
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}
