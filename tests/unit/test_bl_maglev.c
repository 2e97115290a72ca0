/*
 * Maglev table: sizes, argument checks, the fill algorithms against independent reference
 * implementations, shares, minimal disruption, order independence (in one process and
 * across two processes) and preferences. The acceptance criteria of issue 2 are
 * test_shares, test_removal_minimal_disruption and test_two_processes_identical.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "bl/bl_hash.h"
#include "bl/bl_maglev.h"

#define MAX_TEST_NODES 64
#define KEYS 1000000u

static const size_t test_ns[] = { 2, 3, 5, 16, 64 };
static const enum bl_maglev_algo algos[] = { BL_MAGLEV_RENDEZVOUS, BL_MAGLEV_POPULATE };
static const char *const algo_names[] = { "rendezvous", "populate" };

/* Node names as an operator would write them: "node-01".. */
struct names {
    char buf[MAX_TEST_NODES][40];
    const char *ptr[MAX_TEST_NODES];
    size_t n;
};

static void
names_init(struct names *nm, size_t n, const char *prefix)
{
    nm->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(nm->buf[i], sizeof(nm->buf[i]), "%s%02zu", prefix, i + 1);
        nm->ptr[i] = nm->buf[i];
    }
}

/* xorshift64* so shuffles are reproducible. */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void
shuffle(size_t *perm, size_t n, uint64_t seed)
{
    uint64_t s = seed | 1;

    for (size_t i = 0; i < n; i++) {
        perm[i] = i;
    }
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rnd(&s) % i);
        size_t t = perm[i - 1];

        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

static bool
is_prime_ref(uint32_t v)
{
    if (v < 2) {
        return false;
    }
    for (uint32_t d = 2; (uint64_t)d * d <= v; d++) {
        if (v % d == 0) {
            return false;
        }
    }
    return true;
}

/* Hash of the id "post-<k>"; the first KEYS are computed once (group setup). */
static uint64_t *key_hashes;

static uint64_t
key_hash(uint32_t k)
{
    char key[32];
    int len;

    if (key_hashes != NULL && k < KEYS) {
        return key_hashes[k];
    }
    len = snprintf(key, sizeof(key), "post-%u", k);
    return bl_hash64(key, (size_t)len);
}

static int
keys_setup(void **state)
{
    uint64_t *h = malloc(KEYS * sizeof(*h));

    (void)state;
    if (h == NULL) {
        return -1;
    }
    for (uint32_t k = 0; k < KEYS; k++) {
        h[k] = key_hash(k);
    }
    key_hashes = h;
    return 0;
}

static int
keys_teardown(void **state)
{
    (void)state;
    free(key_hashes);
    key_hashes = NULL;
    return 0;
}

/* ------------------------------------------------------------------------------------ */

static void
test_table_size(void **state)
{
    (void)state;
    assert_int_equal(bl_maglev_table_size(0), 65537);
    assert_int_equal(bl_maglev_table_size(3), 65537);
    assert_int_equal(bl_maglev_table_size(655), 65537);
    assert_int_equal(bl_maglev_table_size(1000), 100003);
    for (size_t n = 600; n < 5000; n += 97) {
        uint32_t m = bl_maglev_table_size(n);
        uint64_t lo = n * 100 > 65537 ? n * 100 : 65537;

        assert_true(is_prime_ref(m));
        assert_true(m >= lo);
        for (uint64_t v = lo; v < m; v++) {
            assert_false(is_prime_ref((uint32_t)v));      /* the smallest such prime */
        }
    }
    assert_int_equal(bl_maglev_table_size((size_t)BL_MAGLEV_MAX_SIZE), 0);
}

static void
test_bad_arguments(void **state)
{
    const char *dup[] = { "a", "b", "a" };
    const char *empty[] = { "a", "" };
    const char *withnull[] = { "a", NULL };
    const char *ok[] = { "a", "b" };
    uint32_t big[] = { 1, BL_MAGLEV_MAX_WEIGHT + 1 };

    (void)state;
    assert_null(bl_maglev_create(NULL, NULL, 2, 0));
    assert_null(bl_maglev_create(dup, NULL, 3, 0));
    assert_null(bl_maglev_create(empty, NULL, 2, 0));
    assert_null(bl_maglev_create(withnull, NULL, 2, 0));
    assert_null(bl_maglev_create(ok, NULL, 2, 65536));            /* not prime */
    assert_null(bl_maglev_create(ok, NULL, 2, 1));
    assert_null(bl_maglev_create(ok, big, 2, 0));
    assert_null(bl_maglev_create_algo(ok, NULL, 2, 0, (enum bl_maglev_algo)7));
    assert_null(bl_maglev_create_algo(dup, NULL, 3, 0, BL_MAGLEV_POPULATE));
    bl_maglev_destroy(NULL);
    /* a NULL table (none built yet) reads as empty */
    {
        int out[2];
        char d[65];

        assert_int_equal(bl_maglev_lookup(NULL, 42), -1);
        assert_int_equal(bl_maglev_preferences(NULL, 42, out, 2), 0);
        assert_int_equal(bl_maglev_size(NULL), 0);
        assert_int_equal(bl_maglev_nodes(NULL), 0);
        assert_null(bl_maglev_slots(NULL));
        bl_maglev_digest(NULL, d);
        assert_string_equal(d, "");
    }
}

