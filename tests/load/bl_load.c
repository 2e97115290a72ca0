#include "bl_load.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#define MAX_CONNS 4096
#define PICK_TRIES 8
#define LIST_LIMIT_VERIFY 1000
#define VERIFY_MAX_PAGES 10000

enum pstate {
    P_LIVE = 0,
    P_DELETED,
    P_UNSURE                            /* a DELETE failed: it may or may not have applied */
};

#define ACK_HIST 8

/* One acknowledged write of a post (the cross-node window check looks at the recent ones). */
struct ack {
    uint64_t version;
    uint64_t t_us;
    char node[12];
};

struct lpost {
    char id[25];
    uint64_t version;                   /* last acknowledged version (a lower bound) */
    uint8_t state;                      /* enum pstate */
    bool busy;                          /* a request on it is in flight */
    int64_t seq;                        /* the POST that created it */
    uint64_t ack_us;                    /* when the last acknowledged write was answered */
    char ack_node[12];                  /* which node answered it */
    struct ack hist[ACK_HIST];          /* the last acknowledged writes, oldest first */
    int nhist;
    uint64_t floor;                     /* version of the newest write dropped from hist */
};

struct slot {
    CURL *e;
    bool active;
    uint8_t op;
    int32_t post;
    int64_t seq;
    uint64_t t0;
    char *buf;
    size_t len, cap;
    char node[12];
    char xcache[8];                     /* X-Cache of the answer (HIT/MISS, "" = none) */
    char location[64];
    char url[320];
    char errbuf[CURL_ERROR_SIZE];
};

struct bl_load {
    struct bl_load_opts o;
    char *url, *token, *tag;
    char auth[300];
    char *body_text;                    /* the post body field */
    struct curl_slist *hdr_write;       /* auth + json + no Expect */
    struct curl_slist *hdr_plain;       /* auth only (DELETE) */
    CURLM *m;
    struct slot *slots;
    int wtotal;
    int w[BL_LOAD_NOPS];
    uint64_t rng;

    pthread_mutex_t mu;                 /* records (appends vs readers) */
    struct bl_load_rec *recs;
    size_t nrecs, caprecs;

    struct lpost *posts;
    size_t nposts, capposts;
    uint64_t lag_us;                    /* cross-node window, 0 = strict */
    int32_t *seqstate;                  /* per POST seq: model index, -1 failed, -2 pending */
    size_t nseq, capseq;

    atomic_int stop;
    pthread_t th;
    bool started;
};

uint64_t
bl_load_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t
rnd(struct bl_load *l)
{
    /* xorshift64* */
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return l->rng * 2685821657736338717ull;
}

static bool
tag_ok(const char *t)
{
    if (*t == '\0' || strlen(t) > 64) {
        return false;
    }
    for (; *t; t++) {
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') ||
              *t == '_')) {
            return false;
        }
    }
    return true;
}

