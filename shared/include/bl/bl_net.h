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
 * SO_REUSEPORT when <reuseport>). Returns the fd or a negative error.
 */
int bl_net_listen(const char *hostport, int backlog, bool reuseport);

/* Formats <sa> as "HOST:PORT" into <out> (at least 64 bytes). */
void bl_net_addr_str(const struct sockaddr *sa, char *out, size_t outlen);

#endif /* BL_NET_H */
