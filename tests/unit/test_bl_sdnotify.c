/* bl_sdnotify: the sd_notify datagram protocol against real AF_UNIX sockets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "bl/bl_sdnotify.h"

/* A datagram socket bound to <addr> ("@name" = abstract); returns its fd. */
static int
listen_dgram(const char *addr)
{
    struct sockaddr_un sa;
    size_t n = strlen(addr);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_true(n < sizeof(sa.sun_path));
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, addr, n);
    if (addr[0] == '@') {
        sa.sun_path[0] = '\0';
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&sa,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)), 0);
    return fd;
}

static void
recv_expect(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void
test_unset_is_noop(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(bl_sdnotify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(bl_sdnotify("READY=1"), 0);
    unsetenv("NOTIFY_SOCKET");
}

static void
test_path_socket(void **state)
{
    char dir[] = "/tmp/test_bl_sdnotify.XXXXXX";
    char path[128];
    int fd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    fd = listen_dgram(path);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(bl_sdnotify("READY=1"), 0);
    recv_expect(fd, "READY=1");
    assert_int_equal(bl_sdnotify("RELOADING=1\nSTATUS=reloading"), 0);
    recv_expect(fd, "RELOADING=1\nSTATUS=reloading");
    /* nothing else was sent */
    {
        char c;

        assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    }
    close(fd);
    unlink(path);
    /* the listener is gone: the send error comes back as -errno */
    assert_int_equal(bl_sdnotify("READY=1"), -ENOENT);
    rmdir(dir);
    unsetenv("NOTIFY_SOCKET");
}

static void
test_abstract_socket(void **state)
{
    char name[64];
    int fd;

    (void)state;
    snprintf(name, sizeof(name), "@blogscale-test-sdnotify-%ld", (long)getpid());
    fd = listen_dgram(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(bl_sdnotify("STOPPING=1"), 0);
    recv_expect(fd, "STOPPING=1");
    close(fd);
    assert_int_equal(bl_sdnotify("READY=1"), -ECONNREFUSED);
    unsetenv("NOTIFY_SOCKET");
}

static void
test_bad_input(void **state)
{
    char longpath[200];

    (void)state;
    setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
    assert_int_equal(bl_sdnotify(NULL), -EINVAL);
    assert_int_equal(bl_sdnotify(""), -EINVAL);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(bl_sdnotify("READY=1"), -EAFNOSUPPORT);
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    assert_int_equal(bl_sdnotify("READY=1"), -EAFNOSUPPORT);
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longpath, 1);
    assert_int_equal(bl_sdnotify("READY=1"), -ENAMETOOLONG);
    unsetenv("NOTIFY_SOCKET");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_is_noop),
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_bad_input),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
