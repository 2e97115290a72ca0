#ifndef LB_HTTP_H
#define LB_HTTP_H

/*
 * Strict, incremental, zero-copy HTTP/1.1 head parser (RFC 9110 / RFC 9112) for blog-lb.
 *
 * The parser never copies or allocates: a parsed head is a set of offsets/lengths into
 * the caller's buffer plus the facts the proxy needs (method, version, framing,
 * keep-alive, Expect, notable header positions). Offsets are relative to the start of
 * the buffer passed in, so the buffer may move (realloc) between calls as long as its
 * bytes stay the same. Everything it accepts and rejects is listed in docs/HTTP.md.
 *
 * Incremental use (one message):
 *
 *     struct lb_http_req req;
 *     lb_http_req_init(&req);
 *     for (;;) {
 *         read more bytes, appending to buf (buf[0] is the first byte of the message);
 *         int n = lb_http_parse_request(buf, len, &lim, &req);
 *         if (n > 0)  { head is buf[0..n); body / next message starts at buf + n; break; }
 *         if (n == 0) { need more bytes; continue; }
 *         reply lb_http_error_status(n) and close;
 *     }
 *
 * Each call resumes where the previous one stopped (complete lines are validated once
 * and never rescanned), so feeding a 64 KiB head one byte at a time costs O(n).
 * Pipelining: after the head (and its body) the next message starts at a new offset;
 * call lb_http_req_init() again and pass buf + that offset.
 */

#include <stddef.h>
#include <stdint.h>

/*
 * Error codes. Every parser error is a negative code from this table, outside the errno
 * and BL_E* ranges. X(name, value, http status to answer, short reason).
 * For lb_http_parse_response() errors the status column is informational: a proxy answers
 * a malformed backend response with 502.
 */
#define LB_HTTP_ERR_MAP(X)                                                                   \
    X(LB_HTTP_EMETHOD,      -20001, 400, "invalid method token")                            \
    X(LB_HTTP_ETARGET,      -20002, 400, "invalid request target")                          \
    X(LB_HTTP_EVERSION,     -20003, 400, "malformed HTTP version")                          \
    X(LB_HTTP_EVERSION_UNSUPP, -20004, 505, "HTTP version not supported")                   \
    X(LB_HTTP_ELINE,        -20005, 400, "malformed request or status line")                \
    X(LB_HTTP_ECRLF,        -20006, 400, "bare CR or LF where CRLF is required")            \
    X(LB_HTTP_EOBSFOLD,     -20007, 400, "obsolete line folding")                           \
    X(LB_HTTP_EHNAME,       -20008, 400, "invalid header name")                             \
    X(LB_HTTP_EHCOLON,      -20009, 400, "whitespace before colon or missing colon")        \
    X(LB_HTTP_EHVALUE,      -20010, 400, "control character in header value")               \
    X(LB_HTTP_ECL,          -20011, 400, "malformed Content-Length")                        \
    X(LB_HTTP_ECL_DUP,      -20012, 400, "several Content-Length headers")                  \
    X(LB_HTTP_ECL_TE,       -20013, 400, "Content-Length with Transfer-Encoding")           \
    X(LB_HTTP_ETE,          -20014, 400, "Transfer-Encoding without final chunked")         \
    X(LB_HTTP_ETE_UNSUPP,   -20015, 501, "unsupported transfer coding")                     \
    X(LB_HTTP_ETE_HTTP10,   -20016, 400, "Transfer-Encoding in an HTTP/1.0 message")        \
    X(LB_HTTP_EHOST_MISSING, -20017, 400, "missing Host header")                            \
    X(LB_HTTP_EHOST_DUP,    -20018, 400, "several Host headers")                            \
    X(LB_HTTP_EHOST,        -20019, 400, "invalid Host header")                             \
    X(LB_HTTP_ECONNECTION,  -20020, 400, "invalid Connection header")                       \
    X(LB_HTTP_EEXPECT,      -20021, 417, "unsupported expectation")                         \
    X(LB_HTTP_ENOTIMPL,     -20022, 501, "method not implemented")                          \
    X(LB_HTTP_ELINE_TOO_LONG, -20023, 414, "request line too long")                         \
    X(LB_HTTP_EHEAD_TOO_LARGE, -20024, 431, "header section too large")                     \
    X(LB_HTTP_ETOO_MANY_HEADERS, -20025, 431, "too many header fields")                     \
    X(LB_HTTP_EBODY_TOO_LARGE, -20026, 413, "body too large")                               \
    X(LB_HTTP_ESTATUS,      -20027, 502, "invalid status code")                             \
    X(LB_HTTP_ECHUNK_SIZE,  -20028, 400, "invalid chunk size")                              \
    X(LB_HTTP_ECHUNK_EXT,   -20029, 400, "invalid or too long chunk extension")             \
    X(LB_HTTP_ECHUNK_CRLF,  -20030, 400, "missing CRLF after chunk data")                   \
    X(LB_HTTP_ETRAILER,     -20031, 400, "invalid trailer field")                           \
    X(LB_HTTP_ETRAILER_TOO_LARGE, -20032, 431, "trailer section too large")

