#ifndef BL_CONF_TREE_H
#define BL_CONF_TREE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Private to the config loader: the YAML text turned into a small tree of scalars,
 * mappings and sequences, each with its 1-based line:column, built from libyaml's event
 * API. Anchors, aliases, tags, more than one document, NUL characters in scalars and
 * nesting deeper than BL_CONF_TREE_MAX_DEPTH are rejected, so the tree is a plain finite
 * tree whatever the input.
 */

#define BL_CONF_TREE_MAX_DEPTH 32
#define BL_CONF_TREE_MAX_NODES 200000
#define BL_CONF_TREE_PATH_MAX 256
#define BL_CONF_TREE_MSG_MAX 320

enum bl_conf_yn_type {
    BL_CONF_YN_SCALAR,
    BL_CONF_YN_MAP,
    BL_CONF_YN_SEQ,
};

struct bl_conf_yn {
    enum bl_conf_yn_type type;
    char *value;                /* scalar text, NUL-terminated (no NUL inside) */
    size_t len;                 /* scalar length */
    bool plain;                 /* scalar was unquoted (only plain scalars are bool/int/null) */
    unsigned line;              /* 1-based */
    unsigned col;               /* 1-based */
    struct bl_conf_yn **kids;   /* map: key, value, key, value...; seq: items */
    size_t nkids;
    size_t cap;
};

/* Where and why the text could not be turned into a tree. */
struct bl_conf_tree_err {
    unsigned line;              /* 1-based */
    unsigned col;               /* 1-based */
    char path[BL_CONF_TREE_PATH_MAX];   /* dotted key being parsed, "" at the top */
    char msg[BL_CONF_TREE_MSG_MAX];
};

/*
 * Parses <len> bytes at <buf> (any bytes; need not be NUL-terminated). On success returns
 * 0 and sets *root (NULL for an empty stream); the caller frees it with
 * bl_conf_tree_free(). On failure returns BL_EPARSE and fills <err>; nothing to free.
 */
int bl_conf_tree_parse(const char *buf, size_t len, struct bl_conf_yn **root,
                       struct bl_conf_tree_err *err);

void bl_conf_tree_free(struct bl_conf_yn *root);   /* NULL is a no-op */

/* The value of key <key> in mapping <map>, or NULL. */
const struct bl_conf_yn *bl_conf_tree_get(const struct bl_conf_yn *map, const char *key);

/*
 * Appends <s> to <buf> (of <size>, NUL-terminated) for use in a message: at most <max>
 * bytes, bytes outside printable ASCII shown as '?', "..." when cut.
 */
void bl_conf_tree_sanitize(char *buf, size_t size, const char *s, size_t max);

#endif /* BL_CONF_TREE_H */