struct bl_load *
bl_load_create(const struct bl_load_opts *o, const char **err)
{
    struct bl_load *l;
    const char *tag = o->tag != NULL ? o->tag : "load";

    if (o->url == NULL || strncmp(o->url, "http://", 7) != 0 || strlen(o->url) > 200) {
        *err = "url must be http://HOST:PORT";
        return NULL;
    }
    if (o->conns < 0 || o->conns > MAX_CONNS || o->rate < 0 || o->duration_ms < 0 ||
        o->seed_posts < 0 || o->body_bytes < 0 || o->body_bytes > 65536) {
        *err = "conns 1..4096, rate/duration/seed_posts >= 0, body_bytes 0..65536";
        return NULL;
    }
    if (o->w_get < 0 || o->w_put < 0 || o->w_post < 0 || o->w_delete < 0 || o->w_list < 0) {
        *err = "mix weights must be >= 0";
        return NULL;
    }
    if (!tag_ok(tag)) {
        *err = "tag must be 1-64 of [A-Za-z0-9_]";
        return NULL;
    }
    if (o->token == NULL || strlen(o->token) > 200) {
        *err = "a write token is needed";
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        *err = "out of memory";
        return NULL;
    }
    l->o = *o;
    if (l->o.conns == 0) {
        l->o.conns = 8;
    }
    if (l->o.duration_ms == 0) {
        l->o.duration_ms = 5000;
    }
    if (l->o.timeout_ms <= 0) {
        l->o.timeout_ms = 10000;
    }
    if (o->body_bytes == 0) {
        l->o.body_bytes = 200;
    }
    l->lag_us = o->lag_ms < 0 ? 0 : (uint64_t)(o->lag_ms > 0 ? o->lag_ms : BL_LOAD_LAG_MS) * 1000u;
    l->url = strdup(o->url);
    l->token = strdup(o->token);
    l->tag = strdup(tag);
    l->w[BL_LOAD_GET] = o->w_get;
    l->w[BL_LOAD_PUT] = o->w_put;
    l->w[BL_LOAD_POST] = o->w_post;
    l->w[BL_LOAD_DELETE] = o->w_delete;
    l->w[BL_LOAD_LIST] = o->w_list;
    for (int i = 0; i < BL_LOAD_NOPS; i++) {
        l->wtotal += l->w[i];
    }
    if (l->wtotal == 0) {
        l->w[BL_LOAD_GET] = 70;
        l->w[BL_LOAD_PUT] = 15;
        l->w[BL_LOAD_POST] = 10;
        l->w[BL_LOAD_DELETE] = 2;
        l->w[BL_LOAD_LIST] = 3;
        l->wtotal = 100;
    }
    l->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)o->seed * 0xD1B54A32D192ED03ull);
    if (l->rng == 0) {
        l->rng = 1;
    }
    snprintf(l->auth, sizeof(l->auth), "Authorization: Bearer %s", o->token);
    l->body_text = malloc((size_t)l->o.body_bytes + 1);
    for (int i = 0; l->body_text != NULL && i < l->o.body_bytes; i++) {
        l->body_text[i] = "fault injection load body "[i % 26];
    }
    if (l->body_text != NULL) {
        l->body_text[l->o.body_bytes] = '\0';
    }
    l->hdr_write = curl_slist_append(NULL, l->auth);
    l->hdr_write = curl_slist_append(l->hdr_write, "Content-Type: application/json");
    l->hdr_write = curl_slist_append(l->hdr_write, "Expect:");
    l->hdr_plain = curl_slist_append(NULL, l->auth);
    l->slots = calloc((size_t)l->o.conns, sizeof(*l->slots));
    pthread_mutex_init(&l->mu, NULL);
    atomic_init(&l->stop, 0);
    if (l->url == NULL || l->token == NULL || l->tag == NULL || l->body_text == NULL ||
        l->hdr_write == NULL || l->hdr_plain == NULL || l->slots == NULL) {
        bl_load_destroy(l);
        *err = "out of memory";
        return NULL;
    }
    for (int i = 0; i < l->o.conns; i++) {
        l->slots[i].e = curl_easy_init();
        if (l->slots[i].e == NULL) {
            bl_load_destroy(l);
            *err = "curl_easy_init failed";
            return NULL;
        }
    }
    return l;
}

void
bl_load_destroy(struct bl_load *l)
{
    if (l == NULL) {
        return;
    }
    for (int i = 0; l->slots != NULL && i < l->o.conns; i++) {
        if (l->slots[i].e != NULL) {
            curl_easy_cleanup(l->slots[i].e);
        }
        free(l->slots[i].buf);
    }
    if (l->m != NULL) {
        curl_multi_cleanup(l->m);
    }
    curl_slist_free_all(l->hdr_write);
    curl_slist_free_all(l->hdr_plain);
    pthread_mutex_destroy(&l->mu);
    free(l->slots);
    free(l->recs);
    free(l->posts);
    free(l->seqstate);
    free(l->body_text);
    free(l->url);
    free(l->token);
    free(l->tag);
    free(l);
}

/* ---- curl plumbing ---- */

static size_t
on_body(char *p, size_t sz, size_t n, void *arg)
{
    struct slot *s = arg;
    size_t len = sz * n;

    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        char *nb;
        while (cap < s->len + len + 1) {
            cap *= 2;
        }
        nb = realloc(s->buf, cap);
        if (nb == NULL) {
            return 0;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return len;
}

/* Copies the value of header line <p> (name <name>, length <nlen>) into <dst>. */
static void
header_value(const char *p, size_t len, const char *name, size_t nlen, char *dst, size_t cap)
{
    size_t i = nlen + 1, j = 0;

    if (len <= nlen || strncasecmp(p, name, nlen) != 0 || p[nlen] != ':') {
        return;
    }
    while (i < len && (p[i] == ' ' || p[i] == '\t')) {
        i++;
    }
    while (i < len && p[i] != '\r' && p[i] != '\n' && j + 1 < cap) {
        dst[j++] = p[i++];
    }
    dst[j] = '\0';
}

static size_t
on_header(char *p, size_t sz, size_t n, void *arg)
{
    struct slot *s = arg;
    size_t len = sz * n;

    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new (possibly interim) response: forget the previous one's headers */
        s->node[0] = '\0';
        s->xcache[0] = '\0';
        s->location[0] = '\0';
    }
    header_value(p, len, "X-Blog-Node", 11, s->node, sizeof(s->node));
    header_value(p, len, "X-Cache", 7, s->xcache, sizeof(s->xcache));
    header_value(p, len, "Location", 8, s->location, sizeof(s->location));
    return len;
}

