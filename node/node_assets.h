#ifndef NODE_ASSETS_H
#define NODE_ASSETS_H

#include <stddef.h>

#include <microhttpd.h>

#include "node_http.h"

/*
 * POST /assets streams the body into a temp file under srv->tmpdir while hashing it
 * (SHA-256), then hands the file to the store: the body is never held in memory.
 * GET|HEAD /assets/{id} answers from the store's fd (sendfile) or bytes.
 */

/* Opens the temp file and the hash for <up>. 0 or a negative errno. */
int node_assets_begin(struct node_upload *up);
/* Appends <n> bytes. 0 or a negative errno (write failure). */
int node_assets_write(struct node_upload *up, const char *data, size_t n);
/* Completes POST /assets: hashes, stores, answers 201 (or the error). */
enum MHD_Result node_assets_finish(struct node_upload *up);
/* Closes and removes the temp file, frees the hash. Idempotent. */
void node_assets_abort(struct node_upload *up);

/* GET|HEAD /assets/{id}; <id> as found in the path (malformed -> 404). */
enum MHD_Result node_assets_get(struct node_ctx *ctx, const char *id);

/* Removes upload temp files left in <dir> by processes that no longer run. */
void node_assets_clean_tmp(const char *dir);

#endif /* NODE_ASSETS_H */
