#ifndef BL_MAGLEV_H
#define BL_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

/*
 * Maglev-style consistent hashing (Eisenbud et al., NSDI 2016): a prime-sized lookup table
 * of node indexes, built once per node-set change, then read with bl_maglev_lookup(), which
 * is pure and lock-free. An immutable table may be shared by many threads.
 *
 * The table depends only on the set of (name, weight) pairs (never their order or
 * addresses), so every process given the same set builds a byte-identical table.
 *
 * Two ways to fill the table (docs/HASHING.md has the reasoning and the measurements):
 * - BL_MAGLEV_RENDEZVOUS (default, bl_maglev_create): every slot goes to the node ranking
 *   first for that slot under weighted rendezvous hashing of (name, slot). Removing a node
 *   moves only the slots it owned (exact minimal disruption); shares are binomial around
 *   weight/total. Build cost O(M * N) hashes.
 * - BL_MAGLEV_POPULATE: the paper's population loop (offset/skip permutations, nodes take
 *   turns, weight w = w turns per round). Near-perfect balance, but removing a node also
 *   moves a few percent of the other nodes' slots. Build cost O(M log M).
 */

struct bl_maglev;

enum bl_maglev_algo {
    BL_MAGLEV_RENDEZVOUS = 0,   /* per-slot weighted rendezvous: minimal disruption */
    BL_MAGLEV_POPULATE = 1,     /* the NSDI'16 population loop: best balance */
};

#define BL_MAGLEV_MAX_SIZE (1u << 26)       /* largest table accepted (256 MiB of slots) */
#define BL_MAGLEV_MAX_WEIGHT 0xffffffu      /* largest weight accepted */

#define BL_MAGLEV_DEFAULT_SIZE 65537u   /* prime; serves up to 655 nodes at 100 slots each */

/*
 * Smallest prime >= max(BL_MAGLEV_DEFAULT_SIZE, 100 * <max_nodes>), or 0 when that prime
 * would exceed BL_MAGLEV_MAX_SIZE.
 */
uint32_t bl_maglev_table_size(size_t max_nodes);

/*
 * Builds the table for <n> nodes named <names> (distinct, non-empty), with <weights>
 * (NULL = all 1; a weight of 0 means the node gets no slot; at most BL_MAGLEV_MAX_WEIGHT)
 * and <size> slots (a prime, 0 = bl_maglev_table_size(n)). Index i in results refers to
 * names[i]; the caller's arrays are not kept. n == 0 (or every weight 0) gives an empty
 * table whose lookups return -1. Uses BL_MAGLEV_RENDEZVOUS. Returns NULL on bad arguments
 * or OOM.
 */
struct bl_maglev *bl_maglev_create(const char *const *names, const uint32_t *weights,
                                   size_t n, uint32_t size);
/* Same as bl_maglev_create() with the fill algorithm chosen by <algo>. */
struct bl_maglev *bl_maglev_create_algo(const char *const *names, const uint32_t *weights,
                                        size_t n, uint32_t size, enum bl_maglev_algo algo);
void bl_maglev_destroy(struct bl_maglev *m);            /* NULL is a no-op */

/*
 * Index of the node owning <hash>, or -1 when the table is empty or NULL. The slot is
 * ((hash >> 32) * size) >> 32 (Lemire's multiply-shift reduction of the top 32 bits).
 */
int bl_maglev_lookup(const struct bl_maglev *m, uint64_t hash);
/* The slot bl_maglev_lookup() reads for <hash>, in [0, size) (0 for a NULL table). */
uint32_t bl_maglev_slot_of(const struct bl_maglev *m, uint64_t hash);

/*
 * Fills <out> with up to <max> distinct node indexes in preference order for <hash>: the
 * owner first, then the next distinct owners walking the table from the owner's slot.
 * Returns the count written (0 for an empty or NULL table).
 */
size_t bl_maglev_preferences(const struct bl_maglev *m, uint64_t hash, int *out, size_t max);

#define BL_MAGLEV_MAX_FALLBACKS 64

/*
 * Fills <out> with up to <max> (at most BL_MAGLEV_MAX_FALLBACKS) distinct node indexes
 * for <hash>: the owner first, then the node that would own <hash> if the owner were
 * removed from the set, then the one that would own it if both were removed, and so on
 * (the slot's rendezvous ranking). So spilling or failing over to out[1] sends an id
 * where it will live if the owner leaves for good, keeping that node's cache useful.
 * Costs one XXH3 per active node (~4 ns each). For BL_MAGLEV_POPULATE tables this is
 * bl_maglev_preferences(). Pure, no locks, no allocation. Returns the count written.
 */
size_t bl_maglev_fallbacks(const struct bl_maglev *m, uint64_t hash, int *out, size_t max);

uint32_t bl_maglev_size(const struct bl_maglev *m);
size_t bl_maglev_nodes(const struct bl_maglev *m);
/* Slot array (size entries, node index per slot or -1), for tests and the ring digest. */
const int32_t *bl_maglev_slots(const struct bl_maglev *m);
/*
 * SHA-256 over the algorithm, the sorted node names with their weights and the slot table
 * expressed as sorted-name ranks, as 64 lowercase hex + NUL. Equal for equal tables
 * whatever the order the names were given in (docs/HASHING.md gives the exact bytes).
 */
void bl_maglev_digest(const struct bl_maglev *m, char out[65]);

#endif /* BL_MAGLEV_H */
