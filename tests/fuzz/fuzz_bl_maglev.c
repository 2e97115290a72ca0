/*
 * libFuzzer target for the Maglev table. The input describes a node set (names, weights),
 * a table size and an algorithm; the target builds it and checks the invariants:
 * - create fails exactly when the arguments are bad (duplicate name, size not prime);
 * - every slot holds a valid index of a node with weight > 0 (or -1 when none is active);
 * - lookup() reads slot_of(), preferences are distinct, start with the owner and never
 *   name a weight-0 node;
 * - rebuilding from the same set in another order gives the same digest and the same
 *   owner name in every slot;
 * - fallbacks start with the owner, are distinct, list every active node (rendezvous);
 * - rendezvous: removing a node changes only the slots that node owned, and each key
 *   moves to its first fallback other than the removed node.
 *
 * Input layout: byte 0 = node count (mod 24), byte 1 = flags (bit 0 algorithm, bits 1-3
 * size choice, bit 4 weighted), then per node [weight byte if weighted] [length byte]
 * [name bytes]; the rest seeds the lookup hashes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_maglev.h"

#define MAX_NODES 24
#define MAX_NAME 12
#define NKEYS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t sizes[8] = { 2, 3, 5, 7, 13, 101, 1009, 4 /* not prime */ };

struct input {
    size_t n;
    char names[MAX_NODES][MAX_NAME + 1];
    const char *ptr[MAX_NODES];
    uint32_t weights[MAX_NODES];
    bool weighted;
    uint32_t size;
    enum bl_maglev_algo algo;
    const uint8_t *rest;
    size_t rest_len;
};

static uint8_t
take(const uint8_t **p, size_t *left, uint8_t dflt)
{
    uint8_t v;

    if (*left == 0) {
        return dflt;
    }
    v = **p;
    (*p)++;
    (*left)--;
    return v;
}

static void
parse(const uint8_t *data, size_t size, struct input *in)
{
    const uint8_t *p = data;
    size_t left = size;
    uint8_t flags;

    memset(in, 0, sizeof(*in));
    in->n = take(&p, &left, 3) % MAX_NODES;
    flags = take(&p, &left, 0);
    in->algo = (flags & 1) ? BL_MAGLEV_POPULATE : BL_MAGLEV_RENDEZVOUS;
    in->size = sizes[(flags >> 1) & 7];
    in->weighted = (flags & 0x10) != 0;
    for (size_t i = 0; i < in->n; i++) {
        size_t len;

        in->weights[i] = in->weighted ? take(&p, &left, 1) % 5 : 1;
        len = take(&p, &left, 0) % (MAX_NAME + 1);
        if (len == 0 || left == 0) {
            snprintf(in->names[i], sizeof(in->names[i]), "n%zu", i);
        } else {
            for (size_t j = 0; j < len; j++) {
                char c = (char)take(&p, &left, 'x');

                in->names[i][j] = c == '\0' ? '0' : c;
            }
        }
        in->ptr[i] = in->names[i];
    }
    in->rest = p;
    in->rest_len = left;
}

static bool
is_prime(uint32_t v)
{
    if (v < 2) {
        return false;
    }
    for (uint32_t d = 2; d * d <= v; d++) {
        if (v % d == 0) {
            return false;
        }
    }
    return true;
}