/* Sets up easy handle of <s> for <method> on <path> with optional JSON <body>. */
static void
prepare(struct bl_load *l, struct slot *s, const char *method, const char *path, const char *body)
{
    CURL *e = s->e;

    curl_easy_reset(e);
    s->len = 0;
    if (s->buf != NULL) {
        s->buf[0] = '\0';
    }
    s->node[0] = '\0';
    s->xcache[0] = '\0';
    s->location[0] = '\0';
    s->errbuf[0] = '\0';
    snprintf(s->url, sizeof(s->url), "%s%s", l->url, path);
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)l->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)l->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    if (l->o.fresh_conns) {
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, l->hdr_write);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
        if (strcmp(method, "POST") != 0) {
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        }
    } else if (strcmp(method, "DELETE") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, l->hdr_plain);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
}

/* version, id and error code of a JSON answer (jansson); fields left alone when absent. */
static void
parse_answer(const char *buf, size_t len, uint64_t *version, char *id, size_t idcap, char *code,
             size_t codecap)
{
    json_error_t jerr;
    json_t *j, *v, *err;

    if (buf == NULL || len == 0) {
        return;
    }
    j = json_loadb(buf, len, 0, &jerr);
    if (j == NULL) {
        return;
    }
    v = json_object_get(j, "version");
    if (json_is_integer(v) && version != NULL) {
        *version = (uint64_t)json_integer_value(v);
    }
    v = json_object_get(j, "id");
    if (json_is_string(v) && id != NULL) {
        snprintf(id, idcap, "%s", json_string_value(v));
    }
    err = json_object_get(j, "error");
    v = json_object_get(err, "code");
    if (json_is_string(v) && code != NULL) {
        snprintf(code, codecap, "%s", json_string_value(v));
    }
    json_decref(j);
}

static int
post_body(struct bl_load *l, int64_t seq, char **out)
{
    size_t cap = strlen(l->body_text) + strlen(l->tag) + 160;
    char *b = malloc(cap);

    if (b == NULL) {
        return -ENOMEM;
    }
    snprintf(b, cap,
             "{\"title\":\"%s-%lld\",\"body\":\"%s\",\"author\":\"bl_load\",\"tags\":[\"fault\"]}",
             l->tag, (long long)seq, l->body_text);
    *out = b;
    return 0;
}

static int64_t
new_seq(struct bl_load *l)
{
    if (l->nseq == l->capseq) {
        size_t cap = l->capseq ? l->capseq * 2 : 1024;
        int32_t *n = realloc(l->seqstate, cap * sizeof(*n));
        if (n == NULL) {
            return -1;
        }
        l->seqstate = n;
        l->capseq = cap;
    }
    l->seqstate[l->nseq] = -2;
    return (int64_t)l->nseq++;
}

static int32_t
add_post(struct bl_load *l, const char *id, uint64_t version, int64_t seq)
{
    struct lpost *p;

    if (l->nposts == l->capposts) {
        size_t cap = l->capposts ? l->capposts * 2 : 1024;
        struct lpost *n = realloc(l->posts, cap * sizeof(*n));
        if (n == NULL) {
            return -1;
        }
        l->posts = n;
        l->capposts = cap;
    }
    p = &l->posts[l->nposts];
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->version = version;
    p->state = P_LIVE;
    p->seq = seq;
    return (int32_t)l->nposts++;
}

static void
add_rec(struct bl_load *l, const struct bl_load_rec *r)
{
    pthread_mutex_lock(&l->mu);
    if (l->nrecs == l->caprecs) {
        size_t cap = l->caprecs ? l->caprecs * 2 : 4096;
        struct bl_load_rec *n = realloc(l->recs, cap * sizeof(*n));
        if (n == NULL) {
            pthread_mutex_unlock(&l->mu);
            return;
        }
        l->recs = n;
        l->caprecs = cap;
    }
    l->recs[l->nrecs++] = *r;
    pthread_mutex_unlock(&l->mu);
}

/* ---- one request: start and completion ---- */

static int32_t
pick_post(struct bl_load *l, bool live_only)
{
    for (int t = 0; t < PICK_TRIES && l->nposts > 0; t++) {
        int32_t i = (int32_t)(rnd(l) % l->nposts);
        struct lpost *p = &l->posts[i];
        if (!p->busy && (!live_only || p->state == P_LIVE)) {
            return i;
        }
    }
    return -1;
}

static int
pick_op(struct bl_load *l)
{
    int r = (int)(rnd(l) % (uint64_t)l->wtotal);

    for (int op = 0; op < BL_LOAD_NOPS; op++) {
        if (r < l->w[op]) {
            return op;
        }
        r -= l->w[op];
    }
    return BL_LOAD_GET;
}

