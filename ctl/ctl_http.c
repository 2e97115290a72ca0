#include "ctl_http.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "bl/bl_err.h"
#include "bl/bl_net.h"
#include "bl/bl_time.h"
#include "bl/bl_util.h"

int
ctl_http_url_parse(const char *url, struct ctl_http_url *u, char *err, size_t errlen)
{
    const char *p, *host_end, *port_start, *path;
    size_t hlen;
    unsigned long port;
    char *end;

    memset(u, 0, sizeof(*u));
    if (strncasecmp(url, "https://", 8) == 0) {
        snprintf(err, errlen, "%s: https is not supported by blogctl; use the plain http "
                 "listener or the admin address (http://HOST:PORT)", url);
        return BL_EINVAL;
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "%s: expected a URL like http://127.0.0.1:8080", url);
        return BL_EINVAL;
    }
    p = url + 7;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (host_end == NULL) {
            snprintf(err, errlen, "%s: unterminated [IPv6] host", url);
            return BL_EINVAL;
        }
        p++;
        port_start = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/?#");
        port_start = host_end;
    }
    hlen = (size_t)(host_end - p);
    if (hlen == 0 || hlen >= sizeof(u->host)) {
        snprintf(err, errlen, "%s: missing or too long host", url);
        return BL_EINVAL;
    }
    memcpy(u->host, p, hlen);
    u->host[hlen] = '\0';
    port = 80;
    if (*port_start == ':') {
        errno = 0;
        port = strtoul(port_start + 1, &end, 10);
        if (end == port_start + 1 || errno != 0 || port == 0 || port > 65535
            || (*end != '\0' && *end != '/' && *end != '?')) {
            snprintf(err, errlen, "%s: bad port", url);
            return BL_EINVAL;
        }
        path = end;
    } else if (*port_start == '\0' || *port_start == '/' || *port_start == '?') {
        path = port_start;
    } else {
        snprintf(err, errlen, "%s: bad host", url);
        return BL_EINVAL;
    }
    u->port = (unsigned)port;
    if (strchr(u->host, ':') != NULL) {
        snprintf(u->hostport, sizeof(u->hostport), "[%s]:%u", u->host, u->port);
    } else {
        snprintf(u->hostport, sizeof(u->hostport), "%s:%u", u->host, u->port);
    }
    if (*path == '\0') {
        strcpy(u->path, "/");
    } else if (*path == '?') {
        if (strlen(path) + 2 > sizeof(u->path)) {
            snprintf(err, errlen, "%s: path too long", url);
            return BL_EINVAL;
        }
        snprintf(u->path, sizeof(u->path), "/%s", path);
    } else {
        if (strlen(path) + 1 > sizeof(u->path)) {
            snprintf(err, errlen, "%s: path too long", url);
            return BL_EINVAL;
        }
        strcpy(u->path, path);
    }
    {
        struct sockaddr_storage ss;
        socklen_t sl;

        if (bl_net_parse_addr(u->hostport, &ss, &sl) != 0) {
            snprintf(err, errlen, "%s: host must be a numeric address or localhost", url);
            return BL_EINVAL;
        }
    }
    return 0;
}

void
ctl_http_client_init(struct ctl_http_client *c, const char *hostport, int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->hostport, sizeof(c->hostport), "%s", hostport);
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    bl_buf_init(&c->in);
}

static void
client_close(struct ctl_http_client *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    bl_buf_reset(&c->in);
}

void
ctl_http_client_deinit(struct ctl_http_client *c)
{
    client_close(c);
    bl_buf_deinit(&c->in);
}

void
ctl_http_resp_init(struct ctl_http_resp *r)
{
    memset(r, 0, sizeof(*r));
    bl_buf_init(&r->head);
    bl_buf_init(&r->body);
}

void
ctl_http_resp_deinit(struct ctl_http_resp *r)
{
    bl_buf_deinit(&r->head);
    bl_buf_deinit(&r->body);
}

static void
resp_reset(struct ctl_http_resp *r)
{
    r->status = 0;
    r->minor = 0;
    r->nheaders = 0;
    r->keep_alive = false;
    bl_buf_reset(&r->head);
    bl_buf_reset(&r->body);
}

