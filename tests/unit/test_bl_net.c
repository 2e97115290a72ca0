/*
 * Address parsing and formatting, and listeners checked with real sockets on 127.0.0.1:
 * flags (non-blocking, close-on-exec, SO_REUSEADDR/SO_REUSEPORT), a client connect and
 * accept, and two listeners sharing a port only with SO_REUSEPORT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "bl/bl_err.h"
#include "bl/bl_net.h"

static void
test_parse_ok(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
    struct in6_addr lo6 = IN6ADDR_LOOPBACK_INIT;

    (void)state;
    assert_int_equal(bl_net_parse_addr("127.0.0.1:8080", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(sin->sin_port), 8080);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);

    assert_int_equal(bl_net_parse_addr("0.0.0.0:80", &ss, &len), 0);
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(ntohs(sin->sin_port), 80);

    assert_int_equal(bl_net_parse_addr("localhost:80", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    assert_int_equal(ntohs(sin->sin_port), 80);

    assert_int_equal(bl_net_parse_addr("[::1]:80", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(sin6->sin6_port), 80);
    assert_memory_equal(&sin6->sin6_addr, &lo6, sizeof(lo6));

    assert_int_equal(bl_net_parse_addr("[::]:65535", &ss, &len), 0);
    assert_int_equal(ntohs(sin6->sin6_port), 65535);
    assert_int_equal(bl_net_parse_addr("10.1.2.3:0", &ss, &len), 0);
    assert_int_equal(ntohs(sin->sin_port), 0);
}

static void
test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "", ":80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:80x", "127.0.0.1: 80", "127.0.0.1:+80", "127.0.0.1:000080",
        "256.0.0.1:80", "example.com:80", "::1:80", "[::1]80", "[::1]:", "[]:80",
        "[127.0.0.1]:80", "[::1:80", "localhost", "localhostx:80", " 127.0.0.1:80",
        "1.2.3:80", "[fe80::1%eth0]:80",
    };
    struct sockaddr_storage ss;
    socklen_t len;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (bl_net_parse_addr(bad[i], &ss, &len) != BL_EINVAL) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
    assert_int_equal(bl_net_parse_addr(NULL, &ss, &len), BL_EINVAL);
}

static void
test_addr_str(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char out[64];
    char tiny[8];
    struct sockaddr_un sun;

    (void)state;
    assert_int_equal(bl_net_parse_addr("127.0.0.1:8080", &ss, &len), 0);
    bl_net_addr_str((struct sockaddr *)&ss, out, sizeof(out));
    assert_string_equal(out, "127.0.0.1:8080");
    assert_int_equal(bl_net_parse_addr("[::1]:443", &ss, &len), 0);
    bl_net_addr_str((struct sockaddr *)&ss, out, sizeof(out));
    assert_string_equal(out, "[::1]:443");
    assert_int_equal(bl_net_parse_addr("localhost:0", &ss, &len), 0);
    bl_net_addr_str((struct sockaddr *)&ss, out, sizeof(out));
    assert_string_equal(out, "127.0.0.1:0");
    /* the longest IPv6 text fits in 64 bytes */
    assert_int_equal(bl_net_parse_addr(
        "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", &ss, &len), 0);
    bl_net_addr_str((struct sockaddr *)&ss, out, sizeof(out));
    assert_string_equal(out, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    assert_int_equal(bl_net_parse_addr("[::ffff:10.0.0.1]:1", &ss, &len), 0);
    bl_net_addr_str((struct sockaddr *)&ss, out, sizeof(out));
    assert_string_equal(out, "[::ffff:10.0.0.1]:1");
    /* truncates, never overflows */
    assert_int_equal(bl_net_parse_addr("127.0.0.1:8080", &ss, &len), 0);
    bl_net_addr_str((struct sockaddr *)&ss, tiny, sizeof(tiny));
    assert_string_equal(tiny, "127.0.0");
    bl_net_addr_str(NULL, out, sizeof(out));
    assert_string_equal(out, "-");
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, "/run/x.sock");
    bl_net_addr_str((struct sockaddr *)&sun, out, sizeof(out));
    assert_string_equal(out, "unix:/run/x.sock");
}

static int
bound_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

static void
test_listen_flags_and_accept(void **state)
{
    int fd = bl_net_listen("127.0.0.1:0", 16, false);
    int one = 0;
    socklen_t olen = sizeof(one);
    struct sockaddr_in to;
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    struct pollfd pfd;
    char hostport[32];
    int c;
    int a;

    (void)state;
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, &olen), 0);
    assert_int_not_equal(one, 0);
    olen = sizeof(one);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, &olen), 0);
    assert_int_equal(one, 0);
    olen = sizeof(one);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &one, &olen), 0);
    assert_int_not_equal(one, 0);

    /* nothing pending: accept would block rather than hang */
    assert_int_equal(accept(fd, NULL, NULL), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);

    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)bound_port(fd));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof(to)), 0);
    pfd.fd = fd;
    pfd.events = POLLIN;
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    a = accept(fd, (struct sockaddr *)&peer, &plen);
    assert_true(a >= 0);
    bl_net_addr_str((struct sockaddr *)&peer, hostport, sizeof(hostport));
    assert_int_equal(strncmp(hostport, "127.0.0.1:", 10), 0);
    assert_int_equal(write(c, "ping", 4), 4);
    {
        char buf[8];

        pfd.fd = a;
        assert_int_equal(poll(&pfd, 1, 5000), 1);
        assert_int_equal(read(a, buf, sizeof(buf)), 4);
        assert_memory_equal(buf, "ping", 4);
    }
    close(a);
    close(c);
    close(fd);
}

static void
test_reuseport(void **state)
{
    char addr[32];
    int a = bl_net_listen("127.0.0.1:0", 0, true);
    int b;
    int c;
    int one = 0;
    socklen_t olen = sizeof(one);

    (void)state;
    assert_true(a >= 0);
    assert_int_equal(getsockopt(a, SOL_SOCKET, SO_REUSEPORT, &one, &olen), 0);
    assert_int_not_equal(one, 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", bound_port(a));
    /* a second SO_REUSEPORT listener shares the port (one per LB worker) */
    b = bl_net_listen(addr, 0, true);
    assert_true(b >= 0);
    assert_int_equal(bound_port(b), bound_port(a));
    /* without SO_REUSEPORT the port is taken */
    c = bl_net_listen(addr, 0, false);
    assert_int_equal(c, -EADDRINUSE);
    close(b);
    close(a);
}

static void
test_listen_errors(void **state)
{
    (void)state;
    assert_int_equal(bl_net_listen("nonsense", 16, false), BL_EINVAL);
    assert_int_equal(bl_net_listen("127.0.0.1:99999", 16, false), BL_EINVAL);
    /* 192.0.2.1 (TEST-NET-1) is not an address of this host */
    assert_int_equal(bl_net_listen("192.0.2.1:0", 16, false), -EADDRNOTAVAIL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_addr_str),
        cmocka_unit_test(test_listen_flags_and_accept),
        cmocka_unit_test(test_reuseport),
        cmocka_unit_test(test_listen_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
