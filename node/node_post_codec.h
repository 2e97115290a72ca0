#ifndef NODE_POST_CODEC_H
#define NODE_POST_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>

#include "node_store.h"

/*
 * The stored form of a post, shared by the store drivers: a BSON document
 *   { title: string, body: string, author: string, tags: [string...],
 *     created_at: UTC datetime (ms), updated_at: UTC datetime (ms), version: int64 }
 * The id is not part of it: LMDB keeps it as the key, MongoDB as the _id field (which the
 * MongoDB driver appends itself). Unknown fields are ignored on decode, so a later field
 * can be added without a migration.
 */

/* Appends the fields of <p> (everything but the id) to <doc>. 0 or -ENOMEM. */
int node_post_codec_append(const struct node_post *p, bson_t *doc);

/*
 * Decodes the document <doc> into <out> (zeroed first; out->id is left empty). Returns 0,
 * BL_EPARSE when a required field is missing or has the wrong type, or -ENOMEM. On failure
 * <out> owns nothing.
 */
int node_post_codec_decode(const bson_t *doc, struct node_post *out);

/* Same, from <len> bytes of BSON at <data> (e.g. an LMDB value). */
int node_post_codec_decode_raw(const uint8_t *data, size_t len, struct node_post *out);

/* Reads only the version field of the BSON at <data>. 0 or BL_EPARSE. */
int node_post_codec_version(const uint8_t *data, size_t len, uint64_t *version);

#endif /* NODE_POST_CODEC_H */