/* Prepares slot <s> for the next request; false when nothing could be prepared. */
static bool
start_one(struct bl_load *l, struct slot *s)
{
    char path[128], *body = NULL;
    int op = pick_op(l);
    int32_t pi = -1;

    if (op == BL_LOAD_GET || op == BL_LOAD_PUT || op == BL_LOAD_DELETE) {
        pi = pick_post(l, op != BL_LOAD_GET);
        if (pi < 0) {
            op = BL_LOAD_LIST;          /* every candidate busy (or no posts yet) */
        }
    }
    s->op = (uint8_t)op;
    s->post = pi;
    s->seq = -1;
    switch (op) {
    case BL_LOAD_GET:
        snprintf(path, sizeof(path), "/posts/%s", l->posts[pi].id);
        prepare(l, s, "GET", path, NULL);
        break;
    case BL_LOAD_PUT:
        if (post_body(l, l->posts[pi].seq, &body) != 0) {
            return false;
        }
        snprintf(path, sizeof(path), "/posts/%s", l->posts[pi].id);
        prepare(l, s, "PUT", path, body);
        break;
    case BL_LOAD_DELETE:
        snprintf(path, sizeof(path), "/posts/%s", l->posts[pi].id);
        prepare(l, s, "DELETE", path, NULL);
        break;
    case BL_LOAD_POST:
        s->seq = new_seq(l);
        if (s->seq < 0 || post_body(l, s->seq, &body) != 0) {
            return false;
        }
        prepare(l, s, "POST", "/posts", body);
        break;
    default:
        prepare(l, s, "GET", "/posts?limit=20", NULL);
        break;
    }
    free(body);
    if (pi >= 0) {
        l->posts[pi].busy = true;
    }
    s->t0 = bl_load_mono_us();
    s->active = true;
    return true;
}

/* Records an acknowledged write of <p> (version, answer time, answering node). */
static void
note_ack(struct lpost *p, uint64_t version, uint64_t t_us, const char *node)
{
    struct ack *a;

    if (p->nhist == ACK_HIST) {
        p->floor = p->hist[0].version;
        memmove(&p->hist[0], &p->hist[1], (ACK_HIST - 1) * sizeof(p->hist[0]));
        p->nhist--;
    }
    a = &p->hist[p->nhist++];
    a->version = version;
    a->t_us = t_us;
    snprintf(a->node, sizeof(a->node), "%s", node);
    p->version = version;
    p->ack_us = t_us;
    snprintf(p->ack_node, sizeof(p->ack_node), "%s", node);
}

/*
 * A GET of live post <p> sent at <t0> answered 200 with <version> by <node>: OK (false),
 * lagged (true, *stale false: older than acknowledged, but only by writes acknowledged by
 * other nodes less than lag_us before t0), or *stale.
 */
static bool
lagged_read(const struct lpost *p, uint64_t version, uint64_t t0, const char *node,
            uint64_t lag_us, bool *stale)
{
    bool lag = false;

    *stale = false;
    if (version >= p->version) {
        return false;
    }
    if (lag_us == 0 || version < p->floor) {
        *stale = true;
        return false;
    }
    for (int i = 0; i < p->nhist; i++) {
        const struct ack *a = &p->hist[i];

        if (a->version <= version) {
            continue;
        }
        /* a newer write this node acknowledged itself, or whose window has passed */
        if (node[0] == '\0' || strcmp(a->node, node) == 0 || t0 < a->t_us ||
            t0 - a->t_us >= lag_us) {
            *stale = true;
            return false;
        }
        lag = true;
    }
    if (!lag) {
        *stale = true;                  /* older than a seeded version: no window */
    }
    return lag;
}