static void
test_empty_tables(void **state)
{
    const char *names[] = { "a", "b" };
    uint32_t zero[] = { 0, 0 };
    int out[4];
    char d1[65];
    char d2[65];

    (void)state;
    for (size_t a = 0; a < 2; a++) {
        struct bl_maglev *m = bl_maglev_create_algo(NULL, NULL, 0, 0, algos[a]);
        struct bl_maglev *z = bl_maglev_create_algo(names, zero, 2, 0, algos[a]);

        assert_non_null(m);
        assert_non_null(z);
        assert_int_equal(bl_maglev_size(m), 65537);
        assert_int_equal(bl_maglev_nodes(m), 0);
        assert_int_equal(bl_maglev_nodes(z), 2);
        for (uint32_t k = 0; k < 1000; k++) {
            assert_int_equal(bl_maglev_lookup(m, key_hash(k)), -1);
            assert_int_equal(bl_maglev_lookup(z, key_hash(k)), -1);
            assert_int_equal(bl_maglev_preferences(z, key_hash(k), out, 4), 0);
        }
        bl_maglev_digest(m, d1);
        bl_maglev_digest(z, d2);
        assert_int_equal(strlen(d1), 64);
        assert_string_not_equal(d1, d2);                 /* names are part of the digest */
        bl_maglev_destroy(m);
        bl_maglev_destroy(z);
    }
}

/*
 * Reference implementations written from the definitions in docs/HASHING.md, as directly
 * as possible, to check the library's tables slot by slot (equal weights).
 */
static int
ref_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
ref_rendezvous(const char **sorted, size_t n, uint32_t size, int32_t *out)
{
    for (uint32_t s = 0; s < size; s++) {
        unsigned char key[4] = { (unsigned char)s, (unsigned char)(s >> 8),
                                 (unsigned char)(s >> 16), (unsigned char)(s >> 24) };
        uint64_t best = 0;

        out[s] = -1;
        for (size_t r = 0; r < n; r++) {
            uint64_t seed = XXH3_64bits_withSeed(sorted[r], strlen(sorted[r]),
                                                 0x6d61676c65767276ull);
            uint64_t h = XXH3_64bits_withSeed(key, 4, seed);

            if (out[s] < 0 || h > best) {
                best = h;
                out[s] = (int32_t)r;
            }
        }
    }
}

static void
ref_populate(const char **sorted, size_t n, uint32_t size, int32_t *out)
{
    uint64_t offset[MAX_TEST_NODES];
    uint64_t skip[MAX_TEST_NODES];
    uint64_t next[MAX_TEST_NODES] = { 0 };
    uint32_t filled = 0;

    for (size_t r = 0; r < n; r++) {
        size_t len = strlen(sorted[r]);

        offset[r] = XXH3_64bits_withSeed(sorted[r], len, 0x6d61676c65766f66ull) % size;
        skip[r] = XXH3_64bits_withSeed(sorted[r], len, 0x6d61676c6576736bull) % (size - 1) + 1;
    }
    for (uint32_t s = 0; s < size; s++) {
        out[s] = -1;
    }
    for (;;) {
        for (size_t r = 0; r < n; r++) {
            uint64_t c = (offset[r] + next[r] * skip[r]) % size;

            while (out[c] >= 0) {
                next[r]++;
                c = (offset[r] + next[r] * skip[r]) % size;
            }
            out[c] = (int32_t)r;
            next[r]++;
            if (++filled == size) {
                return;
            }
        }
    }
}

static void
test_matches_reference(void **state)
{
    static const uint32_t sizes[] = { 101, 1009, 65537 };
    static const size_t ns[] = { 1, 2, 3, 7, 16 };
    int32_t *want = malloc(65537 * sizeof(*want));

    (void)state;
    assert_non_null(want);
    for (size_t si = 0; si < 3; si++) {
        for (size_t ni = 0; ni < 5; ni++) {
            struct names nm;
            const char *sorted[MAX_TEST_NODES];
            size_t perm[MAX_TEST_NODES];
            const char *given[MAX_TEST_NODES];

            names_init(&nm, ns[ni], "ref-");
            memcpy(sorted, nm.ptr, ns[ni] * sizeof(sorted[0]));
            qsort(sorted, ns[ni], sizeof(sorted[0]), ref_cmp);
            shuffle(perm, ns[ni], 77 + ni);
            for (size_t i = 0; i < ns[ni]; i++) {
                given[i] = nm.ptr[perm[i]];
            }
            for (size_t a = 0; a < 2; a++) {
                struct bl_maglev *m = bl_maglev_create_algo(given, NULL, ns[ni], sizes[si],
                                                            algos[a]);
                const int32_t *slots;

                assert_non_null(m);
                slots = bl_maglev_slots(m);
                if (algos[a] == BL_MAGLEV_RENDEZVOUS) {
                    ref_rendezvous(sorted, ns[ni], sizes[si], want);
                } else {
                    ref_populate(sorted, ns[ni], sizes[si], want);
                }
                for (uint32_t s = 0; s < sizes[si]; s++) {
                    assert_true(slots[s] >= 0 && (size_t)slots[s] < ns[ni]);
                    assert_string_equal(given[slots[s]], sorted[want[s]]);
                }
                bl_maglev_destroy(m);
            }
        }
    }
    free(want);
}