enum lb_http_err {
#define LB_HTTP_ERR_ENUM(name, value, status, text) name = value,
    LB_HTTP_ERR_MAP(LB_HTTP_ERR_ENUM)
#undef LB_HTTP_ERR_ENUM
};

/* Hard caps: offsets are 16-bit, and the header array is inline in the message. */
#define LB_HTTP_MAX_HEAD_CAP     65535u /* max_head is clamped to this */
#define LB_HTTP_MAX_HEADERS      100u   /* capacity of lb_http_head.hdrs */

#define LB_HTTP_DEFAULT_MAX_LINE    8192u  /* request line, including CRLF */
#define LB_HTTP_DEFAULT_MAX_HEAD    16384u /* whole head, including the final CRLF CRLF */
#define LB_HTTP_DEFAULT_MAX_HEADERS 100u
#define LB_HTTP_DEFAULT_MAX_BODY    (10u * 1024u * 1024u)

/* A zero max_line/max_head/max_headers means the default; a NULL limits pointer means
 * all defaults. */
struct lb_http_limits {
    uint32_t max_line;     /* request/status line bytes incl. CRLF; above -> 414 */
    uint32_t max_head;     /* head bytes incl. final CRLF CRLF; above -> 431 (<= 65535) */
    uint32_t max_headers;  /* header field count; above -> 431 (<= LB_HTTP_MAX_HEADERS) */
    uint64_t max_body;     /* Content-Length above -> 413; 0 = no limit */
};

/* Fills <lim> with the LB_HTTP_DEFAULT_* values. */
void lb_http_limits_default(struct lb_http_limits *lim);

enum lb_http_method {
    LB_HTTP_OTHER = 0, /* a valid token we do not know (proxied as is) */
    LB_HTTP_GET,
    LB_HTTP_HEAD,
    LB_HTTP_POST,
    LB_HTTP_PUT,
    LB_HTTP_DELETE,
    LB_HTTP_OPTIONS,
    LB_HTTP_PATCH,
    LB_HTTP_TRACE,
    LB_HTTP_CONNECT /* never returned: CONNECT is rejected with LB_HTTP_ENOTIMPL */
};

/* Version as 10 * major + minor: 10 (HTTP/1.0) or 11 (HTTP/1.1). */
#define LB_HTTP_10 10
#define LB_HTTP_11 11

/* How the body is delimited. */
enum lb_http_body {
    LB_HTTP_BODY_NONE = 0,  /* no body (request without CL/TE; HEAD/1xx/204/304 response) */
    LB_HTTP_BODY_LENGTH,    /* exactly content_length bytes (may be 0) */
    LB_HTTP_BODY_CHUNKED,   /* chunked: scan with lb_chunked */
    LB_HTTP_BODY_CLOSE      /* response only: until the backend closes */
};

