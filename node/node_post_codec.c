#include "node_post_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_err.h"

#define F_TITLE "title"
#define F_BODY "body"
#define F_AUTHOR "author"
#define F_TAGS "tags"
#define F_CREATED "created_at"
#define F_UPDATED "updated_at"
#define F_VERSION "version"

int
node_post_codec_append(const struct node_post *p, bson_t *doc)
{
    bson_t tags;
    size_t i;

    if (!BSON_APPEND_UTF8(doc, F_TITLE, p->title != NULL ? p->title : "")
        || !BSON_APPEND_UTF8(doc, F_BODY, p->body != NULL ? p->body : "")
        || !BSON_APPEND_UTF8(doc, F_AUTHOR, p->author != NULL ? p->author : "")
        || !BSON_APPEND_ARRAY_BEGIN(doc, F_TAGS, &tags)) {
        return -ENOMEM;
    }
    for (i = 0; i < p->ntags; i++) {
        char keybuf[16];
        const char *key;
        size_t klen = bson_uint32_to_string((uint32_t)i, &key, keybuf, sizeof(keybuf));

        if (!bson_append_utf8(&tags, key, (int)klen, p->tags[i], -1)) {
            bson_append_array_end(doc, &tags);
            return -ENOMEM;
        }
    }
    if (!bson_append_array_end(doc, &tags)
        || !BSON_APPEND_DATE_TIME(doc, F_CREATED, (int64_t)p->created_ms)
        || !BSON_APPEND_DATE_TIME(doc, F_UPDATED, (int64_t)p->updated_ms)
        || !BSON_APPEND_INT64(doc, F_VERSION, (int64_t)p->version)) {
        return -ENOMEM;
    }
    return 0;
}

/* Copies the UTF-8 value at <it> into *dst (NUL-terminated). 0, BL_EPARSE or -ENOMEM. */
static int
dup_utf8(const bson_iter_t *it, char **dst)
{
    uint32_t len;
    const char *s;

    if (!BSON_ITER_HOLDS_UTF8(it)) {
        return BL_EPARSE;
    }
    s = bson_iter_utf8(it, &len);
    *dst = malloc((size_t)len + 1);
    if (*dst == NULL) {
        return -ENOMEM;
    }
    memcpy(*dst, s, len);
    (*dst)[len] = '\0';
    return 0;
}

static int
get_int(const bson_iter_t *it, int64_t *v)
{
    if (BSON_ITER_HOLDS_DATE_TIME(it)) {
        *v = bson_iter_date_time(it);
    } else if (BSON_ITER_HOLDS_INT64(it)) {
        *v = bson_iter_int64(it);
    } else if (BSON_ITER_HOLDS_INT32(it)) {
        *v = bson_iter_int32(it);
    } else {
        return BL_EPARSE;
    }
    return 0;
}

static int
decode_tags(const bson_iter_t *arr, struct node_post *out)
{
    bson_iter_t child;
    size_t n = 0, cap = 0;
    int rc;

    if (!BSON_ITER_HOLDS_ARRAY(arr) || !bson_iter_recurse(arr, &child)) {
        return BL_EPARSE;
    }
    while (bson_iter_next(&child)) {
        if (n == cap) {
            size_t ncap = cap == 0 ? 4 : cap * 2;
            char **t = realloc(out->tags, ncap * sizeof(*t));

            if (t == NULL) {
                return -ENOMEM;
            }
            out->tags = t;
            cap = ncap;
        }
        rc = dup_utf8(&child, &out->tags[n]);
        if (rc != 0) {
            return rc;
        }
        n++;
        out->ntags = n;
    }
    return 0;
}

int
node_post_codec_decode(const bson_t *doc, struct node_post *out)
{
    bson_iter_t it;
    unsigned seen = 0;
    int64_t v;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!bson_iter_init(&it, doc)) {
        return BL_EPARSE;
    }
    while (rc == 0 && bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);

        if (strcmp(k, F_TITLE) == 0) {
            rc = dup_utf8(&it, &out->title);
            seen |= 1;
        } else if (strcmp(k, F_BODY) == 0) {
            rc = dup_utf8(&it, &out->body);
            seen |= 2;
        } else if (strcmp(k, F_AUTHOR) == 0) {
            rc = dup_utf8(&it, &out->author);
            seen |= 4;
        } else if (strcmp(k, F_TAGS) == 0) {
            rc = decode_tags(&it, out);
            seen |= 8;
        } else if (strcmp(k, F_CREATED) == 0) {
            rc = get_int(&it, &v);
            out->created_ms = (uint64_t)v;
            seen |= 16;
        } else if (strcmp(k, F_UPDATED) == 0) {
            rc = get_int(&it, &v);
            out->updated_ms = (uint64_t)v;
            seen |= 32;
        } else if (strcmp(k, F_VERSION) == 0) {
            rc = get_int(&it, &v);
            out->version = (uint64_t)v;
            seen |= 64;
        }
    }
    if (rc == 0 && seen != 127) {
        rc = BL_EPARSE;
    }
    if (rc != 0) {
        node_post_deinit(out);
    }
    return rc;
}

int
node_post_codec_decode_raw(const uint8_t *data, size_t len, struct node_post *out)
{
    bson_t doc;

    if (!bson_init_static(&doc, data, len)) {
        memset(out, 0, sizeof(*out));
        return BL_EPARSE;
    }
    return node_post_codec_decode(&doc, out);
}

int
node_post_codec_version(const uint8_t *data, size_t len, uint64_t *version)
{
    bson_t doc;
    bson_iter_t it;
    int64_t v;

    if (!bson_init_static(&doc, data, len) || !bson_iter_init_find(&it, &doc, F_VERSION)
        || get_int(&it, &v) != 0) {
        return BL_EPARSE;
    }
    *version = (uint64_t)v;
    return 0;
}