static bool
is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
        || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool
token_eq(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

/* True when the comma-separated header value <v>/<n> holds the token <tok>. */
static bool
list_has_token(const char *v, size_t n, const char *tok)
{
    size_t i = 0;

    while (i < n) {
        size_t s, e;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        s = i;
        while (i < n && v[i] != ',') {
            i++;
        }
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
            e--;
        }
        if (token_eq(v + s, e - s, tok)) {
            return true;
        }
    }
    return false;
}

/*
 * Parses the status line and headers in <r->head> (which ends with the blank line).
 * Returns 0 or BL_EPARSE.
 */
static int
parse_head(struct ctl_http_resp *r)
{
    char *p = r->head.data;
    char *end = r->head.data + r->head.len;
    char *eol;

    if (r->head.len < 14 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1')
        || p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9'
        || p[11] < '0' || p[11] > '9' || (p[12] != ' ' && p[12] != '\r')) {
        return BL_EPARSE;
    }
    r->minor = p[7] - '0';
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL || eol == p || eol[-1] != '\r') {
        return BL_EPARSE;
    }
    for (char *q = p + 12; q < eol - 1; q++) {
        if ((unsigned char)*q < 0x20 && *q != '\t') {
            return BL_EPARSE;
        }
    }
    p = eol + 1;
    r->nheaders = 0;
    while (p < end) {
        char *colon, *v, *ve;

        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL || eol == p || eol[-1] != '\r') {
            return BL_EPARSE;
        }
        if (eol - p == 1) {
            return p + 2 == end ? 0 : BL_EPARSE;     /* the blank line */
        }
        colon = p;
        while (colon < eol - 1 && is_tchar((unsigned char)*colon)) {
            colon++;
        }
        if (colon == p || *colon != ':') {
            return BL_EPARSE;                       /* no name, space before ':', obs-fold */
        }
        v = colon + 1;
        ve = eol - 1;
        while (v < ve && (*v == ' ' || *v == '\t')) {
            v++;
        }
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
            ve--;
        }
        for (char *q = v; q < ve; q++) {
            if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f) {
                return BL_EPARSE;
            }
        }
        if (r->nheaders == CTL_HTTP_MAX_HEADERS) {
            return BL_EPARSE;
        }
        r->headers[r->nheaders].name = p;
        r->headers[r->nheaders].name_len = (size_t)(colon - p);
        r->headers[r->nheaders].value = v;
        r->headers[r->nheaders].value_len = (size_t)(ve - v);
        r->nheaders++;
        p = eol + 1;
    }
    return BL_EPARSE;
}

static const struct ctl_http_header *
find_header(const struct ctl_http_resp *r, const char *name, size_t *count)
{
    const struct ctl_http_header *first = NULL;

    *count = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (token_eq(r->headers[i].name, r->headers[i].name_len, name)) {
            if (first == NULL) {
                first = &r->headers[i];
            }
            (*count)++;
        }
    }
    return first;
}

/* Decodes a chunked body at <p>/<n>. Returns bytes used (> 0), 0 for more, or an error. */
static long
parse_chunked(const char *p, size_t n, struct bl_buf *body)
{
    size_t i = 0;

    bl_buf_reset(body);
    for (;;) {
        uint64_t size = 0;
        size_t digits = 0;
        const char *eol;

        while (i < n && digits < 16) {
            char ch = p[i];
            int v;

            if (ch >= '0' && ch <= '9') {
                v = ch - '0';
            } else if (ch >= 'a' && ch <= 'f') {
                v = ch - 'a' + 10;
            } else if (ch >= 'A' && ch <= 'F') {
                v = ch - 'A' + 10;
            } else {
                break;
            }
            size = size * 16 + (uint64_t)v;
            digits++;
            i++;
        }
        if (i == n) {
            return 0;
        }
        if (digits == 0 || (p[i] != '\r' && p[i] != ';')) {
            return BL_EPARSE;
        }
        eol = memchr(p + i, '\n', n - i);
        if (eol == NULL) {
            return (n - i) > 4096 ? BL_EPARSE : 0;  /* chunk extensions stay short */
        }
        if (eol[-1] != '\r') {
            return BL_EPARSE;
        }
        i = (size_t)(eol - p) + 1;
        if (size > CTL_HTTP_MAX_BODY || body->len + size > CTL_HTTP_MAX_BODY) {
            return BL_ETOOBIG;
        }
        if (size == 0) {
            /* trailers, then the blank line */
            for (;;) {
                eol = memchr(p + i, '\n', n - i);
                if (eol == NULL) {
                    return (n - i) > 8192 ? BL_EPARSE : 0;
                }
                if (eol == p + i || eol[-1] != '\r') {
                    return BL_EPARSE;
                }
                if (eol == p + i + 1) {
                    return (long)(eol - p) + 1;
                }
                i = (size_t)(eol - p) + 1;
            }
        }
        if (n - i < size + 2) {
            return 0;
        }
        if (p[i + size] != '\r' || p[i + size + 1] != '\n') {
            return BL_EPARSE;
        }
        if (bl_buf_append(body, p + i, (size_t)size) != 0) {
            return -ENOMEM;
        }
        i += (size_t)size + 2;
    }
}

