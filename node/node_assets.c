#include "node_assets.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bl/bl_buf.h"
#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_time.h"

#include "node_json.h"
#include "node_posts.h"

#define ASSET_CACHE_CONTROL "public, max-age=31536000, immutable"
#define TMP_PREFIX "upload-"

int
node_assets_begin(struct node_upload *up)
{
    struct node_server *srv = up->ctx.srv;
    unsigned long seq = atomic_fetch_add(&srv->tmp_seq, 1);
    EVP_MD_CTX *md;
    int n;

    /* upload-<pid>-<seq>: unique among the nodes sharing the directory, and a restart
     * can tell its dead predecessors' leftovers by the pid. */
    n = snprintf(up->tmp_path, sizeof(up->tmp_path), "%s/" TMP_PREFIX "%ld-%lu", srv->tmpdir,
                 (long)getpid(), seq);
    if (n < 0 || (size_t)n >= sizeof(up->tmp_path)) {
        return -ENAMETOOLONG;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return -ENOMEM;
    }
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return -ENOMEM;
    }
    up->tmp_fd = open(up->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (up->tmp_fd < 0) {
        int e = errno;

        EVP_MD_CTX_free(md);
        bl_log(BL_LOG_ERROR, "asset upload: cannot create %s: %s", up->tmp_path, strerror(e));
        up->tmp_path[0] = '\0';
        return -e;
    }
    up->sha = md;
    return 0;
}

