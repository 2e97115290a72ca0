/* Unit tests of blogctl's HTTP/1.1 client: URL parsing, the strict response parser, and
 * real exchanges with a forked canned-response server on 127.0.0.1 (keep-alive reuse,
 * chunked bodies, a stale keep-alive connection, a timeout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bl/bl_err.h"
#include "ctl_http.h"

static long
parse(const char *s, bool head, bool eof, struct ctl_http_resp *r)
{
    return ctl_http_parse_response(s, strlen(s), head, eof, r);
}

static void
test_url(void **state)
{
    struct ctl_http_url u;
    char err[256];

    (void)state;
    assert_int_equal(ctl_http_url_parse("http://127.0.0.1:8080", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 8080);
    assert_string_equal(u.path, "/");
    assert_string_equal(u.hostport, "127.0.0.1:8080");
    assert_int_equal(ctl_http_url_parse("http://[::1]:9/x/y?z=1", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.hostport, "[::1]:9");
    assert_string_equal(u.path, "/x/y?z=1");
    assert_int_equal(ctl_http_url_parse("http://localhost/", &u, err, sizeof(err)), 0);
    assert_int_equal(u.port, 80);
    assert_int_equal(ctl_http_url_parse("https://127.0.0.1:8443", &u, err, sizeof(err)),
                     BL_EINVAL);
    assert_non_null(strstr(err, "https"));
    assert_int_equal(ctl_http_url_parse("127.0.0.1:8080", &u, err, sizeof(err)), BL_EINVAL);
    assert_int_equal(ctl_http_url_parse("http://127.0.0.1:0", &u, err, sizeof(err)), BL_EINVAL);
    assert_int_equal(ctl_http_url_parse("http://127.0.0.1:99999", &u, err, sizeof(err)),
                     BL_EINVAL);
    assert_int_equal(ctl_http_url_parse("http://127.0.0.1:80x", &u, err, sizeof(err)),
                     BL_EINVAL);
    assert_int_equal(ctl_http_url_parse("http://:80", &u, err, sizeof(err)), BL_EINVAL);
    assert_int_equal(ctl_http_url_parse("http://example.com:80", &u, err, sizeof(err)),
                     BL_EINVAL);
}

static void
test_parse_content_length(void **state)
{
    struct ctl_http_resp r;
    const char *full = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                       "Content-Length: 5\r\nX-Blog-Node:  n1 \r\n\r\nhello";
    char *v;

    (void)state;
    ctl_http_resp_init(&r);
    assert_int_equal(parse(full, false, false, &r), (long)strlen(full));
    assert_int_equal(r.status, 201);
    assert_true(r.keep_alive);
    assert_int_equal(r.body.len, 5);
    assert_memory_equal(r.body.data, "hello", 5);
    v = ctl_http_resp_header(&r, "x-blog-node");
    assert_string_equal(v, "n1");
    free(v);
    assert_null(ctl_http_resp_header(&r, "etag"));
    /* every proper prefix needs more bytes */
    for (size_t n = 0; n < strlen(full); n++) {
        assert_int_equal(ctl_http_parse_response(full, n, false, false, &r), 0);
    }
    /* ... and is an error when the peer closed */
    assert_int_equal(ctl_http_parse_response(full, strlen(full) - 1, false, true, &r),
                     BL_EPARSE);
    /* HEAD: no body whatever Content-Length says */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true, false, &r),
                     (long)strlen("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"));
    assert_int_equal(r.body.len, 0);
    /* 204 and 304 carry no body */
    assert_int_equal(parse("HTTP/1.1 204 No Content\r\n\r\n", false, false, &r), 27);
    ctl_http_resp_deinit(&r);
}

static void
test_parse_chunked(void **state)
{
    struct ctl_http_resp r;
    const char *ok = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";

    (void)state;
    ctl_http_resp_init(&r);
    assert_int_equal(parse(ok, false, false, &r), (long)strlen(ok));
    assert_int_equal(r.body.len, 12);
    assert_memory_equal(r.body.data, "hello, world", 12);
    for (size_t n = 0; n < strlen(ok); n++) {
        assert_int_equal(ctl_http_parse_response(ok, n, false, false, &r), 0);
    }
    /* bad chunk size, missing CRLF after data, no size digits */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false,
                           false, &r), BL_EPARSE);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "2\r\nabX\r\n0\r\n\r\n", false, false, &r), BL_EPARSE);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "\r\n", false, false, &r), BL_EPARSE);
    /* a chunk larger than the body limit */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "fffffffffff\r\n", false, false, &r), BL_ETOOBIG);
    ctl_http_resp_deinit(&r);
}

