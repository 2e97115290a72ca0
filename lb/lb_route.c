#include "lb_route.h"

#include <string.h>

#include "bl/bl_hash.h"

static int
hexval(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* Hashes the id segment <s>/<n>, percent-decoding it. 0 or -1 on a bad id. */
static int
hash_id(const char *s, size_t n, struct lb_route_match *out)
{
    char dec[LB_ROUTE_MAX_ID];
    size_t i, j = 0;

    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
        return -1;
    }
    if (memchr(s, '%', n) == NULL) {
        if (n > LB_ROUTE_MAX_ID) {
            return -1;
        }
        out->hash = bl_hash64(s, n);
        out->id_len = n;
        return 0;
    }
    for (i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            int hi, lo;
            if (i + 2 >= n) {
                return -1;
            }
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            ch = hi * 16 + lo;
            i += 2;
        }
        if (j == sizeof(dec)) {
            return -1;
        }
        dec[j++] = (char)ch;
    }
    if ((j == 1 && dec[0] == '.') || (j == 2 && dec[0] == '.' && dec[1] == '.')) {
        return -1;
    }
    out->hash = bl_hash64(dec, j);
    out->id_len = j;
    return 0;
}

static enum lb_route
match_collection(const char *p, size_t n, size_t plen, enum lb_route coll,
                 enum lb_route item, struct lb_route_match *out)
{
    /* p[0..plen) is "/posts" or "/assets" */
    if (n == plen) {
        out->route = coll;
        return coll;
    }
    if (p[plen] != '/') {
        return LB_ROUTE_NONE;
    }
    p += plen + 1;
    n -= plen + 1;
    if (memchr(p, '/', n) != NULL || hash_id(p, n, out) < 0) {
        return LB_ROUTE_NONE;
    }
    out->by_id = 1;
    out->route = item;
    return item;
}

enum lb_route
lb_route_match(const char *target, size_t len, struct lb_route_match *out)
{
    const char *q;
    size_t n = len;

    out->route = LB_ROUTE_NONE;
    out->by_id = 0;
    out->hash = 0;
    out->id_len = 0;
    q = memchr(target, '?', len);
    if (q != NULL) {
        n = (size_t)(q - target);
    }
    if (n >= 6 && memcmp(target, "/posts", 6) == 0) {
        out->route = match_collection(target, n, 6, LB_ROUTE_POSTS, LB_ROUTE_POST_ID, out);
    } else if (n >= 7 && memcmp(target, "/assets", 7) == 0) {
        out->route = match_collection(target, n, 7, LB_ROUTE_ASSETS, LB_ROUTE_ASSET_ID, out);
    }
    if (out->route == LB_ROUTE_NONE) {
        out->by_id = 0;
    }
    return out->route;
}

const char *
lb_route_name(enum lb_route r)
{
    switch (r) {
    case LB_ROUTE_POST_ID:
        return "post";
    case LB_ROUTE_POSTS:
        return "posts";
    case LB_ROUTE_ASSET_ID:
        return "asset";
    case LB_ROUTE_ASSETS:
        return "assets";
    default:
        return "none";
    }
}