/* Classifies the answer of slot <s> and updates the model. */
static void
complete(struct bl_load *l, struct slot *s, CURLcode cc)
{
    struct bl_load_rec r;
    long status = 0;
    uint64_t version = 0;
    char id[32] = "";
    struct lpost *p = s->post >= 0 ? &l->posts[s->post] : NULL;

    memset(&r, 0, sizeof(r));
    r.t0_us = s->t0;
    r.t1_us = bl_load_mono_us();
    r.op = s->op;
    r.post = s->post;
    if (p != NULL) {
        r.acked = (uint32_t)p->version;
        r.ack_us = p->ack_us;
        snprintf(r.ack_node, sizeof(r.ack_node), "%s", p->ack_node);
    }
    if (cc == CURLE_OK) {
        curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &status);
        parse_answer(s->buf, s->len, &version, id, sizeof(id), r.code, sizeof(r.code));
    } else {
        /* the curl code's name is short; the full text is in errbuf when needed */
        snprintf(r.code, sizeof(r.code), "curl:%.22s", curl_easy_strerror(cc));
    }
    r.status = (uint16_t)status;
    r.version = (uint32_t)version;
    snprintf(r.node, sizeof(r.node), "%s", s->node);
    snprintf(r.xcache, sizeof(r.xcache), "%s", s->xcache);
    r.cls = BL_LOAD_FAIL;
    switch (s->op) {
    case BL_LOAD_GET:
        if (p->state == P_UNSURE) {
            if (status == 200 || status == 404) {
                r.cls = BL_LOAD_OK;
            }
        } else if (p->state == P_DELETED) {
            r.cls = status == 404 ? BL_LOAD_OK : status == 200 ? BL_LOAD_STALE : BL_LOAD_FAIL;
        } else if (status == 200) {
            bool stale;

            r.lagged = lagged_read(p, version, r.t0_us, r.node, l->lag_us, &stale);
            r.cls = stale ? BL_LOAD_STALE : BL_LOAD_OK;
        } else if (status == 404) {
            r.cls = BL_LOAD_STALE;
        }
        break;
    case BL_LOAD_PUT:
        if (status == 200 && version > p->version) {
            r.cls = BL_LOAD_OK;
            note_ack(p, version, r.t1_us, r.node);
        } else if (status == 200 || status == 404) {
            r.cls = BL_LOAD_STALE;      /* an older version than acknowledged, or lost */
        }
        break;
    case BL_LOAD_DELETE:
        if (status == 204 || status == 404) {
            r.cls = BL_LOAD_OK;
            p->state = P_DELETED;
        } else {
            p->state = P_UNSURE;
        }
        break;
    case BL_LOAD_POST:
        if (status == 201 && strlen(id) == 24 && strcmp(s->location + 7, id) == 0) {
            int32_t pi = add_post(l, id, version, s->seq);
            if (pi >= 0) {
                note_ack(&l->posts[pi], version, r.t1_us, r.node);
            }
            r.cls = BL_LOAD_OK;
            r.post = pi;
            l->seqstate[s->seq] = pi;
        } else {
            l->seqstate[s->seq] = -1;
        }
        break;
    default:
        if (status == 200) {
            r.cls = BL_LOAD_OK;
        }
        break;
    }
    if (p != NULL) {
        p->busy = false;
    }
    s->active = false;
    add_rec(l, &r);
}

static int
active_count(struct bl_load *l)
{
    int n = 0;

    for (int i = 0; i < l->o.conns; i++) {
        n += l->slots[i].active;
    }
    return n;
}

static void
reap(struct bl_load *l)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(l->m, &left)) != NULL) {
        struct slot *s = NULL;
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        curl_multi_remove_handle(l->m, msg->easy_handle);
        complete(l, s, msg->data.result);
    }
}

int
bl_load_run(struct bl_load *l)
{
    uint64_t start = bl_load_mono_us();
    uint64_t end = start + (uint64_t)l->o.duration_ms * 1000u;
    uint64_t gap = l->o.rate > 0 ? 1000000u / (uint64_t)l->o.rate : 0;
    uint64_t next = start;
    int running = 0;

    if (l->m == NULL) {
        l->m = curl_multi_init();
        if (l->m == NULL) {
            return -ENOMEM;
        }
        curl_multi_setopt(l->m, CURLMOPT_MAXCONNECTS, (long)l->o.conns * 2);
    }
    for (;;) {
        uint64_t now = bl_load_mono_us();
        int wait_ms = 50;
        bool stopping = atomic_load(&l->stop) || now >= end;

        if (stopping && active_count(l) == 0) {
            break;
        }
        for (int i = 0; !stopping && i < l->o.conns; i++) {
            struct slot *s = &l->slots[i];
            if (s->active) {
                continue;
            }
            if (gap > 0 && now < next) {
                break;
            }
            if (!start_one(l, s)) {
                continue;
            }
            curl_multi_add_handle(l->m, s->e);
            if (gap > 0) {
                next += gap;
                if (next + 1000000u < now) {
                    next = now;         /* far behind (all slots were busy): no burst */
                }
            }
        }
        curl_multi_perform(l->m, &running);
        reap(l);
        now = bl_load_mono_us();
        if (gap > 0 && next > now && active_count(l) < l->o.conns) {
            uint64_t d = (next - now) / 1000u;
            wait_ms = d < 50 ? (int)d : 50;
        }
        curl_multi_poll(l->m, NULL, 0, wait_ms, NULL);
    }
    return 0;
}

static void *
run_thread(void *arg)
{
    (void)bl_load_run(arg);
    return NULL;
}

int
bl_load_start(struct bl_load *l)
{
    int rc = pthread_create(&l->th, NULL, run_thread, l);

    if (rc != 0) {
        return -rc;
    }
    l->started = true;
    return 0;
}

void
bl_load_stop(struct bl_load *l)
{
    atomic_store(&l->stop, 1);
}

void
bl_load_set_duration(struct bl_load *l, int ms)
{
    l->o.duration_ms = ms > 0 ? ms : 1;
    atomic_store(&l->stop, 0);
}