/* Like ctl_http_parse_response(); <*need> gets the total length when it is known early. */
static long
parse_response(const char *buf, size_t len, bool head_req, bool eof, struct ctl_http_resp *r,
               size_t *need)
{
    const char *hend;
    size_t head_len, count;
    const struct ctl_http_header *h;
    bool chunked = false, have_cl = false;
    uint64_t cl = 0;
    const char *b;
    size_t blen;
    int rc;

    *need = 0;
    resp_reset(r);
    hend = NULL;
    for (size_t i = 0; i < len && i < CTL_HTTP_MAX_HEAD; i++) {
        if (buf[i] != '\n') {
            continue;
        }
        if (i == 0 || buf[i - 1] != '\r') {
            return BL_EPARSE;                       /* bare LF: not from our daemons */
        }
        if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            hend = buf + i + 1;
            break;
        }
    }
    if (hend == NULL) {
        if (len >= CTL_HTTP_MAX_HEAD) {
            return BL_ETOOBIG;
        }
        return eof ? BL_EPARSE : 0;
    }
    head_len = (size_t)(hend - buf);
    if (bl_buf_append(&r->head, buf, head_len) != 0) {
        return -ENOMEM;
    }
    rc = parse_head(r);
    if (rc != 0) {
        return rc;
    }
    if (r->status < 200) {
        if (r->status == 101) {
            return BL_EPARSE;                       /* we never ask to upgrade */
        }
        /* an interim response: skip it and parse what follows */
        {
            long more = parse_response(buf + head_len, len - head_len, head_req, eof, r, need);

            if (more > 0) {
                more += (long)head_len;
            }
            if (*need > 0) {
                *need += head_len;
            }
            return more;
        }
    }
    h = find_header(r, "connection", &count);
    if (r->minor == 1) {
        r->keep_alive = !(h != NULL && list_has_token(h->value, h->value_len, "close"));
    } else {
        r->keep_alive = h != NULL && list_has_token(h->value, h->value_len, "keep-alive");
    }
    h = find_header(r, "transfer-encoding", &count);
    if (h != NULL) {
        if (count != 1 || !token_eq(h->value, h->value_len, "chunked")) {
            return BL_EPARSE;
        }
        chunked = true;
    }
    h = find_header(r, "content-length", &count);
    if (h != NULL) {
        for (size_t i = 0; i < r->nheaders; i++) {
            const struct ctl_http_header *x = &r->headers[i];
            uint64_t v = 0;

            if (!token_eq(x->name, x->name_len, "content-length")) {
                continue;
            }
            if (x->value_len == 0 || x->value_len > 15) {
                return x->value_len > 15 ? BL_ETOOBIG : BL_EPARSE;
            }
            for (size_t k = 0; k < x->value_len; k++) {
                if (x->value[k] < '0' || x->value[k] > '9') {
                    return BL_EPARSE;
                }
                v = v * 10 + (uint64_t)(x->value[k] - '0');
            }
            if (have_cl && v != cl) {
                return BL_EPARSE;
            }
            have_cl = true;
            cl = v;
        }
        if (chunked) {
            return BL_EPARSE;                       /* both framings: refuse to guess */
        }
    }
    if (head_req || r->status == 204 || r->status == 304) {
        return (long)head_len;
    }
    b = hend;
    blen = len - head_len;
    if (chunked) {
        long used = parse_chunked(b, blen, &r->body);

        if (used == 0 && eof) {
            return BL_EPARSE;
        }
        return used > 0 ? used + (long)head_len : used;
    }
    if (have_cl) {
        if (cl > CTL_HTTP_MAX_BODY) {
            return BL_ETOOBIG;
        }
        *need = head_len + (size_t)cl;
        if (blen < cl) {
            return eof ? BL_EPARSE : 0;
        }
        if (bl_buf_append(&r->body, b, (size_t)cl) != 0) {
            return -ENOMEM;
        }
        return (long)(head_len + cl);
    }
    /* delimited by close */
    r->keep_alive = false;
    if (blen > CTL_HTTP_MAX_BODY) {
        return BL_ETOOBIG;
    }
    if (!eof) {
        return 0;
    }
    if (bl_buf_append(&r->body, b, blen) != 0) {
        return -ENOMEM;
    }
    return (long)len > 0 ? (long)len : BL_EPARSE;
}