/*
 * Pinned digests: the exact bytes of these tables are part of the contract (LBs of
 * different versions must agree). A change here is a protocol change: bump the digest
 * domain and say so in docs/HASHING.md.
 */
static void
test_pinned_digests(void **state)
{
    const char *names[] = { "n3", "n1", "n2" };
    uint32_t w[] = { 3, 1, 2 };                    /* n1:1 n2:2 n3:3 */
    char d[65];
    struct bl_maglev *m;

    (void)state;
    m = bl_maglev_create(names, NULL, 3, 0);
    assert_non_null(m);
    bl_maglev_digest(m, d);
    assert_string_equal(d, "0d032675146b9afbf1a9be499940428448559bb0b9db4408df670a2e573c24e9");
    bl_maglev_destroy(m);

    m = bl_maglev_create(names, w, 3, 0);
    assert_non_null(m);
    bl_maglev_digest(m, d);
    assert_string_equal(d, "dc65950ca4604462b6e573b8345ef19380959bba667c9d2656b9761d082b784b");
    bl_maglev_destroy(m);

    m = bl_maglev_create_algo(names, NULL, 3, 0, BL_MAGLEV_POPULATE);
    assert_non_null(m);
    bl_maglev_digest(m, d);
    assert_string_equal(d, "8def51f7012870c980e39875e0b0511854af24bcdcf537f429995fcbc829a962");
    bl_maglev_destroy(m);

    m = bl_maglev_create_algo(names, w, 3, 0, BL_MAGLEV_POPULATE);
    assert_non_null(m);
    bl_maglev_digest(m, d);
    assert_string_equal(d, "953dcf828b58ff17a43900d6eade9801f86bf1b1755af094617fc1ca4e73685f");
    bl_maglev_destroy(m);

    m = bl_maglev_create(NULL, NULL, 0, 0);
    assert_non_null(m);
    bl_maglev_digest(m, d);
    assert_string_equal(d, "a3eb59fdc584d51e924ea113e0705f518d7f1bd3ca02cc12b83f1fe9f7dbf4f7");
    bl_maglev_destroy(m);
}

static void
test_lookup_reduction(void **state)
{
    const char *names[] = { "a", "b", "c", "d", "e" };
    struct bl_maglev *m = bl_maglev_create(names, NULL, 5, 0);
    const int32_t *slots;
    uint32_t size;
    uint32_t hits[16] = { 0 };

    (void)state;
    assert_non_null(m);
    size = bl_maglev_size(m);
    slots = bl_maglev_slots(m);
    assert_int_equal(bl_maglev_slot_of(m, 0), 0);
    assert_int_equal(bl_maglev_slot_of(m, UINT64_MAX), size - 1);
    assert_int_equal(bl_maglev_slot_of(m, (uint64_t)1 << 63), size / 2);
    for (uint32_t k = 0; k < 200000; k++) {
        uint64_t h = key_hash(k);
        uint32_t s = bl_maglev_slot_of(m, h);

        assert_true(s < size);
        assert_int_equal(bl_maglev_lookup(m, h), slots[s]);
        hits[(uint64_t)s * 16 / size]++;
    }
    /* Keys spread evenly over the table (16 bands, binomial sd ~ 0.9% per band). */
    for (size_t b = 0; b < 16; b++) {
        assert_true(fabs(hits[b] / 12500.0 - 1.0) < 0.05);
    }
    bl_maglev_destroy(m);
}

/*
 * Issue 2: each node's share within 2% of 1/N for N in {2,3,5,16,64}, both of the slots
 * and of 1,000,000 keys. "2%" is read as 2 percentage points (|share - 1/N| <= 0.02), the
 * reading the removal bound "1/N + 2%" forces. Tighter bounds are also asserted:
 * - populate: slot counts differ by at most 1 (relative error < 0.1%);
 * - rendezvous: slot counts are binomial(M, 1/N), so each share is within 5 standard
 *   deviations (sd relative to 1/N is sqrt((N-1)/M): 0.4% at N=2, 3.1% at N=64); where
 *   that bound is below 2% relative (N <= 3), relative 2% is asserted as well.
 * Key shares add the sampling noise of 1,000,000 keys (5 sd of it).
 */