void
bl_load_wait(struct bl_load *l)
{
    if (l->started) {
        pthread_join(l->th, NULL);
        l->started = false;
    }
}

/* One synchronous request on slot 0 (seeding and verification). */
static CURLcode
sync_request(struct bl_load *l, const char *method, const char *url_base, const char *path,
             const char *body, long *status)
{
    struct slot *s = &l->slots[0];
    char *saved = l->url;
    CURLcode cc;

    l->url = (char *)url_base;
    prepare(l, s, method, path, body);
    l->url = saved;
    cc = curl_easy_perform(s->e);
    *status = 0;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, status);
    }
    return cc;
}

int
bl_load_seed(struct bl_load *l)
{
    for (int i = 0; i < l->o.seed_posts; i++) {
        struct slot *s = &l->slots[0];
        int64_t seq = new_seq(l);
        char *body = NULL, id[32] = "";
        uint64_t version = 0;
        long status;
        CURLcode cc;
        int32_t pi;

        if (seq < 0 || post_body(l, seq, &body) != 0) {
            return -1;
        }
        cc = sync_request(l, "POST", l->url, "/posts", body, &status);
        free(body);
        if (cc != CURLE_OK || status != 201) {
            fprintf(stderr, "bl_load: seeding post %d: %s status %ld %.200s\n", i,
                    curl_easy_strerror(cc), status, s->buf ? s->buf : "");
            l->seqstate[seq] = -1;
            return -1;
        }
        parse_answer(s->buf, s->len, &version, id, sizeof(id), NULL, 0);
        pi = add_post(l, id, version, seq);
        if (pi < 0 || strlen(id) != 24) {
            return -1;
        }
        note_ack(&l->posts[pi], version, bl_load_mono_us(), s->node);
        l->seqstate[seq] = pi;
    }
    return 0;
}

/* ---- reading the records ---- */

void
bl_load_stats(const struct bl_load *l, uint64_t from_us, uint64_t to_us, struct bl_load_stats *out)
{
    struct bl_load *ml = (struct bl_load *)l;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&ml->mu);
    for (size_t i = 0; i < l->nrecs; i++) {
        const struct bl_load_rec *r = &l->recs[i];
        if (to_us != 0 && (r->t0_us < from_us || r->t0_us >= to_us)) {
            continue;
        }
        out->n[r->op][r->cls]++;
        out->total++;
        out->ok += r->cls == BL_LOAD_OK;
        out->fail += r->cls == BL_LOAD_FAIL;
        out->stale += r->cls == BL_LOAD_STALE;
        out->delete_404 += r->op == BL_LOAD_DELETE && r->status == 404;
        out->lagged += r->lagged;
    }
    pthread_mutex_unlock(&ml->mu);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

uint64_t
bl_load_pctl(const struct bl_load *l, unsigned op_mask, uint64_t from_us, uint64_t to_us,
             double pct, long *count)
{
    struct bl_load *ml = (struct bl_load *)l;
    uint64_t *v, res = 0;
    size_t n = 0;

    pthread_mutex_lock(&ml->mu);
    v = malloc((l->nrecs + 1) * sizeof(*v));
    for (size_t i = 0; v != NULL && i < l->nrecs; i++) {
        const struct bl_load_rec *r = &l->recs[i];
        if (r->cls != BL_LOAD_OK || !(op_mask & (1u << r->op)) || r->t0_us < from_us ||
            (to_us != 0 && r->t0_us >= to_us)) {
            continue;
        }
        v[n++] = r->t1_us - r->t0_us;
    }
    pthread_mutex_unlock(&ml->mu);
    if (n > 0) {
        size_t k;
        qsort(v, n, sizeof(*v), cmp_u64);
        k = (size_t)(pct / 100.0 * (double)n);
        res = v[k >= n ? n - 1 : k];
    }
    free(v);
    if (count != NULL) {
        *count = (long)n;
    }
    return res;
}

size_t
bl_load_records(const struct bl_load *l, const struct bl_load_rec **out)
{
    *out = l->recs;
    return l->nrecs;
}

const char *
bl_load_post_id(const struct bl_load *l, int32_t i)
{
    return i >= 0 && (size_t)i < l->nposts ? l->posts[i].id : "";
}

static const char *const op_names[BL_LOAD_NOPS] = { "GET", "PUT", "POST", "DELETE", "LIST" };