int
node_assets_write(struct node_upload *up, const char *data, size_t n)
{
    if (EVP_DigestUpdate(up->sha, data, n) != 1) {
        return -ENOMEM;
    }
    while (n > 0) {
        ssize_t w = write(up->tmp_fd, data, n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

void
node_assets_abort(struct node_upload *up)
{
    if (up->tmp_fd >= 0) {
        close(up->tmp_fd);
        up->tmp_fd = -1;
    }
    if (up->tmp_path[0] != '\0') {
        unlink(up->tmp_path);           /* ENOENT when the store moved it: fine */
        up->tmp_path[0] = '\0';
    }
    if (up->sha != NULL) {
        EVP_MD_CTX_free(up->sha);
        up->sha = NULL;
    }
}

enum MHD_Result
node_assets_finish(struct node_upload *up)
{
    struct node_ctx *ctx = &up->ctx;
    struct node_server *srv = ctx->srv;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[NODE_SHA256_HEX_LEN + 1];
    char etag[NODE_SHA256_HEX_LEN + 3];
    char loc[16 + NODE_SHA256_HEX_LEN];
    struct bl_buf b;
    struct MHD_Response *resp;
    uint64_t t0;
    int rc;

    if (up->received == 0) {
        node_assets_abort(up);
        node_metrics_reject(srv->metrics, NODE_REJECT_INVALID_FIELD);
        return node_http_error(ctx, MHD_HTTP_BAD_REQUEST, "empty_body", "an asset needs a body");
    }
    if (EVP_DigestFinal_ex(up->sha, md, &mdlen) != 1 || mdlen != 32) {
        node_assets_abort(up);
        return node_http_error(ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "hash failed");
    }
    for (unsigned i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    if (close(up->tmp_fd) != 0) {
        rc = -errno;
        up->tmp_fd = -1;
        node_assets_abort(up);
        return node_http_store_error(ctx, rc, "asset_tmp_close", hex);
    }
    up->tmp_fd = -1;
    t0 = bl_time_mono_ns();
    rc = node_store_done(srv, NODE_OP_ASSET_PUT, t0,
                         srv->store->ops->asset_put(srv->store, hex, up->content_type,
                                                    up->tmp_path, up->received));
    node_assets_abort(up);
    if (rc != 0) {
        return node_http_store_error(ctx, rc, "asset_put", hex);
    }
    /* Same bytes uploaded before under another type: report the stored one. */
    {
        struct node_asset a;

        memset(&a, 0, sizeof(a));
        a.fd = -1;
        t0 = bl_time_mono_ns();
        if (node_store_done(srv, NODE_OP_ASSET_GET, t0,
                            srv->store->ops->asset_get(srv->store, hex, &a)) == 0) {
            snprintf(up->content_type, sizeof(up->content_type), "%s", a.content_type);
            node_asset_deinit(&a);
        }
    }
    snprintf(loc, sizeof(loc), "/assets/%s", hex);
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    bl_buf_init(&b);
    if (bl_buf_printf(&b,
                      "{\"id\":\"%s\",\"url\":\"%s\",\"size\":%llu,\"content_type\":", hex,
                      loc, (unsigned long long)up->received) != 0 ||
        bl_buf_append_json_str(&b, up->content_type, strlen(up->content_type)) != 0 ||
        bl_buf_printf(&b, ",\"sha256\":\"%s\"}", hex) != 0) {
        bl_buf_deinit(&b);
        return node_http_error(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "out_of_memory",
                               "out of memory");
    }
    resp = node_http_json_response(&b);
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    }
    return node_http_send(ctx, MHD_HTTP_CREATED, resp);
}

static bool
asset_id(const char *s, char out[NODE_SHA256_HEX_LEN + 1])
{
    size_t i;

    for (i = 0; i < NODE_SHA256_HEX_LEN; i++) {
        char c = s[i];

        if (c >= '0' && c <= '9') {
            out[i] = c;
        } else if (c >= 'a' && c <= 'f') {
            out[i] = c;
        } else if (c >= 'A' && c <= 'F') {
            out[i] = (char)(c + 32);
        } else {
            return false;
        }
    }
    out[i] = '\0';
    return s[i] == '\0';
}

enum MHD_Result
node_assets_get(struct node_ctx *ctx, const char *id_raw)
{
    struct node_server *srv = ctx->srv;
    char id[NODE_SHA256_HEX_LEN + 1];
    char etag[NODE_SHA256_HEX_LEN + 3];
    struct node_asset a;
    struct MHD_Response *resp;
    const char *inm;
    unsigned status;
    uint64_t t0;
    int rc;

    if (!asset_id(id_raw, id)) {
        return node_http_error(ctx, MHD_HTTP_NOT_FOUND, "not_found", "no such asset");
    }
    snprintf(etag, sizeof(etag), "\"%s\"", id);
    memset(&a, 0, sizeof(a));
    a.fd = -1;
    t0 = bl_time_mono_ns();
    rc = node_store_done(srv, NODE_OP_ASSET_GET, t0, srv->store->ops->asset_get(srv->store, id, &a));
    if (rc != 0) {
        return node_http_store_error(ctx, rc, "asset_get", id);
    }
    /* A 304 is the 200 without its body (MHD sends none for 304). */
    inm = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    status = inm != NULL && node_json_none_match(inm, etag) ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    if (a.fd >= 0) {
        /* MHD owns the fd from here and closes it with the response (sendfile). */
        resp = MHD_create_response_from_fd64(a.size, a.fd);
        if (resp != NULL) {
            a.fd = -1;
        }
    } else {
        resp = MHD_create_response_from_buffer(a.size, a.data, MHD_RESPMEM_MUST_FREE);
        if (resp != NULL) {
            a.data = NULL;
        }
    }
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a.content_type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, ASSET_CACHE_CONTROL);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "X-Cache", "MISS");
    }
    node_asset_deinit(&a);
    return node_http_send(ctx, status, resp);
}

void
node_assets_clean_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid;
        char path[PATH_MAX];

        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0) {
            continue;
        }
        pid = strtol(e->d_name + strlen(TMP_PREFIX), &end, 10);
        if (*end != '-' || pid <= 0) {
            continue;
        }
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) {
            continue;                   /* its writer may still run */
        }
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < sizeof(path)) {
            unlink(path);
        }
    }
    closedir(d);
}
