#ifndef BL_MAGLEV_H
#define BL_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

/*
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016). The table depends only on the
 * node names (never their order or addresses), so every process given the same set builds
 * a byte-identical table. Build once per node-set change (slow, O(M log M)), then look
 * up with bl_maglev_lookup(), which is pure and lock-free. An immutable table may be
 * shared by many threads.
 */

struct bl_maglev;

#define BL_MAGLEV_DEFAULT_SIZE 65537u   /* prime; serves up to 655 nodes at 100 slots each */

/*
 * Smallest prime >= max(BL_MAGLEV_DEFAULT_SIZE, 100 * <max_nodes>).
 */
uint32_t bl_maglev_table_size(size_t max_nodes);

/*
 * Builds the table for <n> nodes named <names> (distinct, non-empty), with <weights>
 * (NULL = all 1; a weight of 0 means the node gets no slot) and <size> slots (a prime,
 * 0 = bl_maglev_table_size(n)). Index i in results refers to names[i]. n == 0 gives an
 * empty table whose lookups return -1. Returns NULL on bad arguments or OOM.
 */
struct bl_maglev *bl_maglev_create(const char *const *names, const uint32_t *weights,
                                   size_t n, uint32_t size);
void bl_maglev_destroy(struct bl_maglev *m);            /* NULL is a no-op */

/* Index of the node owning <hash>, or -1 when the table is empty. */
int bl_maglev_lookup(const struct bl_maglev *m, uint64_t hash);

/*
 * Fills <out> with up to <max> distinct node indexes in preference order for <hash>: the
 * owner first, then the next distinct owners walking the table from the owner's slot.
 * Returns the count written.
 */
size_t bl_maglev_preferences(const struct bl_maglev *m, uint64_t hash, int *out, size_t max);

uint32_t bl_maglev_size(const struct bl_maglev *m);
size_t bl_maglev_nodes(const struct bl_maglev *m);
/* Slot array (size entries, node index per slot), for tests and the ring digest. */
const int32_t *bl_maglev_slots(const struct bl_maglev *m);
/* SHA-256 over the sorted node names and the slot table, as 64 lowercase hex + NUL. */
void bl_maglev_digest(const struct bl_maglev *m, char out[65]);

#endif /* BL_MAGLEV_H */