static void
check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static uint64_t
mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void
check_same_table(const struct bl_maglev *a, const char *const *na, const struct bl_maglev *b,
                 const char *const *nb)
{
    char da[65];
    char db[65];
    const int32_t *sa = bl_maglev_slots(a);
    const int32_t *sb = bl_maglev_slots(b);

    bl_maglev_digest(a, da);
    bl_maglev_digest(b, db);
    check(strcmp(da, db) == 0, "digest depends on the order of the names");
    for (uint32_t s = 0; s < bl_maglev_size(a); s++) {
        check((sa[s] < 0) == (sb[s] < 0), "empty slots differ across orders");
        if (sa[s] >= 0) {
            check(strcmp(na[sa[s]], nb[sb[s]]) == 0, "slot owner depends on the order");
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in;
    struct bl_maglev *m;
    struct bl_maglev *r = NULL;
    bool dup = false;
    size_t active = 0;
    const int32_t *slots;
    const char *rev[MAX_NODES];
    uint32_t rev_w[MAX_NODES];
    uint64_t hashes[NKEYS];
    int fb[NKEYS][MAX_NODES];

    parse(data, size, &in);
    for (size_t i = 0; i < in.n; i++) {
        for (size_t j = 0; j < i; j++) {
            dup |= strcmp(in.names[i], in.names[j]) == 0;
        }
        active += in.weights[i] > 0;
    }
    m = bl_maglev_create_algo(in.ptr, in.weighted ? in.weights : NULL, in.n, in.size, in.algo);
    if (dup || !is_prime(in.size)) {
        check(m == NULL, "bad arguments accepted");
        return 0;
    }
    check(m != NULL, "valid arguments rejected");
    check(bl_maglev_size(m) == in.size, "size");
    check(bl_maglev_nodes(m) == in.n, "node count");
    slots = bl_maglev_slots(m);
    for (uint32_t s = 0; s < in.size; s++) {
        if (active == 0) {
            check(slots[s] == -1, "slot owned in an empty table");
        } else {
            check(slots[s] >= 0 && (size_t)slots[s] < in.n, "slot index out of range");
            check(in.weights[slots[s]] > 0, "slot owned by a weight-0 node");
        }
    }

    /* lookups, preferences and fallbacks on hashes derived from the rest of the input */
    for (size_t k = 0; k < NKEYS; k++) {
        uint64_t h = mix(k);
        int out[MAX_NODES];
        size_t got;

        for (size_t j = 0; j < in.rest_len && j < 8; j++) {
            h = mix(h ^ in.rest[(k + j) % in.rest_len]);
        }
        hashes[k] = h;
        got = bl_maglev_fallbacks(m, h, fb[k], MAX_NODES);
        check(got == (in.algo == BL_MAGLEV_RENDEZVOUS ? active : got), "fallback count");
        check(got <= active, "more fallbacks than active nodes");
        check(active == 0 || (got >= 1 && fb[k][0] == bl_maglev_lookup(m, h)),
              "fallbacks: owner not first");
        for (size_t i = 0; i < got; i++) {
            check(fb[k][i] >= 0 && (size_t)fb[k][i] < in.n && in.weights[fb[k][i]] > 0,
                  "bad fallback");
            for (size_t j = 0; j < i; j++) {
                check(fb[k][i] != fb[k][j], "fallbacks not distinct");
            }
        }
        check(bl_maglev_slot_of(m, h) < in.size, "slot_of out of range");
        check(bl_maglev_lookup(m, h) == slots[bl_maglev_slot_of(m, h)], "lookup != slot");
        got = bl_maglev_preferences(m, h, out, MAX_NODES);
        check(got <= active, "more preferences than active nodes");
        if (active > 0) {
            check(got >= 1 && out[0] == bl_maglev_lookup(m, h), "owner not first");
        } else {
            check(got == 0, "preferences in an empty table");
        }
        for (size_t i = 0; i < got; i++) {
            check(out[i] >= 0 && (size_t)out[i] < in.n && in.weights[out[i]] > 0,
                  "bad preference");
            for (size_t j = 0; j < i; j++) {
                check(out[i] != out[j], "preferences not distinct");
            }
        }
    }

    /* same set, reversed order */
    for (size_t i = 0; i < in.n; i++) {
        rev[i] = in.ptr[in.n - 1 - i];
        rev_w[i] = in.weights[in.n - 1 - i];
    }
    r = bl_maglev_create_algo(rev, in.weighted ? rev_w : NULL, in.n, in.size, in.algo);
    check(r != NULL, "rebuild failed");
    check_same_table(m, in.ptr, r, rev);
    bl_maglev_destroy(r);

    /* rendezvous: dropping a node moves only its own slots */
    if (in.algo == BL_MAGLEV_RENDEZVOUS && in.n > 1) {
        size_t victim = (in.rest_len > 0 ? in.rest[0] : 0) % in.n;
        const char *less[MAX_NODES];
        uint32_t less_w[MAX_NODES];
        size_t j = 0;
        const int32_t *ls;

        for (size_t i = 0; i < in.n; i++) {
            if (i != victim) {
                less[j] = in.ptr[i];
                less_w[j] = in.weights[i];
                j++;
            }
        }
        r = bl_maglev_create_algo(less, in.weighted ? less_w : NULL, j, in.size, in.algo);
        check(r != NULL, "build without one node failed");
        ls = bl_maglev_slots(r);
        for (uint32_t s = 0; s < in.size; s++) {
            if (slots[s] >= 0 && (size_t)slots[s] != victim) {
                check(ls[s] >= 0 && strcmp(less[ls[s]], in.ptr[slots[s]]) == 0,
                      "a surviving node's slot moved");
            }
        }
        /* ... and a key of the victim goes to its first fallback that is not the victim */
        for (size_t k = 0; k < NKEYS; k++) {
            int o = bl_maglev_lookup(r, hashes[k]);
            size_t i = 0;

            while (i < active && (size_t)fb[k][i] == victim) {
                i++;
            }
            if (i == active) {
                check(o == -1, "owner left in a table without active nodes");
            } else {
                check(o >= 0 && strcmp(less[o], in.ptr[fb[k][i]]) == 0,
                      "removal does not follow the fallbacks");
            }
        }
        bl_maglev_destroy(r);
    }
    bl_maglev_destroy(m);
    return 0;
}
