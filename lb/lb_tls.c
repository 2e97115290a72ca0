#include "lb_tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bl/bl_conf.h"
#include "bl/bl_util.h"

#define DEFAULT_CIPHERS                                                                    \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                           \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                           \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* ---- session ticket keys (process-wide, rotated by the control thread) ------------- */

struct tkey {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
};

static pthread_mutex_t tk_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tkey tk_cur, tk_prev;
static int tk_ready;

static void
tkey_new(struct tkey *k)
{
    if (RAND_bytes((unsigned char *)k, sizeof(*k)) != 1) {
        /* RAND_bytes only fails without entropy: keep a distinct name at least */
        memset(k, 0, sizeof(*k));
    }
}

void
lb_tls_rotate_keys(void)
{
    pthread_mutex_lock(&tk_mu);
    tk_prev = tk_cur;
    tkey_new(&tk_cur);
    tk_ready = 1;
    pthread_mutex_unlock(&tk_mu);
}

static int
ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
          EVP_MAC_CTX *hctx, int enc)
{
    struct tkey k;
    int rc = 1;
    OSSL_PARAM params[3];

    (void)s;
    pthread_mutex_lock(&tk_mu);
    if (!tk_ready) {
        tkey_new(&tk_cur);
        tk_prev = tk_cur;
        tk_ready = 1;
    }
    if (enc) {
        k = tk_cur;
    } else if (memcmp(name, tk_cur.name, 16) == 0) {
        k = tk_cur;
    } else if (memcmp(name, tk_prev.name, 16) == 0) {
        k = tk_prev;
        rc = 2;     /* valid, but issue a ticket under the current key */
    } else {
        pthread_mutex_unlock(&tk_mu);
        return 0;   /* unknown key: full handshake */
    }
    pthread_mutex_unlock(&tk_mu);
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (enc) {
        memcpy(name, k.name, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 ||
            EVP_MAC_CTX_set_params(hctx, params) != 1) {
            return -1;
        }
        return 1;
    }
    if (EVP_MAC_CTX_set_params(hctx, params) != 1 ||
        EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1) {
        return -1;
    }
    return rc;
}

/* ---- context ----------------------------------------------------------------------- */

/* Per default SSL_CTX: the SNI contexts, freed with it (ex_data free callback). */
struct lb_tls_sni {
    size_t n;
    SSL_CTX **ctx;
    X509 **cert;                        /* leaf of each (borrowed from its ctx) */
};

static int sni_idx = -1;
static pthread_once_t sni_once = PTHREAD_ONCE_INIT;

static void
sni_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct lb_tls_sni *sn = ptr;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (sn == NULL) {
        return;
    }
    for (size_t i = 0; i < sn->n; i++) {
        SSL_CTX_free(sn->ctx[i]);
    }
    free(sn->ctx);
    free(sn->cert);
    free(sn);
}

static void
sni_init(void)
{
    sni_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_free);
}

static int
servername_cb(SSL *s, int *al, void *arg)
{
    SSL_CTX *def = arg;
    struct lb_tls_sni *sn = SSL_CTX_get_ex_data(def, sni_idx);
    const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);

    (void)al;
    if (name == NULL || sn == NULL) {
        return SSL_TLSEXT_ERR_OK;
    }
    for (size_t i = 0; i < sn->n; i++) {
        if (X509_check_host(sn->cert[i], name, 0, 0, NULL) == 1) {
            SSL_set_SSL_CTX(s, sn->ctx[i]);
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

static int
alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
        unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";

    (void)s;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, h11, sizeof(h11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;    /* no http/1.1 offered: go on without ALPN */
    }
    return SSL_TLSEXT_ERR_OK;
}

static void
ssl_err(char *err, size_t errlen, const char *what, const char *path, const char *step)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";

    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }
    snprintf(err, errlen, "%s: %s: %s%s%s", what, path ? path : "-", step, buf[0] ? ": " : "",
             buf);
    ERR_clear_error();
}

