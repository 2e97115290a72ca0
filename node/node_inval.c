#include "node_inval.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libev.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_metrics.h"
#include "bl/bl_time.h"

#define TICK_S 0.05                     /* housekeeping timer period */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define CONNECT_TIMEOUT_MS 1000         /* connect + AUTH + SUBSCRIBE must finish within */
#define PUB_RETRY_MS 200                /* subscribed but no publish link: retry period */
#define MSG_MAX 512
#define ORIGINS_MAX 256

enum sub_state {
    SUB_DOWN,                           /* waiting for next_attempt_ms */
    SUB_CONNECTING,                     /* TCP connect (+ AUTH) in progress */
    SUB_SUBSCRIBING,                    /* SUBSCRIBE sent */
    SUB_UP,
};

struct origin {
    char name[72];
    uint64_t boot;
    uint64_t last_seq;
    uint64_t seen_ms;                   /* for replacement when the table is full */
};

struct queued {
    char msg[MSG_MAX];
    size_t len;
    uint64_t seq;
};

struct node_inval {
    struct node_redis_url url;
    char channel[200];
    char ping_token[64];                /* PING argument = a pattern we PSUBSCRIBE to */
    char origin[72];
    uint64_t boot;
    struct node_cache *cache;

    /* loop thread only */
    struct ev_loop *loop;
    pthread_t thread;
    bool started;
    ev_async stop_w;
    ev_timer tick_w;
    redisAsyncContext *sub;
    enum sub_state state;
    bool teardown;                      /* a callback asked to drop the connection */
    uint64_t attempt_ms;                /* when the current attempt began */
    uint64_t next_attempt_ms;
    uint64_t backoff_ms;
    uint64_t last_rx_ms;
    uint64_t ping_sent_ms;
    bool ping_out;
    uint64_t next_pub_try_ms;
    struct origin origins[ORIGINS_MAX];
    bool logged_down;

    /* shared */
    atomic_bool subscribed;
    atomic_bool writable;               /* publish link up and queue replayed */
    pthread_mutex_t pub_lock;           /* guards the fields below */
    redisContext *pub;
    uint64_t seq;                       /* last sequence number used */
    struct queued *queue;               /* ring of NODE_INVAL_QUEUE_MAX */
    size_t qhead, qlen;
    atomic_size_t qlen_seen;            /* qlen for /metrics without the lock (a PUBLISH may
                                           hold it for its 300 ms timeout) */
    uint64_t dropped;                   /* queue overflows */
    atomic_uint_fast64_t out_seq;       /* highest seq that reached Redis (sent or replayed) */
    bool pub_silent;                    /* the link was closed after a timeout (a hang) */

    struct bl_metric *m_sent, *m_received, *m_pub_fail, *m_delay, *m_gaps, *m_resubs, *m_ignored;
};

/* ---------------------------------------------------------------- URL */

