/*
 * LMDB-specific store tests: several processes on one environment, kill -9 during a
 * stream of acknowledged writes, a full map, a full disk, a read-only data directory,
 * and the durable write cost (printed, not asserted).
 *
 * Children report through pipes and exit codes; they never run cmocka assertions. A child
 * exits 77 when a mechanism the test needs (mount namespaces) is unavailable here.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "node_store.h"

#define SKIP_EXIT 77

struct fixture {
    char dir[256];                      /* temp dir */
    char path[300];                     /* store path: dir/data */
    struct bl_conf_store conf;
};

static void
rm_rf(const char *path)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) {
        fprintf(stderr, "warning: could not remove %s\n", path);
    }
}

static int
fx_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/blog-lmdb-test.XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/data", f->dir);
    f->conf.driver = BL_STORE_LMDB;
    f->conf.path = f->path;
    f->conf.map_size = 256ull << 20;
    *state = f;
    return 0;
}

static int
fx_teardown(void **state)
{
    struct fixture *f = *state;

    rm_rf(f->dir);
    free(f);
    return 0;
}

static struct node_store *
open_store(const struct bl_conf_store *conf)
{
    struct node_store *s = NULL;
    char *err = NULL;
    int rc = node_store_open_rc(conf, &s, &err);

    if (rc != 0) {
        fprintf(stderr, "open %s: %d %s\n", conf->path, rc, err != NULL ? err : "");
    }
    free(err);
    return s;
}

static void
make_post(struct node_post *p, size_t body_len)
{
    memset(p, 0, sizeof(*p));
    node_store_new_id(p->id);
    p->title = strdup("title");
    p->author = strdup("author");
    p->body = malloc(body_len + 1);
    memset(p->body, 'b', body_len);
    p->body[body_len] = '\0';
    p->created_ms = p->updated_ms = 1764288000000ull;
    p->version = 1;
}

/* In a child: on failure print why (with the store's reason) and exit 1. */
#define CK(cond)                                                                        \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "child %ld: check failed at line %d: %s (last error: %s)\n", \
                    (long)getpid(), __LINE__, #cond, node_store_last_error());          \
            _exit(1);                                                                   \
        }                                                                               \
    } while (0)

static int
wait_child(pid_t pid)
{
    int st = 0;

    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st)) {
        return WEXITSTATUS(st);
    }
    fprintf(stderr, "child %ld died with signal %d\n", (long)pid,
            WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    return -1;
}

static int
read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return got == 0 ? 0 : -1;
        }
        got += (size_t)r;
    }
    return 1;
}

static int
cmp_desc(const void *a, const void *b)
{
    return -strcmp(a, b);
}

/* ---- two processes, one environment ---- */

#define MP_PER_CHILD 1000

/*
 * Child of test_two_processes: waits for <go>, inserts MP_PER_CHILD posts reporting each
 * id on <out>, then waits for <go> again and checks that all 2 * MP_PER_CHILD posts are
 * listed, strictly id-descending, each readable.
 */
static void
mp_child(const struct bl_conf_store *conf, int go, int out)
{
    struct node_store *s = open_store(conf);
    struct node_post_list l;
    char c, cursor[NODE_ID_LEN + 1] = "";
    size_t total = 0;
    bool more;
    int i;

    CK(s != NULL);
    CK(read_full(go, &c, 1) == 1);
    for (i = 0; i < MP_PER_CHILD; i++) {
        struct node_post p;

        make_post(&p, 200);
        CK(s->ops->insert(s, &p) == 0);
        CK(write(out, p.id, NODE_ID_LEN) == NODE_ID_LEN);
        node_post_deinit(&p);
    }
    CK(read_full(go, &c, 1) == 1);
    do {
        size_t k;

        CK(s->ops->list(s, cursor[0] ? cursor : NULL, 300, &l) == 0);
        for (k = 0; k < l.n; k++) {
            struct node_post g;

            CK(cursor[0] == '\0' || strcmp(l.posts[k].id, cursor) < 0);
            memcpy(cursor, l.posts[k].id, sizeof(cursor));
            CK(s->ops->get(s, l.posts[k].id, &g) == 0);
            node_post_deinit(&g);
            total++;
        }
        more = l.more;
        node_post_list_deinit(&l);
    } while (more);
    CK(total == 2 * MP_PER_CHILD);
    node_store_close(s);
    _exit(0);
}

