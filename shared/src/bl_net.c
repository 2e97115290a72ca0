#include "bl/bl_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "bl/bl_err.h"

/* Parses a decimal port "0".."65535" ending the string. */
static int
parse_port(const char *s, in_port_t *port)
{
    unsigned long v = 0;

    if (*s == '\0' || strlen(s) > 5) {
        return BL_EINVAL;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return BL_EINVAL;
        }
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v > 65535) {
        return BL_EINVAL;
    }
    *port = (in_port_t)v;
    return 0;
}

int
bl_net_parse_addr(const char *hostport, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon;
    const char *port_str;
    size_t hlen;
    in_port_t port;
    bool v6 = false;

    if (hostport == NULL || ss == NULL || len == NULL) {
        return BL_EINVAL;
    }
    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');

        if (close == NULL || close[1] != ':') {
            return BL_EINVAL;
        }
        hlen = (size_t)(close - hostport - 1);
        if (hlen == 0 || hlen >= sizeof(host)) {
            return BL_EINVAL;
        }
        memcpy(host, hostport + 1, hlen);
        port_str = close + 2;
        v6 = true;
    } else {
        colon = strrchr(hostport, ':');
        if (colon == NULL || memchr(hostport, ':', (size_t)(colon - hostport)) != NULL) {
            return BL_EINVAL;                    /* bare IPv6 needs brackets */
        }
        hlen = (size_t)(colon - hostport);
        if (hlen == 0 || hlen >= sizeof(host)) {
            return BL_EINVAL;
        }
        memcpy(host, hostport, hlen);
        port_str = colon + 1;
    }
    host[hlen] = '\0';
    if (parse_port(port_str, &port) != 0) {
        return BL_EINVAL;
    }
    memset(ss, 0, sizeof(*ss));
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            return BL_EINVAL;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;

        if (strcmp(host, "localhost") == 0) {
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        } else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            return BL_EINVAL;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *len = sizeof(*sin);
    }
    return 0;
}

int
bl_net_listen(const char *hostport, int backlog, bool reuseport)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;
    int fd;
    int err;

    err = bl_net_parse_addr(hostport, &ss, &len);
    if (err != 0) {
        return err;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        goto fail;
    }
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        goto fail;
    }
    /* "[::]:80" means IPv6 only, as in nginx; list "0.0.0.0:80" too for both. */
    if (ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        goto fail;
    }
    if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) {
        goto fail;
    }
    return fd;

fail:
    err = -errno;
    close(fd);
    return err;
}

void
bl_net_addr_str(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];

    if (out == NULL || outlen == 0) {
        return;
    }
    if (sa == NULL) {
        snprintf(out, outlen, "-");
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)(const void *)sa;

        snprintf(out, outlen, "unix:%.*s", (int)sizeof(sun->sun_path), sun->sun_path);
    } else {
        snprintf(out, outlen, "family-%d", (int)sa->sa_family);
    }
}
