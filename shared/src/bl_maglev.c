#include "bl/bl_maglev.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "bl/bl_util.h"

/*
 * Everything below works in "rank space": node r is the r-th name in strcmp order. The
 * table is built from ranks only (so from the set, not the caller's order), digested, and
 * then translated to the caller's indexes. docs/HASHING.md explains the two algorithms.
 */

/* Seeds of the name hashes ("maglevof", "maglevsk", "maglevrv" in ASCII). */
#define SEED_OFFSET 0x6d61676c65766f66ull
#define SEED_SKIP 0x6d61676c6576736bull
#define SEED_RENDEZVOUS 0x6d61676c65767276ull

#define DIGEST_DOMAIN "blogscale-maglev-v1"

/* log2(1 + k / LOG_STEPS) in Q32 for k = 0..LOG_STEPS (see neglog2_q32()). */
#define LOG_BITS 12
#define LOG_STEPS (1u << LOG_BITS)

struct bl_maglev {
    uint32_t size;               /* slots (a prime) */
    size_t n;                    /* nodes given, weight 0 included */
    size_t active;               /* nodes with weight > 0 */
    enum bl_maglev_algo algo;
    int32_t *slots;              /* size entries: caller index or -1 */
    char digest[65];             /* computed once at build time */
    /* Rendezvous rankers, kept for bl_maglev_fallbacks() (NULL for populate tables). */
    uint64_t *seeds;             /* per rank: XXH3(name, SEED_RENDEZVOUS) */
    uint32_t *weights;           /* per rank */
    int32_t *rank_idx;           /* per rank: caller's index */
    uint64_t *log_table;         /* LOG_STEPS + 1 entries; NULL when uniform */
    bool uniform;                /* every active weight equal */
};

/* One node's draw for one slot under rendezvous. */
struct draw {
    uint64_t h;                  /* XXH3(le32(slot), seed of the node) */
    uint64_t e;                  /* -log2(h / 2^64) in Q32, weighted tables only */
    uint32_t w;
    uint32_t rank;
};

struct node {
    const char *name;
    size_t len;
    uint32_t weight;
    uint32_t idx;                /* caller's index */
};

static int
node_cmp(const void *a, const void *b)
{
    const struct node *x = a;
    const struct node *y = b;

    return strcmp(x->name, y->name);
}

static bool
is_prime(uint32_t v)
{
    if (v < 2) {
        return false;
    }
    if (v % 2 == 0) {
        return v == 2;
    }
    for (uint32_t d = 3; (uint64_t)d * d <= v; d += 2) {
        if (v % d == 0) {
            return false;
        }
    }
    return true;
}

uint32_t
bl_maglev_table_size(size_t max_nodes)
{
    uint64_t want = BL_MAGLEV_DEFAULT_SIZE;

    if (max_nodes > BL_MAGLEV_MAX_SIZE / 100) {
        return 0;
    }
    if ((uint64_t)max_nodes * 100 > want) {
        want = (uint64_t)max_nodes * 100;
    }
    for (uint64_t v = want; v <= BL_MAGLEV_MAX_SIZE; v++) {
        if (is_prime((uint32_t)v)) {
            return (uint32_t)v;
        }
    }
    return 0;
}

/*
 * Fractional part of log2(<y>) for <y> in [1, 2) given in Q31, as Q32. Bit-by-bit
 * squaring in integers only, so every host computes the same bits (a libm log() may
 * differ in the last ulp between libcs, which would make tables differ across hosts).
 */
static uint64_t
log2_frac_q32(uint64_t y)
{
    uint64_t r = 0;

    for (int b = 31; b >= 0; b--) {
        y = (y * y) >> 31;
        if (y >= (2ull << 31)) {
            y >>= 1;
            r |= 1ull << b;
        }
    }
    return r;
}

static void
log_table_init(uint64_t table[LOG_STEPS + 1])
{
    for (uint32_t k = 0; k < LOG_STEPS; k++) {
        table[k] = log2_frac_q32((uint64_t)(LOG_STEPS + k) << (31 - LOG_BITS));
    }
    table[LOG_STEPS] = 1ull << 32;
}