long
ctl_http_parse_response(const char *buf, size_t len, bool head_req, bool eof,
                        struct ctl_http_resp *resp)
{
    size_t need;

    return parse_response(buf, len, head_req, eof, resp, &need);
}

char *
ctl_http_resp_header(const struct ctl_http_resp *r, const char *name)
{
    size_t count;
    const struct ctl_http_header *h = find_header(r, name, &count);
    char *s;

    if (h == NULL) {
        return NULL;
    }
    s = bl_xmalloc(h->value_len + 1);
    memcpy(s, h->value, h->value_len);
    s[h->value_len] = '\0';
    return s;
}

static int
remaining_ms(uint64_t deadline)
{
    uint64_t now = bl_time_mono_ms();

    return now >= deadline ? 0 : (int)(deadline - now);
}

static int
client_connect(struct ctl_http_client *c, uint64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, rc, one = 1;

    if (bl_net_parse_addr(c->hostport, &ss, &sl) != 0) {
        snprintf(c->error, sizeof(c->error), "%s: not a HOST:PORT address", c->hostport);
        return BL_EINVAL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        snprintf(c->error, sizeof(c->error), "socket: %s", strerror(errno));
        return rc;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        for (;;) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            int n = poll(&pfd, 1, remaining_ms(deadline));
            int soerr = 0;
            socklen_t el = sizeof(soerr);

            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                rc = -ETIMEDOUT;
                goto fail;
            }
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0) {
                rc = -errno;
                goto fail;
            }
            if (soerr != 0) {
                rc = -soerr;
                goto fail;
            }
            break;
        }
    }
    c->fd = fd;
    bl_buf_reset(&c->in);
    return 0;
fail:
    snprintf(c->error, sizeof(c->error), "connect to %s: %s", c->hostport, strerror(-rc));
    close(fd);
    return rc;
}

static int
send_all(struct ctl_http_client *c, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
            int r = poll(&pfd, 1, remaining_ms(deadline));

            if (r == 0) {
                return -ETIMEDOUT;
            }
            continue;
        }
        return w < 0 ? -errno : -EPIPE;
    }
    return 0;
}

