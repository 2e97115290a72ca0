#include "bl/bl_sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
bl_sdnotify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t salen;
    size_t plen;
    ssize_t n;
    int fd, rc;

    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    if (state == NULL || state[0] == '\0') {
        return -EINVAL;
    }
    if (path[0] != '/' && path[0] != '@') {
        return -EAFNOSUPPORT;
    }
    plen = strlen(path);
    if (plen >= sizeof(sa.sun_path)) {
        return -ENAMETOOLONG;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, plen);
    /* "@name": abstract namespace, a leading NUL and exactly plen bytes of name. */
    if (path[0] == '@') {
        sa.sun_path[0] = '\0';
    }
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    rc = n < 0 ? -errno : 0;
    close(fd);
    return rc;
}
