#ifndef LB_TLS_H
#define LB_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "lb_types.h"

struct bl_conf_tls;

/*
 * TLS termination for mode: http listeners with tls: (OpenSSL 3).
 *
 * One server SSL_CTX per TLS listener and load (start, each reload): TLS 1.2 and 1.3 only,
 * the Mozilla "intermediate" TLS 1.2 list by default (ECDHE with AES-GCM or
 * ChaCha20-Poly1305; tls.ciphers / tls.ciphersuites override), ALPN "http/1.1", no
 * renegotiation, no compression. Extra tls.sni certificate/key pairs get their own
 * SSL_CTX, chosen in the servername callback when the client's SNI matches the
 * certificate (X509_check_host: SAN DNS names, wildcards, or the CN without SANs); anything
 * else gets the default pair. Resumption: a server-side session cache (per SSL_CTX, shared
 * by the workers) and session tickets whose keys (AES-256-CBC + HMAC-SHA256) rotate every
 * LB_TLS_TICKET_ROTATE seconds; tickets made with the previous key are still accepted
 * (and renewed) for one more period.
 *
 * A new SSL_CTX built by a reload serves new connections; established ones keep theirs
 * (an SSL holds a reference on its SSL_CTX). The contexts reach the workers through the
 * routing snapshot (lb_state.tls), which is reclaimed after its grace period.
 */

#define LB_TLS_TICKET_ROTATE 3600.0

/* Builds the SSL_CTX of a listener. NULL with a message in <err> ("<what>: <path>: <why>"). */
SSL_CTX *lb_tls_ctx_create(const struct bl_conf_tls *cf, const char *what, char *err,
                           size_t errlen);

/* Control thread: new ticket keys for every context created so far (the current key
 * becomes the previous one). */
void lb_tls_rotate_keys(void);

/* Client I/O of a TLS connection: like read(2)/write(2) (-1 with errno EAGAIN when the
 * TLS layer needs the socket; EV_WRITE is requested through c->tls_wantw). */
ssize_t lb_tls_read(struct lb_conn *c, void *buf, size_t n);

/* Flushes c->to_c through SSL_write. 1 when empty, 0 when some remain, -1 on error. */
int lb_tls_flush(struct lb_conn *c);

/* Sends close_notify (best effort, non-blocking) and frees the SSL. */
void lb_tls_close(struct lb_conn *c);

#endif /* LB_TLS_H */