static int
hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Copies the %-decoded <s>/<n> into <out>; false when it does not fit or is malformed. */
static bool
pct_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            int h, l;

            if (i + 2 >= n) {
                return false;
            }
            h = hexval(s[i + 1]);
            l = hexval(s[i + 2]);
            if (h < 0 || l < 0) {
                return false;
            }
            c = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= size) {
            return false;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

int
node_inval_parse_url(const char *url, struct node_redis_url *out, const char **msg)
{
    const char *p, *at, *hend, *end, *slash;
    char *e;
    long v;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    *msg = "expected redis://[[user]:password@]HOST[:PORT][/DB]";
    if (url == NULL) {
        return BL_EINVAL;
    }
    if (strncmp(url, "rediss://", 9) == 0) {
        *msg = "rediss:// (TLS) is not supported: the hiredis this build links (0.14, "
               "Debian 12) has no TLS; use redis:// on a trusted network or a TLS tunnel "
               "(stunnel, spiped) to Redis";
        return BL_EINVAL;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        return BL_EINVAL;
    }
    p = url + 8;
    end = p + strlen(p);
    slash = strchr(p, '/');
    if (slash == NULL) {
        slash = end;
    }
    at = memchr(p, '@', (size_t)(slash - p));
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));

        if (colon == NULL) {
            *msg = "the Redis URL's credentials must be [user]:password";
            return BL_EINVAL;
        }
        if (!pct_decode(p, (size_t)(colon - p), out->user, sizeof(out->user)) ||
            !pct_decode(colon + 1, (size_t)(at - colon - 1), out->password,
                        sizeof(out->password))) {
            *msg = "the Redis URL's user or password is too long or badly %-encoded";
            return BL_EINVAL;
        }
        p = at + 1;
    }
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(slash - p));
        if (hend == NULL || (size_t)(hend - p - 1) >= sizeof(out->host) || hend == p + 1) {
            *msg = "bad [IPv6] host in the Redis URL";
            return BL_EINVAL;
        }
        memcpy(out->host, p + 1, (size_t)(hend - p - 1));
        p = hend + 1;
    } else {
        hend = p;
        while (hend < slash && *hend != ':') {
            hend++;
        }
        if (hend == p || (size_t)(hend - p) >= sizeof(out->host)) {
            *msg = "the host of the Redis URL is missing or too long";
            return BL_EINVAL;
        }
        memcpy(out->host, p, (size_t)(hend - p));
        p = hend;
    }
    if (p < slash && *p == ':') {
        errno = 0;
        v = strtol(p + 1, &e, 10);
        if (e == p + 1 || e != slash || errno != 0 || v < 1 || v > 65535) {
            *msg = "the Redis port must be a number from 1 to 65535";
            return BL_EINVAL;
        }
        out->port = (int)v;
    } else if (p != slash) {
        return BL_EINVAL;
    }
    if (slash < end && slash[1] != '\0') {
        errno = 0;
        v = strtol(slash + 1, &e, 10);
        if (*e != '\0' || errno != 0 || v < 0 || v > 1000000) {
            *msg = "the Redis database (after the last /) must be a number";
            return BL_EINVAL;
        }
        out->db = (int)v;
    }
    *msg = NULL;
    return 0;
}

/* ---------------------------------------------------------------- messages */

size_t
node_inval_encode(const struct node_inval_msg *m, char *out, size_t size)
{
    json_t *o;
    size_t n;

    o = json_pack("{s:i, s:s, s:s, s:I, s:s, s:s, s:I, s:I}", "v", 1, "type",
                  m->flush ? "flush" : "post", "id", m->id, "version", (json_int_t)m->version,
                  "origin", m->origin, "boot", "", "seq", (json_int_t)m->seq, "ts",
                  (json_int_t)m->ts_us);
    if (o == NULL) {
        return 0;
    }
    {
        char boot[17];

        snprintf(boot, sizeof(boot), "%016" PRIx64, m->boot);
        json_object_set_new(o, "boot", json_string(boot));
    }
    n = json_dumpb(o, out, size, JSON_COMPACT);
    json_decref(o);
    return n > 0 && n < size ? n : 0;
}

int
node_inval_decode(const char *s, size_t len, struct node_inval_msg *m)
{
    json_t *o;
    json_error_t jerr;
    const char *type = NULL, *id = NULL, *origin = NULL, *boot = NULL;
    json_int_t v = 0, version = 0, seq = 0, ts = 0;
    char *e;
    int rc = BL_EPARSE;

    memset(m, 0, sizeof(*m));
    o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        return BL_EPARSE;
    }
    if (json_unpack_ex(o, &jerr, 0, "{s:I, s:s, s:s, s:I, s:s, s:s, s:I, s:I}", "v", &v, "type",
                       &type, "id", &id, "version", &version, "origin", &origin, "boot", &boot,
                       "seq", &seq, "ts", &ts) != 0) {
        goto out;
    }
    if (v != 1 || version < 0 || seq < 1 || ts < 0 || strlen(id) >= sizeof(m->id) ||
        strlen(origin) == 0 || strlen(origin) >= sizeof(m->origin) || strlen(boot) != 16) {
        goto out;
    }
    if (strcmp(type, "post") == 0) {
        m->flush = false;
        if (strlen(id) != 24) {
            goto out;
        }
    } else if (strcmp(type, "flush") == 0) {
        m->flush = true;
    } else {
        goto out;
    }
    m->boot = strtoull(boot, &e, 16);
    if (*e != '\0') {
        goto out;
    }
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->origin, sizeof(m->origin), "%s", origin);
    m->version = (uint64_t)version;
    m->seq = (uint64_t)seq;
    m->ts_us = (uint64_t)ts;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