static void
test_two_processes(void **state)
{
    struct fixture *f = *state;
    int go[2][2], out[2][2];
    pid_t pid[2];
    char (*ids)[NODE_ID_LEN + 1] = calloc(2 * MP_PER_CHILD, sizeof(*ids));
    size_t n = 0, i;
    struct node_store *s;
    struct node_post_list l;
    int k;

    /* Create the environment first, then let both children open it concurrently. */
    s = open_store(&f->conf);
    assert_non_null(s);
    node_store_close(s);
    for (k = 0; k < 2; k++) {
        assert_int_equal(pipe(go[k]), 0);
        assert_int_equal(pipe(out[k]), 0);
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0) {
            close(go[k][1]);
            close(out[k][0]);
            mp_child(&f->conf, go[k][0], out[k][1]);
        }
        close(go[k][0]);
        close(out[k][1]);
    }
    for (k = 0; k < 2; k++) {
        assert_int_equal(write(go[k][1], "g", 1), 1);
    }
    /* Collect both id streams (they run concurrently; read them in turns). */
    {
        struct pollfd pfd[2] = { { out[0][0], POLLIN, 0 }, { out[1][0], POLLIN, 0 } };
        size_t per[2] = { 0, 0 };

        while (per[0] < MP_PER_CHILD || per[1] < MP_PER_CHILD) {
            assert_true(poll(pfd, 2, 20000) > 0);
            for (k = 0; k < 2; k++) {
                if (pfd[k].revents != 0 && per[k] < MP_PER_CHILD) {
                    assert_int_equal(read_full(out[k][0], ids[n], NODE_ID_LEN), 1);
                    ids[n][NODE_ID_LEN] = '\0';
                    n++;
                    per[k]++;
                }
            }
        }
    }
    for (k = 0; k < 2; k++) {
        assert_int_equal(write(go[k][1], "v", 1), 1);
    }
    for (k = 0; k < 2; k++) {
        assert_int_equal(wait_child(pid[k]), 0);
        close(go[k][1]);
        close(out[k][0]);
    }

    /* The parent sees exactly the 2,000 acknowledged ids, in id order. */
    qsort(ids, n, sizeof(*ids), cmp_desc);
    s = open_store(&f->conf);
    assert_non_null(s);
    i = 0;
    {
        char cursor[NODE_ID_LEN + 1] = "";
        bool more;

        do {
            size_t j;

            assert_int_equal(s->ops->list(s, cursor[0] ? cursor : NULL, 1000, &l), 0);
            for (j = 0; j < l.n; j++) {
                assert_true(i < n);
                assert_string_equal(l.posts[j].id, ids[i]);
                i++;
            }
            if (l.n > 0) {
                memcpy(cursor, l.posts[l.n - 1].id, sizeof(cursor));
            }
            more = l.more;
            node_post_list_deinit(&l);
        } while (more);
    }
    assert_int_equal(i, 2 * MP_PER_CHILD);
    node_store_close(s);
    free(ids);
}

/* ---- conditional replace across processes ---- */

#define XP_PROCS 2
#define XP_THREADS 4
#define XP_ATTEMPTS 25

struct xp_arg {
    struct node_store *s;
    const char *id;
    int out;                            /* pipe: one uint64 per won version */
    pthread_mutex_t *mu;
};

static void *
xp_thread(void *arg)
{
    struct xp_arg *a = arg;
    int i;

    for (i = 0; i < XP_ATTEMPTS; i++) {
        struct node_post cur;
        uint64_t v;
        int rc;

        if (a->s->ops->get(a->s, a->id, &cur) != 0) {
            uint64_t bad = UINT64_MAX;

            pthread_mutex_lock(a->mu);
            (void)!write(a->out, &bad, sizeof(bad));
            pthread_mutex_unlock(a->mu);
            continue;
        }
        v = cur.version;
        rc = a->s->ops->replace(a->s, &cur, v);
        if (rc == 0 || rc != BL_ECONFLICT) {
            uint64_t rep = rc == 0 ? cur.version : UINT64_MAX;

            pthread_mutex_lock(a->mu);
            (void)!write(a->out, &rep, sizeof(rep));
            pthread_mutex_unlock(a->mu);
        }
        node_post_deinit(&cur);
    }
    return NULL;
}

