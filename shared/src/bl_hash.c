#include "bl/bl_hash.h"

#include <xxhash.h>

/*
 * XXH3 is specified byte-for-byte (same output on every host and endianness), which is
 * what lets two load balancers on different machines agree on an id's owner.
 */

uint64_t
bl_hash64(const void *data, size_t len)
{
    return (uint64_t)XXH3_64bits(data, len);
}

uint64_t
bl_hash64_seed(const void *data, size_t len, uint64_t seed)
{
    return (uint64_t)XXH3_64bits_withSeed(data, len, (XXH64_hash_t)seed);
}