static void
test_shares(void **state)
{
    (void)state;
    for (size_t a = 0; a < 2; a++) {
        for (size_t t = 0; t < sizeof(test_ns) / sizeof(test_ns[0]); t++) {
            size_t n = test_ns[t];
            struct names nm;
            struct bl_maglev *m;
            const int32_t *slots;
            uint32_t size;
            size_t slot_cnt[MAX_TEST_NODES] = { 0 };
            size_t key_cnt[MAX_TEST_NODES] = { 0 };
            double p = 1.0 / (double)n;
            double worst_slot = 0;
            double worst_key = 0;
            size_t cmin = SIZE_MAX;
            size_t cmax = 0;

            names_init(&nm, n, "node-");
            m = bl_maglev_create_algo(nm.ptr, NULL, n, 0, algos[a]);
            assert_non_null(m);
            size = bl_maglev_size(m);
            slots = bl_maglev_slots(m);
            for (uint32_t s = 0; s < size; s++) {
                assert_true(slots[s] >= 0 && (size_t)slots[s] < n);
                slot_cnt[slots[s]]++;
            }
            for (uint32_t k = 0; k < KEYS; k++) {
                int o = bl_maglev_lookup(m, key_hash(k));

                assert_true(o >= 0 && (size_t)o < n);
                key_cnt[o]++;
            }
            for (size_t i = 0; i < n; i++) {
                double ss = (double)slot_cnt[i] / size;
                double ks = (double)key_cnt[i] / KEYS;
                double sd_slot = sqrt((1 - p) / (p * size));    /* relative */
                double sd_key = sqrt((1 - p) / (p * KEYS));

                /* The bound, absolute. */
                assert_true(fabs(ss - p) <= 0.02);
                assert_true(fabs(ks - p) <= 0.02);
                if (algos[a] == BL_MAGLEV_POPULATE) {
                    assert_true(fabs(ss / p - 1) < 0.001);
                    assert_true(fabs(ks / p - 1) <= 0.001 + 5 * sd_key);
                } else {
                    assert_true(fabs(ss / p - 1) <= 5 * sd_slot);
                    assert_true(fabs(ks / p - 1) <= 5 * sd_slot + 5 * sd_key);
                    if (5 * sd_slot <= 0.02) {
                        assert_true(fabs(ss / p - 1) <= 0.02);
                    }
                }
                worst_slot = fmax(worst_slot, fabs(ss / p - 1));
                worst_key = fmax(worst_key, fabs(ks / p - 1));
                cmin = slot_cnt[i] < cmin ? slot_cnt[i] : cmin;
                cmax = slot_cnt[i] > cmax ? slot_cnt[i] : cmax;
            }
            if (algos[a] == BL_MAGLEV_POPULATE) {
                assert_true(cmax - cmin <= 1);
            }
            print_message("%-10s N=%-2zu M=%u slots/node %zu..%zu, worst share error "
                          "relative to 1/N: slots %.2f%%, keys %.2f%% (abs %.3f pp)\n",
                          algo_names[a], n, size, cmin, cmax, worst_slot * 100,
                          worst_key * 100, worst_key * p * 100);
            bl_maglev_destroy(m);
        }
    }
}

/*
 * Weighted shares: a node of weight w gets w/sum(w) of the slots (populate: within one
 * slot per round; rendezvous: within 5 binomial sd), weight 0 gets nothing, and scaling
 * every weight by the same factor gives the same table.
 */
static void
test_weights(void **state)
{
    const char *names[] = { "w0", "w1", "w2", "w3", "w4", "zero" };
    uint32_t w[] = { 1, 2, 3, 4, 10, 0 };
    uint32_t w3x[] = { 3, 6, 9, 12, 30, 0 };
    const uint32_t total = 20;

    (void)state;
    for (size_t a = 0; a < 2; a++) {
        struct bl_maglev *m = bl_maglev_create_algo(names, w, 6, 0, algos[a]);
        struct bl_maglev *m3 = bl_maglev_create_algo(names, w3x, 6, 0, algos[a]);
        size_t cnt[6] = { 0 };
        uint32_t size;

        assert_non_null(m);
        assert_non_null(m3);
        size = bl_maglev_size(m);
        for (uint32_t s = 0; s < size; s++) {
            cnt[bl_maglev_slots(m)[s]]++;
        }
        assert_int_equal(cnt[5], 0);
        for (size_t i = 0; i < 5; i++) {
            double p = (double)w[i] / total;
            double share = (double)cnt[i] / size;
            double sd = sqrt((1 - p) / (p * size));

            if (algos[a] == BL_MAGLEV_POPULATE) {
                /* one round = 20 slots; the last partial round is the only slack */
                assert_true(fabs((double)cnt[i] - p * size) <= w[i]);
            } else {
                assert_true(fabs(share / p - 1) <= 5 * sd);
            }
            print_message("%-10s weight %2u: share %.4f want %.4f\n", algo_names[a], w[i],
                          share, p);
        }
        if (algos[a] == BL_MAGLEV_RENDEZVOUS) {
            assert_memory_equal(bl_maglev_slots(m), bl_maglev_slots(m3),
                                size * sizeof(int32_t));
        }
        bl_maglev_destroy(m);
        bl_maglev_destroy(m3);
    }
}

/* Counts, over the slots and over KEYS keys, what moves from <a> (names_a) to <b>. */
struct moved {
    size_t slots_moved;
    size_t slots_moved_not_removed;       /* moved although its owner survived */
    size_t keys_moved;
    size_t keys_moved_not_removed;
    size_t keys_owned_by_removed;
};

static void
compare_tables(const struct bl_maglev *a, const char *const *names_a,
               const struct bl_maglev *b, const char *const *names_b, const char *removed,
               struct moved *mv)
{
    uint32_t size = bl_maglev_size(a);