static void
test_parse_strict(void **state)
{
    struct ctl_http_resp r;
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 600 Nope\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 101 Switching\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\x01" "b\r\n\r\n",
    };

    (void)state;
    ctl_http_resp_init(&r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long rc = parse(bad[i], false, false, &r);

        if (rc >= 0) {
            fail_msg("accepted bad response %zu: %s", i, bad[i]);
        }
    }
    /* a huge Content-Length */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n", false,
                           false, &r), BL_ETOOBIG);
    /* a head block that never ends */
    {
        size_t n = CTL_HTTP_MAX_HEAD + 10;
        char *big = malloc(n);

        memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
        memset(big + 20, 'a', n - 20);
        assert_int_equal(ctl_http_parse_response(big, n, false, false, &r), BL_ETOOBIG);
        free(big);
    }
    /* duplicate but equal Content-Length is fine; interim 100 is skipped */
    assert_true(parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                      "Content-Length: 2\r\n\r\nok", false, false, &r) > 0);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body.data, "ok", 2);
    /* keep-alive rules */
    assert_true(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                      false, false, &r) > 0);
    assert_false(r.keep_alive);
    assert_true(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, false, &r) > 0);
    assert_false(r.keep_alive);
    assert_true(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
                      false, false, &r) > 0);
    assert_true(r.keep_alive);
    /* close-delimited body: complete only at EOF */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\n\r\nabc", false, false, &r), 0);
    assert_true(parse("HTTP/1.1 200 OK\r\n\r\nabc", false, true, &r) > 0);
    assert_int_equal(r.body.len, 3);
    assert_false(r.keep_alive);
    ctl_http_resp_deinit(&r);
}

/* ---- a canned server: for each accepted connection, reads requests and plays a script */

static int
listen_any(unsigned *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Reads one request head (up to the blank line) plus Content-Length bytes. */
static int
read_request(int fd, char *buf, size_t cap)
{
    size_t n = 0;

    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n - 1);
        char *end, *cl;

        if (r <= 0) {
            return -1;
        }
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end == NULL) {
            continue;
        }
        cl = strstr(buf, "Content-Length: ");
        if (cl == NULL || n >= (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10)) {
            return (int)n;
        }
    }
}

/*
 * Server modes: 0 = answer every request on a keep-alive connection, counting connections
 * in the X-Conn header; 1 = answer one request then close silently (stale keep-alive);
 * 2 = never answer.
 */
static pid_t
serve(int lfd, int mode)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int conns = 0;

        for (;;) {
            int c = accept(lfd, NULL, NULL);
            char buf[65536];

            if (c < 0) {
                _exit(0);
            }
            conns++;
            while (read_request(c, buf, sizeof(buf)) > 0) {
                char out[512];
                int len;

                if (mode == 2) {
                    sleep(5);
                    break;
                }
                if (strstr(buf, "GET /chunked") != NULL) {
                    len = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nX-Conn: %d\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                                   conns);
                } else {
                    len = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nX-Conn: %d\r\n"
                                   "Content-Length: 2\r\n\r\nok", conns);
                }
                if (write(c, out, (size_t)len) != len) {
                    break;
                }
                if (mode == 1) {
                    break;
                }
            }
            close(c);
        }
    }
    return pid;
}

static void
stop_server(pid_t pid)
{
    int st;

    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

static void
test_exchange_keepalive(void **state)
{
    unsigned port;
    int lfd = listen_any(&port);
    pid_t pid = serve(lfd, 0);
    struct ctl_http_client c;
    struct ctl_http_resp r;
    char hp[64], *v;
    const char *hdrs[] = { "Content-Type: application/json", NULL };

    (void)state;
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
    ctl_http_client_init(&c, hp, 3000);
    ctl_http_resp_init(&r);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ctl_http_request(&c, "POST", "/posts", hdrs, "{}", 2, &r), 0);
        assert_int_equal(r.status, 200);
        v = ctl_http_resp_header(&r, "X-Conn");
        assert_string_equal(v, "1");        /* one connection for all five */
        free(v);
    }
    assert_int_equal(ctl_http_request(&c, "GET", "/chunked", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.body.len, 3);
    assert_memory_equal(r.body.data, "abc", 3);
    ctl_http_resp_deinit(&r);
    ctl_http_client_deinit(&c);
    stop_server(pid);
    close(lfd);
}

static void
test_exchange_stale_and_timeout(void **state)
{
    unsigned port;
    int lfd = listen_any(&port);
    pid_t pid = serve(lfd, 1);
    struct ctl_http_client c;
    struct ctl_http_resp r;
    char hp[64], *v;

    (void)state;
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
    ctl_http_client_init(&c, hp, 3000);
    ctl_http_resp_init(&r);
    assert_int_equal(ctl_http_request(&c, "GET", "/", NULL, NULL, 0, &r), 0);
    usleep(100 * 1000);                     /* the server has closed it by now */
    assert_int_equal(ctl_http_request(&c, "GET", "/", NULL, NULL, 0, &r), 0);
    v = ctl_http_resp_header(&r, "X-Conn");
    assert_string_equal(v, "2");            /* resent on a new connection */
    free(v);
    ctl_http_client_deinit(&c);
    stop_server(pid);
    close(lfd);

    lfd = listen_any(&port);
    pid = serve(lfd, 2);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
    ctl_http_client_init(&c, hp, 300);
    assert_int_equal(ctl_http_request(&c, "GET", "/", NULL, NULL, 0, &r), -ETIMEDOUT);
    assert_non_null(strstr(c.error, "no response"));
    ctl_http_client_deinit(&c);
    stop_server(pid);
    close(lfd);

    /* nothing listening: a clear connect error */
    ctl_http_client_init(&c, hp, 1000);
    assert_true(ctl_http_request(&c, "GET", "/", NULL, NULL, 0, &r) < 0);
    assert_non_null(strstr(c.error, "connect to"));
    ctl_http_client_deinit(&c);
    ctl_http_resp_deinit(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_parse_content_length),
        cmocka_unit_test(test_parse_chunked),
        cmocka_unit_test(test_parse_strict),
        cmocka_unit_test(test_exchange_keepalive),
        cmocka_unit_test(test_exchange_stale_and_timeout),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