void
bl_load_print(const struct bl_load *l, const char *label)
{
    struct bl_load_stats st;
    long n;
    uint64_t p50, p99;

    bl_load_stats(l, 0, 0, &st);
    p50 = bl_load_pctl(l, 0x1f, 0, 0, 50, &n);
    p99 = bl_load_pctl(l, 0x1f, 0, 0, 99, NULL);
    fprintf(stderr, "# %s: %ld requests, %ld ok, %ld failed, %ld stale; p50 %.2f ms, p99 %.2f ms;",
            label, st.total, st.ok, st.fail, st.stale, (double)p50 / 1000.0,
            (double)p99 / 1000.0);
    for (int op = 0; op < BL_LOAD_NOPS; op++) {
        fprintf(stderr, " %s %ld/%ld/%ld", op_names[op], st.n[op][0], st.n[op][1], st.n[op][2]);
    }
    fprintf(stderr, " (ok/failed/stale); DELETE 404 %ld; lagged cross-node reads %ld\n",
            st.delete_404, st.lagged);
}

/*
 * Prints the acknowledged writes (POST/PUT answered OK) of the post of GET record <r> that
 * were answered before the GET was sent and are not older than the version it served:
 * version, answering node and age at send (ms). Caller holds l->mu.
 */
static void
print_ack_history(const struct bl_load *l, const struct bl_load_rec *r)
{
    int n = 0;
    uint64_t since = 0;

    fprintf(stderr, "; ack history (version node age-at-send ms; r: a GET answered before, "
            "with its send age):");
    for (size_t i = 0; i < l->nrecs; i++) {
        const struct bl_load_rec *w = &l->recs[i];
        bool write = w->op == BL_LOAD_PUT || w->op == BL_LOAD_POST;

        if (w->post != r->post || w->cls != BL_LOAD_OK || w->t1_us > r->t0_us || w == r ||
            (!write && w->op != BL_LOAD_GET)) {
            continue;
        }
        if (write && w->version == r->version) {
            since = w->t1_us;
        }
        if (write ? w->version < r->version : since == 0 || w->t0_us < since) {
            continue;
        }
        if (!write) {
            fprintf(stderr, " r%u %s %.3f", w->version, w->node[0] ? w->node : "-",
                    ((double)r->t0_us - (double)w->t0_us) / 1000.0);
        } else {
            fprintf(stderr, " %u %s %.3f%s", w->version, w->node[0] ? w->node : "-",
                    ((double)r->t0_us - (double)w->t1_us) / 1000.0,
                    strcmp(w->node, r->node) == 0 && w->version > r->version ? " (SAME NODE)"
                                                                              : "");
        }
        if (++n == 48) {
            fprintf(stderr, " ...");
            break;
        }
    }
    if (n == 0) {
        fprintf(stderr, " none recorded (seeded)");
    }
}

void
bl_load_print_failures(const struct bl_load *l, int max)
{
    struct bl_load *ml = (struct bl_load *)l;
    int shown = 0;

    pthread_mutex_lock(&ml->mu);
    for (size_t i = 0; i < l->nrecs && shown < max; i++) {
        const struct bl_load_rec *r = &l->recs[i];
        if (r->cls == BL_LOAD_OK) {
            continue;
        }
        fprintf(stderr, "#   %s %s %s: status %u code %s node %s version %u (t0 %llu ms, %llu ms)",
                r->cls == BL_LOAD_STALE ? "STALE" : "FAIL", op_names[r->op],
                bl_load_post_id(l, r->post), r->status, r->code[0] ? r->code : "-",
                r->node[0] ? r->node : "-", r->version, (unsigned long long)(r->t0_us / 1000),
                (unsigned long long)((r->t1_us - r->t0_us) / 1000));
        if (r->post >= 0 && r->ack_us != 0) {
            fprintf(stderr, "; acknowledged version %u by %s %.3f ms before it was sent",
                    r->acked, r->ack_node[0] ? r->ack_node : "-",
                    ((double)r->t0_us - (double)r->ack_us) / 1000.0);
        } else if (r->post >= 0) {
            fprintf(stderr, "; acknowledged version %u (seeded)", r->acked);
        }
        if (r->op == BL_LOAD_GET && r->cls == BL_LOAD_STALE && r->post >= 0) {
            fprintf(stderr, "; X-Cache %s", r->xcache[0] ? r->xcache : "-");
            print_ack_history(l, r);
        }
        fputc('\n', stderr);
        shown++;
    }
    pthread_mutex_unlock(&ml->mu);
}

void
bl_load_print_slow(const struct bl_load *l, uint64_t min_us, uint64_t t0_us, int max)
{
    struct bl_load *ml = (struct bl_load *)l;
    int shown = 0;

    pthread_mutex_lock(&ml->mu);
    for (size_t i = 0; i < l->nrecs && shown < max; i++) {
        const struct bl_load_rec *r = &l->recs[i];
        if (r->t1_us - r->t0_us < min_us) {
            continue;
        }
        fprintf(stderr, "#   slow %s %s: status %u node %s, started at %+.1f ms, took %.1f ms\n",
                op_names[r->op], bl_load_post_id(l, r->post), r->status,
                r->node[0] ? r->node : "-", ((double)r->t0_us - (double)t0_us) / 1000.0,
                (double)(r->t1_us - r->t0_us) / 1000.0);
        shown++;
    }
    pthread_mutex_unlock(&ml->mu);
}

