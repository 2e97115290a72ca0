#ifndef NODE_JSON_H
#define NODE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bl/bl_buf.h"

#include "node_store.h"

/*
 * Request validation (jansson, strict) and response rendering (bl_buf, no jansson on the
 * hot path) for blog-node. The validation rules are DESIGN §4's; docs/API.md lists them.
 */

#define NODE_TITLE_MAX 300              /* characters (code points) */
#define NODE_AUTHOR_MAX 100
#define NODE_TAG_MAX 50

/* What a validation failure reports: a stable snake_case code and a human message. */
struct node_json_error {
    const char *code;                   /* static: invalid_json, invalid_body, unknown_field, ... */
    char message[256];                  /* names the field when there is one */
};

/*
 * The byte limit for a post's JSON request body given limits.post_body (<post_body>): the
 * body field's own limit plus room for JSON escaping and the other fields.
 */
uint64_t node_json_request_limit(uint64_t post_body);

/*
 * Validates the request body <buf>/<len> of POST or PUT /posts and fills title, body,
 * author and tags of <out> (owned by <out>; the caller releases them with
 * node_post_deinit(); id, times and version are left untouched). <post_body_max> is the
 * body field's limit in bytes. Returns 0, or BL_EINVAL with <err> filled (nothing to
 * free), or -ENOMEM.
 */
int node_json_parse_post(const char *buf, size_t len, uint64_t post_body_max,
                         struct node_post *out, struct node_json_error *err);

/*
 * Counts the code points of <s>/<n> if it is valid UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF) and holds no NUL. Returns the count, or -1.
 */
long node_json_utf8_chars(const char *s, size_t n);

/*
 * Appends <s>/<n> as a JSON string literal, escaped exactly as bl_buf_append_json_str()
 * does, but scanning 8 bytes at a time (post bodies are mostly plain text). 0 or -ENOMEM.
 */
int node_json_append_str(struct bl_buf *b, const char *s, size_t n);

/* Appends <p> as {"id","title","body","author","tags","created_at","updated_at","version"}. */
int node_json_render_post(struct bl_buf *b, const struct node_post *p);

/* Appends {"posts":[...],"next_cursor":"<id>"|null}. */
int node_json_render_list(struct bl_buf *b, const struct node_post_list *l);

/* Appends {"error":{"code":<code>,"message":<message>}}. */
int node_json_render_error(struct bl_buf *b, const char *code, const char *message);

/* Writes the strong ETag of <p>'s representation, quotes included: "\"<id>-<version>\"". */
#define NODE_ETAG_MAX 64
void node_json_post_etag(const char *id, uint64_t version, char out[NODE_ETAG_MAX]);

/*
 * Media type checks, case-insensitive on type/subtype. node_json_is_json_type() accepts
 * "application/json" with an optional charset=utf-8 parameter and nothing else.
 * node_json_media_type() copies the lowercased type/subtype (parameters dropped) into
 * <out>; returns 0 or BL_EINVAL when <ct> is not "type/subtype[;params]".
 */
bool node_json_is_json_type(const char *ct);
int node_json_media_type(const char *ct, char *out, size_t outlen);

/*
 * If-None-Match (RFC 9110 13.1.2, weak comparison): true when <header> is "*" or lists an
 * entity-tag whose opaque part equals that of <etag> (quotes included, W/ ignored on
 * both sides). A malformed list matches nothing.
 */
bool node_json_none_match(const char *header, const char *etag);

/*
 * If-Match (RFC 9110 13.1.1, strong comparison) against the posts' "<id>-<version>" tags:
 * sets *<any> for "*", else collects into <versions> (at most <max>, count in *<n>) the
 * versions of the strong tags naming <id> (lowercase). Weak tags and other ids are skipped.
 * Returns 0, or BL_EINVAL for a malformed list (which matches nothing).
 */
int node_json_if_match(const char *header, const char *id, uint64_t *versions, size_t max,
                       size_t *n, bool *any);

#endif /* NODE_JSON_H */