/* Sends and reads one exchange. *fresh_fail says the connection died before any byte. */
static int
exchange(struct ctl_http_client *c, const char *req, size_t req_len, const void *body,
         size_t body_len, bool head_req, struct ctl_http_resp *resp, uint64_t deadline,
         bool *stale)
{
    int rc;
    bool eof = false;
    size_t need = 0;

    *stale = false;
    bl_buf_reset(&c->in);
    rc = send_all(c, req, req_len, deadline);
    if (rc == 0 && body_len > 0) {
        rc = send_all(c, body, body_len, deadline);
    }
    if (rc != 0) {
        *stale = rc == -EPIPE || rc == -ECONNRESET;
        snprintf(c->error, sizeof(c->error), "send to %s: %s", c->hostport, strerror(-rc));
        return rc;
    }
    for (;;) {
        long used;
        ssize_t n;

        if (c->in.len > 0 || eof) {
            if (need == 0 || c->in.len >= need || eof) {
                used = parse_response(c->in.data, c->in.len, head_req, eof, resp, &need);
                if (used > 0) {
                    if (!resp->keep_alive || (size_t)used != c->in.len) {
                        client_close(c);            /* extra bytes: do not reuse */
                    }
                    return 0;
                }
                if (used < 0) {
                    snprintf(c->error, sizeof(c->error), "%s: %s response",
                             c->hostport, used == BL_ETOOBIG ? "oversized" : "malformed");
                    return (int)used;
                }
                if (eof) {
                    snprintf(c->error, sizeof(c->error), "%s: connection closed early",
                             c->hostport);
                    return BL_EPARSE;
                }
            }
        }
        if (bl_buf_reserve(&c->in, 16384) != 0) {
            snprintf(c->error, sizeof(c->error), "out of memory");
            return -ENOMEM;
        }
        n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = '\0';
            continue;
        }
        if (n == 0) {
            if (c->in.len == 0) {
                *stale = true;
                snprintf(c->error, sizeof(c->error), "%s closed the connection without "
                         "a response", c->hostport);
                return -ECONNRESET;
            }
            eof = true;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
            int ms = remaining_ms(deadline);

            if (ms == 0 || poll(&pfd, 1, ms) == 0) {
                snprintf(c->error, sizeof(c->error), "%s: no response within %d ms",
                         c->hostport, c->timeout_ms);
                return -ETIMEDOUT;
            }
            continue;
        }
        rc = -errno;
        *stale = c->in.len == 0 && rc == -ECONNRESET;
        snprintf(c->error, sizeof(c->error), "recv from %s: %s", c->hostport, strerror(-rc));
        return rc;
    }
}

int
ctl_http_request(struct ctl_http_client *c, const char *method, const char *path,
                 const char *const *headers, const void *body, size_t body_len,
                 struct ctl_http_resp *resp)
{
    struct bl_buf req;
    uint64_t deadline = bl_time_mono_ms() + (uint64_t)c->timeout_ms;
    bool head_req = strcmp(method, "HEAD") == 0;
    int rc;

    bl_buf_init(&req);
    resp_reset(resp);
    c->error[0] = '\0';
    bl_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, c->hostport);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        bl_buf_printf(&req, "%s\r\n", headers[i]);
    }
    if (body_len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        bl_buf_printf(&req, "Content-Length: %zu\r\n", body_len);
    }
    if (bl_buf_append_str(&req, "\r\n") != 0) {
        snprintf(c->error, sizeof(c->error), "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = c->fd >= 0, stale = false;

        if (!reused) {
            rc = client_connect(c, deadline);
            if (rc != 0) {
                goto out;
            }
        }
        rc = exchange(c, req.data, req.len, body, body_len, head_req, resp, deadline, &stale);
        if (rc == 0) {
            goto out;
        }
        client_close(c);
        if (!(reused && stale)) {
            goto out;
        }
    }
out:
    bl_buf_deinit(&req);
    return rc;
}

int
ctl_http_get(const char *url, int timeout_ms, int *status, struct bl_buf *body,
             char *err, size_t errlen)
{
    struct ctl_http_url u;
    struct ctl_http_client c;
    struct ctl_http_resp r;
    int rc;

    rc = ctl_http_url_parse(url, &u, err, errlen);
    if (rc != 0) {
        return rc;
    }
    ctl_http_client_init(&c, u.hostport, timeout_ms);
    ctl_http_resp_init(&r);
    rc = ctl_http_request(&c, "GET", u.path, NULL, NULL, 0, &r);
    if (rc != 0) {
        snprintf(err, errlen, "%s", c.error);
    } else {
        *status = r.status;
        if (body != NULL && r.body.len > 0) {
            rc = bl_buf_append(body, r.body.data, r.body.len);
        }
    }
    ctl_http_resp_deinit(&r);
    ctl_http_client_deinit(&c);
    return rc;
}