/* ---------------------------------------------------------------- publish side */

static uint64_t
real_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

static void
queue_push_locked(struct node_inval *iv, const char *msg, size_t len, uint64_t seq)
{
    struct queued *q;

    if (iv->qlen == NODE_INVAL_QUEUE_MAX) {
        /* drop the oldest: peers will see the gap in our sequence and flush */
        iv->qhead = (iv->qhead + 1) % NODE_INVAL_QUEUE_MAX;
        iv->qlen--;
        if (iv->dropped++ == 0) {
            bl_log(BL_LOG_WARN, "invalidation queue full (%d): dropping the oldest; peers "
                   "will flush on the sequence gap", NODE_INVAL_QUEUE_MAX);
        }
    }
    q = &iv->queue[(iv->qhead + iv->qlen) % NODE_INVAL_QUEUE_MAX];
    memcpy(q->msg, msg, len);
    q->len = len;
    q->seq = seq;
    iv->qlen++;
    atomic_store(&iv->qlen_seen, iv->qlen);
}

static void
pub_close_locked(struct node_inval *iv)
{
    if (iv->pub != NULL) {
        redisFree(iv->pub);
        iv->pub = NULL;
    }
    atomic_store(&iv->writable, false);
}

/*
 * One PUBLISH on the sync link; false on any failure (the link is then closed). *silent
 * (may be NULL) tells whether the failure was a timeout - Redis (or the path to it) hangs,
 * which its subscribers only notice by their own PING timeout - rather than a closed link
 * or an error reply, which they see at once.
 */
static bool
pub_send_locked(struct node_inval *iv, const char *msg, size_t len, bool *silent)
{
    redisReply *r;
    int err;

    if (silent != NULL) {
        *silent = false;
    }
    if (iv->pub == NULL) {
        /* closed by a concurrent write's failure, or by the subscription's loss */
        if (silent != NULL) {
            *silent = iv->pub_silent;
        }
        return false;
    }
    errno = 0;
    r = redisCommand(iv->pub, "PUBLISH %s %b", iv->channel, msg, len);
    err = errno;
    iv->pub_silent = r == NULL && iv->pub->err == REDIS_ERR_IO &&
                     (err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT);
    if (silent != NULL) {
        *silent = iv->pub_silent;
    }
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        bl_log(BL_LOG_WARN, "redis PUBLISH failed: %s",
               r != NULL ? r->str : iv->pub->errstr[0] ? iv->pub->errstr : "connection lost");
        if (r != NULL) {
            freeReplyObject(r);
        }
        pub_close_locked(iv);
        return false;
    }
    freeReplyObject(r);
    bl_metric_inc(iv->m_sent);
    return true;
}