/* Message flags (lb_http_head.flags). */
#define LB_HTTP_F_CONTENT_LENGTH  0x0001u /* a valid Content-Length is present */
#define LB_HTTP_F_CHUNKED         0x0002u /* Transfer-Encoding: chunked */
#define LB_HTTP_F_KEEP_ALIVE      0x0004u /* connection persists after this message */
#define LB_HTTP_F_EXPECT_CONTINUE 0x0008u /* request: Expect: 100-continue (HTTP/1.1 only) */
#define LB_HTTP_F_HOST            0x0010u /* request: Host present (exactly once) */
#define LB_HTTP_F_UPGRADE         0x0020u /* Upgrade header + "upgrade" Connection option */
#define LB_HTTP_F_CONN_CLOSE      0x0040u /* Connection has "close" */
#define LB_HTTP_F_CONN_KEEP_ALIVE 0x0080u /* Connection has "keep-alive" */

/*
 * Notable header ids. lb_http_head.idx[id] is the index in hdrs[] of the first field
 * with that name, or -1. Fields with the same id can be found by scanning hdrs[].id.
 */
enum lb_http_hid {
    LB_HTTP_H_OTHER = 0,
    LB_HTTP_H_HOST,
    LB_HTTP_H_CONTENT_LENGTH,
    LB_HTTP_H_TRANSFER_ENCODING,
    LB_HTTP_H_CONNECTION,
    LB_HTTP_H_KEEP_ALIVE,
    LB_HTTP_H_PROXY_CONNECTION,
    LB_HTTP_H_TE,
    LB_HTTP_H_TRAILER,
    LB_HTTP_H_UPGRADE,
    LB_HTTP_H_EXPECT,
    LB_HTTP_H_X_REQUEST_ID,
    LB_HTTP_H_X_FORWARDED_FOR,
    LB_HTTP_H_X_FORWARDED_PROTO,
    LB_HTTP_H_FORWARDED,
    LB_HTTP_H__COUNT
};

/* Header field flags (lb_http_hdr.flags). */
#define LB_HTTP_HF_HOP 0x01u /* hop-by-hop: a proxy must not forward it (RFC 9110 7.6.1):
                              * Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
                              * Transfer-Encoding, Upgrade, and any other field named
                              * in Connection (never Host/Content-Length/X-* ids). */

/*
 * One header field line. All offsets are from the start of the parsed buffer. The line
 * spans [name_off, name_off + line_len) including its CRLF, so a proxy can copy or skip
 * whole lines; the value has surrounding whitespace trimmed.
 */
struct lb_http_hdr {
    uint16_t name_off;  /* field name */
    uint16_t name_len;
    uint16_t value_off; /* field value, OWS trimmed (value_len may be 0) */
    uint16_t value_len;
    uint16_t line_len;  /* whole line incl. CRLF */
    uint8_t id;         /* enum lb_http_hid */
    uint8_t flags;      /* LB_HTTP_HF_* */
};

/* Parts common to requests and responses. Treat as read-only outside lb_http.c. */
struct lb_http_head {
    uint16_t head_len;       /* bytes of the head incl. final CRLF CRLF (set when done) */
    uint16_t start_off;      /* start of the request/status line (after skipped CRLFs) */
    uint8_t version;         /* LB_HTTP_10 or LB_HTTP_11 */
    uint8_t body;            /* enum lb_http_body */
    uint16_t flags;          /* LB_HTTP_F_* */
    uint64_t content_length; /* valid when flags & LB_HTTP_F_CONTENT_LENGTH */
    uint16_t nhdrs;          /* entries used in hdrs[] */
    int16_t idx[LB_HTTP_H__COUNT]; /* first hdrs[] index per enum lb_http_hid, or -1 */
    /* resume state (private) */
    uint32_t pos;            /* offset of the first line not yet parsed */
    uint32_t scan;           /* offset where parsing of the current line resumes */
    uint8_t stage;           /* 0 start line, 1 fields, 2 done, 3 error */
    uint8_t sub;             /* position in the current line's grammar */
    uint16_t m1;             /* marks inside the current line */
    uint16_t m2;
    struct lb_http_hdr hdrs[LB_HTTP_MAX_HEADERS];
};