/*
 * -log2(<h> / 2^64) in Q32, in (0, 64 << 32]: the "arrival time" of a uniform 64-bit
 * hash. Monotone non-increasing in <h>, so for equal weights ranking by it equals ranking
 * by the raw hash (larger hash first). Linear interpolation in <table>: error ~1e-8.
 */
static uint64_t
neglog2_q32(const uint64_t table[LOG_STEPS + 1], uint64_t h)
{
    uint64_t x = h | 1;
    int lz = __builtin_clzll(x);
    uint64_t mant = x << lz;                                       /* [2^63, 2^64) */
    uint32_t k = (uint32_t)((mant >> (63 - LOG_BITS)) & (LOG_STEPS - 1));
    uint64_t frac = (mant >> (63 - LOG_BITS - 20)) & 0xfffffu;    /* Q20 */
    uint64_t interp = table[k] + (((table[k + 1] - table[k]) * frac) >> 20);
    uint64_t l = ((uint64_t)(63 - lz) << 32) + interp;

    return (64ull << 32) - l;
}

static void
slot_key(uint32_t s, unsigned char key[4])
{
    key[0] = (unsigned char)s;
    key[1] = (unsigned char)(s >> 8);
    key[2] = (unsigned char)(s >> 16);
    key[3] = (unsigned char)(s >> 24);
}

static inline void
draw_make(const struct bl_maglev *m, uint32_t rank, const unsigned char key[4],
          struct draw *d)
{
    d->h = XXH3_64bits_withSeed(key, 4, m->seeds[rank]);
    d->e = m->uniform ? 0 : neglog2_q32(m->log_table, d->h);
    d->w = m->weights[rank];
    d->rank = rank;
}

/*
 * True when <a> ranks before <b> for their slot. Equal weights: the larger hash. Unequal
 * weights: the smaller e / w (compared exactly as e_a * w_b < e_b * w_a; e < 2^39 and
 * w < 2^24 so neither product overflows). Ties: the larger hash, then the smaller rank.
 * Since e is monotone non-increasing in h, for equal weights both rules give the same
 * order, so a set that loses its only different weight keeps every surviving owner.
 */
static inline bool
draw_beats(const struct draw *a, const struct draw *b, bool uniform)
{
    if (!uniform) {
        uint64_t lhs = a->e * b->w;
        uint64_t rhs = b->e * a->w;

        if (lhs != rhs) {
            return lhs < rhs;
        }
    }
    if (a->h != b->h) {
        return a->h > b->h;
    }
    return a->rank < b->rank;
}

/*
 * Rendezvous fill: slot s goes to the active node whose draw beats every other's (see
 * draw_beats(); with unequal weights this is the weighted rendezvous of Schindelhauer and
 * Schomaker, P(win) = weight / total). A slot's ranking compares nodes pairwise by their
 * own (name, weight) only, so dropping a node never changes the winner of a slot it did
 * not win: exact minimal disruption.
 */
static void
fill_rendezvous(const struct bl_maglev *m, int32_t *rank_slots)
{
    for (uint32_t s = 0; s < m->size; s++) {
        unsigned char key[4];
        struct draw best = { 0 };
        struct draw d;
        int32_t owner = -1;

        slot_key(s, key);
        for (size_t r = 0; r < m->n; r++) {
            if (m->weights[r] == 0) {
                continue;
            }
            draw_make(m, (uint32_t)r, key, &d);
            if (owner < 0 || draw_beats(&d, &best, m->uniform)) {
                best = d;
                owner = (int32_t)r;
            }
        }
        rank_slots[s] = owner;
    }
}

