#ifndef LB_CHUNKED_H
#define LB_CHUNKED_H

/*
 * Incremental scanner for a chunked message body (RFC 9112 7.1). The proxy forwards the
 * body byte for byte; the scanner only finds where it ends and checks its framing, so
 * a body is never buffered whole and never re-encoded. Errors are LB_HTTP_E* codes
 * (lb_http.h): answer lb_http_error_status(err) (400, 413 or 431) and close.
 *
 *     struct lb_chunked ck;
 *     lb_chunked_init(&ck, max_body);
 *     on every read: r = lb_chunked_scan(&ck, data, n, &used);
 *         forward data[0..used); r == 1: body ended, data + used starts the next message;
 *         r == 0: all n bytes used, read more; r < 0: framing error.
 *
 * Accepted: chunk-size as 1*HEXDIG (leading zeros allowed, value < 2^63), optional
 * whitespace and chunk extensions after it (visible characters, SP, HTAB only), CRLF;
 * exactly CRLF after each chunk's data; a trailer section of field lines (token name,
 * ':' with no whitespace before it, no obs-fold, no control characters) ended by CRLF.
 * Bare CR or bare LF anywhere in the framing is an error.
 */

#include <stddef.h>
#include <stdint.h>

#define LB_CHUNKED_DEFAULT_MAX_LINE     4096u  /* size line incl. extensions and CRLF */
#define LB_CHUNKED_DEFAULT_MAX_TRAILERS 16384u /* whole trailer section incl. final CRLF */

struct lb_chunked {
    uint64_t max_body;       /* limit on decoded data bytes; 0 = none (-> 413) */
    uint32_t max_line;       /* limit on a size line (-> LB_HTTP_ECHUNK_EXT) */
    uint32_t max_trailers;   /* limit on the trailer section (-> 431) */
    uint64_t total;          /* decoded data bytes so far (sum of chunk sizes) */
    uint64_t remain;         /* private: data bytes left in the current chunk */
    uint64_t size;           /* private: chunk size being parsed */
    uint32_t line_len;       /* private: bytes of the current line so far */
    uint32_t trailer_len;    /* private: bytes of the trailer section so far */
    uint8_t state;           /* private */
    uint8_t ndigits;         /* private: hex digits in the current size */
};

/*
 * Resets <c> for a new body with the default line/trailer limits; <max_body> bounds the
 * decoded size (0 = no bound). The limits fields may be changed after init.
 */
void lb_chunked_init(struct lb_chunked *c, uint64_t max_body);

/*
 * Scans the next <len> bytes of the body at <buf>. Sets *<consumed> to the bytes that
 * belong to the body. Returns 1 when the body ended (*consumed counts bytes up to and
 * including the CRLF that ends the trailer section; later bytes are not read), 0 when all
 * <len> bytes were consumed and more are needed, or a negative LB_HTTP_E* code on
 * invalid framing or a limit exceeded (LB_HTTP_ECHUNK_SIZE for bad hex or a size >= 2^63,
 * LB_HTTP_EBODY_TOO_LARGE when total would exceed max_body, LB_HTTP_ECHUNK_CRLF,
 * LB_HTTP_ECHUNK_EXT, LB_HTTP_ETRAILER, LB_HTTP_ETRAILER_TOO_LARGE, LB_HTTP_ECRLF); the
 * state is then sticky (further calls return the same error). Any split of the same
 * bytes over several calls gives the same result. After 1, further calls return 1
 * with *consumed = 0. O(number of framing bytes); data bytes are skipped, not read.
 */
int lb_chunked_scan(struct lb_chunked *c, const char *buf, size_t len, size_t *consumed);

/* Returns 1 when the scanner has seen the end of the body, else 0. */
int lb_chunked_done(const struct lb_chunked *c);

#endif /* LB_CHUNKED_H */
