#ifndef CTL_HTTP_H
#define CTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "bl/bl_buf.h"

/*
 * A small blocking HTTP/1.1 client for blogctl, on plain sockets. It talks only to our own
 * daemons (blog-lb, blog-node): plain http:// URLs with a numeric host or "localhost", one
 * keep-alive connection per client object, responses framed by Content-Length, chunked
 * transfer coding or connection close. The response parser is strict and bounded
 * (CTL_HTTP_MAX_HEAD header bytes, CTL_HTTP_MAX_BODY body bytes).
 */

#define CTL_HTTP_MAX_HEAD (64 * 1024)
#define CTL_HTTP_MAX_BODY (64ul * 1024 * 1024)
#define CTL_HTTP_MAX_HEADERS 100

struct ctl_http_url {
    char host[256];             /* "127.0.0.1", "::1" (no brackets) or "localhost" */
    char hostport[272];         /* "HOST:PORT" as bl_net_parse_addr() takes it */
    unsigned port;
    char path[1024];            /* "/..." ("/" when the URL has none) */
};

struct ctl_http_header {
    const char *name;           /* points into ctl_http_resp.head */
    size_t name_len;
    const char *value;          /* trimmed */
    size_t value_len;
};

struct ctl_http_resp {
    int status;                 /* 100..599 */
    int minor;                  /* HTTP/1.<minor> */
    struct bl_buf head;         /* the raw status line and header block */
    struct ctl_http_header headers[CTL_HTTP_MAX_HEADERS];
    size_t nheaders;
    struct bl_buf body;         /* decoded body, NUL-terminated (data may be NULL if empty) */
    bool keep_alive;            /* the connection may be reused after this response */
};

struct ctl_http_client {
    char hostport[272];         /* where the connection goes */
    int fd;                     /* -1 when not connected */
    int timeout_ms;             /* per request: connect + send + receive */
    struct bl_buf in;           /* bytes read and not yet consumed */
    char error[512];            /* last error, human-readable */
};

/*
 * Parses "http://HOST:PORT[/path]" (HOST numeric, "[v6]" or "localhost"; the port is
 * required unless it is 80). Returns 0, or BL_EINVAL with <err> (size <errlen>) saying why
 * (https:// is refused with a hint: blogctl speaks plain HTTP to the local daemons).
 */
int ctl_http_url_parse(const char *url, struct ctl_http_url *u, char *err, size_t errlen);

/* Initializes <c> for <hostport> ("HOST:PORT"); nothing is connected yet. */
void ctl_http_client_init(struct ctl_http_client *c, const char *hostport, int timeout_ms);
/* Closes the connection and frees buffers. Safe to call twice. */
void ctl_http_client_deinit(struct ctl_http_client *c);

void ctl_http_resp_init(struct ctl_http_resp *r);
void ctl_http_resp_deinit(struct ctl_http_resp *r);

/*
 * Sends one request on <c> (connecting or reconnecting as needed) and reads the whole
 * response into <resp> (which the caller initialized; it is reset first). <headers> is a
 * NULL-terminated list of "Name: value" lines or NULL; Host, Content-Length and
 * Connection are added. When a reused keep-alive connection turns out closed before any
 * response byte arrives, the request is sent once more on a new connection.
 * Returns 0, or a negative error with c->error describing it.
 */
int ctl_http_request(struct ctl_http_client *c, const char *method, const char *path,
                     const char *const *headers, const void *body, size_t body_len,
                     struct ctl_http_resp *resp);

/*
 * One-shot GET of <url> with <timeout_ms>: status in *status, body in <body> (appended).
 * Returns 0, or a negative error with <err> set.
 */
int ctl_http_get(const char *url, int timeout_ms, int *status, struct bl_buf *body,
                 char *err, size_t errlen);

/*
 * The response parser, exposed for tests. Parses the bytes <buf>/<len> received so far for
 * a request whose method was HEAD when <head_req>. <eof> says the peer closed. Returns the
 * number of bytes the response used (> 0) once it is complete, 0 when more bytes are
 * needed, or BL_EPARSE / BL_ETOOBIG for a malformed or oversized response. On success
 * <resp> holds the status, headers and decoded body.
 */
long ctl_http_parse_response(const char *buf, size_t len, bool head_req, bool eof,
                             struct ctl_http_resp *resp);

/* The value of header <name> (case-insensitive) as a malloc'ed string, or NULL. */
char *ctl_http_resp_header(const struct ctl_http_resp *r, const char *name);

#endif /* CTL_HTTP_H */
