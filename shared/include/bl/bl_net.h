#ifndef BL_NET_H
#define BL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * Parses "HOST:PORT" ("127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80", "localhost:80")
 * into <ss>/<len>. Numeric hosts only, plus "localhost" (127.0.0.1). 0 or BL_EINVAL.
 */
int bl_net_parse_addr(const char *hostport, struct sockaddr_storage *ss, socklen_t *len);

/*
 * Opens a non-blocking, close-on-exec TCP listener on <hostport> with SO_REUSEADDR (and
 * SO_REUSEPORT when <reuseport>, so each worker can own a listener on the same port).
 * IPv6 listeners are IPv6-only (IPV6_V6ONLY, as nginx does): list "0.0.0.0:P" as well
 * for both families. <backlog> <= 0 means SOMAXCONN. Returns the fd, BL_EINVAL for a bad
 * address, or -errno (e.g. -EADDRINUSE).
 */
int bl_net_listen(const char *hostport, int backlog, bool reuseport);

/*
 * Formats <sa> as "HOST:PORT" ("[v6]:PORT" for IPv6, "unix:PATH", "-" for NULL) into <out>
 * (64 bytes fit every IP address; shorter buffers get a truncated, terminated string).
 */
void bl_net_addr_str(const struct sockaddr *sa, char *out, size_t outlen);

#endif /* BL_NET_H */