/* Keeps the rankers a rendezvous table needs for fill and fallbacks. 0 or -1 (OOM). */
static int
rankers_init(struct bl_maglev *m, const struct node *nodes)
{
    size_t n = m->n ? m->n : 1;
    uint32_t w0 = 0;

    m->seeds = malloc(n * sizeof(*m->seeds));
    m->weights = malloc(n * sizeof(*m->weights));
    m->rank_idx = malloc(n * sizeof(*m->rank_idx));
    if (m->seeds == NULL || m->weights == NULL || m->rank_idx == NULL) {
        return -1;
    }
    m->uniform = true;
    for (size_t r = 0; r < m->n; r++) {
        m->seeds[r] = XXH3_64bits_withSeed(nodes[r].name, nodes[r].len, SEED_RENDEZVOUS);
        m->weights[r] = nodes[r].weight;
        m->rank_idx[r] = (int32_t)nodes[r].idx;
        if (nodes[r].weight != 0) {
            if (w0 == 0) {
                w0 = nodes[r].weight;
            } else if (nodes[r].weight != w0) {
                m->uniform = false;
            }
        }
    }
    if (!m->uniform) {
        m->log_table = malloc((LOG_STEPS + 1) * sizeof(*m->log_table));
        if (m->log_table == NULL) {
            return -1;
        }
        log_table_init(m->log_table);
    }
    return 0;
}

/*
 * The paper's population loop (NSDI'16 section 3.4, "Pseudocode 1"): node r walks the
 * permutation offset, offset + skip, ... (mod size) and takes its next empty slot; nodes
 * take turns in name order, a node of weight w taking w turns per round, until the table
 * is full. offset = h1(name) mod size, skip = h2(name) mod (size - 1) + 1 with two
 * differently seeded XXH3 hashes of the name; size prime makes every walk a permutation.
 */
static int
fill_populate(const struct node *nodes, size_t n, uint32_t size, int32_t *rank_slots)
{
    uint32_t *pos = malloc((n ? n : 1) * sizeof(*pos));
    uint32_t *skip = malloc((n ? n : 1) * sizeof(*skip));
    uint32_t filled = 0;

    if (pos == NULL || skip == NULL) {
        free(pos);
        free(skip);
        return -1;
    }
    for (size_t r = 0; r < n; r++) {
        uint64_t h1 = XXH3_64bits_withSeed(nodes[r].name, nodes[r].len, SEED_OFFSET);
        uint64_t h2 = XXH3_64bits_withSeed(nodes[r].name, nodes[r].len, SEED_SKIP);

        pos[r] = (uint32_t)(h1 % size);
        skip[r] = size > 1 ? (uint32_t)(h2 % (size - 1)) + 1 : 1;
    }
    for (uint32_t s = 0; s < size; s++) {
        rank_slots[s] = -1;
    }
    while (filled < size) {
        for (size_t r = 0; r < n && filled < size; r++) {
            for (uint32_t t = 0; t < nodes[r].weight && filled < size; t++) {
                uint32_t c = pos[r];

                while (rank_slots[c] >= 0) {
                    c += skip[r];
                    if (c >= size) {
                        c -= size;
                    }
                }
                rank_slots[c] = (int32_t)r;
                filled++;
                c += skip[r];
                if (c >= size) {
                    c -= size;
                }
                pos[r] = c;
            }
        }
    }
    free(pos);
    free(skip);
    return 0;
}

static void
put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/*
 * Bytes digested: DIGEST_DOMAIN and a NUL, one byte algo, be32 n, then per node in name
 * order be32 length, the name bytes, be32 weight, then be32 size and per slot be32 rank
 * (0xffffffff for an empty slot).
 */