static void
test_cross_process_replace(void **state)
{
    struct fixture *f = *state;
    struct node_store *s = open_store(&f->conf);
    struct node_post p, got;
    int out[2], k;
    pid_t pid[XP_PROCS];
    unsigned char won[XP_PROCS * XP_THREADS * XP_ATTEMPTS + 2] = { 0 };
    uint64_t v, wins = 0;

    assert_non_null(s);
    make_post(&p, 100);
    assert_int_equal(s->ops->insert(s, &p), 0);
    node_store_close(s);
    assert_int_equal(pipe(out), 0);
    for (k = 0; k < XP_PROCS; k++) {
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0) {
            pthread_t th[XP_THREADS];
            pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
            struct xp_arg a;
            int t;

            close(out[0]);
            a.s = open_store(&f->conf);
            CK(a.s != NULL);
            a.id = p.id;
            a.out = out[1];
            a.mu = &mu;
            for (t = 0; t < XP_THREADS; t++) {
                CK(pthread_create(&th[t], NULL, xp_thread, &a) == 0);
            }
            for (t = 0; t < XP_THREADS; t++) {
                pthread_join(th[t], NULL);
            }
            node_store_close(a.s);
            _exit(0);
        }
    }
    close(out[1]);
    while (read_full(out[0], &v, sizeof(v)) == 1) {
        assert_true(v != UINT64_MAX);   /* no error other than a conflict */
        assert_true(v >= 2 && v < sizeof(won));
        won[v]++;
        wins++;
    }
    close(out[0]);
    for (k = 0; k < XP_PROCS; k++) {
        assert_int_equal(wait_child(pid[k]), 0);
    }
    for (v = 2; v < wins + 2; v++) {
        assert_int_equal(won[v], 1);    /* exactly one winner per version */
    }
    s = open_store(&f->conf);
    assert_non_null(s);
    assert_int_equal(s->ops->get(s, p.id, &got), 0);
    assert_int_equal(got.version, wins + 1);
    node_post_deinit(&got);
    node_store_close(s);
    node_post_deinit(&p);
    fprintf(stderr, "# cross-process replace: %llu winners\n", (unsigned long long)wins);
}

/* ---- kill -9 during a stream of acknowledged inserts ---- */

struct reader_scan {
    long pid;
    int slots;
};

static int
reader_line(const char *msg, void *ctx)
{
    struct reader_scan *r = ctx;
    long pid;

    if (sscanf(msg, "%ld", &pid) == 1 && pid == r->pid) {
        r->slots++;
    }
    return 0;
}

/*
 * Reader slots in the lock table that belong to <pid>. Counted in a forked child that
 * opens the env raw (read-only), so this process's own environment (if any) is never
 * opened twice: closing a second handle would drop this process's fcntl liveness lock.
 */
static int
reader_slots_of(const char *path, pid_t pid)
{
    pid_t c = fork();

    assert_true(c >= 0);
    if (c == 0) {
        MDB_env *env;
        struct reader_scan r = { (long)pid, 0 };

        if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 4) != 0
            || mdb_env_open(env, path, MDB_RDONLY | MDB_NOTLS, 0640) != 0) {
            _exit(255);
        }
        mdb_reader_list(env, reader_line, &r);
        mdb_env_close(env);
        _exit(r.slots > 100 ? 100 : r.slots);
    }
    return wait_child(c);
}

/* Child: opens the store and holds it open until <ctl> closes (a surviving cluster node). */
static void
holder_child(const struct bl_conf_store *conf, int ctl, int ready)
{
    struct node_store *s = open_store(conf);
    char c;

    CK(s != NULL);
    CK(write(ready, "r", 1) == 1);
    while (read(ctl, &c, 1) > 0) {
    }
    node_store_close(s);
    _exit(0);
}