    memset(mv, 0, sizeof(*mv));
    assert_int_equal(size, bl_maglev_size(b));
    for (uint32_t s = 0; s < size; s++) {
        const char *oa = names_a[bl_maglev_slots(a)[s]];
        const char *ob = names_b[bl_maglev_slots(b)[s]];

        if (strcmp(oa, ob) != 0) {
            mv->slots_moved++;
            if (strcmp(oa, removed) != 0) {
                mv->slots_moved_not_removed++;
            }
        }
    }
    for (uint32_t k = 0; k < KEYS; k++) {
        uint64_t h = key_hash(k);
        const char *oa = names_a[bl_maglev_lookup(a, h)];
        const char *ob = names_b[bl_maglev_lookup(b, h)];

        if (strcmp(oa, removed) == 0) {
            mv->keys_owned_by_removed++;
        }
        if (strcmp(oa, ob) != 0) {
            mv->keys_moved++;
            if (strcmp(oa, removed) != 0) {
                mv->keys_moved_not_removed++;
            }
        }
    }
}

/*
 * Issue 2: removing one of N nodes moves no key that the removed node did not own, and
 * moves under 1/N + 2% of the keys overall. Checked on every slot and on 1,000,000 keys,
 * removing several different nodes (first, last and middle in name order, and others)
 * for every N, plus a weighted set. Then the paper's loop is measured for comparison:
 * it moves some keys of surviving nodes, which is why it is not the default.
 */
static void
check_removal(const char *const *names, const uint32_t *weights, size_t n, size_t victim,
              enum bl_maglev_algo algo, struct moved *mv)
{
    const char *rest[MAX_TEST_NODES];
    uint32_t rest_w[MAX_TEST_NODES];
    size_t j = 0;
    struct bl_maglev *full = bl_maglev_create_algo(names, weights, n, 0, algo);
    struct bl_maglev *less;

    for (size_t i = 0; i < n; i++) {
        if (i != victim) {
            rest[j] = names[i];
            rest_w[j] = weights != NULL ? weights[i] : 1;
            j++;
        }
    }
    less = bl_maglev_create_algo(rest, rest_w, n - 1, 0, algo);
    assert_non_null(full);
    assert_non_null(less);
    compare_tables(full, names, less, rest, names[victim], mv);
    bl_maglev_destroy(full);
    bl_maglev_destroy(less);
}

static void
test_removal_minimal_disruption(void **state)
{
    (void)state;
    for (size_t t = 1; t < sizeof(test_ns) / sizeof(test_ns[0]); t++) {
        size_t n = test_ns[t];
        struct names nm;
        size_t victims[] = { 0, n - 1, n / 2, n / 3, (n * 2) / 3 };
        double worst = 0;

        names_init(&nm, n, "node-");
        for (size_t v = 0; v < sizeof(victims) / sizeof(victims[0]); v++) {
            struct moved mv;

            check_removal(nm.ptr, NULL, n, victims[v], BL_MAGLEV_RENDEZVOUS, &mv);
            assert_int_equal(mv.slots_moved_not_removed, 0);
            assert_int_equal(mv.keys_moved_not_removed, 0);
            /* everything the removed node owned moved, nothing else */
            assert_int_equal(mv.keys_moved, mv.keys_owned_by_removed);
            assert_true((double)mv.keys_moved / KEYS < 1.0 / n + 0.02);
            worst = fmax(worst, (double)mv.keys_moved / KEYS);
        }
        print_message("rendezvous N=%-2zu remove one: worst moved %.3f%% of keys "
                      "(1/N = %.3f%%), 0 keys of surviving nodes moved\n",
                      n, worst * 100, 100.0 / n);
    }
    /* N=2 -> 1: everything lands on the survivor. */
    {
        struct names nm;
        struct moved mv;

        names_init(&nm, 2, "node-");
        check_removal(nm.ptr, NULL, 2, 1, BL_MAGLEV_RENDEZVOUS, &mv);
        assert_int_equal(mv.keys_moved_not_removed, 0);
        assert_int_equal(mv.keys_moved, mv.keys_owned_by_removed);
    }
    /* Weighted, including a removal that leaves equal weights (the unweighted path). */
    {
        const char *names[] = { "big", "a", "b", "c", "d", "e" };
        uint32_t w[] = { 5, 1, 1, 1, 1, 2 };
        uint32_t w2[] = { 2, 1, 1, 1, 1, 0 };

        for (size_t v = 0; v < 6; v++) {
            struct moved mv;

            check_removal(names, w, 6, v, BL_MAGLEV_RENDEZVOUS, &mv);
            assert_int_equal(mv.slots_moved_not_removed, 0);
            assert_int_equal(mv.keys_moved_not_removed, 0);
            assert_int_equal(mv.keys_moved, mv.keys_owned_by_removed);
        }
        for (size_t v = 0; v < 5; v++) {
            struct moved mv;

            check_removal(names, w2, 6, v, BL_MAGLEV_RENDEZVOUS, &mv);
            assert_int_equal(mv.slots_moved_not_removed, 0);
            assert_int_equal(mv.keys_moved_not_removed, 0);
        }
    }
}