/* A context with one certificate/key pair. */
static SSL_CTX *
ctx_one(const struct bl_conf_tls *cf, const char *cert, const char *key, const char *what,
        char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        ssl_err(err, errlen, what, NULL, "cannot create an SSL_CTX");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(ctx, cf->ciphers ? cf->ciphers : DEFAULT_CIPHERS) != 1) {
        ssl_err(err, errlen, what, NULL, "tls.ciphers: no usable cipher");
        goto fail;
    }
    if (cf->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, cf->ciphersuites) != 1) {
        ssl_err(err, errlen, what, NULL, "tls.ciphersuites: no usable suite");
        goto fail;
    }
    if (access(cert, R_OK) != 0 || access(key, R_OK) != 0) {
        const char *bad = access(cert, R_OK) != 0 ? cert : key;
        snprintf(err, errlen, "%s: %s: cannot read the %s: %s", what, bad,
                 bad == cert ? "certificate" : "private key", strerror(errno));
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_err(err, errlen, what, cert, "cannot load the certificate chain");
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            char both[1024];
            snprintf(both, sizeof(both), "%s and %s", key, cert);
            ssl_err(err, errlen, what, both, "the private key does not match the certificate");
        } else {
            ssl_err(err, errlen, what, key, "cannot load the private key");
        }
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        char both[1024];
        snprintf(both, sizeof(both), "%s and %s", cert, key);
        ssl_err(err, errlen, what, both, "the private key does not match the certificate");
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"blog-lb", 7);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 65536);
    SSL_CTX_set_timeout(ctx, 7200);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *
lb_tls_ctx_create(const struct bl_conf_tls *cf, const char *what, char *err, size_t errlen)
{
    SSL_CTX *def;
    struct lb_tls_sni *sn;

    pthread_once(&sni_once, sni_init);
    if (cf->cert == NULL || cf->key == NULL) {
        snprintf(err, errlen, "%s: tls.cert and tls.key are required", what);
        return NULL;
    }
    def = ctx_one(cf, cf->cert, cf->key, what, err, errlen);
    if (def == NULL) {
        return NULL;
    }
    if (cf->nsni == 0) {
        return def;
    }
    sn = bl_xcalloc(1, sizeof(*sn));
    sn->ctx = bl_xcalloc(cf->nsni, sizeof(*sn->ctx));
    sn->cert = bl_xcalloc(cf->nsni, sizeof(*sn->cert));
    if (SSL_CTX_set_ex_data(def, sni_idx, sn) != 1) {
        sni_free(NULL, sn, NULL, 0, 0, NULL);
        SSL_CTX_free(def);
        snprintf(err, errlen, "%s: out of memory", what);
        return NULL;
    }
    for (size_t i = 0; i < cf->nsni; i++) {
        sn->ctx[i] = ctx_one(cf, cf->sni[i].cert, cf->sni[i].key, what, err, errlen);
        if (sn->ctx[i] == NULL) {
            SSL_CTX_free(def);  /* frees sn and the contexts made so far */
            return NULL;
        }
        sn->cert[i] = SSL_CTX_get0_certificate(sn->ctx[i]);
        sn->n = i + 1;
    }
    SSL_CTX_set_tlsext_servername_callback(def, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(def, def);
    return def;
}

/* ---- connection I/O ------------------------------------------------------------------ */

ssize_t
lb_tls_read(struct lb_conn *c, void *buf, size_t n)
{
    int r, e;

    ERR_clear_error();
    r = SSL_read(c->ssl, buf, (int)BL_MIN(n, (size_t)INT32_MAX));
    if (r > 0) {
        if (SSL_pending(c->ssl) > 0) {
            /* decrypted bytes wait inside OpenSSL, the socket may stay quiet: come back */
            ev_feed_event(c->w->loop, &c->io, EV_READ);
        }
        return r;
    }
    e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->tls_wantw = 1;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;               /* close_notify: EOF */
    case SSL_ERROR_SYSCALL:
        if (r == 0 || errno == 0) {
            return 0;           /* EOF without close_notify: treated as EOF */
        }
        return -1;
    default:
        ERR_clear_error();
        errno = EPROTO;         /* handshake failure (bad version, no shared cipher...) */
        return -1;
    }
}

int
lb_tls_flush(struct lb_conn *c)
{
    struct lb_pend *p = &c->to_c;

    while (p->off < p->len) {
        int r, e;
        ERR_clear_error();
        r = SSL_write(c->ssl, p->buf + p->off, (int)BL_MIN(p->len - p->off, (uint32_t)INT32_MAX));
        if (r > 0) {
            p->off += (uint32_t)r;
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            return 0;
        }
        ERR_clear_error();
        return -1;
    }
    p->off = p->len = 0;
    return 1;
}

void
lb_tls_close(struct lb_conn *c)
{
    if (c->ssl == NULL) {
        return;
    }
    if (SSL_is_init_finished(c->ssl)) {
        (void)SSL_shutdown(c->ssl);     /* one attempt: sends close_notify, does not wait */
    }
    ERR_clear_error();
    SSL_free(c->ssl);
    c->ssl = NULL;
}