struct lb_http_req {
    struct lb_http_head h;
    uint8_t method;      /* enum lb_http_method */
    uint16_t method_off; /* method token */
    uint16_t method_len;
    uint16_t target_off; /* request target as sent (origin-form, or "*" for OPTIONS) */
    uint16_t target_len;
    uint16_t path_len;   /* path = target up to '?' (starts at target_off) */
    uint16_t query_off;  /* after '?'; query_len 0 and query_off 0 when no '?' */
    uint16_t query_len;
};

struct lb_http_resp {
    struct lb_http_head h;
    uint16_t status;     /* 100..599 */
    uint16_t reason_off; /* reason phrase (may be empty) */
    uint16_t reason_len;
};

/* Resets <req>/<resp> for a new message. Must be called before the first parse call. */
void lb_http_req_init(struct lb_http_req *req);
void lb_http_resp_init(struct lb_http_resp *resp);

/*
 * Parses the request head at the start of <buf> (<len> bytes available).
 * Returns the head length (> 0) once the request line, all header fields and the empty
 * line are in <buf> and valid: <req> then holds the parsed head; the body (if any, see
 * req->h.body) starts at buf + return value. Returns 0 when more bytes are needed and no
 * error can be detected yet. Returns a negative LB_HTTP_E* code on invalid input or a
 * limit exceeded; answer lb_http_error_status(err) and close the connection.
 * Resumable: between calls <buf> may move and grow but its first bytes must not change;
 * <req> must be the same object (initialised with lb_http_req_init() before the first
 * call). Calling again after a result > 0 returns the same value. Up to
 * limits->max_head bytes are examined; bytes after the head are never read.
 * Leading empty lines (CRLF) before the request line are skipped (RFC 9112 2.2); they
 * count towards max_head. Thread-safe; no allocation.
 */
int lb_http_parse_request(const char *buf, size_t len, const struct lb_http_limits *lim,
                          struct lb_http_req *req);

/*
 * Parses a backend response head; same return convention, resuming and limits as
 * lb_http_parse_request() (limits->max_body is not applied to responses).
 * <req_method> is the method of the request this answers (enum lb_http_method): a
 * response to HEAD, and any 1xx/204/304 response, has no body whatever its headers say.
 * A 1xx response (e.g. 100 Continue) is returned as a complete head with body NONE; the
 * caller forwards it and parses the final response next (lb_http_resp_init() again).
 * Without Content-Length or chunked, a response with a body is close-delimited
 * (body CLOSE, keep-alive cleared).
 */
int lb_http_parse_response(const char *buf, size_t len, const struct lb_http_limits *lim,
                           int req_method, struct lb_http_resp *resp);

/* HTTP status to answer for a negative LB_HTTP_E* code (400 for unknown codes). */
int lb_http_error_status(int err);

/* Short static reason text for a negative LB_HTTP_E* code ("unknown error" otherwise). */
const char *lb_http_strerror(int err);

/* Standard reason phrase for an HTTP status ("Bad Request" for 400), "Unknown" if none. */
const char *lb_http_status_text(int status);

/* Method name as a static string ("GET"); "OTHER" for LB_HTTP_OTHER. */
const char *lb_http_method_name(int method);

/*
 * Case-insensitive comparison of header <h>'s name (in <buf>) with <name> of <name_len>
 * bytes. Returns 1 when equal, else 0.
 */
int lb_http_hdr_name_eq(const char *buf, const struct lb_http_hdr *h, const char *name,
                        size_t name_len);

/*
 * Index of the next field at or after hdrs[<from>] with name <name> (case-insensitive),
 * or -1. Linear in the number of fields.
 */
int lb_http_find_hdr(const char *buf, const struct lb_http_head *h, int from,
                     const char *name, size_t name_len);

#endif /* LB_HTTP_H */