/* Adding a node is the mirror image: only keys that move TO the new node move. */
static void
test_addition_minimal_disruption(void **state)
{
    struct names nm;

    (void)state;
    names_init(&nm, 17, "node-");
    for (size_t v = 0; v < 17; v += 4) {
        const char *rest[17];
        size_t j = 0;
        struct bl_maglev *less;
        struct bl_maglev *more;
        const int32_t *ls;
        const int32_t *ms;

        for (size_t i = 0; i < 17; i++) {
            if (i != v) {
                rest[j++] = nm.ptr[i];
            }
        }
        less = bl_maglev_create(rest, NULL, 16, 0);
        more = bl_maglev_create(nm.ptr, NULL, 17, 0);
        assert_non_null(less);
        assert_non_null(more);
        ls = bl_maglev_slots(less);
        ms = bl_maglev_slots(more);
        for (uint32_t s = 0; s < bl_maglev_size(more); s++) {
            if (strcmp(rest[ls[s]], nm.ptr[ms[s]]) != 0) {
                assert_int_equal(ms[s], (int)v);
            }
        }
        bl_maglev_destroy(less);
        bl_maglev_destroy(more);
    }
}

/* The paper's loop, measured: how many keys of surviving nodes move on a removal. */
static void
test_populate_disruption_measured(void **state)
{
    (void)state;
    for (size_t t = 1; t < sizeof(test_ns) / sizeof(test_ns[0]); t++) {
        size_t n = test_ns[t];
        struct names nm;
        struct moved mv;

        names_init(&nm, n, "node-");
        check_removal(nm.ptr, NULL, n, n / 2, BL_MAGLEV_POPULATE, &mv);
        /* Everything the removed node owned still moves; the collateral stays small. */
        assert_true(mv.keys_moved >= mv.keys_owned_by_removed);
        assert_true((double)mv.keys_moved / KEYS < 1.0 / n + 0.02);
        assert_true((double)mv.keys_moved_not_removed / KEYS < 0.02);
        print_message("populate   N=%-2zu remove one: moved %.3f%% of keys, of which "
                      "%.3f%% belonged to surviving nodes\n", n,
                      100.0 * mv.keys_moved / KEYS, 100.0 * mv.keys_moved_not_removed / KEYS);
    }
}

/* Same set in different orders, same process: same digest, same owner names per slot. */
static void
test_order_independence(void **state)
{
    struct names nm;
    uint32_t w[MAX_TEST_NODES];

    (void)state;
    names_init(&nm, 40, "host-");
    for (size_t i = 0; i < 40; i++) {
        w[i] = (uint32_t)(i % 4);                 /* includes weight 0 */
    }
    for (size_t a = 0; a < 2; a++) {
        for (int weighted = 0; weighted < 2; weighted++) {
            struct bl_maglev *ref = bl_maglev_create_algo(nm.ptr, weighted ? w : NULL, 40, 0,
                                                          algos[a]);
            char dref[65];

            assert_non_null(ref);
            bl_maglev_digest(ref, dref);
            for (uint64_t seed = 1; seed <= 4; seed++) {
                size_t perm[MAX_TEST_NODES];
                const char *names[MAX_TEST_NODES];
                uint32_t pw[MAX_TEST_NODES];
                struct bl_maglev *m;
                char d[65];

                shuffle(perm, 40, seed * 1000 + a);
                for (size_t i = 0; i < 40; i++) {
                    names[i] = nm.ptr[perm[i]];
                    pw[i] = w[perm[i]];
                }
                m = bl_maglev_create_algo(names, weighted ? pw : NULL, 40, 0, algos[a]);
                assert_non_null(m);
                bl_maglev_digest(m, d);
                assert_string_equal(d, dref);
                for (uint32_t s = 0; s < bl_maglev_size(m); s++) {
                    assert_string_equal(names[bl_maglev_slots(m)[s]],
                                        nm.ptr[bl_maglev_slots(ref)[s]]);
                }
                bl_maglev_destroy(m);
            }
            bl_maglev_destroy(ref);
        }
    }
}

/*
 * Child mode (this binary re-executed with "--child ALGO SEED"): builds the 64-node test
 * set in an order shuffled by SEED and writes the digest, then the owner's name of every
 * slot, one per line, to stdout.
 */