static void
test_kill9_acknowledged(void **state)
{
    struct fixture *f = *state;
    struct node_store *s = open_store(&f->conf);
    char (*acked)[NODE_ID_LEN + 1];
    size_t nacked = 0, cap = 200000, i;
    int out[2], hctl[2], hready[2];
    pid_t pid, holder;
    char c;

    assert_non_null(s);
    node_store_close(s);
    acked = calloc(cap, sizeof(*acked));
    assert_non_null(acked);

    /*
     * A holder keeps the env open throughout, like the other nodes of a cluster: without
     * it the next opener would get LMDB's exclusive lock and reset the reader table
     * anyway, hiding whether stale slots are cleared.
     */
    assert_int_equal(pipe(hctl), 0);
    assert_int_equal(pipe(hready), 0);
    holder = fork();
    assert_true(holder >= 0);
    if (holder == 0) {
        close(hctl[1]);
        close(hready[0]);
        holder_child(&f->conf, hctl[0], hready[1]);
    }
    close(hctl[0]);
    close(hready[1]);
    assert_int_equal(read_full(hready[0], &c, 1), 1);

    assert_int_equal(pipe(out), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(out[0]);
        close(hctl[1]);
        s = open_store(&f->conf);
        CK(s != NULL);
        for (;;) {
            struct node_post p, g;

            make_post(&p, 1500);
            CK(s->ops->insert(s, &p) == 0);
            /* Acknowledged: report it. A read keeps a reader slot in use, too. */
            CK(write(out[1], p.id, NODE_ID_LEN) == NODE_ID_LEN);
            CK(s->ops->get(s, p.id, &g) == 0);
            node_post_deinit(&g);
            node_post_deinit(&p);
        }
    }
    close(out[1]);
    /* Let it write for a while, then kill it in the middle of the stream. */
    while (nacked < 300) {
        assert_int_equal(read_full(out[0], acked[nacked], NODE_ID_LEN), 1);
        nacked++;
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    while (nacked < cap && read_full(out[0], acked[nacked], NODE_ID_LEN) == 1) {
        nacked++;
    }
    close(out[0]);
    assert_int_equal(wait_child(pid), -1);

    /* The dead writer's reader slot is still in the table... */
    assert_true(reader_slots_of(f->path, pid) >= 1);
    /* ...until a process opens the store (mdb_reader_check); the env opens cleanly. */
    s = open_store(&f->conf);
    assert_non_null(s);
    assert_int_equal(reader_slots_of(f->path, pid), 0);
    assert_int_equal(s->ops->health(s), 0);
    for (i = 0; i < nacked; i++) {
        struct node_post g;

        acked[i][NODE_ID_LEN] = '\0';
        assert_int_equal(s->ops->get(s, acked[i], &g), 0);
        assert_int_equal(g.version, 1);
        assert_int_equal(strlen(g.body), 1500);
        node_post_deinit(&g);
    }
    /* The writer lock the child may have held is recovered: writes work. */
    {
        struct node_post p;

        make_post(&p, 10);
        assert_int_equal(s->ops->insert(s, &p), 0);
        node_post_deinit(&p);
    }

    /* A reader killed while this store stays open: health() clears its slot. */
    {
        int rp[2];

        assert_int_equal(pipe(rp), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct node_store *s2 = open_store(&f->conf);
            struct node_post_list l;

            close(rp[0]);
            CK(s2 != NULL);
            CK(s2->ops->list(s2, NULL, 5, &l) == 0);
            node_post_list_deinit(&l);
            CK(write(rp[1], "r", 1) == 1);
            pause();
            _exit(0);
        }
        close(rp[1]);
        assert_int_equal(read_full(rp[0], &c, 1), 1);
        close(rp[0]);
        kill(pid, SIGKILL);
        assert_int_equal(wait_child(pid), -1);
        assert_true(reader_slots_of(f->path, pid) >= 1);
        usleep(1100 * 1000);            /* past the health cache */
        assert_int_equal(s->ops->health(s), 0);
        assert_int_equal(reader_slots_of(f->path, pid), 0);
    }
    node_store_close(s);
    close(hctl[1]);
    assert_int_equal(wait_child(holder), 0);
    close(hready[0]);
    fprintf(stderr, "# kill -9: %zu acknowledged inserts, all present\n", nacked);
    free(acked);
}

/* ---- map full ---- */

static void
test_map_full(void **state)
{
    struct fixture *f = *state;
    struct node_store *s;
    struct node_post first;
    struct node_post_list l;
    int rc = 0, n = 0;

    f->conf.map_size = 256 << 10;       /* 64 pages */
    s = open_store(&f->conf);
    assert_non_null(s);
    make_post(&first, 100);
    assert_int_equal(s->ops->insert(s, &first), 0);
    while (n < 10000) {
        struct node_post p;

        make_post(&p, 3000);
        rc = s->ops->insert(s, &p);
        node_post_deinit(&p);
        if (rc != 0) {
            break;
        }
        n++;
    }
    assert_int_equal(rc, BL_EFULL);
    assert_non_null(strstr(node_store_last_error(), "MDB_MAP_FULL"));
    /* A replace that grows the post fails the same way and changes nothing. */
    {
        struct node_post big = first;
        char *body = malloc(200000);

        memset(body, 'x', 199999);
        body[199999] = '\0';
        big.body = body;
        assert_int_equal(s->ops->replace(s, &big, 1), BL_EFULL);
        free(body);
    }
    /* Reads keep working, the failed txns left nothing behind. */
    {
        struct node_post g;

        assert_int_equal(s->ops->get(s, first.id, &g), 0);
        assert_int_equal(g.version, 1);
        node_post_deinit(&g);
    }
    assert_int_equal(s->ops->list(s, NULL, 1000, &l), 0);
    assert_int_equal(l.n, (size_t)n + 1);
    node_post_list_deinit(&l);
    assert_int_equal(s->ops->health(s), 0);
    /* Freeing space makes writes work again. */
    assert_int_equal(s->ops->remove(s, first.id, 1), 0);
    node_store_close(s);
    node_post_deinit(&first);
    fprintf(stderr, "# map full after %d posts\n", n + 1);
}

/*
 * ---- group commit: concurrent writes share commits, each keeps its own outcome. 16
 * threads on a small map: each inserts big posts until the map is full, and also races
 * for one shared id and one conditional replace. Every insert answered 0 is stored,
 * every one answered BL_EFULL is absent (rolled back alone), exactly one thread wins the
 * shared id and exactly one the replace of version 1.
 */
#define GC_THREADS 16
#define GC_MAX 400

struct gc_arg {
    struct node_store *s;
    const char *shared_id;
    pthread_barrier_t *bar;
    int shared_rc, replace_rc;
    char ok[GC_MAX][NODE_ID_LEN + 1];
    char full[GC_MAX][NODE_ID_LEN + 1];
    int nok, nfull, nother;
    char full_reason[128];
};

static void *
gc_thread(void *arg)
{
    struct gc_arg *a = arg;
    struct node_post p, r;

    make_post(&p, 10);
    memcpy(p.id, a->shared_id, NODE_ID_LEN + 1);
    make_post(&r, 20);
    memcpy(r.id, a->shared_id, NODE_ID_LEN + 1);
    pthread_barrier_wait(a->bar);
    a->shared_rc = a->s->ops->insert(a->s, &p);
    a->replace_rc = a->s->ops->replace(a->s, &r, 1);
    node_post_deinit(&p);
    node_post_deinit(&r);
    while (a->nok < GC_MAX && a->nfull < GC_MAX && a->nfull < 5) {
        int rc;

        make_post(&p, 3000);
        rc = a->s->ops->insert(a->s, &p);
        if (rc == 0) {
            memcpy(a->ok[a->nok++], p.id, NODE_ID_LEN + 1);
        } else if (rc == BL_EFULL) {
            snprintf(a->full_reason, sizeof(a->full_reason), "%s", node_store_last_error());
            memcpy(a->full[a->nfull++], p.id, NODE_ID_LEN + 1);
        } else {
            a->nother++;
        }
        node_post_deinit(&p);
    }
    return NULL;
}

static void
test_group_commit_outcomes(void **state)
{
    struct fixture *f = *state;
    struct node_store *s;
    struct gc_arg *a = calloc(GC_THREADS, sizeof(*a));
    pthread_t th[GC_THREADS];
    pthread_barrier_t bar;
    char shared[NODE_ID_LEN + 1];
    int shared_wins = 0, replace_wins = 0, nok = 0, nfull = 0;
    struct node_post g;

    assert_non_null(a);
    f->conf.map_size = 1024 << 10;      /* 256 pages: full after a few hundred posts */
    s = open_store(&f->conf);
    assert_non_null(s);
    node_store_new_id(shared);
    pthread_barrier_init(&bar, NULL, GC_THREADS);
    for (int i = 0; i < GC_THREADS; i++) {
        a[i].s = s;
        a[i].shared_id = shared;
        a[i].bar = &bar;
        assert_int_equal(pthread_create(&th[i], NULL, gc_thread, &a[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < GC_THREADS; i++) {
        if (a[i].shared_rc == 0) {
            shared_wins++;
        } else {
            assert_int_equal(a[i].shared_rc, BL_EEXIST);
        }
        if (a[i].replace_rc == 0) {
            replace_wins++;
        } else {
            assert_int_equal(a[i].replace_rc, BL_ECONFLICT);
        }
        assert_int_equal(a[i].nother, 0);
        for (int j = 0; j < a[i].nok; j++) {
            assert_int_equal(s->ops->get(s, a[i].ok[j], &g), 0);
            node_post_deinit(&g);
        }
        for (int j = 0; j < a[i].nfull; j++) {
            assert_int_equal(s->ops->get(s, a[i].full[j], &g), BL_ENOTFOUND);
        }
        if (a[i].nfull > 0) {
            assert_non_null(strstr(a[i].full_reason, "MDB_MAP_FULL"));
        }
        nok += a[i].nok;
        nfull += a[i].nfull;
    }
    assert_int_equal(shared_wins, 1);
    assert_int_equal(replace_wins, 1);
    assert_true(nfull > 0);
    assert_int_equal(s->ops->get(s, shared, &g), 0);
    assert_int_equal(g.version, 2);
    node_post_deinit(&g);
    fprintf(stderr, "# group commit: %d inserts stored, %d refused as map full\n", nok, nfull);
    node_store_close(s);
    free(a);
}

/* ---- disk full (ENOSPC): a 1 MiB tmpfs in a private mount namespace ---- */

static int
private_mount_ns(void)
{
    if (unshare(CLONE_NEWNS) != 0) {
        fprintf(stderr, "unshare(CLONE_NEWNS): %s\n", strerror(errno));
        return -1;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        fprintf(stderr, "make / private: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static void
write_file(const char *path, size_t size)
{
    FILE *fp = fopen(path, "wb");
    size_t i;

    CK(fp != NULL);
    for (i = 0; i < size; i++) {
        fputc((int)(i * 131 % 251), fp);
    }
    CK(fclose(fp) == 0);
}

static int
count_tmp_files(const char *assets_sub)
{
    char cmd[512];
    FILE *p;
    int n = -1;

    snprintf(cmd, sizeof(cmd), "find '%s' -name '.tmp-*' | wc -l", assets_sub);
    p = popen(cmd, "r");
    if (p != NULL) {
        if (fscanf(p, "%d", &n) != 1) {
            n = -1;
        }
        pclose(p);
    }
    return n;
}

static void
test_disk_full(void **state)
{
    struct fixture *f = *state;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct node_store *s;
        struct node_post p, g;
        char src[400], assets[400];
        int rc = 0, n = 0;

        if (private_mount_ns() != 0) {
            _exit(SKIP_EXIT);
        }
        CK(mkdir(f->path, 0750) == 0);
        if (mount("tmpfs", f->path, "tmpfs", 0, "size=1m,mode=0750") != 0) {
            fprintf(stderr, "mount tmpfs: %s\n", strerror(errno));
            _exit(SKIP_EXIT);
        }
        f->conf.map_size = 64ull << 20;  /* the map is larger than the disk */
        s = open_store(&f->conf);
        CK(s != NULL);
        /* An asset larger than the free space: BL_EFULL, no partial file left. */
        snprintf(src, sizeof(src), "%s/src.bin", f->dir);
        write_file(src, 3 << 20);
        rc = s->ops->asset_put(s,
            "aa00000000000000000000000000000000000000000000000000000000000001",
            "image/png", src, 3 << 20);
        CK(rc == BL_EFULL);
        snprintf(assets, sizeof(assets), "%s/assets", f->path);
        CK(count_tmp_files(assets) == 0);
        /* Posts until the disk is full. */
        make_post(&g, 10);
        CK(s->ops->insert(s, &g) == 0);
        while (n < 5000) {
            make_post(&p, 3000);
            rc = s->ops->insert(s, &p);
            node_post_deinit(&p);
            if (rc != 0) {
                break;
            }
            n++;
        }
        CK(rc == BL_EFULL);
        /* Reads still served; the store reopens cleanly. */
        {
            struct node_post r;

            CK(s->ops->get(s, g.id, &r) == 0);
            node_post_deinit(&r);
            node_store_close(s);
            s = open_store(&f->conf);
            CK(s != NULL);
            CK(s->ops->get(s, g.id, &r) == 0);
            node_post_deinit(&r);
        }
        node_store_close(s);
        node_post_deinit(&g);
        fprintf(stderr, "# disk full (ENOSPC) after %d posts\n", n + 1);
        umount2(f->path, MNT_DETACH);
        _exit(0);
    }
    {
        int rc = wait_child(pid);

        if (rc == SKIP_EXIT) {
            fprintf(stderr, "SKIP: disk-full test needs mount namespaces (unshare) here\n");
            skip();
        }
        assert_int_equal(rc, 0);
    }
}

/* ---- read-only data directory ---- */

static const char ro_sha[] =
    "bb00000000000000000000000000000000000000000000000000000000000002";

static void
test_read_only_dir(void **state)
{
    struct fixture *f = *state;
    struct node_store *s = open_store(&f->conf);
    struct node_post p;
    char src[400], empty[400];
    pid_t pid;

    /* A store with one post and one asset, then closed. */
    assert_non_null(s);
    make_post(&p, 50);
    assert_int_equal(s->ops->insert(s, &p), 0);
    snprintf(src, sizeof(src), "%s/src.bin", f->dir);
    {
        FILE *fp = fopen(src, "wb");

        assert_non_null(fp);
        fputs("asset bytes", fp);
        fclose(fp);
    }
    assert_int_equal(s->ops->asset_put(s, ro_sha, "image/gif", src, 11), 0);
    node_store_close(s);
    snprintf(empty, sizeof(empty), "%s/empty", f->dir);
    assert_int_equal(mkdir(empty, 0750), 0);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct node_post g;
        struct node_post_list l;
        struct node_asset a;
        struct bl_conf_store c2 = f->conf;
        char *err = NULL;
        int rc;

        /* Bind-mount the temp dir onto itself read-only, visible only in this child. */
        if (private_mount_ns() != 0) {
            _exit(SKIP_EXIT);
        }
        if (mount(f->dir, f->dir, NULL, MS_BIND | MS_REC, NULL) != 0
            || mount(NULL, f->dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0) {
            fprintf(stderr, "read-only bind mount: %s\n", strerror(errno));
            _exit(SKIP_EXIT);
        }
        CK(open(src, O_WRONLY) < 0 && errno == EROFS);

        /* The store opens read-only: reads work, every write is BL_EUNAVAIL with a reason. */
        s = open_store(&f->conf);
        CK(s != NULL);
        CK(s->ops->get(s, p.id, &g) == 0);
        CK(strcmp(g.body, p.body) == 0);
        CK(s->ops->list(s, NULL, 10, &l) == 0 && l.n == 1);
        node_post_list_deinit(&l);
        CK(s->ops->asset_get(s, ro_sha, &a) == 0 && a.size == 11);
        node_asset_deinit(&a);
        CK(s->ops->health(s) == BL_EUNAVAIL);
        CK(strstr(node_store_last_error(), "not writable") != NULL);
        CK(s->ops->insert(s, &p) == BL_EUNAVAIL);
        CK(strstr(node_store_last_error(), "not writable") != NULL);
        CK(s->ops->replace(s, &g, 0) == BL_EUNAVAIL);
        CK(s->ops->remove(s, p.id, 0) == BL_EUNAVAIL);
        CK(s->ops->asset_put(s, ro_sha, "image/gif", src, 11) == BL_EUNAVAIL);
        node_post_deinit(&g);
        node_store_close(s);

        /* A read-only directory without a store cannot be opened: BL_EUNAVAIL + reason. */
        c2.path = empty;
        s = NULL;
        rc = node_store_open_rc(&c2, &s, &err);
        CK(rc == BL_EUNAVAIL && s == NULL && err != NULL);
        fprintf(stderr, "# read-only empty dir: %s\n", err);
        free(err);
        /* A missing directory under a read-only parent: same. */
        snprintf(src, sizeof(src), "%s/missing/data", f->dir);
        c2.path = src;
        rc = node_store_open_rc(&c2, &s, &err);
        CK(rc == BL_EUNAVAIL && s == NULL && err != NULL);
        fprintf(stderr, "# read-only parent: %s\n", err);
        free(err);
        umount2(f->dir, MNT_DETACH);
        _exit(0);
    }
    {
        int rc = wait_child(pid);

        if (rc == SKIP_EXIT) {
            fprintf(stderr, "SKIP: read-only test needs a private mount namespace (unshare)\n");
            skip();
        }
        assert_int_equal(rc, 0);
    }
    /* Outside the namespace the store is untouched and writable. */
    s = open_store(&f->conf);
    assert_non_null(s);
    assert_int_equal(s->ops->health(s), 0);
    assert_int_equal(s->ops->remove(s, p.id, 1), 0);
    node_store_close(s);
    node_post_deinit(&p);
}

/* ---- the data dir turns unwritable while open (chattr +i): health notices ---- */

static int
set_immutable(const char *path, bool on)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    int flags = 0, rc = -1;

    if (fd < 0) {
        return -1;
    }
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
        rc = ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    close(fd);
    return rc;
}

static void
test_health_unwritable(void **state)
{
    struct fixture *f = *state;
    struct node_store *s = open_store(&f->conf);
    int rc;

    assert_non_null(s);
    assert_int_equal(s->ops->health(s), 0);
    if (set_immutable(f->path, true) != 0) {
        node_store_close(s);
        fprintf(stderr, "SKIP: FS_IOC_SETFLAGS immutable not supported: %s\n", strerror(errno));
        skip();
    }
    usleep(1100 * 1000);                /* past the 1 s health cache */
    rc = s->ops->health(s);
    set_immutable(f->path, false);
    assert_int_equal(rc, BL_EUNAVAIL);
    assert_non_null(strstr(node_store_last_error(), "not writable"));
    usleep(1100 * 1000);
    assert_int_equal(s->ops->health(s), 0);
    node_store_close(s);
}

/* ---- durable write cost (informational) ---- */

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
test_write_cost(void **state)
{
    struct fixture *f = *state;
    struct node_store *s = open_store(&f->conf);
    enum { N = 500 };
    uint64_t lat[N], total = 0;
    uint64_t g0, g1;
    int i;

    assert_non_null(s);
    for (i = 0; i < N; i++) {
        struct node_post p;
        uint64_t t0;

        make_post(&p, 1000);
        t0 = now_ns();
        assert_int_equal(s->ops->insert(s, &p), 0);
        lat[i] = now_ns() - t0;
        total += lat[i];
        node_post_deinit(&p);
    }
    qsort(lat, N, sizeof(lat[0]), cmp_u64);
    g0 = now_ns();
    for (i = 0; i < N; i++) {
        struct node_post_list l;

        struct node_post g;

        assert_int_equal(s->ops->list(s, NULL, 1, &l), 0);
        assert_int_equal(l.n, 1);
        assert_int_equal(s->ops->get(s, l.posts[0].id, &g), 0);
        node_post_deinit(&g);
        node_post_list_deinit(&l);
    }
    g1 = now_ns();
    fprintf(stderr, "# durable insert (1 KB body, fsync per commit): mean %.1f us, p50 %.1f us, "
            "p99 %.1f us; list(1)+get: %.1f us\n", (double)total / N / 1000.0,
            (double)lat[N / 2] / 1000.0, (double)lat[N * 99 / 100] / 1000.0,
            (double)(g1 - g0) / N / 1000.0);
    node_store_close(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_processes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cross_process_replace, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill9_acknowledged, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_map_full, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_outcomes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_read_only_dir, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_health_unwritable, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_cost, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests_name("store lmdb", tests, NULL, NULL);
}