static int
digest_table(const struct node *nodes, size_t n, uint32_t size, const int32_t *rank_slots,
             enum bl_maglev_algo algo, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char buf[4096];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t used = 0;
    int ok = 1;

    if (ctx == NULL) {
        return -1;
    }
    ok &= EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    ok &= EVP_DigestUpdate(ctx, DIGEST_DOMAIN, sizeof(DIGEST_DOMAIN));
    buf[0] = (unsigned char)algo;
    put_be32(buf + 1, (uint32_t)n);
    ok &= EVP_DigestUpdate(ctx, buf, 5);
    for (size_t r = 0; r < n; r++) {
        put_be32(buf, (uint32_t)nodes[r].len);
        ok &= EVP_DigestUpdate(ctx, buf, 4);
        ok &= EVP_DigestUpdate(ctx, nodes[r].name, nodes[r].len);
        put_be32(buf, nodes[r].weight);
        ok &= EVP_DigestUpdate(ctx, buf, 4);
    }
    put_be32(buf, size);
    ok &= EVP_DigestUpdate(ctx, buf, 4);
    for (uint32_t s = 0; s < size; s++) {
        put_be32(buf + used, rank_slots[s] < 0 ? 0xffffffffu : (uint32_t)rank_slots[s]);
        used += 4;
        if (used == sizeof(buf)) {
            ok &= EVP_DigestUpdate(ctx, buf, used);
            used = 0;
        }
    }
    ok &= EVP_DigestUpdate(ctx, buf, used);
    ok &= EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen != 32) {
        return -1;
    }
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