static int
child_main(int algo, uint64_t seed)
{
    struct names nm;
    size_t perm[MAX_TEST_NODES];
    const char *names[MAX_TEST_NODES];
    struct bl_maglev *m;
    char d[65];

    names_init(&nm, 64, "node-");
    shuffle(perm, 64, seed);
    for (size_t i = 0; i < 64; i++) {
        names[i] = nm.ptr[perm[i]];
    }
    m = bl_maglev_create_algo(names, NULL, 64, 0, (enum bl_maglev_algo)algo);
    if (m == NULL) {
        return 1;
    }
    bl_maglev_digest(m, d);
    printf("%s\n", d);
    for (uint32_t s = 0; s < bl_maglev_size(m); s++) {
        printf("%s\n", names[bl_maglev_slots(m)[s]]);
    }
    bl_maglev_destroy(m);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* Runs a child and returns its whole stdout (malloc'ed, NUL-terminated). */
static char *
run_child(int algo, uint64_t seed)
{
    int pfd[2];
    pid_t pid;
    char *out = NULL;
    size_t len = 0;
    size_t cap = 0;
    int status;
    char self[4096];
    ssize_t n;

    /* The path of this binary, resolved before the fork: under valgrind /proc/self/exe
     * itself is valgrind's tool, but its readlink() answers with the client's path. */
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char a[16];
        char s[32];

        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        snprintf(a, sizeof(a), "%d", algo);
        snprintf(s, sizeof(s), "%llu", (unsigned long long)seed);
        execl(self, "test_bl_maglev", "--child", a, s, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    for (;;) {
        ssize_t r;

        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            out = realloc(out, cap + 1);
            assert_non_null(out);
        }
        r = read(pfd[0], out + len, cap - len);
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
    }
    close(pfd[0]);
    out[len] = '\0';
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return out;
}

/*
 * Issue 2: two processes given the same node set (in different orders) build
 * byte-identical tables: equal digests and the same owner name for every slot. The
 * children are fresh exec'ed processes (own address space layout, own heap).
 */
static void
test_two_processes_identical(void **state)
{
    (void)state;
    for (size_t a = 0; a < 2; a++) {
        char *one = run_child((int)algos[a], 11);
        char *two = run_child((int)algos[a], 987654321);
        size_t lines = 0;

        assert_true(strlen(one) > 64 + 65537 * 2);
        for (const char *p = one; *p != '\0'; p++) {
            lines += *p == '\n';
        }
        assert_int_equal(lines, 1 + bl_maglev_table_size(64));
        assert_memory_equal(one, two, 64);                /* digests */
        assert_string_equal(one, two);                    /* every slot's owner */
        free(one);
        free(two);
    }
}

/*
 * Preferences: the owner first, then distinct owners in the order the table walk meets
 * them (checked against a direct walk), never a weight-0 node, count min(max, active).
 */
static void
test_preferences(void **state)
{
    struct names nm;
    uint32_t w[12];

    (void)state;
    names_init(&nm, 12, "p-");
    for (size_t i = 0; i < 12; i++) {
        w[i] = i == 3 ? 0 : 1;
    }
    for (size_t a = 0; a < 2; a++) {
        struct bl_maglev *m = bl_maglev_create_algo(nm.ptr, w, 12, 0, algos[a]);
        const int32_t *slots;
        uint32_t size;

        assert_non_null(m);
        slots = bl_maglev_slots(m);
        size = bl_maglev_size(m);
        for (uint32_t k = 0; k < 5000; k++) {
            uint64_t h = key_hash(k);
            int out[16];
            int want[16];
            size_t nwant = 0;
            size_t got = bl_maglev_preferences(m, h, out, 16);
            uint32_t s = bl_maglev_slot_of(m, h);

            for (uint32_t step = 0; step < size && nwant < 11; step++) {
                int o = slots[(s + step) % size];
                bool seen = false;

                for (size_t i = 0; i < nwant; i++) {
                    seen |= want[i] == o;
                }
                if (!seen) {
                    want[nwant++] = o;
                }
            }
            assert_int_equal(got, 11);                    /* 12 nodes, one of weight 0 */
            assert_int_equal(nwant, 11);
            assert_memory_equal(out, want, 11 * sizeof(int));
            assert_int_equal(out[0], bl_maglev_lookup(m, h));
            for (size_t i = 0; i < got; i++) {
                assert_int_not_equal(out[i], 3);
            }
            assert_int_equal(bl_maglev_preferences(m, h, out, 2), 2);
            assert_memory_equal(out, want, 2 * sizeof(int));
            assert_int_equal(bl_maglev_preferences(m, h, out, 0), 0);
        }
        bl_maglev_destroy(m);
    }
}

/*
 * Fallbacks are the slot's rendezvous ranking: for ANY set R of removed nodes, the owner
 * of a key in the table built without R is the first of the key's fallbacks not in R.
 * Checked on 50,000 keys for six random R, unweighted and weighted; plus the
 * basic shape (owner first, distinct, no weight-0 node, clamped counts).
 */
static void
check_fallbacks_vs_removals(const char *const *names, const uint32_t *weights, size_t n,
                            uint64_t seed)
{
    enum { FB_KEYS = 50000 };
    struct bl_maglev *m = bl_maglev_create(names, weights, n, 0);
    int *fb = malloc((size_t)FB_KEYS * n * sizeof(*fb));
    size_t active = 0;
    uint64_t rs = seed;

    assert_non_null(m);
    assert_non_null(fb);
    for (size_t i = 0; i < n; i++) {
        active += weights == NULL || weights[i] > 0;
    }
    for (uint32_t k = 0; k < FB_KEYS; k++) {
        int *f = fb + (size_t)k * n;
        size_t got = bl_maglev_fallbacks(m, key_hash(k), f, n);

        assert_int_equal(got, active);
        assert_int_equal(f[0], bl_maglev_lookup(m, key_hash(k)));
        for (size_t i = 0; i < got; i++) {
            assert_true(f[i] >= 0 && (size_t)f[i] < n);
            assert_true(weights == NULL || weights[f[i]] > 0);
            for (size_t j = 0; j < i; j++) {
                assert_int_not_equal(f[i], f[j]);
            }
        }
    }
    for (size_t trial = 0; trial < 6; trial++) {
        bool removed[MAX_TEST_NODES] = { false };
        const char *rest[MAX_TEST_NODES];
        uint32_t rest_w[MAX_TEST_NODES];
        size_t nrem = 1 + (size_t)(rnd(&rs) % (n - 1));
        size_t j = 0;
        struct bl_maglev *less;
        size_t checked = 0;

        for (size_t c = 0; c < nrem; c++) {
            removed[rnd(&rs) % n] = true;
        }
        for (size_t i = 0; i < n; i++) {
            if (!removed[i]) {
                rest[j] = names[i];
                rest_w[j] = weights != NULL ? weights[i] : 1;
                j++;
            }
        }
        less = bl_maglev_create(rest, rest_w, j, 0);
        assert_non_null(less);
        for (uint32_t k = 0; k < FB_KEYS; k++) {
            const int *f = fb + (size_t)k * n;
            int owner = bl_maglev_lookup(less, key_hash(k));
            size_t i = 0;

            while (i < active && removed[f[i]]) {
                i++;
            }
            if (i == active) {
                assert_int_equal(owner, -1);        /* every active node removed */
                continue;
            }
            assert_true(owner >= 0);
            assert_string_equal(rest[owner], names[f[i]]);
            checked += i > 0;
        }
        assert_true(checked > 0);               /* some keys did fall back */
        bl_maglev_destroy(less);
    }
    free(fb);
    bl_maglev_destroy(m);
}

static void
test_fallbacks(void **state)
{
    struct names nm;
    uint32_t w[16];
    int out[BL_MAGLEV_MAX_FALLBACKS + 8];

    (void)state;
    names_init(&nm, 16, "node-");
    check_fallbacks_vs_removals(nm.ptr, NULL, 16, 5);
    for (size_t i = 0; i < 16; i++) {
        w[i] = (uint32_t)(i % 5);                  /* 0..4, four nodes of weight 0 */
    }
    check_fallbacks_vs_removals(nm.ptr, w, 16, 6);

    /* clamps: max, active count, BL_MAGLEV_MAX_FALLBACKS */
    {
        struct bl_maglev *m = bl_maglev_create(nm.ptr, w, 16, 0);

        assert_non_null(m);
        assert_int_equal(bl_maglev_fallbacks(m, 1, out, 2), 2);
        assert_int_equal(bl_maglev_fallbacks(m, 1, out, 0), 0);
        assert_int_equal(bl_maglev_fallbacks(m, 1, out, 100), 12);
        assert_int_equal(bl_maglev_fallbacks(NULL, 1, out, 2), 0);
        bl_maglev_destroy(m);
    }
    {
        char buf[80][16];
        const char *many[80];
        struct bl_maglev *m;

        for (size_t i = 0; i < 80; i++) {
            snprintf(buf[i], sizeof(buf[i]), "m%zu", i);
            many[i] = buf[i];
        }
        m = bl_maglev_create(many, NULL, 80, 0);
        assert_non_null(m);
        assert_int_equal(bl_maglev_fallbacks(m, 7, out, BL_MAGLEV_MAX_FALLBACKS + 8),
                         BL_MAGLEV_MAX_FALLBACKS);
        assert_int_equal(out[0], bl_maglev_lookup(m, 7));
        bl_maglev_destroy(m);
    }
    /* populate tables: fallbacks are the preferences */
    {
        struct bl_maglev *m = bl_maglev_create_algo(nm.ptr, NULL, 16, 0, BL_MAGLEV_POPULATE);
        int pref[16];

        assert_non_null(m);
        for (uint32_t k = 0; k < 1000; k++) {
            size_t a = bl_maglev_fallbacks(m, key_hash(k), out, 16);
            size_t b = bl_maglev_preferences(m, key_hash(k), pref, 16);

            assert_int_equal(a, b);
            assert_memory_equal(out, pref, a * sizeof(int));
        }
        bl_maglev_destroy(m);
    }
}

/* Build cost stays small at the sizes the LB uses (rebuilt on every node-set change). */
static void
test_build_time(void **state)
{
    struct names nm;
    struct timespec t0;
    struct timespec t1;

    (void)state;
    names_init(&nm, 64, "node-");
    for (size_t a = 0; a < 2; a++) {
        struct bl_maglev *m;
        double ms;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        m = bl_maglev_create_algo(nm.ptr, NULL, 64, 0, algos[a]);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_non_null(m);
        ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        print_message("%-10s build N=64 M=%u: %.1f ms\n", algo_names[a], bl_maglev_size(m), ms);
        assert_true(ms < 2000);
        bl_maglev_destroy(m);
    }
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_size),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_empty_tables),
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_pinned_digests),
        cmocka_unit_test(test_lookup_reduction),
        cmocka_unit_test(test_shares),
        cmocka_unit_test(test_weights),
        cmocka_unit_test(test_removal_minimal_disruption),
        cmocka_unit_test(test_addition_minimal_disruption),
        cmocka_unit_test(test_populate_disruption_measured),
        cmocka_unit_test(test_order_independence),
        cmocka_unit_test(test_two_processes_identical),
        cmocka_unit_test(test_preferences),
        cmocka_unit_test(test_fallbacks),
        cmocka_unit_test(test_build_time),
    };

    if (argc == 4 && strcmp(argv[1], "--child") == 0) {
        return child_main(atoi(argv[2]), strtoull(argv[3], NULL, 10));
    }
    return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