/* Runs AUTH on a fresh sync or async link's context; 0 or -1 with a log line. */
static int
pub_auth(struct node_inval *iv, redisContext *c)
{
    redisReply *r;

    if (iv->url.password[0] == '\0') {
        return 0;
    }
    if (iv->url.user[0] != '\0') {
        r = redisCommand(c, "AUTH %s %s", iv->url.user, iv->url.password);
    } else {
        r = redisCommand(c, "AUTH %s", iv->url.password);
    }
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        bl_log(BL_LOG_ERROR, "redis AUTH failed on the publish link: %s",
               r != NULL ? r->str : c->errstr);
        if (r != NULL) {
            freeReplyObject(r);
        }
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

/* Opens the publish link and replays the queue (loop thread, subscribed). */
static void
pub_open(struct node_inval *iv)
{
    struct timeval tv = {0, NODE_INVAL_IO_TIMEOUT_MS * 1000};
    redisContext *c;

    c = redisConnectWithTimeout(iv->url.host, iv->url.port, tv);
    if (c == NULL || c->err) {
        bl_log(BL_LOG_WARN, "redis %s:%d: publish link: %s", iv->url.host, iv->url.port,
               c != NULL ? c->errstr : "out of memory");
        redisFree(c);
        return;
    }
    redisSetTimeout(c, tv);
    if (pub_auth(iv, c) != 0) {
        redisFree(c);
        return;
    }
    pthread_mutex_lock(&iv->pub_lock);
    pub_close_locked(iv);
    iv->pub = c;
    while (iv->qlen > 0) {
        struct queued *q = &iv->queue[iv->qhead];

        if (!pub_send_locked(iv, q->msg, q->len, NULL)) {
            break;
        }
        atomic_store(&iv->out_seq, q->seq);
        iv->qhead = (iv->qhead + 1) % NODE_INVAL_QUEUE_MAX;
        iv->qlen--;
    }
    atomic_store(&iv->qlen_seen, iv->qlen);
    if (iv->pub != NULL && iv->qlen == 0) {
        atomic_store(&iv->writable, true);
    }
    pthread_mutex_unlock(&iv->pub_lock);
}

/* Builds and publishes (or queues) one message. Returns true when it went out now;
 * *seq_out (may be NULL) gets its sequence number (0: not even queued), *silent (may be
 * NULL) whether it failed by a timeout (pub_send_locked). */
static bool
publish(struct node_inval *iv, bool flush, const char *id, uint64_t version, uint64_t *seq_out,
        bool *silent)
{
    struct node_inval_msg m;
    char buf[MSG_MAX];
    size_t len;
    bool ok;

    if (seq_out != NULL) {
        *seq_out = 0;
    }
    memset(&m, 0, sizeof(m));
    m.flush = flush;
    snprintf(m.id, sizeof(m.id), "%s", id != NULL ? id : "");
    m.version = version;
    snprintf(m.origin, sizeof(m.origin), "%s", iv->origin);
    m.boot = iv->boot;
    pthread_mutex_lock(&iv->pub_lock);
    m.seq = ++iv->seq;
    m.ts_us = real_us();
    len = node_inval_encode(&m, buf, sizeof(buf));
    if (len == 0) {
        /* cannot happen with validated names; never lose the message silently */
        iv->seq--;
        pthread_mutex_unlock(&iv->pub_lock);
        bl_log(BL_LOG_ERROR, "cannot encode an invalidation of %s", m.id);
        return false;
    }
    ok = pub_send_locked(iv, buf, len, silent);
    if (ok) {
        atomic_store(&iv->out_seq, m.seq);
    } else {
        bl_metric_inc(iv->m_pub_fail);
        queue_push_locked(iv, buf, len, m.seq);
    }
    pthread_mutex_unlock(&iv->pub_lock);
    if (seq_out != NULL) {
        *seq_out = m.seq;
    }
    return ok;
}

int
node_inval_write_begin(struct node_inval *iv)
{
    if (iv == NULL) {
        return 0;
    }
    return atomic_load(&iv->writable) ? 0 : BL_EUNAVAIL;
}

void
node_inval_post_written(struct node_inval *iv, struct node_cache *cache, const char *id,
                        uint64_t version)
{
    uint64_t t0, seq;
    bool silent;

    node_cache_invalidate_post(cache, id);
    if (iv == NULL) {
        return;
    }
    t0 = bl_time_mono_ms();
    if (publish(iv, false, id, version, &seq, &silent) || !silent) {
        return;                         /* sent, or Redis closed: every peer saw it too */
    }
    /*
     * The write is durable but the other nodes did not hear of it, and Redis did not answer
     * in time: if it hangs they may serve the old version until their own PING times out.
     * Hold the answer until every peer must have noticed (and flushed), or until the queued
     * message was replayed. Redis cannot have hung later than t0.
     */
    while (bl_time_mono_ms() - t0 < NODE_INVAL_HOLD_MS &&
           (seq == 0 || atomic_load(&iv->out_seq) < seq)) {
        struct timespec ts = {0, 10 * 1000000L};

        nanosleep(&ts, NULL);
    }
}

int
node_inval_flush(struct node_inval *iv, struct node_cache *cache, const char *id)
{
    if (id != NULL) {
        node_cache_invalidate_post(cache, id);
    } else {
        node_cache_flush(cache);
    }
    if (iv == NULL) {
        return 0;
    }
    return publish(iv, true, id, 0, NULL, NULL) ? 0 : BL_EUNAVAIL;
}

bool
node_inval_subscribed(struct node_inval *iv)
{
    return iv != NULL && atomic_load(&iv->subscribed);
}

/* ---------------------------------------------------------------- subscription side */

static void sub_connect(struct node_inval *iv);

/* The subscription is gone (or never came): serve uncached, refuse writes, retry. */
static void
sub_lost(struct node_inval *iv, const char *why)
{
    uint64_t now = bl_time_mono_ms();
    bool was_up = atomic_exchange(&iv->subscribed, false);

    node_cache_set_coherent(iv->cache, false);
    node_cache_flush(iv->cache);
    pthread_mutex_lock(&iv->pub_lock);
    pub_close_locked(iv);
    /* a PING or connect timeout is a hang the peers may not have seen yet */
    iv->pub_silent = strstr(why, "timed out") != NULL;
    pthread_mutex_unlock(&iv->pub_lock);
    iv->state = SUB_DOWN;
    iv->ping_out = false;
    iv->next_attempt_ms = now + iv->backoff_ms;
    iv->backoff_ms = iv->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : iv->backoff_ms * 2;
    if (was_up || !iv->logged_down) {
        bl_log(BL_LOG_WARN, "redis %s:%d: %s; serving uncached, refusing writes until "
               "resubscribed", iv->url.host, iv->url.port, why);
        iv->logged_down = true;
    }
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    struct node_inval *iv = ac->data;

    (void)status;
    if (iv == NULL || iv->sub != ac) {
        return;
    }
    iv->sub = NULL;                     /* hiredis frees it after this callback */
    sub_lost(iv, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void
apply_message(struct node_inval *iv, const char *s, size_t len)
{
    struct node_inval_msg m;
    struct origin *o = NULL, *victim = &iv->origins[0];
    uint64_t now_us, now_ms = bl_time_mono_ms();

    if (node_inval_decode(s, len, &m) != 0) {
        bl_log(BL_LOG_WARN, "ignoring a malformed invalidation message (%zu bytes): %.*s", len,
               (int)(len < 160 ? len : 160), s);
        return;
    }
    if (m.boot == iv->boot && strcmp(m.origin, iv->origin) == 0) {
        bl_metric_inc(iv->m_ignored);   /* ours: applied before it was published */
        return;
    }
    now_us = real_us();
    bl_metric_observe(iv->m_delay, now_us > m.ts_us ? (double)(now_us - m.ts_us) / 1e6 : 0.0);
    for (size_t i = 0; i < ORIGINS_MAX; i++) {
        struct origin *x = &iv->origins[i];

        if (x->name[0] != '\0' && x->boot == m.boot && strcmp(x->name, m.origin) == 0) {
            o = x;
            break;
        }
        if (x->seen_ms < victim->seen_ms) {
            victim = x;
        }
    }
    if (o == NULL) {
        /* First message of this origin since we subscribed (our flush then covered
         * whatever it published before): it sets the baseline. */
        o = victim;
        snprintf(o->name, sizeof(o->name), "%s", m.origin);
        o->boot = m.boot;
        o->last_seq = m.seq - 1;
    }
    o->seen_ms = now_ms;
    if (m.seq > o->last_seq + 1) {
        bl_log(BL_LOG_WARN, "invalidations %" PRIu64 "..%" PRIu64 " of %s were lost; flushing "
               "the cache", o->last_seq + 1, m.seq - 1, m.origin);
        bl_metric_inc(iv->m_gaps);
        node_cache_flush(iv->cache);
    }
    if (m.seq > o->last_seq) {
        o->last_seq = m.seq;
    }
    if (m.flush && m.id[0] == '\0') {
        node_cache_flush(iv->cache);
    } else {
        node_cache_invalidate_post(iv->cache, m.id);
    }
    /* counted once applied: a reader that sees the count sees the invalidation */
    bl_metric_inc(iv->m_received);
}

static void
on_subscribed(struct node_inval *iv)
{
    iv->state = SUB_UP;
    iv->backoff_ms = BACKOFF_MIN_MS;
    memset(iv->origins, 0, sizeof(iv->origins));
    pub_open(iv);
    iv->next_pub_try_ms = bl_time_mono_ms() + PUB_RETRY_MS;
    /* everything published while we were away is behind this flush */
    node_cache_flush(iv->cache);
    node_cache_set_coherent(iv->cache, true);
    atomic_store(&iv->subscribed, true);
    bl_metric_inc(iv->m_resubs);
    bl_log(BL_LOG_INFO, "redis %s:%d: subscribed to %s; cache coherent", iv->url.host,
           iv->url.port, iv->channel);
    iv->logged_down = false;
}

/*
 * The one reply handler of the subscription link. hiredis 0.14 hands a pub/sub message that
 * arrives while a PING is outstanding to the PING's callback, so both go through here and
 * the reply's shape decides; any reply proves the link alive.
 */
static void
on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct node_inval *iv = priv;
    redisReply *reply = r;

    (void)ac;
    if (reply == NULL || iv->sub != ac) {
        return;
    }
    iv->last_rx_ms = bl_time_mono_ms();
    iv->ping_out = false;
    if (reply->type == REDIS_REPLY_ERROR) {
        bl_log(BL_LOG_ERROR, "redis %s:%d: %s", iv->url.host, iv->url.port, reply->str);
        iv->teardown = true;
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        return;                         /* +PONG */
    }
    if (strcmp(reply->element[0]->str, "message") == 0 && reply->elements >= 3 &&
        reply->element[2]->type == REDIS_REPLY_STRING) {
        apply_message(iv, reply->element[2]->str, reply->element[2]->len);
    } else if (strcmp(reply->element[0]->str, "subscribe") == 0 && iv->state != SUB_UP) {
        on_subscribed(iv);
    }
}

/*
 * SUBSCRIBE to the channel, and PSUBSCRIBE to our ping token: in subscribed mode Redis
 * answers PING <token> with ["pong", <token>], which hiredis 0.14 routes by its second
 * element through the pattern callbacks, so the pong reaches on_reply. (A PING sent with
 * redisAsyncCommand would park its callback on a list that array replies never drain.)
 */
static void
send_subscribe(struct node_inval *iv, redisAsyncContext *ac)
{
    iv->state = SUB_SUBSCRIBING;
    redisAsyncCommand(ac, on_reply, iv, "SUBSCRIBE %s", iv->channel);
    redisAsyncCommand(ac, on_reply, iv, "PSUBSCRIBE %s", iv->ping_token);
}

/* Writes PING <token> straight into the link's output buffer (no callback registered). */
static void
send_ping(struct node_inval *iv)
{
    char cmd[128];
    int n = snprintf(cmd, sizeof(cmd), "*2\r\n$4\r\nPING\r\n$%zu\r\n%s\r\n",
                     strlen(iv->ping_token), iv->ping_token);

    if (n > 0 && (size_t)n < sizeof(cmd) &&
        redisAppendFormattedCommand(&iv->sub->c, cmd, (size_t)n) == REDIS_OK &&
        iv->sub->ev.addWrite != NULL) {
        iv->sub->ev.addWrite(iv->sub->ev.data);
    }
}

static void
on_auth(redisAsyncContext *ac, void *r, void *priv)
{
    struct node_inval *iv = priv;
    redisReply *reply = r;

    if (reply == NULL || iv->sub != ac) {
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        bl_log(BL_LOG_ERROR, "redis %s:%d: AUTH failed: %s", iv->url.host, iv->url.port,
               reply->str);
        iv->teardown = true;
        return;
    }
    send_subscribe(iv, ac);
}

static void
on_connect(const redisAsyncContext *cac, int status)
{
    struct node_inval *iv = cac->data;
    redisAsyncContext *ac = (redisAsyncContext *)cac;

    if (iv == NULL || iv->sub != ac) {
        return;
    }
    if (status != REDIS_OK) {
        iv->sub = NULL;                 /* hiredis frees it after this callback */
        sub_lost(iv, cac->errstr[0] ? cac->errstr : "connect failed");
        return;
    }
    iv->last_rx_ms = bl_time_mono_ms();
    if (iv->url.password[0] != '\0') {
        if (iv->url.user[0] != '\0') {
            redisAsyncCommand(ac, on_auth, iv, "AUTH %s %s", iv->url.user, iv->url.password);
        } else {
            redisAsyncCommand(ac, on_auth, iv, "AUTH %s", iv->url.password);
        }
    } else {
        send_subscribe(iv, ac);
    }
}

static void
sub_connect(struct node_inval *iv)
{
    redisAsyncContext *ac = redisAsyncConnect(iv->url.host, iv->url.port);

    iv->attempt_ms = bl_time_mono_ms();
    iv->teardown = false;
    if (ac == NULL) {
        sub_lost(iv, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];

        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        sub_lost(iv, why);
        return;
    }
    ac->data = iv;
    iv->sub = ac;
    iv->state = SUB_CONNECTING;
    redisLibevAttach(iv->loop, ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

/* Drops the subscription link from outside hiredis' callbacks. */
static void
sub_drop(struct node_inval *iv, const char *why)
{
    redisAsyncContext *ac = iv->sub;

    iv->sub = NULL;
    if (ac != NULL) {
        ac->data = NULL;                /* our callbacks ignore it from now on */
        redisAsyncFree(ac);
    }
    sub_lost(iv, why);
}

static void
on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct node_inval *iv = w->data;
    uint64_t now = bl_time_mono_ms();

    (void)loop;
    (void)revents;
    if (iv->teardown && iv->sub != NULL) {
        sub_drop(iv, "error reply");
        return;
    }
    switch (iv->state) {
    case SUB_DOWN:
        if (now >= iv->next_attempt_ms) {
            sub_connect(iv);
        }
        break;
    case SUB_CONNECTING:
    case SUB_SUBSCRIBING:
        if (now - iv->attempt_ms > CONNECT_TIMEOUT_MS) {
            sub_drop(iv, "connect/subscribe timed out");
        }
        break;
    case SUB_UP:
        if (iv->ping_out && now - iv->ping_sent_ms > NODE_INVAL_PING_TIMEOUT_MS) {
            /* A thread that was descheduled may see its timer before its pending input:
             * read what is there first, then judge. */
            redisAsyncHandleRead(iv->sub);
            if (iv->sub == NULL || iv->state != SUB_UP) {
                break;                  /* the read found the link closed */
            }
        }
        if (iv->ping_out && now - iv->ping_sent_ms > NODE_INVAL_PING_TIMEOUT_MS) {
            sub_drop(iv, "PING timed out");
            break;
        }
        if (!iv->ping_out && now - iv->ping_sent_ms >= NODE_INVAL_PING_MS) {
            iv->ping_out = true;
            iv->ping_sent_ms = now;
            send_ping(iv);
        }
        if (!atomic_load(&iv->writable) && now >= iv->next_pub_try_ms) {
            pub_open(iv);
            iv->next_pub_try_ms = now + PUB_RETRY_MS;
        }
        break;
    }
}

static void
on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void *
loop_main(void *arg)
{
    struct node_inval *iv = arg;

    ev_run(iv->loop, 0);
    if (iv->sub != NULL) {
        redisAsyncContext *ac = iv->sub;

        iv->sub = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static double
queue_fn(void *arg)
{
    struct node_inval *iv = arg;

    return (double)atomic_load(&iv->qlen_seen);
}

static void
register_metrics(struct node_inval *iv, struct bl_metrics *reg)
{
    static const double delay_buckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002,
                                           0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
    struct bl_metric_family *f;

    if (reg == NULL) {
        return;
    }
    iv->m_sent = bl_metrics_simple(reg, BL_METRIC_COUNTER,
                                   "blog_node_cache_invalidations_sent_total",
                                   "Invalidations published to Redis");
    iv->m_received = bl_metrics_simple(reg, BL_METRIC_COUNTER,
                                       "blog_node_cache_invalidations_received_total",
                                       "Invalidations from other nodes applied");
    iv->m_ignored = bl_metrics_simple(reg, BL_METRIC_COUNTER,
                                      "blog_node_cache_invalidations_own_total",
                                      "Own invalidations echoed back by Redis (ignored)");
    iv->m_pub_fail = bl_metrics_simple(reg, BL_METRIC_COUNTER,
                                       "blog_node_cache_publish_failures_total",
                                       "Invalidations that could not be published at once "
                                       "(queued for replay)");
    iv->m_gaps = bl_metrics_simple(reg, BL_METRIC_COUNTER, "blog_node_cache_seq_gaps_total",
                                   "Lost invalidations detected by sequence gaps (each "
                                   "flushed the cache)");
    iv->m_resubs = bl_metrics_simple(reg, BL_METRIC_COUNTER,
                                     "blog_node_cache_subscriptions_total",
                                     "Successful (re)subscriptions (each flushed the cache)");
    f = bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "blog_node_cache_invalidation_delay_seconds",
                          "Receive time minus publish time of invalidations from other nodes",
                          NULL, delay_buckets, sizeof(delay_buckets) / sizeof(delay_buckets[0]));
    iv->m_delay = f != NULL ? bl_metric_child(f, NULL) : NULL;
    (void)bl_metrics_gauge_fn(reg, "blog_node_cache_invalidation_queue",
                              "Invalidations waiting for the Redis link to be replayed",
                              queue_fn, iv);
}

static char *
err_dup(const char *fmt, const char *a, const char *b)
{
    char buf[512];

    snprintf(buf, sizeof(buf), fmt, a, b);
    return strdup(buf);
}

struct node_inval *
node_inval_create(const struct bl_conf *conf, const char *origin, struct node_cache *cache,
                  struct bl_metrics *reg, char **err)
{
    struct node_inval *iv;
    const char *msg;
    int n;

    if (err != NULL) {
        *err = NULL;
    }
    iv = calloc(1, sizeof(*iv));
    if (iv == NULL) {
        goto oom;
    }
    if (node_inval_parse_url(conf->cluster.redis, &iv->url, &msg) != 0) {
        if (err != NULL) {
            *err = err_dup("cluster.redis: %s (%s)", msg,
                           conf->cluster.redis ? "see docs/CONSISTENCY.md" : "not set");
        }
        free(iv);
        return NULL;
    }
    n = snprintf(iv->channel, sizeof(iv->channel), "blogscale:%s:inval",
                 conf->cluster.name != NULL ? conf->cluster.name : BL_CONF_DEFAULT_CLUSTER_NAME);
    if (n < 0 || (size_t)n >= sizeof(iv->channel) || strlen(origin) >= sizeof(iv->origin)) {
        if (err != NULL) {
            *err = err_dup("%s%s", "cluster.name or the node name is too long", "");
        }
        free(iv);
        return NULL;
    }
    snprintf(iv->origin, sizeof(iv->origin), "%s", origin);
    if (RAND_bytes((unsigned char *)&iv->boot, sizeof(iv->boot)) != 1) {
        iv->boot = bl_time_mono_ns() ^ ((uint64_t)getpid() << 32) ^ real_us();
    }
    snprintf(iv->ping_token, sizeof(iv->ping_token), "blogscale-ping-%016" PRIx64, iv->boot);
    iv->queue = calloc(NODE_INVAL_QUEUE_MAX, sizeof(*iv->queue));
    if (iv->queue == NULL) {
        free(iv);
        goto oom;
    }
    iv->loop = ev_loop_new(EVFLAG_AUTO);
    if (iv->loop == NULL) {
        free(iv->queue);
        free(iv);
        goto oom;
    }
    iv->cache = cache;
    iv->backoff_ms = BACKOFF_MIN_MS;
    iv->state = SUB_DOWN;
    atomic_init(&iv->subscribed, false);
    atomic_init(&iv->writable, false);
    atomic_init(&iv->out_seq, 0);
    pthread_mutex_init(&iv->pub_lock, NULL);
    node_cache_set_coherent(cache, false);
    ev_async_init(&iv->stop_w, on_stop);
    ev_async_start(iv->loop, &iv->stop_w);
    ev_timer_init(&iv->tick_w, on_tick, 0.0, TICK_S);
    iv->tick_w.data = iv;
    ev_timer_start(iv->loop, &iv->tick_w);
    register_metrics(iv, reg);
    return iv;
oom:
    if (err != NULL) {
        *err = strdup("out of memory");
    }
    return NULL;
}

int
node_inval_start(struct node_inval *iv)
{
    int rc = pthread_create(&iv->thread, NULL, loop_main, iv);

    if (rc != 0) {
        return -rc;
    }
    iv->started = true;
    return 0;
}

void
node_inval_destroy(struct node_inval *iv)
{
    if (iv == NULL) {
        return;
    }
    if (iv->started) {
        ev_async_send(iv->loop, &iv->stop_w);
        pthread_join(iv->thread, NULL);
    } else if (iv->sub != NULL) {
        redisAsyncFree(iv->sub);
    }
    ev_timer_stop(iv->loop, &iv->tick_w);
    ev_async_stop(iv->loop, &iv->stop_w);
    ev_loop_destroy(iv->loop);
    pthread_mutex_lock(&iv->pub_lock);
    pub_close_locked(iv);
    pthread_mutex_unlock(&iv->pub_lock);
    pthread_mutex_destroy(&iv->pub_lock);
    free(iv->queue);
    free(iv);
}