struct bl_maglev *
bl_maglev_create_algo(const char *const *names, const uint32_t *weights, size_t n,
                      uint32_t size, enum bl_maglev_algo algo)
{
    struct bl_maglev *m = NULL;
    struct node *nodes = NULL;
    int32_t *rank_slots = NULL;

    if ((n > 0 && names == NULL) || n > INT32_MAX ||
        (algo != BL_MAGLEV_RENDEZVOUS && algo != BL_MAGLEV_POPULATE)) {
        return NULL;
    }
    if (size == 0) {
        size = bl_maglev_table_size(n);
    }
    if (size == 0 || size > BL_MAGLEV_MAX_SIZE || !is_prime(size)) {
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    nodes = malloc((n ? n : 1) * sizeof(*nodes));
    rank_slots = malloc((size_t)size * sizeof(*rank_slots));
    if (m == NULL || nodes == NULL || rank_slots == NULL) {
        goto fail;
    }
    m->size = size;
    m->n = n;
    m->algo = algo;
    for (size_t i = 0; i < n; i++) {
        if (names[i] == NULL || names[i][0] == '\0') {
            goto fail;
        }
        nodes[i].name = names[i];
        nodes[i].len = strlen(names[i]);
        nodes[i].weight = weights != NULL ? weights[i] : 1;
        nodes[i].idx = (uint32_t)i;
        if (nodes[i].len > UINT32_MAX || nodes[i].weight > BL_MAGLEV_MAX_WEIGHT) {
            goto fail;
        }
        if (nodes[i].weight > 0) {
            m->active++;
        }
    }
    if (n > 1) {
        qsort(nodes, n, sizeof(*nodes), node_cmp);
    }
    for (size_t r = 1; r < n; r++) {
        if (strcmp(nodes[r - 1].name, nodes[r].name) == 0) {
            goto fail;                                   /* duplicate name */
        }
    }
    if (m->active == 0) {
        for (uint32_t s = 0; s < size; s++) {
            rank_slots[s] = -1;
        }
    } else if (algo == BL_MAGLEV_POPULATE) {
        if (fill_populate(nodes, n, size, rank_slots) != 0) {
            goto fail;
        }
    } else {
        if (rankers_init(m, nodes) != 0) {
            goto fail;
        }
        fill_rendezvous(m, rank_slots);
    }
    if (digest_table(nodes, n, size, rank_slots, algo, m->digest) != 0) {
        goto fail;
    }
    /* Translate ranks to the caller's indexes in place. */
    for (uint32_t s = 0; s < size; s++) {
        if (rank_slots[s] >= 0) {
            rank_slots[s] = (int32_t)nodes[rank_slots[s]].idx;
        }
    }
    m->slots = rank_slots;
    free(nodes);
    return m;

fail:
    free(rank_slots);
    free(nodes);
    bl_maglev_destroy(m);
    return NULL;
}

struct bl_maglev *
bl_maglev_create(const char *const *names, const uint32_t *weights, size_t n, uint32_t size)
{
    return bl_maglev_create_algo(names, weights, n, size, BL_MAGLEV_RENDEZVOUS);
}

void
bl_maglev_destroy(struct bl_maglev *m)
{
    if (m == NULL) {
        return;
    }
    free(m->slots);
    free(m->seeds);
    free(m->weights);
    free(m->rank_idx);
    free(m->log_table);
    free(m);
}

uint32_t
bl_maglev_slot_of(const struct bl_maglev *m, uint64_t hash)
{
    if (BL_UNLIKELY(m == NULL)) {
        return 0;
    }
    return (uint32_t)(((hash >> 32) * (uint64_t)m->size) >> 32);
}

int
bl_maglev_lookup(const struct bl_maglev *m, uint64_t hash)
{
    if (BL_UNLIKELY(m == NULL)) {
        return -1;
    }
    return m->slots[((hash >> 32) * (uint64_t)m->size) >> 32];
}

size_t
bl_maglev_preferences(const struct bl_maglev *m, uint64_t hash, int *out, size_t max)
{
    uint32_t s;
    size_t want;
    size_t count = 0;
    uint64_t seen[16] = { 0 };                 /* bitmap when every index < 1024 */
    bool use_bitmap;

    if (m == NULL || out == NULL) {
        return 0;
    }
    want = BL_MIN(max, m->active);
    if (want == 0) {
        return 0;
    }
    s = bl_maglev_slot_of(m, hash);
    use_bitmap = m->n <= 1024;
    for (uint32_t step = 0; step < m->size && count < want; step++) {
        int32_t owner = m->slots[s];
        bool dup = false;

        if (++s == m->size) {
            s = 0;
        }
        if (owner < 0) {
            continue;
        }
        if (use_bitmap) {
            dup = (seen[owner >> 6] >> (owner & 63)) & 1;
            seen[owner >> 6] |= 1ull << (owner & 63);
        } else {
            for (size_t i = 0; i < count && !dup; i++) {
                dup = out[i] == owner;
            }
        }
        if (!dup) {
            out[count++] = owner;
        }
    }
    return count;
}

size_t
bl_maglev_fallbacks(const struct bl_maglev *m, uint64_t hash, int *out, size_t max)
{
    struct draw top[BL_MAGLEV_MAX_FALLBACKS];
    unsigned char key[4];
    size_t want;
    size_t count = 0;

    if (m == NULL || out == NULL) {
        return 0;
    }
    if (m->algo != BL_MAGLEV_RENDEZVOUS) {
        return bl_maglev_preferences(m, hash, out, max);
    }
    want = BL_MIN(BL_MIN(max, m->active), (size_t)BL_MAGLEV_MAX_FALLBACKS);
    if (want == 0) {
        return 0;
    }
    slot_key(bl_maglev_slot_of(m, hash), key);
    /* The <want> best draws of the slot, best first, by insertion. */
    for (size_t r = 0; r < m->n; r++) {
        struct draw d;
        size_t i;

        if (m->weights[r] == 0) {
            continue;
        }
        draw_make(m, (uint32_t)r, key, &d);
        if (count == want && !draw_beats(&d, &top[want - 1], m->uniform)) {
            continue;
        }
        i = count < want ? count++ : want - 1;
        while (i > 0 && draw_beats(&d, &top[i - 1], m->uniform)) {
            top[i] = top[i - 1];
            i--;
        }
        top[i] = d;
    }
    for (size_t i = 0; i < count; i++) {
        out[i] = m->rank_idx[top[i].rank];
    }
    return count;
}

uint32_t
bl_maglev_size(const struct bl_maglev *m)
{
    return m != NULL ? m->size : 0;
}

size_t
bl_maglev_nodes(const struct bl_maglev *m)
{
    return m != NULL ? m->n : 0;
}

const int32_t *
bl_maglev_slots(const struct bl_maglev *m)
{
    return m != NULL ? m->slots : NULL;
}

void
bl_maglev_digest(const struct bl_maglev *m, char out[65])
{
    if (m == NULL) {
        out[0] = '\0';
        return;
    }
    memcpy(out, m->digest, 65);
}