/* ---- verification ---- */

static void problem(struct bl_load_check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
problem(struct bl_load_check *c, const char *fmt, ...)
{
    va_list ap;

    if (c->first_problem[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(c->first_problem, sizeof(c->first_problem), fmt, ap);
        va_end(ap);
    }
}

int
bl_load_verify(struct bl_load *l, const char *url, struct bl_load_check *c)
{
    const char *base = url != NULL ? url : l->url;
    struct slot *s = &l->slots[0];
    size_t taglen = strlen(l->tag);
    char cursor[32] = "";
    uint8_t *listed;

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < l->nposts; i++) {
        struct lpost *p = &l->posts[i];
        char path[64];
        uint64_t version = 0;
        long status;
        CURLcode cc;

        snprintf(path, sizeof(path), "/posts/%s", p->id);
        cc = sync_request(l, "GET", base, path, NULL, &status);
        c->checked++;
        if (cc != CURLE_OK || (status != 200 && status != 404)) {
            c->read_errors++;
            problem(c, "read back %s: status %ld (curl %d)", p->id, status, (int)cc);
            continue;
        }
        parse_answer(s->buf, s->len, &version, NULL, 0, NULL, 0);
        if (p->state == P_LIVE && status == 404) {
            c->missing++;
            problem(c, "post %s acknowledged (version %llu) but 404", p->id,
                    (unsigned long long)p->version);
        } else if (p->state == P_LIVE && version < p->version) {
            c->old_version++;
            problem(c, "post %s: version %llu, acknowledged %llu", p->id,
                    (unsigned long long)version, (unsigned long long)p->version);
        } else if (p->state == P_DELETED && status == 200) {
            c->resurrected++;
            problem(c, "post %s deleted (acknowledged) but 200 version %llu", p->id,
                    (unsigned long long)version);
        }
    }
    listed = calloc(l->nseq + 1, 1);
    if (listed == NULL) {
        return -1;
    }
    for (int page = 0; page < VERIFY_MAX_PAGES; page++) {
        char path[96];
        json_error_t jerr;
        json_t *j, *arr, *nc, *it;
        size_t k;
        long status;
        CURLcode cc;

        snprintf(path, sizeof(path), "/posts?limit=%d%s%s", LIST_LIMIT_VERIFY,
                 cursor[0] ? "&cursor=" : "", cursor);
        cc = sync_request(l, "GET", base, path, NULL, &status);
        if (cc != CURLE_OK || status != 200) {
            problem(c, "list walk %s: status %ld (curl %d)", path, status, (int)cc);
            free(listed);
            return -1;
        }
        j = json_loadb(s->buf, s->len, 0, &jerr);
        arr = json_object_get(j, "posts");
        if (!json_is_array(arr)) {
            json_decref(j);
            free(listed);
            return -1;
        }
        json_array_foreach(arr, k, it) {
            const char *title = json_string_value(json_object_get(it, "title"));
            const char *id = json_string_value(json_object_get(it, "id"));
            char *end;
            long long seq;
            if (title == NULL || id == NULL || strncmp(title, l->tag, taglen) != 0 ||
                title[taglen] != '-') {
                continue;
            }
            seq = strtoll(title + taglen + 1, &end, 10);
            if (*end != '\0' || seq < 0 || (size_t)seq >= l->nseq) {
                c->unknown_listed++;
                problem(c, "listed post %s with title %s: never sent", id, title);
                continue;
            }
            c->listed++;
            listed[seq] = 1;
            if (l->seqstate[seq] == -1) {
                c->stored_unacked++;
                problem(c, "post %s stored although its POST (seq %lld) failed", id, seq);
            } else if (l->seqstate[seq] >= 0 &&
                       strcmp(l->posts[l->seqstate[seq]].id, id) != 0) {
                c->unknown_listed++;
                problem(c, "listed post %s for seq %lld, acknowledged as another id", id,
                        seq);
            }
        }
        nc = json_object_get(j, "next_cursor");
        if (!json_is_string(nc)) {
            json_decref(j);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(nc));
        json_decref(j);
    }
    for (size_t q = 0; q < l->nseq; q++) {
        if (l->seqstate[q] == -1) {
            c->failed_posts++;
        } else if (l->seqstate[q] >= 0 && !listed[q] &&
                   l->posts[l->seqstate[q]].state == P_LIVE) {
            c->acked_unlisted++;
            problem(c, "post %s (seq %zu) acknowledged but not listed",
                    l->posts[l->seqstate[q]].id, q);
        }
    }
    free(listed);
    return 0;
}
