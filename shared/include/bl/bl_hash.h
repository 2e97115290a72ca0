#ifndef BL_HASH_H
#define BL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit hash of a key (XXH3 from libxxhash), stable across processes and hosts. */
uint64_t bl_hash64(const void *data, size_t len);
uint64_t bl_hash64_seed(const void *data, size_t len, uint64_t seed);

#endif /* BL_HASH_H */
